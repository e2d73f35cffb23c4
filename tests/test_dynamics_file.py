"""Reading dynamics folders: every format, seed files, alignment; each bad input -> one clear line, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli, write_synthetic_dynamics

from training_dynamics.core import dynamics_file, fileio
from training_dynamics.core.dynamics_file import DynamicsError, read_dynamics

N, E = 6, 3


def make_run(tmp_path: Path, **kw) -> tuple[Path, Path, dict]:
    """A run folder with good synthetic dynamics (N examples, E epochs, 2 classes, file order = guid order)."""
    run = tmp_path / "run"
    dy = dynamics_file.dynamics_dir(run)
    arrays = write_synthetic_dynamics(dy, **({"n": N, "epochs": E, "classes": 2, "seed": 1} | kw))
    return run, dy, arrays


def edit_lines(path: Path, fn) -> None:
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(fn(lines)))


def edit_record(path: Path, lineno: int, **changes) -> dict:
    """Change keys of the record on 1-based line ``lineno``; returns the original record."""
    lines = path.read_text().splitlines(keepends=True)
    old = json.loads(lines[lineno - 1])
    lines[lineno - 1] = json.dumps({**old, **changes}) + "\n"
    path.write_text("".join(lines))
    return old


def guid_at(path: Path, lineno: int) -> int:
    return json.loads(path.read_text().splitlines()[lineno - 1])["guid"]


# ---------------------------------------------------------------------------------------------
# good inputs
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["jsonl", "npz"])
def test_read_round_trip(tmp_path, fmt):
    run, dy, arrays = make_run(tmp_path, fmt=fmt, classes=3)
    fileio.write_json(dy / dynamics_file.META_NAME, {"num_labels": 3, "num_examples": N, "epochs_completed": E})
    d = read_dynamics(dy, progress=False)
    assert d.logits.shape == (N, E, 3) and d.logits.dtype == np.float64
    assert d.guids.dtype == np.int64 and d.gold.dtype == np.int64
    np.testing.assert_array_equal(d.guids, arrays["guids"])
    np.testing.assert_array_equal(d.gold, arrays["gold"])
    np.testing.assert_array_equal(d.logits, arrays["logits"].astype(np.float64))  # float32 values, exactly
    assert (d.num_examples, d.num_epochs, d.num_classes) == (N, E, 3)
    assert d.meta["num_labels"] == 3 and d.dy_dir == dy
    assert [p.name for p in d.files] == [f"dynamics_epoch_{e}.{fmt}" for e in range(E)]
    assert [s["file"] for s in d.sources] == [p.name for p in d.files]


def test_shuffled_files_are_aligned_by_guid(tmp_path):
    _, dy, arrays = make_run(tmp_path, shuffle=True, n=40, epochs=4)
    d = read_dynamics(dy, progress=False)
    first = [json.loads(line)["guid"] for line in open(dy / "dynamics_epoch_0.jsonl")]
    assert d.guids.tolist() == first
    pos = {g: i for i, g in enumerate(arrays["guids"].tolist())}
    rows = [pos[g] for g in first]
    np.testing.assert_array_equal(d.logits, arrays["logits"][rows].astype(np.float64))
    np.testing.assert_array_equal(d.gold, arrays["gold"][rows])


def test_mixed_formats_across_epochs(tmp_path):
    _, dy, arrays = make_run(tmp_path)
    path = dy / "dynamics_epoch_1.jsonl"
    path.unlink()
    dynamics_file.write_epoch(dy, 1, arrays["guids"][::-1], arrays["logits"][::-1, 1], arrays["gold"][::-1], fmt="npz")
    d = read_dynamics(dy, progress=False)
    np.testing.assert_array_equal(d.logits, arrays["logits"].astype(np.float64))


def test_seed_files_without_device_big_guids_blank_lines(tmp_path):
    """The seed's own files: compact separators, no "device", 13-digit guids; blank lines are skipped."""
    dy = tmp_path / "training_dynamics"
    dy.mkdir()
    guids = [4734364254410, 1355224458312, 13042995210]
    for e in range(2):
        recs = [json.dumps({"guid": g, f"logits_epoch_{e}": [0.5 * e, -0.25, 1], "gold": i}, separators=(",", ":"))
                for i, g in enumerate(guids)]
        text = "\n".join(recs[::-1]) if e == 0 else "\n\n".join(recs) + "\n\n"  # epoch 0: no final newline
        (dy / f"dynamics_epoch_{e}.jsonl").write_text(text)
    d = read_dynamics(dy, progress=False)
    assert d.guids.tolist() == guids[::-1] and d.gold.tolist() == [2, 1, 0]
    assert d.logits[:, 1].tolist() == [[0.5, -0.25, 1.0]] * 3


def test_slow_path_reads_the_same(tmp_path, monkeypatch):
    """The line-by-line fallback (used only on errors) agrees with the fast reader on good files."""
    _, dy, _ = make_run(tmp_path, shuffle=True, classes=3)
    fast = read_dynamics(dy, progress=False)

    def boom(*a, **k):
        raise RuntimeError("pretend pyarrow failed")

    monkeypatch.setattr(dynamics_file, "_read_jsonl_fast", boom)
    slow = read_dynamics(dy, progress=False)
    for name in ("guids", "gold", "logits"):
        np.testing.assert_array_equal(getattr(slow, name), getattr(fast, name))


def test_library_raises_dynamics_error(tmp_path):
    _, dy, _ = make_run(tmp_path)
    (dy / "dynamics_epoch_1.jsonl").unlink()
    with pytest.raises(DynamicsError, match="dynamics_epoch_1 is missing"):
        read_dynamics(dy, progress=False)
    assert issubclass(DynamicsError, ValueError)


# ---------------------------------------------------------------------------------------------
# bad inputs: through the real CLI, one line naming file and example, exit 2
# ---------------------------------------------------------------------------------------------


def _empty_folder(run, dy, a):
    for p in dy.iterdir():
        p.unlink()
    return [str(dy), "no dynamics files"]


def _no_folder(run, dy, a):
    for p in dy.iterdir():
        p.unlink()
    dy.rmdir()
    return [str(dy), "no such folder"]


def _gap(run, dy, a):
    (dy / "dynamics_epoch_1.jsonl").unlink()
    return [str(dy), "dynamics_epoch_1 is missing (epochs found: 0, 2)"]


def _last_epoch_missing(run, dy, a):
    fileio.write_json(dy / dynamics_file.META_NAME, {"epochs_completed": 3})
    (dy / "dynamics_epoch_2.jsonl").unlink()
    return ["dynamics_epoch_2 is missing", "says 3 epochs were completed"]


def _example_missing(run, dy, a):
    g = guid_at(dy / "dynamics_epoch_1.jsonl", 3)
    edit_lines(dy / "dynamics_epoch_1.jsonl", lambda ls: ls[:2] + ls[3:])
    return ["dynamics_epoch_1.jsonl", f"example guid {g} (line 3 of dynamics_epoch_0.jsonl) is missing from this epoch"]


def _example_repeated(run, dy, a):
    p = dy / "dynamics_epoch_2.jsonl"
    g = guid_at(p, 2)
    edit_lines(p, lambda ls: ls[:4] + [ls[1]] + ls[5:])
    return [f"{p}: line 5 (guid {g}): example repeated in this epoch (also at line 2)"]


def _extra_example(run, dy, a):
    p = dy / "dynamics_epoch_1.jsonl"
    edit_lines(p, lambda ls: ls + [json.dumps({"guid": 987654, "logits_epoch_1": [0, 1], "gold": 0}) + "\n"])
    return [f"{p}: line 7 (guid 987654): example not in dynamics_epoch_0.jsonl"]


def _guid_sets_differ(run, dy, a):
    p = dy / "dynamics_epoch_2.jsonl"
    old = edit_record(p, 4, guid=987654)
    return [f"{p}: example guid {old['guid']} (line 4 of dynamics_epoch_0.jsonl) is missing from this epoch"]


def _gold_changes(run, dy, a):
    p = dy / "dynamics_epoch_1.jsonl"
    old = edit_record(p, 2, gold=1 - json.loads(p.read_text().splitlines()[1])["gold"])
    g = old["guid"]
    return [f"{p}: line 2 (guid {g}): gold {1 - old['gold']}, but gold {old['gold']} in dynamics_epoch_0.jsonl "
            f"line 2 (guid {g}): the label must not change between epochs"]


def _gold_out_of_range(run, dy, a):
    p = dy / "dynamics_epoch_0.jsonl"
    g = edit_record(p, 3, gold=2)["guid"]
    return [f"{p}: line 3 (guid {g}): gold 2 is outside the 2 classes 0..1"]


def _gold_negative(run, dy, a):
    p = dy / "dynamics_epoch_1.jsonl"
    g = edit_record(p, 6, gold=-1)["guid"]
    return [f"{p}: line 6 (guid {g}): gold -1 is outside"]


def _nan_logits(run, dy, a):
    p = dy / "dynamics_epoch_1.jsonl"
    g = edit_record(p, 2, logits_epoch_1=[float("nan"), 1.0])["guid"]  # json.dumps writes NaN
    return [f"{p}: line 2 (guid {g}): logits are not finite: [nan, 1.0]"]


def _inf_logits(run, dy, a):
    p = dy / "dynamics_epoch_2.jsonl"
    g = guid_at(p, 5)
    edit_lines(p, lambda ls: ls[:4] + [f'{{"guid": {g}, "logits_epoch_2": [1e999, 0.5], "gold": 0}}\n'] + ls[5:])
    return [f"{p}: line 5 (guid {g}): logits are not finite: [inf, 0.5]"]


def _npz_nan(run, dy, a):
    logits = a["logits"][:, 1].copy()
    logits[4, 0] = np.nan
    (dy / "dynamics_epoch_1.jsonl").unlink()
    p = dynamics_file.write_epoch(dy, 1, a["guids"], logits, a["gold"], fmt="npz")
    return [f"{p}: row 4 (guid {a['guids'][4]}): logits are not finite"]


def _npz_damaged(run, dy, a):
    (dy / "dynamics_epoch_2.jsonl").unlink()
    p = dynamics_file.write_epoch(dy, 2, a["guids"], a["logits"][:, 2], a["gold"], fmt="npz")
    p.write_bytes(p.read_bytes()[:100])
    return [f"{p}: not a readable .npz file"]


def _classes_within_file(run, dy, a):
    p = dy / "dynamics_epoch_0.jsonl"
    g = edit_record(p, 4, logits_epoch_0=[0.1, 0.2, 0.3])["guid"]
    return [f"{p}: line 4 (guid {g}): 3 logits, but line 1 has 2"]


def _classes_across_epochs(run, dy, a):
    p = dynamics_file.write_epoch(dy, 1, a["guids"], np.zeros((N, 3)), a["gold"])
    return [f"{p}: 3 logits per example, but dynamics_epoch_0.jsonl has 2"]


def _truncated_last_line(run, dy, a):
    p = dy / "dynamics_epoch_2.jsonl"
    p.write_text(p.read_text()[:-30])
    return [f"{p}: line {N}: truncated last line", "interrupted"]


def _invalid_json(run, dy, a):
    p = dy / "dynamics_epoch_1.jsonl"
    edit_lines(p, lambda ls: ls[:1] + ['{"guid": 3, "logits_epoch_1": [0.1 0.2], "gold": 0}\n'] + ls[2:])
    return [f"{p}: line 2: not valid JSON"]


def _wrong_key(run, dy, a):
    p = dy / "dynamics_epoch_1.jsonl"
    edit_lines(p, lambda ls: [line.replace("logits_epoch_1", "logits_epoch_0") for line in ls])
    return [f"{p}: line 1 (guid {guid_at(p, 1)}): no 'logits_epoch_1' (keys: guid, logits_epoch_0, gold, device)"]


def _empty_file(run, dy, a):
    p = dy / "dynamics_epoch_1.jsonl"
    p.write_text("")
    return [f"{p}: no examples (empty file)"]


def _two_formats(run, dy, a):
    dynamics_file.write_epoch(dy, 1, a["guids"], a["logits"][:, 1], a["gold"], fmt="npz")
    return [str(dy), "epoch 1 is recorded twice (dynamics_epoch_1.jsonl and dynamics_epoch_1.npz)"]


def _one_logit(run, dy, a):
    for e in range(E):
        dynamics_file.write_epoch(dy, e, a["guids"], np.zeros((N, 1)), np.zeros(N, int))
    return ["dynamics_epoch_0.jsonl: 1 logit(s) per example", "regression"]


def _meta_num_labels(run, dy, a):
    fileio.write_json(dy / dynamics_file.META_NAME, {"num_labels": 3, "epochs_completed": E})
    return [f"{dy / dynamics_file.META_NAME}: num_labels is 3, but dynamics_epoch_0.jsonl has 2 logits per example"]


def _guid_mixes_kinds(run, dy, a):
    p = dy / "dynamics_epoch_0.jsonl"
    edit_record(p, 2, guid="abc")
    return [f"{p}: line 2: 'guid' 'abc' mixes integer and string ids (the first line has {a['guids'][0]})"]


def _guid_float(run, dy, a):
    p = dy / "dynamics_epoch_0.jsonl"
    edit_record(p, 3, guid=1.5)
    return [f"{p}: line 3: 'guid' must be an integer or a string, got 1.5"]


def _burn_out_too_large(run, dy, a):
    return ["--burn_out", 4, str(dy), "burn_out 4 is larger than the 3 epoch(s) recorded"]


def _burn_out_zero(run, dy, a):
    return ["--burn_out", 0, "--burn_out must be >= 1, not 0"]


BAD_INPUTS = [_empty_folder, _no_folder, _gap, _last_epoch_missing, _example_missing, _example_repeated,
              _extra_example, _guid_sets_differ, _gold_changes, _gold_out_of_range, _gold_negative, _nan_logits,
              _inf_logits, _npz_nan, _npz_damaged, _classes_within_file, _classes_across_epochs,
              _truncated_last_line, _invalid_json, _wrong_key, _empty_file, _two_formats, _one_logit,
              _meta_num_labels, _guid_mixes_kinds, _guid_float, _burn_out_too_large, _burn_out_zero]


@pytest.mark.parametrize("spoil", BAD_INPUTS, ids=[f.__name__.lstrip("_") for f in BAD_INPUTS])
def test_bad_input_one_line_error_exit_2(tmp_path, spoil):
    run, dy, arrays = make_run(tmp_path)
    expected = spoil(run, dy, arrays)
    extra = []
    if expected and expected[0] == "--burn_out":
        extra, expected = expected[:2], expected[2:]
    proc = run_cli("td_metrics.py", "--model_dir", run, "--no_progress", *extra, check=False)
    err = proc.stderr
    assert proc.returncode == 2, err
    assert "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("td_metrics.py: error: "), err
    for part in expected:
        assert part in err, f"{part!r} not in {err!r}"
    assert not (run / "td_metrics.jsonl").exists()


def test_write_jsonl_columns_round_trips_exactly(tmp_path):
    rng = np.random.default_rng(0)
    cols = {"guid": rng.integers(2**40, size=11), "x": rng.normal(size=11) * 10.0 ** rng.integers(-20, 20, size=11),
            "flag": rng.random(11) < 0.5, "y": np.array([0.1, 1 / 3, -0.0, 5e-324, 1e300, np.nan, np.inf, 1.0, 2.5,
                                                          -1e-7, 7.0])}
    path = fileio.write_jsonl_columns(tmp_path / "out.jsonl", cols, chunk=4)  # several chunks
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 11 and all(list(r) == ["guid", "x", "flag", "y"] for r in rows)
    assert [r["guid"] for r in rows] == cols["guid"].tolist()
    assert [r["x"] for r in rows] == cols["x"].tolist()  # bit for bit
    assert [r["flag"] for r in rows] == cols["flag"].tolist()
    assert [r["y"] for r in rows][:5] == [0.1, 1 / 3, -0.0, 5e-324, 1e300]
    assert [r["y"] for r in rows][5:7] == [None, None]  # JSON has no NaN/inf


def test_string_ids_round_trip_in_both_formats(tmp_path):
    """SNLI pairIDs / WinoGrande qIDs are kept as they are; epochs may list them in any order."""
    guids = np.array(["3416050480.jpg#4r1n", 'q"2', "é-3", "id 4"])
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 3, 2)).astype(np.float32)
    for e, fmt in enumerate(("jsonl", "npz", "jsonl")):
        order = rng.permutation(4)
        dynamics_file.write_epoch(tmp_path, e, guids[order], logits[order, e], np.array([0, 1, 1, 0])[order], fmt=fmt)
    dyn = read_dynamics(tmp_path, progress=False)
    np.testing.assert_array_equal(np.sort(dyn.guids), np.sort(guids))
    row = {g: i for i, g in enumerate(dyn.guids.tolist())}
    for i, g in enumerate(guids.tolist()):
        np.testing.assert_allclose(dyn.logits[row[g]], logits[i], rtol=1e-6)


def test_ids_must_be_one_kind_of_integers_or_strings():
    assert dynamics_file.as_guids([3, 1]).dtype == np.int64
    assert dynamics_file.as_guids(["b", "a"]).tolist() == ["b", "a"]
    assert dynamics_file.as_guids(np.array([2**60 + 1])).tolist() == [2**60 + 1]
    for bad, msg in (([1.0, 2.0], "not real numbers"), ([1, "a"], "mix integers and strings"),
                     ([True], "not booleans"), ([None, "a"], "not missing values")):
        with pytest.raises(ValueError, match=msg):
            dynamics_file.as_guids(bad)
