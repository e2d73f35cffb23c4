"""Held-out evidence beside the in-sample dynamics: the files of a cross-fitted run, and how find-issues uses them.

A cross-fitted run (``record --cross_fit 2``: :mod:`training_dynamics.workflows.crossfit`) trains one
model on each half of the rows and, after every epoch, scores the *other* half in eval mode. Each
example then has per-epoch held-out probabilities, stored in the run's dynamics folder as
``heldout_epoch_<e>.npz`` (``guid`` (N,), ``probabilities`` (N, C), every example exactly once per epoch;
:func:`write_heldout_epoch`, :func:`read_heldout`).

When a run has them, ``find-issues --source dynamics`` takes the *count* of wrong labels from the held-out
probabilities of the last held-out epoch (confident learning's assumption, out-of-sample probabilities,
holds there; in-sample epochs need the count window of :func:`decision.choose_count_epochs`), judges
whether that count is supported on the same probabilities (:mod:`training_dynamics.decisions.evidence`), and
compares the held-out ranking (``1 - held-out confidence``) with the dynamics' (:mod:`agreement`).
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


def write_heldout_epoch(dy_dir: str | os.PathLike, epoch: int, guids: np.ndarray, probabilities: np.ndarray) -> Path:
    """Write one epoch's held-out probabilities atomically: ``guids`` (N,), ``probabilities`` (N, C) rows summing to 1."""
    guids = np.asarray(guids)
    probabilities = np.asarray(probabilities, dtype=np.float32)
    if probabilities.ndim != 2 or len(probabilities) != len(guids):
        raise ValueError(f"probabilities {probabilities.shape} must be (N, C) for {len(guids)} guids")
    if len(np.unique(guids)) != len(guids):
        raise ValueError("a held-out epoch holds every example exactly once; guids repeat")
    path = heldout_path(dy_dir, epoch)
    with fileio.atomic_write(path, "wb") as fh:
        np.savez(fh, guid=guids, probabilities=probabilities)
    return path


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
    files = heldout_epochs(dy_dir)
    if not files:
        return None
    per_epoch = []
    ref = None
    for path in files:
        with np.load(path, allow_pickle=False) as z:
            g, p = np.asarray(z["guid"]), np.asarray(z["probabilities"], dtype=np.float64)
        if len(np.unique(g)) != len(g):
            raise HeldoutError(f"{path}: a guid appears twice; every example is scored once per epoch")
        want = ref if ref is not None else (np.asarray(guids) if guids is not None else g)
        if len(g) != len(want) or not np.array_equal(np.sort(g), np.sort(want)):
            missing = np.setdiff1d(want, g)
            raise HeldoutError(f"{path}: not the run's examples ({len(g)} held-out vs {len(want)}"
                               f"{f'; guid {missing[0]} missing' if len(missing) else ''}); record the run again")
        order = np.argsort(g, kind="stable")
        per_epoch.append(p[order[np.searchsorted(g, want, sorter=order)]])
        ref = want
    return ref, np.stack(per_epoch, axis=1)


def heldout_confidence(run, guids: np.ndarray, gold: np.ndarray, *, burn_out: int | None = None) -> np.ndarray | None:
    """(N,) each example's mean held-out probability of its (given) label over the held-out epochs (within
    ``burn_out``), in the order of ``guids`` (a subset of the run's examples); ``None`` when the run has none."""
    found = read_heldout(run.dynamics_dir)
    if found is None:
        return None
    held_guids, probs = found
    probs = probs[:, : burn_out or probs.shape[1]]
    order = np.argsort(held_guids, kind="stable")
    rows = order[np.minimum(np.searchsorted(held_guids, np.asarray(guids), sorter=order), len(order) - 1)]
    if not np.array_equal(held_guids[rows], np.asarray(guids)):
        raise HeldoutError(f"{run.dynamics_dir}: the held-out files do not score every recorded example; "
                           "record the run again")
    return probs[rows, :, np.asarray(gold, dtype=np.int64)].mean(axis=1)


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
