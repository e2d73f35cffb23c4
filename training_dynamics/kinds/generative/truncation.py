"""Truncation of generative and chat examples: counted, logged in one line, kept in the meta as ``truncation``.

Classification's report (:func:`training_dynamics.core.data.truncation_report`) with the generative kinds'
strategies: a conversation (or a plain text) is cut at its end (``"end"``; TRL's ``keep_start``), a
prompt/response pair loses its prompt's start first (``"prompt_start"``); TRL's ``keep_end`` keeps the end.
The review page greys what the model never saw (:func:`seen_conversations`, :func:`seen_prompt_response`).
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np

from training_dynamics.core.data import truncation_report

logger = logging.getLogger(__name__)

_WHAT = {"end": "only their first {n} tokens", "keep_end": "only their last {n} tokens",
         "prompt_start": "the end of their prompt and their response within {n} tokens"}


def describe_generative(report: dict, *, noun: str = "examples", flag: str = "--max_seq_length") -> str:
    """One log line of a generative truncation report."""
    n, k, limit = report["num_examples"], report["num_truncated"], report["max_seq_length"]
    if not k:
        return f"no training {noun} is longer than {flag} {limit} tokens (longest {report['max_tokens']})"
    seen = _WHAT.get(report["strategy"], "a part of them").format(n=limit)
    return (f"{k} of {n} training {noun} ({100.0 * k / max(n, 1):.1f}%) are longer than {flag} {limit} tokens "
            f"(longest {report['max_tokens']}, {report['mean_tokens_cut']:.1f} tokens cut on average): the model "
            f"learns from {seen}; raise {flag} to keep more")


def generative_truncation(num_tokens: Sequence[int], max_seq_length: int, *, strategy: str, noun: str = "examples",
                          flag: str = "--max_seq_length") -> dict:
    """The truncation report of a generative training set (``num_tokens``: each example's length before the
    cut), logged in one line (a warning when any example was cut)."""
    report = report_of(num_tokens, max_seq_length, strategy)
    (logger.warning if report["num_truncated"] else logger.info)(describe_generative(report, noun=noun, flag=flag))
    return report


def report_of(num_tokens: Sequence[int], max_seq_length: int, strategy: str) -> dict:
    """:func:`training_dynamics.core.data.truncation_report` under a generative strategy name."""
    return truncation_report(np.asarray(num_tokens, dtype=np.int64), max_seq_length, strategy)


def prefix_spans(display: Sequence[str], messages_list: Sequence[Sequence[dict]], rendered: Sequence[str],
                 kept_chars: Sequence[int | None]) -> list[list[list[int]] | None]:
    """What the model saw of each conversation cut at its end, as character spans of its display text
    (:func:`training_dynamics.kinds.generative.chat.conversation_text`): ``[[0, end]]``, ``None`` for one seen whole.

    ``rendered``: the chat template's rendering; ``kept_chars``: how many of its characters the kept tokens
    cover (``None``: not cut). Each message's content is found in the rendering in order; the display keeps
    the part of the content before the cut (a message whose content starts after it is not seen at all).
    """
    from training_dynamics.kinds.generative.chat import ASSISTANT

    out: list[list[list[int]] | None] = []
    for text, messages, full, kept in zip(display, messages_list, rendered, kept_chars):
        if kept is None:
            out.append(None)
            continue
        at, shown, end = 0, 0, 0
        k = 0
        for i, m in enumerate(messages):
            if m["role"] == ASSISTANT:
                k += 1
                head = f"{ASSISTANT} #{k}: "
            else:
                head = f"{m['role']}: "
            pos = full.find(m["content"], at) if m["content"] else at
            if pos < 0:
                pos = at
            if pos >= kept:
                break
            seen_here = min(len(m["content"]), kept - pos)
            end = shown + len(head) + seen_here
            at = pos + len(m["content"])
            shown += len(head) + len(m["content"]) + 1  # the newline between lines
            if seen_here < len(m["content"]):
                break
        out.append([[0, min(end, len(text))]])
    return out


def seen_conversations(run, guids, data):
    """Per guid, what the model saw of a conversation a ``"end"`` truncation cut (``[[0, end]]`` of its display
    text, ``None`` when seen whole), or ``None`` when nothing can be said (not conversations, nothing cut,
    another strategy, or the run's tokenizer or chat template cannot be loaded: a warning)."""
    import pandas as pd

    from training_dynamics.kinds.generative.chat import conversation_text
    from training_dynamics.core.ids import as_guids

    cut = run.meta.get("truncation") or {}
    if not cut.get("num_truncated") or cut.get("strategy") != "end" or not getattr(data, "conversational", False):
        return None
    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(run.meta["model_name_or_path"])
        if run.meta.get("chat_template"):
            tokenizer.chat_template = run.meta["chat_template"]
        if not tokenizer.chat_template:
            raise ValueError("no chat template")
    except Exception as exc:  # a moved model folder or no Hub: the page then shows whole texts
        logger.warning("%s: cannot load the run's tokenizer and chat template (%s), so the review cannot mark what "
                       "the model saw of the %d cut conversations", run.path,
                       str(exc).splitlines()[0] if str(exc) else type(exc).__name__, cut["num_truncated"])
        return None
    limit = int(cut["max_seq_length"])
    train = data.train
    row = pd.Series(np.arange(len(train)), index=as_guids(train["guid"])).reindex(as_guids(guids)).to_numpy()
    column = data.text_columns[0]
    convs = [train[int(i)][column] for i in row]
    rendered = [tokenizer.apply_chat_template(list(c), tokenize=False) for c in convs]
    kept: list[int | None] = []
    for text in rendered:
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        kept.append(None if len(enc["input_ids"]) <= limit else int(enc["offset_mapping"][limit - 1][1]))
    spans = prefix_spans([conversation_text(c) for c in convs], convs, rendered, kept)
    return pd.Series(spans, index=as_guids(guids), dtype=object)


def seen_prompt_response(run, guids, data):
    """Per guid, what the model saw of a prompt/response pair (or plain text) that ``record-clm`` cut: character
    spans of its display text (prompt, separator, response; :func:`training_dynamics.kinds.generative.data.tokenize_generative`
    keeps the end of the prompt and the start of the response), ``None`` when seen whole; ``None`` overall when
    nothing was cut or the run's tokenizer cannot be loaded (a warning)."""
    import pandas as pd

    from training_dynamics.core.ids import as_guids

    cut = run.meta.get("truncation") or {}
    if not cut.get("num_truncated") or cut.get("strategy") not in ("prompt_start", "end"):
        return None
    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(run.meta["model_name_or_path"])
    except Exception as exc:  # a moved model folder or no Hub: the page then shows whole texts
        logger.warning("%s: cannot load the run's tokenizer (%s), so the review cannot mark what the model saw of "
                       "the %d cut examples", run.path, str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                       cut["num_truncated"])
        return None
    limit = int(cut["max_seq_length"])
    eos = 1 if tokenizer.eos_token_id is not None else 0
    train = data.train
    row = pd.Series(np.arange(len(train)), index=as_guids(train["guid"])).reindex(as_guids(guids)).to_numpy()
    cols = [[train[int(i)][c] for i in row] for c in data.text_columns]
    sep = data.separator or ""
    spans: list[list[list[int]] | None] = []
    if len(cols) == 1:  # plain text: every token, cut at the end
        for text in cols[0]:
            enc = tokenizer(text, return_offsets_mapping=True)
            n = len(enc["input_ids"]) + eos
            ends = [e for _, e in enc["offset_mapping"][:limit] if e > 0]
            spans.append(None if n <= limit else [[0, max(ends, default=0)]])
        return pd.Series(spans, index=as_guids(guids), dtype=object)
    for prompt, response in zip(*cols):
        r = tokenizer(response, add_special_tokens=False, return_offsets_mapping=True)
        p = tokenizer(prompt, return_offsets_mapping=True)
        n_r = len(r["input_ids"]) + eos
        at = len(prompt) + len(sep)
        if len(p["input_ids"]) + n_r <= limit:
            spans.append(None)
        elif n_r >= limit:  # the response alone fills the budget: its start only
            ends = [e for _, e in r["offset_mapping"][:limit] if e > 0]
            spans.append([[at, at + max(ends, default=0)]])
        else:
            keep = limit - n_r
            starts = [s for s, e in p["offset_mapping"][len(p["input_ids"]) - keep:] if e > s]
            first = min(starts, default=len(prompt))
            spans.append(([[first, len(prompt)]] if first < len(prompt) else []) + [[at, at + len(response)]])
    return pd.Series(spans, index=as_guids(guids), dtype=object)
