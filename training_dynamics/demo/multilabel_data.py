"""Offline multi-label demo: generated texts about 4 topics with planted wrong labels (ground truth beside
them), and a tiny BERT built with :mod:`training_dynamics.demo.data`'s tokenizer and model builders.

A text mentions 1 to 3 topics (2 or 3 cue words each, among filler words) and is labelled with the
topics it mentions. In ``noise_rate`` of the examples one label is wrong: a mentioned topic left out
(``"missed"``) or an unmentioned one added (``"added"``), half each.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

TOPICS = {
    "sports": "match goal team coach league striker tournament stadium referee season".split(),
    "politics": "election senate minister policy vote parliament campaign governor law treaty".split(),
    "science": "experiment molecule physics lab theory telescope genome neuron quantum research".split(),
    "music": "guitar album concert melody singer orchestra chorus rhythm band song".split(),
}
LABEL_NAMES = tuple(sorted(TOPICS))
FILLER = ("the a this that and but with of in on for about today report new says people week big local "
          "story news update more").split()


def make_examples(n: int, *, seed: int = 0, noise_rate: float = 0.1) -> tuple[list[dict], list[dict]]:
    """``n`` examples ``{"text", "labels": [names]}`` and their truth ``{"guid", "clean_labels", "noise",
    "noisy_label"}`` (``noise``: ``""``, ``"missed"`` or ``"added"``)."""
    rng = np.random.default_rng(seed)
    rows, truth = [], []
    noisy = set(rng.choice(n, size=int(round(noise_rate * n)), replace=False).tolist())
    for i in range(n):
        k = int(rng.choice([1, 2, 3], p=[0.5, 0.35, 0.15]))
        topics = sorted(rng.choice(LABEL_NAMES, size=k, replace=False).tolist())
        words = [w for t in topics for w in rng.choice(TOPICS[t], size=int(rng.integers(2, 4)), replace=False)]
        words += rng.choice(FILLER, size=int(rng.integers(4, 9))).tolist()
        rng.shuffle(words)
        labels, noise, which = list(topics), "", None
        if i in noisy:
            absent = [t for t in LABEL_NAMES if t not in topics]
            if (rng.random() < 0.5 and len(topics) > 0) or not absent:
                which = str(rng.choice(topics))
                labels.remove(which)
                noise = "missed"
            else:
                which = str(rng.choice(absent))
                labels = sorted(labels + [which])
                noise = "added"
        rows.append({"text": " ".join(words), "labels": labels})
        truth.append({"guid": i, "clean_labels": topics, "noise": noise, "noisy_label": which})
    return rows, truth


def write_demo(out_dir: str | Path, *, n_train: int = 1200, n_validation: int = 200, seed: int = 0,
               noise_rate: float = 0.1, multi_hot: bool = False) -> dict[str, Path]:
    """``train.jsonl`` (with planted wrong labels), ``validation.jsonl`` (clean) and ``train_truth.jsonl``;
    ``multi_hot``: labels as 0/1 lists in :data:`LABEL_NAMES` order instead of name lists."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train, truth = make_examples(n_train, seed=seed, noise_rate=noise_rate)
    val, _ = make_examples(n_validation, seed=seed + 1, noise_rate=0.0)
    paths = {"train": out / "train.jsonl", "validation": out / "validation.jsonl", "truth": out / "train_truth.jsonl"}
    for name, rows in (("train", train), ("validation", val), ("truth", truth)):
        with open(paths[name], "w", encoding="utf-8") as fh:
            for r in rows:
                if multi_hot and name != "truth":
                    r = {**r, "labels": [int(t in r["labels"]) for t in LABEL_NAMES]}
                fh.write(json.dumps(r) + "\n")
    return paths


def noisy_pairs(truth_path: str | Path) -> set[tuple[int, str]]:
    """The planted wrong (guid, label) pairs of a ``train_truth.jsonl``."""
    out = set()
    with open(truth_path, encoding="utf-8") as fh:
        for line in fh:
            t = json.loads(line)
            if t["noise"]:
                out.add((int(t["guid"]), t["noisy_label"]))
    return out


def build_tiny_bert(out_dir: str | Path, texts, *, hidden_size: int = 64, num_layers: int = 2, seed: int = 0) -> Path:
    """:func:`training_dynamics.demo.data.build_tiny_bert` with a head of one logit per topic."""
    from training_dynamics.demo.data import build_tiny_bert as build

    return build(out_dir, texts, hidden_size=hidden_size, num_layers=num_layers, num_labels=len(LABEL_NAMES), seed=seed)
