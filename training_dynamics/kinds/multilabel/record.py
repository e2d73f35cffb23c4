"""Record the training dynamics of a multi-label classifier, (example, label) pair by pair.

The same recorder as for the other kinds (:mod:`training_dynamics.core.recorder`: every example exactly
once per epoch, in_training or post_epoch, atomic epoch files, exact resume, DDP gather), with one
buffer row per example of ``2 K`` numbers: the (B, K) logits of a batch are reduced on the device to
each label's :data:`~training_dynamics.kinds.multilabel.dynamics.VALUES` (the log-probability and the margin
of the label's *given* value), never copied to the host per step.

The model is ``AutoModelForSequenceClassification`` with ``problem_type="multi_label_classification"``:
transformers' own ``BCEWithLogitsLoss`` on float multi-hot labels, unchanged.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from training_dynamics.core.recorder import DynamicsRecorder, DynamicsTrainer, _logits_of
from training_dynamics.kinds.multilabel import dynamics
from training_dynamics.kinds.multilabel.data import KIND, LABELS, PROBLEM_TYPE

logger = logging.getLogger(__name__)


@torch.no_grad()
def pair_values(logits: torch.Tensor, given: torch.Tensor) -> torch.Tensor:
    """(B, 2K): per label, log p(given value) then the given value's margin ``s z`` (``s`` = +1 carried, -1 not),
    from the logits (B, K) and the 0/1 labels (B, K)."""
    margin = logits.detach().float() * (2.0 * given.float() - 1.0)
    return torch.cat([torch.nn.functional.logsigmoid(margin), margin], dim=1)


class MultiLabelDynamicsTrainer(DynamicsTrainer):
    """A :class:`~training_dynamics.core.recorder.DynamicsTrainer` for a multi-label classifier: the training set
    holds ``labels`` (K,) multi-hot floats; writes :mod:`~training_dynamics.kinds.multilabel.dynamics` epoch files and
    ``"kind": "multi_label"``."""

    def _make_recorder(self, ds, guids: np.ndarray) -> DynamicsRecorder:
        if LABELS not in ds.column_names:
            raise ValueError(f"the training dataset needs a {LABELS!r} column of multi-hot lists")
        given = np.asarray(ds[LABELS], dtype=np.float32)
        self._td_given_np = given.astype(np.int8)
        self._td_given = torch.as_tensor(given)
        return DynamicsRecorder(guids, np.zeros(len(guids), dtype=np.int64), 2 * given.shape[1])

    def _record(self, rows: torch.Tensor, outputs: Any, labels: torch.Tensor | None) -> None:
        logits = _logits_of(outputs)
        if self._td_given.device != logits.device:
            self._td_given = self._td_given.to(logits.device)
        given = self._td_given[rows.to(logits.device).long()]  # the labels recorded, whatever the batch holds
        self.recorder.update(rows, pair_values(logits, given))

    def _write_epoch_file(self, epoch: int, guids: np.ndarray, values: np.ndarray, gold: np.ndarray):
        k = self._td_given_np.shape[1]
        return dynamics.write_epoch(self._td_out, epoch, guids, self._td_given_np, values[:, :k], values[:, k:],
                                    device=str(self.args.device), fmt=self.td_format)

    def _meta_fields(self) -> dict:
        k = self._td_given_np.shape[1]
        return {"kind": KIND, "problem_type": PROBLEM_TYPE, "num_labels": k, "values": list(dynamics.VALUES),
                "label_names": [self.model.config.id2label.get(i, str(i)) for i in range(k)]}


def multilabel_metrics(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Validation metrics: micro F1, exact match and per-label accuracy at p = 0.5."""
    pred, gold = np.asarray(logits) > 0, np.asarray(labels) > 0.5
    tp = float((pred & gold).sum())
    denom = float(pred.sum() + gold.sum())
    return {"micro_f1": 2 * tp / denom if denom else 1.0, "exact_match": float((pred == gold).all(axis=1).mean()),
            "label_accuracy": float((pred == gold).mean())}


def build_trainer(model_args, data_args, dy_args, training_args, *, train_filter=None, record: bool = True,
                  data=None):
    """:func:`training_dynamics.workflows.train.build_trainer` for multi-label data
    (:class:`MultiLabelDynamicsTrainer`: each (example, label)'s dynamics, once per epoch)."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding

    from training_dynamics.core.data import DataError, describe_truncation, tokenize, truncation_report
    from training_dynamics.core.run_writer import RunWriter
    from training_dynamics.kinds.recording import bind_training, check_head_size, load_classifier, run_dir

    if getattr(data_args, "threshold_samples", False):
        raise DataError("--threshold_samples adds a fake class to single-label data; it does not apply to a "
                        "multi-label run")
    if data is None:
        data = data_args.load(cache_dir=model_args.cache_dir)
    train = train_filter(data) if train_filter else data.train
    if len(train) == 0:
        raise DataError("no training examples left to train on")
    check_head_size(model_args, data.num_labels)
    id2label = dict(enumerate(data.label_names))
    config = AutoConfig.from_pretrained(model_args.model_name_or_path, num_labels=data.num_labels, id2label=id2label,
                                        label2id={v: k for k, v in id2label.items()}, problem_type=PROBLEM_TYPE,
                                        cache_dir=model_args.cache_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_args.model_name_or_path, cache_dir=model_args.cache_dir)
    model = load_classifier(AutoModelForSequenceClassification, model_args, config)
    truncation = getattr(data_args, "truncation", "head")
    with training_args.main_process_first(desc="tokenizing"):
        train_tok = tokenize(train, tokenizer, data.text_columns, data_args.max_seq_length, truncation=truncation)
        val_tok = tokenize(data.validation, tokenizer, data.text_columns, data_args.max_seq_length,
                           truncation=truncation) if data.validation is not None else None
    cut = truncation_report(train_tok["num_tokens"], data_args.max_seq_length, truncation)
    (logger.warning if cut["num_truncated"] else logger.info)(describe_truncation(cut))
    train_tok = train_tok.remove_columns("num_tokens")
    if val_tok is not None:
        val_tok = val_tok.remove_columns(["guid", "num_tokens"])

    def compute_metrics(p):
        return multilabel_metrics(np.asarray(p.predictions), np.asarray(p.label_ids))

    kwargs = dict(model=model, args=training_args, eval_dataset=val_tok, processing_class=tokenizer,
                  data_collator=DataCollatorWithPadding(tokenizer),
                  compute_metrics=compute_metrics if val_tok is not None else None)
    if not record:
        from transformers import Trainer

        return Trainer(train_dataset=train_tok.remove_columns("guid"), **kwargs)
    meta = {"kind": KIND, "data": {**data.source, "max_train_samples": data_args.max_train_samples},
            "label_names": data.label_names, "model_name_or_path": model_args.model_name_or_path,
            "seed": training_args.seed, "truncation": cut}
    return MultiLabelDynamicsTrainer(
        train_dataset=train_tok, writer=RunWriter(run_dir(data_args, model_args, dy_args)),
        binding=bind_training(data, train), td_mode=dy_args.td_mode, td_format=dy_args.td_format, dynamics_meta=meta,
        overwrite_dynamics=dy_args.overwrite_dynamics, **kwargs)


__all__ = ["MultiLabelDynamicsTrainer", "build_trainer", "pair_values", "multilabel_metrics"]


def heldout_scorer(trainer: MultiLabelDynamicsTrainer, rows, data):
    """``record --problem_type multi_label_classification --cross_fit 2``: a callable ``score() -> (keys,
    probabilities (M*K, 2))`` that scores every (example, label) pair of ``rows`` with ``trainer``'s model in eval
    mode (``Trainer.predict``), the texts cut as the training texts were: per pair ``[p(not carried), p(carried)]``,
    keyed by ``guid`` and ``label_index``."""
    from training_dynamics.kinds.recording import cut_like_training

    tok = cut_like_training(trainer, rows, data)
    guids = np.asarray(rows["guid"])
    k = int(trainer.model.config.num_labels)
    keys = {"guid": np.repeat(guids, k), "label_index": np.tile(np.arange(k), len(guids))}

    def score():
        z = np.asarray(trainer.predict(tok, metric_key_prefix="heldout").predictions, dtype=np.float64).reshape(-1)
        carried = 1.0 / (1.0 + np.exp(-z))
        return keys, np.stack([1.0 - carried, carried], axis=1)

    return score
