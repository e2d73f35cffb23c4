"""String example ids (SNLI pairIDs, WinoGrande qIDs) are kept as they are, end to end: recording,
metrics, selection, retraining on a region, label ranking, the review page and applying corrections."""

from __future__ import annotations

import json

import pytest

from conftest import run_cli, train_args
from training_dynamics.core import dynamics_file
from training_dynamics.analysis.run import Run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def string_id_run(demo_data, tiny_model, tmp_path_factory):
    """The demo data with SNLI-like string ids in ``idx``, recorded for 2 epochs."""
    tmp = tmp_path_factory.mktemp("string_ids")
    rows = [json.loads(line) for line in open(demo_data["train"])]
    train = tmp / "data" / "train.jsonl"  # a generic folder: the run is named "train"
    train.parent.mkdir()
    train.write_text("".join(json.dumps({"idx": f"{3416050480 + i}.jpg#{i % 5}r1n", **r}) + "\n"
                             for i, r in enumerate(rows)))
    data = {"train": train, "validation": demo_data["validation"]}
    run_cli("run_glue_and_record_td.py", *train_args(tiny_model, data, tmp, "--dy_model_name", "tiny", epochs=2))
    return tmp, train, [f"{3416050480 + i}.jpg#{i % 5}r1n" for i in range(len(rows))]


def test_recording_and_metrics_keep_string_ids(string_id_run):
    tmp, _, ids = string_id_run
    run = Run(tmp / "dy_log" / "train" / "tiny")
    first = json.loads(run.epoch_files()[0].read_text().splitlines()[0])
    assert first["guid"] == ids[0]
    run_cli("td_metrics.py", "--model_dir", run.path)
    df = run.metrics()
    assert df["guid"].tolist() == ids and df["guid"].map(type).eq(str).all()


def test_selection_and_retraining_on_a_region_match_string_ids(string_id_run, tiny_model, demo_data):
    tmp, train, ids = string_id_run
    run = tmp / "dy_log" / "train" / "tiny"
    run_cli("data_selection.py", "--model_dir", run, "--write_data", "--output_dir", tmp / "sel")
    regions = json.loads((tmp / "sel" / "three_regions_data_indices.json").read_text())
    assert set(regions["hard"]) <= set(ids) and all(isinstance(g, str) for g in regions["ambiguous"])
    selected = [json.loads(line) for line in open(tmp / "sel" / "selected_data" / "hard.jsonl")]
    assert [r["guid"] for r in selected] == [g for g in ids if g in set(regions["hard"])]
    out = tmp / "retrain"
    run_cli("run_glue_and_record_td.py", *train_args(tiny_model, {"train": train, "validation": demo_data["validation"]},
                                                     out, "--with_data_selection", "--data_selection_region", "hard",
                                                     "--data_selection_file", tmp / "sel" / "three_regions_data_indices.json",
                                                     epochs=1))
    chosen = json.loads((out / "model_out" / "data_selection.json").read_text())
    assert sorted(chosen["guids"]) == sorted(regions["hard"])


def test_ranking_review_and_apply_keep_string_ids(string_id_run, tmp_path):
    tmp, train, ids = string_id_run
    run_cli("find_label_issues.py", "--source", "dynamics", "--model_dir", tmp / "dy_log" / "train" / "tiny",
            "--output_dir", tmp_path / "issues")
    issues = [json.loads(line) for line in open(tmp_path / "issues" / "label_issues.jsonl")]
    assert sorted(r["guid"] for r in issues) == sorted(ids)
    run_cli("review_label_issues.py", "--issues", tmp_path / "issues" / "label_issues.jsonl")
    page = (tmp_path / "issues" / "review.html").read_text()
    assert json.dumps(issues[0]["guid"]) in page
    corr = tmp_path / "corrections.json"
    corr.write_text(json.dumps({"dataset": "train.jsonl", "label_names": ["negative", "positive"], "corrections": [
        {"guid": issues[0]["guid"], "action": "relabel", "label": issues[0]["predicted_name"]}]}))
    run_cli("apply_corrections.py", "--train_file", train, "--corrections", corr, "--output", tmp_path / "fixed.jsonl",
            "--ignore_fingerprint")
    fixed = {r["guid"]: r for r in map(json.loads, open(tmp_path / "fixed.jsonl"))}
    assert list(fixed) == ids
    assert fixed[issues[0]["guid"]]["corrected_label"] == issues[0]["predicted_name"]
    assert fixed[issues[0]["guid"]]["review_action"] == "relabel"
    assert dynamics_file.as_guids(list(fixed)).dtype.kind == "U"
