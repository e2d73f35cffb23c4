"""Compare the data maps of a weak and a strong model trained on the same examples.

Runs are aligned by ``guid``; every delta is strong − weak. Forgetfulness keeps the seed's
never-learned value 1000 in the per-run columns, but its delta is NaN whenever either model never
learned the example (flags ``weak_never_learned`` / ``strong_never_learned``), never 1000 − 3.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from training_dynamics.core import fileio
from training_dynamics.analysis import plots, selection
from training_dynamics.core.errors import TrainingDynamicsError
from training_dynamics.core.ids import as_guids

logger = logging.getLogger(__name__)

NEVER_LEARNED_FORGETFULNESS = 1000
#: region order of the transition table; "other" = in none of the three regions
REGION_ORDER = ("easy", "ambiguous", "hard", "other")
REGION_COLORS = {"easy": "#d95f02", "ambiguous": "#222222", "hard": "#1b4f9c", "other": "#b8b8b8"}
CORRELATED = ("confidence", "variability", "correctness")


def run_labels(a: str | os.PathLike, b: str | os.PathLike) -> tuple[str, str]:
    """Short names that tell two runs apart: the parts of their paths that differ.

    ``dy_log/sst2/bert-tiny`` vs ``dy_log/sst2/roberta-large`` -> ``("bert-tiny", "roberta-large")``;
    ``dy_log/sst2/minilm`` vs ``dy_log/sst2_fixed/minilm`` -> ``("sst2", "sst2_fixed")`` (one model, two data);
    ``seed1/sst2/m`` vs ``seed2/sst2/m`` -> ``("seed1", "seed2")``; the same path twice -> ``("A", "B")``.
    """
    pa, pb = Path(a).resolve().parts, Path(b).resolve().parts
    if pa == pb:
        return "A", "B"
    start = 0
    while start < min(len(pa), len(pb)) and pa[start] == pb[start]:
        start += 1
    end = 0
    while end < min(len(pa), len(pb)) - start and pa[-1 - end] == pb[-1 - end]:
        end += 1
    da, db = pa[start:len(pa) - end], pb[start:len(pb) - end]
    return "/".join(da) or pa[-1], "/".join(db) or pb[-1]


def align_runs(weak: pd.DataFrame, strong: pd.DataFrame, *, intersection: bool = False,
               names: Sequence[str] = ("weak", "strong"), where: str = "") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows of both runs for the same examples, in the same order (the weak run's).

    ``names`` name the runs in messages; ``where`` (e.g. the two folders) prefixes an error.

    Raises:
        ValueError: a run repeats a guid, or the guid sets differ (unless ``intersection``), or
            nothing is shared.
    """
    for df, name in zip((weak, strong), names):
        dup = df["guid"].duplicated()
        if dup.any():
            raise TrainingDynamicsError(f"{where + ': ' if where else ''}{name} run: guid {df['guid'][dup].iloc[0]}: "
                             "appears more than once")
    wg, sg = as_guids(weak["guid"]), as_guids(strong["guid"])
    in_strong = np.isin(wg, sg)
    in_weak = np.isin(sg, wg)
    shared = int(in_strong.sum())
    if not in_strong.all() or not in_weak.all():
        if not intersection or shared == 0:
            only_w, only_s = int((~in_strong).sum()), int((~in_weak).sum())
            example = (f"guid {wg[~in_strong][0]} is only in {names[0]}" if only_w
                       else f"guid {sg[~in_weak][0]} is only in {names[1]}")
            hint = (f"; pass --intersection to compare the {shared} shared examples" if shared and not intersection
                    else "; they share no example" + _id_hint(wg, sg, names))
            raise TrainingDynamicsError(f"{where + ': ' if where else ''}the runs cover different examples: "
                             f"{names[0]} has {len(wg)}, {names[1]} has {len(sg)} "
                             f"({only_w} only in {names[0]}, {only_s} only in {names[1]}); {example}{hint}")
        logger.warning("comparing the %d examples both runs share (%d only in %s, %d only in %s)", shared,
                       int((~in_strong).sum()), names[0], int((~in_weak).sum()), names[1])
    w = weak[in_strong].reset_index(drop=True)
    s = strong.set_index("guid").loc[w["guid"].to_numpy()].reset_index()
    return w, s


def _id_hint(wg: np.ndarray, sg: np.ndarray, names: Sequence[str]) -> str:
    """Why two runs may share no example: one has integer ids, the other text ids (e.g. ``"007"``, which a
    csv without its leading zeros reads as 7), or they were recorded on different data."""
    kinds = ["text" if g.dtype.kind in "UO" else "integer" for g in (wg, sg)]
    if kinds[0] != kinds[1]:
        return (f" ({names[0]} has {kinds[0]} ids such as {wg.tolist()[0]!r}, {names[1]} {kinds[1]} ids such as "
                f"{sg.tolist()[0]!r}: "
                "were they recorded on the same file? ids like '007' read from a file written by another tool can "
                "lose their leading zeros)")
    return f" (ids such as {wg.tolist()[0]!r} and {sg.tolist()[0]!r}: were they recorded on the same data?)"


def never_learned(df: pd.DataFrame) -> np.ndarray:
    """(N,) bool: the explicit ``never_learned`` column, else correctness == 0, else forgetfulness >= 1000."""
    if "never_learned" in df:
        return df["never_learned"].to_numpy(bool)
    if "correctness" in df:
        return df["correctness"].to_numpy(float) == 0
    if "forgetfulness" in df:
        return df["forgetfulness"].to_numpy(float) >= NEVER_LEARNED_FORGETFULNESS
    return np.zeros(len(df), bool)


def regions(df: pd.DataFrame, *, proportion: float = 0.33) -> np.ndarray:
    """(N,) object region of each row: "easy", "ambiguous", "hard" (``selection.region_of``) or "other"."""
    r = np.array(selection.region_of(df, proportion=proportion).to_numpy(object), dtype=object)
    r[r == ""] = "other"
    return r


def to_label_order(rm, names: Sequence[str] | None) -> None:
    """Renumber the class ids of ``rm``'s metrics (``gold``, ``last_pred``) into the order of ``names``,
    in place, when both runs name the same classes in another order (ids are compared by name)."""
    own = rm.label_names
    if not names or not own or list(own) == list(names):
        return
    if sorted(map(str, own)) != sorted(map(str, names)):
        raise TrainingDynamicsError(f"{rm.source}: label names {list(own)} are not those of the other run ({list(names)}); "
                         "runs to compare must share their classes")
    to = np.asarray([list(map(str, names)).index(str(n)) for n in own])
    for col in ("gold", "last_pred"):
        if col in rm.df:
            rm.df[col] = to[rm.df[col].to_numpy(np.int64)]
    rm.label_names = list(names)
    logger.info("%s: class ids renumbered into the other run's label order %s", rm.source, list(names))


def compare_runs(weak: pd.DataFrame, strong: pd.DataFrame, *, weak_epochs: int | None = None,
                 strong_epochs: int | None = None, proportion: float = 0.33) -> pd.DataFrame:
    """Per-example comparison of two aligned runs (same guids, same order; see :func:`align_runs`).

    Args:
        weak, strong: td_metrics DataFrames (N rows each) with guid, confidence, variability,
            correctness (forgetfulness / never_learned optional).
        weak_epochs, strong_epochs: epochs each run's metrics cover (for correctness fractions);
            default ``df.attrs["num_epochs"]`` or the largest correctness seen.
        proportion: size of each region as a fraction of N (``selection.region_of``).

    Returns:
        One row per example: ``guid`` (and ``gold``), then for m in confidence, variability,
        correctness, forgetfulness: ``weak_m, strong_m, delta_m`` (strong − weak); also
        ``weak/strong_correctness_frac`` and ``delta_correctness_frac`` (always), ``delta_correctness``
        (a count; NaN when the runs have different numbers of epochs), ``weak/strong_never_learned``
        (``delta_forgetfulness`` is NaN when either is true) and ``weak/strong_region``.
    """
    for df, name in ((weak, "weak"), (strong, "strong")):
        missing = [c for c in ("guid", "confidence", "variability", "correctness") if c not in df]
        if missing:
            raise TrainingDynamicsError(f"{name} run: metrics have no column(s) {', '.join(missing)}")
    if not np.array_equal(weak["guid"].to_numpy(), strong["guid"].to_numpy()):
        raise ValueError("runs are not aligned by guid: call align_runs first")
    ew = weak_epochs or plots.infer_num_epochs(weak)
    es = strong_epochs or plots.infer_num_epochs(strong)
    out = {"guid": as_guids(weak["guid"])}
    if "gold" in weak or "gold" in strong:
        gw = weak["gold"] if "gold" in weak else strong["gold"]
        out["gold"] = gw.to_numpy()
        if "gold" in weak and "gold" in strong:
            differ = weak["gold"].to_numpy() != strong["gold"].to_numpy()
            if differ.any():
                logger.warning("%d examples have different gold labels in the two runs (e.g. guid %d)",
                               int(differ.sum()), out["guid"][differ][0])
    for m in ("confidence", "variability"):
        w, s = weak[m].to_numpy(float), strong[m].to_numpy(float)
        out |= {f"weak_{m}": w, f"strong_{m}": s, f"delta_{m}": s - w}
    cw, cs = weak["correctness"].to_numpy(float), strong["correctness"].to_numpy(float)
    out |= {"weak_correctness": weak["correctness"].to_numpy(np.int64),
            "strong_correctness": strong["correctness"].to_numpy(np.int64),
            "delta_correctness": cs - cw if ew == es else np.full(len(cw), np.nan),
            "weak_correctness_frac": cw / ew, "strong_correctness_frac": cs / es,
            "delta_correctness_frac": cs / es - cw / ew}
    nw, ns = never_learned(weak), never_learned(strong)
    fw, fs = (df["forgetfulness"].to_numpy() if "forgetfulness" in df else np.full(len(df), np.nan)
              for df in (weak, strong))
    out |= {"weak_forgetfulness": fw, "strong_forgetfulness": fs,
            "weak_never_learned": nw, "strong_never_learned": ns,
            "delta_forgetfulness": np.where(nw | ns, np.nan, fs.astype(float) - fw.astype(float))}
    out |= {"weak_region": regions(weak, proportion=proportion), "strong_region": regions(strong, proportion=proportion)}
    return pd.DataFrame(out)


def transition_table(weak_region: Sequence[str], strong_region: Sequence[str]) -> pd.DataFrame:
    """Counts of examples per (weak region, strong region): a 4x4 int table over :data:`REGION_ORDER`
    (rows weak, columns strong) that sums to N."""
    code = {r: i for i, r in enumerate(REGION_ORDER)}
    try:
        wi = np.array([code[r] for r in weak_region], dtype=np.int64)
        si = np.array([code[r] for r in strong_region], dtype=np.int64)
    except KeyError as exc:
        raise TrainingDynamicsError(f"unknown region {exc.args[0]!r}; expected one of {', '.join(REGION_ORDER)}") from None
    k = len(REGION_ORDER)
    counts = np.bincount(wi * k + si, minlength=k * k).reshape(k, k)
    return pd.DataFrame(counts, index=pd.Index(REGION_ORDER, name="weak"), columns=pd.Index(REGION_ORDER, name="strong"))


def transition_markdown(table: pd.DataFrame) -> str:
    """The transition table as a markdown table with totals."""
    cols = list(table.columns)
    lines = ["| weak \\ strong | " + " | ".join(cols) + " | total |", "|---" * (len(cols) + 2) + "|"]
    for r, row in table.iterrows():
        lines.append(f"| {r} | " + " | ".join(str(int(v)) for v in row) + f" | {int(row.sum())} |")
    lines.append("| total | " + " | ".join(str(int(v)) for v in table.sum(axis=0)) + f" | {int(table.to_numpy().sum())} |")
    return "\n".join(lines) + "\n"


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two (N,) arrays (average ranks for ties; pairs with a NaN are
    dropped); NaN when fewer than two pairs or a constant side."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 2:
        return float("nan")
    ra = pd.Series(a[ok]).rank(method="average").to_numpy()
    rb = pd.Series(b[ok]).rank(method="average").to_numpy()
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def rank_correlations(cmp: pd.DataFrame) -> dict[str, float]:
    """Spearman correlation between the weak and the strong run for confidence, variability and
    correctness (as fractions of epochs, so runs of different lengths compare)."""
    cols = {"confidence": "confidence", "variability": "variability", "correctness": "correctness_frac"}
    return {m: spearman(cmp[f"weak_{c}"], cmp[f"strong_{c}"]) for m, c in cols.items()}


# --------------------------------------------------------------------------- plots
def _legend_regions(ax, title: str = "weak model's region") -> None:
    from matplotlib.lines import Line2D

    ax.legend(handles=[Line2D([], [], ls="", marker="o", color=REGION_COLORS[r], label=r) for r in REGION_ORDER],
              title=title, fontsize=8, title_fontsize=8, loc="lower right", framealpha=0.85)


def plot_delta_map(cmp: pd.DataFrame, *, title: str | None = None, seed: int = 42,
                   names: tuple[str, str] = ("weak", "strong")):
    """Delta data map: x = Δ variability, y = Δ confidence (strong − weak), colour = Δ correctness
    (fraction of epochs, diverging around 0). ``names``: what the labels call the (weak, strong) runs.
    Returns the ``Figure``."""
    a, b = names
    import matplotlib.pyplot as plt
    from matplotlib.colors import TwoSlopeNorm

    n = len(cmp)
    o = np.random.default_rng(seed).permutation(n)
    fig, ax = plt.subplots(figsize=(8, 6.5), layout="constrained")
    sc = ax.scatter(cmp["delta_variability"].to_numpy(float)[o], cmp["delta_confidence"].to_numpy(float)[o],
                    c=cmp["delta_correctness_frac"].to_numpy(float)[o], cmap="RdBu",
                    norm=TwoSlopeNorm(0.0, -1.0, 1.0), s=plots._marker_size(n), linewidths=0.2, edgecolors="0.4",
                    alpha=0.85, rasterized=True)
    ax.axhline(0, color="0.3", lw=0.8)
    ax.axvline(0, color="0.3", lw=0.8)
    for d, setlim, most in (("delta_variability", ax.set_xlim, 0.5), ("delta_confidence", ax.set_ylim, 1.0)):
        lim = min(max(float(np.nanmax(np.abs(cmp[d]))) * 1.08, 0.05), most * 1.03) if n else most
        setlim(-lim, lim)  # symmetric, so the sign of a change reads at a glance
    box = dict(boxstyle="round,pad=0.3", fc="white", ec="0.5", alpha=0.85)
    for (x, y, text) in ((0.02, 0.97, f"{b} more confident"), (0.02, 0.03, f"{b} less confident"),
                         (0.98, 0.5, f"{b} more variable →")):
        ax.text(x, y, text, transform=ax.transAxes, ha="left" if x < 0.5 else "right",
                va="top" if y > 0.9 else "bottom" if y < 0.1 else "center", fontsize=9, bbox=box)
    ax.set_xlabel(f"Δ variability ({b} − {a})")
    ax.set_ylabel(f"Δ confidence ({b} − {a})")
    ax.grid(True, lw=0.4, alpha=0.5)
    fig.colorbar(sc, ax=ax, shrink=0.85, pad=0.01).set_label("Δ correctness (fraction of epochs)")
    ax.set_title(title or f"Delta data map ({b} − {a}, n={n:,})", fontsize=12)
    return fig


def plot_strong_vs_weak(cmp: pd.DataFrame, *, correlations: dict[str, float] | None = None,
                        title: str | None = None, seed: int = 42, names: tuple[str, str] = ("weak", "strong")):
    """Two scatters, strong (y) against weak (x), of confidence and of variability, coloured by the
    weak model's region, with the diagonal. ``names``: what the labels call the (weak, strong) runs.
    Returns the ``Figure``."""
    a, b = names
    import matplotlib.pyplot as plt

    correlations = correlations if correlations is not None else rank_correlations(cmp)
    n = len(cmp)
    o = np.random.default_rng(seed).permutation(n)
    colors = np.array([REGION_COLORS[r] for r in cmp["weak_region"]], dtype=object)[o]
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.6), layout="constrained")
    for ax, m in zip(axes, ("confidence", "variability")):
        w, s = cmp[f"weak_{m}"].to_numpy(float)[o], cmp[f"strong_{m}"].to_numpy(float)[o]
        hi = 1.0 if m == "confidence" else max(float(np.nanmax([w.max(initial=0), s.max(initial=0)])) * 1.05, 0.05)
        ax.plot([0, hi], [0, hi], color="0.4", lw=0.8, ls="--", zorder=0)
        ax.scatter(w, s, c=list(colors), s=plots._marker_size(n), linewidths=0, alpha=0.75, rasterized=True)
        ax.set_xlim(-0.02 * hi, 1.02 * hi)
        ax.set_ylim(-0.02 * hi, 1.02 * hi)
        ax.set_aspect("equal")
        ax.set_xlabel(f"{a}: {m}")
        ax.set_ylabel(f"{b}: {m}")
        ax.grid(True, lw=0.4, alpha=0.5)
        ax.set_title(f"{m}: Spearman ρ = {correlations.get(m, float('nan')):.3f}", fontsize=11)
    _legend_regions(axes[0], title=f"{a}: region")
    fig.suptitle(title or f"{b} vs {a} (n={n:,})", fontsize=13)
    return fig


# --------------------------------------------------------------------------- writing
def comparison_paths(out_dir: str | os.PathLike) -> dict[str, Path]:
    """The files :func:`write_comparison` writes into ``out_dir``."""
    out = Path(out_dir)
    return {"jsonl": out / "compare.jsonl", "csv": out / "compare.csv", "transitions_csv": out / "region_transitions.csv",
            "transitions_md": out / "region_transitions.md", "summary": out / "compare_summary.json"}


def write_comparison(out_dir: str | os.PathLike, cmp: pd.DataFrame, table: pd.DataFrame,
                     correlations: dict[str, float], settings: dict) -> dict[str, Path]:
    """Write ``compare.jsonl`` / ``.csv``, ``region_transitions.csv`` / ``.md`` and
    ``compare_summary.json`` (settings, counts, correlations) atomically; returns the paths."""
    paths = comparison_paths(out_dir)
    with fileio.atomic_write(paths["jsonl"]) as fh:
        cmp.to_json(fh, orient="records", lines=True, double_precision=10)
    with fileio.atomic_write(paths["csv"]) as fh:
        cmp.to_csv(fh, index=False)
    with fileio.atomic_write(paths["transitions_csv"]) as fh:
        table.to_csv(fh)
    with fileio.atomic_write(paths["transitions_md"]) as fh:
        fh.write(transition_markdown(table))
    summary = {**settings, "num_examples": len(cmp),
               "spearman": {k: (None if np.isnan(v) else v) for k, v in correlations.items()},
               "mean_delta": {m: _mean(cmp[f"delta_{m}"]) for m in ("confidence", "variability", "correctness_frac",
                                                                     "forgetfulness")},
               "never_learned": {"weak": int(cmp["weak_never_learned"].sum()),
                                 "strong": int(cmp["strong_never_learned"].sum())},
               "transitions": {r: {c: int(table.loc[r, c]) for c in table.columns} for r in table.index}}
    fileio.write_json(paths["summary"], summary)
    return paths


def _mean(s: pd.Series) -> float | None:
    v = s.to_numpy(float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else None

