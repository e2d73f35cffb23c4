"""Several runs of the same data averaged (training_dynamics.analysis.multirun; metrics and find-issues CLIs)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from training_dynamics.core import dynamics_file
from training_dynamics.decisions import ranking as le
from training_dynamics.analysis import metrics, multirun
from training_dynamics.cli import run_command
from training_dynamics.analysis.run import METRICS_NAME, Run


def write_run(path, guids, gold, logits, *, shuffle_seed=None, label_names=("neg", "pos", "neu")):
    """A run folder with dynamics ``logits`` (N, E, C); rows optionally shuffled per epoch."""
    dy = dynamics_file.dynamics_dir(path)
    rng = np.random.default_rng(shuffle_seed)
    for e in range(logits.shape[1]):
        order = rng.permutation(len(guids)) if shuffle_seed is not None else np.arange(len(guids))
        dynamics_file.write_epoch(dy, e, guids[order], logits[order, e].astype(np.float32), gold[order])
    (dy / dynamics_file.META_NAME).write_text(json.dumps({"label_names": list(label_names)}))
    return path


@pytest.fixture
def two_runs(tmp_path):
    rng = np.random.default_rng(0)
    n, c = 40, 3
    guids = rng.choice(1000, size=n, replace=False).astype(np.int64)
    gold = rng.integers(c, size=n)
    a = rng.normal(size=(n, 4, c)).astype(np.float32).astype(np.float64)
    b = rng.normal(size=(n, 4, c)).astype(np.float32).astype(np.float64)  # another model (or seed)
    ra = write_run(tmp_path / "a", guids, gold, a)
    rb = write_run(tmp_path / "b", guids, gold, b, shuffle_seed=1)  # its own row order
    return {"runs": [Run(ra), Run(rb)], "guids": guids, "gold": gold, "logits": [a, b], "tmp": tmp_path}


def _expected(runs):
    per = [metrics.td_metrics_from_arrays(z, runs["gold"]) for z in runs["logits"]]
    probs = [np.exp(metrics.log_softmax(z)).mean(axis=1) for z in runs["logits"]]
    return per, probs


def test_average_runs_is_the_mean_of_each_runs_metrics(two_runs):
    cols, probs = multirun.average_runs(two_runs["runs"], progress=False)
    per, per_probs = _expected(two_runs)
    np.testing.assert_array_equal(cols["guid"], two_runs["guids"])  # the first run's row order
    np.testing.assert_array_equal(cols["gold"], two_runs["gold"])
    for k in ("confidence", "variability", "aum", "loss", "el2n", "correctness"):
        np.testing.assert_allclose(cols[k], (per[0][k] + per[1][k]) / 2, atol=1e-12, err_msg=k)
    np.testing.assert_allclose(probs, (per_probs[0] + per_probs[1]) / 2, atol=1e-12)
    np.testing.assert_array_equal(cols["never_learned"], per[0]["never_learned"] & per[1]["never_learned"])
    assert list(cols) == list(metrics.COLUMNS)


def test_runs_of_other_lengths_are_averaged_only_when_asked(two_runs, tmp_path):
    ra, guids, gold = two_runs["runs"][0], two_runs["guids"], two_runs["gold"]
    shorter = Run(write_run(tmp_path / "three", guids, gold, two_runs["logits"][1][:, :3]))
    with pytest.raises(dynamics_file.DynamicsError, match="different numbers of epochs .4, 3.; pass --common_epochs"):
        multirun.average_runs([ra, shorter], progress=False)
    cols, _ = multirun.average_runs([ra, shorter], progress=False, common_epochs=True)
    first3 = [metrics.td_metrics_from_arrays(z[:, :3], gold) for z in (two_runs["logits"][0], two_runs["logits"][1])]
    np.testing.assert_allclose(cols["confidence"], (first3[0]["confidence"] + first3[1]["confidence"]) / 2, atol=1e-6)
    with pytest.raises(dynamics_file.DynamicsError, match="given twice"):
        multirun.average_runs([ra, Run(str(ra.path) + "/")], progress=False)


def test_one_run_is_left_as_it_is(two_runs):
    cols, probs = multirun.average_runs(two_runs["runs"][:1], progress=False)
    per, per_probs = _expected(two_runs)
    np.testing.assert_allclose(cols["confidence"], per[0]["confidence"], atol=1e-12)
    np.testing.assert_allclose(probs, per_probs[0], atol=1e-12)
    assert cols["correctness"].dtype.kind == "i"


def test_forgetfulness_and_last_pred_of_averaged_runs():
    def cols(forget, never, last):
        return {"guid": np.arange(3), "gold": np.zeros(3, int), "forgetfulness": np.array(forget),
                "never_learned": np.array(never), "last_pred": np.array(last),
                **{k: np.zeros(3) for k in ("threshold_closeness", "confidence", "variability", "loss", "aum",
                                            "aleatoric", "el2n", "correctness")}}

    nl = metrics.NEVER_LEARNED_FORGETFULNESS
    out = multirun.average_columns([cols([2, nl, nl], [False, True, True], [1, 2, 0]),
                                    cols([1, 3, nl], [False, False, True], [1, 0, 2]),
                                    cols([0, 1, nl], [False, False, True], [0, 0, 2])], num_classes=3)
    np.testing.assert_allclose(out["forgetfulness"], [1.0, 2.0, nl])  # over the runs that learned it
    assert out["never_learned"].tolist() == [False, False, True]
    assert out["last_pred"].tolist() == [1, 0, 2]  # majority vote


def test_runs_of_other_examples_or_labels_are_refused(two_runs, tmp_path):
    ra = two_runs["runs"][0]
    guids, gold, z = two_runs["guids"], two_runs["gold"], two_runs["logits"][0]
    fewer = Run(write_run(tmp_path / "fewer", guids[:-1], gold[:-1], z[:-1]))
    with pytest.raises(ValueError, match=r"fewer: not the same examples .*runs to average must record the same data"):
        multirun.average_runs([ra, fewer], progress=False)
    relabelled = gold.copy()
    relabelled[5] = (gold[5] + 1) % 3
    other = Run(write_run(tmp_path / "relabelled", guids, relabelled, z))
    with pytest.raises(ValueError, match=rf"guid {guids[5]} has label .*1 labels differ.*must share the labels"):
        multirun.average_runs([ra, other], progress=False)
    renamed = Run(write_run(tmp_path / "renamed", guids, gold, z, label_names=("a", "b", "c")))
    with pytest.raises(ValueError, match="label names"):
        multirun.average_runs([ra, renamed], progress=False)


def test_find_issues_over_several_runs_ranks_by_the_averaged_confidence(two_runs, capsys):
    out = two_runs["tmp"] / "issues"
    code = run_command("find-issues", ["--source", "dynamics", "--run_dir", *(str(r.path) for r in two_runs["runs"]),
                                       "--decision", "loss_mixture", "--output_dir", str(out), "--disable_tqdm"])
    assert code == 0
    got = pd.read_json(out / le.ISSUES_NAME, lines=True).set_index("guid")
    per, _ = _expected(two_runs)
    want = pd.Series(1 - (per[0]["confidence"] + per[1]["confidence"]) / 2, index=two_runs["guids"])
    np.testing.assert_allclose(got["score"], want.reindex(got.index), atol=1e-9)
    settings = json.loads((out / le.SETTINGS_NAME).read_text())
    assert len(settings["run_dirs"]) == 2 and settings["decision"]["rule"] == "loss_mixture"
    assert settings["decision"]["num_label_issues"] == int(got["is_label_issue"].sum())
    said = capsys.readouterr().out  # random runs at chance accuracy: the one line says the count is not supported
    assert "loss_mixture: estimated" in said or "loss_mixture: cannot count the wrong labels of 40" in said


def test_metrics_cli_averages_into_output_dir_and_refuses_mismatches(two_runs, tmp_path, capsys):
    a, b = (str(r.path) for r in two_runs["runs"])
    assert run_command("metrics", ["--run_dir", a, b, "--output_dir", str(tmp_path / "mean"), "--disable_tqdm"]) == 0
    got = pd.read_json(tmp_path / "mean" / METRICS_NAME, lines=True)
    per, _ = _expected(two_runs)
    np.testing.assert_allclose(got["aum"], (per[0]["aum"] + per[1]["aum"]) / 2, atol=1e-9)
    assert run_command("metrics", ["--run_dir", a, b, "--disable_tqdm"]) == 2
    assert "give --output_dir" in capsys.readouterr().err
    short = write_run(tmp_path / "short", two_runs["guids"][:5], two_runs["gold"][:5], two_runs["logits"][0][:5])
    assert run_command("metrics", ["--run_dir", a, str(short), "--output_dir", str(tmp_path / "m2"), "--disable_tqdm"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not the same examples" in err[0]


def test_an_averaged_folder_is_a_run_like_any_other(two_runs):
    """plot, select, find-issues and review accept the folder `metrics --run_dir A B --output_dir F` wrote."""
    a, b = (str(r.path) for r in two_runs["runs"])
    tmp = two_runs["tmp"]
    avg = tmp / "avg"
    assert run_command("metrics", ["--run_dir", a, b, "--output_dir", str(avg)]) == 0
    assert not float(np.abs(pd.read_json(avg / METRICS_NAME, lines=True)["correctness"] % 1).max()) == 0  # fractional
    assert run_command("plot", ["--run_dir", str(avg), "--output_dir", str(tmp / "plots")]) == 0
    assert list((tmp / "plots").glob("*_data_map.png"))
    assert run_command("select", ["--run_dir", str(avg)]) == 0
    regions = json.loads((avg / "three_regions_data_indices.json").read_text())
    assert sorted(len(regions[k]) for k in ("easy", "hard", "ambiguous")) == [13, 13, 13]
    assert run_command("find-issues", ["--source", "dynamics", "--run_dir", str(avg), "--output_dir",
                                       str(tmp / "fi"), "--decision", "none"]) == 0
    ranked = pd.read_json(tmp / "fi" / "label_issues.jsonl", lines=True)
    per, _ = _expected(two_runs)
    want = pd.Series(1 - (per[0]["confidence"] + per[1]["confidence"]) / 2, index=two_runs["guids"])
    np.testing.assert_allclose(ranked["score"], want.reindex(ranked["guid"]).to_numpy(), atol=1e-6)
    assert run_command("review", ["--issues", str(tmp / "fi" / "label_issues.jsonl"), "--output",
                                  str(tmp / "review.html")]) == 0
