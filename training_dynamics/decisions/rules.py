"""Which labels are wrong, and how many: decision rules on top of a ranking.

Every rule returns a :class:`Decision`: a flag per example (``is_label_issue``), the likely true
class of each example (its most probable class other than the given one) and the estimated number
of wrong labels per given -> likely-true class pair (the flagged examples, counted per pair).

Rules (``--decision``):

* ``rank_count`` (cleanlab's count, our ranking): cleanlab estimates *how many* labels are wrong
  from the confident joint of the labels and the probabilities
  (``cleanlab.count.num_label_issues``); the top that many examples of the ranking are flagged.
  From dynamics the count uses the probabilities of the first half of the epochs (rounded up),
  before the model has fitted many wrong labels, extended until its last epoch had fitted the data
  (:func:`choose_count_epochs`: on a short run the first half may be underfit).
* ``confident_learning``: cleanlab's own flagged set (``cleanlab.filter.find_label_issues``,
  ``prune_by_noise_rate``) on the same probabilities (Northcutt et al., 2021).
* ``loss_mixture``: a two-component Gaussian mixture fitted to the per-example loss; an example is
  flagged when the high-loss component is the more probable (as DivideMix, Li et al., 2020).
* ``aum_mixture``: the same mixture fitted to the AUM (closer to two Gaussians than the loss,
  whose clean examples pile up near 0 with a long tail); the low-AUM component is flagged.
* ``score_mixture``: the same mixture fitted to the ranking's own score (``--score``); the more
  suspicious component is flagged. The default for generative runs (suspicious responses), where
  there are no classes to count label errors between.
* ``aum_threshold``: AUM below the 99th percentile of the AUMs of *threshold samples*, examples
  given a fake extra class in a second run (Pleiss et al., 2020). Needs that run.
* ``none``: no decision (rank only).

cleanlab (a dependency) is imported only by the rules that use it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from training_dynamics.core.errors import TrainingDynamicsError

logger = logging.getLogger(__name__)

#: every rule, with what ``--help`` says of it (the command line's choices and help are built from this)
RULES: dict[str, str] = {
    "rank_count": "the top cleanlab-estimated-count of the ranking (the default for classification)",
    "confident_learning": "cleanlab's flagged set",
    "loss_mixture": "a two-Gaussian mixture on the loss",
    "aum_mixture": "a two-Gaussian mixture on the AUM (dynamics only)",
    "score_mixture": "a two-Gaussian mixture on the ranking's score (the default for a generative run's responses)",
    "aum_threshold": "AUM below the threshold of --threshold_run_dir (a run with threshold samples)",
    "none": "rank only",
}
DECISIONS = tuple(RULES)
DEFAULT_DECISION = "rank_count"
FAKE_CLASS = "__threshold__"


@dataclass
class Decision:
    """The outcome of a decision rule over N examples of C classes."""

    rule: str
    flagged: np.ndarray  # (N,) bool: is_label_issue
    likely_true: np.ndarray  # (N,) int: most probable class other than the given one
    noise_counts: np.ndarray  # (C, C) int: flagged examples per [given, likely true] pair
    details: dict = field(default_factory=dict)

    @property
    def num_flagged(self) -> int:
        return int(self.flagged.sum())

    def summary(self, label_names: Sequence[str]) -> dict:
        """JSON-ready: the rule, how many are flagged and the estimate per given -> likely-true pair."""
        pairs = [{"given": str(label_names[i]), "likely_true": str(label_names[j]), "count": int(self.noise_counts[i, j])}
                 for i, j in zip(*np.nonzero(self.noise_counts))]
        return {"rule": self.rule, "num_label_issues": self.num_flagged, "num_examples": int(len(self.flagged)),
                "by_class_pair": pairs, **self.details}

# -- shared arithmetic --------------------------------------------------------------------------
def likely_true_class(probabilities: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """(N,) the most probable class other than the given one (ties: the lowest class id)."""
    p = np.array(probabilities, dtype=np.float64)
    p[np.arange(len(gold)), np.asarray(gold, dtype=np.int64)] = -np.inf
    return p.argmax(axis=1)


def noise_counts(gold: np.ndarray, likely_true: np.ndarray, flagged: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C) int: flagged examples counted per [given, likely true] class pair."""
    gold, likely_true, flagged = (np.asarray(a) for a in (gold, likely_true, flagged))
    pairs = gold[flagged].astype(np.int64) * num_classes + likely_true[flagged].astype(np.int64)
    return np.bincount(pairs, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def _decision(rule: str, flagged: np.ndarray, gold: np.ndarray, probabilities: np.ndarray, **details) -> Decision:
    gold = np.asarray(gold, dtype=np.int64)
    likely = likely_true_class(probabilities, gold)
    counts = noise_counts(gold, likely, flagged, probabilities.shape[1])
    return Decision(rule, np.asarray(flagged, dtype=bool), likely, counts, details)


def _cleanlab(rule: str):
    try:
        import cleanlab  # noqa: F401
    except ImportError:
        raise TrainingDynamicsError(f"--decision {rule} needs cleanlab: pip install cleanlab "
                         "(or choose --decision loss_mixture)") from None
    return cleanlab


def top_k(score: np.ndarray, k: int, guids: np.ndarray | None = None) -> np.ndarray:
    """(N,) bool: the ``k`` highest scores (ties: lower guid, else lower index, first)."""
    score = np.asarray(score, dtype=np.float64)
    keys = np.arange(len(score)) if guids is None else np.asarray(guids)
    flagged = np.zeros(len(score), dtype=bool)
    flagged[np.lexsort((keys, -score))[:max(0, int(k))]] = True
    return flagged


# -- the rules ----------------------------------------------------------------------------------
def rank_count(gold: np.ndarray, probabilities: np.ndarray, score: np.ndarray, *,
               guids: np.ndarray | None = None, count_probabilities: np.ndarray | None = None) -> Decision:
    """Flag the top ``cleanlab.count.num_label_issues(gold, count_probabilities)`` examples of ``score``.

    ``count_probabilities`` (N, C), default ``probabilities``: what the count is estimated from. From
    dynamics, the early epochs (:func:`choose_count_epochs`): later epochs have begun to fit the
    wrong labels, which makes them look right and the count too low.
    """
    _cleanlab("rank_count")
    from cleanlab.count import num_label_issues

    gold = np.asarray(gold, dtype=np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    counted = probabilities if count_probabilities is None else np.asarray(count_probabilities, dtype=np.float64)
    k = int(num_label_issues(gold, counted, estimation_method="off_diagonal_calibrated"))
    flagged = top_k(score, k, guids)
    warn_if_most_flagged("rank_count", flagged, "cleanlab estimates that most labels are wrong")
    return _decision("rank_count", flagged, gold, probabilities, estimated_count=k)


def count_epochs(num_epochs: int) -> int:
    """The first half of ``num_epochs``, rounded up: where :func:`choose_count_epochs` starts."""
    return max(1, -(-int(num_epochs) // 2))


STILL_LEARNING = 0.5  #: an epoch is underfit while the next one adds more than this share of its gain over chance
MIN_GAIN = 0.05  #: an epoch less than this above chance accuracy has fitted nothing


@dataclass
class CountWindow:
    """Which epochs ``rank_count`` counts from, and why (see :func:`choose_count_epochs`)."""

    epochs: int  # count from the probabilities of the first ``epochs`` epochs
    accuracy: list[float]  # (E,) training accuracy of each epoch's recorded predictions against the given labels
    chance: float  # accuracy of always predicting the most common given label
    fitted: list[bool]  # (E,) whether each epoch had fitted the data
    chosen: bool = True  # False: given by the user (--count_epochs)

    @property
    def first_fitted(self) -> int | None:
        """The first epoch that had fitted the data (``None``: none had)."""
        return next((e for e, ok in enumerate(self.fitted) if ok), None)

    @property
    def underfit(self) -> bool:
        """Whether no counted epoch had fitted the data (the count is then far too high)."""
        return not any(self.fitted[:self.epochs])

    def details(self) -> dict:
        return {"count_epochs": self.epochs, "training_accuracy": [round(float(a), 4) for a in self.accuracy],
                "chance_accuracy": round(float(self.chance), 4), "first_fitted_epoch": self.first_fitted,
                "count_epochs_chosen": "by the training curve" if self.chosen else "--count_epochs"}

    def describe(self) -> str:
        curve = ", ".join(f"{a:.2f}" for a in self.accuracy)
        return (f"rank_count counts from epoch(s) 0..{self.epochs - 1} (training accuracy per epoch {curve}; "
                f"{self.chance:.2f} by always predicting the most common label)")


def fitted_epochs(accuracy: Sequence[float], *, chance: float) -> np.ndarray:
    """(E,) bool: whether each epoch had fitted the data, judged from the training curve alone.

    Epoch e had fitted it when its training accuracy ``a_e`` is at least :data:`MIN_GAIN` above
    ``chance`` and the next epoch no longer adds much: ``a_{e+1} - a_e <= STILL_LEARNING * (a_e - chance)``
    (the last epoch: the first test only). An epoch after which the model still learns that fast
    (0.68 -> 0.81 with chance 0.54) was caught mid-way; memorising the wrong labels later is much slower.
    """
    acc = np.asarray(accuracy, dtype=np.float64)
    gain = acc - chance
    step = np.r_[acc[1:] - acc[:-1], 0.0]
    return (gain >= MIN_GAIN) & (step <= STILL_LEARNING * gain)


def choose_count_epochs(accuracy: Sequence[float], *, chance: float) -> CountWindow:
    """The epochs ``rank_count`` counts wrong labels from, chosen from the training curve.

    Early epochs come before the model fits the wrong labels, which later makes them look right (the
    count falls too low), so the count uses the first half of the epochs (rounded up). But it must
    not end on an epoch in which the model had not yet fitted the data (:func:`fitted_epochs`): its
    probabilities are close to uniform and cleanlab's count then takes a quarter to a half of all
    labels for wrong. So the window grows, one epoch at a time, until its last epoch had fitted the
    data (or it holds every epoch; :attr:`CountWindow.underfit` says when none had).

    Args:
        accuracy: (E,) training accuracy of each epoch (recorded predictions vs the given labels).
        chance: the share of the most common given label.
    """
    acc = np.asarray(accuracy, dtype=np.float64)
    if acc.ndim != 1 or len(acc) == 0:
        raise ValueError("accuracy must hold one value per epoch")
    fitted = fitted_epochs(acc, chance=chance)
    epochs = count_epochs(len(acc))
    while epochs < len(acc) and not fitted[epochs - 1]:
        epochs += 1
    return CountWindow(epochs, acc.tolist(), float(chance), fitted.tolist())


def confident_learning(gold: np.ndarray, probabilities: np.ndarray, *,
                       filter_by: str = "prune_by_noise_rate") -> Decision:
    """cleanlab's flagged set (``cleanlab.filter.find_label_issues``) on ``probabilities`` (N, C)."""
    _cleanlab("confident_learning")
    from cleanlab.filter import find_label_issues

    gold = np.asarray(gold, dtype=np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    flagged = find_label_issues(gold, probabilities, filter_by=filter_by)
    return _decision("confident_learning", flagged, gold, probabilities, filter_by=filter_by)


def fit_two_gaussians(x: np.ndarray, *, iterations: int = 200, tol: float = 1e-8) -> dict[str, np.ndarray]:
    """EM for a 1-D mixture of two Gaussians, started from the lower and upper quartiles.

    Returns:
        ``{"weights", "means", "stds"}`` (2,) each, component 0 the lower mean, and
        ``"posterior_high"`` (N,): each point's posterior probability of the higher-mean component.
    """
    x = np.asarray(x, dtype=np.float64)
    means = np.quantile(x, [0.25, 0.75])
    spread = max(float(x.std()), 1e-6)
    stds = np.array([spread, spread]) / 2
    weights = np.array([0.5, 0.5])
    floor = 1e-3 * spread
    prev = -np.inf
    for _ in range(iterations):
        log_pdf = (-0.5 * ((x[:, None] - means) / stds) ** 2 - np.log(stds) + np.log(weights))  # (N, 2)
        top = log_pdf.max(axis=1, keepdims=True)
        log_norm = top[:, 0] + np.log(np.exp(log_pdf - top).sum(axis=1))
        resp = np.exp(log_pdf - log_norm[:, None])
        mass = resp.sum(axis=0) + 1e-12
        weights = mass / len(x)
        means = (resp * x[:, None]).sum(axis=0) / mass
        stds = np.maximum(np.sqrt((resp * (x[:, None] - means) ** 2).sum(axis=0) / mass), floor)
        ll = float(log_norm.mean())
        if ll - prev < tol:
            break
        prev = ll
    order = np.argsort(means)
    return {"weights": weights[order], "means": means[order], "stds": stds[order], "posterior_high": resp[:, order[1]]}


def warn_if_most_flagged(rule: str, flagged: np.ndarray, why: str) -> None:
    """Warn when a rule flags more than half of the examples: not a small group of label errors."""
    if len(flagged) and flagged.mean() > 0.5:
        logger.warning("%s flags %d of %d examples (%.0f%%): %s (an under-trained model?); rank, and read the flags "
                       "with care", rule, int(flagged.sum()), len(flagged), 100 * flagged.mean(), why)


def mixture_decision(rule: str, gold: np.ndarray, probabilities: np.ndarray, suspicion: np.ndarray, **details) -> Decision:
    """Flag the examples whose ``suspicion`` the higher-mean component of a two-Gaussian fit explains better."""
    fit = fit_two_gaussians(suspicion)
    flagged = fit["posterior_high"] > 0.5
    warn_if_most_flagged(rule, flagged, "the scores do not split into a small suspicious group")
    return _decision(rule, flagged, gold, np.asarray(probabilities, dtype=np.float64),
                     mixture={k: [float(v) for v in fit[k]] for k in ("weights", "means", "stds")}, **details)


def loss_mixture(gold: np.ndarray, probabilities: np.ndarray, loss: np.ndarray) -> Decision:
    """Two-Gaussian mixture on the per-example loss (DivideMix); the high-loss component is flagged."""
    return mixture_decision("loss_mixture", gold, probabilities, np.asarray(loss, dtype=np.float64), fitted_to="loss")


def aum_mixture(gold: np.ndarray, probabilities: np.ndarray, aum: np.ndarray) -> Decision:
    """Two-Gaussian mixture on the AUM; the low-AUM component is flagged."""
    return mixture_decision("aum_mixture", gold, probabilities, -np.asarray(aum, dtype=np.float64), fitted_to="-aum")


def score_mixture(gold: np.ndarray, probabilities: np.ndarray, score: np.ndarray) -> Decision:
    """Two-Gaussian mixture on the ranking's score (higher = more suspicious); the high component is flagged."""
    return mixture_decision("score_mixture", gold, probabilities, np.asarray(score, dtype=np.float64), fitted_to="score")


def aum_threshold_value(fake_aum: np.ndarray, *, percentile: float = 99.0) -> float:
    """Pleiss et al. (2020): the ``percentile``-th percentile of the threshold samples' AUMs."""
    fake_aum = np.asarray(fake_aum, dtype=np.float64)
    if len(fake_aum) == 0:
        raise TrainingDynamicsError("no threshold samples (examples of the fake class) in the threshold run")
    return float(np.percentile(fake_aum, percentile))


def aum_threshold(gold: np.ndarray, probabilities: np.ndarray, aum: np.ndarray, threshold: float, *,
                  percentile: float = 99.0) -> Decision:
    """Flag examples whose AUM is below ``threshold`` (see :func:`aum_threshold_value`)."""
    flagged = np.asarray(aum, dtype=np.float64) < threshold
    return _decision("aum_threshold", flagged, gold, np.asarray(probabilities, dtype=np.float64),
                     threshold=float(threshold), percentile=percentile)


def threshold_labels(gold: np.ndarray, num_classes: int, *, seed: int = 0) -> np.ndarray:
    """Labels for an AUM threshold run: a seeded N/(C+1) of the examples moved to fake class C."""
    out = np.array(gold, dtype=np.int64)
    rng = np.random.default_rng(seed)
    out[rng.choice(len(out), size=len(out) // (num_classes + 1), replace=False)] = num_classes
    return out


def with_threshold_samples(data, *, seed: int = 0):
    """``data`` (a :class:`~training_dynamics.core.data.TextClassificationData`) with a seeded N/(C+1) of its
    training examples moved to the fake class :data:`FAKE_CLASS` (its last label name): the data of
    an AUM threshold run. The validation set is unchanged."""
    from dataclasses import replace

    if FAKE_CLASS in data.label_names:
        raise TrainingDynamicsError(f"the data already has a class named {FAKE_CLASS!r}")
    labels = threshold_labels(np.asarray(data.train["label"], dtype=np.int64), data.num_labels, seed=seed)
    train = data.train.remove_columns("label").add_column("label", labels.tolist())
    logger.info("threshold samples: %d of %d training examples moved to the fake class %s",
                int((labels == data.num_labels).sum()), len(labels), FAKE_CLASS)
    return replace(data, train=train, label_names=[*data.label_names, FAKE_CLASS])


def decide(rule: str, *, gold: np.ndarray, probabilities: np.ndarray, score: np.ndarray, loss: np.ndarray | None = None,
           aum: np.ndarray | None = None, threshold: float | None = None, guids: np.ndarray | None = None,
           count_probabilities: np.ndarray | None = None) -> Decision | None:
    """Apply ``rule`` (one of :data:`DECISIONS`); ``None`` for ``"none"``."""
    if rule == "none":
        return None
    if rule == "rank_count":
        return rank_count(gold, probabilities, score, guids=guids, count_probabilities=count_probabilities)
    if rule == "confident_learning":
        return confident_learning(gold, probabilities)
    if rule == "loss_mixture":
        if loss is None:
            raise TrainingDynamicsError("--decision loss_mixture needs per-example losses")
        return loss_mixture(gold, probabilities, loss)
    if rule == "aum_mixture":
        if aum is None:
            raise TrainingDynamicsError("--decision aum_mixture needs --source dynamics (the AUM)")
        return aum_mixture(gold, probabilities, aum)
    if rule == "score_mixture":
        return score_mixture(gold, probabilities, score)
    if rule == "aum_threshold":
        if aum is None or threshold is None:
            raise TrainingDynamicsError("--decision aum_threshold needs --source dynamics and --threshold_run_dir "
                             "(a run with a fake class of threshold samples)")
        return aum_threshold(gold, probabilities, aum, threshold)
    raise TrainingDynamicsError(f"--decision must be one of {', '.join(DECISIONS)}, not {rule!r}")


def aum_threshold_from_run(run, *, fake_class: str = FAKE_CLASS, burn_out: int | None = None,
                           percentile: float = 99.0, progress: bool = False) -> float:
    """The AUM threshold of a threshold run (a :class:`~training_dynamics.analysis.run.Run` whose data gave
    a share of the examples the extra class ``fake_class``): the ``percentile`` of their AUMs."""
    from training_dynamics.analysis import metrics

    names = run.label_names or []
    if fake_class not in names:
        raise TrainingDynamicsError(f"{run.path}: no class named {fake_class!r} among {names}; a threshold run gives about "
                         f"N/(C+1) examples that fake class (see docs/label_errors.md)")
    dyn = run.dynamics(progress=progress)
    cols = metrics.td_metrics_columns(dyn, burn_out=burn_out)
    fake = cols["gold"] == names.index(fake_class)
    value = aum_threshold_value(cols["aum"][fake], percentile=percentile)
    logger.info("%s: AUM threshold %.4f (%gth percentile of %d threshold samples)", run.path, value, percentile,
                int(fake.sum()))
    return value


def decide_table(df, rule: str, *, threshold: float | None = None, count_probabilities=None):
    """Apply ``rule`` to a ranked issues table (:func:`ranking.rank_examples`, every row); returns the
    table with ``is_label_issue`` and ``likely_true`` columns added, and the :class:`Decision` (``None`` for none).

    ``count_probabilities``: optional ``(guids (N,), probabilities (N, C))`` for ``rank_count``'s count.
    """
    probs = np.array(df["probabilities"].tolist(), dtype=np.float64)
    gold = df["gold"].to_numpy(np.int64)
    guids = df["guid"].to_numpy()
    counted = None
    if count_probabilities is not None:
        count_guids, count_probs = count_probabilities
        order = np.argsort(count_guids, kind="stable")
        counted = np.asarray(count_probs)[order[np.searchsorted(count_guids, guids, sorter=order)]]
    dec = decide(rule, gold=gold, probabilities=probs, score=df["score"].to_numpy(np.float64),
                 loss=df["loss"].to_numpy(np.float64) if "loss" in df else None,
                 aum=df["aum"].to_numpy(np.float64) if "aum" in df else None, threshold=threshold,
                 guids=guids, count_probabilities=counted)
    out = df.copy()
    out.attrs = dict(df.attrs)
    if dec is None:
        return out, None
    names = np.asarray(df.attrs.get("label_names") or [str(i) for i in range(probs.shape[1])], dtype=object)
    out["is_label_issue"] = dec.flagged
    out["likely_true"] = dec.likely_true
    out["likely_true_name"] = names[dec.likely_true]
    return out, dec
