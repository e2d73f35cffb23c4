"""Compare the data maps of two runs on the same examples: a weak and a strong model, two seeds,
noisy and corrected data.

  training-dynamics compare --run_a dy_log/sst2/bert-tiny --run_b dy_log/sst2/roberta-large \\
      --output_dir outputs/compare_sst2 --burn_out 4

--run_a / --run_b are the original --weak_dir / --strong_dir (both names work); the output files keep
the original names: run A is "weak", run B "strong". Writes compare.jsonl/.csv (per-example deltas,
B - A), region_transitions.csv/.md, compare_summary.json, delta_data_map.png/.pdf and
strong_vs_weak.png/.pdf into --output_dir. Plots and tables name each run by the parts of its path
that differ from the other's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from training_dynamics.core.arguments import MetricsArguments, RegionArguments
from training_dynamics.cli.common import headless_matplotlib, parse, setup_logging
from training_dynamics.core.errors import TrainingDynamicsError

logger = logging.getLogger(__name__)


@dataclass
class CompareArguments:
    _argument_group_name = "the two runs"
    run_a: str = field(metadata={"aliases": ["--weak_dir"], "help": "The first run folder (dy_log/<task>/<model>), "
                                 "or its td_metrics-style jsonl: the baseline (e.g. the weak model; 'weak' in the "
                                 "output files)."})
    run_b: str = field(metadata={"aliases": ["--strong_dir"], "help": "The second run folder (or metrics jsonl), "
                                 "compared with the first: deltas are B - A ('strong' in the output files)."})
    output_dir: str = field(metadata={"help": "Folder for the comparison files and plots."})
    intersection: bool = field(default=False, metadata={"help": "Compare the examples both runs share instead of "
                               "refusing runs whose example sets differ."})
    num_epochs: int | None = field(default=None, metadata={"help": "Epochs a bare metrics jsonl covers, for "
                                   "correctness as a fraction of epochs (needed when no td_metrics_settings.json "
                                   "lies beside it)."})
    seed: int = field(default=42, metadata={"help": "Seed of the drawing order of the scatter plots."})
    overwrite_output_dir: bool = field(default=False, metadata={"help": "Replace the files an earlier `compare` wrote "
                                       "into --output_dir (never another file)."})


def _load(path: str, args: CompareArguments, metric_args: MetricsArguments):
    from training_dynamics.analysis.run import load_metrics

    is_file = Path(path).is_file()
    rm = load_metrics(path, burn_out=metric_args.burn_out, include_ci=metric_args.include_ci,
                      num_epochs=args.num_epochs if is_file else None)
    if rm.run is not None:
        from training_dynamics import kinds

        kinds.of_run(rm.run).check_joinable(rm.run)
    if rm.num_epochs is None:  # never guess E from the largest correctness seen
        raise TrainingDynamicsError(f"{path}: pass --num_epochs (nothing beside it says how many epochs its correctness counts cover)")
    return rm


def main(argv: list[str] | None = None, *, prog: str = "training-dynamics compare") -> int:
    """Align the two runs, compute deltas and region transitions, write files and plots."""
    args, metric_args, region_args = parse((CompareArguments, MetricsArguments, RegionArguments), argv,
                                           prog=prog, doc=__doc__)
    setup_logging()
    headless_matplotlib()
    import matplotlib.pyplot as plt

    from training_dynamics.analysis import compare, plots

    from training_dynamics.core.outputs import Outputs

    out = Path(args.output_dir)
    stems = ("delta_data_map", "strong_vs_weak")
    guard = Outputs("compare", inputs=[args.run_a, args.run_b], overwrite=args.overwrite_output_dir)
    guard.check_folder(out)
    guard.check_files([*compare.comparison_paths(out).values(), *(out / f"{s}.{f}" for s in stems for f in ("png", "pdf"))])
    weak, strong = _load(args.run_a, args, metric_args), _load(args.run_b, args, metric_args)
    if weak.run is not None and strong.run is not None:  # joined by guid: the same examples under each?
        from training_dynamics.core.binding import compare as compare_bindings

        compare_bindings(weak.run.binding, strong.run.binding, names=(args.run_a, args.run_b))
    compare.to_label_order(strong, weak.label_names)
    w, s = compare.align_runs(weak.df, strong.df, intersection=args.intersection,
                              where=f"{args.run_a} vs {args.run_b}")
    if weak.num_epochs != strong.num_epochs:
        logger.info("the runs cover %s and %s epochs: correctness is compared as a fraction of epochs",
                    weak.num_epochs, strong.num_epochs)
    proportion = region_args.proportion
    cmp = compare.compare_runs(w, s, weak_epochs=weak.num_epochs, strong_epochs=strong.num_epochs, proportion=proportion)
    table = compare.transition_table(cmp["weak_region"], cmp["strong_region"])
    corr = compare.rank_correlations(cmp)
    settings = {"weak": args.run_a, "strong": args.run_b, "burn_out": metric_args.burn_out,
                "include_ci": metric_args.include_ci, "intersection": args.intersection, "proportion": proportion,
                "weak_epochs": weak.num_epochs, "strong_epochs": strong.num_epochs}
    written = list(compare.write_comparison(out, cmp, table, corr, settings).values())
    label_a, label_b = compare.run_labels(args.run_a, args.run_b)
    names = f"{label_a} → {label_b}"
    labels = (label_a, label_b)
    for fig, stem in ((compare.plot_delta_map(cmp, seed=args.seed, names=labels,
                                              title=f"Delta data map, {names} (n={len(cmp):,})"), "delta_data_map"),
                      (compare.plot_strong_vs_weak(cmp, correlations=corr, seed=args.seed, names=labels,
                                                   title=f"{label_b} vs {label_a} (n={len(cmp):,})"), "strong_vs_weak")):
        written += plots.save_figure(fig, out / stem)
        plt.close(fig)
    guard.written(*written)
    print(f"Region transitions (rows: run A = {label_a}, columns: run B = {label_b}; proportion {proportion}):\n")
    print(compare.transition_markdown(table))
    print(f"Spearman rank correlation ({label_a} vs {label_b}): " + ", ".join(f"{m} {v:.3f}" for m, v in corr.items()))
    for path in written:
        logger.info("wrote %s", path)
    return 0
