"""A run's metrics in partitions of its examples: independent jobs (one machine or many), then a cheap merge.

Every per-example metric depends only on that example's own epochs, so the examples can be split
by id (:func:`streaming.partition_of`: a hash of the id, the same on every machine) and each part
computed alone -- by a process pool here (:func:`run_partitions`, ``--num_proc``) or by independent
jobs anywhere (:func:`write_partition`, ``--partition I/N``: a Slurm array, a Ray task, ...), each
writing ``td_metrics.part-<I>-of-<N>.parquet`` into the run folder. :func:`merge_partitions`
(``--merge_partitions N``) checks that the N parts cover every example once, from the same epoch
files and settings, and writes the run's ``td_metrics`` table, summary and settings as
:meth:`Run.write_metrics` does. There is no scheduler here: any launcher that can run N commands will do.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from training_dynamics.core import fileio
from training_dynamics.core.errors import TrainingDynamicsError
from training_dynamics.analysis.run import Run
from training_dynamics.analysis.streaming import default_threads, stream_metrics, summary_columns

logger = logging.getLogger(__name__)


def partition_path(run: Run, i: int, k: int) -> Path:
    """``<run>/td_metrics.part-<i>-of-<k>.parquet``."""
    return run.path / f"td_metrics.part-{i}-of-{k}.parquet"


def write_partition(run: Run, i: int, k: int, *, burn_out: int | None = None, include_ci: bool = False,
                    progress: bool = False, threads: int | None = None) -> Path:
    """Compute partition ``i`` of ``k`` of a run and write it (with its settings and per-epoch sums)."""
    from training_dynamics.analysis.metrics import resolve_burn_out

    t0 = time.perf_counter()
    burn_out = resolve_burn_out(burn_out, len(run.require().epoch_files()), where=run.dynamics_dir)
    res = stream_metrics(run.dynamics_dir, burn_out=burn_out, include_ci=include_ci, progress=progress,
                         threads=threads, partition=(i, k))
    meta = {"partition": [i, k], "num_examples": res.num_examples, "epoch_sums": res.epoch_sums,
            "settings": Run._settings(res, burn_out, include_ci)}
    path = fileio.write_parquet_columns(partition_path(run, i, k), res.columns, metadata=meta)
    logger.info("partition %d of %d: %d examples in %.2fs -> %s", i, k, res.num_examples, time.perf_counter() - t0, path)
    return path


def merge_partitions(run: Run, k: int, *, output_format: str = "auto") -> tuple[dict, dict]:
    """Merge the ``k`` partitions of a run into its metrics table, summary and settings.

    Raises:
        ValueError: a partition is missing or damaged, computed from other epoch files or other
            settings than the others, or the parts do not hold each row of the first epoch file once.
    """
    import pyarrow.parquet as pq

    t0 = time.perf_counter()
    current = [fileio.file_stat(p) for p in run.require().epoch_files()]
    paths, metas = [], []
    for i in range(k):
        path = partition_path(run, i, k)
        if not path.is_file():
            raise TrainingDynamicsError(f"{path}: partition {i} of {k} is missing; compute it with --partition {i}/{k}")
        try:
            meta = fileio.parquet_metadata(path) or {}
            names = pq.read_schema(path).names
        except Exception as exc:  # damaged file
            raise TrainingDynamicsError(f"{path}: not a readable partition ({' '.join(str(exc).split())}); compute it again "
                             f"with --partition {i}/{k}") from None
        settings = meta.get("settings") or {}
        if meta.get("partition") != [i, k] or settings.get("sources") != current:
            raise TrainingDynamicsError(f"{path}: computed from other epoch files than the ones now in {run.dynamics_dir} "
                             f"(or not a partition {i}/{k}); compute it again with --partition {i}/{k}")
        if metas and {key: v for key, v in settings.items() if key != "num_examples"} != \
                {key: v for key, v in metas[0]["settings"].items() if key != "num_examples"}:
            raise TrainingDynamicsError(f"{path}: computed with other settings (burn_out, include_ci, columns) than partition 0; "
                             "compute every partition with the same flags")
        paths.append(path)
        metas.append(meta)

    def column(name: str) -> np.ndarray:  # one column of every part: the merge holds the output and one column
        values = np.concatenate([pq.read_table(p, columns=[name]).column(name).to_numpy(zero_copy_only=False)
                                 for p in paths])
        return values.astype(str) if values.dtype.kind == "O" else values

    n = sum(m["num_examples"] for m in metas)
    index = column("index")
    order = np.full(n, -1, dtype=np.int64)
    ok = len(index) == n and (n == 0 or (index.min() >= 0 and index.max() < n))
    if ok:
        order[index] = np.arange(n)
        ok = not (order < 0).any()
    if not ok:
        raise TrainingDynamicsError(f"{run.path}: the {k} partitions do not hold each example of the first epoch file once "
                         f"({n} rows); compute them again")
    expected = run.meta.get("num_examples")
    if isinstance(expected, int) and expected != n:
        raise TrainingDynamicsError(f"{run.dynamics_dir}: dynamics_meta.json says {expected} examples, the partitions hold {n}")
    cols = {name: column(name)[order] for name in names}
    sums = {key: np.sum([m["epoch_sums"][key] for m in metas], axis=0).tolist() for key in ("logp_gold", "correct")}
    summary = summary_columns(sums, n)
    written = run.save_metrics(cols, summary, dict(metas[0]["settings"], num_examples=n, partitions=k),
                               output_format=output_format)
    run.warn_if_incomplete(len(current))
    logger.info("merged %d partitions (%d examples) in %.2fs -> %s", k, n, time.perf_counter() - t0, written)
    return cols, summary


def _partition_job(args: tuple) -> str:
    path, i, k, burn_out, include_ci, threads = args
    return str(write_partition(Run(path), i, k, burn_out=burn_out, include_ci=include_ci, threads=threads))


def run_partitions(run: Run, num_proc: int, *, burn_out: int | None = None, include_ci: bool = False,
                   output_format: str = "auto") -> tuple[dict, dict]:
    """Compute ``num_proc`` partitions in a pool of as many processes, then merge them."""
    from concurrent.futures import ProcessPoolExecutor

    threads = max(1, default_threads() // num_proc)
    jobs = [(str(run.path), i, num_proc, burn_out, include_ci, threads) for i in range(num_proc)]
    with ProcessPoolExecutor(num_proc) as pool:
        for path in pool.map(_partition_job, jobs):
            logger.debug("wrote %s", path)
    out = merge_partitions(run, num_proc, output_format=output_format)
    remove_partitions(run, num_proc)  # written just now, merged: nothing else needs them
    return out


def remove_partitions(run: Run, k: int) -> None:
    """Delete the ``k`` partition files of a run (written by this tool)."""
    for i in range(k):
        partition_path(run, i, k).unlink(missing_ok=True)

