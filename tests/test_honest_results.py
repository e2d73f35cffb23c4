"""Honest results: an unfinished run, a one-epoch run and constant variability are said, never silently used."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli, write_synthetic_dynamics
from training_dynamics.analysis import selection
from training_dynamics.analysis.run import Run


def _run_with_plan(tmp_path, *, recorded: int, planned: float):
    dy = tmp_path / "run" / "training_dynamics"
    write_synthetic_dynamics(dy, n=30, epochs=recorded)
    (dy / "dynamics_meta.json").write_text(json.dumps({"num_train_epochs": planned, "epochs_completed": recorded}))
    return Run(tmp_path / "run")


def test_an_interrupted_run_warns_k_of_n_planned_epochs(tmp_path, caplog):
    run = _run_with_plan(tmp_path, recorded=2, planned=3.0)
    with caplog.at_level(logging.WARNING):
        run.metrics()
    assert "only 2 of 3 planned epochs were recorded" in caplog.text


def test_a_complete_run_does_not_warn(tmp_path, caplog):
    run = _run_with_plan(tmp_path, recorded=3, planned=3.0)
    with caplog.at_level(logging.WARNING):
        run.metrics()
    assert "planned epochs" not in caplog.text and "one epoch" not in caplog.text


def test_one_epoch_warns_and_selection_refuses_variability_regions(tmp_path, caplog):
    run = _run_with_plan(tmp_path, recorded=1, planned=1)
    with caplog.at_level(logging.WARNING):
        df = run.metrics()
    assert "one epoch recorded: variability is 0 for every example" in caplog.text
    assert (df["variability"] == 0).all()
    with pytest.raises(ValueError, match="variability is 0 for every example .* the ambiguous region would be arbitrary"):
        selection.refuse_constant_variability(df, "the ambiguous region")
    hard = selection.select_by_metric(df, "confidence", fraction=0.3)  # confidence still ranks
    assert len(hard) == 9
    labels = selection.region_of(df)  # for display: no row is called ambiguous
    assert "ambiguous" not in set(labels) and (labels == "hard").sum() == selection.selection_size(30, 0.33) == 10


@pytest.mark.slow
def test_select_cli_refuses_a_one_epoch_run_in_one_line(tmp_path):
    run = _run_with_plan(tmp_path, recorded=1, planned=1)
    proc = run_cli("data_selection.py", "--model_dir", run.path, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("data_selection.py: error: variability is 0 for every example")
    assert not (run.path / selection.INDICES_NAME).exists()
    proc = run_cli("td_metrics.py", "--model_dir", run.path)
    assert "variability is 0 for every example" in proc.stderr


def test_burn_out_of_one_epoch_also_refuses(tmp_path):
    run = _run_with_plan(tmp_path, recorded=3, planned=3)
    df = run.metrics(burn_out=1)
    with pytest.raises(ValueError, match="ambiguous region would be arbitrary"):
        selection.refuse_constant_variability(df, "the ambiguous region")
    assert not selection.variability_is_constant(run.metrics())


def test_variability_is_constant_needs_two_rows():
    assert not selection.variability_is_constant(pd.DataFrame({"guid": [1], "variability": [0.0]}))
    assert selection.variability_is_constant(pd.DataFrame({"guid": [1, 2], "variability": np.zeros(2)}))
