"""Several recorded runs of the same data (seeds or models), averaged example by example.

Each run's metrics are computed over its own epochs (``burn_out``: the first N of each) and then
averaged over the runs: the float metrics and ``correctness`` (so it may be fractional) by the plain
mean; ``forgetfulness`` over the runs in which the example was learned; ``never_learned`` when it
was never learned in any run; ``last_pred`` by majority vote (ties: the lower class id). The class
probabilities are the mean over runs of each run's epoch-averaged softmax. The runs must hold the
same examples (guids) with the same labels and label names; rows follow the first run's order.
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np

from . import metrics
from .dynamics_file import Dynamics
from .metrics import log_softmax
from .run import Run
from .errors import TrainingDynamicsError

logger = logging.getLogger(__name__)


def aligned_rows(reference: Dynamics, other: Dynamics, *, ref_name: str, name: str) -> np.ndarray:
    """Row index into ``other`` of each of ``reference``'s examples; a one-line ValueError when the
    two runs do not hold the same examples with the same labels."""
    if len(other.guids) != len(reference.guids) or not np.array_equal(np.sort(other.guids), np.sort(reference.guids)):
        only = np.setdiff1d(reference.guids, other.guids)
        extra = np.setdiff1d(other.guids, reference.guids)
        which = (f"guid {only[0]} of {ref_name} is missing" if len(only) else f"guid {extra[0]} is not in {ref_name}"
                 if len(extra) else "guids repeat")
        raise TrainingDynamicsError(f"{name}: not the same examples as {ref_name} ({len(other.guids)} vs {len(reference.guids)}; "
                         f"{which}); runs to average must record the same data")
    order = np.argsort(other.guids, kind="stable")
    rows = order[np.searchsorted(other.guids, reference.guids, sorter=order)]
    differ = np.flatnonzero(other.gold[rows] != reference.gold)
    if len(differ):
        i = differ[0]
        raise TrainingDynamicsError(f"{name}: guid {reference.guids[i]} has label {other.gold[rows[i]]} here but {reference.gold[i]} "
                         f"in {ref_name} ({len(differ)} labels differ); runs to average must share the labels")
    return rows


def check_label_names(runs: Sequence[Run]) -> list[str] | None:
    """The runs' common label names (``None`` when none are recorded); ValueError when they differ."""
    names = runs[0].label_names
    for run in runs[1:]:
        if run.label_names != names:
            raise TrainingDynamicsError(f"{run.path}: label names {run.label_names} differ from {names} of {runs[0].path}; "
                             "runs to average must share the labels")
    return names


def run_columns(dyn: Dynamics, rows: np.ndarray, *, burn_out: int | None, include_ci: bool) -> tuple[dict, np.ndarray]:
    """One run's metric columns and epoch-averaged probabilities (N, C), rows in ``rows`` order."""
    epochs = metrics.resolve_burn_out(burn_out, dyn.num_epochs, where=dyn.dy_dir)
    cols = metrics.td_metrics_columns(dyn, burn_out=epochs, include_ci=include_ci)
    probs = np.exp(log_softmax(dyn.logits[:, :epochs])).mean(axis=1)
    return {k: v[rows] for k, v in cols.items()}, probs[rows]


def average_columns(per_run: Sequence[dict[str, np.ndarray]], num_classes: int) -> dict[str, np.ndarray]:
    """Average metric columns over runs (see the module docstring), in :data:`metrics.COLUMNS` order."""
    first = per_run[0]
    stack = {k: np.stack([cols[k] for cols in per_run]) for k in first}  # (R, N)
    out = {"guid": first["guid"], "index": np.arange(len(first["guid"])), "gold": first["gold"]}
    for k in ("threshold_closeness", "confidence", "variability", "loss", "aum", "aleatoric", "el2n", "correctness"):
        out[k] = stack[k].astype(np.float64).mean(axis=0)
    learned = ~stack["never_learned"]
    out["never_learned"] = ~learned.any(axis=0)
    forgot = np.where(learned, stack["forgetfulness"], 0).sum(axis=0) / np.maximum(learned.sum(axis=0), 1)
    out["forgetfulness"] = np.where(out["never_learned"], metrics.NEVER_LEARNED_FORGETFULNESS, forgot)
    votes = (stack["last_pred"][..., None] == np.arange(num_classes)).sum(axis=0)  # (N, C)
    out["last_pred"] = votes.argmax(axis=1)
    return {c: out[c] for c in metrics.COLUMNS}


def average_runs(runs: Sequence[Run], *, burn_out: int | None = None, include_ci: bool = False,
                 progress: bool = True) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Metric columns and epoch-averaged probabilities (N, C), averaged over ``runs`` (one run: its own)."""
    if not runs:
        raise TrainingDynamicsError("no run folders given")
    check_label_names(runs)
    reference = runs[0].dynamics(progress=progress)
    per_run, probs = [], []
    for run in runs:
        dyn = reference if run is runs[0] else run.dynamics(progress=progress)
        rows = aligned_rows(reference, dyn, ref_name=str(runs[0].path), name=str(run.path))
        if dyn.num_classes != reference.num_classes:
            raise TrainingDynamicsError(f"{run.path}: {dyn.num_classes} classes, {runs[0].path} has {reference.num_classes}")
        cols, p = run_columns(dyn, rows, burn_out=burn_out, include_ci=include_ci)
        per_run.append(cols)
        probs.append(p)
    if len(runs) == 1:
        return per_run[0], probs[0]
    logger.info("averaged %d runs over %d examples", len(runs), len(reference.guids))
    return average_columns(per_run, reference.num_classes), np.mean(probs, axis=0)
