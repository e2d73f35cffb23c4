"""The map where people watch runs (issue 28): the data map in TensorBoard each epoch, and metrics / plot on a
run still recording ("run in progress: 2 of 5 epochs recorded")."""

from __future__ import annotations

import io
import json
import os
import socket
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli, train_args, write_synthetic_dynamics


class FakeWriter:
    """What a TensorBoard ``SummaryWriter`` is asked to log."""

    def __init__(self):
        self.images, self.histograms, self.flushed = [], [], 0

    def add_image(self, tag, image, global_step=None, dataformats="CHW"):
        self.images.append((tag, image, global_step, dataformats))

    def add_histogram(self, tag, values, global_step=None):
        self.histograms.append((tag, np.asarray(values), global_step))

    def flush(self):
        self.flushed += 1


def _hold_lock(run: Path, pid: int | None = None) -> Path:
    """The lock a recording holds on its run folder (this test process stands for the recording)."""
    lock = run / ".td_recording.lock"
    lock.write_text(json.dumps({"pid": pid or os.getpid(), "host": socket.gethostname(), "started": "now"}))
    return lock


def _meta(run: Path, **fields) -> None:
    path = run / "training_dynamics" / "dynamics_meta.json"
    meta = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**meta, **fields}))


def test_wants_live_map():
    from training_dynamics.analysis.live_map import wants_live_map

    assert wants_live_map(["tensorboard"]) and wants_live_map("wandb") and wants_live_map(["all"])
    assert not wants_live_map(["none"]) and not wants_live_map([]) and not wants_live_map(None)
    assert not wants_live_map(["mlflow"])


def test_epoch_map_of_a_classification_run_logs_the_image_and_every_example(tmp_path):
    from training_dynamics.analysis.live_map import LIVE_DPI, log_epoch_map
    from training_dynamics.analysis.run import Run

    run_dir = tmp_path / "dy_log" / "sst2" / "tiny"
    write_synthetic_dynamics(run_dir / "training_dynamics", n=80, epochs=3)
    _meta(run_dir, num_train_epochs=5, epochs_completed=3)
    run = Run(run_dir)
    writer = FakeWriter()
    assert log_epoch_map(run, tb_writer=writer) == 3
    (tag, image, step, fmt), = writer.images
    assert (tag, step, fmt) == ("data_map/map", 3, "HWC")
    assert image.dtype == np.uint8 and image.shape == (6 * LIVE_DPI, 8 * LIVE_DPI, 3)
    assert image.std() > 10  # a picture, not a blank
    expected = run.metrics(save=False)
    assert [h[0] for h in writer.histograms] == ["data_map/confidence", "data_map/variability"]
    np.testing.assert_allclose(writer.histograms[0][1], expected["confidence"])
    np.testing.assert_allclose(writer.histograms[1][1], expected["variability"])
    assert writer.flushed == 1
    assert not (run_dir / "td_metrics.jsonl").exists()  # read, never written


def test_epoch_map_of_a_token_run_counts_every_word(tmp_path):
    from test_ner import _random_run

    from training_dynamics.kinds.token import metrics as token_metrics
    from training_dynamics.analysis.live_map import epoch_map
    from training_dynamics.analysis.run import Run

    dy, _, counts, _, _ = _random_run(tmp_path, n=30, epochs=2, classes=13)
    image, df, epochs = epoch_map(Run(dy.parent))
    assert epochs == 2 and len(df) == int(counts.sum()) and image.ndim == 3
    np.testing.assert_allclose(df["confidence"], token_metrics.run_metrics(Run(dy.parent))["confidence"])


# -- a run still recording --------------------------------------------------------------------------------
def test_metrics_and_plot_on_a_run_in_progress_say_so(tmp_path, caplog):
    run = tmp_path / "dy_log" / "sst2" / "tiny"
    write_synthetic_dynamics(run / "training_dynamics", n=40, epochs=2)
    _meta(run, num_train_epochs=5, epochs_completed=2)
    lock = _hold_lock(run)
    proc = run_cli("td_metrics.py", "--run_dir", run, "--disable_tqdm", "true")
    assert "run in progress: 2 of 5 epochs recorded; the metrics cover those 2" in proc.stderr
    assert "interrupted" not in proc.stderr
    td = [json.loads(line) for line in (run / "td_metrics.jsonl").read_text().splitlines()]
    assert len(td) == 40 and max(r["correctness"] for r in td) <= 2
    proc = run_cli("plot_cartography.py", "--run_dir", run, "--output_dir", tmp_path / "p")
    assert "run in progress: 2 of 5 epochs recorded" in proc.stderr  # also from the cached metrics
    assert (tmp_path / "p" / "sst2_tiny_data_map.png").stat().st_size > 1000
    from training_dynamics.analysis.run import Run

    assert Run(run).progress_note() == "run in progress: 2 of 5 epochs recorded"
    # the recording ended (its lock is gone): the same folder is an interrupted run again
    lock.unlink()
    assert Run(run).progress_note() is None
    proc = run_cli("td_metrics.py", "--run_dir", run, "--disable_tqdm", "true")
    assert "only 2 of 5 planned epochs were recorded (the run was interrupted?)" in proc.stderr
    assert "in progress" not in proc.stderr


def test_a_new_recording_over_an_old_run_is_not_taken_for_its_progress(tmp_path):
    """--overwrite_dynamics: until the new run completes epoch 0 the folder still holds the old run's epochs (the
    new ones are staged beside it): the note says whose epochs they are."""
    from training_dynamics.analysis.run import Run

    run = tmp_path / "run"
    write_synthetic_dynamics(run / "training_dynamics", n=10, epochs=4)
    _meta(run, num_train_epochs=4, epochs_completed=4)
    (run / ".training_dynamics.new").mkdir()
    _hold_lock(run)
    assert Run(run).progress_note() == ("a new recording is under way here (no epoch of it complete yet): these "
                                        "are the 4 epochs of the run before it")


def test_a_lock_left_by_a_dead_process_is_no_run_in_progress(tmp_path):
    import subprocess
    import sys

    from training_dynamics.analysis.run import Run

    run = tmp_path / "run"
    write_synthetic_dynamics(run / "training_dynamics", n=10, epochs=2)
    _meta(run, num_train_epochs=3)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    _hold_lock(run, pid=int(gone.stdout))
    assert Run(run).progress_note() is None


def test_a_run_in_progress_before_its_first_epoch_is_one_line(tmp_path):
    run = tmp_path / "dy_log" / "sst2" / "tiny"
    run.mkdir(parents=True)
    _hold_lock(run)
    proc = run_cli("plot_cartography.py", "--run_dir", run, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    line, = proc.stderr.strip().splitlines()
    assert "run in progress: no epoch recorded yet" in line and line.startswith("plot_cartography.py: error:")


# -- the real thing: a recording run with --report_to tensorboard ------------------------------------------
@pytest.mark.slow
def test_a_two_epoch_run_writes_the_map_into_its_tensorboard_events(demo_data, tiny_model, tmp_path):
    from matplotlib.image import imread
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from training_dynamics.analysis.run import Run

    args = [str(a) for a in train_args(tiny_model, demo_data, tmp_path, "--dy_model_name", "tiny", epochs=2)]
    args[args.index("--report_to") + 1] = "tensorboard"
    proc = run_cli("run_glue_and_record_td.py", *args)
    assert "logged the data map of 2 epoch(s) to TensorBoard" in proc.stderr
    events = sorted((tmp_path / "model_out").rglob("events.out.tfevents.*"))
    assert events and len({e.parent for e in events}) == 1, events  # the Trainer's own log folder (runs/...)
    acc = EventAccumulator(str(events[0].parent), size_guidance={"images": 0, "histograms": 0})
    acc.Reload()
    assert {"data_map/map"} <= set(acc.Tags()["images"])
    assert {"data_map/confidence", "data_map/variability"} <= set(acc.Tags()["histograms"])
    maps = acc.Images("data_map/map")
    assert [m.step for m in maps] == [1, 2]
    for m in maps:
        png = imread(io.BytesIO(m.encoded_image_string), format="png")
        assert png.shape[:2] == (m.height, m.width) and m.width >= 400 and png.std() > 0.02
    run = Run(tmp_path / "dy_log" / "train" / "tiny")
    final = run.metrics(save=False)
    conf = acc.Histograms("data_map/confidence")
    assert [h.step for h in conf] == [1, 2]
    assert conf[-1].histogram_value.num == len(final) == 150
    assert np.isclose(conf[-1].histogram_value.sum, final["confidence"].sum(), rtol=1e-4)
    var = acc.Histograms("data_map/variability")[-1].histogram_value
    assert np.isclose(var.sum, final["variability"].sum(), rtol=1e-4)
    assert acc.Histograms("data_map/variability")[0].histogram_value.max == 0  # one epoch: no variability yet
