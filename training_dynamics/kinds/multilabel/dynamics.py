"""The epoch files of a multi-label run: write, read and validate (jsonl and npz).

One row per example with per-label arrays (K labels, in the meta's ``label_names`` order)::

    {"guid": 7, "given": [1, 0, 0, 1], "logprob_epoch_0": [-0.1, -0.02, -2.3, -0.4],
     "margin_epoch_0": [2.2, 3.9, -2.2, 0.7], "device": "cpu"}

``given``: whether the example carries each label; per label and epoch, reduced on the device from
the logit ``z`` with ``s = +1`` (carried) or ``-1`` (not):

==============  ===========================================================================
``logprob``     log p(given value) = log sigmoid(s z): ``log p`` when carried, ``log(1 - p)`` when not
``margin``      s z: the given value's logit margin (for AUM; the binary view's ``z[given] - z[other]``)
==============  ===========================================================================

``.npz``: ``guid`` (N,), ``given`` (N, K) int8, ``logprob`` and ``margin`` (N, K) float32. The meta
says ``"kind": "multi_label"``. Every problem is a one-line :class:`DynamicsError`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from training_dynamics.core.dynamics_file import DynamicsError, as_guids, epoch_path, list_epoch_files, read_meta
from training_dynamics.core.fileio import atomic_write, file_stat

VALUES = ("logprob", "margin")  #: what is recorded per (example, label) and epoch


def _json_ids(guids: np.ndarray) -> list[str]:
    if guids.dtype.kind in "iu":
        return [str(g) for g in guids.tolist()]
    return [json.dumps(g, ensure_ascii=False) for g in guids.tolist()]


def write_epoch(dy_dir: str | os.PathLike, epoch: int, guids: np.ndarray, given: np.ndarray, logprob: np.ndarray,
                margin: np.ndarray, *, device: str = "cpu", fmt: str = "jsonl") -> Path:
    """Write one epoch atomically: ``guids`` (N,), ``given`` (N, K) 0/1, ``logprob`` and ``margin`` (N, K)."""
    guids = as_guids(guids)
    given = np.asarray(given, dtype=np.int8)
    logprob = np.asarray(logprob, dtype=np.float32)
    margin = np.asarray(margin, dtype=np.float32)
    if given.ndim != 2 or given.shape[0] != len(guids) or logprob.shape != given.shape or margin.shape != given.shape:
        raise ValueError(f"shapes disagree: guids {guids.shape}, given {given.shape}, logprob {logprob.shape}, "
                         f"margin {margin.shape}")
    path = epoch_path(dy_dir, epoch, fmt)
    if fmt == "npz":
        with atomic_write(path, "wb") as fh:
            np.savez(fh, guid=guids, given=given, logprob=logprob, margin=margin)
        return path
    dev = json.dumps(device)
    g, lp, mg = given.tolist(), logprob.tolist(), margin.tolist()
    with atomic_write(path) as fh:
        for i, key in enumerate(_json_ids(guids)):
            fh.write(f'{{"guid": {key}, "given": {json.dumps(g[i])}, "logprob_epoch_{epoch}": {json.dumps(lp[i])}, '
                     f'"margin_epoch_{epoch}": {json.dumps(mg[i])}, "device": {dev}}}\n')
    return path


@dataclass
class MultiLabelDynamics:
    """All recorded epochs of a multi-label run.

    Attributes:
        guids: (N,) example ids in the order of the first epoch file.
        given: (N, K) int8: which labels each example carries.
        logprob, margin: (N, K, E) float64 (see :data:`VALUES`).
    """

    guids: np.ndarray
    given: np.ndarray
    logprob: np.ndarray
    margin: np.ndarray
    dy_dir: Path
    meta: dict = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    sources: list[dict] = field(default_factory=list)

    @property
    def num_examples(self) -> int:
        return len(self.guids)

    @property
    def num_labels(self) -> int:
        return int(self.given.shape[1])

    @property
    def num_epochs(self) -> int:
        return int(self.logprob.shape[2])

    @property
    def label_names(self) -> list[str]:
        names = self.meta.get("label_names")
        return [str(n) for n in names] if names else [str(k) for k in range(self.num_labels)]

    def pairs_per_epoch(self, epochs: int | None = None) -> dict[str, np.ndarray]:
        """``{logp_gold, pred, margin, el2n}`` (N*K, E') of the first ``epochs``, one row per (example, label)
        in example-major order, as a binary classifier of the given value (class 1 = carried, class 0 = not):
        the input of :func:`training_dynamics.analysis.metrics.aggregate_epochs` with ``gold`` = :meth:`pair_gold`."""
        lp = self.logprob[:, :, :epochs].reshape(-1, self.logprob[:, :, :epochs].shape[2])
        m = self.margin[:, :, :epochs].reshape(lp.shape)
        g = self.pair_gold()[:, None]
        # the predicted value is the given one when its margin is positive (a tie, z = 0, goes to class 0: argmax)
        pred = np.where(m > 0, g, 1 - g)
        pred = np.where(m == 0, 0, pred)
        el2n = np.sqrt(2.0) * -np.expm1(lp)  # ||[1-p, p] - onehot||_2 = sqrt(2) (1 - p_given)
        return {"logp_gold": lp, "pred": pred.astype(np.int64), "margin": m, "el2n": el2n}

    def pair_gold(self) -> np.ndarray:
        """(N*K,) int64: the given value of every (example, label), example-major."""
        return self.given.reshape(-1).astype(np.int64)


def _read_epoch(path: Path, epoch: int) -> dict[str, np.ndarray]:
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                missing = [k for k in ("guid", "given", *VALUES) if k not in z.files]
                if missing:
                    raise DynamicsError(f"{path}: no array {missing[0]!r} (arrays: {', '.join(z.files)})")
                out = {k: np.asarray(z[k]) for k in ("guid", "given", *VALUES)}
        except DynamicsError:
            raise
        except Exception as exc:
            raise DynamicsError(f"{path}: not a readable .npz file of a multi-label run: {exc}") from None
        out["guid"] = as_guids(out["guid"], where=f"{path}: guid")
        return out
    keys = [f"{v}_epoch_{epoch}" for v in VALUES]
    guids, rows = [], {k: [] for k in ("given", *VALUES)}
    with open(path, "rb") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                raise DynamicsError(f"{path}: line {lineno}: invalid JSON"
                                    + ("" if line.endswith(b"\n") else " (truncated: was the recording interrupted?)")) from None
            missing = [k for k in ("guid", "given", *keys) if not isinstance(rec, dict) or k not in rec]
            if missing:
                raise DynamicsError(f"{path}: line {lineno}: no {missing[0]!r} (is this a multi-label run of epoch "
                                    f"{epoch}?)")
            guids.append(rec["guid"])
            for name, k in zip(("given", *VALUES), ("given", *keys)):
                rows[name].append(rec[k])
    if not guids:
        raise DynamicsError(f"{path}: no examples (empty file)")
    try:
        out = {"guid": as_guids(guids, where=f"{path}: guid"), "given": np.asarray(rows["given"], dtype=np.int8)}
        out |= {k: np.asarray(rows[k], dtype=np.float64) for k in VALUES}
    except (ValueError, TypeError) as exc:
        raise DynamicsError(f"{path}: the per-label lists differ in length ({exc})") from None
    return out


def _check(path: Path, rec: dict, num_labels: int | None) -> None:
    n = len(rec["guid"])
    if rec["given"].ndim != 2 or any(rec[k].shape != rec["given"].shape for k in VALUES) or rec["given"].shape[0] != n:
        raise DynamicsError(f"{path}: the per-label arrays differ in shape")
    if num_labels is not None and rec["given"].shape[1] != num_labels:
        raise DynamicsError(f"{path}: {rec['given'].shape[1]} labels per example, but the meta names {num_labels}")
    bad = np.flatnonzero(((rec["given"] != 0) & (rec["given"] != 1)).any(axis=1))
    if bad.size:
        raise DynamicsError(f"{path}: guid {rec['guid'][bad[0]]}: 'given' holds values other than 0 and 1")
    for k in VALUES:
        bad = np.flatnonzero(~np.isfinite(rec[k]).all(axis=1))
        if bad.size:
            raise DynamicsError(f"{path}: guid {rec['guid'][bad[0]]}: {k} is not finite")
    if len(np.unique(rec["guid"])) != n:
        raise DynamicsError(f"{path}: an example is recorded twice in this epoch")


def read_dynamics(dy_dir: str | os.PathLike) -> MultiLabelDynamics:
    """Read and validate every epoch file of a multi-label run (aligned by guid).

    Raises:
        DynamicsError: a missing epoch, a bad line, non-finite values, an example repeated, examples
            that differ between epochs, given labels that change.
    """
    dy_dir = Path(dy_dir)
    paths = list_epoch_files(dy_dir)
    meta = read_meta(dy_dir)
    k = len(meta["label_names"]) if isinstance(meta.get("label_names"), list) else None
    first, stacks = None, {v: [] for v in VALUES}
    for e, path in enumerate(paths):
        rec = _read_epoch(path, e)
        _check(path, rec, k)
        if first is None:
            first = rec
        elif not np.array_equal(rec["guid"], first["guid"]):
            if not np.array_equal(np.sort(rec["guid"]), np.sort(first["guid"])):
                raise DynamicsError(f"{path}: holds other examples than {paths[0].name}: the epochs come from "
                                    "different runs")
            pos = {g: i for i, g in enumerate(rec["guid"].tolist())}
            order = np.asarray([pos[g] for g in first["guid"].tolist()])
            rec = {key: v[order] for key, v in rec.items()}
        changed = np.flatnonzero((rec["given"] != first["given"]).any(axis=1))
        if changed.size:
            raise DynamicsError(f"{path}: guid {first['guid'][changed[0]]}: its given labels differ from "
                                f"{paths[0].name}'s: labels must not change between epochs")
        for v in VALUES:
            stacks[v].append(rec[v])
    done = meta.get("epochs_completed")
    if isinstance(done, int) and done > len(paths):
        raise DynamicsError(f"{dy_dir}: dynamics_epoch_{len(paths)} is missing (the meta says {done} epochs were "
                            "completed)")
    return MultiLabelDynamics(guids=first["guid"], given=first["given"],
                              logprob=np.stack(stacks["logprob"], axis=2), margin=np.stack(stacks["margin"], axis=2),
                              dy_dir=dy_dir, meta=meta, files=paths, sources=[file_stat(p) for p in paths])
