#!/usr/bin/env python
"""Can a short run count its label errors? (a benchmark, not a test; issue 27's short-run case)

    nice -n 10 python bench/short_run.py --n_train 900 --seed 3 --out bench/results/short_run/n900_s3
    nice -n 10 python bench/short_run.py --n_train 3000 --seed 3 --out bench/results/short_run/n3000_s3

Three-class demo sentences (the demo's positive and negative cue words plus a third, "neutral" set;
75% easy with 2-3 cue words of the class, 25% hard with one), ``--rate`` of the labels flipped
uniformly to another class (seeded), a tiny BERT built from a config (``demo_data.build_tiny_bert``,
64 wide, 2 layers), recorded with ``run_glue_and_record_td.py`` (2 epochs, lr 3e-3, batch 16), then
``find-issues --source dynamics`` with its default decision. Reports the training curve, the number
flagged against the flips, precision, recall, and whether find-issues said it cannot count.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NEUTRAL = ("okay average ordinary decent passable middling adequate standard routine moderate "
           "fair conventional unremarkable acceptable typical plain modest competent serviceable so-so").split()


def make_three_class(n: int, *, seed: int, hard_share: float = 0.25, distractors: float = 0.0) -> tuple[list[str], np.ndarray, list[str]]:
    """(texts, clean label ids, names) of ``n`` three-class demo sentences."""
    from training_dynamics.demo.data import FILLER, NEGATIVE, POSITIVE

    cues = [NEGATIVE, POSITIVE, NEUTRAL]
    rng = np.random.default_rng(seed)
    texts, labels = [], rng.integers(3, size=n)
    for y, hard in zip(labels, rng.random(n) < hard_share):
        k = 1 if hard else int(rng.integers(2, 4))
        words = list(rng.choice(cues[y], k)) + list(rng.choice(FILLER, int(rng.integers(5, 10))))
        if k > 1 and distractors and rng.random() < distractors:  # a cue word of another class, fewer than the class's own
            words += list(rng.choice(cues[(y + int(rng.integers(1, 3))) % 3], k - 1))
        rng.shuffle(words)
        texts.append(" ".join(words))
    return texts, labels, ["negative", "positive", "neutral"]


def flip_uniform(labels: np.ndarray, *, rate: float, classes: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noisy = labels.copy()
    idx = rng.choice(len(labels), size=round(rate * len(labels)), replace=False)
    noisy[idx] = (labels[idx] + rng.integers(1, classes, size=len(idx))) % classes
    return noisy


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n_train", type=int, default=900)
    p.add_argument("--rate", type=float, default=0.1)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--lr", default="3e-3")
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--hidden_size", type=int, default=64)
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--hard_share", type=float, default=0.25, help="Share of sentences with one cue word.")
    p.add_argument("--distractors", type=float, default=0.0, help="Share of the others given k-1 cue words of "
                   "another class beside their k.")
    p.add_argument("--cross_fit", type=int, default=0, help="Record with --cross_fit N (0: a plain run).")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    texts, clean, names = make_three_class(args.n_train, seed=args.seed, hard_share=args.hard_share,
                                          distractors=args.distractors)
    noisy = flip_uniform(clean, rate=args.rate, classes=3, seed=args.seed + 1)
    flipped = noisy != clean
    with open(out / "train.jsonl", "w") as fh:
        fh.writelines(json.dumps({"guid": i, "sentence": t, "label": names[y]}) + "\n"
                      for i, (t, y) in enumerate(zip(texts, noisy)))
    from training_dynamics.demo.data import build_tiny_bert

    model = out / "model"
    if not (model / "config.json").exists():
        build_tiny_bert(model, texts, hidden_size=args.hidden_size, num_layers=2, num_heads=2, num_labels=3,
                        seed=args.seed)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    run = out / "dy" / "train" / "tiny"
    t0 = time.process_time()
    cpu = 0.0
    if not (run / "training_dynamics").exists():
        cmd = [sys.executable, str(ROOT / "run_glue_and_record_td.py"), "--model_name_or_path", model,
               "--train_file", out / "train.jsonl", "--class_names", ",".join(names), "--output_dir", out / "model_out",
               "--dy_log_dir", out / "dy", "--dy_task_name", "train", "--dy_model_name", "tiny",
               "--num_train_epochs", args.epochs, "--learning_rate", args.lr,
               "--per_device_train_batch_size", args.batch_size, "--max_seq_length", 64, "--report_to", "none",
               "--save_strategy", "no", "--seed", args.seed, "--disable_tqdm", "true"]
        if args.cross_fit:
            cmd += ["--cross_fit", args.cross_fit]
        t = time.time()
        proc = subprocess.run([str(c) for c in cmd], env=env, cwd=ROOT)
        if proc.returncode:
            return proc.returncode
        import resource

        cpu = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime + resource.getrusage(resource.RUSAGE_CHILDREN).ru_stime
        print(f"recorded in {time.time() - t:.0f} s wall, {cpu:.0f} CPU s")
    issues = out / "issues"
    proc = subprocess.run([sys.executable, "-m", "training_dynamics", "find-issues", "--source", "dynamics",
                           "--run_dir", str(run), "--output_dir", str(issues), "--overwrite_output_dir",
                           "--disable_tqdm"], env=env, cwd=ROOT, capture_output=True, text=True)
    print(proc.stdout.strip())
    if proc.returncode:
        print(proc.stderr[-3000:])
        return proc.returncode
    import pandas as pd

    got = pd.read_json(issues / "label_issues.jsonl", lines=True).set_index("guid").sort_index()
    flagged = got["is_label_issue"].to_numpy(bool)
    settings = json.loads((issues / "label_issues_settings.json").read_text())
    from sklearn.metrics import average_precision_score, roc_auc_score

    score = got["score"].to_numpy()
    res = {"n": args.n_train, "seed": args.seed, "flipped": int(flipped.sum()), "flagged": int(flagged.sum()),
           "precision": float(flipped[flagged].mean()) if flagged.any() else None,
           "recall": float(flagged[flipped].mean()), "auroc": float(roc_auc_score(flipped, score)),
           "ap": float(average_precision_score(flipped, score)),
           "training_accuracy": settings.get("training_accuracy"), "chance": settings.get("chance_accuracy"),
           "count_epochs": settings.get("count_epochs"), "countable": settings["decision"].get("countable"), "would_flag": settings["decision"].get("would_flag"),
           "record_cpu_s": round(cpu, 1), "data": {"hard_share": args.hard_share, "distractors": args.distractors}}
    print(json.dumps(res))
    (out / "result.json").write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
