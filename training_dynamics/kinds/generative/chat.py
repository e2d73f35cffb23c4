"""Conversational data (a ``messages`` column of role/content turns), as TRL and the Hub's chat datasets hold it.

A conversation is rendered with the tokenizer's chat template; the loss and the recorded dynamics cover the
*assistant* tokens only (TRL's ``assistant_only_loss``). The assistant tokens are found in one of two ways:

* the template marks them with ``{% generation %}`` ... ``{% endgeneration %}``: transformers'
  ``return_assistant_tokens_mask`` (the template's author said what the model generates);
* else by rendering the conversation's prefixes: the characters that ``messages[:i + 1]`` adds to
  ``messages[:i]`` with the generation prompt are assistant turn ``i`` (its content and end-of-turn marker,
  trailing whitespace left out); the tokens overlapping them are learned. A template whose prefixes do not
  render as the start of the whole conversation (e.g. one that drops earlier turns' reasoning) is refused
  with a one-line error: add ``{% generation %}`` tags to it (``--chat_template``).

Each assistant turn is one run of learned tokens, so the recorder tells the turns apart from the labels alone
(:mod:`training_dynamics.kinds.generative.record`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Sequence

from training_dynamics.core.data import DataError, _SURROGATE

ASSISTANT = "assistant"
_GENERATION_TAG = re.compile(r"{%-?\s*generation\s*-?%}")


def is_conversation(value: Any) -> bool:
    """Whether ``value`` looks like a conversation: a list of dicts with ``role`` and ``content``."""
    return isinstance(value, list) and len(value) > 0 and all(isinstance(m, dict) and "role" in m and "content" in m
                                                               for m in value)


def check_conversations(conversations: Sequence, column: str, where: str) -> None:
    """Every row is a list of role/content turns with text content and at least one assistant turn.

    Raises:
        DataError: one line naming the row and what is wrong.
    """
    for row, conv in enumerate(conversations):
        if not is_conversation(conv):
            raise DataError(f"{where}: row {row} of column {column!r} is not a list of {{'role', 'content'}} turns")
        for k, m in enumerate(conv):
            if isinstance(m["content"], list):
                content_text(m["content"], where=f"{where}: row {row} of column {column!r}, turn {k}")
                continue
            if not isinstance(m["role"], str) or not isinstance(m["content"], str):
                raise DataError(f"{where}: row {row} of column {column!r}, turn {k}: role and content must be text")
            if _SURROGATE.search(m["content"]):
                raise DataError(f"{where}: row {row} of column {column!r}, turn {k}: the text holds a lone surrogate "
                                "(invalid Unicode); repair the file's encoding")
        if not any(m["role"] == ASSISTANT for m in conv):
            raise DataError(f"{where}: row {row} of column {column!r} has no assistant turn to learn")


#: between the text parts of one message (the Hub's multimodal format), as they are joined into one text
PART_SEPARATOR = "\n"


def content_text(content: Any, *, where: str = "a message") -> str:
    """A message's content as text: a string as it is; a list of parts (the Hub's multimodal format,
    ``[{"type": "text", "text": ...}, ...]``) joined by :data:`PART_SEPARATOR` when every part is text.

    Raises:
        DataError: a part that is not text (an image, audio, ...), in one line.
    """
    if isinstance(content, str):
        return content
    if isinstance(content, list) and content and all(isinstance(p, dict) for p in content):
        other = next((p for p in content
                      if p.get("type", "text") != "text" or not isinstance(p.get("text"), str)), None)
        if other is None:
            text = PART_SEPARATOR.join(p["text"] for p in content)
            if _SURROGATE.search(text):
                raise DataError(f"{where}: the text holds a lone surrogate (invalid Unicode); repair the file's "
                                "encoding")
            return text
        raise DataError(f"{where}: a content part of type {other.get('type')!r} is not text; only text conversations "
                        "can be recorded (leave out the other parts, or the conversation)")
    raise DataError(f"{where}: content must be text or a list of text parts, not {type(content).__name__}")


def text_conversation(messages: Sequence[dict]) -> list[dict]:
    """``messages`` with every content as text (:func:`content_text`): the form the chat template renders."""
    return [m if isinstance(m["content"], str) else {**m, "content": content_text(m["content"])} for m in messages]


def conversation_text(messages: Sequence[dict]) -> str:
    """The text tools show for a conversation: one ``role: content`` line per turn, the assistant turns
    numbered (``assistant #2:``) so that a per-turn value (``worst_turn``) points at one."""
    lines, k = [], 0
    for m in text_conversation(messages):
        if m["role"] == ASSISTANT:
            k += 1
            lines.append(f"{ASSISTANT} #{k}: {m['content']}")
        else:
            lines.append(f"{m['role']}: {m['content']}")
    return "\n".join(lines)


def read_chat_template(value: str | None) -> str | None:
    """``--chat_template``: a Jinja template string, or the path of a file holding one (``.jinja``, or a
    ``tokenizer_config.json``-style ``.json`` with a ``chat_template`` key); a Jinja syntax error is one line."""
    text = _read_chat_template(value)
    if text:
        check_template_syntax(text, where=f"--chat_template {value}" if "{" not in value else "--chat_template")
    return text


def check_template_syntax(template: str, *, where: str) -> None:
    """Compile ``template`` as transformers does (a sandboxed Jinja environment).

    Raises:
        DataError: the Jinja syntax error, with its line.
    """
    try:
        from jinja2 import TemplateSyntaxError
        from jinja2.ext import loopcontrols
        from jinja2.sandbox import ImmutableSandboxedEnvironment
    except ImportError:  # transformers needs jinja2 to render templates at all
        return
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.add_extension(_generation_extension())
    try:
        env.parse(template)
    except TemplateSyntaxError as exc:
        raise DataError(f"{where}: Jinja syntax error at line {exc.lineno} of the template: {exc.message}; fix the "
                        "template") from None


def _generation_extension():
    """A stand-in for transformers' ``{% generation %}`` tag, so that a template using it parses."""
    from jinja2 import nodes
    from jinja2.ext import Extension

    class Generation(Extension):
        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return nodes.Scope(body, lineno=lineno)

    return Generation


def _read_chat_template(value: str | None) -> str | None:
    if not value:
        return None
    if "{" not in value and os.path.isfile(value):
        text = Path(value).read_text(encoding="utf-8")
        if value.endswith(".json"):
            import json

            try:
                text = json.loads(text)["chat_template"]
            except (ValueError, KeyError, TypeError):
                raise DataError(f"{value}: not a JSON file with a 'chat_template' string") from None
        return text
    if "{" not in value:
        raise DataError(f"--chat_template {value!r}: neither a Jinja template nor an existing file")
    return value


def _render(tokenizer, messages, *, add_generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=add_generation_prompt)


def assistant_spans(tokenizer, messages: Sequence[dict], *, where: str = "data") -> tuple[str, list[tuple[int, int]]]:
    """(the rendered conversation, the character span of each assistant turn in it) by rendering prefixes.

    Raises:
        DataError: the template does not render a prefix as the start of the conversation.
    """
    full = _render(tokenizer, messages, add_generation_prompt=False)
    spans = []
    for i, m in enumerate(messages):
        if m["role"] != ASSISTANT:
            continue
        before = _prompt_only(tokenizer, messages[:i])
        upto = _render(tokenizer, messages[:i + 1], add_generation_prompt=False)
        if not (upto.startswith(before) and full.startswith(upto)):
            raise DataError(f"{where}: the chat template does not render the start of a conversation as the start of "
                            "the whole one, so its assistant turns cannot be found; pass --chat_template with "
                            "{% generation %} ... {% endgeneration %} around the assistant's output")
        end = len(upto.rstrip())
        if end > len(before):
            spans.append((len(before), end))
    return full, spans


def _prompt_only(tokenizer, messages) -> str:
    """The rendering before an assistant turn: the messages so far and the generation prompt ("" at the start)."""
    if not messages:
        try:
            return _render(tokenizer, [], add_generation_prompt=True)
        except Exception:  # a template that needs a message (e.g. indexes messages[0])
            return ""
    return _render(tokenizer, messages, add_generation_prompt=True)


def has_generation_tags(template: str | None) -> bool:
    """Whether a chat template marks the assistant's output with ``{% generation %}``."""
    return bool(template and _GENERATION_TAG.search(template))


def tokenize_conversations(ds, tokenizer, column: str, max_seq_length: int, *, where: str = "data",
                           with_num_tokens: bool = False):
    """``input_ids``/``attention_mask``/``labels`` per conversation; labels ``-100`` but on assistant tokens.

    A conversation longer than ``max_seq_length`` tokens is cut at the end (as TRL truncates).

    Raises:
        DataError: no chat template, an inconsistent one (see the module docstring), or an example with no
        assistant token left to learn.
    """
    import numpy as np

    from training_dynamics.core.data import GUID, LABEL

    if not tokenizer.chat_template:
        raise DataError(f"{where}: the tokenizer has no chat template to render the {column!r} conversations; "
                        "pass --chat_template (a Jinja template string or file)")
    tagged = has_generation_tags(tokenizer.chat_template)

    def one(messages):
        if tagged:
            enc = tokenizer.apply_chat_template(list(messages), tokenize=True, return_dict=True,
                                                return_assistant_tokens_mask=True)
            ids, mask = list(enc["input_ids"]), list(enc["assistant_masks"])
        else:
            text, spans = assistant_spans(tokenizer, messages, where=where)
            enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
            ids = enc["input_ids"]
            starts = np.array([o[0] for o in enc["offset_mapping"]], dtype=np.int64)
            ends = np.array([o[1] for o in enc["offset_mapping"]], dtype=np.int64)
            mask = np.zeros(len(ids), dtype=bool)
            for a, b in spans:  # the tokens overlapping a turn's characters
                mask |= (ends > a) & (starts < b)
            mask = mask.tolist()
        n = len(ids)
        ids, mask = ids[:max_seq_length], mask[:max_seq_length]
        return ids, [t if m else -100 for t, m in zip(ids, mask)], n

    def fn(batch):
        out = {"input_ids": [], "attention_mask": [], "labels": [], "num_tokens": []}
        for messages in batch[column]:
            ids, labels, n = one(messages)
            out["num_tokens"].append(n)
            out["input_ids"].append(ids)
            out["attention_mask"].append([1] * len(ids))
            out["labels"].append(labels)
        return out

    tok = ds.map(fn, batched=True, remove_columns=[c for c in (column, LABEL) if c in ds.column_names],
                 desc="Rendering conversations")
    n_targets = np.asarray([sum(1 for t in lab[1:] if t != -100) for lab in tok["labels"]])
    empty = np.flatnonzero(n_targets == 0)
    if len(empty):
        raise DataError(f"{where}: conversation guid {tok[GUID][int(empty[0])]!r} has no assistant token to learn "
                        f"within --max_seq_length {max_seq_length} ({len(empty)} such example(s)); raise "
                        "--max_seq_length or check the chat template")
    return tok if with_num_tokens else tok.remove_columns("num_tokens")
