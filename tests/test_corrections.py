"""apply_corrections.py: corrected datasets in every format, retraining on them, and bad corrections."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli, train_args
from training_dynamics import dynamics_file
from training_dynamics.corrections import write_corrected


def _labels(demo_data) -> list[str]:
    return [json.loads(line)["label"] for line in open(demo_data["train"], encoding="utf-8")]


def _other(label: str) -> str:
    return "positive" if label == "negative" else "negative"


def _write(path, corrections, label_names=("negative", "positive")):
    path.write_text(json.dumps({"dataset": "demo", "label_names": list(label_names), "corrections": corrections}))
    return path


@pytest.mark.slow
def test_apply_corrections_in_every_format_and_retrain(demo_data, tiny_model, tmp_path):
    labels = _labels(demo_data)
    corr = _write(tmp_path / "corrections.json", [
        {"guid": 5, "action": "relabel", "label": _other(labels[5]), "original_label": labels[5]},
        {"guid": 0, "action": "keep", "label": labels[0], "original_label": labels[0]},
        {"guid": 7, "action": "unsure", "label": None, "original_label": labels[7]},
        {"guid": 149, "action": "relabel", "label": _other(labels[149]), "original_label": labels[149]},
    ])
    out = tmp_path / "fixed.jsonl"
    run_cli("apply_corrections.py", "--train_file", demo_data["train"], "--corrections", corr, "--output", out,
            "--save_to_disk", tmp_path / "fixed_ds")
    df = pd.read_json(out, lines=True)
    assert list(df.columns) == ["guid", "sentence", "original_label", "corrected_label", "review_action"]
    assert df["guid"].tolist() == list(range(len(labels)))
    assert df["original_label"].tolist() == labels
    want = list(labels)
    want[5], want[149] = _other(labels[5]), _other(labels[149])
    assert df["corrected_label"].tolist() == want
    action = ["unreviewed"] * len(labels)
    action[5], action[0], action[7], action[149] = "relabel", "keep", "unsure", "relabel"
    assert df["review_action"].tolist() == action

    import datasets

    assert datasets.load_from_disk(str(tmp_path / "fixed_ds")).to_pandas().equals(df)
    for suffix, read in ((".csv", lambda p: pd.read_csv(p, keep_default_na=False)), (".parquet", pd.read_parquet)):
        write_corrected(df, output=tmp_path / f"fixed{suffix}")
        pd.testing.assert_frame_equal(read(tmp_path / f"fixed{suffix}"), df, check_dtype=False)

    # retrain on the corrected labels: the recorded gold follows corrected_label, guids are kept
    args = train_args(tiny_model, {"train": out, "validation": None}, tmp_path, "--label_column", "corrected_label",
                      "--dy_model_name", "fixed", epochs=1)
    i = args.index("--validation_file")
    del args[i:i + 2]  # the original validation file has no corrected_label column
    run_cli("run_glue_and_record_td.py", *args)
    run = tmp_path / "dy_log" / "fixed" / "fixed"
    dyn = dynamics_file.read_dynamics(dynamics_file.dynamics_dir(run), progress=False)
    names = dyn.meta["label_names"]
    assert names == ["negative", "positive"] and dyn.meta["data"]["label_column"] == "corrected_label"
    assert dyn.guids.tolist() == list(range(len(labels)))
    assert [names[g] for g in dyn.gold] == want


@pytest.mark.parametrize("corrections, message", [
    ([{"guid": 1000, "action": "relabel", "label": "positive", "original_label": "negative"}],
     "correction 0: guid 1000 is not in"),
    ([{"guid": 1, "action": "keep", "label": None}, {"guid": 2, "action": "relabel", "label": "neutral"}],
     "correction 1 (guid 2): label 'neutral' is not one of ['negative', 'positive']"),
    ([{"guid": 1, "action": "relabel", "label": None}], "a relabel needs a label name"),
    ([{"guid": 1, "action": "delete", "label": None}], "action 'delete' is not one of relabel, keep, unsure"),
    ([{"guid": 1, "action": "keep"}, {"guid": 1, "action": "unsure"}], "guid 1 is corrected twice"),
    ([{"guid": "x", "action": "keep"}], "guid 'x' is not an integer"),
])
def test_bad_corrections_are_a_one_line_error_and_write_nothing(demo_data, tmp_path, corrections, message):
    corr = _write(tmp_path / "corrections.json", corrections)
    out = tmp_path / "fixed.parquet"
    proc = run_cli("apply_corrections.py", "--train_file", demo_data["train"], "--corrections", corr,
                   "--output", out, "--save_to_disk", tmp_path / "ds", check=False)
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("apply_corrections.py: error: ") and message in last, last
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corrections.json"]  # nothing written, no temp files


def test_original_label_must_match_the_dataset(demo_data, tmp_path):
    labels = _labels(demo_data)
    corr = _write(tmp_path / "c.json", [{"guid": 3, "action": "relabel", "label": labels[3],
                                          "original_label": _other(labels[3])}])
    proc = run_cli("apply_corrections.py", "--train_file", demo_data["train"], "--corrections", corr,
                   "--output", tmp_path / "o.jsonl", check=False)
    assert proc.returncode == 2 and "original_label" in proc.stderr and not (tmp_path / "o.jsonl").exists()


def test_apply_in_process_keeps_pair_columns(tmp_path):
    """Library use on a sentence-pair file with integer labels and an ``idx`` column."""
    from training_dynamics.corrections import Corrections, apply_corrections
    from training_dynamics.data import load_text_classification

    f = tmp_path / "pairs.csv"
    pd.DataFrame({"idx": [10, 20, 30], "premise": ["a", "b", "c"], "hypothesis": ["x", "y", "z"],
                  "label": [0, 2, 1]}).to_csv(f, index=False)
    data = load_text_classification(train_file=str(f))
    c = Corrections(dataset="", label_names=["0", "1", "2"], guids=np.array([30, 10]), actions=["relabel", "keep"],
                    labels=["2", None], original_labels=["1", None])
    df = apply_corrections(data, c)
    assert list(df.columns) == ["guid", "premise", "hypothesis", "original_label", "corrected_label", "review_action"]
    assert df["guid"].tolist() == [10, 20, 30]
    assert df["corrected_label"].tolist() == ["0", "2", "2"]
    assert df["review_action"].tolist() == ["keep", "unreviewed", "relabel"]
