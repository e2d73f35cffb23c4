"""What one epoch's recorded values say about each example: log-probability of the gold label, prediction,
margin and EL2N, from logits (the epoch-file layout of a classifier). The one implementation of these numbers:
the epoch-file layouts (:class:`~training_dynamics.core.dynamics_file.EpochLayout`) and the metrics
(:mod:`training_dynamics.analysis.metrics`, which aggregates them over epochs) call it.
"""

from __future__ import annotations

import functools

import numpy as np


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
