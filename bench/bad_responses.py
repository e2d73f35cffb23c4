"""How well do a causal LM's training dynamics find planted bad responses? (a benchmark, not a test)

The generated prompt/response set of the demo (questions about animals; a share of the responses is
the response of another prompt, about another animal), a small GPT-2 from a config, trained and
recorded with ``training-dynamics record-clm``; then every ranking of ``find-issues --source
dynamics`` is scored against "was planted" (AUROC, average precision, precision@k with k = the number
planted) and the decision rules' flagged sets (precision, recall, F1). One line per seed and a mean.

    python bench/bad_responses.py [--seeds 0,1,2 --n_train 800 --bad_rate 0.1 --epochs 8]

``--chat``: the same facts as conversations (a system turn, then two question/answer turns, rendered with
a tiny chat template, loss on the assistant turns); a share ``--bad_rate`` of the conversations has one bad
assistant turn, and ``worst_turn`` (the least confident turn) is scored against it. ``--use_peft``: LoRA
adapters (all linear layers, ``--lora_r``) instead of a full fine-tune.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from training_dynamics.cli import run_command
from training_dynamics.demo.data import (TINY_CHAT_TEMPLATE, build_tiny_gpt2, chat_texts, write_chat_demo,
                                         write_generative_demo)

SCORES = ("confidence", "aum", "loss")
DECISIONS = ("score_mixture", "loss_mixture", "aum_mixture")


def _check(code: int, what: str) -> None:
    if code != 0:
        raise SystemExit(f"{what} failed ({code})")


def one_seed(work: Path, seed: int, args) -> dict:
    from sklearn.metrics import average_precision_score, roc_auc_score

    extra = []
    if args.chat:
        data = write_chat_demo(work / "data", n_train=args.n_train, n_validation=8, seed=seed, bad_rate=args.bad_rate)
        model = build_tiny_gpt2(work / "gpt2", chat_texts(data["train"]), seed=seed, max_length=96)
        extra += ["--chat_template", TINY_CHAT_TEMPLATE, "--max_seq_length", 96]
    else:
        data = write_generative_demo(work / "data", n_train=args.n_train, n_validation=20, seed=seed,
                                     bad_rate=args.bad_rate)
        texts = [json.loads(line)[k] for line in open(data["train"]) for k in ("prompt", "response")]
        model = build_tiny_gpt2(work / "gpt2", texts, seed=seed)
        extra += ["--max_seq_length", 64]
    common = ["--warmup_steps", 30, "--per_device_train_batch_size", 8,
              "--save_strategy", "no", "--report_to", "none", "--seed", seed, "--disable_tqdm", "true",
              "--overwrite_dynamics", "true"]
    if args.pretrain_epochs:  # a base model that has seen clean data of the same kind (as a pretrained LLM has)
        maker = write_chat_demo if args.chat else write_generative_demo
        clean = maker(work / "clean", n_train=args.n_train, n_validation=8, seed=seed + 1000, bad_rate=0.0)
        _check(run_command("record-clm", [str(a) for a in [
            "--model_name_or_path", model, "--train_file", clean["train"], "--output_dir", work / "base",
            "--dy_log_dir", work / "dy_base", "--num_train_epochs", args.pretrain_epochs, *common,
            "--learning_rate", 3e-3, *extra]]), "pretraining")
        model = work / "base"
    if args.use_peft:
        extra += ["--use_peft", "--lora_r", args.lora_r, "--lora_alpha", 2 * args.lora_r, "--lora_dropout", 0.0,
                  "--lora_target_modules", "all-linear"]
    t0 = time.perf_counter()
    _check(run_command("record-clm", [str(a) for a in [
        "--model_name_or_path", model, "--train_file", data["train"], "--output_dir", work / "out",
        "--dy_log_dir", work / "dy_log", "--dy_model_name", "gpt2", "--num_train_epochs", args.epochs,
        "--learning_rate", args.lr, "--warmup_steps", 30, "--per_device_train_batch_size", 8,
        "--save_strategy", "no", "--report_to", "none", "--seed", seed, "--disable_tqdm", "true",
        "--overwrite_dynamics", "true", *extra]]), "record-clm")
    train_s = time.perf_counter() - t0
    run = work / "dy_log" / "train" / "gpt2"
    truth_rows = [json.loads(line) for line in open(data["truth"])]
    truth = np.array([r["kind"] == "bad" for r in truth_rows])
    k = int(truth.sum())
    out = {"seed": seed, "planted": k, "train_s": round(train_s, 1)}
    for score in SCORES + (("worst_turn",) if args.chat else ()):
        _check(run_command("find-issues", ["--source", "dynamics", "--run_dir", str(run), "--score", score,
                                           "--output_dir", str(work / f"issues_{score}"), "--disable_tqdm", "true",
                                           "--decision", "none"]), "find-issues")
        rows = [json.loads(line) for line in open(work / f"issues_{score}" / "label_issues.jsonl")]
        y = truth[[r["guid"] for r in rows]]
        s = np.array([r["score"] for r in rows])
        out[score] = (roc_auc_score(y, s), average_precision_score(y, s), float(y[:k].mean()))
        if args.chat and score == "confidence":  # is the least confident turn the planted one?
            hit = [r["worst_turn"] == truth_rows[r["guid"]]["bad_turn"] for r in rows if truth[r["guid"]]]
            out["worst_turn_hit"] = float(np.mean(hit))
    for rule in _decisions(args):
        score = ["--score", "worst_turn"] if rule.endswith("worst_turn") else []
        _check(run_command("find-issues", ["--source", "dynamics", "--run_dir", str(run), "--decision",
                                           rule.split(":")[0], *score, "--output_dir", str(work / f"decision_{rule}"),
                                           "--disable_tqdm", "true"]), "find-issues")
        rows = [json.loads(line) for line in open(work / f"decision_{rule}" / "label_issues.jsonl")]
        flagged = np.array([r["is_label_issue"] for r in rows])
        y = truth[[r["guid"] for r in rows]]
        tp = float((flagged & y).sum())
        p, r = tp / max(flagged.sum(), 1), tp / max(k, 1)
        out[rule] = (int(flagged.sum()), p, r, 2 * p * r / max(p + r, 1e-12))
    return out


def _decisions(args) -> tuple[str, ...]:
    """The decision rules scored; conversations add score_mixture on the worst turn's confidence."""
    return DECISIONS + (("score_mixture:worst_turn",) if args.chat else ())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (data, model and training)")
    p.add_argument("--n_train", type=int, default=800, help="prompt/response pairs")
    p.add_argument("--bad_rate", type=float, default=0.1, help="share of planted bad responses")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--chat", action="store_true", help="conversations of two assistant turns (one bad)")
    p.add_argument("--use_peft", action="store_true", help="LoRA adapters instead of a full fine-tune")
    p.add_argument("--lora_r", type=int, default=16)
    p.add_argument("--pretrain_epochs", type=int, default=0, help="first train the base model (all weights) this many "
                   "epochs on a clean set of the same kind (another seed), then fine-tune it on the noisy set")
    p.add_argument("--out", default="bench/results/bad_responses", help="work folder")
    args = p.parse_args()
    results = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        res = one_seed(Path(args.out) / f"seed{seed}", seed, args)
        results.append(res)
        print(json.dumps(res), flush=True)
    what = "conversations (2 assistant turns)" if args.chat else "pairs"
    print(f"\n{args.n_train} {what}, {args.bad_rate:.0%} bad, GPT-2 2x128 from a config, "
          f"{'LoRA r=%d' % args.lora_r if args.use_peft else 'full fine-tune'}"
          f"{f' of a base trained {args.pretrain_epochs} epochs on clean data' if args.pretrain_epochs else ''}, "
          f"{args.epochs} epochs, lr {args.lr}, "
          f"seeds {args.seeds}: mean over seeds")
    if args.chat:
        print(f"worst_turn = the planted bad turn: {np.mean([r['worst_turn_hit'] for r in results]):.3f} of the planted")
    for score in SCORES + (("worst_turn",) if args.chat else ()):
        m = np.mean([r[score] for r in results], axis=0)
        print(f"ranking low {score if score != 'loss' else 'mean loss (high)'}: AUROC {m[0]:.3f}  AP {m[1]:.3f}  P@k {m[2]:.3f}")
    for rule in _decisions(args):
        m = np.mean([r[rule] for r in results], axis=0)
        print(f"decision {rule}: flagged {m[0]:.0f} for {np.mean([r['planted'] for r in results]):.0f} planted, "
              f"P {m[1]:.3f}  R {m[2]:.3f}  F1 {m[3]:.3f}")


if __name__ == "__main__":
    main()
