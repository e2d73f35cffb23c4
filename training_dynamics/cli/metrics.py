"""Compute the per-example training-dynamics metrics (data-map coordinates) of a recorded run.

Reads <run_dir>/training_dynamics/dynamics_epoch_<e>.jsonl (or .npz), one epoch file at a time, and
writes, into <run_dir>: td_metrics.jsonl (one line per example; td_metrics.parquet instead from 1M
examples on, or as --output_format says), td_training_summary.jsonl (loss and accuracy per epoch)
and td_metrics_settings.json. Definitions: docs/metrics.md. Several run folders of the same data
(seeds or models) are averaged example by example into --output_dir (td_metrics.jsonl,
td_metrics_settings.json); they must hold the same examples with the same labels.

  training-dynamics metrics --run_dir dy_log/sst2/bert-tiny [--burn_out 4] [--include_ci]
  training-dynamics metrics --run_dir dy_log/sst2/seed1 dy_log/sst2/seed2 --output_dir dy_log/sst2/mean
  training-dynamics metrics --run_dir dy_log/pile/llm --output_format parquet
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

from .args import MetricsArguments, ProgressArguments
from .common import parse, setup_logging

logger = logging.getLogger(__name__)


@dataclass
class MetricsRunArguments:
    _argument_group_name = "run"
    run_dir: list[str] = field(metadata={"aliases": ["--model_dir"], "help": "Run folder(s) <dy_log_dir>/<task>/<model> "
                                         "(holding training_dynamics/), as written by `training-dynamics record`; "
                                         "several runs of the same data are averaged into --output_dir."})
    output_dir: str | None = field(default=None, metadata={"help": "Where the averaged td_metrics.jsonl and "
                                   "td_metrics_settings.json of several runs go (required with several --run_dir)."})

    output_format: Literal["auto", "jsonl", "parquet"] = field(default="auto", metadata={"help":
                               "Format of the per-example table: jsonl (td_metrics.jsonl, the seed's) or parquet "
                               "(td_metrics.parquet: columnar, several times faster at millions of examples); auto: "
                               "parquet from 1,000,000 examples on. Every command of this project reads both."})

    def __post_init__(self):
        if len(self.run_dir) > 1 and not self.output_dir:
            raise ValueError("several --run_dir are averaged into --output_dir: give --output_dir")
        if len(self.run_dir) == 1 and self.output_dir:
            raise ValueError("--output_dir is for several --run_dir; one run's metrics go into its own folder")


def write_averaged(run_dirs: list[str], output_dir: str, *, burn_out: int | None, include_ci: bool,
                   progress: bool, output_format: str = "auto") -> dict:
    """Average several runs' metrics (training_dynamics.multirun) and write them into ``output_dir``."""
    from pathlib import Path

    from .. import __version__, fileio
    from ..multirun import average_runs
    from ..run import SETTINGS_NAME, Run, write_metrics_table

    runs = [Run(p).require() for p in run_dirs]
    cols, _ = average_runs(runs, burn_out=burn_out, include_ci=include_ci, progress=progress)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = write_metrics_table(out, cols, output_format)
    fileio.write_json(out / SETTINGS_NAME, {"averaged_runs": [str(r.path.resolve()) for r in runs], "burn_out": burn_out,
                                            "include_ci": include_ci, "num_examples": len(cols["guid"]),
                                            "label_names": runs[0].label_names, "version": __version__,
                                            "columns": list(cols)})
    logger.info("wrote %s: %d examples, averaged over %d runs; mean confidence %.4f, never learned in any run: %d",
                table, len(cols["guid"]), len(runs), float(cols["confidence"].mean()),
                int(cols["never_learned"].sum()))
    return cols


def main(argv: list[str] | None = None, *, prog: str = "training-dynamics metrics") -> int:
    """Compute and write the metrics; log a per-epoch summary."""
    run_args, metric_args, progress = parse((MetricsRunArguments, MetricsArguments, ProgressArguments), argv,
                                            prog=prog, doc=__doc__)
    setup_logging()
    from ..run import Run

    if len(run_args.run_dir) > 1:
        write_averaged(run_args.run_dir, run_args.output_dir, burn_out=metric_args.burn_out,
                       include_ci=metric_args.include_ci, progress=not progress.disable_tqdm,
                       output_format=run_args.output_format)
        return 0
    run = Run(run_args.run_dir[0]).require()
    cols, summary = run.write_metrics(burn_out=metric_args.burn_out, include_ci=metric_args.include_ci,
                                      progress=not progress.disable_tqdm, output_format=run_args.output_format)
    for epoch, loss, acc, n in zip(*(summary[c].tolist() for c in ("epoch", "loss", "accuracy", "num_examples"))):
        logger.info("epoch %d: mean loss %.4f, accuracy %.4f (%d examples)", epoch, loss, acc, n)
    logger.info("wrote %s: %d examples, metrics over epochs 0..%d, never learned: %d", run.metrics_path,
                len(cols["guid"]), (metric_args.burn_out or len(summary["epoch"])) - 1, int(cols["never_learned"].sum()))
    return 0
