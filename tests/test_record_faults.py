"""Recording that loses nothing: overwrite refusals and staging, a kill or a full disk while an epoch
file is written, and what the log says (real training runs on the tiny demo model)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import N_TRAIN, ROOT, run_cli, train_args, write_synthetic_dynamics
from training_dynamics.core import dynamics_file, fileio

pytestmark = pytest.mark.slow
SCRIPT = "run_glue_and_record_td.py"
LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d (DEBUG|INFO|WARNING|ERROR|CRITICAL) (\S+): (.*)$")


def dy_dir(out: Path) -> Path:
    return out / "dy_log" / "train" / "tiny" / "training_dynamics"


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def epoch_names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("dynamics_epoch_*"))


def meta_of(folder: Path) -> dict:
    return json.loads((folder / dynamics_file.META_NAME).read_text())


def guids_of(path: Path) -> list[int]:
    return [json.loads(line)["guid"] for line in path.read_text().splitlines()]


# -- overwriting a run folder -------------------------------------------------------------------
def _trainer(model, demo_data, out: Path, *extra, epochs: int = 2):
    from training_dynamics.cli.record import parse_args
    from training_dynamics.workflows.train import build_trainer

    args = train_args(model, demo_data, out, "--dy_model_name", "tiny", *extra, epochs=epochs)
    return build_trainer(*parse_args([str(a) for a in args])[:4])


def _old_run(folder: Path) -> dict[str, bytes]:
    """A complete earlier 4-epoch recording in ``folder``; returns its files."""
    write_synthetic_dynamics(folder, n=N_TRAIN, epochs=4, seed=3)
    fileio.write_json(folder / dynamics_file.META_NAME, {"model_name_or_path": "old", "epochs_completed": 4,
                                                         "num_examples": N_TRAIN, "num_labels": 2})
    return snapshot(folder)


def test_overwrite_replaces_the_old_run_only_once_epoch_0_is_complete(demo_data, tiny_model, tmp_path):
    from transformers import TrainerCallback

    d = dy_dir(tmp_path)
    old = _old_run(d)
    with pytest.raises(FileExistsError, match="already holds training dynamics .*--overwrite_dynamics"):
        _trainer(tiny_model, demo_data, tmp_path).train()  # the library refuses too, not only the CLI
    assert snapshot(d) == old

    class CtrlC(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            assert snapshot(d) == old  # never touched during epoch 0
            if state.global_step == 3:
                raise KeyboardInterrupt

    trainer = _trainer(tiny_model, demo_data, tmp_path, "--overwrite_dynamics", "true")
    trainer.add_callback(CtrlC)
    with pytest.raises(KeyboardInterrupt):
        trainer.train()
    assert snapshot(d) == old  # interrupted in epoch 0: the old run is intact

    _trainer(tiny_model, demo_data, tmp_path, "--overwrite_dynamics", "true").train()
    assert epoch_names(d) == ["dynamics_epoch_0.jsonl", "dynamics_epoch_1.jsonl"]  # none of the old epochs 2, 3
    meta = meta_of(d)
    assert meta["epochs_completed"] == 2 and meta["model_name_or_path"] == str(tiny_model)
    dyn = dynamics_file.read_dynamics(d, progress=False)
    assert sorted(dyn.guids.tolist()) == list(range(N_TRAIN)) and dyn.num_epochs == 2
    assert sorted(p.name for p in d.parent.iterdir()) == ["training_dynamics"]  # no staging folder left


# -- a kill or a full disk while an epoch file is written ---------------------------------------
DRIVER = """
import errno, os, sys
real_fsync = os.fsync

def fsync(fd):  # the atomic writer's last step before renaming the temp file onto the epoch file
    if "dynamics_epoch_1." in os.readlink(f"/proc/self/fd/{fd}"):
        {action}
    real_fsync(fd)

os.fsync = fsync
from training_dynamics.cli import run_command
sys.exit(run_command("record", sys.argv[1:], prog="run_glue_and_record_td.py"))
"""


def _run_with_fault(tmp_path: Path, action: str, args: list) -> subprocess.CompletedProcess:
    """The CLI, with the write of epoch 1 failing by ``action`` just before its rename."""
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER.replace("{action}", action))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(driver), *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          env=env, timeout=600)


def test_kill_while_writing_an_epoch_then_resume_records_each_epoch_once(demo_data, tiny_model, tmp_path):
    """Killed (os._exit) while epoch 1 is written, after the checkpoint of epoch 1's last step: epoch 0
    and the meta are as before, and resuming writes epoch 1 from that checkpoint's rows, then epoch 2."""
    args = train_args(tiny_model, demo_data, tmp_path, "--dy_model_name", "tiny", "--save_strategy", "steps",
                      "--save_steps", 5, epochs=3)
    proc = _run_with_fault(tmp_path, "os._exit(9)", args)
    assert proc.returncode == 9, proc.stderr[-3000:]
    d = dy_dir(tmp_path)
    assert epoch_names(d) == ["dynamics_epoch_0.jsonl"] and meta_of(d)["epochs_completed"] == 1
    epoch0 = (d / "dynamics_epoch_0.jsonl").read_bytes()
    assert list(d.glob(".dynamics_epoch_1.jsonl.*.tmp"))  # the write really was cut short

    proc = run_cli(SCRIPT, *args, "--resume_from_checkpoint", "last")
    assert "epoch 1 has no dynamics file (interrupted while writing it?)" in proc.stderr
    assert epoch_names(d) == [f"dynamics_epoch_{e}.jsonl" for e in range(3)]
    assert (d / "dynamics_epoch_0.jsonl").read_bytes() == epoch0
    for e in range(3):
        assert sorted(guids_of(d / f"dynamics_epoch_{e}.jsonl")) == list(range(N_TRAIN))
    assert meta_of(d)["epochs_completed"] == 3 and not list(d.glob(".*"))
    assert dynamics_file.read_dynamics(d, progress=False).num_epochs == 3


def test_full_disk_is_one_line_and_loses_no_earlier_epoch(demo_data, tiny_model, tmp_path):
    args = train_args(tiny_model, demo_data, tmp_path, "--dy_model_name", "tiny", epochs=3)
    proc = _run_with_fault(tmp_path, "raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))", args)
    d = dy_dir(tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert errors == [f"{SCRIPT}: error: {d / 'dynamics_epoch_1.jsonl'}: cannot write, the disk is full (no space "
                      "left on device); the files written before are intact"]
    assert proc.stderr.strip().splitlines()[-1] == errors[0]
    assert sorted(p.name for p in d.iterdir()) == ["data_binding.npz", "dynamics_epoch_0.jsonl", dynamics_file.META_NAME]  # no temp file
    assert sorted(guids_of(d / "dynamics_epoch_0.jsonl")) == list(range(N_TRAIN))
    assert meta_of(d)["epochs_completed"] == 1


# -- the log ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def base_model(tiny_model, tmp_path_factory) -> Path:
    """The tiny BERT without its classification head (as a Hub base checkpoint)."""
    from transformers import AutoModelForSequenceClassification

    out = tmp_path_factory.mktemp("base")
    AutoModelForSequenceClassification.from_pretrained(tiny_model).bert.save_pretrained(out)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_model / name, out / name)
    return out


def test_log_has_one_handler_a_short_load_report_and_the_run_folder(demo_data, base_model, tmp_path):
    """CI=true (as in .ci/run) made transformers log through its own handler and ours: every line twice."""
    proc = run_cli(SCRIPT, *train_args(base_model, demo_data, tmp_path, "--dy_model_name", "tiny", "--log_level", "info",
                                       epochs=1), env={"CI": "true"})
    lines = proc.stderr.splitlines()
    logged = [m.groups() for m in map(LOG_LINE.match, lines) if m]
    bare = {line for line in lines if not LOG_LINE.match(line)}
    assert any(name.startswith("transformers.") for _, name, _ in logged)  # transformers' INFO lines are there ...
    assert not [msg for _, _, msg in logged if msg.strip() and msg in bare]
    assert not [line for line in bare if line.startswith("[transformers]")]
    assert "pin_memory" not in proc.stderr  # ... once each; no pinned-memory warning on CPU
    assert "LOAD REPORT" not in proc.stderr and "newly initialized" not in proc.stderr
    assert [msg for _, name, msg in logged if name == "training_dynamics.kinds.recording" and msg.startswith("loaded")] == [
        f"loaded {base_model}: weights 2 newly initialised (classifier.bias, classifier.weight); "
        "fine-tuning trains the new head"]
    d = dy_dir(tmp_path)
    messages = [msg for _, _, msg in logged]
    assert f"recording the training dynamics of {N_TRAIN} examples into {d}" in messages
    assert messages[-1] == f"run folder {d.parent}: this run recorded the training dynamics of epoch(s) 0 in {d.name}"


def test_max_steps_inside_the_first_epoch_warns_that_nothing_is_recorded(demo_data, tiny_model, tmp_path):
    proc = run_cli(SCRIPT, *train_args(tiny_model, demo_data, tmp_path, "--dy_model_name", "tiny", "--max_steps", 3))
    warnings = [msg for level, _, msg in (m.groups() for m in map(LOG_LINE.match, proc.stderr.splitlines()) if m)
                if level == "WARNING"]
    assert warnings == [
        f"--max_steps 3 ended training inside epoch 0 (48 of {N_TRAIN} examples seen): an incomplete epoch gets no "
        "dynamics file -- no epoch was completed, so no training dynamics were recorded",
        f"run folder {dy_dir(tmp_path).parent}: this run recorded no training dynamics"]
    assert not dy_dir(tmp_path).parent.exists() or not epoch_names(dy_dir(tmp_path))
    assert (tmp_path / "model_out" / "config.json").exists()  # the model is still trained and saved
    assert "%|" not in proc.stderr and "it/s]" not in proc.stderr  # --disable_tqdm: no bar (loading, tokenizing, ...)
    assert proc.stdout.count("'loss'") == 3  # logging_steps 0.1 of 3 steps: a loss line at every step
