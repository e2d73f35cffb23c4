#!/usr/bin/env python
"""Rank training examples by how likely their label is wrong; writes label_issues.jsonl + .csv.

--source model:    one no-grad pass of a trained model; score = per-example cross-entropy (loss).
--source dynamics: recorded training dynamics only; score = 1-confidence (default) or -aum.
Higher score = more suspicious; rank 1 first. Review the result with review_label_issues.py.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from training_dynamics import label_errors as le
from training_dynamics import dynamics_file
from training_dynamics.cli import HelpFormatter, run, setup_logging


def _split(s: str | None) -> list[str] | None:
    return [x.strip() for x in s.split(",") if x.strip()] if s else None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="find_label_issues.py", description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("--source", required=True, choices=le.SOURCES, help="Score with a trained model, or from recorded dynamics.")
    p.add_argument("--output_dir", required=True, help="Where label_issues.jsonl, label_issues.csv and label_issues_settings.json go.")
    p.add_argument("--top_k", type=int, default=None, help="Keep only the K most suspicious examples (default: all).")
    m = p.add_argument_group("model source")
    m.add_argument("--model_name_or_path", help="A trained classifier: a local folder saved with save_pretrained, or a Hub id.")
    m.add_argument("--task_name", help="A GLUE classification task (from the Hub) to score.")
    m.add_argument("--train_file", help="Data to score: .csv, .tsv, .json, .jsonl or .parquet. With --source dynamics: where to read the texts (default: the file named in dynamics_meta.json).")
    m.add_argument("--text_columns", help="Comma-separated text column(s), one or two (a pair). Default: guessed.")
    m.add_argument("--label_column", help="Label column. Default: label (or labels, gold, corrected_label).")
    m.add_argument("--class_names", help="Comma-separated label names in id order (default: sorted distinct labels).")
    m.add_argument("--max_train_samples", type=int, help="Score only the first N examples.")
    m.add_argument("--max_seq_length", type=int, default=128, help="Longer inputs are truncated.")
    m.add_argument("--batch_size", type=int, default=64, help="Examples per forward pass.")
    m.add_argument("--device", help="torch device (default: cuda when available, else cpu).")
    m.add_argument("--trust_label_order", action="store_true", help="Only for a model whose config has no label names (LABEL_0, LABEL_1, ...): take its class i to be the data's i-th label. Named classes are always matched by name.")
    m.add_argument("--cache_dir", help="Where Hub downloads are cached.")
    d = p.add_argument_group("dynamics source (and regions for the model source)")
    d.add_argument("--model_dir", help="A recorded run folder dy_log/<task>/<model>. Required for --source dynamics; with --source model it adds each example's region.")
    d.add_argument("--score", default="confidence", choices=list(le.DYNAMICS_SCORES), help="Rank by low confidence (score = 1-confidence) or low AUM (score = -aum).")
    d.add_argument("--burn_out", type=int, help="Use only the first N epochs of the dynamics (default: all).")
    d.add_argument("--proportion", type=float, default=0.33, help="Share of examples in each region (easy, ambiguous, hard).")
    p.add_argument("--disable_tqdm", action="store_true", help="No progress bars.")
    args = p.parse_args(argv)
    if args.top_k is not None and args.top_k < 1:
        p.error("--top_k must be at least 1")
    if args.source == "model" and not args.model_name_or_path:
        p.error("--source model needs --model_name_or_path")
    if args.source == "model" and not (args.task_name or args.train_file):
        p.error("--source model needs --task_name or --train_file")
    if args.source == "dynamics" and not args.model_dir:
        p.error("--source dynamics needs --model_dir (a run folder dy_log/<task>/<model>)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging()
    progress = not args.disable_tqdm
    data = None
    if args.task_name or args.train_file:
        data = le.load_data(task_name=args.task_name, train_file=args.train_file,
                            text_columns=_split(args.text_columns), label_column=args.label_column,
                            class_names=_split(args.class_names), max_train_samples=args.max_train_samples,
                            cache_dir=args.cache_dir)
    settings = {"source": args.source, "top_k": args.top_k}
    if args.source == "model":
        regions = le.region_labels(args.model_dir, burn_out=args.burn_out, proportion=args.proportion) \
            if args.model_dir else None
        df = le.issues_from_model(data, args.model_name_or_path, batch_size=args.batch_size,
                                  max_seq_length=args.max_seq_length, device=args.device,
                                  trust_label_order=args.trust_label_order, regions=regions,
                                  cache_dir=args.cache_dir, progress=progress, top_k=args.top_k)
        settings.update(score_name="loss", model_name_or_path=args.model_name_or_path, data=data.source,
                        dataset=le.dataset_name(data.source))
    else:
        df = le.issues_from_dynamics(args.model_dir, score=args.score, burn_out=args.burn_out,
                                     proportion=args.proportion, data=data, progress=progress, top_k=args.top_k)
        meta = dynamics_file.read_meta(dynamics_file.dynamics_dir(args.model_dir))
        source = data.source if data is not None else meta.get("data", {})
        settings.update(score_name=le.DYNAMICS_SCORES[args.score][0], score=args.score, burn_out=args.burn_out,
                        data=source, dataset=le.dataset_name(source), model_name_or_path=meta.get("model_name_or_path"))
    if args.model_dir:
        settings.update(run_dir=str(Path(args.model_dir).resolve()), proportion=args.proportion)
    settings["label_names"] = df.attrs["label_names"]
    le.write_issues(df, args.output_dir, settings)
    top = df.head(5)
    logging.getLogger("find_label_issues").info(
        "most suspicious: %s", "; ".join(f"guid {g} ({s:.3f})" for g, s in zip(top["guid"], top["score"])))
    return 0


if __name__ == "__main__":
    sys.exit(run(main, "find_label_issues.py"))
