"""Prompt/response (or plain text) data for causal language models: load, assign guids, tokenize.

A generative run's examples are *responses to prompts*: the model is trained (and its dynamics
recorded) on the response tokens only, with the prompt as context (``--prompt_column`` and
``--response_column``), or on every token of a text (``--text_column``, plain language modelling).
Put any instruction template into the prompt column itself: the response follows the prompt's
tokens directly. Conversations (a ``messages`` column of role/content turns, ``--messages_column``)
are rendered with the tokenizer's chat template and learned on their assistant turns
(:mod:`training_dynamics.kinds.generative.chat`).

The same conventions as :mod:`training_dynamics.core.data`: a file's ``idx``/``guid`` column gives the
ids, else the row index; texts must be strings of valid Unicode; every problem is a one-line
:class:`~training_dynamics.core.data.DataError`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from training_dynamics.kinds.generative.chat import (check_conversations, conversation_text, is_conversation,
                                                    tokenize_conversations)
from training_dynamics.core.data import (GUID, LABEL, DataError, _check_columns, _check_texts, _guids, _load_file,
                                         check_files, example_texts)

logger = logging.getLogger(__name__)

KIND = "generative"
#: the two outcomes a generative run's probabilities are over: the gold response, or anything else
LABEL_NAMES = ["response", "other"]
SEPARATOR = "\n⟶ "  #: between prompt and response in the text tools show
_PROMPT_CANDIDATES = ("prompt", "instruction", "question", "input", "query")
_RESPONSE_CANDIDATES = ("response", "output", "answer", "completion", "target")
MESSAGES = "messages"  #: the conversation column TRL and the Hub's chat datasets use
CONVERSATION = "conversation"  #: ``source["format"]`` of conversational data


@dataclass
class GenerativeData:
    """Loaded prompt/response data: ``train``/``validation`` hold the text column(s), ``guid`` and ``label`` (0).

    Shaped like :class:`~training_dynamics.core.data.TextClassificationData` so that the analysis tools
    show it unchanged: ``text_columns`` are (prompt, response) or (text,), ``label_names`` the two
    outcomes of :data:`LABEL_NAMES`.
    """

    train: "datasets.Dataset"  # noqa: F821
    validation: "datasets.Dataset | None"  # noqa: F821
    text_columns: tuple[str, ...]
    source: dict = field(default_factory=dict)
    label_names: list[str] = field(default_factory=lambda: list(LABEL_NAMES))
    separator: str = SEPARATOR

    @property
    def prompt_column(self) -> str | None:
        return self.text_columns[0] if len(self.text_columns) == 2 else None

    @property
    def response_column(self) -> str:
        return self.text_columns[-1]

    @property
    def conversational(self) -> bool:
        """Whether the examples are conversations (one column of role/content turns)."""
        return self.source.get("format") == CONVERSATION

    @property
    def noun(self) -> str:
        """What one example is, in messages: a conversation, or an example."""
        return "conversations" if self.conversational else "examples"

    def display_texts(self) -> list[str]:
        """Prompt, arrow, response; a conversation one ``role: content`` line per turn, the assistant turns
        numbered (:func:`~training_dynamics.kinds.generative.chat.conversation_text`)."""
        if self.conversational:
            return [conversation_text(m) for m in self.train[self.text_columns[0]]]
        return example_texts(self.train, self.text_columns, separator=self.separator)

    def binding_texts(self, scheme: int) -> list[str]:
        """Each training example's text as its binding hashes it (``scheme``: :data:`core.binding.SCHEME`): as shown."""
        return self.display_texts()

    def binding_labels(self, label_names: Sequence[str] | None = None) -> list[str]:
        """Each example's outcome name (``response``), as the binding hashes it."""
        names = np.asarray(list(label_names if label_names is not None else self.label_names), dtype=object)
        return names[np.asarray(self.train["label"], dtype=np.int64)].tolist()


def _guess(columns: Sequence[str], candidates: Sequence[str]) -> str | None:
    return next((c for c in candidates if c in columns), None)


def load_generative(*, train_file: str, validation_file: str | None = None, prompt_column: str | None = None,
                    response_column: str | None = None, text_column: str | None = None,
                    messages_column: str | None = None, max_train_samples: int | None = None,
                    cache_dir: str | None = None) -> GenerativeData:
    """Load prompt/response, conversational or plain text data from local files (csv, tsv, json, jsonl, parquet).

    Without any column flag, ``messages`` (conversations) is looked for, then
    ``prompt``/``instruction``/``question``/``input`` and ``response``/``output``/``answer``/``completion``,
    then ``text``. A ``text_column`` that holds conversations is read as ``messages_column``.
    """
    if sum(map(bool, (text_column, messages_column, prompt_column or response_column))) > 1:
        raise DataError("give --text_column (language modelling), --messages_column (conversations) or "
                        "--prompt_column/--response_column, not both")
    if not train_file:
        raise DataError("give --train_file (a csv, tsv, json, jsonl or parquet file of prompts and responses)")
    check_files(train_file, validation_file)  # both, before the (slow) datasets import and parse
    train = _load_file(train_file, cache_dir)
    where = str(Path(train_file).resolve())
    cols = train.column_names
    if not (text_column or messages_column or prompt_column or response_column) and MESSAGES in cols:
        messages_column = MESSAGES
    if text_column and text_column in cols and len(train) and is_conversation(train[0][text_column]):
        messages_column, text_column = text_column, None
    if messages_column:
        return _load_conversations(train, messages_column, train_file, validation_file, max_train_samples, cache_dir)
    if not text_column:
        prompt_column = prompt_column or _guess(cols, _PROMPT_CANDIDATES)
        response_column = response_column or _guess(cols, _RESPONSE_CANDIDATES)
        if not response_column and "text" in cols:
            text_column, prompt_column = "text", None
        elif not (prompt_column and response_column):
            raise DataError(f"{train_file}: cannot tell the prompt and response columns; pass --prompt_column and "
                            f"--response_column (or --text_column) (columns: {', '.join(cols)})")
    text_columns = (text_column,) if text_column else (prompt_column, response_column)
    if len(set(text_columns)) != len(text_columns):
        raise DataError(f"{train_file}: the prompt and response columns are both {prompt_column!r}")
    train = _normalise(train, text_columns, train_file)
    val = None
    if validation_file:
        val = _normalise(_load_file(validation_file, cache_dir), text_columns, validation_file)
    if max_train_samples is not None:
        train = train.select(range(min(max_train_samples, len(train))))
    source = {"kind": KIND, "train_file": where, "text_columns": list(text_columns)}
    if validation_file:
        source["validation_file"] = str(Path(validation_file).resolve())
    logger.info("loaded %d train / %s validation examples (%s)", len(train), len(val) if val is not None else "no",
                " -> ".join(text_columns))
    return GenerativeData(train, val, text_columns, source)


def _load_conversations(train, column: str, train_file: str, validation_file: str | None,
                        max_train_samples: int | None, cache_dir: str | None) -> GenerativeData:
    train = _normalise(train, (column,), train_file, conversation=True)
    val = _normalise(_load_file(validation_file, cache_dir), (column,), validation_file, conversation=True) \
        if validation_file else None
    if max_train_samples is not None:
        train = train.select(range(min(max_train_samples, len(train))))
    source = {"kind": KIND, "train_file": str(Path(train_file).resolve()), "text_columns": [column],
              "format": CONVERSATION}
    if validation_file:
        source["validation_file"] = str(Path(validation_file).resolve())
    logger.info("loaded %d train / %s validation conversations (column %s)", len(train),
                len(val) if val is not None else "no", column)
    return GenerativeData(train, val, (column,), source)


def load_generative_columns(train_file: str, text_columns, **kwargs) -> GenerativeData:
    """:func:`load_generative` with the column(s) as a run or a ranking records them: ``[prompt,
    response]``, ``[text]``, or none (guessed)."""
    cols = list(text_columns or [])
    pair = len(cols) == 2
    return load_generative(train_file=train_file, prompt_column=cols[0] if pair else None,
                           response_column=cols[1] if pair else None,
                           text_column=cols[0] if len(cols) == 1 else None, **kwargs)


def _normalise(ds, text_columns: Sequence[str], where: str, *, conversation: bool = False):
    """Keep the text column(s), check them, add ``guid`` and ``label`` 0 (every example is "the response")."""
    if len(ds) == 0:
        raise DataError(f"{where}: the file has no examples")
    _check_columns(ds, text_columns, where)
    for col in text_columns:
        if conversation:
            convs = ds[col]
            check_conversations(convs, col, where)
            if any(not isinstance(m["content"], str) for conv in convs for m in conv):  # text parts: joined
                from training_dynamics.kinds.generative.chat import text_conversation

                import datasets

                ds = datasets.Dataset.from_dict({**{c: ds[c] for c in ds.column_names if c != col},
                                                 col: [text_conversation(c) for c in convs]})
        else:
            _check_texts(ds[col], col, where)
    guid_col = next((c for c in ("idx", GUID) if c in ds.column_names), None)
    guids = _guids(ds, guid_col, where) if guid_col else np.arange(len(ds), dtype=np.int64)
    if len(np.unique(guids)) != len(ds):
        raise DataError(f"{where}: column {guid_col!r} has repeated ids")
    ds = ds.select_columns(list(text_columns))
    return ds.add_column(LABEL, [0] * len(ds)).add_column(GUID, guids.tolist())


def tokenize_generative(ds, tokenizer, text_columns: Sequence[str], max_seq_length: int = 256, *, where: str = "data",
                        with_num_tokens: bool = False):
    """``input_ids``/``attention_mask``/``labels`` per example (no padding; :class:`CausalLMCollator` pads).

    Prompt/response: the prompt's tokens (with the tokenizer's special tokens, e.g. a BOS), then the
    response's tokens and the EOS token; ``labels`` are ``-100`` on the prompt, so the loss (and the
    recorded dynamics) cover the response only. A long example loses its prompt's *start* first, so
    that the response is kept; one whose response alone is longer than ``max_seq_length`` is cut at
    the end. Plain text: every token is a label.

    Conversations (one column of role/content turns): :func:`training_dynamics.kinds.generative.chat.tokenize_conversations`.
    ``with_num_tokens``: add ``num_tokens``, each example's length before any cut (the truncation report).

    Raises:
        DataError: an example with no token to learn (an empty response).
    """
    if len(text_columns) == 1 and len(ds) and is_conversation(ds[0][text_columns[0]]):
        return tokenize_conversations(ds, tokenizer, text_columns[0], max_seq_length, where=where,
                                      with_num_tokens=with_num_tokens)
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    pair = len(text_columns) == 2

    def fn(batch):
        out = {"input_ids": [], "attention_mask": [], "labels": [], "num_tokens": []}
        responses = tokenizer(batch[text_columns[-1]], add_special_tokens=not pair)["input_ids"]
        prompts = tokenizer(batch[text_columns[0]])["input_ids"] if pair else [[] for _ in responses]
        for prompt, response in zip(prompts, responses):
            out["num_tokens"].append(len(prompt) + len(response) + len(eos))
            response = (response + eos)[:max_seq_length]
            keep = max(0, max_seq_length - len(response))
            prompt = prompt[max(0, len(prompt) - keep):] if keep else []
            ids = prompt + response
            labels = [-100] * len(prompt) + response
            if not pair:
                labels[0] = -100  # the first token has no context to be predicted from
            out["input_ids"].append(ids)
            out["attention_mask"].append([1] * len(ids))
            out["labels"].append(labels)
        return out

    tok = ds.map(fn, batched=True, remove_columns=[c for c in (*text_columns, LABEL) if c in ds.column_names],
                 desc="Tokenizing")
    n_targets = np.asarray([sum(1 for t in lab[1:] if t != -100) for lab in tok["labels"]])
    empty = np.flatnonzero(n_targets == 0)
    if len(empty):
        raise DataError(f"{where}: example guid {tok[GUID][int(empty[0])]!r} has no response token to learn "
                        f"({len(empty)} such example(s)); remove empty responses")
    return tok if with_num_tokens else tok.remove_columns("num_tokens")


class CausalLMCollator:
    """Pads ``input_ids`` (with the pad token), ``attention_mask`` (0) and ``labels`` (-100) on the right."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = int(pad_token_id)

    def __call__(self, features: list[dict]) -> dict:
        import torch

        width = max(len(f["input_ids"]) for f in features)
        pads = {"input_ids": self.pad_token_id, "attention_mask": 0, "labels": -100}
        batch = {k: torch.tensor([list(f[k]) + [v] * (width - len(f[k])) for f in features], dtype=torch.long)
                 for k, v in pads.items()}
        for key in features[0]:
            if key not in batch:
                batch[key] = torch.tensor([f[key] for f in features])
        return batch
