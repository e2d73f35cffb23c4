"""Fine-tune a sequence classifier and record its training dynamics (``run_glue_and_record_td.py``).

Shaped like transformers' ``run_glue.py``: dataclass arguments parsed by ``HfArgumentParser``
together with ``TrainingArguments``; loading and tokenisation live in :mod:`training_dynamics.data`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from . import dynamics_file, fileio, selection
from .data import DataError, check_trainable, load_text_classification, tokenize
from .glue_metrics import classification_metrics
from .record import TD_MODES, DynamicsTrainer, check_dynamics_dir

logger = logging.getLogger(__name__)


@dataclass
class ModelArguments:
    model_name_or_path: str = field(metadata={"help": "Hub model id (e.g. prajjwal1/bert-tiny) or a local folder saved with save_pretrained."})
    cache_dir: str | None = field(default=None, metadata={"help": "Where Hub downloads are cached."})
    ignore_mismatched_sizes: bool = field(default=False, metadata={"help": "Re-initialise a classifier head whose size differs from the number of labels."})


@dataclass
class DataArguments:
    task_name: str | None = field(default=None, metadata={"help": "A GLUE classification task loaded from the Hub: cola, mnli, mrpc, qnli, qqp, rte, sst2, wnli."})
    train_file: str | None = field(default=None, metadata={"help": "Training data: .csv, .tsv, .json, .jsonl or .parquet (instead of --task_name)."})
    validation_file: str | None = field(default=None, metadata={"help": "Validation data in the same format; evaluated after training."})
    text_columns: str | None = field(default=None, metadata={"help": "Comma-separated text column(s), one or two (a pair). Default: guessed (sentence1,sentence2 / premise,hypothesis / sentence / text)."})
    label_column: str | None = field(default=None, metadata={"help": "Label column. Default: label (or labels, gold)."})
    class_names: str | None = field(default=None, metadata={"help": "Comma-separated class (label) names in id order: fixes the id order of string labels, names the ids 0..K-1 of integer labels, or reorders a Hub task's names (default: the task's names, else sorted distinct labels)."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Train on the first N training examples only (quick runs)."})
    max_seq_length: int = field(default=128, metadata={"help": "Longer inputs are truncated."})

    def __post_init__(self):
        if not self.task_name and not self.train_file:
            raise ValueError("give --task_name (a GLUE task) or --train_file")
        if self.task_name and self.train_file:
            raise ValueError("give --task_name or --train_file, not both")


@dataclass
class DynamicsArguments:
    dy_log_dir: str = field(default="dy_log", metadata={"help": "Root folder of recorded dynamics."})
    td_mode: str = field(default="in_training", metadata={"help": "in_training: logits of each example's own training forward pass (dropout on, no extra compute; the paper's code). post_epoch: one extra eval-mode pass over the training set after each epoch."})
    td_format: str = field(default="jsonl", metadata={"help": "jsonl (the seed's format) or npz (binary, for large datasets)."})
    dy_task_name: str | None = field(default=None, metadata={"help": "Run folder's task part: <dy_log_dir>/<dy_task_name>/<dy_model_name>. Default: --task_name, else the training file's stem."})
    dy_model_name: str | None = field(default=None, metadata={"help": "Run folder's model part. Default: last path part of --model_name_or_path."})
    overwrite_dynamics: bool = field(default=False, metadata={"help": "Let a new recording (not --resume_from_checkpoint) replace the dynamics already in its run folder; they are replaced only once the new run completes its first epoch. Without it such a folder is refused."})

    def __post_init__(self):
        if self.td_mode not in TD_MODES:
            raise ValueError(f"--td_mode must be one of {', '.join(TD_MODES)}, not {self.td_mode!r}")
        if self.td_format not in dynamics_file.FORMATS:
            raise ValueError(f"--td_format must be one of {', '.join(dynamics_file.FORMATS)}, not {self.td_format!r}")


@dataclass
class SelectionArguments:
    """Retrain on a subset chosen by ``data_selection.py`` (the seed's ``run_glue.sh`` flags)."""

    with_data_selection: bool = field(default=False, metadata={"help": "Train only on the examples of one region of an indices file (see data_selection.py); evaluate on the full validation set."})
    data_selection_region: str | None = field(default=None, metadata={"help": "Region to train on: hard, easy, ambiguous or random (any name in the indices file; may be left out when the file holds a single list)."})
    data_selection_file: str | None = field(default=None, metadata={"help": "Indices file: a JSON list of guids, or an object of region -> list of guids. Default: <dy_log_dir>/<task>/<data_selection_model_name>/three_regions_data_indices.json."})
    data_selection_model_name: str | None = field(default=None, metadata={"help": "Model part of the folder of the run the selection was made from. Default: --dy_model_name, else the last part of --model_name_or_path."})
    record_dynamics: bool = field(default=False, metadata={"help": "With --with_data_selection: record the training dynamics of the subset too (off by default), to <dy_log_dir>/<task>/<model>_<region>, never over the run it was selected from. Runs without a selection always record."})

    def __post_init__(self):
        if not self.with_data_selection and (self.data_selection_region or self.data_selection_file
                                             or self.data_selection_model_name):
            raise ValueError("--data_selection_region, --data_selection_file and --data_selection_model_name need --with_data_selection")

    @property
    def record(self) -> bool:
        """Whether this run records dynamics."""
        return self.record_dynamics or not self.with_data_selection


def selection_file(data_args: DataArguments, model_args: ModelArguments, dy_args: DynamicsArguments,
                   sel_args: SelectionArguments) -> Path:
    """The indices file a selection run reads (``--data_selection_file`` or the seed's default)."""
    if sel_args.data_selection_file:
        return Path(sel_args.data_selection_file)
    source = replace(dy_args, dy_model_name=sel_args.data_selection_model_name or dy_args.dy_model_name)
    return run_dir(data_args, model_args, source) / selection.INDICES_NAME


def selection_filter(model_args: ModelArguments, data_args: DataArguments, dy_args: DynamicsArguments,
                     training_args, sel_args: SelectionArguments):
    """Read the selected guids now (fail before loading a model) and return
    ``(train_filter, dy_args)``: the filter keeps exactly those guids of the loaded training set
    (matched by guid, whatever the row order) and records the selection in
    ``<output_dir>/data_selection.json``; ``dy_args`` points a recording to
    ``<dy_log_dir>/<task>/<model>_<region>`` so it never overwrites the source run."""
    path = selection_file(data_args, model_args, dy_args, sel_args)
    region, guids = selection.read_indices(path, sel_args.data_selection_region)
    rec_args = replace(dy_args, dy_model_name=f"{run_dir(data_args, model_args, dy_args).name}_{region}")
    source = path.parent.resolve()
    if sel_args.record and run_dir(data_args, model_args, rec_args).resolve() == source:
        raise ValueError(f"{path}: recording this run would overwrite the dynamics it was selected from; pass --dy_model_name")

    def keep(train):
        kept = selection.select_guids(train, guids, where=f"{path}: region {region!r}")
        logger.info("training on region %r of %s: %d of %d examples", region, path, len(kept), len(train))
        if training_args.should_save:
            with fileio.atomic_write(Path(training_args.output_dir) / "data_selection.json") as fh:
                json.dump({"data_selection_file": str(path), "region": region, "num_selected": len(kept),
                           "num_train_examples": len(train), "guids": [int(g) for g in kept["guid"]]}, fh)
                fh.write("\n")
        return kept

    return keep, rec_args


def run_dir(data_args: DataArguments, model_args: ModelArguments, dy_args: DynamicsArguments) -> Path:
    """``<dy_log_dir>/<task>/<model>``: the seed's layout."""
    task = dy_args.dy_task_name or data_args.task_name or Path(data_args.train_file).stem
    model = dy_args.dy_model_name or Path(model_args.model_name_or_path.rstrip("/")).name
    return Path(dy_args.dy_log_dir) / task / model


def _split(s: str | None) -> list[str] | None:
    return [x.strip() for x in s.split(",") if x.strip()] if s else None


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


def _with_cpu_ddp_defaults(argv: list[str]) -> list[str] | dict:
    """``argv``, or the contents of its single ``.json`` file, plus :func:`_cpu_ddp_defaults` and
    :func:`_no_accelerator_defaults` where the user set neither."""
    defaults = {**_cpu_ddp_defaults(), **_no_accelerator_defaults()}
    if len(argv) == 1 and argv[0].endswith(".json"):
        with open(argv[0], encoding="utf-8") as fh:
            return {**defaults, **json.load(fh)}
    return argv + [x for flag, value in defaults.items() if not any(a.startswith(f"--{flag}") for a in argv)
                   for x in (f"--{flag}", str(value).lower())]


def parse_args(argv: list[str] | None = None, *, with_selection: bool = False):
    """Parse (model, data, dynamics, training) arguments, or one ``.json`` file of them; ``--help``
    lists them all.

    ``with_selection=True`` also parses :class:`SelectionArguments` and returns it fifth.
    """
    from transformers import HfArgumentParser, TrainingArguments

    raw = _with_cpu_ddp_defaults(list(sys.argv[1:] if argv is None else argv))
    classes = (ModelArguments, DataArguments, DynamicsArguments, TrainingArguments)
    parser = HfArgumentParser(classes + ((SelectionArguments,) if with_selection else ()),
                              description=__doc__.split("\n\n")[0])
    return parser.parse_dict(raw) if isinstance(raw, dict) else parser.parse_args_into_dataclasses(args=raw)


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


def build_trainer(model_args: ModelArguments, data_args: DataArguments, dy_args: DynamicsArguments,
                  training_args, *, train_filter=None, record: bool = True):
    """Load data, tokenizer and model, and return a ready :class:`DynamicsTrainer`.

    ``train_filter``: optional callable ``Dataset -> Dataset`` applied to the loaded training set
    (guids already assigned), e.g. to keep a selected region.
    ``record=False``: a plain ``transformers.Trainer`` that records nothing.
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding

    data = load_text_classification(
        task_name=data_args.task_name, train_file=data_args.train_file, validation_file=data_args.validation_file,
        text_columns=_split(data_args.text_columns), label_column=data_args.label_column,
        label_names=_split(data_args.class_names), max_train_samples=data_args.max_train_samples,
        cache_dir=model_args.cache_dir)
    train = train_filter(data.train) if train_filter else data.train  # (a selection's own errors come first)
    if len(train) == 0:
        raise DataError("no training examples left to train on")
    check_trainable(data, data.source.get("train_file", data_args.task_name), max_train_samples=data_args.max_train_samples)
    id2label = dict(enumerate(data.label_names))
    config = AutoConfig.from_pretrained(model_args.model_name_or_path, num_labels=data.num_labels, id2label=id2label,
                                        label2id={v: k for k, v in id2label.items()}, cache_dir=model_args.cache_dir)
    if getattr(config, "problem_type", None) == "regression":
        raise DataError(f"{model_args.model_name_or_path} is a regression model; training dynamics need a classifier")
    tokenizer = AutoTokenizer.from_pretrained(model_args.model_name_or_path, cache_dir=model_args.cache_dir)
    model = load_classifier(AutoModelForSequenceClassification, model_args, config)
    with training_args.main_process_first(desc="tokenizing"):
        train_tok = tokenize(train, tokenizer, data.text_columns, data_args.max_seq_length)
        val_tok = tokenize(data.validation, tokenizer, data.text_columns, data_args.max_seq_length) \
            if data.validation is not None else None
    if val_tok is not None:
        val_tok = val_tok.remove_columns("guid")
    task = data_args.task_name

    def compute_metrics(p):
        return classification_metrics(np.asarray(p.predictions), np.asarray(p.label_ids), task, data.label_names)

    meta = {"data": {**data.source, "max_train_samples": data_args.max_train_samples},
            "label_names": data.label_names, "model_name_or_path": model_args.model_name_or_path,
            "seed": training_args.seed}
    if not record:
        from transformers import Trainer

        return Trainer(model=model, args=training_args, train_dataset=train_tok.remove_columns("guid"),
                       eval_dataset=val_tok, processing_class=tokenizer, data_collator=DataCollatorWithPadding(tokenizer),
                       compute_metrics=compute_metrics if val_tok is not None else None)
    return DynamicsTrainer(
        model=model, args=training_args, train_dataset=train_tok, eval_dataset=val_tok,
        processing_class=tokenizer, data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=compute_metrics if val_tok is not None else None,
        dynamics_dir=dynamics_file.dynamics_dir(run_dir(data_args, model_args, dy_args)),
        td_mode=dy_args.td_mode, td_format=dy_args.td_format, dynamics_meta=meta,
        overwrite_dynamics=dy_args.overwrite_dynamics)


def check_training_length(training_args) -> None:
    """Refuse a run that would train nothing (``--num_train_epochs`` 0 or negative, no ``--max_steps``)."""
    if training_args.max_steps <= 0 and training_args.num_train_epochs <= 0:
        raise ValueError(f"--num_train_epochs must be positive, not {training_args.num_train_epochs:g} "
                         "(or give --max_steps)")


def train_and_record(model_args, data_args, dy_args, training_args, *, train_filter=None,
                     sel_args: SelectionArguments | None = None) -> dict:
    """Train (always), record dynamics, save model + tokenizer, evaluate when there is a validation set.

    ``sel_args``: train on a selected region only (see :func:`selection_filter`); recording is
    then off unless ``--record_dynamics``. Returns the evaluation metrics (empty without a
    validation set).
    """
    from transformers import set_seed

    check_training_length(training_args)
    record = True
    if sel_args is not None:
        record = sel_args.record
        if sel_args.with_data_selection:
            if train_filter is not None:
                raise ValueError("give a train_filter or a data selection, not both")
            train_filter, dy_args = selection_filter(model_args, data_args, dy_args, training_args, sel_args)
    resume = training_args.resume_from_checkpoint
    if resume is not None and resume.lower() in ("last", "true"):
        resume = True  # the newest checkpoint-* in --output_dir
    if record and resume is None:  # before loading anything
        check_dynamics_dir(dynamics_file.dynamics_dir(run_dir(data_args, model_args, dy_args)),
                           overwrite=dy_args.overwrite_dynamics)
    set_seed(training_args.seed)
    trainer = build_trainer(model_args, data_args, dy_args, training_args, train_filter=train_filter, record=record)
    result = trainer.train(resume_from_checkpoint=resume)
    trainer.save_model()
    trainer.log_metrics("train", result.metrics)
    trainer.save_metrics("train", result.metrics)
    trainer.save_state()
    metrics = {}
    if trainer.eval_dataset is not None:
        metrics = trainer.evaluate()
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)
    if record:
        log_recorded(trainer)
    return metrics


def log_recorded(trainer: DynamicsTrainer) -> None:
    """The last line of a recording: the run folder and the epochs this run recorded there."""
    written, folder = trainer.epochs_written, trainer.dynamics_dir
    if written:
        logger.info("run folder %s: this run recorded the training dynamics of epoch(s) %s in %s", folder.parent,
                    f"{written[0]}..{written[-1]}" if len(written) > 1 else written[0], folder.name)
    else:
        kept = trainer.recorded_epochs()
        logger.warning("run folder %s: this run recorded no training dynamics%s", folder.parent,
                       f" ({folder.name} keeps the {len(kept)} epoch(s) recorded before)" if kept else "")


#: libraries that attach their own stderr handler at import; under CI=true (transformers) or always
#: (datasets, huggingface_hub) they also propagate to the root logger, so each line came out twice
_OWN_HANDLER_LIBRARIES = ("transformers", "datasets", "huggingface_hub")


def single_log_handler() -> None:
    """Route the libraries' log records through the root logger's handler only (one line per record).

    Call after configuring the root logger. The libraries are imported first, as they attach their
    handler when imported.
    """
    import datasets  # noqa: F401
    import huggingface_hub  # noqa: F401
    import transformers

    transformers.utils.logging.disable_default_handler()
    for name in _OWN_HANDLER_LIBRARIES:
        lib = logging.getLogger(name)
        for handler in list(lib.handlers):
            lib.removeHandler(handler)
        lib.propagate = True


def main(argv: list[str] | None = None) -> int:
    """``run_glue_and_record_td.py`` entry point."""
    import transformers

    from .cli import setup_logging

    model_args, data_args, dy_args, training_args, sel_args = parse_args(argv, with_selection=True)
    setup_logging(logging.INFO if training_args.should_log else logging.WARNING)
    single_log_handler()
    transformers.utils.logging.set_verbosity(training_args.get_process_log_level())
    train_and_record(model_args, data_args, dy_args, training_args, sel_args=sel_args)
    return 0
