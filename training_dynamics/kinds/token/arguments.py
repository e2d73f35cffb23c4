"""The token classification flags (``record-ner``): the kind's data (and model) arguments on the shared base."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from training_dynamics.core.arguments import BaseDataArguments
from training_dynamics.core.data import split_list

from training_dynamics.kinds.token.data import load_token_classification


@dataclass
class TokenDataArguments(BaseDataArguments):
    """Tagged sentences for a token classifier: the flags of transformers' ``run_ner.py``."""

    _argument_group_name = "data"
    dataset_name: str | None = field(default=None, metadata={"help": "A Hub dataset of tagged sentences (e.g. conll2003), or a folder written by datasets' save_to_disk (a DatasetDict's train and validation splits, or a Dataset), instead of --train_file."})
    dataset_config_name: str | None = field(default=None, metadata={"help": "The Hub dataset's configuration."})
    train_file: str | None = field(default=None, metadata={"help": "Training data: CoNLL (.conll, .iob, .bio, .txt: one 'word<TAB>tag' per line, the last column the tag, a blank line between sentences; IOB1 becomes IOB2), or .csv, .json, .jsonl, .parquet or a save_to_disk folder with one sentence per row (a list of words and a list of tags)."})
    validation_file: str | None = field(default=None, metadata={"help": "Validation data in the same format; evaluated after training."})
    text_column_name: str | None = field(default=None, metadata={"help": "Column of the words (a list of strings). Default: tokens, else words."})
    label_column_name: str | None = field(default=None, metadata={"help": "Column of the tags, one per word (strings such as B-PER, or integer ids). Default: ner_tags, tags, labels."})
    class_names: str | None = field(default=None, metadata={"help": "Comma-separated tag names in id order: names the ids of integer tags or fixes the id order of string tags (default: the dataset's ClassLabel names, else sorted distinct tags)."})
    label_all_tokens: bool = field(default=False, metadata={"help": "Train on every sub-token of a word (B- becomes I- after the first), not only the first; the dynamics always come from the first."})

    def __post_init__(self):
        if self.dataset_name and self.train_file:
            raise ValueError("give --dataset_name or --train_file, not both")
        if not (self.dataset_name or self.train_file):
            raise ValueError("give --train_file (tagged sentences) or --dataset_name")
        super().__post_init__()

    @property
    def task_name(self) -> str | None:
        """A run folder's task part: the Hub dataset's name (else the file's stem)."""
        return Path(self.dataset_name.rstrip("/")).name if self.dataset_name else None

    def load(self, *, cache_dir: str | None = None):
        """Load and check the data (:func:`training_dynamics.kinds.token.data.load_token_classification`)."""
        return load_token_classification(
            train_file=self.train_file, validation_file=self.validation_file, dataset_name=self.dataset_name,
            dataset_config_name=self.dataset_config_name, text_column_name=self.text_column_name,
            label_column_name=self.label_column_name, label_names=split_list(self.class_names),
            max_train_samples=self.max_train_samples, cache_dir=cache_dir)
