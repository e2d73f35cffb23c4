"""Conversational data: chat-template rendering, assistant-only masking, per-turn values, the tools' view."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import _run_in_process, run_cli
from training_dynamics.kinds.generative import dynamics as gen_dynamics
from training_dynamics.kinds.generative import chat, data as clm_data
from training_dynamics.core import dynamics_file

from training_dynamics.core.data import DataError
from training_dynamics.demo.data import (TINY_CHAT_TEMPLATE, TINY_CHAT_TEMPLATE_TAGGED, build_causal_tokenizer,
                                         build_tiny_gpt2, chat_texts, write_chat_demo)
from training_dynamics.kinds.generative.record import count_turns, token_stats
from training_dynamics.analysis.run import Run

CONVERSATIONS = [
    [{"role": "system", "content": "be brief"}, {"role": "user", "content": "what is a fox"},
     {"role": "assistant", "content": "a mammal"}, {"role": "user", "content": "and an owl"},
     {"role": "assistant", "content": "a bird that eats mice"}],
    [{"role": "user", "content": "what is a cod"}, {"role": "assistant", "content": "a fish"}],
]


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def chat_tokenizer():
    words = [m["content"] for conv in CONVERSATIONS for m in conv] + ["<|system|> <|user|> <|assistant|> <|end|>"]
    return build_causal_tokenizer(words, model_max_length=128)


def _by_hand(tokens: list[str]) -> tuple[list[bool], list[int]]:
    """Token by token: learned = inside an assistant turn (after ``<|assistant|>``, through its ``<|end|>``);
    and the turn number of each learned token."""
    learned, turn, inside, k = [], [], False, 0
    for t in tokens:
        if t == "<|assistant|>":
            inside, k = True, k + 1
            learned.append(False), turn.append(0)
            continue
        learned.append(inside), turn.append(k if inside else 0)
        if t == "<|end|>":
            inside = False
    return learned, turn


@pytest.mark.parametrize("template", [TINY_CHAT_TEMPLATE, TINY_CHAT_TEMPLATE_TAGGED], ids=["prefixes", "generation_tags"])
def test_assistant_tokens_only_are_learned(tmp_path, chat_tokenizer, template):
    path = _jsonl(tmp_path / "chat.jsonl", [{"messages": c} for c in CONVERSATIONS])
    data = clm_data.load_generative(train_file=str(path))  # the messages column is found
    assert data.conversational and data.text_columns == ("messages",)
    chat_tokenizer.chat_template = template
    enc = clm_data.tokenize_generative(data.train, chat_tokenizer, data.text_columns, 64)
    for row in enc:
        tokens = chat_tokenizer.convert_ids_to_tokens(row["input_ids"])
        learned, _ = _by_hand(tokens)
        assert [lab != -100 for lab in row["labels"]] == learned
        assert [lab for lab in row["labels"] if lab != -100] == [i for i, m in zip(row["input_ids"], learned) if m]
    assert count_turns(enc["labels"]).tolist() == [2, 1]
    cut = clm_data.tokenize_generative(data.train, chat_tokenizer, data.text_columns, 14)  # the end is cut
    assert len(cut[0]["input_ids"]) == 14 and count_turns(cut["labels"]).tolist() == [1, 1]


def test_conversation_problems_are_one_line_errors(tmp_path, chat_tokenizer):
    bad = _jsonl(tmp_path / "bad.jsonl", [{"messages": [{"role": "user", "content": "hi"}]}])
    with pytest.raises(DataError, match="row 0 of column 'messages' has no assistant turn to learn"):
        clm_data.load_generative(train_file=str(bad))
    data = clm_data.load_generative(train_file=str(_jsonl(tmp_path / "c.jsonl", [{"messages": CONVERSATIONS[1]}])))
    chat_tokenizer.chat_template = None
    with pytest.raises(DataError, match="no chat template .* pass --chat_template"):
        clm_data.tokenize_generative(data.train, chat_tokenizer, data.text_columns, 64)
    # a template that renders only the last turn: no prefix is the start of the whole conversation
    chat_tokenizer.chat_template = "{{ messages[-1]['content'] }}"
    with pytest.raises(DataError, match=r"pass --chat_template with \{% generation %\}") as err:
        clm_data.tokenize_generative(data.train, chat_tokenizer, data.text_columns, 64)
    assert "\n" not in str(err.value)


def _naive_turns(logits: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """(k, 3) logprob, token accuracy, tokens of each run of learned tokens, token by token."""
    out = np.zeros((k, 3))
    turn, prev = -1, False
    per = [[] for _ in range(k)]
    for t in range(1, len(labels)):
        learned = labels[t] != -100
        if learned and not prev:
            turn += 1
        prev = learned
        if learned:
            z = logits[t - 1].astype(np.float64)
            lp = z[labels[t]] - z.max() - np.log(np.exp(z - z.max()).sum())
            per[min(turn, k - 1)].append((lp, float(np.argmax(z) == labels[t])))
    for i, p in enumerate(per):
        if p:
            out[i] = [np.mean([a for a, _ in p]), np.mean([b for _, b in p]), len(p)]
    return out


def test_per_turn_values_equal_a_token_by_token_loop():
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 2, size=(3, 12, 9)).astype(np.float32)
    labels = rng.integers(0, 9, size=(3, 12))
    labels[0, [0, 1, 2, 6, 7, 11]] = -100   # two turns: 3..5, 8..10
    labels[1, :4] = -100                    # one turn
    labels[2, [0, 2, 4, 6, 8, 10]] = -100   # six one-token turns: the 3rd..6th count to the 3rd
    got = token_stats(torch.tensor(logits), torch.tensor(labels), turns=3).numpy()
    np.testing.assert_allclose(got[:, :3], token_stats(torch.tensor(logits), torch.tensor(labels)).numpy(), rtol=1e-6)
    for i in range(3):
        np.testing.assert_allclose(got[i, 3:].reshape(3, 3), _naive_turns(logits[i], labels[i], 3), rtol=1e-5, atol=1e-6)
    assert count_turns(list(labels)).tolist() == [2, 1, 6]


@pytest.mark.parametrize("fmt", ["jsonl", "npz"])
def test_per_turn_values_round_trip_and_point_at_the_worst_turn(tmp_path, fmt):
    guids = np.array([5, 9])
    turns = np.array([[[-0.1, 1.0, 4], [-2.5, 0.2, 6]], [[-0.3, 0.9, 7], [0, 0, 0]]], dtype=np.float32)
    values = np.array([[-1.54, 0.52, 10], [-0.3, 0.9, 7]])
    for e in range(2):
        gen_dynamics.write_generative_epoch(tmp_path, e, guids, values, turns=turns, fmt=fmt)
    dyn = dynamics_file.read_dynamics(tmp_path, progress=False)  # the example's own values read as before
    np.testing.assert_allclose(dyn.values[:, 0], values, rtol=1e-6)
    got_guids, got = gen_dynamics.read_turns(tmp_path, np.array([9, 5]))
    assert got_guids.tolist() == [9, 5] and got.shape == (2, 2, 2, 3)
    np.testing.assert_allclose(got[1, 1], turns[0], rtol=1e-6)
    worst, conf = gen_dynamics.worst_turn(got)
    assert worst.tolist() == [1, 2] and conf[1] == pytest.approx(np.exp(-2.5), rel=1e-6)


def test_conversation_text_numbers_the_assistant_turns():
    assert chat.conversation_text(CONVERSATIONS[0]).splitlines() == [
        "system: be brief", "user: what is a fox", "assistant #1: a mammal", "user: and an owl",
        "assistant #2: a bird that eats mice"]


@pytest.mark.slow
def test_record_clm_on_conversations_records_each_turn_and_the_page_points_at_one(tmp_path):
    paths = write_chat_demo(tmp_path / "data", n_train=44, n_validation=4, seed=0, bad_rate=0.1)
    model = build_tiny_gpt2(tmp_path / "gpt2", chat_texts(paths["train"]) + chat_texts(paths["validation"]),
                            hidden_size=32, max_length=96)
    (tmp_path / "tiny.jinja").write_text(TINY_CHAT_TEMPLATE)
    args = ["--model_name_or_path", model, "--train_file", paths["train"], "--chat_template", tmp_path / "tiny.jinja",
            "--output_dir", tmp_path / "out", "--dy_log_dir", tmp_path / "dy_log", "--dy_model_name", "gpt2",
            "--num_train_epochs", 2, "--learning_rate", "3e-3", "--per_device_train_batch_size", 8, "--max_seq_length",
            96, "--save_strategy", "no", "--report_to", "none", "--seed", 0, "--disable_tqdm", "true", "--td_format", "npz"]
    rec = _run_in_process("record-clm", "run_clm_and_record_td.py", [str(a) for a in args])  # (test_cli runs the shim)
    assert rec.returncode == 0, rec.stderr[-3000:]
    run = Run(tmp_path / "dy_log" / "train" / "gpt2")
    assert run.meta["max_turns"] == 2 and run.meta["data"]["format"] == "conversation"
    assert (tmp_path / "out" / "chat_template.jinja").read_text() == TINY_CHAT_TEMPLATE  # saved with the model
    guids, turns = gen_dynamics.read_turns(run.dynamics_dir)
    dyn = run.dynamics(progress=False)
    assert sorted(guids.tolist()) == list(range(44)) and turns.shape == (44, 2, 2, 3)  # each once per epoch
    assert (turns[..., 2] > 0).all()  # two assistant turns each
    same = dyn.values[np.argsort(dyn.guids)]
    turns = turns[np.argsort(guids)]
    np.testing.assert_array_equal(turns[..., 2].sum(axis=-1), same[..., 2])  # the turns' tokens are the example's
    mean = (turns[..., 0] * turns[..., 2]).sum(axis=-1) / turns[..., 2].sum(axis=-1)  # token-weighted mean
    np.testing.assert_allclose(mean, same[..., 0], rtol=1e-4)
    run_cli("find_label_issues.py", "--source", "dynamics", "--run_dir", run.path, "--output_dir", tmp_path / "issues")
    issues = [json.loads(x) for x in (tmp_path / "issues" / "label_issues.jsonl").read_text().splitlines()]
    first = issues[0]
    want, _ = gen_dynamics.worst_turn(turns[[first["guid"]]])
    assert first["worst_turn"] == want[0] and "assistant #2: " in first["text"]
    run_cli("review_label_issues.py", "--issues", tmp_path / "issues" / "label_issues.jsonl", "--run_dir", run.path)
    page = (tmp_path / "issues" / "review.html").read_text()
    assert "worst_turn" in page and "no dataset fingerprint" not in page
    run_cli("find_label_issues.py", "--source", "dynamics", "--run_dir", run.path, "--score", "worst_turn",
            "--output_dir", tmp_path / "by_turn")
    by_turn = [json.loads(x) for x in (tmp_path / "by_turn" / "label_issues.jsonl").read_text().splitlines()]
    _, conf = gen_dynamics.worst_turn(turns)
    assert by_turn[0]["guid"] == int(np.argmin(conf)) and by_turn[0]["score"] == pytest.approx(1 - conf.min())


@pytest.mark.slow
def test_lora_run_records_every_example_once_per_epoch_and_saves_the_adapter_only(tmp_path):
    paths = write_chat_demo(tmp_path / "data", n_train=36, n_validation=4, seed=1)
    model = build_tiny_gpt2(tmp_path / "gpt2", chat_texts(paths["train"]), hidden_size=32, max_length=96)
    args = ["--model_name_or_path", model, "--train_file", paths["train"], "--chat_template", TINY_CHAT_TEMPLATE,
            "--use_peft", "--lora_r", 4, "--lora_alpha", 8, "--lora_target_modules", "c_attn", "c_proj",
            "--output_dir", tmp_path / "out", "--dy_log_dir", tmp_path / "dy_log", "--dy_model_name", "lora",
            "--num_train_epochs", 3, "--learning_rate", "2e-2", "--per_device_train_batch_size", 8,
            "--max_seq_length", 96, "--save_strategy", "no", "--report_to", "none", "--seed", 0, "--disable_tqdm", "true"]
    rec = _run_in_process("record-clm", "run_clm_and_record_td.py", [str(a) for a in args])
    assert rec.returncode == 0, rec.stderr[-3000:]
    saved = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors"} <= saved and "model.safetensors" not in saved
    adapter = json.loads((tmp_path / "out" / "adapter_config.json").read_text())
    assert adapter["r"] == 4 and sorted(adapter["target_modules"]) == ["c_attn", "c_proj"]
    run = Run(tmp_path / "dy_log" / "train" / "lora")
    assert run.meta["peft"]["r"] == 4 and run.meta["epochs_completed"] == 3
    for e in range(3):  # each example once per epoch, with its turns
        lines = [json.loads(x) for x in (run.dynamics_dir / f"dynamics_epoch_{e}.jsonl").read_text().splitlines()]
        assert sorted(r["guid"] for r in lines) == list(range(36)) and all(len(r[f"turns_epoch_{e}"]) == 2 for r in lines)
    dyn = run.dynamics(progress=False)
    assert dyn.values[:, 2, 0].mean() > dyn.values[:, 0, 0].mean() + 0.05  # the adapters learn (a random base: slowly)
