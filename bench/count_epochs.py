#!/usr/bin/env python
"""Does the default count hold on short and long runs? (a benchmark, not a test)

    python bench/label_noise.py --stage train --steps none --dataset demo --n_train 900 --rate 0.1 --epochs 2 \
        --out bench/results/count/demo900_e2            # record a run with planted flips (any label_noise setting)
    python bench/count_epochs.py bench/results/count/*/*_uniform

For each setting folder written by ``bench/label_noise.py`` (``truth.jsonl`` and the recorded run
``dy_log/noisy/m``), ranks by low confidence over all epochs (the default ranking) and counts the
wrong labels with ``rank_count`` from three windows of epochs: the first half (the rule before the
training curve chose it), the window :func:`training_dynamics.decisions.rules.choose_count_epochs` picks
from the training curve (the default now), and every single epoch. Prints the training accuracy per
epoch and, per window, the count, its ratio to the planted flips, precision and recall of the
flagged set; ``--json`` writes the same.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from training_dynamics.decisions import rules as decision  # noqa: E402
from training_dynamics.decisions import ranking as le  # noqa: E402
from training_dynamics.analysis.metrics import log_softmax  # noqa: E402
from training_dynamics.analysis.run import Run  # noqa: E402


def count_from(gold: np.ndarray, probs: np.ndarray, score: np.ndarray, guids: np.ndarray, flipped: np.ndarray) -> dict:
    """rank_count's flagged set when counting from ``probs`` (N, C): count, ratio to the flips, precision, recall."""
    dec = decision.rank_count(gold, probs, score, guids=guids, count_probabilities=probs)
    tp = int((dec.flagged & flipped).sum())
    k = dec.num_flagged
    return {"count": k, "ratio": k / flipped.sum(), "precision": tp / max(k, 1), "recall": tp / flipped.sum()}


def study(work: Path) -> dict:
    run = Run(work / "dy_log" / "noisy" / "m")
    dyn = run.dynamics(progress=False)
    truth = {}
    for line in open(work / "truth.jsonl", encoding="utf-8"):
        row = json.loads(line)
        truth[row["guid"]] = row["flipped"]
    flipped = np.array([truth[int(g)] for g in dyn.guids])
    gold = np.asarray(dyn.gold, dtype=np.int64)
    p = np.exp(log_softmax(dyn.logits))  # (N, E, C)
    score = 1.0 - p[np.arange(len(gold)), :, gold].mean(axis=1)  # the default ranking: low confidence
    _, _, window = le.count_probabilities([run])
    epochs = p.shape[1]
    half = decision.count_epochs(epochs)
    out = {"setting": str(work), "examples": len(gold), "flipped": int(flipped.sum()), "epochs": epochs,
           "training_accuracy": window.accuracy, "chance": window.chance, "first_fitted": window.first_fitted,
           "windows": {}}
    for name, (a, b) in {"first half": (0, half), "chosen (default)": (0, window.epochs),
                         **{f"epoch {e} alone": (e, e + 1) for e in range(epochs)}}.items():
        out["windows"][name] = {"epochs": [a, b - 1], **count_from(gold, p[:, a:b].mean(axis=1), score, dyn.guids,
                                                                  flipped)}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("settings", nargs="+", help="Setting folders of bench/label_noise.py (truth.jsonl, dy_log/noisy/m).")
    ap.add_argument("--json", default=None, help="Also write the results to this file.")
    args = ap.parse_args(argv)
    results = [study(Path(s)) for s in args.settings]
    for r in results:
        acc = ", ".join(f"{a:.3f}" for a in r["training_accuracy"])
        print(f"\n{r['setting']}: {r['examples']} examples, {r['flipped']} flipped, {r['epochs']} epochs; training "
              f"accuracy {acc} (chance {r['chance']:.3f}); first fitted epoch {r['first_fitted']}")
        print("| window | epochs | count | × flips | precision | recall |\n|---|---|---:|---:|---:|---:|")
        for name, w in r["windows"].items():
            print(f"| {name} | {w['epochs'][0]}..{w['epochs'][1]} | {w['count']} | {w['ratio']:.2f} | "
                  f"{w['precision']:.3f} | {w['recall']:.3f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
