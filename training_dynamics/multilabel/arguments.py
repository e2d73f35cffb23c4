"""The recording flags of a multi-label run: ``record``'s own, with the data loaded as multi-label.

``training-dynamics record --problem_type multi_label_classification`` (Hugging Face's name), or a
model folder whose ``config.json`` says ``"problem_type": "multi_label_classification"``, routes the
recording here (:func:`requested`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from ..arguments import RecordDataArguments
from ..data import split_list
from .data import PROBLEM_TYPE, load_multilabel


@dataclass
class MultiLabelDataArguments(RecordDataArguments):
    """``record``'s data flags; ``--label_column`` holds a list of label names (or a multi-hot list, named by
    ``--class_names``) per row."""

    def load(self, *, cache_dir: str | None = None, validation_file: str | None = None):
        """Load and normalise the multi-label data (:func:`training_dynamics.multilabel.data.load_multilabel`)."""
        return load_multilabel(task_name=self.task_name, train_file=self.train_file,
                               validation_file=validation_file or self.validation_file,
                               text_columns=split_list(self.text_columns), label_column=self.label_column,
                               label_names=split_list(self.class_names), max_train_samples=self.max_train_samples,
                               cache_dir=cache_dir)


def _flag(argv: list[str] | dict, name: str) -> str | None:
    if isinstance(argv, dict):
        value = argv.get(name)
        return None if value is None else str(value)
    for i, a in enumerate(argv):
        if a == f"--{name}" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(f"--{name}="):
            return a.split("=", 1)[1]
    return None


def requested(argv: list[str]) -> bool:
    """Whether a ``record`` command line asks for a multi-label run: ``--problem_type
    multi_label_classification``, or no ``--problem_type`` and a local model whose config says so."""
    args: list[str] | dict = argv
    if len(argv) == 1 and argv[0].endswith(".json") and os.path.isfile(argv[0]):
        try:
            with open(argv[0], encoding="utf-8") as fh:
                args = json.load(fh)
        except (OSError, ValueError):
            return False  # the recording's own parser reports the file
        if not isinstance(args, dict):
            return False
    given = _flag(args, "problem_type")
    if given is not None:
        return given == PROBLEM_TYPE
    model = _flag(args, "model_name_or_path")
    try:
        with open(os.path.join(os.path.expanduser(model or ""), "config.json"), encoding="utf-8") as fh:
            return json.load(fh).get("problem_type") == PROBLEM_TYPE
    except (OSError, ValueError, AttributeError):
        return False


def build_trainer(*args, **kwargs):
    """:func:`training_dynamics.multilabel.record.build_trainer`, imported (with torch) only once the data
    passed its checks."""
    from .record import build_trainer as build

    return build(*args, **kwargs)
