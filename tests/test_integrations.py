"""Label Studio and Argilla round trip: ranked issues exported as the tools' documented import formats,
their documented export formats read back as corrections.json, which apply puts on the right examples
(and refuses on changed data), plus review --top_k.

The SDKs (label-studio-sdk, argilla 2.x) are large and not in CI's requirements: where they are importable
the tests also validate the files with them (LabelInterface.validate_prediction, rg.Record.from_dict,
rg.Settings from the settings file); the format checks below them run everywhere.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from unittest import mock
from xml.etree import ElementTree

import numpy as np
import pandas as pd
import pytest

from conftest import _run_in_process
from training_dynamics.workflows import labeling_tools as lt
from training_dynamics.decisions import ranking as le
from training_dynamics.review import scale as review_scale
from training_dynamics.review.corrections import CorrectionsError
from training_dynamics.workflows.apply import apply_corrections_file
from training_dynamics.core.data import example_texts, load_text_classification

LABELS = ["negative", "neutral", "positive"]
N = 130


def _cli(command: str, *args, expect_fail: bool = False) -> str:
    """``training-dynamics <command> ARGS`` in this process; its stderr."""
    proc = _run_in_process(command, f"training-dynamics {command}", [str(a) for a in args])
    assert (proc.returncode == 2) if expect_fail else (proc.returncode == 0), proc.stderr[-3000:]
    return proc.stderr


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _rank(train: Path, out: Path, *, flagged: int) -> Path:
    """find-issues' files for ``train`` (seeded probabilities, no model); the first ``flagged`` ranks flagged."""
    data = load_text_classification(train_file=str(train))
    guids = np.asarray(data.train["guid"], dtype=np.int64)
    gold = np.asarray(data.train["label"], dtype=np.int64)
    probs = np.random.default_rng(0).dirichlet(np.ones(len(data.label_names)), size=len(guids))
    score = 1 - probs[np.arange(len(gold)), gold]
    order = np.argsort(-score, kind="stable")
    flags = np.zeros(len(guids), dtype=bool)
    flags[order[:flagged]] = True
    likely = np.where(flags, (gold + 1) % len(data.label_names), -1)
    df = le.rank_examples(guids=guids, texts=example_texts(data.train, data.text_columns), gold=gold,
                          probabilities=probs, score=score, score_name="1-confidence", label_names=data.label_names,
                          extra={"is_label_issue": flags, "likely_true": likely})
    le.write_issues(df, out, {"source": "model", "score_name": "1-confidence", "data": data.source,
                              "dataset": le.dataset_name(data.source), "label_names": df.attrs["label_names"]})
    return out / le.ISSUES_NAME


@pytest.fixture()
def ranked(tmp_path):
    rows = [{"sentence": f"review number {i} \u2013 {'good' if i % 3 else 'bad'} <b>&</b>", "label": LABELS[i % 3]}
            for i in range(N)]
    train = _jsonl(tmp_path / "train.jsonl", rows)
    return {"train": train, "rows": rows, "issues": _rank(train, tmp_path / "issues", flagged=110)}


def _choices(tasks_guids: list[str], given: dict, n: int = 100) -> dict[str, str]:
    """n seeded choices: about half relabels, half keeps."""
    rng = np.random.default_rng(1)
    return {g: (LABELS[rng.integers(3)] if rng.random() < 0.6 else given[g]) for g in tasks_guids[:n]}


def _check_applied(tmp_path, train, corrections: Path, chosen: dict[str, str], rows, unsure=()) -> None:
    df = apply_corrections_file(corrections, train_file=str(train), output=tmp_path / "fixed.jsonl")
    assert len(df) == N
    for g, label, orig, action in zip(df["guid"], df["corrected_label"], df["original_label"], df["review_action"]):
        assert orig == rows[g]["label"]
        if str(g) in chosen:
            assert label == chosen[str(g)], g
            assert action == ("keep" if chosen[str(g)] == orig else "relabel")
        else:
            assert label == orig and action == ("unsure" if str(g) in unsure else "unreviewed")


def _refused_on_changed_data(train: Path, rows: list[dict], corrections: Path) -> None:
    _jsonl(train, [{**r, "sentence": r["sentence"] + " (edited)"} if i == 7 else r for i, r in enumerate(rows)])
    with pytest.raises(CorrectionsError, match="other data"):
        apply_corrections_file(corrections, train_file=str(train))
    _jsonl(train, rows)


# -- Label Studio ---------------------------------------------------------------------------------
def _ls_export(tasks: list[dict], chosen: dict[str, str], *, notes: dict | None = None) -> list[dict]:
    """Label Studio's JSON export (Export -> JSON) of the imported tasks after annotating ``chosen``:
    id, data, annotations (result items as the Choices / TextArea tags write them), predictions."""
    out = []
    for k, t in enumerate(tasks):
        g = t["data"]["guid"]
        anns = []
        if g in chosen:
            result = [{"value": {"choices": [chosen[g]]}, "id": f"r{k}", "from_name": "label", "to_name": "text",
                       "type": "choices", "origin": "manual"}]
            if notes and g in notes:
                result.append({"value": {"text": [notes[g]]}, "id": f"n{k}", "from_name": "note", "to_name": "text",
                               "type": "textarea", "origin": "manual"})
            anns.append({"id": 1000 + k, "completed_by": 1, "result": result, "was_cancelled": False,
                         "ground_truth": False, "created_at": "2026-01-31T10:00:00.000000Z",
                         "updated_at": "2026-01-31T10:00:00.000000Z", "lead_time": 3.1, "prediction": {},
                         "result_count": 0, "task": k + 1, "project": 1, "parent_prediction": None,
                         "parent_annotation": None})
        out.append({"id": k + 1, "annotations": anns, "file_upload": "label_studio_tasks.json", "drafts": [],
                    "predictions": [p["id"] if isinstance(p, dict) and "id" in p else k for p in t["predictions"]],
                    "data": t["data"], "meta": {}, "created_at": "2026-01-31T09:00:00.000000Z",
                    "updated_at": "2026-01-31T10:00:00.000000Z", "inner_id": k + 1, "total_annotations": len(anns),
                    "cancelled_annotations": 0, "total_predictions": 2, "comment_count": 0, "project": 1})
    return out


def test_label_studio_round_trip_puts_100_choices_on_their_examples(ranked, tmp_path):
    train, rows = ranked["train"], ranked["rows"]
    _cli("review", "--issues", ranked["issues"], "--format", "label-studio",
            "--output_dir", tmp_path / "ls")
    tasks = json.loads((tmp_path / "ls" / "label_studio_tasks.json").read_text())
    config = (tmp_path / "ls" / "label_studio_config.xml").read_text()
    # default rows: the 110 flagged + 20 context (max(25, 11) but only 20 unflagged exist)
    assert len(tasks) == N
    assert [t["data"]["rank"] for t in tasks] == list(range(1, N + 1))
    view = ElementTree.fromstring(config)
    assert [c.get("value") for c in view.iter("Choice")] == LABELS
    assert view.find("Choices").get("name") == "label" and view.find("Choices").get("toName") == "text"
    assert view.find("Text").get("value") == "$text" and view.find("TextArea").get("name") == "note"
    data = load_text_classification(train_file=str(train))
    from training_dynamics.review.corrections import data_fingerprints

    fp, example_fps = data_fingerprints(data)
    t0 = tasks[0]
    g0 = t0["data"]["guid"]
    assert t0["data"]["text"] == rows[int(g0)]["sentence"] and t0["data"]["given_label"] == rows[int(g0)]["label"]
    assert t0["data"]["fingerprint"] == example_fps[g0] and t0["data"]["dataset_fingerprint"] == fp
    given_pred, suggested = t0["predictions"]
    assert given_pred["model_version"] == "given-label"
    assert given_pred["result"][0]["value"] == {"choices": [t0["data"]["given_label"]]}
    assert suggested["model_version"] == "training-dynamics" and 0 <= suggested["score"] <= 1
    # the flagged rows suggest the decision's likely true label (gold + 1 here), with its probability
    assert suggested["result"][0]["value"]["choices"] == [LABELS[(LABELS.index(t0["data"]["given_label"]) + 1) % 3]]
    assert suggested["result"][0]["score"] == suggested["score"] == t0["data"]["suggested_score"]

    given = {t["data"]["guid"]: t["data"]["given_label"] for t in tasks}
    chosen = _choices([t["data"]["guid"] for t in tasks], given)
    assert len(chosen) == 100 and 20 < sum(chosen[g] != given[g] for g in chosen) < 80
    export = tmp_path / "project-1-at-2026-01-31.json"
    export.write_text(json.dumps(_ls_export(tasks, chosen, notes={g0: "typo in the text"})))
    _cli("import-labels", "--format", "label-studio", "--input", export,
            "--issues", ranked["issues"], "--output_dir", tmp_path)
    doc = json.loads((tmp_path / "corrections.json").read_text())
    assert doc["dataset_fingerprint"] == fp and doc["label_names"] == LABELS and doc["kind"] == "classification"
    assert len(doc["corrections"]) == 100
    assert [c["note"] for c in doc["corrections"] if "note" in c] == ["typo in the text"]
    _check_applied(tmp_path, train, tmp_path / "corrections.json", chosen, rows)
    _refused_on_changed_data(train, rows, tmp_path / "corrections.json")


def test_label_studio_json_min_skips_and_disagreement(ranked, tmp_path):
    """JSON-MIN (one flat row per annotation); a skipped task is unsure; two annotators who disagree give
    unsure with their votes; a label not in the config is refused in one line."""
    lt.export_issues(ranked["issues"], "label-studio", tmp_path / "ls", top_k=3)
    tasks = json.loads((tmp_path / "ls" / "label_studio_tasks.json").read_text())
    assert len(tasks) == 3
    a, b, c = (t["data"] for t in tasks)
    full = _ls_export(tasks, {})
    full[2]["annotations"] = [{"result": [], "was_cancelled": True}]
    (tmp_path / "skip.json").write_text(json.dumps(full))
    doc = lt.corrections_from_export(tmp_path / "skip.json", "label-studio", ranked["issues"])
    assert [(x["guid"], x["action"], x["label"]) for x in doc["corrections"]] == [(c["guid"], "unsure", None)]
    minimal = [{**a, "id": 1, "label": "neutral", "annotator": 1, "annotation_id": 1, "lead_time": 2.0},
               {**a, "id": 1, "label": "positive", "annotator": 2, "annotation_id": 2, "lead_time": 2.0},
               {**b, "id": 2, "label": {"choices": [b["given_label"]]}, "note": "fine", "annotator": 1}]
    (tmp_path / "min.json").write_text(json.dumps(minimal))
    doc = lt.corrections_from_export(tmp_path / "min.json", "label-studio", ranked["issues"])
    got = {x["guid"]: x for x in doc["corrections"]}
    assert got[a["guid"]]["action"] == "unsure" and got[a["guid"]]["note"] == "annotators disagree: neutral 1, positive 1"
    assert (got[b["guid"]]["action"], got[b["guid"]]["label"], got[b["guid"]]["note"]) == ("keep", b["given_label"], "fine")
    (tmp_path / "bad.json").write_text(json.dumps([{**a, "label": "Positive"}]))
    err = _cli("import-labels", "--format", "label-studio", "--input", tmp_path / "bad.json",
                  "--issues", ranked["issues"], "--output", tmp_path / "c.json", expect_fail=True)
    assert "label 'Positive' is not one of" in err and err.count("\n") == 1


# -- Argilla --------------------------------------------------------------------------------------
def _argilla_nested(records: list[dict], chosen: dict[str, str], *, discarded=()) -> list[dict]:
    """dataset.records.to_json(path): rg.Record.to_dict() of each record after annotation (responses keyed
    by question, each {"value", "user_id"}; the record's status "completed" once submitted or discarded)."""
    user = str(uuid.UUID(int=7))
    out = []
    for k, r in enumerate(records):
        g = r["metadata"]["guid"]
        responses = {"label": [{"value": chosen[g], "user_id": user}]} if g in chosen else {}
        done = g in chosen or g in discarded
        out.append({**r, "responses": responses, "status": "completed" if done else "pending",
                    "_server_id": str(uuid.UUID(int=1000 + k))})
    return out


def _argilla_flat(records: list[dict], chosen: dict[str, str], *, discarded=()) -> list[dict]:
    """records.to_list(flatten=True): fields and metadata at the top, label.responses(.users/.status) lists,
    label.suggestion(.score/.agent)."""
    user = str(uuid.UUID(int=7))
    out = []
    for r in records:
        g = r["metadata"]["guid"]
        row = {"id": r["id"], "status": "pending", "_server_id": None, **r["fields"], **r["metadata"],
               "label.suggestion": r["suggestions"]["label"]["value"],
               "label.suggestion.score": r["suggestions"]["label"]["score"],
               "label.suggestion.agent": r["suggestions"]["label"]["agent"]}
        if g in chosen:
            row.update({"label.responses": [chosen[g]], "label.responses.users": [user],
                        "label.responses.status": ["submitted"], "status": "completed"})
        elif g in discarded:
            row.update({"label.responses": [None], "label.responses.users": [user],
                        "label.responses.status": ["discarded"], "status": "completed"})
        out.append(row)
    return out


@pytest.mark.parametrize("shape", ["nested", "flat"])
def test_argilla_round_trip_puts_100_choices_on_their_examples(ranked, tmp_path, shape):
    train, rows = ranked["train"], ranked["rows"]
    _cli("review", "--issues", ranked["issues"], "--format", "argilla", "--top_k", "120",
            "--output_dir", tmp_path / "ag")
    records = json.loads((tmp_path / "ag" / "argilla_records.json").read_text())
    settings = json.loads((tmp_path / "ag" / "argilla_settings.json").read_text())
    assert len(records) == 120
    q = {x["name"]: x for x in settings["questions"]}
    assert [o["value"] for o in q["label"]["settings"]["options"]] == LABELS and q["note"]["required"] is False
    assert [f["name"] for f in settings["fields"]] == ["text"]
    assert {m["name"] for m in settings["metadata"]} >= {"guid", "fingerprint", "dataset_fingerprint", "rank"}
    r0 = records[0]
    assert set(r0) == {"id", "fields", "metadata", "suggestions", "responses", "vectors", "status", "_server_id"}
    assert r0["suggestions"]["label"]["agent"] == "training-dynamics" and 0 <= r0["suggestions"]["label"]["score"] <= 1
    assert r0["fields"]["text"] == rows[int(r0["metadata"]["guid"])]["sentence"]
    given = {r["metadata"]["guid"]: r["metadata"]["given_label"] for r in records}
    guids = [r["metadata"]["guid"] for r in records]
    chosen = _choices(guids, given)
    discarded = {guids[110]}
    make = _argilla_nested if shape == "nested" else _argilla_flat
    export = tmp_path / "argilla_export.json"
    export.write_text(json.dumps(make(records, chosen, discarded=discarded)))
    doc = lt.corrections_from_export(export, "argilla", ranked["issues"])
    assert len(doc["corrections"]) == 101
    assert [c for c in doc["corrections"] if c["guid"] in discarded][0]["action"] == "unsure"
    lt.write_corrections(doc, tmp_path / "corrections.json")
    _check_applied(tmp_path, train, tmp_path / "corrections.json", chosen, rows, unsure=discarded)
    _refused_on_changed_data(train, rows, tmp_path / "corrections.json")


# -- token classification -------------------------------------------------------------------------
def test_word_tasks_round_trip_per_word(tmp_path):
    """A word ranking: one task per word, its sentence with the word marked; choices come back keyed by
    (guid, word_index) and apply retags exactly those words."""
    names = ["B-LOC", "B-PER", "I-PER", "O"]
    sents = [(["anna", "smith", "met", "bob"], ["B-PER", "I-PER", "O", "B-LOC"]), (["in", "rome"], ["O", "B-PER"])]
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps({"tokens": w, "ner_tags": t}) + "\n" for w, t in sents))
    ranked = [(1, 1, "B-PER"), (0, 3, "B-LOC"), (0, 0, "B-PER")]
    rows = [{"rank": r + 1, "guid": g, "word_index": w, "word": sents[g][0][w], "text": " ".join(sents[g][0]),
             "gold": names.index(gold), "probabilities": [0.1, 0.6, 0.2, 0.1], "score": 1.0 - r / 10}
            for r, (g, w, gold) in enumerate(ranked)]
    (tmp_path / "label_issues.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    src = {"kind": "token_classification", "train_file": str(data), "text_columns": ["tokens"], "label_column": "ner_tags"}
    (tmp_path / "label_issues_settings.json").write_text(json.dumps({"kind": "token_classification", "data": src,
                                                                     "label_names": names}))
    lt.export_issues(tmp_path / "label_issues.jsonl", "label-studio", tmp_path / "ls")
    tasks = json.loads((tmp_path / "ls" / "label_studio_tasks.json").read_text())
    assert [(t["data"]["guid"], t["data"]["word_index"], t["data"]["text"]) for t in tasks] == [
        ("1", 1, "in \u27e6rome\u27e7"), ("0", 3, "anna smith met \u27e6bob\u27e7"), ("0", 0, "\u27e6anna\u27e7 smith met bob")]
    assert tasks[1]["data"]["fingerprint"] == tasks[2]["data"]["fingerprint"]  # the sentence's
    chosen = {("1", 1): "B-LOC", ("0", 3): "B-LOC"}
    export = []
    for k, t in enumerate(tasks):
        key = (t["data"]["guid"], t["data"]["word_index"])
        anns = [{"result": [{"from_name": "label", "to_name": "text", "type": "choices",
                             "value": {"choices": [chosen[key]]}}], "was_cancelled": False}] if key in chosen else []
        export.append({"id": k + 1, "data": t["data"], "annotations": anns})
    (tmp_path / "export.json").write_text(json.dumps(export))
    doc = lt.corrections_from_export(tmp_path / "export.json", "label-studio", tmp_path / "label_issues.jsonl")
    assert [(c["guid"], c["word_index"], c["action"], c["label"]) for c in doc["corrections"]] == [
        ("1", 1, "relabel", "B-LOC"), ("0", 3, "keep", "B-LOC")]
    assert doc["kind"] == "token_classification"
    lt.write_corrections(doc, tmp_path / "corrections.json")
    apply_corrections_file(tmp_path / "corrections.json", train_file=str(data), output=tmp_path / "fixed.jsonl")
    fixed = [json.loads(line) for line in open(tmp_path / "fixed.jsonl")]
    assert fixed[1]["ner_tags"] == ["O", "B-LOC"] and fixed[0]["ner_tags"] == sents[0][1]
    # Argilla records of words carry word_index in their metadata and ids
    lt.export_issues(tmp_path / "label_issues.jsonl", "argilla", tmp_path / "ag")
    recs = json.loads((tmp_path / "ag" / "argilla_records.json").read_text())
    assert [(r["id"], r["metadata"]["word_index"]) for r in recs] == [("1#1", 1), ("0#3", 3), ("0#0", 0)]


def test_mixed_exports_and_bad_files_are_one_line(ranked, tmp_path):
    lt.export_issues(ranked["issues"], "label-studio", tmp_path / "ls", top_k=2)
    tasks = json.loads((tmp_path / "ls" / "label_studio_tasks.json").read_text())
    tasks[1]["data"]["dataset_fingerprint"] = "0" * 64
    (tmp_path / "mixed.json").write_text(json.dumps(tasks))
    with pytest.raises(lt.LabelingToolError, match="2 versions of the data"):
        lt.corrections_from_export(tmp_path / "mixed.json", "label-studio", ranked["issues"])
    (tmp_path / "obj.json").write_text("{}")
    with pytest.raises(lt.LabelingToolError, match="a list of tasks"):
        lt.corrections_from_export(tmp_path / "obj.json", "label-studio", ranked["issues"])
    (tmp_path / "noguid.json").write_text(json.dumps([{"data": {"text": "x"}}]))
    with pytest.raises(lt.LabelingToolError, match="no guid"):
        lt.corrections_from_export(tmp_path / "noguid.json", "label-studio", ranked["issues"])


# -- review --top_k -------------------------------------------------------------------------------
def test_select_rows_default_is_flagged_plus_context():
    n = 1000
    df = pd.DataFrame({"rank": np.arange(n, 0, -1), "guid": np.arange(n)})
    assert review_scale.select_rows(df)["rank"].tolist() == list(range(1, n + 1))  # no decision: all, by rank
    flags = np.zeros(n, dtype=bool)
    flags[[0, 5, 500]] = True  # rank 1000, 995, 500 flagged: not at the top
    df["is_label_issue"] = flags
    kept = review_scale.select_rows(df)
    assert len(kept) == 3 + 25 and kept["is_label_issue"].sum() == 3
    assert kept["rank"].tolist()[:25] == list(range(1, 26)) and set(kept["rank"].tolist()[25:]) == {500, 995, 1000}
    flags[:400] = True
    df["is_label_issue"] = flags
    assert len(review_scale.select_rows(df)) == 401 + 41  # 10% of the flagged as context
    assert review_scale.select_rows(df, 7)["rank"].tolist() == list(range(1, 8))


def test_compact_payload_expands_back():
    from training_dynamics.review import page as review

    issues = pd.DataFrame({"guid": [3, 1], "text": ["a b", "c"], "gold": [0, 1], "probabilities": [[0.1234, 0.8766],
                           [0.5, 0.5]], "score": [0.9, 0.1234567], "region": ["hard", ""], "is_label_issue": [True, False]})
    p = review.review_payload(issues, label_names=["x", "y"], score_name="1-confidence")
    back = review_scale.expand_payload(review_scale.compact_payload(p))
    assert back["items"]["probabilities"] == [[0.123, 0.877], [0.5, 0.5]]
    assert back["items"]["region"] == ["hard", ""] and back["flags"][0]["values"] == [True, False]
    assert back["items"]["guid"] == p["items"]["guid"] and back["metrics"][0]["values"] == [0.9, 0.1235]


# -- the tools' own SDKs, where installed ----------------------------------------------------------
def test_label_studio_sdk_accepts_the_tasks_and_config(ranked, tmp_path):
    interface = pytest.importorskip("label_studio_sdk.label_interface")
    lt.export_issues(ranked["issues"], "label-studio", tmp_path / "ls", top_k=100)
    li = interface.LabelInterface((tmp_path / "ls" / "label_studio_config.xml").read_text())
    tasks = json.loads((tmp_path / "ls" / "label_studio_tasks.json").read_text())
    assert li.validate_task({"data": tasks[0]["data"]})
    assert all(li.validate_prediction(p) for t in tasks for p in t["predictions"])
    assert not li.validate_prediction({"result": [lt._ls_choice("not a label")]})
    chosen = {t["data"]["guid"]: "neutral" for t in tasks}
    for t in _ls_export(tasks, chosen):
        assert li.validate_annotation(t["annotations"][0])


def test_argilla_sdk_reads_records_settings_and_export(ranked, tmp_path):
    rg = pytest.importorskip("argilla")
    lt.export_issues(ranked["issues"], "argilla", tmp_path / "ag", top_k=100)
    records = json.loads((tmp_path / "ag" / "argilla_records.json").read_text())
    with mock.patch.object(rg.Argilla, "_default_client", mock.MagicMock(), create=True):
        settings = rg.Settings.from_json(tmp_path / "ag" / "argilla_settings.json")
    assert settings.questions["label"].labels == LABELS
    parsed = [rg.Record.from_dict(r) for r in records]
    assert parsed[0].suggestions["label"].value == records[0]["suggestions"]["label"]["value"]
    assert parsed[0].metadata["guid"] == records[0]["metadata"]["guid"] and parsed[0].id == records[0]["id"]
    # an export written by the SDK itself: records with responses -> to_dict -> our reader
    chosen = {r["metadata"]["guid"]: "positive" for r in records}
    user = uuid.UUID(int=7)
    made = [rg.Record(id=r["id"], fields=r["fields"], metadata=r["metadata"],
                      responses=[rg.Response("label", chosen[r["metadata"]["guid"]], user_id=user, status="submitted")])
            for r in records]
    from argilla.records._io import GenericIO

    nested = [dict(r.to_dict(), status="completed") for r in made]
    (tmp_path / "nested.json").write_text(json.dumps(nested, default=str))
    (tmp_path / "flat.json").write_text(json.dumps(GenericIO.to_list(made, flatten=True), default=str))
    for name in ("nested.json", "flat.json"):
        doc = lt.corrections_from_export(tmp_path / name, "argilla", ranked["issues"])
        assert len(doc["corrections"]) == 100 and {c["label"] for c in doc["corrections"]} == {"positive"}


# -- multi-label: one task / record per example, its label set ------------------------------------------------------
def _ml_ranked(tmp_path):
    """A synthetic multi-label run (tests/test_multilabel.py) with two planted wrong values, ranked by the CLI:
    score_mixture flags exactly the planted pairs (example 2: add bio; example 4: remove arts or add it)."""
    from test_multilabel import NAMES as ML_NAMES, _synthetic_run

    planted = [(2, 1), (4, 0)]
    run, data, _, given = _synthetic_run(tmp_path, n=20, planted=planted)
    _cli("find-issues", "--source", "dynamics", "--run_dir", run, "--decision", "score_mixture", "--output_dir",
         tmp_path / "issues", "--disable_tqdm")
    issues = tmp_path / "issues" / "label_issues.jsonl"
    rows = [json.loads(line) for line in issues.read_text().splitlines()]
    assert {(r["guid"], r["label"]) for r in rows if r["is_label_issue"]} == {(i, ML_NAMES[j]) for i, j in planted}
    return {"issues": issues, "given": given, "names": ML_NAMES, "planted": planted, "data": data,
            "train": tmp_path / "train.jsonl"}


def _ml_sets(given_row, names) -> list[str]:
    return [n for n, x in zip(names, given_row) if x]


@pytest.mark.parametrize("fmt", ["label-studio", "argilla"])
def test_multilabel_round_trip_one_task_per_example_changes_exactly_the_chosen_labels(tmp_path, fmt):
    from training_dynamics.review.corrections import data_fingerprints

    ml = _ml_ranked(tmp_path)
    given, names, train = ml["given"], ml["names"], ml["train"]
    _cli("review", "--issues", ml["issues"], "--format", fmt, "--top_k", 60, "--output_dir", tmp_path / "out")
    fp, example_fps = data_fingerprints(ml["data"])
    if fmt == "label-studio":
        tasks = json.loads((tmp_path / "out" / "label_studio_tasks.json").read_text())
        view = ElementTree.fromstring((tmp_path / "out" / "label_studio_config.xml").read_text())
        assert view.find("Choices").get("choice") == "multiple"
        assert [c.get("value") for c in view.iter("Choice")] == names
        exported = [t["data"] for t in tasks]
        for t in tasks:  # pre-annotations: the given set, and the suggested set with its score
            d = t["data"]
            assert [p["model_version"] for p in t["predictions"]] == ["given-label", "training-dynamics"]
            got = [[r["value"]["choices"] for r in p["result"]] for p in t["predictions"]]
            assert got == [[d["given_labels"]] if d["given_labels"] else [],
                           [d["suggested_labels"]] if d["suggested_labels"] else []]
    else:
        records = json.loads((tmp_path / "out" / "argilla_records.json").read_text())
        settings = json.loads((tmp_path / "out" / "argilla_settings.json").read_text())
        q = {x["name"]: x for x in settings["questions"]}["label"]
        assert q["type"] == q["settings"]["type"] == "multi_label_selection"
        assert [o["value"] for o in q["settings"]["options"]] == names
        assert {m["name"] for m in settings["metadata"]} >= {"guid", "given_labels", "ranked_labels", "fingerprint"}
        exported = [{**r["metadata"], "text": r["fields"]["text"],
                     "suggested_labels": r["suggestions"].get("label", {}).get("value", [])} for r in records]
        assert all(r["id"] == r["metadata"]["guid"] for r in records)
    # one task per example (every pair is among the 60 rows): guids unique, each carrying its own given set
    guids = [d["guid"] for d in exported]
    assert len(guids) == len(set(guids)) == 20
    for d in exported:
        g = int(d["guid"])
        assert d["given_labels"] == _ml_sets(given[g], names) and d["text"] == f"text number {g}"
        assert d["fingerprint"] == example_fps[d["guid"]] and d["dataset_fingerprint"] == fp
        assert sorted(d["ranked_labels"]) == names
    by_guid = {d["guid"]: d for d in exported}
    for g, j in ml["planted"]:  # the suggestion: the planted pair's fix, and the set with it made
        fix = "remove" if given[g, j] else "add"
        want = given[g].copy()
        want[j] = 1 - want[j]
        assert by_guid[str(g)]["suggested_labels"] == _ml_sets(want, names)
        if fmt == "label-studio":
            (change,) = by_guid[str(g)]["suggested_changes"]
            assert (change["label"], change["fix"]) == (names[j], fix) and 0.5 < change["score"] <= 1
    assert all(d["suggested_labels"] == d["given_labels"] for g, d in by_guid.items()
               if int(g) not in dict(ml["planted"]))
    # the annotators: accept example 2's suggestion; keep example 4 as given (reject it); example 7 is skipped
    g2, g4 = "2", "4"
    chosen = {g2: by_guid[g2]["suggested_labels"], g4: by_guid[g4]["given_labels"]}
    export = tmp_path / "export.json"
    if fmt == "label-studio":
        out = []
        for k, t in enumerate(tasks):
            g = t["data"]["guid"]
            anns = ([{"result": [{"from_name": "label", "to_name": "text", "type": "choices",
                                  "value": {"choices": chosen[g]}}], "was_cancelled": False}] if g in chosen
                    else [{"result": [], "was_cancelled": True}] if g == "7" else [])
            out.append({"id": k + 1, "data": t["data"], "annotations": anns})
        export.write_text(json.dumps(out))
    else:
        export.write_text(json.dumps(_argilla_nested(records, chosen, discarded={"7"})))
    _cli("import-labels", "--format", fmt, "--input", export, "--issues", ml["issues"], "--output_dir", tmp_path)
    doc = json.loads((tmp_path / "corrections.json").read_text())
    assert doc["kind"] == "multi_label" and doc["label_names"] == names and doc["dataset_fingerprint"] == fp
    got = {(c["guid"], c["label_index"]): c for c in doc["corrections"]}
    assert got[(g2, 1)]["action"] == "relabel" and got[(g2, 1)]["fix"] == ("remove" if given[2, 1] else "add")
    assert got[(g2, 1)]["label"] == "bio" and got[(g2, 1)]["example_fingerprint"] == example_fps[g2]
    assert [c["action"] for k, c in got.items() if k[0] == g4] == ["keep"] * 3
    assert [c["action"] for k, c in got.items() if k[0] == "7"] == ["unsure"] * 3
    assert [k for k, c in got.items() if c["action"] == "relabel"] == [(g2, 1)]
    _cli("apply", "--corrections", tmp_path / "corrections.json", "--train_file", train, "--output",
         tmp_path / "fixed.jsonl")
    fixed = [json.loads(line) for line in (tmp_path / "fixed.jsonl").read_text().splitlines()]
    want = given.copy()
    want[2, 1] = 1 - want[2, 1]
    assert [r["labels"] for r in fixed] == [_ml_sets(w, names) for w in want]  # exactly bio of example 2 changed
    assert [r["original_labels"] for r in fixed] == [_ml_sets(w, names) for w in given]
    assert fixed[2]["review_actions"] == ["arts: keep", "bio: relabel", "cars: keep"]


def test_multilabel_import_disagreement_and_refusals(tmp_path):
    """Annotators who disagree on a label give unsure on that label only (the labels they agree on apply); a
    per-pair export of an older version, and given labels that are not the ranking's, are refused in one line."""
    ml = _ml_ranked(tmp_path)
    given, names = ml["given"], ml["names"]
    lt.export_issues(ml["issues"], "label-studio", tmp_path / "ls", top_k=60)
    tasks = json.loads((tmp_path / "ls" / "label_studio_tasks.json").read_text())
    t2 = next(t for t in tasks if t["data"]["guid"] == "2")
    flipped = _ml_sets(np.where(np.arange(3) == 1, 1 - given[2], given[2]), names)  # bio flipped
    both = _ml_sets(np.where(np.arange(3) <= 1, 1 - given[2], given[2]), names)  # arts and bio flipped
    minimal = [{**t2["data"], "id": 1, "label": {"choices": flipped}, "annotator": 1, "annotation_id": 1},
               {**t2["data"], "id": 1, "label": {"choices": both}, "annotator": 2, "annotation_id": 2, "note": "hm"}]
    (tmp_path / "min.json").write_text(json.dumps(minimal))
    doc = lt.corrections_from_export(tmp_path / "min.json", "label-studio", ml["issues"])
    got = {c["label"]: c for c in doc["corrections"]}
    assert (got["bio"]["action"], got["arts"]["action"], got["cars"]["action"]) == ("relabel", "unsure", "keep")
    assert got["arts"]["note"].startswith("annotators disagree on arts: carried 1, not carried 1")
    # an export made one task per pair (no given_labels) by an older version: refused, nothing written
    old = [{"data": {k: v for k, v in t["data"].items() if k not in ("given_labels", "ranked_labels")},
            "annotations": [{"result": [{"from_name": "label", "to_name": "text", "type": "choices",
                                         "value": {"choices": ["arts"]}}]}]} for t in tasks[:2]]
    (tmp_path / "old.json").write_text(json.dumps(old))
    err = _cli("import-labels", "--format", "label-studio", "--input", tmp_path / "old.json", "--issues", ml["issues"],
               "--output", tmp_path / "c.json", expect_fail=True)
    assert "no given_labels" in err and "export the ranking again" in err and err.count("\n") == 1
    assert not (tmp_path / "c.json").exists()
    # given labels edited in the tool (not the ranking's): refused rather than flipping the wrong way
    edited = [{**t2, "data": {**t2["data"], "given_labels": flipped},
               "annotations": [{"result": [{"from_name": "label", "to_name": "text", "type": "choices",
                                            "value": {"choices": flipped}}]}]}]
    (tmp_path / "edited.json").write_text(json.dumps(edited))
    err = _cli("import-labels", "--format", "label-studio", "--input", tmp_path / "edited.json", "--issues",
               ml["issues"], "--output", tmp_path / "c.json", expect_fail=True)
    assert "are not the labels the ranking has for it" in err and err.count("\n") == 1


# -- generative: keep (response) or drop (other) ---------------------------------------------------------------------
def test_generative_round_trip_drops_exactly_the_responses_chosen_other(tmp_path):
    from training_dynamics.kinds.generative.dynamics import write_generative_epoch

    prompts = [("owl", "bird"), ("fox", "fish"), ("cod", "fish"), ("cow", "mammal"), ("bee", "mammal")]
    train = _jsonl(tmp_path / "sft.jsonl", [{"prompt": f"what is a {a}", "response": f"it is a {k}"}
                                            for a, k in prompts])
    values = np.array([[[-0.1, 1.0, 4], [-0.1, 1.0, 4]], [[-2.0, 0.2, 4], [-1.9, 0.2, 4]],
                       [[-0.2, 1.0, 4], [-0.1, 1.0, 4]], [[-0.3, 0.9, 4], [-0.2, 1.0, 4]],
                       [[-1.8, 0.3, 4], [-1.7, 0.3, 4]]])
    dy = tmp_path / "run" / "training_dynamics"
    dy.mkdir(parents=True)
    for e in range(2):
        write_generative_epoch(dy, e, list(range(5)), values[:, e])
    (dy / "dynamics_meta.json").write_text(json.dumps({"kind": "generative", "label_names": ["response", "other"],
                                                       "num_labels": 2, "num_examples": 5}))
    _cli("find-issues", "--source", "dynamics", "--run_dir", tmp_path / "run", "--train_file", train,
         "--output_dir", tmp_path / "issues", "--disable_tqdm")
    issues = tmp_path / "issues" / "label_issues.jsonl"
    _cli("review", "--issues", issues, "--format", "label-studio", "--output_dir", tmp_path / "ls")
    tasks = json.loads((tmp_path / "ls" / "label_studio_tasks.json").read_text())
    view = ElementTree.fromstring((tmp_path / "ls" / "label_studio_config.xml").read_text())
    assert [c.get("value") for c in view.iter("Choice")] == ["response", "other"]
    assert [t["data"]["guid"] for t in tasks][:2] == ["1", "4"]  # the least learned responses first
    assert {t["data"]["given_label"] for t in tasks} == {"response"}
    assert tasks[0]["data"]["text"] == "what is a fox\n\u27f6 it is a fish"
    chosen = {"1": "other", "4": "response", "0": "response"}  # drop fox; keep bee and owl
    (tmp_path / "export.json").write_text(json.dumps(_ls_export(tasks, chosen)))
    _cli("import-labels", "--format", "label-studio", "--input", tmp_path / "export.json", "--issues", issues,
         "--output_dir", tmp_path)
    doc = json.loads((tmp_path / "corrections.json").read_text())
    assert doc["kind"] == "generative"
    assert sorted((c["guid"], c["action"]) for c in doc["corrections"]) == [("0", "keep"), ("1", "relabel"),
                                                                             ("4", "keep")]
    _cli("apply", "--corrections", tmp_path / "corrections.json", "--train_file", train, "--output",
         tmp_path / "clean.jsonl")
    clean = [json.loads(line) for line in (tmp_path / "clean.jsonl").read_text().splitlines()]
    assert [r["guid"] for r in clean] == [0, 2, 3, 4]
    assert [r["review_action"] for r in clean] == ["keep", "unreviewed", "unreviewed", "keep"]
