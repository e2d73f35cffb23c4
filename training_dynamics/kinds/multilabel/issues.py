"""Find wrong labels in a multi-label run, (example, label) pair by pair, from its training dynamics.

One ranked row per pair (``label_issues.jsonl``): ``rank``, ``guid``, ``label`` (the label's name),
``label_index``, ``given`` (whether the example carries it), ``score`` (higher = more suspicious),
the decision's ``is_label_issue`` and ``suggested_fix`` (``"add"`` a label the text shows but the
example lacks, ``"remove"`` one it carries but should not; ``null`` when not flagged), the example's
``text``, its ``region`` (of its least confident label), and the pair's metrics. For the shared
readers the pair is also a binary row: ``gold`` = the given value (1 carried, 0 not), ``predicted``,
``probabilities`` = [mean p(not carried), mean p(carried)] over the epochs (so
``probabilities[gold] == confidence``).

Decisions (``--decision``):

* ``rank_count`` (default): per label, one-vs-rest as cleanlab's multi-label filter does, cleanlab's
  estimated count of wrong values (``cleanlab.count.num_label_issues`` on the label's given values and
  their mean probabilities over the epochs used, or the first ``--count_epochs``); that label's top
  that many pairs of the ranking are flagged. Unlike single-label runs the count does not default to
  the first half of the epochs: the labels of one model are learned at very different speeds (on the
  bench, one topic is fitted at epoch 1, another only at epoch 6), and a window that ends before a
  label is fitted takes a third of its values for wrong (bench/multilabel_planted.py: 379 of 1,200
  for a label with 28 planted errors from the first 4 of 8 epochs, 43 from all 8).
* ``score_mixture``, ``loss_mixture``, ``aum_mixture``: a two-Gaussian mixture over every pair's score,
  loss or AUM (:mod:`training_dynamics.decisions.rules`).
* ``none``: rank only.
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
import pandas as pd

from training_dynamics.decisions import rules as dec_rules
from training_dynamics.decisions import ranking as le
from training_dynamics.analysis import selection
from training_dynamics.core.errors import TrainingDynamicsError
from training_dynamics.core.ids import as_guids
from training_dynamics.kinds.multilabel.dynamics import MultiLabelDynamics, read_dynamics
from training_dynamics.kinds.multilabel.data import DECISIONS, DEFAULT_DECISION
from training_dynamics.kinds.multilabel.metrics import example_metrics, pair_metrics

logger = logging.getLogger(__name__)

VALUE_NAMES = ("not carried", "carried")  #: a pair's two values, as ``gold_name`` / ``predicted_name`` name them
SCORES = ("confidence", "aum", "loss", "rank_mean", "combined")
FIXES = ("add", "remove")  #: the fix of a flagged pair, by its given value (not carried -> add, carried -> remove)


def count_probabilities(dyn: MultiLabelDynamics, epochs: int) -> np.ndarray:
    """(N*K,) mean probability of each pair's given value over the first ``epochs`` epochs."""
    return np.exp(dyn.logprob[:, :, :epochs]).mean(axis=2).reshape(-1)


def per_label_count(given: np.ndarray, p_given: np.ndarray, label_index: np.ndarray, num_labels: int) -> np.ndarray:
    """(K,) cleanlab's estimated number of wrong values of each label (one-vs-rest; 0 for a label every
    example carries, or none does)."""
    dec_rules._cleanlab("rank_count")
    from cleanlab.count import num_label_issues

    counts = np.zeros(num_labels, dtype=np.int64)
    for k in range(num_labels):
        at = label_index == k
        g = given[at].astype(np.int64)
        if g.min() == g.max():
            continue
        q = np.where(g == 1, p_given[at], 1.0 - p_given[at])  # p(carried)
        probs = np.stack([1.0 - q, q], axis=1)
        counts[k] = int(num_label_issues(g, probs, estimation_method="off_diagonal_calibrated"))
    return counts


def labels_not_learned(dyn: MultiLabelDynamics, epochs: int) -> list[str]:
    """The labels whose training accuracy at epoch ``epochs - 1`` is less than
    :data:`~training_dynamics.decisions.rules.MIN_GAIN` above always predicting their most common value."""
    acc = (dyn.margin[:, :, epochs - 1] > 0).mean(axis=0)
    base = dyn.given.mean(axis=0)
    chance = np.maximum(base, 1 - base)
    return [dyn.label_names[k] for k in np.flatnonzero(acc < chance + dec_rules.MIN_GAIN)]


UNDERFIT_SHARE = 0.75  #: a label whose last-epoch gain over chance is below this share of the best label's is underfit


def labels_underfit(dyn: MultiLabelDynamics, epochs: int) -> list[str]:
    """The labels (learned, but) far behind the others at epoch ``epochs - 1``: training accuracy gain over
    always predicting their most common value below :data:`UNDERFIT_SHARE` of the best label's gain.
    Their mean probabilities still carry the early epochs, so ``rank_count`` counts too many of them."""
    acc = (dyn.margin[:, :, epochs - 1] > 0).mean(axis=0)
    base = dyn.given.mean(axis=0)
    gain = acc - np.maximum(base, 1 - base)
    return [dyn.label_names[k] for k in np.flatnonzero((gain < UNDERFIT_SHARE * gain.max())
                                                       & (gain >= dec_rules.MIN_GAIN))]


def judge_pairs(dyn: MultiLabelDynamics, table: pd.DataFrame, dec: dec_rules.Decision, *, epochs: int,
                unfitted: Sequence[str]):
    """Whether the run supports ``rank_count``'s per-label counts (:mod:`training_dynamics.decisions.evidence`):
    not when a label was never learned or is far behind the others at epoch ``epochs - 1`` (``unfitted``; its
    mean probabilities still carry the early epochs, so its count is too high). The flags of the fitted labels
    stand; a pair of an unfitted label stays flagged only when the model rejects its given value there (predicts
    the other value and gives the given one at most ``REJECT / 2`` of the probability)."""
    from training_dynamics.decisions.evidence import REJECT, Countability

    rows = table["index"].to_numpy(np.int64)
    k_of = table["label_index"].to_numpy(np.int64)
    names = dyn.label_names
    bad = np.isin(k_of, [names.index(n) for n in unfitted])
    margin = dyn.margin.reshape(-1, dyn.num_epochs)[rows, epochs - 1]
    p_given = np.exp(dyn.logprob.reshape(-1, dyn.num_epochs)[rows, epochs - 1])
    rejected = (margin < 0) & (p_given <= REJECT / 2)
    acc = (dyn.margin[:, :, epochs - 1] > 0).mean(axis=0)
    reasons = [f"label(s) {', '.join(f'{n} (training accuracy {acc[names.index(n)]:.2f})' for n in unfitted)} not "
               f"fitted at epoch {epochs - 1} (the others {np.delete(acc, [names.index(n) for n in unfitted]).min():.2f}"
               " and above)"] if unfitted and len(unfitted) < len(names) else (
        [f"no label fitted at epoch {epochs - 1}"] if unfitted else [])
    numbers = {"judged_on": f"epoch {epochs - 1}", "training_accuracy_by_label":
               {n: round(float(a), 4) for n, a in zip(names, acc)}, "unfitted_labels": list(unfitted),
               "rejected": int((rejected & bad).sum()), "would_flag": dec.num_flagged,
               "advice": "train longer (more epochs, or a larger learning rate) or use a bigger model"}
    return Countability(not unfitted, reasons, numbers, ~bad | rejected)


def decide_pairs(rule: str, table: pd.DataFrame, *, counts: np.ndarray | None = None,
                 label_names: Sequence[str] = ()) -> dec_rules.Decision | None:
    """The :class:`~training_dynamics.decisions.rules.Decision` of ``rule`` over the ranked pair table (every row);
    ``counts``: (K,) per-label counts for ``rank_count``. ``details["by_label"]`` counts the flagged pairs
    per label and fix."""
    if rule == "none":
        return None
    gold = table["gold"].to_numpy(np.int64)
    probs = np.asarray(table["probabilities"].tolist(), dtype=np.float64)
    score = table["score"].to_numpy(np.float64)
    label_index = table["label_index"].to_numpy(np.int64)
    details: dict = {}
    if rule == "rank_count":
        if counts is None:
            raise ValueError("rank_count needs the per-label counts")
        flagged = np.zeros(len(table), dtype=bool)
        for k, c in enumerate(counts):
            at = np.flatnonzero(label_index == k)
            flagged[at[dec_rules.top_k(score[at], int(c), np.arange(len(at)))]] = True
        dec_rules.warn_if_most_flagged(rule, flagged, "cleanlab estimates that most label values are wrong")
        details["estimated_count"] = int(np.sum(counts))
        details["estimated_count_by_label"] = {str(label_names[k]) if len(label_names) > k else str(k): int(c)
                                               for k, c in enumerate(counts)}
    elif rule in ("score_mixture", "loss_mixture", "aum_mixture"):
        made = dec_rules.decide(rule, gold=gold, probabilities=probs, score=score,
                                loss=table["loss"].to_numpy(np.float64), aum=table["aum"].to_numpy(np.float64))
        flagged, details = made.flagged, dict(made.details)
    else:
        raise TrainingDynamicsError(f"--decision {rule} does not apply to a multi-label run; choose one of "
                                    f"{', '.join(DECISIONS)}")
    likely = 1 - gold
    details["by_label"] = flags_by_label(flagged, table, label_names)
    return dec_rules.Decision(rule, flagged, likely, dec_rules.noise_counts(gold, likely, flagged, 2), details)


def flags_by_label(flagged: np.ndarray, table: pd.DataFrame, label_names: Sequence[str]) -> list[dict]:
    """How many flagged pairs of each label would add it and how many remove it (``details["by_label"]``)."""
    gold, label_index = table["gold"].to_numpy(np.int64), table["label_index"].to_numpy(np.int64)
    out = []
    for k in range(int(label_index.max()) + 1 if len(label_index) else 0):
        at = flagged & (label_index == k)
        out.append({"label": str(label_names[k]) if len(label_names) > k else str(k),
                    "add": int((at & (gold == 0)).sum()), "remove": int((at & (gold == 1)).sum())})
    return out


def summary(dec: dec_rules.Decision) -> dict:
    """JSON-ready summary of a pair decision (the settings' ``decision``)."""
    return {"rule": dec.rule, "num_label_issues": dec.num_flagged, "num_examples": int(len(dec.flagged)),
            "unit": "(example, label) pair", **dec.details}


def describe(dec: dec_rules.Decision) -> str:
    """The decision's one-line summary."""
    n = len(dec.flagged)
    parts = ", ".join(f"{b['label']} +{b['add']} -{b['remove']}" for b in dec.details.get("by_label", [])
                      if b["add"] or b["remove"])
    return (f"{dec.rule}: estimated {dec.num_flagged} of {n} (example, label) pairs wrong "
            f"({100.0 * dec.num_flagged / max(n, 1):.1f}%){': ' + parts if parts else ''} (+ add, - remove)")


def heldout_pairs(run, dyn: MultiLabelDynamics) -> np.ndarray | None:
    """(N*K, E, 2) the held-out probabilities of each (example, label) pair (``--cross_fit 2``), in the dynamics'
    pair order (example-major); ``None`` when the run has none."""
    from training_dynamics.core.heldout import align_heldout, read_heldout_rows

    found = read_heldout_rows(run.dynamics_dir)
    return None if found is None else align_heldout(
        found, {"guid": np.repeat(dyn.guids, dyn.num_labels),
                "label_index": np.tile(np.arange(dyn.num_labels), dyn.num_examples)}, where=run.dynamics_dir)


def rank_pairs(dyn: MultiLabelDynamics, data, *, score: str = "confidence", burn_out: int | None = None,
               proportion: float = 0.33, heldout: np.ndarray | None = None) -> pd.DataFrame:
    """The ranked pair table (module docstring) of the recorded run ``dyn`` on ``data``, without a decision;
    ``df.attrs["label_names"]`` are the labels' names. ``heldout``: :func:`heldout_pairs` of a cross-fitted run
    (adds ``heldout_confidence``, the mean held-out probability of each pair's given value)."""
    if score not in SCORES:
        raise TrainingDynamicsError(f"--score {score} does not apply to a multi-label run; choose one of "
                                    f"{', '.join(SCORES)}")
    pairs = pair_metrics(dyn, burn_out=burn_out)
    if heldout is not None:
        rows = np.asarray(pairs["index"], dtype=np.int64)
        pairs["heldout_confidence"] = heldout[rows, :burn_out, np.asarray(pairs["gold"], dtype=np.int64)].mean(axis=1)
    examples = pd.DataFrame(example_metrics(pairs, dyn.guids, dyn.num_labels))
    region = pd.Series(np.asarray(selection.region_of(examples, proportion=proportion), dtype=object),
                       index=examples["guid"].to_numpy())
    keep = np.ones(len(pairs["guid"]), dtype=bool)
    excluded = getattr(data, "excluded_guids", None)
    if excluded is not None and len(excluded):  # changed since recording (--allow_changed_data): left out
        keep = ~np.isin(pairs["guid"], excluded)
        logger.info("left out the %d pairs of %d examples changed since recording", int((~keep).sum()), len(excluded))
    cols = {c: np.asarray(v)[keep] for c, v in pairs.items()}
    from training_dynamics.kinds.multilabel.data import display_texts

    texts = pd.Series(display_texts(data), index=as_guids(data.train["guid"]))
    guids = as_guids(cols["guid"])
    missing = ~np.isin(guids, texts.index.to_numpy())
    if missing.any():
        raise TrainingDynamicsError(f"guid {guids[missing][0]} of the dynamics is not in the training data "
                                    f"({data.source.get('train_file')}); pass --train_file")
    s = le.dynamics_score(cols, score)
    order = np.lexsort((cols["label_index"], guids, -s))
    gold = cols["gold"].astype(np.int64)
    conf = cols["confidence"]
    q = np.where(gold == 1, conf, 1.0 - conf)  # mean p(carried)
    probs = np.stack([1.0 - q, q], axis=1)
    predicted = (q > 0.5).astype(np.int64)
    names = np.asarray(VALUE_NAMES, dtype=object)
    df = pd.DataFrame({
        "rank": np.arange(1, len(order) + 1), "guid": guids[order], "label": cols["label"][order].astype(str),
        "label_index": cols["label_index"][order], "given": cols["given"][order].astype(bool),
        "score": s[order], "score_name": le.DYNAMICS_SCORES[score][0],
        "text": texts.reindex(guids[order]).to_numpy(dtype=object),
        "gold": gold[order], "gold_name": names[gold[order]], "predicted": predicted[order],
        "predicted_name": names[predicted[order]], "probabilities": list(probs[order]),
        "region": region.reindex(guids[order]).fillna("").to_numpy(dtype=object)})
    for c in ("confidence", "variability", "correctness", "forgetfulness", "aum", "loss", "index",
              "heldout_confidence"):
        if c in cols:
            df[c] = cols[c][order]
    df.attrs["label_names"] = list(dyn.label_names)
    return df


def find_pair_issues(run, *, data=None, score: str = "confidence", rule: str = DEFAULT_DECISION,
                     burn_out: int | None = None, proportion: float = 0.33, count_epochs: int | None = None,
                     top_k: int | None = None):
    """(ranked pair table, decision or ``None``, settings) of a multi-label run: what
    :func:`training_dynamics.workflows.find_issues.find_label_issues` returns for this kind."""
    from training_dynamics.analysis.metrics import resolve_burn_out

    data = data if data is not None else run.data()
    dyn = read_dynamics(run.require().dynamics_dir)
    run.warn_if_incomplete(dyn.num_epochs)
    used = resolve_burn_out(burn_out, dyn.num_epochs, where=dyn.dy_dir)
    held = heldout_pairs(run, dyn)  # a cross-fitted run (record --cross_fit 2)
    df = rank_pairs(dyn, data, score=score, burn_out=used, proportion=proportion, heldout=held)
    names = df.attrs["label_names"]
    settings = {"source": "dynamics", "kind": run.meta.get("kind"), "top_k": top_k,
                "score_name": le.DYNAMICS_SCORES[score][0], "score": score, "burn_out": burn_out, "data": data.source,
                "dataset": le.dataset_name(data.source), "model_name_or_path": run.meta.get("model_name_or_path"),
                "run_dir": str(run.path.resolve()), "proportion": proportion, "rows": "(example, label) pairs"}
    if len(getattr(data, "excluded_guids", ())):
        settings["left_out_changed"] = len(data.excluded_guids)
    unlearned = labels_not_learned(dyn, used)
    if unlearned:
        settings["labels_not_learned"] = unlearned
        logger.warning("the model never learned label(s) %s (training accuracy at epoch %d within %.2f of always "
                       "predicting the most common value): their pairs are ranked and counted from an untrained "
                       "model; train longer or with another learning rate before trusting them",
                       ", ".join(unlearned), used - 1, dec_rules.MIN_GAIN)
    behind = labels_underfit(dyn, used)
    if behind:
        settings["labels_underfit"] = behind
        logger.warning("label(s) %s were still far from fitted at epoch %d (training accuracy well below the other "
                       "labels'): rank_count counts too many of their values, so read their flags with care, or train "
                       "longer", ", ".join(behind), used - 1)
    counts = None
    if rule == "rank_count":
        epochs = count_epochs if count_epochs is not None else used
        if not 1 <= epochs <= dyn.num_epochs:
            raise TrainingDynamicsError(f"--count_epochs {epochs}: the run recorded {dyn.num_epochs} epochs")
        rows = df["index"].to_numpy(np.int64)
        gold = df["gold"].to_numpy(np.int64)
        if held is not None and count_epochs is None:  # count on the last held-out epoch (never trained on the pair)
            last = min(used, held.shape[1]) - 1
            p_given = held[rows, last, gold]
            settings.update(count_source="held-out", count_heldout_epoch=last,
                            heldout_accuracy=round(float((p_given > 0.5).mean()), 4))
        else:
            p_given = count_probabilities(dyn, epochs)[rows]
            settings["count_epochs"] = epochs
        counts = per_label_count(gold, p_given, df["label_index"].to_numpy(), dyn.num_labels)
    dec = decide_pairs(rule, df, counts=counts, label_names=names)
    if dec is not None and rule == "rank_count":  # can this run count? (training_dynamics.decisions.evidence)
        from training_dynamics.decisions.evidence import restrict

        verdict = judge_pairs(dyn, df, dec, epochs=used, unfitted=[*unlearned, *behind])
        dec = restrict(dec, verdict, df["gold"].to_numpy(np.int64), noun="(example, label) pairs")
        dec.details["by_label"] = flags_by_label(dec.flagged, df, names)
    if dec is not None:
        df["is_label_issue"] = dec.flagged
        df["suggested_fix"] = np.where(dec.flagged, np.asarray(FIXES, dtype=object)[df["gold"].to_numpy(np.int64)],
                                       None)
    first = ["rank", "guid", "label", "given", "score", *(["is_label_issue", "suggested_fix"] if dec else [])]
    out = df[first + [c for c in df.columns if c not in first]].copy()
    out.attrs = dict(df.attrs)
    if top_k is not None:
        out = out.head(top_k).copy()
        out.attrs = dict(df.attrs)
    settings["label_names"] = names
    settings["decision"] = summary(dec) if dec is not None else {"rule": "none"}
    return out, dec, settings
