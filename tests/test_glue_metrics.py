"""GLUE metrics computed locally: hand-computed values."""
from __future__ import annotations

import numpy as np
import pytest

from training_dynamics.analysis.glue_metrics import classification_metrics, matthews_correlation

GOLD = np.array([1, 1, 0, 0, 1])
PRED = np.array([1, 0, 0, 1, 1])  # TP 2, TN 1, FP 1, FN 1


def logits_for(pred: np.ndarray, classes: int = 2) -> np.ndarray:
    return np.eye(classes)[pred]


def test_accuracy_f1_and_matthews_by_hand():
    got = classification_metrics(logits_for(PRED), GOLD, "mrpc")
    assert got == pytest.approx({"accuracy": 0.6, "f1": 2 * 2 / (3 + 3)})
    assert classification_metrics(logits_for(PRED), GOLD, "cola") == pytest.approx(
        {"accuracy": 0.6, "matthews_correlation": (2 * 1 - 1 * 1) / np.sqrt(3 * 3 * 2 * 2)})
    assert classification_metrics(logits_for(PRED), GOLD, "sst2") == {"accuracy": 0.6}


def test_f1_is_of_the_class_glue_scores_found_by_name():
    """--class_names may put 'equivalent' first: F1 follows the name, not id 1."""
    got = classification_metrics(logits_for(PRED), GOLD, "mrpc", ["equivalent", "not_equivalent"])
    assert got["f1"] == pytest.approx(2 * 1 / (2 + 2))  # class 0: TP 1, 2 predicted, 2 gold
    assert classification_metrics(logits_for(PRED), GOLD, "qqp", ["not_duplicate", "duplicate"])["f1"] == pytest.approx(2 / 3)


def test_matthews_multiclass_and_undefined():
    gold = np.array([0, 1, 2, 2, 1, 0])
    assert matthews_correlation(gold, gold) == pytest.approx(1.0)
    assert matthews_correlation(np.zeros(6, dtype=int), gold) == 0.0  # a constant prediction: undefined -> 0
