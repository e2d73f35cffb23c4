"""Streamed metrics (training_dynamics.analysis.streaming) against the in-memory ones on the same files:
every column, burn_out and include_ci, every format and id kind, and the same error messages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_dynamics_file import BAD_INPUTS, make_run

from training_dynamics.core import dynamics_file
from training_dynamics.analysis import metrics, streaming
from training_dynamics.core.dynamics_file import DynamicsError, read_dynamics, write_epoch
from training_dynamics.kinds.generative.dynamics import write_generative_epoch


def reference(dy: Path, **kw) -> tuple[dict, dict]:
    dyn = read_dynamics(dy, progress=False)
    return metrics.td_metrics_columns(dyn, **kw), metrics.training_summary_columns(dyn)


def assert_same(got: dict, want: dict) -> None:
    assert list(got) == list(want)
    for c in want:
        g, w = np.asarray(got[c]), np.asarray(want[c])
        assert g.dtype == w.dtype or (g.dtype.kind == w.dtype.kind == "U"), (c, g.dtype, w.dtype)
        if w.dtype.kind == "f":
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14, err_msg=c)
        else:
            np.testing.assert_array_equal(g, w, err_msg=c)


def write_run(dy: Path, guids, gold, logits, *, fmt="npz", shuffle=True, seed=0) -> None:
    """(N, E, C) logits as epoch files, rows in a different order each epoch when ``shuffle``."""
    rng = np.random.default_rng(seed)
    guids, gold = np.asarray(guids), np.asarray(gold)
    for e in range(logits.shape[1]):
        order = rng.permutation(len(guids)) if shuffle and e else np.arange(len(guids))
        f = fmt if isinstance(fmt, str) else fmt[e % len(fmt)]
        write_epoch(dy, e, guids[order], logits[order, e], gold[order], fmt=f)


def random_logits(n, e, c, seed=0):
    rng = np.random.default_rng(seed)
    gold = rng.integers(c, size=n)
    logits = rng.normal(size=(n, e, c)).astype(np.float32) * 3
    logits[: n // 10] = 0.0  # ties: argmax goes to the lowest class
    logits[n // 10: n // 5] = logits[n // 10: n // 5, :1]  # the same logits every epoch: variance 0
    return gold, logits


IDS = {
    "dense": lambda n, rng: rng.permutation(n),
    "dense_gaps": lambda n, rng: rng.choice(2 * n, size=n, replace=False),
    "sparse": lambda n, rng: rng.choice(10**12, size=n, replace=False),
    "negative": lambda n, rng: rng.permutation(n) - n // 2,
    "strings": lambda n, rng: np.array([f"pair-{i}" for i in rng.permutation(n)]),
}


@pytest.mark.parametrize("ids,fmt,shuffle", [
    ("dense", "npz", True), ("dense", "npz", False), ("dense_gaps", "npz", True), ("sparse", "npz", True),
    ("negative", ("npz", "jsonl"), True), ("strings", "npz", True), ("strings", ("jsonl", "npz"), False),
    pytest.param("dense", "jsonl", True, marks=pytest.mark.slow),
    pytest.param("strings", "jsonl", True, marks=pytest.mark.slow),
])
def test_streamed_equals_in_memory(tmp_path, ids, fmt, shuffle):
    n, e, c = 257, 4, 3
    gold, logits = random_logits(n, e, c, seed=len(ids))
    guids = IDS[ids](n, np.random.default_rng(1))
    write_run(tmp_path, guids, gold, logits, fmt=fmt, shuffle=shuffle)
    want, want_summary = reference(tmp_path)
    got = streaming.stream_metrics(tmp_path, progress=False, block=50)  # blocks that do not divide N
    assert_same(got.columns, want)
    assert_same(got.summary, want_summary)
    assert (got.num_examples, got.num_epochs, got.num_classes, got.kind) == (n, e, c, "classification")
    assert [s["file"] for s in got.sources] == [f"dynamics_epoch_{i}.{fmt if isinstance(fmt, str) else fmt[i % 2]}"
                                                for i in range(e)]


@pytest.mark.parametrize("burn_out,include_ci", [(1, False), (2, True), (5, False), (5, True)])
def test_burn_out_and_include_ci(tmp_path, burn_out, include_ci):
    gold, logits = random_logits(300, 5, 2, seed=3)
    write_run(tmp_path, np.arange(300), gold, logits)
    want, want_summary = reference(tmp_path, burn_out=burn_out, include_ci=include_ci)
    got = streaming.stream_metrics(tmp_path, burn_out=burn_out, include_ci=include_ci, progress=False, block=64)
    assert_same(got.columns, want)
    assert_same(got.summary, want_summary)  # the summary covers every recorded epoch


def test_many_classes(tmp_path):
    """Past 32 classes the per-row values come from the (M, C) code path instead of one array per class."""
    gold, logits = random_logits(200, 3, 40)
    write_run(tmp_path, np.random.default_rng(0).permutation(200), gold, logits)
    got = streaming.stream_metrics(tmp_path, progress=False, block=77)
    want, want_summary = reference(tmp_path)
    assert_same(got.columns, want)
    assert_same(got.summary, want_summary)


def test_single_epoch_and_single_example(tmp_path):
    gold, logits = random_logits(1, 1, 2)
    write_run(tmp_path / "a", [5], gold, logits)
    assert_same(streaming.td_metrics_columns(tmp_path / "a"), reference(tmp_path / "a")[0])


def test_extreme_logits_stay_finite_and_equal(tmp_path):
    logits = np.array([[[300, -300], [-300, 300], [1e4, 0]], [[0, 0], [1e-30, 0], [-50, 50]]], dtype=np.float64)
    for e in range(3):
        write_epoch(tmp_path, e, [1, 0], logits[:, e], [0, 1], fmt="jsonl")
    got = streaming.td_metrics_columns(tmp_path)
    assert_same(got, reference(tmp_path)[0])
    assert all(np.isfinite(v).all() for k, v in got.items() if k != "guid")


@pytest.mark.parametrize("fmt", ["jsonl", "npz"])
def test_generative(tmp_path, fmt):
    rng = np.random.default_rng(0)
    n, e = 200, 3
    values = np.stack([-rng.exponential(1.0, size=(n, e)), rng.uniform(0, 1, size=(n, e)),
                       np.repeat(rng.integers(1, 40, size=(n, 1)), e, axis=1)], axis=-1)
    values[:20, :, 1] = 0.95
    values[:5, :, 0] = 0.0  # p = 1: 1 - p floored
    guids = np.array([f"g{i}" for i in range(n)])
    for i in range(e):
        order = rng.permutation(n)
        write_generative_epoch(tmp_path, i, guids[order], values[order, i], fmt=fmt)
    (tmp_path / "dynamics_meta.json").write_text(json.dumps({"kind": "generative", "num_labels": 2}))
    for burn_out in (None, 2):
        want, want_summary = reference(tmp_path, burn_out=burn_out)
        got = streaming.stream_metrics(tmp_path, burn_out=burn_out, progress=False, block=33)
        assert list(got.columns)[-2:] == ["token_accuracy", "num_tokens"]
        assert_same(got.columns, want)
        assert_same(got.summary, want_summary)
        assert got.kind == "generative" and got.num_classes == 2


# -- the same checks and messages as read_dynamics --------------------------------------------------
def _messages(dy: Path) -> tuple[str, str]:
    out = []
    for read in (lambda: read_dynamics(dy, progress=False), lambda: streaming.stream_metrics(dy, progress=False)):
        with pytest.raises(DynamicsError) as err:
            read()
        out.append(str(err.value))
    return out[0], out[1]


LIBRARY_BAD_INPUTS = [f for f in BAD_INPUTS if "burn_out" not in f.__name__]


@pytest.mark.slow  # 26 cases (the fast subset runs them through the CLI in test_dynamics_file)
@pytest.mark.parametrize("spoil", LIBRARY_BAD_INPUTS, ids=[f.__name__.lstrip("_") for f in LIBRARY_BAD_INPUTS])
def test_bad_inputs_same_message_as_read_dynamics(tmp_path, spoil):
    run, dy, arrays = make_run(tmp_path)
    spoil(run, dy, arrays)
    old, new = _messages(dy)
    assert new == old


def _npz_run(tmp_path: Path, guids_per_epoch: list, *, gold=None) -> Path:
    for e, guids in enumerate(guids_per_epoch):
        g = np.zeros(len(guids), int) if gold is None else np.asarray(gold[e])
        write_epoch(tmp_path, e, np.asarray(guids), np.zeros((len(guids), 2)), g, fmt="npz")
    return tmp_path


@pytest.mark.parametrize("case,guids,expected", [
    ("repeat in the first", [[0, 1, 2, 1], [0, 1, 2, 3]], "row 3 (guid 1): example repeated in this epoch (also at row 1)"),
    ("repeat later", [[0, 1, 2, 3], [3, 2, 3, 0]], "row 2 (guid 3): example repeated in this epoch (also at row 0)"),
    ("repeat of an unknown id", [[0, 1, 2, 3], [3, 9, 9, 0]], "row 2 (guid 9): example repeated"),
    ("missing", [[0, 1, 2, 3], [3, 2, 1]], "example guid 0 (row 0 of dynamics_epoch_0.npz) is missing"),
    ("replaced", [[0, 1, 2, 3], [3, 2, 7, 0]], "example guid 1 (row 1 of dynamics_epoch_0.npz) is missing"),
    ("extra", [[0, 1, 2, 3], [3, 2, 1, 0, 5]], "row 4 (guid 5): example not in dynamics_epoch_0.npz"),
    ("extra far away", [[0, 1, 2, 3], [3, 2, 1, 0, 10**15]], "row 4 (guid 1000000000000000): example not in"),
    ("negative", [[0, 1, 2, 3], [3, 2, -1, 0, 1]], "row 2 (guid -1): example not in"),
    ("sparse repeat", [[0, 10**12, 2, 3], [3, 2, 3, 0]], "row 2 (guid 3): example repeated"),
    ("sparse missing", [[0, 10**12, 2, 3], [3, 2, 0, 4]], "example guid 1000000000000 (row 1"),
    ("strings", [["a", "b"], ["b", "c"]], "example guid a (row 0 of dynamics_epoch_0.npz) is missing"),
    ("kinds", [["a", "b"], [0, 1]], "integer ids, but dynamics_epoch_0.npz has string ids"),
])
def test_alignment_errors_same_message(tmp_path, case, guids, expected):
    old, new = _messages(_npz_run(tmp_path, guids))
    assert new == old and expected in new, (case, new)


def test_gold_change_after_shuffle_names_both_rows(tmp_path):
    dy = _npz_run(tmp_path, [[0, 1, 2, 3], [3, 2, 1, 0]], gold=[[0, 1, 0, 1], [1, 0, 0, 0]])
    old, new = _messages(dy)
    assert new == old
    assert "dynamics_epoch_1.npz: row 2 (guid 1): gold 0, but gold 1 in dynamics_epoch_0.npz row 1 (guid 1)" in new


def test_dense_ids_need_no_sort(tmp_path, monkeypatch):
    """Dense integer ids (shuffled rows) are aligned without sorting anything."""
    gold, logits = random_logits(1000, 3, 2)
    write_run(tmp_path, np.arange(1000), gold, logits)
    want = reference(tmp_path)[0]
    calls = []
    real = np.argsort
    monkeypatch.setattr(np, "argsort", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setattr(dynamics_file._EpochRows, "check_repeats", lambda self: calls.append(2))
    assert_same(streaming.td_metrics_columns(tmp_path), want)
    assert calls == []


# -- the columnar output -----------------------------------------------------------------------------
from conftest import run_cli  # noqa: E402

from training_dynamics.analysis import run as run_module  # noqa: E402
from training_dynamics.analysis.run import METRICS_NAME, METRICS_PARQUET_NAME, Run, load_metrics  # noqa: E402


@pytest.mark.parametrize("ids", ["dense", "strings"])
def test_parquet_table_reads_back_as_the_jsonl_one(tmp_path, ids):
    gold, logits = random_logits(120, 3, 3)
    for name in ("a", "b"):
        write_run(tmp_path / name / "training_dynamics", IDS[ids](120, np.random.default_rng(0)), gold, logits)
    Run(tmp_path / "a").write_metrics(progress=False, output_format="jsonl")
    Run(tmp_path / "b").write_metrics(progress=False, output_format="parquet")
    assert (tmp_path / "b" / METRICS_PARQUET_NAME).is_file() and not (tmp_path / "b" / METRICS_NAME).exists()
    a, b = Run(tmp_path / "a").metrics(), Run(tmp_path / "b").metrics()
    assert Run(tmp_path / "b").metrics_are_fresh()
    import pandas as pd

    pd.testing.assert_frame_equal(a, b, check_exact=True)
    for src in (tmp_path / "b", tmp_path / "b" / METRICS_PARQUET_NAME):  # a folder, or the file itself
        rm = load_metrics(src)
        pd.testing.assert_frame_equal(rm.df[list(metrics.COLUMNS)], a, check_exact=True)
        assert rm.num_epochs == 3


def test_auto_format_switches_at_the_threshold_and_removes_the_stale_table(tmp_path, monkeypatch):
    gold, logits = random_logits(50, 2, 2)
    write_run(tmp_path / "training_dynamics", np.arange(50), gold, logits)
    run = Run(tmp_path)
    run.write_metrics(progress=False)
    assert run.metrics_path.name == METRICS_NAME
    monkeypatch.setattr(run_module, "PARQUET_FROM", 50)
    run.write_metrics(progress=False)
    assert run.metrics_path.name == METRICS_PARQUET_NAME and not (tmp_path / METRICS_NAME).exists()
    assert run.metrics_settings()["output"]["file"] == METRICS_PARQUET_NAME and run.metrics_are_fresh()
    (tmp_path / METRICS_PARQUET_NAME).write_bytes(b"not parquet")  # damaged: stale, recomputed
    assert not run.metrics_are_fresh() and len(run.metrics()) == 50
    (tmp_path / METRICS_NAME).write_text("mine\n")  # a file this tool did not write is never removed
    run.write_metrics(progress=False, output_format="parquet")
    assert (tmp_path / METRICS_NAME).read_text() == "mine\n" and run.metrics_path.name == METRICS_PARQUET_NAME
    assert run.metrics_are_fresh() and len(run.metrics()) == 50


def test_cli_output_format_and_a_generative_parquet(tmp_path):
    n = 40
    values = np.stack([-np.linspace(0.01, 3, n), np.linspace(0, 1, n), np.full(n, 7.0)], axis=-1)
    dy = tmp_path / "training_dynamics"
    for e in range(2):
        write_generative_epoch(dy, e, [f"g{i}" for i in range(n)], values, fmt="npz")
    proc = run_cli("td_metrics.py", "--run_dir", tmp_path, "--no_progress", "--output_format", "parquet")
    assert "td_metrics.parquet" in proc.stderr
    df = load_metrics(tmp_path).df
    assert list(df.columns)[-2:] == ["token_accuracy", "num_tokens"] and df["num_tokens"].tolist() == [7] * n
    got = {c: df[c].to_numpy() for c in df} | {"guid": df["guid"].to_numpy(str)}  # pandas holds strings as objects
    assert_same(got, reference(dy)[0])
    bad = run_cli("td_metrics.py", "--run_dir", tmp_path, "--output_format", "csv", check=False)
    assert bad.returncode == 2 and "csv" in bad.stderr


# -- partitions ----------------------------------------------------------------------------------------
from training_dynamics.analysis import partitions  # noqa: E402


@pytest.mark.parametrize("ids", ["dense", "strings"])
def test_partitions_merge_to_the_whole_run(tmp_path, ids):
    n = 400
    gold, logits = random_logits(n, 4, 3, seed=5)
    guids = IDS[ids](n, np.random.default_rng(2))
    for name in ("whole", "parts"):
        write_run(tmp_path / name / "training_dynamics", guids, gold, logits)
    whole, _ = Run(tmp_path / "whole").write_metrics(progress=False, burn_out=3, include_ci=True)
    run = Run(tmp_path / "parts")
    sizes = []
    for i in (2, 0, 1):  # any order, as independent jobs finish
        path = partitions.write_partition(run, i, 3, burn_out=3, include_ci=True)
        sizes.append(fileio_rows(path))
    assert sum(sizes) == n and min(sizes) > n / 6  # the hash spreads the ids
    cols, summary = partitions.merge_partitions(run, 3)
    assert_same({c: np.asarray(v) for c, v in cols.items()}, whole)
    want_summary = reference(tmp_path / "whole" / "training_dynamics")[1]
    assert_same(summary, want_summary)
    assert run.metrics_are_fresh(burn_out=3, include_ci=True)
    df = run.metrics(burn_out=3, include_ci=True)
    assert df["guid"].astype(str).tolist() == [str(g) for g in whole["guid"]]  # the first file's order


def fileio_rows(path) -> int:
    import pyarrow.parquet as pq

    return pq.read_metadata(path).num_rows


def test_partition_errors_name_the_whole_file_row_and_merge_refuses_gaps(tmp_path):
    guids = np.arange(40)
    gold, logits = random_logits(40, 2, 2)
    dy = tmp_path / "training_dynamics"
    write_run(dy, guids, gold, logits, shuffle=False)
    part = int(streaming.partition_of(np.array([7]), 4)[0])
    bad = gold.copy()
    bad[7] = 1 - bad[7]
    write_epoch(dy, 1, guids, logits[:, 1], bad, fmt="npz")
    with pytest.raises(DynamicsError, match=r"dynamics_epoch_1.npz: row 7 \(guid 7\): gold .* dynamics_epoch_0.npz row 7"):
        streaming.stream_metrics(dy, partition=(part, 4), progress=False)
    streaming.stream_metrics(dy, partition=((part + 1) % 4, 4), progress=False)  # other partitions do not hold it
    write_epoch(dy, 1, guids, logits[:, 1], gold, fmt="npz")
    run = Run(tmp_path)
    for i in range(3):
        partitions.write_partition(run, i, 4)
    with pytest.raises(ValueError, match="partition 3 of 4 is missing; compute it with --partition 3/4"):
        partitions.merge_partitions(run, 4)
    partitions.write_partition(run, 3, 4, burn_out=1)
    with pytest.raises(ValueError, match="other settings"):
        partitions.merge_partitions(run, 4)
    partitions.write_partition(run, 3, 4)
    write_epoch(dy, 1, guids, logits[:, 1] + 1, gold, fmt="npz")  # the recording changed since
    with pytest.raises(ValueError, match="other epoch files"):
        partitions.merge_partitions(run, 4)


@pytest.mark.slow  # starts a process pool
def test_cli_num_proc_and_partition_flags(tmp_path):
    gold, logits = random_logits(300, 3, 2)
    for name in ("a", "b", "c"):
        write_run(tmp_path / name / "training_dynamics", np.arange(300), gold, logits)
    run_cli("td_metrics.py", "--run_dir", tmp_path / "a", "--no_progress")
    run_cli("td_metrics.py", "--run_dir", tmp_path / "b", "--num_proc", "2", "--no_progress")
    for i in range(3):
        run_cli("td_metrics.py", "--run_dir", tmp_path / "c", "--partition", f"{i}/3", "--no_progress")
    run_cli("td_metrics.py", "--run_dir", tmp_path / "c", "--merge_partitions", "3")
    a = (tmp_path / "a" / METRICS_NAME).read_text()
    assert (tmp_path / "b" / METRICS_NAME).read_text() == a == (tmp_path / "c" / METRICS_NAME).read_text()
    assert not list((tmp_path / "b").glob("td_metrics.part-*"))  # the pool's parts are merged and removed
    bad = run_cli("td_metrics.py", "--run_dir", tmp_path / "c", "--partition", "3/3", check=False)
    assert bad.returncode == 2 and "I must be 0..N-1" in bad.stderr
