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


def record_cross_fit(model_args, data_args, dy_args, training_args, *, data, folds: int = 2) -> None:
    """``record --cross_fit 2``: one model per half of the rows (by :func:`fold_of`), trained with the user's
    settings (so the two together take the gradient steps of one run over all rows); after every epoch each
    scores the *other* half in eval mode. The run folder then holds, as one run, the in-sample epoch files of
    every example (from the model of its half), ``heldout_epoch_<e>.npz`` and the binding of all rows; the meta
    says ``cross_fit``. Each half's model goes to ``--output_dir/half_<k>``.

    Not supported yet (one-line errors): resuming, several processes (DDP), ``--max_steps``."""
    from dataclasses import replace

    from training_dynamics.core.binding import bind
    from training_dynamics.core.data import tokenize
    from training_dynamics.core.recorder import DynamicsTrainer
    from training_dynamics.core.run_writer import RunWriter
    from training_dynamics.workflows.train import build_trainer, check_outputs, check_training_length, run_dir

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
            half_dir = Path(args_k.output_dir) / "run"
            trainer = build_trainer(model_args, data_args, dy_args, args_k, data=data,
                                    train_filter=lambda d, mine=mine: d.train.filter(lambda g: g in mine,
                                                                                     input_columns="guid"))
            trainer.writer = RunWriter(half_dir)
            trainer.dynamics_dir = trainer.writer.dynamics_dir
            trainer.overwrite_dynamics = True
            other = data.train.filter(lambda g, mine=mine: g not in mine, input_columns="guid")
            other_tok = tokenize(other, trainer.processing_class, data.text_columns, data_args.max_seq_length,
                                 truncation=getattr(data_args, "truncation", "head"))
            scorer = _ScoreOtherHalf(trainer, other_tok.remove_columns([c for c in ("guid", "num_tokens")
                                                                        if c in other_tok.column_names]),
                                     np.asarray(other["guid"]))
            trainer.add_callback(scorer)
            logger.info("--cross_fit 2: half %d trains on %d examples and scores the other %d after every epoch", k,
                        len(mine), len(other))
            trainer.train()
            trainer.save_model()
            halves.append((trainer, scorer))
        _assemble(writer, data, halves, bind(data), fmt=dy_args.td_format, folds=folds, seed=training_args.seed)
    finally:
        writer.release()


def _ScoreOtherHalf(trainer, dataset, guids: np.ndarray):
    """A TrainerCallback that, after every epoch, scores the other half (``dataset``, rows ``guids``) in eval mode
    (``Trainer.predict``: no grad; the next training step puts the model back in train mode) and keeps the
    probabilities in ``.probabilities`` (one (M, C) array per epoch)."""
    from transformers import TrainerCallback

    from training_dynamics.analysis.metrics import log_softmax

    class ScoreOtherHalf(TrainerCallback):
        def __init__(self):
            self.guids = guids
            self.probabilities: list[np.ndarray] = []

        def on_epoch_end(self, args, state, control, **kwargs):
            logits = np.asarray(trainer.predict(dataset, metric_key_prefix="heldout").predictions, dtype=np.float64)
            self.probabilities.append(np.exp(log_softmax(logits)))

    return ScoreOtherHalf()


def _assemble(writer, data, halves, binding, *, fmt: str, folds: int, seed: int) -> None:
    """Write the run folder of a cross-fitted run from its halves (through ``writer``: staged, then swapped in)."""
    from training_dynamics.core import dynamics_file
    from training_dynamics.analysis.run import Run

    dyns = [Run(t.writer.run_dir).dynamics(progress=False) for t, _ in halves]
    epochs = min(min(d.num_epochs for d in dyns), min(len(s.probabilities) for _, s in halves))
    staged = writer.begin_new()
    binding.write(staged)
    for e in range(epochs):
        dynamics_file.write_epoch(staged, e, np.concatenate([d.guids for d in dyns]),
                                  np.concatenate([d.logits[:, e] for d in dyns]).astype(np.float32),
                                  np.concatenate([d.gold for d in dyns]), fmt=fmt)
        write_heldout_epoch(staged, e, np.concatenate([s.guids for _, s in halves]),
                            np.concatenate([s.probabilities[e] for _, s in halves]))
    meta = {**dynamics_file.read_meta(halves[0][0].writer.dynamics_dir), "num_examples": int(sum(len(d.guids) for d in dyns)),
            "epochs_completed": epochs,
            "cross_fit": {"folds": folds, "seed": seed, "fold_sizes": [int(len(d.guids)) for d in dyns],
                          "heldout_files": [heldout_path(writer.dynamics_dir, e).name for e in range(epochs)],
                          "half_runs": [str(t.writer.run_dir) for t, _ in halves]}}
    fileio.write_json(staged / dynamics_file.META_NAME, meta)
    writer.epoch_complete()
    logger.info("--cross_fit 2: wrote %d epoch(s) of in-sample and held-out probabilities of %d examples to %s",
                epochs, meta["num_examples"], writer.dynamics_dir)
