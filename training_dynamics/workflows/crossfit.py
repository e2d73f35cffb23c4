"""``record --cross_fit 2``: one model per half of the rows, each scoring the other half after every epoch, in one
run folder (the held-out files: :mod:`training_dynamics.core.heldout`)."""

from __future__ import annotations

import logging

import numpy as np
from pathlib import Path

from training_dynamics.core import fileio
from training_dynamics.core.errors import TrainingDynamicsError
from training_dynamics.core.heldout import (HeldoutError, heldout_count_probabilities, heldout_epochs,  # noqa: F401
                                            heldout_path, read_heldout, write_heldout_epoch)

logger = logging.getLogger(__name__)


# -- recording: record --cross_fit 2 (classification) ---------------------------------------------
def fold_of(guids: np.ndarray, *, seed: int, folds: int = 2) -> np.ndarray:
    """(N,) the fold of each example: a seeded hash of its guid (stable under row order and added rows)."""
    import hashlib

    return np.array([hashlib.sha256(f"{seed}:{g}".encode()).digest()[0] % folds for g in np.asarray(guids).tolist()],
                    dtype=np.int64)


def record_cross_fit(model_args, data_args, dy_args, training_args, *, data, folds: int = 2, builder=None) -> None:
    """``record --cross_fit 2`` (and ``record-ner``): one model per half of the rows (by :func:`fold_of`), trained
    with the user's settings (so the two together take the gradient steps of one run over all rows); after every
    epoch each scores the *other* half in eval mode (the kind's :meth:`~training_dynamics.core.kind.Kind.heldout_scorer`).
    The run folder then holds, as one run, the in-sample epoch files of every example (from the model of its
    half), ``heldout_epoch_<e>.npz`` and the binding of all rows; the meta says ``cross_fit``. Each half's model
    goes to ``--output_dir/half_<k>``. ``builder``: the kind's trainer builder (default: classification's).

    Not supported yet (one-line errors): resuming, several processes (DDP), ``--max_steps``, kinds without a
    held-out scorer."""
    from dataclasses import replace

    from training_dynamics.core import kind as kinds
    from training_dynamics.core.binding import bind
    from training_dynamics.core.run_writer import RunWriter
    from training_dynamics.workflows.train import build_trainer, check_outputs, check_training_length, run_dir

    builder = builder or build_trainer
    if folds != 2:
        raise TrainingDynamicsError(f"--cross_fit {folds}: only --cross_fit 2 is supported")
    if training_args.resume_from_checkpoint:
        raise TrainingDynamicsError("--cross_fit 2 cannot resume yet; record the run again without "
                                    "--resume_from_checkpoint")
    if training_args.world_size > 1:
        raise TrainingDynamicsError("--cross_fit 2 runs in one process for now; launch it without torchrun/accelerate")
    if training_args.max_steps and training_args.max_steps > 0:
        raise TrainingDynamicsError("--cross_fit 2 needs whole epochs; use --num_train_epochs, not --max_steps")
    check_training_length(training_args)
    check_outputs(model_args, data_args, dy_args, training_args)
    guids = np.asarray(data.train["guid"])
    fold = fold_of(guids, seed=training_args.seed)
    if min(np.bincount(fold, minlength=folds)) == 0:
        raise TrainingDynamicsError(f"--cross_fit 2 needs examples in both halves; {len(guids)} example(s) are too few")
    main_dir = run_dir(data_args, model_args, dy_args)
    writer = RunWriter(main_dir)
    writer.acquire()
    try:
        writer.check_new(overwrite=dy_args.overwrite_dynamics)
        halves = []
        for k in range(folds):
            mine = set(guids[fold == k].tolist())
            args_k = replace(training_args, output_dir=str(Path(training_args.output_dir) / f"half_{k}"))
            trainer = builder(model_args, data_args, dy_args, args_k, data=data,
                              train_filter=lambda d, mine=mine: d.train.filter(lambda g: g in mine,
                                                                               input_columns="guid"))
            trainer.writer = RunWriter(Path(args_k.output_dir) / "run")
            trainer.dynamics_dir = trainer.writer.dynamics_dir
            trainer.overwrite_dynamics = True
            other = data.train.filter(lambda g, mine=mine: g not in mine, input_columns="guid")
            scorer = _ScoreOtherHalf(kinds.of_meta(trainer.dynamics_meta).heldout_scorer(trainer, other, data))
            trainer.add_callback(scorer)
            logger.info("--cross_fit 2: half %d trains on %d examples and scores the other %d after every epoch", k,
                        len(mine), len(other))
            trainer.train()
            trainer.save_model()
            halves.append((trainer, scorer))
        _assemble(writer, halves, bind(data), folds=folds, seed=training_args.seed)
    finally:
        writer.release()


def _ScoreOtherHalf(score):
    """A TrainerCallback that calls ``score()`` (a kind's held-out scorer) after every epoch and keeps what it
    returns in ``.scores`` (one ``(keys, probabilities)`` per epoch)."""
    from transformers import TrainerCallback

    class ScoreOtherHalf(TrainerCallback):
        def __init__(self):
            self.scores: list[tuple[dict, np.ndarray]] = []

        def on_epoch_end(self, args, state, control, **kwargs):
            self.scores.append(score())

    return ScoreOtherHalf()


def _assemble(writer, halves, binding, *, folds: int, seed: int) -> None:
    """Write the run folder of a cross-fitted run from its halves (through ``writer``: staged, then swapped in):
    each epoch's files of the halves joined (kind-agnostic), and their held-out scores."""
    from training_dynamics.core import dynamics_file
    from training_dynamics.core import kind as kinds
    from training_dynamics.core.data import merge_truncation_reports

    files = [dynamics_file.list_epoch_files(t.writer.dynamics_dir) for t, _ in halves]
    epochs = min(min(len(f) for f in files), min(len(s.scores) for _, s in halves))
    staged = writer.begin_new()
    binding.write(staged)
    for e in range(epochs):
        dynamics_file.concat_epoch_files([f[e] for f in files], staged / files[0][e].name)
        keys = [s.scores[e][0] for _, s in halves]
        write_heldout_epoch(staged, e, np.concatenate([k["guid"] for k in keys]),
                            np.concatenate([s.scores[e][1] for _, s in halves]),
                            keys={name: np.concatenate([k[name] for k in keys]) for name in keys[0] if name != "guid"})
    metas = [dynamics_file.read_meta(t.writer.dynamics_dir) for t, _ in halves]
    counts = kinds.of_meta(metas[0]).meta_counts
    meta = {**metas[0], **{c: int(sum(m[c] for m in metas)) for c in counts if c in metas[0]},
            "epochs_completed": epochs,
            "cross_fit": {"folds": folds, "seed": seed, "fold_sizes": [int(len(t.train_dataset)) for t, _ in halves],
                          "heldout_files": [heldout_path(writer.dynamics_dir, e).name for e in range(epochs)],
                          "half_runs": [str(t.writer.run_dir) for t, _ in halves]}}
    if isinstance(meta.get("truncation"), dict):  # the cut of all rows
        meta["truncation"] = merge_truncation_reports([m["truncation"] for m in metas])
    fileio.write_json(staged / dynamics_file.META_NAME, meta)
    writer.epoch_complete()
    logger.info("--cross_fit 2: wrote %d epoch(s) of in-sample and held-out probabilities of %s examples to %s",
                epochs, sum(meta["cross_fit"]["fold_sizes"]), writer.dynamics_dir)
