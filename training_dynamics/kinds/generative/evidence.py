"""Can a generative run count its flagged responses? (:mod:`training_dynamics.decisions.evidence` for this kind)

The mean response loss must have fallen by at least :data:`MIN_LOSS_DROP` (relative) from the first recorded
epoch to the last, fewer than :data:`MAX_NEVER_LEARNED` of the responses may be "never learned", and the
mixture may flag at most half of them; otherwise no response is flagged and find-issues says why in one line.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from training_dynamics.decisions.evidence import Countability
from training_dynamics.decisions.rules import Decision

MIN_LOSS_DROP = 0.05  #: generative: the mean loss must fall at least this much (relative) over the epochs
MAX_NEVER_LEARNED = 0.9  #: generative: at most this share of responses may be never learned


def judge_generative(values: np.ndarray, *, flagged_share: float | None = None,
                     correct_token_accuracy: float = 0.9) -> Countability:
    """Whether a generative run's flags are supported: the loss fell, most responses were learned, and the
    mixture did not flag most of them.

    Args:
        values: (N, E, 3) per response and epoch: mean token log-probability, token accuracy, tokens
            (:data:`~training_dynamics.kinds.generative.dynamics.GENERATIVE_VALUES`).
        flagged_share: the share the rule flags.
    """
    v = np.asarray(values, dtype=np.float64)
    loss = -v[:, :, 0].mean(axis=0)  # (E,) mean response loss per epoch
    never = float((v[:, :, 1] < correct_token_accuracy).all(axis=1).mean())
    drop = float((loss[0] - loss[-1]) / loss[0]) if len(loss) > 1 and loss[0] > 0 else None
    curve = ", ".join(f"{x:.3f}" for x in loss)
    reasons = []
    if drop is not None and drop < MIN_LOSS_DROP:
        reasons.append(f"the response loss did not fall over the {len(loss)} epochs ({curve}: "
                       f"{100 * drop:.1f}%, at least {100 * MIN_LOSS_DROP:.0f}% needed)")
    if never >= MAX_NEVER_LEARNED:
        reasons.append(f"{100 * never:.0f}% of the responses were never learned (token accuracy below "
                       f"{correct_token_accuracy:g} in every epoch)")
    if flagged_share is not None and flagged_share > 0.5:
        reasons.append(f"the mixture would flag {100 * flagged_share:.0f}% of them (no small suspicious group)")
    numbers = {"loss_per_epoch": [round(float(x), 4) for x in loss], "loss_drop": None if drop is None else round(drop, 4),
               "never_learned_share": round(never, 4)}
    return Countability(not reasons, reasons, numbers, np.zeros(len(v), dtype=bool))


def judge_generative_runs(runs: Sequence, dec: Decision, *, burn_out: int | None = None) -> Countability:
    """:func:`judge_generative` on the first run's values (the first ``burn_out`` epochs)."""
    values = runs[0].dynamics(progress=False).values
    return judge_generative(values[:, :burn_out], flagged_share=float(dec.flagged.mean()) if len(dec.flagged) else 0.0)
