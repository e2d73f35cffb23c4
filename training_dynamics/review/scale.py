"""Review at scale: which ranked rows a review shows (``review --top_k``), and the page's compact payload.

Rows (:func:`select_rows`): ``--top_k N`` keeps the N most suspicious rows (by ``rank``). Without it,
a ranking with a decision (an ``is_label_issue`` column) keeps every flagged row plus the
``max(CONTEXT_MIN, CONTEXT_SHARE * flagged)`` most suspicious unflagged rows as context (what the
decision just let pass, so a reviewer sees where it drew the line); a ranking without a decision
keeps every row.

Page (:func:`compact_payload`): the review page's payload with no per-item repetition, so that a
page of 100,000 words stays a few MB. A word ranking drops each word's copy of its sentence's text,
guid, key and fingerprint (the page takes them from ``sentences``), probabilities travel as one flat
array of integers in thousandths, metrics with 4 significant digits. ``web/review.js`` expands them.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

#: context rows shown past the flagged ones: at least this many ...
CONTEXT_MIN = 25
#: ... or this share of the flagged count, whichever is larger
CONTEXT_SHARE = 0.1
#: probabilities on the page: integers in 1/PROB_SCALE
PROB_SCALE = 1000


def default_count(flagged: int) -> int:
    """How many unflagged rows of context the default review shows past ``flagged`` flagged rows."""
    return max(CONTEXT_MIN, int(math.ceil(CONTEXT_SHARE * flagged)))


def select_rows(issues: pd.DataFrame, top_k: int | None = None) -> pd.DataFrame:
    """The ranked rows a review shows (module docstring), in rank order.

    Args:
        issues: rows of ``label_issues.jsonl`` (``rank`` optional: file order is rank order).
        top_k: keep the K most suspicious rows; ``None``: the decision's flagged rows plus context.
    """
    order = np.argsort(issues["rank"].to_numpy(np.int64), kind="stable") if "rank" in issues else np.arange(len(issues))
    ranked = issues.iloc[order].reset_index(drop=True)
    if top_k is not None:
        if top_k < len(ranked):
            logger.info("--top_k %d: reviewing the %d most suspicious of %d ranked rows", top_k, top_k, len(ranked))
        return ranked.head(top_k).reset_index(drop=True)
    if "is_label_issue" not in ranked:
        return ranked
    flagged = ranked["is_label_issue"].fillna(False).to_numpy(bool)
    context = np.flatnonzero(~flagged)[:default_count(int(flagged.sum()))]
    keep = flagged.copy()
    keep[context] = True
    logger.info("reviewing the %d flagged rows and %d more as context (of %d ranked; --top_k N to choose)",
                int(flagged.sum()), len(context), len(ranked))
    return ranked[keep].reset_index(drop=True)


def _round_sig(values: list, digits: int = 4) -> list:
    out = []
    for v in values:
        if v is None or v == 0:
            out.append(v)
            continue
        r = round(v, max(0, digits - 1 - int(math.floor(math.log10(abs(v))))))
        out.append(int(r) if r == int(r) else r)
    return out


def compact_payload(payload: dict) -> dict:
    """The review payload as the page embeds it (module docstring); ``web/review.js`` reads this form.

    ``items.probabilities`` becomes ``items.p1000`` (N*C integers, row by row), ``items.region`` an index
    ``region_code`` into ``region_names``, flags 1/0/null; a word ranking's items lose ``text``, ``guid``,
    ``key`` and ``fp`` (``sentences`` gains ``fp``, one per sentence).
    """
    out = dict(payload)
    items = dict(payload["items"])
    probs = np.asarray(items.pop("probabilities"), dtype=np.float64).reshape(len(items["gold"]), -1)
    items["p1000"] = np.rint(probs * PROB_SCALE).astype(np.int64).ravel().tolist()
    if payload.get("sentences") is not None and "sent" in items:
        sent = np.asarray(items["sent"], dtype=np.int64)
        sentences = dict(payload["sentences"])
        fps = [None] * len(sentences["guid"])
        for s, fp in zip(sent.tolist(), items["fp"]):
            fps[s] = fp
        sentences["fp"] = fps
        out["sentences"] = sentences
        for name in ("text", "guid", "key", "fp"):
            items.pop(name, None)
    if items.get("seen") is None:
        items.pop("seen", None)
    regions = items.pop("region", None) or []
    if any(regions):  # each item's region as an index into region_names
        names, codes = np.unique(np.asarray(regions, dtype=object).astype(str), return_inverse=True)
        items["region_names"], items["region_code"] = names.tolist(), codes.astype(int).tolist()
    out["items"] = items
    out["flags"] = [{**f, "values": [None if v is None else int(v) for v in f["values"]]} for f in payload["flags"]]
    out["metrics"] = [{**m, "values": _round_sig(m["values"])} for m in payload["metrics"]]
    out["compact"] = 1
    return out


def expand_payload(page: dict) -> dict:
    """The plain payload back from the page's compact one (what ``web/review.js`` does on load), for
    tools and tests that read a written page."""
    if not page.get("compact"):
        return page
    out = dict(page)
    items = dict(page["items"])
    c = len(page["label_names"])
    flat = np.asarray(items.pop("p1000"), dtype=np.float64) / PROB_SCALE
    items["probabilities"] = flat.reshape(-1, c).tolist() if c else []
    s = page.get("sentences")
    if s is not None and "guid" not in items:
        sent = items["sent"]
        items["guid"] = [s["guid"][k] for k in sent]
        items["key"] = [f"{s['guid'][k]}#{w}" for k, w in zip(sent, items["word_index"])]
        items["fp"] = [s["fp"][k] for k in sent]
        items["text"] = [" ".join(s["words"][k]) for k in sent]
    codes, names = items.pop("region_code", None), items.pop("region_names", None)
    items["region"] = [names[r] for r in codes] if codes is not None else [""] * len(items["gold"])
    items.setdefault("seen", None)
    out["items"] = items
    out["flags"] = [{**f, "values": [None if v is None else v == 1 for v in f["values"]]} for f in page["flags"]]
    out.pop("compact")
    return out
