"""Argument dataclasses of the library and its commands (as transformers keeps ``TrainingArguments`` in the
library): each flag is declared once, and the command line imports them from here.

Flag names follow Hugging Face's (``--output_dir``, ``--disable_tqdm``, ``--seed``,
``--per_device_eval_batch_size``); the original project's names stay as aliases (``--model_dir``,
``--no_progress``, ``--batch_size``, ``--plots_dir``, ``--max_instances_to_plot``).
This module imports nothing heavy (no torch, no pandas): a command's ``--help`` and its argument
errors come fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .binding import ALLOW_HELP
from .data import load_text_classification, split_list
from .errors import TrainingDynamicsError


def _check_positive(**values: int | None) -> None:
    for name, v in values.items():
        if v is not None and v < 1:
            raise TrainingDynamicsError(f"--{name} must be >= 1, not {v}")


def _check_fraction(name: str, q: float) -> None:
    if not 0 < q <= 1:
        raise TrainingDynamicsError(f"--{name} must lie in (0, 1], not {q}")


@dataclass
class RunArguments:
    """Which recorded run."""

    _argument_group_name = "run"
    run_dir: str = field(metadata={"aliases": ["--model_dir"], "help": "Run folder <dy_log_dir>/<task>/<model> "
                                   "(holding training_dynamics/), as written by `training-dynamics record`."})


@dataclass
class MetricsArguments:
    """How the per-example metrics are computed from the recorded epochs."""

    _argument_group_name = "metrics"
    burn_out: int | None = field(default=None, metadata={"help": "Use only the first N recorded epochs (default: all)."})
    include_ci: bool = field(default=False, metadata={"help": "Variability with the seed's small-sample correction "
                                                      "sqrt(var + var^2/(E-1)) instead of the plain std."})

    def __post_init__(self):
        _check_positive(burn_out=self.burn_out)


@dataclass
class ProgressArguments:
    _argument_group_name = "output"
    disable_tqdm: bool = field(default=False, metadata={"aliases": ["--no_progress"], "help": "No progress bars."})


@dataclass
class MapSourceArguments:
    """A run folder, or a metrics jsonl used as it is (e.g. published data-map coordinates)."""

    _argument_group_name = "what to draw"
    run_dir: str | None = field(default=None, metadata={"aliases": ["--model_dir"], "help": "Run folder "
                                "<dy_log_dir>/<task>/<model>; its td_metrics.jsonl is (re)computed when missing or stale."})
    metrics_file: str | None = field(default=None, metadata={"help": "A td_metrics-style jsonl (guid, confidence, "
                                     "variability, correctness per line) to use as it is, instead of --run_dir."})
    num_epochs: int | None = field(default=None, metadata={"help": "Epochs the metrics cover, for the correctness bins "
                                   "(default: known for a run folder; needed for a bare --metrics_file)."})

    def __post_init__(self):
        if bool(self.run_dir) == bool(self.metrics_file):
            raise TrainingDynamicsError("give --run_dir (a recorded run) or --metrics_file, one of them")
        _check_positive(num_epochs=self.num_epochs)

    @property
    def source(self) -> str:
        return self.run_dir or self.metrics_file


@dataclass
class RegionArguments:
    _argument_group_name = "regions"
    proportion: float = field(default=0.33, metadata={"help": "Share of the examples in each region (easy, "
                              "ambiguous, hard): round(q*N) examples each."})

    def __post_init__(self):
        _check_fraction("proportion", self.proportion)


# -- the data and the recording run ----------------------------------------------------------
@dataclass
class ModelArguments:
    _argument_group_name = "model"
    model_name_or_path: str = field(metadata={"help": "Hub model id (e.g. prajjwal1/bert-tiny) or a local folder saved with save_pretrained."})
    cache_dir: str | None = field(default=None, metadata={"help": "Where Hub downloads are cached."})
    ignore_mismatched_sizes: bool = field(default=False, metadata={"help": "Re-initialise a classifier head whose size differs from the number of labels."})


@dataclass
class CausalLMModelArguments(ModelArguments):
    """The model of ``record-clm``, with TRL's LoRA flags (``trl.ModelConfig``'s names and defaults)."""

    use_peft: bool = field(default=False, metadata={"help": "Train LoRA adapters (PEFT) instead of every weight; the adapter is saved, not the base model. Needs `pip install peft`."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha (the adapter's scale is alpha / r)."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA path."})
    lora_target_modules: list[str] | None = field(default=None, metadata={"help": "Modules that get adapters, e.g. q_proj v_proj, or all-linear (default: PEFT's choice for the model type)."})

    def __post_init__(self):
        if not self.use_peft and (self.lora_target_modules or self.lora_r != 16 or self.lora_alpha != 32
                                  or self.lora_dropout != 0.05):
            raise ValueError("--lora_* flags need --use_peft")
        _check_positive(lora_r=self.lora_r)
        if not 0 <= self.lora_dropout < 1:
            raise ValueError(f"--lora_dropout must lie in [0, 1), not {self.lora_dropout}")


@dataclass
class DataArguments:
    """The labelled data: the flags ``record``, ``find-issues`` and ``apply`` share."""

    _argument_group_name = "data"
    task_name: str | None = field(default=None, metadata={"help": "A GLUE classification task loaded from the Hub: cola, mnli, mrpc, qnli, qqp, rte, sst2, wnli."})
    train_file: str | None = field(default=None, metadata={"help": "Training data: .csv, .tsv, .json, .jsonl or .parquet (instead of --task_name)."})
    text_columns: str | None = field(default=None, metadata={"help": "Comma-separated text column(s), one or two (a pair). Default: guessed (sentence1,sentence2 / premise,hypothesis / sentence / text)."})
    label_column: str | None = field(default=None, metadata={"help": "Label column. Default: label (or labels, gold)."})
    class_names: str | None = field(default=None, metadata={"help": "Comma-separated class (label) names in id order: fixes the id order of string labels, names the ids 0..K-1 of integer labels, or reorders a Hub task's names (default: the task's names, else sorted distinct labels)."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Use the first N training examples only (quick runs)."})

    def __post_init__(self):
        if self.task_name and self.train_file:
            raise TrainingDynamicsError("give --task_name or --train_file, not both")
        if self.max_train_samples is not None and self.max_train_samples < 1:
            raise TrainingDynamicsError(f"--max_train_samples must be >= 1, not {self.max_train_samples}")

    @property
    def given(self) -> bool:
        """Whether a data source was named."""
        return bool(self.task_name or self.train_file)

    def load(self, *, cache_dir: str | None = None, validation_file: str | None = None):
        """Load and normalise the data (:func:`training_dynamics.data.load_text_classification`)."""
        return load_text_classification(
            task_name=self.task_name, train_file=self.train_file, validation_file=validation_file,
            text_columns=split_list(self.text_columns), label_column=self.label_column,
            label_names=split_list(self.class_names), max_train_samples=self.max_train_samples, cache_dir=cache_dir)


@dataclass
class RecordDataArguments(DataArguments):
    """The data flags of a recording run: the shared ones, a validation file and the sequence length."""

    validation_file: str | None = field(default=None, metadata={"help": "Validation data in the same format; evaluated after training."})
    max_seq_length: int = field(default=128, metadata={"help": "Longer inputs are truncated (how many, and by how "
                                "much, is logged and kept in the run's dynamics_meta.json)."})
    truncation: Literal["head", "head_tail"] = field(default="head", metadata={"help": "How a text longer than "
                                                     "--max_seq_length is cut: head keeps its first tokens; head_tail "
                                                     "keeps the first quarter and the last three quarters of the "
                                                     "budget (start and end; often best for long reviews)."})
    threshold_samples: bool = field(default=False, metadata={"help": "An AUM threshold run (Pleiss et al., 2020): a "
                                    "seeded random N/(C+1) of the training examples get a fake extra class "
                                    "__threshold__. Recorded to <model>_threshold unless --dy_model_name; pass that run "
                                    "to find-issues --decision aum_threshold --threshold_run_dir."})

    def __post_init__(self):
        super().__post_init__()
        if not self.given:
            raise TrainingDynamicsError("give --task_name (a GLUE task) or --train_file")

    def load(self, *, cache_dir: str | None = None, validation_file: str | None = None):
        """Load and normalise the training data and ``--validation_file`` (unless another is given)."""
        return super().load(cache_dir=cache_dir, validation_file=validation_file or self.validation_file)


@dataclass
class DynamicsArguments:
    _argument_group_name = "training dynamics"
    dy_log_dir: str = field(default="dy_log", metadata={"help": "Root folder of recorded dynamics."})
    td_mode: Literal["in_training", "post_epoch"] = field(default="in_training", metadata={"help": "in_training: logits of each example's own training forward pass (dropout on, no extra compute; the paper's code). post_epoch: one extra eval-mode pass over the training set after each epoch."})
    td_format: Literal["jsonl", "npz"] = field(default="jsonl", metadata={"help": "jsonl (the seed's format) or npz (binary, for large datasets)."})
    dy_task_name: str | None = field(default=None, metadata={"help": "Run folder's task part: <dy_log_dir>/<dy_task_name>/<dy_model_name>. Default: --task_name, else the training file's stem, or the name of its folder when the stem says nothing (train, training, data, ...: data/sst2/train.tsv gives sst2)."})
    dy_model_name: str | None = field(default=None, metadata={"help": "Run folder's model part. Default: the last path part of --model_name_or_path; a generic one (model, final, best, checkpoint-N) is named after the folder above it."})
    cross_fit: int = field(default=0, metadata={"help": "2: held-out evidence at the cost of one run (classification): "
                           "one model per half of the rows (a seeded hash of the guid) with these settings, each "
                           "scoring the other half after every epoch; the run folder gets heldout_epoch_<e>.npz beside "
                           "the in-sample epochs, and find-issues counts from them (docs/label_errors.md). 0: off."})
    overwrite_dynamics: bool = field(default=False, metadata={"help": "Let a new recording (not --resume_from_checkpoint) replace the dynamics already in its run folder; they are replaced only once the new run completes its first epoch. Without it such a folder is refused."})


@dataclass
class SelectionArguments:
    """Retrain on a subset chosen by ``data_selection.py`` (the seed's ``run_glue.sh`` flags)."""

    _argument_group_name = "retraining on a selection"
    with_data_selection: bool = field(default=False, metadata={"help": "Train only on the examples of one region of an indices file (see data_selection.py); evaluate on the full validation set."})
    data_selection_region: str | None = field(default=None, metadata={"help": "Region to train on: hard, easy, ambiguous or random (any name in the indices file; may be left out when the file holds a single list)."})
    data_selection_file: str | None = field(default=None, metadata={"help": "Indices file: a JSON list of guids, or an object of region -> list of guids. Default: <dy_log_dir>/<task>/<data_selection_model_name>/three_regions_data_indices.json."})
    data_selection_model_name: str | None = field(default=None, metadata={"help": "Model part of the folder of the run the selection was made from. Default: --dy_model_name, else the last part of --model_name_or_path."})
    allow_changed_data: bool = field(default=False, metadata={"help": ALLOW_HELP})
    record_dynamics: bool = field(default=False, metadata={"help": "With --with_data_selection: record the training dynamics of the subset too (off by default), to <dy_log_dir>/<task>/<model>_<region>, never over the run it was selected from. Runs without a selection always record."})

    def __post_init__(self):
        if not self.with_data_selection and (self.data_selection_region or self.data_selection_file
                                             or self.data_selection_model_name):
            raise TrainingDynamicsError("--data_selection_region, --data_selection_file and --data_selection_model_name need --with_data_selection")

    @property
    def record(self) -> bool:
        """Whether this run records dynamics."""
        return self.record_dynamics or not self.with_data_selection


@dataclass
class GenerativeDataArguments:
    """Prompt/response (or plain text) data for a causal language model."""

    _argument_group_name = "data"
    train_file: str = field(metadata={"help": "Training data: .csv, .tsv, .json, .jsonl or .parquet, one prompt and response (or one conversation) per row."})
    validation_file: str | None = field(default=None, metadata={"help": "Validation data in the same format; its loss is evaluated after training."})
    prompt_column: str | None = field(default=None, metadata={"help": "Prompt column: context only, no loss (put any chat or instruction template here). Default: prompt, instruction, question, input or query."})
    response_column: str | None = field(default=None, metadata={"help": "Response column: the tokens the loss and the dynamics cover. Default: response, output, answer, completion or target."})
    text_column: str | None = field(default=None, metadata={"help": "Plain language modelling on every token of this column, instead of a prompt and a response."})
    messages_column: str | None = field(default=None, metadata={"help": "Conversations: a column of role/content turns (TRL's format), rendered with the chat template; the loss and the dynamics cover the assistant turns. Default: messages, when the file has it."})
    chat_template: str | None = field(default=None, metadata={"help": "A Jinja chat template (string, or a .jinja / tokenizer_config.json file) for a tokenizer without one (or to replace its own); saved with the model."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Use the first N training examples only (quick runs)."})
    max_seq_length: int = field(default=256, metadata={"help": "Longer examples lose the start of their prompt (then the end of their response)."})

    task_name = None  # a run folder's task part comes from the file name (or --dy_task_name)

    def __post_init__(self):
        _check_positive(max_train_samples=self.max_train_samples, max_seq_length=self.max_seq_length)

    def load(self, *, cache_dir: str | None = None):
        """Load and check the data (:func:`training_dynamics.clm_data.load_generative`)."""
        from .clm_data import load_generative

        return load_generative(train_file=self.train_file, validation_file=self.validation_file,
                               prompt_column=self.prompt_column, response_column=self.response_column,
                               text_column=self.text_column, messages_column=self.messages_column,
                               max_train_samples=self.max_train_samples, cache_dir=cache_dir)


@dataclass
class TokenDataArguments:
    """Tagged sentences for a token classifier: the flags of transformers' ``run_ner.py``."""

    _argument_group_name = "data"
    dataset_name: str | None = field(default=None, metadata={"help": "A Hub dataset of tagged sentences (e.g. conll2003), instead of --train_file."})
    dataset_config_name: str | None = field(default=None, metadata={"help": "The Hub dataset's configuration."})
    train_file: str | None = field(default=None, metadata={"help": "Training data: .csv, .json, .jsonl or .parquet, one sentence per row (a list of words and a list of tags)."})
    validation_file: str | None = field(default=None, metadata={"help": "Validation data in the same format; evaluated after training."})
    text_column_name: str | None = field(default=None, metadata={"help": "Column of the words (a list of strings). Default: tokens, else words."})
    label_column_name: str | None = field(default=None, metadata={"help": "Column of the tags, one per word (strings such as B-PER, or integer ids). Default: ner_tags, tags, labels."})
    class_names: str | None = field(default=None, metadata={"help": "Comma-separated tag names in id order: names the ids of integer tags or fixes the id order of string tags (default: the dataset's ClassLabel names, else sorted distinct tags)."})
    max_seq_length: int = field(default=128, metadata={"help": "Longer sentences are truncated; their words past the limit are not recorded."})
    label_all_tokens: bool = field(default=False, metadata={"help": "Train on every sub-token of a word (B- becomes I- after the first), not only the first; the dynamics always come from the first."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Use the first N training sentences only (quick runs)."})

    def __post_init__(self):
        if self.dataset_name and self.train_file:
            raise ValueError("give --dataset_name or --train_file, not both")
        if not (self.dataset_name or self.train_file):
            raise ValueError("give --train_file (tagged sentences) or --dataset_name")
        _check_positive(max_train_samples=self.max_train_samples, max_seq_length=self.max_seq_length)

    @property
    def task_name(self) -> str | None:
        """A run folder's task part: the Hub dataset's name (else the file's stem)."""
        return self.dataset_name.rsplit("/", 1)[-1] if self.dataset_name else None

    def load(self, *, cache_dir: str | None = None):
        """Load and check the data (:func:`training_dynamics.ner_data.load_token_classification`)."""
        from .ner_data import load_token_classification

        return load_token_classification(
            train_file=self.train_file, validation_file=self.validation_file, dataset_name=self.dataset_name,
            dataset_config_name=self.dataset_config_name, text_column_name=self.text_column_name,
            label_column_name=self.label_column_name, label_names=split_list(self.class_names),
            max_train_samples=self.max_train_samples, cache_dir=cache_dir)
