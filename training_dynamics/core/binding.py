"""A run's data binding: which examples (text and label) its recorded rows belong to.

At recording, :func:`bind` hashes every training example (its displayed text and its label name)
into 8 bytes keyed by guid and the run keeps them (``training_dynamics/data_binding.npz``, arrays
``guid`` and ``hash``), beside the data source and columns in its meta. Every command that joins
recorded rows to data rows (find-issues, select --write_data, record --with_data_selection, review,
compare, averaging) goes through :func:`check`: a file edited since (a row inserted at the top, a
text or label changed, rows removed) is refused with one line naming how many examples changed and
the first of them, unless the user chooses to go on with the unchanged examples only.
"""

from __future__ import annotations

import hashlib
import logging
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from training_dynamics.core.errors import DataChangedError, TrainingDynamicsError
from training_dynamics.core.ids import as_guids

logger = logging.getLogger(__name__)

BINDING_NAME = "data_binding.npz"
#: how examples are hashed: 2 hashes a token run's words as a JSON list (word boundaries count); 1 (a file
#: without ``scheme``) joined them by spaces. Data is checked with the scheme its run was bound with.
SCHEME = 2
#: how a user goes on with the unchanged examples only
ALLOW_FLAG = "--allow_changed_data"
ALLOW_HELP = ("Where the training file changed since the run was recorded (rows inserted, edited or removed), go on "
              "with the unchanged examples only (the output says how many were left out) instead of refusing.")


class BindingError(TrainingDynamicsError):
    """A run's data binding file that cannot be read."""


def example_hashes(texts: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """One 64-bit hash per example over its displayed text and label name (blake2b, 8 bytes)."""
    out = np.empty(len(texts), dtype=np.uint64)
    for i, (text, label) in enumerate(zip(texts, labels)):
        digest = hashlib.blake2b(f"{label}\x1f{text}".encode("utf-8", "surrogatepass"), digest_size=8).digest()
        out[i] = int.from_bytes(digest, "little")
    return out


@dataclass
class Binding:
    """The examples a run was recorded on: ``guids`` and one content hash per guid (hashed as ``scheme`` says)."""

    guids: np.ndarray
    hashes: np.ndarray
    scheme: int = SCHEME

    @classmethod
    def of(cls, data, *, scheme: int = SCHEME) -> "Binding":
        """The binding of loaded data (``TextClassificationData`` or ``GenerativeData``: ``train`` with
        ``guid``, ``label`` and the text columns, ``label_names``, ``text_columns``)."""
        return cls(as_guids(data.train["guid"]), example_hashes(data.binding_texts(scheme), data.binding_labels()), scheme)

    @classmethod
    def read(cls, dy_dir: str | os.PathLike) -> "Binding | None":
        """The binding a run kept (``None`` for a run recorded before bindings existed).

        Raises:
            BindingError: the file is damaged (one line saying how to proceed).
        """
        path = Path(dy_dir) / BINDING_NAME
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                scheme = int(z["scheme"]) if "scheme" in z.files else 1
                return cls(as_guids(z["guid"]), z["hash"].astype(np.uint64), scheme)
        except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as exc:
            raise BindingError(f"{path}: the run's data binding is damaged ({type(exc).__name__}: "
                               f"{' '.join(str(exc).split())[:80]}), so its rows cannot be checked against the "
                               "data; record the run again (or move the file away to use the run unchecked)") from None

    def write(self, dy_dir: str | os.PathLike) -> Path:
        """Save into ``dy_dir`` (atomically)."""
        from training_dynamics.core.fileio import atomic_write

        path = Path(dy_dir) / BINDING_NAME
        with atomic_write(path, "wb") as fh:
            np.savez(fh, guid=self.guids, hash=self.hashes, scheme=np.int64(self.scheme))
        return path

    def __len__(self) -> int:
        return len(self.guids)

    @property
    def fingerprint(self) -> str:
        """16 hex digits over every (guid, hash), in guid order: equal for the same examples in any row order."""
        order = np.argsort(self.guids, kind="stable")
        digest = hashlib.sha256()
        digest.update(np.asarray([str(g) for g in self.guids[order]], dtype=str).tobytes())
        digest.update(self.hashes[order].tobytes())
        return digest.hexdigest()[:16]

    def diff(self, other: "Binding") -> tuple[np.ndarray, np.ndarray]:
        """``(changed, missing)``: guids of ``self`` whose content differs in ``other``, and guids of
        ``self`` that ``other`` lacks (both in ``self``'s order)."""
        pos = _positions(other.guids, self.guids)
        missing = pos < 0
        changed = np.zeros(len(self), dtype=bool)
        changed[~missing] = other.hashes[pos[~missing]] != self.hashes[~missing]
        return self.guids[changed], self.guids[missing]


def _positions(haystack: np.ndarray, needles: np.ndarray) -> np.ndarray:
    """Index of each of ``needles`` in ``haystack`` (unique ids), -1 where absent."""
    if not len(haystack) or haystack.dtype.kind != needles.dtype.kind:
        return np.full(len(needles), -1, dtype=np.int64)
    order = np.argsort(haystack, kind="stable")
    pos = order[np.searchsorted(haystack, needles, sorter=order).clip(max=len(haystack) - 1)]
    return np.where(haystack[pos] == needles, pos, -1)


def bind(data) -> Binding:
    """The binding to keep with a run recorded on ``data``."""
    return Binding.of(data)


def check(recorded: Binding | None, data, *, run: str | os.PathLike, allow_changed: bool = False,
          guids: np.ndarray | None = None) -> np.ndarray | None:
    """Check that ``data`` still holds the examples ``recorded`` (the run's binding) names.

    Args:
        recorded: the run's binding (``None``: a run recorded before bindings; nothing to check).
        data: the loaded training data the rows are about to be joined to.
        run: the run folder, for the message.
        allow_changed: go on with the unchanged examples only (logged) instead of refusing.
        guids: check only these recorded guids (default: all the binding names).

    Returns:
        ``None`` when every checked example is unchanged, else the guids that changed or are gone
        (only with ``allow_changed``; the caller leaves them out).

    Raises:
        DataChangedError: examples changed or are gone, one line naming how many and the first.
    """
    if recorded is None:
        logger.warning("%s keeps no data binding (recorded before runs kept one, or from rows that held no text): "
                       "cannot check that its training file is unchanged", run)
        return None
    now = Binding.of(data, scheme=recorded.scheme)
    ref = recorded if guids is None else _subset(recorded, guids)
    changed, missing = ref.diff(now)
    if not len(changed) and not len(missing):
        return None
    bad = np.concatenate([changed, missing]) if len(changed) and len(missing) else (changed if len(changed) else missing)
    source = (getattr(data, "source", None) or {})
    where = source.get("train_file") or source.get("task_name") or "the training data"
    first = _describe_first(changed, missing, data)
    msg = (f"{where}: {len(bad)} of {len(ref)} examples the run {run} was recorded on changed since ({first}), so "
           f"recorded rows would be joined to other examples")
    if not allow_changed or len(bad) == len(ref):
        raise DataChangedError(f"{msg}; pass --train_file with the file it was recorded on, record the run again, or "
                               f"pass {ALLOW_FLAG} to use only the {len(ref) - len(bad)} unchanged examples")
    logger.warning("%s; %s: using only the %d unchanged examples", msg, ALLOW_FLAG, len(ref) - len(bad))
    return bad


def _subset(b: Binding, guids: np.ndarray) -> Binding:
    pos = _positions(b.guids, as_guids(guids))
    keep = pos[pos >= 0]
    return Binding(b.guids[keep], b.hashes[keep], b.scheme)


def _describe_first(changed: np.ndarray, missing: np.ndarray, data) -> str:
    from dataclasses import replace

    if len(changed):
        g = changed[0]
        row = int(np.flatnonzero(as_guids(data.train["guid"]) == g)[0])
        one = replace(data, train=data.train.select([row]))
        text, label = one.display_texts()[0], one.binding_labels()[0]
        short = text if len(text) <= 60 else text[:57] + "..."
        return f"first: guid {g}, now {short!r} labelled {label!r}"
    return f"first: guid {missing[0]} is gone"


def compare(a: Binding | None, b: Binding | None, *, names: tuple[str, str]) -> None:
    """Refuse to join two runs whose shared guids name other examples (recorded on other data).

    Raises:
        DataChangedError: one line naming how many shared guids differ and the first.
    """
    if a is None or b is None:
        return
    changed, _ = a.diff(b)
    if len(changed):
        shared = int((_positions(b.guids, a.guids) >= 0).sum())
        raise DataChangedError(f"{names[0]} and {names[1]} were recorded on different data: {len(changed)} of the "
                               f"{shared} guids they share name other examples (first: guid {changed[0]}); their rows "
                               "cannot be joined by guid")
