"""Claim, then write (issue 26): every output folder is claimed before it is checked, so two commands
cannot both pass the guard; a stale lock is taken over by exactly one process; the manifest merges
concurrent writers and a damaged one is named; a run's dynamics folder is the run's; the model folder
of `record` goes through the same guard. Every refusal is one line and leaves every byte as it was."""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, one_line_error, run_cli, train_args, write_synthetic_dynamics
from training_dynamics.core import outputs, run_writer
from training_dynamics.core.errors import OutputError, RunLockedError


def _hashes(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _env() -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


# -- the claim -----------------------------------------------------------------------------------
def test_a_folder_claimed_by_a_live_process_is_refused_and_a_dead_ones_taken_over(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (out / outputs.CLAIM_NAME).write_text(json.dumps({"pid": sleeper.pid, "host": socket.gethostname(),
                                                          "started": "t0", "command": "training-dynamics plot"}))
        with pytest.raises(OutputError, match=rf"--output_dir {out} is being written by `training-dynamics plot` "
                                              rf"\(process {sleeper.pid}.*wait for it to finish or choose another"):
            outputs.Outputs("find-issues").check_folder(out)
        with pytest.raises(OutputError, match="being written by"):
            outputs.Outputs("review").check_file(out / "page.html")
    finally:
        sleeper.kill()
        sleeper.wait()
    guard = outputs.Outputs("find-issues")
    guard.check_folder(out)  # the holder is gone: taken over
    assert json.loads((out / outputs.CLAIM_NAME).read_text())["pid"] == os.getpid()
    inner = outputs.Outputs("find-issues")
    inner.check_folder(out)  # one process, two guards: both hold it
    inner.release()
    assert (out / outputs.CLAIM_NAME).exists()
    del guard  # the command ended: the claim is given back
    assert not (out / outputs.CLAIM_NAME).exists()


def test_a_claim_that_created_the_folder_removes_it_when_nothing_was_written(tmp_path):
    with outputs.Outputs("select") as guard:
        guard.check_folder(tmp_path / "a" / "b")
        assert (tmp_path / "a" / "b" / outputs.CLAIM_NAME).is_file()
    assert not (tmp_path / "a").exists()


def _claim_in_child(out: str, start, results, done) -> None:
    guard = outputs.Outputs(f"c{os.getpid()}")
    start.wait()
    try:
        guard.check_folder(out)
        results.put(("won", os.getpid()))
    except OutputError as exc:
        results.put(("refused", str(exc)))
    done.wait()  # the winner keeps its claim while the others look


def _race(target, arg, n: int) -> list[tuple[str, object]]:
    ctx = mp.get_context("fork")
    start, done, results = ctx.Barrier(n), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=target, args=(arg, start, results, done)) for _ in range(n)]
    for p in procs:
        p.start()
    got = [results.get(timeout=60) for _ in range(n)]
    done.set()
    for p in procs:
        p.join(timeout=60)
    return got


@pytest.mark.slow
def test_of_many_commands_claiming_one_folder_at_once_exactly_one_gets_it(tmp_path):
    for attempt in range(3):
        out = tmp_path / f"out{attempt}"
        got = _race(_claim_in_child, str(out), 8)
        assert [k for k, _ in got].count("won") == 1, got
        assert all("being written by" in msg for k, msg in got if k == "refused"), got


# -- the run lock's take-over ----------------------------------------------------------------------
def _acquire_in_child(run: str, start, results, done) -> None:
    writer = run_writer.RunWriter(run)
    start.wait()
    try:
        writer.acquire()
        results.put(("won", os.getpid()))
    except RunLockedError as exc:
        results.put(("refused", str(exc)))
    except Exception as exc:  # noqa: BLE001 - anything else is a failure of the test
        results.put(("error", repr(exc)))
    done.wait()


@pytest.mark.slow
def test_a_stale_lock_taken_over_by_many_processes_at_once_goes_to_exactly_one(tmp_path):
    dead = _dead_pid()
    for attempt in range(6):
        run = tmp_path / f"run{attempt}"
        run.mkdir()
        (run / run_writer.LOCK_NAME).write_text(json.dumps({"pid": dead, "host": socket.gethostname(), "started": "t0"}))
        got = _race(_acquire_in_child, str(run), 12)
        winners = [pid for k, pid in got if k == "won"]
        assert len(winners) == 1, got
        assert all(k == "refused" and "is being recorded by process" in msg for k, msg in got if k != "won"), got
        assert json.loads((run / run_writer.LOCK_NAME).read_text())["pid"] == winners[0]


@pytest.mark.parametrize("pid", ["abc", 10**19 + 7, "12345678901234567890", -3])
def test_a_lock_naming_no_process_is_one_line_and_kept(tmp_path, pid):
    """A pid that names no process: its holder cannot be shown to be gone, so the lock is never taken over."""
    run = tmp_path / "run"
    run.mkdir()
    lock = run / run_writer.LOCK_NAME
    lock.write_text(json.dumps({"pid": pid, "host": socket.gethostname(), "started": "t0"}))
    before = lock.read_bytes()
    with pytest.raises(RunLockedError) as exc:
        run_writer.RunWriter(run).acquire()
    message = str(exc.value)
    assert "\n" not in message and message.startswith(f"{lock}: a lock naming no process id")
    assert "delete this file" in message and lock.read_bytes() == before


# -- the manifest ------------------------------------------------------------------------------------
def _write_in_child(folder: str, start, results, done) -> None:
    path = Path(folder) / f"part-{os.getpid()}.parquet"
    path.write_text(str(os.getpid()))
    start.wait()
    try:
        outputs.Outputs("metrics").written(path)  # (as the --partition jobs: no folder claimed)
        results.put(("ok", path.name))
    except Exception as exc:  # noqa: BLE001
        results.put(("error", repr(exc)))
    done.wait()


@pytest.mark.slow
def test_concurrent_writers_merge_into_one_manifest(tmp_path):
    for attempt in range(3):
        folder = tmp_path / f"run{attempt}"
        folder.mkdir()
        got = _race(_write_in_child, str(folder), 12)
        assert [k for k, _ in got] == ["ok"] * 12, got
        assert all(outputs.written_by(folder / name) == "metrics" for _, name in got)


@pytest.mark.parametrize("content", ["{not json", '{"files": [1, 2]}', "[]"])
def test_a_damaged_manifest_is_named_in_one_line(tmp_path, content):
    (tmp_path / outputs.MANIFEST_NAME).write_text(content)
    (tmp_path / "label_issues.jsonl").write_text("mine")
    with pytest.raises(OutputError) as exc:
        outputs.Outputs("find-issues").check_folder(tmp_path)
    message = str(exc.value)
    assert "\n" not in message and "the list of the files training-dynamics wrote there is damaged" in message
    assert message.startswith(str(tmp_path / outputs.MANIFEST_NAME)) and "delete it" in message


def test_a_folder_in_the_manifests_place_is_one_line(run_synthetic, tmp_path):
    out = tmp_path / "issues"
    (out / outputs.MANIFEST_NAME).mkdir(parents=True)
    proc = run_cli("find_label_issues.py", "--source", "dynamics", "--run_dir", run_synthetic, "--output_dir", out,
                   check=False)
    one_line_error(proc, "find_label_issues.py", f"{out / outputs.MANIFEST_NAME} is a folder", "move it away")
    assert sorted(p.name for p in out.iterdir()) == [outputs.MANIFEST_NAME]


# -- the run's own folder ------------------------------------------------------------------------------
@pytest.fixture
def run_synthetic(tmp_path) -> Path:
    run = tmp_path / "run"
    write_synthetic_dynamics(run / "training_dynamics", n=40, epochs=3, seed=2)
    return run


def test_no_other_command_writes_into_a_runs_dynamics_folder(run_synthetic, tmp_path):
    dy = run_synthetic / "training_dynamics"
    before = _hashes(run_synthetic)
    proc = run_cli("find_label_issues.py", "--source", "dynamics", "--run_dir", run_synthetic, "--output_dir", dy,
                   check=False)
    one_line_error(proc, "find_label_issues.py", f"--output_dir {dy} is in the run's dynamics folder {dy}",
                   "only `training-dynamics record` writes into")
    issues = tmp_path / "issues"
    run_cli("find_label_issues.py", "--source", "dynamics", "--run_dir", run_synthetic, "--output_dir", issues)
    page = dy / "dynamics_epoch_9.jsonl"
    proc = run_cli("review_label_issues.py", "--issues", issues, "--output", page, check=False)
    one_line_error(proc, "review_label_issues.py", f"--output {page} is in the run's dynamics folder")
    proc = run_cli("find_label_issues.py", "--source", "dynamics", "--run_dir", run_synthetic, "--output_dir",
                   dy / "sub", check=False)
    one_line_error(proc, "find_label_issues.py", "is in the run's dynamics folder")
    assert _hashes(run_synthetic) == before and not (dy / "sub").exists()


def test_a_new_recording_never_replaces_files_the_recorder_did_not_write(tmp_path):
    dy = tmp_path / "run" / "training_dynamics"
    write_synthetic_dynamics(dy, n=10, epochs=2)
    (dy / "label_issues.jsonl").write_text("a user's, or an old find-issues'")
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match=rf"{dy} holds files the recorder did not write "
                                                  r"\(label_issues.jsonl\); a new recording replaces only"):
            run_writer.check_dynamics_dir(dy, overwrite=overwrite)
    (dy / "label_issues.jsonl").unlink()
    run_writer.check_dynamics_dir(dy, overwrite=True)


# -- metrics --partition -----------------------------------------------------------------------------
def test_a_partition_is_replaced_only_with_overwrite_output_dir(run_synthetic):
    part = run_synthetic / "td_metrics.part-0-of-2.parquet"
    run_cli("td_metrics.py", "--run_dir", run_synthetic, "--partition", "0/2")
    first = part.read_bytes()
    proc = run_cli("td_metrics.py", "--run_dir", run_synthetic, "--partition", "0/2", check=False)
    one_line_error(proc, "td_metrics.py", f"--partition 0/2 {part} was written by an earlier `training-dynamics "
                   "metrics`", "--overwrite_output_dir")
    assert part.read_bytes() == first
    run_cli("td_metrics.py", "--run_dir", run_synthetic, "--partition", "0/2", "--overwrite_output_dir")
    run_cli("td_metrics.py", "--run_dir", run_synthetic, "--partition", "1/2")
    run_cli("td_metrics.py", "--run_dir", run_synthetic, "--merge_partitions", "2")
    assert (run_synthetic / "td_metrics.jsonl").is_file()


# -- two find-issues into one folder at once ------------------------------------------------------
@pytest.mark.slow
def test_two_find_issues_into_one_empty_folder_at_once(tmp_path):
    runs = []
    for seed in (1, 2):
        run = tmp_path / f"run{seed}"
        arrays = write_synthetic_dynamics(run / "training_dynamics", n=1500, epochs=4, seed=seed)
        runs.append((run, set(arrays["guids"].tolist())))
    cmd = [sys.executable, str(ROOT / "find_label_issues.py"), "--source", "dynamics", "--disable_tqdm", "true"]
    for attempt in range(3):
        out = tmp_path / f"issues{attempt}"
        procs = [subprocess.Popen([*cmd, "--run_dir", str(run), "--output_dir", str(out)], cwd=ROOT, env=_env(),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for run, _ in runs]
        done = [(p.wait(timeout=600), p.communicate()[1]) for p in procs]
        winners = [i for i, (code, _) in enumerate(done) if code == 0]
        assert len(winners) <= 1, [err[-800:] for _, err in done]
        for i, (code, err) in enumerate(done):
            if code != 0:
                last = err.strip().splitlines()[-1]
                assert code == 2 and "Traceback" not in err and ("is being written by" in last or
                                                                "written by an earlier" in last), err[-1500:]
        if winners:  # the winner's files are whole, its own, and recorded as find-issues'
            rows = [json.loads(line) for line in (out / "label_issues.jsonl").read_text().splitlines()]
            assert {r["guid"] for r in rows} == runs[winners[0]][1]
            for name in ("label_issues.jsonl", "label_issues.csv", "label_issues_settings.json"):
                assert outputs.written_by(out / name) == "find-issues"
            assert not (out / outputs.CLAIM_NAME).exists()


# -- record --output_dir ------------------------------------------------------------------------------
def _record(cwd: Path, args: list) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "run_glue_and_record_td.py"), *map(str, args)], cwd=cwd,
                          env=_env(), capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_record_refuses_a_folder_holding_another_model_and_the_users_files(tiny_model, demo_data, tmp_path):
    out = tmp_path / "model_out"
    out.mkdir()
    for p in tiny_model.iterdir():
        if p.is_file():
            (out / p.name).write_bytes(p.read_bytes())
    (out / "all_results.json").write_text('{"mine": 1}')
    before = _hashes(out)
    for extra in ([], ["--overwrite_output_dir"]):
        proc = _record(ROOT, train_args(tiny_model, demo_data, tmp_path, *extra, epochs=1))
        one_line_error(proc, "run_glue_and_record_td.py", f"--output_dir {out} holds files training-dynamics did "
                       "not write", "all_results.json", "choose a new or empty folder")
        assert _hashes(out) == before and not (tmp_path / "dy_log").exists()


@pytest.mark.slow
def test_record_replaces_its_own_model_only_with_overwrite_output_dir(tiny_model, demo_data, tmp_path):
    """No --output_dir: one line says where the model goes, before training; a second run into that folder
    is refused (every byte kept) until --overwrite_output_dir."""
    args = [a for a in train_args(tiny_model, demo_data, tmp_path, "--dy_model_name", "m", epochs=1)]
    i = args.index("--output_dir")
    args = args[:i] + args[i + 2:]
    first = _record(tmp_path, args)
    assert first.returncode == 0, first.stderr[-3000:]
    where = [n for n, line in enumerate(first.stderr.splitlines()) if "--output_dir not given" in line]
    start = [n for n, line in enumerate(first.stderr.splitlines()) if "recording the training dynamics" in line]
    assert where and start and where[0] < start[0], first.stderr[-3000:]
    out = tmp_path / "trainer_output"
    assert str(out) in first.stderr.splitlines()[where[0]] and (out / "config.json").is_file()
    assert outputs.written_by(out / "model.safetensors") == "record"
    before = _hashes(out)
    proc = _record(tmp_path, [*args, "--overwrite_dynamics"])
    one_line_error(proc, "run_glue_and_record_td.py", f"--output_dir {out.name} holds the model of an earlier "
                   "`training-dynamics record`", "pass --overwrite_output_dir")
    assert _hashes(out) == before
    proc = _record(tmp_path, [*args, "--overwrite_dynamics", "--overwrite_output_dir"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert outputs.written_by(out / "model.safetensors") == "record" and not (out / outputs.CLAIM_NAME).exists()


@pytest.mark.slow
def test_overwrite_dynamics_refuses_a_dynamics_folder_holding_other_files(tiny_model, demo_data, tmp_path):
    args = train_args(tiny_model, demo_data, tmp_path, "--dy_model_name", "m", epochs=1)
    run_cli("run_glue_and_record_td.py", *args)
    dy = tmp_path / "dy_log" / "train" / "m" / "training_dynamics"
    (dy / "notes.txt").write_text("mine")
    before = _hashes(tmp_path / "dy_log")
    proc = run_cli("run_glue_and_record_td.py", *args, "--overwrite_dynamics", "--overwrite_output_dir", check=False)
    one_line_error(proc, "run_glue_and_record_td.py", f"{dy} holds files the recorder did not write (notes.txt)")
    assert _hashes(tmp_path / "dy_log") == before
