"""Multi-label text classification: a kind of run in this folder, plus an entry point and a few generalisations in
shared layers (see docs/multilabel.md, "What lies outside the folder").

==============  ====================================================================================
``kind``        :class:`MultiLabelKind` (``KIND``), named in the ``training_dynamics.kinds`` entry points
``data``        load a list of label names (or a multi-hot list) per row; write it back the same way
``arguments``   ``record --problem_type multi_label_classification`` (or the model config's)
``record``      the trainer: each (example, label)'s given-value probability, reduced on the device
``dynamics``    the epoch files (jsonl, npz) and their reader
``metrics``     the pair table (``td_pair_metrics.jsonl``) and the example table (``td_metrics.jsonl``)
``issues``      ranking and decisions over pairs (``label_issues.jsonl``: one row per pair)
``review``      the review page's rows (labels as toggles) and ``apply``
==============  ====================================================================================

The generated topic data with planted wrong labels (for the bench and the tests) is
:mod:`training_dynamics.demo.multilabel_data`.
"""

from training_dynamics.kinds.multilabel.kind import KIND, NAME, MultiLabelKind

__all__ = ["KIND", "NAME", "MultiLabelKind"]
