#!/usr/bin/env python
"""How well do the label-error rankings find planted label flips? (a benchmark, not a test)

    python bench/label_noise.py --dataset demo                       # 2,000 clean demo sentences
    python bench/label_noise.py --dataset sst2 --n_train 6000        # a seeded subset of SST-2 train.tsv

For each noise model (``uniform``: a random ``rate`` of all examples; ``class_conditional``: class c
flips at rate·w_c with w = 0.5..1.5 across the classes, to class c+1) the script flips a known set
of training labels (seeded), then, through the project's real command-line scripts:

1. ``run_glue_and_record_td.py`` trains a small BERT (built from a config; word-level tokenizer
   from the training texts, ``demo_data.build_tiny_bert``) on the noisy labels, recording dynamics;
2. ``find_label_issues.py --source model`` ranks by the final model's loss;
   ``find_label_issues.py --source dynamics`` ranks by low confidence and by low AUM;
3. 5-fold cross-validation (same model and settings, trained on 4/5, scored on the held-out 1/5)
   gives out-of-sample probabilities for cleanlab: ``cleanlab.rank.get_label_quality_scores``
   (self-confidence) and ``cleanlab.filter.find_label_issues`` (a flagged set).

Reported per ranking: AUROC and average precision of the score against "was flipped", and
precision@k with k = the number flipped. cleanlab is a benchmark-only dependency
(``pip install cleanlab``); the project does not import it. Results: ``<out>/results.json`` and
``<out>/results.md``; finished steps are skipped when the script is run again.
"""
from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from training_dynamics.cli import setup_logging  # noqa: E402
from training_dynamics.cli.args import DataArguments  # noqa: E402

logger = logging.getLogger("label_noise")
NOISE_MODES = ("uniform", "class_conditional")
METHODS = {"loss": "loss, final model", "confidence": "low confidence (dynamics)", "aum": "low AUM (dynamics)",
           "cl_self_confidence": "cleanlab self-confidence (5-fold CV)"}


def sh(cmd: list) -> float:
    """Run a command from the repo root, echoing it; returns its wall time in seconds."""
    cmd = [str(c) for c in cmd]
    logger.info("$ %s", " ".join(shlex.quote(c) for c in cmd))
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
    if proc.returncode != 0:
        raise SystemExit(f"label_noise: step failed ({proc.returncode}): {' '.join(cmd[:2])}")
    return time.perf_counter() - t0


# -- data -----------------------------------------------------------------------------------------
def clean_data(dataset: str, *, n: int, seed: int, sst2_dir: Path) -> tuple[list[str], np.ndarray, list[str]]:
    """(texts, label ids (N,), label names) of a clean base set."""
    if dataset == "demo":
        from training_dynamics.demo_data import LABEL_NAMES, make_examples

        rows = make_examples(n, seed=seed, noisy=False)
        names = list(LABEL_NAMES)
        return [r["sentence"] for r in rows], np.array([names.index(r["label"]) for r in rows]), names
    with open(sst2_dir / "train.tsv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    pick = np.sort(np.random.default_rng(seed).choice(len(rows), size=min(n, len(rows)), replace=False))
    return [rows[i]["sentence"].strip() for i in pick], np.array([int(rows[i]["label"]) for i in pick]), ["0", "1"]


def flip_labels(labels: np.ndarray, *, rate: float, mode: str, num_classes: int, seed: int) -> np.ndarray:
    """Noisy copy of ``labels`` (N,) with a seeded set of flips (see module docstring)."""
    rng = np.random.default_rng(seed)
    noisy = labels.copy()
    if mode == "uniform":
        idx = rng.choice(len(labels), size=round(rate * len(labels)), replace=False)
        shift = rng.integers(1, num_classes, size=len(idx))  # any other class, uniformly
        noisy[idx] = (labels[idx] + shift) % num_classes
        return noisy
    weights = np.linspace(0.5, 1.5, num_classes)
    for c in range(num_classes):
        members = np.flatnonzero(labels == c)
        idx = rng.choice(members, size=round(min(1.0, rate * weights[c]) * len(members)), replace=False)
        noisy[idx] = (c + 1) % num_classes
    return noisy


def write_jsonl(path: Path, guids: np.ndarray, texts: list[str], labels: np.ndarray, names: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps({"guid": int(g), "sentence": texts[g], "label": names[y]}) + "\n"
                      for g, y in zip(guids, labels))


# -- scoring --------------------------------------------------------------------------------------
def ranking_metrics(score: np.ndarray, flipped: np.ndarray, guids: np.ndarray) -> dict:
    """AUROC, average precision and precision@k (k = number flipped; ties: lower guid first)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    k = int(flipped.sum())
    order = np.lexsort((guids, -score))
    return {"auroc": float(roc_auc_score(flipped, score)), "ap": float(average_precision_score(flipped, score)),
            "p_at_k": float(flipped[order[:k]].mean()), "k": k}


def read_scores(issues_dir: Path, n: int, key: str = "score") -> np.ndarray:
    """``key`` (score) per guid (N,) from a ``label_issues.jsonl``."""
    score = np.full(n, np.nan)
    for line in open(issues_dir / "label_issues.jsonl", encoding="utf-8"):
        r = json.loads(line)
        score[r["guid"]] = r[key]
    assert not np.isnan(score).any(), issues_dir
    return score


def cv_probabilities(work: Path, *, texts, noisy, names, model: Path, train_common: list, folds: int, seed: int,
                     timings: dict) -> np.ndarray:
    """Out-of-fold class probabilities (N, C) in ``names`` order from ``folds``-fold cross-validation."""
    from sklearn.model_selection import StratifiedKFold

    from training_dynamics import label_errors as le

    path = work / "cv_probabilities.npy"
    if path.exists():
        return np.load(path)
    n = len(texts)
    probs = np.full((n, len(names)), np.nan)
    t_train = t_score = 0.0
    for k, (tr, te) in enumerate(StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(n), noisy)):
        fold = work / "cv" / f"fold{k}"
        write_jsonl(fold / "train.jsonl", tr, texts, noisy[tr], names)
        write_jsonl(fold / "heldout.jsonl", te, texts, noisy[te], names)
        if not (fold / "model" / "train_results.json").exists():  # finished folds are kept on a rerun
            t_train += sh([sys.executable, "run_glue_and_record_td.py", "--model_name_or_path", model,
                           "--train_file", fold / "train.jsonl", "--output_dir", fold / "model",
                           "--dy_log_dir", fold / "dy_log", "--overwrite_dynamics", "true", *train_common])
        t0 = time.perf_counter()
        data = DataArguments(train_file=str(fold / "heldout.jsonl"), class_names=",".join(names)).load()
        df = le.issues_from_model(data, str(fold / "model"), batch_size=128, progress=False)
        cols = [df.attrs["label_names"].index(name) for name in names]
        probs[df["guid"].to_numpy()] = np.array(df["probabilities"].tolist())[:, cols]
        t_score += time.perf_counter() - t0
    assert not np.isnan(probs).any()
    timings[f"{folds}-fold CV: train"] = t_train
    timings[f"{folds}-fold CV: score held-out"] = t_score
    np.save(path, probs)
    return probs


def run_config(dataset: str, mode: str, args, out: Path) -> dict:
    """One (dataset, noise model) row group of the results."""
    work = out / f"{dataset}_{mode}"
    done = work / "result.json"
    if done.exists():
        return json.loads(done.read_text())
    work.mkdir(parents=True, exist_ok=True)
    texts, clean, names = clean_data(dataset, n=args.n_train, seed=args.seed, sst2_dir=Path(args.sst2_dir))
    noisy = flip_labels(clean, rate=args.rate, mode=mode, num_classes=len(names), seed=args.seed + 1)
    flipped = noisy != clean
    guids = np.arange(len(texts))
    write_jsonl(work / "train.jsonl", guids, texts, noisy, names)
    with open(work / "truth.jsonl", "w") as fh:
        fh.writelines(json.dumps({"guid": int(g), "clean_label": names[c], "label": names[y], "flipped": bool(f)}) + "\n"
                      for g, c, y, f in zip(guids, clean, noisy, flipped))

    from training_dynamics.demo_data import build_tiny_bert

    model = out / "models" / dataset
    if not (model / "config.json").exists():
        build_tiny_bert(model, texts, hidden_size=args.hidden_size, num_layers=args.num_layers, num_heads=2, seed=args.seed)
    common = ["--num_train_epochs", args.epochs, "--learning_rate", args.lr, "--per_device_train_batch_size", 32,
              "--per_device_eval_batch_size", 256, "--max_seq_length", args.max_seq_length, "--report_to", "none",
              "--save_strategy", "no", "--seed", args.seed, "--disable_tqdm", "true", "--logging_steps", 500]
    timings: dict[str, float] = {}
    run_dir = work / "dy_log" / "noisy" / "m"
    full = work / "model_full"
    if not (full / "config.json").exists() or not run_dir.exists():
        timings["train + record dynamics"] = sh([sys.executable, "run_glue_and_record_td.py", "--model_name_or_path", model,
                                                 "--train_file", work / "train.jsonl", "--output_dir", full,
                                                 "--dy_log_dir", work / "dy_log", "--dy_task_name", "noisy",
                                                 "--dy_model_name", "m", "--overwrite_dynamics", "true", *common])
    steps = {"loss": ["--source", "model", "--model_name_or_path", full, "--train_file", work / "train.jsonl",
                      "--batch_size", 256],
             "confidence": ["--source", "dynamics", "--model_dir", run_dir, "--score", "confidence"],
             "aum": ["--source", "dynamics", "--model_dir", run_dir, "--score", "aum"]}
    scores = {}
    for name, extra in steps.items():
        dest = work / f"issues_{name}"
        if not (dest / "label_issues.jsonl").exists():
            timings[f"find_label_issues {name}"] = sh([sys.executable, "find_label_issues.py", *extra,
                                                       "--output_dir", dest, "--disable_tqdm"])
        scores[name] = read_scores(dest, len(texts))

    probs = cv_probabilities(work, texts=texts, noisy=noisy, names=names, model=model, train_common=common,
                             folds=args.folds, seed=args.seed, timings=timings)
    import cleanlab
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    t0 = time.perf_counter()
    scores["cl_self_confidence"] = 1.0 - get_label_quality_scores(noisy, probs, method="self_confidence")
    flagged = find_label_issues(noisy, probs, filter_by="prune_by_noise_rate")
    timings["cleanlab"] = time.perf_counter() - t0

    rows = [{"method": METHODS[m], **ranking_metrics(s, flipped, guids)} for m, s in scores.items()]
    cv_acc = float((probs.argmax(1) == clean).mean())
    pred = read_scores(work / "issues_loss", len(texts), key="predicted").astype(np.int64)
    result = {"dataset": dataset, "noise": mode, "rate": args.rate, "n_train": len(texts), "num_flipped": int(flipped.sum()),
              "flipped_by_class": {names[c]: int((flipped & (clean == c)).sum()) for c in range(len(names))},
              "model": {"hidden_size": args.hidden_size, "num_layers": args.num_layers, "epochs": args.epochs,
                        "lr": args.lr, "batch_size": 32, "max_seq_length": args.max_seq_length, "seed": args.seed},
              "rows": rows,
              "cleanlab_find_label_issues": {
                  "flagged": int(flagged.sum()), "precision": float(flipped[flagged].mean()) if flagged.any() else 0.0,
                  "recall": float(flagged[flipped].mean()), "filter_by": "prune_by_noise_rate",
                  "version": cleanlab.__version__},
              "cv_accuracy_vs_clean_labels": cv_acc,
              "final_model_train_accuracy": {"vs_clean_labels": float((pred == clean).mean()),
                                             "vs_noisy_labels": float((pred == noisy).mean()),
                                             "flipped_fit_to_noisy_label": float((pred == noisy)[flipped].mean())},
              "step_wall_s": timings}
    done.write_text(json.dumps(result, indent=2) + "\n")
    return result


def markdown(results: list[dict]) -> str:
    lines = ["| data | noise | flipped | method | AUROC | AP | P@k |", "|---|---|---:|---|---:|---:|---:|"]
    for r in results:
        for row in r["rows"]:
            lines.append(f"| {r['dataset']} ({r['n_train']}) | {r['noise']} | {r['num_flipped']} | {row['method']} | "
                         f"{row['auroc']:.3f} | {row['ap']:.3f} | {row['p_at_k']:.3f} |")
        f = r["cleanlab_find_label_issues"]
        lines.append(f"| {r['dataset']} ({r['n_train']}) | {r['noise']} | {r['num_flipped']} | cleanlab find_label_issues "
                     f"(flags {f['flagged']}: precision {f['precision']:.3f}, recall {f['recall']:.3f}) | | | |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", choices=("demo", "sst2"), default="demo", help="Clean demo sentences or an SST-2 subset.")
    p.add_argument("--noise", default=",".join(NOISE_MODES), help="Comma-separated noise models (uniform, class_conditional).")
    p.add_argument("--rate", type=float, default=0.2, help="Share of labels flipped (class-conditional: on average).")
    p.add_argument("--n_train", type=int, default=2000, help="Training examples (SST-2: a seeded random subset).")
    p.add_argument("--sst2_dir", default=str(ROOT.parent / "shared" / "data" / "sst2"), help="Folder with SST-2 train.tsv.")
    p.add_argument("--epochs", type=int, default=5, help="Training epochs (the recorded run and every CV fold).")
    p.add_argument("--lr", default="3e-3", help="Learning rate.")
    p.add_argument("--hidden_size", type=int, default=64, help="Width of the small BERT.")
    p.add_argument("--num_layers", type=int, default=2, help="Layers of the small BERT.")
    p.add_argument("--max_seq_length", type=int, default=64, help="Longer inputs are truncated.")
    p.add_argument("--folds", type=int, default=5, help="Cross-validation folds for cleanlab.")
    p.add_argument("--seed", type=int, default=0, help="Seed of the data subset, the flips, the model and the folds.")
    p.add_argument("--out", default=None, help="Output folder (default bench/results/label_noise/<dataset>).")
    args = p.parse_args(argv)
    setup_logging()
    out = Path(args.out or ROOT / "bench" / "results" / "label_noise" / args.dataset).resolve()
    t0 = time.perf_counter()
    results = [run_config(args.dataset, mode, args, out) for mode in args.noise.split(",")]
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(markdown(results))
    print(markdown(results))
    logger.info("total %.0f s (this invocation)", time.perf_counter() - t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
