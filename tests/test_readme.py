"""The README's code runs as written: the TRL snippet records a run on a CPU (only the model is swapped for a tiny
GPT-2 built here, the Hub being out of reach), and find-issues reads that run."""

import json
import re
import shutil
from pathlib import Path

import pytest

from conftest import run_cli

README = Path(__file__).resolve().parents[1] / "README.md"


def _block(marker: str) -> str:
    """The fenced code block right after ``<!-- marker -->`` in the README."""
    text = README.read_text(encoding="utf-8")
    m = re.search(rf"<!-- {marker} -->\s*```python\n(.*?)```", text, re.S)
    assert m, f"README has no python block after <!-- {marker} -->"
    return m.group(1)


def test_the_readme_marks_its_trl_snippet():
    code = _block("readme-trl")
    assert "DynamicsSFTTrainer" in code and "bf16=torch.cuda.is_available()" in code
    assert 'model = "' in code  # the one line the test below swaps


@pytest.mark.slow
def test_the_readme_trl_snippet_runs_on_a_cpu_as_written(tmp_path, monkeypatch):
    pytest.importorskip("trl")
    from transformers import AutoTokenizer

    from training_dynamics.demo.data import TINY_CHAT_TEMPLATE, build_tiny_gpt2, chat_texts, write_chat_demo

    paths = write_chat_demo(tmp_path / "data", n_train=24, n_validation=2, seed=1)
    model_dir = build_tiny_gpt2(tmp_path / "gpt2", chat_texts(paths["train"]), hidden_size=32, max_length=96)
    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.chat_template = TINY_CHAT_TEMPLATE  # a chat template as a chat model's tokenizer has one (no generation tags)
    tok.save_pretrained(model_dir)
    shutil.copy(paths["train"], tmp_path / "chats.jsonl")
    monkeypatch.chdir(tmp_path)
    code = re.sub(r'^model = ".*"$', f"model = {str(model_dir)!r}", _block("readme-trl"), flags=re.M)
    exec(compile(code, "README.md (TRL snippet)", "exec"), {"__name__": "readme"})  # noqa: S102
    meta = json.loads((tmp_path / "dy_log/chats/qwen/training_dynamics/dynamics_meta.json").read_text())
    assert meta["kind"] == "generative" and meta["epochs_completed"] == 2
    run_cli("find_label_issues.py", "--run_dir", tmp_path / "dy_log/chats/qwen", "--train_file", tmp_path / "chats.jsonl",
            "--output_dir", tmp_path / "issues")
    rows = [json.loads(line) for line in open(tmp_path / "issues" / "label_issues.jsonl")]
    assert len(rows) == 24 and all(r["text"] for r in rows)  # checked against the run's binding
