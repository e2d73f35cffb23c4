"""Recording from anywhere: the framework-free Recorder (logits or probabilities), `training-dynamics import`
of per-epoch arrays (the same metrics as recording the same values), the plain-PyTorch example of
docs/recording_anywhere.md run as written (then metrics, plot, find-issues, review and apply on its run),
and the Lightning callback."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training_dynamics.core import dynamics_file
from training_dynamics.workflows.recorder_api import Recorder, RecorderError

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "recording_anywhere.md"


def _softmax(z):
    p = np.exp(z - z.max(-1, keepdims=True))
    return p / p.sum(-1, keepdims=True)


def _train_file(tmp_path, n=12, classes=("neg", "pos", "zzz")):
    path = tmp_path / "train.jsonl"
    rng = np.random.default_rng(3)
    gold = rng.integers(0, len(classes), size=n)
    gold[: len(classes)] = np.arange(len(classes))  # every class present
    path.write_text("".join(json.dumps({"text": f"example {i}", "label": classes[g], "idx": 100 + i}) + "\n"
                            for i, g in enumerate(gold)))
    return path, gold


def test_recorder_writes_a_run_folder_of_what_was_logged_logits_or_probabilities(tmp_path):
    path, gold = _train_file(tmp_path)
    rng = np.random.default_rng(0)
    z = rng.normal(size=(3, len(gold), 3)).astype(np.float32) * 2  # (epochs, examples, classes)
    guids = np.arange(100, 100 + len(gold))
    with Recorder(tmp_path / "run", train_file=path, num_epochs=3, model_name="mine") as rec:
        assert rec.label_names == ["neg", "pos", "zzz"]
        for e in range(3):
            order = rng.permutation(len(gold))
            for b in np.array_split(order, 4):
                if e == 1:
                    rec.log_batch(guids[b], probs=_softmax(z[e, b].astype(np.float64)), labels=gold[b])
                else:
                    rec.log_batch(list(guids[b]), z[e, b].tolist(), labels=gold[b])
            rec.log_batch(guids[:2], z[e, :2])  # logged twice: the last values count (the same here)
            rec.end_epoch()
    dyn = dynamics_file.read_dynamics(tmp_path / "run" / "training_dynamics", progress=False)
    np.testing.assert_array_equal(dyn.guids, guids)
    np.testing.assert_array_equal(dyn.gold, gold)
    np.testing.assert_array_equal(dyn.logits[:, 0], z[0])
    np.testing.assert_array_equal(dyn.logits[:, 2], z[2])
    # epoch 1 was logged as probabilities: stored as log p, so softmax gives p back and margins are the logits'
    np.testing.assert_allclose(_softmax(dyn.logits[:, 1]), _softmax(z[1]), rtol=1e-5)
    np.testing.assert_allclose(dyn.logits[:, 1] - dyn.logits[:, 1, :1], z[1] - z[1, :, :1], rtol=1e-4, atol=1e-5)
    meta = json.loads((tmp_path / "run" / "training_dynamics" / "dynamics_meta.json").read_text())
    assert meta["epochs_completed"] == 3 and meta["num_train_epochs"] == 3 and meta["model_name_or_path"] == "mine"
    assert meta["data"]["train_file"] == str(path.resolve()) and meta["label_names"] == ["neg", "pos", "zzz"]
    assert (tmp_path / "run" / "training_dynamics" / "data_binding.npz").is_file()
    assert not (tmp_path / "run" / ".td_recording.lock").exists()

    from training_dynamics.analysis.run import Run

    run = Run(tmp_path / "run")
    assert run.data().train["guid"] == guids.tolist()  # the binding holds: later commands can join the data
    cols, _ = run.write_metrics(progress=False)
    p_gold = _softmax(z.astype(np.float64))[:, np.arange(len(gold)), gold].T  # (examples, epochs)
    np.testing.assert_allclose(cols["confidence"], p_gold.mean(1), rtol=1e-5)
    np.testing.assert_allclose(cols["variability"], p_gold.std(1), rtol=1e-4, atol=1e-7)


def test_recorder_refuses_bad_batches_and_incomplete_epochs_in_one_line(tmp_path):
    path, gold = _train_file(tmp_path, n=6)
    guids = np.arange(100, 106)
    rec = Recorder(tmp_path / "run", train_file=path)
    z = np.zeros((6, 3))
    with pytest.raises(RecorderError, match="id 7 is not an example of the training data"):
        rec.log_batch([7], z[:1])
    with pytest.raises(RecorderError, match=r"needs \(2, 3\) values .*got \(2, 2\)"):
        rec.log_batch(guids[:2], z[:2, :2])
    with pytest.raises(RecorderError, match="sum to 2, not 1"):
        rec.log_batch(guids[:1], probs=[[1.0, 1.0, 0.0]])
    with pytest.raises(RecorderError, match="the batch's label is .* the ids must name"):
        rec.log_batch(guids[:1], z[:1], labels=[(gold[0] + 1) % 3])
    with pytest.raises(RecorderError, match="give logits= or probs="):
        rec.log_batch(guids[:1])
    rec.log_batch(guids[:4], z[:4])
    with pytest.raises(RecorderError, match="epoch 0: 2 of 6 examples were not logged .first id 104"):
        rec.end_epoch()
    rec.close()  # no epoch completed: nothing left behind, the lock released
    assert not (tmp_path / "run" / "training_dynamics").exists() and not (tmp_path / "run" / ".td_recording.lock").exists()
    with pytest.raises(RecorderError, match="closed"):
        rec.log_batch(guids[:1], z[:1])

    with Recorder(tmp_path / "run", train_file=path) as rec:
        rec.log_batch(guids, z)
        rec.end_epoch()
    with pytest.raises(FileExistsError, match="already holds training dynamics.*overwrite"):
        Recorder(tmp_path / "run", train_file=path)
    with pytest.raises(RecorderError, match="give the training data"):
        Recorder(tmp_path / "other")


def _write_epochs_like(dyn, folder: Path, *, as_probs: bool, fmt: str, seed: int = 0) -> list[Path]:
    """The recorded epochs of ``dyn`` as files made elsewhere: rows in a shuffled order."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    perm = rng.permutation(len(dyn.guids))
    np.save(folder / "ids.npy", dyn.guids[perm])
    files = []
    for e in range(dyn.num_epochs):
        z = dyn.logits[perm, e].astype(np.float64)
        values = _softmax(z) if as_probs else z
        if fmt == "npy":
            files.append(folder / f"epoch_{e}.npy")
            np.save(files[-1], values)
        else:
            files.append(folder / f"epoch_{e}.parquet")
            col = "probabilities" if as_probs else "logits"
            pd.DataFrame({"guid": dyn.guids[perm], col: list(values)}).to_parquet(files[-1])
    return files


@pytest.mark.slow
def test_import_of_per_epoch_arrays_gives_the_metrics_of_the_recorded_run(recorded_run, demo_data, tmp_path):
    from conftest import run_cli

    run_cli("td_metrics.py", "--run_dir", recorded_run)
    want = pd.read_json(recorded_run / "td_metrics.jsonl", lines=True)
    dyn = dynamics_file.read_dynamics(recorded_run / "training_dynamics", progress=False)
    for as_probs, fmt in [(True, "npy"), (False, "parquet")]:
        files = _write_epochs_like(dyn, tmp_path / f"arrays_{fmt}", as_probs=as_probs, fmt=fmt)
        out = tmp_path / f"imported_{fmt}"
        extra = ["--ids_file", files[0].parent / "ids.npy"] if fmt == "npy" else []
        proc = _cli("import", "--train_file", demo_data["train"], "--run_dir", out, "--epoch_files", *files, *extra)
        assert proc[0] == 0, proc[2]
        run_cli("td_metrics.py", "--run_dir", out)
        got = pd.read_json(out / "td_metrics.jsonl", lines=True)
        assert list(got.columns) == list(want.columns) and got["guid"].tolist() == want["guid"].tolist()
        for c in want.columns:
            if as_probs:  # log-probabilities in float32: the same to float32 precision
                np.testing.assert_allclose(got[c].astype(float), want[c].astype(float), rtol=1e-5, atol=2e-6,
                                           err_msg=c)
            else:  # the very logits: the very metrics
                np.testing.assert_array_equal(got[c].to_numpy(), want[c].to_numpy(), err_msg=c)
        binding = np.load(out / "training_dynamics" / "data_binding.npz")
        np.testing.assert_array_equal(binding["hash"], np.load(recorded_run / "training_dynamics" / "data_binding.npz")["hash"])


def _cli(command: str, *args, cwd: Path | None = None) -> tuple[int, str, str]:
    """``training-dynamics <command> args`` in this process, in ``cwd``: (exit status, stdout, stderr)."""
    from training_dynamics.cli import run_command

    out, err, here = io.StringIO(), io.StringIO(), os.getcwd()
    os.chdir(cwd or here)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = run_command(command, [str(a) for a in args])
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 2
    finally:
        os.chdir(here)
        for handler in list(logging.getLogger().handlers):
            logging.getLogger().removeHandler(handler)
    return code, out.getvalue(), err.getvalue()


def test_import_refuses_files_that_do_not_cover_the_data_in_one_line(tmp_path):
    path, gold = _train_file(tmp_path, n=6)
    np.save(tmp_path / "e0.npy", np.full((5, 3), 1 / 3))
    code, _, err = _cli("import", "--train_file", path, "--run_dir", tmp_path / "run", "--epoch_files", tmp_path / "e0.npy")
    errors = [line for line in err.splitlines() if "error" in line]
    assert code == 2 and len(errors) == 1 and "Traceback" not in err
    assert errors[0].startswith("training-dynamics import: error: ") and "e0.npy: 5 rows" in errors[0] and "6 examples" in errors[0]
    np.save(tmp_path / "e1.npy", np.full((6, 3), 0.5))
    code, _, err = _cli("import", "--train_file", path, "--run_dir", tmp_path / "run", "--epoch_files",
                        tmp_path / "e1.npy", "--ids_file", tmp_path / "nope.txt")
    assert code == 2 and "nope.txt: no such file" in err
    (tmp_path / "ids.txt").write_text("\n".join(str(100 + i) for i in range(6)) + "\n")
    code, _, err = _cli("import", "--train_file", path, "--run_dir", tmp_path / "run", "--epoch_files",
                        tmp_path / "e1.npy", "--ids_file", tmp_path / "ids.txt")
    assert code == 2 and "e1.npy" in err and "sum to 1.5" in err
    assert not (tmp_path / "run" / "training_dynamics").exists()  # nothing written
    np.save(tmp_path / "e2.npy", np.full((6, 3), 0.5))
    code, _, err = _cli("import", "--train_file", path, "--run_dir", tmp_path / "run", "--epoch_files",
                        tmp_path / "e2.npy", "--values", "logits", "--ids_file", tmp_path / "ids.txt")
    assert code == 0, err
    assert "one epoch recorded" not in err  # (metrics says that, not import)


def _doc_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


@pytest.mark.slow
def test_the_plain_pytorch_example_of_the_doc_runs_and_every_command_works_on_its_run(tmp_path, monkeypatch):
    from training_dynamics.review.corrections import corrections_document
    from training_dynamics.analysis.run import Run

    code = _doc_blocks("python")[0]
    assert 15 <= len(code.strip().splitlines()) <= 30  # a short example
    monkeypatch.chdir(tmp_path)
    exec(compile(code, str(DOC), "exec"), {"__name__": "doc_example"})
    run = tmp_path / "dy_log" / "reviews" / "linear"
    assert sorted(p.name for p in (run / "training_dynamics").glob("dynamics_epoch_*")) == [
        f"dynamics_epoch_{e}.jsonl" for e in range(6)]
    flipped = [i for i in range(240) if i % 10 == 0]
    commands = [shlex.split(line) for line in _doc_blocks("bash")[0].splitlines() if line.startswith("training-dynamics")]
    assert [c[1] for c in commands] == ["metrics", "plot", "find-issues", "review", "apply"]
    for cmd in commands:
        if cmd[1] == "apply":  # the reviewer relabels the top of the ranking to the suggested label
            issues = pd.read_json(tmp_path / "issues" / "label_issues.jsonl", lines=True)
            flagged = set(issues["guid"][issues["is_label_issue"]])
            # every flag is a flip; how many the count takes depends on the evidence rule (docs/label_errors.md)
            assert flagged <= set(flipped) and len(flagged) >= 0.5 * len(flipped), sorted(flagged)
            top = issues[: len(flipped)]
            assert set(top["guid"]) == set(flipped)  # the flipped labels rank first
            doc = corrections_document(Run(run).data(), top["guid"].tolist(), top["likely_true_name"].tolist())
            (tmp_path / "corrections.json").write_text(json.dumps(doc))
        status, _, err = _cli(cmd[1], *cmd[2:], cwd=tmp_path)
        assert status == 0, f"{cmd}: {err[-2000:]}"
    assert (tmp_path / "dy_log" / "reviews" / "linear" / "plots").is_dir()
    assert (tmp_path / "issues" / "review.html").stat().st_size > 0
    fixed = pd.read_json(tmp_path / "fixed.jsonl", lines=True)
    truth = ["positive" if i % 6 < 3 else "negative" for i in range(240)]
    assert fixed["corrected_label"].tolist() == truth and (fixed["original_label"] != truth).sum() == len(flipped)


@pytest.mark.slow
def test_lightning_callback_records_a_run_that_find_issues_reads(tmp_path):
    L = pytest.importorskip("lightning")
    import torch

    from training_dynamics.workflows.lightning_callback import TrainingDynamicsCallback

    n = 60
    texts = [f"text {i % 4}" for i in range(n)]
    labels = [int(i % 4 < 2) ^ int(i % 15 == 0) for i in range(n)]
    x = torch.nn.functional.one_hot(torch.arange(n) % 4, 4).float()
    y = torch.tensor(labels)

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = torch.nn.Linear(4, 2)

        def training_step(self, batch, batch_idx):
            logits = self.model(batch["x"])
            return {"loss": torch.nn.functional.cross_entropy(logits, batch["labels"]), "logits": logits}

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.5)

    rows = [{"x": x[i], "labels": y[i], "guid": i} for i in range(n)]
    loader = torch.utils.data.DataLoader(rows, batch_size=8, shuffle=True)
    torch.manual_seed(0)
    rec = Recorder(tmp_path / "run", texts=texts, labels=labels, num_epochs=4)
    trainer = L.Trainer(max_epochs=4, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[TrainingDynamicsCallback(rec, ids_key="guid")])
    trainer.fit(Module(), loader)
    assert not (tmp_path / "run" / ".td_recording.lock").exists()  # closed when fit ended
    dyn = dynamics_file.read_dynamics(tmp_path / "run" / "training_dynamics", progress=False)
    assert dyn.num_epochs == 4 and dyn.guids.tolist() == list(range(n))
    status, _, err = _cli("find-issues", "--source", "dynamics", "--run_dir", tmp_path / "run", "--output_dir",
                          tmp_path / "issues")
    assert status == 0, err
    issues = pd.read_json(tmp_path / "issues" / "label_issues.jsonl", lines=True)
    assert set(issues["guid"][:4]) == {i for i in range(n) if i % 15 == 0}  # the flipped labels rank first
