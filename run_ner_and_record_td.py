#!/usr/bin/env python
"""Fine-tune a token classifier (NER) and record its training dynamics, word by word.

The script name for `training-dynamics record-ner` (same flags; --help lists them).
"""
import sys

from training_dynamics.cli import run_command

if __name__ == "__main__":
    sys.exit(run_command("record-ner", sys.argv[1:], prog="run_ner_and_record_td.py"))
