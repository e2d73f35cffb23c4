"""Fine-tune a causal language model on prompt/response data and record its training dynamics.

The loss (and the dynamics) cover the response tokens only. Every training example's mean token
log-probability, token accuracy, token margin and length are recorded once per epoch to
<dy_log_dir>/<task>/<model>/training_dynamics/dynamics_epoch_<e>.jsonl; every analysis command
(metrics, plot, select, compare, find-issues, review) reads the run as it reads a classifier's.

  training-dynamics record-clm --model_name_or_path Qwen/Qwen2.5-0.5B --train_file sft.jsonl \\
      --prompt_column prompt --response_column response --output_dir outputs/sft-qwen \\
      --num_train_epochs 3 --learning_rate 2e-5 --per_device_train_batch_size 8

Conversations (a messages column) are rendered with the chat template and learned on the assistant
turns; --use_peft trains LoRA adapters (TRL's --lora_r --lora_alpha --lora_dropout --lora_target_modules).
Any flag of transformers.TrainingArguments is accepted (e.g. --fsdp, --bf16, --gradient_checkpointing;
on CPU processes accelerate ignores --fsdp and trains with DDP); --help lists the common ones,
--help_all every one.
"""

from __future__ import annotations


def _build_clm_trainer(*args, **kwargs):
    """:func:`training_dynamics.workflows.train.build_clm_trainer`, imported (with torch) only once the data passed its checks."""
    from training_dynamics.workflows.train import build_clm_trainer

    return build_clm_trainer(*args, **kwargs)


def main(argv: list[str] | None = None, *, prog: str = "training-dynamics record-clm") -> int:
    """Train, record, save the model, evaluate."""
    from training_dynamics.kinds.generative.arguments import CausalLMModelArguments, GenerativeDataArguments
    from training_dynamics.cli.record import main as record_main

    return record_main(argv, prog=prog, data_class=GenerativeDataArguments, doc=__doc__, builder=_build_clm_trainer,
                       model_class=CausalLMModelArguments)
