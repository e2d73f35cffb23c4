"""Long texts: --max_seq_length cuts are counted, kept in the run's meta, and can keep start and end."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from training_dynamics.core import data as td_data

WORDS = [f"w{i}" for i in range(40)]
#: word counts of the training texts: 3 fit in 10 tokens ([CLS] + 8 words + [SEP]), 3 are longer
LENGTHS = [3, 8, 8, 9, 20, 40]


def _texts() -> list[str]:
    return [" ".join(WORDS[:n]) for n in LENGTHS]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    """The demo's word-level tokenizer (one token per word, [CLS] ... [SEP] around a text)."""
    from transformers import AutoTokenizer

    from training_dynamics.demo.data import build_tokenizer

    out = tmp_path_factory.mktemp("tok")
    build_tokenizer([" ".join(WORDS)]).save_pretrained(out)
    return AutoTokenizer.from_pretrained(out)


def _tokens(tokenizer, ids) -> list[str]:
    return tokenizer.convert_ids_to_tokens(ids)


def test_report_counts_the_cut_texts_and_tokens(tokenizer):
    import datasets

    ds = datasets.Dataset.from_dict({"sentence": _texts(), "label": [0, 1] * 3, "guid": list(range(6))})
    tok = td_data.tokenize(ds, tokenizer, ["sentence"], max_seq_length=10)
    assert tok["num_tokens"] == [n + 2 for n in LENGTHS]
    assert [len(ids) for ids in tok["input_ids"]] == [5, 10, 10, 10, 10, 10]
    report = td_data.truncation_report(tok["num_tokens"], 10, "head")
    # 11, 22 and 42 tokens: 1, 12 and 32 cut
    assert report == {"strategy": "head", "max_seq_length": 10, "num_examples": 6, "num_truncated": 3,
                      "max_tokens": 42, "mean_tokens": 16.7, "mean_tokens_cut": 15.0}
    line = td_data.describe_truncation(report)
    assert line.startswith("3 of 6 training texts (50.0%) are longer than --max_seq_length 10 tokens (longest 42, "
                           "15.0 tokens cut on average)")
    assert td_data.truncation_report([4, 10], 10)["num_truncated"] == 0


def test_head_keeps_the_start_and_head_tail_the_start_and_the_end(tokenizer):
    text = [_texts()[-1]]  # w0 .. w39
    head, n = td_data.encode_texts(tokenizer, [text], 10, truncation="head")
    assert n == [42]
    assert _tokens(tokenizer, head["input_ids"][0]) == ["[CLS]", *WORDS[:8], "[SEP]"]
    both, _ = td_data.encode_texts(tokenizer, [text], 10, truncation="head_tail")
    assert _tokens(tokenizer, both["input_ids"][0]) == ["[CLS]", "w0", "w1", *WORDS[-6:], "[SEP]"]
    assert len(both["input_ids"][0]) == 10 and both["attention_mask"][0] == [1] * 10
    short, _ = td_data.encode_texts(tokenizer, [["w0 w1 w2"]], 10, truncation="head_tail")
    assert _tokens(tokenizer, short["input_ids"][0]) == ["[CLS]", "w0", "w1", "w2", "[SEP]"]
    # a pair: the longer text is cut first, each cut text keeps its start and its end
    pair, _ = td_data.encode_texts(tokenizer, [text, ["w0 w1"]], 12, truncation="head_tail")
    assert _tokens(tokenizer, pair["input_ids"][0]) == ["[CLS]", "w0", "w1", *WORDS[-5:], "[SEP]", "w0", "w1", "[SEP]"]
    assert pair["token_type_ids"][0] == [0] * 9 + [1] * 3


def test_seen_spans_mark_what_the_model_read(tokenizer):
    texts = [_texts()[-1], "w0 w1"]
    head = td_data.seen_spans(tokenizer, [texts], 10, truncation="head")
    assert head[1] is None and [texts[0][a:b] for a, b in head[0]] == [" ".join(WORDS[:8])]
    both = td_data.seen_spans(tokenizer, [texts], 10, truncation="head_tail")
    assert [texts[0][a:b] for a, b in both[0]] == ["w0 w1", " ".join(WORDS[-6:])]


@pytest.mark.slow
def test_record_keeps_the_report_in_the_meta(tmp_path, caplog):
    """build_trainer (no training): the truncation report is logged and goes into dynamics_meta.json."""
    from transformers import TrainingArguments

    from training_dynamics.core.arguments import DynamicsArguments, ModelArguments, RecordDataArguments
    from training_dynamics.demo.data import build_tiny_bert
    from training_dynamics.workflows.train import build_trainer

    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps({"sentence": t, "label": ["neg", "pos"][i % 2]}) + "\n"
                             for i, t in enumerate(_texts())))
    model = build_tiny_bert(tmp_path / "model", _texts(), hidden_size=16, num_layers=1, num_heads=1)
    args = TrainingArguments(output_dir=str(tmp_path / "out"), report_to="none", use_cpu=True)
    with caplog.at_level(logging.WARNING, logger="training_dynamics.workflows.train"):
        trainer = build_trainer(ModelArguments(model_name_or_path=str(model)),
                                RecordDataArguments(train_file=str(train), max_seq_length=10, truncation="head_tail"),
                                DynamicsArguments(dy_log_dir=str(tmp_path / "dy")), args)
    report = trainer.dynamics_meta["truncation"]
    assert report["num_truncated"] == 3 and report["max_tokens"] == 42 and report["strategy"] == "head_tail"
    assert "3 of 6 training texts (50.0%) are longer than --max_seq_length 10" in caplog.text
    assert "num_tokens" not in trainer.train_dataset.column_names
    first = np.array(trainer.train_dataset["input_ids"][-1])
    assert len(first) == 10 and _tokens(trainer.processing_class, first[-2:]) == ["w39", "[SEP]"]


def test_find_issues_and_review_mark_what_the_model_saw(tokenizer, tmp_path):
    """A run whose meta reports cut texts: the ranking's ``seen`` spans reach the review page's payload."""
    from training_dynamics.core import dynamics_file
    from training_dynamics.review import page as review
    from training_dynamics.decisions import ranking as le
    from training_dynamics.analysis.run import Run

    texts = _texts()
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps({"sentence": t, "label": ["neg", "pos"][i % 2]}) + "\n"
                             for i, t in enumerate(texts)))
    tokenizer.save_pretrained(tmp_path / "model")
    dy = dynamics_file.dynamics_dir(tmp_path / "run")
    gold = np.arange(6) % 2
    logits = np.random.default_rng(0).normal(size=(6, 2)).astype(np.float32)
    for e in range(2):
        dynamics_file.write_epoch(dy, e, np.arange(6), logits, gold)
    report = td_data.truncation_report([n + 2 for n in LENGTHS], 10, "head_tail")
    meta = {"label_names": ["neg", "pos"], "model_name_or_path": str(tmp_path / "model"), "truncation": report,
            "data": {"train_file": str(train), "text_columns": ["sentence"], "label_column": "label"}}
    (dy / dynamics_file.META_NAME).write_text(json.dumps(meta))
    df = le.issues_from_dynamics(Run(tmp_path / "run"), progress=False).set_index("guid")
    assert [df.loc[g, "seen"] is None for g in range(6)] == [True, True, True, False, False, False]
    assert [texts[5][a:b] for a, b in df.loc[5, "seen"]] == ["w0 w1", " ".join(WORDS[-6:])]
    payload = review.review_payload(df.reset_index(), label_names=["neg", "pos"])
    pos = payload["items"]["guid"].index(review.corrections.guid_keys(np.array([5]))[0])
    assert payload["items"]["seen"][pos] == df.loc[5, "seen"]


@pytest.mark.slow
def test_find_issues_source_model_reads_the_spans_a_head_tail_run_trained_on(tmp_path):
    """``find-issues --source model`` on a ``--truncation head_tail`` run cuts as the run did: its logits are
    the model's on the head+tail encodings (not on the head), and ``seen`` marks start and end."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from training_dynamics.analysis.run import Run
    from training_dynamics.core import dynamics_file
    from training_dynamics.demo.data import build_tiny_bert
    from training_dynamics.workflows.find_issues import find_label_issues

    texts = _texts()
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps({"sentence": t, "label": ["neg", "pos"][i % 2]}) + "\n"
                             for i, t in enumerate(texts)))
    model_dir = build_tiny_bert(tmp_path / "model", [" ".join(WORDS)], hidden_size=16, num_layers=1, num_heads=1)
    dy = dynamics_file.dynamics_dir(tmp_path / "run")
    for e in range(2):
        dynamics_file.write_epoch(dy, e, np.arange(6), np.zeros((6, 2), np.float32), np.arange(6) % 2)
    meta = {"label_names": ["neg", "pos"], "model_name_or_path": str(model_dir),
            "truncation": td_data.truncation_report([n + 2 for n in LENGTHS], 10, "head_tail"),
            "data": {"train_file": str(train), "text_columns": ["sentence"], "label_column": "label"}}
    (dy / dynamics_file.META_NAME).write_text(json.dumps(meta))
    found = find_label_issues(runs=[Run(tmp_path / "run")], source="model", model_name_or_path=str(model_dir),
                              rule="none", trust_label_order=True, progress=False)
    df = found.table.set_index("guid")
    assert [texts[5][a:b] for a, b in df.loc[5, "seen"]] == ["w0 w1", " ".join(WORDS[-6:])]
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    feats, _ = td_data.encode_texts(tok, [texts], 10, truncation="head_tail")
    with torch.no_grad():
        want = torch.softmax(model(**tok.pad({k: feats[k] for k in ("input_ids", "attention_mask", "token_type_ids")
                                              if k in feats}, return_tensors="pt")).logits, -1).numpy()
    got = np.stack(df.sort_index()["probabilities"].to_numpy())
    np.testing.assert_allclose(got, want, atol=1e-5)
    head, _ = td_data.encode_texts(tok, [texts], 10, truncation="head")
    assert head["input_ids"][5] != feats["input_ids"][5]  # the two cuts differ: the test can tell them apart
