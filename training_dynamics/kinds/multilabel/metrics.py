"""Per-(example, label) and per-example training-dynamics metrics of a multi-label run.

Per pair (``td_pair_metrics.jsonl``, one row per example and label, keyed by ``guid`` and ``label``):
every column of :data:`training_dynamics.analysis.metrics.COLUMNS`, with the definitions of
:mod:`training_dynamics.analysis.metrics` applied to the pair as a binary classifier of its *given* value:
``p_e`` is the probability of the given value at epoch ``e`` (``sigmoid(z_e)`` when the example
carries the label, ``1 - sigmoid(z_e)`` when not); an epoch is correct when ``z_e > 0`` matches
the given value (``z_e = 0`` predicts "not carried"); ``aum`` is the mean of ``s z_e`` (``s`` = +1
carried, -1 not), ``el2n`` the mean of ``sqrt(2) (1 - p_e)``; ``gold`` is the given value (1 carried,
0 not) and ``last_pred`` the value predicted at the last epoch. Plus ``label_index``, ``label`` (its
name) and ``given`` (bool). ``index`` is the pair's row.

Per example (``td_metrics.jsonl``, what ``select``, ``plot`` and the review's data map read): an
example is as doubtful as its least confident label. Every :data:`~training_dynamics.analysis.metrics.COLUMNS`
column is that pair's, except ``gold``, which is the least confident label's *index* (so
``plot --facet_by_gold`` draws one map per least confident label); plus ``least_confident_label``
(its name), ``mean_confidence``, ``min_aum`` and ``num_labels_given``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from training_dynamics.core.version import __version__
from training_dynamics.analysis import metrics
from training_dynamics.kinds.multilabel.dynamics import MultiLabelDynamics, read_dynamics

logger = logging.getLogger(__name__)

PAIR_METRICS_NAME = "td_pair_metrics.jsonl"
PAIR_COLUMNS = ("guid", "label_index", "label", "given") + metrics.COLUMNS[1:]
EXAMPLE_EXTRA = ("least_confident_label", "mean_confidence", "min_aum", "num_labels_given")


def pair_metrics(dyn: MultiLabelDynamics, *, burn_out: int | None = None,
                 include_ci: bool = False) -> dict[str, np.ndarray]:
    """``{column: (N*K,) array}`` in :data:`PAIR_COLUMNS` order over the first ``burn_out`` epochs
    (example-major: the pairs of example 0, then of example 1, ...)."""
    burn_out = metrics.resolve_burn_out(burn_out, dyn.num_epochs, where=dyn.dy_dir)
    cols = metrics.aggregate_epochs(dyn.pairs_per_epoch(burn_out), dyn.pair_gold(), include_ci=include_ci)
    n, k = dyn.num_examples, dyn.num_labels
    names = np.asarray(dyn.label_names, dtype=object)
    cols |= {"guid": np.repeat(dyn.guids, k), "label_index": np.tile(np.arange(k), n),
             "label": np.tile(names, n), "given": dyn.given.reshape(-1).astype(bool), "index": np.arange(n * k)}
    return {c: cols[c] for c in PAIR_COLUMNS}


def example_metrics(pairs: dict[str, np.ndarray], guids: np.ndarray, num_labels: int) -> dict[str, np.ndarray]:
    """``{column: (N,) array}``: :data:`~training_dynamics.analysis.metrics.COLUMNS` then :data:`EXAMPLE_EXTRA`,
    each example at its least confident label (ties: the first label), from :func:`pair_metrics`."""
    n, k = len(guids), int(num_labels)
    conf = pairs["confidence"].reshape(n, k)
    worst = np.argmin(conf, axis=1)
    at = np.arange(n) * k + worst
    out = {c: pairs[c][at] for c in metrics.COLUMNS if c not in ("guid", "index", "gold")}
    out |= {"guid": guids, "index": np.arange(n), "gold": worst.astype(np.int64)}
    out = {c: out[c] for c in metrics.COLUMNS}
    out |= {"least_confident_label": pairs["label"][at], "mean_confidence": conf.mean(axis=1),
            "min_aum": pairs["aum"].reshape(n, k).min(axis=1),
            "num_labels_given": pairs["given"].reshape(n, k).sum(axis=1).astype(np.int64)}
    return out


def training_summary(dyn: MultiLabelDynamics) -> dict[str, np.ndarray]:
    """Per recorded epoch, over all (example, label) pairs: the mean BCE loss and the label accuracy
    (``num_examples`` = examples; ``num_pairs`` = pairs)."""
    e = dyn.num_epochs
    return {"epoch": np.arange(e), "loss": -dyn.logprob.mean(axis=(0, 1)),
            "accuracy": (dyn.margin > 0).mean(axis=(0, 1)), "num_examples": np.full(e, dyn.num_examples),
            "num_pairs": np.full(e, dyn.num_examples * dyn.num_labels)}


def write_run_metrics(run, *, burn_out: int | None = None, include_ci: bool = False,
                      progress: bool = True) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """:meth:`training_dynamics.analysis.run.Run.write_metrics` of a multi-label run: ``td_metrics.jsonl`` (examples),
    ``td_pair_metrics.jsonl`` (pairs), ``td_training_summary.jsonl`` and the settings."""
    t0 = time.perf_counter()
    dyn = read_dynamics(run.require().dynamics_dir)
    run.warn_if_incomplete(dyn.num_epochs)
    burn_out = metrics.resolve_burn_out(burn_out, dyn.num_epochs, where=dyn.dy_dir)
    pairs = pair_metrics(dyn, burn_out=burn_out, include_ci=include_ci)
    examples = example_metrics(pairs, dyn.guids, dyn.num_labels)
    summary = training_summary(dyn)
    settings = {"kind": dyn.meta.get("kind"), "burn_out": burn_out, "include_ci": bool(include_ci),
                "epochs_used": list(range(burn_out)), "num_epochs_recorded": dyn.num_epochs,
                "num_examples": dyn.num_examples, "num_pairs": dyn.num_examples * dyn.num_labels,
                "num_classes": dyn.num_labels, "label_names": dyn.label_names, "columns": list(metrics.COLUMNS),
                "version": __version__, "dynamics_dir": dyn.dy_dir.name, "sources": dyn.sources}
    run.save_metrics(examples, summary, settings, output_format="jsonl", tables={PAIR_METRICS_NAME: pairs})
    logger.info("%d examples x %d labels x %d epochs: metrics in %.2fs", dyn.num_examples, dyn.num_labels,
                dyn.num_epochs, time.perf_counter() - t0)
    return examples, summary


def run_metrics(run, *, burn_out: int | None = None, include_ci: bool = False) -> dict[str, np.ndarray]:
    """The example table of a run, computed without writing anything."""
    dyn = read_dynamics(run.require().dynamics_dir)
    return example_metrics(pair_metrics(dyn, burn_out=burn_out, include_ci=include_ci), dyn.guids, dyn.num_labels)


def read_pair_metrics(run) -> "pd.DataFrame":  # noqa: F821
    """The pair table of a run: ``td_pair_metrics.jsonl`` when it is as fresh as ``td_metrics.jsonl``, else
    computed (and written) again."""
    import pandas as pd

    path = Path(run.path) / PAIR_METRICS_NAME
    settings = run.metrics_settings()
    if not (path.is_file() and run.metrics_are_fresh(burn_out=settings.get("burn_out"),
                                                     include_ci=bool(settings.get("include_ci")))):
        write_run_metrics(run)
    return pd.read_json(path, lines=True, dtype={"label": str})
