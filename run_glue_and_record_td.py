#!/usr/bin/env python
"""Fine-tune a transformer and record its training dynamics.

The original project's script name for `training-dynamics record` (same flags; --help lists them).
"""
import sys

from training_dynamics.cli import run_command

if __name__ == "__main__":
    sys.exit(run_command("record", sys.argv[1:], prog="run_glue_and_record_td.py"))
