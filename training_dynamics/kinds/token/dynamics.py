"""The epoch files of a token classification run: write, read and validate (jsonl and npz).

One row per sentence with per-word arrays; ``word_index`` names the words recorded (those with a
first sub-token within the model's length, normally all)::

    {"guid": 7, "word_index": [0, 1, 2], "gold": [3, 0, 0], "logprob_epoch_0": [-0.1, -2.3, -0.01],
     "pred_epoch_0": [3, 1, 0], "margin_epoch_0": [2.1, -0.7, 4.5], "el2n_epoch_0": [0.1, 1.2, 0.01],
     "device": "cpu"}

``.npz``: ``guid`` (N,) and ``num_words`` (N,) per sentence; ``word_index``, ``gold``, ``logprob``,
``pred``, ``margin``, ``el2n`` (W,) per word, sentence after sentence. The meta says
``"kind": "token_classification"``. Every problem is a one-line :class:`DynamicsError`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from training_dynamics.core.dynamics_file import DynamicsError, as_guids, epoch_path, list_epoch_files, read_meta
from training_dynamics.core.fileio import atomic_write, file_stat

from training_dynamics.kinds.token.data import KIND  # noqa: E402,F401  the one name of the kind
#: what is recorded per word and epoch (see record_ner): gold-tag log-probability, predicted tag,
#: gold logit minus the largest other, ||softmax - onehot||
WORD_VALUES = ("logprob", "pred", "margin", "el2n")


def is_token_run(meta: dict) -> bool:
    """Whether a run's meta says it is a token classification run."""
    return isinstance(meta, dict) and meta.get("kind") == KIND


def _json_ids(guids: np.ndarray) -> list[str]:
    if guids.dtype.kind in "iu":
        return [str(g) for g in guids.tolist()]
    return [json.dumps(g, ensure_ascii=False) for g in guids.tolist()]


def write_token_epoch(dy_dir: str | os.PathLike, epoch: int, guids: np.ndarray, num_words: np.ndarray,
                      word_index: np.ndarray, gold: np.ndarray, values: np.ndarray, *, device: str = "cpu",
                      fmt: str = "jsonl") -> Path:
    """Write one epoch atomically: sentences ``guids`` (N,) of ``num_words`` (N,) recorded words each;
    per word (W,) its ``word_index`` in the sentence, ``gold`` tag id and ``values`` (W, 4) in
    :data:`WORD_VALUES` order."""
    guids = as_guids(guids)
    num_words = np.asarray(num_words, dtype=np.int64)
    word_index = np.asarray(word_index, dtype=np.int64)
    gold = np.asarray(gold, dtype=np.int64)
    values = np.asarray(values, dtype=np.float32)
    w = int(num_words.sum())
    if len(num_words) != len(guids) or word_index.shape != (w,) or gold.shape != (w,) or values.shape != (w, 4):
        raise ValueError(f"shapes disagree: guids {guids.shape}, num_words sum {w}, word_index {word_index.shape}, "
                         f"gold {gold.shape}, values {values.shape}")
    pred = np.rint(values[:, 1]).astype(np.int64)
    path = epoch_path(dy_dir, epoch, fmt)
    if fmt == "npz":
        with atomic_write(path, "wb") as fh:
            np.savez(fh, guid=guids, num_words=num_words, word_index=word_index, gold=gold, logprob=values[:, 0],
                     pred=pred, margin=values[:, 2], el2n=values[:, 3])
        return path
    bounds = np.concatenate([[0], np.cumsum(num_words)]).tolist()
    cols = {"logprob": values[:, 0].tolist(), "pred": pred.tolist(), "margin": values[:, 2].tolist(),
            "el2n": values[:, 3].tolist()}
    wi, gl = word_index.tolist(), gold.tolist()
    dev = json.dumps(device)
    with atomic_write(path) as fh:
        for k, g in enumerate(_json_ids(guids)):
            a, b = bounds[k], bounds[k + 1]
            per_epoch = "".join(f'"{name}_epoch_{epoch}": {json.dumps(v[a:b])}, ' for name, v in cols.items())
            fh.write(f'{{"guid": {g}, "word_index": {json.dumps(wi[a:b])}, "gold": {json.dumps(gl[a:b])}, '
                     f'{per_epoch}"device": {dev}}}\n')
    return path


@dataclass
class TokenDynamics:
    """All recorded epochs of a token classification run, one row per word.

    Attributes:
        guids: (N,) sentence ids in the order of the first epoch file.
        num_words: (N,) recorded words per sentence.
        sentence: (W,) row of each word's sentence in ``guids``.
        word_index: (W,) position of each word in its sentence.
        gold: (W,) gold tag ids.
        logprob, margin, el2n: (W, E) float64; pred: (W, E) int64 (see :data:`WORD_VALUES`).
    """

    guids: np.ndarray
    num_words: np.ndarray
    word_index: np.ndarray
    gold: np.ndarray
    logprob: np.ndarray
    pred: np.ndarray
    margin: np.ndarray
    el2n: np.ndarray
    dy_dir: Path
    meta: dict = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    sources: list[dict] = field(default_factory=list)

    @property
    def sentence(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.guids)), self.num_words)

    @property
    def word_guids(self) -> np.ndarray:
        """(W,) the guid of each word's sentence."""
        return np.repeat(self.guids, self.num_words)

    @property
    def num_epochs(self) -> int:
        return int(self.logprob.shape[1])

    @property
    def num_sentences(self) -> int:
        return len(self.guids)

    @property
    def num_words_total(self) -> int:
        return len(self.gold)

    def per_epoch(self, epochs: int | None = None) -> dict[str, np.ndarray]:
        """``{logp_gold, pred, margin, el2n}`` (W, E') of the first ``epochs``: the input of
        :func:`training_dynamics.analysis.metrics.aggregate_epochs`."""
        return {"logp_gold": self.logprob[:, :epochs], "pred": self.pred[:, :epochs],
                "margin": self.margin[:, :epochs], "el2n": self.el2n[:, :epochs]}


def _read_epoch(path: Path, epoch: int) -> dict[str, np.ndarray]:
    names = ("logprob", "pred", "margin", "el2n")
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                missing = [k for k in ("guid", "num_words", "word_index", "gold", *names) if k not in z.files]
                if missing:
                    raise DynamicsError(f"{path}: no array {missing[0]!r} (arrays: {', '.join(z.files)})")
                out = {k: np.asarray(z[k]) for k in ("guid", "num_words", "word_index", "gold", *names)}
        except DynamicsError:
            raise
        except Exception as exc:
            raise DynamicsError(f"{path}: not a readable .npz file of a token classification run: {exc}") from None
        out["guid"] = as_guids(out["guid"], where=f"{path}: guid")
        return out
    keys = [f"{n}_epoch_{epoch}" for n in names]
    guids, counts, cols = [], [], {k: [] for k in ("word_index", "gold", *names)}
    with open(path, "rb") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                raise DynamicsError(f"{path}: line {lineno}: invalid JSON"
                                    + ("" if line.endswith(b"\n") else " (truncated: was the recording interrupted?)")) from None
            missing = [k for k in ("guid", "word_index", "gold", *keys) if not isinstance(rec, dict) or k not in rec]
            if missing:
                raise DynamicsError(f"{path}: line {lineno}: no {missing[0]!r} (is this a token classification run "
                                    f"of epoch {epoch}?)")
            n = len(rec["word_index"])
            arrays = [rec["word_index"], rec["gold"], *(rec[k] for k in keys)]
            if any(not isinstance(a, list) or len(a) != n for a in arrays):
                raise DynamicsError(f"{path}: line {lineno} (guid {rec['guid']}): the per-word arrays differ in length")
            guids.append(rec["guid"])
            counts.append(n)
            for name, a in zip(cols, arrays):
                cols[name].extend(a)
    if not guids:
        raise DynamicsError(f"{path}: no sentences (empty file)")
    try:
        out = {"guid": as_guids(guids, where=f"{path}: guid"), "num_words": np.asarray(counts, dtype=np.int64)}
        out |= {k: np.asarray(v, dtype=np.float64 if k in ("logprob", "margin", "el2n") else np.int64)
                for k, v in cols.items()}
    except (ValueError, TypeError) as exc:
        raise DynamicsError(f"{path}: {exc}") from None
    return out


def _check(path: Path, rec: dict, num_labels: int | None) -> None:
    w = int(rec["num_words"].sum())
    if (rec["num_words"] < 1).any():
        raise DynamicsError(f"{path}: sentence guid {rec['guid'][int(np.argmax(rec['num_words'] < 1))]} has no words")
    if any(len(rec[k]) != w for k in ("word_index", "gold", *WORD_VALUES)):
        raise DynamicsError(f"{path}: the per-word arrays do not add up to the sentences' num_words ({w})")
    for k in ("logprob", "margin", "el2n"):
        bad = np.flatnonzero(~np.isfinite(rec[k]))
        if bad.size:
            raise DynamicsError(f"{path}: word {int(bad[0])} ({_word_where(rec, int(bad[0]))}): {k} is not finite")
    top = num_labels if num_labels else max(int(rec["gold"].max()), int(rec["pred"].max())) + 1
    for k in ("gold", "pred"):
        bad = np.flatnonzero((rec[k] < 0) | (rec[k] >= top))
        if bad.size:
            raise DynamicsError(f"{path}: {_word_where(rec, int(bad[0]))}: {k} tag {int(rec[k][bad[0]])} is outside "
                                f"0..{top - 1}")
    if len(np.unique(rec["guid"])) != len(rec["guid"]):
        raise DynamicsError(f"{path}: a sentence is recorded twice in this epoch")


def _word_where(rec: dict, w: int) -> str:
    s = int(np.searchsorted(np.cumsum(rec["num_words"]), w, side="right"))
    return f"guid {rec['guid'][s]} word {int(rec['word_index'][w])}"


def read_token_dynamics(dy_dir: str | os.PathLike) -> TokenDynamics:
    """Read and validate every epoch file of a token classification run (aligned by sentence guid).

    Raises:
        DynamicsError: a missing epoch, a bad line, non-finite values, tags out of range, a sentence
            repeated, sentences or words that differ between epochs, gold tags that change.
    """
    dy_dir = Path(dy_dir)
    paths = list_epoch_files(dy_dir)
    sources = [file_stat(p) for p in paths]
    meta = read_meta(dy_dir)
    num_labels = meta.get("num_labels") if isinstance(meta.get("num_labels"), int) else None
    first = None
    arrays = {k: [] for k in ("logprob", "pred", "margin", "el2n")}
    for e, path in enumerate(paths):
        rec = _read_epoch(path, e)
        _check(path, rec, num_labels)
        if first is None:
            first = rec
        elif not np.array_equal(rec["guid"], first["guid"]):
            if not np.array_equal(np.sort(rec["guid"]), np.sort(first["guid"])):
                raise DynamicsError(f"{path}: holds other sentences than {paths[0].name}: the epochs come from "
                                    "different runs")
            rec = _reorder(rec, first["guid"])
        if not (np.array_equal(rec["num_words"], first["num_words"])
                and np.array_equal(rec["word_index"], first["word_index"])):
            raise DynamicsError(f"{path}: the words recorded differ from {paths[0].name}'s")
        bad = np.flatnonzero(rec["gold"] != first["gold"])
        if bad.size:
            raise DynamicsError(f"{path}: {_word_where(rec, int(bad[0]))}: gold tag {int(rec['gold'][bad[0]])}, but "
                                f"{int(first['gold'][bad[0]])} in {paths[0].name}: tags must not change between epochs")
        for k in arrays:
            arrays[k].append(rec[k])
    done = meta.get("epochs_completed")
    if isinstance(done, int) and done > len(paths):
        raise DynamicsError(f"{dy_dir}: dynamics_epoch_{len(paths)} is missing (the meta says {done} epochs were "
                            "completed)")
    stacked = {k: np.stack(v, axis=1) for k, v in arrays.items()}
    return TokenDynamics(guids=first["guid"], num_words=first["num_words"], word_index=first["word_index"],
                         gold=first["gold"], logprob=stacked["logprob"], pred=stacked["pred"].astype(np.int64),
                         margin=stacked["margin"], el2n=stacked["el2n"], dy_dir=dy_dir, meta=meta, files=paths,
                         sources=sources)


def _reorder(rec: dict, order: np.ndarray) -> dict:
    """``rec``'s sentences (and their words) in the sentence order ``order``."""
    pos = {g: i for i, g in enumerate(rec["guid"].tolist())}
    rows = np.asarray([pos[g] for g in order.tolist()])
    starts = np.concatenate([[0], np.cumsum(rec["num_words"])[:-1]])
    counts = rec["num_words"][rows]
    idx = np.repeat(starts[rows] - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts) + np.arange(counts.sum())
    out = {"guid": rec["guid"][rows], "num_words": counts}
    out |= {k: rec[k][idx] for k in ("word_index", "gold", *WORD_VALUES)}
    return out
