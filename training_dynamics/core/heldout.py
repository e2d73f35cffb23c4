"""Held-out evidence beside the in-sample dynamics: the files of a cross-fitted run, and how find-issues uses them.

A cross-fitted run (``record --cross_fit 2``: :mod:`training_dynamics.workflows.crossfit`) trains one
model on each half of the rows and, after every epoch, scores the *other* half in eval mode. Each
example then has per-epoch held-out probabilities, stored in the run's dynamics folder as
``heldout_epoch_<e>.npz`` (``guid`` (N,), ``probabilities`` (N, C), every example exactly once per epoch;
:func:`write_heldout_epoch`, :func:`read_heldout`).

When a run has them, ``find-issues --source dynamics`` takes the *count* of wrong labels from the held-out
probabilities of the last held-out epoch (confident learning's assumption, out-of-sample probabilities,
holds there; in-sample epochs need the count window of :func:`decisions.rules.choose_count_epochs`), judges
whether that count is supported on the same probabilities (:mod:`training_dynamics.decisions.evidence`), and
compares the held-out ranking (``1 - held-out confidence``) with the dynamics' (:mod:`decisions.agreement`).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np

from training_dynamics.core import fileio
from training_dynamics.core.errors import TrainingDynamicsError

logger = logging.getLogger(__name__)

HELDOUT_RE = re.compile(r"heldout_epoch_(\d+)\.npz")


class HeldoutError(TrainingDynamicsError):
    """Held-out files that do not belong to the run (other examples, a gap, a repeat)."""


def heldout_path(dy_dir: str | os.PathLike, epoch: int) -> Path:
    return Path(dy_dir) / f"heldout_epoch_{int(epoch)}.npz"


def write_heldout_epoch(dy_dir: str | os.PathLike, epoch: int, guids: np.ndarray, probabilities: np.ndarray, *,
                        keys: dict | None = None) -> Path:
    """Write one epoch's held-out probabilities atomically: ``guids`` (R,), ``probabilities`` (R, C) rows summing to
    1. A row is an example, or a part of one named by the integer arrays ``keys`` (R,) beside its guid (a kind's
    own: the words of a sentence); every row appears exactly once."""
    guids = np.asarray(guids)
    probabilities = np.asarray(probabilities, dtype=np.float32)
    if probabilities.ndim != 2 or len(probabilities) != len(guids):
        raise ValueError(f"probabilities {probabilities.shape} must be (N, C) for {len(guids)} guids")
    all_keys = {"guid": guids, **{k: np.asarray(v, dtype=np.int64) for k, v in (keys or {}).items()}}
    if len(_sorted_keys(all_keys)[1]["guid"]) != len(guids):
        raise ValueError("a held-out epoch holds every example exactly once; guids repeat")
    path = heldout_path(dy_dir, epoch)
    with fileio.atomic_write(path, "wb") as fh:
        np.savez(fh, probabilities=probabilities, **all_keys)
    return path


def _sorted_keys(keys: dict) -> tuple[np.ndarray, dict]:
    """(row order sorting the rows by their keys, guid first, the distinct sorted keys)."""
    names = ["guid"] + sorted(k for k in keys if k != "guid")
    order = np.lexsort([keys[k] for k in reversed(names)])  # lexsort: the last key is the primary one
    sorted_cols = {k: keys[k][order] for k in names}
    if len(order) < 2:
        return order, sorted_cols
    new = np.zeros(len(order), dtype=bool)
    for v in sorted_cols.values():
        new[1:] |= v[1:] != v[:-1]
    new[0] = True
    return order, {k: v[new] for k, v in sorted_cols.items()}


def heldout_epochs(dy_dir: str | os.PathLike) -> list[Path]:
    """The held-out files of a dynamics folder in epoch order (``[]`` when it has none); a gap is an error."""
    dy_dir = Path(dy_dir)
    if not dy_dir.is_dir():
        return []
    found = {int(m.group(1)): p for p in dy_dir.iterdir() if (m := HELDOUT_RE.fullmatch(p.name))}
    if found and sorted(found) != list(range(len(found))):
        raise HeldoutError(f"{dy_dir}: held-out epochs {sorted(found)} are not 0..{len(found) - 1}; record the run again")
    return [found[e] for e in range(len(found))]


def read_heldout(dy_dir: str | os.PathLike, guids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """``(guids (N,), probabilities (N, E, C))`` of a run's held-out files, every epoch aligned to the first's
    guids (or to ``guids``, the run's examples, which they must cover exactly); ``None`` when there are none."""
    found = read_heldout_rows(dy_dir)
    if found is None:
        return None
    if guids is None:
        if set(found[0]) != {"guid"}:
            raise HeldoutError(f"{dy_dir}: held-out rows keyed by {', '.join(sorted(found[0]))}, not by example")
        return found[0]["guid"], found[1]
    return np.asarray(guids), align_heldout(found, {"guid": np.asarray(guids)}, where=dy_dir)


def align_heldout(found: tuple[dict, np.ndarray], keys: dict, *, where, exact: bool = True) -> np.ndarray:
    """(R, E, C) the held-out probabilities (:func:`read_heldout_rows`) of the rows named by ``keys`` (``guid`` and a
    kind's own keys, (R,) each), in their order. ``exact``: the rows must be all the held-out rows (the run's
    examples), else a subset of them (some left out since). A row the files do not score is one line."""
    import pandas as pd

    have, probs = found
    names = sorted(have)
    if set(keys) != set(have):
        raise HeldoutError(f"{where}: held-out rows keyed by {', '.join(names)}, not by {', '.join(sorted(keys))}")
    want = [np.asarray(keys[k]) for k in names]
    rows = pd.MultiIndex.from_arrays([have[k] for k in names]).get_indexer(pd.MultiIndex.from_arrays(want))
    if (rows < 0).any() or (exact and len(rows) != len(have["guid"])):
        missing = f"; guid {want[names.index('guid')][rows < 0][0]} missing" if (rows < 0).any() else ""
        raise HeldoutError(f"{where}: not the run's examples ({len(have['guid'])} held-out vs {len(rows)}{missing}); "
                           "record the run again")
    return probs[rows]


def read_heldout_rows(dy_dir: str | os.PathLike) -> tuple[dict, np.ndarray] | None:
    """``(keys, probabilities (R, E, C))`` of a run's held-out files, rows sorted by their keys (``guid``, then a
    kind's own); every epoch must score the same rows exactly once. ``None`` when there are none."""
    files = heldout_epochs(dy_dir)
    if not files:
        return None
    per_epoch, ref = [], None
    for path in files:
        with np.load(path, allow_pickle=False) as z:
            keys = {k: np.asarray(z[k]) for k in z.files if k != "probabilities"}
            p = np.asarray(z["probabilities"], dtype=np.float64)
        order, distinct = _sorted_keys(keys)
        if len(distinct["guid"]) != len(order):
            raise HeldoutError(f"{path}: a guid appears twice; every example is scored once per epoch")
        if ref is not None and (set(distinct) != set(ref) or len(distinct["guid"]) != len(ref["guid"])
                                or any(not np.array_equal(distinct[k], ref[k]) for k in ref)):
            have, want = distinct["guid"], ref["guid"]
            missing = np.setdiff1d(want, have)
            raise HeldoutError(f"{path}: not the run's examples ({len(have)} held-out vs {len(want)}"
                               f"{f'; guid {missing[0]} missing' if len(missing) else ''}); record the run again")
        per_epoch.append(p[order])
        ref = distinct
    return ref, np.stack(per_epoch, axis=1)


def heldout_confidence(run, guids: np.ndarray, gold: np.ndarray, *, burn_out: int | None = None) -> np.ndarray | None:
    """(N,) each example's mean held-out probability of its (given) label over the held-out epochs (within
    ``burn_out``), in the order of ``guids`` (a subset of the run's examples); ``None`` when the run has none."""
    found = read_heldout_rows(run.dynamics_dir)
    if found is None:
        return None
    probs = align_heldout(found, {"guid": np.asarray(guids)}, where=run.dynamics_dir, exact=False)
    return probs[np.arange(len(probs)), : burn_out or probs.shape[1], np.asarray(gold, dtype=np.int64)].mean(axis=1)


def heldout_count_probabilities(run, *, burn_out: int | None = None):
    """``(guids, probabilities (N, C), details)`` for ``rank_count``'s count from a run's held-out files: the last
    held-out epoch (within ``burn_out``); ``None`` when the run has none."""
    dyn = run.dynamics(progress=False)
    found = read_heldout(run.dynamics_dir, dyn.guids)
    if found is None:
        return None
    guids, probs = found
    last = probs.shape[1] - 1 if burn_out is None else min(burn_out, probs.shape[1]) - 1
    order = np.argsort(dyn.guids, kind="stable")
    gold = np.asarray(dyn.gold)[order[np.searchsorted(dyn.guids, guids, sorter=order)]]
    accuracy = [float((probs[:, e].argmax(axis=1) == gold).mean()) for e in range(probs.shape[1])]
    details = {"count_source": "held-out", "count_heldout_epoch": last,
               "heldout_accuracy": [round(a, 4) for a in accuracy]}
    logger.info("rank_count counts from the held-out probabilities of epoch %d (held-out accuracy per epoch %s)", last,
                ", ".join(f"{a:.2f}" for a in accuracy))
    return guids, probs[:, last], details
