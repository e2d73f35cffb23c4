"""Fine-tune a transformer on a GLUE task or a local file and record its training dynamics.

Every training example's logits are recorded once per epoch to
<dy_log_dir>/<task>/<model>/training_dynamics/dynamics_epoch_<e>.jsonl.

  training-dynamics record --model_name_or_path prajjwal1/bert-tiny --task_name sst2 \\
      --output_dir outputs/sst2-bert-tiny --num_train_epochs 5 --learning_rate 1e-4

Any flag of transformers.TrainingArguments is accepted; --help lists the common ones,
--help_all every one. On a CPU-only machine, OMP_NUM_THREADS=1 per process is often faster.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from .common import parser_for, usage_errors

#: TrainingArguments flags shown by --help (--help_all shows every one)
COMMON_TRAINING_FLAGS = (
    "output_dir", "num_train_epochs", "max_steps", "learning_rate", "weight_decay", "warmup_steps",
    "per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps", "seed",
    "eval_strategy", "save_strategy", "save_steps", "save_total_limit", "logging_steps", "resume_from_checkpoint",
    "report_to", "disable_tqdm", "bf16", "fp16", "use_cpu", "dataloader_num_workers", "ddp_backend",
)


def _cpu_ddp_defaults() -> dict:
    """Under torchrun on a machine without a GPU: gloo + CPU, unless the user chose otherwise.

    Without both, transformers 5 / accelerate do not enter multi-CPU mode: every process would train
    alone as "process 0" and they would overwrite each other's files.
    """
    import torch

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or torch.cuda.is_available():
        return {}
    return {"ddp_backend": "gloo", "use_cpu": True}


def _no_accelerator_defaults() -> dict:
    """Without a GPU (or other accelerator): no pinned memory, which only warns there, unless the user asks."""
    import torch

    accelerator = getattr(torch, "accelerator", None)  # torch >= 2.6
    available = accelerator.is_available() if accelerator is not None else torch.cuda.is_available()
    return {} if available else {"dataloader_pin_memory": False}


def with_cpu_ddp_defaults(argv: list[str]) -> list[str] | dict:
    """``argv``, or the contents of its single ``.json`` file, plus :func:`_cpu_ddp_defaults` and
    :func:`_no_accelerator_defaults` where the user set neither."""
    defaults = {**_cpu_ddp_defaults(), **_no_accelerator_defaults()}
    if len(argv) == 1 and argv[0].endswith(".json"):
        with open(argv[0], encoding="utf-8") as fh:
            return {**defaults, **json.load(fh)}
    return argv + [x for flag, value in defaults.items() if not any(a.startswith(f"--{flag}") for a in argv)
                   for x in (f"--{flag}", str(value).lower())]


TRAINING_GROUP = "training (transformers.TrainingArguments)"


def _parser(prog: str, data_class=None, doc: str = __doc__, model_class=None):
    """The parser of every recording flag; TrainingArguments' flags under their own heading.

    The heading is set on the class only while the parser is built, so the parsed arguments stay
    plain ``TrainingArguments`` (the Trainer pickles them into every checkpoint).
    """
    from transformers import TrainingArguments

    from ..arguments import DynamicsArguments, ModelArguments, RecordDataArguments, SelectionArguments

    TrainingArguments._argument_group_name = TRAINING_GROUP
    try:
        return parser_for((model_class or ModelArguments, data_class or RecordDataArguments, DynamicsArguments, TrainingArguments,
                           SelectionArguments), prog=prog, doc=doc)
    finally:
        del TrainingArguments._argument_group_name


def _print_help(parser, show_all: bool) -> None:
    if not show_all:
        common = {f"--{name}" for name in COMMON_TRAINING_FLAGS}
        for group in parser._action_groups:
            if group.title == TRAINING_GROUP:
                group.description = "The common flags; every TrainingArguments flag works (--help_all lists them)."
                for action in group._group_actions:
                    if not common & set(action.option_strings):
                        action.help = argparse.SUPPRESS
    parser.print_help()


def parse_args(argv: list[str] | None = None, *, prog: str = "training-dynamics record", data_class=None,
               doc: str = __doc__, model_class=None):
    """(model, data, dynamics, training, selection) arguments from ``argv``, or from one ``.json`` file."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser(prog, data_class, doc, model_class)
    if "--help_all" in argv or "-h" in argv or "--help" in argv:
        _print_help(parser, "--help_all" in argv)
        raise SystemExit(0)
    raw = with_cpu_ddp_defaults(argv)
    with usage_errors():
        if isinstance(raw, dict):
            return parser.parse_dict(raw)
        return parser.parse_args_into_dataclasses(args=raw, look_for_args_file=False)


def main(argv: list[str] | None = None, *, prog: str = "training-dynamics record", data_class=None,
         doc: str = __doc__, builder=None, model_class=None) -> int:
    """Train, record, save the model, evaluate."""
    import transformers

    from ..train import single_log_handler, train_and_record
    from .common import setup_logging

    model_args, data_args, dy_args, training_args, sel_args = parse_args(argv, prog=prog, data_class=data_class, doc=doc,
                                                                         model_class=model_class)
    setup_logging(logging.INFO if training_args.should_log else logging.WARNING)
    single_log_handler()
    transformers.utils.logging.set_verbosity(training_args.get_process_log_level())
    train_and_record(model_args, data_args, dy_args, training_args, sel_args=sel_args, builder=builder)
    return 0
