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

from training_dynamics.core.binding import ALLOW_HELP
from training_dynamics.core.data import load_text_classification, split_list
from training_dynamics.core.errors import TrainingDynamicsError

MAX_SEQ_LENGTH = 128  #: the default --max_seq_length of every kind (run_glue.py's)


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
class BaseDataArguments:
    """What every kind's data arguments share, declared once: the quick-run cut and the sequence length."""

    _argument_group_name = "data"
    max_train_samples: int | None = field(default=None, metadata={"help": "Use the first N training examples only (quick runs)."})
    max_seq_length: int = field(default=MAX_SEQ_LENGTH, metadata={"help": "Tokens per example: a longer one is cut (how many "
                                "were, and by how much, is logged and kept in the run's dynamics_meta.json; the review "
                                "page greys what the model never read). Capped by what the model's position table allows."})

    def __post_init__(self):
        _check_positive(max_train_samples=self.max_train_samples, max_seq_length=self.max_seq_length)


@dataclass
class DataArguments:
    """The labelled data: the flags ``record``, ``find-issues`` and ``apply`` share."""

    _argument_group_name = "data"
    task_name: str | None = field(default=None, metadata={"help": "A GLUE classification task loaded from the Hub: cola, mnli, mrpc, qnli, qqp, rte, sst2, wnli."})
    train_file: str | None = field(default=None, metadata={"help": "Training data: .csv, .tsv, .json, .jsonl, .parquet, or a folder written by datasets' save_to_disk (a Dataset, or a DatasetDict's train split) (instead of --task_name)."})
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
        """Load and normalise the data (:func:`training_dynamics.core.data.load_text_classification`)."""
        return load_text_classification(
            task_name=self.task_name, train_file=self.train_file, validation_file=validation_file,
            text_columns=split_list(self.text_columns), label_column=self.label_column,
            label_names=split_list(self.class_names), max_train_samples=self.max_train_samples, cache_dir=cache_dir)


@dataclass
class RecordDataArguments(DataArguments, BaseDataArguments):
    """The data flags of a recording run: the shared ones, a validation file and the sequence length."""

    validation_file: str | None = field(default=None, metadata={"help": "Validation data in the same format; evaluated after training."})
    truncation: Literal["head", "head_tail"] = field(default="head", metadata={"help": "How a text longer than "
                                                     "--max_seq_length is cut: head keeps its first tokens; head_tail "
                                                     "keeps the first quarter and the last three quarters of the "
                                                     "budget (start and end; often best for long reviews)."})
    problem_type: str | None = field(default=None, metadata={"choices": ["single_label_classification",
                                     "multi_label_classification"], "help": "As transformers' config.problem_type: "
                                     "multi_label_classification trains with BCE on a label column holding a list of "
                                     "label names per row (or a multi-hot list with --class_names) and records every "
                                     "(example, label). Default: the model config's problem_type, else single-label."})
    threshold_samples: bool = field(default=False, metadata={"help": "An AUM threshold run (Pleiss et al., 2020): a "
                                    "seeded random N/(C+1) of the training examples get a fake extra class "
                                    "__threshold__. Recorded to <model>_threshold unless --dy_model_name; pass that run "
                                    "to find-issues --decision aum_threshold --threshold_run_dir."})

    def __post_init__(self):
        DataArguments.__post_init__(self)
        BaseDataArguments.__post_init__(self)
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
    cross_fit: int = field(default=0, metadata={"help": "2: held-out evidence at about the cost of one run (record, "
                           "multi-label included, and record-ner): one model per half of the rows (a seeded hash of the guid) with these settings, "
                           "each scoring the other half after every epoch; the run folder gets heldout_epoch_<e>.npz "
                           "beside the in-sample epochs, and find-issues ranks and counts with them "
                           "(docs/label_errors.md). 0: off."})
    overwrite_dynamics: bool = field(default=False, metadata={"help": "Let a new recording (not --resume_from_checkpoint) replace the dynamics already in its run folder; they are replaced only once the new run completes its first epoch. Without it such a folder is refused."})
    overwrite_output_dir: bool = field(default=False, metadata={"help": "Let the Trainer replace the model an earlier `training-dynamics record` saved in --output_dir (as run_glue.py's flag). Without it such a folder is refused; a folder holding files training-dynamics did not write (another model, your own files) is refused even with it."})


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
