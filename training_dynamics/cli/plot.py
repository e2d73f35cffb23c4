"""Draw the data map of a recorded run (or of a td_metrics-style jsonl) as PNG + PDF.

  training-dynamics plot --run_dir dy_log/sst2/bert-tiny --burn_out 4 --show_hist
  training-dynamics plot --metrics_file coordinates.jsonl --num_epochs 6 --output_dir plots
  training-dynamics plot --run_dir dy_log/train/bert-tiny --hue_file train.jsonl --hue is_noisy   # a column of yours

td_metrics.jsonl is (re)computed first when it is missing or stale for --burn_out / --include_ci.
A token classification run gets its word map (one point per word; --facet_by_gold: a panel per tag)
and its sentence map (one point per sentence, at its least confident word).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from training_dynamics.core.arguments import MapSourceArguments, MetricsArguments
from training_dynamics.cli.common import headless_matplotlib, parse, setup_logging
from training_dynamics.core.errors import TrainingDynamicsError

logger = logging.getLogger(__name__)


@dataclass
class PlotArguments:
    _argument_group_name = "the plot"
    output_dir: str | None = field(default=None, metadata={"aliases": ["--plots_dir"], "help": "Output folder "
                                   "(default: <run_dir>/plots, or plots/ beside --metrics_file)."})
    show_hist: bool = field(default=False, metadata={"help": "Add confidence, variability and correctness histograms."})
    hue: str = field(default="correctness", metadata={"help": "Colour by this metric column (e.g. forgetfulness, aum, "
                     "el2n, gold), or with --hue_file by a column of that file; correctness gets one colour and "
                     "marker per bin."})
    hue_file: str | None = field(default=None, metadata={"help": "A csv/tsv/json/jsonl/parquet file whose --hue column "
                                 "colours the points (e.g. a known-noise column of the training file), matched by "
                                 "guid: its idx or guid column, else its row order, as training reads the file."})
    region_labels: bool = field(default=True, metadata={"help": "Name the easy-to-learn, ambiguous and hard-to-learn "
                                "regions, each over its own examples; --region_labels false leaves them out."})
    facet_by_gold: bool = field(default=False, metadata={"help": "One data map per gold label (more than 3: in a "
                                 "grid, e.g. 13 NER tags in 3 rows of 5)."})
    max_map_points: int | None = field(default=None, metadata={"aliases": ["--max_instances_to_plot"], "help":
                                       "Plot a seeded random subsample of at most N examples (default: all)."})
    seed: int = field(default=42, metadata={"help": "Seed of the subsample and of the drawing order."})
    title: str | None = field(default=None, metadata={"help": "Figure title (default: '<task>-<model> Data Map')."})
    map_style: Literal["auto", "scatter", "density"] = field(default="auto", metadata={"help": "scatter (a marker per example), density (hexagons "
                           "coloured by how many examples fall in each: seconds for millions of examples) or auto "
                           "(density from 1,000,000 examples on)."})
    interactive: bool = field(default=False, metadata={"help": "Also write a self-contained HTML data map with hover "
                              "details (guid, metrics, text when the training data can be found), zoom and pan."})
    overwrite_output_dir: bool = field(default=False, metadata={"help": "Replace the plots an earlier `plot` wrote "
                                       "there (never another file)."})

    def __post_init__(self):
        if self.max_map_points is not None and self.max_map_points < 1:
            raise TrainingDynamicsError(f"--max_map_points must be >= 1, not {self.max_map_points}")


def _texts(rm) -> dict | None:
    """guid -> training text of a run; None (with a warning) when the data cannot be loaded."""
    if rm.run is None or not rm.run.meta:
        return None
    try:
        guids = rm.df["guid"].tolist()
        return dict(zip(guids, rm.run.texts(guids)))
    except Exception as exc:  # noqa: BLE001 - texts are optional: Hub offline, file moved, ...
        logger.warning("no texts in the interactive map: %s", " ".join(str(exc).split())[:200])
        return None


def main(argv: list[str] | None = None, *, prog: str = "training-dynamics plot") -> int:
    """Draw and save the data map (and the interactive page)."""
    src, metric_args, args = parse((MapSourceArguments, MetricsArguments, PlotArguments), argv, prog=prog, doc=__doc__)
    setup_logging()
    headless_matplotlib()
    import matplotlib.pyplot as plt

    from training_dynamics import kinds
    from training_dynamics.analysis import plots
    from training_dynamics.core.outputs import Outputs
    from training_dynamics.analysis.run import load_metrics

    rm = load_metrics(src.source, burn_out=metric_args.burn_out, include_ci=metric_args.include_ci,
                      num_epochs=src.num_epochs)
    if args.hue_file:
        from training_dynamics.core.data import load_column

        rm.df = plots.join_column(rm.df, load_column(args.hue_file, args.hue), where=args.hue_file)
    if rm.num_epochs is None:  # never guess E from the largest correctness seen: the bins would be wrong
        raise TrainingDynamicsError(f"{src.source}: pass --num_epochs (no td_metrics_settings.json beside it says how many "
                         "epochs the correctness counts cover)")
    note = rm.run.progress_note(rm.num_epochs) if rm.run is not None else None
    title = args.title or f"{rm.name} Data Map" + (f" ({note})" if note else "")
    out = Path(args.output_dir) if args.output_dir else Path(src.run_dir or Path(src.metrics_file).parent) / "plots"
    stem = plots.file_stem(f"{rm.task}_{rm.model}" if rm.model else rm.task) + "_data_map"
    stem += ("" if args.hue == "correctness" else f"_{plots.file_stem(args.hue)}") + ("_by_gold" if args.facet_by_gold else "")
    extra = kinds.of_run(rm.run).extra_maps(rm.run) if rm.run is not None else {}  # e.g. a token run's sentence map
    extra_stems = {name: stem.split("_data_map")[0] + f"_{name}" for name in extra}
    guard = Outputs("plot", inputs=[src.run_dir, src.metrics_file, args.hue_file], overwrite=args.overwrite_output_dir)
    from training_dynamics.cli.flags import typed_flag

    guard.check_folder(out, flag=typed_flag(argv, "--output_dir", "--plots_dir"))
    guard.check_files([out / f"{stem}.{fmt}" for fmt in ("png", "pdf", *(("html",) if args.interactive else ()))]
                      + [out / f"{s}.{fmt}" for s in extra_stems.values() for fmt in ("png", "pdf")])
    fig = plots.plot_data_map(rm.df, hue=args.hue, num_epochs=rm.num_epochs, show_hist=args.show_hist, title=title,
                              max_points=args.max_map_points, seed=args.seed, facet_by_gold=args.facet_by_gold,
                              label_names=rm.label_names, region_labels=args.region_labels, style=args.map_style)
    written = plots.save_figure(fig, out / stem)
    plt.close(fig)
    for name, (table, what, *options) in extra.items():  # options: plot_data_map's keywords for this map
        fig = plots.plot_data_map(table, num_epochs=rm.num_epochs, show_hist=args.show_hist, seed=args.seed,
                                  title=f"{rm.name} {what}", max_points=args.max_map_points, style=args.map_style,
                                  region_labels=args.region_labels, **(options[0] if options else {}))
        written += plots.save_figure(fig, out / extra_stems[name])
        plt.close(fig)
    if args.interactive:
        written.append(plots.write_interactive_html(rm.df, out / f"{stem}.html", num_epochs=rm.num_epochs, title=title,
                                                    texts=_texts(rm), label_names=rm.label_names,
                                                    max_points=args.max_map_points, seed=args.seed))
    guard.written(*written)
    for path in written:
        logger.info("wrote %s", path)
    return 0
