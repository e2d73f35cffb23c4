"""The recording flags of a multi-label run: ``record``'s own, with the data loaded as multi-label.

``training-dynamics record --problem_type multi_label_classification`` (Hugging Face's name), or a
model folder whose ``config.json`` says ``"problem_type": "multi_label_classification"``, routes the
recording here (:meth:`MultiLabelKind.recording <training_dynamics.kinds.multilabel.kind.MultiLabelKind.recording>`).
"""

from __future__ import annotations

from dataclasses import dataclass

from training_dynamics.core.arguments import RecordDataArguments
from training_dynamics.core.data import split_list
from training_dynamics.kinds.multilabel.data import load_multilabel


@dataclass
class MultiLabelDataArguments(RecordDataArguments):
    """``record``'s data flags; ``--label_column`` holds a list of label names (or a multi-hot list, named by
    ``--class_names``) per row."""

    def load(self, *, cache_dir: str | None = None, validation_file: str | None = None):
        """Load and normalise the multi-label data (:func:`training_dynamics.kinds.multilabel.data.load_multilabel`)."""
        return load_multilabel(task_name=self.task_name, train_file=self.train_file,
                               validation_file=validation_file or self.validation_file,
                               text_columns=split_list(self.text_columns), label_column=self.label_column,
                               label_names=split_list(self.class_names), max_train_samples=self.max_train_samples,
                               cache_dir=cache_dir)


def build_trainer(*args, **kwargs):
    """:func:`training_dynamics.kinds.multilabel.record.build_trainer`, imported (with torch) only once the data
    passed its checks."""
    from training_dynamics.kinds.multilabel.record import build_trainer as build

    return build(*args, **kwargs)
