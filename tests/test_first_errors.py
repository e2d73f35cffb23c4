"""Crashes and poor messages a new user met (issue 19): each ends in one line that names the cause, and
a bug (a KeyError, say) still shows its traceback."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import one_line_error, run_cli, write_synthetic_dynamics
from training_dynamics.review import corrections as co
from training_dynamics.decisions import rules as decision
from training_dynamics.cli.common import run
from training_dynamics.analysis.compare import align_runs
from training_dynamics.core.data import load_text_classification
from training_dynamics.core.errors import TrainingDynamicsError

NESTED = "[" * 100_000 + "]" * 100_000


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _reviewed(train: Path, path: Path, choices: list[tuple], label_names=None) -> Path:
    """corrections.json as the review page exports it: (guid, action, label) each."""
    data = load_text_classification(train_file=str(train), label_names=label_names)
    fp, examples = co.data_fingerprints(data)
    names = dict(zip(np.asarray(data.train["guid"]).tolist(), np.asarray(data.label_names)[data.train["label"]]))
    out = [{"guid": str(g), "example_fingerprint": examples[str(g)], "action": a, "label": lb,
            "original_label": names[g]} for g, a, lb in choices]
    path.write_text(json.dumps({"dataset": train.name, "label_names": list(data.label_names), "corrections": out,
                                "dataset_fingerprint": fp}))
    return path


# -- the command line: which errors become one line ------------------------------------------------
def test_only_project_and_file_errors_becomeone_line_error(tmp_path):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert run(lambda: open(tmp_path / "gone.jsonl"), "prog") == 2
        assert run(lambda: (_ for _ in ()).throw(TrainingDynamicsError("bad\ninput")), "prog") == 2
    assert err.getvalue().splitlines() == [
        f"prog: error: [Errno 2] No such file or directory: '{tmp_path / 'gone.jsonl'}'",
        "prog: error: bad input"]
    with pytest.raises(KeyError):  # a bug: its traceback, not "error: 'x'"
        run(lambda: {}["x"], "prog")
    with pytest.raises(ValueError):  # a plain ValueError of a library is a bug too
        run(lambda: int("x"), "prog")
    with pytest.raises(OSError):  # not a file error the user can fix
        run(lambda: (_ for _ in ()).throw(OSError(5, "Input/output error")), "prog")


def test_a_refused_flag_value_is_stillone_line_error(tmp_path):
    one_line_error(run_cli("data_selection.py", "--run_dir", tmp_path, "--worst", check=False), "data_selection.py",
              "--worst, --both_ends and --fractions go with --metric")


# -- deeply nested JSON ---------------------------------------------------------------------------
def test_deeply_nested_json_in_an_epoch_file_isone_line_error(tmp_path):
    write_synthetic_dynamics(tmp_path / "run" / "training_dynamics", n=10, epochs=2)
    path = tmp_path / "run" / "training_dynamics" / "dynamics_epoch_1.jsonl"
    lines = path.read_text().splitlines(True)
    lines[3] = '{"guid": 1, "logits_epoch_1": ' + NESTED + ', "gold": 0}\n'
    path.write_text("".join(lines))
    one_line_error(run_cli("td_metrics.py", "--run_dir", tmp_path / "run", check=False), "td_metrics.py",
              f"{path}: line 4", "nested too deeply")


def test_deeply_nested_corrections_areone_line_error(tmp_path):
    train = _jsonl(tmp_path / "train.jsonl", [{"sentence": "good", "label": "pos"}, {"sentence": "bad", "label": "neg"}])
    corr = tmp_path / "corrections.json"
    corr.write_text('{"corrections": ' + NESTED + "}")
    one_line_error(run_cli("apply_corrections.py", "--train_file", train, "--corrections", corr, "--output",
                      tmp_path / "out.jsonl", check=False), "apply_corrections.py", "not valid JSON", "nested too deeply")


# -- apply ----------------------------------------------------------------------------------------
def test_integer_labels_without_or_with_swapped_class_names_name_the_cause(tmp_path):
    train = _jsonl(tmp_path / "train.jsonl", [{"sentence": t, "label": y} for t, y in
                                              [("good", 1), ("bad", 0), ("fine", 1), ("awful", 0)]])
    corr = _reviewed(train, tmp_path / "c.json", [(1, "relabel", "pos")], label_names=["neg", "pos"])
    base = ["--train_file", train, "--corrections", corr, "--output", tmp_path / "out.jsonl"]
    one_line_error(run_cli("apply_corrections.py", *base, check=False), "apply_corrections.py",
              "has integer labels 0..1 with no names: pass --class_names neg,pos")
    one_line_error(run_cli("apply_corrections.py", *base, "--class_names", "pos,neg", check=False), "apply_corrections.py",
              "in the order neg, pos but the data's are in the order pos, neg", "pass --class_names neg,pos")
    assert not (tmp_path / "out.jsonl").exists()
    run_cli("apply_corrections.py", *base, "--class_names", "neg,pos")
    assert pd.read_json(tmp_path / "out.jsonl", lines=True)["corrected_label"].tolist() == ["pos", "pos", "pos", "neg"]


def test_apply_csv_keeps_ids_with_leading_zeros_and_tsv_is_accepted(tmp_path):
    rows = [{"idx": f"{i:03d}", "sentence": f"text {i}", "label": ["neg", "pos"][i % 2]} for i in range(90)]
    train = _jsonl(tmp_path / "train.jsonl", rows)
    corr = _reviewed(train, tmp_path / "c.json", [("007", "relabel", "neg")])
    for name in ("x.csv", "x.tsv"):
        run_cli("apply_corrections.py", "--train_file", train, "--corrections", corr, "--output", tmp_path / name)
        back = load_text_classification(train_file=str(tmp_path / name), label_column="corrected_label")
        assert list(back.train["guid"]) == [r["idx"] for r in rows]  # strings, as in the data: never 0..89
        labels = np.asarray(back.label_names)[back.train["label"]].tolist()
        assert labels[7] == "neg" and labels[9] == "pos"
    table = pd.read_csv(tmp_path / "x.tsv", sep="\t", dtype=str)
    assert table.columns.tolist()[:2] == ["guid", "sentence"] and table["guid"].iloc[7] == "007"
    # plain integer ids in a csv are still integers
    (tmp_path / "ints.csv").write_text("idx,sentence,label\n3,a,x\n10,b,y\n")
    assert list(load_text_classification(train_file=str(tmp_path / "ints.csv")).train["guid"]) == [3, 10]


def test_a_tsv_cell_with_a_tab_is_refused(tmp_path):
    train = _jsonl(tmp_path / "train.jsonl", [{"sentence": "a\tb", "label": "pos"}, {"sentence": "c", "label": "neg"}])
    corr = _reviewed(train, tmp_path / "c.json", [(0, "keep", None)])
    one_line_error(run_cli("apply_corrections.py", "--train_file", train, "--corrections", corr, "--output",
                      tmp_path / "x.tsv", check=False), "apply_corrections.py", "holds a tab or line break")
    assert not (tmp_path / "x.tsv").exists()


def test_save_to_disk_into_the_current_empty_folder_and_through_a_link(tmp_path, monkeypatch):
    import datasets

    df = pd.DataFrame({"guid": [0, 1], "sentence": ["a", "b"], "corrected_label": ["x", "y"]})
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    co.write_corrected(df, save_to_disk=".")
    assert datasets.load_from_disk(str(here))["corrected_label"] == ["x", "y"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["here"]  # no temporary folder left beside it
    monkeypatch.chdir(tmp_path)
    (tmp_path / "latest").symlink_to(here)
    with pytest.raises(TrainingDynamicsError, match="--overwrite_output_dir"):
        co.write_corrected(df, save_to_disk=tmp_path / "latest")
    co.write_corrected(df.assign(corrected_label=["y", "y"]), save_to_disk=tmp_path / "latest", overwrite_output_dir=True)
    assert (tmp_path / "latest").is_symlink() and (tmp_path / "latest").resolve() == here
    assert datasets.load_from_disk(str(here))["corrected_label"] == ["y", "y"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["here", "latest"]  # no stray .old folder


# -- compare and rank_count -----------------------------------------------------------------------
def test_runs_sharing_no_example_say_why_when_the_id_types_differ():
    weak = pd.DataFrame({"guid": np.arange(3)})
    strong = pd.DataFrame({"guid": np.array(["000", "001", "002"], dtype=object)})
    with pytest.raises(TrainingDynamicsError, match=r"share no example \(weak has integer ids such as 0, strong "
                                                    r"text ids such as '000'.*leading zeros"):
        align_runs(weak, strong)


def test_rank_count_flagging_most_labels_warns(caplog):
    pytest.importorskip("cleanlab")
    rng = np.random.default_rng(0)
    gold = np.r_[np.zeros(50, np.int64), np.ones(50, np.int64)]
    other = np.where(rng.random(100) < 0.7, 0.9, 0.1)  # the model disagrees with most labels
    probs = np.zeros((100, 2))
    probs[np.arange(100), gold], probs[np.arange(100), 1 - gold] = 1 - other, other
    with caplog.at_level(logging.WARNING, logger="training_dynamics.decisions.rules"):
        dec = decision.rank_count(gold, probs, other)
    assert dec.num_flagged > 50 and f"rank_count flags {dec.num_flagged} of 100 examples" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="training_dynamics.decisions.rules"):
        decision.rank_count(gold, probs, other, count_probabilities=np.eye(2)[gold] * 0.8 + 0.1)
    assert "flags" not in caplog.text


# -- a classifier with another number of classes ---------------------------------------------------
@pytest.mark.slow
def test_a_2_class_model_on_3_class_data_points_to_ignore_mismatched_sizes(tiny_model, demo_data, tmp_path):
    from training_dynamics.cli import run_command

    rows = [json.loads(line) for line in open(demo_data["train"], encoding="utf-8")][:30]
    train = _jsonl(tmp_path / "three.jsonl", [{"sentence": r["sentence"], "label": i % 3} for i, r in enumerate(rows)])
    argv = ["--model_name_or_path", str(tiny_model), "--train_file", str(train), "--output_dir", str(tmp_path / "out"),
            "--dy_log_dir", str(tmp_path / "dy"), "--report_to", "none", "--num_train_epochs", "1", "--disable_tqdm",
            "true"]
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = run_command("record", argv, prog="training-dynamics record")
    last = err.getvalue().strip().splitlines()[-1]
    assert code == 2 and "Traceback" not in err.getvalue(), err.getvalue()
    assert last == (f"training-dynamics record: error: {tiny_model} is a classifier with 2 classes but the data has 3; "
                    "pass --ignore_mismatched_sizes to train a new 3-class head (or check --class_names and the label "
                    "column)")
    err = io.StringIO()
    argv[1] = str(tmp_path / "no_such_model")  # not a folder, not on the (offline) Hub: one line, not an OSError
    with contextlib.redirect_stderr(err):
        code = run_command("record", argv, prog="training-dynamics record")
    assert code == 2 and "Traceback" not in err.getvalue(), err.getvalue()
    assert f"error: --model_name_or_path {argv[1]}: no such folder" in err.getvalue().splitlines()[-1]
