"""Planted wrong labels in generated multi-label data: how well the pair dynamics find them.

The acceptance fixture of the multi-label kind: 1,200 generated texts about 4 topics, one wrong label
in 10% of them (a mentioned topic left out, or an unmentioned one added), a tiny BERT (2 x 64,
word-level) trained with ``record --problem_type multi_label_classification`` (BCE) for 8 epochs,
then ``metrics``, ``plot``, ``find-issues --source dynamics`` with each pair decision and ``review``;
prints the ranking's AUROC / AP over (example, label) pairs and each decision's flagged precision /
recall (a benchmark, not a test).

    OMP_NUM_THREADS=1 python bench/multilabel_planted.py [--workdir /tmp/ml_planted --seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cli(*args) -> None:
    """``training-dynamics <args>`` in a subprocess (its output is kept in <workdir>/log.txt)."""
    with open(os.environ["ML_BENCH_LOG"], "a", encoding="utf-8") as log:
        subprocess.run([sys.executable, "-m", "training_dynamics", *map(str, args)], check=True, cwd=ROOT,
                       stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)})


def scores(issues_path: Path, noisy: set) -> dict:
    """AUROC / AP of the ranking over pairs, and the flagged pairs' precision / recall."""
    import numpy as np
    from sklearn.metrics import average_precision_score, roc_auc_score

    rows = [json.loads(line) for line in open(issues_path, encoding="utf-8")]
    y = np.array([(r["guid"], r["label"]) in noisy for r in rows])
    s = np.array([r["score"] for r in rows])
    out = {"pairs": len(rows), "planted": int(y.sum()), "auroc": float(roc_auc_score(y, s)),
           "ap": float(average_precision_score(y, s)), "precision_at_planted": float(y[:int(y.sum())].mean()),
           "ranks_in_order": all(r["rank"] == i + 1 for i, r in enumerate(rows))}
    if "is_label_issue" in rows[0]:
        f = np.array([bool(r["is_label_issue"]) for r in rows])
        tp = int((f & y).sum())
        out |= {"flagged": int(f.sum()), "precision": tp / max(int(f.sum()), 1), "recall": tp / max(int(y.sum()), 1)}
        fixes = [r["suggested_fix"] for r in rows if r["is_label_issue"]]
        given = [r["given"] for r in rows if r["is_label_issue"]]
        out["fix_matches_given"] = all((fx == "remove") == g for fx, g in zip(fixes, given))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n_train", type=int, default=1200)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--learning_rate", default="1e-3")
    p.add_argument("--td_mode", default="in_training")
    p.add_argument("--cross_fit", action="store_true", help="record with --cross_fit 2 (held-out evidence)")
    p.add_argument("--warmup_steps", default="0", help="an int, or a float < 1: a share of the steps")
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--hidden_size", type=int, default=64)
    p.add_argument("--rules", default="rank_count,score_mixture,loss_mixture,aum_mixture")
    args = p.parse_args()
    sys.path.insert(0, str(ROOT))
    from training_dynamics.demo.multilabel_data import build_tiny_bert, noisy_pairs, write_demo

    work = Path(args.workdir or tempfile.mkdtemp(prefix="ml_planted_"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ["ML_BENCH_LOG"] = str(work / "log.txt")
    data = write_demo(work / "data", n_train=args.n_train, n_validation=200, seed=args.seed)
    texts = [json.loads(line)["text"] for s in ("train", "validation") for line in open(data[s], encoding="utf-8")]
    model = build_tiny_bert(work / "model", texts, hidden_size=args.hidden_size, num_layers=2, seed=args.seed)
    run = work / "dy_log" / "topics" / "tiny"
    t0 = time.perf_counter()
    cli("record", "--problem_type", "multi_label_classification", "--model_name_or_path", model,
        "--train_file", data["train"], "--validation_file", data["validation"], "--output_dir", work / "model_out",
        "--dy_log_dir", work / "dy_log", "--dy_task_name", "topics", "--dy_model_name", "tiny",
        "--num_train_epochs", args.epochs, "--per_device_train_batch_size", args.batch_size, "--learning_rate", args.learning_rate,
        "--warmup_steps", args.warmup_steps,
        "--td_mode", args.td_mode, "--report_to", "none", "--save_strategy", "no", "--seed", args.seed,
        "--disable_tqdm", "true", "--overwrite_dynamics", *(["--cross_fit", 2] if args.cross_fit else []))
    t_record = time.perf_counter() - t0
    cli("metrics", "--run_dir", run)
    cli("plot", "--run_dir", run, "--output_dir", work / "plots", "--overwrite_output_dir")
    noisy = noisy_pairs(data["truth"])
    print(f"{args.n_train} texts, {len(noisy)} planted wrong pairs, {args.epochs} epochs, recorded in {t_record:.0f}s "
          f"({args.td_mode})")
    for rule in args.rules.split(","):
        out = work / f"issues_{rule}"
        cli("find-issues", "--source", "dynamics", "--run_dir", run, "--output_dir", out, "--decision", rule,
            "--overwrite_output_dir")
        print(rule, json.dumps({k: round(v, 3) if isinstance(v, float) else v
                                for k, v in scores(out / "label_issues.jsonl", noisy).items()}))
    cli("review", "--issues", work / "issues_rank_count" / "label_issues.jsonl", "--output",
        work / "review.html", "--overwrite_output_dir")
    pngs = sorted(str(p.name) for p in (work / "plots").glob("*.png"))
    print("maps:", ", ".join(pngs), "| review page:", (work / "review.html").stat().st_size, "bytes")


if __name__ == "__main__":
    main()
