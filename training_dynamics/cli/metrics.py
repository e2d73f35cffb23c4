"""Compute the per-example training-dynamics metrics (data-map coordinates) of a recorded run.

Reads <run_dir>/training_dynamics/dynamics_epoch_<e>.jsonl (or .npz) and writes, into <run_dir>:
td_metrics.jsonl (one line per example), td_training_summary.jsonl (loss and accuracy per epoch)
and td_metrics_settings.json. Definitions: docs/metrics.md.

  training-dynamics metrics --run_dir dy_log/sst2/bert-tiny [--burn_out 4] [--include_ci]
"""

from __future__ import annotations

import logging

from .args import MetricsArguments, ProgressArguments, RunArguments
from .common import parse, setup_logging

logger = logging.getLogger(__name__)


def main(argv: list[str] | None = None, *, prog: str = "training-dynamics metrics") -> int:
    """Compute and write the metrics; log a per-epoch summary."""
    run_args, metric_args, progress = parse((RunArguments, MetricsArguments, ProgressArguments), argv,
                                            prog=prog, doc=__doc__)
    setup_logging()
    from ..run import METRICS_NAME, Run

    run = Run(run_args.run_dir).require()
    cols, summary = run.write_metrics(burn_out=metric_args.burn_out, include_ci=metric_args.include_ci,
                                      progress=not progress.disable_tqdm)
    for epoch, loss, acc, n in zip(*(summary[c].tolist() for c in ("epoch", "loss", "accuracy", "num_examples"))):
        logger.info("epoch %d: mean loss %.4f, accuracy %.4f (%d examples)", epoch, loss, acc, n)
    logger.info("wrote %s: %d examples, metrics over epochs 0..%d, never learned: %d", run.path / METRICS_NAME,
                len(cols["guid"]), (metric_args.burn_out or len(summary["epoch"])) - 1, int(cols["never_learned"].sum()))
    return 0
