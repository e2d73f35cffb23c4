"""Record the training dynamics of a causal language model on prompt/response data.

The same recorder as for classifiers (:mod:`training_dynamics.record`: every example exactly once
per epoch, in_training or post_epoch, atomic epoch files, exact resume, DDP/FSDP gather), but what
is stored per example and epoch is a handful of numbers reduced on the device inside the training
step -- never vocabulary-sized logits -- over the tokens whose label is not ``-100`` (the response):

====================  ==========================================================================
``logprob``           mean over the tokens of log softmax(z_t)[y_t]
``token_accuracy``    share of the tokens with argmax z_t == y_t (greedy prediction right; a tie counts)
``num_tokens``        number of tokens
====================  ==========================================================================

(``z_t`` the logits predicting token ``t``, i.e. the model's output at position ``t - 1``.)

In ``in_training`` mode the loss itself is computed here (:func:`causal_lm_loss_and_stats`, the same
value as transformers' ``ForCausalLMLoss``) so that it and the recorded values share one pass over
the vocabulary; with a user's ``compute_loss_func`` or label smoothing, the model's loss is kept and
the values are computed beside it (:func:`token_stats`).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from transformers import Trainer

from . import clm_data, dynamics_file
from .record import ROW, DynamicsRecorder, DynamicsTrainer, _logits_of
from .errors import TrainingDynamicsError

IGNORE_INDEX = -100


def _shifted(labels: torch.Tensor, device, ignore_index: int) -> torch.Tensor:
    """(B, T) the token each position predicts (``labels`` moved left by one; the last position none)."""
    return F.pad(labels, (0, 1), value=ignore_index)[..., 1:].to(device)


def _token_nll(flat: torch.Tensor, target: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """(B*T,) each position's NLL of its target, 0 where none: transformers' fused cross-entropy on fp32."""
    return F.cross_entropy(flat.float(), target, ignore_index=ignore_index, reduction="none")


@torch.no_grad()
def _per_sequence(flat: torch.Tensor, target: torch.Tensor, logp: torch.Tensor, batch: int, ignore_index: int) -> torch.Tensor:
    """(batch, 3): the values of :data:`dynamics_file.GENERATIVE_VALUES` of each sequence, from the
    flattened logits (B*T, V), targets (B*T,) and each position's log-probability of its target.

    One max over the vocabulary of every position (``amax``: it keeps no index, the fast reduction).
    """
    idx = (target != ignore_index).nonzero().squeeze(1)
    correct = flat[idx, target[idx]] >= flat.amax(dim=-1)[idx]  # the greedy prediction is the target (a tie counts)
    per_token = torch.stack([logp[idx], correct.to(logp.dtype)], dim=1)
    seq = torch.div(idx, target.numel() // batch, rounding_mode="floor")
    sums = torch.zeros(batch, 2, dtype=per_token.dtype, device=flat.device).index_add_(0, seq, per_token)
    n = torch.bincount(seq, minlength=batch).to(sums.dtype)
    return torch.cat([sums / n.clamp(min=1.0).unsqueeze(1), n.unsqueeze(1)], dim=1)


@torch.no_grad()
def token_stats(logits: torch.Tensor, labels: torch.Tensor, *, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """(B, 3) per-sequence values of :data:`dynamics_file.GENERATIVE_VALUES` from a causal LM's
    logits (B, T, V) and its labels (B, T) (unshifted, as passed to the model; ``ignore_index`` = no loss)."""
    flat = logits.detach().reshape(-1, logits.shape[-1])
    target = _shifted(labels, logits.device, ignore_index).reshape(-1)
    logp = -_token_nll(flat, target, ignore_index)
    return _per_sequence(flat, target, logp, labels.shape[0], ignore_index)


def causal_lm_loss_and_stats(logits: torch.Tensor, labels: torch.Tensor, num_items_in_batch=None, *,
                             ignore_index: int = IGNORE_INDEX) -> tuple[torch.Tensor, torch.Tensor]:
    """transformers' causal LM loss (``ForCausalLMLoss``: the summed token NLL / ``num_items_in_batch``,
    else its mean) and :func:`token_stats`, from one cross-entropy: recording in the training step
    then costs one max over the vocabulary."""
    flat = logits.reshape(-1, logits.shape[-1])
    target = _shifted(labels, logits.device, ignore_index).reshape(-1)
    nll = _token_nll(flat, target, ignore_index)
    if num_items_in_batch is None:
        loss = nll.sum() / (target != ignore_index).sum()
    else:
        loss = nll.sum() / (num_items_in_batch.to(nll.device) if torch.is_tensor(num_items_in_batch) else num_items_in_batch)
    return loss, _per_sequence(flat.detach(), target, -nll.detach(), labels.shape[0], ignore_index)


class CausalLMDynamicsTrainer(DynamicsTrainer):
    """A :class:`~training_dynamics.record.DynamicsTrainer` for ``AutoModelForCausalLM`` models.

    The training dataset needs ``input_ids`` and ``labels`` (``-100`` where no loss is taken, e.g. on
    the prompt; see :func:`training_dynamics.clm_data.tokenize_generative`) and may have ``guid``.
    Writes generative epoch files (:func:`training_dynamics.dynamics_file.write_generative_epoch`)
    and ``"kind": "generative"`` in the meta.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # in_training: the loss and the recorded values share one pass over the vocabulary (the Trainer
        # calls compute_loss_func with the labels instead of letting the model compute its loss); a
        # user's own loss function or label smoothing keeps its loss, and the values are computed apart
        self._td_shared_loss = (self.td_mode == "in_training" and self.compute_loss_func is None
                                and self.label_smoother is None)
        if self._td_shared_loss:
            self.compute_loss_func = self._loss_and_record
        self._td_rows: torch.Tensor | None = None

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """The Trainer's loss; in ``in_training`` mode the batch's values are recorded."""
        if not self._td_shared_loss:
            return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)
        rows = inputs.pop(ROW, None)
        self._td_rows = rows if model.training else None
        try:
            return Trainer.compute_loss(self, model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)
        finally:
            self._td_rows = None

    def _loss_and_record(self, outputs, labels: torch.Tensor, num_items_in_batch=None) -> torch.Tensor:
        loss, stats = causal_lm_loss_and_stats(_logits_of(outputs), labels, num_items_in_batch)
        if self._td_rows is not None:
            self.recorder.update(self._td_rows, stats)
        return loss

    def _make_recorder(self, ds, guids: np.ndarray) -> DynamicsRecorder:
        if "labels" not in ds.column_names:
            raise TrainingDynamicsError("the training dataset needs a 'labels' column (token ids; -100 where no loss is taken)")
        return DynamicsRecorder(guids, np.zeros(len(guids), dtype=np.int64), len(dynamics_file.GENERATIVE_VALUES))

    def _record(self, rows: torch.Tensor, outputs, labels: torch.Tensor | None) -> None:
        if labels is None:
            raise RuntimeError("a causal LM batch without 'labels': nothing to record the dynamics of")
        self.recorder.update(rows, token_stats(_logits_of(outputs), labels))

    def _write_epoch_file(self, epoch: int, guids: np.ndarray, values: np.ndarray, gold: np.ndarray):
        return dynamics_file.write_generative_epoch(self._td_out, epoch, guids, values, device=str(self.args.device),
                                                    fmt=self.td_format)

    def _meta_fields(self) -> dict:
        return {"kind": dynamics_file.GENERATIVE, "num_labels": len(clm_data.LABEL_NAMES),
                "label_names": list(clm_data.LABEL_NAMES), "values": list(dynamics_file.GENERATIVE_VALUES)}
