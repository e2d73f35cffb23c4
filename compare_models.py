#!/usr/bin/env python
"""Compare the data maps of a weak and a strong model.

The original project's script name for `training-dynamics compare` (same flags; --help lists them).
"""
import sys

from training_dynamics.cli import run_command

if __name__ == "__main__":
    sys.exit(run_command("compare", sys.argv[1:], prog="compare_models.py"))
