"""Record the training dynamics of a causal language model on prompt/response data.

The same recorder as for classifiers (:mod:`training_dynamics.record`: every example exactly once
per epoch, in_training or post_epoch, atomic epoch files, exact resume, DDP/FSDP gather), but what
is stored per example and epoch is a handful of numbers reduced on the device inside the training
step -- never vocabulary-sized logits -- over the tokens whose label is not ``-100`` (the response):

====================  ==========================================================================
``logprob``           mean over the tokens of log softmax(z_t)[y_t]
``token_accuracy``    share of the tokens with argmax z_t == y_t (greedy prediction right)
``margin``            mean of z_t[y_t] - max_{v != y_t} z_t[v]
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

from transformers import Trainer

from . import clm_data, dynamics_file
from .record import ROW, DynamicsRecorder, DynamicsTrainer, _logits_of

IGNORE_INDEX = -100


def _labelled(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int):
    """(rows, logits (M, V) as float, targets (M,)) of the M positions that predict a labelled token
    (position t predicts token t + 1): prompt and padding are never touched."""
    target = labels[:, 1:].to(logits.device)
    rows, cols = (target != ignore_index).nonzero(as_tuple=True)
    return rows, logits[rows, cols].float(), target[rows, cols]


@torch.no_grad()
def _per_sequence(rows: torch.Tensor, batch: int, z: torch.Tensor, y: torch.Tensor, gold: torch.Tensor,
                  logp: torch.Tensor) -> torch.Tensor:
    """(batch, 4): token values averaged per sequence, and the token count (one top-2 over the vocabulary)."""
    top = z.topk(2, dim=-1)
    correct = top.indices[:, 0] == y
    per_token = torch.stack([logp, correct.float(), gold - torch.where(correct, top.values[:, 1], top.values[:, 0])], 1)
    sums = torch.zeros(batch, 3, dtype=per_token.dtype, device=z.device).index_add_(0, rows, per_token)
    n = torch.bincount(rows, minlength=batch).to(sums.dtype)
    return torch.cat([sums / n.clamp(min=1.0).unsqueeze(1), n.unsqueeze(1)], dim=1)


@torch.no_grad()
def token_stats(logits: torch.Tensor, labels: torch.Tensor, *, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """(B, 4) per-sequence values of :data:`dynamics_file.GENERATIVE_VALUES` from a causal LM's
    logits (B, T, V) and its labels (B, T) (unshifted, as passed to the model; ``ignore_index`` = no loss).

    Only the positions that predict a labelled token are touched: one log-sum-exp, one top-2 and one
    gather over their logits, on the logits' device.
    """
    rows, z, y = _labelled(logits.detach(), labels, ignore_index)
    gold = z.gather(1, y.unsqueeze(1)).squeeze(1)
    return _per_sequence(rows, labels.shape[0], z, y, gold, gold - torch.logsumexp(z, dim=-1))


def causal_lm_loss_and_stats(logits: torch.Tensor, labels: torch.Tensor, num_items_in_batch=None, *,
                             ignore_index: int = IGNORE_INDEX) -> tuple[torch.Tensor, torch.Tensor]:
    """transformers' causal LM loss (``ForCausalLMLoss``: the summed token NLL / ``num_items_in_batch``,
    else its mean) and :func:`token_stats`, sharing one log-sum-exp: recording in the training step
    then costs one top-2 over the labelled positions' logits."""
    rows, z, y = _labelled(logits, labels, ignore_index)
    gold = z.gather(1, y.unsqueeze(1)).squeeze(1)
    nll = torch.logsumexp(z, dim=-1) - gold
    if num_items_in_batch is None:
        loss = nll.mean()
    else:
        loss = nll.sum() / (num_items_in_batch.to(nll.device) if torch.is_tensor(num_items_in_batch) else num_items_in_batch)
    stats = _per_sequence(rows, labels.shape[0], z.detach(), y, gold.detach(), -nll.detach())
    return loss, stats


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
            raise ValueError("the training dataset needs a 'labels' column (token ids; -100 where no loss is taken)")
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
