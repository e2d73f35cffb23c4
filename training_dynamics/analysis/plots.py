"""Data maps (Swayamdipta et al., 2020): variability on x, confidence on y, one point per example.

Every function takes a td_metrics-style ``pandas.DataFrame`` (one row per example, columns
``guid, confidence, variability, correctness, ...``) and returns a matplotlib ``Figure``; nothing
here needs a display (Agg-safe) or seaborn. Loading a run folder or a metrics file for plotting is
:func:`training_dynamics.analysis.run.load_metrics`.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from training_dynamics.core import fileio
from training_dynamics import web
from training_dynamics.core.errors import TrainingDynamicsError
from training_dynamics.core.ids import as_guids

logger = logging.getLogger(__name__)

#: colormap of the correctness bins (0 = never correct ... 1 = always correct); perceptually uniform
CORRECTNESS_CMAP = "plasma"
CORRECTNESS_CMAP_RANGE = (0.0, 0.82)  # stop before plasma's pale yellow, which vanishes on white
#: colormap for a continuous ``hue`` column
CONTINUOUS_CMAP = "viridis"
#: one marker per correctness bin (cycled when there are more bins than markers)
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "p", "h", "*", "<", ">")
NEVER_LEARNED_COLOR = "#b0b0b0"
#: categorical palettes, in order of preference: the first one with enough colours is used (tab20b/c after tab20)
CATEGORY_CMAPS = ("tab10", "tab20", "tab20b", "tab20c")
#: label-id columns coloured as categories however many labels there are (13 NER tags, say)
LABEL_COLUMNS = ("gold", "last_pred")
#: a legend of up to this many entries goes under the map in one row; a longer one in a column at its right
LEGEND_BELOW_MAX = 11
REGION_LABELS = {"easy": "easy-to-learn", "ambiguous": "ambiguous", "hard": "hard-to-learn"}
#: (kept for compatibility: region names are now kept apart by their own sizes, see label_half_sizes)
REGION_LABEL_GAP = (0.3, 0.09)
#: half the width and height (fraction of the axes) of the box a region name covers: most examples under it are
#: of that region (at least LABEL_PURITY of them where the map allows)
LABEL_BOX = (0.1, 0.035)
LABEL_PURITY = 0.8
LABEL_SAMPLE = 5000  #: examples looked at to place the names (a seeded sample of bigger maps)
LABEL_CANDIDATES = 600  #: places tried per region
LABEL_NEIGHBOURS = 15  #: the examples nearest to a name's centre that count towards its purity
#: ``style="auto"`` draws a density map (hexagons) from this many points on: millions of markers take minutes
#: to draw and hide each other anyway
DENSITY_FROM = 1_000_000
DENSITY_CMAP = "magma_r"
MAP_STYLES = ("auto", "scatter", "density")
#: the interactive page holds at most this many points (a seeded sample; the page says so)
INTERACTIVE_MAX_POINTS = 100_000


# --------------------------------------------------------------------------- correctness bins
def correctness_levels(num_epochs: int) -> np.ndarray:
    """(E+1,) correctness fractions 0, 1/E, ..., 1 — one bin per possible number of correct epochs."""
    if int(num_epochs) < 1:
        raise TrainingDynamicsError(f"num_epochs must be >= 1, not {num_epochs}")
    return np.arange(int(num_epochs) + 1) / int(num_epochs)


def correctness_labels(num_epochs: int) -> list[str]:
    """Legend labels of the E+1 correctness bins: ``0.0, 0.25, 0.5, 0.75, 1.0`` for E=4."""
    out = []
    for v in correctness_levels(num_epochs):
        s = f"{v:.2f}".rstrip("0")
        out.append(s + "0" if s.endswith(".") else s)
    return out


def correctness_bins(correctness: Sequence[float] | np.ndarray, num_epochs: int, *, averaged: bool = False) -> np.ndarray:
    """(N,) int bin of each example: its number of correct epochs, 0..E.

    ``correctness`` is a count of correct epochs (N,). Bins are fixed by ``num_epochs`` (E), not by the
    observed maximum, so a run where nobody is right every epoch still has an empty 1.0 bin.
    ``averaged``: the mean count over several runs, binned to its nearest whole count (halves up).
    """
    c = np.asarray(correctness, dtype=float)
    if c.size and not np.isfinite(c).all():
        raise TrainingDynamicsError("correctness has missing or non-finite values")
    if averaged:
        c = np.floor(c + 0.5 + 1e-9)
    k = np.rint(c).astype(np.int64)
    if c.size and (np.abs(c - k) > 1e-6).any():
        raise TrainingDynamicsError("correctness must count correct epochs (whole numbers); "
                         f"got e.g. {c[np.abs(c - k) > 1e-6][0]}")
    if c.size and (k.min() < 0 or k.max() > num_epochs):
        raise TrainingDynamicsError(f"correctness {k.max() if k.max() > num_epochs else k.min()} is outside 0..{num_epochs} "
                         f"(num_epochs={num_epochs}); pass the run's number of epochs (--num_epochs / --burn_out)")
    return k


def correctness_colors(num_epochs: int) -> np.ndarray:
    """(E+1, 4) RGBA colour of each correctness bin, dark blue (never correct) to orange (always)."""
    import matplotlib

    lo, hi = CORRECTNESS_CMAP_RANGE
    return matplotlib.colormaps[CORRECTNESS_CMAP](lo + (hi - lo) * correctness_levels(num_epochs))


def category_colors(n: int) -> np.ndarray:
    """(n, 4) RGBA colours, all different: tab10 up to 10 categories, tab20 up to 20, then tab20b and tab20c
    (60 in all), then evenly spaced hues. 13 NER tags get 13 colours, never one twice."""
    import matplotlib

    pool = list(matplotlib.colormaps["tab10" if n <= 10 else "tab20"].colors)
    if n > 20:
        pool += list(matplotlib.colormaps["tab20b"].colors) + list(matplotlib.colormaps["tab20c"].colors)
    if n > len(pool):
        pool = [matplotlib.colors.hsv_to_rgb((h, 0.75, 0.85)) for h in np.linspace(0, 1, n, endpoint=False)]
    return np.column_stack([np.asarray(pool[:n], dtype=float).reshape(n, 3), np.ones(n)])


def infer_num_epochs(df: pd.DataFrame) -> int:
    """E from ``df.attrs["num_epochs"]`` (set by :func:`training_dynamics.analysis.run.load_metrics`), else the observed maximum
    correctness (with a warning: a run where no example is always correct then looks wrong)."""
    if df.attrs.get("num_epochs"):
        return int(df.attrs["num_epochs"])
    if "correctness" not in df or not len(df):
        raise TrainingDynamicsError("cannot tell the number of epochs: pass num_epochs")
    e = int(np.nanmax(df["correctness"].to_numpy(float)))
    logger.warning("number of epochs not given; assuming %d, the largest correctness observed", max(e, 1))
    return max(e, 1)


# --------------------------------------------------------------------------- regions
def region_label_positions(df: pd.DataFrame, *, proportion: float = 0.33) -> dict[str, tuple[float, float]]:
    """Where each region's name goes: the median (variability, confidence) of the region's own
    examples (:func:`training_dynamics.analysis.selection.region_of`, ``proportion`` of the examples each),
    so a name sits on its points whatever shape the map has. A region with no example gets none.
    Rows without a ``guid`` column are numbered by position."""
    from training_dynamics.analysis.selection import region_of

    if not len(df):
        return {}
    return _positions_in(df, region_of(_with_row_ids(df), proportion=proportion))


def _with_row_ids(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` whose ``guid`` names each row once: its own guids when they do, else the row numbers (a word map's
    rows share their sentence's guid; without a ``guid`` column rows are numbered by position)."""
    return df if "guid" in df and df["guid"].is_unique else df.assign(guid=np.arange(len(df)))


def _annotate_regions(ax, colors: dict[str, object], positions: dict[str, tuple[float, float]], *,
                      fontsize: float = 11) -> None:
    """Boxed region names at ``positions`` (data coordinates, see :func:`region_label_positions`);
    names whose boxes would overlap are moved apart vertically."""
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    sizes = label_half_sizes(ax, fontsize)
    placed: list[tuple[float, float, str]] = []
    for name, (x, y) in positions.items():
        fx, fy = (x - x0) / (x1 - x0), (y - y0) / (y1 - y0)
        for px, py, other in placed:
            if abs(fx - px) < sizes[name][0] + sizes[other][0] and abs(fy - py) < sizes[name][1] + sizes[other][1]:
                gap = sizes[name][1] + sizes[other][1] + 0.005
                fy = py - gap if fy <= py else py + gap
        fy = min(max(fy, 0.04), 0.96)
        placed.append((fx, fy, name))
        ax.annotate(REGION_LABELS[name], xy=(min(max(fx, 0.08), 0.92), fy), xycoords="axes fraction", ha="center",
                    va="center", fontsize=fontsize, color="black", zorder=5,
                    bbox=dict(boxstyle="round,pad=0.3", ec=colors[name], lw=2, fc="white", alpha=0.8))


def join_column(df: pd.DataFrame, values: pd.Series, *, where: str = "the file") -> pd.DataFrame:
    """``df`` with ``values`` (a Series indexed by guid, e.g. from :func:`training_dynamics.core.data.load_column`)
    as a column named ``values.name``, matched by guid; examples it has no value for get a missing
    value (drawn grey). Refuses values that match no example of ``df``."""
    guids = as_guids(df["guid"])
    index = as_guids(values.index)
    matched = np.isin(guids, index)
    if not matched.any():
        raise ValueError(f"{where}: none of its ids is an example of the run (first ids: "
                         f"{', '.join(map(str, index[:3].tolist()))} vs {', '.join(map(str, guids[:3].tolist()))}); "
                         "is it the file the run was trained on?")
    if not matched.all():
        logger.warning("%s has no %r for %d of the %d examples (drawn grey)", where, values.name,
                       int((~matched).sum()), len(df))
    if values.name in df:
        logger.warning("%s: its column %r replaces the run's column of that name", where, values.name)
    column = pd.Series(values.to_numpy(), index=index).reindex(guids)
    return df.assign(**{str(values.name): column.to_numpy()})


# --------------------------------------------------------------------------- drawing
def _marker_size(n: int) -> float:
    """Scatter marker area: 30 pt² for small sets, shrinking with sqrt(N) so 400k points stay legible."""
    return float(np.clip(30.0 * np.sqrt(2000.0 / max(n, 1)), 1.0, 30.0))


def _hue_kind(df: pd.DataFrame, hue: str) -> str:
    if hue == "correctness":
        return "correctness"
    s = df[hue]
    if s.dtype == bool or not pd.api.types.is_numeric_dtype(s):
        return "categorical"
    if pd.api.types.is_integer_dtype(s) and (s.nunique() <= 10 or hue in LABEL_COLUMNS) and hue != "forgetfulness":
        return "categorical"
    return "continuous"


def _hue_values(df: pd.DataFrame, hue: str) -> np.ndarray:
    """Values of a continuous hue column; the never-learned forgetfulness sentinel becomes NaN."""
    v = df[hue].to_numpy(float).copy()
    if hue == "forgetfulness":
        nl = df["never_learned"].to_numpy(bool) if "never_learned" in df else v >= 1000
        v[nl] = np.nan
    return v


def _marker_paths(markers: Sequence[str]) -> list:
    """Matplotlib paths of marker symbols, to mix several markers in one scatter collection."""
    from matplotlib.markers import MarkerStyle

    out = []
    for m in markers:
        ms = MarkerStyle(m)
        out.append(ms.get_path().transformed(ms.get_transform()))
    return out


def _scatter_mixed(ax, x, y, colors, codes, n_codes: int, *, order: np.ndarray, **kw):
    """One rasterised scatter whose point i has colour ``colors[codes[i]]`` and marker ``MARKERS[codes[i]]``,
    drawn in ``order`` (a seeded shuffle, so no group systematically hides another)."""
    paths = _marker_paths([MARKERS[k % len(MARKERS)] for k in range(n_codes)])
    x, y, codes = x[order], y[order], codes[order]
    sc = ax.scatter(x, y, c=np.asarray(colors)[codes], **kw)
    sc.set_paths([paths[k] for k in codes])
    return sc


def _draw_map(ax, df: pd.DataFrame, *, hue: str, kind: str, num_epochs: int | None, size: float,
              alpha: float, norm=None, label_names: Sequence[str] | None = None, legend: bool | str = True,
              seed: int = 42):
    """Scatter one data map into ``ax``; returns the mappable of a continuous hue (else None)."""
    import matplotlib
    from matplotlib.lines import Line2D

    x, y = df["variability"].to_numpy(float), df["confidence"].to_numpy(float)
    order = np.random.default_rng(seed).permutation(len(x))
    common = dict(s=size, linewidths=0, alpha=alpha, rasterized=True)
    mappable = None
    handles, legend_title = [], None
    if kind == "correctness":
        codes = correctness_bins(df["correctness"].to_numpy(), num_epochs, averaged=bool(df.attrs.get("num_runs")))
        colors, labels = correctness_colors(num_epochs), correctness_labels(num_epochs)
        _scatter_mixed(ax, x, y, colors, codes, num_epochs + 1, order=order, **common)
        handles = [Line2D([], [], ls="", marker=MARKERS[k % len(MARKERS)], color=colors[k], markersize=7,
                          label=labels[k]) for k in range(num_epochs + 1)]
        legend_title = "correctness"
    elif kind == "categorical":
        vals = df[hue]
        cats = sorted(vals.dropna().unique().tolist(), key=lambda v: (str(type(v)), v))
        colors = [tuple(c) for c in category_colors(len(cats))] + [matplotlib.colors.to_rgba(NEVER_LEARNED_COLOR)]
        codes = np.full(len(df), len(cats), np.int64)  # missing values: grey
        for i, c in enumerate(cats):
            codes[(vals == c).to_numpy()] = i
        _scatter_mixed(ax, x, y, colors, codes, len(cats) + 1, order=order, **common)
        for i, c in enumerate(cats):
            name = (label_names[int(c)] if label_names is not None and hue in ("gold", "last_pred")
                    and 0 <= int(c) < len(label_names) else str(c))
            handles.append(Line2D([], [], ls="", marker=MARKERS[i % len(MARKERS)], color=colors[i],
                                  markersize=7, label=name))
        if (codes == len(cats)).any():  # e.g. examples a user's column has no value for
            handles.append(Line2D([], [], ls="", marker=MARKERS[len(cats) % len(MARKERS)], color=colors[-1],
                                  markersize=7, label="no value"))
        legend_title = hue
    else:
        v = _hue_values(df, hue)
        bad = ~np.isfinite(v)
        if bad.any():
            ax.scatter(x[bad], y[bad], color=NEVER_LEARNED_COLOR, marker="x", **common)
            what = "never learned" if hue == "forgetfulness" else f"no {hue}"
            handles = [Line2D([], [], ls="", marker="x", color=NEVER_LEARNED_COLOR, label=what)]
        o = order[~bad[order]]
        mappable = ax.scatter(x[o], y[o], c=v[o], cmap=CONTINUOUS_CMAP, norm=norm, **common)
    if legend and handles:  # below the map, so it never hides points
        if legend == "figure":  # a grid of panels: one legend under them all
            ax.figure.legend(handles=handles, title=legend_title, loc="outside lower center", fontsize=9,
                             title_fontsize=9, frameon=False, ncol=min(len(handles), 8))
        elif len(handles) > LEGEND_BELOW_MAX:  # many categories (NER tags): one column at the right
            ax.legend(handles=handles, title=legend_title, loc="center left", bbox_to_anchor=(1.02, 0.5),
                      fontsize=9, title_fontsize=9, frameon=False, ncol=1 + len(handles) // 25)
        else:
            ax.legend(handles=handles, title=legend_title, loc="upper center", bbox_to_anchor=(0.5, -0.1),
                      fontsize=9, title_fontsize=9, frameon=False, ncol=len(handles))
    ax.set_xlabel("variability")
    ax.set_ylabel("confidence")
    ax.grid(True, lw=0.4, alpha=0.5)
    return mappable


def _draw_density(ax, df: pd.DataFrame, *, gridsize: int = 120, vmax: float | None = None):
    """Hexagonal bins of the data map, coloured by the number of examples in each (log scale)."""
    x, y = df["variability"].to_numpy(float), df["confidence"].to_numpy(float)
    hb = ax.hexbin(x, y, gridsize=gridsize, bins="log", mincnt=1, cmap=DENSITY_CMAP, linewidths=0,
                   extent=(0.0, max(float(np.nanmax(x)) if len(x) else 0.5, 0.05), 0.0, 1.0), vmax=vmax,
                   rasterized=True)
    ax.set_xlabel("variability")
    ax.set_ylabel("confidence")
    ax.grid(True, lw=0.4, alpha=0.5)
    return hb


def map_style(style: str, num_points: int) -> str:
    """``scatter`` or ``density``: ``auto`` is a density map from :data:`DENSITY_FROM` points on."""
    if style not in MAP_STYLES:
        raise TrainingDynamicsError(f"unknown map style {style!r}; choose one of {', '.join(MAP_STYLES)}")
    if style == "auto":
        return "density" if num_points >= DENSITY_FROM else "scatter"
    return style


def _draw_histograms(axes, df: pd.DataFrame, num_epochs: int | None) -> None:
    """Side panels as in the paper: confidence, variability and correctness counts."""
    a1, a2, a3 = axes
    conf, var = df["confidence"].to_numpy(float), df["variability"].to_numpy(float)
    h, edges = np.histogram(conf, bins=40, range=(0.0, 1.0))
    a1.stairs(h, edges, fill=True, color="#622a87", alpha=0.85)
    a1.set_xlabel("confidence")
    hi = max(float(np.nanmax(var)) if len(var) else 0.5, 1e-6)
    h, edges = np.histogram(var, bins=40, range=(0.0, hi))
    a2.stairs(h, edges, fill=True, color="teal", alpha=0.85)
    a2.set_xlabel("variability")
    if num_epochs is not None and "correctness" in df:
        counts = np.bincount(correctness_bins(df["correctness"].to_numpy(), num_epochs, averaged=bool(df.attrs.get("num_runs"))), minlength=num_epochs + 1)
        labels = correctness_labels(num_epochs)
        a3.bar(np.arange(num_epochs + 1), counts, color=correctness_colors(num_epochs), width=0.8)
        a3.set_xticks(np.arange(num_epochs + 1), labels, rotation=0 if num_epochs <= 8 else 90, fontsize=8)
        a3.set_xlabel("correctness")
    else:
        a3.set_visible(False)
    for a in axes:
        a.set_ylabel("count")
        a.grid(True, lw=0.4, alpha=0.5)
        a.tick_params(labelsize=8)


def plot_data_map(
    df: pd.DataFrame,
    *,
    hue: str = "correctness",
    num_epochs: int | None = None,
    show_hist: bool = False,
    title: str | None = None,
    max_points: int | None = None,
    seed: int = 42,
    facet_by_gold: bool = False,
    label_names: Sequence[str] | None = None,
    region_labels: bool = True,
    ax=None,
    style: str = "auto",
):
    """Draw the data map of ``df`` and return the matplotlib ``Figure``.

    Args:
        df: one row per example (N rows) with ``variability``, ``confidence`` and the ``hue`` column
            (``gold`` for ``facet_by_gold``; ``correctness`` for the histograms).
        hue: ``"correctness"`` (default: E+1 bins of correct epochs / E, a colour and marker per bin),
            or any other column: numeric -> continuous colormap + colorbar, bool/labels -> categories.
        num_epochs: E, the number of epochs the metrics cover (fixes the correctness bins); default
            ``df.attrs["num_epochs"]``, else the largest correctness seen (logged as a warning).
        show_hist: add side panels with the confidence, variability and correctness histograms.
        title: figure title (e.g. ``"SST-2-RoBERTa Data Map"``), wrapped to fit the figure (:func:`fit_title`).
            A map over 1 or 2 epochs (``num_epochs``) also gets a note saying what that means
            (:data:`FEW_EPOCHS_NOTES`).
        max_points: draw a seeded random subsample of at most this many points (the histograms
            still count all rows). Default: every point.
        facet_by_gold: one data map per gold label, in a grid (:func:`facet_grid_shape`: up to 3 side by side).
        label_names: names of the label ids, for facet titles and ``hue="gold"``/``"last_pred"``.
        region_labels: name the easy-to-learn, ambiguous and hard-to-learn regions on the map, each
            over its own examples (:func:`region_label_positions`); ``False`` leaves them out.
        ax: draw into this axes (no histograms, no facets); default a new figure.
        style: ``"scatter"`` (a marker per example, coloured by ``hue``), ``"density"`` (hexagonal
            bins coloured by how many examples fall in each, log scale: drawn in seconds for
            millions of examples; ``hue`` is not shown) or ``"auto"`` (density from
            :data:`DENSITY_FROM` points on).
    """
    df = _checked_map_input(df, hue=hue, facet_by_gold=facet_by_gold, several_panels=show_hist or facet_by_gold,
                            ax=ax)
    kind = _hue_kind(df, hue)
    if num_epochs is None and "correctness" in df and (kind == "correctness" or show_hist):
        num_epochs = infer_num_epochs(df)
    if kind == "correctness" or (show_hist and "correctness" in df):
        correctness_bins(df["correctness"].to_numpy(), num_epochs, averaged=bool(df.attrs.get("num_runs")))  # validate once, early
    shown = _sample(df, max_points, seed)
    density = map_style(style, len(shown)) == "density"
    if density and hue != "correctness":
        logger.info("density map: colour = examples per hexagon, not %s (style='scatter' to colour by it)", hue)
    if facet_by_gold:
        panels = [(g, shown[shown["gold"] == g], df[df["gold"] == g]) for g in sorted(shown["gold"].unique().tolist())]
    else:
        panels = [(None, shown, df)]
    fig, map_axes, hist_axes = _map_layout(len(panels), ax=ax, show_hist=show_hist)
    norm, region_colors = _map_colors(shown, hue=hue, kind=kind, num_epochs=num_epochs, density=density)
    region = None
    if region_labels:  # the regions of the whole run; each panel names them over its own points
        from training_dynamics.analysis.selection import region_of

        region = region_of(_with_row_ids(df))
    size, alpha = _marker_size(len(shown)), 0.9 if len(shown) <= 5000 else 0.6
    xmax = max(float(np.nanmax(shown["variability"].to_numpy(float))) * 1.06, 0.05)
    mappable = first_note = None
    nrow, ncol = facet_grid_shape(len(map_axes))
    for i, (a, (g, part, full)) in enumerate(zip(map_axes, panels)):
        if density:
            m = _draw_density(a, part)
        else:
            m = _draw_map(a, part, hue=hue, kind=kind, num_epochs=num_epochs, size=size, alpha=alpha, norm=norm,
                          label_names=label_names, legend=(i == 0) and ("figure" if nrow > 1 else True), seed=seed)
        mappable = mappable or m
        _finish_panel(a, first=i % ncol == 0, gold=g, n=len(full), label_names=label_names, xmax=xmax)
        note = None
        if num_epochs is not None and num_epochs <= 2:  # before the region names, which keep clear of it
            note = _few_epochs_note(a, num_epochs, part, fontsize=8 if nrow == 1 else 7)
            first_note = first_note if i else note
        if region is not None:
            fontsize = 11 if nrow == 1 else 9
            _annotate_regions(a, region_colors, _positions_in(full, region.loc[full.index], xlim=a.get_xlim(),
                                                              ylim=a.get_ylim(), seed=seed,
                                                              sizes=label_half_sizes(a, fontsize),
                                                              avoid=[note] if note else ()),
                              fontsize=fontsize)
    if mappable is not None:
        cb = fig.colorbar(mappable, ax=map_axes, shrink=0.85, pad=0.01)
        cb.set_label("examples per hexagon" if density else
                     hue + (" (never learned in grey)" if hue == "forgetfulness" else ""))
    if len(shown) < len(df):
        low_right = first_note is not None and first_note[0] > 0.5 and first_note[1] < 0.5  # the note is there
        map_axes[0].text(0.99, first_note[1] + first_note[3] + 0.01 if low_right else 0.01, f"{len(shown):,} of {len(df):,} examples shown", transform=map_axes[0].transAxes,
                         ha="right", va="bottom", fontsize=8, color="0.3")
    if hist_axes is not None:
        _draw_histograms(hist_axes, df, num_epochs if "correctness" in df else None)
    if title:
        t = (fig.suptitle if (facet_by_gold or show_hist) and ax is None else map_axes[0].set_title)(title, fontsize=14)
        fit_title(t)
    return fig


#: what a map resting on one or two epochs says about itself
FEW_EPOCHS_NOTES = {
    1: "1 epoch: variability is 0 for every example, so there is no\nambiguous region; record 2 or more epochs",
    2: "2 epochs: variability is half the gap between the two epochs'\nprobabilities, so the points fall on lines; "
       "record 3 or more\nepochs for a map that shows how examples vary",
}


def _few_epochs_note(ax, num_epochs: int, df: pd.DataFrame, *, fontsize: float = 8) -> tuple[float, float, float, float]:
    """The note of :data:`FEW_EPOCHS_NOTES` in the corner of the map with the fewest of ``df``'s examples under it
    (on a classification map the lower right one is empty: an example of low confidence cannot vary much);
    returns its box as ``(centre x, centre y, half width, half height)`` in fractions of the axes."""
    text = ax.text(0.99, 0.015, FEW_EPOCHS_NOTES[int(num_epochs)], transform=ax.transAxes, ha="right", va="bottom",
                   fontsize=fontsize, color="0.15", zorder=6, gid="few_epochs_note",
                   bbox=dict(boxstyle="round,pad=0.3", ec="0.6", fc="#fff8e1", alpha=0.9))
    box = text.get_window_extent(ax.figure.canvas.get_renderer())
    w, h = box.width / max(ax.bbox.width, 1.0), box.height / max(ax.bbox.height, 1.0)
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    fx = (df["variability"].to_numpy(float) - x0) / (x1 - x0)
    fy = (df["confidence"].to_numpy(float) - y0) / (y1 - y0)
    corners = [(0.99, 0.015, "right", "bottom"), (0.99, 0.985, "right", "top"), (0.01, 0.015, "left", "bottom"),
               (0.01, 0.985, "left", "top")]

    def under(c):
        cx0 = c[0] - w if c[2] == "right" else c[0]
        cy0 = c[1] - h if c[3] == "top" else c[1]
        return int(((fx >= cx0 - 0.01) & (fx <= cx0 + w + 0.01) & (fy >= cy0 - 0.01) & (fy <= cy0 + h + 0.01)).sum())

    cx, cy, ha, va = min(corners, key=under)  # the first of the emptiest: lower right when it is empty
    text.set_position((cx, cy))
    text.set_horizontalalignment(ha)
    text.set_verticalalignment(va)
    return (cx - w / 2 if ha == "right" else cx + w / 2, cy + h / 2 if va == "bottom" else cy - h / 2, w / 2, h / 2)


def fit_title(text) -> None:
    """Wrap a title (a matplotlib ``Text``) at word boundaries until it is no wider than its figure, so a long
    one ("... Sentence Map (each sentence at its least confident word)") is never cut at the edges."""
    import textwrap

    fig = text.get_figure()
    renderer = fig.canvas.get_renderer()
    words = text.get_text()
    # an axes title is centred over its axes, which the y label pushes right: it gets less of the width
    limit = (0.96 if text is getattr(fig, "_suptitle", None) else 0.84) * fig.bbox.width
    width = len(words)
    while text.get_window_extent(renderer).width > limit and width > 10:
        width = int(width * 0.8)
        text.set_text(textwrap.fill(words, width=width, break_long_words=False))


def _checked_map_input(df: pd.DataFrame, *, hue: str, facet_by_gold: bool, several_panels: bool, ax) -> pd.DataFrame:
    """``df`` with a unique index, or a one-line error naming the missing column."""
    if not len(df):
        raise TrainingDynamicsError("no examples to plot")
    for col in ("confidence", "variability"):
        if col not in df:
            raise TrainingDynamicsError(f"metrics have no {col!r} column (columns: {', '.join(map(str, df.columns))})")
    if hue not in df:
        raise TrainingDynamicsError(f"unknown hue column {hue!r}; choose one of: {', '.join(map(str, df.columns))}")
    if facet_by_gold and "gold" not in df:
        raise TrainingDynamicsError("facet_by_gold needs a 'gold' column in the metrics")
    if ax is not None and several_panels:
        raise ValueError("show_hist and facet_by_gold draw several panels: call with ax=None")
    return df if df.index.is_unique else df.reset_index(drop=True)


def _sample(df: pd.DataFrame, max_points: int | None, seed: int) -> pd.DataFrame:
    """A seeded random subsample of at most ``max_points`` rows (all rows when ``None``)."""
    if max_points is None or len(df) <= max_points:
        return df
    logger.info("plotting a random %d of %d examples (seed %d)", max_points, len(df), seed)
    return df.sample(n=int(max_points), random_state=seed)


def facet_grid_shape(n: int) -> tuple[int, int]:
    """``(rows, columns)`` of ``n`` facets: one row up to 3, then a grid about 1.5 times as wide as tall
    (13 NER tags: 3 rows of 5), never one endless row."""
    if n <= 3:
        return 1, max(n, 1)
    ncol = min(n, int(np.ceil(np.sqrt(1.5 * n))))
    return int(np.ceil(n / ncol)), ncol


def _map_layout(npanel: int, *, ax, show_hist: bool):
    """``(figure, map axes, histogram axes or None)``: ``npanel`` maps in a grid (:func:`facet_grid_shape`),
    histograms in a column at the right; grid cells past the last map are left out."""
    import matplotlib.pyplot as plt

    if ax is not None:
        return ax.figure, [ax], None
    nrow, ncol = facet_grid_shape(npanel)
    if npanel == 1:
        w, h = 8.0, 6.0
    else:  # smaller panels as the grid grows, so that 13 tags fit a screen
        w, h = (7.5, 6.0) if nrow == 1 else (4.6, 4.0)
    fig = plt.figure(figsize=(w * ncol + (3.6 if show_hist else 0) + (0.0 if npanel == 1 else 0.5),
                              h * nrow + (2.5 if show_hist and nrow == 1 else 0.8 if nrow > 1 else 0)),
                     layout="constrained")
    gs = fig.add_gridspec(3 * nrow, ncol + 1 if show_hist else ncol,
                          width_ratios=[4] * ncol + [1.6] if show_hist else None)
    map_axes: list = []
    for i in range(npanel):
        row, col = divmod(i, ncol)
        share = dict(sharex=map_axes[0], sharey=map_axes[0]) if map_axes else {}
        map_axes.append(fig.add_subplot(gs[3 * row:3 * row + 3, col], **share))
    if not show_hist:
        return fig, map_axes, None
    return fig, map_axes, [fig.add_subplot(gs[i * nrow:(i + 1) * nrow, ncol]) for i in range(3)]


def _map_colors(shown: pd.DataFrame, *, hue: str, kind: str, num_epochs: int | None, density: bool):
    """``(norm, region colours)``: the colour scale of a continuous hue and the region names' colours."""
    import matplotlib

    norm = None
    if kind == "continuous":
        v = _hue_values(shown, hue)
        v = v[np.isfinite(v)]
        norm = matplotlib.colors.Normalize(*(np.nanmin(v), np.nanmax(v)) if v.size else (0, 1))
    if kind == "correctness" and not density:
        c = correctness_colors(num_epochs)
        return norm, {"easy": c[-1], "hard": c[0], "ambiguous": "black"}
    return norm, {"easy": "#c0392b", "hard": "#1f4e9c", "ambiguous": "black"}


def _finish_panel(a, *, first: bool, gold, n: int, label_names: Sequence[str] | None, xmax: float) -> None:
    """Title of a gold facet, and the same limits on every panel (confidence 0..1, variability 0..xmax)."""
    if gold is not None:
        name = label_names[int(gold)] if label_names is not None and 0 <= int(gold) < len(label_names) else str(gold)
        a.set_title(f"gold = {name} (n={n:,})", fontsize=11)
    if not first:
        a.set_ylabel("")
    a.set_ylim(-0.03, 1.03)
    a.set_xlim(-0.01, xmax)


def label_half_sizes(ax, fontsize: float = 11) -> dict[str, tuple[float, float]]:
    """Half the width and height of each boxed region name in ``ax``, as fractions of the axes."""
    w_pt = max(ax.bbox.width * 72.0 / ax.figure.dpi, 1.0)
    h_pt = max(ax.bbox.height * 72.0 / ax.figure.dpi, 1.0)
    pad = 2 * 0.3 * fontsize + 2  # the box's padding on both sides and its edge
    return {name: ((0.58 * fontsize * len(text) + pad) / 2 / w_pt, (1.2 * fontsize + pad) / 2 / h_pt)
            for name, text in REGION_LABELS.items()}


def _positions_in(df: pd.DataFrame, region: pd.Series, *, xlim: tuple[float, float] | None = None,
                  ylim: tuple[float, float] | None = None, seed: int = 0,
                  sizes: dict[str, tuple[float, float]] | None = None,
                  avoid: Sequence[tuple[float, float, float, float]] = ()) -> dict[str, tuple[float, float]]:
    """:func:`region_label_positions` with the regions already known (one panel of a faceted map).

    Each name goes on an example of its own region where the examples under the name's box, and those nearest
    to its centre, are mostly of that region -- as near as possible to where the region is typical (easy: high
    in its confidence, hard: low, ambiguous: far right in its variability) and clear of the other names (the
    region with the fewest such places is served first). So on a map whose points crowd one corner
    (WinoGrande's, say) the names still sit each inside its region, not on one another.
    ``xlim``/``ylim``: the axes' limits (default: the map's, see :func:`_finish_panel`); ``sizes``: each name's
    half width and height as fractions of the axes (:func:`label_half_sizes`; default :data:`LABEL_BOX`);
    ``avoid``: boxes already on the map, ``(centre x, centre y, half width, half height)`` in fractions of the axes."""
    x, y, r = df["variability"].to_numpy(float), df["confidence"].to_numpy(float), region.to_numpy()
    ok = np.isfinite(x) & np.isfinite(y)
    x, y, r = x[ok], y[ok], r[ok]
    if not len(x):
        return {}
    x0, x1 = xlim if xlim is not None else (-0.01, max(float(x.max()) * 1.06, 0.05))
    y0, y1 = ylim if ylim is not None else (-0.03, 1.03)
    rng = np.random.default_rng(seed)
    keep = rng.permutation(len(x))[:LABEL_SAMPLE] if len(x) > LABEL_SAMPLE else np.arange(len(x))
    fx, fy, r = (x[keep] - x0) / (x1 - x0), (y[keep] - y0) / (y1 - y0), r[keep]
    sizes = sizes or {name: LABEL_BOX for name in REGION_LABELS}
    options = {}
    for name in ("easy", "hard", "ambiguous"):
        mine = np.flatnonzero(r == name)
        if not mine.size:
            continue
        hw, hh = sizes[name]
        inner = mine[(fx[mine] >= hw + 0.01) & (fx[mine] <= 1 - hw - 0.01) & (fy[mine] >= hh + 0.01)
                     & (fy[mine] <= 1 - hh - 0.01)]
        cand = inner if inner.size else mine
        if cand.size > LABEL_CANDIDATES:
            cand = rng.choice(cand, LABEL_CANDIDATES, replace=False)
        cx, cy = fx[cand], fy[cand]
        dx, dy = np.abs(cx[:, None] - fx[None, :]), np.abs(cy[:, None] - fy[None, :])
        inside = (dx <= hw) & (dy <= hh)
        ours = r[None, :] == name
        # half: the examples under the name's box; half: the examples nearest to its centre (a thin band of a
        # region, as the ambiguous one of a crowded map, never fills the whole box)
        k = min(LABEL_NEIGHBOURS, len(fx))
        nearest = np.argpartition(np.hypot(dx, dy), k - 1, axis=1)[:, :k]
        purity = 0.5 * (inside & ours).sum(1) / np.maximum(inside.sum(1), 1) + 0.5 * ours[0, nearest].mean(1)
        tx, ty = {"easy": (np.quantile(fx[mine], 0.4), np.quantile(fy[mine], 0.75)),
                  "hard": (np.quantile(fx[mine], 0.5), np.quantile(fy[mine], 0.15)),
                  "ambiguous": (np.quantile(fx[mine], 0.75), np.quantile(fy[mine], 0.5))}[name]
        # the purest places first (in steps of 10%, all good ones alike), then the nearest to the target
        score = np.floor(np.minimum(purity, LABEL_PURITY) * 10 + 1e-9) * 10 - np.hypot(cx - tx, cy - ty)
        options[name] = (cx, cy, score, int((purity >= LABEL_PURITY).sum()))
    placed: dict[str, tuple[float, float]] = {}
    for name in sorted(options, key=lambda n: options[n][3]):  # the most constrained region first
        cx, cy, score, _ = options[name]
        hw, hh = sizes[name]
        clash = np.zeros(len(cx), bool)
        for px, py, ow, oh in [(*placed[o], *sizes[o]) for o in placed] + list(avoid):
            clash |= (np.abs(cx - px) < hw + ow + 0.01) & (np.abs(cy - py) < hh + oh + 0.005)
        best = int(np.argmax(np.where(clash, score - 1000.0, score)))  # clear of the others where it can be
        placed[name] = (float(cx[best]), float(cy[best]))
    return {name: (x0 + px * (x1 - x0), y0 + py * (y1 - y0)) for name, (px, py) in placed.items()}


# --------------------------------------------------------------------------- saving
def save_figure(fig, stem: str | os.PathLike, *, formats: Sequence[str] = ("png", "pdf"), dpi: int = 150) -> list[Path]:
    """Save ``fig`` as ``<stem>.<fmt>`` for each format, atomically; returns the paths written."""
    paths = []
    for fmt in formats:
        path = Path(f"{stem}.{fmt}")
        with fileio.atomic_write(path, "wb") as fh:
            fig.savefig(fh, format=fmt, dpi=dpi)
        paths.append(path)
    return paths


def file_stem(text: str) -> str:
    """A safe file-name part: ``"SST-2 / bert tiny"`` -> ``"SST-2_bert_tiny"``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "run"


# --------------------------------------------------------------------------- interactive
def write_interactive_html(df: pd.DataFrame, path: str | os.PathLike, *, num_epochs: int | None = None,
                           title: str = "Data Map", texts: dict[int, str] | None = None,
                           label_names: Sequence[str] | None = None, max_points: int | None = None,
                           seed: int = 42) -> Path:
    """A self-contained HTML data map (``web/data_map.html.j2``: the shared canvas component, no
    network): colour = correctness bin, with a legend, wheel zoom, drag pan and reset; hover shows
    guid, coordinates, correctness, gold and (when ``texts`` maps guid -> text) the text. At most
    ``max_points`` points (default :data:`INTERACTIVE_MAX_POINTS`): a seeded sample, which the page states."""
    from matplotlib.colors import to_hex

    num_epochs = num_epochs or infer_num_epochs(df)
    max_points = max_points or INTERACTIVE_MAX_POINTS
    shown = df.sample(n=int(max_points), random_state=seed) if len(df) > max_points else df
    shown = shown.iloc[np.random.default_rng(seed).permutation(len(shown))]
    guids = as_guids(shown["guid"])
    data = {"x": np.round(shown["variability"].to_numpy(float), 4).tolist(),
            "y": np.round(shown["confidence"].to_numpy(float), 4).tolist(),
            "k": correctness_bins(shown["correctness"].to_numpy(), num_epochs, averaged=bool(df.attrs.get("num_runs"))).tolist(),
            "guid": [str(g) for g in guids.tolist()],  # strings: 64-bit ids stay exact in JavaScript
            "colors": [to_hex(c) for c in correctness_colors(num_epochs)],
            "labels": correctness_labels(num_epochs)}
    if "gold" in shown:
        g = shown["gold"].to_numpy()
        data["gold"] = [label_names[int(v)] if label_names and 0 <= int(v) < len(label_names) else str(v) for v in g]
    if texts:
        data["text"] = [texts.get(g, "") for g in guids.tolist()]
    note = f"Showing {len(shown):,} of {len(df):,} examples." if len(shown) < len(df) else f"{len(df):,} examples."
    page = web.render("data_map.html.j2", payload=data, scripts=("data_map.js", "data_map_page.js"),
                      styles=("base.css",), title=title, note=note)
    path = Path(path)
    with fileio.atomic_write(path) as fh:
        fh.write(page)
    return path
