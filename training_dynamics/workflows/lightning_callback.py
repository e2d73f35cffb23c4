"""Record training dynamics in a PyTorch Lightning run: a callback on :class:`~training_dynamics.workflows.recorder_api.Recorder`.

The module's ``training_step`` returns its logits (or probabilities) beside the loss, and the batch (or
the returned dict) carries the examples' ids::

    def training_step(self, batch, batch_idx):
        logits = self.model(batch["x"])
        loss = F.cross_entropy(logits, batch["label"])
        return {"loss": loss, "logits": logits}

    rec = Recorder("dy_log/reviews/lit", train_file="train.jsonl", num_epochs=3)
    trainer = L.Trainer(max_epochs=3, callbacks=[TrainingDynamicsCallback(rec, ids_key="guid")])
    trainer.fit(module, loader)      # the recorder is closed when fit ends

Each completed training epoch becomes an epoch file; an epoch cut short (``max_steps``, ``limit_train_batches``)
gets none, with a warning. One process only: under DDP each process sees part of the data (refused).
Needs ``pip install lightning`` (or ``pytorch-lightning``).
"""

from __future__ import annotations

import logging

from training_dynamics.core.errors import TrainingDynamicsError

try:
    from lightning.pytorch.callbacks import Callback
except ImportError:  # pragma: no cover - the older package name
    try:
        from pytorch_lightning.callbacks import Callback
    except ImportError:
        raise TrainingDynamicsError("the Lightning callback needs Lightning: pip install lightning "
                                    "(or pip install 'training-dynamics[lightning]')") from None

logger = logging.getLogger(__name__)


class TrainingDynamicsCallback(Callback):
    """Feeds a :class:`~training_dynamics.workflows.recorder_api.Recorder` from ``training_step``'s outputs.

    Args:
        recorder: the recorder (its run folder, data and planned epochs).
        ids_key: where the batch's example ids are: a key of the returned dict, else of the batch (a dict).
        logits_key, probs_key: the returned dict's key of the logits (B, C), or of probabilities.
        labels_key: the batch's (or returned dict's) labels, checked against the data's; ``None``: not checked.
        close_on_fit_end: close the recorder (release the run folder) when ``fit`` ends.
    """

    def __init__(self, recorder, *, ids_key: str = "guid", logits_key: str = "logits", probs_key: str = "probs",
                 labels_key: str | None = "labels", close_on_fit_end: bool = True):
        super().__init__()
        self.recorder = recorder
        self.ids_key, self.logits_key, self.probs_key, self.labels_key = ids_key, logits_key, probs_key, labels_key
        self.close_on_fit_end = close_on_fit_end

    @staticmethod
    def _find(key, outputs, batch):
        if key is None:
            return None
        for source in (outputs, batch):
            if isinstance(source, dict) and key in source:
                return source[key]
        return None

    def on_train_start(self, trainer, pl_module) -> None:
        if trainer.world_size > 1:
            raise TrainingDynamicsError("TrainingDynamicsCallback records in one process; under DDP each process sees "
                                        "part of the data (run on one device, or gather ids and logits yourself)")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        ids = self._find(self.ids_key, outputs, batch)
        if ids is None:
            raise TrainingDynamicsError(f"no example ids under {self.ids_key!r} in training_step's returned dict or in "
                                        "the batch: put each example's guid in the batch (ids_key=...)")
        logits = outputs.get(self.logits_key) if isinstance(outputs, dict) else None
        probs = outputs.get(self.probs_key) if isinstance(outputs, dict) and logits is None else None
        if logits is None and probs is None:
            raise TrainingDynamicsError(f"training_step must return a dict with {self.logits_key!r} (or "
                                        f"{self.probs_key!r}) beside 'loss' for the dynamics to be recorded")
        labels = self._find(self.labels_key, outputs, batch)
        self.recorder.log_batch(ids, logits, probs=probs, labels=labels)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self.recorder.epoch_complete:
            self.recorder.end_epoch()
        else:
            self.recorder.discard_epoch()

    def on_fit_end(self, trainer, pl_module) -> None:
        if self.close_on_fit_end:
            self.recorder.close()

    def on_exception(self, trainer, pl_module, exception) -> None:
        self.recorder.close()  # the epochs written are kept; the run folder's lock is released
