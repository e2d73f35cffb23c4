"""The common ``TrainingArguments`` flags of ``record --help``, described without importing transformers.

``transformers.TrainingArguments`` lives in a module that imports torch (several seconds); ``--help``
describes the common flags from :class:`CommonTrainingArguments` instead and answers at once.
``--help_all`` still lists every real flag. A test checks that each field here is a real flag with
the same default (or the default the recording commands choose themselves, :data:`RECORD_DEFAULTS`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

#: the heading of TrainingArguments' flags in ``record --help``
TRAINING_GROUP = "training (transformers.TrainingArguments)"

#: defaults the recording commands choose where transformers' would not suit a data-map run,
#: unless the user sets the flag (or one of the flags listed beside it)
RECORD_DEFAULTS: dict[str, tuple[str | float, tuple[str, ...]]] = {
    # no mid-run checkpoints (each holds the optimizer state: twice or three times the model);
    # the final model is saved all the same, without optimizer state
    "save_strategy": ("no", ("save_strategy", "save_steps", "save_total_limit", "resume_from_checkpoint",
                             "load_best_model_at_end")),
    # a loss line every 10% of the training steps: a 100-step run logs too (transformers: every 500 steps)
    "logging_steps": (0.1, ("logging_steps", "logging_strategy")),
}


@dataclass
class CommonTrainingArguments:
    """The common flags of ``transformers.TrainingArguments``, for ``--help`` only (never parsed into)."""

    _argument_group_name = TRAINING_GROUP
    output_dir: str | None = field(default=None, metadata={"help": "Where the final model, tokenizer, metrics and "
                                   "any checkpoints are written."})
    num_train_epochs: float = field(default=3.0, metadata={"help": "Training epochs; one dynamics file per epoch."})
    max_steps: int = field(default=-1, metadata={"help": "Train this many optimizer steps instead (overrides "
                           "--num_train_epochs); an epoch it ends inside gets no dynamics file."})
    learning_rate: float = field(default=5e-05, metadata={"help": "Initial learning rate (AdamW)."})
    weight_decay: float = field(default=0.0, metadata={"help": "Weight decay (not on biases and LayerNorm)."})
    warmup_steps: float = field(default=0, metadata={"help": "Linear warm-up steps (a float in [0, 1): a share of "
                                "all steps)."})
    per_device_train_batch_size: int = field(default=8, metadata={"help": "Training batch size per device."})
    per_device_eval_batch_size: int = field(default=8, metadata={"help": "Evaluation batch size per device."})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "Batches per optimizer step (the dynamics "
                                             "stay one row per example)."})
    seed: int = field(default=42, metadata={"help": "Seed of the model's new weights and of the data order."})
    eval_strategy: Literal["no", "steps", "epoch"] = field(default="no", metadata={"help": "Evaluate during "
                                                           "training too (the validation set is evaluated after "
                                                           "training in any case)."})
    save_strategy: Literal["no", "steps", "epoch", "best"] = field(default="no", metadata={
        "help": "Mid-run checkpoints (each holds the optimizer state, two to three times the model's size). Default "
                "here: no (transformers': steps), unless you pass --save_steps, --save_total_limit, "
                "--load_best_model_at_end or --resume_from_checkpoint. The final model and tokenizer are saved to "
                "--output_dir either way, without optimizer state. To resume a run later, record it with "
                "--save_strategy epoch (or steps)."})
    save_steps: float = field(default=500, metadata={"help": "Checkpoint every N steps with --save_strategy steps "
                              "(a float in [0, 1): a share of all steps)."})
    save_total_limit: int | None = field(default=None, metadata={"help": "Keep only the newest N checkpoints."})
    logging_steps: float = field(default=0.1, metadata={"help": "Log the training loss every N steps; a float in "
                                 "[0, 1) is a share of all steps. Default here: 0.1 (ten loss lines per run; "
                                 "transformers': every 500 steps)."})
    resume_from_checkpoint: str | None = field(default=None, metadata={"help": "Resume from a checkpoint folder, or "
                                               "'last' for the newest checkpoint-* in --output_dir; the epochs "
                                               "already recorded are kept."})
    report_to: str = field(default="none", metadata={"help": "Experiment trackers to log to (tensorboard, wandb, "
                           "all, none); tensorboard and wandb also get the data map after every recorded epoch "
                           "(an image and confidence/variability histograms)."})
    disable_tqdm: bool | None = field(default=None, metadata={"help": "No progress bars at all (loading, "
                                      "tokenizing, training, writing)."})
    bf16: bool = field(default=False, metadata={"help": "bfloat16 mixed precision."})
    fp16: bool = field(default=False, metadata={"help": "float16 mixed precision."})
    use_cpu: bool = field(default=False, metadata={"help": "Train on the CPU even when a GPU is there (chosen "
                          "itself under torchrun without a GPU)."})
    dataloader_num_workers: int = field(default=0, metadata={"help": "Data-loading worker processes (0: in the "
                                        "main process)."})
    ddp_backend: Literal["nccl", "gloo", "mpi", "xccl", "hccl", "cncl", "mccl"] | None = field(
        default=None, metadata={"help": "Distributed backend (default: nccl on GPUs; gloo chosen itself on CPUs)."})


@dataclass
class EarlyTrainingArguments:
    """The few ``TrainingArguments`` flags read before transformers is imported (the data check)."""

    disable_tqdm: bool | None = field(default=None)
