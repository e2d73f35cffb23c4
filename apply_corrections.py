#!/usr/bin/env python
"""Apply reviewed corrections and write the corrected dataset.

The original project's script name for `training-dynamics apply` (same flags; --help lists them).
"""
import sys

from training_dynamics.cli import run_command

if __name__ == "__main__":
    sys.exit(run_command("apply", sys.argv[1:], prog="apply_corrections.py"))
