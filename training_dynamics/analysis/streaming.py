"""Per-example metrics streamed epoch by epoch: memory that grows with the examples, not with the epochs.

:func:`stream_metrics` reads one epoch file at a time and folds it into a few per-example
accumulators (running mean and squared deviation of ``p_e``, sums of the loss, margin, aleatoric
and EL2N terms, correctness and forgetting counts, the last prediction); it never builds the
examples x epochs x classes array that :func:`dynamics_file.read_dynamics` returns. The values are
those of :func:`metrics.td_metrics_columns` on the same files (to float rounding: the variance is
a running one), and so are the checks and their messages (:mod:`dynamics_file`).

Alignment of a later epoch to the first file's row order:

- rows already in the first file's order (this project's recorder writes every epoch in the training
  set's row order): nothing to do;
- integer ids that are dense (non-negative, at most about twice as many values as examples): a
  lookup table id -> row, filled by one scatter; each epoch is a gather, and its ids must hit
  every row exactly once (an O(N) check for repeated, missing and extra examples);
- other ids (sparse integers, strings): the first file's ids are sorted once and each epoch is
  looked up with a binary search.

When a check fails, the file is checked again the slow way (:mod:`dynamics_file`'s sort-based
checks), so that the message names the same line or row as :func:`dynamics_file.read_dynamics`.

Peak memory: about 80 bytes per example for the accumulators and the output columns, plus one
epoch file as read (guid, gold and logits arrays) and the alignment arrays.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from training_dynamics.core import dynamics_file
from training_dynamics.analysis import metrics
from training_dynamics.core.dynamics_file import DynamicsError, _EpochRows
from training_dynamics.core.errors import TrainingDynamicsError

logger = logging.getLogger(__name__)

BLOCK = 1 << 14  #: examples per step within an epoch (each step vectorised; the arrays stay in cache)
DENSE_SPAN = 2  #: integer ids are dense when max id + 1 <= DENSE_SPAN * N + DENSE_SLACK
DENSE_SLACK = 1 << 16


def partition_of(guids: np.ndarray, num_partitions: int) -> np.ndarray:
    """(N,) partition 0..num_partitions-1 of each example, from its id alone (the same in every epoch file,
    on every machine): a multiplicative hash of an integer id, crc32 of a string id."""
    if guids.dtype.kind == "U":
        import zlib

        h = np.fromiter((zlib.crc32(g.encode()) for g in guids.tolist()), dtype=np.uint64, count=len(guids))
    else:
        h = guids.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)  # wraps around: Knuth's multiplicative hash
        h >>= np.uint64(29)
    return (h % np.uint64(num_partitions)).astype(np.int64)


def parse_partition(text: str) -> tuple[int, int]:
    """``"I/N"`` -> (I, N) with 0 <= I < N; ValueError otherwise."""
    try:
        i, k = (int(v) for v in str(text).split("/"))
    except ValueError:
        raise TrainingDynamicsError(f"--partition must be I/N (e.g. 0/8: the first of 8 partitions), not {text!r}") from None
    if not 0 <= i < k:
        raise TrainingDynamicsError(f"--partition {text}: I must be 0..N-1 (partitions are numbered from 0)")
    return i, k


def _select(rows: _EpochRows, partition: tuple[int, int]) -> _EpochRows:
    """The rows of one partition (messages still name the rows and lines of the whole file)."""
    keep = np.flatnonzero(partition_of(rows.guids, partition[1]) == partition[0])
    sub = _EpochRows(rows.path, rows.epoch, rows.guids[keep], rows.logits[keep], rows.gold[keep])
    sub.layout, sub.rows_in_file = rows.layout, keep
    return sub


@dataclass
class StreamedMetrics:
    """What :func:`stream_metrics` computed, with what the settings file records about its input.

    Attributes:
        columns: ``{column: (N,) array}`` in :data:`metrics.COLUMNS` order (plus
            a kind's :attr:`~training_dynamics.core.kind.Kind.metric_columns`), as :func:`metrics.td_metrics_columns`.
        summary: ``{column: (E,) array}`` as :func:`metrics.training_summary_columns` (every recorded epoch).
    """

    columns: dict[str, np.ndarray]
    summary: dict[str, np.ndarray]
    epoch_sums: dict[str, list]  #: per epoch: sum of log p(gold) and number correct (partitions add up)
    num_examples: int
    num_epochs: int
    num_classes: int
    kind: str
    dy_dir: Path
    meta: dict = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    sources: list[dict] = field(default_factory=list)


class _Aligner:
    """Maps each later epoch's rows onto the first file's rows (see the module docstring)."""

    def __init__(self, first: _EpochRows):
        self.first = first
        guids = first.guids
        n = len(guids)
        self.rows = np.arange(n, dtype=np.intp)
        self.table = self.sorted = self.order = None
        self.gold = first.gold.astype(np.min_scalar_type(first.logits.shape[1]), copy=False)  # labels 0..C-1
        if n and guids.dtype.kind == "i" and guids.min() >= 0 and guids.max() < DENSE_SPAN * n + DENSE_SLACK:
            span = int(guids.max()) + 1
            if not _each_once(guids, span):
                first.check_repeats()
            # int32 when it fits: half the memory, and a gather from it stays in the cache more often
            self.table = np.full(span, -1, dtype=np.int32 if n < 2**31 else np.intp)
            self.table[guids] = self.rows
        else:
            self.order = np.argsort(guids, kind="stable")
            self.sorted = guids[self.order]
            if n > 1 and (self.sorted[1:] == self.sorted[:-1]).any():
                first.check_repeats()

    def align(self, rows: _EpochRows) -> None:
        """Put the values of ``rows`` in the first file's row order (in place: ``rows.logits``); raises
        the error :func:`dynamics_file.read_dynamics` raises for this file (repeated, missing or extra
        examples; a label that changed)."""
        first = self.first
        n = len(first.guids)
        same_kind = (rows.guids.dtype.kind == "U") == (first.guids.dtype.kind == "U") and \
            rows.layout is first.layout
        if same_kind and rows.logits.shape[1] == first.logits.shape[1] and len(rows.guids) == n:
            if np.array_equal(rows.guids, first.guids):
                self._check_gold(rows, None)
                return
            target = self._lookup(rows.guids)  # row of first for each row of rows
            if target is not None and _each_once(target, n):  # the same examples, none twice
                self._check_gold(rows, target)
                rows.logits = _scatter_rows(rows.logits, target)
                return
        self._fail(rows)
        raise DynamicsError(f"{rows.path}: the examples differ from {first.path.name}")  # not reached

    def _check_gold(self, rows: _EpochRows, target: np.ndarray | None) -> None:
        """Labels as in the first file (compared in this file's order; the error names the first such
        example in the first file's order, as read_dynamics does)."""
        bad = np.flatnonzero(rows.gold != (self.gold if target is None else self.gold[target]))
        if bad.size:
            at = bad if target is None else target[bad]
            k = int(np.argmin(at))
            raise dynamics_file._gold_changed(self.first, rows, int(at[k]), int(bad[k]))

    def _lookup(self, guids: np.ndarray) -> np.ndarray | None:
        """Row of the first file holding each id; None when an id is not there."""
        if self.table is not None:
            if guids.dtype.kind != "i" or guids.min() < 0 or guids.max() >= len(self.table):
                return None
            target = self.table[guids]
            return None if (target < 0).any() else target
        at = np.searchsorted(self.sorted, guids)
        np.minimum(at, len(self.sorted) - 1, out=at)
        if not np.array_equal(self.sorted[at], guids):
            return None
        return self.order[at]

    def _fail(self, rows: _EpochRows) -> None:
        """Replay :func:`dynamics_file.read_dynamics`'s checks of ``rows`` (it raises the same message)."""
        rows.check_repeats()
        dynamics_file._check_same_kind(self.first, rows)
        if self.first.order is None:
            self.first.check_repeats()
        dynamics_file._align(self.first, rows)


def _scatter_rows(values: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(N, C) ``out`` with ``out[target[r]] = values[r]`` (``target`` a permutation of 0..N-1): each row moved
    as one element (a row of 8 bytes as one integer), one pass of random writes."""
    values = np.ascontiguousarray(values)
    out = np.empty_like(values)
    width = values.dtype.itemsize * values.shape[1]
    as_1d = np.dtype(f"u{width}") if width in (1, 2, 4, 8) else np.dtype((np.void, width))
    out.view(as_1d).reshape(-1)[target] = values.view(as_1d).reshape(-1)
    return out


def _each_once(values: np.ndarray, span: int) -> bool:
    """Whether the integers ``values`` (all in ``0..span-1``) are distinct: O(N), no sort."""
    seen = np.zeros(span, dtype=bool)
    seen[values] = True
    return int(np.count_nonzero(seen)) == len(values)


class _Accumulators:
    """Per-example running sums over the epochs used, in the first file's row order."""

    def __init__(self, n: int, mean_columns: tuple[str, ...] = ()):
        self.count = 0
        self.mean = np.zeros(n)          # running mean of p_e (Welford)
        self.m2 = np.zeros(n)            # running sum of squared deviations from it
        self.logp = np.zeros(n)
        self.margin = np.zeros(n)
        self.aleatoric = np.zeros(n)
        self.el2n = np.zeros(n)
        self.correct = np.zeros(n, dtype=np.int32)  # int64 in the output; narrower meanwhile
        self.forgotten = np.zeros(n, dtype=np.int32)
        self.was_correct = np.zeros(n, dtype=bool)
        self.last_pred = np.zeros(n, dtype=np.int32)
        self.extra = {c: np.zeros(n) for c in mean_columns}  # the layout's own per-epoch values, summed

    def add(self, s: slice, values: dict[str, np.ndarray], correct: np.ndarray, *, last: bool) -> None:
        """Fold one epoch's values of the examples ``s`` in (``self.count`` epochs already folded;
        ``last``: the last epoch used)."""
        p = np.exp(values["logp_gold"])
        mean = self.mean[s]
        delta = p - mean
        mean += delta / (self.count + 1)
        delta *= p - mean
        self.m2[s] += delta
        self.logp[s] += values["logp_gold"]
        self.margin[s] += values["margin"]
        self.el2n[s] += values["el2n"]
        q = 1 - p
        q *= p
        self.aleatoric[s] += q
        self.correct[s] += correct
        if self.count:
            self.forgotten[s] += self.was_correct[s] > correct  # correct before, not now
        if not last:
            self.was_correct[s] = correct
        else:
            self.last_pred[s] = values["pred"]
        for c, total in self.extra.items():
            total[s] += values[c]

    def columns(self, guids: np.ndarray, gold: np.ndarray, *, include_ci: bool,
                index: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The metric columns (``metrics.COLUMNS`` order); the accumulators become columns in place."""
        e = self.count
        var = self.m2
        var /= e
        if include_ci and e > 1:
            var += var**2 / (e - 1)
        variability = np.sqrt(var, out=var)
        confidence = self.mean
        correct = self.correct.astype(np.int64)
        self.correct = None
        never = correct == 0
        for total in (self.logp, self.margin, self.aleatoric, self.el2n):
            total /= e
        cols = {
            "guid": guids, "index": np.arange(len(guids)) if index is None else index.astype(np.int64),
            "threshold_closeness": confidence * (1 - confidence), "confidence": confidence,
            "variability": variability, "correctness": correct,
            "forgetfulness": np.where(never, np.int64(metrics.NEVER_LEARNED_FORGETFULNESS), self.forgotten),
            "never_learned": never, "loss": np.negative(self.logp, out=self.logp), "aum": self.margin,
            "aleatoric": self.aleatoric, "el2n": self.el2n, "last_pred": self.last_pred.astype(np.int64),
            "gold": gold.astype(np.int64),
        }
        self.forgotten = self.last_pred = None
        out = {c: cols[c] for c in metrics.COLUMNS}
        for c, total in self.extra.items():
            out[c] = total / e
        return out


def _epoch_values(rows: _EpochRows, s: slice, gold: np.ndarray) -> dict[str, np.ndarray]:
    """Per-example values (:func:`metrics.per_row`) of the rows ``s`` of an aligned epoch, whose labels are ``gold``."""
    return rows.layout.per_row(rows.logits[s], gold)


def default_threads() -> int:
    """Threads for one process's blocks: the CPUs it may use, at most 4 (numpy releases the GIL)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus))


def stream_metrics(dy_dir: str | os.PathLike, *, burn_out: int | None = None, include_ci: bool = False,
                   progress: bool = True, block: int = BLOCK, threads: int | None = None,
                   partition: tuple[int, int] | None = None) -> StreamedMetrics:
    """Per-example metrics and the per-epoch training summary of a ``training_dynamics`` folder.

    The same values, checks and error messages as :func:`metrics.td_metrics_columns` and
    :func:`metrics.training_summary_columns` on :func:`dynamics_file.read_dynamics` (see the module
    docstring), one epoch file in memory at a time (and the next one being read meanwhile).

    Args:
        burn_out: the metrics cover epochs ``0..burn_out-1`` (default all); the summary covers all.
        include_ci: variability as sqrt(var + var**2 / (E - 1)).
        progress: a progress bar (bytes read) on stderr.
        block: examples per vectorised step.
        threads: blocks computed at once (default :func:`default_threads`); the result does not depend on it.
        partition: ``(i, k)``: only the examples of partition ``i`` of ``k`` (:func:`partition_of` of their
            ids). Their metrics are those of the whole run (each depends only on its own example); the
            files are read whole and checked, the examples checked within the partition; ``index`` is
            still the row in the first epoch file, and the summary covers the partition.

    Raises:
        DynamicsError: as :func:`dynamics_file.read_dynamics`, and for a bad ``burn_out``.
    """
    from concurrent.futures import ThreadPoolExecutor

    dy_dir = Path(dy_dir)
    paths, sources, meta = dynamics_file._open_folder(dy_dir)
    used = metrics.resolve_burn_out(burn_out, len(paths), where=dy_dir)
    threads = threads or default_threads()
    first = aligner = acc = None
    constant: dict = {}
    loss, accuracy = [], []
    with dynamics_file._progress_bar(sum(s["size"] for s in sources), f"reading {len(paths)} epoch file(s)",
                                     progress) as bar, ThreadPoolExecutor(1) as reader, \
            ThreadPoolExecutor(threads) as pool:
        def read_and_align(e: int) -> _EpochRows:
            rows = dynamics_file._read_epoch_file(paths[e], e, repeats=False)
            if partition is not None:
                rows = _select(rows, partition)
            if aligner is not None:
                aligner.align(rows)  # checked: after this only the values are needed
                rows.guids = rows.gold = None
            return rows

        def read(e: int):
            return reader.submit(read_and_align, e) if e < len(paths) else None

        upcoming = read(0)
        for e in range(len(paths)):
            rows = upcoming.result()  # errors surface in epoch order
            if first is None:
                first, aligner = rows, _Aligner(rows)
                n, c = rows.logits.shape
                acc = _Accumulators(n, rows.layout.mean_columns)
                constant = rows.layout.constant_columns(rows.logits)  # e.g. a response's number of tokens
                first_gold = aligner.gold
            upcoming = read(e + 1)  # the next file is read and aligned while this one is folded in
            bar.update(sources[e]["size"])

            def fold(start: int, rows=rows, e=e) -> tuple[float, int]:
                """Fold examples start..start+block of this epoch in: (sum of logp, number correct)."""
                s = slice(start, min(start + block, n))
                gold = first_gold[s]  # checked: the same in every epoch
                values = _epoch_values(rows, s, gold)
                correct = values["pred"] == gold
                if e < used:
                    acc.add(s, values, correct, last=e == used - 1)
                return float(values["logp_gold"].sum()), int(np.count_nonzero(correct))

            loss_sum, n_correct = 0.0, 0
            for block_loss, block_correct in pool.map(fold, range(0, n, block)):
                loss_sum += block_loss
                n_correct += block_correct
            acc.count += e < used
            loss.append(loss_sum)
            accuracy.append(n_correct)
            if rows is first:  # later epochs need its ids, labels and number of classes, not its values
                first.logits, first.gold = first.logits[:0], first_gold
            del rows, fold
    aligner = None  # its lookup table and row numbers: not needed any more
    checked = meta if partition is None else {k: v for k, v in meta.items() if k != "num_examples"}
    dynamics_file._check_meta(dy_dir, checked, n, len(paths), first.layout.num_classes(c), first.path)
    cols = acc.columns(first.guids, first_gold, include_ci=include_ci, index=first.rows_in_file)
    cols.update(constant)
    e_all = len(paths)
    sums = {"logp_gold": loss, "correct": accuracy}
    summary = summary_columns(sums, n)
    logger.debug("streamed %d examples x %d epochs from %s", n, e_all, dy_dir)
    return StreamedMetrics(columns=cols, summary=summary, epoch_sums=sums, num_examples=n, num_epochs=e_all,
                           num_classes=first.layout.num_classes(c), kind=first.layout.kind,
                           dy_dir=dy_dir, meta=meta, files=paths, sources=sources)


def summary_columns(sums: dict[str, list], n: int) -> dict[str, np.ndarray]:
    """:func:`metrics.training_summary_columns` from per-epoch sums over ``n`` examples."""
    e = len(sums["logp_gold"])
    with np.errstate(invalid="ignore", divide="ignore"):  # an empty partition: NaN
        return {"epoch": np.arange(e), "loss": -np.array(sums["logp_gold"], dtype=float) / n,
                "accuracy": np.array(sums["correct"], dtype=float) / n, "num_examples": np.full(e, n)}


def td_metrics_columns(dy_dir: str | os.PathLike, *, burn_out: int | None = None, include_ci: bool = False,
                       progress: bool = False) -> dict[str, np.ndarray]:
    """:func:`metrics.td_metrics_columns` of a folder, streamed: ``{column: (N,) array}``."""
    return stream_metrics(dy_dir, burn_out=burn_out, include_ci=include_ci, progress=progress).columns
