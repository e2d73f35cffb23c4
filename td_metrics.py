#!/usr/bin/env python
"""Compute per-example training-dynamics metrics (data-map coordinates) of a recorded run.

    python td_metrics.py --model_dir dy_log/<task>/<model> [--burn_out N] [--include_ci]

Reads <model_dir>/training_dynamics/dynamics_epoch_<e>.jsonl (or .npz) and writes, into
<model_dir>: td_metrics.jsonl (one line per example), td_training_summary.jsonl (loss and
accuracy per epoch) and td_metrics_settings.json. Definitions: docs/metrics.md.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from training_dynamics.cli import run, setup_logging

logger = logging.getLogger("td_metrics")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="td_metrics.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model_dir", required=True,
                        help="Run folder dy_log/<task>/<model> (holding training_dynamics/); outputs go here.")
    parser.add_argument("--burn_out", type=int, default=None,
                        help="Use only the first N epochs (default: all recorded epochs).")
    parser.add_argument("--include_ci", action="store_true",
                        help="Variability as sqrt(var + var^2/(E-1)) (the seed's option) instead of the std.")
    parser.add_argument("--no_progress", action="store_true", help="No progress bar while reading.")
    args = parser.parse_args(argv)
    setup_logging()

    from training_dynamics import metrics

    cols, summary = metrics.write_td_metrics(args.model_dir, burn_out=args.burn_out, include_ci=args.include_ci,
                                             progress=not args.no_progress)
    for epoch, loss, acc, n in zip(*(summary[c].tolist() for c in ("epoch", "loss", "accuracy", "num_examples"))):
        logger.info("epoch %d: mean loss %.4f, accuracy %.4f (%d examples)", epoch, loss, acc, n)
    logger.info("wrote %s: %d examples, metrics over epochs 0..%d, never learned: %d",
                Path(args.model_dir) / metrics.METRICS_NAME, len(cols["guid"]),
                (args.burn_out or len(summary["epoch"])) - 1, int(cols["never_learned"].sum()))
    return 0


if __name__ == "__main__":
    sys.exit(run(main, "td_metrics.py"))
