"""Token classification data (NER and the like): load, tag ids, guids, tokenize with word alignment.

The conventions of transformers' ``run_ner.py``: a row is a sentence, ``--text_column_name`` holds
its words (a list of strings), ``--label_column_name`` one tag per word (strings such as ``B-PER``,
or integer ids, named by a Hub dataset's ``ClassLabel`` or by ``--class_names``). The first
sub-token of each word carries the word's label; the other sub-tokens carry ``-100`` (or, with
``label_all_tokens``, the word's tag with ``B-`` turned into ``I-``).

As for the other kinds: a file's ``idx``/``guid`` column gives the sentence ids, else the row index;
every problem is a one-line :class:`~training_dynamics.core.data.DataError`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from training_dynamics.core.data import (GUID, DataError, _check_columns, _guids, _load_file, is_saved_dataset,
                                         load_saved_dataset)

logger = logging.getLogger(__name__)

KIND = "token_classification"
TOKENS = "tokens"  #: the normalised words column
TAGS = "tags"  #: the normalised tag-id column (one id per word)
WORD = "td_word"  #: per token: the slot of the word it starts among the sentence's recorded words, else -1
IGNORE_INDEX = -100
_TEXT_CANDIDATES = ("tokens", "words")
_LABEL_CANDIDATES = ("ner_tags", "tags", "labels", "pos_tags", "chunk_tags")


@dataclass
class TokenClassificationData:
    """Loaded sentences: ``train``/``validation`` hold ``tokens`` (words), ``tags`` (tag ids) and ``guid``.

    ``source`` records where they came from and the user's column names (apply writes back into them).
    """

    train: "datasets.Dataset"  # noqa: F821
    validation: "datasets.Dataset | None"  # noqa: F821
    label_names: list[str]
    source: dict = field(default_factory=dict)
    text_columns: tuple[str, ...] = (TOKENS,)
    tags_as_ids: bool = False  #: the file held integer tag ids (or a ClassLabel), not tag names: apply writes ids back

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    def display_texts(self) -> list[str]:
        """A sentence: its words joined by spaces."""
        return [" ".join(words) for words in self.train[TOKENS]]

    def binding_texts(self, scheme: int) -> list[str]:
        """A sentence's words as a JSON list, so that a moved word boundary changes it (scheme 1, older runs:
        joined by spaces, as shown)."""
        if scheme < 2:
            return self.display_texts()
        import json

        return [json.dumps(list(words), ensure_ascii=False) for words in self.train[TOKENS]]

    def binding_labels(self, label_names: Sequence[str] | None = None) -> list[str]:
        """A sentence's tags, by name, joined by spaces."""
        names = list(label_names if label_names is not None else self.label_names)
        return [" ".join(names[t] for t in tags) for tags in self.train[TAGS]]


def load_token_classification(*, train_file: str | None = None, validation_file: str | None = None,
                              dataset_name: str | None = None, dataset_config_name: str | None = None,
                              text_column_name: str | None = None, label_column_name: str | None = None,
                              label_names: Sequence[str] | None = None, max_train_samples: int | None = None,
                              cache_dir: str | None = None) -> TokenClassificationData:
    """Load a Hub dataset (``dataset_name``) or local csv/json/jsonl/parquet files of tagged sentences."""
    import datasets

    if dataset_name and train_file:
        raise DataError("give --dataset_name or --train_file, not both")
    if dataset_name and is_saved_dataset(dataset_name):  # a datasets.save_to_disk folder
        train, splits = load_saved_dataset(dataset_name)
        val = splits.get("validation")
        dataset_name = str(Path(dataset_name).resolve())
        source = {"dataset_name": dataset_name}
    elif dataset_name:
        raw = datasets.load_dataset(dataset_name, dataset_config_name, cache_dir=cache_dir)
        if "train" not in raw:
            raise DataError(f"{dataset_name}: no train split (splits: {', '.join(raw)})")
        train, val = raw["train"], raw["validation"] if "validation" in raw else None
        source = {"dataset_name": dataset_name, "dataset_config_name": dataset_config_name}
    elif train_file:
        train = _load_sentences(train_file, cache_dir)
        val = _load_sentences(validation_file, cache_dir) if validation_file else None
        source = {"train_file": str(Path(train_file).resolve())}
        if validation_file:
            source["validation_file"] = str(Path(validation_file).resolve())
    else:
        raise DataError("give --train_file (CoNLL, csv, json, jsonl or parquet of tagged sentences) or --dataset_name")
    where = source.get("train_file") or dataset_name
    cols = train.column_names
    text_column_name = text_column_name or next((c for c in _TEXT_CANDIDATES if c in cols), None)
    label_column_name = label_column_name or next((c for c in _LABEL_CANDIDATES if c in cols), None)
    if not text_column_name or not label_column_name:
        raise DataError(f"{where}: cannot tell the words and tags columns; pass --text_column_name and "
                        f"--label_column_name (columns: {', '.join(cols)})")
    _check_columns(train, [text_column_name, label_column_name], where)
    if len(train) == 0:
        raise DataError(f"{where}: the training set is empty")
    names = tag_names(train, label_column_name, label_names, where)
    as_ids = _holds_ids(train, label_column_name)
    train = _normalise(train, text_column_name, label_column_name, names, where)
    if val is not None:
        vwhere = source.get("validation_file", where)
        _check_columns(val, [text_column_name, label_column_name], vwhere)
        val = _normalise(val, text_column_name, label_column_name, names, vwhere)
    if max_train_samples is not None:
        train = train.select(range(min(max_train_samples, len(train))))
    source.update(kind=KIND, text_columns=[text_column_name], label_column=label_column_name)
    logger.info("loaded %d train / %s validation sentences; tags %s", len(train),
                len(val) if val is not None else "no", names)
    return TokenClassificationData(train, val, names, source, tags_as_ids=as_ids)


def _load_sentences(path: str, cache_dir: str | None):
    """A file of tagged sentences: CoNLL (one word per line, :mod:`training_dynamics.kinds.token.conll`), else a
    csv/json/jsonl/parquet file or a ``save_to_disk`` folder of one sentence per row."""
    from training_dynamics.kinds.token.conll import is_conll, load_conll_dataset

    return load_conll_dataset(path) if is_conll(path) else _load_file(path, cache_dir)


def _holds_ids(ds, column: str) -> bool:
    """Whether the tags column holds integer ids (a ``Sequence(ClassLabel)`` or integers), not tag names."""
    import datasets

    inner = getattr(ds.features[column], "feature", None)
    if isinstance(inner, datasets.ClassLabel):
        return True
    return isinstance(inner, datasets.Value) and inner.dtype.startswith(("int", "uint"))


def tag_names(ds, column: str, given: Sequence[str] | None, where: str) -> list[str]:
    """Tag names in id order: a ``Sequence(ClassLabel)``'s names, ``given`` names, else (as
    ``run_ner.py``) the sorted distinct string tags, or ``0..max`` for integer tags."""
    import datasets

    feat = ds.features[column]
    inner = getattr(feat, "feature", None)
    if isinstance(inner, datasets.ClassLabel):
        if given and sorted(given) != sorted(inner.names):
            raise DataError(f"{where}: --class_names {list(given)} are not the dataset's tag names {inner.names}")
        return list(given) if given else list(inner.names)
    if given:
        return [str(g) for g in given]
    all_tags = ds[column]
    nulls = [row for row, tags in enumerate(all_tags) if tags is None or any(v is None for v in tags)]
    if nulls:
        raise DataError(f"{where}: column {column!r} has empty (null) tags in {len(nulls)} of {len(all_tags)} rows "
                        f"(first: row {nulls[0]}); every word needs a tag (is --label_column_name the tags column?)")
    values = {v for tags in all_tags for v in tags}
    if not values:
        raise DataError(f"{where}: column {column!r} holds no tags")
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        if min(values) < 0:
            raise DataError(f"{where}: negative tag {min(values)} in column {column!r}")
        return [str(i) for i in range(max(values) + 1)]
    if all(isinstance(v, str) for v in values):
        return sorted(values)
    raise DataError(f"{where}: column {column!r} mixes numbers and strings: write every tag as a number or every "
                    "tag as a string")


def _normalise(ds, text_column: str, label_column: str, names: list[str], where: str):
    """``tokens`` (list of str), ``tags`` (list of tag ids, one per word) and ``guid``."""
    import datasets

    words, tags = ds[text_column], ds[label_column]
    feat = getattr(ds.features[label_column], "feature", None)
    index = {n: i for i, n in enumerate(names)}
    if isinstance(feat, datasets.ClassLabel):  # ids follow the names (given names may reorder them)
        remap = np.asarray([index[n] for n in feat.names], dtype=np.int64)
    ids: list[list[int]] = []
    for row, (w, t) in enumerate(zip(words, tags)):
        if not isinstance(w, list) or not all(isinstance(x, str) for x in w):
            raise DataError(f"{where}: row {row}: column {text_column!r} must be a list of words (strings)")
        if not isinstance(t, list) or len(t) != len(w):
            got = len(t) if isinstance(t, list) else type(t).__name__
            raise DataError(f"{where}: row {row}: {len(w)} words but {got} tags in column {label_column!r}")
        if not w:
            raise DataError(f"{where}: row {row} has no words")
        if isinstance(feat, datasets.ClassLabel):
            row_ids = remap[np.asarray(t, dtype=np.int64)].tolist()
        elif all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in t):
            row_ids = [int(x) for x in t]
        else:
            bad = next((x for x in t if str(x) not in index), None)
            if bad is not None:
                raise DataError(f"{where}: row {row} has tag {bad!r}, not one of {names}")
            row_ids = [index[str(x)] for x in t]
        if any(i < 0 or i >= len(names) for i in row_ids):
            raise DataError(f"{where}: row {row} has a tag id outside 0..{len(names) - 1}")
        ids.append(row_ids)
    guid_col = next((c for c in ("idx", GUID) if c in ds.column_names), None)
    guids = _guids(ds, guid_col, where) if guid_col else np.arange(len(ds), dtype=np.int64)
    if len(np.unique(guids)) != len(ds):
        raise DataError(f"{where}: column {guid_col!r} has repeated ids")
    return datasets.Dataset.from_dict({TOKENS: words, TAGS: ids, GUID: guids.tolist()})


def names_from_config(data: TokenClassificationData, config, *, given: bool) -> TokenClassificationData:
    """Integer tags named by the model: where the file held bare ids (and no ``--class_names`` named them),
    the saved model's ``id2label`` names them when it has a name for each id (``B-PER``, not ``0`` or
    ``LABEL_0``), so that the run records ``B-PER``, not ``"0"``."""
    id2label = getattr(config, "id2label", None) or {}
    if given or not data.tags_as_ids or any(str(n) != str(i) for i, n in enumerate(data.label_names)):
        return data
    names = [str(id2label.get(i, "")) for i in range(len(id2label))]
    if len(names) < data.num_labels or any(not n or n == str(i) or n == f"LABEL_{i}" for i, n in enumerate(names)):
        return data
    logger.info("integer tags named by the model's id2label: %s", names)
    data.label_names = names
    return data


def b_to_i(label_names: Sequence[str]) -> list[int]:
    """For each tag id, the id of its inside tag (``B-X`` -> ``I-X`` when it exists; else itself)."""
    index = {n: i for i, n in enumerate(label_names)}
    return [index.get("I-" + n[2:], i) if n.startswith("B-") else i for i, n in enumerate(label_names)]


def tokenize_and_align(ds, tokenizer, *, max_seq_length: int = 128, label_all_tokens: bool = False,
                       label_names: Sequence[str] = (), where: str = "data"):
    """``input_ids``, ``labels`` (per token) and :data:`WORD` (per token) as ``run_ner.py`` aligns them,
    plus ``word_index`` (the words of the sentence that kept a first sub-token after truncation) and
    ``word_tags`` (their tags). Needs a fast tokenizer (``word_ids``)."""
    if not getattr(tokenizer, "is_fast", False):
        raise DataError(f"{type(tokenizer).__name__} is not a fast tokenizer: word alignment needs one "
                        "(load a model with a tokenizer.json)")
    inside = b_to_i(label_names) if label_all_tokens else None

    def fn(batch):
        enc = tokenizer(batch[TOKENS], truncation=True, max_length=max_seq_length, is_split_into_words=True)
        full = tokenizer(batch[TOKENS], truncation=False, is_split_into_words=True, verbose=False)["input_ids"]
        labels, slots, kept, kept_tags = [], [], [], []
        for i, tags in enumerate(batch[TAGS]):
            lab, slot, words = [], [], []
            prev = None
            for wid in enc.word_ids(batch_index=i):
                if wid is None:
                    lab.append(IGNORE_INDEX)
                    slot.append(-1)
                elif wid != prev:
                    lab.append(tags[wid])
                    slot.append(len(words))
                    words.append(wid)
                else:
                    lab.append(inside[tags[wid]] if inside is not None else IGNORE_INDEX)
                    slot.append(-1)
                prev = wid
            labels.append(lab)
            slots.append(slot)
            kept.append(words)
            kept_tags.append([tags[w] for w in words])
        enc["labels"], enc[WORD], enc["word_index"], enc["word_tags"] = labels, slots, kept, kept_tags
        enc["num_tokens"] = [len(ids) for ids in full]  # before the cut: the run's truncation report
        return enc

    tok = ds.map(fn, batched=True, remove_columns=[TOKENS, TAGS], desc="Tokenizing")
    n_words = np.asarray([len(t) for t in ds[TAGS]])
    n_kept = np.asarray([len(k) for k in tok["word_index"]])
    if (n_kept == 0).any():
        row = int(np.flatnonzero(n_kept == 0)[0])
        raise DataError(f"{where}: sentence guid {ds[GUID][row]!r} has no word the tokenizer keeps; remove it")
    lost = int((n_words - n_kept).sum())
    if lost:
        logger.warning("%s: %d of %d words have no token within --max_seq_length %d (cut off, or empty): their "
                       "dynamics are not recorded", where, lost, int(n_words.sum()), max_seq_length)
    return tok


class TokenCollator:
    """``DataCollatorForTokenClassification`` (pads ``labels`` with -100) that also pads :data:`WORD`
    with -1 and drops the per-word columns the model does not take."""

    def __init__(self, tokenizer, pad_to_multiple_of: int | None = None):
        from transformers import DataCollatorForTokenClassification

        self.base = DataCollatorForTokenClassification(tokenizer, pad_to_multiple_of=pad_to_multiple_of)
        self.padding_side = tokenizer.padding_side

    def __call__(self, features: list[dict]) -> dict:
        import torch

        slots = [f.get(WORD) for f in features]
        drop = (WORD, "word_index", "word_tags")
        batch = self.base([{k: v for k, v in f.items() if k not in drop} for f in features])
        if slots[0] is not None:
            width = batch["input_ids"].shape[1]
            pad = [[-1] * (width - len(s)) for s in slots]
            rows = [p + list(s) if self.padding_side == "left" else list(s) + p for s, p in zip(slots, pad)]
            batch[WORD] = torch.tensor(rows, dtype=torch.long)
        return batch


def load_token_source(src: dict, *, label_names: Sequence[str] | None = None, cache_dir: str | None = None,
                      where: str = "the settings") -> TokenClassificationData:
    """Load the sentences a recorded source names (a run's meta ``data``: ``train_file`` or
    ``dataset_name``, ``text_columns``, ``label_column``, ``max_train_samples``), with the run's tag names.

    Raises:
        DataError: the source names no data, or its file is gone (the message suggests --train_file).
    """
    import os

    if not (src.get("train_file") or src.get("dataset_name")):
        raise DataError(f"{where}: names no training data; pass --train_file")
    if src.get("train_file") and not os.path.exists(src["train_file"]):
        raise DataError(f"{src['train_file']}: the training file named in {where} is gone (moved?); pass "
                        "--train_file with its new path")
    cols = list(src.get("text_columns") or [])
    return load_token_classification(
        train_file=src.get("train_file"), dataset_name=None if src.get("train_file") else src.get("dataset_name"),
        dataset_config_name=src.get("dataset_config_name"), text_column_name=cols[0] if cols else None,
        label_column_name=src.get("label_column"), label_names=label_names,
        max_train_samples=src.get("max_train_samples"), cache_dir=cache_dir)


def write_sentences(path, data: TokenClassificationData, guids) -> Path:
    """Write the sentences ``guids`` of ``data`` as jsonl in the columns the run read (its words column,
    its tags column with tag names, ``guid``), atomically: ``record-ner --train_file`` reads it back."""
    import json

    from training_dynamics.core import fileio
    from training_dynamics.analysis.selection import select_guids

    rows = select_guids(data.train, guids, where=str(path))
    text_col = (data.source.get("text_columns") or [TOKENS])[0]
    label_col = data.source.get("label_column") or "ner_tags"
    names = list(data.label_names)
    with fileio.atomic_write(path) as fh:
        for words, tags, guid in zip(rows[TOKENS], rows[TAGS], rows[GUID]):
            fh.write(json.dumps({text_col: words, label_col: [names[t] for t in tags], GUID: guid},
                                ensure_ascii=False) + "\n")
    return Path(path)
