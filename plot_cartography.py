#!/usr/bin/env python
"""Draw the data map of a recorded run.

The original project's script name for `training-dynamics plot` (same flags; --help lists them).
"""
import sys

from training_dynamics.cli import run_command

if __name__ == "__main__":
    sys.exit(run_command("plot", sys.argv[1:], prog="plot_cartography.py"))
