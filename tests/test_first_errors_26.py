"""Issue 26: lengths capped by the model, chat truncation counted and greyed, and a user's mistake is one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, one_line_error, run_cli


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# -- B. lengths ------------------------------------------------------------------------------------------
def test_max_seq_length_is_capped_by_the_tokenizer_and_the_position_table(caplog):
    from transformers import BertConfig, GPT2Config, RobertaConfig

    from training_dynamics.core.lengths import cap_max_seq_length, model_limit

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

    from training_dynamics.demo.data import build_tokenizer

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
    from training_dynamics.analysis.run import Run

    run = Run(next((tmp_path / "dy").iterdir()) / "m")
    assert sorted(run.dynamics(progress=False).guids.tolist()) == list(range(12))
    assert run.meta["truncation"]["max_seq_length"] == 64 and run.meta["truncation"]["num_truncated"] == 1


@pytest.mark.slow
def test_record_ner_caps_a_sentence_longer_than_the_position_table(tmp_path):
    from training_dynamics.demo.ner_data import build_tiny_token_bert, make_sentences

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
    run = next((tmp_path / "dy").iterdir()) / "m"
    meta = json.loads((run / "training_dynamics" / "dynamics_meta.json").read_text())
    assert meta["max_seq_length"] == 64 and meta["num_sentences"] == 10


# -- chat truncation, LoRA as TRL users type it -----------------------------------------------------------
@pytest.mark.slow  # (a recorded run / imports torch)
def test_lora_target_modules_as_trl_users_type_them():
    from training_dynamics.core.data import DataError
    from training_dynamics.workflows.train import lora_targets

    assert lora_targets(["c_attn"]) == ["c_attn"]  # a list: PEFT matches the end of a module's path
    assert lora_targets(["q_proj", "v_proj"]) == lora_targets(["q_proj v_proj"]) == lora_targets(["q_proj,v_proj"]) \
        == ["q_proj", "v_proj"]
    assert lora_targets(["all-linear"]) == "all-linear" and lora_targets(None) is None
    with pytest.raises(DataError, match="all-linear already means"):
        lora_targets(["all-linear", "c_attn"])


@pytest.mark.slow
def test_record_clm_lora_c_attn_records_two_epochs_and_chat_truncation_is_kept_and_greyed(tmp_path):
    from conftest import _run_in_process

    from training_dynamics.demo.data import TINY_CHAT_TEMPLATE, build_tiny_gpt2, chat_texts, write_chat_demo
    from training_dynamics.analysis.run import Run

    paths = write_chat_demo(tmp_path / "data", n_train=16, n_validation=2, seed=1)
    rows = [json.loads(line) for line in open(paths["train"])]
    long_turn = " ".join(["mice"] * 300)
    rows.append({"messages": [{"role": "user", "content": "tell me about the fox"},
                              {"role": "assistant", "content": "it is a mammal"},
                              {"role": "user", "content": "more"}, {"role": "assistant", "content": long_turn}]})
    train = _jsonl(tmp_path / "train.jsonl", rows)
    model = build_tiny_gpt2(tmp_path / "gpt2", chat_texts(paths["train"]) + ["more mice"], hidden_size=32,
                            max_length=96)
    args = ["--model_name_or_path", model, "--train_file", train, "--chat_template", TINY_CHAT_TEMPLATE,
            "--use_peft", "--lora_r", 8, "--lora_alpha", 16, "--lora_target_modules", "c_attn",
            "--output_dir", tmp_path / "out", "--dy_log_dir", tmp_path / "dy", "--dy_model_name", "lora",
            "--num_train_epochs", 2, "--per_device_train_batch_size", 8, "--report_to", "none",
            "--disable_tqdm", "true"]
    rec = _run_in_process("record-clm", "run_clm_and_record_td.py", [str(a) for a in args])
    assert rec.returncode == 0, rec.stderr[-3000:]
    assert (tmp_path / "out" / "adapter_model.safetensors").is_file()
    assert json.loads((tmp_path / "out" / "adapter_config.json").read_text())["target_modules"] == ["c_attn"]
    run = Run(next((tmp_path / "dy").iterdir()) / "lora")
    assert run.meta["epochs_completed"] == 2 and run.meta["peft"]["target_modules"] == ["c_attn"]
    # default --max_seq_length 256 capped to the 96 positions; the long conversation is cut, counted and warned about
    cut = run.meta["truncation"]
    assert run.meta["max_seq_length"] == 96 and cut["max_seq_length"] == 96 and cut["strategy"] == "end"
    assert cut["num_truncated"] == 1 and cut["max_tokens"] > 300
    assert "1 of 17 training conversations (5.9%) are longer than --max_seq_length 96 tokens" in rec.stderr
    run_cli("find_label_issues.py", "--source", "dynamics", "--run_dir", run.path, "--output_dir", tmp_path / "iss")
    issues = [json.loads(line) for line in open(tmp_path / "iss" / "label_issues.jsonl")]
    seen = {r["guid"]: r.get("seen") for r in issues}
    assert all(seen[g] is None for g in range(16))
    (start, end), = seen[16]
    text = next(r["text"] for r in issues if r["guid"] == 16)
    assert start == 0 and text[:end].startswith("user: tell me about the fox") and 30 < end < len(text) - 300
    assert text[:end].endswith("mice")
    run_cli("review_label_issues.py", "--issues", tmp_path / "iss" / "label_issues.jsonl", "--run_dir", run.path)
    page = (tmp_path / "iss" / "review.html").read_text()
    assert '"seen"' in page and "IT.seen && IT.seen[pos]" in page


# -- C. tracebacks become one line -------------------------------------------------------------------------
def test_chat_template_syntax_error_is_one_line(tmp_path):
    from training_dynamics.kinds.generative.chat import read_chat_template
    from training_dynamics.core.data import DataError
    from training_dynamics.demo.data import TINY_CHAT_TEMPLATE_TAGGED

    assert read_chat_template(TINY_CHAT_TEMPLATE_TAGGED) == TINY_CHAT_TEMPLATE_TAGGED  # {% generation %} parses
    with pytest.raises(DataError, match=r"Jinja syntax error at line 2 of the template: .*fix the template") as err:
        read_chat_template("{% for m in messages %}\n{{ m.content }\n{% endfor %}")
    assert "\n" not in str(err.value)
    from conftest import _run_in_process

    train = _jsonl(Path(tmp_path) / "c.jsonl", [{"messages": [{"role": "user", "content": "a"},
                                                              {"role": "assistant", "content": "b"}]}])
    proc = _run_in_process("record-clm", "run_clm_and_record_td.py", [
        "--model_name_or_path", "m", "--train_file", str(train), "--chat_template", "{% if x %}{{ x }"])
    one_line_error(proc, "run_clm_and_record_td.py", "--chat_template: Jinja syntax error at line 1")


def test_worst_turn_on_a_run_without_turns_is_one_line(synthetic_dynamics, tmp_path):
    run, _ = synthetic_dynamics()
    proc = run_cli("find_label_issues.py", "--source", "dynamics", "--run_dir", run, "--score", "worst_turn",
                   "--output_dir", tmp_path / "out", check=False)
    one_line_error(proc, "find_label_issues.py", "--score worst_turn", "use --score confidence")


@pytest.fixture(scope="module")
def ner_run(tmp_path_factory):
    """A tiny recorded NER run (2 epochs) and its data."""
    from training_dynamics.demo.ner_data import build_tiny_token_bert, write_ner_demo

    tmp = tmp_path_factory.mktemp("ner26")
    paths = write_ner_demo(tmp / "data", n_train=24, n_validation=4, seed=0)
    sentences = [json.loads(line)["tokens"] for line in open(paths["train"])]
    model = build_tiny_token_bert(tmp / "tb", sentences, hidden_size=16)
    run_cli("run_ner_and_record_td.py", "--model_name_or_path", model, "--train_file", paths["train"],
            "--output_dir", tmp / "out", "--dy_log_dir", tmp / "dy", "--dy_model_name", "ner",
            "--num_train_epochs", 2, "--per_device_train_batch_size", 8, "--report_to", "none",
            "--disable_tqdm", "true")
    return {"run": next((tmp / "dy").iterdir()) / "ner", "model": model, "train": paths["train"], "tmp": tmp}


@pytest.mark.slow
def test_record_ner_with_a_head_of_another_size_is_one_line(ner_run, tmp_path):
    rows = [{"tokens": ["anna", "works"], "ner_tags": ["B-PER", "O"]}, {"tokens": ["bob"], "ner_tags": ["I-PER"]}]
    proc = run_cli("run_ner_and_record_td.py", "--model_name_or_path", ner_run["model"], "--train_file",
                   _jsonl(tmp_path / "t.jsonl", rows), "--output_dir", tmp_path / "o", "--dy_log_dir", tmp_path / "dy",
                   "--num_train_epochs", 1, "--report_to", "none", check=False)
    one_line_error(proc, "run_ner_and_record_td.py", "is a classifier with 7 tags but the data has 3",
                   "--ignore_mismatched_sizes")


@pytest.mark.slow
def test_integer_ner_tags_are_recorded_with_the_models_tag_names(ner_run, tmp_path):
    from training_dynamics.demo.ner_data import LABEL_NAMES

    index = {n: i for i, n in enumerate(LABEL_NAMES)}
    rows = [json.loads(line) for line in open(ner_run["train"])][:8]
    ids = _jsonl(tmp_path / "ids.jsonl", [{"tokens": r["tokens"], "ner_tags": [index[t] for t in r["ner_tags"]]}
                                          for r in rows])
    run_cli("run_ner_and_record_td.py", "--model_name_or_path", ner_run["model"], "--train_file", ids,
            "--output_dir", tmp_path / "out", "--dy_log_dir", tmp_path / "dy", "--dy_model_name", "ids",
            "--num_train_epochs", 1, "--report_to", "none", "--disable_tqdm", "true")
    run = next((tmp_path / "dy").iterdir()) / "ids"
    meta = json.loads((run / "training_dynamics" / "dynamics_meta.json").read_text())
    assert meta["label_names"] == list(LABEL_NAMES)
    run_cli("find_label_issues.py", "--source", "dynamics", "--run_dir", run, "--output_dir", tmp_path / "iss")
    settings = json.loads((tmp_path / "iss" / "label_issues_settings.json").read_text())
    assert settings["label_names"] == list(LABEL_NAMES)


@pytest.mark.slow
def test_two_token_runs_given_to_find_issues_is_one_line(ner_run, tmp_path):
    import shutil

    other = tmp_path / "ner2"
    shutil.copytree(ner_run["run"], other)
    proc = run_cli("find_label_issues.py", "--source", "dynamics", "--run_dir", ner_run["run"], other,
                   "--output_dir", tmp_path / "out", check=False)
    one_line_error(proc, "find_label_issues.py", "token classification run: give one --run_dir")


# -- D. messages ---------------------------------------------------------------------------------------------
def test_unknown_flag_is_refused_before_any_heavy_import_with_the_closest_flag():
    code = ("import sys, time; t = time.time(); from training_dynamics.cli import main; "
            "rc = main(['record', '--model_name_or_path', 'm', '--train_file', 't.csv', '--num_epochs', '3']); "
            "print(rc, 'torch' in sys.modules, 'transformers' in sys.modules, round(time.time() - t, 2))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    rc, torch_loaded, tf_loaded, seconds = proc.stdout.split()
    assert (rc, torch_loaded, tf_loaded) == ("2", "False", "False") and float(seconds) < 1.0, proc.stdout
    assert proc.stderr.strip() == ("training-dynamics record: error: unrecognized argument --num_epochs (did you mean "
                                   "--num_train_epochs?); --help lists the flags")


@pytest.mark.parametrize("command,argv,flag,meant", [
    ("record-ner", ["--model_name_or_path", "m", "--train_fle", "a.conll", "--output_dir", "o"], "--train_fle",
     "--train_file"),
    ("record", ["--model_name_or_path", "m", "--train_fle", "a.csv"], "--train_fle", "--train_file"),
    ("apply", ["--train_file", "a.conll", "--corection", "c.json", "--output", "f.conll"], "--corection",
     "--corrections"),
])
def test_a_mistyped_flag_is_named_before_the_flag_it_left_missing(command, argv, flag, meant, capsys):
    """A user who mistypes a required flag hears of the typo, not of a missing --train_file / --corrections."""
    from training_dynamics.cli import run_command

    assert run_command(command, argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"training-dynamics {command}: error: unrecognized argument {flag} (did you mean {meant}?); "
                   "--help lists the flags"]


def test_unknown_flag_checks_accept_every_training_argument():
    from training_dynamics.cli.flags import UnknownFlagError, check_unknown, training_argument_names

    fields = training_argument_names()
    assert {"num_train_epochs", "learning_rate", "fsdp", "remove_unused_columns"} <= fields
    check_unknown(["--learning-rate", "1e-3", "--no_remove_unused_columns", "--fsdp=full_shard"], {"--seed"},
                  extra_fields=fields)
    with pytest.raises(UnknownFlagError, match=r"--lerning_rate \(did you mean --learning_rate\?\)"):
        check_unknown(["--lerning_rate", "1"], {"--seed"}, extra_fields=fields)
    proc = run_cli("td_metrics.py", "--run_dir", "x", "--bunr_out", "2", check=False)
    one_line_error(proc, "td_metrics.py", "unrecognized argument --bunr_out (did you mean --burn_out?)")


def test_class_names_name_the_classes_with_source_dynamics(synthetic_dynamics, tmp_path):
    run, _ = synthetic_dynamics(classes=2)
    run_cli("find_label_issues.py", "--source", "dynamics", "--run_dir", run, "--class_names", "negative,positive",
            "--output_dir", tmp_path / "out")
    rows = [json.loads(line) for line in open(tmp_path / "out" / "label_issues.jsonl")]
    assert {r["gold_name"] for r in rows} == {"negative", "positive"}
    assert {r["predicted_name"] for r in rows} <= {"negative", "positive"}
    settings = json.loads((tmp_path / "out" / "label_issues_settings.json").read_text())
    assert settings["label_names"] == ["negative", "positive"]
    assert all(p["given"] in ("negative", "positive") for p in settings["decision"]["by_class_pair"])
    proc = run_cli("find_label_issues.py", "--source", "dynamics", "--run_dir", run, "--class_names", "a,b,c",
                   "--output_dir", tmp_path / "out3", check=False)
    one_line_error(proc, "find_label_issues.py", "--class_names names 3 classes", "the ranking has 2")


def test_plot_error_names_the_flag_the_user_typed(synthetic_dynamics):
    run, _ = synthetic_dynamics()
    run_cli("td_metrics.py", "--run_dir", run)
    proc = run_cli("plot_cartography.py", "--run_dir", run, "--plots_dir", run, check=False)
    line = one_line_error(proc, "plot_cartography.py", "--plots_dir")
    assert "--output_dir" not in line


def test_a_task_folder_as_run_dir_lists_its_runs(synthetic_dynamics):
    run, _ = synthetic_dynamics()
    proc = run_cli("td_metrics.py", "--run_dir", run.parent, check=False)
    one_line_error(proc, "td_metrics.py", "is a folder of runs, not a run", "(run)", f"--run_dir {run}")


def test_num_proc_is_capped_at_the_cores(synthetic_dynamics, monkeypatch):
    import os

    run, _ = synthetic_dynamics(n=40)
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    proc = run_cli("td_metrics.py", "--run_dir", run, "--num_proc", "64")
    assert "--num_proc 64: this machine has 1 CPU core(s); using 1 processes" in proc.stderr
    assert (run / "td_metrics.jsonl").is_file() and len((run / "td_metrics.jsonl").read_text().splitlines()) == 40


def test_null_ner_tags_are_named_as_such(tmp_path):
    from training_dynamics.core.data import DataError
    from training_dynamics.kinds.token.data import load_token_classification

    path = _jsonl(tmp_path / "n.jsonl", [{"tokens": ["a", "b"], "ner_tags": [None, None]}])
    with pytest.raises(DataError, match=r"'ner_tags' has empty \(null\) tags in 1 of 1 rows \(first: row 0\)"):
        load_token_classification(train_file=str(path))


def test_integer_ner_tags_take_the_models_tag_names():
    from types import SimpleNamespace

    from training_dynamics.kinds.token.data import TokenClassificationData, names_from_config

    def data():
        return TokenClassificationData(None, None, [str(i) for i in range(3)], tags_as_ids=True)

    named = SimpleNamespace(id2label={0: "O", 1: "B-PER", 2: "I-PER"})
    assert names_from_config(data(), named, given=False).label_names == ["O", "B-PER", "I-PER"]
    assert names_from_config(data(), named, given=True).label_names == ["0", "1", "2"]  # --class_names wins
    generic = SimpleNamespace(id2label={0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"})
    assert names_from_config(data(), generic, given=False).label_names == ["0", "1", "2"]


def test_chat_content_as_text_parts_is_joined_and_other_parts_refused(tmp_path):
    from training_dynamics.kinds.generative.chat import conversation_text
    from training_dynamics.kinds.generative.data import load_generative
    from training_dynamics.core.data import DataError

    parts = [{"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "text", "text": "you"}]},
                           {"role": "assistant", "content": [{"type": "text", "text": "hello"}]}]}]
    data = load_generative(train_file=str(_jsonl(tmp_path / "p.jsonl", parts)))
    assert data.train[0]["messages"] == [{"role": "user", "content": "hi\nyou"}, {"role": "assistant", "content": "hello"}]
    assert conversation_text(parts[0]["messages"]) == conversation_text(data.train[0]["messages"])  # (SFT binding)
    image = [{"messages": [{"role": "user", "content": [{"type": "image", "text": None}, {"type": "text", "text": "x"}]},
                           {"role": "assistant", "content": [{"type": "text", "text": "y"}]}]}]
    with pytest.raises(DataError, match=r"row 0 of column 'messages', turn 0: a content part of type 'image' is not "
                                        "text") as err:
        load_generative(train_file=str(_jsonl(tmp_path / "i.jsonl", image)))
    assert "\n" not in str(err.value)


def test_bidi_controls_stay_inside_their_text_on_the_review_page():
    from training_dynamics import web

    css = (Path(web.__file__).parent / "review.css").read_text()
    js = (Path(web.__file__).parent / "review.js").read_text()
    assert "unicode-bidi: isolate" in css and ".text, .text span" in css
    assert 'e.dir = "auto"' in js and ".textContent = String(text)" in js  # text, never HTML


def test_sft_refusals_advise_python_arguments():
    from training_dynamics.kinds.generative.trl import python_advice

    msg = ("dy/training_dynamics already holds training dynamics (epochs 0..1); pass --overwrite_dynamics to replace "
           "them, or another --dy_model_name")
    assert python_advice(msg) == ("dy/training_dynamics already holds training dynamics (epochs 0..1); pass "
                                  "overwrite_dynamics=True to replace them, or another dynamics_dir=<another folder>")


@pytest.mark.slow  # (a recorded run / imports torch)
def test_find_issues_honours_text_columns_of_a_renamed_file(recorded_run, demo_data, tmp_path):
    rows = [json.loads(line) for line in open(demo_data["train"])]
    renamed = _jsonl(tmp_path / "renamed.jsonl", [{"review": r.pop("sentence"), **r} for r in rows])
    run_cli("find_label_issues.py", "--source", "dynamics", "--run_dir", recorded_run, "--train_file", renamed,
            "--text_columns", "review", "--output_dir", tmp_path / "out")
    issues = [json.loads(line) for line in open(tmp_path / "out" / "label_issues.jsonl")]
    by_guid = {i: r["review"] for i, r in enumerate(json.loads(line) for line in open(renamed))}
    assert len(issues) == len(rows) and all(by_guid[r["guid"]] == r["text"] for r in issues)


@pytest.mark.slow
def test_token_runs_refuse_partitions_and_parquet_and_classification_corrections(ner_run, tmp_path):
    for extra in (["--partition", "0/2"], ["--output_format", "parquet"], ["--num_proc", "2"]):
        proc = run_cli("td_metrics.py", "--run_dir", ner_run["run"], *extra, check=False)
        one_line_error(proc, "td_metrics.py", "is a token_classification run", extra[0], "not supported")
    corrections = tmp_path / "corrections.json"
    corrections.write_text(json.dumps({"dataset": "x", "dataset_fingerprint": None, "label_names": ["a", "b"],
                                       "corrections": [{"guid": 0, "action": "relabel", "label": "b",
                                                        "original_label": "a"}]}))
    proc = run_cli("apply_corrections.py", "--train_file", ner_run["train"], "--corrections", corrections,
                   "--output", tmp_path / "fixed.jsonl", check=False)
    one_line_error(proc, "apply_corrections.py", "holds corrections of a classification run",
                   "holds sentences of words and tags")


@pytest.mark.slow
def test_record_clm_prompt_response_truncation_is_kept_and_greyed(tmp_path):
    from conftest import _run_in_process

    from training_dynamics.kinds.generative.data import SEPARATOR
    from training_dynamics.demo.data import build_tiny_gpt2, make_instructions

    rows = [{"prompt": r["prompt"], "response": r["response"]} for r in make_instructions(12, seed=0, bad_rate=0.0)]
    rows[5] = {"prompt": "tell me " * 30 + "about the fox", "response": rows[5]["response"]}
    train = _jsonl(tmp_path / "pr.jsonl", rows)
    model = build_tiny_gpt2(tmp_path / "gpt2", [r["prompt"] + " " + r["response"] for r in rows], hidden_size=32,
                            max_length=32)
    args = ["--model_name_or_path", model, "--train_file", train, "--output_dir", tmp_path / "out", "--dy_log_dir",
            tmp_path / "dy", "--dy_model_name", "m", "--num_train_epochs", 1, "--per_device_train_batch_size", 4,
            "--report_to", "none", "--disable_tqdm", "true"]
    rec = _run_in_process("record-clm", "run_clm_and_record_td.py", [str(a) for a in args])
    assert rec.returncode == 0, rec.stderr[-3000:]
    assert "using --max_seq_length 32" in rec.stderr and "1 of 12 training examples" in rec.stderr
    run = next((tmp_path / "dy").iterdir()) / "m"
    run_cli("find_label_issues.py", "--source", "dynamics", "--run_dir", run, "--output_dir", tmp_path / "iss")
    issues = {r["guid"]: r for r in (json.loads(line) for line in open(tmp_path / "iss" / "label_issues.jsonl"))}
    assert all(issues[g].get("seen") is None for g in range(12) if g != 5)
    text = issues[5]["text"]
    (p0, p1), (r0, r1) = issues[5]["seen"]
    prompt = rows[5]["prompt"]
    assert 0 < p0 < p1 == len(prompt) and text[p0:p1].endswith("about the fox")
    assert text[r0:r1] == rows[5]["response"] and r0 == len(prompt) + len(SEPARATOR)
