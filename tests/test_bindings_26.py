"""Issue 26: every recording path binds its data (DynamicsSFTTrainer too); the NER binding covers word boundaries;
a damaged binding file is one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from training_dynamics.core import binding
from training_dynamics.core.binding import Binding, BindingError
from training_dynamics.core.errors import DataChangedError
from training_dynamics.kinds.token.data import load_token_classification

from conftest import one_line_error, run_cli


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_ner_binding_covers_word_boundaries(tmp_path):
    a = load_token_classification(train_file=str(_jsonl(tmp_path / "a.jsonl", [
        {"tokens": ["anna smith", "works"], "ner_tags": ["B-PER", "O"]}])))
    b = load_token_classification(train_file=str(_jsonl(tmp_path / "b.jsonl", [
        {"tokens": ["anna", "smith works"], "ner_tags": ["B-PER", "O"]}])))
    assert " ".join(a.train["tokens"][0]) == " ".join(b.train["tokens"][0])  # shown alike
    rec = Binding.of(a)
    assert rec.scheme == binding.SCHEME == 2
    assert Binding.of(b).hashes[0] != rec.hashes[0]
    with pytest.raises(DataChangedError, match="1 of 1 examples"):
        binding.check(rec, b, run="r")
    assert binding.check(rec, a, run="r") is None
    # written and read back with its scheme; a file of the older scheme (words joined by spaces) still checks
    rec.write(tmp_path / "dy")
    assert Binding.read(tmp_path / "dy").scheme == 2
    old = Binding.of(a, scheme=1)
    np.savez(tmp_path / "dy" / binding.BINDING_NAME, guid=old.guids, hash=old.hashes)
    read = Binding.read(tmp_path / "dy")
    assert read.scheme == 1 and binding.check(read, a, run="r") is None


def test_damaged_binding_is_one_line(tmp_path, synthetic_dynamics, demo_data):
    run, _ = synthetic_dynamics()
    (run / "training_dynamics" / binding.BINDING_NAME).write_bytes(b"PK\x03\x04 not a zip at all")
    with pytest.raises(BindingError, match="damaged .*BadZipFile.*record the run again"):
        Binding.read(run / "training_dynamics")
    proc = run_cli("find_label_issues.py", "--run_dir", run, "--train_file", demo_data["train"], "--source",
                   "dynamics", "--output_dir", tmp_path / "out", check=False)
    one_line_error(proc, "find_label_issues.py", "data_binding.npz: the run's data binding is damaged")


@pytest.mark.slow
def test_sft_trainer_run_is_bound_to_its_conversations(tmp_path):
    trl = pytest.importorskip("trl")
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed

    from training_dynamics.demo.data import TINY_CHAT_TEMPLATE_TAGGED, build_tiny_gpt2, chat_texts, write_chat_demo
    from training_dynamics.analysis.run import Run
    from training_dynamics.kinds.generative.trl import DynamicsSFTTrainer

    paths = write_chat_demo(tmp_path / "data", n_train=24, n_validation=4, seed=2)
    other = write_chat_demo(tmp_path / "other", n_train=24, n_validation=4, seed=5)
    model_dir = build_tiny_gpt2(tmp_path / "gpt2", chat_texts(paths["train"]) + chat_texts(other["train"]),
                                hidden_size=32, max_length=96)
    set_seed(0)
    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.chat_template = TINY_CHAT_TEMPLATE_TAGGED
    ds = load_dataset("json", data_files=str(paths["train"]), split="train")
    config = trl.SFTConfig(output_dir=str(tmp_path / "out"), num_train_epochs=2, per_device_train_batch_size=8,
                           learning_rate=1e-2, save_strategy="no", report_to="none", seed=0, max_length=96,
                           assistant_only_loss=True, dataloader_pin_memory=False, disable_tqdm=True, bf16=False)
    DynamicsSFTTrainer(model=AutoModelForCausalLM.from_pretrained(model_dir), train_dataset=ds, processing_class=tok,
                       args=config, dynamics_dir=tmp_path / "run" / "training_dynamics").train()
    run = Run(tmp_path / "run")
    assert run.binding is not None and len(run.binding) == 24
    assert run.meta["data"] == {"kind": "generative", "text_columns": ["messages"], "format": "conversation"}

    rows = [json.loads(line) for line in open(paths["train"])]
    same = run.data(train_file=str(paths["train"]))  # the same file: bound, no warning
    assert len(same.train) == 24 and not len(same.excluded_guids)

    def find(train_file, out):
        return run_cli("find_label_issues.py", "--run_dir", tmp_path / "run", "--train_file", train_file,
                       "--output_dir", tmp_path / out, "--source", "dynamics", check=False)

    # the same conversations reversed (row index = guid): every guid names another conversation -> refused
    proc = find(_jsonl(tmp_path / "reversed.jsonl", rows[::-1]), "o1")
    one_line_error(proc, "find_label_issues.py", "changed since")
    # reversed, but with their guids: aligned by guid
    proc = find(_jsonl(tmp_path / "reversed_ids.jsonl", [{**r, "guid": i} for i, r in enumerate(rows)][::-1]), "o2")
    assert proc.returncode == 0, proc.stderr
    assert "keeps no data binding" not in proc.stderr
    issues = [json.loads(line) for line in open(next((tmp_path / "o2").glob("*.jsonl")))]
    from training_dynamics.kinds.generative.chat import conversation_text

    by_guid = {i: conversation_text(r["messages"]) for i, r in enumerate(rows)}
    texts = [(r["guid"], r.get("text")) for r in issues if "text" in r]
    assert texts and all(by_guid[int(g)] == t for g, t in texts)
    # other conversations: refused
    proc = find(other["train"], "o3")
    one_line_error(proc, "find_label_issues.py", "changed since")


@pytest.mark.slow
def test_sft_truncation_is_counted_and_trls_training_unchanged(tmp_path):
    trl = pytest.importorskip("trl")
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed

    from training_dynamics.demo.data import TINY_CHAT_TEMPLATE_TAGGED, build_tiny_gpt2, chat_texts, write_chat_demo
    from training_dynamics.analysis.run import Run
    from training_dynamics.kinds.generative.trl import DynamicsSFTTrainer

    paths = write_chat_demo(tmp_path / "data", n_train=16, n_validation=2, seed=3)
    model_dir = build_tiny_gpt2(tmp_path / "gpt2", chat_texts(paths["train"]), hidden_size=32, max_length=96)

    def train(cls, **extra):
        set_seed(0)
        tok = AutoTokenizer.from_pretrained(model_dir)
        tok.chat_template = TINY_CHAT_TEMPLATE_TAGGED
        ds = load_dataset("json", data_files=str(paths["train"]), split="train")
        config = trl.SFTConfig(output_dir=str(tmp_path / cls.__name__), num_train_epochs=1, max_length=20,
                               per_device_train_batch_size=4, learning_rate=1e-2, logging_steps=1, save_strategy="no",
                               report_to="none", seed=0, assistant_only_loss=True, dataloader_pin_memory=False,
                               disable_tqdm=True, bf16=False)
        trainer = cls(model=AutoModelForCausalLM.from_pretrained(model_dir), train_dataset=ds, processing_class=tok,
                      args=config, **extra)
        n = len(trainer.train_dataset)
        trainer.train()
        return [h["loss"] for h in trainer.state.log_history if "loss" in h], n

    plain, n_plain = train(trl.SFTTrainer)
    recorded, n_rec = train(DynamicsSFTTrainer, dynamics_dir=tmp_path / "run" / "training_dynamics")
    assert recorded == plain and n_rec == n_plain  # TRL's truncation, done the same way
    with pytest.raises(FileExistsError, match="pass overwrite_dynamics=True to replace them") as err:  # advice in
        train(DynamicsSFTTrainer, dynamics_dir=tmp_path / "run" / "training_dynamics")  # Python, not CLI flags
    assert "--" not in str(err.value)
    cut = Run(tmp_path / "run").meta["truncation"]
    assert cut["strategy"] == "end" and cut["max_seq_length"] == 20 and cut["num_examples"] == 16
    assert 0 < cut["num_truncated"] <= 16 and cut["max_tokens"] > 20
