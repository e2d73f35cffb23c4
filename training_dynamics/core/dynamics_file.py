"""The training-dynamics file format: write, read and validate epoch files (docs/design.md).

Layout of a run folder (``dy_log/<task>/<model>``)::

    training_dynamics/dynamics_epoch_<e>.jsonl   one line per example per epoch (or .npz)
    training_dynamics/dynamics_meta.json         label names, data source, model, mode, epochs
    td_metrics.jsonl                             per-example metrics (td_metrics.py)

Reading (:func:`read_dynamics`) accepts every format the writer produces -- the seed's jsonl
(``{"guid": 7, "logits_epoch_<e>": [...], "gold": 1, "device": "cpu"}``; ``device`` and any other
extra key are ignored) and ``.npz`` (arrays ``guid``, ``logits``, ``gold``), even mixed across
epochs -- and validates it. A generative run (a causal LM on prompt/response data, ``meta["kind"]
== "generative"``) stores a few numbers per example instead of logits (its own :class:`EpochLayout`, in its package):
``{"guid": 7, "logprob_epoch_<e>": -1.2, "token_accuracy_epoch_<e>": 0.6, "num_tokens": 12,
"device": "cpu"}`` (npz: one array per name); a conversational run adds each assistant turn's values
(``"turns_epoch_<e>"``, see :func:`training_dynamics.kinds.generative.dynamics.write_generative_epoch`). Every problem raises :class:`DynamicsError` with a one-line message
``<file>: <example>: <what is wrong>``, where the example is ``line <k> (guid <g>)`` in a jsonl
file (1-based line number) or ``row <i> (guid <g>)`` in an npz file (0-based array row).
"""

from __future__ import annotations

from training_dynamics.core.errors import TrainingDynamicsError

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from training_dynamics.core import epoch_values
from training_dynamics.core.fileio import atomic_write, file_stat, json_loads, loads_line, numpy_view
from training_dynamics.core.ids import as_guids, guid_list  # noqa: F401  (the id type has its own module)
from training_dynamics.core.binding import BINDING_NAME

logger = logging.getLogger(__name__)

DYNAMICS_SUBDIR = "training_dynamics"
META_NAME = "dynamics_meta.json"
FORMATS = ("jsonl", "npz")
EPOCH_FILE_RE = re.compile(r"dynamics_epoch_(\d+)\.(jsonl|npz)")
_JSON_BLOCK_SIZE = 4 << 20  # pyarrow parses blocks of this many bytes in parallel
_INT64 = np.iinfo(np.int64)
class DynamicsError(TrainingDynamicsError):
    """Bad or inconsistent dynamics files; the message is one line naming the file and the example."""


def dynamics_dir(run_dir: str | os.PathLike) -> Path:
    """The ``training_dynamics`` folder of a run folder."""
    return Path(run_dir) / DYNAMICS_SUBDIR


def recorder_file(name: str) -> bool:
    """A name the recorder writes into a dynamics folder: an epoch file, the meta, the data binding, or
    one of their temporary files (``.<name>.<random>.tmp``)."""
    if name.startswith(".") and name.endswith(".tmp"):
        name = name[1:].split(".tmp")[0].rsplit(".", 1)[0] if name.count(".") >= 3 else name
    return bool(EPOCH_FILE_RE.fullmatch(name)) or name in (META_NAME, BINDING_NAME)


def epoch_path(dy_dir: str | os.PathLike, epoch: int, fmt: str = "jsonl") -> Path:
    """Path of the file holding epoch ``epoch`` (0-based) in format ``fmt``."""
    if fmt not in FORMATS:
        raise TrainingDynamicsError(f"unknown dynamics format {fmt!r}; choose one of {FORMATS}")
    return Path(dy_dir) / f"dynamics_epoch_{epoch}.{fmt}"



def read_meta(dy_dir: str | os.PathLike) -> dict:
    """Read ``dynamics_meta.json`` from a dynamics folder; ``{}`` when there is none (seed runs)."""
    path = Path(dy_dir) / META_NAME
    if not path.exists():
        return {}
    with open(path, encoding="utf-8") as fh:
        return json_loads(fh.read())


def write_epoch(
    dy_dir: str | os.PathLike,
    epoch: int,
    guids: np.ndarray,
    logits: np.ndarray,
    gold: np.ndarray,
    *,
    device: str = "cpu",
    fmt: str = "jsonl",
) -> Path:
    """Write one epoch of dynamics atomically and return its path.

    Args:
        guids: (N,) stable example ids: integers, or strings (see :func:`as_guids`).
        logits: (N, C) float logits of each example this epoch.
        gold: (N,) int label ids the model was trained on.
        device: recorded in each jsonl line, as in the seed.
        fmt: ``"jsonl"`` (seed format, default) or ``"npz"`` (binary, for scale).
    """
    guids = as_guids(guids)
    logits = np.asarray(logits, dtype=np.float32)
    gold = np.asarray(gold, dtype=np.int64)
    if logits.ndim != 2 or not (len(guids) == len(gold) == len(logits)):
        raise ValueError(f"shapes disagree: guids {guids.shape}, logits {logits.shape}, gold {gold.shape}")
    path = epoch_path(dy_dir, epoch, fmt)
    if fmt == "npz":
        with atomic_write(path, "wb") as fh:
            np.savez(fh, guid=guids, logits=logits, gold=gold)
        return path
    key = f"logits_epoch_{epoch}"
    dev = json.dumps(device)
    # float32 -> shortest repr via tolist() keeps full precision of what was recorded.
    rows = logits.tolist()
    with atomic_write(path) as fh:
        fh.writelines(
            f'{{"guid": {g}, "{key}": {json.dumps(r)}, "gold": {y}, "device": {dev}}}\n'
            for g, r, y in zip(_json_ids(guids), rows, gold.tolist())
        )
    return path




def concat_epoch_files(paths: Sequence[str | os.PathLike], dest: str | os.PathLike) -> Path:
    """Write one epoch file that holds the rows of ``paths`` (epoch files of the same epoch and format, of disjoint
    examples: the halves of a cross-fitted run) one after another, atomically. Kind-agnostic: jsonl lines are
    copied as they are; each array of an npz file is concatenated (per-example and per-word arrays alike)."""
    dest = Path(dest)
    paths = [Path(p) for p in paths]
    if dest.suffix == ".npz":
        parts = []
        for p in paths:
            with np.load(p, allow_pickle=False) as z:
                parts.append({k: z[k] for k in z.files})
        if any(set(part) != set(parts[0]) for part in parts):
            raise DynamicsError(f"{', '.join(map(str, paths))}: epoch files with different arrays cannot be joined")
        with atomic_write(dest, "wb") as fh:
            np.savez(fh, **{k: np.concatenate([part[k] for part in parts]) for k in parts[0]})
        return dest
    with atomic_write(dest) as fh:
        for p in paths:
            text = p.read_text(encoding="utf-8")
            fh.write(text if not text or text.endswith("\n") else text + "\n")
    return dest


def _json_ids(guids: np.ndarray) -> list[str]:
    """Each id as JSON text: ``7`` or ``"pair-7"`` (escaped as JSON requires)."""
    if guids.dtype.kind in "iu":
        return [str(g) for g in guids.tolist()]
    return [json.dumps(g, ensure_ascii=False) for g in guids.tolist()]


# ----------------------------------------------------------------------------------------------
# Reading and validation
# ----------------------------------------------------------------------------------------------


@dataclass
class Dynamics:
    """All recorded epochs of a run, aligned by example.

    Rows follow the order of the first epoch file (``dynamics_epoch_0``): row ``i`` is the
    ``i``-th example of that file (the seed's ``index``; for this project's writer, the training
    row order). Later epochs may list the examples in any order; they are aligned by guid.

    Attributes:
        guids: (N,) example ids: int64, or str (see :func:`as_guids`).
        gold: (N,) int64 label ids (the same in every epoch; checked).
        logits: (N, E, C) float64 logits of example ``n`` at epoch ``e``.
        dy_dir: the ``training_dynamics`` folder read.
        meta: ``dynamics_meta.json`` (``{}`` for seed runs, which have none).
        files: (E,) the epoch files read, in epoch order.
        sources: per file ``{"file", "size", "mtime_ns"}``, taken before reading (staleness checks).
        values: the recorded values when they are not logits (a kind's own :class:`EpochLayout`, e.g. a
            generative run's (N, E, 3)); ``logits`` are then the layout's class view of them
            (:meth:`EpochLayout.finish`), for code that reads probabilities.
        layout: how the epoch files held the values (:data:`LOGITS` for a classifier's).
    """

    guids: np.ndarray
    gold: np.ndarray
    logits: np.ndarray
    dy_dir: Path
    meta: dict = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    sources: list[dict] = field(default_factory=list)
    values: np.ndarray | None = None
    layout: "EpochLayout" = field(default=None)  # type: ignore[assignment]

    def __post_init__(self):
        if self.layout is None:
            self.layout = LOGITS

    @property
    def kind(self) -> str:
        """The kind of run the values' layout belongs to (``"classification"`` for logits)."""
        return self.layout.kind

    @property
    def recorded(self) -> np.ndarray:
        """(N, E, V) the values as the epoch files hold them (the logits, or a kind's own values)."""
        return self.logits if self.values is None else self.values

    @property
    def num_examples(self) -> int:
        return int(self.logits.shape[0])

    @property
    def num_epochs(self) -> int:
        return int(self.logits.shape[1])

    @property
    def num_classes(self) -> int:
        return int(self.logits.shape[2])


def list_epoch_files(dy_dir: str | os.PathLike) -> list[Path]:
    """The epoch files of a dynamics folder in epoch order, checked to be numbered 0, 1, ..., E-1.

    Raises:
        DynamicsError: no such folder, no epoch files, a gap in the numbering, or one epoch
            present in two formats.
    """
    dy_dir = Path(dy_dir)
    if not dy_dir.is_dir():
        raise DynamicsError(f"{dy_dir}: no such folder (expected a run's {DYNAMICS_SUBDIR} folder "
                            "holding dynamics_epoch_<e>.jsonl files)")
    by_epoch: dict[int, list[Path]] = {}
    for path in dy_dir.iterdir():
        m = EPOCH_FILE_RE.fullmatch(path.name)
        if m:
            by_epoch.setdefault(int(m.group(1)), []).append(path)
    if not by_epoch:
        raise DynamicsError(f"{dy_dir}: no dynamics files (dynamics_epoch_<e>.jsonl or .npz): "
                            "is this a recorded run's training_dynamics folder?")
    for e, paths in sorted(by_epoch.items()):
        if len(paths) > 1:
            names = " and ".join(sorted(p.name for p in paths))
            raise DynamicsError(f"{dy_dir}: epoch {e} is recorded twice ({names}); remove one")
    last = max(by_epoch)
    missing = [e for e in range(last + 1) if e not in by_epoch]
    if missing:
        found = ", ".join(map(str, sorted(by_epoch)))
        raise DynamicsError(f"{dy_dir}: dynamics_epoch_{missing[0]} is missing (epochs found: {found}); "
                            "epochs must be numbered 0, 1, 2, ... without gaps")
    return [by_epoch[e][0] for e in range(last + 1)]



class _EpochRows:
    """One epoch file's arrays, as read, with helpers that name an example in error messages."""

    def __init__(self, path: Path, epoch: int, guids: np.ndarray, logits: np.ndarray, gold: np.ndarray):
        self.path, self.epoch = path, epoch
        self.guids, self.logits, self.gold = guids, logits, gold
        self.order = self.sorted = None  # filled by check()
        self.layout: EpochLayout = LOGITS  # how the file holds its values (set by the reader)
        self.rows_in_file: np.ndarray | None = None  # a subset of the file's rows: their row numbers in it
        self._line_numbers: np.ndarray | None = None

    @property
    def is_jsonl(self) -> bool:
        return self.path.suffix == ".jsonl"

    def at(self, row: int) -> str:
        """``line <k>`` (jsonl, 1-based) or ``row <i>`` (npz, 0-based) of the ``row``-th record."""
        if self.rows_in_file is not None:
            row = int(self.rows_in_file[row])
        return f"line {self.line_of(row)}" if self.is_jsonl else f"row {row}"

    def where(self, row: int) -> str:
        """``line <k> (guid <g>)`` or ``row <i> (guid <g>)``."""
        return f"{self.at(row)} (guid {self.guids[row]})"

    def line_of(self, row: int) -> int:
        """1-based line number of the ``row``-th record (blank lines are skipped; only on errors)."""
        if self._line_numbers is None:
            with open(self.path, "rb") as fh:
                self._line_numbers = np.array([k for k, line in enumerate(fh, 1) if line.strip()])
        return int(self._line_numbers[row])

    def fail(self, row: int | None, what: str) -> DynamicsError:
        return DynamicsError(f"{self.path}: {what}" if row is None else f"{self.path}: {self.where(row)}: {what}")

    def check(self) -> None:
        """Checks within one file: examples present, >= 2 classes, finite logits, gold in range, no repeats."""
        self.check_values()
        self.check_repeats()

    def check_values(self) -> None:
        """:meth:`check` but for repeated examples (which :mod:`streaming` checks in O(N) when it can)."""
        n, c = self.logits.shape
        if n == 0:
            raise self.fail(None, "no examples (empty file)")
        if c < 2:
            raise self.fail(None, f"{c} logit(s) per example: training dynamics need a classifier with at least "
                                  "2 classes (a regression task has none)")
        if not np.isfinite(self.logits).all():  # one pass over the values; rows only on failure
            bad = np.flatnonzero(~np.isfinite(self.logits).all(axis=1))
            raise self.fail(bad[0], f"logits are not finite: {self.logits[bad[0]].tolist()}")
        if self.gold.min() < 0 or self.gold.max() >= c:
            bad = np.flatnonzero((self.gold < 0) | (self.gold >= c))
            raise self.fail(bad[0], f"gold {self.gold[bad[0]]} is outside the {c} classes 0..{c - 1}")

    def check_repeats(self) -> None:
        """No example twice in this file (sorts the ids: fills :attr:`order` and :attr:`sorted`)."""
        self.order = np.argsort(self.guids)
        self.sorted = self.guids[self.order]
        dup = self.sorted[1:][self.sorted[1:] == self.sorted[:-1]]
        if dup.size:  # name the first line that repeats an earlier one
            seen: set = set()
            for row in np.flatnonzero(np.isin(self.guids, dup)).tolist():
                g = self.guids[row]
                if g in seen:
                    first = int(np.flatnonzero(self.guids == g)[0])
                    raise self.fail(row, f"example repeated in this epoch (also at {self.at(first)})")
                seen.add(g)


def _read_npz(path: Path, epoch: int) -> _EpochRows:
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("guid", "logits", "gold") if k not in z.files]
            if missing:
                raise DynamicsError(f"{path}: no array {missing[0]!r} (arrays: {', '.join(z.files)})")
            guids, logits, gold = z["guid"], z["logits"], z["gold"]
    except DynamicsError:
        raise
    except Exception as exc:  # zipfile.BadZipFile, EOFError, ValueError, ... from a damaged file
        raise DynamicsError(f"{path}: not a readable .npz file (truncated or damaged?): {exc}") from None
    if guids.ndim != 1 or guids.dtype.kind not in "iuU":
        raise DynamicsError(f"{path}: array 'guid' must be 1-d integers or strings, got {guids.dtype} {guids.shape}")
    if gold.ndim != 1 or not np.issubdtype(gold.dtype, np.integer):
        raise DynamicsError(f"{path}: array 'gold' must be 1-d integers, got {gold.dtype} {gold.shape}")
    if logits.ndim != 2 or not np.issubdtype(logits.dtype, np.floating) or not (len(logits) == len(guids) == len(gold)):
        raise DynamicsError(f"{path}: array 'logits' must be (N, C) floats matching guid {guids.shape} and "
                            f"gold {gold.shape}, got {logits.dtype} {logits.shape}")
    # float32 logits stay float32 (half the memory; readers widen them to float64 as they compute)
    if logits.dtype not in (np.float32, np.float64):
        logits = logits.astype(np.float64)
    return _EpochRows(path, epoch, as_guids(guids), logits, gold.astype(np.int64, copy=False))


def _read_jsonl_fast(path: Path, epoch: int) -> _EpochRows:
    """Parse with pyarrow's multithreaded JSON reader; raises pyarrow's error on malformed input."""
    import pyarrow as pa
    import pyarrow.json as pj

    key = f"logits_epoch_{epoch}"
    fields = [(key, pa.list_(pa.float64())), ("gold", pa.int64())]
    table = None
    for guid_type in (pa.int64(), pa.string()):  # integer ids (the usual), else string ids
        schema = pa.schema([("guid", guid_type), *fields])
        try:
            table = pj.read_json(path, read_options=pj.ReadOptions(block_size=_JSON_BLOCK_SIZE),
                                 parse_options=pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"))
            break
        except pa.ArrowInvalid:
            if guid_type == pa.string():
                raise
    guid_col, lg_col, gold_col = (table.column(i).combine_chunks() for i in range(3))
    n = table.num_rows
    rows = _EpochRows(path, epoch, np.zeros(n, np.int64), np.zeros((n, 0)), np.zeros(n, np.int64))
    if n == 0:
        return rows  # blank lines only: check() names it
    if guid_col.null_count:
        row = int(np.flatnonzero(guid_col.is_null().to_numpy(zero_copy_only=False))[0])
        raise DynamicsError(f"{path}: line {rows.line_of(row)}: no 'guid' ({_keys_of(path, rows.line_of(row))})")
    rows.guids = numpy_view(guid_col, np.int64) if guid_col.type == pa.int64() else \
        np.asarray(guid_col.to_numpy(zero_copy_only=False), dtype=str)
    for col, name in ((gold_col, "gold"), (lg_col, key)):
        if col.null_count:
            row = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
            raise rows.fail(row, f"no {name!r} ({_keys_of(path, rows.line_of(row))})")
    rows.gold = numpy_view(gold_col, np.int64)
    offsets = np.frombuffer(lg_col.buffers()[1], dtype=np.int32, count=n + 1, offset=lg_col.offset * 4)
    lengths = np.diff(offsets)
    c = int(lengths[0])
    bad = np.flatnonzero(lengths != c)
    if bad.size:
        raise rows.fail(bad[0], f"{lengths[bad[0]]} logits, but line {rows.line_of(0)} has {c}: "
                                "every example needs one logit per class")
    values = lg_col.flatten()
    if values.null_count:
        row = int(np.flatnonzero(values.is_null().to_numpy(zero_copy_only=False))[0]) // c
        raise rows.fail(row, "logits contain null")
    rows.logits = numpy_view(values, np.float64).reshape(n, c)
    return rows


def _keys_of(path: Path, lineno: int) -> str:
    """``keys: a, b`` of the record on line ``lineno`` (for error messages)."""
    with open(path, "rb") as fh:
        for k, line in enumerate(fh, 1):
            if k == lineno:
                try:
                    return "keys: " + ", ".join(json_loads(line))
                except (ValueError, TypeError):
                    return "not a JSON object"
    return "no such line"


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and _INT64.min <= x <= _INT64.max


def _read_jsonl_slow(path: Path, epoch: int) -> _EpochRows:
    """Line-by-line reader: used only when the fast reader fails, to name the exact bad line.

    Accepts what the fast reader accepts (blank lines skipped, extra keys ignored, no ``device``
    needed); NaN/Infinity tokens parse here and are rejected later by :meth:`_EpochRows.check`.
    """
    key = f"logits_epoch_{epoch}"
    guids: list[int | str] = []
    gold: list[int] = []
    logits: list[list[float]] = []
    ncls = first_line = None
    with open(path, "rb") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            rec = loads_line(line, where=f"{path}: line {lineno}", error=DynamicsError)
            if not isinstance(rec, dict):
                raise DynamicsError(f"{path}: line {lineno}: not a JSON object")
            g = rec.get("guid")
            if not (_is_int(g) or isinstance(g, str)):
                raise DynamicsError(f"{path}: line {lineno}: 'guid' must be an integer or a string, got {g!r}")
            if guids and isinstance(g, str) != isinstance(guids[0], str):
                raise DynamicsError(f"{path}: line {lineno}: 'guid' {g!r} mixes integer and string ids "
                                    f"(the first line has {guids[0]!r})")
            where = f"{path}: line {lineno} (guid {g})"
            y = rec.get("gold")
            if not _is_int(y):
                raise DynamicsError(f"{where}: 'gold' must be an integer label id, got {y!r}")
            lg = rec.get(key)
            if lg is None:
                raise DynamicsError(f"{where}: no {key!r} (keys: {', '.join(rec)})")
            if not isinstance(lg, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in lg):
                raise DynamicsError(f"{where}: {key!r} must be a list of numbers, got {lg!r}")
            if ncls is None:
                ncls, first_line = len(lg), lineno
            elif len(lg) != ncls:
                raise DynamicsError(f"{where}: {len(lg)} logits, but line {first_line} has {ncls}: "
                                    "every example needs one logit per class")
            guids.append(g)
            gold.append(y)
            logits.append(lg)
    arr = np.array(logits, dtype=np.float64).reshape(len(logits), ncls or 0)
    return _EpochRows(path, epoch, as_guids(guids) if guids else np.zeros(0, np.int64), arr,
                      np.array(gold, dtype=np.int64))


def _read_jsonl(path: Path, epoch: int) -> _EpochRows:
    if path.stat().st_size == 0:
        raise DynamicsError(f"{path}: no examples (empty file)")
    try:
        return _read_jsonl_fast(path, epoch)
    except DynamicsError:
        raise
    except Exception as exc:  # pyarrow.ArrowInvalid & co: find and name the bad line the slow way
        logger.debug("fast JSON reader failed on %s (%s); re-reading line by line", path, exc)
        return _read_jsonl_slow(path, epoch)


class EpochLayout:
    """How a kind's epoch files hold their per-example values, and what one epoch's values say about each
    example. This one is a classifier's: logits (N, C) and a gold label; a kind whose files hold other values
    (a generative run's log-probability, token accuracy and length) subclasses it in its own package and
    registers it (:func:`core.kind.register_layout`), so the readers and the metrics never ask which kind a run is."""

    name = "logits"
    kind = "classification"  #: the kind of run whose files this layout reads
    description = "logits"  #: what the files hold, in a message

    def holds(self, path: Path, epoch: int) -> bool:
        """Whether the epoch file ``path`` is in this layout (the default layout takes any file)."""
        return True

    def read(self, path: Path, epoch: int) -> "_EpochRows":
        """The file's rows: guids, (N, V) values, gold."""
        return _read_npz(path, epoch) if path.suffix == ".npz" else _read_jsonl(path, epoch)

    def finish(self, stacked: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``(logits (N, E, C), values or None)`` of every epoch's values stacked (N, E, V)."""
        return stacked, None

    def num_classes(self, width: int) -> int:
        """The number of classes of values ``width`` wide."""
        return width

    def per_row(self, x: np.ndarray, gold: np.ndarray) -> dict[str, np.ndarray]:
        """One epoch's values of M examples (M, V) -> ``{logp_gold, pred, margin, el2n, ...: (M,)}``."""
        return epoch_values.per_row(x, gold)

    def per_epoch(self, stacked: np.ndarray, gold: np.ndarray) -> dict[str, np.ndarray]:
        """:meth:`per_row` of every epoch: (N, E, V) values -> ``{name: (N, E)}``."""
        return epoch_values.per_epoch_arrays(stacked, gold)

    #: per-epoch values (of :meth:`per_row`) beyond the shared ones whose mean over the epochs is a metric column
    mean_columns: tuple[str, ...] = ()

    def constant_columns(self, first: np.ndarray) -> dict[str, np.ndarray]:
        """Metric columns that the first epoch's values (N, V) fix (default none)."""
        return {}


LOGITS = EpochLayout()


def layout_of(path: Path, epoch: int) -> EpochLayout:
    """The layout an epoch file is in: a kind's that holds it (:func:`training_dynamics.core.kind.layouts`:
    every kind plugin's ``epoch_layout``), else logits."""
    from training_dynamics.core import kind

    return next((layout for layout in kind.layouts() if layout.holds(path, epoch)), LOGITS)


def _read_epoch_file(path: str | os.PathLike, epoch: int, *, repeats: bool = True) -> _EpochRows:
    """Read and check one epoch file (jsonl or npz; logits or a generative run's values); rows in file order.

    ``repeats=False``: leave the check for repeated examples (a sort) to the caller.
    """
    path = Path(path)
    layout = layout_of(path, epoch)
    rows = layout.read(path, epoch)
    rows.layout = layout
    rows.check() if repeats else rows.check_values()
    return rows


def _check_meta(dy_dir: Path, meta: dict, n: int, e: int, c: int, first: Path) -> None:
    where = dy_dir / META_NAME
    if isinstance(meta.get("num_labels"), int) and meta["num_labels"] != c:
        raise DynamicsError(f"{where}: num_labels is {meta['num_labels']}, but {first.name} has {c} logits per example")
    if isinstance(meta.get("num_examples"), int) and meta["num_examples"] != n:
        raise DynamicsError(f"{where}: num_examples is {meta['num_examples']}, but {first.name} has {n} examples")
    done = meta.get("epochs_completed")
    if isinstance(done, int) and done > e:
        raise DynamicsError(f"{dy_dir}: dynamics_epoch_{e} is missing ({META_NAME} says {done} epochs were "
                            f"completed, files exist for epochs 0..{e - 1})")


def _open_folder(dy_dir: Path) -> tuple[list[Path], list[dict], dict]:
    """A dynamics folder's epoch files (in epoch order), their stats taken before reading, and its meta."""
    paths = list_epoch_files(dy_dir)
    sources = [file_stat(p) for p in paths]
    try:
        meta = read_meta(dy_dir)
    except ValueError as exc:
        raise DynamicsError(f"{dy_dir / META_NAME}: not valid JSON: {exc}") from None
    if not isinstance(meta, dict):
        raise DynamicsError(f"{dy_dir / META_NAME}: expected a JSON object, got {type(meta).__name__}")
    return paths, sources, meta


def _check_same_kind(first: _EpochRows, rows: _EpochRows) -> None:
    """Both files hold their values in the same layout (logits, or a kind's own values)."""
    if rows.layout is not first.layout:
        raise rows.fail(None, f"holds {rows.layout.description}, but {first.path.name} holds "
                              f"{first.layout.description}: the epochs come from different runs")


def _gold_changed(first: _EpochRows, rows: _EpochRows, r0: int, r: int) -> DynamicsError:
    """The error for row ``r`` of ``rows`` (row ``r0`` of ``first``) whose gold label differs."""
    return rows.fail(r, f"gold {rows.gold[r]}, but gold {first.gold[r0]} in {first.path.name} "
                        f"{first.where(r0)}: the label must not change between epochs")


def read_dynamics(dy_dir: str | os.PathLike, *, progress: bool = True) -> Dynamics:
    """Read every epoch file of a ``training_dynamics`` folder into one aligned (N, E, C) array.

    Args:
        dy_dir: the folder holding ``dynamics_epoch_<e>.jsonl`` / ``.npz`` (and ``dynamics_meta.json``).
        progress: show a tqdm progress bar (bytes read) on stderr.

    Returns:
        :class:`Dynamics`, rows in the order of the first epoch file.

    Raises:
        DynamicsError: one line naming the file and example, for: no folder / no files, a gap in
            the epoch numbering (or fewer files than ``dynamics_meta.json`` says were completed),
            an empty file, a truncated or malformed line, a missing key, non-finite logits,
            a different number of logits than the other examples / epochs, gold outside
            ``0..C-1`` or changing between epochs, an example repeated in an epoch, guid sets
            that differ between epochs, and ``num_labels``/``num_examples`` disagreeing with the meta.
    """
    dy_dir = Path(dy_dir)
    paths, sources, meta = _open_folder(dy_dir)
    logits = gold = first = None
    with _progress_bar(sum(s["size"] for s in sources), f"reading {len(paths)} epoch file(s)", progress) as bar:
        for e, (path, src) in enumerate(zip(paths, sources)):
            rows = _read_epoch_file(path, e)
            bar.update(src["size"])
            if first is None:
                first = rows
                n, c = rows.logits.shape
                logits = np.empty((n, len(paths), c), dtype=np.float64)
                logits[:, 0] = rows.logits
                gold = rows.gold
                continue
            _check_same_kind(first, rows)
            logits[:, e], gold_e, perm = _align(first, rows)
            bad = np.flatnonzero(gold_e != gold)
            if bad.size:
                r0 = int(bad[0])
                raise _gold_changed(first, rows, r0, r0 if perm is None else int(perm[r0]))
    logits, values = first.layout.finish(logits)
    n, e, c = logits.shape
    _check_meta(dy_dir, meta, n, e, c, first.path)
    logger.debug("read %d examples x %d epochs x %d classes from %s", n, e, c, dy_dir)
    return Dynamics(guids=first.guids, gold=gold, logits=logits, dy_dir=dy_dir, meta=meta, files=paths,
                    sources=sources, values=values, layout=first.layout)


class _NoBar:
    def __enter__(self) -> "_NoBar":
        return self

    def __exit__(self, *exc) -> None:
        return None

    def update(self, n: int) -> None:
        return None


def _progress_bar(total: int, desc: str, enabled: bool) -> Any:
    """A tqdm bar in bytes; tqdm is imported only when one is shown (start-up time matters here)."""
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, desc=desc, leave=False)


def _align(first: _EpochRows, rows: _EpochRows) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(N, C) logits and (N,) gold of ``rows`` in ``first``'s row order, and the permutation used."""
    c0, c = first.logits.shape[1], rows.logits.shape[1]
    if (rows.guids.dtype.kind == "U") != (first.guids.dtype.kind == "U"):
        kinds = {True: "string", False: "integer"}
        raise rows.fail(None, f"{kinds[rows.guids.dtype.kind == 'U']} ids, but {first.path.name} has "
                              f"{kinds[first.guids.dtype.kind == 'U']} ids: the epochs hold different examples")
    if c != c0:
        raise rows.fail(None, f"{c} logits per example, but {first.path.name} has {c0}")
    if np.array_equal(rows.guids, first.guids):
        return rows.logits, rows.gold, None
    if not np.array_equal(rows.sorted, first.sorted):
        missing = np.setdiff1d(first.sorted, rows.sorted, assume_unique=True)
        if missing.size:
            r0 = int(first.order[np.searchsorted(first.sorted, missing)].min())
            raise rows.fail(None, f"example guid {first.guids[r0]} ({first.at(r0)} of {first.path.name}) "
                                  "is missing from this epoch")
        extra = np.setdiff1d(rows.sorted, first.sorted, assume_unique=True)
        r = int(rows.order[np.searchsorted(rows.sorted, extra)].min())
        raise rows.fail(r, f"example not in {first.path.name}: the epochs hold different examples")
    perm = np.empty_like(first.order)
    perm[first.order] = rows.order  # row of rows for each row of first
    return rows.logits[perm], rows.gold[perm], perm


