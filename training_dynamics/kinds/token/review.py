"""Review and apply word corrections of a token classification run.

The review page (:mod:`training_dynamics.review.page`) shows one card per ranked word: its sentence with
the tags as coloured BIO spans, the word itself boxed and the sentence's other flagged words marked.
A choice is keyed by ``(guid, word_index)`` and carries the fingerprint of the whole sentence (its
words and tag names, :func:`training_dynamics.review.corrections.example_fingerprint`), so it is never
applied to a sentence the reviewer did not see. The page exports each choice as
``{"guid": "7", "word_index": 2, "example_fingerprint": ..., "action": "relabel", "label": "B-LOC",
"original_label": "B-PER"}``.

:func:`apply_word_corrections` writes the corrected sentences back in the columns the data had: its
words column, its tags column (tag names, or ids where the file held ids) and ``guid``, plus
``original_tags`` and ``review_actions`` (one per word); ``record-ner --train_file`` reads it back.
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
import pandas as pd

from training_dynamics.review.corrections import UNREVIEWED, Corrections, CorrectionsError, data_fingerprints, guid_keys
from training_dynamics.core.ids import as_guids
from training_dynamics.kinds.token.data import GUID, TAGS, TOKENS, TokenClassificationData

logger = logging.getLogger(__name__)


def _key(guid: str, word_index: int) -> str:
    """The page's storage key of one word."""
    return f"{guid}#{int(word_index)}"


def review_rows(issues: pd.DataFrame, settings: dict, label_names: Sequence[str], *, data):
    """``(rows, dataset fingerprint, warnings, extra payload)`` for the review page of a word ranking.

    ``data``: the training sentences the settings name, read with the ranking's tag names: a word whose
    sentence is gone, or whose word or tag is no longer the one ranked, is left out (with a warning).
    The extra payload holds each item's ``key`` (guid and word index), ``word_index``, ``sent`` (its
    sentence in ``sentences``) and ``fp`` (the sentence's fingerprint), and ``sentences``: ``guid``,
    ``words`` and ``tags`` (tag ids) of every sentence with a ranked word.

    """
    names = [str(n) for n in label_names]
    fingerprint, sentence_fps = data_fingerprints(data, names)
    sent_keys = guid_keys(as_guids(data.train["guid"]))
    row_of = pd.Series(np.arange(len(sent_keys)), index=sent_keys)
    keys = guid_keys(as_guids(issues["guid"]))
    rows = row_of.reindex(keys).to_numpy()
    table = data.train[:]  # plain lists (a dataset's column is read lazily, row by row)
    tokens, tags = table[TOKENS], table[TAGS]
    wi = issues["word_index"].to_numpy(np.int64)
    gold = issues["gold"].to_numpy(np.int64)
    words = issues["word"].astype(str).tolist() if "word" in issues else [None] * len(issues)
    ok = np.zeros(len(issues), dtype=bool)
    for i, r in enumerate(rows):
        if not np.isnan(r) and wi[i] < len(tokens[int(r)]):
            ok[i] = tags[int(r)][wi[i]] == gold[i] and words[i] in (None, tokens[int(r)][wi[i]])
    warnings = []
    if not ok.all():
        logger.warning("%d ranked words differ from the training data now; left out of the page", int((~ok).sum()))
        warnings.append(f"{int((~ok).sum())} of the {len(issues)} ranked words are left out: their sentence changed "
                        "since the ranking (or is gone); re-run find_label_issues.py to review them.")
    issues = issues[ok].reset_index(drop=True)
    rows = rows[ok].astype(np.int64)
    used, sent = np.unique(rows, return_inverse=True)
    keys = [k for k, good in zip(keys, ok) if good]
    extra = {"items": {"key": [_key(k, w) for k, w in zip(keys, issues["word_index"])],
                       "word_index": issues["word_index"].astype(int).tolist(), "sent": sent.astype(int).tolist(),
                       "fp": sentence_fps.reindex(keys).tolist()},
             "sentences": {"guid": [sent_keys[r] for r in used], "words": [list(tokens[r]) for r in used],
                           "tags": [list(tags[r]) for r in used]}}
    return issues, fingerprint, warnings, extra


def apply_word_corrections(data: TokenClassificationData, corrections: Corrections, *, where: str = "corrections.json",
                           unsure: str = "keep", skip_changed: bool = False,
                           fingerprints: tuple[str, pd.Series] | None = None) -> pd.DataFrame:
    """The corrected sentences as a table in the data's own columns (module docstring).

    Args:
        unsure: ``"keep"`` sentences with a word marked unsure (their tags unchanged) or ``"drop"`` them.
        skip_changed: skip (with a warning) corrections whose sentence is gone or changed; by default an error.
        fingerprints: :func:`corrections.data_fingerprints` of ``data`` when already computed.
    Raises:
        CorrectionsError: a correction names no word, an unknown tag, or (without ``skip_changed``) a
            sentence or word that is not the one reviewed.
    """
    names = [str(n) for n in data.label_names]
    _, sentence_fps = fingerprints or data_fingerprints(data)
    sent_keys = guid_keys(as_guids(data.train["guid"]))
    row_of = pd.Series(np.arange(len(sent_keys)), index=sent_keys)
    table = data.train[:]  # plain lists (a dataset's column is read lazily, row by row)
    tokens = table[TOKENS]
    corrected = [list(t) for t in table[TAGS]]
    original = [list(t) for t in corrected]
    actions = [[UNREVIEWED] * len(t) for t in corrected]
    skipped = 0
    for k, g in enumerate(corrections.guids):
        w, fp, orig = corrections.word_indices[k], corrections.example_fingerprints[k], corrections.original_labels[k]
        say = f"{where}: correction {k} (guid {g}, word {w})"
        if w is None:
            raise CorrectionsError(f"{where}: correction {k} (guid {g}) names no word_index: corrections of a token "
                                   "classification run are made on words (export them from its review page)")
        row = row_of.get(g)
        problem = None
        if row is None:
            problem = f"{where}: correction {k}: sentence guid {g} is not in the data"
        elif fp is not None and fp != sentence_fps.iloc[int(row)]:
            problem = f"{say}: the sentence's words or tags are not the ones reviewed (another version of the data?)"
        elif w >= len(tokens[int(row)]):
            problem = f"{say}: the sentence has only {len(tokens[int(row)])} words"
        elif orig is not None and orig != names[original[int(row)][w]]:
            problem = (f"{say}: original_label {orig!r} but the word {tokens[int(row)][w]!r} is tagged "
                       f"{names[original[int(row)][w]]!r} (another version of the data?)")
        if problem is not None:
            if not skip_changed:
                raise CorrectionsError(problem)
            logger.warning("skipped: %s", problem)
            skipped += 1
            continue
        action, label = corrections.actions[k], corrections.labels[k]
        if label is not None and label not in names:
            raise CorrectionsError(f"{say}: tag {label!r} is not one of {names}")
        row = int(row)
        if label is not None:
            corrected[row][w] = names.index(label)
        actions[row][w] = action or UNREVIEWED
    as_out = (lambda ids: list(ids)) if data.tags_as_ids else (lambda ids: [names[t] for t in ids])
    text_col = (data.source.get("text_columns") or [TOKENS])[0]
    label_col = data.source.get("label_column") or "ner_tags"
    df = pd.DataFrame({text_col: [list(t) for t in tokens], label_col: [as_out(t) for t in corrected],
                       GUID: as_guids(data.train[GUID]), "original_tags": [as_out(t) for t in original],
                       "review_actions": actions})
    changed = sum(a != b for c, o in zip(corrected, original) for a, b in zip(c, o))
    logger.info("%d word corrections applied (%d skipped): %d tags changed in %d sentences",
                len(corrections.guids) - skipped, skipped, changed, sum(c != o for c, o in zip(corrected, original)))
    if unsure == "drop":
        drop = np.array(["unsure" in a for a in actions], dtype=bool)
        df = df[~drop].reset_index(drop=True)
        logger.info("--unsure drop: %d sentences with a word marked unsure left out", int(drop.sum()))
    return df
