#!/usr/bin/env python
"""Compute the per-example training-dynamics metrics of a recorded run.

The original project's script name for `training-dynamics metrics` (same flags; --help lists them).
"""
import sys

from training_dynamics.cli import run_command

if __name__ == "__main__":
    sys.exit(run_command("metrics", sys.argv[1:], prog="td_metrics.py"))
