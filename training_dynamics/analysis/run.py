"""A run folder ``dy_log/<task>/<model>`` and everything it holds: the one place that knows its layout.

::

    <run>/training_dynamics/dynamics_epoch_<e>.jsonl   recorded epochs (or .npz; see dynamics_file)
    <run>/training_dynamics/dynamics_meta.json         label names, data source, model, mode, epochs
    <run>/td_metrics.jsonl                             per-example metrics (cached; see metrics)
    <run>/td_metrics_settings.json                     what the cached metrics were computed from
    <run>/td_training_summary.jsonl                    loss and accuracy per recorded epoch

Every tool goes through :class:`Run` (or :func:`load_metrics` for "a run folder or a metrics file"):
the cached metrics are reused when fresh and recomputed otherwise, and the training texts are found
through the data source named in the meta.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from training_dynamics.core.version import __version__
from training_dynamics.core import kind as kinds
from training_dynamics.core import binding, dynamics_file, fileio
from training_dynamics.analysis import metrics
from training_dynamics.core.binding import Binding
from training_dynamics.core.dynamics_file import Dynamics, DynamicsError
from training_dynamics.core.errors import TrainingDynamicsError

if TYPE_CHECKING:  # pandas is imported only where a DataFrame is made: td_metrics starts faster without it
    import pandas as pd

    from training_dynamics.core.data import TextClassificationData
    from training_dynamics.analysis.streaming import StreamedMetrics

logger = logging.getLogger(__name__)

METRICS_NAME = "td_metrics.jsonl"
METRICS_PARQUET_NAME = "td_metrics.parquet"  #: the same table, columnar (written for large runs: see metrics_format)
OUTPUT_FORMATS = ("auto", "jsonl", "parquet")
PARQUET_FROM = 1_000_000  #: ``auto`` writes parquet from this many examples on, jsonl below
SETTINGS_NAME = "td_metrics_settings.json"
SUMMARY_NAME = "td_training_summary.jsonl"
_INT_COLUMNS = ("guid", "index", "correctness", "forgetfulness", "last_pred", "gold")
#: last path parts that say nothing about a model: the run is named after the folder above them
_GENERIC_PART = re.compile(r"(model|models|final|final_model|best|best_model|last|output|outputs|out|"
                           r"pretrained|saved_model|checkpoint|checkpoint-\d+|snapshots?|[0-9a-f]{40})", re.I)


def model_run_name(model_name_or_path: str) -> str:
    """The model part of a run folder: the last path part of the model, made to explain itself.

    ``prajjwal1/bert-tiny`` -> ``bert-tiny``; ``outputs/sst2-minilm/model`` -> ``sst2-minilm``;
    ``outputs/minilm/checkpoint-500`` -> ``minilm-checkpoint-500``. A local folder whose parts are all
    generic takes the model type of its ``config.json`` (e.g. ``bert``).
    """
    parts = [p for p in Path(str(model_name_or_path).rstrip("/\\")).parts if p not in ("/", ".", "..", "")]
    kept: list[str] = []
    for part in reversed(parts):
        if not _GENERIC_PART.fullmatch(part):
            kept.insert(0, part)
            break
        if part.lower().startswith("checkpoint-"):
            kept.insert(0, part)
    if not kept or _GENERIC_PART.fullmatch(kept[0]):
        kept.insert(0, _config_model_type(model_name_or_path) or "model")
    return "-".join(kept)


#: file stems that say nothing about a dataset: the run is named after the folder above the file
_GENERIC_DATA_STEM = re.compile(r"(train|training|train_?data|train_?set|trainset|data|dataset|all|full|input|"
                                r"corpus|examples|samples|records|raw|split|default|"
                                r"(train|data)-\d+-of-\d+)", re.I)
#: folder names that say nothing about a dataset either
_GENERIC_DATA_FOLDER = re.compile(r"(data|datasets?|inputs?|raw|processed|splits?|files|tmp|temp|default|"
                                  r"[0-9a-f]{40})", re.I)


def task_run_name(train_file: str | os.PathLike) -> str:
    """The task part of a run folder for a training file: its stem, made to explain itself.

    ``reviews.csv`` -> ``reviews``; ``data/sst2/train.tsv`` -> ``sst2``; ``glue/SST-2/train.tsv`` -> ``SST-2``:
    a generic stem (train, training, data, train-00000-of-00001, ...) takes the name of the file's folder,
    unless that is generic too (``data/train.tsv`` stays ``train``).
    """
    path = Path(train_file)
    folder = path.resolve().parent.name
    if not _GENERIC_DATA_STEM.fullmatch(path.stem) or not folder:
        return path.stem
    if _GENERIC_DATA_FOLDER.fullmatch(folder) or _GENERIC_DATA_STEM.fullmatch(folder):
        return path.stem
    return folder


def _config_model_type(path: str) -> str | None:
    try:
        with open(Path(path) / "config.json", encoding="utf-8") as fh:
            return str(json.load(fh).get("model_type") or "") or None
    except (OSError, ValueError, AttributeError):
        return None


class Run:
    """One run folder: its recorded dynamics, meta, cached metrics and the training texts.

    Args:
        path: the run folder ``<dy_log_dir>/<task>/<model>`` (holding ``training_dynamics/``).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @classmethod
    def at(cls, dy_log_dir: str | os.PathLike, task: str, model: str) -> "Run":
        """The run folder ``<dy_log_dir>/<task>/<model>`` (the seed's layout)."""
        return cls(Path(dy_log_dir) / task / model)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    # -- names and layout ---------------------------------------------------------------------
    @property
    def task(self) -> str:
        return self.path.resolve().parent.name

    @property
    def model(self) -> str:
        return self.path.resolve().name

    @property
    def name(self) -> str:
        """``<task>-<model>``, for titles."""
        return f"{self.task}-{self.model}"

    @property
    def dynamics_dir(self) -> Path:
        return dynamics_file.dynamics_dir(self.path)

    @property
    def has_dynamics(self) -> bool:
        """Whether any epoch file has been written (a folder a new recording must not overwrite)."""
        d = self.dynamics_dir
        return d.is_dir() and any(dynamics_file.EPOCH_FILE_RE.fullmatch(p.name) for p in d.iterdir())

    def require(self) -> "Run":
        """``self``, or a one-line error when the folder holds no recorded dynamics."""
        if not self.dynamics_dir.is_dir():
            inside = sorted(p.name for p in self.path.iterdir() if dynamics_file.dynamics_dir(p).is_dir()) \
                if self.path.is_dir() else []
            if inside:  # a task folder (dy_log/<task>): its runs are one level down
                listed = ", ".join(inside[:8]) + (f", ... ({len(inside) - 8} more)" if len(inside) > 8 else "")
                raise FileNotFoundError(f"{self.path} is a folder of runs, not a run: give one of them as --run_dir "
                                        f"({listed}), e.g. --run_dir {self.path / inside[0]}")
            where = f"{self.path}: no such run folder" if not self.path.exists() else f"{self.dynamics_dir}: no such folder"
            raise FileNotFoundError(f"{where} (a run folder holds training_dynamics/; record one with "
                                    "`training-dynamics record` first)")
        return self

    @property
    def averaged_from(self) -> list["Run"] | None:
        """The runs an averaged folder (``metrics --run_dir A B --output_dir F``) was averaged from, else ``None``."""
        if self.dynamics_dir.is_dir():
            return None
        paths = self.metrics_settings().get("averaged_runs")
        return [Run(p) for p in paths] if isinstance(paths, list) and paths else None

    def recorded_runs(self) -> list["Run"]:
        """The recorded runs behind this folder: itself, or the runs an averaged folder was averaged from
        (so that an averaged folder is used like any run)."""
        sources = self.averaged_from
        if sources is None:
            return [self.require()]
        gone = [r for r in sources if not r.dynamics_dir.is_dir()]
        if gone:
            raise DynamicsError(f"{self.path} averages {gone[0].path}, which holds no recorded dynamics any more")
        return sources

    # -- what the recording wrote -------------------------------------------------------------
    @cached_property
    def meta(self) -> dict:
        """``dynamics_meta.json`` (``{}`` for seed runs, which have none)."""
        try:
            meta = dynamics_file.read_meta(self.dynamics_dir)
        except ValueError as exc:
            raise DynamicsError(f"{self.dynamics_dir / dynamics_file.META_NAME}: not valid JSON: {exc}") from None
        if not isinstance(meta, dict):
            raise DynamicsError(f"{self.dynamics_dir / dynamics_file.META_NAME}: expected a JSON object")
        return meta

    def epoch_files(self) -> list[Path]:
        """The epoch files in epoch order (checked: numbered 0..E-1)."""
        return dynamics_file.list_epoch_files(self.dynamics_dir)

    @property
    def num_epochs(self) -> int:
        """Epochs recorded (epoch files present)."""
        return len(self.epoch_files())

    @property
    def label_names(self) -> list[str] | None:
        names = self.meta.get("label_names")
        return [str(n) for n in names] if names else None

    def dynamics(self, *, progress: bool = True) -> Dynamics:
        """All recorded epochs as one aligned (N, E, C) array (validated); warns about an unfinished
        run (fewer epochs than planned) and about a single epoch (variability 0)."""
        dyn = dynamics_file.read_dynamics(self.require().dynamics_dir, progress=progress)
        self.warn_if_incomplete(dyn.num_epochs)
        return dyn

    @property
    def planned_epochs(self) -> int | None:
        """The epochs the recording was asked for (``--num_train_epochs``, rounded up), when the meta says."""
        planned = self.meta.get("num_train_epochs")
        if isinstance(planned, (int, float)) and not isinstance(planned, bool) and planned > 0:
            return math.ceil(planned - 1e-9)
        return None

    def progress_note(self, num_epochs: int | None = None) -> str | None:
        """``"run in progress: 2 of 5 epochs recorded"`` while a recording into this folder is running (its lock
        is held by a live process), else ``None``. ``num_epochs``: the epochs read (default: the files now)."""
        from training_dynamics.core.run_writer import recording_holder, staging_dir

        if recording_holder(self.path) is None:
            return None
        done = self.num_epochs if num_epochs is None else num_epochs
        if staging_dir(self.dynamics_dir).is_dir():  # --overwrite_dynamics: the new run has no complete epoch yet
            return (f"a new recording is under way here (no epoch of it complete yet): these are the {done} epochs "
                    "of the run before it")
        planned = self.planned_epochs
        return f"run in progress: {done} of {planned if planned else '?'} epoch{'s' if planned != 1 else ''} recorded"

    def warn_if_incomplete(self, num_epochs: int) -> None:
        """Log what an honest reader of metrics over ``num_epochs`` recorded epochs must know."""
        planned = self.planned_epochs
        note = self.progress_note(num_epochs)
        if note and note.startswith("a new recording"):
            logger.warning("%s: %s", self.path, note)
        elif note and (planned is None or num_epochs < planned):
            logger.warning("%s: %s; the metrics cover those %d (run again for the later ones)", self.path, note,
                           num_epochs)
        elif planned is not None and num_epochs < planned:
            logger.warning("%s: only %d of %d planned epochs were recorded (the run was interrupted?); the metrics "
                           "cover those %d", self.path, num_epochs, planned, num_epochs)
        if num_epochs == 1:
            logger.warning("%s: one epoch recorded: variability is 0 for every example, so the ambiguous region and "
                           "any ranking by variability are meaningless; record 2 or more epochs", self.path)

    # -- metrics (cached in td_metrics.jsonl) -------------------------------------------------
    def write_metrics(self, *, burn_out: int | None = None, include_ci: bool = False, progress: bool = True,
                      output_format: str = "auto") -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Compute the metrics and write, atomically, into the run folder:

        - ``td_metrics.jsonl``: one line per example (floats exact), or ``td_metrics.parquet`` (the
          same table, columnar; ``output_format``, see :func:`write_metrics_table`);
        - ``td_training_summary.jsonl``: one line per recorded epoch;
        - ``td_metrics_settings.json``: burn_out, include_ci, epochs used, and the name, size and mtime
          of every source file (and of ``td_metrics.jsonl``), so :meth:`metrics_are_fresh` can tell.

        Returns:
            (metrics, summary) as ``{column: array}`` dicts (no pandas needed).
        """
        return self.kind.write_metrics(self, burn_out=burn_out, include_ci=include_ci, progress=progress,
                                       output_format=output_format)

    def write_example_metrics(self, *, burn_out: int | None = None, include_ci: bool = False, progress: bool = True,
                              output_format: str = "auto") -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """:meth:`write_metrics` of a run whose rows are examples (one row per example)."""
        from training_dynamics.analysis.streaming import stream_metrics

        t0 = time.perf_counter()
        burn_out = metrics.resolve_burn_out(burn_out, len(self.require().epoch_files()), where=self.dynamics_dir)
        dyn = stream_metrics(self.dynamics_dir, burn_out=burn_out, include_ci=include_ci, progress=progress)
        self.warn_if_incomplete(dyn.num_epochs)
        cols, summary = dyn.columns, dyn.summary
        t1 = time.perf_counter()  # read and computed together, one epoch file at a time
        self.save_metrics(cols, summary, self._settings(dyn, burn_out, include_ci), output_format=output_format)
        logger.info("%d examples x %d epochs x %d classes: read and metrics %.2fs, write %.2fs",
                    dyn.num_examples, dyn.num_epochs, dyn.num_classes, t1 - t0, time.perf_counter() - t1)
        return cols, summary

    def save_metrics(self, columns: dict[str, np.ndarray], summary: dict[str, np.ndarray], settings: dict, *,
                     output_format: str = "auto", tables: dict[str, dict[str, np.ndarray]] | None = None) -> Path:
        """The one writer of a run's metrics: the table (``td_metrics.jsonl`` or ``.parquet``, see
        :func:`write_metrics_table`), any further tables of its kind (``tables``: file name -> columns, JSON
        lines), ``td_training_summary.jsonl`` and, last, ``td_metrics_settings.json`` (``settings`` plus the
        table's stat, so :meth:`metrics_are_fresh` can tell). Returns the table's path."""
        written = write_metrics_table(self.path, columns, output_format, previous=self.metrics_settings().get("output"))
        for name, table in (tables or {}).items():
            fileio.write_jsonl_columns(self.path / name, table)
        fileio.write_jsonl_columns(self.path / SUMMARY_NAME, summary)
        fileio.write_json(self.path / SETTINGS_NAME, {**settings, "output": fileio.file_stat(written)})
        return written

    @staticmethod
    def _settings(dyn: Dynamics | StreamedMetrics, burn_out: int, include_ci: bool) -> dict:
        return {"burn_out": burn_out, "include_ci": bool(include_ci), "epochs_used": list(range(burn_out)),
                "num_epochs_recorded": dyn.num_epochs, "num_examples": dyn.num_examples,
                "num_classes": dyn.num_classes, "columns": list(metrics.COLUMNS), "version": __version__,
                "dynamics_dir": dynamics_file.DYNAMICS_SUBDIR, "sources": dyn.sources}

    def metrics_settings(self) -> dict:
        """``td_metrics_settings.json`` (``{}`` when absent or unreadable)."""
        try:
            with open(self.path / SETTINGS_NAME, encoding="utf-8") as fh:
                saved = fileio.json_loads(fh.read())
        except (OSError, ValueError):
            return {}
        return saved if isinstance(saved, dict) else {}

    @property
    def metrics_path(self) -> Path:
        """The cached metrics table: the one the settings file names (``td_metrics.jsonl`` or
        ``td_metrics.parquet``), else whichever of them exists, else ``td_metrics.jsonl``."""
        return metrics_file_in(self.path, self.metrics_settings())

    def metrics_are_fresh(self, *, burn_out: int | None = None, include_ci: bool = False) -> bool:
        """Whether ``td_metrics.jsonl`` was written for these settings from the epoch files now present.

        Compares the settings file with the current epoch files (names, sizes, mtimes), the resolved
        ``burn_out``, ``include_ci``, the columns and ``td_metrics.jsonl``'s own size and mtime.
        """
        saved = self.metrics_settings()
        try:
            files = self.epoch_files()
            current = [fileio.file_stat(p) for p in files]
            output = fileio.file_stat(self.metrics_path)
        except (OSError, ValueError):
            return False
        if burn_out is None:
            burn_out = len(files)
        return (saved.get("burn_out") == burn_out and saved.get("include_ci") == bool(include_ci)
                and saved.get("columns") == list(metrics.COLUMNS) and saved.get("sources") == current
                and saved.get("output") == output)

    def metrics(self, *, burn_out: int | None = None, include_ci: bool = False, progress: bool = False,
                save: bool = True) -> pd.DataFrame:
        """Per-example metrics: ``td_metrics.jsonl`` when fresh for these settings, else recomputed.

        Recomputed metrics are written back (the next call is fast) unless ``save=False`` (tools
        that only read a run leave its files as they are).
        """
        import pandas as pd

        path = self.metrics_path
        if self.metrics_are_fresh(burn_out=burn_out, include_ci=include_ci):
            try:
                df = read_td_metrics(path)
                logger.info("using %s (up to date)", path)
                note = self.progress_note()
                if note:
                    logger.warning("%s: %s; the metrics cover those", self.path, note)
                return df
            except Exception as exc:  # damaged despite matching stats: recompute
                logger.warning("could not read %s (%s); recomputing", path, exc)
        if not save:
            return pd.DataFrame(self.kind.compute_metrics(self, burn_out=burn_out, include_ci=include_ci,
                                                          progress=progress))
        return pd.DataFrame(self.write_metrics(burn_out=burn_out, include_ci=include_ci, progress=progress)[0])

    def example_metrics(self, *, burn_out: int | None = None, include_ci: bool = False,
                        progress: bool = False) -> dict[str, np.ndarray]:
        """The metric columns of a run whose rows are examples, computed and written nowhere."""
        from training_dynamics.analysis.streaming import stream_metrics

        streamed = stream_metrics(self.require().dynamics_dir, burn_out=burn_out, include_ci=include_ci,
                                  progress=progress)
        self.warn_if_incomplete(streamed.num_epochs)
        return streamed.columns

    @property
    def kind(self) -> kinds.Kind:
        """What kind of run this is: the one place that asks (its meta's ``"kind"``, through the registry of
        :mod:`training_dynamics.core.kind`; classification when the meta says none)."""
        return kinds.of_meta(self.meta)

    # -- the training data --------------------------------------------------------------------
    @cached_property
    def binding(self) -> Binding | None:
        """The examples the run was recorded on (``None`` for a run recorded before bindings)."""
        return Binding.read(self.dynamics_dir)

    def data(self, *, train_file: str | None = None, cache_dir: str | None = None,
             allow_changed: bool = False, text_columns: Sequence[str] | None = None,
             label_column: str | None = None) -> TextClassificationData:
        """The training data the run was recorded on, from the source named in its meta, checked
        against the run's binding (:func:`binding.check`).

        ``train_file``: read the texts from this file instead (the data moved); columns and label
        names still come from the meta. ``allow_changed``: where examples changed since recording,
        go on with the unchanged ones only (their guids are in ``data.excluded_guids``).

        Raises:
            DataChangedError: examples changed since recording (without ``allow_changed``).
        """
        src = dict(self.meta.get("data") or {})
        if train_file:
            src.update(train_file=str(train_file), task_name=None)
        if text_columns:  # the file's columns renamed since (``--text_columns``): still checked by the binding
            src["text_columns"] = list(text_columns)
        if label_column:
            src["label_column"] = label_column
        data = self.kind.load_data(src, label_names=self.meta.get("label_names"), cache_dir=cache_dir,
                                   where=self.dynamics_dir / dynamics_file.META_NAME)
        return bind_data(data, self.binding, run=self.path, allow_changed=allow_changed)

    def texts(self, guids: Sequence[int], data: TextClassificationData | None = None) -> list[str]:
        """The display text of each of ``guids`` (pairs joined by `` [SEP] ``), from ``data`` or :meth:`data`."""
        return texts_for(guids, data if data is not None else self.data())


def bind_data(data, recorded: Binding | None, *, run: str | os.PathLike, allow_changed: bool = False,
              guids: Sequence | None = None):
    """``data`` checked against a run's binding (see :func:`binding.check`); with ``allow_changed`` the
    changed examples are left out of ``data.train`` and named in ``data.excluded_guids``."""
    bad = binding.check(recorded, data, run=run, allow_changed=allow_changed,
                        guids=None if guids is None else dynamics_file.as_guids(guids))
    data.excluded_guids = np.asarray([], dtype=np.int64) if bad is None else bad
    if bad is not None and len(bad):
        keep = ~np.isin(dynamics_file.as_guids(data.train["guid"]), bad)
        data.train = data.train.select(np.flatnonzero(keep))
    return data


def load_source(src: dict, *, label_names: Sequence[str] | None = None, cache_dir: str | None = None,
                where: str | os.PathLike = "the settings") -> TextClassificationData:
    """Load the data a recorded source names (as a run's meta or a ranking's settings hold it), the
    way its kind loads data (:meth:`Kind.load_data <training_dynamics.core.kind.Kind.load_data>`;
    ``src["kind"]``, default classification).

    Raises:
        DataError: the source names no data, or its file is gone (the message suggests --train_file).
    """
    return kinds.of_meta(src).load_data(src, label_names=label_names, cache_dir=cache_dir, where=where)


def texts_for(guids: Sequence[int], data: TextClassificationData) -> list[str]:
    """Texts of ``guids`` from the training set of ``data``; a one-line error for a guid it lacks."""
    import pandas as pd

    from training_dynamics.core.data import DataError

    guids = dynamics_file.as_guids(guids)
    texts = pd.Series(data.display_texts(), index=dynamics_file.as_guids(data.train["guid"]))
    missing = ~np.isin(guids, texts.index.to_numpy())
    if missing.any():
        raise DataError(f"guid {guids[missing][0]} of the dynamics is not in the training data "
                        f"({data.source.get('train_file') or data.source.get('task_name')}); pass --train_file")
    return texts.reindex(guids).tolist()


# -- metrics tables (a run folder's cache, or a bare file such as published coordinates) --------
def metrics_format(output_format: str, num_examples: int) -> str:
    """``jsonl`` or ``parquet``: ``auto`` is jsonl (the seed's format, readable by any tool) below
    :data:`PARQUET_FROM` examples and parquet from there on (written and read several times faster;
    pandas, polars, duckdb and pyarrow read it)."""
    if output_format not in OUTPUT_FORMATS:
        raise TrainingDynamicsError(f"unknown output format {output_format!r}; choose one of {', '.join(OUTPUT_FORMATS)}")
    if output_format == "auto":
        return "parquet" if num_examples >= PARQUET_FROM else "jsonl"
    return output_format


def write_metrics_table(folder: str | os.PathLike, columns: dict[str, np.ndarray], output_format: str = "auto", *,
                        previous: dict | None = None) -> Path:
    """Write per-example metric columns as ``<folder>/td_metrics.jsonl`` or ``.parquet`` (:func:`metrics_format`),
    atomically; returns the path written.

    The table of the other format would now be stale: it is removed when it is the one this tool
    wrote last (``previous``: the ``output`` record of the settings file before this write, as
    :func:`fileio.file_stat` made it), and otherwise left as it is, with a warning.
    """
    n = len(next(iter(columns.values())))
    fmt = metrics_format(output_format, n)
    folder = Path(folder)
    path, other = (folder / METRICS_PARQUET_NAME, folder / METRICS_NAME) if fmt == "parquet" else \
        (folder / METRICS_NAME, folder / METRICS_PARQUET_NAME)
    (fileio.write_parquet_columns if fmt == "parquet" else fileio.write_jsonl_columns)(path, columns)
    if other.is_file():
        if previous and previous == fileio.file_stat(other):
            other.unlink()
        else:
            logger.warning("%s is left as it was (this tool did not write it, or it changed since); the metrics "
                           "just computed are in %s", other, path.name)
    return path


def metrics_file_in(folder: str | os.PathLike, settings: dict | None = None) -> Path:
    """The metrics table of a folder (see :attr:`Run.metrics_path`)."""
    folder = Path(folder)
    named = ((settings or {}).get("output") or {}).get("file") if isinstance((settings or {}).get("output"), dict) else None
    if named in (METRICS_NAME, METRICS_PARQUET_NAME) and (folder / named).is_file():
        return folder / named
    for name in (METRICS_NAME, METRICS_PARQUET_NAME):
        if (folder / name).is_file():
            return folder / name
    return folder / METRICS_NAME


def _read_parquet(path: str | os.PathLike) -> pd.DataFrame:
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pandas()
    except Exception as exc:  # ArrowInvalid & co: a damaged or foreign file
        raise TrainingDynamicsError(f"{path}: not a readable parquet file ({' '.join(str(exc).split())})") from None


def read_td_metrics(path: str | os.PathLike) -> pd.DataFrame:
    """Read a ``td_metrics.jsonl`` or ``td_metrics.parquet`` written by :meth:`Run.write_metrics` (fast;
    dtypes and exact floats kept)."""
    if Path(path).suffix == ".parquet":
        df = _read_parquet(path)
        missing = [c for c in metrics.COLUMNS if c not in df]
        if missing:
            raise TrainingDynamicsError(f"{path}: missing column(s) {', '.join(missing)}")
        if df[list(metrics.COLUMNS)].isna().any().any():
            raise TrainingDynamicsError(f"{path}: missing values")
        return df[list(metrics.COLUMNS) + [c for c in kinds.metric_columns() if c in df]]
    import pyarrow as pa
    import pyarrow.json as pj

    optional = kinds.metric_columns()  # a kind's own columns (a generative run's token accuracy, a word's index)
    types = {c: pa.int64() for c in _INT_COLUMNS} | {"never_learned": pa.bool_()} | {
        c: pa.int64() if t == "int" else pa.float64() for c, t in optional.items()}
    columns = metrics.COLUMNS + tuple(optional)
    table = None
    for guid_type in (pa.int64(), pa.string()):  # integer ids (the usual), else string ids
        schema = pa.schema([(c, guid_type if c == "guid" else types.get(c, pa.float64())) for c in columns])
        try:
            table = pj.read_json(path, parse_options=pj.ParseOptions(explicit_schema=schema,
                                                                      unexpected_field_behavior="ignore"))
            break
        except pa.ArrowInvalid:
            if guid_type == pa.string():
                raise
    if any(table.column(c).null_count for c in metrics.COLUMNS):
        raise TrainingDynamicsError(f"{path}: missing values")
    absent = [c for c in optional if table.column(c).null_count == table.num_rows]
    return table.drop(absent).to_pandas()


def read_metrics_file(path: str | os.PathLike) -> pd.DataFrame:
    """Read a td_metrics-style jsonl (one object per line with at least guid, confidence, variability),
    or a parquet table with those columns."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if path.suffix == ".parquet":
        df = _read_parquet(path)
    else:
        df = _read_jsonl_metrics(path)
    if not len(df):
        raise TrainingDynamicsError(f"{path}: no examples")
    missing = [c for c in ("guid", "confidence", "variability") if c not in df]
    if missing:
        raise TrainingDynamicsError(f"{path}: missing column(s) {', '.join(missing)} (columns: {', '.join(map(str, df.columns))})")
    for col in ("confidence", "variability"):
        bad = ~np.isfinite(pd.to_numeric(df[col], errors="coerce").to_numpy(float))
        if bad.any():
            raise TrainingDynamicsError(f"{path}: guid {df['guid'].iloc[int(np.argmax(bad))]}: {col} is not a finite number")
    return df


def _read_jsonl_metrics(path: Path) -> pd.DataFrame:
    import pandas as pd

    try:
        df = pd.read_json(path, lines=True, dtype=False)
    except ValueError:
        for _ in fileio.jsonl_records(path, error=DynamicsError):  # names the bad line
            pass
        raise DynamicsError(f"{path}: not a jsonl file of metrics") from None
    return df


@dataclass
class RunMetrics:
    """Per-example metrics of one run (or metrics file), with what is known about them."""

    df: pd.DataFrame
    num_epochs: int | None  #: epochs the metrics cover (after burn-out); None when unknown
    task: str
    model: str
    label_names: list[str] | None
    source: Path
    run: Run | None = None  #: the run folder, when the metrics come from one

    @property
    def name(self) -> str:
        """``<task>-<model>`` (or the file's stem), for titles."""
        return f"{self.task}-{self.model}" if self.model else self.task


def _settings_epochs(folder: Path) -> int | None:
    e = Run(folder).metrics_settings().get("burn_out")
    return int(e) if isinstance(e, int) and e > 0 else None


def load_metrics(path: str | os.PathLike, *, burn_out: int | None = None, include_ci: bool = False,
                 num_epochs: int | None = None, save: bool = True) -> RunMetrics:
    """Metrics of a run folder (cached or recomputed, see :meth:`Run.metrics`) or of a td_metrics-style
    jsonl file, such as published data-map coordinates (used as it is).

    ``num_epochs`` (the epochs the correctness counts cover) comes from the settings file when known;
    a bare metrics file needs it given. ``df.attrs["num_epochs"]`` is set when it is known.
    """
    path = Path(path)
    label_names = None
    run = None
    if path.is_dir():
        if dynamics_file.dynamics_dir(path).is_dir():
            run = Run(path)
            df = run.metrics(burn_out=burn_out, include_ci=include_ci, save=save)
            num_epochs = num_epochs or burn_out or run.num_epochs
            label_names = run.label_names
        elif metrics_file_in(path, Run(path).metrics_settings()).is_file():
            table = metrics_file_in(path, Run(path).metrics_settings())
            if burn_out or include_ci:
                raise TrainingDynamicsError(f"{path}: --burn_out and --include_ci need recorded dynamics "
                                 f"({dynamics_file.DYNAMICS_SUBDIR}/); {table.name} alone is used as it is")
            runs = Run(path).averaged_from
            if runs is None:
                logger.warning("%s has no %s/; using %s as it is", path, dynamics_file.DYNAMICS_SUBDIR, table.name)
            df = read_metrics_file(table)
            num_epochs = num_epochs or _settings_epochs(path)
            if runs is not None:
                df.attrs["num_runs"] = len(runs)  # averaged: correctness is a mean count
                label_names = Run(path).metrics_settings().get("label_names")
        else:
            from training_dynamics.core.run_writer import recording_holder

            if recording_holder(path) is not None:
                raise FileNotFoundError(f"{path}: run in progress: no epoch recorded yet; the data map can be drawn "
                                        "once its first epoch ends")
            raise FileNotFoundError(f"{path}: neither {dynamics_file.DYNAMICS_SUBDIR}/ nor {METRICS_NAME} found")
        task, model = path.resolve().parent.name, path.resolve().name
    elif path.is_file():
        if burn_out or include_ci:
            raise TrainingDynamicsError(f"{path}: --burn_out and --include_ci need a run folder (a metrics file is used as it is)")
        df = read_metrics_file(path)
        task, model = path.stem, ""
        if path.name in (METRICS_NAME, METRICS_PARQUET_NAME):
            task, model = path.resolve().parent.parent.name, path.resolve().parent.name
            num_epochs = num_epochs or _settings_epochs(path.parent)
    elif path.suffix in (".jsonl", ".json", ".parquet"):
        raise FileNotFoundError(f"{path}: no such metrics file")
    else:
        raise FileNotFoundError(f"{path}: no such run folder or metrics file")
    if num_epochs:
        df.attrs["num_epochs"] = int(num_epochs)
    return RunMetrics(df=df, num_epochs=int(num_epochs) if num_epochs else None, task=task, model=model,
                      label_names=label_names, source=path, run=run)
