"""Select training subsets from per-example training-dynamics metrics (dataset cartography).

Small functions over the metrics table that :func:`training_dynamics.analysis.metrics.compute_td_metrics`
returns (one row per example, a ``guid`` column and one column per metric):

* :func:`three_regions` — the seed's hard-to-learn / easy-to-learn / ambiguous regions (docs/design.md
  "Regions"), plus a seeded random baseline of the same size;
* :func:`region_of` — the region label of every row (for plots and tables);
* :func:`select_by_metric` — the original paper's filtering: any metric, its usual order or the
  opposite (``worst``), from one end or both ends, an exact fraction;
* :func:`read_indices` / :func:`select_guids` — read an indices file and keep exactly those
  examples of a loaded training set, matched by ``guid`` (never by position).

Order conventions. Every ranking sorts by the metric and breaks ties by ascending ``guid``, so a
selection is a pure function of the table. A selection of fraction ``f`` of ``N`` examples has
exactly :func:`selection_size` ``(N, f)`` = round-half-up(f·N) members — never one more.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from training_dynamics.core import fileio
from training_dynamics.core.errors import TrainingDynamicsError
from training_dynamics.core.ids import as_guids, guid_list

logger = logging.getLogger(__name__)

GUID = "guid"
REGIONS = ("hard", "easy", "ambiguous")
INDICES_NAME = "three_regions_data_indices.json"
#: Usual (paper) order of each metric: True = ascending, i.e. the *hardest / most informative*
#: examples come first (low confidence, high variability, ...). ``worst=True`` flips it.
USUAL_ASCENDING: dict[str, bool] = {
    "confidence": True,
    "variability": False,
    "threshold_closeness": False,
    "forgetfulness": False,
    "correctness": True,
    "never_learned": False,
    "loss": False,
    "aum": True,
    "aleatoric": False,
    "el2n": False,
}


#: share of a ``both_ends`` selection taken from the front of the order (the paper's code: 0.7)
BOTH_ENDS_FRONT = 0.7

def selection_size(n: int, fraction: float) -> int:
    """Number of examples a fraction selects: round-half-up(``fraction``·``n``), within [0, n].

    ``fraction`` must lie in (0, 1]. A tiny epsilon absorbs float error (0.1·30 = 3.0000000000000004).
    """
    try:
        f = float(fraction)
    except (TypeError, ValueError):
        f = math.nan
    if not 0 < f <= 1:  # also rejects NaN
        raise TrainingDynamicsError(f"a fraction must lie in (0, 1], not {fraction!r}")
    return int(min(n, math.floor(f * n + 0.5 + 1e-9)))


def _check(df: pd.DataFrame, columns: Iterable[str]) -> None:
    missing = [c for c in (GUID, *columns) if c not in df.columns]
    if missing:
        raise TrainingDynamicsError(f"the metrics table has no column(s) {', '.join(missing)} (columns: {', '.join(map(str, df.columns))})")
    if len(df) == 0:
        raise TrainingDynamicsError("the metrics table is empty")


def _values(df: pd.DataFrame, metric: str) -> np.ndarray:
    """``metric`` as a float array (N,); booleans count as 0/1; NaN is an error."""
    col = df[metric]
    if not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
        raise TrainingDynamicsError(f"metric column {metric!r} is not numeric")
    values = col.to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        raise TrainingDynamicsError(f"metric column {metric!r} has a non-finite value at guid {df[GUID].iloc[bad[0]]}")
    return values


def rank(df: pd.DataFrame, metric: str, *, ascending: bool) -> np.ndarray:
    """Row positions (N,) of ``df`` sorted by ``metric`` (ties: ascending ``guid``)."""
    _check(df, [metric])
    values = _values(df, metric)
    guids = as_guids(df[GUID])
    return np.lexsort((guids, values if ascending else -values))


def variability_is_constant(df: pd.DataFrame) -> bool:
    """Whether every example has the same variability (0 after one epoch): a ranking by it is arbitrary."""
    v = df["variability"].to_numpy(dtype=np.float64) if "variability" in df else np.zeros(0)
    return len(v) > 1 and float(np.ptp(v)) == 0.0


def refuse_constant_variability(df: pd.DataFrame, what: str) -> None:
    """A one-line error when every example has the same variability: ``what`` would be arbitrary."""
    if variability_is_constant(df):
        raise TrainingDynamicsError(f"variability is {df['variability'].iloc[0]:g} for every example (a run of one epoch?), so "
                         f"{what} would be arbitrary; record 2 or more epochs, or select by --metric confidence")


def select_by_metric(df: pd.DataFrame, metric: str, *, fraction: float, worst: bool = False,
                     both_ends: bool = False, front_share: float = BOTH_ENDS_FRONT,
                     ascending: bool | None = None) -> list[int]:
    """Guids of the ``selection_size(N, fraction)`` examples at the front of ``metric``'s order.

    The order is the metric's usual one (:data:`USUAL_ASCENDING`: lowest confidence, highest
    variability, ... first — the paper's "most valuable for training"); ``worst=True`` reverses it
    (highest confidence first, ...); ``ascending`` forces a direction for any other numeric column.
    ``both_ends=True`` takes ``floor(front_share·k)`` from the front (70% by default, as the
    paper's ``train_dy_filtering.py``) and the rest from the back of the order, without overlap.
    Ties are broken by ascending guid. Returned in rank order (front first; with ``both_ends`` the
    front part, then the back part from the very end inward).
    """
    if ascending is None:
        if metric not in USUAL_ASCENDING:
            raise TrainingDynamicsError(f"no usual order for metric {metric!r}; choose one of {', '.join(USUAL_ASCENDING)}")
        ascending = USUAL_ASCENDING[metric]
    order = rank(df, metric, ascending=ascending != worst)
    k = selection_size(len(order), fraction)
    if both_ends:
        if not 0 <= front_share <= 1:
            raise TrainingDynamicsError(f"front_share must lie in [0, 1], not {front_share!r}")
        front = math.floor(front_share * k + 1e-9)
        chosen = np.concatenate([order[:front], order[::-1][: k - front]])
    else:
        chosen = order[:k]
    return guid_list(as_guids(df[GUID])[chosen])


def three_regions(df: pd.DataFrame, *, proportion: float = 0.33, seed: int | None = None) -> dict[str, list[int]]:
    """The seed's regions, each of ``selection_size(N, proportion)`` guids, in rank order.

    hard = lowest confidence; easy = highest confidence; ambiguous = highest variability (ties:
    ascending guid). With ``seed``, also ``random``: as many guids drawn uniformly without
    replacement (``numpy.random.default_rng(seed)``), in ascending guid order. Hard and easy overlap
    only when ``proportion`` > 1/2; ambiguous (high variability) can share examples with either at
    any proportion, since a low-confidence example often varies a lot.

    With the same variability everywhere (a one-epoch run) "ambiguous" is just the first guids:
    ``training-dynamics select`` refuses that (:func:`refuse_constant_variability`).
    """
    _check(df, ["confidence", "variability"])
    guids = as_guids(df[GUID])
    k = selection_size(len(df), proportion)
    regions = {
        "hard": guids[rank(df, "confidence", ascending=True)[:k]].tolist(),
        "easy": guids[rank(df, "confidence", ascending=False)[:k]].tolist(),
        "ambiguous": guids[rank(df, "variability", ascending=False)[:k]].tolist(),
    }
    if seed is not None:
        drawn = np.random.default_rng(seed).choice(np.sort(guids), size=k, replace=False)  # row order plays no part
        regions["random"] = np.sort(drawn).tolist()
    return regions


def region_of(df: pd.DataFrame, *, proportion: float = 0.33) -> pd.Series:
    """Region label per row ("hard", "easy", "ambiguous" or ""), indexed like ``df``.

    A row in two regions gets the first of hard, easy, ambiguous. When every example has the same
    variability (one epoch), no row is labelled ambiguous.
    """
    if variability_is_constant(df):
        k = selection_size(len(df), proportion)
        regions = {"hard": select_by_metric(df, "confidence", fraction=proportion) if k else [],
                   "easy": select_by_metric(df, "confidence", fraction=proportion, worst=True) if k else [],
                   "ambiguous": []}
    else:
        regions = three_regions(df, proportion=proportion)
    guids = as_guids(df[GUID])
    labels = np.full(len(df), "", dtype=object)
    for name in reversed(REGIONS):  # later assignments win: hard last
        labels[np.isin(guids, as_guids(regions[name]))] = name
    return pd.Series(labels, index=df.index, name="region", dtype=object)


def describe(df: pd.DataFrame, guids: Sequence[int], metrics: Sequence[str] = ("confidence", "variability", "correctness")) -> str:
    """One line: size and [min, max] of a few metrics over the selected guids."""
    rows = df[df[GUID].isin(as_guids(guids))]
    if len(rows) == 0:
        return "0 examples"
    parts = [f"{metric} [{rows[metric].min():.3g}, {rows[metric].max():.3g}]" for metric in metrics if metric in rows]
    return f"{len(rows)} examples; " + ", ".join(parts)


# -- indices files ------------------------------------------------------------------------------
def write_indices(path: str | os.PathLike, selections: dict[str, Sequence[int]], settings: dict) -> Path:
    """Write ``{"name": [guid, ...], ...}`` atomically, and ``settings`` beside it
    (``<stem>_settings.json``). Returns the indices path."""
    path = Path(path)
    with fileio.atomic_write(path) as fh:
        fh.write("{" + ",\n ".join(f"{json.dumps(k)}: {json.dumps(guid_list(as_guids(v)), ensure_ascii=False)}"
                                  for k, v in selections.items()) + "}\n")
    fileio.write_json(settings_path(path), settings)
    return path


def settings_path(indices_path: str | os.PathLike) -> Path:
    """``<stem>_settings.json`` beside an indices file."""
    p = Path(indices_path)
    return p.with_name(f"{p.stem}_settings.json")


def read_indices(path: str | os.PathLike, region: str | None = None) -> tuple[str, np.ndarray]:
    """Read one selection from an indices file; returns (region name, guids (K,): int64 or str).

    The file holds either a JSON list of guids or an object mapping names to lists (the seed's
    ``{"hard": [...], "easy": [...], "ambiguous": [...]}``). ``region`` picks a name; it may be
    omitted when the file holds a single list (a plain list is named after the file's stem).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such indices file (run data_selection.py first)")
    try:
        with open(path, encoding="utf-8") as fh:
            obj = fileio.json_loads(fh.read())
    except json.JSONDecodeError as exc:
        raise TrainingDynamicsError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if isinstance(obj, list):
        obj = {path.stem: obj}
    if not isinstance(obj, dict) or not obj:
        raise TrainingDynamicsError(f"{path}: expected a list of guids or an object of region -> list of guids")
    if not region:
        if len(obj) != 1:
            raise TrainingDynamicsError(f"{path}: holds several regions ({', '.join(obj)}); choose one with --data_selection_region")
        region = next(iter(obj))
    if region not in obj:
        raise TrainingDynamicsError(f"{path}: unknown region {region!r}; choose one of {', '.join(obj)}")
    values = obj[region]
    if not isinstance(values, list):
        raise TrainingDynamicsError(f"{path}: region {region!r} must be a list of guids")
    guids = as_guids(values, where=f"{path}: region {region!r}")
    if len(guids) == 0:
        raise TrainingDynamicsError(f"{path}: region {region!r} is empty")
    uniq, counts = np.unique(guids, return_counts=True)
    if (counts > 1).any():
        raise TrainingDynamicsError(f"{path}: region {region!r} lists guid {uniq[counts > 1][0]} more than once")
    return region, guids


def select_guids(ds, guids: np.ndarray, *, where: str = "selection"):
    """Rows of ``ds`` (a ``datasets.Dataset`` with a ``guid`` column) whose guid is in ``guids``,
    in the dataset's own order. Every guid must be present: matching is by id, never by position."""
    if GUID not in ds.column_names:
        raise TrainingDynamicsError(f"{where}: the training set has no {GUID!r} column to match guids against")
    have = as_guids(ds[GUID])
    guids = as_guids(guids)
    missing = guids[~np.isin(guids, have)]
    if len(missing):
        raise TrainingDynamicsError(f"{where}: {len(missing)} of {len(guids)} selected guids are not in the training set "
                         f"(first: {missing.tolist()[0]!r}; the training set has {len(have)} examples, e.g. guid {have.tolist()[0]!r})")
    return ds.select(np.flatnonzero(np.isin(have, guids)))


def write_selected_data(path: str | os.PathLike, ds, guids: np.ndarray, *, text_columns: Sequence[str],
                        label_names: Sequence[str], with_label: bool = True) -> Path:
    """Write the selected rows as jsonl (text column(s), ``label`` as its name unless not
    ``with_label`` (prompt/response data), ``guid``) atomically.

    The file loads with ``--train_file``; its ``guid`` column keeps the original ids.
    """
    rows = select_guids(ds, guids, where=str(path))
    names = np.asarray(label_names, dtype=object)[np.asarray(rows["label"], dtype=np.int64)]
    cols = {c: rows[c] for c in text_columns}
    with fileio.atomic_write(path) as fh:
        for i, (label, guid) in enumerate(zip(names.tolist(), rows[GUID])):
            fh.write(json.dumps({**{c: cols[c][i] for c in text_columns}, **({"label": label} if with_label else {}),
                                 GUID: guid}, ensure_ascii=False) + "\n")
    return Path(path)
