"""Apply reviewed label corrections to a dataset (``apply_corrections.py``), and the fingerprints
that bind review choices to the examples they were made on.

``corrections.json`` (exported by the review page)::

    {"dataset": "train.jsonl", "dataset_fingerprint": "<sha256 hex>", "label_names": [...],
     "corrections": [{"guid": "7", "example_fingerprint": "<16 hex>",
                      "action": "relabel" | "keep" | "unsure" | null,
                      "label": name-or-null, "original_label": name, "note": "...",
                      "updated_at": "2026-01-31T17:02:11.000Z"}, ...],
     "exported_at": "2026-01-31T17:05:00.000Z"}

``guid`` is a string of decimal digits (exact for 64-bit ids; an integer is accepted too);
``action`` null means a note without a choice. ``updated_at`` (when the choice was made) and
``exported_at`` are optional: the page uses them when a file is loaded back, so that an older
export never replaces a newer choice.
A token classification run's corrections also carry ``"word_index"``: they are keyed by
``(guid, word_index)`` and their ``example_fingerprint`` is the whole sentence's (words and tag
names); :mod:`training_dynamics.token_review` applies them.

Fingerprints: :func:`dataset_fingerprint` covers every training example's guid, text and label
name, :func:`example_fingerprint` one example's text and label name. The review page keeps its
choices under the first and stores the second with each choice; applying checks both against the
training data, so corrections are never applied to a text the reviewer did not see.

The corrected dataset has ``guid``, the original text column(s), ``original_label``,
``corrected_label`` (label names; integer ids when the data's labels are bare integers with no
``--class_names``, as in the file), ``review_action`` (``relabel``, ``keep``, ``unsure`` or
``unreviewed``) and ``review_note``. ``keep`` and ``unsure`` keep the original label.
Corrections made on a generative run (label names ``response`` / ``other``) clean prompt/response
data instead: the responses relabelled ``other`` (bad) are left out, and the rest keep their
prompt and response columns, ``guid``, ``review_action`` and ``review_note``. Every check
runs before anything is written; outputs never replace an input or files this module did not write.
"""

from __future__ import annotations

from .errors import TrainingDynamicsError

import csv
import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from . import fileio, kinds
from .data import TextClassificationData
from .ids import as_guids, guid_keys
from .outputs import Outputs

logger = logging.getLogger(__name__)

ACTIONS = ("relabel", "keep", "unsure")
UNREVIEWED = "unreviewed"
UNSURE_POLICIES = ("keep", "drop")
OUTPUT_FORMATS = (".jsonl", ".json", ".csv", ".tsv", ".parquet")
#: the command's name in the outputs manifest (:mod:`training_dynamics.outputs`)
COMMAND = "apply"
#: written into every --save_to_disk folder: what this module wrote there (and may replace later)
SAVE_MARKER = ".apply_corrections.json"
_INT64 = (-(2 ** 63), 2 ** 63 - 1)


class CorrectionsError(TrainingDynamicsError):
    """Bad corrections file or refused output; the CLI prints the message on one line and exits 2."""


# -- fingerprints ---------------------------------------------------------------------------------
def example_fingerprint(text: str, label: str) -> str:
    """16 hex digits of sha256 over one example's displayed text and label name."""
    return hashlib.sha256(json.dumps([text, label], ensure_ascii=False).encode("utf-8")).hexdigest()[:16]


def dataset_fingerprint(guids: Sequence[int], texts: Sequence[str], labels: Sequence[str]) -> str:
    """sha256 (64 hex digits) over every example's (guid, text, label name), taken in guid order.

    The same examples in another row order give the same fingerprint; a changed text or label, an
    added or removed example, or a guid that now names another text gives another one.
    """
    digest = hashlib.sha256()
    ids = as_guids(guids)
    keys = guid_keys(ids)
    for i in np.argsort(ids, kind="stable"):
        digest.update(json.dumps([keys[i], texts[i], labels[i]], ensure_ascii=False).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def data_fingerprints(data: TextClassificationData,
                      label_names: Sequence[str] | None = None) -> tuple[str, pd.Series]:
    """The dataset fingerprint of ``data.train`` and each example's fingerprint (a Series indexed by
    :func:`guid_keys`).

    ``label_names`` name the label ids (default ``data.label_names``).
    """
    kind = kinds.of_meta(data.source)
    guids = as_guids(data.train["guid"])
    texts = kind.display_texts(data)
    labels = kind.binding_labels(data, label_names)  # a sentence's tags: their names joined by spaces
    examples = pd.Series([example_fingerprint(t, y) for t, y in zip(texts, labels)], index=guid_keys(guids),
                         dtype=object)
    return dataset_fingerprint(guids, texts, labels), examples


def corrections_document(data: TextClassificationData, guids: Sequence, labels: Sequence[str], *,
                         notes: Sequence[str] | None = None) -> dict:
    """The ``corrections.json`` a review page of ``data`` would export after choosing, for each of
    ``guids`` (K,), the label name in ``labels`` (K,): a relabel, or a keep when it is the example's
    own label. For scripted reviews (e.g. accept every flagged example's suggested label) and tests.

    Raises:
        CorrectionsError: a guid not in ``data`` or a label that is not one of its label names.
    """
    fingerprint, example_fps = data_fingerprints(data)
    names = list(data.label_names)
    keys = guid_keys(guids)
    gold = pd.Series(np.asarray(data.train["label"], np.int64), index=guid_keys(data.train["guid"]))
    out = []
    for k, (key, label) in enumerate(zip(keys, labels)):
        if key not in gold.index:
            raise CorrectionsError(f"guid {key} is not in {_source(data)}")
        if str(label) not in names:
            raise CorrectionsError(f"guid {key}: label {label!r} is not one of {names}")
        original = names[int(gold[key])]
        c = {"guid": key, "example_fingerprint": example_fps[key], "action": "keep" if str(label) == original
             else "relabel", "label": str(label), "original_label": original}
        if notes is not None and notes[k]:
            c["note"] = str(notes[k])
        out.append(c)
    return {"dataset": _source(data), "dataset_fingerprint": fingerprint, "kind": kinds.of_meta(data.source).name,
            "label_names": names, "corrections": out}


# -- reading --------------------------------------------------------------------------------------
@dataclass
class Corrections:
    """A validated corrections file: K guids, actions (``None`` = note only), new label names
    (``None`` = unchanged), and optionally the fingerprints and notes (empty lists = not given)."""

    dataset: str
    label_names: list[str]
    guids: np.ndarray
    actions: list[str | None]
    labels: list[str | None]
    original_labels: list[str | None]
    dataset_fingerprint: str | None = None
    kind: str | None = None  #: the kind of run the page reviewed (``None``: classification)
    example_fingerprints: list[str | None] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: the word each correction is about (token classification: keyed by (guid, word_index)); ``None`` = the example
    word_indices: list[int | None] = field(default_factory=list)

    def __post_init__(self):
        self.guids = np.asarray(guid_keys(self.guids), dtype=str)  # the text keys the page uses
        k = len(self.guids)
        self.example_fingerprints = list(self.example_fingerprints) or [None] * k
        self.notes = list(self.notes) or [""] * k
        self.word_indices = list(self.word_indices) or [None] * k


def _guid(value, where: str) -> str:
    """A guid as the key the page and the data share: its text (``"7"`` for the integer 7 or the
    string the page exported for it, ``"pair-7"`` for a string id); 64-bit integers stay exact."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not _INT64[0] <= value <= _INT64[1]:
            raise CorrectionsError(f"{where}: guid {value} does not fit in 64 bits")
        return str(value)
    if isinstance(value, str) and value:
        return value
    raise CorrectionsError(f"{where}: guid {value!r} is not an integer or a string id")


def read_corrections(path: str | os.PathLike) -> Corrections:
    """Read and check the structure of ``corrections.json`` (labels are checked against the data later)."""
    path = Path(path)
    try:
        obj = fileio.json_loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CorrectionsError(f"{path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise CorrectionsError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("corrections"), list):
        raise CorrectionsError(f"{path}: expected an object with a 'corrections' list (exported by the review page)")
    rows: dict[str, list] = {k: [] for k in ("guids", "actions", "labels", "originals", "fps", "notes", "words")}
    seen: set = set()
    for i, c in enumerate(obj["corrections"]):
        where = f"{path}: correction {i}"
        if not isinstance(c, dict):
            raise CorrectionsError(f"{where}: not an object")
        g = _guid(c.get("guid"), where)
        w = c.get("word_index")
        if w is not None and (isinstance(w, bool) or not isinstance(w, int) or w < 0):
            raise CorrectionsError(f"{where} (guid {g}): word_index {w!r} is not a word's position (0, 1, ...)")
        if (g, w) in seen:
            raise CorrectionsError(f"{where}: guid {g}{'' if w is None else f' word {w}'} is corrected twice")
        seen.add((g, w))
        action, label, note = c.get("action"), c.get("label"), c.get("note") or ""
        if not isinstance(note, str):
            raise CorrectionsError(f"{where} (guid {g}): note {note!r} is not text")
        if action not in ACTIONS and not (action is None and note):
            raise CorrectionsError(f"{where} (guid {g}): action {action!r} is not one of {', '.join(ACTIONS)}")
        if action == "relabel" and not isinstance(label, str):
            raise CorrectionsError(f"{where} (guid {g}): a relabel needs a label name, got {label!r}")
        fp, original = c.get("example_fingerprint"), c.get("original_label")
        rows["guids"].append(g)
        rows["actions"].append(action)
        rows["labels"].append(label if action == "relabel" else None)
        rows["originals"].append(None if original is None else str(original))
        rows["fps"].append(None if fp is None else str(fp))
        rows["notes"].append(note)
        rows["words"].append(w)
    fingerprint = obj.get("dataset_fingerprint")
    return Corrections(dataset=str(obj.get("dataset", "")), label_names=[str(n) for n in obj.get("label_names", [])],
                       guids=np.asarray(rows["guids"], dtype=str), actions=rows["actions"], labels=rows["labels"],
                       original_labels=rows["originals"], example_fingerprints=rows["fps"], notes=rows["notes"],
                       word_indices=rows["words"],
                       dataset_fingerprint=str(fingerprint) if fingerprint else None,
                       kind=str(obj["kind"]) if obj.get("kind") else None)


# -- checking and applying ------------------------------------------------------------------------
def _source(data: TextClassificationData) -> str:
    src = data.source.get("train_file") or data.source.get("task_name") or "the dataset"
    return Path(src).name if data.source.get("train_file") else str(src)


def check_label_names(data: TextClassificationData, corrections: Corrections, *,
                      where: str = "corrections.json") -> None:
    """Refuse, naming the cause, data whose label names are not the ones the review used (integer labels
    read without ``--class_names``, or with the names in another order): the fingerprints would only
    say that the data changed."""
    theirs, ours = list(corrections.label_names), [str(n) for n in data.label_names]
    if not theirs or theirs == ours:
        return
    fix = f"pass --class_names {','.join(theirs)}"
    if ours == [str(i) for i in range(len(ours))] and len(theirs) == len(ours):
        raise CorrectionsError(f"{where} names the labels {', '.join(theirs)} but {_source(data)} has integer labels "
                               f"0..{len(ours) - 1} with no names: {fix} (the names the review used, in id order)")
    if sorted(theirs) == sorted(ours):
        raise CorrectionsError(f"{where} names the labels in the order {', '.join(theirs)} but the data's are in the "
                               f"order {', '.join(ours)} (--class_names?): {fix}")
    raise CorrectionsError(f"{where} names the labels {', '.join(theirs)} but {_source(data)} has {', '.join(ours)}: "
                           f"{fix}, or apply corrections made on this data")


def check_dataset_fingerprint(data: TextClassificationData, corrections: Corrections, *, ignore: bool = False,
                              where: str = "corrections.json", fingerprints: tuple[str, pd.Series] | None = None) -> None:
    """Refuse corrections exported for other data than ``data`` (unless ``ignore``: then only the
    examples still as reviewed are corrected, see :func:`apply_corrections`). ``fingerprints``:
    :func:`data_fingerprints` of ``data`` when already computed."""
    if ignore:
        logger.warning("not checking the dataset fingerprint (--ignore_fingerprint): corrections whose example "
                       "changed since the review are skipped")
        return
    if not corrections.dataset_fingerprint:
        raise CorrectionsError(f"{where} has no dataset fingerprint (exported by an older review page?); re-export it "
                               "from a page made by review_label_issues.py, or pass --ignore_fingerprint to apply it "
                               "to the examples still as reviewed")
    ours, _ = fingerprints or data_fingerprints(data)
    if corrections.dataset_fingerprint != ours:
        raise CorrectionsError(
            f"{where} was made for other data than {_source(data)} (dataset fingerprint "
            f"{corrections.dataset_fingerprint[:12]}… vs {ours[:12]}…: texts, labels or rows changed since the "
            "review); review this data again, or pass --ignore_fingerprint to apply only the corrections whose "
            "examples are unchanged")


def _changed(data: TextClassificationData, corrections: Corrections, pos: pd.Series, original: np.ndarray,
             where: str, example_fps: pd.Series | None) -> list[tuple[int, str]]:
    """(k, reason) for each correction whose example is gone or no longer the one reviewed."""
    if example_fps is None and any(fp is not None for fp in corrections.example_fingerprints):
        _, example_fps = data_fingerprints(data)
    out = []
    for k, g in enumerate(corrections.guids):
        fp, orig = corrections.example_fingerprints[k], corrections.original_labels[k]
        if np.isnan(pos.iloc[k]):
            out.append((k, f"{where}: correction {k}: guid {g} is not in {_source(data)}"))
        elif fp is not None and fp != example_fps.iloc[int(pos.iloc[k])]:
            out.append((k, f"{where}: correction {k} (guid {g}): the example's text or label is not the one "
                           "reviewed (corrections made for another version of the data?)"))
        elif orig is not None and orig != original[int(pos.iloc[k])]:
            out.append((k, f"{where}: correction {k} (guid {g}): original_label {orig!r} but the dataset's label "
                           f"is {original[int(pos.iloc[k])]!r} (corrections made for another version of the data?)"))
    return out


def apply_corrections(data: TextClassificationData, corrections: Corrections, *, where: str = "corrections.json",
                      unsure: str = "keep", skip_changed: bool = False,
                      fingerprints: tuple[str, pd.Series] | None = None) -> pd.DataFrame:
    """The corrected training set as a table.

    Args:
        unsure: ``"keep"`` the examples marked unsure (with their original label) or ``"drop"`` them.
        skip_changed: skip (with a warning) corrections whose guid is gone or whose example no
            longer has the reviewed text and label; by default they are an error.
        fingerprints: :func:`data_fingerprints` of ``data`` when already computed.
    Returns:
        Rows in the original order with columns ``guid``, the text column(s), ``original_label``,
        ``corrected_label`` (names), ``review_action`` and ``review_note``.
    Raises:
        CorrectionsError: an unknown label name, or (without ``skip_changed``) a changed example.
    """
    if unsure not in UNSURE_POLICIES:
        raise CorrectionsError(f"unsure must be one of {', '.join(UNSURE_POLICIES)}, not {unsure!r}")
    names = np.asarray(data.label_names, dtype=object)
    guids = as_guids(data.train["guid"])
    original = names[np.asarray(data.train["label"], dtype=np.int64)]
    pos = pd.Series(np.arange(len(guids)), index=guid_keys(guids)).reindex(corrections.guids)
    changed = _changed(data, corrections, pos, original, where, fingerprints[1] if fingerprints else None)
    if changed and not skip_changed:
        raise CorrectionsError(changed[0][1])
    for _, reason in changed:
        logger.warning("skipped: %s", reason)
    keep = np.ones(len(corrections.guids), dtype=bool)
    keep[[k for k, _ in changed]] = False
    labels = np.asarray(corrections.labels, dtype=object)              # (K,) None = unchanged
    bad = np.flatnonzero(np.array([lb is not None for lb in labels], dtype=bool) & ~np.isin(labels, names) & keep)
    if len(bad):
        k = int(bad[0])
        raise CorrectionsError(f"{where}: correction {k} (guid {corrections.guids[k]}): label {labels[k]!r} "
                               f"is not one of {data.label_names}")
    rows = pos.to_numpy()[keep].astype(np.int64)
    corrected = original.copy()
    relabel = np.array([lb is not None for lb in labels[keep]], dtype=bool)
    corrected[rows[relabel]] = labels[keep][relabel]
    action = np.full(len(guids), UNREVIEWED, dtype=object)
    action[rows] = [a or UNREVIEWED for a in np.asarray(corrections.actions, dtype=object)[keep]]
    note = np.full(len(guids), "", dtype=object)
    note[rows] = np.asarray(corrections.notes, dtype=object)[keep]
    if all(n == str(i) for i, n in enumerate(data.label_names)):  # bare integer labels stay integers
        original, corrected = original.astype(np.int64), corrected.astype(np.int64)
    table = {"guid": guids, **{c: data.train[c] for c in data.text_columns}}
    df = pd.DataFrame({**table, "original_label": original, "corrected_label": corrected, "review_action": action,
                       "review_note": note})
    logger.info("%d corrections applied (%d skipped): %d labels changed, %s", int(keep.sum()), len(changed),
                int((df["original_label"] != df["corrected_label"]).sum()),
                ", ".join(f"{a} {int((action == a).sum())}" for a in ACTIONS))
    if unsure == "drop":
        df = df[df["review_action"] != "unsure"].reset_index(drop=True)
        logger.info("--unsure drop: %d examples marked unsure left out", int((action == "unsure").sum()))
    return df


# -- writing --------------------------------------------------------------------------------------
def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _within(path: Path, folder: Path) -> bool:
    p, f = path.resolve(), folder.resolve()
    return p == f or f in p.parents


def _saved_entries(folder: Path) -> list[str]:
    """Everything a previous save listed in ``folder``'s marker; refuses a folder holding anything else."""
    try:
        listed = set(fileio.json_loads((folder / SAVE_MARKER).read_text(encoding="utf-8"))["entries"])
    except (OSError, ValueError, KeyError, TypeError):
        raise CorrectionsError(f"--save_to_disk {folder} is not empty and was not written by apply_corrections.py "
                               f"(no {SAVE_MARKER}); choose a new or empty folder") from None
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*")} - {SAVE_MARKER}
    extra = sorted(present - listed)
    if extra:
        shown = ", ".join(extra[:3]) + (f" and {len(extra) - 3} more" if len(extra) > 3 else "")
        raise CorrectionsError(f"--save_to_disk {folder} holds files apply_corrections.py did not write ({shown}); "
                               "move them away or choose a new folder")
    return sorted(present, key=lambda e: e.count("/"), reverse=True)  # deepest first


def check_outputs(*, output: str | os.PathLike | None = None, save_to_disk: str | os.PathLike | None = None,
                  inputs: Sequence[str | os.PathLike] = (), overwrite_output_dir: bool = False) -> None:
    """Refuse, before anything is written, an output that would destroy an input or unrelated files.

    ``output`` may not be an input (same path or the same file by a link) nor a folder, and an
    existing file is replaced only with ``overwrite_output_dir`` and only when an earlier ``apply``
    wrote it (:class:`~training_dynamics.outputs.Outputs`);
    ``save_to_disk`` may not be a file, nor be or contain an input or ``output``. An existing
    non-empty ``save_to_disk`` folder is replaced only with ``overwrite_output_dir``, and only when it
    holds nothing but what an earlier save listed in its :data:`SAVE_MARKER`.
    """
    ins = [Path(p) for p in inputs if p is not None and Path(p).exists()]
    if output is not None:
        Outputs(COMMAND, inputs=ins, overwrite=overwrite_output_dir).check_file(output, flag="--output")
    if save_to_disk is None:
        return
    dest = Path(save_to_disk)
    hit = next((i for i in ins if _within(i, dest)), None)
    if hit is not None:
        raise CorrectionsError(f"--save_to_disk {save_to_disk} is or contains the input {hit}; choose a new folder")
    if output is not None and _within(Path(output), dest):
        raise CorrectionsError(f"--output {output} is inside --save_to_disk {save_to_disk}, which is replaced as a "
                               "whole; write them to separate places")
    if dest.exists() and not dest.is_dir():
        raise CorrectionsError(f"--save_to_disk {save_to_disk} is a file; give a folder name")
    if dest.is_dir() and any(dest.iterdir()):
        if not overwrite_output_dir:
            raise CorrectionsError(f"--save_to_disk {save_to_disk} is not empty; choose a new folder, or pass "
                                   "--overwrite_output_dir to replace the corrected dataset an earlier "
                                   "apply_corrections.py wrote there")
        _saved_entries(dest)


def _save_folder(df: pd.DataFrame, dest: Path) -> None:
    """``datasets.save_to_disk`` into a temp folder beside ``dest`` (+ marker), then swap it in; an
    earlier save there is removed entry by entry, as its marker lists."""
    import datasets

    dest = dest.resolve()  # "." has a real name and parent; a link to an earlier save: that save is replaced
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp"))
    old, entries = None, []
    try:
        os.chmod(tmp, 0o777 & ~fileio._umask())
        datasets.Dataset.from_pandas(df, preserve_index=False).save_to_disk(str(tmp))
        fileio.write_json(tmp / SAVE_MARKER, {"written_by": "apply_corrections.py", "rows": len(df),
                                              "entries": sorted(p.relative_to(tmp).as_posix() for p in tmp.rglob("*"))})
        if dest.is_dir() and not any(dest.iterdir()):  # a new, empty folder (maybe the current one): fill it
            for entry in sorted(tmp.iterdir(), key=lambda p: p.name == SAVE_MARKER):  # the marker last
                os.replace(entry, dest / entry.name)
            tmp.rmdir()
            return
        if dest.is_dir():
            entries = _saved_entries(dest)  # checked again right before the swap
            old = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".old"))
            os.replace(dest, old)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not dest.exists():
            os.replace(old, dest)
        elif old is not None:
            try:
                old.rmdir()  # the empty placeholder, when the swap never happened
            except OSError:
                pass
        raise
    if old is not None:
        _remove_entries(old, entries)


def _remove_entries(folder: Path, entries: list[str]) -> None:
    """Remove the listed entries (deepest first), the marker and the folder; anything else stays."""
    for e in [*entries, SAVE_MARKER]:
        p = folder / e
        try:
            p.rmdir() if p.is_dir() and not p.is_symlink() else p.unlink()
        except OSError:
            pass
    try:
        folder.rmdir()
    except OSError:
        logger.warning("%s: left in place (it holds files the previous save did not list)", folder)


def _check_tsv_cells(df: pd.DataFrame, out: Path) -> None:
    """Refuse a table a ``.tsv`` cannot hold: the data loader reads tsv unquoted, so a cell must hold
    no tab or line break."""
    for column in df.columns:
        bad = df[column].astype(str).str.contains(r"[\t\n\r]", regex=True).to_numpy(bool)
        if bad.any():
            raise CorrectionsError(f"--output {out}: column {column!r} of guid {df['guid'].iloc[int(bad.argmax())]} "
                                   "holds a tab or line break, which a .tsv cannot hold; write .jsonl or .csv")


def write_corrected(df: pd.DataFrame, *, output: str | os.PathLike | None = None,
                    save_to_disk: str | os.PathLike | None = None, inputs: Sequence[str | os.PathLike] = (),
                    overwrite_output_dir: bool = False) -> list[Path]:
    """Write the corrected table as ``.jsonl``/``.json``/``.csv``/``.parquet`` and/or a
    ``datasets.save_to_disk`` folder, each atomically (temp file or folder, then rename), after
    :func:`check_outputs` (``inputs``: the files read, which are never overwritten)."""
    if output is not None and Path(output).suffix.lower() not in OUTPUT_FORMATS:
        raise CorrectionsError(f"{output}: unsupported extension {Path(output).suffix!r}; use one of "
                               f"{', '.join(OUTPUT_FORMATS)}")
    check_outputs(output=output, save_to_disk=save_to_disk, inputs=inputs, overwrite_output_dir=overwrite_output_dir)
    written = []
    if output is not None:
        out = Path(output)
        suffix = out.suffix.lower()
        if suffix == ".tsv":
            _check_tsv_cells(df, out)
        with fileio.atomic_write(out, "wb" if suffix == ".parquet" else "w") as fh:
            if suffix == ".parquet":
                df.to_parquet(fh, index=False)
            elif suffix in (".csv", ".tsv"):
                df.to_csv(fh, index=False, **({"sep": "\t", "quoting": csv.QUOTE_NONE} if suffix == ".tsv" else {}))
            else:
                df.to_json(fh, orient="records", lines=True, force_ascii=False)
        Outputs(COMMAND).written(out)
        written.append(out)
    if save_to_disk is not None:
        _save_folder(df, Path(save_to_disk))
        written.append(Path(save_to_disk))
    for p in written:
        logger.info("corrected dataset (%d rows) -> %s", len(df), p)
    return written


def push_to_hub(df: pd.DataFrame, repo_id: str, *, private: bool = False) -> None:
    """Upload the corrected table as a Hub dataset (needs ``huggingface-cli login``)."""
    import datasets

    datasets.Dataset.from_pandas(df, preserve_index=False).push_to_hub(repo_id, private=private)
    logger.info("pushed the corrected dataset to https://huggingface.co/datasets/%s", repo_id)


def _check_kind_of_file(corrections, kind, train_file, cache_dir) -> None:
    """Where the data did not load as the corrections' kind: say so in one line when the file is another
    kind's data (sentences of words and tags given classification corrections)."""
    if kind.name != kinds.CLASSIFICATION or not train_file:
        return
    try:
        from .data import _load_file

        first = _load_file(train_file, cache_dir)[0]
    except Exception:  # noqa: BLE001 - the loader's own error says what is wrong
        return
    if any(isinstance(v, list) and v and all(isinstance(x, str) for x in v) for v in first.values()):
        raise CorrectionsError(f"{corrections} holds corrections of a classification run (one label per example), "
                               f"but {train_file} holds sentences of words and tags (a token classification run's "
                               "data): give apply the corrections.json that this NER run's review page exported")


def apply_corrections_file(corrections: str | os.PathLike, *, train_file: str | None = None,
                           task_name: str | None = None, text_columns: Sequence[str] | None = None,
                           label_column: str | None = None, class_names: Sequence[str] | None = None,
                           cache_dir: str | None = None, output: str | os.PathLike | None = None,
                           save_to_disk: str | os.PathLike | None = None, overwrite_output_dir: bool = False,
                           ignore_fingerprint: bool = False, unsure: str = "keep", push_to_hub_repo: str | None = None,
                           private: bool = False) -> pd.DataFrame:
    """``apply_corrections.py`` as a function: every check (outputs, corrections, fingerprints,
    labels) runs before anything is written; returns the corrected table."""
    inputs = [corrections, train_file]
    check_outputs(output=output, save_to_disk=save_to_disk, inputs=inputs, overwrite_output_dir=overwrite_output_dir)
    parsed = read_corrections(corrections)
    kind = kinds.get(parsed.kind)  # what the review page exported (classification for older files)
    if output is not None and Path(output).suffix.lower() not in kind.output_formats:
        raise CorrectionsError(f"--output {output}: a corrected {kind.name} dataset is written as "
                               f"{', '.join(kind.output_formats)}")
    if kind.name != kinds.CLASSIFICATION and not train_file:
        raise CorrectionsError(f"{corrections}: corrections of a {kind.name} run apply to its training file: "
                               "pass --train_file")
    try:
        data = kind.load_data({"kind": kind.name, "task_name": task_name,
                               "train_file": str(Path(train_file).resolve()) if train_file else None,
                               "text_columns": text_columns, "label_column": label_column},
                              label_names=class_names, cache_dir=cache_dir, where=str(corrections))
    except TrainingDynamicsError:
        _check_kind_of_file(corrections, kind, train_file, cache_dir)
        raise
    where = str(corrections)
    if kind.corrections_name_labels:  # before the fingerprints, which would only say that the data changed
        check_label_names(data, parsed, where=where)
    fingerprints = data_fingerprints(data)
    check_dataset_fingerprint(data, parsed, ignore=ignore_fingerprint, where=where, fingerprints=fingerprints)
    df = kind.apply_corrections(data, parsed, where=where, unsure=unsure, skip_changed=ignore_fingerprint,
                                fingerprints=fingerprints)
    write_corrected(df, output=output, save_to_disk=save_to_disk, inputs=inputs,
                    overwrite_output_dir=overwrite_output_dir)
    if push_to_hub_repo:
        push_to_hub(df, push_to_hub_repo, private=private)
    return df
