"""Record training dynamics inside TRL's ``SFTTrainer``: TRL's data handling and loss, our recording.

Two lines in an existing SFT script::

    from training_dynamics.kinds.generative.trl import DynamicsSFTTrainer  # instead of trl's SFTTrainer
    trainer = DynamicsSFTTrainer(model=..., args=SFTConfig(...), train_dataset=ds,
                                 dynamics_dir="dy_log/sft/qwen/training_dynamics")

(or ``with_dynamics(MySFTTrainer)`` for a subclass of your own). TRL prepares the dataset (chat template,
``assistant_only_loss``, ``completion_only_loss``, truncation) and computes the loss as it always does; the
recorder takes each example's values from the per-token log-probabilities that TRL's fused LM head computes
for its loss anyway (``log_probs``, ``is_top1``, ``label_mask``), so recording costs no pass over the
vocabulary. Everything else is :class:`~training_dynamics.core.recorder.DynamicsTrainer`'s: every example exactly
once per epoch, resume, DDP, atomic files; the files are those of ``record-clm`` (per-turn values included),
so every analysis command reads the run.

``padding_free=True`` (a batch flattened into one row) is recorded per example, at the sequence starts the
position ids mark. Packing (``packing=True``) is refused: it cuts and mixes examples into rows of
``max_length`` and keeps only their tokens, so nothing says which example a token belongs to.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from training_dynamics.core.errors import TrainingDynamicsError
from training_dynamics.core.recorder import ROW, DynamicsTrainer
from training_dynamics.kinds.generative.record import GenerativeRecording, count_turns, reduce_packed, reduce_tokens

logger = logging.getLogger(__name__)


class PackingError(TrainingDynamicsError):
    """A TRL configuration that mixes examples in one row, so that their dynamics cannot be told apart."""


def _check_config(args: Any) -> None:
    if getattr(args, "packing", False):
        raise PackingError("packing=True: TRL packs several examples into one row and keeps only their tokens, so "
                           "each example's training dynamics cannot be recorded; set packing=False to record")


class _CarryRows:
    """Wraps a data collator that drops unknown keys (TRL's): ``td_row`` is passed around it."""

    def __init__(self, collator):
        self.collator = collator

    def __call__(self, features: list[dict]) -> dict:
        if not features or ROW not in features[0]:
            return self.collator(features)
        rows = torch.tensor([f[ROW] for f in features], dtype=torch.long)
        batch = self.collator([{k: v for k, v in f.items() if k != ROW} for f in features])
        batch[ROW] = rows
        return batch


class DynamicsSFTMixin(GenerativeRecording):
    """Recording for a subclass of ``trl.SFTTrainer``: ``class T(DynamicsSFTMixin, DynamicsTrainer, SFTTrainer)``
    (what :func:`with_dynamics` builds). Takes :class:`~training_dynamics.core.recorder.DynamicsTrainer`'s keyword
    arguments (``dynamics_dir``, ``td_mode``, ``td_format``, ``dynamics_meta``, ``overwrite_dynamics``).

    The training dataset's ``guid`` (or ``idx``) column gives the example ids; without one, its row index
    (before TRL's preparation) does. Examples TRL drops (e.g. left with no token to learn by truncation) are
    not recorded.
    """

    def __init__(self, *args, **kwargs):
        targs = kwargs.get("args", args[1] if len(args) > 1 else None)
        _check_config(targs)
        ds = kwargs.get("train_dataset")
        if ds is not None and not ({"guid", "idx"} & set(ds.column_names)):
            ds = kwargs["train_dataset"] = ds.add_column("guid", list(range(len(ds))))  # ids before TRL's preparation
        source = None
        if ds is not None and kwargs.get("binding") is None:  # the rows as given, before TRL's preparation
            from training_dynamics.kinds.generative.sft_data import sft_binding

            kwargs["binding"], source = sft_binding(ds, targs, guid_column="guid" if "guid" in ds.column_names
                                                    else "idx")
        self._td_rows: torch.Tensor | None = None
        self._td_truncation: dict | None = None
        super().__init__(*args, **kwargs)
        if source is not None:
            self.dynamics_meta.setdefault("data", source)
        if self._td_truncation is not None:
            self.dynamics_meta.setdefault("truncation", self._td_truncation)
            template = getattr(self.processing_class, "chat_template", None)
            if self._td_truncation["num_truncated"] and isinstance(template, str):
                self.dynamics_meta.setdefault("chat_template", template)
        if ds is not None and len(self.train_dataset) != len(ds):
            logger.warning("TRL's preparation left %d of the %d training examples; the dropped ones get no dynamics",
                           len(self.train_dataset), len(ds))
        self.data_collator = _CarryRows(self.data_collator)
        self._wrap_fused_forward()
        self.dynamics_meta.setdefault("model_name_or_path", getattr(self.model.config, "name_or_path", None))
        trl_class = next((c for c in type(self).__mro__ if c.__module__.split(".")[0] == "trl"), None)
        self.dynamics_meta.setdefault("trainer", f"trl.{trl_class.__name__}" if trl_class else type(self).__name__)

    def train(self, *args, **kwargs):
        """``Trainer.train``; a refusal (a folder that holds a recording, a locked run) advises this class's
        arguments, not the command line's flags."""
        try:
            return super().train(*args, **kwargs)
        except (FileExistsError, TrainingDynamicsError) as exc:
            advice = python_advice(str(exc))
            if advice == str(exc):
                raise
            raise type(exc)(advice) from None

    def _prepare_dataset(self, dataset, processing_class, args, packing, formatting_func, dataset_name):
        """TRL's preparation, with the training examples' lengths counted before TRL truncates them to
        ``max_length`` (as TRL does it: ``truncation_mode``, then examples left with no label dropped): the
        run's meta keeps the ``truncation`` report and a warning says how many were cut."""
        import copy

        from datasets import Dataset

        if dataset_name != "train" or packing or args.max_length is None or not isinstance(dataset, Dataset):
            return super()._prepare_dataset(dataset, processing_class, args, packing, formatting_func, dataset_name)
        whole = copy.copy(args)
        whole.max_length = None
        prepared = super()._prepare_dataset(dataset, processing_class, whole, packing, formatting_func, dataset_name)
        if "labels" not in prepared.column_names:  # a layout this does not know: TRL's own preparation
            return super()._prepare_dataset(dataset, processing_class, args, packing, formatting_func, dataset_name)
        from training_dynamics.kinds.generative.truncation import generative_truncation

        keep_end = args.truncation_mode == "keep_end"
        self._td_truncation = generative_truncation(
            [len(ids) for ids in prepared["input_ids"]], args.max_length, strategy="keep_end" if keep_end else "end",
            noun="examples", flag="max_length")
        if not self._td_truncation["num_truncated"]:
            return prepared
        sl = slice(-args.max_length, None) if keep_end else slice(None, args.max_length)
        cut = prepared.map(lambda ex: {"input_ids": ex["input_ids"][sl], "labels": ex["labels"][sl]},
                           desc=f"Truncating {dataset_name} dataset")
        return cut.filter(lambda ex: any(label != -100 for label in ex["labels"]),
                          desc=f"Dropping fully masked examples from {dataset_name} dataset")

    def _turns_of(self, ds) -> np.ndarray:
        if "labels" in ds.column_names:
            return count_turns(ds["labels"])
        return np.ones(len(ds), dtype=np.int64)  # (a prepared dataset without labels: every token is learned)

    def _wrap_fused_forward(self) -> None:
        """Record from the outputs of TRL's fused LM head (per-token log-probabilities of the labels)."""
        model = self.model
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        fused = base.forward
        if "forward" not in vars(base):  # TRL's add_fused_lm_head sets the model's own forward
            raise TrainingDynamicsError("DynamicsSFTTrainer records from TRL's fused LM head, which this trl version "
                                        "does not add to the model; pip install 'trl>=1.16'")

        def forward(*args, **kwargs):
            out = fused(*args, **kwargs)
            rows = self._td_rows
            if rows is not None and kwargs.get("fused_lm_head") and getattr(out, "label_mask", None) is not None:
                self._td_rows = None  # once per training step
                mask = out.label_mask
                correct = out.is_top1 if out.is_top1 is not None else torch.zeros_like(mask)
                logp, correct = out.log_probs.detach()[mask], correct[mask].detach()
                if mask.shape[0] == 1 and len(rows) > 1 and kwargs.get("position_ids") is not None:  # padding-free
                    stats = reduce_packed(mask, kwargs["position_ids"], logp, correct, len(rows), self.td_turns)
                else:
                    stats = reduce_tokens(mask, logp, correct, self.td_turns)
                self.recorder.update(rows, stats)
            return out

        base.forward = forward

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """TRL's ``compute_loss``, unchanged; in ``in_training`` mode its fused forward feeds the recorder."""
        rows = inputs.pop(ROW, None)
        self._td_rows = rows if (model.training and self.td_mode == "in_training") else None
        try:
            return super(DynamicsTrainer, self).compute_loss(model, inputs, return_outputs=return_outputs,
                                                             num_items_in_batch=num_items_in_batch)
        finally:
            self._td_rows = None


#: the command line's advice, as the Python API's arguments (a DynamicsSFTTrainer has no flags)
PYTHON_ADVICE = {"--overwrite_dynamics": "overwrite_dynamics=True", "--dy_model_name": "dynamics_dir=<another folder>",
                 "--dy_log_dir": "dynamics_dir",
                 "--resume_from_checkpoint": "trainer.train(resume_from_checkpoint=...)",
                 "--overwrite_output_dir": "overwrite_output_dir=True"}


def python_advice(message: str) -> str:
    """``message`` with the recording commands' flags replaced by :class:`DynamicsSFTTrainer`'s arguments."""
    import re

    return re.sub("|".join(re.escape(f) for f in sorted(PYTHON_ADVICE, key=len, reverse=True)),
                  lambda m: PYTHON_ADVICE[m.group(0)], message)


def with_dynamics(sft_trainer_class: type) -> type:
    """A subclass of ``sft_trainer_class`` (``trl.SFTTrainer`` or a subclass of it) that records training dynamics."""
    return type(f"Dynamics{sft_trainer_class.__name__}", (DynamicsSFTMixin, DynamicsTrainer, sft_trainer_class), {})


def __getattr__(name: str):
    if name == "DynamicsSFTTrainer":  # built on first use, so that importing this module needs no trl
        from trl import SFTTrainer

        cls = with_dynamics(SFTTrainer)
        cls.__module__ = __name__
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
