"""The label-review page: ONE self-contained HTML file (``training-dynamics review``).

Python builds the payload (:func:`review_payload`); the page is the package's
``web/review.html.j2`` with the shared data-map component, rendered by :func:`web.render` (no
server, no network, dataset text shown with ``textContent`` only, a CSP allowing only the page's
own script and style).

Choices are bound to examples, never to positions: the page keeps them in ``localStorage`` under a
key made from the fingerprint of the whole training set (:func:`corrections.dataset_fingerprint`),
each with the fingerprint of its example's text and label, and exports them as ``corrections.json``
(see :mod:`training_dynamics.review.corrections`). guids travel as strings, so 64-bit ids stay exact.
An exported file can be loaded back into the page (another browser, machine or colleague): each
choice is taken only for the example it was made on (same guid and example fingerprint), and a
choice made later in this browser is never replaced by an older one from the file.

How a card presents an example is the run's kind's (:meth:`training_dynamics.kinds.Kind.review_card`):
a classification run's card shows gold and predicted label and a button per class; a generative
run's shows prompt and response, how well the model learned the response, and keep or drop (a drop
is exported as a relabel to ``other``, which ``apply`` leaves out).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from training_dynamics import web
from training_dynamics.review import corrections
from training_dynamics.core import fileio
from training_dynamics.core.kind import DEFAULT_KIND
from training_dynamics.core.data import TextClassificationData
from training_dynamics.core.ids import as_guids
from training_dynamics.core.errors import TrainingDynamicsError

logger = logging.getLogger(__name__)

#: columns of label_issues.jsonl that are not per-example metrics (``likely_true`` is a class id)
STRUCTURAL = {"rank", "guid", "text", "gold", "gold_name", "predicted", "predicted_name", "probabilities",
              "score_name", "region", "seen", "likely_true", "word_index", "word", "index", "last_pred"}
#: boolean columns shown as a tag and filter, by their display name
FLAG_NAMES = {"is_label_issue": "flagged"}
DEFAULT_CARD = web.DEFAULT_CARD
SCRIPTS = ("data_map.js", "review.js")
STYLES = ("base.css", "review.css")


def dataset_id(dataset: str, label_names: Sequence[str]) -> str:
    """A short stable id of (dataset name, label names): the storage key when the training data,
    and so its fingerprint, is unknown."""
    return hashlib.sha256(json.dumps([dataset, [str(n) for n in label_names]]).encode()).hexdigest()[:16]


def short_dataset_name(settings: dict) -> str:
    """The dataset's short name for the title: the Hub task or the file name, never a full path."""
    data = settings.get("data") or {}
    name = data.get("task_name") or data.get("train_file") or settings.get("dataset") or ""
    return Path(str(name)).name if ("/" in str(name) or os.sep in str(name)) else str(name)


def label_display(label_names: Sequence[str]) -> list[str]:
    """How the page names each class: its name, or ``class 0`` for a bare integer id (so the buttons
    never read as the key that picks them, "1 0")."""
    bare = all(str(n) == str(i) for i, n in enumerate(label_names))
    return [f"class {n}" if bare else str(n) for n in label_names]


def _columns(issues: pd.DataFrame, score_name: str,
             flag_names: dict[str, str] = FLAG_NAMES) -> tuple[list[dict], list[dict]]:
    """The metrics (every numeric column, ``score`` first) and flags (boolean columns) of the rows,
    as ``[{"name", "label", "values"}]`` with ``None`` for a missing value."""
    metrics_, flags = [], []
    for col in issues.columns:
        s = issues[col]
        if col in STRUCTURAL or isinstance(s.iloc[0], (list, np.ndarray)):
            continue
        if col == score_name and "score" in issues and s.equals(issues["score"]):
            continue  # e.g. loss: the score itself
        present = s.dropna()
        if col in flag_names or (len(present) and all(isinstance(v, (bool, np.bool_)) for v in present)):
            flags.append({"name": col, "label": flag_names.get(col, col),
                          "values": [None if pd.isna(v) else bool(v) for v in s]})
        elif pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            v = s.to_numpy(np.float64)
            metrics_.append({"name": col, "label": score_name if col == "score" else col,
                             "values": [None if not np.isfinite(x) else round(float(x), 6) for x in v]})
    metrics_.sort(key=lambda m: m["name"] != "score")
    return metrics_, flags


def label_warning(label_names: Sequence[str]) -> str | None:
    """A warning for the page when the labels are bare integer ids (no names known)."""
    if all(str(n) == str(i) for i, n in enumerate(label_names)):
        return (f"Only integer label ids are known ({', '.join(map(str, label_names))}): to see names, pass "
                "--class_names NAME,NAME,... to `training-dynamics find-issues` (and the same to "
                "`training-dynamics apply`).")
    return None


def review_payload(issues: pd.DataFrame, *, label_names: Sequence[str], dataset: str = "", score_name: str = "score",
                   data_map: pd.DataFrame | None = None, max_map_points: int = 20000, title: str | None = None,
                   seed: int = 42, dataset_fingerprint: str | None = None, warnings: Sequence[str] = (),
                   card: dict | None = None, kind: str | None = None, extra: dict | None = None) -> dict:
    """Everything the page shows, as plain JSON-able data.

    Args:
        issues: ranked rows of ``label_issues.jsonl`` (guid, text, gold, probabilities, score, ...).
        label_names: (C,) class names in id order.
        dataset: the dataset's short name (file name or Hub task).
        data_map: optional metrics table (``guid``, ``confidence``, ``variability``) of the whole
            run: the reviewed examples are drawn on the data map, the others as a grey background
            (at most ``max_map_points``, a seeded sample).
        dataset_fingerprint: :func:`corrections.dataset_fingerprint` of the training data (``None``
            when it could not be read); the page's storage key and exported with the choices.
        warnings: lines shown at the top of the page.
        card: how a card shows an example and which choices it offers (the run's kind's
            :meth:`~training_dynamics.core.kind.Kind.review_card`; default :data:`DEFAULT_CARD`).
        kind: the kind's name, exported with the corrections (``apply`` finishes them by kind).
        extra: what the run's kind adds (:meth:`~training_dynamics.core.kind.Kind.review_rows`): ``items``
            columns that replace or join the defaults (a word ranking: ``key``, ``word_index``, ``sent``,
            ``fp``), ``map_by`` (the columns a row is keyed by on the data map, default ``["guid"]``) and
            more payload (``sentences``). An item's ``key`` (default its guid) keys its choice.
    """
    card = dict(card or DEFAULT_CARD)
    label_names = [str(n) for n in label_names]
    c = len(label_names)
    probs = np.asarray(issues["probabilities"].tolist(), dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != c:
        raise TrainingDynamicsError(f"probabilities have {probs.shape[-1] if probs.ndim == 2 else '?'} classes but there are "
                         f"{c} label names {label_names}")
    gold = issues["gold"].to_numpy(np.int64)
    if ((gold < 0) | (gold >= c)).any():
        raise TrainingDynamicsError(f"guid {issues['guid'].iloc[int(np.flatnonzero((gold < 0) | (gold >= c))[0])]}: "
                         f"gold label outside 0..{c - 1}")
    n = len(issues)
    guids = as_guids(issues["guid"])
    texts = issues["text"].fillna("").astype(str).tolist()
    items = {"guid": corrections.guid_keys(guids), "key": corrections.guid_keys(guids),
             "fp": [corrections.example_fingerprint(t, label_names[g]) for t, g in zip(texts, gold)],
             "rank": (issues["rank"].to_numpy(np.int64) if "rank" in issues else np.arange(1, n + 1)).tolist(),
             "text": texts, "gold": gold.tolist(),
             "predicted": (issues["predicted"].to_numpy(np.int64) if "predicted" in issues else probs.argmax(1)).tolist(),
             "probabilities": np.round(probs, 4).tolist(),
             "region": issues["region"].fillna("").astype(str).tolist() if "region" in issues else [""] * n,
             "seen": [_utf16_spans(t, s) if isinstance(s, list) else None for t, s in zip(texts, issues["seen"])]
             if "seen" in issues else None}
    extra = dict(extra or {})
    items.update(extra.pop("items", {}))
    by = list(extra.pop("map_by", ["guid"]))
    metrics_, flags = _columns(issues, score_name, {**FLAG_NAMES, "is_label_issue": card["flag"]})
    warnings = [w for w in [*warnings, label_warning(label_names) if card["warn_integer_labels"] else None] if w]
    key = dataset_fingerprint[:32] if dataset_fingerprint else "names-" + dataset_id(dataset, label_names)
    payload = {"title": title or f"{card['title']}: {dataset or 'dataset'}", "dataset": dataset,
               "dataset_fingerprint": dataset_fingerprint, "storage_key": "td-review:" + key,
               "label_names": label_names, "label_display": label_display(label_names), "kind": kind or DEFAULT_KIND,
               "card": card, "score_name": score_name,
               "warnings": warnings, "items": items, "metrics": metrics_, "flags": flags, "map": None,
               "sentences": None, **extra}
    if data_map is not None:
        keys = pd.MultiIndex.from_arrays([as_guids(issues[c]) if c == "guid" else issues[c].to_numpy(np.int64)
                                          for c in by]) if len(by) > 1 else guids
        payload["map"] = _map_payload(data_map, keys, by=by, max_map_points=max_map_points, seed=seed)
    return payload


def _utf16_spans(text: str, spans: list) -> list[list[int]]:
    """Character spans of ``text`` as the page's JavaScript counts them (UTF-16 code units)."""
    if text.isascii() or all(ord(ch) < 0x10000 for ch in text):
        return [[int(a), int(b)] for a, b in spans]
    units = np.r_[0, np.cumsum([2 if ord(ch) >= 0x10000 else 1 for ch in text])]
    return [[int(units[min(int(a), len(text))]), int(units[min(int(b), len(text))])] for a, b in spans]


def _map_payload(metrics: pd.DataFrame, guids, *, by: Sequence[str] = ("guid",), max_map_points: int,
                 seed: int) -> dict:
    """Data-map coordinates: one (variability, confidence) per reviewed item (NaN -> null when the
    run lacks it) and a seeded sample of the other examples as background. ``by``: the columns that
    key a row (a word ranking: ``guid`` and ``word_index``; ``guids`` then a MultiIndex of both)."""
    m = metrics.set_index(list(by))[["confidence", "variability"]].astype(np.float64)
    own = m.reindex(guids)
    rest = m.loc[~m.index.isin(guids)]
    if len(rest) > max_map_points:
        rest = rest.iloc[np.sort(np.random.default_rng(seed).choice(len(rest), max_map_points, replace=False))]

    def col(s: pd.Series) -> list:
        return [None if np.isnan(v) else round(float(v), 4) for v in s.to_numpy()]

    return {"x": col(own["variability"]), "y": col(own["confidence"]),
            "bg_x": col(rest["variability"]), "bg_y": col(rest["confidence"]), "total": int(len(m))}


def render_html(payload: dict) -> str:
    """The complete page for ``payload`` (see :func:`review_payload`), embedded in its compact form
    (:func:`training_dynamics.review.scale.compact_payload`)."""
    from training_dynamics.review.scale import compact_payload

    page = payload if payload.get("compact") else compact_payload(payload)
    return web.render("review.html.j2", payload=page, scripts=SCRIPTS, styles=STYLES, title=payload["title"],
                      warnings=payload["warnings"])


def write_review_page(path: str | os.PathLike, payload: dict) -> Path:
    """Write the page atomically; returns its path."""
    path = Path(path)
    with fileio.atomic_write(path) as fh:
        fh.write(render_html(payload))
    logger.info("review page with %d examples -> %s (%.1f MB)", len(payload["items"]["gold"]), path,
                path.stat().st_size / 1e6)
    return path


def label_names_from_rows(issues: pd.DataFrame) -> list[str]:
    """Class names recovered from the rows' ``gold``/``gold_name`` and ``predicted``/``predicted_name``
    (for an issues file without its settings file); a class never seen is named by its id."""
    c = len(issues["probabilities"].iloc[0])
    names = [str(i) for i in range(c)]
    for id_col, name_col in (("predicted", "predicted_name"), ("gold", "gold_name")):
        if id_col in issues and name_col in issues:
            for i, name in zip(issues[id_col].to_numpy(np.int64), issues[name_col].astype(str)):
                names[i] = name
    return names


def _data_label_names(data: TextClassificationData, issues: pd.DataFrame, label_names: Sequence[str]) -> list[str]:
    """The data's label names as the ranking named them: string and Hub labels name themselves;
    bare integer ids take the names the ranked rows give them (what ``--class_names`` gave)."""
    names = list(data.label_names)
    if any(n != str(i) for i, n in enumerate(names)):
        return names
    ids = pd.Series(np.asarray(data.train["label"], np.int64), index=as_guids(data.train["guid"]))
    seen = ids.reindex(as_guids(issues["guid"]))
    for data_id, gold in zip(seen.to_numpy(), issues["gold"].to_numpy(np.int64)):
        if not np.isnan(data_id) and names[int(data_id)] == str(int(data_id)):
            names[int(data_id)] = str(label_names[gold])
    return names


def data_check(issues: pd.DataFrame, settings: dict, label_names: Sequence[str], *,
               data) -> tuple[str | None, list[str]]:
    """The training data's fingerprint (``None`` when unreadable) and warnings for the page: the
    data (the one the ranking's settings name, loaded by the run's kind; ``None``: it cannot be read) or
    ranked rows no longer match it (text or label changed since ranking)."""
    if data is None:
        return None, ["The training data could not be read, so this page has no dataset fingerprint: "
                      "`training-dynamics apply` will ask for --ignore_fingerprint."]
    fingerprint, example_fps = corrections.data_fingerprints(data, _data_label_names(data, issues, label_names))
    texts = issues["text"].fillna("").astype(str)
    shown = [corrections.example_fingerprint(t, str(label_names[g])) for t, g in zip(texts, issues["gold"])]
    current = example_fps.reindex(corrections.guid_keys(issues["guid"])).to_numpy()
    stale = int(sum(a != b for a, b in zip(shown, current)))
    if not stale:
        return fingerprint, []
    logger.warning("%d ranked examples differ from the training data now; re-run training-dynamics find-issues", stale)
    return fingerprint, [f"{stale} of the {len(issues)} ranked examples differ from the training data now (text or "
                         "label changed since the ranking): re-run `training-dynamics find-issues`. "
                         "`training-dynamics apply` refuses choices made on them."]
