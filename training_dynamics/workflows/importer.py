"""Turn per-epoch prediction arrays made elsewhere into a run folder (``training-dynamics import``).

One file per epoch, given in epoch order (epoch 0 first), each holding every training example once:

* ``.npy``: a float array (N, C), one row per example, one column per class (in the order of the run's
  label names: ``--class_names``, else the data's ClassLabel names, else its sorted distinct labels);
  the row order is given by ``--ids_file``: a ``.npy`` array of N ids (integers or strings) or a ``.txt``
  file of one id per line, the same for every epoch. Without ``--ids_file`` row i is the example with
  guid i (the data's ``idx``/``guid`` column, else its row index).
* ``.parquet`` (or ``.jsonl``): one row per example, an id column (``guid``, ``idx`` or ``id``) and a
  list column: ``probabilities`` (also ``probs``, ``pred_probs``) or ``logits``, which says which it holds.
  Rows may come in any order.

Values are probabilities (each row sums to 1: softmax outputs, cleanlab's ``pred_probs``) or logits
(``--values logits``, or a ``logits`` column). Probabilities are stored as log-probabilities
(:mod:`training_dynamics.workflows.recorder_api`): every metric is the one the logits would give. The examples are
bound to the training data exactly as a ``record`` run's (:class:`~training_dynamics.workflows.recorder_api.Recorder`
writes the folder), so every command works on the result.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from training_dynamics.core.ids import as_guids
from training_dynamics.workflows.recorder_api import Recorder, RecorderError

logger = logging.getLogger(__name__)

ARRAY_SUFFIXES = (".npy", ".parquet", ".jsonl")
ID_COLUMNS = ("guid", "idx", "id")
PROB_COLUMNS = ("probabilities", "probs", "pred_probs")
LOGIT_COLUMNS = ("logits",)
VALUES = ("probabilities", "logits")
_INT = re.compile(r"-?(0|[1-9][0-9]{0,17})")


class ImportFilesError(RecorderError):
    """An epoch file or ids file that cannot be imported (one line naming the file)."""


def read_ids(path: str | os.PathLike) -> np.ndarray:
    """The ids of an ``--ids_file``: a ``.npy`` array, or a ``.txt`` file of one id per line (integers when
    every line is one, else strings)."""
    path = Path(path)
    if not path.is_file():
        raise ImportFilesError(f"{path}: no such file")
    if path.suffix.lower() == ".npy":
        try:
            ids = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise ImportFilesError(f"{path}: not a plain .npy array of ids ({exc}); save ints or strings") from None
    else:
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        ids = np.asarray([int(x) for x in lines]) if all(_INT.fullmatch(x) for x in lines) else np.asarray(lines)
    if ids.ndim != 1:
        raise ImportFilesError(f"{path}: ids must be one-dimensional, got shape {ids.shape}")
    return as_guids(ids)


def read_epoch_values(path: str | os.PathLike, *, ids: np.ndarray | None, values: str) -> tuple[np.ndarray, np.ndarray, str]:
    """``(ids (N,), values (N, C), "probabilities" | "logits")`` of one epoch file (module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise ImportFilesError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix not in ARRAY_SUFFIXES:
        raise ImportFilesError(f"{path}: unsupported epoch file {suffix!r}; use .npy (with --ids_file), .parquet or .jsonl")
    if suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise ImportFilesError(f"{path}: not a plain .npy array ({exc})") from None
        if arr.ndim != 2:
            raise ImportFilesError(f"{path}: expected an (examples, classes) array, got shape {arr.shape}")
        if ids is None:
            ids = np.arange(len(arr))
        if len(ids) != len(arr):
            raise ImportFilesError(f"{path}: {len(arr)} rows but the ids file has {len(ids)} ids")
        return ids, arr.astype(np.float64), values
    import pandas as pd

    df = pd.read_parquet(path) if suffix == ".parquet" else pd.read_json(path, lines=True, dtype=False)
    id_col = next((c for c in ID_COLUMNS if c in df.columns), None)
    if id_col is None:
        raise ImportFilesError(f"{path}: no id column (looked for {', '.join(ID_COLUMNS)}; columns: {', '.join(df.columns)})")
    col = next((c for c in (*PROB_COLUMNS, *LOGIT_COLUMNS) if c in df.columns), None)
    if col is None:
        raise ImportFilesError(f"{path}: no values column (a list per row: {', '.join(PROB_COLUMNS + LOGIT_COLUMNS)}; "
                           f"columns: {', '.join(df.columns)})")
    try:
        arr = np.stack([np.asarray(v, dtype=np.float64) for v in df[col]])
    except ValueError:
        raise ImportFilesError(f"{path}: column {col!r} must hold a list of numbers of the same length per row") from None
    return as_guids(df[id_col].to_numpy()), arr, "logits" if col in LOGIT_COLUMNS else "probabilities"


def import_run(run_dir: str | os.PathLike, epoch_files: Sequence[str | os.PathLike], *, data=None,
               train_file: str | None = None, ids_file: str | os.PathLike | None = None, values: str = "probabilities",
               text_columns: Sequence[str] | None = None, label_column: str | None = None,
               label_names: Sequence[str] | None = None, model_name: str | None = None, fmt: str = "jsonl",
               overwrite: bool = False) -> Path:
    """Write the run folder ``run_dir`` from per-epoch files (module docstring); returns its dynamics folder.

    Every file is read and checked before the run folder is touched (a bad epoch 2 leaves nothing behind).
    """
    if values not in VALUES:
        raise ImportFilesError(f"values must be one of {', '.join(VALUES)}, not {values!r}")
    if not epoch_files:
        raise ImportFilesError("give one file per epoch (epoch 0 first)")
    ids = read_ids(ids_file) if ids_file is not None else None
    epochs = [read_epoch_values(p, ids=ids, values=values) for p in epoch_files]
    with Recorder(run_dir, data=data, train_file=train_file, text_columns=text_columns, label_column=label_column,
                  label_names=label_names, num_epochs=len(epochs), model_name=model_name, fmt=fmt,
                  overwrite=overwrite) as rec:
        for write in (False, True):  # check every epoch first, then write
            for path, (ids_e, arr, kind) in zip(epoch_files, epochs):
                if len(ids_e) != len(rec.guids) or len(np.unique(ids_e)) != len(ids_e):
                    raise ImportFilesError(f"{path}: {len(ids_e)} rows ({len(np.unique(ids_e))} distinct ids) but the "
                                           f"training data has {len(rec.guids)} examples: each epoch file holds every "
                                           "example once")
                try:
                    rec.log_batch(ids_e, **({"logits": arr} if kind == "logits" else {"probs": arr}))
                except RecorderError as exc:
                    raise ImportFilesError(f"{path}: {exc}") from None
                if write:
                    rec.end_epoch()
                else:
                    rec.discard_epoch(quiet=True)
        folder = rec.writer.dynamics_dir
    logger.info("imported %d epochs of %d examples into %s", len(epochs), len(rec.guids), folder)
    return folder
