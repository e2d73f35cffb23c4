"""What a ``DynamicsSFTTrainer`` run is bound to: the training rows it was given, before TRL prepares them.

TRL takes conversations (a ``messages`` column), prompt/completion pairs or plain text (``dataset_text_field``,
default ``text``). The run keeps their binding (:mod:`training_dynamics.core.binding`: one hash per guid over the
text every tool shows) and, in its meta, the columns ``record-clm`` would read them from, so that
``find-issues --train_file`` (or ``review``, ``select --write_data``) checks that the file it is given holds the
same examples under the same guids -- a reordered or other file is refused, never shown beside other scores.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from training_dynamics.core.binding import Binding
from training_dynamics.kinds.generative.data import CONVERSATION, KIND, MESSAGES, GenerativeData
from training_dynamics.core.data import GUID, LABEL

logger = logging.getLogger(__name__)


def _columns(ds, args: Any) -> tuple[tuple[str, ...], bool] | None:
    """``(text columns, conversational)`` of a TRL training dataset, or ``None`` (already tokenized, or a
    format record-clm does not read)."""
    from training_dynamics.kinds.generative.chat import is_conversation

    cols = ds.column_names
    first = ds[0] if len(ds) else {}
    if MESSAGES in cols and is_conversation(first.get(MESSAGES)):
        return (MESSAGES,), True
    if "prompt" in cols and "completion" in cols:
        if isinstance(first.get("prompt"), str) and isinstance(first.get("completion"), str):
            return ("prompt", "completion"), False
        return None
    text = getattr(args, "dataset_text_field", None) or "text"
    if text in cols and isinstance(first.get(text), str):
        return (text,), False
    return None


def sft_binding(ds, args: Any, *, guid_column: str) -> tuple[Binding | None, dict]:
    """``(binding, meta data source)`` of the training rows ``ds`` a ``DynamicsSFTTrainer`` was given
    (``guid_column``: the column holding their guids). ``(None, {...})`` where the rows hold no text
    (already tokenized): a warning says that a ``--train_file`` cannot be checked against such a run."""
    found = _columns(ds, args)
    if found is None:
        logger.warning("the training dataset (columns %s) holds no messages, prompt/completion or text column, so "
                       "the run cannot be bound to its data: find-issues --train_file cannot check the file it is "
                       "given against it", ", ".join(ds.column_names))
        return None, {"kind": KIND, "bound": False}
    columns, conversational = found
    source = {"kind": KIND, "text_columns": list(columns)}
    if conversational:
        source["format"] = CONVERSATION
    train = ds.select_columns([*columns, guid_column])
    if guid_column != GUID:
        train = train.rename_column(guid_column, GUID)
    train = train.add_column(LABEL, np.zeros(len(train), dtype=np.int64).tolist())
    return Binding.of(GenerativeData(train, None, columns, source)), source
