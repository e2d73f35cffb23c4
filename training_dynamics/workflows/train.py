"""Fine-tune a sequence classifier and record its training dynamics (``run_glue_and_record_td.py``).

Shaped like transformers' ``run_glue.py``: the argument dataclasses (:mod:`training_dynamics.core.arguments`)
and ``TrainingArguments`` in, a trained model and recorded dynamics out; loading and tokenisation
live in :mod:`training_dynamics.core.data`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from training_dynamics.analysis import live_map
from training_dynamics.core import dynamics_file, fileio
from training_dynamics.analysis import selection
from training_dynamics.core.arguments import DataArguments, DynamicsArguments, ModelArguments, SelectionArguments
from training_dynamics.core.data import DataError, check_trainable, describe_truncation, tokenize, truncation_report
from training_dynamics.analysis.glue_metrics import classification_metrics
from training_dynamics.core.recorder import DynamicsTrainer
from training_dynamics.core.run_writer import RunWriter
from training_dynamics.analysis.run import Run, bind_data
from training_dynamics.core.errors import TrainingDynamicsError
from training_dynamics.kinds.recording import (_names, bind_training, check_head_size, load_classifier,  # noqa: F401
                                               load_report_line, run_dir, saved_config)
from training_dynamics.core.lengths import cap_max_seq_length

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
        raise TrainingDynamicsError(f"{path}: recording this run would overwrite the dynamics it was selected from; pass --dy_model_name")

    def keep(data):
        if dynamics_file.dynamics_dir(source).is_dir():  # selected from a run: its rows name these examples?
            bind_data(data, Run(source).binding, run=source, allow_changed=sel_args.allow_changed_data, guids=guids)
        train = data.train
        excluded = set(getattr(data, "excluded_guids", np.asarray([])).tolist())
        chosen = [g for g in guids if g not in excluded]
        kept = selection.select_guids(train, chosen, where=f"{path}: region {region!r}")
        logger.info("training on region %r of %s: %d of %d examples", region, path, len(kept), len(train))
        if training_args.should_save:
            with fileio.atomic_write(Path(training_args.output_dir) / "data_selection.json") as fh:
                json.dump({"data_selection_file": str(path), "region": region, "num_selected": len(kept),
                           "num_train_examples": len(train), "guids": list(kept["guid"])}, fh)
                fh.write("\n")
        return kept

    return keep, rec_args


def build_trainer(model_args: ModelArguments, data_args: DataArguments, dy_args: DynamicsArguments,
                  training_args, *, train_filter=None, record: bool = True, data=None):
    """Load data, tokenizer and model, and return a ready :class:`DynamicsTrainer`.

    ``train_filter``: optional callable ``data -> Dataset`` that returns the training set to use from
    the loaded data (guids already assigned), e.g. a selected region.
    ``record=False``: a plain ``transformers.Trainer`` that records nothing.
    ``data``: the data ``data_args`` names, when already loaded (:func:`train_and_record` loads it first).
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding

    if data is None:
        data = data_args.load(cache_dir=model_args.cache_dir, validation_file=data_args.validation_file)
    if getattr(data_args, "threshold_samples", False):
        from training_dynamics.decisions.rules import with_threshold_samples

        data = with_threshold_samples(data, seed=training_args.seed)
        model_args = replace(model_args, ignore_mismatched_sizes=True)  # a C-class head gets a (C+1)th class
    train = train_filter(data) if train_filter else data.train  # (a selection's own errors come first)
    if len(train) == 0:
        raise DataError("no training examples left to train on")
    check_trainable(data, data.source.get("train_file", data_args.task_name), max_train_samples=data_args.max_train_samples)
    check_head_size(model_args, data.num_labels)
    id2label = dict(enumerate(data.label_names))
    config = AutoConfig.from_pretrained(model_args.model_name_or_path, num_labels=data.num_labels, id2label=id2label,
                                        label2id={v: k for k, v in id2label.items()}, cache_dir=model_args.cache_dir)
    if getattr(config, "problem_type", None) == "regression":
        raise DataError(f"{model_args.model_name_or_path} is a regression model; training dynamics need a classifier")
    tokenizer = AutoTokenizer.from_pretrained(model_args.model_name_or_path, cache_dir=model_args.cache_dir)
    model = load_classifier(AutoModelForSequenceClassification, model_args, config)
    truncation = getattr(data_args, "truncation", "head")
    max_len = cap_max_seq_length(data_args.max_seq_length, tokenizer, model.config)
    with training_args.main_process_first(desc="tokenizing"):
        train_tok = tokenize(train, tokenizer, data.text_columns, max_len, truncation=truncation)
        val_tok = tokenize(data.validation, tokenizer, data.text_columns, max_len,
                           truncation=truncation) if data.validation is not None else None
    cut = truncation_report(train_tok["num_tokens"], max_len, truncation)
    (logger.warning if cut["num_truncated"] else logger.info)(describe_truncation(cut))
    train_tok = train_tok.remove_columns("num_tokens")
    if val_tok is not None:
        val_tok = val_tok.remove_columns(["guid", "num_tokens"])
    task = data_args.task_name

    def compute_metrics(p):
        return classification_metrics(np.asarray(p.predictions), np.asarray(p.label_ids), task, data.label_names)

    meta = {"data": {**data.source, "max_train_samples": data_args.max_train_samples},
            "label_names": data.label_names, "model_name_or_path": model_args.model_name_or_path,
            "seed": training_args.seed, "truncation": cut}
    if not record:
        from transformers import Trainer

        return Trainer(model=model, args=training_args, train_dataset=train_tok.remove_columns("guid"),
                       eval_dataset=val_tok, processing_class=tokenizer, data_collator=DataCollatorWithPadding(tokenizer),
                       compute_metrics=compute_metrics if val_tok is not None else None)
    return DynamicsTrainer(
        model=model, args=training_args, train_dataset=train_tok, eval_dataset=val_tok,
        processing_class=tokenizer, data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=compute_metrics if val_tok is not None else None,
        writer=RunWriter(run_dir(data_args, model_args, dy_args)), binding=bind_training(data, train),
        td_mode=dy_args.td_mode, td_format=dy_args.td_format, dynamics_meta=meta,
        overwrite_dynamics=dy_args.overwrite_dynamics)


def lora_config(model_args):
    """A ``peft.LoraConfig`` from TRL's flags (``--use_peft --lora_r ...``; as ``trl.get_peft_config``), or
    ``None`` without ``--use_peft``.

    Raises:
        ImportError: one line saying to install peft.
    """
    if not getattr(model_args, "use_peft", False):
        return None
    try:
        from peft import LoraConfig
    except ImportError:
        raise ImportError("--use_peft needs the peft package: pip install peft (or training-dynamics[peft])") from None
    targets = lora_targets(model_args.lora_target_modules)
    return LoraConfig(task_type="CAUSAL_LM", r=model_args.lora_r, lora_alpha=model_args.lora_alpha,
                      lora_dropout=model_args.lora_dropout, target_modules=targets, bias="none")


def lora_targets(names) -> list[str] | str | None:
    """``--lora_target_modules`` as TRL users type them (``c_attn``; ``q_proj v_proj``; ``q_proj,v_proj``;
    ``all-linear``) as PEFT takes them: a list of module names (each matches a module whose path ends with
    it), or PEFT's special value ``"all-linear"`` (a string; a single string would be a full-path regex)."""
    if not names:
        return None
    flat = [n for name in names for n in str(name).replace(",", " ").split()]
    if "all-linear" in flat:
        if len(flat) > 1:
            raise DataError(f"--lora_target_modules {' '.join(flat)}: all-linear already means every linear layer; "
                            "give it alone, or give module names")
        return "all-linear"
    return flat


def build_clm_trainer(model_args: ModelArguments, data_args, dy_args: DynamicsArguments, training_args, *,
                      train_filter=None, record: bool = True, data=None):
    """:func:`build_trainer` for a causal LM on prompt/response (or plain text) data
    (:class:`~training_dynamics.kinds.generative.record.CausalLMDynamicsTrainer`)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training_dynamics.kinds.generative.chat import read_chat_template
    from training_dynamics.kinds.generative.data import LABEL_NAMES, CausalLMCollator, tokenize_generative
    from training_dynamics.kinds.generative.record import CausalLMDynamicsTrainer
    from training_dynamics.kinds.generative.truncation import generative_truncation

    if data is None:
        data = data_args.load(cache_dir=model_args.cache_dir)
    train = train_filter(data) if train_filter else data.train
    if len(train) == 0:
        raise DataError("no training examples left to train on")
    config = saved_config(model_args)
    tokenizer = AutoTokenizer.from_pretrained(model_args.model_name_or_path, cache_dir=model_args.cache_dir)
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token_id is None:
            raise DataError(f"{model_args.model_name_or_path}: the tokenizer has neither a pad nor an EOS token")
        tokenizer.pad_token = tokenizer.eos_token  # padding is masked out of attention and loss
    template = read_chat_template(getattr(data_args, "chat_template", None))
    if template:
        tokenizer.chat_template = template  # (saved with the model)
    model = load_classifier(AutoModelForCausalLM, model_args, config)
    lora = lora_config(model_args)
    if lora is not None:
        from peft import get_peft_model

        model = get_peft_model(model, lora)
        lora = model.peft_config["default"]  # with the target modules PEFT chose
        trainable, total = model.get_nb_trainable_parameters()
        logger.info("LoRA r=%d alpha=%d on %s: %d of %d parameters trained", lora.r, lora.lora_alpha,
                    _names(lora.target_modules or ()), trainable, total)
    where = data.source["train_file"]
    max_len = cap_max_seq_length(data_args.max_seq_length, tokenizer, config)
    with training_args.main_process_first(desc="tokenizing"):
        train_tok = tokenize_generative(train, tokenizer, data.text_columns, max_len, where=where, with_num_tokens=True)
        val_tok = tokenize_generative(data.validation, tokenizer, data.text_columns, max_len,
                                      where=data.source.get("validation_file", where)) \
            if data.validation is not None else None
    whole = getattr(data, "conversational", False) or len(data.text_columns) == 1  # cut at the end
    cut = generative_truncation(train_tok["num_tokens"], max_len, strategy="end" if whole else "prompt_start",
                                noun=data.noun)
    train_tok = train_tok.remove_columns([c for c in ("num_tokens",) if c in train_tok.column_names])
    if val_tok is not None:
        val_tok = val_tok.remove_columns([c for c in ("guid", "num_tokens") if c in val_tok.column_names])
    kwargs = dict(model=model, args=training_args, eval_dataset=val_tok, processing_class=tokenizer,
                  data_collator=CausalLMCollator(tokenizer.pad_token_id))
    if not record:
        from transformers import Trainer

        return Trainer(train_dataset=train_tok.remove_columns("guid"), **kwargs)
    meta = {"kind": "generative", "data": {**data.source, "max_train_samples": data_args.max_train_samples},
            "label_names": list(LABEL_NAMES), "model_name_or_path": model_args.model_name_or_path,
            "seed": training_args.seed, "max_seq_length": max_len, "truncation": cut}
    if template:
        meta["chat_template"] = template  # what rendered the conversations (the review marks what was cut)
    if lora is not None:
        meta["peft"] = {"method": "lora", "r": lora.r, "lora_alpha": lora.lora_alpha, "lora_dropout": lora.lora_dropout,
                        "target_modules": sorted(lora.target_modules) if isinstance(lora.target_modules, (set, list))
                        else lora.target_modules}
    return CausalLMDynamicsTrainer(
        train_dataset=train_tok, writer=RunWriter(run_dir(data_args, model_args, dy_args)), binding=bind_training(data, train),
        td_mode=dy_args.td_mode, td_format=dy_args.td_format, dynamics_meta=meta,
        overwrite_dynamics=dy_args.overwrite_dynamics, **kwargs)


def build_ner_trainer(model_args: ModelArguments, data_args, dy_args: DynamicsArguments, training_args, *,
                      train_filter=None, record: bool = True, data=None):
    """:func:`build_trainer` for a token classifier on tagged sentences
    (:class:`~training_dynamics.kinds.token.record.TokenDynamicsTrainer`: each word's dynamics, once per epoch)."""
    from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer

    from training_dynamics.kinds.token.data import KIND, WORD, TokenCollator, tokenize_and_align
    from training_dynamics.kinds.token.record import TokenDynamicsTrainer

    if data is None:
        data = data_args.load(cache_dir=model_args.cache_dir)
    train = train_filter(data) if train_filter else data.train
    if len(train) == 0:
        raise DataError("no training sentences left to train on")
    from training_dynamics.kinds.token.data import names_from_config

    data = names_from_config(data, saved_config(model_args), given=bool(getattr(data_args, "class_names", None)))
    check_head_size(model_args, data.num_labels, head="ForTokenClassification", what=("tag", "tags"))
    id2label = dict(enumerate(data.label_names))
    config = AutoConfig.from_pretrained(model_args.model_name_or_path, num_labels=data.num_labels, id2label=id2label,
                                        label2id={v: k for k, v in id2label.items()}, cache_dir=model_args.cache_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_args.model_name_or_path, cache_dir=model_args.cache_dir)
    model = load_classifier(AutoModelForTokenClassification, model_args, config)
    where = data.source.get("train_file") or data_args.dataset_name
    max_len = cap_max_seq_length(data_args.max_seq_length, tokenizer, model.config)
    opts = dict(max_seq_length=max_len, label_all_tokens=data_args.label_all_tokens,
                label_names=data.label_names)
    with training_args.main_process_first(desc="tokenizing"):
        train_tok = tokenize_and_align(train, tokenizer, where=where, **opts)
        val_tok = tokenize_and_align(data.validation, tokenizer, where=data.source.get("validation_file", where), **opts) \
            if data.validation is not None else None
    cut = truncation_report(train_tok["num_tokens"], max_len, "head")
    (logger.warning if cut["num_truncated"] else logger.info)(
        describe_truncation(cut).replace("training texts", "training sentences").replace(
            " (--truncation head_tail keeps the start and the end)", ": the words past them are not recorded"))
    train_tok = train_tok.remove_columns("num_tokens")
    if val_tok is not None:
        val_tok = val_tok.remove_columns(["guid", WORD, "word_index", "word_tags", "num_tokens"])

    def compute_metrics(p):
        pred, labels = np.asarray(p.predictions).argmax(-1), np.asarray(p.label_ids)
        return {"accuracy": float((pred == labels)[labels != -100].mean())}

    kwargs = dict(model=model, args=training_args, eval_dataset=val_tok, processing_class=tokenizer,
                  data_collator=TokenCollator(tokenizer), compute_metrics=compute_metrics if val_tok is not None else None)
    if not record:
        from transformers import Trainer

        return Trainer(train_dataset=train_tok.remove_columns(["guid", WORD, "word_index", "word_tags"]), **kwargs)
    meta = {"kind": KIND, "data": {**data.source, "max_train_samples": data_args.max_train_samples},
            "label_names": data.label_names, "model_name_or_path": model_args.model_name_or_path,
            "seed": training_args.seed, "max_seq_length": max_len, "truncation": cut,
            "label_all_tokens": data_args.label_all_tokens}
    return TokenDynamicsTrainer(
        train_dataset=train_tok, writer=RunWriter(run_dir(data_args, model_args, dy_args)), binding=bind_training(data, train),
        td_mode=dy_args.td_mode, td_format=dy_args.td_format, dynamics_meta=meta,
        overwrite_dynamics=dy_args.overwrite_dynamics, **kwargs)


def check_training_length(training_args) -> None:
    """Refuse a run that would train nothing (``--num_train_epochs`` 0 or negative, no ``--max_steps``)."""
    if training_args.max_steps <= 0 and training_args.num_train_epochs <= 0:
        raise TrainingDynamicsError(f"--num_train_epochs must be positive, not {training_args.num_train_epochs:g} "
                         "(or give --max_steps)")


def _inputs(model_args, data_args) -> list:
    """What a recording reads: the model folder and the data files (never written over)."""
    return [model_args.model_name_or_path, getattr(data_args, "train_file", None),
            getattr(data_args, "validation_file", None)]


def check_outputs(model_args, data_args, dy_args, training_args) -> None:
    """Refuse an ``--output_dir`` (or run folder) that is one of the inputs: the model folder, a data
    file (the Trainer would write the model over the one it loads)."""
    from training_dynamics.core.outputs import Outputs

    guard = Outputs("record", inputs=_inputs(model_args, data_args))
    # every process: not an input; the main process claims the folder itself (model_dir.check_model_dir)
    guard.check_folder(training_args.output_dir, flag="--output_dir", claim=False)


def train_and_record(model_args, data_args, dy_args, training_args, *, train_filter=None,
                     sel_args: SelectionArguments | None = None, builder=None, data=None) -> dict:
    """Train (always), record dynamics, save model + tokenizer, evaluate when there is a validation set.

    ``sel_args``: train on a selected region only (see :func:`selection_filter`); recording is
    then off unless ``--record_dynamics``. Returns the evaluation metrics (empty without a
    validation set). ``builder``: :func:`build_trainer` (default) or :func:`build_clm_trainer`.
    ``data``: the loaded data, when the caller checked it already; else it is loaded (and so checked)
    before the run folder is, so that bad data is the first thing reported.
    """
    check_training_length(training_args)
    check_outputs(model_args, data_args, dy_args, training_args)
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
    if data is None:  # bad data is the first thing reported, before the run folder is checked or locked
        data = data_args.load(cache_dir=model_args.cache_dir)
    writer = RunWriter(run_dir(data_args, model_args, dy_args), inputs=_inputs(model_args, data_args))
    guard = None
    if training_args.process_index == 0:  # the model folder: claimed and checked before anything is loaded
        from training_dynamics.workflows.model_dir import check_model_dir, log_where

        log_where(training_args, given=training_args.output_dir != "trainer_output")
        guard = check_model_dir(training_args.output_dir, inputs=_inputs(model_args, data_args), run_dir=writer.run_dir,
                                overwrite=getattr(dy_args, "overwrite_output_dir", False), resume=resume)
    try:
        if record and training_args.process_index == 0:  # before loading anything: the folder is this run's
            writer.acquire()
        if record and resume is None:
            writer.check_new(overwrite=dy_args.overwrite_dynamics)
        return _train(model_args, data_args, dy_args, training_args, train_filter=train_filter, record=record,
                      resume=resume, builder=builder or build_trainer, data=data, guard=guard, run=writer.run_dir)
    finally:
        writer.release()
        if guard is not None:
            guard.release()


def _train(model_args, data_args, dy_args, training_args, *, train_filter, record: bool, resume, builder,
           data=None, guard=None, run=None) -> dict:
    from transformers import set_seed

    from training_dynamics.workflows.model_dir import register, saves_callback

    set_seed(training_args.seed)
    trainer = builder(model_args, data_args, dy_args, training_args, train_filter=train_filter, record=record,
                      data=data)
    if record:
        live_map.attach(trainer)  # the data map in TensorBoard / W&B (--report_to), after each written epoch
    if guard is not None:  # each checkpoint recorded as record's once saved: a crashed run can be resumed
        trainer.add_callback(saves_callback(guard, training_args.output_dir, run))
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
    if guard is not None:
        register(guard, training_args.output_dir, run)
    if record:
        log_recorded(trainer)
    return metrics


def log_recorded(trainer: DynamicsTrainer) -> None:
    """The last line of a recording: the run folder and the epochs this run recorded there."""
    written, folder = trainer.epochs_written, trainer.dynamics_dir
    if not trainer.is_world_process_zero():
        return  # only the main process writes (and so knows what was written)
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

