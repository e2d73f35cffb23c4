"""What the recording of every kind shares: the run folder a recording writes to, loading a model with its
weight-loading report on one line, the head-size check, and the binding of the examples trained on.

Not a kind: the kinds' recorders (``kinds/<kind>/record.py``) and the recording workflow import it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from training_dynamics.analysis.run import Run, model_run_name, task_run_name
from training_dynamics.core.arguments import DataArguments, DynamicsArguments, ModelArguments
from training_dynamics.core.binding import bind
from training_dynamics.core.data import DataError

logger = logging.getLogger(__name__)


def run_dir(data_args: DataArguments, model_args: ModelArguments, dy_args: DynamicsArguments) -> Path:
    """``<dy_log_dir>/<task>/<model>``: the seed's layout (model part: :func:`run.model_run_name`)."""
    task = dy_args.dy_task_name or data_args.task_name or task_run_name(data_args.train_file)
    model = dy_args.dy_model_name or model_run_name(model_args.model_name_or_path)
    if getattr(data_args, "threshold_samples", False) and not dy_args.dy_model_name:
        model += "_threshold"  # never over the run it gives a threshold to
    return Run.at(dy_args.dy_log_dir, task, model).path


class _HoldLoadReport(logging.Filter):
    """Holds back transformers' multi-line weight-loading table ("... LOAD REPORT ...")."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if "LOAD REPORT" in record.getMessage():
            self.held.append(record)
            return False
        return True


def _names(keys, limit: int = 3) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:limit]) + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def load_report_line(model, name: str, info: dict) -> tuple[int, str] | None:
    """``(level, message)``: transformers' weight-loading report on one line (``None``: nothing to report).

    New weights only in the task head (the usual fine-tuning case) are INFO; new weights in the
    model body or weights re-initialised for a size mismatch are a WARNING.
    """
    missing, unexpected = set(info.get("missing_keys") or ()), set(info.get("unexpected_keys") or ())
    mismatched = {k[0] if isinstance(k, (tuple, list)) else k for k in info.get("mismatched_keys") or ()}
    if not (missing or unexpected or mismatched):
        return None
    parts = []
    if missing:
        parts.append(f"{len(missing)} newly initialised ({_names(missing)})")
    if mismatched:
        parts.append(f"{len(mismatched)} re-initialised for a size mismatch ({_names(mismatched)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unused from the checkpoint ({_names(unexpected)})")
    prefix = getattr(model, "base_model_prefix", "") or "\0"
    body = mismatched or {k for k in missing if k.startswith(prefix + ".")}
    level = logging.WARNING if body else logging.INFO
    return level, f"loaded {name}: weights {'; '.join(parts)}" + ("" if body else "; fine-tuning trains the new head")


def load_classifier(auto_class, model_args: ModelArguments, config):
    """``auto_class.from_pretrained`` with transformers' long weight-loading table logged as one line
    (the table itself only when loading fails, as it explains the error)."""
    hold = _HoldLoadReport()
    report_logger = logging.getLogger("transformers.modeling_utils")
    report_logger.addFilter(hold)
    try:
        model, info = auto_class.from_pretrained(
            model_args.model_name_or_path, config=config, cache_dir=model_args.cache_dir,
            ignore_mismatched_sizes=model_args.ignore_mismatched_sizes, output_loading_info=True)
    except BaseException:
        report_logger.removeFilter(hold)
        for record in hold.held:
            report_logger.handle(record)
        raise
    report_logger.removeFilter(hold)
    line = load_report_line(model, model_args.model_name_or_path, info)
    if line is not None:
        logger.log(*line)
    return model


def saved_config(model_args: ModelArguments):
    """The model's config as saved; a model that cannot be found (not a folder, nor a reachable Hub id)
    is one line, not transformers' ``OSError`` traceback."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(model_args.model_name_or_path, cache_dir=model_args.cache_dir)
    except OSError as exc:
        raise DataError(f"--model_name_or_path {model_args.model_name_or_path}: cannot load a model config "
                        f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from exc


def check_head_size(model_args: ModelArguments, num_labels: int, *, head: str = "ForSequenceClassification",
                    what: tuple[str, str] = ("class", "classes")) -> None:
    """Refuse, before loading the weights, a model that cannot be found, or a saved classifier whose
    head has another number of classes than the data (unless ``--ignore_mismatched_sizes``): loading it
    would end in a size-mismatch traceback."""
    saved = saved_config(model_args)
    if model_args.ignore_mismatched_sizes:
        return
    if not any(a.endswith(head) for a in getattr(saved, "architectures", None) or ()):
        return  # a base model: its new head gets the data's classes
    if saved.num_labels != num_labels:
        raise DataError(f"{model_args.model_name_or_path} is a classifier with {saved.num_labels} {what[1]} but the "
                        f"data has {num_labels}; pass --ignore_mismatched_sizes to train a new {num_labels}-{what[0]} "
                        "head (or check --class_names and the label column)")


def bind_training(data, train):
    """The binding of the examples trained on (``train``: the loaded set, maybe a selected region of it)."""
    from dataclasses import replace as dc_replace

    return bind(dc_replace(data, train=train))


def cut_like_training(trainer, rows, data):
    """``rows`` of ``data`` tokenized as the run's training texts were (the one cutter, with the run's
    ``truncation`` from ``trainer.dynamics_meta``), ready for ``trainer.predict``: a held-out scorer's input."""
    from training_dynamics.core.data import tokenize

    cut = trainer.dynamics_meta["truncation"]
    tok = tokenize(rows, trainer.processing_class, data.text_columns, cut["max_seq_length"], truncation=cut["strategy"])
    return tok.remove_columns([c for c in ("guid", "num_tokens") if c in tok.column_names])
