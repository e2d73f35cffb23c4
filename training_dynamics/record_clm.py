"""Record the training dynamics of a causal language model on prompt/response data.

The same recorder as for classifiers (:mod:`training_dynamics.record`: every example exactly once
per epoch, in_training or post_epoch, atomic epoch files, exact resume, DDP/FSDP gather), but what
is stored per example and epoch is a handful of numbers reduced on the device inside the training
step -- never vocabulary-sized logits -- over the tokens whose label is not ``-100`` (the response):

====================  ==========================================================================
``logprob``           mean over the tokens of log softmax(z_t)[y_t]
``token_accuracy``    share of the tokens with argmax z_t == y_t (greedy prediction right)
``margin``            mean of z_t[y_t] - max_{v != y_t} z_t[v]
``el2n``              mean of ||softmax(z_t) - onehot(y_t)||_2
``num_tokens``        number of tokens
====================  ==========================================================================

(``z_t`` the logits predicting token ``t``, i.e. the model's output at position ``t - 1``.)
"""

from __future__ import annotations

import numpy as np
import torch

from . import clm_data, dynamics_file
from .record import DynamicsRecorder, DynamicsTrainer, _logits_of

IGNORE_INDEX = -100


@torch.no_grad()
def token_stats(logits: torch.Tensor, labels: torch.Tensor, *, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """(B, 5) per-sequence values of :data:`dynamics_file.GENERATIVE_VALUES` from a causal LM's
    logits (B, T, V) and its labels (B, T) (unshifted, as passed to the model; ``ignore_index`` = no loss).

    Everything stays on the logits' device; the (B, T, V) work is a log-sum-exp, a top-2 and a gather.
    """
    z = logits[:, :-1].detach().float()
    target = labels[:, 1:].to(z.device)
    mask = target != ignore_index
    safe = target.clamp(min=0).unsqueeze(-1)
    lse = torch.logsumexp(z, dim=-1)
    gold = z.gather(-1, safe).squeeze(-1)
    logp = gold - lse
    top = z.topk(2, dim=-1)
    correct = top.indices[..., 0] == target
    margin = gold - torch.where(correct, top.values[..., 1], top.values[..., 0])
    sum_sq = torch.exp(torch.logsumexp(2.0 * z, dim=-1) - 2.0 * lse)  # sum_v q_v^2
    el2n = (sum_sq - 2.0 * logp.exp() + 1.0).clamp(min=0.0).sqrt()
    m = mask.float()
    n = m.sum(dim=1)
    denom = n.clamp(min=1.0)
    return torch.stack([(logp * m).sum(1) / denom, (correct.float() * m).sum(1) / denom,
                        (margin * m).sum(1) / denom, (el2n * m).sum(1) / denom, n], dim=1)


class CausalLMDynamicsTrainer(DynamicsTrainer):
    """A :class:`~training_dynamics.record.DynamicsTrainer` for ``AutoModelForCausalLM`` models.

    The training dataset needs ``input_ids`` and ``labels`` (``-100`` where no loss is taken, e.g. on
    the prompt; see :func:`training_dynamics.clm_data.tokenize_generative`) and may have ``guid``.
    Writes generative epoch files (:func:`training_dynamics.dynamics_file.write_generative_epoch`)
    and ``"kind": "generative"`` in the meta.
    """

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
