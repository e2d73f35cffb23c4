"""GLUE evaluation metrics, computed locally (no metric scripts fetched at run time)."""

from __future__ import annotations

import numpy as np

#: extra metrics GLUE reports per task (accuracy is always reported)
TASK_METRICS = {"cola": ("matthews_correlation",), "mrpc": ("f1",), "qqp": ("f1",)}
#: the class whose F1 GLUE reports (its id 1 in the Hub's label order)
POSITIVE_CLASS = {"mrpc": "equivalent", "qqp": "duplicate"}


def accuracy(pred: np.ndarray, gold: np.ndarray) -> float:
    """Fraction of ``pred == gold``."""
    return float(np.mean(np.asarray(pred) == np.asarray(gold)))


def f1_binary(pred: np.ndarray, gold: np.ndarray, positive: int = 1) -> float:
    """F1 of the positive class (GLUE's MRPC/QQP F1); 0 when there are no true positives."""
    pred, gold = np.asarray(pred) == positive, np.asarray(gold) == positive
    tp = np.sum(pred & gold)
    denom = np.sum(pred) + np.sum(gold)
    return float(2 * tp / denom) if denom else 0.0


def matthews_correlation(pred: np.ndarray, gold: np.ndarray) -> float:
    """Matthews correlation (multi-class form of Gorodkin 2004; CoLA's metric); 0 when undefined."""
    pred, gold = np.asarray(pred), np.asarray(gold)
    k = int(max(pred.max(initial=0), gold.max(initial=0))) + 1
    cm = np.zeros((k, k), dtype=np.float64)
    np.add.at(cm, (gold, pred), 1)
    t, p, c, s = cm.sum(1), cm.sum(0), np.trace(cm), cm.sum()
    denom = np.sqrt((s**2 - p @ p) * (s**2 - t @ t))
    return float((c * s - t @ p) / denom) if denom else 0.0


def classification_metrics(logits: np.ndarray, gold: np.ndarray, task_name: str | None = None,
                           label_names: list[str] | None = None) -> dict[str, float]:
    """Accuracy, plus F1 / Matthews correlation where GLUE reports them for ``task_name``.

    ``logits``: (N, C); ``gold``: (N,) label ids. F1 is of the class GLUE scores (``equivalent``,
    ``duplicate``), found by name in ``label_names`` when given (``--class_names`` may reorder them).
    """
    pred = np.argmax(logits, axis=-1)
    out = {"accuracy": accuracy(pred, gold)}
    task = (task_name or "").lower()
    extra = TASK_METRICS.get(task, ())
    if "f1" in extra:
        names = list(label_names or [])
        out["f1"] = f1_binary(pred, gold, positive=names.index(POSITIVE_CLASS[task]) if POSITIVE_CLASS[task] in names else 1)
    if "matthews_correlation" in extra:
        out["matthews_correlation"] = matthews_correlation(pred, gold)
    return out
