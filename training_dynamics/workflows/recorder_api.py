"""Record training dynamics from any training loop: plain PyTorch, Lightning, JAX, a model served elsewhere.

:class:`Recorder` is the public face of the recording the Trainer does (:class:`core.recorder.DynamicsRecorder`'s
shape: a buffer preallocated per epoch and filled by example row, so a duplicated example is harmless) with
no dependency on any framework: it takes numpy arrays, or anything with ``.detach().cpu().numpy()``
(torch tensors) or ``__array__`` (JAX, TensorFlow). It writes the same run folder a ``record`` run writes,
through the same :class:`~training_dynamics.core.run_writer.RunWriter` (lock, staging until epoch 0 is complete,
atomic files): ``dynamics_epoch_<e>.jsonl`` (or ``.npz``), ``dynamics_meta.json`` and the data binding. So
``metrics``, ``plot``, ``select``, ``find-issues``, ``review`` and ``apply`` work on it unchanged::

    rec = Recorder("dy_log/reviews/my_model", train_file="train.jsonl", num_epochs=3)
    for epoch in range(3):
        for batch in loader:
            logits = model(batch["x"])
            ...
            rec.log_batch(batch["guid"], logits, labels=batch["label"])
        rec.end_epoch()
    rec.close()          # or: with Recorder(...) as rec:

The training data: ``train_file`` (a csv/tsv/json/jsonl/parquet file or a ``save_to_disk`` folder, read as
``record`` reads it: the ids are its ``idx``/``guid`` column, else the row index), or the examples in memory
(``texts`` and ``labels``, ids 0..N-1 unless ``ids``), which are written to ``<run_dir>/train_data.jsonl``
(columns ``text``, ``label``, ``guid``) so that later commands can read them (``apply --train_file`` it).

Probabilities (``probs=``) are stored as their logarithms in the ``logits`` field: softmax(log p) = p, so
every metric computed from softmax (confidence, variability, correctness, loss, el2n) and every logit
difference (AUM: log p_gold - log p_other = logit_gold - logit_other) is the same as for the logits that
gave ``p``. A probability of 0 is stored as log(1e-12).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from training_dynamics.core import dynamics_file, fileio
from training_dynamics.core.binding import bind
from training_dynamics.core.errors import TrainingDynamicsError
from training_dynamics.core.ids import as_guids, guid_keys
from training_dynamics.core.outputs import Outputs
from training_dynamics.core.run_writer import RunWriter

logger = logging.getLogger(__name__)

DATA_NAME = "train_data.jsonl"  #: where in-memory examples (``texts``, ``labels``) are written in the run folder
PROB_FLOOR = 1e-12  #: a probability of 0 is stored as log(PROB_FLOOR)
PROB_TOLERANCE = 1e-3  #: how far from 1 a row of probabilities may sum


class RecorderError(TrainingDynamicsError):
    """A batch or an epoch the recorder cannot take (unknown ids, wrong shapes, missing examples)."""


def as_array(x: Any, dtype=None) -> np.ndarray:
    """A numpy array of a numpy array, list, torch tensor (detached, moved to the CPU) or any ``__array__``."""
    if hasattr(x, "detach"):  # torch: no import of torch needed
        x = x.detach()
        if hasattr(x, "float") and getattr(x, "is_floating_point", lambda: False)():
            x = x.float()  # bfloat16 has no numpy type
        x = x.cpu().numpy()
    return np.asarray(x, dtype=dtype)


def log_probabilities(probs: np.ndarray, *, where: str = "probs") -> np.ndarray:
    """``log(probs)`` (N, C) after checking that each row is a distribution (non-negative, sums to 1)."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2:
        raise RecorderError(f"{where}: probabilities must be (examples, classes), got shape {probs.shape}")
    if not np.isfinite(probs).all() or (probs < 0).any() or (probs > 1 + PROB_TOLERANCE).any():
        raise RecorderError(f"{where}: probabilities must lie in [0, 1]; pass raw scores as logits instead")
    sums = probs.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1) > PROB_TOLERANCE)
    if len(bad):
        raise RecorderError(f"{where}: row {int(bad[0])}'s probabilities sum to {sums[bad[0]]:.4g}, not 1; pass "
                            "softmax outputs as probabilities, or raw scores as logits")
    return np.log(np.maximum(probs, PROB_FLOOR)).astype(np.float32)


class Recorder:
    """Training dynamics of any training loop, written as a run folder every command reads.

    Args:
        run_dir: the run folder (e.g. ``dy_log/<task>/<model>``); the epoch files go to its
            ``training_dynamics/``.
        train_file: the training data file (read as ``record`` reads it); or give ``texts`` and ``labels``.
        text_columns, label_column, label_names: as ``record``'s ``--text_columns``, ``--label_column``,
            ``--class_names`` (with ``texts``: ``label_names`` fixes the class order, default sorted).
        texts, labels: (N,) the examples in memory (``labels``: names, or ids into ``label_names``).
        ids: (N,) their ids (default 0..N-1); the ids ``log_batch`` gets.
        num_epochs: the planned number of epochs (lets ``metrics`` say when a run is unfinished).
        model_name: recorded in the meta (``model_name_or_path``).
        td_mode: ``in_training`` (values from the training forward pass) or ``post_epoch`` (an extra pass).
        fmt: epoch files as ``jsonl`` or ``npz``.
        overwrite: replace dynamics already in ``run_dir`` (once this run completes its first epoch).
        data: the training data already loaded (:func:`training_dynamics.core.data.load_text_classification`),
            instead of ``train_file`` or ``texts``.

    Each ``log_batch`` copies the batch's (B, C) values to the host (one small transfer per batch); the
    Trainer's recorder (:class:`~training_dynamics.core.recorder.DynamicsRecorder`) fills a buffer on the device
    instead, and needs torch.
    """

    def __init__(self, run_dir: str | os.PathLike, *, train_file: str | os.PathLike | None = None,
                 text_columns: Sequence[str] | None = None, label_column: str | None = None,
                 label_names: Sequence[str] | None = None, texts: Sequence[str] | None = None,
                 labels: Sequence | None = None, ids: Sequence | None = None, num_epochs: int | None = None,
                 model_name: str | None = None, td_mode: str = "in_training", fmt: str = "jsonl",
                 overwrite: bool = False, data=None):
        if fmt not in dynamics_file.FORMATS:
            raise RecorderError(f"fmt must be one of {', '.join(dynamics_file.FORMATS)}, not {fmt!r}")
        if (train_file is None) == (texts is None) and data is None:
            raise RecorderError("give the training data: train_file=, or texts= and labels=")
        self.run_dir = Path(run_dir)
        self.writer = RunWriter(self.run_dir, inputs=[train_file])
        self.writer.acquire()
        try:
            self.writer.recover()
            self.writer.check_new(overwrite=overwrite)
            if data is None and texts is not None:
                data = self._write_examples(texts, labels, ids, label_names)
            elif data is None:
                from training_dynamics.core.data import load_text_classification

                data = load_text_classification(train_file=str(train_file), text_columns=text_columns,
                                                label_column=label_column, label_names=label_names)
            self.data = data
            self.guids = as_guids(data.train["guid"])
            self.gold = np.asarray(data.train["label"], dtype=np.int64)
            self.label_names = [str(n) for n in data.label_names]
            self._row_of = pd.Index(guid_keys(self.guids))
            self.fmt, self.td_mode, self.num_epochs, self.model_name = fmt, td_mode, num_epochs, model_name
            self.epoch = 0  #: the epoch being recorded now
            self.epochs_written: list[int] = []
            self._alloc()
            staged = self.writer.begin_new()
            bind(data).write(staged)
            self._write_meta(0)
        except BaseException:
            self.writer.abandon()
            self.writer.release()
            raise
        self._open = True
        logger.info("recording the training dynamics of %d examples (%d classes) into %s", len(self.guids),
                    self.num_labels, self.writer.dynamics_dir)

    # -- the data ---------------------------------------------------------------------------
    def _write_examples(self, texts, labels, ids, label_names):
        """Write in-memory examples to ``<run_dir>/train_data.jsonl`` and read them back as ``record`` would."""
        import json

        from training_dynamics.core.data import load_text_classification

        if labels is None or len(labels) != len(texts):
            raise RecorderError(f"texts= needs labels= of the same length ({len(texts)} texts, "
                                f"{'no' if labels is None else len(labels)} labels)")
        labels = as_array(labels).tolist()
        as_ids = all(isinstance(y, int) and not isinstance(y, bool) for y in labels)
        if label_names is not None and as_ids:
            labels, as_ids = [str(label_names[y]) for y in labels], False  # names: what review and apply show
        guids = np.arange(len(texts)) if ids is None else as_guids(as_array(ids))
        if len(guids) != len(texts):
            raise RecorderError(f"ids= has {len(guids)} ids for {len(texts)} texts")
        guard = Outputs("record", overwrite=True)  # ours to replace (an earlier Recorder's), never a user's file
        path = guard.check_file(self.run_dir / DATA_NAME, flag="the run folder's examples file")
        with fileio.atomic_write(path) as fh:
            for g, t, y in zip(guids.tolist(), texts, labels):
                fh.write(json.dumps({"text": str(t), "label": y if as_ids else str(y), "guid": g},
                                    ensure_ascii=False) + "\n")
        guard.written(path)
        return load_text_classification(train_file=str(path), text_columns=["text"], label_column="label",
                                        label_names=label_names)

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    # -- one epoch ----------------------------------------------------------------------------
    def _alloc(self) -> None:
        self._values = np.zeros((len(self.guids), self.num_labels), dtype=np.float32)
        self._filled = np.zeros(len(self.guids), dtype=bool)

    def _rows(self, ids) -> np.ndarray:
        keys = guid_keys(as_guids(as_array(ids).reshape(-1)))
        rows = self._row_of.get_indexer(keys)
        if (rows < 0).any():
            bad = keys[int(np.flatnonzero(rows < 0)[0])]
            raise RecorderError(f"id {bad} is not an example of the training data ({len(self.guids)} examples); pass "
                                "each example's guid (its idx/guid column, else its row in the file)")
        return rows

    def log_batch(self, ids, logits=None, *, probs=None, labels=None) -> None:
        """Record one batch: ``ids`` (B,) of its examples and their ``logits`` (B, C), or ``probs`` (B, C)
        (stored as log-probabilities, see the module docstring). ``labels`` (B,), when given, are checked
        against the data's labels (ids into ``label_names``): a mismatch means the ids do not name the rows.
        An example logged twice in an epoch keeps its last values."""
        self._check_open()
        if (logits is None) == (probs is None):
            raise RecorderError("give logits= or probs= (one of them)")
        rows = self._rows(ids)
        if logits is not None:
            values = as_array(logits, np.float32)
            if not np.isfinite(values).all():
                raise RecorderError(f"epoch {self.epoch}: logits of id {self.guids[rows[0]]}'s batch are not finite "
                                    "(the loss diverged?)")
        else:
            values = log_probabilities(as_array(probs), where=f"epoch {self.epoch}")
        if values.shape != (len(rows), self.num_labels):
            raise RecorderError(f"a batch of {len(rows)} ids needs ({len(rows)}, {self.num_labels}) values (one per "
                                f"class: {', '.join(self.label_names)}), got {values.shape}")
        if labels is not None:
            given = as_array(labels, np.int64).reshape(-1)
            bad = np.flatnonzero(given != self.gold[rows])
            if len(bad):
                k = int(bad[0])
                raise RecorderError(f"id {self.guids[rows[k]]}: the batch's label is {int(given[k])} but the data's is "
                                    f"{int(self.gold[rows[k]])} ({self.label_names[self.gold[rows[k]]]}): the ids must "
                                    "name the training data's rows")
        self._values[rows] = values
        self._filled[rows] = True

    @property
    def epoch_complete(self) -> bool:
        """Whether every example was logged in the current epoch."""
        return bool(self._filled.all())

    def end_epoch(self) -> Path:
        """Write the current epoch (every example must have been logged) and start the next; returns its file."""
        self._check_open()
        missing = np.flatnonzero(~self._filled)
        if len(missing):
            raise RecorderError(f"epoch {self.epoch}: {len(missing)} of {len(self.guids)} examples were not logged "
                                f"(first id {self.guids[missing[0]]}); log every example once per epoch (no "
                                "drop_last), or call discard_epoch()")
        path = dynamics_file.write_epoch(self.writer.out, self.epoch, self.guids, self._values, self.gold,
                                         device="cpu", fmt=self.fmt)
        self._write_meta(self.epoch + 1)
        self.writer.epoch_complete()
        self.epochs_written.append(self.epoch)
        logger.info("wrote %s (%d examples)", self.writer.dynamics_dir / path.name, len(self.guids))
        self.epoch += 1
        self._alloc()
        return self.writer.dynamics_dir / path.name

    def discard_epoch(self, *, quiet: bool = False) -> None:
        """Forget what was logged in the current epoch (an epoch cut short: it gets no file)."""
        if self._filled.any() and not quiet:
            logger.warning("epoch %d: %d of %d examples logged; the incomplete epoch gets no dynamics file",
                           self.epoch, int(self._filled.sum()), len(self.guids))
        self._alloc()

    def _write_meta(self, epochs_completed: int) -> None:
        meta = {"data": {**self.data.source, "max_train_samples": None}, "label_names": self.label_names,
                "num_labels": self.num_labels, "num_examples": len(self.guids), "td_mode": self.td_mode,
                "format": self.fmt, "epochs_completed": epochs_completed, "num_train_epochs": self.num_epochs,
                "model_name_or_path": self.model_name, "recorded_with": "training_dynamics.Recorder"}
        fileio.write_json(self.writer.out / dynamics_file.META_NAME, meta)

    # -- the end ----------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if not getattr(self, "_open", False):
            raise RecorderError(f"the recorder of {self.run_dir} is closed")

    def close(self) -> None:
        """Finish: an epoch in progress gets no file; a run that completed no epoch leaves the folder as it
        was; the run folder's lock is released."""
        if not getattr(self, "_open", False):
            return
        self._open = False
        try:
            if self._filled.any():
                self.discard_epoch()
            if not self.epochs_written:
                logger.warning("%s: no epoch was completed, so no training dynamics were recorded", self.run_dir)
            self.writer.abandon()
        finally:
            self.writer.release()

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Recorder({str(self.run_dir)!r}, examples={len(self.guids)}, epoch={self.epoch})"
