"""The generative flags (``record-clm``): the kind's data (and model) arguments on the shared base."""

from __future__ import annotations

from dataclasses import dataclass, field

from training_dynamics.core.arguments import BaseDataArguments, ModelArguments, _check_positive
from training_dynamics.core.errors import TrainingDynamicsError

from training_dynamics.kinds.generative.data import load_generative


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
class GenerativeDataArguments(BaseDataArguments):
    """Prompt/response (or plain text) data for a causal language model."""

    _argument_group_name = "data"
    train_file: str | None = field(default=None, metadata={"help": "(required) Training data: .csv, .tsv, .json, .jsonl or .parquet, one prompt and response (or one conversation) per row."})
    validation_file: str | None = field(default=None, metadata={"help": "Validation data in the same format; its loss is evaluated after training."})
    prompt_column: str | None = field(default=None, metadata={"help": "Prompt column: context only, no loss (put any chat or instruction template here). Default: prompt, instruction, question, input or query."})
    response_column: str | None = field(default=None, metadata={"help": "Response column: the tokens the loss and the dynamics cover. Default: response, output, answer, completion or target."})
    text_column: str | None = field(default=None, metadata={"help": "Plain language modelling on every token of this column, instead of a prompt and a response."})
    messages_column: str | None = field(default=None, metadata={"help": "Conversations: a column of role/content turns (TRL's format), rendered with the chat template; the loss and the dynamics cover the assistant turns. Default: messages, when the file has it."})
    chat_template: str | None = field(default=None, metadata={"help": "A Jinja chat template (string, or a .jinja / tokenizer_config.json file) for a tokenizer without one (or to replace its own); saved with the model."})

    task_name = None  # a run folder's task part comes from the file name (or --dy_task_name)

    def __post_init__(self):
        super().__post_init__()
        if not self.train_file:
            raise TrainingDynamicsError("give --train_file (prompt/response pairs, text, or conversations)")
        if self.chat_template:  # a Jinja syntax error is one line, before anything loads
            from training_dynamics.kinds.generative.chat import read_chat_template

            read_chat_template(self.chat_template)

    def load(self, *, cache_dir: str | None = None):
        """Load and check the data (:func:`training_dynamics.kinds.generative.data.load_generative`)."""
        return load_generative(train_file=self.train_file, validation_file=self.validation_file,
                               prompt_column=self.prompt_column, response_column=self.response_column,
                               text_column=self.text_column, messages_column=self.messages_column,
                               max_train_samples=self.max_train_samples, cache_dir=cache_dir)


