#!/usr/bin/env python
"""Rank training examples by how likely their label is wrong.

The original project's script name for `training-dynamics find-issues` (same flags; --help lists them).
"""
import sys

from training_dynamics.cli import run_command

if __name__ == "__main__":
    sys.exit(run_command("find-issues", sys.argv[1:], prog="find_label_issues.py"))
