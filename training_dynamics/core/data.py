"""Load a text-classification dataset (GLUE task or local file), map labels, assign guids, tokenize.

Conventions (docs/design.md):
- ``guid`` is the dataset's ``idx`` (or ``guid``) column when it has one, else the row index in the
  file / split *before* any selection or shuffling.
- String labels are mapped to ids in sorted order unless ``label_names`` fixes the order; the
  names are kept so every later tool can show them.
- Ids (``idx`` / ``guid``) must be integers: text ids, floats and empty cells are refused (a float id
  would be silently truncated).
- A label column must hold classes: all numbers or all strings (a file mixing ``1`` and ``"1"`` is
  refused), not one of the text columns, and -- unless ``label_names`` names the classes -- at most
  :data:`MAX_CLASSES` distinct labels, and at most half as many distinct labels as examples once there
  are :data:`MIN_EXAMPLES_FOR_UNIQUE_RULE` or more examples (a text or id column picked as the label).
- Text must be valid Unicode: a lone UTF-16 surrogate (``"\\ud800"`` in a JSON file) is refused,
  naming the file, row and column.
"""

from __future__ import annotations

from training_dynamics.core.errors import TrainingDynamicsError

import functools
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from training_dynamics.core.fileio import json_loads

logger = logging.getLogger(__name__)

GUID = "guid"
#: columns that hold example ids (the first present is used)
ID_COLUMNS = ("idx", GUID)
#: an integer written plainly: no leading zeros, no sign but "-", no spaces
_INTEGER_TEXT = re.compile(r"-?(0|[1-9][0-9]{0,17})")
#: a number with a decimal point or an exponent (an id a csv reader would take for a float)
_NUMBER_TEXT = re.compile(r"-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?")
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
MAX_CLASSES = 1000  #: more distinct labels than this: not a class column (unless label_names are given)
MIN_EXAMPLES_FOR_UNIQUE_RULE = 50  #: from this many examples on, > half distinct labels: not a class column
_SURROGATE = re.compile("[\ud800-\udfff]")
_TEXT_CANDIDATES = (("sentence1", "sentence2"), ("premise", "hypothesis"), ("question", "sentence"),
                    ("sentence",), ("text",), ("content",), ("review",))


class DataError(TrainingDynamicsError):
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

    def display_texts(self) -> list[str]:
        """One string per training example, as every tool shows it (a pair joined by `` [SEP] ``)."""
        return example_texts(self.train, self.text_columns, separator=getattr(self, "separator", None))

    def binding_texts(self, scheme: int) -> list[str]:
        """Each training example's text as its binding hashes it (``scheme``: :data:`core.binding.SCHEME`): as shown."""
        return self.display_texts()

    def binding_labels(self, label_names: Sequence[str] | None = None) -> list[str]:
        """Each training example's label as the binding and the review fingerprints hash it: its name
        (``label_names``: the names of the ids, default :attr:`label_names`)."""
        names = np.asarray(list(label_names if label_names is not None else self.label_names), dtype=object)
        return names[np.asarray(self.train["label"], dtype=np.int64)].tolist()


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
    if task_name:
        import datasets

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
        check_files(train_file, validation_file)  # both, before the (slow) datasets import and parse
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
    if label_column in text_columns:
        raise DataError(f"{where}: column {label_column!r} is both the label column and a text column; "
                        "pass --label_column and --text_columns naming different columns")
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


def check_files(*paths: str | None) -> None:
    """Raise a :class:`DataError` for the first of ``paths`` (``None`` skipped) that is missing, empty or
    of an unsupported type: a check that needs no library."""
    for path in paths:
        if path is None:
            continue
        p = Path(path)
        if is_saved_dataset(p):
            continue
        if not p.is_file():
            raise DataError(f"{path}: no such file")
        if p.suffix.lower() not in FILE_BUILDERS:
            hint = " (a CoNLL file of tagged words is read by record-ner)" if p.suffix.lower() in (".conll", ".iob",
                                                                                                   ".bio") else ""
            raise DataError(f"{path}: unsupported extension {p.suffix!r}; use one of {', '.join(FILE_BUILDERS)}{hint}")
        if p.stat().st_size == 0:
            raise DataError(f"{path}: the file is empty")


def is_saved_dataset(path: str | Path) -> bool:
    """Whether ``path`` is a folder written by ``datasets``' ``save_to_disk`` (a Dataset or a DatasetDict)."""
    p = Path(path)
    return p.is_dir() and ((p / "dataset_dict.json").is_file() or (p / "state.json").is_file())


def load_saved_dataset(path: str | Path, *, split: str = "train"):
    """``(split, every split)`` of a ``save_to_disk`` folder: a saved Dataset is its own ``split``;
    a saved DatasetDict gives its ``split`` and all its splits by name.

    Raises:
        DataError: the folder cannot be read, or a DatasetDict has no ``split``.
    """
    import datasets

    try:
        saved = datasets.load_from_disk(str(path))
    except Exception as exc:  # datasets raises many types for a damaged folder
        raise DataError(f"{path}: cannot be read as a datasets.save_to_disk folder: {_reason(exc)}") from exc
    if isinstance(saved, datasets.DatasetDict):
        if split not in saved:
            raise DataError(f"{path}: a DatasetDict with no {split!r} split (splits: {', '.join(saved)})")
        return saved[split], dict(saved)
    return saved, {split: saved}


def _load_file(path: str, cache_dir: str | None):
    check_files(path)
    if is_saved_dataset(path):
        return load_saved_dataset(path)[0]
    import datasets

    p = Path(path)
    builder = FILE_BUILDERS[p.suffix.lower()]
    kwargs = {"delimiter": "\t", "quoting": 3} if p.suffix.lower() == ".tsv" else {}
    if builder == "csv":
        kwargs["keep_default_na"] = False  # the text "null" or "NA" is a sentence, not a missing value
        kwargs["converters"] = {c: str for c in ID_COLUMNS}  # "007" stays "007" (see _integer_ids)
    parser_log = logging.getLogger("datasets.packaged_modules")  # logs the parse error our DataError states
    level = parser_log.level
    parser_log.setLevel(logging.CRITICAL)
    try:
        ds = datasets.load_dataset(builder, data_files={"data": str(p)}, split="data", cache_dir=cache_dir, **kwargs)
    except Exception as exc:  # datasets wraps parser errors in many types
        if builder == "json":
            _check_json_text(p)  # names the row and column of the usual culprit
        raise DataError(f"{path}: cannot be read as {builder}: {_reason(exc)}") from exc
    finally:
        parser_log.setLevel(level)
    return _integer_ids(ds) if builder == "csv" else ds


def _integer_ids(ds):
    """A csv's id columns (read as text, see :func:`_load_file`) as integers when every id is written as one
    (``7``, ``-3``), else kept as text: ``"007"`` stays ``"007"``, never becomes 7."""
    import datasets

    for column in ID_COLUMNS:
        if column in ds.column_names:
            values = ds[column]
            if not len(values) or not all(isinstance(v, str) for v in values):
                continue
            if all(_INTEGER_TEXT.fullmatch(v) for v in values):
                kind = "int64"
            elif all(_NUMBER_TEXT.fullmatch(v) for v in values) and any(("." in v or "e" in v.lower()) for v in values):
                kind = "float64"  # e.g. 2.0, 2.7: refused by _guids as floats, as when pandas reads them
            else:
                continue  # text ids, or integers with leading zeros ("007"): kept as written
            bars = datasets.is_progress_bar_enabled()
            datasets.disable_progress_bars()  # no "Casting the dataset" bar for a cast of one column
            try:
                ds = ds.cast_column(column, datasets.Value(kind))
            finally:
                if bars:
                    datasets.enable_progress_bars()
    return ds


def _reason(exc: BaseException) -> str:
    """First line of the most specific message in an exception chain (datasets wraps the parser's)."""
    messages = []
    while exc is not None and len(messages) < 10:
        messages.append(str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__)
        exc = exc.__cause__ or exc.__context__
    generic = ("An error occurred while generating the dataset",)
    return next((m for m in messages if m not in generic), messages[0])


def _json_records(path: Path):
    """``(row, line, record)`` of a JSON lines file, or of a JSON array file (line ``None``)."""
    with open(path, encoding="utf-8", errors="surrogatepass") as fh:
        text = fh.read()
    if text.lstrip().startswith("["):
        try:
            records = json_loads(text)
        except ValueError:
            return
        yield from ((row, None, rec) for row, rec in enumerate(records if isinstance(records, list) else []))
        return
    row = 0
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json_loads(line)
        except ValueError:
            return
        yield row, lineno, rec
        row += 1


def _check_json_text(path: Path) -> None:
    """Raise a :class:`DataError` naming row and column of the first lone UTF-16 surrogate in a JSON file."""
    for row, lineno, rec in _json_records(path):
        for col, value in (rec.items() if isinstance(rec, dict) else ()):
            if isinstance(value, str) and _SURROGATE.search(value):
                raise DataError(_surrogate_message(str(path), row, col, value, lineno))


def _surrogate_message(where: str, row: int, column: str, text: str, lineno: int | None = None) -> str:
    pos = _SURROGATE.search(text).start()
    line = f" (line {lineno})" if lineno is not None else ""
    return (f"{where}: row {row}{line}, column {column!r}: lone UTF-16 surrogate {text[pos]!r} at character {pos} "
            "is not valid Unicode text; fix or remove it")


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
    _check_label_types(ds, label_column, where)
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
    _check_class_count(len(distinct), len(values), label_column, where)
    if all(isinstance(v, (int, float, np.integer)) for v in distinct):
        ints = [int(v) for v in distinct]
        if ints[0] < 0:
            raise DataError(f"{where}: negative label {ints[0]} in column {label_column!r} (unlabelled test split?)")
        if max(ints) + 1 > MAX_CLASSES:
            raise DataError(f"{where}: label {max(ints)} in column {label_column!r} makes {max(ints) + 1} classes "
                            f"(ids 0..{max(ints)}), more than {MAX_CLASSES}: is it a class column? Pass --class_names "
                            "to use it anyway")
        return [str(i) for i in range(max(ints) + 1)]
    return [str(v) for v in distinct]


def _check_class_count(n_distinct: int, n: int, label_column: str, where: str) -> None:
    """Refuse a label column with too many distinct values to be classes (a text or id column)."""
    if n_distinct > MAX_CLASSES or (n >= MIN_EXAMPLES_FOR_UNIQUE_RULE and n_distinct > n // 2):
        raise DataError(f"{where}: column {label_column!r} has {n_distinct} distinct labels in {n} examples: is it a "
                        f"text or id column? (at most {MAX_CLASSES} classes, and at most one distinct label per two "
                        "examples); pass --label_column, or --class_names to use it anyway")


def _check_label_types(ds, label_column: str, where: str) -> None:
    """Labels are all numbers or all strings: ``1`` and ``"1"`` in one file are refused, not guessed at."""
    import datasets

    values = ds[label_column]
    kinds = {row: isinstance(v, str) for row, v in enumerate(values) if v is not None}
    mixed = isinstance(ds.features[label_column], getattr(datasets, "Json", ())) or len(set(kinds.values())) > 1
    if not mixed:
        return
    example = ""
    if where and Path(where).suffix.lower() in (".json", ".jsonl") and Path(where).is_file():
        example = _first_type_change(Path(where), label_column)  # the file's own types, before any decoding
    if not example and len(set(kinds.values())) > 1:
        first = next(iter(kinds))
        other = next(r for r, k in kinds.items() if k != kinds[first])
        example = f" (row {first}: {values[first]!r}, row {other}: {values[other]!r})"
    raise DataError(f"{where}: column {label_column!r} mixes numbers and strings{example}: write every label as a "
                    "number or every label as a string")


def _first_type_change(path: Path, column: str) -> str:
    """`` (row i: 1, row j: '1')``: the first record whose label has another JSON type than the first one's."""
    first = None
    for row, _, rec in _json_records(path):
        if not isinstance(rec, dict) or rec.get(column) is None:
            continue
        value = rec[column]
        if first is None:
            first = (row, value)
        elif type(value) is not type(first[1]) and not {type(value), type(first[1])} <= {int, float}:
            return f" (row {first[0]}: {first[1]!r}, row {row}: {value!r})"
    return ""


def check_trainable(data: "TextClassificationData", where: str, *, max_train_samples: int | None = None) -> None:
    """Raise a :class:`DataError` unless the training set has examples of at least 2 classes.

    One class would make a 1-logit model (a regression) or a classifier that cannot be wrong.
    """
    if data.num_labels < 2:
        raise DataError(f"{where}: only one class ({data.label_names}): a classifier needs at least 2 classes")
    present = np.unique(np.asarray(data.train[LABEL], dtype=np.int64))
    if len(present) < 2:
        subset = f" (the first {max_train_samples}, --max_train_samples)" if max_train_samples else ""
        raise DataError(f"{where}: every training example{subset} has label {data.label_names[int(present[0])]!r}: "
                        "a classifier needs examples of at least 2 classes")


def _normalise(ds, text_columns, label_column: str, names: list[str], where: str):
    """Keep text + label, map labels to ids, add ``guid``."""
    import datasets

    n = len(ds)
    guid_col = next((c for c in ID_COLUMNS if c in ds.column_names), None)
    guids = _guids(ds, guid_col, where) if guid_col else np.arange(n, dtype=np.int64)
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
        _check_texts(ds[col], col, where)
    keep = [c for c in ds.column_names if c in text_columns]
    ds = ds.select_columns(keep)
    ds = ds.add_column(LABEL, ids.tolist()).add_column(GUID, guids.tolist())
    return ds


def load_column(path: str, column: str, *, cache_dir: str | None = None) -> "pd.Series":
    """One column of a data file (csv, tsv, json, jsonl, parquet), indexed by each row's guid as
    training assigns it (the ``idx`` or ``guid`` column, else the row number), so it lines up with a
    run recorded on that file: e.g. a known-noise column of the training file to colour a map by.

    Raises:
        DataError: the file cannot be read, has no such column, or repeats an id.
    """
    import pandas as pd

    ds = _load_file(path, cache_dir)
    if column not in ds.column_names:
        raise DataError(f"{path}: no column {column!r} (columns: {', '.join(ds.column_names)})")
    id_col = next((c for c in ("idx", GUID) if c in ds.column_names), None)
    guids = _guids(ds, id_col, path) if id_col else np.arange(len(ds), dtype=np.int64)
    if len(np.unique(guids)) != len(guids):
        raise DataError(f"{path}: column {id_col!r} has repeated ids")
    return pd.Series(ds[column], index=guids, name=column)


def split_list(text: str | None) -> list[str] | None:
    """A comma-separated flag value as a list: ``"a, b,c"`` -> ``["a", "b", "c"]``; empty -> ``None``."""
    return [x.strip() for x in text.split(",") if x.strip()] if text else None


def _check_texts(texts, column: str, where: str) -> None:
    """Every row holds a string of valid Unicode (no lone UTF-16 surrogate)."""
    for row, text in enumerate(texts):
        if not isinstance(text, str):
            raise DataError(f"{where}: row {row} has no text in column {column!r}")
        if _SURROGATE.search(text):
            raise DataError(_surrogate_message(where, row, column, text))


def _guids(ds, column: str, where: str) -> np.ndarray:
    """The ids of column ``column``: integers (int64) or strings (kept as they are, e.g. SNLI
    ``pairID``s); float, bool, missing and mixed ids are refused."""
    import datasets

    from training_dynamics.core.ids import as_guids

    feat = ds.features[column]
    dtype = getattr(feat, "dtype", None)
    values = ds[column]
    if isinstance(feat, datasets.Value) and dtype in ("bool",):
        raise DataError(f"{where}: column {column!r} holds true/false values: example ids must be integers or strings")
    if isinstance(feat, datasets.Value) and dtype is not None and dtype.startswith(("float", "double")):
        row = next((i for i, v in enumerate(values) if v is None or not float(v).is_integer()), 0)
        raise DataError(f"{where}: column {column!r} holds floats (row {row}: {values[row]!r}): example ids must be "
                        "integers or strings (a float id would be truncated)")
    row = next((i for i, v in enumerate(values) if v is None or (isinstance(v, str) and not v)), None)
    if row is not None:
        raise DataError(f"{where}: row {row} has no id in column {column!r}")
    try:
        return as_guids(values, where=f"{where}: column {column!r}")
    except ValueError as exc:
        raise DataError(str(exc)) from None


TRUNCATIONS = ("head", "head_tail")
HEAD_SHARE = 0.25  #: head_tail keeps this share of a cut text's token budget from its start, the rest from its end


def _budgets(lengths: np.ndarray, budget: int) -> np.ndarray:
    """(N, K) tokens each of K text segments keeps within ``budget`` tokens in all, cut longest first (as
    the tokenizers' ``longest_first``: the longer segment loses tokens until both are equally long)."""
    lengths = np.asarray(lengths, dtype=np.int64).reshape(len(lengths), -1)
    if lengths.shape[1] == 1:
        return np.minimum(lengths, budget)
    a, b = lengths[:, 0], lengths[:, 1]
    short = np.minimum(a, b)
    keep_short = np.minimum(short, budget // 2)
    keep_long = budget - keep_short
    fits = a + b <= budget
    keep_a = np.where(fits, a, np.where(a <= b, keep_short, np.minimum(a, keep_long)))
    keep_b = np.where(fits, b, np.where(a <= b, np.minimum(b, keep_long), keep_short))
    return np.stack([keep_a, keep_b], axis=1)


@functools.lru_cache(maxsize=4)
def _plain_backend(serialized: str):
    """A copy of a Rust tokenizer without the padding / truncation its owner sets per call."""
    from tokenizers import Tokenizer

    backend = Tokenizer.from_str(serialized)
    backend.no_padding()
    backend.no_truncation()
    return backend


def _head_tail_encodings(tokenizer, columns: Sequence[Sequence[str]], max_seq_length: int) -> list:
    """``tokenizers.Encoding`` per example (special tokens added) keeping the first :data:`HEAD_SHARE`
    and the last tokens of each cut text (Sun et al., 2019: head + tail is the best cut for long reviews)."""
    from tokenizers import Encoding

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise DataError(f"--truncation head_tail needs a fast (Rust) tokenizer; {type(tokenizer).__name__} is not one")
    backend = _plain_backend(backend.to_str())
    budget = max_seq_length - tokenizer.num_special_tokens_to_add(pair=len(columns) == 2)
    if budget < 2:
        raise DataError(f"--max_seq_length {max_seq_length} leaves no room for text after the special tokens")
    encoded = [backend.encode_batch(list(col), add_special_tokens=False) for col in columns]
    keep = _budgets(np.array([[len(e) for e in seg] for seg in zip(*encoded)]), budget)
    out = []
    for i, segments in enumerate(zip(*encoded)):
        parts = []
        for k, enc in enumerate(segments):
            n, kept = len(enc), int(keep[i, k])
            if kept < n:
                head = max(1, int(round(HEAD_SHARE * kept)))
                tail = backend.encode(columns[k][i], add_special_tokens=False)
                enc.truncate(head, direction="right")
                tail.truncate(kept - head, direction="left")
                enc = Encoding.merge([enc, tail], growing_offsets=False)
            parts.append(enc)
        out.append(backend.post_process(parts[0], parts[1] if len(parts) > 1 else None, True))
    return out


def encode_texts(tokenizer, columns: Sequence[Sequence[str]], max_seq_length: int, *, truncation: str = "head",
                 offsets: bool = False) -> tuple[dict[str, list], list[int]]:
    """Tokenize one or two text columns, cutting inputs longer than ``max_seq_length`` tokens.

    ``truncation``: ``head`` keeps the first tokens (the tokenizer's own ``truncation=True``,
    longest segment first for pairs); ``head_tail`` keeps the first quarter and the last three
    quarters of each cut text's budget. ``offsets``: add ``offset_mapping`` and ``sequence_ids``.

    Returns:
        ``(features, num_tokens)``: the model inputs per example, and each example's length in tokens
        before any cut (special tokens included).
    """
    if truncation not in TRUNCATIONS:
        raise DataError(f"--truncation must be one of {', '.join(TRUNCATIONS)}, not {truncation!r}")
    full = tokenizer(*columns, truncation=False, verbose=False)
    num_tokens = [len(ids) for ids in full["input_ids"]]
    over = [i for i, n in enumerate(num_tokens) if n > max_seq_length]
    if not over and not offsets:
        return dict(full), num_tokens
    rows = over if not offsets else list(range(len(num_tokens)))
    picked = [[col[i] for i in rows] for col in columns]
    keys = list(full.keys())
    if truncation == "head":
        enc = tokenizer(*picked, truncation=True, max_length=max_seq_length, return_offsets_mapping=offsets)
        cut = {k: enc[k] for k in [*keys, *(["offset_mapping"] if offsets else [])]}
        if offsets:
            cut["sequence_ids"] = [enc.sequence_ids(j) for j in range(len(rows))]
    else:
        encs = _head_tail_encodings(tokenizer, picked, max_seq_length)
        field_of = {"input_ids": "ids", "token_type_ids": "type_ids", "attention_mask": "attention_mask",
                    "special_tokens_mask": "special_tokens_mask"}
        cut = {k: [getattr(e, field_of[k]) for e in encs] for k in keys}
        if offsets:
            cut["offset_mapping"] = [e.offsets for e in encs]
            cut["sequence_ids"] = [e.sequence_ids for e in encs]
    features = {k: list(full[k]) for k in keys}
    for k in cut:
        features.setdefault(k, [None] * len(num_tokens))
        for j, i in enumerate(rows):
            features[k][i] = cut[k][j]
    return features, num_tokens


def tokenize(ds, tokenizer, text_columns: Sequence[str], max_seq_length: int = 128, *, truncation: str = "head"):
    """Tokenize text column(s) (no padding: the collator pads per batch); keeps ``label`` and ``guid``
    and adds ``num_tokens`` (each example's length before the cut; see :func:`truncation_report`).
    Inputs longer than ``max_seq_length`` tokens are cut as ``truncation`` says (:func:`encode_texts`)."""

    def fn(batch):
        features, num_tokens = encode_texts(tokenizer, [batch[c] for c in text_columns], max_seq_length,
                                            truncation=truncation)
        return {**features, "num_tokens": num_tokens}

    return ds.map(fn, batched=True, remove_columns=list(text_columns), desc="Tokenizing")


def truncation_report(num_tokens: Sequence[int], max_seq_length: int, truncation: str = "head") -> dict:
    """How many texts ``--max_seq_length`` cut, and by how much (kept in the run's meta as ``truncation``)."""
    n = np.asarray(num_tokens, dtype=np.int64)
    cut = np.maximum(n - int(max_seq_length), 0)
    hit = cut > 0
    return {"strategy": truncation, "max_seq_length": int(max_seq_length), "num_examples": int(len(n)),
            "num_truncated": int(hit.sum()), "max_tokens": int(n.max()) if len(n) else 0,
            "mean_tokens": round(float(n.mean()), 1) if len(n) else 0.0,
            "mean_tokens_cut": round(float(cut[hit].mean()), 1) if hit.any() else 0.0}


def merge_truncation_reports(reports: Sequence[dict]) -> dict:
    """One :func:`truncation_report` of several disjoint parts of the training set (the halves of a cross-fitted
    run): counts added, the longest kept, the means weighted."""
    n, hit = (sum(r[k] for r in reports) for k in ("num_examples", "num_truncated"))
    return {**reports[0], "num_examples": n, "num_truncated": hit, "max_tokens": max(r["max_tokens"] for r in reports),
            "mean_tokens": round(sum(r["mean_tokens"] * r["num_examples"] for r in reports) / max(n, 1), 1),
            "mean_tokens_cut": round(sum(r["mean_tokens_cut"] * r["num_truncated"] for r in reports) / max(hit, 1), 1)}


def describe_truncation(report: dict) -> str:
    """One log line of :func:`truncation_report`."""
    n, k, limit = report["num_examples"], report["num_truncated"], report["max_seq_length"]
    if not k:
        return f"no training text is longer than --max_seq_length {limit} tokens (longest {report['max_tokens']})"
    seen = (f"only their first {limit} tokens (--truncation head_tail keeps the start and the end)"
            if report["strategy"] == "head" else f"{limit} tokens of their start and end (--truncation head_tail)")
    return (f"{k} of {n} training texts ({100.0 * k / max(n, 1):.1f}%) are longer than --max_seq_length {limit} tokens "
            f"(longest {report['max_tokens']}, {report['mean_tokens_cut']:.1f} tokens cut on average): the model sees "
            f"{seen}")


def seen_spans(tokenizer, columns: Sequence[Sequence[str]], max_seq_length: int, *, truncation: str = "head",
               separator: str = " [SEP] ") -> list[list[list[int]] | None]:
    """What the model saw of each cut example: ``[[start, end], ...]`` character spans of the display text
    (the columns joined with ``separator``, as :func:`example_texts`), ``None`` for an example seen whole."""
    features, num_tokens = encode_texts(tokenizer, columns, max_seq_length, truncation=truncation, offsets=True)
    out: list[list[list[int]] | None] = []
    for i, n in enumerate(num_tokens):
        if n <= max_seq_length:
            out.append(None)
            continue
        texts = [col[i] for col in columns]
        shift = np.cumsum([0, *(len(t) + len(separator) for t in texts[:-1])])
        spans: list[list[int]] = []
        last_seq = None
        for (start, end), seq in zip(features["offset_mapping"][i], features["sequence_ids"][i]):
            if seq is None or end <= start:
                continue
            if spans and seq == last_seq and not texts[seq][spans[-1][1] - shift[seq]:start].strip():
                spans[-1][1] = int(end + shift[seq])  # the next token of the same run of kept text
            else:
                spans.append([int(start + shift[seq]), int(end + shift[seq])])
            last_seq = seq
        out.append(spans)
    return out


def example_texts(ds, text_columns: Sequence[str], *, separator: str | None = None) -> list[str]:
    """One display string per example; pairs are joined with ``separator`` (default `` [SEP] ``)."""
    cols = [ds[c] for c in text_columns]
    return [(separator or " [SEP] ").join(parts) for parts in zip(*cols)]
