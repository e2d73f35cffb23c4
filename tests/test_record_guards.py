"""Recording guards that need no training: refusals before anything is loaded, run-folder swaps,
checkpoint loading, log set-up and defaults."""

from __future__ import annotations

import argparse
import logging
import pickle
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import write_synthetic_dynamics
from training_dynamics.core import dynamics_file, recorder as record
from training_dynamics.workflows import train
from training_dynamics.cli import record as record_cli
from training_dynamics.cli import run as cli_run
from training_dynamics.core.recorder import DynamicsRecorder, DynamicsTrainer

PROG = "run_glue_and_record_td.py"


def _argv(tmp_path: Path, *extra) -> list[str]:
    """A run whose model and data do not exist: any check that passes goes on to fail loading them."""
    return ["--model_name_or_path", str(tmp_path / "no_model"), "--train_file", str(tmp_path / "train.jsonl"),
            "--output_dir", str(tmp_path / "out"), "--dy_log_dir", str(tmp_path / "dy_log"), "--report_to", "none",
            "--dy_model_name", "tiny", *map(str, extra)]


def _train(model_args, data_args, dy_args, training_args, sel_args):
    return train.train_and_record(model_args, data_args, dy_args, training_args, sel_args=sel_args)


def _run_cli(argv: list[str], capsys) -> tuple[int, list[str]]:
    rc = cli_run(lambda: _train(*record_cli.parse_args(argv)), PROG)
    return rc, [line for line in capsys.readouterr().err.splitlines() if line.strip()]


# -- refused before loading anything ------------------------------------------------------------
@pytest.mark.parametrize("epochs", [0, -1])
def test_no_epochs_is_a_one_line_error(tmp_path, capsys, epochs):
    rc, err = _run_cli(_argv(tmp_path, "--num_train_epochs", epochs), capsys)
    assert rc == 2 and err == [f"{PROG}: error: --num_train_epochs must be positive, not {epochs} (or give --max_steps)"]
    assert not (tmp_path / "out").exists() and not (tmp_path / "dy_log").exists()


def test_max_steps_makes_zero_epochs_fine():
    train.check_training_length(types.SimpleNamespace(max_steps=5, num_train_epochs=0))
    with pytest.raises(ValueError, match="must be positive, not -0.5"):
        train.check_training_length(types.SimpleNamespace(max_steps=-1, num_train_epochs=-0.5))


def test_run_folder_with_dynamics_is_refused_after_the_data_check(tmp_path, capsys, monkeypatch):
    dy = tmp_path / "dy_log" / tmp_path.name / "tiny" / "training_dynamics"  # train.jsonl: named after its folder
    write_synthetic_dynamics(dy, epochs=3)
    before = {p.name: p.read_bytes() for p in dy.iterdir()}
    rc, err = _run_cli(_argv(tmp_path, "--num_train_epochs", 2), capsys)  # bad data is the first thing reported
    assert rc == 2 and err == [f"{PROG}: error: {tmp_path / 'train.jsonl'}: no such file"], err
    (tmp_path / "train.jsonl").write_text("".join(f'{{"sentence": "s{i}", "label": {i % 2}}}\n' for i in range(8)))
    rc, err = _run_cli(_argv(tmp_path, "--num_train_epochs", 2), capsys)
    assert rc == 2 and err[-1].startswith(f"{PROG}: error: {dy} already holds training dynamics (epochs 0..2); pass "
                             "--overwrite_dynamics") and "--dy_model_name" in err[-1]
    assert {p.name: p.read_bytes() for p in dy.iterdir()} == before
    # with the flag (or when resuming) the check passes: the run goes on to load the model
    from training_dynamics.core.errors import TrainingDynamicsError

    def reached(*args, **kwargs):
        raise TrainingDynamicsError("reached the model")

    monkeypatch.setattr(train, "build_trainer", reached)
    for extra in (["--overwrite_dynamics", "true"], ["--resume_from_checkpoint", "last"]):
        rc, err = _run_cli(_argv(tmp_path, "--num_train_epochs", 2, *extra), capsys)
        assert rc == 2 and err[-1] == f"{PROG}: error: reached the model", err


def test_check_dynamics_dir_counts_only_epoch_files(tmp_path):
    dy = tmp_path / "training_dynamics"
    record.check_dynamics_dir(dy, overwrite=False)  # no folder
    dy.mkdir()
    (dy / dynamics_file.META_NAME).write_text("{}")
    (dy / ".dynamics_epoch_0.jsonl.x1.tmp").write_text("")
    record.check_dynamics_dir(dy, overwrite=False)  # a meta and a temporary file are not a recorded run
    (dy / "dynamics_epoch_1.npz").write_bytes(b"")
    with pytest.raises(FileExistsError, match=r"already holds training dynamics \(epochs 1..1\)"):
        record.check_dynamics_dir(dy, overwrite=False)
    record.check_dynamics_dir(dy, overwrite=True)
    (dy / "dynamics_epoch_x.jsonl").write_text("")  # not the recorder's: a new run's folder would delete it
    with pytest.raises(FileExistsError, match=r"holds files the recorder did not write \(dynamics_epoch_x.jsonl\)"):
        record.check_dynamics_dir(dy, overwrite=True)


# -- the swap of a new run into the run folder --------------------------------------------------
def _folder(path: Path, files: dict[str, str]) -> Path:
    path.mkdir(parents=True)
    for name, text in files.items():
        (path / name).write_text(text)
    return path


def _contents(path: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(path.iterdir())}


def test_swap_in_replaces_the_whole_folder(tmp_path):
    dy = _folder(tmp_path / "training_dynamics", {"dynamics_epoch_0.jsonl": "old0", "dynamics_epoch_1.jsonl": "old1",
                                                   "dynamics_meta.json": "old"})
    staged = _folder(record.staging_dir(dy), {"dynamics_epoch_0.jsonl": "new0", "dynamics_meta.json": "new"})
    record.swap_in(staged, dy)
    assert _contents(dy) == {"dynamics_epoch_0.jsonl": "new0", "dynamics_meta.json": "new"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["training_dynamics"]
    fresh = tmp_path / "other" / "training_dynamics"
    record.swap_in(_folder(record.staging_dir(fresh), {"dynamics_epoch_0.jsonl": "a"}), fresh)
    assert _contents(fresh) == {"dynamics_epoch_0.jsonl": "a"}


def test_recover_an_interrupted_swap(tmp_path):
    dy = tmp_path / "training_dynamics"
    # killed between the two renames, the new run's epoch 0 complete: finish the swap
    _folder(tmp_path / ".training_dynamics.old", {"dynamics_epoch_0.jsonl": "old0"})
    _folder(record.staging_dir(dy), {"dynamics_epoch_0.jsonl": "new0"})
    record.recover_swap(dy)
    assert _contents(dy) == {"dynamics_epoch_0.jsonl": "new0"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["training_dynamics"]
    # only the old folder left: put it back
    dy.rename(tmp_path / ".training_dynamics.old")
    record.recover_swap(dy)
    assert _contents(dy) == {"dynamics_epoch_0.jsonl": "new0"}
    record.recover_swap(dy)  # nothing to do
    assert _contents(dy) == {"dynamics_epoch_0.jsonl": "new0"}


# -- the checkpoint's partial epoch -------------------------------------------------------------
def _begin_epoch_from(partial_dir: Path, epoch: int = 0) -> DynamicsRecorder:
    """Run DynamicsTrainer._begin_epoch on a stand-in trainer resuming from ``partial_dir``."""
    rec = DynamicsRecorder(np.arange(3), np.array([0, 1, 0]), 2)
    fake = types.SimpleNamespace(recorder=rec, _td_resume=str(partial_dir), _td_epoch=None)
    DynamicsTrainer._begin_epoch(fake, types.SimpleNamespace(epoch=float(epoch)))
    return rec


def test_partial_epoch_is_loaded_back(tmp_path):
    torch.save({"epoch": 0, "logits": torch.ones(3, 2), "filled": torch.tensor([1, 0, 1])}, tmp_path / record.PARTIAL_NAME)
    logits, filled = _begin_epoch_from(tmp_path).state()
    assert filled.tolist() == [1, 0, 1] and logits.eq(1).all()


def test_partial_epoch_is_loaded_with_weights_only(tmp_path, monkeypatch):
    """Explicit weights_only=True: even with TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 (which flips torch's
    default) a checkpoint file holding anything but tensors and ints is not unpickled."""
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    torch.save({"epoch": 0, "logits": torch.ones(3, 2), "filled": torch.ones(3, dtype=torch.int32),
                "extra": argparse.Namespace(x=1)}, tmp_path / record.PARTIAL_NAME)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        _begin_epoch_from(tmp_path)


# -- logs and defaults --------------------------------------------------------------------------
@pytest.fixture
def library_loggers():
    """Restore the libraries' logger handlers and propagation after the test."""
    import transformers  # noqa: F401  (attaches its handler)

    names = ("transformers", "datasets", "huggingface_hub")
    saved = {n: (list(logging.getLogger(n).handlers), logging.getLogger(n).propagate) for n in names}
    yield
    for n, (handlers, propagate) in saved.items():
        lg = logging.getLogger(n)
        lg.handlers[:] = handlers
        lg.propagate = propagate


def test_one_handler_for_every_library_record(library_loggers):
    """Under CI=true transformers both keeps its own handler and propagates: every line came out twice."""
    logging.getLogger("transformers").propagate = True  # what CI=true gives
    seen: list[str] = []
    root_handler = logging.Handler()
    root_handler.emit = lambda r: seen.append(r.getMessage())
    logging.getLogger().addHandler(root_handler)
    try:
        train.single_log_handler()
        for name in ("transformers", "datasets", "huggingface_hub"):
            assert logging.getLogger(name).handlers == [] and logging.getLogger(name).propagate
            logging.getLogger(f"{name}.sub").warning("from %s", name)
    finally:
        logging.getLogger().removeHandler(root_handler)
    assert seen == ["from transformers", "from datasets", "from huggingface_hub"]


@pytest.mark.parametrize("accelerator", [False, True])
def test_no_pinned_memory_without_an_accelerator_unless_asked(monkeypatch, tmp_path, accelerator):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: accelerator)
    if hasattr(torch, "accelerator"):
        monkeypatch.setattr(torch.accelerator, "is_available", lambda: accelerator)
    argv = _argv(tmp_path)
    expect = [] if accelerator else ["--dataloader_pin_memory", "false"]
    assert record_cli.with_cpu_ddp_defaults(argv) == argv + expect
    assert record_cli.with_cpu_ddp_defaults(argv + ["--dataloader_pin_memory", "true"])[-2:] == ["--dataloader_pin_memory",
                                                                                          "true"]
    if not accelerator:  # (TrainingArguments would set up the faked GPU)
        assert record_cli.parse_args(argv)[3].dataloader_pin_memory is False
        assert record_cli.parse_args(argv + ["--dataloader_pin_memory", "true"])[3].dataloader_pin_memory is True


class _Model:
    base_model_prefix = "bert"


def test_load_report_in_one_line():
    assert train.load_report_line(_Model(), "m", {"missing_keys": [], "unexpected_keys": [],
                                                  "mismatched_keys": []}) is None
    level, line = train.load_report_line(_Model(), "base", {"missing_keys": {"classifier.weight", "classifier.bias"}})
    assert level == logging.INFO and "\n" not in line
    assert line == ("loaded base: weights 2 newly initialised (classifier.bias, classifier.weight); "
                    "fine-tuning trains the new head")
    body = {f"bert.encoder.layer.{i}.weight" for i in range(5)}
    level, line = train.load_report_line(_Model(), "mlm", {"missing_keys": body, "unexpected_keys": {"cls.bias"}})
    assert level == logging.WARNING
    assert line == ("loaded mlm: weights 5 newly initialised (bert.encoder.layer.0.weight, bert.encoder.layer.1.weight, "
                    "bert.encoder.layer.2.weight, ... (2 more)); 1 unused from the checkpoint (cls.bias)")
    level, line = train.load_report_line(_Model(), "m3", {"mismatched_keys": [("classifier.weight", (3, 8), (2, 8))]})
    assert level == logging.WARNING and "1 re-initialised for a size mismatch (classifier.weight)" in line


def test_load_classifier_logs_one_line_not_the_table(tmp_path, caplog):
    from transformers import AutoModelForSequenceClassification, BertConfig, BertModel

    cfg = BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=16)
    BertModel(cfg).save_pretrained(tmp_path / "base")
    args = train.ModelArguments(model_name_or_path=str(tmp_path / "base"))
    with caplog.at_level(logging.INFO):
        model = train.load_classifier(AutoModelForSequenceClassification, args, BertConfig.from_pretrained(
            tmp_path / "base", num_labels=3))
    assert model.config.num_labels == 3
    assert not [r for r in caplog.records if "LOAD REPORT" in r.getMessage()]
    lines = [r.getMessage() for r in caplog.records if r.name == "training_dynamics.kinds.recording"]
    assert lines == [f"loaded {tmp_path / 'base'}: weights 2 newly initialised (classifier.bias, classifier.weight); "
                     "fine-tuning trains the new head"]
