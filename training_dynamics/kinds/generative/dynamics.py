"""A generative run's epoch files, as its recorder writes them: the values per example and, for conversations,
per assistant turn (``docs/design.md``, "Files"); and what the turns say (the least confident one)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from training_dynamics.core.dynamics_file import (DynamicsError, EpochLayout, _EpochRows, _json_ids, epoch_path,
                                                  list_epoch_files)
from training_dynamics.core.kind import register_layout
from training_dynamics.core.fileio import atomic_write, loads_line
from training_dynamics.core.ids import as_guids
from training_dynamics.kinds.generative.data import KIND

#: what a generative run records per example and epoch, over the response tokens: mean log-probability
#: of the gold token, share of tokens whose greedy argmax is the gold token; and the number of tokens
GENERATIVE_VALUES = ("logprob", "token_accuracy", "num_tokens")
TURN_PREFIX = "turn_"  #: npz arrays of a conversational run's per-turn values: turn_logprob, ...




def _is_generative(path: Path, epoch: int) -> bool:
    """Whether an epoch file holds a generative run's values (it names ``logprob``) rather than logits."""
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                return "logprob" in z.files
        except Exception:
            return False  # the logits reader names the damage
    with open(path, "rb") as fh:
        for line in fh:
            if line.strip():
                return f'"logprob_epoch_{epoch}"'.encode() in line
    return False


def _read_generative(path: Path, epoch: int) -> _EpochRows:
    """A generative epoch file as rows whose "logits" are the (N, 3) values and whose gold is 0."""
    names = [f"{k}_epoch_{epoch}" for k in GENERATIVE_VALUES[:-1]] + ["num_tokens"]
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                missing = [k for k in ("guid", *GENERATIVE_VALUES) if k not in z.files]
                if missing:
                    raise DynamicsError(f"{path}: no array {missing[0]!r} (arrays: {', '.join(z.files)})")
                guids = as_guids(z["guid"], where=f"{path}: guid")
                values = np.stack([np.asarray(z[k], dtype=np.float64) for k in GENERATIVE_VALUES], axis=1)
        except DynamicsError:
            raise
        except Exception as exc:
            raise DynamicsError(f"{path}: not a readable .npz file of a generative run: {exc}") from None
        rows = _EpochRows(path, epoch, guids, values, np.zeros(len(guids), np.int64))
    else:
        guids_l, values_l = [], []
        with open(path, "rb") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                rec = loads_line(line, where=f"{path}: line {lineno}", error=DynamicsError)
                missing = [k for k in ("guid", *names) if not isinstance(rec, dict) or k not in rec]
                if missing:
                    raise DynamicsError(f"{path}: line {lineno}: no {missing[0]!r}")
                vals = [rec[k] for k in names]
                if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
                    raise DynamicsError(f"{path}: line {lineno} (guid {rec['guid']}): values must be numbers, got {vals}")
                guids_l.append(rec["guid"])
                values_l.append(vals)
        try:
            guids = as_guids(guids_l, where=f"{path}: guid") if guids_l else np.zeros(0, np.int64)
        except ValueError as exc:
            raise DynamicsError(str(exc)) from None
        values = np.asarray(values_l, dtype=np.float64).reshape(len(values_l), len(GENERATIVE_VALUES))
        rows = _EpochRows(path, epoch, guids, values, np.zeros(len(guids), np.int64))
    if len(values):
        bad = np.flatnonzero(~np.isfinite(values).all(axis=1))
        if bad.size:
            raise rows.fail(bad[0], f"values are not finite: {values[bad[0]].tolist()}")
        checks = ((values[:, 0] > 1e-6, "logprob is positive (a log-probability is <= 0)"),
                  ((values[:, 1] < 0) | (values[:, 1] > 1), "token_accuracy is outside 0..1"),
                  ((values[:, -1] < 1) | (values[:, -1] != np.rint(values[:, -1])), "num_tokens is not a whole number >= 1"))
        for bad_rows, what in checks:
            if bad_rows.any():
                r = int(np.flatnonzero(bad_rows)[0])
                raise rows.fail(r, f"{what}: {dict(zip(GENERATIVE_VALUES, values[r].tolist()))}")
    return rows




def pseudo_logits(logprob: np.ndarray) -> np.ndarray:
    """(..., 2) two-class logits ``[log p, log(1 - p)]`` for mean token log-probabilities ``logprob``
    (softmax gives back ``[p, 1 - p]``; ``1 - p`` is floored at 1e-300 so that they stay finite)."""
    logprob = np.minimum(np.asarray(logprob, dtype=np.float64), 0.0)
    return np.stack([logprob, np.log(np.maximum(-np.expm1(logprob), 1e-300))], axis=-1)



CORRECT_TOKEN_ACCURACY = 0.9  #: a generative epoch is correct when at least this share of its tokens is


def generative_per_epoch(values: np.ndarray) -> dict[str, np.ndarray]:
    """What each epoch says about each response, from its (..., 3) values (no logits needed): ``logp_gold`` =
    the mean token log-probability (p_e = its exp), ``pred`` 0 (correct) when the token accuracy is at least
    :data:`CORRECT_TOKEN_ACCURACY`, ``margin`` = log p_e - log(1 - p_e), ``el2n`` = sqrt(2) (1 - p_e) and the
    ``token_accuracy`` itself (docs/metrics.md, "Generative runs")."""
    values = np.asarray(values, dtype=np.float64)
    logp = np.minimum(values[..., 0], 0.0)
    rest = np.maximum(-np.expm1(logp), 1e-300)  # 1 - p_e
    return {"logp_gold": logp, "pred": np.where(values[..., 1] >= CORRECT_TOKEN_ACCURACY, 0, 1).astype(np.int64),
            "margin": logp - np.log(rest), "el2n": np.sqrt(2.0) * rest, "token_accuracy": values[..., 1]}


class GenerativeLayout(EpochLayout):
    """A generative run's epoch files: per example, the mean token log-probability of the response, the token
    accuracy and the number of tokens (:data:`GENERATIVE_VALUES`), not logits; one "class" (the response)."""

    name = "generative"
    kind = KIND
    description = "a generative run's values"
    mean_columns = ("token_accuracy",)

    def holds(self, path: Path, epoch: int) -> bool:
        return _is_generative(path, epoch)

    def read(self, path: Path, epoch: int) -> _EpochRows:
        return _read_generative(path, epoch)

    def finish(self, stacked: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Two-class stand-ins ``[log p_e, log(1 - p_e)]`` (gold 0, "the response") for code that reads
        probabilities; the values themselves beside them."""
        return pseudo_logits(stacked[..., 0]), stacked

    def num_classes(self, width: int) -> int:
        return 2

    def per_row(self, x: np.ndarray, gold: np.ndarray) -> dict[str, np.ndarray]:
        return generative_per_epoch(x)

    def per_epoch(self, stacked: np.ndarray, gold: np.ndarray) -> dict[str, np.ndarray]:
        return generative_per_epoch(stacked)

    def constant_columns(self, first: np.ndarray) -> dict[str, np.ndarray]:
        """``num_tokens``: the response's length in tokens (the same every epoch)."""
        return {"num_tokens": np.rint(np.asarray(first)[..., -1]).astype(np.int64)}


LAYOUT = register_layout(GenerativeLayout())  # (the kind registers it too, when the registry loads it)


def write_generative_epoch(dy_dir: str | os.PathLike, epoch: int, guids: np.ndarray, values: np.ndarray, *,
                           turns: np.ndarray | None = None, device: str = "cpu", fmt: str = "jsonl") -> Path:
    """Write one epoch of a generative run atomically: ``values`` (N, 3) in :data:`GENERATIVE_VALUES` order.

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
    when its epoch files hold none: ``(guids (N,), turns (N, E, K, 3))`` in :data:`GENERATIVE_VALUES` order,
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
