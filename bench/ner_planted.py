"""Planted tag errors in generated NER data: how well a token classifier's dynamics find them.

The acceptance fixture of the token classification kind: 1,200 generated BIO sentences of
PER/LOC/ORG with 8% of the mentions given another type, a tiny BERT token classifier (2 x 64,
WordPiece: long names split into two sub-words), ``record-ner`` 8 epochs at lr 3e-3, then
``metrics``, ``plot`` and ``find-issues --source dynamics`` with each decision; prints the ranking's
AUROC / AP over words and each decision's flagged precision / recall / F1 (a benchmark, not a test).

    OMP_NUM_THREADS=1 python bench/ner_planted.py [--workdir /tmp/ner_planted --seed 0]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cli(script: str, *args) -> None:
    subprocess.run([sys.executable, str(ROOT / script), *map(str, args)], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n_train", type=int, default=1200)
    p.add_argument("--epochs", type=int, default=8)
    args = p.parse_args()
    sys.path.insert(0, str(ROOT))
    from training_dynamics.demo.ner_data import build_tiny_token_bert, planted_scores, write_ner_demo

    work = Path(args.workdir or tempfile.mkdtemp(prefix="ner_planted_"))
    paths = write_ner_demo(work / "data", n_train=args.n_train, n_validation=200, seed=args.seed, retype_rate=0.08)
    sentences = [json.loads(line)["tokens"] for key in ("train", "validation") for line in open(paths[key])]
    model = build_tiny_token_bert(work / "model", sentences, hidden_size=64, seed=args.seed)
    t0 = time.perf_counter()
    cli("run_ner_and_record_td.py", "--model_name_or_path", model, "--train_file", paths["train"],
        "--validation_file", paths["validation"], "--text_column_name", "tokens", "--label_column_name", "ner_tags",
        "--output_dir", work / "out", "--dy_log_dir", work / "dy_log", "--dy_model_name", "tiny",
        "--num_train_epochs", args.epochs, "--learning_rate", "3e-3", "--per_device_train_batch_size", 32,
        "--report_to", "none", "--save_strategy", "no", "--disable_tqdm", "true", "--seed", args.seed,
        "--overwrite_dynamics")
    record_s = time.perf_counter() - t0
    run = work / "dy_log" / "train" / "tiny"
    cli("td_metrics.py", "--run_dir", run)
    cli("plot_cartography.py", "--run_dir", run)
    print(f"{args.n_train} sentences, {args.epochs} epochs, seed {args.seed}: record-ner {record_s:.1f} s (wall)")
    for rule in ("rank_count", "score_mixture", "loss_mixture", "aum_mixture"):
        out = work / f"issues_{rule}"
        cli("find_label_issues.py", "--source", "dynamics", "--run_dir", run, "--output_dir", out, "--decision", rule)
        s = planted_scores(out / "label_issues.jsonl", paths["truth"])
        print(f"{rule:14s} words {s['num_words']} planted {s['num_planted']} AUROC {s['auroc']:.3f} AP {s['ap']:.3f} "
              f"flagged {s['num_flagged']} P {s['precision']:.3f} R {s['recall']:.3f} F1 {s['f1']:.3f}")
    print(f"plots: {sorted(str(p) for p in (run / 'plots').glob('*.png'))}")


if __name__ == "__main__":
    main()
