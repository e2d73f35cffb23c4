"""Load a text-classification dataset (GLUE task or local file), map labels, assign guids, tokenize.

Conventions (docs/design.md):
- ``guid`` is the dataset's ``idx`` (or ``guid``) column when it has one, else the row index in the
  file / split *before* any selection or shuffling.
- String labels are mapped to ids in sorted order unless ``label_names`` fixes the order; the
  names are kept so every later tool can show them.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

logger = logging.getLogger(__name__)

GUID = "guid"
LABEL = "label"
GLUE_HUB_ID = "nyu-mll/glue"
#: text columns of the GLUE classification tasks (as in transformers' run_glue.py).
GLUE_TASKS: dict[str, tuple[str, ...]] = {
    "cola": ("sentence",),
    "mnli": ("premise", "hypothesis"),
    "mrpc": ("sentence1", "sentence2"),
    "qnli": ("question", "sentence"),
    "qqp": ("question1", "question2"),
    "rte": ("sentence1", "sentence2"),
    "sst2": ("sentence",),
    "wnli": ("sentence1", "sentence2"),
}
GLUE_VALIDATION_SPLIT = {"mnli": "validation_matched"}
REGRESSION_TASKS = {"stsb"}
FILE_BUILDERS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}
_TEXT_CANDIDATES = (("sentence1", "sentence2"), ("premise", "hypothesis"), ("question", "sentence"),
                    ("sentence",), ("text",), ("content",), ("review",))


class DataError(ValueError):
    """Bad input data; the CLIs print its message on one line and exit non-zero."""


@dataclass
class TextClassificationData:
    """A loaded dataset: ``train``/``validation`` hold text column(s), ``label`` (int id) and ``guid``."""

    train: "datasets.Dataset"  # noqa: F821
    validation: "datasets.Dataset | None"  # noqa: F821
    text_columns: tuple[str, ...]
    label_names: list[str]
    source: dict = field(default_factory=dict)

    @property
    def num_labels(self) -> int:
        return len(self.label_names)


def load_text_classification(
    *,
    task_name: str | None = None,
    train_file: str | None = None,
    validation_file: str | None = None,
    text_columns: Sequence[str] | None = None,
    label_column: str | None = None,
    label_names: Sequence[str] | None = None,
    max_train_samples: int | None = None,
    cache_dir: str | None = None,
) -> TextClassificationData:
    """Load a GLUE classification task (from the Hub) or local files and normalise them.

    Returns datasets with columns ``text_columns + ["label", "guid"]``; labels are int ids into
    ``label_names``. Raises :class:`DataError` with a one-line reason on bad input.
    """
    import datasets

    if task_name:
        task = task_name.lower()
        if task in REGRESSION_TASKS:
            raise DataError(f"task {task_name!r} is a regression task; training dynamics need classification labels")
        if task not in GLUE_TASKS:
            raise DataError(f"unknown task {task_name!r}; choose one of {', '.join(sorted(GLUE_TASKS))} or pass --train_file")
        raw = datasets.load_dataset(GLUE_HUB_ID, task, cache_dir=cache_dir)
        train, val = raw["train"], raw[GLUE_VALIDATION_SPLIT.get(task, "validation")]
        text_columns = tuple(text_columns or GLUE_TASKS[task])
        label_column = label_column or LABEL
        source = {"task_name": task}
    elif train_file:
        train = _load_file(train_file, cache_dir)
        val = _load_file(validation_file, cache_dir) if validation_file else None
        source = {"train_file": str(Path(train_file).resolve())}
        if validation_file:
            source["validation_file"] = str(Path(validation_file).resolve())
        label_column = label_column or _guess_label_column(train.column_names, train_file)
        text_columns = tuple(text_columns or _guess_text_columns(train.column_names, label_column, train_file))
    else:
        raise DataError("give --task_name (a GLUE task) or --train_file")

    where = source.get("train_file", source.get("task_name"))
    if len(train) == 0:
        raise DataError(f"{where}: the training set is empty")
    _check_columns(train, [*text_columns, label_column], where)
    names = _label_names(train, label_column, label_names, where)
    train = _normalise(train, text_columns, label_column, names, where)
    if val is not None:
        vwhere = source.get("validation_file", where)
        if len(val) == 0:
            raise DataError(f"{vwhere}: the validation set is empty")
        val_label = label_column
        if label_column not in val.column_names:  # e.g. train on corrected_label, validate on the original file
            val_label = _guess_label_column(val.column_names, vwhere)
            logger.info("%s: no column %r, using %r as its labels", vwhere, label_column, val_label)
        _check_columns(val, [*text_columns, val_label], vwhere)
        val = _normalise(val, text_columns, val_label, names, vwhere)
    if max_train_samples is not None:
        train = train.select(range(min(max_train_samples, len(train))))
    source.update(text_columns=list(text_columns), label_column=label_column)
    logger.info("loaded %d train / %s validation examples; labels %s", len(train),
                len(val) if val is not None else "no", names)
    return TextClassificationData(train, val, text_columns, names, source)


def _load_file(path: str, cache_dir: str | None):
    import datasets

    p = Path(path)
    if not p.is_file():
        raise DataError(f"{path}: no such file")
    builder = FILE_BUILDERS.get(p.suffix.lower())
    if builder is None:
        raise DataError(f"{path}: unsupported extension {p.suffix!r}; use one of {', '.join(FILE_BUILDERS)}")
    if p.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty")
    kwargs = {"delimiter": "\t", "quoting": 3} if p.suffix.lower() == ".tsv" else {}
    if builder == "csv":
        kwargs["keep_default_na"] = False  # the text "null" or "NA" is a sentence, not a missing value
    try:
        ds = datasets.load_dataset(builder, data_files={"data": str(p)}, split="data", cache_dir=cache_dir, **kwargs)
    except Exception as exc:  # datasets wraps parser errors in many types
        raise DataError(f"{path}: cannot be read as {builder}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc
    return ds


def _guess_label_column(columns: Sequence[str], where: str) -> str:
    for c in ("label", "labels", "gold", "corrected_label"):
        if c in columns:
            return c
    raise DataError(f"{where}: no label column (looked for label, labels, gold); pass --label_column (columns: {', '.join(columns)})")


def _guess_text_columns(columns: Sequence[str], label_column: str, where: str) -> tuple[str, ...]:
    for cand in _TEXT_CANDIDATES:
        if all(c in columns for c in cand):
            return cand
    raise DataError(f"{where}: cannot tell the text column(s); pass --text_columns (columns: {', '.join(columns)})")


def _check_columns(ds, needed: Sequence[str], where: str) -> None:
    missing = [c for c in needed if c not in ds.column_names]
    if missing:
        raise DataError(f"{where}: unknown column(s) {', '.join(missing)} (columns: {', '.join(ds.column_names)})")


def _label_names(ds, label_column: str, given: Sequence[str] | None, where: str) -> list[str]:
    """Label names, in id order: ClassLabel names, given names, or sorted distinct values.

    Given names reorder a ClassLabel's names (ids follow the names), name the ids 0..K-1 of integer
    labels, or fix the id order of string labels.
    """
    import datasets

    feat = ds.features[label_column]
    if isinstance(feat, datasets.ClassLabel):
        if given and sorted(given) != sorted(feat.names):
            raise DataError(f"{where}: --class_names {list(given)} are not the dataset's label names {feat.names}")
        return list(given) if given else list(feat.names)
    values = ds[label_column]
    row = next((i for i, v in enumerate(values) if v is None or (isinstance(v, str) and not v.strip())
                or (isinstance(v, float) and math.isnan(v))), None)
    if row is not None:  # an empty csv cell must not become a class of its own
        raise DataError(f"{where}: row {row} has no label in column {label_column!r}")
    if any(isinstance(v, float) and not float(v).is_integer() for v in values):
        raise DataError(f"{where}: column {label_column!r} holds real-valued labels (a regression task); "
                        "training dynamics need classification labels")
    if given:
        return [str(g) for g in given]
    distinct = sorted({v for v in values}, key=lambda v: (isinstance(v, str), v))
    if all(isinstance(v, (int, float, np.integer)) for v in distinct):
        ints = [int(v) for v in distinct]
        if ints[0] < 0:
            raise DataError(f"{where}: negative label {ints[0]} in column {label_column!r} (unlabelled test split?)")
        return [str(i) for i in range(max(ints) + 1)]
    return [str(v) for v in distinct]


def _normalise(ds, text_columns, label_column: str, names: list[str], where: str):
    """Keep text + label, map labels to ids, add ``guid``."""
    import datasets

    n = len(ds)
    guid_col = next((c for c in ("idx", GUID) if c in ds.column_names), None)
    guids = np.asarray(ds[guid_col], dtype=np.int64) if guid_col else np.arange(n, dtype=np.int64)
    if len(np.unique(guids)) != n:
        raise DataError(f"{where}: column {guid_col!r} has repeated ids")
    index = {name: i for i, name in enumerate(names)}
    feat = ds.features[label_column]
    raw = ds[label_column]
    if isinstance(feat, datasets.ClassLabel):  # ids follow the names (given names may reorder them)
        ids = np.asarray([index[name] for name in feat.names], dtype=np.int64)[np.asarray(raw, dtype=np.int64)]
    elif all(isinstance(v, (int, float, np.integer)) and not isinstance(v, bool) for v in raw):
        ids = np.asarray(raw, dtype=np.int64)  # integer labels are ids; names name 0..K-1
    else:
        ids = np.empty(n, dtype=np.int64)
        for row, v in enumerate(raw):
            if str(v) not in index:
                raise DataError(f"{where}: row {row} has label {v!r}, not one of {names}")
            ids[row] = index[str(v)]
    if (ids < 0).any() or (ids >= len(names)).any():
        row = int(np.flatnonzero((ids < 0) | (ids >= len(names)))[0])
        raise DataError(f"{where}: row {row} has label id {ids[row]} outside 0..{len(names) - 1}")
    for col in text_columns:
        bad = next((i for i, t in enumerate(ds[col]) if not isinstance(t, str)), None)
        if bad is not None:
            raise DataError(f"{where}: row {bad} has no text in column {col!r}")
    keep = [c for c in ds.column_names if c in text_columns]
    ds = ds.select_columns(keep)
    ds = ds.add_column(LABEL, ids.tolist()).add_column(GUID, guids.tolist())
    return ds


def split_list(text: str | None) -> list[str] | None:
    """A comma-separated flag value as a list: ``"a, b,c"`` -> ``["a", "b", "c"]``; empty -> ``None``."""
    return [x.strip() for x in text.split(",") if x.strip()] if text else None


def tokenize(ds, tokenizer, text_columns: Sequence[str], max_seq_length: int = 128):
    """Tokenize text column(s) (no padding: the collator pads per batch); keeps ``label`` and ``guid``."""

    def fn(batch):
        return tokenizer(*(batch[c] for c in text_columns), truncation=True, max_length=max_seq_length)

    return ds.map(fn, batched=True, remove_columns=list(text_columns), desc="Tokenizing")


def example_texts(ds, text_columns: Sequence[str]) -> list[str]:
    """One display string per example; pairs are joined with `` [SEP] ``."""
    cols = [ds[c] for c in text_columns]
    return [" [SEP] ".join(parts) for parts in zip(*cols)]


def load_from_meta(meta: dict, *, cache_dir: str | None = None) -> TextClassificationData:
    """Reload the training data a run was recorded on, from its ``dynamics_meta.json``."""
    src = meta.get("data", {})
    if not (src.get("task_name") or src.get("train_file")):
        raise DataError("dynamics_meta.json names no data source (task_name or train_file)")
    if src.get("train_file") and not os.path.exists(src["train_file"]):
        raise DataError(f"{src['train_file']}: the training file named in dynamics_meta.json is gone")
    return load_text_classification(
        task_name=src.get("task_name"), train_file=src.get("train_file"),
        text_columns=src.get("text_columns"), label_column=src.get("label_column"),
        label_names=meta.get("label_names"), max_train_samples=src.get("max_train_samples"),
        cache_dir=cache_dir,
    )
