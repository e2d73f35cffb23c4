"""Record the training dynamics of a token classifier (NER), word by word.

The same recorder as for classifiers (:mod:`training_dynamics.core.recorder`: every word exactly once per
epoch, in_training or post_epoch, atomic epoch files, exact resume, DDP gather), with one buffer row
per *word* of the training set. In the training step, the logits of each word's first sub-token
(the token that carries the word's label, as in ``run_ner.py``) are reduced on the device to four
numbers (:data:`kinds.token.dynamics.WORD_VALUES`) -- never stored per token:

==============  ===========================================================================
``logprob``     log softmax(z)[gold tag]
``pred``        argmax z (the predicted tag; ties to the lowest id)
``margin``      z[gold] - max other z (for AUM)
``el2n``        ||softmax(z) - onehot(gold)||_2
==============  ===========================================================================
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from training_dynamics.kinds.token import dynamics as token_dynamics
from training_dynamics.kinds.token.data import WORD
from training_dynamics.core.recorder import DynamicsRecorder, DynamicsTrainer, _logits_of


@torch.no_grad()
def word_values(logits: torch.Tensor, gold: torch.Tensor) -> torch.Tensor:
    """(K, 4) :data:`kinds.token.dynamics.WORD_VALUES` of K words from their first sub-tokens' logits (K, C)
    and gold tag ids (K,)."""
    z = logits.detach().float()
    logp = torch.log_softmax(z, dim=-1)
    gold = gold.long().unsqueeze(1)
    lp_gold = logp.gather(1, gold).squeeze(1)
    others = z.scatter(1, gold, float("-inf"))
    margin = z.gather(1, gold).squeeze(1) - others.amax(dim=1)
    q = logp.exp().scatter(1, gold, 0.0)
    rest = q.sum(dim=1)  # 1 - p_gold without cancellation
    el2n = torch.sqrt((q * q).sum(dim=1) + rest * rest)
    return torch.stack([lp_gold, z.argmax(dim=1).float(), margin, el2n], dim=1)


class TokenDynamicsTrainer(DynamicsTrainer):
    """A :class:`~training_dynamics.core.recorder.DynamicsTrainer` for ``AutoModelForTokenClassification``.

    The training dataset comes from :func:`training_dynamics.kinds.token.data.tokenize_and_align`:
    ``input_ids``, ``labels``, :data:`~training_dynamics.kinds.token.data.WORD`, ``word_index``, ``word_tags``
    and ``guid``; use :class:`~training_dynamics.kinds.token.data.TokenCollator`. Writes token epoch files
    (:func:`training_dynamics.kinds.token.dynamics.write_token_epoch`) and ``"kind": "token_classification"``.
    """

    def _make_recorder(self, ds, guids: np.ndarray) -> DynamicsRecorder:
        for col in (WORD, "word_index", "word_tags"):
            if col not in ds.column_names:
                raise ValueError(f"the training dataset needs a {col!r} column (see kinds.token.data.tokenize_and_align)")
        self._td_word_index = [np.asarray(w, dtype=np.int64) for w in ds["word_index"]]
        counts = np.asarray([len(w) for w in self._td_word_index], dtype=np.int64)
        self._td_sentence_guids = guids
        self._td_counts = counts
        offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
        self._td_offsets = torch.as_tensor(offsets)
        gold = np.concatenate([np.asarray(t, dtype=np.int64) for t in ds["word_tags"]])
        self._td_gold = torch.as_tensor(gold)
        self._td_words: torch.Tensor | None = None
        return DynamicsRecorder(np.arange(len(gold)), gold, len(token_dynamics.WORD_VALUES))

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        if WORD not in self._signature_columns:
            self._signature_columns.append(WORD)

    def _prepare_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """The Trainer's, with the word slots taken out of the model's inputs (kept for :meth:`_record`)."""
        inputs = super()._prepare_inputs(inputs)
        self._td_words = inputs.pop(WORD, None)
        return inputs

    def _record(self, rows: torch.Tensor, outputs: Any, labels: torch.Tensor | None) -> None:
        slots = self._td_words
        if slots is None:
            raise RuntimeError(f"a token classification batch without {WORD!r}: use kinds.token.data.TokenCollator")
        logits = _logits_of(outputs)
        slots = slots.to(logits.device)
        tok = (slots >= 0).nonzero(as_tuple=True)
        offsets = self._td_offsets.to(logits.device)
        flat = offsets[rows.to(logits.device).long()][tok[0]] + slots[tok]
        if self._td_gold.device != logits.device:
            self._td_gold = self._td_gold.to(logits.device)
        self.recorder.update(flat, word_values(logits[tok], self._td_gold[flat]))

    def _write_epoch_file(self, epoch: int, guids: np.ndarray, values: np.ndarray, gold: np.ndarray):
        return token_dynamics.write_token_epoch(self._td_out, epoch, self._td_sentence_guids, self._td_counts,
                                                np.concatenate(self._td_word_index), gold, values,
                                                device=str(self.args.device), fmt=self.td_format)

    def _meta_fields(self) -> dict:
        n = self.model.config.num_labels
        return {"kind": token_dynamics.KIND, "num_labels": n, "num_sentences": len(self._td_counts),
                "num_words": int(self._td_counts.sum()), "values": list(token_dynamics.WORD_VALUES),
                "label_names": [self.model.config.id2label.get(i, str(i)) for i in range(n)]}


def heldout_scorer(trainer: TokenDynamicsTrainer, rows, data):
    """``record-ner --cross_fit 2``: a callable ``score() -> (keys, probabilities (W, C))`` that scores each recorded
    word of the sentences ``rows`` (softmax of its first sub-token's logits) with ``trainer``'s model in eval mode,
    the sentences cut as the training sentences were (the run's meta)."""
    from torch.utils.data import DataLoader

    from training_dynamics.kinds.token.data import TokenCollator, tokenize_and_align

    meta = trainer.dynamics_meta
    tok = tokenize_and_align(rows, trainer.processing_class, max_seq_length=meta["max_seq_length"],
                             label_all_tokens=bool(meta.get("label_all_tokens")), label_names=meta["label_names"])
    keys = {"guid": np.repeat(np.asarray(tok["guid"]), [len(w) for w in tok["word_index"]]),
            "word_index": np.concatenate([np.asarray(w, dtype=np.int64) for w in tok["word_index"]] or [np.zeros(0)])}
    features = tok.remove_columns([c for c in ("guid", "num_tokens", "labels") if c in tok.column_names])
    collate = TokenCollator(trainer.processing_class)

    @torch.no_grad()
    def score():
        model = trainer.model
        was_training = model.training
        model.eval()
        out = []
        try:
            for batch in DataLoader(features, batch_size=trainer.args.per_device_eval_batch_size, collate_fn=collate):
                slots = batch.pop(WORD)
                batch = {k: v.to(trainer.args.device) for k, v in batch.items()}
                logits = _logits_of(model(**batch)).float()
                tok_rows, tok_cols = (slots >= 0).nonzero(as_tuple=True)
                order = torch.argsort(tok_rows * slots.shape[1] + slots[tok_rows, tok_cols])  # sentence, then word
                picked = logits[tok_rows.to(logits.device), tok_cols.to(logits.device)][order.to(logits.device)]
                out.append(torch.softmax(picked, dim=-1).cpu().numpy().astype(np.float64))
        finally:
            model.train(was_training)
        probs = np.concatenate(out) if out else np.zeros((0, int(trainer.model.config.num_labels)))
        if len(probs) != len(keys["guid"]):
            raise RuntimeError(f"scored {len(probs)} words of the other half, expected {len(keys['guid'])}")
        return keys, probs

    return score
