"""Held-out evidence beside the in-sample dynamics: the files of a cross-fitted run, and how find-issues uses them.

A cross-fitted run (issue 27: ``record --cross_fit 2``, the recording side is not built yet) trains one
model on each half of the rows and, after every epoch, scores the *other* half in eval mode. Each
example then has per-epoch held-out probabilities, stored in the run's dynamics folder as
``heldout_epoch_<e>.npz`` (``guid`` (N,), ``probabilities`` (N, C), every example exactly once per epoch;
:func:`write_heldout_epoch`, :func:`read_heldout`).

When a run has them, ``find-issues --source dynamics`` takes the *count* of wrong labels from the held-out
probabilities of the last held-out epoch (confident learning's assumption, out-of-sample probabilities,
holds there; in-sample epochs need the count window of :func:`decision.choose_count_epochs`), judges
whether that count is supported on the same probabilities (:mod:`training_dynamics.evidence`), and
compares the held-out ranking (``1 - held-out confidence``) with the dynamics' (:mod:`agreement`).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np

from . import fileio
from .errors import TrainingDynamicsError

logger = logging.getLogger(__name__)

HELDOUT_RE = re.compile(r"heldout_epoch_(\d+)\.npz")


class HeldoutError(TrainingDynamicsError):
    """Held-out files that do not belong to the run (other examples, a gap, a repeat)."""


def heldout_path(dy_dir: str | os.PathLike, epoch: int) -> Path:
    return Path(dy_dir) / f"heldout_epoch_{int(epoch)}.npz"


def write_heldout_epoch(dy_dir: str | os.PathLike, epoch: int, guids: np.ndarray, probabilities: np.ndarray) -> Path:
    """Write one epoch's held-out probabilities atomically: ``guids`` (N,), ``probabilities`` (N, C) rows summing to 1."""
    guids = np.asarray(guids)
    probabilities = np.asarray(probabilities, dtype=np.float32)
    if probabilities.ndim != 2 or len(probabilities) != len(guids):
        raise ValueError(f"probabilities {probabilities.shape} must be (N, C) for {len(guids)} guids")
    if len(np.unique(guids)) != len(guids):
        raise ValueError("a held-out epoch holds every example exactly once; guids repeat")
    path = heldout_path(dy_dir, epoch)
    with fileio.atomic_write(path, "wb") as fh:
        np.savez(fh, guid=guids, probabilities=probabilities)
    return path


def heldout_epochs(dy_dir: str | os.PathLike) -> list[Path]:
    """The held-out files of a dynamics folder in epoch order (``[]`` when it has none); a gap is an error."""
    dy_dir = Path(dy_dir)
    if not dy_dir.is_dir():
        return []
    found = {int(m.group(1)): p for p in dy_dir.iterdir() if (m := HELDOUT_RE.fullmatch(p.name))}
    if found and sorted(found) != list(range(len(found))):
        raise HeldoutError(f"{dy_dir}: held-out epochs {sorted(found)} are not 0..{len(found) - 1}; record the run again")
    return [found[e] for e in range(len(found))]


def read_heldout(dy_dir: str | os.PathLike, guids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """``(guids (N,), probabilities (N, E, C))`` of a run's held-out files, every epoch aligned to the first's
    guids (or to ``guids``, the run's examples, which they must cover exactly); ``None`` when there are none."""
    files = heldout_epochs(dy_dir)
    if not files:
        return None
    per_epoch = []
    ref = None
    for path in files:
        with np.load(path, allow_pickle=False) as z:
            g, p = np.asarray(z["guid"]), np.asarray(z["probabilities"], dtype=np.float64)
        if len(np.unique(g)) != len(g):
            raise HeldoutError(f"{path}: a guid appears twice; every example is scored once per epoch")
        want = ref if ref is not None else (np.asarray(guids) if guids is not None else g)
        if len(g) != len(want) or not np.array_equal(np.sort(g), np.sort(want)):
            missing = np.setdiff1d(want, g)
            raise HeldoutError(f"{path}: not the run's examples ({len(g)} held-out vs {len(want)}"
                               f"{f'; guid {missing[0]} missing' if len(missing) else ''}); record the run again")
        order = np.argsort(g, kind="stable")
        per_epoch.append(p[order[np.searchsorted(g, want, sorter=order)]])
        ref = want
    return ref, np.stack(per_epoch, axis=1)


def heldout_count_probabilities(run, *, burn_out: int | None = None):
    """``(guids, probabilities (N, C), details)`` for ``rank_count``'s count from a run's held-out files: the last
    held-out epoch (within ``burn_out``); ``None`` when the run has none."""
    dyn = run.dynamics(progress=False)
    found = read_heldout(run.dynamics_dir, dyn.guids)
    if found is None:
        return None
    guids, probs = found
    last = probs.shape[1] - 1 if burn_out is None else min(burn_out, probs.shape[1]) - 1
    order = np.argsort(dyn.guids, kind="stable")
    gold = np.asarray(dyn.gold)[order[np.searchsorted(dyn.guids, guids, sorter=order)]]
    accuracy = [float((probs[:, e].argmax(axis=1) == gold).mean()) for e in range(probs.shape[1])]
    details = {"count_source": "held-out", "count_heldout_epoch": last,
               "heldout_accuracy": [round(a, 4) for a in accuracy]}
    logger.info("rank_count counts from the held-out probabilities of epoch %d (held-out accuracy per epoch %s)", last,
                ", ".join(f"{a:.2f}" for a in accuracy))
    return guids, probs[:, last], details


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

    from .binding import bind
    from .data import tokenize
    from .record import DynamicsTrainer
    from .run_writer import RunWriter
    from .train import build_trainer, check_outputs, check_training_length, run_dir

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

    from .metrics import log_softmax

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
    from . import dynamics_file
    from .run import Run

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
