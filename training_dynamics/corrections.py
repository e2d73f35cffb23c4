"""Apply reviewed label corrections to a dataset (``apply_corrections.py``).

``corrections.json`` (exported by the review page)::

    {"dataset": ..., "label_names": [...],
     "corrections": [{"guid": 7, "action": "relabel" | "keep" | "unsure",
                      "label": name-or-null, "original_label": name}, ...]}

The corrected dataset has the original text column(s), ``guid``, ``original_label``,
``corrected_label`` (label names) and ``review_action`` (``relabel``, ``keep``, ``unsure`` or
``unreviewed``). ``keep`` and ``unsure`` keep the original label. Every correction is checked
before anything is written: an unknown guid, an unknown label name, a repeated guid or an
``original_label`` that disagrees with the dataset is an error and no file is written.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import fileio
from .data import TextClassificationData

logger = logging.getLogger(__name__)

ACTIONS = ("relabel", "keep", "unsure")
UNREVIEWED = "unreviewed"
OUTPUT_FORMATS = (".jsonl", ".json", ".csv", ".parquet")


class CorrectionsError(ValueError):
    """Bad corrections file; the CLI prints the message on one line and exits 2."""


@dataclass
class Corrections:
    """A validated corrections file: (K,) guids, actions and new label names (``None`` = unchanged)."""

    dataset: str
    label_names: list[str]
    guids: np.ndarray
    actions: list[str]
    labels: list[str | None]
    original_labels: list[str | None]


def read_corrections(path: str | os.PathLike) -> Corrections:
    """Read and check the structure of ``corrections.json`` (labels are checked against the data later)."""
    path = Path(path)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CorrectionsError(f"{path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise CorrectionsError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("corrections"), list):
        raise CorrectionsError(f"{path}: expected an object with a 'corrections' list (exported by the review page)")
    guids, actions, labels, originals = [], [], [], []
    seen: set[int] = set()
    for i, c in enumerate(obj["corrections"]):
        where = f"{path}: correction {i}"
        if not isinstance(c, dict):
            raise CorrectionsError(f"{where}: not an object")
        g = c.get("guid")
        if isinstance(g, bool) or not isinstance(g, int):
            raise CorrectionsError(f"{where}: guid {g!r} is not an integer")
        if g in seen:
            raise CorrectionsError(f"{where}: guid {g} is corrected twice")
        seen.add(g)
        action = c.get("action")
        if action not in ACTIONS:
            raise CorrectionsError(f"{where} (guid {g}): action {action!r} is not one of {', '.join(ACTIONS)}")
        label = c.get("label")
        if action == "relabel" and not isinstance(label, str):
            raise CorrectionsError(f"{where} (guid {g}): a relabel needs a label name, got {label!r}")
        original = c.get("original_label")
        guids.append(g)
        actions.append(action)
        labels.append(label if action == "relabel" else None)
        originals.append(None if original is None else str(original))
    return Corrections(dataset=str(obj.get("dataset", "")), label_names=[str(n) for n in obj.get("label_names", [])],
                       guids=np.asarray(guids, dtype=np.int64), actions=actions, labels=labels,
                       original_labels=originals)


def apply_corrections(data: TextClassificationData, corrections: Corrections, *,
                      where: str = "corrections.json") -> pd.DataFrame:
    """The corrected training set as a table.

    Returns:
        (N,) rows in the original order with columns ``guid``, the text column(s),
        ``original_label``, ``corrected_label`` (names) and ``review_action``.
    Raises:
        CorrectionsError: unknown guid, unknown label name, or an ``original_label`` that is not
            the dataset's label of that guid.
    """
    names = np.asarray(data.label_names, dtype=object)
    train = data.train
    guids = np.asarray(train["guid"], dtype=np.int64)
    original = names[np.asarray(train["label"], dtype=np.int64)]
    pos = pd.Series(np.arange(len(guids)), index=guids).reindex(corrections.guids)
    if pos.isna().any():
        k = int(np.flatnonzero(pos.isna().to_numpy())[0])
        src = data.source.get("train_file", data.source.get("task_name"))
        raise CorrectionsError(f"{where}: correction {k}: guid {corrections.guids[k]} is not in {src}")
    pos = pos.to_numpy(np.int64)
    labels = np.asarray(corrections.labels, dtype=object)              # (K,) None = unchanged
    bad = np.flatnonzero(np.array([lb is not None for lb in labels], dtype=bool) & ~np.isin(labels, names))
    if len(bad):
        k = int(bad[0])
        raise CorrectionsError(f"{where}: correction {k} (guid {corrections.guids[k]}): label {labels[k]!r} "
                               f"is not one of {data.label_names}")
    origs = np.asarray(corrections.original_labels, dtype=object)     # (K,) None = not stated
    bad = np.flatnonzero(np.array([o is not None for o in origs], dtype=bool) & (origs != original[pos]))
    if len(bad):
        k = int(bad[0])
        raise CorrectionsError(f"{where}: correction {k} (guid {corrections.guids[k]}): original_label {origs[k]!r} "
                               f"but the dataset's label is {original[pos[k]]!r} (corrections made for another "
                               "version of the data?)")
    corrected = original.copy()
    relabel = np.array([lb is not None for lb in labels], dtype=bool)
    corrected[pos[relabel]] = labels[relabel]
    action = np.full(len(guids), UNREVIEWED, dtype=object)
    action[pos] = np.asarray(corrections.actions, dtype=object)
    table = {"guid": guids}
    table.update({c: train[c] for c in data.text_columns})
    table.update(original_label=original, corrected_label=corrected, review_action=action)
    df = pd.DataFrame(table)
    changed = int((df["original_label"] != df["corrected_label"]).sum())
    logger.info("%d corrections: %d labels changed, %s", len(pos), changed,
                ", ".join(f"{a} {int((action == a).sum())}" for a in ACTIONS))
    return df


def write_corrected(df: pd.DataFrame, *, output: str | os.PathLike | None = None,
                    save_to_disk: str | os.PathLike | None = None) -> list[Path]:
    """Write the corrected table as ``.jsonl``/``.json``/``.csv``/``.parquet`` and/or a
    ``datasets.save_to_disk`` folder, each atomically (temp file or folder, then rename)."""
    written = []
    if output is not None:
        out = Path(output)
        suffix = out.suffix.lower()
        if suffix not in OUTPUT_FORMATS:
            raise ValueError(f"{out}: unsupported extension {out.suffix!r}; use one of {', '.join(OUTPUT_FORMATS)}")
        if suffix == ".parquet":
            with fileio.atomic_write(out, "wb") as fh:
                df.to_parquet(fh, index=False)
        else:
            with fileio.atomic_write(out) as fh:
                if suffix == ".csv":
                    df.to_csv(fh, index=False)
                else:
                    df.to_json(fh, orient="records", lines=True, force_ascii=False)
        written.append(out)
    if save_to_disk is not None:
        import datasets

        dest = Path(save_to_disk)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp"))
        try:
            datasets.Dataset.from_pandas(df, preserve_index=False).save_to_disk(str(tmp))
            if dest.exists():
                shutil.rmtree(dest)
            os.replace(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        written.append(dest)
    for p in written:
        logger.info("corrected dataset (%d rows) -> %s", len(df), p)
    return written


def push_to_hub(df: pd.DataFrame, repo_id: str, *, private: bool = False) -> None:
    """Upload the corrected table as a Hub dataset (needs ``huggingface-cli login``)."""
    import datasets

    datasets.Dataset.from_pandas(df, preserve_index=False).push_to_hub(repo_id, private=private)
    logger.info("pushed the corrected dataset to https://huggingface.co/datasets/%s", repo_id)
