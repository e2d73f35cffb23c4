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
(:data:`~training_dynamics.kinds.generative.dynamics.GENERATIVE_VALUES`). The same columns then
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
SEED_COLUMNS = ("guid", "index", "threshold_closeness", "confidence", "variability", "correctness", "forgetfulness")
EXTRA_COLUMNS = ("never_learned", "loss", "aum", "aleatoric", "el2n", "last_pred", "gold")
COLUMNS = SEED_COLUMNS + EXTRA_COLUMNS


# the per-epoch values from logits live with the epoch-file format; named here too, where the metrics are
from training_dynamics.core.epoch_values import (_CLASS_LOOP, _per_row_2d, _reduce_classes, log_softmax,  # noqa: F401
                                                 per_class_columns, per_epoch_arrays, per_row)


def dynamics_per_epoch(dynamics: Dynamics, *, epochs: int | None = None) -> dict[str, np.ndarray]:
    """:func:`per_epoch_arrays` of the first ``epochs`` epochs (default all), as the run's epoch-file layout
    computes them from its values (:meth:`EpochLayout.per_epoch <training_dynamics.core.dynamics_file.EpochLayout.per_epoch>`)."""
    return dynamics.layout.per_epoch(dynamics.recorded[:, :epochs], dynamics.gold)


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
    out |= {c: used[c].mean(axis=1) for c in dynamics.layout.mean_columns}
    return out | dynamics.layout.constant_columns(dynamics.recorded[:, 0])


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
