"""Review and apply the (example, label) corrections of a multi-label run; write rows back in the file's format.

The review page (:mod:`training_dynamics.review`, card ``choices: "toggles"``) shows one card per
ranked pair: the example's text with every label as a toggle (on = carried), the pair's own label
boxed. Toggling a label records a choice on that pair (a relabel: add the label, or remove it); the
example's other ranked pairs on the page toggle their own choices. A choice is keyed by
``guid#label`` and carries the fingerprint of the whole example (its text and sorted label names),
so it never applies to an example the reviewer did not see. The page exports each choice as
``{"guid": "7", "label_index": 2, "label": "science", "given": false, "action": "relabel",
"fix": "add", "example_fingerprint": ...}``.

:func:`apply_pair_corrections` writes the corrected examples back in the data's own columns: the
text column(s), the label column as the file wrote it (a list of names, or a multi-hot list),
``guid``, plus ``original_labels`` (same format) and ``review_actions`` (``"label: action"`` per
reviewed pair); ``record --problem_type multi_label_classification --train_file`` reads it back.

Label Studio and Argilla (``review --format``, ``import-labels``): :func:`labeling_examples` exports one
task / record per example (its label set, the suggested changes), :func:`labeling_corrections` turns the
label sets annotators chose back into the page's pair corrections.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from training_dynamics.core import fileio
from training_dynamics.review.corrections import Corrections, CorrectionsError, data_fingerprints
from training_dynamics.core.data import GUID
from training_dynamics.core.ids import as_guids, guid_keys
from training_dynamics.kinds.multilabel.data import MultiLabelData, as_file_rows

logger = logging.getLogger(__name__)


def pair_key(guid: str, label: str) -> str:
    """The page's storage key of one (example, label) pair."""
    return f"{guid}#{label}"


def review_rows(issues: pd.DataFrame, settings: dict, label_names: Sequence[str], *, data):
    """``(rows, dataset fingerprint, warnings, extra payload)`` for the review page of a pair ranking.

    The training data the settings name is read with the ranking's label names; a pair whose example is
    gone, or whose given value is no longer the one ranked, is left out (with a warning). The rows' ``gold``
    and ``predicted`` become the pair's label index and ``probabilities`` each label's mean p(carried) for
    the example (from its ranked pairs; 0 for a pair not ranked), so the page colours and filters by label.
    The extra payload holds each item's ``key`` (guid#label), ``fp`` (the example's fingerprint), ``given``
    and ``ex`` (its example in ``examples``), and ``examples``: ``guid`` and ``labels`` (the carried label
    indices) of every example with a ranked pair.

    Raises:
        TrainingDynamicsError: the training data cannot be read (the page shows each example's labels).
    """
    names = [str(n) for n in label_names]
    fingerprint, example_fps = data_fingerprints(data, names)
    keys = guid_keys(as_guids(data.train[GUID]))
    row_of = pd.Series(np.arange(len(keys)), index=keys)
    hot = data.multi_hot()
    ikeys = guid_keys(as_guids(issues["guid"]))
    rows = row_of.reindex(ikeys).to_numpy()
    li = issues["label_index"].to_numpy(np.int64)
    given = issues["given"].to_numpy(bool)
    ok = np.zeros(len(issues), dtype=bool)
    for i, r in enumerate(rows):
        ok[i] = not np.isnan(r) and 0 <= li[i] < hot.shape[1] and bool(hot[int(r), li[i]]) == given[i]
    warnings = []
    if not ok.all():
        logger.warning("%d ranked pairs differ from the training data now; left out of the page", int((~ok).sum()))
        warnings.append(f"{int((~ok).sum())} of the {len(issues)} ranked (example, label) pairs are left out: their "
                        "example changed since the ranking (or is gone); re-run `training-dynamics find-issues`.")
    out = issues[ok].reset_index(drop=True)
    rows = rows[ok].astype(np.int64)
    li, given = li[ok], given[ok]
    ikeys = [k for k, good in zip(ikeys, ok) if good]
    used, ex = np.unique(rows, return_inverse=True)
    q = np.zeros((len(used), len(names)))  # mean p(carried) of each example's ranked labels
    conf = out["confidence"].to_numpy(np.float64)
    q[ex, li] = np.where(given, conf, 1.0 - conf)
    out["probabilities"] = list(q[ex])
    out["gold"] = li
    out["predicted"] = li
    out = out.drop(columns=[c for c in ("label_index", "gold_name", "predicted_name") if c in out])
    extra = {"items": {"key": [pair_key(k, names[j]) for k, j in zip(ikeys, li)],
                       "fp": example_fps.reindex(ikeys).tolist(), "given": given.tolist(),
                       "ex": ex.astype(int).tolist()},
             "examples": {"guid": [keys[r] for r in used],
                          "labels": [np.flatnonzero(hot[r]).astype(int).tolist() for r in used]}}
    return out, fingerprint, warnings, extra


def apply_pair_corrections(data: MultiLabelData, corrections: Corrections, *, where: str = "corrections.json",
                           unsure: str = "keep", skip_changed: bool = False,
                           fingerprints: tuple[str, pd.Series] | None = None) -> pd.DataFrame:
    """The corrected examples as a table in the data's own columns (module docstring).

    Args:
        unsure: ``"keep"`` examples with a pair marked unsure (their labels unchanged) or ``"drop"`` them.
        skip_changed: skip (with a warning) corrections whose example is gone or changed; by default an error.
        fingerprints: :func:`corrections.data_fingerprints` of ``data`` when already computed.
    Raises:
        CorrectionsError: a correction names no label, an unknown label, or (without ``skip_changed``) an
            example that is not the one reviewed.
    """
    names = [str(n) for n in data.label_names]
    _, example_fps = fingerprints or data_fingerprints(data)
    keys = guid_keys(as_guids(data.train[GUID]))
    row_of = pd.Series(np.arange(len(keys)), index=keys)
    original = data.multi_hot()
    hot = original.copy()
    actions: list[list[str]] = [[] for _ in keys]
    skipped = 0
    for k, g in enumerate(corrections.guids):
        j, fp, action, label = (corrections.word_indices[k], corrections.example_fingerprints[k],
                                corrections.actions[k], corrections.labels[k])
        say = f"{where}: correction {k} (guid {g})"
        if j is None:
            raise CorrectionsError(f"{say} names no label_index: corrections of a multi-label run are made on "
                                   "(example, label) pairs (export them from its review page)")
        if j >= len(names):
            raise CorrectionsError(f"{say}: label_index {j} is outside 0..{len(names) - 1} ({', '.join(names)})")
        if label is not None and label != names[j]:
            raise CorrectionsError(f"{say}: label {label!r} is not label {j} ({names[j]!r}) of the data")
        row = row_of.get(g)
        problem = None
        if row is None:
            problem = f"{where}: correction {k}: guid {g} is not in the data"
        elif fp is not None and fp != example_fps.iloc[int(row)]:
            problem = f"{say}: the example's text or labels are not the ones reviewed (another version of the data?)"
        if problem is not None:
            if not skip_changed:
                raise CorrectionsError(problem)
            logger.warning("skipped: %s", problem)
            skipped += 1
            continue
        row = int(row)
        if action == "relabel":
            hot[row, j] = 1 - hot[row, j]
        if action:
            actions[row].append(f"{names[j]}: {action}")
    label_col = data.source.get("label_column") or "labels"
    cols = {c: list(data.train[c]) for c in data.text_columns}
    df = pd.DataFrame({**cols, label_col: as_file_rows(data, hot), GUID: as_guids(data.train[GUID]),
                       "original_labels": as_file_rows(data, original), "review_actions": actions})
    changed = hot != original
    logger.info("%d pair corrections applied (%d skipped): %d labels added and %d removed in %d examples",
                len(corrections.guids) - skipped, skipped, int((changed & (hot == 1)).sum()),
                int((changed & (hot == 0)).sum()), int(changed.any(axis=1).sum()))
    if unsure == "drop":
        drop = np.array([any(a.endswith(": unsure") for a in acts) for acts in actions], dtype=bool)
        df = df[~drop].reset_index(drop=True)
        logger.info("--unsure drop: %d examples with a pair marked unsure left out", int(drop.sum()))
    return df


def write_rows(path: str | Path, data: MultiLabelData, guids) -> Path:
    """Write the examples ``guids`` of ``data`` as jsonl in the columns the run read (text column(s), the label
    column as the file wrote it, ``guid``), atomically: ``record --train_file`` reads it back."""
    from training_dynamics.analysis.selection import select_guids

    keep = np.isin(as_guids(data.train[GUID]), as_guids(select_guids(data.train, guids, where=str(path))[GUID]))
    hot = data.multi_hot()[keep]
    rows = data.train.select(np.flatnonzero(keep))
    label_col = data.source.get("label_column") or "labels"
    labels = as_file_rows(data, hot)
    with fileio.atomic_write(path) as fh:
        for i, guid in enumerate(rows[GUID]):
            rec = {**{c: rows[c][i] for c in data.text_columns}, label_col: labels[i], GUID: guid}
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return Path(path)


# -- labeling tools (review --format label-studio | argilla, import-labels) -------------------------
def _p(x: float) -> float:
    return round(float(x), 4)


def labeling_examples(rows: pd.DataFrame, payload: dict) -> list[dict]:
    """One task / record per *example* with a ranked pair among ``rows`` (:func:`review_rows`' table, in rank
    order; ``payload``: the review page's payload of them), ordered by its best-ranked pair: ``guid``,
    ``fingerprint`` (the whole example's), ``dataset_fingerprint``, ``text``, ``rank`` and ``score`` (of that pair),
    ``given_labels`` (the labels it carries, in label order), ``ranked_labels`` (its labels ranked here: a choice
    left as given on one of them is a ``keep``), ``suggested_changes`` (``[{"label", "fix": "add" | "remove",
    "score": p of the suggested value}]``: the decision's flagged pairs, or without a decision the pairs whose
    given value the model gives under one half), ``suggested_labels`` (the given labels with those changes made),
    ``suggested_score`` (the lowest probability among the suggestion's ranked labels) and, to show, ``given`` and
    ``suggested`` as text."""
    names = [str(n) for n in payload["label_names"]]
    it, examples = payload["items"], payload["examples"]
    label_index = rows["gold"].to_numpy(np.int64)
    given = np.asarray(it["given"], dtype=bool)
    conf = rows["confidence"].to_numpy(np.float64)
    if "suggested_fix" in rows:
        change = rows["suggested_fix"].notna().to_numpy() & rows["suggested_fix"].astype(str).isin(["add", "remove"])
    else:
        change = conf < 0.5
    pairs: dict[int, list[int]] = {}
    for i, e in enumerate(it["ex"]):
        pairs.setdefault(int(e), []).append(i)
    out = []
    for e, at in pairs.items():
        carried = {names[j] for j in examples["labels"][e]}
        fixes = {names[label_index[i]]: ("remove" if given[i] else "add", 1.0 - conf[i]) for i in at if change[i]}
        suggested = (carried - {n for n, (f, _) in fixes.items() if f == "remove"}) | {
            n for n, (f, _) in fixes.items() if f == "add"}
        probs = [1.0 - conf[i] if change[i] else conf[i] for i in at]
        first = at[0]
        out.append({
            "guid": str(examples["guid"][e]), "fingerprint": it["fp"][first],
            "dataset_fingerprint": payload["dataset_fingerprint"],
            "given_labels": [n for n in names if n in carried],
            "ranked_labels": [names[label_index[i]] for i in at],
            "suggested_changes": [{"label": n, "fix": f, "score": _p(p)} for n, (f, p) in fixes.items()],
            "suggested_labels": [n for n in names if n in suggested],
            "suggested_score": _p(min(probs)), "rank": int(rows["rank"].iloc[first]),
            "score": round(float(rows["score"].iloc[first]), 6), "text": str(it["text"][first]),
            "given": ", ".join(n for n in names if n in carried) or "(none)",
            "suggested": "; ".join(f"{f} {n} (p = {_p(p)})" for n, (f, p) in fixes.items()) or "no change"})
    return out


def labeling_corrections(choices: Sequence[dict], *, issues: pd.DataFrame, label_names: Sequence[str],
                         where: str) -> list[dict]:
    """Pair corrections, as the review page exports them, from the label sets annotators chose on the examples
    :func:`labeling_examples` exported. Per example and label: every annotator's set agrees on it and differs
    from the given value -> ``relabel`` (``fix`` add / remove); agrees with the given value on a ranked label ->
    ``keep``; the annotators disagree -> ``unsure`` with a note counting them. An example skipped (and not
    labelled) is ``unsure`` on each of its ranked labels; a note goes with its first correction.

    Raises:
        CorrectionsError: an export made per pair (``given_labels`` missing: exported by an older version), or
            given labels that are not the ranking's (another ranking, or an edited export).
    """
    names = [str(n) for n in label_names]
    ranked_given: dict[tuple[str, str], bool] = {}
    if {"guid", "label", "given"} <= set(issues.columns):
        for g, lab, gv in zip(guid_keys(as_guids(issues["guid"])), issues["label"].astype(str), issues["given"]):
            ranked_given[(g, lab)] = bool(gv)
    out = []
    for c in choices:
        ex, votes, note = c["ex"], [set(v) for v in c["votes"]], c.get("note") or ""
        guid = ex["guid"]
        if not isinstance(ex.get("given_labels"), list):
            raise CorrectionsError(f"{where}: guid {guid}: no given_labels: this export was made one task per "
                                   "(example, label) pair by an older training-dynamics; export the ranking again "
                                   "with `training-dynamics review --format ...`")
        given = {str(n) for n in ex["given_labels"]}
        ranked = [str(n) for n in (ex.get("ranked_labels") or [])]
        wrong = sorted(n for n in given | set(ranked) if n not in names) + [
            n for n in names if ranked_given.get((guid, n), n in given) != (n in given)]
        if wrong:
            raise CorrectionsError(f"{where}: guid {guid}: given_labels {sorted(given)} are not the labels the ranking "
                                   f"has for it ({wrong[0]!r} differs): another ranking, or an edited export?")
        made = []
        if votes:
            for j, n in enumerate(names):
                carried = [n in v for v in votes]
                if all(carried) or not any(carried):
                    if carried[0] != (n in given):
                        made.append((j, "relabel", None))
                    elif n in ranked:
                        made.append((j, "keep", None))
                else:
                    k = sum(carried)
                    made.append((j, "unsure", f"annotators disagree on {n}: carried {k}, not carried "
                                             f"{len(carried) - k}"))
        elif c.get("skipped"):
            made = [(names.index(n), "unsure", None) for n in ranked]
        elif note and ranked:
            made = [(names.index(ranked[0]), None, None)]
        for k, (j, action, why) in enumerate(made):
            n = names[j]
            corr = {"guid": guid, "example_fingerprint": ex.get("fingerprint"), "label_index": j, "label": n,
                    "given": n in given, "action": action,
                    "fix": ("remove" if n in given else "add") if action == "relabel" else None}
            text = "; ".join(t for t in (why, note if k == 0 else "") if t)
            if text:
                corr["note"] = text
            out.append(corr)
    return out
