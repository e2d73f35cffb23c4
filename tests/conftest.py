"""Shared fixtures: offline demo data, a tiny BERT saved to disk, CLI runner, synthetic dynamics.

Nothing here touches the Hub or ../shared: every test runs on a fresh clone.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")

N_TRAIN = 150  # not divisible by the batch sizes the tests use


#: the scripts that run in the test process (same code path, no interpreter start-up per call);
#: the recording script and anything with its own environment or launcher runs in a subprocess
IN_PROCESS = {"td_metrics.py": "metrics", "plot_cartography.py": "plot", "data_selection.py": "select",
              "compare_models.py": "compare", "find_label_issues.py": "find-issues",
              "review_label_issues.py": "review", "apply_corrections.py": "apply"}


def run_cli(script: str, *args, check: bool = True, env: dict | None = None, timeout: int = 600,
            launcher: list[str] | None = None, in_process: bool | None = None) -> subprocess.CompletedProcess:
    """Run a top-level script of the repo (``script`` relative to the repo root) as a user would.

    The analysis scripts run in this process by default (``in_process``): the same entry point the
    shim calls, with stdout/stderr captured and the exit status returned, minus a second of
    interpreter and library start-up per call. ``test_cli`` runs every shim as a real process.
    """
    argv = [str(a) for a in args]
    if in_process is None:
        in_process = script in IN_PROCESS and env is None and launcher is None
    if in_process:
        proc = _run_in_process(IN_PROCESS[script], script, argv)
    else:
        cmd = [*(launcher or [sys.executable]), str(ROOT / script), *argv]
        full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", **(env or {})}
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=full_env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{script} exited {proc.returncode}\n--- stderr ---\n{proc.stderr[-4000:]}")
    return proc


def _run_in_process(command: str, prog: str, argv: list[str]) -> subprocess.CompletedProcess:
    from training_dynamics.cli import run_command

    out, err, cwd = io.StringIO(), io.StringIO(), os.getcwd()
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = run_command(command, argv, prog=prog)
            except SystemExit as exc:  # argparse: --help (0) or a usage error (2), already printed
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    finally:
        os.chdir(cwd)
        for handler in list(logging.getLogger().handlers):  # setup_logging bound one to the captured stream
            logging.getLogger().removeHandler(handler)
    return subprocess.CompletedProcess([prog, *argv], code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory) -> dict[str, Path]:
    """Generated train (with planted noise) / validation jsonl files and their ground truth."""
    from training_dynamics.demo.data import write_demo_dataset

    return write_demo_dataset(tmp_path_factory.mktemp("demo_data") / "data", n_train=N_TRAIN, n_validation=40, seed=0)


@pytest.fixture(scope="session")
def tiny_model(demo_data, tmp_path_factory) -> Path:
    """A 2-layer, 32-wide BERT and word-level tokenizer saved with save_pretrained."""
    from training_dynamics.demo.data import build_tiny_bert

    texts = [json.loads(line)["sentence"] for line in open(demo_data["train"])]
    texts += [json.loads(line)["sentence"] for line in open(demo_data["validation"])]
    return build_tiny_bert(tmp_path_factory.mktemp("tiny_bert"), texts, hidden_size=32, num_layers=2, num_heads=2)


def train_args(model: Path, data: dict, out: Path, *extra, epochs: int = 3) -> list[str]:
    """CLI arguments of a quick recording run on the demo data."""
    return ["--model_name_or_path", model, "--train_file", data["train"], "--validation_file", data["validation"],
            "--output_dir", out / "model_out", "--dy_log_dir", out / "dy_log", "--num_train_epochs", epochs,
            "--per_device_train_batch_size", 16, "--per_device_eval_batch_size", 64, "--learning_rate", "5e-3",
            "--report_to", "none", "--save_strategy", "no", "--seed", 1, "--disable_tqdm", "true", *extra]


@pytest.fixture(scope="session")
def recorded_run(demo_data, tiny_model, tmp_path_factory) -> Path:
    """A real 4-epoch recording run on the demo data; returns its run folder ``dy_log/train/<model>``."""
    out = tmp_path_factory.mktemp("recorded")
    run_cli("run_glue_and_record_td.py", *train_args(tiny_model, demo_data, out, "--dy_model_name", "tiny", epochs=4))
    return out / "dy_log" / "train" / "tiny"


def write_synthetic_dynamics(dy_dir: Path, *, n: int = 50, epochs: int = 4, classes: int = 2, seed: int = 0,
                             fmt: str = "jsonl", shuffle: bool = False) -> dict[str, np.ndarray]:
    """Random seed-format dynamics (logits drift toward gold over epochs); returns the arrays written."""
    from training_dynamics.core import dynamics_file

    rng = np.random.default_rng(seed)
    guids = rng.choice(10 * n, size=n, replace=False).astype(np.int64)
    gold = rng.integers(classes, size=n)
    logits = rng.normal(size=(n, epochs, classes)).astype(np.float32)
    logits[np.arange(n), :, gold] += np.linspace(0, 3, epochs)[None, :] * rng.uniform(-0.5, 1.5, size=(n, 1))
    for e in range(epochs):
        order = rng.permutation(n) if shuffle else np.arange(n)
        dynamics_file.write_epoch(dy_dir, e, guids[order], logits[order, e], gold[order], fmt=fmt)
    return {"guids": guids, "gold": gold, "logits": logits}


@pytest.fixture
def synthetic_dynamics(tmp_path):
    """Factory: ``synthetic_dynamics(**kw)`` writes dynamics under a run folder and returns (run_dir, arrays)."""

    def make(**kw):
        run = tmp_path / "run"
        arrays = write_synthetic_dynamics(run / "training_dynamics", **kw)
        return run, arrays

    return make


class Crash(Exception):
    """Raised by :func:`train_with_crash` at the chosen step: a kill in the middle of training."""


def train_with_crash(trainer, *, crash_at: int | None = None, resume: bool = False) -> None:
    """``trainer.train`` (resuming from the last checkpoint when ``resume``), raising :class:`Crash`
    at the end of step ``crash_at``."""
    from transformers import TrainerCallback

    class CrashAt(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == crash_at:
                raise Crash

    if crash_at:
        trainer.add_callback(CrashAt)
    trainer.train(resume_from_checkpoint=True if resume else None)


def one_line_error(proc: subprocess.CompletedProcess, prog: str, *needles: str) -> str:
    """Assert that ``proc`` ended with exit 2 and one line ``<prog>: error: ...`` holding every needle (no
    traceback); returns that line."""
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"{prog}: error: "), proc.stderr
    for needle in needles:
        assert needle in last, last
    return last
