"""How well do a causal LM's training dynamics find planted bad responses? (a benchmark, not a test)

The generated prompt/response set of the demo (questions about animals; a share of the responses is
the response of another prompt, about another animal), a small GPT-2 from a config, trained and
recorded with ``training-dynamics record-clm``; then every ranking of ``find-issues --source
dynamics`` is scored against "was planted" (AUROC, average precision, precision@k with k = the number
planted) and the decision rules' flagged sets (precision, recall, F1). One line per seed and a mean.

    python bench/bad_responses.py [--seeds 0,1,2 --n_train 800 --bad_rate 0.1 --epochs 8]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from training_dynamics.cli import run_command
from training_dynamics.demo_data import build_tiny_gpt2, write_generative_demo

SCORES = ("confidence", "aum", "loss")
DECISIONS = ("score_mixture", "loss_mixture", "aum_mixture")


def _check(code: int, what: str) -> None:
    if code != 0:
        raise SystemExit(f"{what} failed ({code})")


def one_seed(work: Path, seed: int, args) -> dict:
    from sklearn.metrics import average_precision_score, roc_auc_score

    data = write_generative_demo(work / "data", n_train=args.n_train, n_validation=20, seed=seed, bad_rate=args.bad_rate)
    texts = [json.loads(line)[k] for line in open(data["train"]) for k in ("prompt", "response")]
    model = build_tiny_gpt2(work / "gpt2", texts, seed=seed)
    t0 = time.perf_counter()
    _check(run_command("record-clm", [str(a) for a in [
        "--model_name_or_path", model, "--train_file", data["train"], "--output_dir", work / "out",
        "--dy_log_dir", work / "dy_log", "--dy_model_name", "gpt2", "--num_train_epochs", args.epochs,
        "--learning_rate", args.lr, "--warmup_steps", 30, "--per_device_train_batch_size", 8, "--max_seq_length", 64,
        "--save_strategy", "no", "--report_to", "none", "--seed", seed, "--disable_tqdm", "true",
        "--overwrite_dynamics", "true"]]), "record-clm")
    train_s = time.perf_counter() - t0
    run = work / "dy_log" / "train" / "gpt2"
    truth = np.array([json.loads(line)["kind"] == "bad" for line in open(data["truth"])])
    k = int(truth.sum())
    out = {"seed": seed, "planted": k, "train_s": round(train_s, 1)}
    for score in SCORES:
        _check(run_command("find-issues", ["--source", "dynamics", "--run_dir", str(run), "--score", score,
                                           "--output_dir", str(work / f"issues_{score}"), "--disable_tqdm", "true",
                                           "--decision", "none"]), "find-issues")
        rows = [json.loads(line) for line in open(work / f"issues_{score}" / "label_issues.jsonl")]
        y = truth[[r["guid"] for r in rows]]
        s = np.array([r["score"] for r in rows])
        out[score] = (roc_auc_score(y, s), average_precision_score(y, s), float(y[:k].mean()))
    for rule in DECISIONS:
        _check(run_command("find-issues", ["--source", "dynamics", "--run_dir", str(run), "--decision", rule,
                                           "--output_dir", str(work / f"decision_{rule}"), "--disable_tqdm", "true"]),
               "find-issues")
        rows = [json.loads(line) for line in open(work / f"decision_{rule}" / "label_issues.jsonl")]
        flagged = np.array([r["is_label_issue"] for r in rows])
        y = truth[[r["guid"] for r in rows]]
        tp = float((flagged & y).sum())
        p, r = tp / max(flagged.sum(), 1), tp / max(k, 1)
        out[rule] = (int(flagged.sum()), p, r, 2 * p * r / max(p + r, 1e-12))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (data, model and training)")
    p.add_argument("--n_train", type=int, default=800, help="prompt/response pairs")
    p.add_argument("--bad_rate", type=float, default=0.1, help="share of planted bad responses")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--out", default="bench/results/bad_responses", help="work folder")
    args = p.parse_args()
    results = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        res = one_seed(Path(args.out) / f"seed{seed}", seed, args)
        results.append(res)
        print(json.dumps(res), flush=True)
    print(f"\n{args.n_train} pairs, {args.bad_rate:.0%} bad, GPT-2 2x128 from a config, {args.epochs} epochs, "
          f"seeds {args.seeds}: mean over seeds")
    for score in SCORES:
        m = np.mean([r[score] for r in results], axis=0)
        print(f"ranking low {score if score != 'loss' else 'mean loss (high)'}: AUROC {m[0]:.3f}  AP {m[1]:.3f}  P@k {m[2]:.3f}")
    for rule in DECISIONS:
        m = np.mean([r[rule] for r in results], axis=0)
        print(f"decision {rule}: flagged {m[0]:.0f} for {np.mean([r['planted'] for r in results]):.0f} planted, "
              f"P {m[1]:.3f}  R {m[2]:.3f}  F1 {m[3]:.3f}")


if __name__ == "__main__":
    main()
