"""The one command line: `training-dynamics <command>`, its help, flag aliases, run names, and the Run object."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import ROOT, run_cli, write_synthetic_dynamics
from training_dynamics import cli
from training_dynamics.core import arguments as cli_args
from training_dynamics.kinds.generative.arguments import CausalLMModelArguments
from training_dynamics.cli.common import parse
from training_dynamics.core.data import DataError
from training_dynamics.analysis.run import METRICS_NAME, Run, load_metrics, model_run_name

SHIMS = {"record": "run_glue_and_record_td.py", "record-clm": "run_clm_and_record_td.py",
         "record-ner": "run_ner_and_record_td.py", "metrics": "td_metrics.py", "plot": "plot_cartography.py",
         "select": "data_selection.py", "compare": "compare_models.py", "find-issues": "find_label_issues.py",
         "review": "review_label_issues.py", "apply": "apply_corrections.py"}


def test_overview_lists_the_twelve_commands(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    listed = [line.split()[0] for line in out.splitlines() if line.startswith("  ")]
    assert listed == ["record", "record-clm", "record-ner", "import", "metrics", "plot", "select", "compare", "find-issues", "review", "import-labels", "apply", "demo"]


def test_unknown_command_is_one_line_exit_2(capsys):
    assert cli.main(["plto"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown command 'plto'" in err and "did you mean plot" in err


@pytest.mark.parametrize("command", list(cli.COMMANDS))
def test_every_command_has_help_with_its_flags_once(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: training-dynamics {command} [flags]")
    assert "--model-dir" not in out and "--run-dir" not in out  # dashed twins are accepted, not listed
    if command in ("metrics", "plot", "select", "find-issues", "review"):
        assert "--run_dir, --model_dir" in out  # the original name stays as an alias


def test_record_help_shows_choices_and_common_training_flags_only(capsys):
    with pytest.raises(SystemExit):
        cli.main(["record", "--help"])
    short = capsys.readouterr().out
    assert "--td_mode {in_training,post_epoch}" in short and "--td_format {jsonl,npz}" in short
    assert short.index("--model_name_or_path") < short.index("--dy_log_dir") < short.index("--learning_rate")
    assert "--learning_rate" in short and "--adam_beta1" not in short
    with pytest.raises(SystemExit):
        cli.main(["record", "--help_all"])
    assert "--adam_beta1" in capsys.readouterr().out
    assert len(short.splitlines()) < 250


def test_hf_flag_names_and_old_aliases_parse_to_the_same_values():
    new = parse((cli_args.RunArguments, cli_args.MetricsArguments, cli_args.ProgressArguments),
                ["--run_dir", "r", "--burn_out", "2", "--disable_tqdm"], prog="p", doc="")
    old = parse((cli_args.RunArguments, cli_args.MetricsArguments, cli_args.ProgressArguments),
                ["--model_dir", "r", "--burn_out", "2", "--no_progress"], prog="p", doc="")
    assert new == old and new[0].run_dir == "r" and new[2].disable_tqdm is True


@pytest.mark.parametrize("argv, message", [
    (["--run_dir", "r", "--burn_out", "0"], "--burn_out must be >= 1, not 0"),
    (["--run_dir", "r", "--bogus", "1"], "--bogus"),
])
def test_bad_flags_raise_value_errors_that_become_one_line(argv, message):
    with pytest.raises(ValueError, match=message):
        parse((cli_args.RunArguments, cli_args.MetricsArguments), argv, prog="p", doc="")


def test_lora_flags_are_trls_and_need_use_peft():
    (m,) = parse((CausalLMModelArguments,), ["--model_name_or_path", "g", "--use_peft", "--lora_r", "8",
                                                       "--lora_target_modules", "q_proj", "v_proj"], prog="p", doc="")
    assert (m.use_peft, m.lora_r, m.lora_alpha, m.lora_dropout, m.lora_target_modules) == (True, 8, 32, 0.05, ["q_proj", "v_proj"])
    with pytest.raises(ValueError, match="--lora_\\* flags need --use_peft"):
        parse((CausalLMModelArguments,), ["--model_name_or_path", "g", "--lora_r", "8"], prog="p", doc="")


@pytest.mark.parametrize("path, name", [
    ("prajjwal1/bert-tiny", "bert-tiny"),
    ("outputs/sst2-minilm/model", "sst2-minilm"),
    ("outputs/sst2-minilm/final/", "sst2-minilm"),
    ("runs/minilm/checkpoint-500", "minilm-checkpoint-500"),
    ("runs/minilm/best", "minilm"),
    ("/abs/roberta-large", "roberta-large"),
])
def test_model_run_names_explain_themselves(path, name):
    assert model_run_name(path) == name


def test_an_all_generic_local_path_is_named_by_its_config(tmp_path):
    (tmp_path / "out" / "model").mkdir(parents=True)
    (tmp_path / "out" / "model" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    assert model_run_name(str(tmp_path / "out" / "model")).startswith(tmp_path.name)  # the folder above wins
    import os

    cwd = os.getcwd()
    os.chdir(tmp_path / "out")
    try:
        assert model_run_name("model") == "bert"
    finally:
        os.chdir(cwd)


def test_run_knows_its_folder(tmp_path):
    arrays = write_synthetic_dynamics(tmp_path / "dy_log" / "sst2" / "tiny" / "training_dynamics", n=30, epochs=3)
    run = Run.at(tmp_path / "dy_log", "sst2", "tiny")
    assert (run.task, run.model, run.name) == ("sst2", "tiny", "sst2-tiny")
    assert run.has_dynamics and run.num_epochs == 3 and run.meta == {} and run.label_names is None
    assert not run.metrics_are_fresh()
    df = run.metrics()
    assert list(df["guid"]) == arrays["guids"].tolist() and run.metrics_are_fresh()
    assert (run.path / METRICS_NAME).exists() and run.metrics_settings()["burn_out"] == 3
    rm = load_metrics(run.path, burn_out=2)
    assert rm.num_epochs == 2 and rm.run is not None and rm.name == "sst2-tiny"
    assert not Run(tmp_path / "nothing").has_dynamics
    with pytest.raises(FileNotFoundError, match="no such run folder"):
        Run(tmp_path / "nothing").require()


def test_run_texts_when_the_data_moved_suggest_train_file(tmp_path):
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps({"sentence": f"text {i}", "label": i % 2}) + "\n" for i in range(6)))
    dy = tmp_path / "run" / "training_dynamics"
    write_synthetic_dynamics(dy, n=6, epochs=2)
    meta = {"data": {"train_file": str(tmp_path / "gone.jsonl"), "text_columns": ["sentence"], "label_column": "label"},
            "label_names": ["0", "1"]}
    (dy / "dynamics_meta.json").write_text(json.dumps(meta))
    run = Run(tmp_path / "run")
    with pytest.raises(DataError, match="gone.jsonl: the training file named in .* is gone .*pass --train_file"):
        run.data()
    data = run.data(train_file=str(train))
    assert run.texts([5, 0], data) == ["text 5", "text 0"]
    with pytest.raises(DataError, match="guid 99 .* not in the training data"):
        run.texts([99], data)


@pytest.mark.slow
def test_umbrella_command_and_shim_write_the_same_metrics(tmp_path):
    write_synthetic_dynamics(tmp_path / "a" / "training_dynamics", n=40, epochs=3, seed=3)
    write_synthetic_dynamics(tmp_path / "b" / "training_dynamics", n=40, epochs=3, seed=3)
    proc = subprocess.run([sys.executable, "-m", "training_dynamics", "metrics", "--run_dir", str(tmp_path / "a"),
                           "--disable_tqdm"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    run_cli("td_metrics.py", "--model_dir", tmp_path / "b", "--no_progress", in_process=False)
    assert (tmp_path / "a" / METRICS_NAME).read_text() == (tmp_path / "b" / METRICS_NAME).read_text()


@pytest.mark.slow
@pytest.mark.parametrize("command", list(SHIMS))
def test_each_original_script_is_the_command(command):
    proc = run_cli(SHIMS[command], "--help", in_process=False)
    assert proc.stdout.startswith(f"usage: {SHIMS[command]} [flags]")
    assert (ROOT / SHIMS[command]).read_text().count("\n") < 15  # a thin shim
