#!/usr/bin/env python
"""Fine-tune a transformer on a GLUE task or a local file and record its training dynamics.

Dynamics go to <dy_log_dir>/<task>/<model>/training_dynamics/dynamics_epoch_<e>.jsonl.
Run with --help for every flag (model, data, dynamics and all of TrainingArguments).
"""
import sys

from training_dynamics.cli import run
from training_dynamics.train import main

if __name__ == "__main__":
    sys.exit(run(main, "run_glue_and_record_td.py"))
