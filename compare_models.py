#!/usr/bin/env python
"""Compare the data maps of a weak and a strong model trained on the same examples.

    python compare_models.py --weak_dir dy_log/sst2/bert-tiny --strong_dir dy_log/sst2/roberta-large \
        --output_dir outputs/compare_sst2 --burn_out 4

Writes compare.jsonl/.csv (per-example deltas, strong − weak), region_transitions.csv/.md,
compare_summary.json, delta_data_map.png/.pdf and strong_vs_weak.png/.pdf into --output_dir.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from training_dynamics import compare, plots
from training_dynamics.cli import HelpFormatter, run, setup_logging

logger = logging.getLogger("compare_models")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="compare_models.py", description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("--weak_dir", type=Path, required=True, help="Run folder of the weak model (dy_log/<task>/<model>), "
                   "or its td_metrics-style jsonl.")
    p.add_argument("--strong_dir", type=Path, required=True, help="Run folder (or metrics jsonl) of the strong model.")
    p.add_argument("--output_dir", type=Path, required=True, help="Folder for the comparison files and plots.")
    p.add_argument("--burn_out", type=int, default=None, help="Use the first N epochs of each run (default: all).")
    p.add_argument("--include_ci", action="store_true", help="Variability with the seed's small-sample correction.")
    p.add_argument("--intersection", action="store_true", help="Compare the examples both runs share instead of "
                   "refusing runs whose example sets differ.")
    p.add_argument("--proportion", type=float, default=0.33, help="Size of each region (easy, ambiguous, hard) as a "
                   "fraction of the examples, for the transition table.")
    p.add_argument("--num_epochs", type=int, default=None, help="Epochs a bare metrics jsonl covers, for correctness "
                   "as a fraction of epochs (needed when no td_metrics_settings.json lies beside it).")
    p.add_argument("--seed", type=int, default=0, help="Seed of the drawing order of the scatter plots.")
    args = p.parse_args(argv)
    if args.burn_out is not None and args.burn_out < 1:
        p.error(f"--burn_out must be >= 1, not {args.burn_out}")
    if not 0 < args.proportion <= 1:
        p.error(f"--proportion must lie in (0, 1], not {args.proportion}")
    return args


def _load(path: Path, args: argparse.Namespace) -> plots.RunMetrics:
    if path.is_file() and (args.burn_out or args.include_ci):
        raise ValueError(f"{path}: --burn_out and --include_ci need run folders (a metrics file is used as it is)")
    rm = plots.load_run_metrics(path, burn_out=args.burn_out, include_ci=args.include_ci,
                                num_epochs=args.num_epochs if path.is_file() else None)
    if rm.num_epochs is None:  # never guess E from the largest correctness seen
        raise ValueError(f"{path}: pass --num_epochs (nothing beside it says how many epochs its correctness counts cover)")
    return rm


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging()
    import matplotlib

    matplotlib.use("Agg")
    weak, strong = _load(args.weak_dir, args), _load(args.strong_dir, args)
    w, s = compare.align_runs(weak.df, strong.df, intersection=args.intersection,
                              where=f"{args.weak_dir} vs {args.strong_dir}")
    if weak.num_epochs != strong.num_epochs:
        logger.info("the runs cover %s and %s epochs: correctness is compared as a fraction of epochs",
                    weak.num_epochs, strong.num_epochs)
    cmp = compare.compare_runs(w, s, weak_epochs=weak.num_epochs, strong_epochs=strong.num_epochs,
                               proportion=args.proportion)
    table = compare.transition_table(cmp["weak_region"], cmp["strong_region"])
    corr = compare.rank_correlations(cmp)
    settings = {"weak": str(args.weak_dir), "strong": str(args.strong_dir), "burn_out": args.burn_out,
                "include_ci": args.include_ci, "intersection": args.intersection, "proportion": args.proportion,
                "weak_epochs": weak.num_epochs, "strong_epochs": strong.num_epochs}
    written = list(compare.write_comparison(args.output_dir, cmp, table, corr, settings).values())
    names = f"{weak.model or weak.task} → {strong.model or strong.task}"
    written += plots.save_figure(compare.plot_delta_map(cmp, seed=args.seed,
                                                        title=f"Delta data map, {names} (n={len(cmp):,})"),
                                 args.output_dir / "delta_data_map")
    written += plots.save_figure(compare.plot_strong_vs_weak(cmp, correlations=corr, seed=args.seed,
                                                             title=f"Strong vs weak: {names} (n={len(cmp):,})"),
                                 args.output_dir / "strong_vs_weak")
    print(f"Region transitions (rows: weak {weak.model or weak.task}, columns: strong {strong.model or strong.task}; "
          f"proportion {args.proportion}):\n")
    print(compare.transition_markdown(table))
    print("Spearman rank correlation (weak vs strong): "
          + ", ".join(f"{m} {v:.3f}" for m, v in corr.items()))
    for path in written:
        logger.info("wrote %s", path)
    return 0


if __name__ == "__main__":
    sys.exit(run(main, "compare_models.py"))
