"""Multi-label text classification data: load, normalise to multi-hot, tokenize, write back.

A row is a text (one column, or a pair) with any number of labels. The label column holds, per row,
either a **list of label names** (``["sports", "politics"]``, the empty list for none) or a
**multi-hot list** (``[0, 1, 1, 0]``, which needs ``--class_names`` to name the positions). The
label names are ``--class_names`` in that order, else the sorted distinct names.

Loaded data keeps the text column(s), ``labels`` (the multi-hot vector as floats: what
``AutoModelForSequenceClassification`` with ``problem_type="multi_label_classification"`` trains on
with ``BCEWithLogitsLoss``) and ``guid`` (the file's ``idx``/``guid`` column, else the row index).
``source["label_format"]`` remembers how the file wrote its labels, so that ``apply`` writes the
corrected label lists back the same way. Every problem is a one-line :class:`DataError`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from training_dynamics.core.data import (GUID, ID_COLUMNS, DataError, _check_columns, _check_texts, _guess_text_columns, _guids,
                    _load_file, check_files, example_texts)

logger = logging.getLogger(__name__)

KIND = "multi_label"  #: the meta's ``"kind"`` of a multi-label run (the one constant of this kind's name)
#: the decisions that apply to pairs (:mod:`.issues`), and the default
DECISIONS = ("rank_count", "score_mixture", "loss_mixture", "aum_mixture", "none")
DEFAULT_DECISION = "rank_count"
PROBLEM_TYPE = "multi_label_classification"  #: Hugging Face's name (``config.problem_type``, ``--problem_type``)
LABELS = "labels"  #: the normalised multi-hot column (floats, what BCE trains on)
NAMES, MULTI_HOT = "names", "multi_hot"  #: how a file writes a row's labels
LABEL_FORMATS = (NAMES, MULTI_HOT)
FILE_TYPES = (".jsonl", ".json", ".parquet")  #: files that hold a list per cell
_LABEL_CANDIDATES = ("labels", "label", "topics", "tags", "categories")


@dataclass
class MultiLabelData:
    """Loaded multi-label data: ``train``/``validation`` hold the text column(s), ``labels`` (K,) multi-hot
    floats and ``guid``; ``label_names`` (K,) in position order; ``source`` says where it came from,
    the user's columns and the file's ``label_format``."""

    train: "datasets.Dataset"  # noqa: F821
    validation: "datasets.Dataset | None"  # noqa: F821
    text_columns: tuple[str, ...]
    label_names: list[str]
    source: dict = field(default_factory=dict)

    def display_texts(self) -> list[str]:
        """One string per training example (a pair joined by `` [SEP] ``)."""
        return display_texts(self)

    def binding_texts(self, scheme: int) -> list[str]:
        """Each training example's text as its binding hashes it (``scheme``: :data:`core.binding.SCHEME`): as shown."""
        return self.display_texts()

    def binding_labels(self, label_names: Sequence[str] | None = None) -> list[str]:
        """An example's label names, sorted, joined by ``|`` (the binding hashes them with the text)."""
        return binding_labels(self, label_names)

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    @property
    def label_format(self) -> str:
        return self.source.get("label_format", NAMES)

    def multi_hot(self, split: str = "train") -> np.ndarray:
        """(N, K) int8: which labels each example of ``split`` carries."""
        ds = getattr(self, split)
        return np.asarray(ds[LABELS], dtype=np.float32).reshape(len(ds), self.num_labels).astype(np.int8)


def _guess_label_column(columns: Sequence[str], where: str) -> str:
    for c in _LABEL_CANDIDATES:
        if c in columns:
            return c
    raise DataError(f"{where}: no label column (looked for {', '.join(_LABEL_CANDIDATES)}); pass --label_column "
                    f"(columns: {', '.join(columns)})")


def _is_multi_hot(row) -> bool:
    return all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and v in (0, 1)
               for v in row)


def label_format_of(values: Sequence, where: str, column: str) -> str:
    """``names`` or ``multi_hot``: how every row of ``values`` (a list per row) writes its labels."""
    fmt = None
    for row, v in enumerate(values):
        if not isinstance(v, (list, tuple)):
            raise DataError(f"{where}: row {row}, column {column!r}: {v!r} is not a list of labels (a multi-label "
                            "row holds a list of label names, or a multi-hot list of 0/1 with --class_names)")
        if not len(v):
            continue
        this = NAMES if all(isinstance(x, str) for x in v) else MULTI_HOT if _is_multi_hot(v) else None
        if this is None:
            raise DataError(f"{where}: row {row}, column {column!r}: {list(v)!r} mixes label names and numbers, or "
                            "holds numbers other than 0/1")
        if fmt is not None and this != fmt:
            raise DataError(f"{where}: row {row}, column {column!r}: a {this.replace('_', '-')} list where the rows "
                            f"before hold {fmt.replace('_', '-')} lists; write every row the same way")
        fmt = this
    return fmt or NAMES


def _names_and_ids(values: Sequence, fmt: str, given: Sequence[str] | None, where: str,
                   column: str) -> tuple[list[str], np.ndarray]:
    """The label names and the (N, K) multi-hot matrix of the rows ``values``."""
    n = len(values)
    if fmt == MULTI_HOT:
        widths = {len(v) for v in values if len(v)}
        if len(widths) > 1:
            raise DataError(f"{where}: column {column!r}: the multi-hot lists differ in length ({sorted(widths)})")
        k = widths.pop() if widths else len(given or ())
        if not given:
            raise DataError(f"{where}: column {column!r} holds multi-hot lists: pass --class_names with the {k} "
                            "label names in position order")
        if len(given) != k:
            raise DataError(f"{where}: --class_names names {len(given)} labels but the multi-hot lists have {k} "
                            "positions")
        hot = np.zeros((n, k), dtype=np.int8)
        for row, v in enumerate(values):
            if len(v):
                hot[row] = np.asarray(v, dtype=np.int8)
        return list(given), hot
    distinct = sorted({str(x) for v in values for x in v})
    names = list(given) if given else distinct
    if len(set(names)) != len(names):
        raise DataError(f"{where}: --class_names repeats a name ({', '.join(names)})")
    unknown = [x for x in distinct if x not in set(names)]
    if unknown:
        raise DataError(f"{where}: label {unknown[0]!r} is not one of --class_names {', '.join(names)}")
    if len(names) < 2:
        raise DataError(f"{where}: only {len(names)} label name(s) ({', '.join(names) or 'none'}): multi-label "
                        "classification needs at least 2 labels (pass --class_names to name them)")
    index = {name: i for i, name in enumerate(names)}
    hot = np.zeros((n, len(names)), dtype=np.int8)
    for row, v in enumerate(values):
        if len(set(v)) != len(v):
            raise DataError(f"{where}: row {row}, column {column!r}: label {_first_repeat(v)!r} is listed twice")
        for x in v:
            hot[row, index[str(x)]] = 1
    return names, hot


def _first_repeat(v: Sequence) -> object:
    seen = set()
    for x in v:
        if x in seen:
            return x
        seen.add(x)
    return None


def _normalise(ds, text_columns: Sequence[str], label_column: str, given: Sequence[str] | None, where: str,
               fmt: str | None = None):
    """``(dataset with text columns + labels + guid, label names, label format)``."""
    n = len(ds)
    guid_col = next((c for c in ID_COLUMNS if c in ds.column_names), None)
    guids = _guids(ds, guid_col, where) if guid_col else np.arange(n, dtype=np.int64)
    if len(np.unique(guids)) != n:
        raise DataError(f"{where}: column {guid_col!r} has repeated ids")
    values = ds[label_column]
    fmt = label_format_of(values, where, label_column) if fmt is None or not any(len(v) for v in values) else fmt
    names, hot = _names_and_ids(values, fmt, given, where, label_column)
    for col in text_columns:
        _check_texts(ds[col], col, where)
    ds = ds.select_columns([c for c in ds.column_names if c in text_columns])
    ds = ds.add_column(LABELS, hot.astype(np.float32).tolist()).add_column(GUID, guids.tolist())
    return ds, names, fmt


def load_multilabel(*, train_file: str | None, validation_file: str | None = None,
                    text_columns: Sequence[str] | None = None, label_column: str | None = None,
                    label_names: Sequence[str] | None = None, max_train_samples: int | None = None,
                    cache_dir: str | None = None, task_name: str | None = None) -> MultiLabelData:
    """Load a multi-label training file (and a validation file) and normalise them (module docstring)."""
    if task_name:
        raise DataError(f"--task_name {task_name}: the GLUE tasks have one label per example; a multi-label run "
                        "reads --train_file")
    if not train_file:
        raise DataError("give --train_file (a .jsonl, .json or .parquet file with a list of labels per row)")
    check_files(train_file, validation_file)
    for path in (train_file, validation_file):
        if path and Path(path).suffix.lower() not in FILE_TYPES:
            raise DataError(f"{path}: a multi-label file holds a list of labels per row: use {', '.join(FILE_TYPES)}")
    train = _load_file(train_file, cache_dir)
    where = str(train_file)
    if len(train) == 0:
        raise DataError(f"{where}: the training set is empty")
    label_column = label_column or _guess_label_column(train.column_names, where)
    text_columns = tuple(text_columns or _guess_text_columns(train.column_names, label_column, where))
    _check_columns(train, [*text_columns, label_column], where)
    if label_column in text_columns:
        raise DataError(f"{where}: column {label_column!r} is both the label column and a text column; pass "
                        "--label_column and --text_columns naming different columns")
    train, names, fmt = _normalise(train, text_columns, label_column, label_names, where)
    val = None
    source = {"kind": KIND, "train_file": str(Path(train_file).resolve())}
    if validation_file:
        raw = _load_file(validation_file, cache_dir)
        vwhere = str(validation_file)
        if len(raw) == 0:
            raise DataError(f"{vwhere}: the validation set is empty")
        _check_columns(raw, [*text_columns, label_column], vwhere)
        val, _, _ = _normalise(raw, text_columns, label_column, names, vwhere, fmt)
        source["validation_file"] = str(Path(validation_file).resolve())
    if max_train_samples is not None:
        train = train.select(range(min(max_train_samples, len(train))))
    source.update(text_columns=list(text_columns), label_column=label_column, label_format=fmt)
    logger.info("loaded %d train / %s validation multi-label examples; %d labels %s", len(train),
                len(val) if val is not None else "no", len(names), names)
    return MultiLabelData(train, val, text_columns, names, source)


def label_lists(data: MultiLabelData, hot: np.ndarray | None = None) -> list[list[str]]:
    """Each training example's labels by name, in label order (``hot``: (N, K) instead of the data's)."""
    hot = data.multi_hot() if hot is None else hot
    names = np.asarray(data.label_names, dtype=object)
    return [names[np.flatnonzero(row)].tolist() for row in hot]


def binding_labels(data: MultiLabelData, label_names: Sequence[str] | None = None) -> list[str]:
    """What the binding and the review fingerprints hash as an example's label: its label names, sorted,
    joined by ``|``."""
    names = np.asarray(list(label_names if label_names is not None else data.label_names), dtype=object)
    return ["|".join(sorted(names[np.flatnonzero(row)].tolist())) for row in data.multi_hot()]


def display_texts(data: MultiLabelData) -> list[str]:
    """One string per training example (a pair joined by `` [SEP] ``)."""
    return example_texts(data.train, data.text_columns)


def as_file_rows(data: MultiLabelData, hot: np.ndarray) -> list:
    """``hot`` (N, K) as the file wrote labels: name lists, or multi-hot lists of ints."""
    if data.label_format == MULTI_HOT:
        return [[int(x) for x in row] for row in hot]
    return label_lists(data, hot)
