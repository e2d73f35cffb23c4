"""Issue 26: lengths capped by the model, chat truncation counted and greyed, and a user's mistake is one line."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, one_line_error, run_cli


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# -- B. lengths ------------------------------------------------------------------------------------------
def test_max_seq_length_is_capped_by_the_tokenizer_and_the_position_table(caplog):
    from transformers import BertConfig, GPT2Config, RobertaConfig

    from training_dynamics.lengths import cap_max_seq_length, model_limit

    class Tok:
        model_max_length = int(1e30)  # transformers' "no limit"

    assert model_limit(Tok(), BertConfig(max_position_embeddings=64)) == (64, "the model's max_position_embeddings 64")
    assert model_limit(Tok(), GPT2Config(n_positions=96))[0] == 96
    assert model_limit(Tok(), RobertaConfig(max_position_embeddings=514, pad_token_id=1))[0] == 512
    Tok.model_max_length = 32
    assert model_limit(Tok(), BertConfig(max_position_embeddings=64))[0] == 32
    with caplog.at_level("WARNING"):
        assert cap_max_seq_length(128, Tok(), BertConfig(max_position_embeddings=64)) == 32
        assert cap_max_seq_length(16, Tok(), BertConfig(max_position_embeddings=64)) == 16
    assert [r.getMessage() for r in caplog.records] == [
        "--max_seq_length 128 is longer than the tokenizer's model_max_length 32 allows: using --max_seq_length 32 "
        "(longer inputs are truncated to it)"]


def _bert_64(out: Path, texts) -> Path:
    """A tiny BERT classifier whose position table has 64 rows, with a tokenizer that states no limit."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from training_dynamics.demo_data import build_tokenizer

    tok = build_tokenizer(texts, model_max_length=int(1e30))
    config = BertConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64, pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.mark.slow
def test_record_caps_a_text_longer_than_the_position_table_and_records_every_example(tmp_path):
    rows = [{"sentence": " ".join(["good"] * (100 if i == 3 else 5)), "label": i % 2} for i in range(12)]
    train = _jsonl(tmp_path / "train.jsonl", rows)
    model = _bert_64(tmp_path / "bert64", [r["sentence"] for r in rows])
    proc = run_cli("run_glue_and_record_td.py", "--model_name_or_path", model, "--train_file", train,
                   "--output_dir", tmp_path / "out", "--dy_log_dir", tmp_path / "dy", "--dy_model_name", "m",
                   "--num_train_epochs", 1, "--per_device_train_batch_size", 4, "--report_to", "none",
                   "--disable_tqdm", "true", check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "--max_seq_length 128 is longer than the model's max_position_embeddings 64 allows" in proc.stderr
    from training_dynamics.run import Run

    run = Run(next((tmp_path / "dy").iterdir()) / "m")
    assert sorted(run.dynamics(progress=False).guids.tolist()) == list(range(12))
    assert run.meta["truncation"]["max_seq_length"] == 64 and run.meta["truncation"]["num_truncated"] == 1


@pytest.mark.slow
def test_record_ner_caps_a_sentence_longer_than_the_position_table(tmp_path):
    from training_dynamics.ner_demo_data import build_tiny_token_bert, make_sentences

    rows = [{"tokens": r["tokens"], "ner_tags": r["ner_tags"]} for r in make_sentences(10, seed=0)]
    rows[2] = {"tokens": rows[2]["tokens"] * 20, "ner_tags": rows[2]["ner_tags"] * 20}
    assert len(rows[2]["tokens"]) > 64
    train = _jsonl(tmp_path / "ner.jsonl", rows)
    model = build_tiny_token_bert(tmp_path / "tb", [r["tokens"] for r in rows], hidden_size=16)
    proc = run_cli("run_ner_and_record_td.py", "--model_name_or_path", model, "--train_file", train,
                   "--max_seq_length", 512, "--output_dir", tmp_path / "out", "--dy_log_dir", tmp_path / "dy",
                   "--dy_model_name", "m", "--num_train_epochs", 1, "--per_device_train_batch_size", 4,
                   "--report_to", "none", "--disable_tqdm", "true", check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "--max_seq_length 512 is longer than" in proc.stderr and "using --max_seq_length 64" in proc.stderr
    meta = json.loads((next((tmp_path / "dy").iterdir()) / "m" / "training_dynamics" / "dynamics_meta.json").read_text())
    assert meta["max_seq_length"] == 64 and meta["num_sentences"] == 10
