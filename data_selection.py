#!/usr/bin/env python
"""Select hard / easy / ambiguous training examples from recorded dynamics.

The original project's script name for `training-dynamics select` (same flags; --help lists them).
"""
import sys

from training_dynamics.cli import run_command

if __name__ == "__main__":
    sys.exit(run_command("select", sys.argv[1:], prog="data_selection.py"))
