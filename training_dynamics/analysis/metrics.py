"""Per-example training-dynamics metrics (data-map coordinates), vectorised over (N, E, C) arrays.

Definitions (docs/metrics.md), over the first ``burn_out`` epochs ``e = 0..E-1`` (E = ``burn_out``;
default all recorded epochs), with ``z_e`` the logits of an example at epoch ``e``, ``y`` its gold
label and ``p_e = softmax(z_e)[y]`` computed as ``exp(log_softmax(z_e)[y])`` (max-shifted, stable):

- ``confidence``          mean_e p_e
- ``variability``         population std of p_e (ddof 0); with ``include_ci``
                          sqrt(var + var**2 / (E - 1)) as in the seed; for E = 1 both are 0
                          (a single value has no spread; no division by zero).
- ``correctness``         number of epochs with argmax(z_e) == y; ties go to the lowest class
                          index (``np.argmax``), so a tie counts as correct only if y is the lowest.
- ``forgetfulness``       number of correct -> incorrect transitions between consecutive epochs;
                          1000 when the example is never predicted correctly (the seed's value) --
                          use the explicit boolean column ``never_learned`` instead of testing 1000.
- ``threshold_closeness`` confidence * (1 - confidence)
- ``never_learned``       correctness == 0
- ``loss``                mean_e of the cross-entropy -log p_e
- ``aum``                 mean_e of z_e[y] - max_{c != y} z_e[c]  (area under the margin, Pleiss et
                          al. 2020; negative = the model prefers another class)
- ``aleatoric``           mean_e p_e (1 - p_e)  (Data-IQ, Seedat et al. 2022)
- ``el2n``                mean_e ||softmax(z_e) - onehot(y)||_2  (Paul et al. 2021 score one
                          network early in training over several seeds; here the average over the
                          recorded epochs of one run)
- ``last_pred``           argmax(z_{E-1}): the prediction at the last epoch used
- ``gold``                y

Generative runs (a causal LM on prompt/response data) record, per example and epoch, the mean
log-probability of the response's tokens and the share of them the greedy argmax gets right
(:data:`dynamics_file.GENERATIVE_VALUES`). The same columns then
read: ``p_e = exp(mean token log-probability)`` (the geometric-mean probability of the gold
response), an epoch is *correct* when ``token_accuracy >= CORRECT_TOKEN_ACCURACY`` (the greedy
prediction is right on at least 90% of the response's tokens: it nearly reproduces it), ``last_pred`` is 0 for a correct and 1
for an incorrect last epoch (classes ``response`` / ``other``), ``gold`` is 0; ``loss`` is the mean
token NLL; ``aum`` and ``el2n`` are those of the two outcomes ``[p_e, 1 - p_e]`` against
``[1, 0]``: the mean of log(p_e / (1 - p_e)) and of sqrt(2) (1 - p_e) (per-token margins and EL2N
would cost every training step more passes over the vocabulary). Two extra columns:
``token_accuracy`` (mean over the epochs) and ``num_tokens``.

Pure arrays in, arrays out: reading epoch files is :mod:`dynamics_file`'s job, caching the result in
a run folder's ``td_metrics.jsonl`` is :class:`training_dynamics.analysis.run.Run`'s. Rows keep the order of
the first epoch file; ``index`` is the position of the example in that file (the seed's meaning; for
this project's writer, the training row order).
"""

from __future__ import annotations

import functools
import logging
import os
from typing import TYPE_CHECKING

import numpy as np

from training_dynamics.core.dynamics_file import Dynamics, DynamicsError

if TYPE_CHECKING:  # pandas is imported only where a DataFrame is made: td_metrics.py starts faster without it
    import pandas as pd

logger = logging.getLogger(__name__)

NEVER_LEARNED_FORGETFULNESS = 1000
CORRECT_TOKEN_ACCURACY = 0.9  #: a generative epoch is correct when at least this share of its tokens is
GENERATIVE_COLUMNS = ("token_accuracy", "num_tokens")
SEED_COLUMNS = ("guid", "index", "threshold_closeness", "confidence", "variability", "correctness", "forgetfulness")
EXTRA_COLUMNS = ("never_learned", "loss", "aum", "aleatoric", "el2n", "last_pred", "gold")
COLUMNS = SEED_COLUMNS + EXTRA_COLUMNS


def _reduce_classes(ufunc: np.ufunc, x: np.ndarray) -> np.ndarray:
    """``ufunc.reduce`` over the last (class) axis: (..., C) -> (...).

    With few classes, a loop over the classes (each step vectorised over all examples and epochs)
    is several times faster than numpy's reduction over a short inner axis.
    """
    if x.shape[-1] > 32:
        return ufunc.reduce(x, axis=-1)
    return functools.reduce(ufunc, (x[..., c] for c in range(x.shape[-1])))


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Numerically stable log-softmax over the last axis (shape kept)."""
    shifted = logits - _reduce_classes(np.maximum, logits)[..., None]
    return shifted - np.log(_reduce_classes(np.add, np.exp(shifted)))[..., None]


def per_epoch_arrays(logits: np.ndarray, gold: np.ndarray, *, block: int = 1 << 13) -> dict[str, np.ndarray]:
    """What each epoch says about each example: ``{name: (N, E) array}``.

    - ``logp_gold``: log softmax(z_e)[y] (max-shifted, stable); ``p_e = exp(logp_gold)``;
    - ``pred``: argmax z_e, ties to the lowest class index;
    - ``margin``: z_e[y] - max_{c != y} z_e[c];
    - ``el2n``: ||softmax(z_e) - onehot(y)||_2.

    Args:
        logits: (N, E, C) float logits; gold: (N,) int label ids in 0..C-1.
        block: examples per step. Working on blocks that fit in the CPU cache (each step still
            vectorised over its examples, epochs and classes) is faster than whole-array temporaries.
    """
    logits = np.asarray(logits, dtype=np.float64)
    gold = np.asarray(gold, dtype=np.int64)
    n, n_epochs, _ = logits.shape
    out = {"logp_gold": np.empty((n, n_epochs)), "pred": np.empty((n, n_epochs), dtype=np.int64),
           "margin": np.empty((n, n_epochs)), "el2n": np.empty((n, n_epochs))}
    for start in range(0, n, block):
        stop = min(start + block, n)
        for name, values in _per_epoch_block(logits[start:stop], gold[start:stop]).items():
            out[name][start:stop] = values
    return out


def _per_epoch_block(logits: np.ndarray, gold: np.ndarray) -> dict[str, np.ndarray]:
    n, n_epochs, c = logits.shape
    out = per_row(logits.reshape(n * n_epochs, c), np.repeat(gold, n_epochs))
    return {k: v.reshape(n, n_epochs) for k, v in out.items()}


def per_row(logits: np.ndarray, gold: np.ndarray) -> dict[str, np.ndarray]:
    """:func:`per_epoch_arrays` of single rows: (M, C) logits and (M,) gold -> ``{name: (M,)}``.

    The one implementation of these numbers (:mod:`streaming` calls it on blocks of one epoch). With
    up to :data:`_CLASS_LOOP` classes it works on one contiguous array per class: the same operations
    in the same order as on the (M, C) array, so the same bits, several times faster.
    """
    if logits.shape[-1] <= _CLASS_LOOP:
        return per_class_columns(list(np.ascontiguousarray(logits.T, dtype=np.float64)), gold)
    return _per_row_2d(np.asarray(logits, dtype=np.float64), gold)


_CLASS_LOOP = 32  # np.choose takes at most 32 arrays in numpy 1.x


def per_class_columns(cols: list[np.ndarray], gold: np.ndarray) -> dict[str, np.ndarray]:
    """:func:`per_row` from the logits of each class as its own (M,) float64 array (``len(cols)`` <= 32)."""
    if len(cols) == 2:
        return _two_classes(*cols, gold)
    add = functools.partial(functools.reduce, np.add)
    maximum = functools.partial(functools.reduce, np.maximum)
    is_gold = [gold == c for c in range(len(cols))]
    top = maximum(cols)
    shifted = [z - top for z in cols]
    probs = [np.exp(z) for z in shifted]
    total = add(probs)
    logp_gold = _pick(shifted, is_gold) - np.log(total)
    del shifted
    # as in _per_row_2d: the probabilities of the other classes, their sum and sum of squares
    others = [np.where(g, 0.0, p / total) for g, p in zip(is_gold, probs)]
    del probs
    rest = add(others)
    el2n = np.sqrt(add([q * q for q in others]) + rest * rest)
    del others, rest
    margin = _pick(cols, is_gold) - maximum([np.where(g, -np.inf, z) for g, z in zip(is_gold, cols)])
    pred = np.zeros(len(gold), dtype=np.int64)  # argmax, ties to the lowest class (strictly greater wins)
    best = cols[0]
    for c in range(1, len(cols)):
        ahead = cols[c] > best
        pred[ahead] = c
        best = np.maximum(best, cols[c])
    return {"logp_gold": logp_gold, "pred": pred, "margin": margin, "el2n": el2n}


def _pick(cols: list[np.ndarray], is_gold: list[np.ndarray]) -> np.ndarray:
    """The gold class's value of each row (np.choose, without its cost)."""
    out = cols[0].copy()
    for z, g in zip(cols[1:], is_gold[1:]):
        np.copyto(out, z, where=g)
    return out


def _two_classes(z0: np.ndarray, z1: np.ndarray, gold: np.ndarray) -> dict[str, np.ndarray]:
    """:func:`per_class_columns` of two classes: the same floating-point operations on the same values
    (so the same bits), with what is known about two classes -- one of the shifted logits is 0, the
    other is -|margin| -- used to skip the work whose result is known."""
    is1 = gold == 1
    margin = np.where(is1, z1, z0)
    margin -= np.where(is1, z0, z1)                  # z_gold - z_other, as z_gold - max_{c != gold} z_c
    t = np.exp(-np.abs(margin))                      # exp of the shifted logit that is not 0
    total = t + 1.0
    logp_gold = np.minimum(margin, 0.0)              # the gold's shifted logit
    logp_gold -= np.log(total)
    q = np.where(margin >= 0, t, 1.0)                # the other class's exp(shifted logit) ...
    q /= total                                       # ... and probability
    q *= q
    el2n = np.sqrt(q + q, out=q)                     # its square, twice: sum_{c != y} q_c^2 + (1 - q_y)^2
    pred = (z1 > z0).view(np.int8).astype(np.int64)  # argmax, ties to class 0
    return {"logp_gold": logp_gold, "pred": pred, "margin": margin, "el2n": el2n}


def _per_row_2d(logits: np.ndarray, gold: np.ndarray) -> dict[str, np.ndarray]:
    rows = np.arange(len(gold))
    shifted = logits - _reduce_classes(np.maximum, logits)[..., None]    # (M, C), max 0
    probs = np.exp(shifted)
    total = _reduce_classes(np.add, probs)                              # (M,), >= 1
    logp_gold = shifted[rows, gold] - np.log(total)
    del shifted
    # ||softmax - onehot||^2 = sum_{c != y} q_c^2 + (1 - q_y)^2 with 1 - q_y = sum_{c != y} q_c:
    # no cancellation when q_y is close to 1.
    probs /= total[..., None]
    probs[rows, gold] = 0.0
    rest = _reduce_classes(np.add, probs)
    el2n = np.sqrt(_reduce_classes(np.add, probs * probs) + rest * rest)
    del probs, rest
    gold_logit = logits[rows, gold]
    others = logits.copy()
    others[rows, gold] = -np.inf
    margin = gold_logit - _reduce_classes(np.maximum, others)
    del others
    return {"logp_gold": logp_gold, "pred": logits.argmax(axis=-1), "margin": margin, "el2n": el2n}


def generative_per_epoch(values: np.ndarray) -> dict[str, np.ndarray]:
    """:func:`per_epoch_arrays` of a generative run from its (N, E, 3) values (no logits needed)."""
    values = np.asarray(values, dtype=np.float64)
    logp = np.minimum(values[..., 0], 0.0)
    rest = np.maximum(-np.expm1(logp), 1e-300)  # 1 - p_e
    return {"logp_gold": logp, "pred": np.where(values[..., 1] >= CORRECT_TOKEN_ACCURACY, 0, 1).astype(np.int64),
            "margin": logp - np.log(rest), "el2n": np.sqrt(2.0) * rest, "token_accuracy": values[..., 1]}


def dynamics_per_epoch(dynamics: Dynamics, *, epochs: int | None = None) -> dict[str, np.ndarray]:
    """:func:`per_epoch_arrays` of the first ``epochs`` epochs (default all) of a classification or generative run."""
    if dynamics.values is not None:
        return generative_per_epoch(dynamics.values[:, :epochs])
    return per_epoch_arrays(dynamics.logits[:, :epochs], dynamics.gold)


def aggregate_epochs(per_epoch: dict[str, np.ndarray], gold: np.ndarray, *,
                     include_ci: bool = False) -> dict[str, np.ndarray]:
    """The metrics of the module docstring from :func:`per_epoch_arrays` (all its epochs are used).

    Returns:
        ``{column: (N,) array}`` for every column of :data:`COLUMNS` except ``guid`` and ``index``.
    """
    logp_gold = per_epoch["logp_gold"]
    n_epochs = logp_gold.shape[1]
    p = np.exp(logp_gold)                                               # (N, E)
    confidence = p.mean(axis=1)
    var = ((p - confidence[:, None]) ** 2).mean(axis=1)                 # population variance (ddof 0)
    if include_ci and n_epochs > 1:
        var = var + var**2 / (n_epochs - 1)
    correct = per_epoch["pred"] == np.asarray(gold)[:, None]
    correctness = correct.sum(axis=1)
    forgotten = (correct[:, :-1] & ~correct[:, 1:]).sum(axis=1)
    never = correctness == 0
    return {
        "threshold_closeness": confidence * (1 - confidence),
        "confidence": confidence,
        "variability": np.sqrt(var),
        "correctness": correctness.astype(np.int64),
        "forgetfulness": np.where(never, NEVER_LEARNED_FORGETFULNESS, forgotten).astype(np.int64),
        "never_learned": never,
        "loss": -logp_gold.mean(axis=1),
        "aum": per_epoch["margin"].mean(axis=1),
        "aleatoric": (p * (1 - p)).mean(axis=1),
        "el2n": per_epoch["el2n"].mean(axis=1),
        "last_pred": per_epoch["pred"][:, -1].astype(np.int64),
        "gold": np.asarray(gold, dtype=np.int64),
    }


def td_metrics_from_arrays(logits: np.ndarray, gold: np.ndarray, *, include_ci: bool = False) -> dict[str, np.ndarray]:
    """Every metric of the module docstring from arrays, vectorised.

    Args:
        logits: (N, E, C) logits per example and epoch (E >= 1, C >= 2).
        gold: (N,) int label ids in 0..C-1.
        include_ci: variability as sqrt(var + var**2 / (E - 1)) (0 for E = 1).

    Returns:
        ``{column: (N,) array}`` for every column of :data:`COLUMNS` except ``guid`` and ``index``.
    """
    return aggregate_epochs(per_epoch_arrays(logits, gold), gold, include_ci=include_ci)


def resolve_burn_out(burn_out: int | None, num_epochs: int, *, where: str | os.PathLike = "") -> int:
    """``burn_out`` checked against the epochs present; ``None`` means all of them."""
    if burn_out is None:
        return num_epochs
    prefix = f"{where}: " if where else ""
    if isinstance(burn_out, bool) or not isinstance(burn_out, (int, np.integer)) or burn_out < 1:
        raise DynamicsError(f"{prefix}burn_out must be a whole number of epochs >= 1, got {burn_out!r}")
    if burn_out > num_epochs:
        raise DynamicsError(f"{prefix}burn_out {burn_out} is larger than the {num_epochs} epoch(s) recorded "
                            f"(dynamics_epoch_0..{num_epochs - 1})")
    return int(burn_out)


def td_metrics_columns(dynamics: Dynamics, *, burn_out: int | None = None, include_ci: bool = False,
                       per_epoch: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """:func:`compute_td_metrics` without pandas: ``{column: (N,) array}`` in :data:`COLUMNS` order.

    ``per_epoch``: :func:`per_epoch_arrays` of all recorded epochs, when already computed.
    """
    burn_out = resolve_burn_out(burn_out, dynamics.num_epochs, where=dynamics.dy_dir)
    if per_epoch is None:
        per_epoch = dynamics_per_epoch(dynamics, epochs=burn_out)
    used = {k: v[:, :burn_out] for k, v in per_epoch.items()}
    cols = aggregate_epochs(used, dynamics.gold, include_ci=include_ci)
    cols |= {"guid": dynamics.guids, "index": np.arange(dynamics.num_examples)}
    out = {c: cols[c] for c in COLUMNS}
    if dynamics.values is not None:
        out["token_accuracy"] = used["token_accuracy"].mean(axis=1)
        out["num_tokens"] = np.rint(dynamics.values[:, 0, -1]).astype(np.int64)
    return out


def compute_td_metrics(dynamics: Dynamics, *, burn_out: int | None = None, include_ci: bool = False) -> pd.DataFrame:
    """Per-example metrics over the first ``burn_out`` epochs (all when ``None``).

    Returns:
        One row per example, in the order of the first epoch file, with the columns of
        :data:`COLUMNS`: the seed's ``guid, index, threshold_closeness, confidence, variability,
        correctness, forgetfulness`` then ``never_learned, loss, aum, aleatoric, el2n, last_pred,
        gold`` (definitions in the module docstring).

    Raises:
        DynamicsError: ``burn_out`` < 1 or larger than the number of epochs recorded.
    """
    import pandas as pd

    return pd.DataFrame(td_metrics_columns(dynamics, burn_out=burn_out, include_ci=include_ci))


def training_summary_columns(dynamics: Dynamics, *,
                             per_epoch: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """:func:`training_summary` without pandas: ``{column: (E,) array}``."""
    if per_epoch is None:
        per_epoch = dynamics_per_epoch(dynamics)
    acc = (per_epoch["pred"] == dynamics.gold[:, None]).mean(axis=0)
    return {"epoch": np.arange(dynamics.num_epochs), "loss": -per_epoch["logp_gold"].mean(axis=0), "accuracy": acc,
            "num_examples": np.full(dynamics.num_epochs, dynamics.num_examples)}


def training_summary(dynamics: Dynamics) -> pd.DataFrame:
    """Per recorded epoch, over all examples of that epoch: mean cross-entropy loss and accuracy.

    Covers every recorded epoch (``burn_out`` does not apply: this describes the training run).

    Returns:
        Columns ``epoch`` (0-based), ``loss`` (mean of -log softmax(z)[gold]), ``accuracy``
        (fraction with argmax == gold, ties to the lowest index), ``num_examples``.
    """
    import pandas as pd

    return pd.DataFrame(training_summary_columns(dynamics))
