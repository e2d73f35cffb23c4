"""Read, write and validate training-dynamics files (the seed's formats, see DESIGN.md).

Layout of a run folder (``dy_log/<task>/<model>``)::

    training_dynamics/dynamics_epoch_<e>.jsonl   one line per example per epoch
    training_dynamics/dynamics_meta.json         label names, data source, model, mode, epochs
    td_metrics.jsonl                             per-example metrics (td_metrics.py)
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

DYNAMICS_SUBDIR = "training_dynamics"
META_NAME = "dynamics_meta.json"
FORMATS = ("jsonl", "npz")


def dynamics_dir(run_dir: str | os.PathLike) -> Path:
    """The ``training_dynamics`` folder of a run folder."""
    return Path(run_dir) / DYNAMICS_SUBDIR


def epoch_path(dy_dir: str | os.PathLike, epoch: int, fmt: str = "jsonl") -> Path:
    """Path of the file holding epoch ``epoch`` (0-based) in format ``fmt``."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown dynamics format {fmt!r}; choose one of {FORMATS}")
    return Path(dy_dir) / f"dynamics_epoch_{epoch}.{fmt}"


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w") -> Iterator[Any]:
    """Open a temp file beside ``path``; rename it onto ``path`` only if the block succeeds.

    A crash mid-write never leaves a half file under the final name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_write(path) as fh:
        json.dump(obj, fh, indent=2, sort_keys=False)
        fh.write("\n")


def read_meta(dy_dir: str | os.PathLike) -> dict:
    """Read ``dynamics_meta.json`` from a dynamics folder; ``{}`` when there is none (seed runs)."""
    path = Path(dy_dir) / META_NAME
    if not path.exists():
        return {}
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def write_epoch(
    dy_dir: str | os.PathLike,
    epoch: int,
    guids: np.ndarray,
    logits: np.ndarray,
    gold: np.ndarray,
    *,
    device: str = "cpu",
    fmt: str = "jsonl",
) -> Path:
    """Write one epoch of dynamics atomically and return its path.

    Args:
        guids: (N,) int stable example ids.
        logits: (N, C) float logits of each example this epoch.
        gold: (N,) int label ids the model was trained on.
        device: recorded in each jsonl line, as in the seed.
        fmt: ``"jsonl"`` (seed format, default) or ``"npz"`` (binary, for scale).
    """
    guids = np.asarray(guids, dtype=np.int64)
    logits = np.asarray(logits, dtype=np.float32)
    gold = np.asarray(gold, dtype=np.int64)
    if logits.ndim != 2 or not (len(guids) == len(gold) == len(logits)):
        raise ValueError(f"shapes disagree: guids {guids.shape}, logits {logits.shape}, gold {gold.shape}")
    path = epoch_path(dy_dir, epoch, fmt)
    if fmt == "npz":
        with atomic_write(path, "wb") as fh:
            np.savez(fh, guid=guids, logits=logits, gold=gold)
        return path
    key = f"logits_epoch_{epoch}"
    dev = json.dumps(device)
    # float32 -> shortest repr via tolist() keeps full precision of what was recorded.
    rows = logits.tolist()
    with atomic_write(path) as fh:
        fh.writelines(
            f'{{"guid": {g}, "{key}": {json.dumps(r)}, "gold": {y}, "device": {dev}}}\n'
            for g, r, y in zip(guids.tolist(), rows, gold.tolist())
        )
    return path
