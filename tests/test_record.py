"""Recording training dynamics: real CLI runs on the tiny demo model and data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import N_TRAIN, ROOT, Crash, run_cli, train_args, train_with_crash

SCRIPT = "run_glue_and_record_td.py"


def read_epoch(path: Path) -> dict[int, dict]:
    """guid -> line of a jsonl epoch file; asserts every guid appears once."""
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    by_guid = {r["guid"]: r for r in rows}
    assert len(by_guid) == len(rows), f"{path}: repeated guids"
    return by_guid


def gold_of(demo_data) -> dict[int, int]:
    names = sorted({json.loads(line)["label"] for line in open(demo_data["train"])})
    return {i: names.index(json.loads(line)["label"]) for i, line in enumerate(open(demo_data["train"]))}


def eval_logits(model_dir: Path, texts: list[str]) -> np.ndarray:
    """A fresh eval-mode, no-grad forward pass of a saved model."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    with torch.no_grad():
        return model(**tok(texts, padding=True, return_tensors="pt")).logits.numpy()


def demo_texts(demo_data) -> list[str]:
    return [json.loads(line)["sentence"] for line in open(demo_data["train"])]


def dy_dir(out: Path, model: str = "tiny") -> Path:
    return out / "dy_log" / "train" / model / "training_dynamics"


@pytest.mark.slow
def test_each_example_once_per_epoch_with_grad_accumulation(demo_data, tiny_model, tmp_path):
    run_cli(SCRIPT, *train_args(tiny_model, demo_data, tmp_path, "--gradient_accumulation_steps", 2,
                                "--dy_model_name", "tiny", epochs=3))
    d = dy_dir(tmp_path)
    assert sorted(p.name for p in d.glob("dynamics_epoch_*")) == [f"dynamics_epoch_{e}.jsonl" for e in range(3)]
    gold = gold_of(demo_data)
    for e in range(3):
        rows = read_epoch(d / f"dynamics_epoch_{e}.jsonl")
        assert set(rows) == set(range(N_TRAIN))
        assert all(r["gold"] == gold[g] for g, r in rows.items())
        assert all(len(r[f"logits_epoch_{e}"]) == 2 and r["device"] == "cpu" for r in rows.values())
    meta = json.loads((d / "dynamics_meta.json").read_text())
    assert meta["label_names"] == ["negative", "positive"]
    assert meta["num_examples"] == N_TRAIN and meta["epochs_completed"] == 3 and meta["td_mode"] == "in_training"
    assert meta["data"]["text_columns"] == ["sentence"]
    assert (tmp_path / "model_out" / "config.json").exists() and (tmp_path / "model_out" / "tokenizer.json").exists()
    results = json.loads((tmp_path / "model_out" / "eval_results.json").read_text())
    assert 0.0 <= results["eval_accuracy"] <= 1.0


@pytest.mark.slow
def test_post_epoch_logits_equal_final_model_eval_pass(demo_data, tiny_model, tmp_path):
    # persistent workers: the pass's loader must not replace the cached validation loader
    run_cli(SCRIPT, *train_args(tiny_model, demo_data, tmp_path, "--td_mode", "post_epoch", "--dy_model_name", "tiny",
                                "--dataloader_num_workers", 1, "--dataloader_persistent_workers", "true",
                                "--eval_strategy", "epoch", epochs=2))
    val = [json.loads(line) for line in open(demo_data["validation"])]
    pred = eval_logits(tmp_path / "model_out", [r["sentence"] for r in val]).argmax(-1)
    gold = [["negative", "positive"].index(r["label"]) for r in val]
    evaluated = json.loads((tmp_path / "model_out" / "eval_results.json").read_text())
    assert evaluated["eval_accuracy"] == pytest.approx(np.mean(pred == gold))  # on the validation set
    rows = read_epoch(dy_dir(tmp_path) / "dynamics_epoch_1.jsonl")
    recorded = np.array([rows[g]["logits_epoch_1"] for g in range(N_TRAIN)])
    fresh = eval_logits(tmp_path / "model_out", demo_texts(demo_data))
    np.testing.assert_allclose(recorded, fresh, atol=1e-4)
    # the model trained: epoch-0 logits differ from the final ones
    first = read_epoch(dy_dir(tmp_path) / "dynamics_epoch_0.jsonl")
    assert not np.allclose([first[g]["logits_epoch_0"] for g in range(N_TRAIN)], recorded, atol=1e-3)


@pytest.fixture(scope="module")
def dropout_free_model(tiny_model, tmp_path_factory) -> Path:
    from transformers import AutoConfig

    out = tmp_path_factory.mktemp("nodrop")
    for f in tiny_model.iterdir():
        shutil.copy(f, out / f.name)
    cfg = AutoConfig.from_pretrained(out)
    cfg.hidden_dropout_prob = cfg.attention_probs_dropout_prob = 0.0
    cfg.save_pretrained(out)
    return out


@pytest.mark.slow
def test_in_training_logits_equal_initial_model_when_frozen(demo_data, dropout_free_model, tmp_path):
    run_cli(SCRIPT, *train_args(dropout_free_model, demo_data, tmp_path, "--learning_rate", 0, "--dy_model_name", "tiny",
                                "--gradient_accumulation_steps", 2, epochs=2))
    initial = eval_logits(dropout_free_model, demo_texts(demo_data))
    for e in range(2):
        rows = read_epoch(dy_dir(tmp_path) / f"dynamics_epoch_{e}.jsonl")
        np.testing.assert_allclose([rows[g][f"logits_epoch_{e}"] for g in range(N_TRAIN)], initial, atol=1e-4)


@pytest.mark.slow
def test_torchrun_two_processes_record_each_example_once(demo_data, tiny_model, tmp_path):
    # --standalone: the rendezvous store binds a port the OS picks (localhost:0) and the workers use that store;
    # a fixed --master_port failed whenever another run (another checkout's test suite) held it
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    # 150 examples, 2 processes x 16 per batch: the sampler pads the last batch with repeated examples
    run_cli(SCRIPT, *train_args(tiny_model, demo_data, tmp_path, "--dy_model_name", "tiny", epochs=2),
            launcher=torchrun, env={"OMP_NUM_THREADS": "1"})
    d = dy_dir(tmp_path)
    assert sorted(p.name for p in d.glob("dynamics_epoch_*")) == ["dynamics_epoch_0.jsonl", "dynamics_epoch_1.jsonl"]
    for e in range(2):
        lines = (d / f"dynamics_epoch_{e}.jsonl").read_text().splitlines()
        assert len(lines) == N_TRAIN
        assert set(read_epoch(d / f"dynamics_epoch_{e}.jsonl")) == set(range(N_TRAIN))
    state = json.loads((tmp_path / "model_out" / "trainer_state.json").read_text())
    assert state["global_step"] == 2 * 5  # ceil(150 / (2 x 16)) steps per epoch: the two processes split the data


def _train_in_process(model, demo_data, out: Path, *, crash_at: int | None = None, resume: bool = False):
    """Train 3 epochs with checkpoints every 5 steps (10 steps per epoch); optionally crash at a step."""
    from training_dynamics.cli.record import parse_args
    from training_dynamics.workflows.train import build_trainer

    args = train_args(model, demo_data, out, "--dy_model_name", "tiny", "--save_strategy", "steps", "--save_steps", 5,
                      epochs=3)
    margs, dargs, yargs, targs, _ = parse_args([str(a) for a in args])
    trainer = build_trainer(margs, dargs, yargs, targs)
    train_with_crash(trainer, crash_at=crash_at, resume=resume)


@pytest.mark.slow
@pytest.mark.parametrize("crash_at,checkpoint", [(12, 10), (17, 15)], ids=["after-epoch-1", "mid-epoch-2"])
def test_resume_from_checkpoint_keeps_each_epoch_once(demo_data, tiny_model, tmp_path, crash_at, checkpoint):
    ref = tmp_path / "ref"
    _train_in_process(tiny_model, demo_data, ref)
    run = tmp_path / "run"
    with pytest.raises(Crash):
        _train_in_process(tiny_model, demo_data, run, crash_at=crash_at)
    d = dy_dir(run)
    assert [p.name for p in d.glob("dynamics_epoch_*")] == ["dynamics_epoch_0.jsonl"]
    for ckpt in (run / "model_out").glob("checkpoint-*"):  # as if the crash came right after this checkpoint
        if int(ckpt.name.split("-")[1]) > checkpoint:
            shutil.rmtree(ckpt)
    epoch0_before = (d / "dynamics_epoch_0.jsonl").read_bytes()
    _train_in_process(tiny_model, demo_data, run, resume=True)
    assert sorted(p.name for p in d.glob("dynamics_epoch_*")) == [f"dynamics_epoch_{e}.jsonl" for e in range(3)]
    assert (d / "dynamics_epoch_0.jsonl").read_bytes() == epoch0_before
    assert json.loads((d / "dynamics_meta.json").read_text())["epochs_completed"] == 3
    for e in range(3):  # a resumed run records what an uninterrupted one does
        got, want = read_epoch(d / f"dynamics_epoch_{e}.jsonl"), read_epoch(dy_dir(ref) / f"dynamics_epoch_{e}.jsonl")
        assert set(got) == set(range(N_TRAIN))
        np.testing.assert_allclose([got[g][f"logits_epoch_{e}"] for g in range(N_TRAIN)],
                                   [want[g][f"logits_epoch_{e}"] for g in range(N_TRAIN)], atol=1e-5)


@pytest.mark.slow
def test_tsv_custom_text_column_string_labels_and_npz(tiny_model, tmp_path):
    tsv = tmp_path / "reviews.tsv"
    rows = [("wonderful brilliant film", "pos"), ("dull boring plot", "neg"), ("superb warm cast", "pos"),
            ("awful tedious script", "neg"), ("charming witty story", "pos")] * 4
    tsv.write_text("id_text\treview\tsentiment\n" + "".join(f"x{i}\t{t}\t{y}\n" for i, (t, y) in enumerate(rows)))
    run_cli(SCRIPT, "--model_name_or_path", tiny_model, "--train_file", tsv, "--text_columns", "review",
            "--label_column", "sentiment", "--output_dir", tmp_path / "m", "--dy_log_dir", tmp_path / "dy",
            "--num_train_epochs", 1, "--report_to", "none", "--save_strategy", "no", "--td_format", "npz",
            "--dy_task_name", "reviews", "--dy_model_name", "bert")
    d = tmp_path / "dy" / "reviews" / "bert" / "training_dynamics"
    with np.load(d / "dynamics_epoch_0.npz") as z:
        np.testing.assert_array_equal(z["guid"], np.arange(20))
        np.testing.assert_array_equal(z["gold"], [1 if y == "pos" else 0 for _, y in rows])
        assert z["logits"].shape == (20, 2)
    meta = json.loads((d / "dynamics_meta.json").read_text())
    assert meta["label_names"] == ["neg", "pos"] and meta["data"]["text_columns"] == ["review"]
    assert json.loads((tmp_path / "m" / "config.json").read_text())["id2label"] == {"0": "neg", "1": "pos"}


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("case", ["missing_file", "unknown_column", "regression", "empty", "unknown_task", "stsb",
                                  "missing_label", "drop_last", "one_class", "float_idx", "surrogate"])
def test_bad_input_gives_one_line_error(case, tiny_model, tmp_path):
    data = {
        "missing_file": ["--train_file", tmp_path / "nope.csv"],
        "unknown_column": ["--train_file", _write(tmp_path / "a.csv", "sentence,label\nhi,0\nyo,1\n"),
                           "--text_columns", "review"],
        "regression": ["--train_file", _write(tmp_path / "r.csv", "sentence,label\nhi,0.5\nyo,3.2\n")],
        "empty": ["--train_file", _write(tmp_path / "e.jsonl", "")],
        "unknown_task": ["--task_name", "sst3"],
        "stsb": ["--task_name", "stsb"],
        "missing_label": ["--train_file", _write(tmp_path / "m.csv", "sentence,label\nhi,1\nyo,0\nho,\n")],
        "drop_last": ["--train_file", _write(tmp_path / "d.csv", "sentence,label\nhi,1\nyo,0\n"),
                      "--dataloader_drop_last", "true"],
        # a transformers traceback before; with --ignore_mismatched_sizes a 1-logit regression
        "one_class": ["--train_file", _write(tmp_path / "one.csv", "sentence,label\nhi,pos\nyo,pos\n"),
                      "--ignore_mismatched_sizes", "true"],
        "float_idx": ["--train_file", _write(tmp_path / "s.jsonl", '{"idx": 0.5, "sentence": "hi", "label": 0}\n'
                                                                    '{"idx": 1.5, "sentence": "yo", "label": 1}\n')],
        "surrogate": ["--train_file", _write(tmp_path / "u.jsonl", '{"sentence": "hi \\ud800", "label": 0}\n')],
    }[case]
    proc = run_cli(SCRIPT, "--model_name_or_path", tiny_model, *data, "--output_dir", tmp_path / "o",
                   "--dy_log_dir", tmp_path / "dy", "--report_to", "none", check=False)
    assert proc.returncode == 2, proc.stderr
    err = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert len(err) == 1 and "Traceback" not in proc.stderr, proc.stderr
    expect = {"missing_file": "nope.csv: no such file", "unknown_column": "unknown column(s) review",
              "regression": "regression", "empty": "empty", "unknown_task": "unknown task 'sst3'", "stsb": "regression",
              "missing_label": "row 2 has no label in column 'label'", "drop_last": "dataloader_drop_last drops",
              "one_class": "one.csv: only one class (['pos'])",
              "float_idx": "s.jsonl: column 'idx' holds floats (row 0: 0.5)",
              "surrogate": "u.jsonl: row 0 (line 1), column 'sentence': lone UTF-16 surrogate"}
    assert expect[case] in err[0]
    assert not (tmp_path / "dy").exists()


def _shell_script_command(tmp_path: Path, *args: str, **env: str) -> list[str]:
    """The command line run_glue_and_record_td.sh runs, captured by a stand-in for python (a dry run)."""
    fake = tmp_path / "fake_python"
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    fake.chmod(0o755)
    clean = {k: v for k, v in os.environ.items() if k not in ("TASK_NAME", "MODEL", "EPOCHS", "TRAIN_FILE",
                                                               "VALIDATION_FILE", "OUTPUT_DIR", "DY_LOG_DIR")}
    proc = subprocess.run(["sh", str(ROOT / "run_glue_and_record_td.sh"), *args], cwd=ROOT, capture_output=True,
                          text=True, env={**clean, "PYTHON": str(fake), **env}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def _flag(argv: list[str], name: str) -> str:
    """Value of the last ``name`` flag (argparse: the last one wins)."""
    return argv[len(argv) - 1 - argv[::-1].index(name) + 1]


def test_shell_script_defaults_and_overrides(tmp_path):
    argv = _shell_script_command(tmp_path)
    assert argv[0] == "run_glue_and_record_td.py"
    assert (_flag(argv, "--task_name"), _flag(argv, "--model_name_or_path"), _flag(argv, "--num_train_epochs"),
            _flag(argv, "--output_dir")) == ("sst2", "prajjwal1/bert-tiny", "5", "outputs/sst2/bert-tiny")
    assert "--train_file" not in argv
    # environment overrides; extra flags come last, so they win over the script's own
    argv = _shell_script_command(tmp_path, "--num_train_epochs", "2", "--td_format", "npz", MODEL="org/my-model",
                                 TRAIN_FILE="t.csv", VALIDATION_FILE="v.csv", EPOCHS="3")
    assert (_flag(argv, "--train_file"), _flag(argv, "--validation_file"), _flag(argv, "--model_name_or_path"),
            _flag(argv, "--output_dir")) == ("t.csv", "v.csv", "org/my-model", "outputs/sst2/my-model")
    assert "--task_name" not in argv
    assert _flag(argv, "--num_train_epochs") == "2" and argv[-2:] == ["--td_format", "npz"]


@pytest.mark.slow
def test_shell_script_runs_offline(demo_data, tiny_model, tmp_path):
    """POSIX sh (as the README types it); TRAIN_FILE / VALIDATION_FILE / MODEL from the environment train the
    local demo model on files; extra flags come last and win over the script's own (EPOCHS=1, then 2)."""
    env = {"MODEL": str(tiny_model), "EPOCHS": "1", "DY_LOG_DIR": str(tmp_path / "dy"), "OUTPUT_DIR": str(tmp_path / "o"),
           "TRAIN_FILE": str(demo_data["train"]), "VALIDATION_FILE": str(demo_data["validation"])}
    proc = subprocess.run(["sh", str(ROOT / "run_glue_and_record_td.sh"), "--report_to", "none", "--save_strategy", "no",
                           "--num_train_epochs", "2"],
                          cwd=ROOT, capture_output=True, text=True, env={**__import__("os").environ, **env,
                                                                        "PYTHON": sys.executable})
    assert proc.returncode == 0, proc.stderr[-3000:]
    td = tmp_path / "dy" / "train" / tiny_model.name / "training_dynamics"
    assert sorted(p.name for p in td.glob("dynamics_epoch_*.jsonl")) == ["dynamics_epoch_0.jsonl", "dynamics_epoch_1.jsonl"]
    assert len((td / "dynamics_epoch_1.jsonl").read_text().splitlines()) == N_TRAIN
    assert "eval_accuracy" in json.loads((tmp_path / "o" / "eval_results.json").read_text())


@pytest.mark.slow
def test_validation_file_falls_back_to_its_own_label_column(tiny_model, tmp_path):
    """Retraining on corrected labels: the train file has corrected_label, the validation file label."""
    rows = [("wonderful brilliant film", "positive"), ("dull boring plot", "negative")] * 6
    train = _write(tmp_path / "corrected.jsonl", "".join(
        json.dumps({"guid": 10 + i, "sentence": t, "original_label": y, "corrected_label": y}) + "\n"
        for i, (t, y) in enumerate(rows)))
    val = _write(tmp_path / "val.jsonl", "".join(json.dumps({"sentence": t, "label": y}) + "\n" for t, y in rows[:4]))
    run_cli(SCRIPT, "--model_name_or_path", tiny_model, "--train_file", train, "--validation_file", val,
            "--label_column", "corrected_label", "--output_dir", tmp_path / "m", "--dy_log_dir", tmp_path / "dy",
            "--num_train_epochs", 1, "--report_to", "none", "--save_strategy", "no")
    assert "eval_accuracy" in json.loads((tmp_path / "m" / "eval_results.json").read_text())
    rec = read_epoch(tmp_path / "dy" / "corrected" / tiny_model.name / "training_dynamics" / "dynamics_epoch_0.jsonl")
    assert sorted(rec) == list(range(10, 22))  # guids from the file's guid column


def test_class_names_name_integer_labels_reorder_string_and_hub_labels(tmp_path):
    """--class_names: names integer ids 0..K-1, fixes the id order of string labels, reorders ClassLabel names."""
    import datasets

    from training_dynamics.core.data import DataError, _label_names, _normalise, load_text_classification

    ints = _write(tmp_path / "ints.csv", "sentence,label\ngood,1\nbad,0\nfine,1\n")
    data = load_text_classification(train_file=str(ints), label_names=["negative", "positive"])
    assert data.label_names == ["negative", "positive"] and data.train["label"] == [1, 0, 1]
    with pytest.raises(DataError, match="row 0 has label id 1 outside 0..0"):
        load_text_classification(train_file=str(ints), label_names=["only"])
    strs = _write(tmp_path / "strs.csv", "sentence,label\ngood,pos\nbad,neg\n")
    assert load_text_classification(train_file=str(strs)).train["label"] == [1, 0]  # sorted: neg, pos
    assert load_text_classification(train_file=str(strs), label_names=["pos", "neg"]).train["label"] == [0, 1]
    hub = datasets.Dataset.from_dict({"sentence": ["a", "b", "c"], "label": [0, 1, 1]}, features=datasets.Features(
        {"sentence": datasets.Value("string"), "label": datasets.ClassLabel(names=["negative", "positive"])}))
    names = _label_names(hub, "label", ["positive", "negative"], "hub")
    assert names == ["positive", "negative"] and _normalise(hub, ["sentence"], "label", names, "hub")["label"] == [1, 0, 0]
    with pytest.raises(DataError, match="are not the dataset's label names"):
        _label_names(hub, "label", ["pos", "neg"], "hub")


@pytest.mark.slow
def test_arguments_from_one_json_file_get_the_cpu_torchrun_defaults_too(tmp_path, monkeypatch):
    """run_glue.py's `script.py args.json` form; under torchrun without a GPU it picks gloo + CPU as the flags do."""
    from training_dynamics.cli import record
    from training_dynamics.cli.record import parse_args

    config = _write(tmp_path / "args.json", json.dumps({"model_name_or_path": "m", "train_file": "t.jsonl",
                                                         "output_dir": str(tmp_path / "o"), "num_train_epochs": 2}))
    margs, dargs, yargs, targs, _ = parse_args([str(config)])
    assert (margs.model_name_or_path, dargs.train_file, targs.num_train_epochs) == ("m", "t.jsonl", 2)
    assert targs.ddp_backend is None
    # what torchrun without a GPU gets (a real WORLD_SIZE > 1 would make TrainingArguments start a process group)
    monkeypatch.setattr(record, "_cpu_ddp_defaults", lambda: {"ddp_backend": "gloo", "use_cpu": True})
    monkeypatch.setattr(record, "_no_accelerator_defaults", lambda: {})  # (tested in test_record_guards)
    assert record.with_cpu_ddp_defaults([str(config)]) == {**json.loads(config.read_text()), "ddp_backend": "gloo",
                                                            "use_cpu": True}
    assert record.with_cpu_ddp_defaults(["--x", "1", "--ddp_backend", "nccl"]) == ["--x", "1", "--ddp_backend", "nccl",
                                                                                   "--use_cpu", "true"]
