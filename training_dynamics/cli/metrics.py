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
  training-dynamics metrics --run_dir dy_log/pile/llm --num_proc 8             # 8 partitions in a process pool
  training-dynamics metrics --run_dir dy_log/pile/llm --partition 3/8          # one of 8 independent jobs ...
  training-dynamics metrics --run_dir dy_log/pile/llm --merge_partitions 8     # ... merged once all 8 are done
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Literal

from training_dynamics.core.arguments import MetricsArguments, ProgressArguments
from training_dynamics.cli.common import parse, setup_logging
from training_dynamics.core.errors import TrainingDynamicsError

logger = logging.getLogger(__name__)


@dataclass
class MetricsRunArguments:
    _argument_group_name = "run"
    run_dir: list[str] = field(metadata={"aliases": ["--model_dir"], "help": "Run folder(s) <dy_log_dir>/<task>/<model> "
                                         "(holding training_dynamics/), as written by `training-dynamics record`; "
                                         "several runs of the same data are averaged into --output_dir."})
    output_dir: str | None = field(default=None, metadata={"help": "Where the averaged td_metrics.jsonl and "
                                   "td_metrics_settings.json of several runs go (required with several --run_dir)."})
    overwrite_output_dir: bool = field(default=False, metadata={"help": "Replace the averaged files an earlier "
                                       "`metrics` wrote into --output_dir, or the partition file an earlier "
                                       "`metrics --partition` wrote (never another file)."})

    output_format: Literal["auto", "jsonl", "parquet"] = field(default="auto", metadata={"help":
                               "Format of the per-example table: jsonl (td_metrics.jsonl, the seed's) or parquet "
                               "(td_metrics.parquet: columnar, several times faster at millions of examples); auto: "
                               "parquet from 1,000,000 examples on. Every command of this project reads both."})

    num_proc: int | None = field(default=None, metadata={"help": "Compute the metrics in this many partitions of "
                                 "the examples (by id), each in its own process, then merge them."})
    partition: str | None = field(default=None, metadata={"help": "I/N: compute only partition I (0..N-1) of N and write "
                                  "td_metrics.part-I-of-N.parquet (for independent jobs: a Slurm array, Ray tasks); "
                                  "merge them with --merge_partitions N."})
    merge_partitions: int | None = field(default=None, metadata={"help": "Merge the N partitions written by "
                                         "--partition I/N jobs into the run's td_metrics table."})
    common_epochs: bool = field(default=False, metadata={"help": "With several --run_dir of different lengths: "
                                "average the first E epochs of each, E = the fewest any run recorded (else refused)."})

    def __post_init__(self):
        modes = [f for f in ("num_proc", "partition", "merge_partitions") if getattr(self, f) is not None]
        if len(modes) > 1:
            raise TrainingDynamicsError(f"--{modes[0]} and --{modes[1]} do not go together: choose one")
        if modes and len(self.run_dir) > 1:
            raise TrainingDynamicsError(f"--{modes[0]} works on one --run_dir")
        for name in ("num_proc", "merge_partitions"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise TrainingDynamicsError(f"--{name} must be >= 1, not {getattr(self, name)}")
        if self.partition is not None:
            from training_dynamics.analysis.streaming import parse_partition

            parse_partition(self.partition)
        if len(self.run_dir) > 1 and not self.output_dir:
            raise TrainingDynamicsError("several --run_dir are averaged into --output_dir: give --output_dir")
        if len(self.run_dir) == 1 and self.output_dir:
            raise TrainingDynamicsError("--output_dir is for several --run_dir; one run's metrics go into its own folder")


def write_averaged(run_dirs: list[str], output_dir: str, *, burn_out: int | None, include_ci: bool,
                   progress: bool, output_format: str = "auto", common_epochs: bool = False,
                   overwrite: bool = False) -> dict:
    """Average several runs' metrics (training_dynamics.analysis.multirun) and write them into ``output_dir``."""
    from pathlib import Path

    from training_dynamics import __version__
    from training_dynamics.core import fileio
    from training_dynamics.core.errors import OutputError
    from training_dynamics.analysis.multirun import average_runs
    from training_dynamics.core.outputs import Outputs
    from training_dynamics.analysis.run import METRICS_NAME, METRICS_PARQUET_NAME, SETTINGS_NAME, Run, write_metrics_table

    out = Path(output_dir)
    runs = [Run(p).require() for p in run_dirs]
    for run in runs:
        if out.resolve() == run.path.resolve() or run.path.resolve() in out.resolve().parents:
            raise OutputError(f"--output_dir {out} is inside the run {run.path}, one of the runs averaged: its own "
                              "td_metrics.jsonl would be replaced by the average; choose another --output_dir")
    guard = Outputs("metrics", inputs=run_dirs, overwrite=overwrite)
    guard.check_folder(out)
    guard.check_files([out / METRICS_NAME, out / METRICS_PARQUET_NAME, out / SETTINGS_NAME])
    cols, _ = average_runs(runs, burn_out=burn_out, include_ci=include_ci, progress=progress,
                           common_epochs=common_epochs)
    epochs = burn_out or min(r.num_epochs for r in runs)
    out.mkdir(parents=True, exist_ok=True)
    table = write_metrics_table(out, cols, output_format)
    fileio.write_json(out / SETTINGS_NAME, {"averaged_runs": [str(r.path.resolve()) for r in runs], "burn_out": epochs,
                                            "num_runs": len(runs),
                                            "include_ci": include_ci, "num_examples": len(cols["guid"]),
                                            "label_names": runs[0].label_names, "version": __version__,
                                            "columns": list(cols)})
    guard.written(table, out / SETTINGS_NAME)
    logger.info("wrote %s: %d examples, averaged over %d runs; mean confidence %.4f, never learned in any run: %d",
                table, len(cols["guid"]), len(runs), float(cols["confidence"].mean()),
                int(cols["never_learned"].sum()))
    return cols


def _check_run_flags(run, run_args) -> None:
    """Refuse, in one line, what a run of this kind cannot do (a token run: partitions, parquet); cap
    ``--num_proc`` at the machine's cores (more processes than cores only wait on each other)."""
    used = [f"--{f}" for f in ("partition", "merge_partitions", "num_proc") if getattr(run_args, f) is not None]
    if run_args.output_format == "parquet":
        used.append("--output_format parquet")
    run.kind.check_metrics_flags(run, used)
    cpus = os.cpu_count() or 1
    if run_args.num_proc is not None and run_args.num_proc > cpus:
        logger.info("--num_proc %d: this machine has %d CPU core(s); using %d processes", run_args.num_proc, cpus,
                    cpus)
        run_args.num_proc = cpus


def main(argv: list[str] | None = None, *, prog: str = "training-dynamics metrics") -> int:
    """Compute and write the metrics; log a per-epoch summary."""
    run_args, metric_args, progress = parse((MetricsRunArguments, MetricsArguments, ProgressArguments), argv,
                                            prog=prog, doc=__doc__)
    setup_logging()
    from training_dynamics.analysis.run import Run

    if len(run_args.run_dir) > 1:
        write_averaged(run_args.run_dir, run_args.output_dir, burn_out=metric_args.burn_out,
                       include_ci=metric_args.include_ci, progress=not progress.disable_tqdm,
                       output_format=run_args.output_format, common_epochs=run_args.common_epochs,
                       overwrite=run_args.overwrite_output_dir)
        return 0
    run = Run(run_args.run_dir[0]).require()
    _check_run_flags(run, run_args)
    if run_args.partition is not None:
        from training_dynamics.core.outputs import Outputs
        from training_dynamics.analysis.partitions import partition_path, write_partition
        from training_dynamics.analysis.streaming import parse_partition

        i, k = parse_partition(run_args.partition)
        # the N jobs write their own files into the run folder at once: each file checked, no folder claimed
        guard = Outputs("metrics", inputs=[run.dynamics_dir], overwrite=run_args.overwrite_output_dir)
        guard.check_file(partition_path(run, i, k), flag=f"--partition {run_args.partition}", claim=False)
        path = write_partition(run, i, k, burn_out=metric_args.burn_out, include_ci=metric_args.include_ci,
                               progress=not progress.disable_tqdm)
        guard.written(path)
        logger.info("wrote %s; once all %d partitions are written: --merge_partitions %d", path, k, k)
        return 0
    if run_args.merge_partitions is not None or run_args.num_proc is not None:
        if run_args.merge_partitions is not None and (metric_args.burn_out is not None or metric_args.include_ci):
            raise TrainingDynamicsError("--burn_out and --include_ci belong to the --partition jobs, not to the merge")
        from training_dynamics.analysis.partitions import merge_partitions, run_partitions

        if run_args.merge_partitions is not None:
            cols, summary = merge_partitions(run, run_args.merge_partitions, output_format=run_args.output_format)
        else:
            cols, summary = run_partitions(run, run_args.num_proc, burn_out=metric_args.burn_out,
                                           include_ci=metric_args.include_ci, output_format=run_args.output_format)
    else:
        cols, summary = run.write_metrics(burn_out=metric_args.burn_out, include_ci=metric_args.include_ci,
                                          progress=not progress.disable_tqdm, output_format=run_args.output_format)
    for epoch, loss, acc, n in zip(*(summary[c].tolist() for c in ("epoch", "loss", "accuracy", "num_examples"))):
        logger.info("epoch %d: mean loss %.4f, accuracy %.4f (%d examples)", epoch, loss, acc, n)
    logger.info("wrote %s: %d examples, metrics over epochs 0..%d, never learned: %d", run.metrics_path,
                len(cols["guid"]), run.metrics_settings().get("burn_out", len(summary["epoch"])) - 1,
                int(cols["never_learned"].sum()))
    return 0
