"""Compute the per-example training-dynamics metrics (data-map coordinates) of a recorded run.

Reads <run_dir>/training_dynamics/dynamics_epoch_<e>.jsonl (or .npz) and writes, into <run_dir>:
td_metrics.jsonl (one line per example), td_training_summary.jsonl (loss and accuracy per epoch)
and td_metrics_settings.json. Definitions: docs/metrics.md. Several run folders of the same data
(seeds or models) are averaged example by example into --output_dir (td_metrics.jsonl,
td_metrics_settings.json); they must hold the same examples with the same labels.

  training-dynamics metrics --run_dir dy_log/sst2/bert-tiny [--burn_out 4] [--include_ci]
  training-dynamics metrics --run_dir dy_log/sst2/seed1 dy_log/sst2/seed2 --output_dir dy_log/sst2/mean
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ..arguments import MetricsArguments, ProgressArguments
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

    common_epochs: bool = field(default=False, metadata={"help": "With several --run_dir of different lengths: "
                                "average the first E epochs of each, E = the fewest any run recorded (else refused)."})

    def __post_init__(self):
        if len(self.run_dir) > 1 and not self.output_dir:
            raise ValueError("several --run_dir are averaged into --output_dir: give --output_dir")
        if len(self.run_dir) == 1 and self.output_dir:
            raise ValueError("--output_dir is for several --run_dir; one run's metrics go into its own folder")


def write_averaged(run_dirs: list[str], output_dir: str, *, burn_out: int | None, include_ci: bool,
                   progress: bool, common_epochs: bool = False) -> dict:
    """Average several runs' metrics (training_dynamics.multirun) and write them into ``output_dir``."""
    from pathlib import Path

    from .. import __version__, fileio
    from ..errors import OutputError
    from ..multirun import average_runs
    from ..run import METRICS_NAME, SETTINGS_NAME, Run

    runs = [Run(p).require() for p in run_dirs]
    out = Path(output_dir)
    for run in runs:
        if out.resolve() == run.path.resolve() or run.path.resolve() in out.resolve().parents:
            raise OutputError(f"--output_dir {out} is inside the run {run.path}, one of the runs averaged: its own "
                              "td_metrics.jsonl would be replaced by the average; choose another --output_dir")
    cols, _ = average_runs(runs, burn_out=burn_out, include_ci=include_ci, progress=progress,
                           common_epochs=common_epochs)
    epochs = burn_out or min(r.num_epochs for r in runs)
    out.mkdir(parents=True, exist_ok=True)
    fileio.write_jsonl_columns(out / METRICS_NAME, cols)
    fileio.write_json(out / SETTINGS_NAME, {"averaged_runs": [str(r.path.resolve()) for r in runs], "burn_out": epochs,
                                            "num_runs": len(runs),
                                            "include_ci": include_ci, "num_examples": len(cols["guid"]),
                                            "label_names": runs[0].label_names, "version": __version__,
                                            "columns": list(cols)})
    logger.info("wrote %s: %d examples, averaged over %d runs; mean confidence %.4f, never learned in any run: %d",
                out / METRICS_NAME, len(cols["guid"]), len(runs), float(cols["confidence"].mean()),
                int(cols["never_learned"].sum()))
    return cols


def main(argv: list[str] | None = None, *, prog: str = "training-dynamics metrics") -> int:
    """Compute and write the metrics; log a per-epoch summary."""
    run_args, metric_args, progress = parse((MetricsRunArguments, MetricsArguments, ProgressArguments), argv,
                                            prog=prog, doc=__doc__)
    setup_logging()
    from ..run import METRICS_NAME, Run

    if len(run_args.run_dir) > 1:
        write_averaged(run_args.run_dir, run_args.output_dir, burn_out=metric_args.burn_out,
                       include_ci=metric_args.include_ci, progress=not progress.disable_tqdm,
                       common_epochs=run_args.common_epochs)
        return 0
    run = Run(run_args.run_dir[0]).require()
    cols, summary = run.write_metrics(burn_out=metric_args.burn_out, include_ci=metric_args.include_ci,
                                      progress=not progress.disable_tqdm)
    for epoch, loss, acc, n in zip(*(summary[c].tolist() for c in ("epoch", "loss", "accuracy", "num_examples"))):
        logger.info("epoch %d: mean loss %.4f, accuracy %.4f (%d examples)", epoch, loss, acc, n)
    logger.info("wrote %s: %d examples, metrics over epochs 0..%d, never learned: %d", run.path / METRICS_NAME,
                len(cols["guid"]), (metric_args.burn_out or len(summary["epoch"])) - 1, int(cols["never_learned"].sum()))
    return 0
