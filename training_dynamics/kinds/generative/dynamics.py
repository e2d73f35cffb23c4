"""A generative run's epoch files, as its recorder writes them: the values per example and, for conversations,
per assistant turn (``docs/design.md``, "Files"); and what the turns say (the least confident one)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from training_dynamics.core.dynamics_file import (GENERATIVE_VALUES, TURN_PREFIX, DynamicsError, _json_ids, epoch_path,
                                                  list_epoch_files)
from training_dynamics.core.fileio import atomic_write
from training_dynamics.core.ids import as_guids


def write_generative_epoch(dy_dir: str | os.PathLike, epoch: int, guids: np.ndarray, values: np.ndarray, *,
                           turns: np.ndarray | None = None, device: str = "cpu", fmt: str = "jsonl") -> Path:
    """Write one epoch of a generative run atomically: ``values`` (N, 3) in :data:`~training_dynamics.core.dynamics_file.GENERATIVE_VALUES` order.

    ``turns`` (N, K, 3): the same values of each assistant turn of a conversation (``num_tokens`` 0: the
    example has fewer turns), written beside the example's own values -- jsonl ``"turns_epoch_<e>": [[logprob,
    token_accuracy, num_tokens], ...]`` (its turns only), npz ``turn_<value>`` arrays (N, K) -- which the
    readers of the example's values ignore (:func:`read_turns` reads them).
    """
    guids = as_guids(guids)
    values = np.asarray(values, dtype=np.float32)
    if values.shape != (len(guids), len(GENERATIVE_VALUES)):
        raise ValueError(f"values {values.shape} must be (N, {len(GENERATIVE_VALUES)}) for {len(guids)} guids")
    if turns is not None:
        turns = np.asarray(turns, dtype=np.float32)
        if turns.ndim != 3 or turns.shape[0] != len(guids) or turns.shape[2] != len(GENERATIVE_VALUES):
            raise ValueError(f"turns {turns.shape} must be (N, K, {len(GENERATIVE_VALUES)}) for {len(guids)} guids")
    path = epoch_path(dy_dir, epoch, fmt)
    n_tokens = np.rint(values[:, -1]).astype(np.int64)
    if fmt == "npz":
        extra = {} if turns is None else {f"{TURN_PREFIX}{k}": turns[..., i] for i, k in enumerate(GENERATIVE_VALUES)}
        with atomic_write(path, "wb") as fh:
            np.savez(fh, guid=guids, **{k: values[:, i] for i, k in enumerate(GENERATIVE_VALUES[:-1])},
                     num_tokens=n_tokens, **extra)
        return path
    keys = [json.dumps(f"{k}_epoch_{epoch}") for k in GENERATIVE_VALUES[:-1]]
    dev = json.dumps(device)
    if turns is None:
        per_turn = [""] * len(guids)
    else:
        tkey = json.dumps(f"turns_epoch_{epoch}")
        per_turn = [f"{tkey}: {json.dumps([[a, b, int(round(n))] for a, b, n in t if n > 0])}, " for t in turns.tolist()]
    with atomic_write(path) as fh:
        fh.writelines(
            "{" + f'"guid": {g}, ' + "".join(f"{k}: {json.dumps(v)}, " for k, v in zip(keys, row)) +
            f'"num_tokens": {n}, {t}"device": {dev}}}\n'
            for g, row, n, t in zip(_json_ids(guids), values[:, :-1].tolist(), n_tokens.tolist(), per_turn))
    return path


def read_turns(dy_dir: str | os.PathLike, guids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """The per-turn values of a conversational run (written by :func:`write_generative_epoch`), or ``None``
    when its epoch files hold none: ``(guids (N,), turns (N, E, K, 3))`` in :data:`~training_dynamics.core.dynamics_file.GENERATIVE_VALUES` order,
    ``num_tokens`` 0 where an example has fewer than K turns; rows in the order of ``guids`` when given
    (every one must be recorded), else of the first epoch file.

    Raises:
        DynamicsError: an epoch file without per-turn values while another has them, or a guid not recorded.
    """
    paths = list_epoch_files(dy_dir)
    per_epoch = []
    for e, path in enumerate(paths):
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                if f"{TURN_PREFIX}logprob" not in z.files:
                    per_epoch.append(None)
                    continue
                g = as_guids(z["guid"])
                t = np.stack([np.asarray(z[f"{TURN_PREFIX}{k}"], np.float64) for k in GENERATIVE_VALUES], axis=-1)
        else:
            key, g, lists = f"turns_epoch_{e}", [], []
            with open(path, "rb") as fh:
                for line in fh:
                    if line.strip():
                        rec = json.loads(line)
                        g.append(rec["guid"])
                        lists.append(rec.get(key))
            if all(x is None for x in lists):
                per_epoch.append(None)
                continue
            k = max(len(x or ()) for x in lists)
            t = np.zeros((len(lists), k, len(GENERATIVE_VALUES)))
            for r, x in enumerate(lists):
                if x:
                    t[r, :len(x)] = x
            g = as_guids(g)
        per_epoch.append((g, t))
    if not per_epoch or all(x is None for x in per_epoch):
        return None
    if any(x is None for x in per_epoch):
        e = next(i for i, x in enumerate(per_epoch) if x is None)
        raise DynamicsError(f"{paths[e]}: holds no per-turn values, but other epochs of the run do")
    want = as_guids(guids) if guids is not None else per_epoch[0][0]
    k = max(t.shape[1] for _, t in per_epoch)
    out = np.zeros((len(want), len(per_epoch), k, len(GENERATIVE_VALUES)))
    for e, (g, t) in enumerate(per_epoch):
        order = np.argsort(g, kind="stable")
        pos = np.searchsorted(g[order], want)
        pos = np.minimum(pos, len(g) - 1)
        found = g[order][pos] == want
        if not found.all():
            raise DynamicsError(f"{paths[e]}: guid {want[~found][0]} has no per-turn values")
        out[:, e, :t.shape[1]] = t[order[pos]]
    return want, out


def worst_turn(turns: np.ndarray, *, burn_out: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The least confident assistant turn of each conversation.

    Args:
        turns: (N, E, K, 3) per-turn values (:data:`GENERATIVE_VALUES` order; ``num_tokens``
            0 where an example has fewer than K turns), as :func:`read_turns` returns them.
        burn_out: use the first ``burn_out`` epochs (default all).
    Returns:
        ``(turn (N,), confidence (N,))``: the 1-based number of the turn with the lowest confidence
        (mean over the epochs of exp(mean token log-probability) of the turn; ties: the first) and that
        confidence.
    """
    t = np.asarray(turns, dtype=np.float64)[:, :burn_out]
    conf = np.exp(t[..., 0]).mean(axis=1)  # (N, K)
    present = (t[..., 2] > 0).any(axis=1)
    conf = np.where(present, conf, np.inf)
    k = conf.argmin(axis=1)
    return k + 1, conf[np.arange(len(k)), k]


def worst_turns(run, guids: np.ndarray, burn_out: int | None) -> dict[str, np.ndarray]:
    """``worst_turn`` (1-based, as the shown conversation numbers its assistant turns) and
    ``worst_turn_confidence`` of a run with per-turn values (conversations); nothing when it has none."""
    found = read_turns(run.dynamics_dir, guids)
    if found is None:
        return {}
    turn, conf = worst_turn(found[1], burn_out=burn_out)
    return {"worst_turn": turn, "worst_turn_confidence": conf}
