#!/usr/bin/env python
"""Fine-tune a causal language model on prompt/response data and record its training dynamics.

The script name for `training-dynamics record-clm` (same flags; --help lists them).
"""
import sys

from training_dynamics.cli import run_command

if __name__ == "__main__":
    sys.exit(run_command("record-clm", sys.argv[1:], prog="run_clm_and_record_td.py"))
