"""A first run a user can trust: a fast "no", sensible defaults, names that explain themselves, readable logs."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import subprocess
import sys

import pytest

from conftest import ROOT
from training_dynamics.cli import record as record_cli
from training_dynamics.cli.common import setup_logging
from training_dynamics.cli.training_flags import RECORD_DEFAULTS, CommonTrainingArguments
from training_dynamics.analysis.run import task_run_name

# -- a fast "no" ---------------------------------------------------------------------------------
_NO_TORCH_PROBE = """
import contextlib, io, json, sys
from training_dynamics import cli
results = {}
for name, argv in json.loads(sys.argv[1]).items():
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as exc:
            code = exc.code
    results[name] = {"code": code, "out": out.getvalue(), "err": err.getvalue().strip().splitlines()[-1:]}
results["imported"] = sorted(m for m in ("torch", "transformers") if m in sys.modules)
print(json.dumps(results))
"""


@pytest.mark.slow
def test_help_and_bad_input_are_answered_before_torch_is_imported(tmp_path):
    """`record --help`, a missing file, a bad column and a missing model folder: one process, no torch."""
    data = tmp_path / "sst2" / "train.jsonl"
    data.parent.mkdir()
    data.write_text("".join(json.dumps({"sentence": f"s {i}", "label": i % 2}) + "\n" for i in range(6)))
    base = ["--output_dir", str(tmp_path / "out"), "--dy_log_dir", str(tmp_path / "dy_log")]
    cases = {
        "help": ["record", "--help"],
        "clm_help": ["record-clm", "--help"],
        "missing_file": ["record", "--model_name_or_path", "org/m", "--train_file", str(tmp_path / "nope.csv"), *base],
        "missing_validation": ["record-clm", "--model_name_or_path", "org/m", "--train_file", str(data),
                               "--validation_file", str(tmp_path / "dev.jsonl"), *base],
        "bad_column": ["record", "--model_name_or_path", "org/m", "--train_file", str(data), "--label_column", "lbl",
                       "--disable_tqdm", "true", *base],
        "missing_model": ["record", "--model_name_or_path", str(tmp_path / "model"), "--train_file", str(data), *base],
    }
    proc = subprocess.run([sys.executable, "-c", _NO_TORCH_PROBE, json.dumps(cases)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["imported"] == []
    assert res["help"]["code"] == 0 and "--save_strategy {no,steps,epoch,best}" in res["help"]["out"]
    assert "--learning_rate" in res["help"]["out"] and "--adam_beta1" not in res["help"]["out"]
    assert res["clm_help"]["code"] == 0 and "--response_column" in res["clm_help"]["out"]
    prog = "training-dynamics record"
    assert res["missing_file"] == {"code": 2, "out": "", "err": [f"{prog}: error: {tmp_path / 'nope.csv'}: no such file"]}
    assert res["missing_validation"]["err"] == [f"{prog}-clm: error: {tmp_path / 'dev.jsonl'}: no such file"]
    assert res["bad_column"]["code"] == 2
    assert res["bad_column"]["err"] == [f"{prog}: error: {data.resolve()}: unknown column(s) lbl (columns: sentence, label)"]
    assert res["missing_model"]["code"] == 2 and f"--model_name_or_path {tmp_path / 'model'}: no such folder" in \
        res["missing_model"]["err"][0]


@pytest.mark.slow  # imports transformers' TrainingArguments (seconds)
def test_the_help_describes_real_training_flags_with_their_defaults():
    """`record --help` describes TrainingArguments' common flags without importing it: each must be a real
    flag with transformers' default, or the default the recording chooses itself."""
    from transformers import TrainingArguments

    real = {f.name: f for f in dataclasses.fields(TrainingArguments)}
    for f in dataclasses.fields(CommonTrainingArguments):
        assert f.name in real, f.name
        expected = RECORD_DEFAULTS[f.name][0] if f.name in RECORD_DEFAULTS else real[f.name].default
        assert f.default == expected, f.name


# -- defaults a data-map user expects --------------------------------------------------------------
def _training_args(tmp_path, *extra):
    argv = ["--model_name_or_path", "m", "--train_file", "t.jsonl", "--output_dir", str(tmp_path / "o"),
            "--report_to", "none", *map(str, extra)]
    return record_cli.parse_args(argv)[3]


@pytest.mark.parametrize("extra, save_strategy", [
    ((), "no"),  # no mid-run checkpoint with optimizer state (the final model is saved all the same)
    (("--save_steps", 50), "steps"),
    (("--resume_from_checkpoint", "last"), "steps"),
    (("--save_total_limit", 2), "steps"),
    (("--save_strategy", "epoch"), "epoch"),
])
def test_no_checkpoints_unless_asked_for(tmp_path, extra, save_strategy):
    assert _training_args(tmp_path, *extra).save_strategy == save_strategy


def test_a_short_run_logs_its_loss_a_few_times_unless_told(tmp_path):
    assert _training_args(tmp_path).logging_steps == 0.1  # a share of the steps: every 10 steps of a 100-step run
    assert _training_args(tmp_path, "--logging_steps", 7).logging_steps == 7
    config = tmp_path / "args.json"
    config.write_text(json.dumps({"model_name_or_path": "m", "train_file": "t.jsonl", "output_dir": str(tmp_path / "o"),
                                  "save_steps": 20}))
    targs = record_cli.parse_args([str(config)])[3]
    assert (targs.save_strategy, targs.save_steps, targs.logging_steps) == ("steps", 20, 0.1)


# -- names -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path, name", [
    ("reviews.csv", "reviews"),
    ("data/sst2/train.tsv", "sst2"),
    ("glue/SST-2/training.jsonl", "SST-2"),
    ("hub/imdb/train-00000-of-00001.parquet", "imdb"),
    ("data/train.tsv", "train"),  # a generic folder says no more than the stem
    ("sst2_corrected.jsonl", "sst2_corrected"),
])
def test_task_run_names_explain_themselves(path, name):
    assert task_run_name(path) == name


# -- logs --------------------------------------------------------------------------------------------
def test_a_log_line_never_sticks_to_a_progress_bar():
    from tqdm import tqdm

    stream = io.StringIO()
    setup_logging()
    handler = logging.getLogger().handlers[0]
    handler.setStream(stream)
    try:
        with tqdm(total=10, file=stream, desc="Tokenizing", mininterval=0) as bar:
            bar.update(4)
            logging.getLogger("training_dynamics.test").info("wrote the epoch file")
            bar.update(6)
    finally:
        logging.getLogger().removeHandler(handler)
    line = next(x for x in stream.getvalue().split("\n") if "wrote the epoch file" in x)
    assert " INFO training_dynamics.test: wrote the epoch file" in line
    assert "Tokenizing" not in line.rsplit("\r", 1)[-1] and "%|" not in line.rsplit("\r", 1)[-1], repr(line)


@pytest.mark.parametrize("a, b, labels", [
    ("dy_log/sst2/bert-tiny", "dy_log/sst2/roberta-large", ("bert-tiny", "roberta-large")),
    ("dy_log/sst2/minilm", "dy_log/sst2_fixed/minilm", ("sst2", "sst2_fixed")),  # one model, two data: not "m → m"
    ("runs/seed1/sst2/m", "runs/seed2/sst2/m", ("seed1", "seed2")),
    ("a/sst2/m", "b/mnli/m", ("a/sst2", "b/mnli")),
    ("dy_log/sst2/m", "dy_log/sst2/m", ("A", "B")),
])
def test_two_runs_are_named_by_what_differs(a, b, labels):
    from training_dynamics.analysis.compare import run_labels

    assert run_labels(a, b) == labels


def test_compare_takes_neutral_run_names_and_the_old_ones():
    from training_dynamics.cli.common import parse
    from training_dynamics.cli.compare import CompareArguments

    new = parse((CompareArguments,), ["--run_a", "x", "--run_b", "y", "--output_dir", "o"], prog="p", doc="")
    old = parse((CompareArguments,), ["--weak_dir", "x", "--strong_dir", "y", "--output_dir", "o"], prog="p", doc="")
    assert new == old and (new[0].run_a, new[0].run_b) == ("x", "y")


def test_disabled_progress_bars_come_back_after_the_command():
    """A command run in a notebook (the demo) leaves the libraries' progress bars as they were."""
    import datasets
    import transformers.utils.logging as tf_logging

    from training_dynamics.cli.common import progress_bars_disabled

    assert datasets.is_progress_bar_enabled() and tf_logging.is_progress_bar_enabled()
    with progress_bars_disabled():
        assert not datasets.is_progress_bar_enabled() and not tf_logging.is_progress_bar_enabled()
        with progress_bars_disabled():
            pass
        assert not datasets.is_progress_bar_enabled()
    assert datasets.is_progress_bar_enabled() and tf_logging.is_progress_bar_enabled()
    with progress_bars_disabled(False):
        assert datasets.is_progress_bar_enabled()


# -- the demo's threads --------------------------------------------------------------------------------
def test_the_demo_trains_on_one_thread_unless_told(monkeypatch):
    torch = pytest.importorskip("torch")
    from training_dynamics.cli.demo_run import cpu_threads

    original = torch.get_num_threads()
    torch.set_num_threads(2)  # as on a 2-core machine without OMP_NUM_THREADS
    try:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        with cpu_threads() as n:
            assert n == 1 == torch.get_num_threads()
        assert torch.get_num_threads() == 2  # a notebook kernel gets its setting back
        with cpu_threads(3) as n:
            assert n == 3 == torch.get_num_threads()
        monkeypatch.setenv("OMP_NUM_THREADS", "2")  # the user's choice stands
        with cpu_threads() as n:
            assert n == 2
    finally:
        torch.set_num_threads(original)
