#!/usr/bin/env python
"""Write the HTML page to review ranked label issues.

The original project's script name for `training-dynamics review` (same flags; --help lists them).
"""
import sys

from training_dynamics.cli import run_command

if __name__ == "__main__":
    sys.exit(run_command("review", sys.argv[1:], prog="review_label_issues.py"))
