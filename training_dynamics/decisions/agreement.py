"""Which source to believe: how far the rankings and flagged sets of several sources agree.

``find-issues`` ranks from one source (``--source dynamics``: the recorded epochs; ``--source model``: the
final model; held-out probabilities once a run has them) and decides on it. When another source is at hand
(the run's dynamics beside ``--source model``, a model beside ``--source dynamics``), the same rule is
applied to it as well and :func:`compare` reports, per pair of sources, the flagged counts, their overlap
(examples flagged by both, and the Jaccard index) and the Spearman rank correlation of the two scores over
every example; :func:`describe` says it in one line and names the source the decision used.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

#: why one source over another, in the order of preference (shown with the comparison)
PREFERENCE = ("held-out probabilities (record --cross_fit 2) were never trained on the example; of the in-sample "
              "sources, the dynamics count from the epochs before the model fits the wrong labels, while a final "
              "model that memorised them counts too few")


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two (N,) scores (average ranks for ties); nan when either is constant."""
    from training_dynamics.decisions.ranking import ranks01

    ra, rb = ranks01(np.asarray(a, dtype=np.float64)), ranks01(np.asarray(b, dtype=np.float64))
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def _by_guid(table) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    guids = table["guid"].to_numpy()
    flagged = table["is_label_issue"].to_numpy(bool) if "is_label_issue" in table else None
    return guids, table["score"].to_numpy(np.float64), flagged


def compare(tables: Mapping[str, object], *, used: str) -> dict:
    """Agreement of the rankings (``{source name: ranked table with guid, score, is_label_issue}``, every row).

    Returns:
        JSON-ready ``{"used", "flagged": {source: n}, "pairs": [{"a", "b", "flagged_a", "flagged_b", "both",
        "jaccard", "spearman", "examples"}]}``; the pairs are over the guids the two tables share.
    """
    names = list(tables)
    flagged_counts, pairs = {}, []
    parts = {name: _by_guid(tables[name]) for name in names}
    for name, (_, _, flagged) in parts.items():
        flagged_counts[name] = None if flagged is None else int(flagged.sum())
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            ga, sa, fa = parts[a]
            gb, sb, fb = parts[b]
            common, ia, ib = np.intersect1d(ga, gb, return_indices=True)
            pair = {"a": a, "b": b, "examples": int(len(common)),
                    "spearman": round(spearman(sa[ia], sb[ib]), 4) if len(common) > 1 else None}
            if fa is not None and fb is not None:
                xa, xb = fa[ia], fb[ib]
                both, either = int((xa & xb).sum()), int((xa | xb).sum())
                pair.update(flagged_a=int(xa.sum()), flagged_b=int(xb.sum()), both=both,
                            jaccard=round(both / either, 4) if either else None)
            pairs.append(pair)
    return {"used": used, "flagged": flagged_counts, "pairs": pairs, "preference": PREFERENCE}


def describe(agreement: dict) -> str:
    """One line, e.g. ``sources: dynamics flags 272, model flags 114; 98 flagged by both (Jaccard 0.34), rank
    correlation 0.71; the decision used dynamics``."""
    flagged = ", ".join(f"{name} flags {n}" for name, n in agreement["flagged"].items() if n is not None)
    pairs = []
    for p in agreement["pairs"]:
        overlap = (f"{p['both']} flagged by both (Jaccard {p['jaccard']:.2f}), " if p.get("jaccard") is not None
                   else "")
        rho = "n/a" if p["spearman"] is None or np.isnan(p["spearman"]) else f"{p['spearman']:.2f}"
        pairs.append(f"{p['a']} vs {p['b']}: {overlap}rank correlation (Spearman) {rho}")
    return f"sources: {flagged}; {'; '.join(pairs)}; the decision used {agreement['used']}"
