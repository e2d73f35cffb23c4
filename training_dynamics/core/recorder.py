"""Record training dynamics: every training example's logits, once per epoch.

Two pieces:

* :class:`DynamicsRecorder` knows nothing about the Trainer (like ``aum.AUMCalculator``): a
  preallocated (N, C) buffer on the model's device, filled by row index. Filling is a device-side
  scatter (no host sync per step); a sample seen twice (sampler padding in DDP) just overwrites.
* :class:`DynamicsTrainer` is a ``transformers.Trainer`` that feeds it, either from the training
  forward pass itself (``td_mode="in_training"``: dropout on, no extra compute, as in the paper's
  code) or from one extra eval-mode, no-grad pass after each epoch (``td_mode="post_epoch"``), and
  writes ``dynamics_epoch_<e>.jsonl`` atomically at each epoch end (main process only).

Nothing recorded is lost or mixed:

* A new recording (no ``resume_from_checkpoint``) refuses a ``training_dynamics`` folder that holds
  epoch files unless ``overwrite_dynamics``; even then it writes into a staging folder beside it
  (``.training_dynamics.new``) and swaps it in only once its epoch 0 is complete, so an interrupted
  first epoch leaves the old run as it was, and the folder never holds epochs of two runs.
* A resumed recording keeps the epochs before the checkpoint; an epoch whose file was not written
  (a kill during the write) is written from the checkpoint's recorded rows.
* A full disk ends the run with :class:`DiskFullError`, one line naming the file; the files written
  before are intact (every write is atomic).
"""

from __future__ import annotations

import errno
import logging
import math
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import Trainer, TrainerCallback

from training_dynamics.core import dynamics_file, fileio
from training_dynamics.core.errors import TrainingDynamicsError
from training_dynamics.core.binding import BINDING_NAME
from training_dynamics.core.run_writer import (RunWriter, check_dynamics_dir, epoch_files, recover_swap, staging_dir,  # noqa: F401
                         swap_in)

logger = logging.getLogger(__name__)

ROW = "td_row"  #: column added to the training set: the example's row, so logits land in its slot
TD_MODES = ("in_training", "post_epoch")
PARTIAL_NAME = "td_partial_epoch.pt"  #: a mid-epoch checkpoint's recorded rows, for exact resume


class DynamicsRecorder:
    """Per-epoch logits buffer for ``N`` examples and ``C`` classes, filled by row index.

    Args:
        guids: (N,) stable example ids (integers or strings), in row order.
        gold: (N,) label ids the model is trained on.
        num_labels: number of classes ``C``.
    """

    def __init__(self, guids: np.ndarray, gold: np.ndarray, num_labels: int):
        self.guids = dynamics_file.as_guids(guids)
        self.gold = np.asarray(gold, dtype=np.int64)
        if self.guids.shape != self.gold.shape or self.guids.ndim != 1:
            raise ValueError(f"guids {self.guids.shape} and gold {self.gold.shape} must be equal 1-d shapes")
        if len(np.unique(self.guids)) != len(self.guids):
            raise ValueError("guids must be unique")
        self.num_labels = int(num_labels)
        self._logits: torch.Tensor | None = None
        self._filled: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.guids)

    def reset(self) -> None:
        """Forget the current epoch (buffers are reallocated lazily on the next update)."""
        self._logits = self._filled = None

    def _alloc(self, device: torch.device) -> None:
        n = len(self.guids)
        self._logits = torch.zeros(n, self.num_labels, dtype=torch.float32, device=device)
        self._filled = torch.zeros(n, dtype=torch.int32, device=device)

    def update(self, rows: torch.Tensor, logits: torch.Tensor) -> None:
        """Store ``logits`` (B, C) of rows ``rows`` (B,). Detached; stays on the logits' device."""
        logits = logits.detach()
        if self._logits is None or self._logits.device != logits.device:
            prev = None if self._logits is None else (self._logits.to(logits.device), self._filled.to(logits.device))
            self._alloc(logits.device)
            if prev is not None:
                self._logits, self._filled = prev
        rows = rows.to(logits.device, non_blocking=True).long()
        self._logits[rows] = logits.float()
        self._filled[rows] = 1

    def state(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (N, C), filled (N,)) of this epoch so far; zeros when nothing was recorded."""
        if self._logits is None:
            self._alloc(torch.device("cpu"))
        return self._logits, self._filled

    def load_state(self, logits: torch.Tensor, filled: torch.Tensor) -> None:
        """Restore a partial epoch (from a checkpoint)."""
        self._logits, self._filled = logits.float().clone(), filled.to(torch.int32).clone()

    @staticmethod
    def merge(logits: torch.Tensor, filled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Merge per-process buffers (P, N, C) and (P, N): each row from the first process that saw it."""
        first = torch.argmax((filled > 0).int(), dim=0)  # lowest process index that filled the row
        idx = torch.arange(logits.shape[1], device=logits.device)
        return logits[first, idx], filled.max(dim=0).values

    def finalize(self, logits: torch.Tensor, filled: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(guids, logits (N, C) float32, gold) of a complete epoch; raises when rows are missing."""
        missing = np.flatnonzero(filled.cpu().numpy() == 0)
        if len(missing):
            raise RuntimeError(f"{len(missing)} of {len(self)} training examples were not recorded this epoch "
                               f"(first guid {self.guids[missing[0]]})")
        return self.guids, logits.cpu().numpy().astype(np.float32), self.gold


def _logits_of(outputs: Any) -> torch.Tensor:
    return outputs["logits"] if isinstance(outputs, dict) else outputs[1]


class DiskFullError(TrainingDynamicsError, OSError):
    """The disk filled up while writing dynamics; the message (one line) names the file."""


@contextmanager
def _naming_full_disk(path: Path) -> Iterator[None]:
    """Turn "no space left on device" while writing ``path`` into a :class:`DiskFullError` naming it."""
    try:
        yield
    except DiskFullError:
        raise
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFullError(f"{path}: cannot write, the disk is full (no space left on device); "
                                "the files written before are intact") from exc
        raise


def load_partial(path: str | os.PathLike) -> dict:
    """A checkpoint's ``td_partial_epoch.pt``: ``{"epoch": int, "logits": (N, C), "filled": (N,)}``.

    Loaded with ``weights_only=True``: it holds only tensors and ints, so nothing else is unpickled.
    """
    return torch.load(path, map_location="cpu", weights_only=True)


class DynamicsTrainer(Trainer):
    """A ``Trainer`` that records every training example's logits once per epoch.

    Extra keyword arguments (everything else goes to ``transformers.Trainer``):
        dynamics_dir: where ``dynamics_epoch_<e>.jsonl`` and ``dynamics_meta.json`` go.
        td_mode: ``"in_training"`` (default) or ``"post_epoch"`` (see module docstring).
        td_format: ``"jsonl"`` (seed format, default) or ``"npz"``.
        dynamics_meta: extra fields for ``dynamics_meta.json`` (label names, data source, ...).
        overwrite_dynamics: let a new (not resumed) recording replace epoch files already in
            ``dynamics_dir`` (else ``train`` raises ``FileExistsError``); they are replaced only once
            the new run completes its first epoch.

    The training dataset needs a ``label`` (or ``labels``) column; its ``guid`` (or ``idx``) column
    gives the example ids, else the row index does. A ``td_row`` column is added so the ids survive
    ``remove_unused_columns``.
    """

    def __init__(self, *args, dynamics_dir: str | os.PathLike | None = None, td_mode: str = "in_training",
                 td_format: str = "jsonl", dynamics_meta: dict | None = None, overwrite_dynamics: bool = False,
                 writer: RunWriter | None = None, binding=None, **kwargs):
        if td_mode not in TD_MODES:
            raise TrainingDynamicsError(f"td_mode must be one of {TD_MODES}, not {td_mode!r}")
        if td_format not in dynamics_file.FORMATS:
            raise TrainingDynamicsError(f"td_format must be one of {dynamics_file.FORMATS}, not {td_format!r}")
        super().__init__(*args, **kwargs)
        if self.train_dataset is None:
            raise TrainingDynamicsError("DynamicsTrainer needs a train_dataset")
        if self.args.dataloader_drop_last:
            raise TrainingDynamicsError("dataloader_drop_last drops training examples every epoch, so their dynamics would be "
                             "missing; set it to false to record training dynamics")
        ds = self.train_dataset
        id_col = next((c for c in ("guid", "idx") if c in ds.column_names), None)
        guids = np.asarray(ds[id_col]) if id_col else np.arange(len(ds))
        self.recorder = self._make_recorder(ds, guids)
        drop = [c for c in (id_col, ROW) if c is not None and c in ds.column_names]
        self.train_dataset = ds.remove_columns(drop).add_column(ROW, list(range(len(ds))))
        if writer is None:
            if dynamics_dir is None:
                raise ValueError("DynamicsTrainer needs a run writer (writer=RunWriter(run_dir)) or a dynamics_dir")
            writer = RunWriter(Path(dynamics_dir).parent, dynamics_dir=dynamics_dir)
        self.writer = writer
        self.dynamics_dir = writer.dynamics_dir
        self.binding = binding  #: the examples recorded on (binding.Binding), kept in the run folder
        self.td_mode, self.td_format = td_mode, td_format
        self.dynamics_meta = dict(dynamics_meta or {})
        self.overwrite_dynamics = overwrite_dynamics
        self._td_epoch = 0
        self._td_resume: str | None = None
        self.epochs_written: list[int] = []  #: epochs the last ``train`` call wrote
        self.add_callback(_RecordEachEpoch(self))

    # -- what is recorded (a subclass records something else: see kinds/<kind>/record.py) ------------------
    def _make_recorder(self, ds, guids: np.ndarray) -> DynamicsRecorder:
        """The buffer for the training set ``ds``: one logit per class per example, and its gold label."""
        label_col = next((c for c in ("label", "labels") if c in ds.column_names), None)
        if label_col is None:
            raise TrainingDynamicsError("the training dataset needs a 'label' column to record gold labels")
        return DynamicsRecorder(guids, np.asarray(ds[label_col]), self.model.config.num_labels)

    def _record(self, rows: torch.Tensor, outputs: Any, labels: torch.Tensor | None) -> None:
        """Store what a forward pass says about the examples ``rows``: their logits."""
        self.recorder.update(rows, _logits_of(outputs))

    def _write_epoch_file(self, epoch: int, guids: np.ndarray, values: np.ndarray, gold: np.ndarray) -> Path:
        return dynamics_file.write_epoch(self._td_out, epoch, guids, values, gold, device=str(self.args.device),
                                         fmt=self.td_format)

    def _meta_fields(self) -> dict:
        """What ``dynamics_meta.json`` says about the recorded values."""
        return {"num_labels": self.recorder.num_labels,
                "label_names": [self.model.config.id2label.get(i, str(i)) for i in range(self.recorder.num_labels)]}

    # -- capture ----------------------------------------------------------------------------
    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        if ROW not in self._signature_columns:
            self._signature_columns.append(ROW)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """The Trainer's loss, unchanged; in ``in_training`` mode the batch's logits are recorded."""
        rows = inputs.pop(ROW, None)
        labels = inputs.get("labels")  # before the Trainer's label smoother or loss function pops them
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        if rows is not None and model.training and self.td_mode == "in_training":
            self._record(rows, outputs, labels)
        return (loss, outputs) if return_outputs else loss

    def _post_epoch_pass(self) -> None:
        """One eval-mode, no-grad pass over the training set, filling the recorder."""
        model = self.model
        was_training = model.training
        model.eval()
        # not get_eval_dataloader: with persistent workers it caches the loader under "eval", and
        # every later evaluate() would then run on the training set
        loader = self._get_dataloader(self.train_dataset, description="post-epoch pass",
                                      batch_size=self.args.eval_batch_size, sampler_fn=self._get_eval_sampler)
        try:
            with torch.no_grad():
                for inputs in tqdm(loader, desc=f"post-epoch pass {self._td_epoch}", leave=False,
                                   disable=bool(self.args.disable_tqdm) or not self.is_world_process_zero()):
                    inputs = self._prepare_inputs(inputs)
                    rows = inputs.pop(ROW)
                    labels = inputs.pop("labels", None)
                    with self.autocast_smart_context_manager():
                        self._record(rows, model(**inputs), labels)
        finally:
            model.train(was_training)

    def _gathered(self) -> tuple[torch.Tensor, torch.Tensor]:
        """This epoch's buffers merged over all processes (a collective call in DDP)."""
        logits, filled = self.recorder.state()
        if self.args.world_size > 1:
            dev = self.args.device
            logits, filled = logits.to(dev), filled.to(dev)
            n = logits.shape[0]
            logits = self.accelerator.gather(logits).reshape(-1, n, logits.shape[1])
            filled = self.accelerator.gather(filled).reshape(-1, n)
            return DynamicsRecorder.merge(logits, filled)
        return logits, filled

    # -- epoch bookkeeping ------------------------------------------------------------------
    def train(self, resume_from_checkpoint: str | bool | None = None, **kwargs):
        """``Trainer.train``; on resume, epochs already written are kept and a partly recorded
        epoch continues from the checkpoint's saved rows."""
        if resume_from_checkpoint is True:
            from transformers.trainer_utils import get_last_checkpoint

            resume_from_checkpoint = get_last_checkpoint(self.args.output_dir)
            if resume_from_checkpoint is None:
                raise TrainingDynamicsError(f"No valid checkpoint found in output directory ({self.args.output_dir})")
        self._td_resume = resume_from_checkpoint or None
        main = self.is_world_process_zero()
        if main:
            self.writer.acquire()
        try:
            if main:
                self.writer.recover()
            if self._td_resume is None:
                self.writer.check_new(overwrite=self.overwrite_dynamics)
            self.writer.staged = self._td_resume is None
            self.epochs_written = []
            return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)
        finally:
            if main:
                self.writer.release()

    @property
    def _td_out(self) -> Path:
        """The folder epoch files go to now (the writer's staging folder until a new run's first epoch is complete)."""
        return self.writer.out

    def _save_checkpoint(self, model, trial) -> None:
        super()._save_checkpoint(model, trial)
        if self.td_mode != "in_training":
            return
        logits, filled = self._gathered()
        if self.args.should_save and int(filled.sum()) > 0:
            path = Path(self._get_output_dir(trial=trial)) / f"checkpoint-{self.state.global_step}" / PARTIAL_NAME
            with _naming_full_disk(path), fileio.atomic_write(path, "wb") as fh:
                torch.save({"epoch": self._td_epoch, "logits": logits.cpu(), "filled": filled.cpu()}, fh)

    def _write_meta(self, epochs_completed: int) -> None:
        meta = {
            **self.dynamics_meta,
            "num_examples": len(self.recorder),
            "td_mode": self.td_mode,
            "format": self.td_format,
            "epochs_completed": epochs_completed,
            "num_train_epochs": self.args.num_train_epochs,
        }
        for key, value in self._meta_fields().items():
            meta.setdefault(key, value)
        path = self._td_out / dynamics_file.META_NAME
        with _naming_full_disk(path):
            fileio.write_json(path, meta)

    def _write_epoch(self, epoch: int, logits: torch.Tensor, filled: torch.Tensor) -> Path:
        """Write a complete epoch and the meta saying it is done (main process)."""
        guids, lg, gold = self.recorder.finalize(logits, filled)
        path = dynamics_file.epoch_path(self._td_out, epoch, self.td_format)
        with _naming_full_disk(path):
            self._write_epoch_file(epoch, guids, lg, gold)
        self._write_meta(epoch + 1)
        self.epochs_written.append(epoch)
        return path

    def _begin_training(self, state) -> None:
        first = math.floor(state.epoch + 1e-6) if state.epoch else 0
        self._td_epoch = first
        self.writer.staged = self.writer.staged or first == 0  # resumed inside epoch 0: nothing of this run to keep
        if not self.is_world_process_zero():
            return
        if self.writer.staged:
            self._begin_new_recording()
        else:
            self._begin_resumed_recording(first)

    def _begin_new_recording(self) -> None:
        """Start writing into a fresh staging folder; the dynamics folder is not touched yet."""
        staged = self.writer.begin_new()
        if self.binding is not None:
            self.binding.write(staged)
        self._write_meta(0)
        old = epoch_files(self.dynamics_dir)
        logger.info("recording the training dynamics of %d examples into %s%s", len(self.recorder), self.dynamics_dir,
                    f" (the {len(old)} epoch file(s) there are replaced once epoch 0 is complete)" if old else "")

    def recorded_epochs(self) -> list[int]:
        """The epochs with a dynamics file in :attr:`dynamics_dir`."""
        return self.writer.recorded_epochs()

    def _begin_resumed_recording(self, first: int) -> None:
        """Keep the epochs before ``first``; remove later ones and half-written temp files."""
        self.writer.begin_resumed(first)
        if self.binding is not None and not (self.dynamics_dir / BINDING_NAME).exists():
            self.binding.write(self.dynamics_dir)
        if first > 0 and (first - 1) not in self.writer.recorded_epochs():
            self._restore_epoch(first - 1)
        done = set(self.writer.recorded_epochs())
        completed = next(e for e in range(first + 1) if e not in done)
        if completed < first:
            logger.warning("%s: epoch %d has no dynamics file and the checkpoint cannot restore it; resume from "
                           "an earlier checkpoint to record it", self.dynamics_dir, completed)
        self._write_meta(completed)
        logger.info("recording the training dynamics of %d examples into %s from epoch %d on (resumed from %s)",
                    len(self.recorder), self.dynamics_dir, first, self._td_resume)

    def _restore_epoch(self, epoch: int) -> None:
        """Write ``epoch`` from the checkpoint's recorded rows when the run was killed while writing it."""
        partial = Path(self._td_resume) / PARTIAL_NAME if self._td_resume else None
        if partial is None or not partial.exists():
            return
        saved = load_partial(partial)
        if saved["epoch"] == epoch and bool((saved["filled"] > 0).all()):
            logger.warning("epoch %d has no dynamics file (interrupted while writing it?): writing it from %s",
                           epoch, partial)
            path = self._write_epoch(epoch, saved["logits"].float(), saved["filled"])
            logger.info("wrote %s (%d examples)", path, len(self.recorder))

    def _begin_epoch(self, state) -> None:
        self._td_epoch = math.floor(state.epoch + 1e-6)
        self.recorder.reset()
        partial = Path(self._td_resume) / PARTIAL_NAME if self._td_resume else None
        if partial is not None and partial.exists():
            saved = load_partial(partial)
            if saved["epoch"] == self._td_epoch:
                self.recorder.load_state(saved["logits"], saved["filled"])
                logger.info("resumed epoch %d with %d rows already recorded", self._td_epoch, int(saved["filled"].sum()))
        self._td_resume = None

    def _end_epoch(self) -> None:
        if self.td_mode == "post_epoch":
            self.recorder.reset()
            self._post_epoch_pass()
        logits, filled = self._gathered()
        complete = int((filled > 0).sum()) == len(self.recorder)
        if self.is_world_process_zero():
            if complete:
                path = self._write_epoch(self._td_epoch, logits, filled)
                self.writer.epoch_complete()
                logger.info("wrote %s (%d examples)", self.dynamics_dir / path.name, len(self.recorder))
            else:
                self._warn_incomplete(int((filled > 0).sum()))
        if complete:
            self.writer.staged = False
        self.recorder.reset()

    def _warn_incomplete(self, n_filled: int) -> None:
        """Training stopped inside an epoch (``--max_steps``): say that it gets no dynamics file."""
        cause = f"--max_steps {self.args.max_steps} ended training" if self.args.max_steps > 0 else "training ended"
        nothing = (" -- no epoch was completed, so no training dynamics were recorded"
                   if self.writer.staged or self._td_epoch == 0 else "")
        logger.warning("%s inside epoch %d (%d of %d examples seen): an incomplete epoch gets no dynamics file%s",
                       cause, self._td_epoch, n_filled, len(self.recorder), nothing)

    def _end_training(self) -> None:
        """A new run that completed no epoch leaves the dynamics folder as it was."""
        if self.is_world_process_zero():
            self.writer.abandon()
        self.writer.staged = False


class _RecordEachEpoch(TrainerCallback):
    """Registered by :class:`DynamicsTrainer` itself: epoch boundaries drive the recorder."""

    def __init__(self, trainer: DynamicsTrainer):
        self.trainer = trainer

    def on_train_begin(self, args, state, control, **kwargs):
        self.trainer._begin_training(state)

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.trainer._begin_epoch(state)

    def on_epoch_end(self, args, state, control, **kwargs):
        self.trainer._end_epoch()

    def on_train_end(self, args, state, control, **kwargs):
        self.trainer._end_training()
