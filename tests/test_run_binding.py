"""A run knows its data and its writer: the binding check, averaging as a join of equals, the folder lock."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, run_cli, train_args
from training_dynamics.core import binding, dynamics_file
from training_dynamics.core.binding import Binding
from training_dynamics.core.errors import RunLockedError
from training_dynamics.analysis.run import Run
from training_dynamics.core.run_writer import LOCK_NAME, RunWriter


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]


def _write_rows(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _own_copy(recorded_run: Path, demo_data: dict, tmp: Path, *, name: str = "tiny", rows=None) -> Path:
    """A copy of the recorded run whose meta names a training file of its own (``rows``: its content)."""
    run = tmp / "dy_log" / "train" / name
    shutil.copytree(recorded_run / "training_dynamics", run / "training_dynamics")
    train = tmp / f"train_{name}.jsonl"
    _write_rows(train, rows if rows is not None else _rows(demo_data["train"]))
    meta_path = run / "training_dynamics" / dynamics_file.META_NAME
    meta = json.loads(meta_path.read_text())
    meta["data"]["train_file"] = str(train.resolve())
    meta_path.write_text(json.dumps(meta))
    return run


@pytest.mark.slow
def test_a_row_inserted_after_recording_is_refused_by_every_join(recorded_run, demo_data, tmp_path):
    rows = _rows(demo_data["train"])
    run = _own_copy(recorded_run, demo_data, tmp_path)
    assert Run(run).binding is not None and len(Run(run).binding) == len(rows)
    run_cli("find_label_issues.py", "--source", "dynamics", "--run_dir", run, "--output_dir", tmp_path / "ok")
    train = Path(Run(run).meta["data"]["train_file"])
    _write_rows(train, [{"sentence": "an inserted first row", "label": "positive"}, *rows])

    proc = run_cli("find_label_issues.py", "--source", "dynamics", "--run_dir", run, "--output_dir", tmp_path / "fi",
                   check=False)
    assert proc.returncode == 2 and not (tmp_path / "fi").exists()
    line = proc.stderr.strip().splitlines()[-1]
    assert "changed since" in line and "--allow_changed_data" in line and "guid 0" in line
    proc = run_cli("data_selection.py", "--run_dir", run, "--write_data", "--output_dir", tmp_path / "sel", check=False)
    assert proc.returncode == 2 and "changed since" in proc.stderr and not (tmp_path / "sel" / "selected_data").exists()

    # two rows edited, going on anyway: only the unchanged examples, each with its recorded text
    edited = [dict(r, sentence=r["sentence"] + " (edited)") if i in (3, 7) else r for i, r in enumerate(rows)]
    _write_rows(train, edited)
    run_cli("find_label_issues.py", "--source", "dynamics", "--run_dir", run, "--output_dir", tmp_path / "fi2",
            "--allow_changed_data")
    shown = _rows(tmp_path / "fi2" / "label_issues.jsonl")
    assert sorted(int(r["guid"]) for r in shown) == [i for i in range(len(rows)) if i not in (3, 7)]
    settings = json.loads((tmp_path / "fi2" / "label_issues_settings.json").read_text())
    assert settings["left_out_changed"] == 2
    for r in shown:
        assert r["text"] == rows[int(r["guid"])]["sentence"]


@pytest.mark.slow
def test_a_moved_file_is_read_with_the_recorded_columns(recorded_run, demo_data, tmp_path):
    rows = _rows(demo_data["train"])
    run = _own_copy(recorded_run, demo_data, tmp_path)
    meta_path = run / "training_dynamics" / dynamics_file.META_NAME
    meta = json.loads(meta_path.read_text())
    meta["data"].update(text_columns=["review"], label_column="sentiment")
    meta_path.write_text(json.dumps(meta))
    moved = tmp_path / "moved.jsonl"  # 'sentence' is another column, a guesser's first choice
    _write_rows(moved, [{"sentence": f"decoy {i}", "review": r["sentence"], "sentiment": r["label"]}
                        for i, r in enumerate(rows)])
    run_cli("find_label_issues.py", "--source", "dynamics", "--run_dir", run, "--output_dir", tmp_path / "fi",
            "--train_file", moved)
    shown = _rows(tmp_path / "fi" / "label_issues.jsonl")
    assert len(shown) == len(rows) and all(r["text"] == rows[int(r["guid"])]["sentence"] for r in shown)


@pytest.mark.slow
def test_averaging_is_a_join_of_equals(recorded_run, demo_data, tmp_path):
    a = _own_copy(recorded_run, demo_data, tmp_path, name="a")
    b = _own_copy(recorded_run, demo_data, tmp_path, name="b")
    out = tmp_path / "avg"
    run_cli("td_metrics.py", "--run_dir", a, b, "--output_dir", out)  # equals: fine
    for args, says in [((a, a), "given twice"), ((a, b, "--output_dir", a), "inside the run")]:
        argv = args if "--output_dir" in args else (*args, "--output_dir", tmp_path / "x")
        proc = run_cli("td_metrics.py", "--run_dir", *argv, check=False)
        assert proc.returncode == 2 and says in proc.stderr, proc.stderr
    assert not (a / "td_metrics.jsonl").exists() or "averaged_runs" not in (a / "td_metrics_settings.json").read_text()

    # other texts under the same guids and labels: refused, by the bindings
    rows = _rows(demo_data["train"])
    other = [{"sentence": r["sentence"] + " indeed", "label": r["label"]} for r in rows]
    c = _own_copy(recorded_run, demo_data, tmp_path, name="c", rows=other)
    Binding.of(_load(Run(c))).write(c / "training_dynamics")  # as if recorded on the other file
    proc = run_cli("td_metrics.py", "--run_dir", a, c, "--output_dir", tmp_path / "y", check=False)
    assert proc.returncode == 2 and "recorded on different data" in proc.stderr
    proc = run_cli("find_label_issues.py", "--source", "dynamics", "--run_dir", a, c, "--output_dir", tmp_path / "z",
                   check=False)
    assert proc.returncode == 2 and "recorded on different data" in proc.stderr

    # 4 and 3 epochs: refused unless asked for, then the stated rule
    d = _own_copy(recorded_run, demo_data, tmp_path, name="d")
    last = sorted((d / "training_dynamics").glob("dynamics_epoch_*"))[-1]
    last.unlink()
    meta_path = d / "training_dynamics" / dynamics_file.META_NAME
    meta_path.write_text(json.dumps({**json.loads(meta_path.read_text()), "epochs_completed": 3, "num_train_epochs": 3}))
    proc = run_cli("td_metrics.py", "--run_dir", a, d, "--output_dir", tmp_path / "w", check=False)
    assert proc.returncode == 2 and "different numbers of epochs" in proc.stderr
    run_cli("td_metrics.py", "--run_dir", a, d, "--output_dir", tmp_path / "w", "--common_epochs")
    assert json.loads((tmp_path / "w" / "td_metrics_settings.json").read_text())["burn_out"] == 3


def _load(run: Run):
    from training_dynamics.analysis.run import load_source

    return load_source(dict(run.meta["data"]), label_names=run.label_names)


def test_binding_diff_names_changed_and_missing():
    a = Binding(np.array([1, 2, 3]), binding.example_hashes(["x", "y", "z"], ["p", "p", "n"]))
    b = Binding(np.array([3, 1]), binding.example_hashes(["z", "other"], ["n", "p"]))
    changed, missing = a.diff(b)
    assert changed.tolist() == [1] and missing.tolist() == [2]
    assert a.fingerprint == Binding(a.guids[::-1], a.hashes[::-1]).fingerprint != b.fingerprint
    s = Binding(np.array(["q1", "q2"]), binding.example_hashes(["x", "y"], ["p", "p"]))
    assert s.diff(a)[1].tolist() == ["q1", "q2"]  # string ids never match integer ids


def test_the_run_lock_refuses_a_second_writer_and_takes_over_a_dead_ones(tmp_path):
    run = tmp_path / "run"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        run.mkdir()
        (run / LOCK_NAME).write_text(json.dumps({"pid": sleeper.pid, "host": os.uname().nodename, "started": "t0"}))
        with pytest.raises(RunLockedError, match=f"being recorded by process {sleeper.pid}"):
            RunWriter(run).acquire()
    finally:
        sleeper.kill()
        sleeper.wait()
    with RunWriter(run) as w:  # the holder is gone: taken over
        assert json.loads((run / LOCK_NAME).read_text())["pid"] == os.getpid()
        with RunWriter(run):  # re-entrant in one process; the inner one does not release it
            pass
        assert (run / LOCK_NAME).exists() and w.lock_path.exists()
    assert not (run / LOCK_NAME).exists()


def test_a_symlinked_dynamics_folder_keeps_working(tmp_path):
    from training_dynamics.core.run_writer import swap_in, staging_dir

    real = tmp_path / "elsewhere" / "td"
    real.mkdir(parents=True)
    (real / "dynamics_epoch_0.jsonl").write_text("old")
    run = tmp_path / "run"
    run.mkdir()
    (run / "training_dynamics").symlink_to(real)
    staged = staging_dir(run / "training_dynamics")
    staged.mkdir()
    (staged / "dynamics_epoch_0.jsonl").write_text("new")
    swap_in(staged, run / "training_dynamics")
    assert (run / "training_dynamics").is_symlink()
    assert (run / "training_dynamics" / "dynamics_epoch_0.jsonl").read_text() == "new"


@pytest.mark.slow
def test_two_recordings_into_one_folder_at_once(tiny_model, demo_data, tmp_path):
    """Both start together: exactly one records, the folder holds exactly its epochs, the other exits non-zero."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(ROOT / "run_glue_and_record_td.py")]
    procs = {epochs: subprocess.Popen([*cmd, *map(str, train_args(tiny_model, demo_data, tmp_path / str(epochs),
                                                                    "--dy_log_dir", tmp_path / "dy", "--dy_model_name",
                                                                    "m", epochs=epochs))],
                                      cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for epochs in (3, 2)}
    results = {e: (p.wait(timeout=600), p.communicate()[1]) for e, p in procs.items()}
    winners = [e for e, (code, _) in results.items() if code == 0]
    assert len(winners) == 1, {e: err[-1500:] for e, (_, err) in results.items()}
    loser_err = next(err for e, (code, err) in results.items() if code != 0).strip().splitlines()[-1]
    assert "is being recorded by process" in loser_err or "already holds training dynamics" in loser_err
    dy = tmp_path / "dy" / "train" / "m" / "training_dynamics"
    assert sorted(p.name for p in dy.glob("dynamics_epoch_*")) == [f"dynamics_epoch_{e}.jsonl" for e in range(winners[0])]
    assert json.loads((dy / dynamics_file.META_NAME).read_text())["num_train_epochs"] == winners[0]
    assert not (tmp_path / "dy" / "train" / "m" / LOCK_NAME).exists()


def test_apply_takes_the_kind_from_the_corrections_file_not_the_label_names(tmp_path):
    """A classification dataset whose labels happen to be response/other is relabelled, not treated as generative."""
    from training_dynamics.workflows.apply import apply_corrections_file

    train = tmp_path / "train.jsonl"
    _write_rows(train, [{"sentence": f"text {i}", "label": "response" if i % 2 else "other"} for i in range(6)])
    obj = {"dataset": "train.jsonl", "label_names": ["other", "response"],
           "corrections": [{"guid": 1, "action": "relabel", "label": "other", "original_label": "response"}]}
    (tmp_path / "c.json").write_text(json.dumps(obj))
    df = apply_corrections_file(tmp_path / "c.json", train_file=str(train), output=tmp_path / "out.jsonl",
                                ignore_fingerprint=True)
    assert len(df) == 6 and df.loc[df["guid"] == 1, "corrected_label"].item() == "other"


def test_compare_matches_classes_by_name_not_id(tmp_path):
    """Two runs of the same data whose label order differs: no example has a 'different gold label'."""
    from training_dynamics.cli import run_command

    rng = np.random.default_rng(0)
    guids, gold = np.arange(30), rng.integers(2, size=30)
    logits = rng.normal(size=(30, 3, 2)).astype(np.float32)
    for name, names, flip in (("a", ["neg", "pos"], False), ("b", ["pos", "neg"], True)):
        dy = tmp_path / name / "training_dynamics"
        for e in range(3):
            z = logits[:, e, ::-1] if flip else logits[:, e]
            dynamics_file.write_epoch(dy, e, guids, np.ascontiguousarray(z), 1 - gold if flip else gold)
        (dy / dynamics_file.META_NAME).write_text(json.dumps({"label_names": names}))
    out = tmp_path / "cmp"
    import logging

    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("training_dynamics.analysis.compare").addHandler(handler)
    try:
        assert run_command("compare", ["--weak_dir", str(tmp_path / "a"), "--strong_dir", str(tmp_path / "b"),
                                       "--output_dir", str(out)]) == 0
    finally:
        logging.getLogger("training_dynamics.analysis.compare").removeHandler(handler)
    assert not any("different gold labels" in r.getMessage() for r in records)
    rows = _rows(next(out.glob("*.jsonl")))
    assert all(abs(r["delta_confidence"]) < 1e-6 for r in rows)  # the same logits, named the same way


@pytest.mark.slow
def test_retraining_on_a_region_of_a_changed_file_is_refused(recorded_run, demo_data, tiny_model, tmp_path):
    rows = _rows(demo_data["train"])
    run = _own_copy(recorded_run, demo_data, tmp_path)
    run_cli("data_selection.py", "--run_dir", run)
    train = Path(Run(run).meta["data"]["train_file"])
    _write_rows(train, [{"sentence": "an inserted first row", "label": "positive"}, *rows])
    proc = run_cli("run_glue_and_record_td.py", "--model_name_or_path", tiny_model, "--train_file", train,
                   "--output_dir", tmp_path / "out", "--with_data_selection", "--data_selection_region", "hard",
                   "--data_selection_file", run / "three_regions_data_indices.json", "--report_to", "none",
                   "--num_train_epochs", 1, check=False)
    assert proc.returncode == 2 and "changed since" in proc.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "out").exists()
