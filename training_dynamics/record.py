"""Record training dynamics: every training example's logits, once per epoch.

Two pieces:

* :class:`DynamicsRecorder` knows nothing about the Trainer (like ``aum.AUMCalculator``): a
  preallocated (N, C) buffer on the model's device, filled by row index. Filling is a device-side
  scatter (no host sync per step); a sample seen twice (sampler padding in DDP) just overwrites.
* :class:`DynamicsTrainer` is a ``transformers.Trainer`` that feeds it, either from the training
  forward pass itself (``td_mode="in_training"``: dropout on, no extra compute, as in the paper's
  code) or from one extra eval-mode, no-grad pass after each epoch (``td_mode="post_epoch"``), and
  writes ``dynamics_epoch_<e>.jsonl`` atomically at each epoch end (main process only).
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import Trainer, TrainerCallback

from . import dynamics_file, fileio

logger = logging.getLogger(__name__)

ROW = "td_row"  #: column added to the training set: the example's row, so logits land in its slot
TD_MODES = ("in_training", "post_epoch")
PARTIAL_NAME = "td_partial_epoch.pt"  #: a mid-epoch checkpoint's recorded rows, for exact resume


class DynamicsRecorder:
    """Per-epoch logits buffer for ``N`` examples and ``C`` classes, filled by row index.

    Args:
        guids: (N,) stable example ids, in row order.
        gold: (N,) label ids the model is trained on.
        num_labels: number of classes ``C``.
    """

    def __init__(self, guids: np.ndarray, gold: np.ndarray, num_labels: int):
        self.guids = np.asarray(guids, dtype=np.int64)
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


class DynamicsTrainer(Trainer):
    """A ``Trainer`` that records every training example's logits once per epoch.

    Extra keyword arguments (everything else goes to ``transformers.Trainer``):
        dynamics_dir: where ``dynamics_epoch_<e>.jsonl`` and ``dynamics_meta.json`` go.
        td_mode: ``"in_training"`` (default) or ``"post_epoch"`` (see module docstring).
        td_format: ``"jsonl"`` (seed format, default) or ``"npz"``.
        dynamics_meta: extra fields for ``dynamics_meta.json`` (label names, data source, ...).

    The training dataset needs a ``label`` (or ``labels``) column; its ``guid`` (or ``idx``) column
    gives the example ids, else the row index does. A ``td_row`` column is added so the ids survive
    ``remove_unused_columns``.
    """

    def __init__(self, *args, dynamics_dir: str | os.PathLike, td_mode: str = "in_training",
                 td_format: str = "jsonl", dynamics_meta: dict | None = None, **kwargs):
        if td_mode not in TD_MODES:
            raise ValueError(f"td_mode must be one of {TD_MODES}, not {td_mode!r}")
        if td_format not in dynamics_file.FORMATS:
            raise ValueError(f"td_format must be one of {dynamics_file.FORMATS}, not {td_format!r}")
        super().__init__(*args, **kwargs)
        if self.train_dataset is None:
            raise ValueError("DynamicsTrainer needs a train_dataset")
        if self.args.dataloader_drop_last:
            raise ValueError("dataloader_drop_last drops training examples every epoch, so their dynamics would be "
                             "missing; set it to false to record training dynamics")
        ds = self.train_dataset
        label_col = next((c for c in ("label", "labels") if c in ds.column_names), None)
        if label_col is None:
            raise ValueError("the training dataset needs a 'label' column to record gold labels")
        id_col = next((c for c in ("guid", "idx") if c in ds.column_names), None)
        guids = np.asarray(ds[id_col]) if id_col else np.arange(len(ds))
        drop = [c for c in (id_col, ROW) if c is not None and c in ds.column_names]
        self.train_dataset = ds.remove_columns(drop).add_column(ROW, list(range(len(ds))))
        self.recorder = DynamicsRecorder(guids, np.asarray(ds[label_col]), self.model.config.num_labels)
        self.dynamics_dir = Path(dynamics_dir)
        self.td_mode, self.td_format = td_mode, td_format
        self.dynamics_meta = dict(dynamics_meta or {})
        self._td_epoch = 0
        self._td_resume: str | None = None
        self.add_callback(_RecordEachEpoch(self))

    # -- capture ----------------------------------------------------------------------------
    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        if ROW not in self._signature_columns:
            self._signature_columns.append(ROW)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """The Trainer's loss, unchanged; in ``in_training`` mode the batch's logits are recorded."""
        rows = inputs.pop(ROW, None)
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        if rows is not None and model.training and self.td_mode == "in_training":
            self.recorder.update(rows, _logits_of(outputs))
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
                                   disable=not self.is_world_process_zero()):
                    inputs = self._prepare_inputs(inputs)
                    rows = inputs.pop(ROW)
                    inputs.pop("labels", None)
                    with self.autocast_smart_context_manager():
                        self.recorder.update(rows, _logits_of(model(**inputs)))
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
                raise ValueError(f"No valid checkpoint found in output directory ({self.args.output_dir})")
        self._td_resume = resume_from_checkpoint or None
        return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)

    def _save_checkpoint(self, model, trial) -> None:
        super()._save_checkpoint(model, trial)
        if self.td_mode != "in_training":
            return
        logits, filled = self._gathered()
        if self.args.should_save and int(filled.sum()) > 0:
            folder = Path(self._get_output_dir(trial=trial)) / f"checkpoint-{self.state.global_step}"
            with fileio.atomic_write(folder / PARTIAL_NAME, "wb") as fh:
                torch.save({"epoch": self._td_epoch, "logits": logits.cpu(), "filled": filled.cpu()}, fh)

    def _write_meta(self, epochs_completed: int) -> None:
        meta = {
            **self.dynamics_meta,
            "num_examples": len(self.recorder),
            "num_labels": self.recorder.num_labels,
            "td_mode": self.td_mode,
            "format": self.td_format,
            "epochs_completed": epochs_completed,
            "num_train_epochs": self.args.num_train_epochs,
        }
        meta.setdefault("label_names", [self.model.config.id2label.get(i, str(i)) for i in range(self.recorder.num_labels)])
        fileio.write_json(self.dynamics_dir / dynamics_file.META_NAME, meta)

    def _begin_training(self, state) -> None:
        first = math.floor(state.epoch + 1e-6) if state.epoch else 0
        self._td_epoch = first
        if self.is_world_process_zero():
            self.dynamics_dir.mkdir(parents=True, exist_ok=True)
            stale = [p for p in self.dynamics_dir.glob("dynamics_epoch_*.*") if p.suffix.lstrip(".") in dynamics_file.FORMATS
                     and p.stem.rsplit("_", 1)[1].isdigit() and int(p.stem.rsplit("_", 1)[1]) >= first]
            for p in stale:
                logger.warning("removing %s from an earlier run (this run records epoch %d on)", p, first)
                p.unlink()
            self._write_meta(first)

    def _begin_epoch(self, state) -> None:
        self._td_epoch = math.floor(state.epoch + 1e-6)
        self.recorder.reset()
        partial = Path(self._td_resume) / PARTIAL_NAME if self._td_resume else None
        if partial is not None and partial.exists():
            saved = torch.load(partial, map_location="cpu", weights_only=True)  # only tensors and ints
            if saved["epoch"] == self._td_epoch:
                self.recorder.load_state(saved["logits"], saved["filled"])
                logger.info("resumed epoch %d with %d rows already recorded", self._td_epoch, int(saved["filled"].sum()))
        self._td_resume = None

    def _end_epoch(self) -> None:
        if self.td_mode == "post_epoch":
            self.recorder.reset()
            self._post_epoch_pass()
        logits, filled = self._gathered()
        if self.is_world_process_zero():
            n_filled = int((filled > 0).sum())
            if n_filled < len(self.recorder):
                logger.warning("epoch %d stopped early: %d of %d examples recorded; no dynamics file written",
                               self._td_epoch, n_filled, len(self.recorder))
            else:
                guids, lg, gold = self.recorder.finalize(logits, filled)
                path = dynamics_file.write_epoch(self.dynamics_dir, self._td_epoch, guids, lg, gold,
                                         device=str(self.args.device), fmt=self.td_format)
                self._write_meta(self._td_epoch + 1)
                logger.info("wrote %s (%d examples)", path, len(guids))
        self.recorder.reset()


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
