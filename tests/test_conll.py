"""CoNLL input for token classification: parsing (last column = tag, -DOCSTART-, IOB1 -> IOB2), one-line
errors naming file:line, save_to_disk folders, corrections written back into the CoNLL file with every
other byte kept, and (slow) record-ner -> find-issues -> review -> apply on a CoNLL file end to end."""

from __future__ import annotations

import json
import re

import pytest

from training_dynamics.kinds.token.conll import read_conll, to_iob1, to_iob2
from training_dynamics.core.data import DataError

# IOB1 (chunks start with I-; B- only right after a chunk of the same type), a POS column, -DOCSTART-,
# CRLF on one line, spaces (not tabs) on another sentence's lines would be refused: this file uses tabs
IOB1 = ("-DOCSTART-\t-X-\tO\n"
        "\n"
        "Anna\tNNP\tI-PER\n"
        "Lee\tNNP\tI-PER\n"
        "met\tVBD\tO\n"
        "Paris\tNNP\tI-LOC\n"
        "Hilton\tNNP\tI-PER\r\n"
        "Smith\tNNP\tB-PER\n"
        "\n"
        "in\tIN\tO\n"
        "Rome\tNNP\tI-LOC\n"
        "\n"
        "-DOCSTART-\t-X-\tO\n"
        "\n"
        "Bob\tNNP\tI-PER\n"
        "left\tVBD\tO\n")


def _write(path, text):
    path.write_bytes(text.encode("utf-8"))
    return path


def test_reads_words_and_last_column_and_converts_iob1_to_iob2(tmp_path, caplog):
    import logging

    path = _write(tmp_path / "train.conll", IOB1)
    with caplog.at_level(logging.INFO, logger="training_dynamics.kinds.token.conll"):
        parsed = read_conll(path)
    assert parsed.words == [["Anna", "Lee", "met", "Paris", "Hilton", "Smith"], ["in", "Rome"], ["Bob", "left"]]
    assert parsed.file_tags[0] == ["I-PER", "I-PER", "O", "I-LOC", "I-PER", "B-PER"]
    assert parsed.tags[0] == ["B-PER", "I-PER", "O", "B-LOC", "B-PER", "B-PER"]  # Smith: a 2nd PER right after Hilton
    assert parsed.tags[1:] == [["O", "B-LOC"], ["B-PER", "O"]]
    assert parsed.scheme == "iob1" and parsed.num_columns == 3
    assert parsed.line_of[0] == [2, 3, 4, 5, 6, 7]
    assert sum("IOB1" in r.message for r in caplog.records) == 1  # one log line
    assert to_iob1(parsed.tags[0]) == parsed.file_tags[0]
    assert to_iob2(["I-X", "I-X", "I-Y", "O", "I-Y", "B-Y"]) == ["B-X", "I-X", "B-Y", "O", "B-Y", "B-Y"]

    from training_dynamics.kinds.token.data import load_token_classification

    data = load_token_classification(train_file=str(path))
    assert data.train["guid"] == [0, 1, 2] and data.train["tokens"][2] == ["Bob", "left"]
    assert [data.label_names[t] for t in data.train["tags"][0]] == ["B-PER", "I-PER", "O", "B-LOC", "B-PER", "B-PER"]
    assert data.source["text_columns"] == ["tokens"] and data.source["label_column"] == "ner_tags"


def test_space_separated_iob2_file_keeps_its_tags(tmp_path):
    path = _write(tmp_path / "x.iob", "EU NNP B-ORG\nrejects VBZ O\nGerman JJ B-MISC\n\nPeter NNP B-PER\nBlackburn NNP "
                                      "I-PER\n\n\n")
    parsed = read_conll(path)
    assert parsed.scheme == "iob2" and parsed.tags == parsed.file_tags
    assert parsed.words == [["EU", "rejects", "German"], ["Peter", "Blackburn"]]


@pytest.mark.parametrize("text, line, needle", [
    ("Anna\tB-PER\nmet\n", 2, "one column"),
    ("Anna\tNNP\tB-PER\nmet\tO\n", 2, "2 columns but line 1 has 3"),
    ("Anna\tB-PER\n\tO\n", 2, "the word (first column) is empty"),
])
def test_malformed_lines_are_one_line_errors_naming_file_and_line(tmp_path, text, line, needle):
    path = _write(tmp_path / "bad.conll", text)
    with pytest.raises(DataError, match=re.escape(f"bad.conll:{line}: ") + ".*" + re.escape(needle)):
        read_conll(path)


def test_empty_and_non_utf8_files_are_refused(tmp_path):
    with pytest.raises(DataError, match="no sentence"):
        read_conll(_write(tmp_path / "e.conll", "-DOCSTART- O\n\n\n"))
    (tmp_path / "l.conll").write_bytes("Stra\xdfe\tO\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        read_conll(tmp_path / "l.conll")


@pytest.mark.slow
def test_record_ner_cli_refuses_a_malformed_conll_file_in_one_line(tmp_path):
    from conftest import run_cli

    bad = _write(tmp_path / "bad.conll", "Anna\tB-PER\nmet\n")
    proc = run_cli("run_ner_and_record_td.py", "--model_name_or_path", "prajjwal1/bert-tiny", "--train_file", bad,
                   "--output_dir", tmp_path / "out", "--dy_log_dir", tmp_path / "dy", check=False)
    assert proc.returncode == 2, proc.stderr
    err = [line for line in proc.stderr.strip().splitlines() if line]
    assert len(err) == 1 and "bad.conll:2: one column" in err[0] and "Traceback" not in proc.stderr


def _corrections(data, changes: dict) -> dict:
    """corrections.json as the review page exports it: ``changes`` maps (guid, word_index) -> new tag
    (a relabel), or None (marked unsure)."""
    from training_dynamics.review.corrections import data_fingerprints

    fingerprint, sentence_fps = data_fingerprints(data)
    names = data.label_names
    out = [{"guid": str(g), "word_index": w, "example_fingerprint": sentence_fps[str(g)],
            "action": "relabel" if tag else "unsure", "label": tag,
            "original_label": names[data.train["tags"][g][w]]} for (g, w), tag in changes.items()]
    return {"dataset": "train.conll", "dataset_fingerprint": fingerprint, "kind": "token_classification",
            "label_names": names, "corrections": out}


def test_apply_writes_the_corrected_tags_back_into_the_conll_file_and_nothing_else(tmp_path):
    from training_dynamics.workflows.apply import apply_corrections_file
    from training_dynamics.kinds.token.data import load_token_classification

    path = _write(tmp_path / "train.conll", IOB1)
    data = load_token_classification(train_file=str(path))
    # Paris is a person whose name goes on with Hilton (B-PER I-PER in IOB2), and Rome is no place:
    # in the file's IOB1 only Paris's and Rome's tag columns change (Hilton stays I-PER, Smith B-PER)
    doc = _corrections(data, {(0, 3): "B-PER", (0, 4): "I-PER", (1, 1): "O"})
    (tmp_path / "corrections.json").write_text(json.dumps(doc))
    apply_corrections_file(tmp_path / "corrections.json", train_file=str(path), output=tmp_path / "fixed.conll")
    got = (tmp_path / "fixed.conll").read_bytes().decode("utf-8")
    want = IOB1.replace("Paris\tNNP\tI-LOC\n", "Paris\tNNP\tI-PER\n").replace("Rome\tNNP\tI-LOC\n", "Rome\tNNP\tO\n")
    assert got == want  # Hilton's line (with its CRLF), the POS column, -DOCSTART-: every other byte as it was
    fixed = load_token_classification(train_file=str(tmp_path / "fixed.conll"))
    assert [fixed.label_names[t] for t in fixed.train["tags"][0]] == ["B-PER", "I-PER", "O", "B-PER", "I-PER", "B-PER"]

    # an IOB2 file (space-separated .txt) keeps IOB2; --unsure drop leaves the sentence (and its blank line) out
    iob2 = _write(tmp_path / "two.txt", "EU  B-ORG\nrejects  O\n\nPeter  B-PER\nBlackburn  I-PER\n")
    data2 = load_token_classification(train_file=str(iob2))
    (tmp_path / "c2.json").write_text(json.dumps(_corrections(data2, {(1, 1): "O", (0, 0): None})))
    apply_corrections_file(tmp_path / "c2.json", train_file=str(iob2), output=tmp_path / "two_fixed.txt")
    assert (tmp_path / "two_fixed.txt").read_text() == "EU  B-ORG\nrejects  O\n\nPeter  B-PER\nBlackburn  O\n"
    apply_corrections_file(tmp_path / "c2.json", train_file=str(iob2), output=tmp_path / "two_drop.txt",
                           unsure="drop")
    assert (tmp_path / "two_drop.txt").read_text() == "Peter  B-PER\nBlackburn  O\n"

    # sentences read from jsonl, written as CoNLL: word<TAB>tag, a blank line after each sentence
    jsonl = tmp_path / "s.jsonl"
    jsonl.write_text(json.dumps({"tokens": ["in", "Rome"], "ner_tags": ["O", "B-PER"]}) + "\n" + json.dumps({"tokens": ["Paris"], "ner_tags": ["B-LOC"]}) + "\n")
    data3 = load_token_classification(train_file=str(jsonl))
    (tmp_path / "c3.json").write_text(json.dumps(_corrections(data3, {(0, 1): "B-LOC"})))
    apply_corrections_file(tmp_path / "c3.json", train_file=str(jsonl), output=tmp_path / "s.conll")
    assert (tmp_path / "s.conll").read_text() == "in\tO\nRome\tB-LOC\n\nParis\tB-LOC\n\n"


def test_save_to_disk_folders_are_read_by_record_ner_and_record(tmp_path):
    import datasets

    from training_dynamics.kinds.token.arguments import TokenDataArguments
    from training_dynamics.core.data import load_text_classification
    from training_dynamics.kinds.token.data import load_token_classification, load_token_source

    sents = {"tokens": [["Anna", "met", "Bob"], ["in", "Rome"]], "ner_tags": [["B-PER", "O", "B-PER"], ["O", "B-LOC"]]}
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_dict(sents),
                               "validation": datasets.Dataset.from_dict({k: v[:1] for k, v in sents.items()})})
    dd.save_to_disk(str(tmp_path / "ner_saved"))
    data = load_token_classification(dataset_name=str(tmp_path / "ner_saved"))
    assert len(data.train) == 2 and len(data.validation) == 1 and data.label_names == ["B-LOC", "B-PER", "O"]
    assert data.source["dataset_name"] == str((tmp_path / "ner_saved").resolve())
    again = load_token_source({**data.source, "kind": "token_classification"})  # how find-issues/review reload it
    assert again.train["tags"] == data.train["tags"]
    assert TokenDataArguments(dataset_name=str(tmp_path / "ner_saved") + "/").task_name == "ner_saved"
    # a saved Dataset (not a dict) as --train_file, for a classification run too
    datasets.Dataset.from_dict({"sentence": ["good", "bad", "fine"], "label": [1, 0, 1]}).save_to_disk(
        str(tmp_path / "cls_saved"))
    cls = load_text_classification(train_file=str(tmp_path / "cls_saved"))
    assert cls.train["sentence"] == ["good", "bad", "fine"] and cls.label_names == ["0", "1"]
    datasets.DatasetDict({"test": dd["train"]}).save_to_disk(str(tmp_path / "no_train"))
    with pytest.raises(DataError, match="no 'train' split"):
        load_token_classification(dataset_name=str(tmp_path / "no_train"))


# -- end to end (slow) --------------------------------------------------------------------------------
def _page_payload(path) -> dict:
    from training_dynamics.review.scale import expand_payload

    html = open(path, encoding="utf-8").read()
    return expand_payload(json.loads(re.search(r'<script type="application/json" id="td-data">(.*?)</script>', html,
                                               re.S).group(1)))


@pytest.mark.slow
def test_record_ner_on_a_conll_file_then_find_issues_review_and_apply_write_a_corrected_conll(tmp_path):
    from conftest import run_cli

    from training_dynamics.demo.ner_data import build_tiny_token_bert, make_sentences

    sentences = make_sentences(120, seed=5, retype_rate=0.1)
    lines = []
    for i, s in enumerate(sentences):
        if i % 50 == 0:
            lines += ["-DOCSTART-\t-X-\tO", ""]
        lines += [f"{w}\t{'NNP' if t != 'O' else 'XX'}\t{t}" for w, t in zip(s["tokens"], to_iob1(s["ner_tags"]))]
        lines.append("")
    conll = tmp_path / "train.conll"
    conll.write_text("\n".join(lines) + "\n")
    assert any(line.endswith("\tI-PER") for line in lines)
    model = build_tiny_token_bert(tmp_path / "model", [s["tokens"] for s in sentences], hidden_size=32)
    run_cli("run_ner_and_record_td.py", "--model_name_or_path", model, "--train_file", conll, "--validation_file", conll,
            "--output_dir", tmp_path / "out", "--dy_log_dir", tmp_path / "dy_log", "--dy_model_name", "tiny",
            "--dy_task_name", "conll", "--num_train_epochs", 3, "--learning_rate", "3e-3",
            "--per_device_train_batch_size", 16, "--report_to", "none", "--save_strategy", "no", "--disable_tqdm", "true",
            "--seed", 1)
    run = tmp_path / "dy_log" / "conll" / "tiny"
    meta = json.loads((run / "training_dynamics" / "dynamics_meta.json").read_text())
    assert meta["data"]["train_file"] == str(conll.resolve()) and meta["num_words"] == sum(map(len, (
        s["tokens"] for s in sentences)))
    run_cli("find_label_issues.py", "--source", "dynamics", "--run_dir", run, "--output_dir", tmp_path / "issues")
    issues = [json.loads(line) for line in open(tmp_path / "issues" / "label_issues.jsonl")]
    assert issues[0]["word"] == sentences[issues[0]["guid"]]["tokens"][issues[0]["word_index"]]
    run_cli("review_label_issues.py", "--issues", tmp_path / "issues" / "label_issues.jsonl")
    page = _page_payload(tmp_path / "issues" / "review.html")
    # the reviewer relabels the 5 top-ranked words to the suggested tag, as the page exports it
    it, chosen = page["items"], []
    for i in range(5):
        gold = page["label_names"][it["gold"][i]]
        new = issues[i]["likely_true_name"] if issues[i]["likely_true_name"] != gold else (
            "O" if gold != "O" else "B-LOC")
        chosen.append({"guid": it["guid"][i], "word_index": it["word_index"][i], "example_fingerprint": it["fp"][i],
                       "action": "relabel", "label": new, "original_label": gold})
    doc = {"dataset": page["dataset"], "dataset_fingerprint": page["dataset_fingerprint"], "kind": page["kind"],
           "label_names": page["label_names"], "corrections": chosen}
    (tmp_path / "corrections.json").write_text(json.dumps(doc))
    run_cli("apply_corrections.py", "--train_file", conll, "--corrections", tmp_path / "corrections.json",
            "--output", tmp_path / "corrected.conll")
    before, after = read_conll(conll), read_conll(tmp_path / "corrected.conll")
    want = [list(t) for t in before.tags]
    for c in chosen:
        want[int(c["guid"])][c["word_index"]] = c["label"]
    assert after.tags == want and after.words == before.words and after.scheme == "iob1"
    old, new = conll.read_text().split("\n"), (tmp_path / "corrected.conll").read_text().split("\n")
    assert len(old) == len(new)
    for a, b in zip(old, new):  # only a tag column changes; words, POS, -DOCSTART- and blank lines are as they were
        assert a == b or (a.rsplit("\t", 1)[0] == b.rsplit("\t", 1)[0] and a.rsplit("\t", 1)[1] != b.rsplit("\t", 1)[1])
    assert sum(a != b for a, b in zip(old, new)) >= len({(c["guid"], c["word_index"]) for c in chosen})


@pytest.mark.slow
def test_a_token_classifier_saved_with_another_tag_set_is_refused_in_one_line(tmp_path):
    """WNUT's 13 tags on a model fine-tuned with 7: one line before the weights load (not a traceback)."""
    from transformers import BertConfig

    from training_dynamics.core.arguments import ModelArguments
    from training_dynamics.workflows.train import check_head_size

    BertConfig(num_labels=7, architectures=["BertForTokenClassification"]).save_pretrained(tmp_path / "ner7")
    token = dict(head="ForTokenClassification", what=("tag", "tags"))
    with pytest.raises(DataError, match="classifier with 7 tags but the data has 13.*--ignore_mismatched_sizes"):
        check_head_size(ModelArguments(model_name_or_path=str(tmp_path / "ner7")), 13, **token)
    check_head_size(ModelArguments(model_name_or_path=str(tmp_path / "ner7"), ignore_mismatched_sizes=True), 13, **token)
