"""Record the training dynamics of a causal language model on prompt/response data.

The same recorder as for classifiers (:mod:`training_dynamics.core.recorder`: every example exactly once
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

from training_dynamics.kinds.generative import dynamics as gen_dynamics
from training_dynamics.kinds.generative import data as clm_data

from training_dynamics.core.recorder import ROW, DynamicsRecorder, DynamicsTrainer, _logits_of
from training_dynamics.core.errors import TrainingDynamicsError

IGNORE_INDEX = -100

def _shifted(labels: torch.Tensor, device, ignore_index: int) -> torch.Tensor:
    """(B, T) the token each position predicts (``labels`` moved left by one; the last position none)."""
    return F.pad(labels, (0, 1), value=ignore_index)[..., 1:].to(device)

def _token_nll(flat: torch.Tensor, target: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """(B*T,) each position's NLL of its target, 0 where none: transformers' fused cross-entropy on fp32."""
    return F.cross_entropy(flat.float(), target, ignore_index=ignore_index, reduction="none")

def _means(key: torch.Tensor, per_token: torch.Tensor, size: int) -> torch.Tensor:
    """(size, 3): per key, the mean of each of the two per-token columns and the number of tokens."""
    sums = torch.zeros(size, 2, dtype=per_token.dtype, device=per_token.device).index_add_(0, key, per_token)
    n = torch.bincount(key, minlength=size).to(sums.dtype)
    return torch.cat([sums / n.clamp(min=1.0).unsqueeze(1), n.unsqueeze(1)], dim=1)

@torch.no_grad()
def _per_sequence(flat: torch.Tensor, target: torch.Tensor, logp: torch.Tensor, batch: int, ignore_index: int,
                  turns: int = 1) -> torch.Tensor:
    """(batch, 3): the values of :data:`gen_dynamics.GENERATIVE_VALUES` of each sequence, from the
    flattened logits (B*T, V), targets (B*T,) and each position's log-probability of its target.

    ``turns`` K > 1: (batch, 3 + 3K), then the same three values of each sequence's first K runs of
    learned tokens (its assistant turns; a run past the K-th counts to the K-th; 0 tokens: no such turn).
    One max over the vocabulary of every position (``amax``: it keeps no index, the fast reduction).
    """
    valid = target != ignore_index
    idx = valid.nonzero().squeeze(1)
    correct = flat[idx, target[idx]] >= flat.amax(dim=-1)[idx]  # the greedy prediction is the target (a tie counts)
    return reduce_tokens(valid.view(batch, -1), logp[idx], correct, turns)

@torch.no_grad()
def reduce_tokens(learned: torch.Tensor, logp: torch.Tensor, correct: torch.Tensor, turns: int = 1) -> torch.Tensor:
    """(B, 3) or (B, 3 + 3K) values (see :func:`_per_sequence`) from per-token scores.

    Args:
        learned: (B, T) bool, the positions with a target (row-major order defines the tokens).
        logp, correct: (M,) each learned position's log-probability of its target and whether the greedy
            prediction is the target, M = ``learned.sum()``, in row-major order.
    """
    batch, width = learned.shape
    idx = learned.reshape(-1).nonzero().squeeze(1)
    seq = torch.div(idx, width, rounding_mode="floor")
    return _combine(learned, idx, seq, logp, correct, batch, turns)

def _combine(learned: torch.Tensor, idx: torch.Tensor, seq: torch.Tensor, logp: torch.Tensor, correct: torch.Tensor,
             batch: int, turns: int) -> torch.Tensor:
    """The per-sequence (and per-turn) values of the learned positions ``idx`` (flat) of sequences ``seq``."""
    per_token = torch.stack([logp.float(), correct.float()], dim=1)
    out = _means(seq, per_token, batch)
    if turns <= 1:
        return out
    starts = learned & ~F.pad(learned, (1, 0))[:, :-1]  # the first token of each run
    run = (starts.reshape(-1).cumsum(dim=0) - 1)[idx]  # runs numbered across the whole (flat) batch
    first = torch.full((batch,), torch.iinfo(run.dtype).max, dtype=run.dtype, device=run.device)
    first = first.scatter_reduce(0, seq, run, reduce="amin")  # each sequence's first run
    turn = (run - first[seq]).clamp(0, turns - 1)
    per_turn = _means(seq * turns + turn, per_token, batch * turns).reshape(batch, 3 * turns)
    return torch.cat([out, per_turn], dim=1)

@torch.no_grad()
def reduce_packed(learned: torch.Tensor, position_ids: torch.Tensor, logp: torch.Tensor, correct: torch.Tensor,
                  batch: int, turns: int = 1) -> torch.Tensor:
    """:func:`reduce_tokens` for a padding-free batch: ``batch`` sequences flattened into one row (1, T + 1),
    each starting where ``position_ids`` is 0; ``learned`` (1, T) marks the positions predicting a learned
    token (position p predicts token p + 1)."""
    starts = (position_ids.reshape(-1) == 0).long()
    token_seq = starts.cumsum(dim=0) - 1  # the sequence of each token
    idx = learned.reshape(-1).nonzero().squeeze(1)
    seq = token_seq[1:][idx].to(idx.device)  # position p predicts token p + 1, of that token's sequence
    return _combine(learned, idx, seq, logp, correct, batch, turns)

@torch.no_grad()
def token_stats(logits: torch.Tensor, labels: torch.Tensor, *, ignore_index: int = IGNORE_INDEX,
                turns: int = 1) -> torch.Tensor:
    """(B, 3) per-sequence values of :data:`gen_dynamics.GENERATIVE_VALUES` from a causal LM's
    logits (B, T, V) and its labels (B, T) (unshifted, as passed to the model; ``ignore_index`` = no loss);
    (B, 3 + 3K) with the values of each of K ``turns`` (see :func:`_per_sequence`)."""
    flat = logits.detach().reshape(-1, logits.shape[-1])
    target = _shifted(labels, logits.device, ignore_index).reshape(-1)
    logp = -_token_nll(flat, target, ignore_index)
    return _per_sequence(flat, target, logp, labels.shape[0], ignore_index, turns)

def causal_lm_loss_and_stats(logits: torch.Tensor, labels: torch.Tensor, num_items_in_batch=None, *,
                             ignore_index: int = IGNORE_INDEX, turns: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
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
    return loss, _per_sequence(flat.detach(), target, -nll.detach(), labels.shape[0], ignore_index, turns)

def count_turns(masks, *, ignore_index: int | None = IGNORE_INDEX) -> np.ndarray:
    """(N,) the number of runs of learned tokens (assistant turns) of each example, from its ``labels``
    (``ignore_index`` = not learned) or, with ``ignore_index=None``, from a 0/1 mask of the learned tokens.
    The first position is never a target (nothing predicts it)."""
    lengths = np.fromiter((len(m) for m in masks), dtype=np.int64, count=len(masks))
    if lengths.sum() == 0:
        return np.zeros(len(lengths), dtype=np.int64)
    flat = np.concatenate([np.asarray(m) for m in masks if len(m)])
    learned = flat != ignore_index if ignore_index is not None else flat.astype(bool)
    first = np.zeros(len(flat), dtype=bool)
    first[(np.cumsum(lengths) - lengths)[lengths > 0]] = True
    learned &= ~first
    starts = learned & ~np.concatenate([[False], learned[:-1]])
    row = np.repeat(np.arange(len(lengths)), lengths)
    return np.bincount(row[starts], minlength=len(lengths))

class GenerativeRecording:
    """What a causal LM's recording stores (a mixin for a :class:`~training_dynamics.core.recorder.DynamicsTrainer`):
    the values of :data:`gen_dynamics.GENERATIVE_VALUES` per example, and per assistant turn when the
    examples have several; generative epoch files and ``"kind": "generative"`` in the meta."""

    td_turns: int = 1

    def _turns_of(self, ds) -> np.ndarray:
        """(N,) each training example's number of assistant turns (runs of learned tokens)."""
        if "labels" not in ds.column_names:
            raise TrainingDynamicsError("the training dataset needs a 'labels' column (token ids; -100 where no loss is "
                                        "taken)")
        return count_turns(ds["labels"])

    def _make_recorder(self, ds, guids: np.ndarray) -> DynamicsRecorder:
        #: K: the most assistant turns of an example; K > 1: each turn's values are recorded too
        self.td_turns = int(max(self._turns_of(ds).max(initial=1), 1))
        width = len(gen_dynamics.GENERATIVE_VALUES) * (1 + (self.td_turns if self.td_turns > 1 else 0))
        return DynamicsRecorder(guids, np.zeros(len(guids), dtype=np.int64), width)

    def _record(self, rows: torch.Tensor, outputs, labels: torch.Tensor | None) -> None:
        if labels is None:
            raise RuntimeError("a causal LM batch without 'labels': nothing to record the dynamics of")
        self.recorder.update(rows, token_stats(_logits_of(outputs), labels, turns=self.td_turns))

    def _write_epoch_file(self, epoch: int, guids: np.ndarray, values: np.ndarray, gold: np.ndarray):
        k = len(gen_dynamics.GENERATIVE_VALUES)
        turns = values[:, k:].reshape(len(values), -1, k) if values.shape[1] > k else None
        return gen_dynamics.write_generative_epoch(self._td_out, epoch, guids, values[:, :k], turns=turns,
                                                    device=str(self.args.device), fmt=self.td_format)

    def _meta_fields(self) -> dict:
        return {"kind": clm_data.KIND, "num_labels": len(clm_data.LABEL_NAMES),
                "label_names": list(clm_data.LABEL_NAMES), "values": list(gen_dynamics.GENERATIVE_VALUES),
                **({"max_turns": self.td_turns} if self.td_turns > 1 else {})}

class CausalLMDynamicsTrainer(GenerativeRecording, DynamicsTrainer):
    """A :class:`~training_dynamics.core.recorder.DynamicsTrainer` for ``AutoModelForCausalLM`` models.

    The training dataset needs ``input_ids`` and ``labels`` (``-100`` where no loss is taken, e.g. on
    the prompt; see :func:`training_dynamics.kinds.generative.data.tokenize_generative`) and may have ``guid``.
    Writes generative epoch files (:func:`training_dynamics.kinds.generative.dynamics.write_generative_epoch`)
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
        loss, stats = causal_lm_loss_and_stats(_logits_of(outputs), labels, num_items_in_batch, turns=self.td_turns)
        if self._td_rows is not None:
            self.recorder.update(self._td_rows, stats)
        return loss
