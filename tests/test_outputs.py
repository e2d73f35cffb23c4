"""Every writer guarded (training_dynamics.core.outputs): no command replaces an input or a file it did not
write, and it replaces its own earlier output only with --overwrite_output_dir. Each refusal exits 2
with one line and leaves every byte as it was."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import one_line_error, run_cli, write_synthetic_dynamics
from training_dynamics.core import outputs
from training_dynamics.core.errors import OutputError


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def run_with_data(tmp_path) -> tuple[Path, Path]:
    """A recorded-looking run folder (synthetic dynamics) whose meta names a real training file."""
    run = tmp_path / "run"
    arrays = write_synthetic_dynamics(run / "training_dynamics", n=30, epochs=3, seed=5)
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps({"idx": int(g), "sentence": f"text {g}", "label": int(y)}) + "\n"
                             for g, y in zip(arrays["guids"], arrays["gold"])), encoding="utf-8")
    meta = {"data": {"train_file": str(train), "text_columns": ["sentence"], "label_column": "label"},
            "label_names": ["0", "1"]}
    (run / "training_dynamics" / "dynamics_meta.json").write_text(json.dumps(meta))
    return run, train


def test_manifest_knows_what_a_command_wrote(tmp_path):
    guard = outputs.Outputs("plot")
    path = guard.check_file(tmp_path / "a.png")
    path.write_bytes(b"png")
    guard.written(path)
    assert outputs.written_by(path) == "plot" and (tmp_path / outputs.MANIFEST_NAME).is_file()
    with pytest.raises(OutputError, match="pass --overwrite_output_dir to replace it"):
        guard.check_file(path)
    assert outputs.Outputs("plot", overwrite=True).check_file(path) == path
    with pytest.raises(OutputError, match=r"not written by `training-dynamics compare` \(it was by `plot`\)"):
        outputs.Outputs("compare", overwrite=True).check_file(path)
    path.write_bytes(b"edited by hand")  # changed since: the user's now
    assert outputs.written_by(path) is None
    with pytest.raises(OutputError, match="exists and was not written by"):
        outputs.Outputs("plot", overwrite=True).check_file(path)
    (tmp_path / "link.png").symlink_to(path)
    assert outputs.written_by(tmp_path / "link.png") is None
    with pytest.raises(OutputError, match="is the input"):
        outputs.Outputs("plot", inputs=[path], overwrite=True).check_file(tmp_path / "link.png")
    with pytest.raises(OutputError, match="is the input"):
        outputs.Outputs("record", inputs=[tmp_path]).check_folder(tmp_path / "." / "")


@pytest.mark.slow
def test_review_never_replaces_the_training_file_nor_the_ranking(run_with_data, tmp_path):
    run, train = run_with_data
    issues = tmp_path / "issues"
    run_cli("find_label_issues.py", "--source", "dynamics", "--run_dir", run, "--output_dir", issues,
            "--decision", "none")
    ranking = issues / "label_issues.jsonl"
    for target in (train, ranking, issues / "label_issues_settings.json"):
        before = _tree(tmp_path)
        for extra in ([], ["--overwrite_output_dir"]):
            proc = run_cli("review_label_issues.py", "--issues", ranking, "--output", target, *extra, check=False)
            one_line_error(proc, "review_label_issues.py", f"--output {target}")
            assert _tree(tmp_path) == before
    run_cli("review_label_issues.py", "--issues", ranking)
    page = issues / "review.html"
    first = page.read_bytes()
    one_line_error(run_cli("review_label_issues.py", "--issues", ranking, check=False), "review_label_issues.py",
             "pass --overwrite_output_dir")
    assert page.read_bytes() == first
    run_cli("review_label_issues.py", "--issues", ranking, "--overwrite_output_dir")
    # find-issues itself: its earlier files only with --overwrite_output_dir, never a page it did not write
    one_line_error(run_cli("find_label_issues.py", "--source", "dynamics", "--run_dir", run, "--output_dir", issues,
                     check=False), "find_label_issues.py", "pass --overwrite_output_dir")
    run_cli("find_label_issues.py", "--source", "dynamics", "--run_dir", run, "--output_dir", issues,
            "--overwrite_output_dir", "--decision", "none")


def test_select_write_data_never_replaces_a_users_file_nor_the_training_file(run_with_data, tmp_path):
    run, train = run_with_data
    out = tmp_path / "sel"
    (out / "selected_data").mkdir(parents=True)
    mine = out / "selected_data" / "hard.jsonl"
    mine.write_text('{"sentence": "my own rows", "label": 1}\n')
    before = _tree(tmp_path)
    for extra in ([], ["--overwrite_output_dir"]):
        one_line_error(run_cli("data_selection.py", "--run_dir", run, "--output_dir", out, "--write_data", *extra,
                         check=False), "data_selection.py", f"{mine} exists and was not written by")
        assert _tree(tmp_path) == before
    mine.unlink()
    run_cli("data_selection.py", "--run_dir", run, "--output_dir", out, "--write_data")
    written = _tree(out)
    assert json.loads((out / "selected_data" / "hard.jsonl").read_text().splitlines()[0])["sentence"].startswith("text")
    one_line_error(run_cli("data_selection.py", "--run_dir", run, "--output_dir", out, "--write_data", "--seed", "3",
                     check=False), "data_selection.py", "pass --overwrite_output_dir")
    assert _tree(out) == written
    run_cli("data_selection.py", "--run_dir", run, "--output_dir", out, "--write_data", "--seed", "3",
            "--overwrite_output_dir")
    assert _tree(out)["selected_data/random.jsonl"] != written["selected_data/random.jsonl"]
    # the run's own training file as a selection's output
    (tmp_path / "selected_data").mkdir()
    train_copy = train.read_bytes()
    (tmp_path / "selected_data" / "hard.jsonl").symlink_to(train)
    one_line_error(run_cli("data_selection.py", "--run_dir", run, "--output_dir", tmp_path, "--write_data",
                     "--overwrite_output_dir", check=False), "data_selection.py", "is the input")
    assert train.read_bytes() == train_copy


@pytest.mark.slow
def test_compare_plot_and_averaged_metrics_are_guarded(tmp_path):
    for name in ("a", "b"):  # two runs of the same examples
        write_synthetic_dynamics(tmp_path / name / "training_dynamics", n=30, epochs=3, seed=1)
    out = tmp_path / "cmp"
    out.mkdir()
    (out / "compare.csv").write_text("my spreadsheet\n")
    one_line_error(run_cli("compare_models.py", "--weak_dir", tmp_path / "a", "--strong_dir", tmp_path / "b",
                     "--output_dir", out, "--overwrite_output_dir", check=False), "compare_models.py",
             f"{out / 'compare.csv'} exists and was not written")
    assert sorted(p.name for p in out.iterdir()) == ["compare.csv"]
    plots = tmp_path / "a" / "plots"
    run_cli("plot_cartography.py", "--run_dir", tmp_path / "a", "--output_dir", plots)
    one_line_error(run_cli("plot_cartography.py", "--run_dir", tmp_path / "a", "--output_dir", plots, check=False),
             "plot_cartography.py", "pass --overwrite_output_dir")
    run_cli("plot_cartography.py", "--run_dir", tmp_path / "a", "--output_dir", plots, "--overwrite_output_dir")
    mean = tmp_path / "mean"
    mean.mkdir()
    (mean / "td_metrics.jsonl").write_text("{}\n")
    one_line_error(run_cli("td_metrics.py", "--run_dir", tmp_path / "a", tmp_path / "b", "--output_dir", mean,
                     "--overwrite_output_dir", check=False), "td_metrics.py", "was not written by")
    assert (mean / "td_metrics.jsonl").read_text() == "{}\n"


@pytest.mark.slow
@pytest.mark.parametrize("command", ["record", "record-clm"])
def test_record_output_dir_is_never_the_input_model_folder(tiny_model, demo_data, tmp_path, command):
    """The Trainer would save the fine-tuned model over the one it loads: refused before loading anything."""
    import shutil

    from training_dynamics.cli import run_command

    model = shutil.copytree(tiny_model, tmp_path / "model")
    before = _tree(model)
    flags = (["--train_file", demo_data["train"]] if command == "record"
             else ["--train_file", demo_data["train"], "--text_column", "sentence"])
    argv = ["--model_name_or_path", str(model), *map(str, flags), "--output_dir", str(model) + "/",
            "--dy_log_dir", str(tmp_path / "dy"), "--report_to", "none", "--num_train_epochs", "1"]
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = run_command(command, argv, prog=f"training-dynamics {command}")
    assert code == 2 and f"--output_dir {model}" in err.getvalue() and "is the input" in err.getvalue(), err.getvalue()
    lines = err.getvalue().strip().splitlines()  # the data is checked first (one INFO line), then one error line
    assert lines[-1].startswith(f"training-dynamics {command}: error: ") and "Traceback" not in err.getvalue()
    assert _tree(model) == before and not (tmp_path / "dy").exists()
