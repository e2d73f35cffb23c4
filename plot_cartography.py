#!/usr/bin/env python
"""Draw the data map of a recorded run (or of a td_metrics-style jsonl) as PNG + PDF.

    python plot_cartography.py --model_dir dy_log/sst2/bert-tiny --burn_out 4 --show_hist
    python plot_cartography.py --metrics_file coordinates.jsonl --num_epochs 6 --plots_dir plots

td_metrics.jsonl is (re)computed first when it is missing or stale for --burn_out / --include_ci.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from training_dynamics import dynamics_file, plots
from training_dynamics.cli import HelpFormatter, run, setup_logging

logger = logging.getLogger("plot_cartography")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="plot_cartography.py", description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model_dir", type=Path, help="Run folder dy_log/<task>/<model> (with training_dynamics/).")
    src.add_argument("--metrics_file", type=Path, help="A td_metrics-style jsonl (guid, confidence, variability, "
                     "correctness per line) to plot as it is, e.g. published data-map coordinates.")
    p.add_argument("--burn_out", type=int, default=None, help="Use the first N epochs only (default: all recorded).")
    p.add_argument("--include_ci", action="store_true", help="Variability with the seed's small-sample correction.")
    p.add_argument("--num_epochs", type=int, default=None, help="Epochs the metrics cover, for the correctness bins "
                   "(default: from td_metrics_settings.json; needed for a bare --metrics_file).")
    p.add_argument("--plots_dir", type=Path, default=None, help="Output folder (default: <model_dir>/plots, or "
                   "plots/ beside --metrics_file).")
    p.add_argument("--show_hist", action="store_true", help="Add confidence, variability and correctness histograms.")
    p.add_argument("--hue", default="correctness", help="Colour by this metric column (e.g. forgetfulness, aum, "
                   "el2n, gold); correctness gets one colour and marker per bin.")
    p.add_argument("--facet_by_gold", action="store_true", help="One data map per gold label.")
    p.add_argument("--max_instances_to_plot", type=int, default=None, help="Plot a seeded random subsample of at "
                   "most N examples (default: all).")
    p.add_argument("--seed", type=int, default=0, help="Seed of the subsample and of the drawing order.")
    p.add_argument("--title", default=None, help="Figure title (default: '<task>-<model> Data Map').")
    p.add_argument("--interactive", action="store_true", help="Also write a self-contained HTML data map with "
                   "hover details (guid, metrics, text when the training data can be found).")
    args = p.parse_args(argv)
    for name in ("burn_out", "num_epochs", "max_instances_to_plot"):
        v = getattr(args, name)
        if v is not None and v < 1:
            p.error(f"--{name} must be >= 1, not {v}")
    return args


def _texts(model_dir: Path) -> dict[int, str] | None:
    """guid -> training text of a run, from its dynamics_meta.json; None when the data cannot be loaded."""
    from training_dynamics.data import example_texts, load_from_meta

    meta = dynamics_file.read_meta(dynamics_file.dynamics_dir(model_dir))
    if not meta:
        return None
    try:
        data = load_from_meta(meta)
    except Exception as exc:  # noqa: BLE001 - texts are optional: Hub offline, file moved, ...
        logger.warning("no texts in the interactive map: %s", " ".join(str(exc).split())[:200])
        return None
    return dict(zip(data.train["guid"], example_texts(data.train, data.text_columns)))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging()
    import matplotlib

    matplotlib.use("Agg")
    src = args.model_dir or args.metrics_file
    if args.metrics_file and (args.burn_out or args.include_ci):
        raise ValueError(f"{src}: --burn_out and --include_ci need --model_dir (a metrics file is plotted as it is)")
    rm = plots.load_run_metrics(src, burn_out=args.burn_out, include_ci=args.include_ci, num_epochs=args.num_epochs)
    if rm.num_epochs is None:  # never guess E from the largest correctness seen: the bins would be wrong
        raise ValueError(f"{src}: pass --num_epochs (no td_metrics_settings.json beside it says how many epochs "
                         "the correctness counts cover)")
    name = f"{rm.task}-{rm.model}" if rm.model else rm.task
    title = args.title or f"{name} Data Map"
    plots_dir = args.plots_dir or ((args.model_dir or args.metrics_file.parent) / "plots")
    stem = plots.file_stem(f"{rm.task}_{rm.model}" if rm.model else rm.task) + "_data_map"
    stem += ("" if args.hue == "correctness" else f"_{plots.file_stem(args.hue)}") + ("_by_gold" if args.facet_by_gold else "")

    fig = plots.plot_data_map(rm.df, hue=args.hue, num_epochs=rm.num_epochs, show_hist=args.show_hist, title=title,
                              max_points=args.max_instances_to_plot, seed=args.seed,
                              facet_by_gold=args.facet_by_gold, label_names=rm.label_names)
    written = plots.save_figure(fig, plots_dir / stem)
    if args.interactive:
        texts = _texts(args.model_dir) if args.model_dir else None
        written.append(plots.write_interactive_html(rm.df, plots_dir / f"{stem}.html", num_epochs=rm.num_epochs,
                                                    title=title, texts=texts, label_names=rm.label_names,
                                                    max_points=args.max_instances_to_plot, seed=args.seed))
    for path in written:
        logger.info("wrote %s", path)
    return 0


if __name__ == "__main__":
    sys.exit(run(main, "plot_cartography.py"))
