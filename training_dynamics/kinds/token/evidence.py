"""Can a token classification run count its wrong word tags? (:mod:`training_dynamics.decisions.evidence` for
this kind)

At the last epoch the count rests on, the token accuracy must close at least :data:`MIN_TOKEN_GAIN` of the gap
between the all-O baseline (always the most common tag) and 1, and every tag with at least
:data:`MIN_TAG_WORDS` words must have been learned (recall at least :data:`MIN_TAG_RECALL`); otherwise only the
words whose tag the model rejects, of learned tags, stay flagged.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from training_dynamics.decisions.evidence import Countability

MIN_TOKEN_GAIN = 0.2  #: tokens: (accuracy - all-O) / (1 - all-O) at least this
MIN_TAG_RECALL = 0.1  #: tokens: a tag is learned when the model gets at least this share of its words right
MIN_TAG_WORDS = 10  #: tokens: tags with fewer words are not judged
TOKEN_REJECT = 0.1  #: tokens: a word's tag is rejected when predicted against and given at most this probability


def judge_tokens(pred: np.ndarray, gold: np.ndarray, gold_probability: np.ndarray, *, num_flagged: int,
                 label_names: Sequence[str], likely_true: np.ndarray | None = None,
                 epoch: int | None = None, where: str | None = None) -> Countability:
    """Whether a token classification count is supported (module docstring).

    Args:
        pred, gold: (W,) predicted (at the last epoch the count rests on) and given tag of each word.
        gold_probability: (W,) the probability of the given tag at that epoch.
        num_flagged: how many words the rule flags.
        likely_true: (W,) each word's likely true tag (a flag needs it learned too).
        where: what the messages call the values (default: ``epoch <epoch>``).
    """
    pred, gold = np.asarray(pred, dtype=np.int64), np.asarray(gold, dtype=np.int64)
    names = [str(n) for n in label_names]
    c = max(len(names), int(max(gold.max(initial=0), pred.max(initial=0))) + 1)
    acc = float((pred == gold).mean()) if len(gold) else 0.0
    counts = np.bincount(gold, minlength=c)
    base_tag = int(counts.argmax())
    base = float(counts[base_tag] / max(len(gold), 1))
    gain = (acc - base) / (1 - base) if base < 1 else 0.0
    hits = np.bincount(gold[pred == gold], minlength=c)
    recall = np.where(counts > 0, hits / np.maximum(counts, 1), np.nan)
    judged = (counts >= MIN_TAG_WORDS) & (np.arange(c) != base_tag)
    unlearned = np.flatnonzero(judged & (recall < MIN_TAG_RECALL))
    name = (lambda t: names[t] if t < len(names) else str(t))
    where = where or (f"epoch {epoch}" if epoch is not None else "the last epoch")
    reasons = []
    if gain < MIN_TOKEN_GAIN:
        reasons.append(f"token accuracy {acc:.3f} at {where} is near the all-{name(base_tag)} baseline {base:.3f} "
                       f"({100 * gain:.0f}% of the gap to 1 closed, {100 * MIN_TOKEN_GAIN:.0f}% needed)")
    if len(unlearned):
        listed = ", ".join(f"{name(t)} {hits[t]}/{counts[t]}" for t in unlearned[:6])
        more = f" and {len(unlearned) - 6} more" if len(unlearned) > 6 else ""
        reasons.append(f"the model never learned {len(unlearned)} of the {int(judged.sum())} tags (words right at "
                       f"{where}: {listed}{more})")
    rej = (pred != gold) & (np.asarray(gold_probability, dtype=np.float64) <= TOKEN_REJECT)
    learned = np.ones(c, dtype=bool)
    learned[unlearned] = False
    supported = rej & learned[gold]
    if likely_true is not None:
        supported &= learned[np.asarray(likely_true, dtype=np.int64)]
    numbers = {"judged_on": where, "token_accuracy": round(acc, 4), "baseline_tag": name(base_tag),
               "baseline_accuracy": round(base, 4), "gain_over_baseline": round(float(gain), 4),
               "never_learned_tags": [name(t) for t in unlearned],
               "tag_recall": {name(t): round(float(recall[t]), 4) for t in np.flatnonzero(judged)},
               "rejected": int(rej.sum())}
    return Countability(not reasons, reasons, numbers, supported)
