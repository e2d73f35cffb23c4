"""Fine-tune a sequence classifier and record its training dynamics (``run_glue_and_record_td.py``).

Shaped like transformers' ``run_glue.py``: the argument dataclasses (:mod:`training_dynamics.cli.args`)
and ``TrainingArguments`` in, a trained model and recorded dynamics out; loading and tokenisation
live in :mod:`training_dynamics.data`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from . import dynamics_file, fileio, selection
from .cli.args import DataArguments, DynamicsArguments, ModelArguments, SelectionArguments
from .data import DataError, tokenize
from .glue_metrics import classification_metrics
from .record import DynamicsTrainer
from .run import model_run_name

logger = logging.getLogger(__name__)


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
                           "num_train_examples": len(train), "guids": list(kept["guid"])}, fh)
                fh.write("\n")
        return kept

    return keep, rec_args


def run_dir(data_args: DataArguments, model_args: ModelArguments, dy_args: DynamicsArguments) -> Path:
    """``<dy_log_dir>/<task>/<model>``: the seed's layout (model part: :func:`run.model_run_name`)."""
    task = dy_args.dy_task_name or data_args.task_name or Path(data_args.train_file).stem
    model = dy_args.dy_model_name or model_run_name(model_args.model_name_or_path)
    return Path(dy_args.dy_log_dir) / task / model


def build_trainer(model_args: ModelArguments, data_args: DataArguments, dy_args: DynamicsArguments,
                  training_args, *, train_filter=None, record: bool = True):
    """Load data, tokenizer and model, and return a ready :class:`DynamicsTrainer`.

    ``train_filter``: optional callable ``Dataset -> Dataset`` applied to the loaded training set
    (guids already assigned), e.g. to keep a selected region.
    ``record=False``: a plain ``transformers.Trainer`` that records nothing.
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding

    data = data_args.load(cache_dir=model_args.cache_dir, validation_file=data_args.validation_file)
    train = train_filter(data.train) if train_filter else data.train
    if len(train) == 0:
        raise DataError("no training examples left to train on")
    id2label = dict(enumerate(data.label_names))
    config = AutoConfig.from_pretrained(model_args.model_name_or_path, num_labels=data.num_labels, id2label=id2label,
                                        label2id={v: k for k, v in id2label.items()}, cache_dir=model_args.cache_dir)
    if getattr(config, "problem_type", None) == "regression":
        raise DataError(f"{model_args.model_name_or_path} is a regression model; training dynamics need a classifier")
    tokenizer = AutoTokenizer.from_pretrained(model_args.model_name_or_path, cache_dir=model_args.cache_dir)
    model = AutoModelForSequenceClassification.from_pretrained(
        model_args.model_name_or_path, config=config, cache_dir=model_args.cache_dir,
        ignore_mismatched_sizes=model_args.ignore_mismatched_sizes)
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
        td_mode=dy_args.td_mode, td_format=dy_args.td_format, dynamics_meta=meta)


def train_and_record(model_args, data_args, dy_args, training_args, *, train_filter=None,
                     sel_args: SelectionArguments | None = None) -> dict:
    """Train (always), record dynamics, save model + tokenizer, evaluate when there is a validation set.

    ``sel_args``: train on a selected region only (see :func:`selection_filter`); recording is
    then off unless ``--record_dynamics``. Returns the evaluation metrics (empty without a
    validation set).
    """
    from transformers import set_seed

    record = True
    if sel_args is not None:
        record = sel_args.record
        if sel_args.with_data_selection:
            if train_filter is not None:
                raise ValueError("give a train_filter or a data selection, not both")
            train_filter, dy_args = selection_filter(model_args, data_args, dy_args, training_args, sel_args)
    set_seed(training_args.seed)
    trainer = build_trainer(model_args, data_args, dy_args, training_args, train_filter=train_filter, record=record)
    resume = training_args.resume_from_checkpoint
    if resume is not None and resume.lower() in ("last", "true"):
        resume = True  # the newest checkpoint-* in --output_dir
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
        logger.info("dynamics in %s", trainer.dynamics_dir)
    return metrics
