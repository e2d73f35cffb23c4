"""Fine-tune a transformer on a GLUE task or a local file and record its training dynamics.

Every training example's logits are recorded once per epoch to
<dy_log_dir>/<task>/<model>/training_dynamics/dynamics_epoch_<e>.jsonl.

  training-dynamics record --model_name_or_path prajjwal1/bert-tiny --task_name sst2 \\
      --output_dir outputs/sst2-bert-tiny --num_train_epochs 5 --learning_rate 1e-4

Any flag of transformers.TrainingArguments is accepted; --help lists the common ones,
--help_all every one. On a CPU-only machine, OMP_NUM_THREADS=1 per process is often faster.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys

from training_dynamics.core.errors import TrainingDynamicsError
from training_dynamics.cli.common import parser_for, usage_errors
from training_dynamics.cli.flags import check_unknown, option_names, training_argument_names
from training_dynamics.cli.training_flags import RECORD_DEFAULTS, TRAINING_GROUP, CommonTrainingArguments, EarlyTrainingArguments


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


def with_record_defaults(argv: list[str] | dict) -> list[str] | dict:
    """``argv`` (or a ``.json`` file's dict) plus the recording's own defaults
    (:data:`~training_dynamics.cli.training_flags.RECORD_DEFAULTS`: no mid-run checkpoints, a loss line
    every 10% of the steps) where the user set none of the flags that decide them."""
    given = set(argv) if isinstance(argv, dict) else {a[2:].split("=", 1)[0].replace("-", "_")
                                                      for a in argv if a.startswith("--")}
    extra = {flag: value for flag, (value, deciders) in RECORD_DEFAULTS.items() if not given & set(deciders)}
    if isinstance(argv, dict):
        return {**argv, **extra}
    return argv + [x for flag, value in extra.items() for x in (f"--{flag}", str(value))]


def _parser(prog: str, data_class=None, doc: str = __doc__, model_class=None):
    """The parser of every recording flag; TrainingArguments' flags under their own heading.

    The heading is set on the class only while the parser is built, so the parsed arguments stay
    plain ``TrainingArguments`` (the Trainer pickles them into every checkpoint).
    """
    from transformers import TrainingArguments

    from training_dynamics.core.arguments import DynamicsArguments, ModelArguments, RecordDataArguments, SelectionArguments

    TrainingArguments._argument_group_name = TRAINING_GROUP
    try:
        return parser_for((model_class or ModelArguments, data_class or RecordDataArguments, DynamicsArguments, TrainingArguments,
                           SelectionArguments), prog=prog, doc=doc)
    finally:
        del TrainingArguments._argument_group_name


def _light_parser(prog: str, data_class=None, doc: str = __doc__, training_class=CommonTrainingArguments,
                  model_class=None, **kwargs):
    """The project's flags plus ``training_class``, without importing torch or transformers."""
    from training_dynamics.core.arguments import DynamicsArguments, ModelArguments, RecordDataArguments, SelectionArguments

    return parser_for((model_class or ModelArguments, data_class or RecordDataArguments, DynamicsArguments,
                       training_class, SelectionArguments), prog=prog, doc=doc, **kwargs)


def _print_help(prog: str, data_class, doc: str, show_all: bool, model_class=None) -> None:
    """``--help``: the project's flags and the common training flags, at once (no torch);
    ``--help_all``: every TrainingArguments flag too (imports transformers)."""
    if show_all:
        _parser(prog, data_class, doc, model_class).print_help()
        return
    parser = _light_parser(prog, data_class, doc, model_class=model_class)
    for group in parser._action_groups:
        if group.title == TRAINING_GROUP:
            group.description = "The common flags; every TrainingArguments flag works (--help_all lists them)."
    parser.print_help()


def parse_early(argv: list[str], *, prog: str = "training-dynamics record", data_class=None, doc: str = __doc__,
                model_class=None):
    """``(model, data, dynamics, early_training, selection)`` arguments, parsed without importing torch,
    so that bad data is reported in a second or two. TrainingArguments' other flags are left for
    :func:`parse_args` (which also reports any unknown flag)."""
    parser = _light_parser(prog, data_class, doc, training_class=EarlyTrainingArguments, model_class=model_class,
                           allow_abbrev=False)
    fields = training_argument_names()
    if fields is not None and not (len(argv) == 1 and argv[0].endswith(".json")):  # a typo first, before what
        check_unknown(argv, option_names(parser), extra_fields=fields)  # it left missing (--train_fle)
    with usage_errors():
        if len(argv) == 1 and argv[0].endswith(".json"):
            with open(argv[0], encoding="utf-8") as fh:
                return parser.parse_dict(json.load(fh), allow_extra_keys=True)
        *parsed, unknown = parser.parse_args_into_dataclasses(args=argv, look_for_args_file=False,
                                                             return_remaining_strings=True)
    if fields is not None:  # a mistyped flag is refused now, not after loading torch
        check_unknown(unknown, option_names(parser), extra_fields=fields)
    return tuple(parsed)


def parse_args(argv: list[str] | None = None, *, prog: str = "training-dynamics record", data_class=None,
               doc: str = __doc__, model_class=None):
    """(model, data, dynamics, training, selection) arguments from ``argv``, or from one ``.json`` file."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--help_all" in argv or "-h" in argv or "--help" in argv:
        _print_help(prog, data_class, doc, "--help_all" in argv, model_class)
        raise SystemExit(0)
    parser = _parser(prog, data_class, doc, model_class)
    raw = with_record_defaults(with_cpu_ddp_defaults(argv))
    with usage_errors():
        if isinstance(raw, dict):
            return parser.parse_dict(raw)
        return parser.parse_args_into_dataclasses(args=raw, look_for_args_file=False)


def check_model_path(model_name_or_path: str) -> None:
    """Refuse, at once, a model that can only be a local folder (an absolute path, ``./x``, ``a/b/c``) and is
    not there; a Hub id is ``name`` or ``org/name``."""
    path = os.path.expanduser(model_name_or_path)
    local = os.path.isabs(path) or path.startswith((".", "~")) or path.strip("/").count("/") > 1
    if local and not os.path.isdir(path):
        raise TrainingDynamicsError(f"--model_name_or_path {model_name_or_path}: no such folder (a local model is a "
                                    "folder saved with save_pretrained; a Hub model id is 'name' or 'org/name')")


def _flag(args: list[str] | dict, name: str) -> str | None:
    if isinstance(args, dict):
        return None if args.get(name) is None else str(args[name])
    for i, a in enumerate(args):
        if a == f"--{name}" and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(f"--{name}="):
            return a.split("=", 1)[1]
    return None


def problem_type_of(argv: list[str]) -> str | None:
    """The problem type a ``record`` command line asks for: ``--problem_type`` (transformers' name), else the
    ``problem_type`` of a local model folder's ``config.json``, else ``None``."""
    args: list[str] | dict = argv
    if len(argv) == 1 and argv[0].endswith(".json") and os.path.isfile(argv[0]):
        try:
            with open(argv[0], encoding="utf-8") as fh:
                args = json.load(fh)
        except (OSError, ValueError):
            return None  # the recording's own parser reports the file
        if not isinstance(args, dict):
            return None
    given = _flag(args, "problem_type")
    if given is not None:
        return given
    try:
        with open(os.path.join(os.path.expanduser(_flag(args, "model_name_or_path") or ""), "config.json"),
                  encoding="utf-8") as fh:
            return json.load(fh).get("problem_type")
    except (OSError, ValueError, AttributeError):
        return None


def recording_of(problem_type: str | None) -> tuple:
    """``(data arguments class, trainer builder)`` of the kind that records ``problem_type`` (a plugin's
    :meth:`Kind.recording <training_dynamics.core.kind.Kind.recording>`); ``(None, None)``: single-label."""
    if problem_type in (None, "single_label_classification"):
        return None, None
    from training_dynamics import kinds

    kind = kinds.for_problem_type(problem_type)
    if kind is None:
        raise TrainingDynamicsError(f"--problem_type {problem_type}: no kind of run records it (known: "
                                    f"single_label_classification, {', '.join(kinds.problem_types())})")
    return kind.recording()


def main(argv: list[str] | None = None, *, prog: str = "training-dynamics record", data_class=None,
         doc: str = __doc__, builder=None, model_class=None) -> int:
    """Check the flags, the model folder and the data (before torch is imported: a "no" comes in
    seconds), then train, record, save the model, evaluate."""
    from training_dynamics.cli.common import progress_bars_disabled, setup_logging

    argv = list(sys.argv[1:] if argv is None else argv)
    if data_class is None and builder is None:  # another kind's recording (--problem_type, or the model's config)?
        data_class, builder = recording_of(problem_type_of(argv))
    if "--help_all" in argv or "-h" in argv or "--help" in argv:
        _print_help(prog, data_class, doc, "--help_all" in argv, model_class)
        raise SystemExit(0)
    model_args, data_args, _, early, _ = parse_early(argv, prog=prog, data_class=data_class, doc=doc,
                                                     model_class=model_class)
    setup_logging(logging.INFO if os.environ.get("LOCAL_RANK", "0") == "0" else logging.WARNING)
    with contextlib.ExitStack() as stack:
        stack.enter_context(progress_bars_disabled(bool(early.disable_tqdm)))
        check_model_path(model_args.model_name_or_path)
        data = data_args.load(cache_dir=model_args.cache_dir)

        import transformers

        from training_dynamics.workflows.train import single_log_handler, train_and_record

        model_args, data_args, dy_args, training_args, sel_args = parse_args(argv, prog=prog, data_class=data_class,
                                                                             doc=doc, model_class=model_class)
        setup_logging(logging.INFO if training_args.should_log else logging.WARNING)
        single_log_handler()
        transformers.utils.logging.set_verbosity(training_args.get_process_log_level())
        stack.enter_context(progress_bars_disabled(bool(training_args.disable_tqdm)))  # transformers' bars too
        if getattr(dy_args, "cross_fit", 0):  # held-out evidence (training_dynamics/workflows/crossfit.py)
            from training_dynamics.workflows.crossfit import record_cross_fit

            if sel_args is not None and sel_args.with_data_selection:
                raise TrainingDynamicsError("--cross_fit 2 records all the rows; run it without --with_data_selection")
            record_cross_fit(model_args, data_args, dy_args, training_args, data=data, folds=dy_args.cross_fit,
                             builder=builder)
        else:
            train_and_record(model_args, data_args, dy_args, training_args, sel_args=sel_args, builder=builder,
                             data=data)
    end_process_group()
    return 0


def end_process_group() -> None:
    """Under torchrun: wait for every process, then close the process group, so that no process exits while
    another's communication thread still runs (gloo then aborts it: "terminate called without an active
    exception")."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
