#!/usr/bin/env python
"""Apply reviewed corrections (corrections.json from the review page) and write the corrected dataset.

Columns: guid, the text column(s), original_label, corrected_label, review_action, review_note. The
corrections must carry the fingerprint of this very data (else --ignore_fingerprint); outputs never
replace an input or files an earlier run did not write. Retrain on it with
run_glue_and_record_td.py --train_file OUT --label_column corrected_label.
"""
from __future__ import annotations

import argparse
import sys

from training_dynamics import corrections as co
from training_dynamics.cli import HelpFormatter, run, setup_logging


def _split(s: str | None) -> list[str] | None:
    return [x.strip() for x in s.split(",") if x.strip()] if s else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="apply_corrections.py", description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("--corrections", required=True, help="corrections.json exported by the review page.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--train_file", help="The dataset that was reviewed: .csv, .tsv, .json, .jsonl or .parquet.")
    src.add_argument("--task_name", help="A GLUE classification task (its training split, from the Hub).")
    p.add_argument("--text_columns", help="Comma-separated text column(s). Default: guessed.")
    p.add_argument("--label_column", help="Label column. Default: label (or labels, gold, corrected_label).")
    p.add_argument("--class_names", help="Comma-separated label names in id order (as given to find_label_issues.py).")
    p.add_argument("--output", help="Corrected dataset file: .jsonl, .json (lines), .csv or .parquet.")
    p.add_argument("--save_to_disk", help="Also (or instead) write a datasets.save_to_disk folder (a new or empty one).")
    p.add_argument("--overwrite_output_dir", action="store_true", help="Let --save_to_disk replace the corrected dataset an earlier run wrote there (only that; a folder holding other files is refused).")
    p.add_argument("--ignore_fingerprint", action="store_true", help="Apply to data that changed since the review: corrections whose example (guid, text, label) is unchanged are applied, the others skipped with a warning.")
    p.add_argument("--unsure", choices=co.UNSURE_POLICIES, default="keep", help="Examples marked unsure: keep them (original label) or drop them from the output.")
    p.add_argument("--push_to_hub", metavar="REPO", help="Also upload the corrected dataset to the Hub as REPO (needs a login).")
    p.add_argument("--private", action="store_true", help="With --push_to_hub: make the Hub dataset private.")
    p.add_argument("--cache_dir", help="Where Hub downloads are cached.")
    args = p.parse_args(argv)
    if not (args.output or args.save_to_disk or args.push_to_hub):
        p.error("give --output FILE, --save_to_disk DIR and/or --push_to_hub REPO")
    if args.output and not args.output.lower().endswith(co.OUTPUT_FORMATS):
        p.error(f"--output must end with one of {', '.join(co.OUTPUT_FORMATS)}")
    setup_logging()
    co.apply_corrections_file(args.corrections, train_file=args.train_file, task_name=args.task_name,
                              text_columns=_split(args.text_columns), label_column=args.label_column,
                              class_names=_split(args.class_names), cache_dir=args.cache_dir, output=args.output,
                              save_to_disk=args.save_to_disk, overwrite_output_dir=args.overwrite_output_dir,
                              ignore_fingerprint=args.ignore_fingerprint, unsure=args.unsure,
                              push_to_hub_repo=args.push_to_hub, private=args.private)
    return 0


if __name__ == "__main__":
    sys.exit(run(main, "apply_corrections.py"))
