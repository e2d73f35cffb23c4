"""apply_corrections.py: corrected datasets in every format, retraining on them, bad corrections,
fingerprints binding corrections to the reviewed data, and outputs that never destroy inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli, train_args
from training_dynamics.review import corrections as co
from training_dynamics.core import dynamics_file
from training_dynamics.review.corrections import write_corrected
from training_dynamics.core.data import load_text_classification
from training_dynamics.core.errors import OutputError

SCRIPT = "apply_corrections.py"
BIG = 2 ** 60


def _labels(demo_data) -> list[str]:
    return [json.loads(line)["label"] for line in open(demo_data["train"], encoding="utf-8")]


def _other(label: str) -> str:
    return "positive" if label == "negative" else "negative"


def _fingerprint(train) -> str:
    return co.data_fingerprints(load_text_classification(train_file=str(train)))[0]


@pytest.fixture(scope="module")
def demo_fingerprint(demo_data) -> str:
    return _fingerprint(demo_data["train"])


def _write(path, corrections, label_names=("negative", "positive"), fingerprint: str | None = None):
    obj = {"dataset": "demo", "label_names": list(label_names), "corrections": corrections}
    if fingerprint:
        obj["dataset_fingerprint"] = fingerprint
    path.write_text(json.dumps(obj))
    return path


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _reviewed(train: Path, path: Path, choices: list[tuple]) -> Path:
    """corrections.json as the review page exports it for ``train``: (guid, action, label[, note]) each."""
    data = load_text_classification(train_file=str(train))
    fp, examples = co.data_fingerprints(data)
    names = dict(zip(np.asarray(data.train["guid"]).tolist(), np.asarray(data.label_names)[data.train["label"]]))
    out = [{"guid": str(g), "example_fingerprint": examples[str(g)], "action": a, "label": lb, "original_label": names[g],
            **({"note": rest[0]} if rest else {})} for g, a, lb, *rest in choices]
    return _write(path, out, data.label_names, fp)


def _tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes (to prove nothing changed)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


ROWS = [{"sentence": t, "label": y} for t, y in
        [("good", "pos"), ("bad", "neg"), ("fine", "pos"), ("awful", "neg"), ("meh", "neg")]]


@pytest.mark.slow
def test_apply_corrections_in_every_format_and_retrain(demo_data, tiny_model, tmp_path, demo_fingerprint):
    labels = _labels(demo_data)
    corr = _write(tmp_path / "corrections.json", [
        {"guid": "5", "action": "relabel", "label": _other(labels[5]), "original_label": labels[5]},
        {"guid": 0, "action": "keep", "label": labels[0], "original_label": labels[0]},
        {"guid": "7", "action": "unsure", "label": None, "original_label": labels[7]},
        {"guid": 149, "action": "relabel", "label": _other(labels[149]), "original_label": labels[149]},
        {"guid": "9", "action": None, "label": None, "original_label": labels[9], "note": "sarcasm?"},
    ], fingerprint=demo_fingerprint)
    out = tmp_path / "fixed.jsonl"
    run_cli(SCRIPT, "--train_file", demo_data["train"], "--corrections", corr, "--output", out,
            "--save_to_disk", tmp_path / "fixed_ds")
    df = pd.read_json(out, lines=True)
    assert list(df.columns) == ["guid", "sentence", "original_label", "corrected_label", "review_action", "review_note"]
    assert df["guid"].tolist() == list(range(len(labels)))
    assert df["original_label"].tolist() == labels
    want = list(labels)
    want[5], want[149] = _other(labels[5]), _other(labels[149])
    assert df["corrected_label"].tolist() == want
    action = ["unreviewed"] * len(labels)
    action[5], action[0], action[7], action[149] = "relabel", "keep", "unsure", "relabel"
    assert df["review_action"].tolist() == action
    assert df["review_note"].tolist() == ["sarcasm?" if i == 9 else "" for i in range(len(labels))]

    import datasets

    assert datasets.load_from_disk(str(tmp_path / "fixed_ds")).to_pandas().equals(df)
    assert json.loads((tmp_path / "fixed_ds" / co.SAVE_MARKER).read_text())["rows"] == len(labels)
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


@pytest.mark.slow
@pytest.mark.parametrize("corrections, message", [
    ([{"guid": 1000, "action": "relabel", "label": "positive", "original_label": "negative"}],
     "correction 0: guid 1000 is not in train.jsonl"),
    ([{"guid": 1, "action": "keep", "label": None}, {"guid": 2, "action": "relabel", "label": "neutral"}],
     "correction 1 (guid 2): label 'neutral' is not one of ['negative', 'positive']"),
    ([{"guid": 1, "action": "relabel", "label": None}], "a relabel needs a label name"),
    ([{"guid": 1, "action": "delete", "label": None}], "action 'delete' is not one of relabel, keep, unsure"),
    ([{"guid": 1, "action": None, "label": None}], "action None is not one of relabel, keep, unsure"),
    ([{"guid": 1, "action": "keep"}, {"guid": "1", "action": "unsure"}], "guid 1 is corrected twice"),
    ([{"guid": "x", "action": "keep"}], "correction 0: guid x is not in train.jsonl"),
    ([{"guid": 2 ** 64, "action": "keep"}], f"guid {2 ** 64} does not fit in 64 bits"),
    ([{"guid": 1.5, "action": "keep"}], "guid 1.5 is not an integer or a string id"),
    ([{"guid": 1, "action": "keep", "example_fingerprint": "0" * 16}],
     "correction 0 (guid 1): the example's text or label is not the one reviewed"),
])
def test_bad_corrections_are_a_one_line_error_and_write_nothing(demo_data, tmp_path, corrections, message,
                                                                 demo_fingerprint):
    corr = _write(tmp_path / "corrections.json", corrections, fingerprint=demo_fingerprint)
    out = tmp_path / "fixed.parquet"
    proc = run_cli(SCRIPT, "--train_file", demo_data["train"], "--corrections", corr,
                   "--output", out, "--save_to_disk", tmp_path / "ds", check=False)
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("apply_corrections.py: error: ") and message in last, last
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corrections.json"]  # nothing written, no temp files


@pytest.mark.slow
def test_original_label_must_match_the_dataset(demo_data, tmp_path, demo_fingerprint):
    labels = _labels(demo_data)
    corr = _write(tmp_path / "c.json", [{"guid": 3, "action": "relabel", "label": labels[3],
                                          "original_label": _other(labels[3])}], fingerprint=demo_fingerprint)
    proc = run_cli(SCRIPT, "--train_file", demo_data["train"], "--corrections", corr,
                   "--output", tmp_path / "o.jsonl", check=False)
    assert proc.returncode == 2 and "original_label" in proc.stderr and not (tmp_path / "o.jsonl").exists()


@pytest.mark.slow
def test_corrections_for_other_data_are_refused_unless_ignored(tmp_path):
    """Corrections carry the reviewed data's fingerprint: after a text changes they are refused
    (one line, exit 2, nothing written); --ignore_fingerprint applies those whose example is
    unchanged and skips the rest with a warning. A file without a fingerprint needs the flag too."""
    train = _jsonl(tmp_path / "train.jsonl", ROWS)
    corr = _reviewed(train, tmp_path / "corrections.json", [(1, "relabel", "pos"), (2, "relabel", "neg")])
    _jsonl(train, [{**r, "sentence": "fine, really"} if i == 2 else r for i, r in enumerate(ROWS)])
    out = tmp_path / "fixed.jsonl"
    proc = run_cli(SCRIPT, "--train_file", train, "--corrections", corr, "--output", out, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("apply_corrections.py: error: ") and "was made for other data than train.jsonl" in last
    assert "--ignore_fingerprint" in last and not out.exists()

    proc = run_cli(SCRIPT, "--train_file", train, "--corrections", corr, "--output", out, "--ignore_fingerprint")
    assert "skipped: " in proc.stderr and "(guid 2): the example's text or label is not the one reviewed" in proc.stderr
    fixed = pd.read_json(out, lines=True)
    assert fixed["corrected_label"].tolist() == ["pos", "pos", "pos", "neg", "neg"]
    assert fixed["review_action"].tolist() == ["unreviewed", "relabel", "unreviewed", "unreviewed", "unreviewed"]

    old = _write(tmp_path / "old.json", [{"guid": 1, "action": "keep", "label": "neg"}], ["neg", "pos"])
    proc = run_cli(SCRIPT, "--train_file", train, "--corrections", old, "--output", tmp_path / "o.jsonl", check=False)
    assert proc.returncode == 2 and "has no dataset fingerprint" in proc.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "o.jsonl").exists()


@pytest.mark.slow
def test_unsure_keep_or_drop(tmp_path):
    train = _jsonl(tmp_path / "train.jsonl", ROWS)
    corr = _reviewed(train, tmp_path / "c.json", [(0, "unsure", None), (3, "relabel", "pos"), (4, "unsure", None)])
    run_cli(SCRIPT, "--train_file", train, "--corrections", corr, "--output", tmp_path / "keep.jsonl")
    run_cli(SCRIPT, "--train_file", train, "--corrections", corr, "--output", tmp_path / "drop.jsonl",
            "--unsure", "drop")
    keep, drop = (pd.read_json(tmp_path / f"{k}.jsonl", lines=True) for k in ("keep", "drop"))
    assert keep["guid"].tolist() == [0, 1, 2, 3, 4]
    assert keep["review_action"].tolist() == ["unsure", "unreviewed", "unreviewed", "relabel", "unsure"]
    assert keep["corrected_label"].tolist() == ["pos", "neg", "pos", "pos", "neg"]
    assert drop["guid"].tolist() == [1, 2, 3] and drop["corrected_label"].tolist() == ["neg", "pos", "pos"]


@pytest.mark.slow
@pytest.mark.parametrize("case, flags, message", [
    ("output is the training file", ["--output", "{train}"], "--output {train} is the input"),
    ("output is the training file by another path", ["--output", "{tmp}/data/../data/train.jsonl"], "is the input"),
    ("output is a link to the training file", ["--output", "{tmp}/link.jsonl"], "is the input"),
    ("output is the corrections file", ["--output", "{tmp}/corrections.json"], "is the input"),
    ("save_to_disk holds the input", ["--save_to_disk", "{tmp}/data"], "is or contains the input"),
    ("save_to_disk holds the input, overwrite asked", ["--save_to_disk", "{tmp}/data", "--overwrite_output_dir"],
     "is or contains the input"),
    ("save_to_disk is the input", ["--save_to_disk", "{train}"], "is or contains the input"),
    ("save_to_disk holds notes", ["--save_to_disk", "{tmp}/notes"], "is not empty; choose a new folder, or pass "
                                                                     "--overwrite_output_dir"),
    ("save_to_disk holds notes, overwrite asked", ["--save_to_disk", "{tmp}/notes", "--overwrite_output_dir"],
     "was not written by apply_corrections.py"),
    ("output inside save_to_disk", ["--save_to_disk", "{tmp}/new", "--output", "{tmp}/new/x.jsonl"],
     "is inside --save_to_disk"),
    ("output is another existing file", ["--output", "{tmp}/notes/todo.txt"],  # (.txt: a CoNLL output of NER runs)
     "exists and was not written by `training-dynamics apply`"),
    ("output of an unknown type", ["--output", "{tmp}/notes/todo.md"], "--output must end with one of"),
    ("a CoNLL file of a classification run", ["--output", "{tmp}/out.conll"],
     "a corrected classification dataset is written as"),
    ("output is an existing dataset of the user", ["--output", "{tmp}/data/other.jsonl"],
     "exists and was not written by `training-dynamics apply`"),
    ("output is an existing dataset of the user, overwrite asked", ["--output", "{tmp}/data/other.csv",
                                                                    "--overwrite_output_dir"],
     "exists and was not written by `training-dynamics apply`"),
])
def test_outputs_never_destroy_inputs_or_other_files(tmp_path, case, flags, message):
    """Each refusal: exit 2, one line naming how to proceed, and not one byte changed or added."""
    train = _jsonl((tmp_path / "data").mkdir() or tmp_path / "data" / "train.jsonl", ROWS)
    (tmp_path / "data" / "README.txt").write_text("my notes about the data\n")
    _jsonl(tmp_path / "data" / "other.jsonl", ROWS[:2])
    (tmp_path / "data" / "other.csv").write_text("sentence,label\nfine,pos\n")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me\n")
    (tmp_path / "link.jsonl").symlink_to(train)
    _reviewed(train, tmp_path / "corrections.json", [(1, "relabel", "pos")])
    before = _tree(tmp_path)
    args = [a.format(tmp=tmp_path, train=train) for a in flags]
    proc = run_cli(SCRIPT, "--train_file", train, "--corrections", tmp_path / "corrections.json", *args, check=False)
    assert proc.returncode == 2, (case, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("apply_corrections.py: error: "), proc.stderr
    assert message.format(train=train) in lines[0], lines[0]
    assert _tree(tmp_path) == before and sorted(p.name for p in tmp_path.iterdir()) == [
        "corrections.json", "data", "link.jsonl", "notes"]


@pytest.mark.slow
def test_overwrite_output_dir_replaces_only_a_previous_save(tmp_path):
    import datasets

    train = _jsonl(tmp_path / "train.jsonl", ROWS)
    c1 = _reviewed(train, tmp_path / "c1.json", [(1, "relabel", "pos")])
    c2 = _reviewed(train, tmp_path / "c2.json", [(3, "relabel", "pos")])
    ds = tmp_path / "fixed_ds"
    run_cli(SCRIPT, "--train_file", train, "--corrections", c1, "--save_to_disk", ds)
    first = _tree(ds)
    assert set(json.loads(first[co.SAVE_MARKER])["entries"]) == set(first) - {co.SAVE_MARKER}
    proc = run_cli(SCRIPT, "--train_file", train, "--corrections", c2, "--save_to_disk", ds, check=False)
    assert proc.returncode == 2 and "--overwrite_output_dir" in proc.stderr and _tree(ds) == first

    run_cli(SCRIPT, "--train_file", train, "--corrections", c2, "--save_to_disk", ds, "--overwrite_output_dir")
    assert datasets.load_from_disk(str(ds))["corrected_label"] == ["pos", "neg", "pos", "pos", "neg"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c1.json", "c2.json", "fixed_ds", "train.jsonl"]  # no debris

    (ds / "my_analysis.ipynb").write_text("{}")
    second = _tree(ds)
    proc = run_cli(SCRIPT, "--train_file", train, "--corrections", c1, "--save_to_disk", ds, "--overwrite_output_dir",
                   check=False)
    assert proc.returncode == 2 and "holds files apply_corrections.py did not write (my_analysis.ipynb)" in proc.stderr
    assert _tree(ds) == second


@pytest.mark.slow
def test_overwrite_output_dir_replaces_only_an_earlier_output_file(tmp_path):
    train = _jsonl(tmp_path / "train.jsonl", ROWS)
    c1 = _reviewed(train, tmp_path / "c1.json", [(1, "relabel", "pos")])
    c2 = _reviewed(train, tmp_path / "c2.json", [(3, "relabel", "pos")])
    for name in ("fixed.jsonl", "fixed.csv", "fixed.parquet"):
        out = tmp_path / name
        run_cli(SCRIPT, "--train_file", train, "--corrections", c1, "--output", out)
        first = out.read_bytes()
        proc = run_cli(SCRIPT, "--train_file", train, "--corrections", c2, "--output", out, check=False)
        assert proc.returncode == 2 and "pass --overwrite_output_dir to replace it" in proc.stderr
        assert out.read_bytes() == first
        run_cli(SCRIPT, "--train_file", train, "--corrections", c2, "--output", out, "--overwrite_output_dir")
        assert out.read_bytes() != first


def test_check_outputs_in_process(tmp_path):
    (tmp_path / "d.jsonl").mkdir()
    with pytest.raises(OutputError, match="is a folder; give a file name"):
        co.check_outputs(output=tmp_path / "d.jsonl")
    with pytest.raises(co.CorrectionsError, match="unsupported extension '.txt'"):
        write_corrected(pd.DataFrame({"a": [1]}), output=tmp_path / "x.txt")
    co.check_outputs(output=tmp_path / "new.jsonl", save_to_disk=tmp_path / "new_ds", inputs=[tmp_path / "d.jsonl"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.jsonl"]


def test_remove_entries_keeps_what_the_marker_does_not_list(tmp_path):
    """The last line of defence when replacing a save: only listed entries are deleted."""
    old = tmp_path / "old"
    (old / "sub").mkdir(parents=True)
    for name in ("a.arrow", "sub/b.json", "stranger.txt"):
        (old / name).write_text("x")
    (old / co.SAVE_MARKER).write_text("{}")
    co._remove_entries(old, ["sub/b.json", "sub", "a.arrow"])
    assert _tree(old) == {"stranger.txt": b"x"}


def test_64bit_guids_are_exact(tmp_path):
    """Guids as strings of digits (as the page exports them) name exactly their int64 example."""
    f = _jsonl(tmp_path / "t.jsonl", [{"idx": BIG + k, "sentence": f"s{k}", "label": k % 2} for k in range(3)])
    data = load_text_classification(train_file=str(f))
    corr = _write(tmp_path / "c.json", [{"guid": str(BIG + 1), "action": "relabel", "label": "0"}], ["0", "1"])
    parsed = co.read_corrections(corr)
    assert parsed.guids.tolist() == [str(BIG + 1)]  # the text key the page exports
    df = co.apply_corrections(data, parsed)
    assert df["guid"].tolist() == [BIG, BIG + 1, BIG + 2]
    assert df["corrected_label"].tolist() == [0, 0, 0] and df["review_action"].tolist()[1] == "relabel"


def test_fingerprints_follow_content_not_row_order():
    guids, texts, labels = [3, 1, 2], ["c", "a", "b"], ["x", "y", "x"]
    fp = co.dataset_fingerprint(guids, texts, labels)
    assert len(fp) == 64 and fp == co.dataset_fingerprint([1, 2, 3], ["a", "b", "c"], ["y", "x", "x"])
    assert fp != co.dataset_fingerprint([1, 2, 3], ["b", "a", "c"], ["x", "y", "x"])  # guid names another text
    assert fp != co.dataset_fingerprint(guids, ["c", "a", "b!"], labels)
    assert fp != co.dataset_fingerprint(guids, texts, ["x", "y", "y"])
    assert fp != co.dataset_fingerprint(guids[:2], texts[:2], labels[:2])
    assert co.example_fingerprint("a", "y") != co.example_fingerprint("a", "x")
    assert len(co.example_fingerprint("a", "y")) == 16


def test_apply_in_process_keeps_pair_columns(tmp_path):
    """Library use on a sentence-pair file with integer labels and an ``idx`` column."""
    from training_dynamics.review.corrections import Corrections, apply_corrections

    f = tmp_path / "pairs.csv"
    pd.DataFrame({"idx": [10, 20, 30], "premise": ["a", "b", "c"], "hypothesis": ["x", "y", "z"],
                  "label": [0, 2, 1]}).to_csv(f, index=False)
    data = load_text_classification(train_file=str(f))
    c = Corrections(dataset="", label_names=["0", "1", "2"], guids=np.array([30, 10]), actions=["relabel", "keep"],
                    labels=["2", None], original_labels=["1", None])
    df = apply_corrections(data, c)
    assert list(df.columns) == ["guid", "premise", "hypothesis", "original_label", "corrected_label", "review_action",
                                "review_note"]
    assert df["guid"].tolist() == [10, 20, 30]
    assert df["corrected_label"].tolist() == [0, 2, 2] and df["original_label"].tolist() == [0, 2, 1]  # ids, as in the file
    assert df["review_action"].tolist() == ["keep", "unreviewed", "relabel"]
    out = tmp_path / "fixed.csv"
    co.write_corrected(df, output=out)
    again = load_text_classification(train_file=str(out), label_column="corrected_label",
                                     text_columns=["premise", "hypothesis"])
    assert again.label_names == ["0", "1", "2"] and again.train["label"] == [0, 2, 2]  # trains as integer labels


def test_a_scripted_review_is_what_the_page_would_export(tmp_path):
    """corrections_document: relabel / keep with the page's fingerprints; apply takes it as it is."""
    f = _jsonl(tmp_path / "t.jsonl", [{"sentence": f"s{k}", "label": ["neg", "pos"][k % 2]} for k in range(4)])
    data = load_text_classification(train_file=str(f))
    doc = co.corrections_document(data, [3, 0], ["neg", "neg"], notes=["flipped?", ""])
    fp, examples = co.data_fingerprints(data)
    assert doc == {"dataset": "t.jsonl", "dataset_fingerprint": fp, "kind": "classification",
                   "label_names": ["neg", "pos"], "corrections": [
        {"guid": "3", "example_fingerprint": examples["3"], "action": "relabel", "label": "neg",
         "original_label": "pos", "note": "flipped?"},
        {"guid": "0", "example_fingerprint": examples["0"], "action": "keep", "label": "neg", "original_label": "neg"}]}
    (tmp_path / "c.json").write_text(json.dumps(doc))
    from training_dynamics.workflows.apply import apply_corrections_file
    df = apply_corrections_file(tmp_path / "c.json", train_file=str(f), output=tmp_path / "fixed.jsonl")
    assert df["corrected_label"].tolist() == ["neg", "pos", "neg", "neg"]
    with pytest.raises(co.CorrectionsError, match="guid 9 is not in t.jsonl"):
        co.corrections_document(data, [9], ["neg"])
    with pytest.raises(co.CorrectionsError, match="label 'maybe' is not one of"):
        co.corrections_document(data, [1], ["maybe"])


def test_integer_labels_with_class_names_are_written_as_names(tmp_path):
    """Integer labels named by --class_names come out named (what the reviewer chose among)."""
    f = _jsonl(tmp_path / "t.jsonl", [{"sentence": f"s{k}", "label": k % 2} for k in range(3)])
    data = load_text_classification(train_file=str(f), label_names=["neg", "pos"])
    df = co.apply_corrections(data, co.Corrections(dataset="", label_names=["neg", "pos"], guids=np.array([1]),
                                                   actions=["relabel"], labels=["neg"], original_labels=["pos"]))
    assert df["corrected_label"].tolist() == ["neg", "neg", "neg"] and df["original_label"].tolist()[1] == "pos"


def test_string_guids_are_matched_as_they_are(tmp_path):
    """String ids (SNLI pairIDs) go through review and apply unchanged."""
    rows = [{"pairID": f"{k}r1n#{k}", "sentence": f"s{k}", "label": ["neg", "pos"][k % 2]} for k in range(4)]
    f = _jsonl(tmp_path / "t.jsonl", [{"idx": r["pairID"], **r} for r in rows])
    data = load_text_classification(train_file=str(f), text_columns=["sentence"])
    assert data.train["guid"] == [r["pairID"] for r in rows]
    fp, examples = co.data_fingerprints(data)
    corr = _write(tmp_path / "c.json", [{"guid": "1r1n#1", "action": "relabel", "label": "neg",
                                         "example_fingerprint": examples["1r1n#1"]}], ["neg", "pos"], fp)
    df = co.apply_corrections(data, co.read_corrections(corr))
    assert df["guid"].tolist() == [r["pairID"] for r in rows]
    assert df["corrected_label"].tolist() == ["neg", "neg", "neg", "pos"]
