"""Can this run count its label errors? An honest "cannot count" for every kind.

A decision rule (:mod:`training_dynamics.decisions.rules`) always returns a count, but a count means
something only when the model had fitted the data: a model at chance, or one still half-way there,
gives probabilities in which "the model disagrees with the label" is mostly the model's own error,
and cleanlab's count then takes a quarter to a half of all labels for wrong. This module judges, per
kind, whether the evidence supports a count, from numbers the run already has:

* **classification** (:func:`judge_classification`): at the last epoch the count rests on (or the
  final model's probabilities), the training accuracy must be at least :data:`rules.MIN_GAIN` above
  chance (always predicting the most common label), and the model must *reject* the given label of
  at least :data:`MIN_REJECTED_SHARE` of as many examples as the rule flags. A label is rejected when
  the model predicts another class and gives the given one at most :data:`REJECT` / C of its
  probability (C classes): a fitted model that learned the clean pattern gives a wrong label
  almost nothing, an underfit one spreads its mass and merely disagrees.
* **every other kind** judges its own runs with :class:`Countability` and :func:`restrict` (each kind's
  ``evidence``/``issues`` module): generative (:mod:`training_dynamics.kinds.generative.evidence`: the
  response loss fell, most responses were learned, the mixture flags at most half), token classification
  (:mod:`training_dynamics.kinds.token.evidence`: token accuracy above the all-O baseline, every frequent
  tag learned), multi-label (:func:`training_dynamics.kinds.multilabel.issues.judge_pairs`: every label
  fitted).

When the evidence does not support a count, ``find-issues`` still ranks every example, but
``is_label_issue`` keeps only the flagged examples the evidence supports (classification and tokens:
a rejected label, of a learned tag; generative: none), and :meth:`Countability.describe` gives the one
line that says so, with the numbers and what to do.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from training_dynamics.decisions.rules import MIN_GAIN, Decision, noise_counts

logger = logging.getLogger(__name__)

REJECT = 0.5  #: a label is rejected when predicted against and given at most REJECT / C of the probability
MIN_REJECTED_SHARE = 0.75  #: a count needs at least this share of the flagged number to be rejected labels
ADVICE = "train longer (more epochs, or a larger learning rate), record with --cross_fit 2, or use a bigger model"


@dataclass
class Countability:
    """Whether a run's evidence supports a count of its wrong labels, and why not."""

    countable: bool
    reasons: list[str] = field(default_factory=list)  # why not, each a short clause with its numbers
    numbers: dict = field(default_factory=dict)  # what was measured (JSON-ready)
    supported: np.ndarray | None = None  # (N,) bool, table order: what the evidence supports when not countable

    def details(self) -> dict:
        """JSON for ``label_issues_settings.json`` (``decision.countable`` and ``decision.evidence``)."""
        return {"countable": self.countable, "evidence": {**self.numbers, "reasons": list(self.reasons)}}

    def describe(self, dec: Decision, *, noun: str = "labels") -> str:
        """One line: the rule cannot count, why (with the numbers), what is still flagged, what to do."""
        n = len(dec.flagged)
        kept = dec.num_flagged
        would = self.numbers.get("would_flag")
        supported = (f"is_label_issue marks only the {kept} the evidence supports" if kept
                     else "is_label_issue marks none")
        return (f"{dec.rule}: cannot count the wrong {noun} of {n}: {'; '.join(self.reasons)}"
                f"{f' (it would have flagged {would})' if would is not None else ''}; {supported}; "
                f"the ranking stands; {self.numbers.get('advice', ADVICE)}")


def restrict(dec: Decision, countability: Countability, gold: np.ndarray, *, noun: str = "labels") -> Decision:
    """``dec`` with only the supported flags kept (unchanged when countable), the verdict in its details
    (``countable``, ``evidence``; when not countable also ``would_flag`` and the one line ``cannot_count``).

    ``gold``: (N,) the given labels in the decision's row order (the count per class pair is recomputed)."""
    details = {**dec.details, **countability.details()}
    if countability.countable:
        return Decision(dec.rule, dec.flagged, dec.likely_true, dec.noise_counts, details)
    supported = np.zeros(len(dec.flagged), dtype=bool) if countability.supported is None else countability.supported
    flagged = dec.flagged & np.asarray(supported, dtype=bool)
    counts = noise_counts(np.asarray(gold, dtype=np.int64), dec.likely_true, flagged, dec.noise_counts.shape[0])
    out = Decision(dec.rule, flagged, dec.likely_true, counts, {**details, "would_flag": dec.num_flagged})
    out.details["cannot_count"] = countability.describe(out, noun=noun)
    logger.info("%s", out.details["cannot_count"])  # the CLI prints it; a library caller reads the details
    return out


def epoch_probabilities(runs: Sequence, epoch: int) -> tuple[np.ndarray, np.ndarray]:
    """(guids (N,), probabilities (N, C)): each example's softmax at ``epoch``, averaged over ``runs``
    (aligned by guid to the first run)."""
    from training_dynamics.analysis.metrics import log_softmax
    from training_dynamics.analysis.multirun import aligned_rows

    dyns = [run.dynamics(progress=False) for run in runs]
    ref = dyns[0]
    probs = [np.exp(log_softmax(ref.logits[:, epoch]))]
    for run, d in zip(runs[1:], dyns[1:]):
        rows = aligned_rows(ref, d, ref_name=str(runs[0].path), name=str(run.path))
        probs.append(np.exp(log_softmax(d.logits[rows, min(epoch, d.num_epochs - 1)])))
    return ref.guids, np.mean(probs, axis=0)


def align(guids: np.ndarray, values: np.ndarray, want: np.ndarray) -> np.ndarray:
    """``values`` (rows by ``guids``) reordered to the guids ``want``."""
    order = np.argsort(guids, kind="stable")
    return np.asarray(values)[order[np.searchsorted(guids, want, sorter=order)]]


def judge_table(df, dec: Decision, *, runs: Sequence = (), source: str = "dynamics", window=None,
                burn_out: int | None = None) -> Countability:
    """:func:`judge_classification` of a ranked table (:func:`ranking.rank_examples`, every row) and the
    decision made on it: on the final model's probabilities (``source="model"``), else on the probabilities
    of the last epoch the count rests on (``window``: a :class:`rules.CountWindow`; default chosen from
    the training curve)."""
    gold = df["gold"].to_numpy(np.int64)
    if source == "model" or not runs:
        return judge_classification(np.array(df["probabilities"].tolist(), dtype=np.float64), gold,
                                    num_flagged=dec.num_flagged)
    if window is None:
        from training_dynamics.decisions.ranking import count_probabilities

        window = count_probabilities(runs, burn_out=burn_out)[2]
    last = window.epochs - 1
    guids, probs = epoch_probabilities(runs, last)
    return judge_classification(align(guids, probs, df["guid"].to_numpy()), gold, num_flagged=dec.num_flagged,
                                accuracy=window.accuracy, chance=window.chance, epoch=last)


def countable_window(runs: Sequence, window, *, burn_out: int | None = None
                     ) -> tuple[int, int, np.ndarray, np.ndarray] | None:
    """The smallest count window, from ``window.epochs`` on, whose count the evidence supports
    (:func:`judge_classification` at its last epoch): ``(first, end, guids, probabilities)``, the count then
    rests on the mean probabilities of epochs ``first..end-1``; ``None`` when none is. For each end epoch the
    window from epoch 0 is tried first, then the end epoch alone (the early, underfit epochs of a slow
    start spread their probability and inflate the count).

    The training curve alone (:func:`rules.choose_count_epochs`) may end the window on an epoch in which
    the model predicts better than chance but still spreads its probability: it merely disagrees with many
    labels it does not reject, and cleanlab counts them. The window then grows, as it does for an underfit
    epoch, until the model rejects most of what it would count."""
    from cleanlab.count import num_label_issues

    from training_dynamics.analysis.metrics import log_softmax
    from training_dynamics.analysis.multirun import aligned_rows

    dyns = [run.dynamics(progress=False) for run in runs]
    ref = dyns[0]
    used = min(d.num_epochs for d in dyns) if burn_out is None else min(burn_out, *(d.num_epochs for d in dyns))
    probs = np.exp(log_softmax(ref.logits[:, :used]))
    for run, d in zip(runs[1:], dyns[1:]):
        probs = probs + np.exp(log_softmax(d.logits[aligned_rows(ref, d, ref_name=str(runs[0].path),
                                                                 name=str(run.path)), :used]))
    probs = probs / len(dyns)
    gold = np.asarray(ref.gold, dtype=np.int64)
    for w in range(window.epochs, used + 1):
        for first in dict.fromkeys((0, w - 1)):
            counted = probs[:, first:w].mean(axis=1)
            k = int(num_label_issues(gold, counted, estimation_method="off_diagonal_calibrated"))
            if judge_classification(probs[:, w - 1], gold, num_flagged=k, chance=window.chance).countable:
                return first, w, ref.guids, counted
    return None


def rejected(probabilities: np.ndarray, gold: np.ndarray, *, reject: float = REJECT) -> np.ndarray:
    """(N,) bool: the model predicts another class and gives the given one at most ``reject / C``."""
    p = np.asarray(probabilities, dtype=np.float64)
    gold = np.asarray(gold, dtype=np.int64)
    p_gold = p[np.arange(len(gold)), gold]
    return (p.argmax(axis=1) != gold) & (p_gold <= reject / p.shape[1])


def judge_classification(probabilities: np.ndarray, gold: np.ndarray, *, num_flagged: int,
                         accuracy: Sequence[float] | None = None, chance: float | None = None,
                         epoch: int | None = None, what: str = "training accuracy") -> Countability:
    """Whether a classification count is supported (module docstring).

    Args:
        probabilities: (N, C) the probabilities the count rests on: the last epoch of the count window
            (dynamics) or the final model's.
        gold: (N,) given label ids.
        num_flagged: how many the rule flags.
        accuracy: (E,) training accuracy per epoch (dynamics), for the message; default: of ``probabilities``.
        chance: accuracy of always predicting the most common given label (default: from ``gold``).
        epoch: which epoch ``probabilities`` are (dynamics), for the message.
        what: what ``accuracy`` is, for the message (``"held-out accuracy"`` for a cross-fitted run).
    """
    p = np.asarray(probabilities, dtype=np.float64)
    gold = np.asarray(gold, dtype=np.int64)
    n = len(gold)
    acc = float((p.argmax(axis=1) == gold).mean()) if n else 0.0
    chance = float(np.bincount(gold).max() / n) if chance is None and n else float(chance or 0.0)
    rej = rejected(p, gold)
    share = float(rej.sum() / num_flagged) if num_flagged else 1.0
    where = f"epoch {epoch}" if epoch is not None else "the model"
    curve = (", ".join(f"{a:.2f}" for a in accuracy) if accuracy is not None else f"{acc:.2f}")
    reasons = []
    if acc - chance < MIN_GAIN:
        reasons.append(f"{what} {curve} is near chance ({chance:.2f} by always predicting the most "
                       f"common label)")
    elif share < MIN_REJECTED_SHARE:
        reasons.append(f"the model had not fitted the data ({what} {curve}, chance {chance:.2f}): at "
                       f"{where} it rejects the given label of only {int(rej.sum())} examples, "
                       f"{100 * share:.0f}% of the {num_flagged} a count would flag")
    if acc - chance < MIN_GAIN:  # a model at chance supports no flag at all
        rej = np.zeros(n, dtype=bool)
    numbers = {"judged_on": where, "training_accuracy": round(acc, 4), "chance_accuracy": round(chance, 4),
               "rejected": int(rej.sum()), "rejected_share_of_count": round(share, 4),
               "min_rejected_share": MIN_REJECTED_SHARE, "reject_below": round(REJECT / p.shape[1], 4)}
    if what != "training accuracy":  # already held-out evidence: cross-fitting again will not help
        numbers["advice"] = "train longer (more epochs, or a larger learning rate), or use a bigger model"
    return Countability(not reasons, reasons, numbers, rej)
