"""Per-example training-dynamics metrics (data-map coordinates), vectorised over (N, E, C) arrays.

Definitions (DESIGN.md), over the first ``burn_out`` epochs ``e = 0..E-1`` (E = ``burn_out``;
default all recorded epochs), with ``z_e`` the logits of an example at epoch ``e``, ``y`` its gold
label and ``p_e = softmax(z_e)[y]`` computed as ``exp(log_softmax(z_e)[y])`` (max-shifted, stable):

- ``confidence``          mean_e p_e
- ``variability``         population std of p_e (ddof 0); with ``include_ci``
                          sqrt(var + var**2 / (E - 1)) as in the seed; for E = 1 both are 0
                          (a single value has no spread; no division by zero).
- ``correctness``         number of epochs with argmax(z_e) == y; ties go to the lowest class
                          index (``np.argmax``), so a tie counts as correct only if y is the lowest.
- ``forgetfulness``       number of correct -> incorrect transitions between consecutive epochs;
                          1000 when the example is never predicted correctly (the seed's value) --
                          use the explicit boolean column ``never_learned`` instead of testing 1000.
- ``threshold_closeness`` confidence * (1 - confidence)
- ``never_learned``       correctness == 0
- ``loss``                mean_e of the cross-entropy -log p_e
- ``aum``                 mean_e of z_e[y] - max_{c != y} z_e[c]  (area under the margin, Pleiss et
                          al. 2020; negative = the model prefers another class)
- ``aleatoric``           mean_e p_e (1 - p_e)  (Data-IQ, Seedat et al. 2022)
- ``el2n``                mean_e ||softmax(z_e) - onehot(y)||_2  (Paul et al. 2021 score one
                          network early in training over several seeds; here the average over the
                          recorded epochs of one run)
- ``last_pred``           argmax(z_{E-1}): the prediction at the last epoch used
- ``gold``                y

``td_metrics.jsonl`` holds one line per example, in the order of the first epoch file; ``index``
is the position of the example in that file (the seed's meaning; for this project's writer, the
training row order).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np

from . import dynamics_file, fileio, __version__
from .dynamics_file import Dynamics, DynamicsError

if TYPE_CHECKING:  # pandas is imported only where a DataFrame is made: td_metrics.py starts faster without it
    import pandas as pd

logger = logging.getLogger(__name__)

METRICS_NAME = "td_metrics.jsonl"
SETTINGS_NAME = "td_metrics_settings.json"
SUMMARY_NAME = "td_training_summary.jsonl"
NEVER_LEARNED_FORGETFULNESS = 1000
SEED_COLUMNS = ("guid", "index", "threshold_closeness", "confidence", "variability", "correctness", "forgetfulness")
EXTRA_COLUMNS = ("never_learned", "loss", "aum", "aleatoric", "el2n", "last_pred", "gold")
COLUMNS = SEED_COLUMNS + EXTRA_COLUMNS
_INT_COLUMNS = ("guid", "index", "correctness", "forgetfulness", "last_pred", "gold")


def _reduce_classes(ufunc: np.ufunc, x: np.ndarray) -> np.ndarray:
    """``ufunc.reduce`` over the last (class) axis: (..., C) -> (...).

    With few classes, a loop over the classes (each step vectorised over all examples and epochs)
    is several times faster than numpy's reduction over a short inner axis.
    """
    if x.shape[-1] > 32:
        return ufunc.reduce(x, axis=-1)
    return functools.reduce(ufunc, (x[..., c] for c in range(x.shape[-1])))


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Numerically stable log-softmax over the last axis (shape kept)."""
    shifted = logits - _reduce_classes(np.maximum, logits)[..., None]
    return shifted - np.log(_reduce_classes(np.add, np.exp(shifted)))[..., None]


def per_epoch_arrays(logits: np.ndarray, gold: np.ndarray, *, block: int = 1 << 13) -> dict[str, np.ndarray]:
    """What each epoch says about each example: ``{name: (N, E) array}``.

    - ``logp_gold``: log softmax(z_e)[y] (max-shifted, stable); ``p_e = exp(logp_gold)``;
    - ``pred``: argmax z_e, ties to the lowest class index;
    - ``margin``: z_e[y] - max_{c != y} z_e[c];
    - ``el2n``: ||softmax(z_e) - onehot(y)||_2.

    Args:
        logits: (N, E, C) float logits; gold: (N,) int label ids in 0..C-1.
        block: examples per step. Working on blocks that fit in the CPU cache (each step still
            vectorised over its examples, epochs and classes) is faster than whole-array temporaries.
    """
    logits = np.asarray(logits, dtype=np.float64)
    gold = np.asarray(gold, dtype=np.int64)
    n, n_epochs, _ = logits.shape
    out = {"logp_gold": np.empty((n, n_epochs)), "pred": np.empty((n, n_epochs), dtype=np.int64),
           "margin": np.empty((n, n_epochs)), "el2n": np.empty((n, n_epochs))}
    for start in range(0, n, block):
        stop = min(start + block, n)
        for name, values in _per_epoch_block(logits[start:stop], gold[start:stop]).items():
            out[name][start:stop] = values
    return out


def _per_epoch_block(logits: np.ndarray, gold: np.ndarray) -> dict[str, np.ndarray]:
    rows = np.arange(len(gold))
    shifted = logits - _reduce_classes(np.maximum, logits)[..., None]    # (N, E, C), max 0
    probs = np.exp(shifted)
    total = _reduce_classes(np.add, probs)                              # (N, E), >= 1
    logp_gold = shifted[rows, :, gold] - np.log(total)
    del shifted
    # ||softmax - onehot||^2 = sum_{c != y} q_c^2 + (1 - q_y)^2 with 1 - q_y = sum_{c != y} q_c:
    # no cancellation when q_y is close to 1.
    probs /= total[..., None]
    probs[rows, :, gold] = 0.0
    rest = _reduce_classes(np.add, probs)
    el2n = np.sqrt(_reduce_classes(np.add, probs * probs) + rest * rest)
    del probs, rest
    gold_logit = logits[rows, :, gold]
    others = logits.copy()
    others[rows, :, gold] = -np.inf
    margin = gold_logit - _reduce_classes(np.maximum, others)
    del others
    return {"logp_gold": logp_gold, "pred": logits.argmax(axis=-1), "margin": margin, "el2n": el2n}


def aggregate_epochs(per_epoch: dict[str, np.ndarray], gold: np.ndarray, *,
                     include_ci: bool = False) -> dict[str, np.ndarray]:
    """The metrics of the module docstring from :func:`per_epoch_arrays` (all its epochs are used).

    Returns:
        ``{column: (N,) array}`` for every column of :data:`COLUMNS` except ``guid`` and ``index``.
    """
    logp_gold = per_epoch["logp_gold"]
    n_epochs = logp_gold.shape[1]
    p = np.exp(logp_gold)                                               # (N, E)
    confidence = p.mean(axis=1)
    var = ((p - confidence[:, None]) ** 2).mean(axis=1)                 # population variance (ddof 0)
    if include_ci and n_epochs > 1:
        var = var + var**2 / (n_epochs - 1)
    correct = per_epoch["pred"] == np.asarray(gold)[:, None]
    correctness = correct.sum(axis=1)
    forgotten = (correct[:, :-1] & ~correct[:, 1:]).sum(axis=1)
    never = correctness == 0
    return {
        "threshold_closeness": confidence * (1 - confidence),
        "confidence": confidence,
        "variability": np.sqrt(var),
        "correctness": correctness.astype(np.int64),
        "forgetfulness": np.where(never, NEVER_LEARNED_FORGETFULNESS, forgotten).astype(np.int64),
        "never_learned": never,
        "loss": -logp_gold.mean(axis=1),
        "aum": per_epoch["margin"].mean(axis=1),
        "aleatoric": (p * (1 - p)).mean(axis=1),
        "el2n": per_epoch["el2n"].mean(axis=1),
        "last_pred": per_epoch["pred"][:, -1].astype(np.int64),
        "gold": np.asarray(gold, dtype=np.int64),
    }


def td_metrics_from_arrays(logits: np.ndarray, gold: np.ndarray, *, include_ci: bool = False) -> dict[str, np.ndarray]:
    """Every metric of the module docstring from arrays, vectorised.

    Args:
        logits: (N, E, C) logits per example and epoch (E >= 1, C >= 2).
        gold: (N,) int label ids in 0..C-1.
        include_ci: variability as sqrt(var + var**2 / (E - 1)) (0 for E = 1).

    Returns:
        ``{column: (N,) array}`` for every column of :data:`COLUMNS` except ``guid`` and ``index``.
    """
    return aggregate_epochs(per_epoch_arrays(logits, gold), gold, include_ci=include_ci)


def resolve_burn_out(burn_out: int | None, num_epochs: int, *, where: str | os.PathLike = "") -> int:
    """``burn_out`` checked against the epochs present; ``None`` means all of them."""
    if burn_out is None:
        return num_epochs
    prefix = f"{where}: " if where else ""
    if isinstance(burn_out, bool) or not isinstance(burn_out, (int, np.integer)) or burn_out < 1:
        raise DynamicsError(f"{prefix}burn_out must be a whole number of epochs >= 1, got {burn_out!r}")
    if burn_out > num_epochs:
        raise DynamicsError(f"{prefix}burn_out {burn_out} is larger than the {num_epochs} epoch(s) recorded "
                            f"(dynamics_epoch_0..{num_epochs - 1})")
    return int(burn_out)


def td_metrics_columns(dynamics: Dynamics, *, burn_out: int | None = None, include_ci: bool = False,
                       per_epoch: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """:func:`compute_td_metrics` without pandas: ``{column: (N,) array}`` in :data:`COLUMNS` order.

    ``per_epoch``: :func:`per_epoch_arrays` of all recorded epochs, when already computed.
    """
    burn_out = resolve_burn_out(burn_out, dynamics.num_epochs, where=dynamics.dy_dir)
    if per_epoch is None:
        per_epoch = per_epoch_arrays(dynamics.logits[:, :burn_out], dynamics.gold)
    used = {k: v[:, :burn_out] for k, v in per_epoch.items()}
    cols = aggregate_epochs(used, dynamics.gold, include_ci=include_ci)
    cols |= {"guid": dynamics.guids, "index": np.arange(dynamics.num_examples)}
    return {c: cols[c] for c in COLUMNS}


def compute_td_metrics(dynamics: Dynamics, *, burn_out: int | None = None, include_ci: bool = False) -> pd.DataFrame:
    """Per-example metrics over the first ``burn_out`` epochs (all when ``None``).

    Returns:
        One row per example, in the order of the first epoch file, with the columns of
        :data:`COLUMNS`: the seed's ``guid, index, threshold_closeness, confidence, variability,
        correctness, forgetfulness`` then ``never_learned, loss, aum, aleatoric, el2n, last_pred,
        gold`` (definitions in the module docstring).

    Raises:
        DynamicsError: ``burn_out`` < 1 or larger than the number of epochs recorded.
    """
    import pandas as pd

    return pd.DataFrame(td_metrics_columns(dynamics, burn_out=burn_out, include_ci=include_ci))


def training_summary_columns(dynamics: Dynamics, *,
                             per_epoch: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """:func:`training_summary` without pandas: ``{column: (E,) array}``."""
    if per_epoch is None:
        per_epoch = per_epoch_arrays(dynamics.logits, dynamics.gold)
    acc = (per_epoch["pred"] == dynamics.gold[:, None]).mean(axis=0)
    return {"epoch": np.arange(dynamics.num_epochs), "loss": -per_epoch["logp_gold"].mean(axis=0), "accuracy": acc,
            "num_examples": np.full(dynamics.num_epochs, dynamics.num_examples)}


def training_summary(dynamics: Dynamics) -> pd.DataFrame:
    """Per recorded epoch, over all examples of that epoch: mean cross-entropy loss and accuracy.

    Covers every recorded epoch (``burn_out`` does not apply: this describes the training run).

    Returns:
        Columns ``epoch`` (0-based), ``loss`` (mean of -log softmax(z)[gold]), ``accuracy``
        (fraction with argmax == gold, ties to the lowest index), ``num_examples``.
    """
    import pandas as pd

    return pd.DataFrame(training_summary_columns(dynamics))


def _settings(dynamics: Dynamics, burn_out: int, include_ci: bool) -> dict:
    return {
        "burn_out": burn_out,
        "include_ci": bool(include_ci),
        "epochs_used": list(range(burn_out)),
        "num_epochs_recorded": dynamics.num_epochs,
        "num_examples": dynamics.num_examples,
        "num_classes": dynamics.num_classes,
        "columns": list(COLUMNS),
        "version": __version__,
        "dynamics_dir": dynamics_file.DYNAMICS_SUBDIR,
        "sources": dynamics.sources,
    }


def write_td_metrics(run_dir: str | os.PathLike, *, burn_out: int | None = None, include_ci: bool = False,
                     progress: bool = True) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Read ``<run_dir>/training_dynamics``, compute the metrics and write, atomically, into ``run_dir``:

    - ``td_metrics.jsonl``: :func:`compute_td_metrics` (one line per example, floats exact);
    - ``td_training_summary.jsonl``: :func:`training_summary` (one line per recorded epoch);
    - ``td_metrics_settings.json``: burn_out, include_ci, epochs used, and the name, size and
      mtime of every source file (plus those of ``td_metrics.jsonl``), so that
      :func:`load_td_metrics` can tell whether the metrics are stale.

    Returns:
        (metrics, summary) as ``{column: array}`` dicts (``pandas.DataFrame(metrics)`` makes the
        frame; this path avoids importing pandas).
    """
    run_dir = Path(run_dir)
    dy_dir = dynamics_file.dynamics_dir(run_dir)
    t0 = time.perf_counter()
    burn_out = resolve_burn_out(burn_out, len(dynamics_file.list_epoch_files(dy_dir)), where=dy_dir)  # before reading
    dynamics = dynamics_file.read_dynamics(dy_dir, progress=progress)
    t1 = time.perf_counter()
    per_epoch = per_epoch_arrays(dynamics.logits, dynamics.gold)  # once, for the metrics and the summary
    cols = td_metrics_columns(dynamics, burn_out=burn_out, include_ci=include_ci, per_epoch=per_epoch)
    summary = training_summary_columns(dynamics, per_epoch=per_epoch)
    t2 = time.perf_counter()
    fileio.write_jsonl_columns(run_dir / METRICS_NAME, cols)
    fileio.write_jsonl_columns(run_dir / SUMMARY_NAME, summary)
    settings = _settings(dynamics, burn_out, include_ci)
    settings["output"] = fileio.file_stat(run_dir / METRICS_NAME)
    fileio.write_json(run_dir / SETTINGS_NAME, settings)
    logger.info("%d examples x %d epochs x %d classes: read %.2fs, metrics %.2fs, write %.2fs",
                dynamics.num_examples, dynamics.num_epochs, dynamics.num_classes, t1 - t0, t2 - t1,
                time.perf_counter() - t2)
    return cols, summary


def td_metrics_are_fresh(run_dir: str | os.PathLike, *, burn_out: int | None = None,
                         include_ci: bool = False) -> bool:
    """Whether ``<run_dir>/td_metrics.jsonl`` was written for these settings from the epoch files now present.

    Compares ``td_metrics_settings.json`` with the current epoch files (names, sizes, mtimes), the
    resolved ``burn_out``, ``include_ci``, the columns and ``td_metrics.jsonl``'s own size and mtime.
    """
    run_dir = Path(run_dir)
    try:
        with open(run_dir / SETTINGS_NAME, encoding="utf-8") as fh:
            saved = json.load(fh)
        files = dynamics_file.list_epoch_files(dynamics_file.dynamics_dir(run_dir))
        current = [fileio.file_stat(p) for p in files]
        output = fileio.file_stat(run_dir / METRICS_NAME)
    except (OSError, ValueError):
        return False
    if burn_out is None:
        burn_out = len(files)
    return (isinstance(saved, dict) and saved.get("burn_out") == burn_out
            and saved.get("include_ci") == bool(include_ci) and saved.get("columns") == list(COLUMNS)
            and saved.get("sources") == current and saved.get("output") == output)


def read_td_metrics(path: str | os.PathLike) -> pd.DataFrame:
    """Read a ``td_metrics.jsonl`` written by :func:`write_td_metrics` (fast; dtypes and exact floats kept)."""
    import pyarrow as pa
    import pyarrow.json as pj

    types = {c: pa.int64() for c in _INT_COLUMNS} | {"never_learned": pa.bool_()}
    schema = pa.schema([(c, types.get(c, pa.float64())) for c in COLUMNS])
    table = pj.read_json(path, parse_options=pj.ParseOptions(explicit_schema=schema,
                                                              unexpected_field_behavior="ignore"))
    if any(table.column(c).null_count for c in COLUMNS):
        raise ValueError(f"{path}: missing values")
    return table.to_pandas()


def load_td_metrics(run_dir: str | os.PathLike, *, burn_out: int | None = None, include_ci: bool = False,
                    progress: bool = False, save: bool = True) -> pd.DataFrame:
    """The metrics of a run: ``<run_dir>/td_metrics.jsonl`` when fresh for these settings, else recomputed.

    Fresh means :func:`td_metrics_are_fresh`; otherwise :func:`write_td_metrics` recomputes and
    rewrites the files (so the next call is fast). With ``save=False`` (tools that only read a
    run) they are recomputed in memory and the files on disk are left as they are.

    Returns:
        The DataFrame of :func:`compute_td_metrics`.
    """
    import pandas as pd

    path = Path(run_dir) / METRICS_NAME
    if td_metrics_are_fresh(run_dir, burn_out=burn_out, include_ci=include_ci):
        try:
            df = read_td_metrics(path)
            logger.info("using %s (up to date)", path)
            return df
        except Exception as exc:  # damaged despite matching stats: recompute
            logger.warning("could not read %s (%s); recomputing", path, exc)
    if not save:
        dynamics = dynamics_file.read_dynamics(dynamics_file.dynamics_dir(run_dir), progress=progress)
        return compute_td_metrics(dynamics, burn_out=burn_out, include_ci=include_ci)
    return pd.DataFrame(write_td_metrics(run_dir, burn_out=burn_out, include_ci=include_ci, progress=progress)[0])
