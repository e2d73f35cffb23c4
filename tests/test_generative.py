"""Generative runs: a causal LM on prompt/response data, recorded and read by every analysis tool."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import Crash, run_cli, train_with_crash
from training_dynamics.kinds.generative import data as clm_data
from training_dynamics.core import dynamics_file
from training_dynamics.analysis import metrics
from training_dynamics.core.data import DataError
from training_dynamics.demo.data import build_causal_tokenizer, build_tiny_gpt2, write_generative_demo
from training_dynamics.core.dynamics_file import DynamicsError
from training_dynamics.kinds.generative.dynamics import write_generative_epoch
from training_dynamics.kinds.generative.record import token_stats
from training_dynamics.analysis.run import Run

SCRIPT = "run_clm_and_record_td.py"


# -- the values reduced on the device -----------------------------------------------------------
def _naive_stats(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The three values of one sequence, token by token (position t-1 predicts token t)."""
    lp, acc = [], []
    for t in range(1, len(labels)):
        y = labels[t]
        if y == -100:
            continue
        z = logits[t - 1].astype(np.float64)
        q = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
        lp.append(np.log(q[y]))
        acc.append(float(np.argmax(z) == y))
    return np.array([np.mean(lp), np.mean(acc), len(lp)])


def test_token_stats_equal_a_token_by_token_loop():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, size=(3, 7, 11)).astype(np.float32)
    labels = rng.integers(0, 11, size=(3, 7))
    labels[0, :3] = -100           # a prompt
    labels[1, 5:] = -100           # padding
    labels[2, :] = -100
    labels[2, 4] = 3               # one token to learn
    logits[2, 3, 3] = logits[2, 3].max() + 1.0  # ... which the argmax gets right
    got = token_stats(torch.tensor(logits), torch.tensor(labels)).numpy()
    want = np.stack([_naive_stats(logits[i], labels[i]) for i in range(3)])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert got[2, 1] == 1.0 and got[2, 2] == 1


@pytest.mark.parametrize("num_items", [None, 9])
def test_shared_loss_equals_transformers_causal_lm_loss_and_its_gradient(num_items):
    from transformers.loss.loss_utils import ForCausalLMLoss

    from training_dynamics.kinds.generative.record import causal_lm_loss_and_stats

    rng = np.random.default_rng(1)
    logits = torch.tensor(rng.normal(0, 2, size=(3, 6, 13)), dtype=torch.float32)
    labels = torch.tensor(rng.integers(0, 13, size=(3, 6)))
    labels[0, :2] = -100
    labels[2, 4:] = -100
    n = None if num_items is None else torch.tensor(num_items)
    mine, theirs = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    loss, stats = causal_lm_loss_and_stats(mine, labels, n)
    want = ForCausalLMLoss(theirs, labels, vocab_size=13, num_items_in_batch=n)
    loss.backward()
    want.backward()
    assert loss.item() == pytest.approx(want.item(), rel=1e-6)
    np.testing.assert_allclose(mine.grad.numpy(), theirs.grad.numpy(), atol=1e-7)
    np.testing.assert_allclose(stats.numpy(), token_stats(logits, labels).numpy(), rtol=1e-6, atol=1e-6)


# -- data ----------------------------------------------------------------------------------------
def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_prompt_tokens_have_no_loss_and_a_long_prompt_loses_its_start(tmp_path):
    tok = build_causal_tokenizer(["w0 w1 w2 w3 w4 w5 w6 w7 w8 w9 answer is here"])
    path = _jsonl(tmp_path / "d.jsonl", [{"instruction": "w0 w1 w2 w3 w4 w5 w6 w7 w8 w9", "output": "answer is here"},
                                         {"instruction": "w1", "output": "here"}])
    data = clm_data.load_generative(train_file=str(path))  # instruction/output are guessed
    assert data.text_columns == ("instruction", "output") and data.train["guid"] == [0, 1]
    short = clm_data.tokenize_generative(data.train, tok, data.text_columns, max_seq_length=64)
    ids, labels = short[1]["input_ids"], short[1]["labels"]
    assert labels == [-100] + ids[1:] and ids[-1] == tok.eos_token_id  # prompt masked, response + EOS learned
    cut = clm_data.tokenize_generative(data.train, tok, data.text_columns, max_seq_length=6)[0]
    assert len(cut["input_ids"]) == 6
    assert tok.decode(cut["input_ids"]).split() == ["w8", "w9", "answer", "is", "here", "<eos>"]
    assert cut["labels"][:2] == [-100, -100] and cut["labels"][2:] == cut["input_ids"][2:]


@pytest.mark.parametrize("rows,kwargs,message", [
    ([{"question": "q", "text2": "a"}], {}, "cannot tell the prompt and response columns"),
    ([{"prompt": "q", "response": "a"}], {"prompt_column": "nope", "response_column": "response"}, "unknown column(s) nope"),
    ([{"prompt": "q", "response": 3}], {}, "row 0 has no text in column 'response'"),
    ([{"prompt": "q", "response": "a", "guid": 1.5}], {}, "holds floats"),
    ([{"prompt": "q", "response": "a"}], {"text_column": "prompt", "prompt_column": "prompt"}, "not both"),
])
def test_bad_generative_data_is_one_line_error(tmp_path, rows, kwargs, message):
    path = _jsonl(tmp_path / "d.jsonl", rows)
    with pytest.raises(DataError, match=None) as err:
        clm_data.load_generative(train_file=str(path), **kwargs)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_an_empty_response_is_refused(tmp_path):
    tok = build_causal_tokenizer(["q a"])
    tok.eos_token = None  # nothing to learn at all without an EOS
    data = clm_data.load_generative(train_file=str(_jsonl(tmp_path / "d.jsonl", [{"prompt": "q", "response": ""}])))
    with pytest.raises(DataError, match="guid 0 has no response token to learn"):
        clm_data.tokenize_generative(data.train, tok, data.text_columns, where="d.jsonl")


# -- the epoch files and the metrics ---------------------------------------------------------------
def _write_run(run_dir: Path, values: np.ndarray, guids, fmt: str = "jsonl") -> Run:
    d = run_dir / "training_dynamics"
    d.mkdir(parents=True)
    for e in range(values.shape[1]):
        write_generative_epoch(d, e, guids, values[:, e], fmt=fmt)
    (d / "dynamics_meta.json").write_text(json.dumps({"kind": "generative", "label_names": ["response", "other"],
                                                      "num_labels": 2, "num_examples": len(guids)}))
    return Run(run_dir)


@pytest.mark.parametrize("fmt", ["jsonl", "npz"])
def test_generative_metrics_keep_the_classification_reading(tmp_path, fmt):
    # 3 examples x 3 epochs: logprob, token_accuracy, num_tokens
    values = np.array([[[-0.1, 0.95, 5], [-0.05, 1.0, 5], [-0.02, 1.0, 5]],
                       [[-2.0, 0.5, 7], [-1.5, 0.92, 7], [-1.0, 0.6, 7]],
                       [[-3.0, 0.2, 2], [-3.0, 0.2, 2], [-3.0, 0.2, 2]]])
    run = _write_run(tmp_path / "run", values, ["a", "b", "c"], fmt)
    dyn = run.dynamics(progress=False)
    assert dyn.kind == "generative" and dyn.num_classes == 2 and (dyn.gold == 0).all()
    cols, _ = run.write_metrics(progress=False)
    p = np.exp(values[..., 0])
    np.testing.assert_allclose(cols["confidence"], p.mean(axis=1))
    np.testing.assert_allclose(cols["variability"], p.std(axis=1))
    np.testing.assert_allclose(cols["loss"], -values[..., 0].mean(axis=1))
    np.testing.assert_allclose(cols["aum"], np.log(p / (1 - p)).mean(axis=1), rtol=1e-6)  # of [p, 1 - p]
    np.testing.assert_allclose(cols["token_accuracy"], values[..., 1].mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(cols["el2n"], (np.sqrt(2) * (1 - p)).mean(axis=1))  # of [p, 1 - p] against [1, 0]
    assert cols["correctness"].tolist() == [3, 1, 0]  # epochs with token accuracy >= 0.9
    assert cols["forgetfulness"].tolist() == [0, 1, metrics.NEVER_LEARNED_FORGETFULNESS]
    assert cols["last_pred"].tolist() == [0, 1, 1] and cols["num_tokens"].tolist() == [5, 7, 2]
    # code reading probabilities sees [p, 1 - p]
    probs = np.exp(metrics.log_softmax(dyn.logits))
    np.testing.assert_allclose(probs[..., 0], p, rtol=1e-6)
    df = run.metrics()
    assert list(df["guid"]) == ["a", "b", "c"] and df["correctness"].tolist() == [3, 1, 0]


@pytest.mark.parametrize("bad,message", [
    ({"logprob": 0.5}, "logprob is positive"),
    ({"token_accuracy": 1.5}, "token_accuracy is outside 0..1"),
    ({"num_tokens": 0}, "num_tokens is not a whole number >= 1"),
])
def test_bad_generative_values_name_the_line(tmp_path, bad, message):
    row = {"guid": 0, "logprob_epoch_0": -1.0, "token_accuracy_epoch_0": 0.5, "num_tokens": 3}
    d = tmp_path / "run" / "training_dynamics"
    d.mkdir(parents=True)
    key = next(k for k in row if k.startswith(next(iter(bad))))
    lines = [row, {**row, "guid": 1, key: next(iter(bad.values()))}]
    (d / "dynamics_epoch_0.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    with pytest.raises(DynamicsError) as err:
        Run(tmp_path / "run").dynamics(progress=False)
    assert "line 2 (guid 1)" in str(err.value) and message in str(err.value)


def test_epochs_of_a_classifier_and_a_generative_run_are_not_mixed(tmp_path):
    d = tmp_path / "run" / "training_dynamics"
    d.mkdir(parents=True)
    write_generative_epoch(d, 0, [0, 1], np.array([[-1, 0.5, 3], [-1, 0.5, 3]]))
    dynamics_file.write_epoch(d, 1, [0, 1], np.zeros((2, 3)), np.array([0, 1]))
    with pytest.raises(DynamicsError, match="holds logits, but dynamics_epoch_0.jsonl holds a generative run's values"):
        Run(tmp_path / "run").dynamics(progress=False)


# -- end to end: record a tiny GPT-2, then every tool --------------------------------------------
@pytest.fixture(scope="module")
def gen_setup(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("generative")
    paths = write_generative_demo(root / "data", n_train=500, n_validation=40, seed=0)
    texts = [json.loads(line)[k] for f in ("train", "validation") for line in open(paths[f]) for k in ("prompt", "response")]
    paths["model"] = build_tiny_gpt2(root / "gpt2", texts, seed=0, hidden_size=128)
    return paths


def clm_args(setup, out: Path, *extra, epochs: int = 8) -> list:
    return ["--model_name_or_path", setup["model"], "--train_file", setup["train"], "--output_dir", out / "model_out",
            "--dy_log_dir", out / "dy_log", "--dy_model_name", "gpt2", "--num_train_epochs", epochs,
            "--learning_rate", "3e-3", "--warmup_steps", 30, "--per_device_train_batch_size", 8, "--save_strategy", "no",
            "--report_to", "none", "--seed", 0, "--disable_tqdm", "true", "--max_seq_length", 64, *extra]


def _auroc(score: np.ndarray, positive: np.ndarray) -> float:
    ranks = np.argsort(np.argsort(score)) + 1
    n1 = positive.sum()
    return float((ranks[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * (len(score) - n1)))


@pytest.mark.slow
def test_record_clm_then_every_tool_finds_the_planted_bad_responses(gen_setup, tmp_path):
    run_cli(SCRIPT, *clm_args(gen_setup, tmp_path, "--validation_file", gen_setup["validation"]))
    run = Run(tmp_path / "dy_log" / "train" / "gpt2")
    assert run.meta["kind"] == "generative" and run.meta["epochs_completed"] == 8
    for e in range(8):  # every example exactly once per epoch (500 = 62 batches of 8 + 4)
        lines = [json.loads(x) for x in (run.dynamics_dir / f"dynamics_epoch_{e}.jsonl").read_text().splitlines()]
        assert sorted(r["guid"] for r in lines) == list(range(500))
        assert all(r[f"logprob_epoch_{e}"] <= 0 and r["num_tokens"] >= 9 for r in lines)
    truth = [json.loads(line)["kind"] == "bad" for line in open(gen_setup["truth"])]
    bad = np.array(truth)

    run_cli("td_metrics.py", "--run_dir", run.path)
    df = run.metrics()
    assert _auroc(1 - df["confidence"].to_numpy(), bad[df["guid"].to_numpy()]) > 0.9  # bad responses: low confidence
    run_cli("plot_cartography.py", "--run_dir", run.path, "--output_dir", tmp_path / "plots")
    assert (tmp_path / "plots" / "train_gpt2_data_map.png").stat().st_size > 10_000

    out = run_cli("find_label_issues.py", "--source", "dynamics", "--run_dir", run.path,
                  "--output_dir", tmp_path / "issues")
    assert "score_mixture:" in out.stdout and "responses flagged as suspicious" in out.stdout
    issues = [json.loads(x) for x in (tmp_path / "issues" / "label_issues.jsonl").read_text().splitlines()]
    flagged = np.array([r["guid"] for r in issues if r["is_label_issue"]])
    assert len(flagged) > 0 and bad[flagged].mean() > 0.7  # mostly planted bad responses
    assert "\n⟶ " in issues[0]["text"]  # prompt, then response
    run_cli("review_label_issues.py", "--issues", tmp_path / "issues" / "label_issues.jsonl", "--run_dir", run.path)
    page = (tmp_path / "issues" / "review.html").read_text()
    top = json.loads(open(gen_setup["train"]).readlines()[issues[0]["guid"]])  # the page shows the flagged first
    assert top["prompt"] in page and top["response"] in page

    run_cli("compare_models.py", "--weak_dir", run.path, "--strong_dir", run.path, "--output_dir", tmp_path / "cmp")
    assert (tmp_path / "cmp" / "strong_vs_weak.png").exists()
    run_cli("data_selection.py", "--run_dir", run.path, "--write_data")
    hard = [json.loads(x) for x in (run.path / "selected_data" / "hard.jsonl").read_text().splitlines()]
    assert set(hard[0]) == {"prompt", "response", "guid"}
    rerun = run_cli(SCRIPT, *clm_args(gen_setup, tmp_path, "--with_data_selection", "--data_selection_region",
                                      "hard", "--output_dir", tmp_path / "sel_out", epochs=1))
    assert rerun.returncode == 0
    sel = json.loads((tmp_path / "sel_out" / "data_selection.json").read_text())
    assert sel["region"] == "hard" and sel["num_selected"] == len(hard) and sel["num_train_examples"] == 500


@pytest.mark.slow
def test_post_epoch_values_with_grad_accumulation_equal_a_pass_of_the_final_model(gen_setup, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run_cli(SCRIPT, *clm_args(gen_setup, tmp_path, "--td_mode", "post_epoch", "--max_train_samples", 43,
                              "--gradient_accumulation_steps", 3, epochs=2))
    last = [json.loads(x) for x in (tmp_path / "dy_log/train/gpt2/training_dynamics/dynamics_epoch_1.jsonl").read_text().splitlines()]
    model_dir = tmp_path / "model_out"
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    data = clm_data.load_generative(train_file=str(gen_setup["train"]), max_train_samples=43)
    enc = clm_data.tokenize_generative(data.train, tok, data.text_columns, 64)
    batch = clm_data.CausalLMCollator(tok.pad_token_id)([{k: enc[i][k] for k in ("input_ids", "attention_mask", "labels")}
                                                         for i in range(len(enc))])
    with torch.no_grad():
        want = token_stats(model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits,
                           batch["labels"]).numpy()
    assert sorted(r["guid"] for r in last) == list(range(43))  # once each, with gradient accumulation
    got = np.array([[r[f"{k}_epoch_1"] for k in ("logprob", "token_accuracy")] + [r["num_tokens"]]
                    for r in sorted(last, key=lambda r: r["guid"])])
    np.testing.assert_allclose(got, want, atol=2e-4)


def _train_clm_in_process(setup, out: Path, *, crash_at: int | None = None, resume: bool = False):
    """3 epochs of 60 examples, batch 8 (8 steps an epoch), a checkpoint every 5 steps; optionally crash at a step."""
    from training_dynamics.kinds.generative.arguments import GenerativeDataArguments
    from training_dynamics.cli.record import parse_args
    from training_dynamics.workflows.train import build_clm_trainer

    args = clm_args(setup, out, "--max_train_samples", 60, "--save_strategy", "steps", "--save_steps", 5, epochs=3)
    margs, dargs, yargs, targs, _ = parse_args([str(a) for a in args], data_class=GenerativeDataArguments)
    trainer = build_clm_trainer(margs, dargs, yargs, targs)
    train_with_crash(trainer, crash_at=crash_at, resume=resume)


def _values(path: Path, e: int) -> np.ndarray:
    rows = sorted((json.loads(x) for x in path.read_text().splitlines()), key=lambda r: r["guid"])
    assert [r["guid"] for r in rows] == list(range(60))
    return np.array([[r[f"{k}_epoch_{e}"] for k in ("logprob", "token_accuracy")] for r in rows])


@pytest.mark.slow
def test_resumed_clm_recording_equals_an_uninterrupted_one(gen_setup, tmp_path):
    ref, run = tmp_path / "ref", tmp_path / "run"
    _train_clm_in_process(gen_setup, ref)
    with pytest.raises(Crash):
        _train_clm_in_process(gen_setup, run, crash_at=12)  # inside epoch 1, after the checkpoint at step 10
    d = run / "dy_log" / "train" / "gpt2" / "training_dynamics"
    assert [p.name for p in d.glob("dynamics_epoch_*")] == ["dynamics_epoch_0.jsonl"]
    _train_clm_in_process(gen_setup, run, resume=True)
    assert sorted(p.name for p in d.glob("dynamics_epoch_*")) == [f"dynamics_epoch_{e}.jsonl" for e in range(3)]
    for e in range(3):
        want = _values(ref / "dy_log" / "train" / "gpt2" / "training_dynamics" / f"dynamics_epoch_{e}.jsonl", e)
        np.testing.assert_allclose(_values(d / f"dynamics_epoch_{e}.jsonl", e), want, atol=1e-4)


@pytest.mark.slow
def test_recording_leaves_training_as_a_plain_trainer_has_it(gen_setup, tmp_path):
    """in_training mode computes the loss itself (shared with the recorded values): the same losses and weights,
    with gradient accumulation."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments, set_seed

    from training_dynamics.kinds.generative.record import CausalLMDynamicsTrainer

    tok = AutoTokenizer.from_pretrained(gen_setup["model"])
    data = clm_data.load_generative(train_file=str(gen_setup["train"]), max_train_samples=45)
    enc = clm_data.tokenize_generative(data.train, tok, data.text_columns, 64)

    def train(cls, **extra):
        set_seed(0)
        model = AutoModelForCausalLM.from_pretrained(gen_setup["model"])
        targs = TrainingArguments(output_dir=str(tmp_path / cls.__name__), num_train_epochs=2, learning_rate=3e-3,
                                  per_device_train_batch_size=8, gradient_accumulation_steps=2, logging_steps=1,
                                  save_strategy="no", report_to="none", disable_tqdm=True, seed=0,
                                  dataloader_pin_memory=False, optim="sgd")  # (Adam turns rounding into sign flips)
        trainer = cls(model=model, args=targs, train_dataset=enc, data_collator=clm_data.CausalLMCollator(tok.pad_token_id),
                      **extra)
        trainer.train()
        return [h["loss"] for h in trainer.state.log_history if "loss" in h], model

    plain_losses, plain = train(Trainer)
    rec_losses, recorded = train(CausalLMDynamicsTrainer, dynamics_dir=tmp_path / "dy")
    np.testing.assert_allclose(rec_losses, plain_losses, rtol=1e-5)
    for (name, a), b in zip(plain.named_parameters(), recorded.parameters()):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5, msg=name)
    assert len((tmp_path / "dy" / "dynamics_epoch_1.jsonl").read_text().splitlines()) == 45


@pytest.mark.parametrize("unsure,kept", [("keep", 4), ("drop", 3)])
def test_corrections_of_a_generative_run_leave_the_bad_responses_out(tmp_path, unsure, kept):
    from training_dynamics.review import corrections as co

    rows = [{"prompt": f"what is a {a}", "response": f"it is a {k}"}
            for a, k in [("owl", "bird"), ("fox", "fish"), ("cod", "fish"), ("bee", "mammal"), ("cow", "mammal"),
                         ("ant", "insect")]]
    train = _jsonl(tmp_path / "sft.jsonl", rows)
    data = clm_data.load_generative(train_file=str(train))
    fp, examples = co.data_fingerprints(data)
    assert examples["1"] == co.example_fingerprint("what is a fox\n⟶ it is a fish", "response")  # as the page shows it
    choices = [("1", "relabel", "other"), ("3", "relabel", "other"), ("5", "unsure", None), ("0", "keep", None)]
    obj = {"dataset": str(train), "dataset_fingerprint": fp, "kind": "generative", "label_names": ["response", "other"],
           "corrections": [{"guid": g, "example_fingerprint": examples[g], "action": a, "label": lb,
                            "original_label": "response"} for g, a, lb in choices]}
    (tmp_path / "corrections.json").write_text(json.dumps(obj))
    out = tmp_path / "clean.jsonl"
    run_cli("apply_corrections.py", "--corrections", tmp_path / "corrections.json", "--train_file", train,
            "--output", out, "--unsure", unsure)
    clean = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["guid"] for r in clean] == [0, 2, 4, 5][:kept]
    assert set(clean[0]) == {"guid", "prompt", "response", "review_action", "review_note"}
    assert clean[0]["review_action"] == "keep" and clean[1]["review_action"] == "unreviewed"
    again = clm_data.load_generative(train_file=str(out))  # trains again as it is (the guids kept)
    assert again.train["guid"] == [0, 2, 4, 5][:kept]


def test_cached_metrics_of_a_generative_run_keep_its_columns(tmp_path):
    values = np.array([[[-0.1, 0.95, 5], [-0.05, 1.0, 5]], [[-2.0, 0.5, 7], [-1.5, 0.92, 7]]])
    run = _write_run(tmp_path / "run", values, [0, 1])
    run.write_metrics(progress=False)
    assert run.metrics_are_fresh()
    cached = run.metrics()  # read back from td_metrics.jsonl
    assert cached["num_tokens"].tolist() == [5, 7] and cached["token_accuracy"].round(3).tolist() == [0.975, 0.71]


@pytest.mark.slow
def test_plain_language_modelling_on_a_csv_with_ids_in_npz(gen_setup, tmp_path):
    import csv

    rows = [json.loads(line) for line in open(gen_setup["train"])][:40]
    with open(tmp_path / "lm.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "idx"])
        w.writerows([f"{r['prompt']} . {r['response']}", 1000 + i] for i, r in enumerate(rows))
    run_cli(SCRIPT, "--model_name_or_path", gen_setup["model"], "--train_file", tmp_path / "lm.csv", "--text_column",
            "text", "--output_dir", tmp_path / "out", "--dy_log_dir", tmp_path / "dy_log", "--num_train_epochs", 2,
            "--per_device_train_batch_size", 16, "--save_strategy", "no", "--report_to", "none", "--td_format", "npz",
            "--disable_tqdm", "true")
    run = Run(tmp_path / "dy_log" / "lm" / "gpt2")
    dyn = run.dynamics(progress=False)
    assert sorted(dyn.guids.tolist()) == list(range(1000, 1040)) and dyn.values.shape == (40, 2, 3)
    words = [len(f"{r['prompt']} . {r['response']}".split()) for r in rows]
    assert dyn.values[:, 0, 2].tolist() == [float(n) for n in words]  # every token but the first, plus EOS
    assert run.meta["data"]["text_columns"] == ["text"]


def test_find_issues_reads_a_moved_prompt_response_file(tmp_path):
    rows = [{"prompt": f"what is a {a}", "response": f"it is a {k}"} for a, k in [("owl", "bird"), ("fox", "fish"),
                                                                                  ("cod", "fish"), ("cow", "mammal")]]
    train = _jsonl(tmp_path / "sft.jsonl", rows)
    values = np.array([[[-0.1, 1.0, 4], [-0.1, 1.0, 4]], [[-2.0, 0.2, 4], [-1.9, 0.2, 4]],
                       [[-0.2, 1.0, 4], [-0.1, 1.0, 4]], [[-0.3, 0.9, 4], [-0.2, 1.0, 4]]])
    run = _write_run(tmp_path / "run", values, [0, 1, 2, 3])
    meta = json.loads((run.dynamics_dir / "dynamics_meta.json").read_text())
    meta["data"] = {"kind": "generative", "train_file": str(tmp_path / "gone.jsonl"), "text_columns": ["prompt", "response"]}
    (run.dynamics_dir / "dynamics_meta.json").write_text(json.dumps(meta))
    gone = run_cli("find_label_issues.py", "--source", "dynamics", "--run_dir", run.path, "--output_dir",
                   tmp_path / "issues", check=False)
    assert gone.returncode == 2 and "gone.jsonl: the training file named in" in gone.stderr and "--train_file" in gone.stderr
    run_cli("find_label_issues.py", "--source", "dynamics", "--run_dir", run.path, "--train_file", train,
            "--output_dir", tmp_path / "issues")
    first = json.loads((tmp_path / "issues" / "label_issues.jsonl").read_text().splitlines()[0])
    assert first["guid"] == 1 and first["text"] == "what is a fox\n⟶ it is a fish"
