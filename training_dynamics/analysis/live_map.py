"""The data map where people watch runs: TensorBoard (and W&B) get the map after every recorded epoch.

With ``--report_to tensorboard`` (or ``wandb``, or ``all``) a recording run logs, each time an epoch file is
written, the data map of the epochs so far, through the writer the Trainer's own TensorBoard callback opened
(``<output_dir>/runs/...`` unless ``--logging_dir`` says otherwise), at step = epochs recorded:

* ``data_map/map``: an image of the map (confidence vs variability, coloured by correctness);
* ``data_map/confidence`` and ``data_map/variability``: histograms over every example (every word of a token
  classification run, every response of a generative one).

It needs nothing beyond what the Trainer reports with: without tensorboard (or wandb) installed the Trainer has
no such callback and nothing is logged here. The map is read back from the run folder's epoch files, so it is
the one ``training-dynamics plot`` draws from the same epochs (a seeded sample of at most
:data:`LIVE_MAX_POINTS` points drawn; the histograms count all).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from transformers import TrainerCallback

from training_dynamics.analysis.run import Run

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

#: the trackers that get the map (names as ``--report_to`` spells them)
TRACKERS = ("tensorboard", "wandb")
#: points drawn in the logged image (a seeded sample of bigger runs; histograms count every example)
LIVE_MAX_POINTS = 20_000
#: the image's size in pixels is the figure's inches times this
LIVE_DPI = 80
TAG = "data_map"


class _LiveRun(Run):
    """A run read while its own recording writes it: the recording's dynamics folder, and no warning that the
    run is incomplete (it is, by design, until its last epoch)."""

    def __init__(self, path, dynamics_dir):
        super().__init__(path)
        self._dynamics_dir = Path(dynamics_dir)

    @property
    def dynamics_dir(self) -> Path:
        return self._dynamics_dir

    def warn_if_incomplete(self, num_epochs: int) -> None:
        pass

    def progress_note(self, num_epochs: int | None = None) -> None:
        return None


def epoch_map(run: Run, *, title: str | None = None, max_points: int = LIVE_MAX_POINTS,
              seed: int = 42) -> tuple[np.ndarray, "pd.DataFrame", int]:
    """``(image, metrics, epochs)`` of ``run`` over the epochs recorded so far: the data map as an (H, W, 3) uint8
    RGB array, the per-example metrics table it was drawn from (not written to the run folder) and the number
    of epochs it covers."""
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from training_dynamics.analysis import plots

    epochs = run.num_epochs
    df = run.metrics(save=False)
    planned = run.planned_epochs
    name = f"{run.task}-{run.model}"
    title = title or (f"{name} Data Map after {epochs}" + (f" of {planned}" if planned else "")
                      + f" epoch{'s' if (planned or epochs) != 1 else ''}")
    fig = plots.plot_data_map(df, num_epochs=epochs, title=title, max_points=max_points, seed=seed,
                              style="scatter" if len(df) <= max_points else "auto")
    try:
        fig.set_dpi(LIVE_DPI)
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        image = np.asarray(canvas.buffer_rgba())[..., :3].copy()
    finally:
        plt.close(fig)
    return image, df, epochs


def log_epoch_map(run: Run, *, tb_writer=None, wandb=None, step: int | None = None) -> int:
    """Draw the map of ``run``'s recorded epochs and log it to a TensorBoard ``SummaryWriter`` (``add_image``,
    ``add_histogram``) and/or a W&B module or run (``log`` of an ``Image`` and two ``Histogram``); returns the
    number of epochs it covers (the step used unless ``step`` is given)."""
    image, df, epochs = epoch_map(run)
    step = epochs if step is None else step
    conf, var = df["confidence"].to_numpy(float), df["variability"].to_numpy(float)
    if tb_writer is not None:
        tb_writer.add_image(f"{TAG}/map", image, global_step=step, dataformats="HWC")
        tb_writer.add_histogram(f"{TAG}/confidence", conf, global_step=step)
        tb_writer.add_histogram(f"{TAG}/variability", var, global_step=step)
        tb_writer.flush()
    if wandb is not None:
        import wandb as wandb_module  # the caller holds a live run: the package is installed

        wandb.log({f"{TAG}/map": wandb_module.Image(image, caption=f"after {epochs} epochs"),
                   f"{TAG}/confidence": wandb_module.Histogram(conf), f"{TAG}/variability": wandb_module.Histogram(var),
                   f"{TAG}/epochs_recorded": epochs})
    return epochs


class LiveDataMap(TrainerCallback):
    """Logs the data map to the Trainer's TensorBoard / W&B callbacks after every epoch its
    :class:`~training_dynamics.core.recorder.DynamicsTrainer` wrote (main process only). Registered by
    :func:`attach`; a failure to draw is logged as a warning and never stops training."""

    def __init__(self, trainer):
        self.trainer = trainer
        self._logged: int | None = None

    def _targets(self) -> tuple[Any, Any]:
        tb = wb = None
        for cb in self.trainer.callback_handler.callbacks:
            name = type(cb).__name__
            if name == "TensorBoardCallback" and getattr(cb, "tb_writer", None) is not None:
                tb = cb.tb_writer
            elif name == "WandbCallback" and getattr(cb, "_initialized", False):
                wb = getattr(cb, "_wandb", None)
                wb = wb if wb is not None and getattr(wb, "run", None) is not None else None
        return tb, wb

    def on_epoch_end(self, args, state, control, **kwargs):
        trainer = self.trainer
        written = trainer.epochs_written
        if not written or written[-1] == self._logged or not trainer.is_world_process_zero():
            return
        self._logged = written[-1]
        tb, wb = self._targets()
        if tb is None and wb is None:
            return
        try:
            epochs = log_epoch_map(_LiveRun(trainer.writer.run_dir, trainer.dynamics_dir), tb_writer=tb, wandb=wb)
            logger.info("logged the data map of %d epoch(s) to %s", epochs,
                        " and ".join(n for n, t in (("TensorBoard", tb), ("W&B", wb)) if t is not None))
        except Exception as exc:  # noqa: BLE001 - a picture must never cost a training run
            logger.warning("could not log the data map after epoch %d: %s", written[-1] + 1,
                           " ".join(str(exc).split())[:300])


def wants_live_map(report_to) -> bool:
    """Whether ``TrainingArguments.report_to`` (a list, or a string) names a tracker that gets the map."""
    names = [report_to] if isinstance(report_to, str) else list(report_to or [])
    return any(n in TRACKERS or n == "all" for n in names)


def attach(trainer) -> None:
    """Register :class:`LiveDataMap` on ``trainer`` when its ``report_to`` names TensorBoard or W&B (called by
    :class:`~training_dynamics.core.recorder.DynamicsTrainer` itself, after its recording callback)."""
    if wants_live_map(trainer.args.report_to):
        trainer.add_callback(LiveDataMap(trainer))
