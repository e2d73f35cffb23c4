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

from training_dynamics.core import binding
from training_dynamics.analysis import metrics
from training_dynamics.core.dynamics_file import Dynamics, DynamicsError
from training_dynamics.analysis.metrics import log_softmax
from training_dynamics.analysis.run import Run
from training_dynamics.core.errors import TrainingDynamicsError

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


def check_joinable(runs: Sequence[Run], *, common_epochs: bool = False) -> int | None:
    """Refuse runs that are not a join of equals: the same folder twice, runs recorded on other data
    (their bindings name other examples under a shared guid), or different epoch counts.

    Returns:
        The epochs to use from each run: ``None`` (all; every run recorded as many), or with
        ``common_epochs`` the fewest any run recorded (stated in the log).
    Raises:
        DynamicsError: one line saying which runs and why.
    """
    seen: dict = {}
    for run in runs:
        key = run.path.resolve()
        if key in seen:
            raise DynamicsError(f"{run.path} is given twice (as {seen[key]}); runs to average must be different runs")
        seen[key] = run.path
    for run in runs[1:]:
        binding.compare(runs[0].binding, run.binding, names=(str(runs[0].path), str(run.path)))
    epochs = [run.num_epochs for run in runs]
    if len(set(epochs)) > 1:
        if not common_epochs:
            raise DynamicsError(f"the runs recorded different numbers of epochs ({', '.join(map(str, epochs))}); pass "
                                "--common_epochs to average the first {} epochs of each, or --burn_out N".format(min(epochs)))
        logger.warning("--common_epochs: averaging the first %d epochs of each run (they recorded %s)", min(epochs),
                       ", ".join(map(str, epochs)))
        return min(epochs)
    return None


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
                 progress: bool = True, common_epochs: bool = False) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Metric columns and epoch-averaged probabilities (N, C), averaged over ``runs`` (one run: its own).

    The runs must be a join of equals (:func:`check_joinable`); ``common_epochs``: runs of different
    lengths are averaged over the first epochs they all recorded.
    """
    if not runs:
        raise TrainingDynamicsError("no run folders given")
    if len(runs) > 1:
        for run in runs:
            run.kind.check_joinable(run)
    check_label_names(runs)
    if len(runs) > 1:
        common = check_joinable(runs, common_epochs=common_epochs)
        if common is not None and burn_out is None:
            burn_out = common
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
