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
from training_dynamics import dynamics_file, record, train
from training_dynamics.cli import run as cli_run
from training_dynamics.record import DynamicsRecorder, DynamicsTrainer

PROG = "run_glue_and_record_td.py"


def _argv(tmp_path: Path, *extra) -> list[str]:
    """A run whose model and data do not exist: any check that passes goes on to fail loading them."""
    return ["--model_name_or_path", str(tmp_path / "no_model"), "--train_file", str(tmp_path / "train.jsonl"),
            "--output_dir", str(tmp_path / "out"), "--dy_log_dir", str(tmp_path / "dy_log"), "--report_to", "none",
            "--dy_model_name", "tiny", *map(str, extra)]


def _run_cli(argv: list[str], capsys) -> tuple[int, list[str]]:
    rc = cli_run(lambda: train.train_and_record(*train.parse_args(argv)), PROG)
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
