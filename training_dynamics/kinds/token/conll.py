"""CoNLL files of tagged words (``.conll``, ``.iob``, ``.bio``, ``.txt``): read them, write corrections back.

The format of CoNLL-2003, WNUT 2017 and ``spacy convert``: one word per line, its columns separated by
a tab (or, in a file without tabs, by spaces); the first column is the word, the LAST its tag; columns
between them (part of speech, chunk) are kept in the file but not used. A blank line ends a sentence;
``-DOCSTART-`` lines (CoNLL-2003's document boundaries) are skipped. A sentence's ``guid`` is its
position among the file's sentences (0, 1, ...).

Tag schemes: a file whose chunks may start with ``I-`` and whose ``B-`` only ever follows a chunk of
the same type is IOB1 (CoNLL-2003's original scheme); it is converted to IOB2 (every chunk starts with
``B-``, what ``run_ner.py`` and seqeval expect) with one log line. An IOB2 file with a few chunks that
start with ``I-`` keeps them as written (they may be the label errors one looks for), with a warning.

Writing back (:func:`write_corrected_conll`, ``apply --output corrected.conll``) rewrites, line by line,
only the tag of the words whose tag changed (in the file's own scheme): every other byte of the file --
the other columns, the separators, ``-DOCSTART-`` and blank lines, line endings -- is kept as it was.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from training_dynamics.core.data import DataError

logger = logging.getLogger(__name__)

SUFFIXES = (".conll", ".iob", ".bio", ".txt")
WORDS, TAGS = "tokens", "ner_tags"  #: the columns a read file gets (what ``record-ner`` guesses)
DOCSTART = "-DOCSTART-"
_IOB = re.compile(r"O|[BI]-\S+")
_LAST_FIELD = re.compile(r"(\S+)(\s*)$")


def is_conll(path: str | os.PathLike | None) -> bool:
    """Whether ``path`` names a CoNLL file (by its extension)."""
    return path is not None and Path(path).suffix.lower() in SUFFIXES


@dataclass
class ConllFile:
    """A parsed CoNLL file: ``words``/``tags`` (IOB2 when ``scheme`` is ``"iob1"``) per sentence,
    ``file_tags`` as written, ``line_of`` the 0-based line of each word, ``lines`` the raw lines."""

    path: Path
    words: list[list[str]]
    tags: list[list[str]]
    file_tags: list[list[str]]
    line_of: list[list[int]]
    lines: list[str]
    scheme: str  #: ``"iob1"``, ``"iob2"`` or ``"other"`` (tags that are not IOB: kept as written)
    num_columns: int


def _fields(text: str) -> list[str]:
    return [f.strip() for f in text.split("\t")] if "\t" in text else text.split()


def read_conll(path: str | os.PathLike) -> ConllFile:
    """Parse a CoNLL file (module docstring).

    Raises:
        DataError: one line naming ``file:line`` for a line with one column, a different number of
            columns than the file's first word line, or an empty word; or a file with no sentence.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    parts = text.split("\n")  # not splitlines: a word may hold \x85 or \u2028, which it takes for line ends
    lines = [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
    words: list[list[str]] = []
    tags: list[list[str]] = []
    line_of: list[list[int]] = []
    cur_w: list[str] = []
    cur_t: list[str] = []
    cur_l: list[int] = []
    ncols, first = None, None

    def end_sentence():
        if cur_w:
            words.append(list(cur_w))
            tags.append(list(cur_t))
            line_of.append(list(cur_l))
            cur_w.clear(), cur_t.clear(), cur_l.clear()

    for i, raw in enumerate(lines):
        s = raw.rstrip("\r\n").rstrip()
        if not s.strip():
            end_sentence()
            continue
        fields = _fields(s)
        if fields[0] == DOCSTART:
            end_sentence()
            continue
        where = f"{path}:{i + 1}"
        if len(fields) < 2:
            raise DataError(f"{where}: one column ({s.strip()[:40]!r}): expected a word and its tag, e.g. "
                            "'Paris<TAB>B-LOC' (the last column is the tag), and a blank line between sentences")
        if ncols is None:
            ncols, first = len(fields), i + 1
        elif len(fields) != ncols:
            raise DataError(f"{where}: {len(fields)} columns but line {first} has {ncols}: every word line needs the "
                            "same columns (word ... tag)")
        if not fields[0]:
            raise DataError(f"{where}: the word (first column) is empty")
        if not fields[-1]:
            raise DataError(f"{where}: the tag (last column) is empty")
        cur_w.append(fields[0])
        cur_t.append(fields[-1])
        cur_l.append(i)
    end_sentence()
    if not words:
        raise DataError(f"{path}: no sentence (one 'word<TAB>tag' per line, a blank line between sentences)")
    scheme, iob2 = _scheme(tags, path)
    return ConllFile(path, words, iob2, tags, line_of, lines, scheme, ncols)


def _chunk_starts(tags: Sequence[str]) -> tuple[int, int]:
    """(chunks of a sentence that start with ``I-``, ``B-`` tags that start a chunk after another type or O)."""
    i_starts = b_starts = 0
    prev = "O"
    for t in tags:
        if t.startswith("I-") and prev[2:] != t[2:]:
            i_starts += 1
        elif t.startswith("B-") and prev[2:] != t[2:]:
            b_starts += 1
        prev = t
    return i_starts, b_starts


def _scheme(tags: list[list[str]], path: Path) -> tuple[str, list[list[str]]]:
    """The file's tag scheme and its tags in IOB2 (module docstring)."""
    if not all(_IOB.fullmatch(t) for sent in tags for t in sent):
        return "other", tags
    i_starts = b_starts = 0
    for sent in tags:
        i, b = _chunk_starts(sent)
        i_starts, b_starts = i_starts + i, b_starts + b
    if i_starts and not b_starts:
        logger.info("%s: IOB1 tags (%d chunks start with I-): converted to IOB2 (every chunk starts with B-); "
                    "apply writes corrections back in IOB1", path, i_starts)
        return "iob1", [to_iob2(s) for s in tags]
    if i_starts:
        logger.warning("%s: %d chunks start with I- in a file whose other chunks start with B- (IOB2): kept as "
                       "written (they may be tagging errors)", path, i_starts)
    return "iob2", tags


def to_iob2(tags: Sequence[str]) -> list[str]:
    """IOB1 -> IOB2: an ``I-X`` that starts a chunk (after O or another type) becomes ``B-X``."""
    out, prev = [], "O"
    for t in tags:
        out.append("B-" + t[2:] if t.startswith("I-") and prev[2:] != t[2:] else t)
        prev = t
    return out


def to_iob1(tags: Sequence[str]) -> list[str]:
    """IOB2 -> IOB1: a ``B-X`` keeps its ``B-`` only right after a chunk of the same type X, else becomes ``I-X``."""
    out, prev = [], "O"
    for t in tags:
        out.append("I-" + t[2:] if t.startswith("B-") and prev[2:] != t[2:] else t)
        prev = t
    return out


def load_conll_dataset(path: str | os.PathLike):
    """A ``datasets.Dataset`` of the file's sentences: ``tokens`` (words) and ``ner_tags`` (IOB2 tag names)."""
    import datasets

    parsed = read_conll(path)
    return datasets.Dataset.from_dict({WORDS: parsed.words, TAGS: parsed.tags})


def write_corrected_conll(df, out: str | os.PathLike, *, source: dict | None = None) -> Path:
    """Write the corrected sentences ``df`` (``apply``'s table: the words column, the tags column and
    ``guid``) as a CoNLL file at ``out``, atomically.

    When the run read a CoNLL file (``source["train_file"]``), that file is copied line by line with
    only the tags of changed words rewritten (in the file's scheme) and the sentences left out of
    ``df`` (``--unsure drop``) removed; otherwise each word is written as ``word<TAB>tag``, a blank
    line after each sentence.
    """
    from training_dynamics.core import fileio

    source = source or {}
    text_col = (source.get("text_columns") or [WORDS])[0]
    label_col = source.get("label_column") or TAGS
    out = Path(out)
    train_file = source.get("train_file")
    rows = {int(g) if str(g).lstrip("-").isdigit() else g: (w, t)
            for g, w, t in zip(df["guid"], df[text_col], df[label_col])}
    if not is_conll(train_file):
        with fileio.atomic_write(out) as fh:
            for words, tags in rows.values():
                fh.writelines(f"{w}\t{t}\n" for w, t in zip(words, tags))
                fh.write("\n")
        return out
    parsed = read_conll(train_file)
    lines = list(parsed.lines)
    drop: set[int] = set()
    changed = 0
    for s, (words, file_tags) in enumerate(zip(parsed.words, parsed.file_tags)):
        if s not in rows:
            drop.update(range(parsed.line_of[s][0], parsed.line_of[s][-1] + 1))
            end = parsed.line_of[s][-1] + 1  # and the blank line that ends it
            if end < len(lines) and not lines[end].strip():
                drop.add(end)
            continue
        got_words, got_tags = rows[s]
        if list(got_words) != words:
            raise DataError(f"{train_file}: sentence {s} is not the one corrected (its words changed); apply again")
        new = to_iob1(list(got_tags)) if parsed.scheme == "iob1" else [str(t) for t in got_tags]
        for j, (old, tag) in enumerate(zip(file_tags, new)):
            if old != tag:
                k = parsed.line_of[s][j]
                body = lines[k].rstrip("\r\n")
                ending = lines[k][len(body):]
                lines[k] = _LAST_FIELD.sub(lambda m: tag + m.group(2), body, count=1) + ending
                changed += 1
    with fileio.atomic_write(out, "wb") as fh:  # bytes: line endings exactly as read
        fh.write("".join(line for k, line in enumerate(lines) if k not in drop).encode("utf-8"))
    logger.info("%s: %s with %d tags rewritten%s", out, Path(train_file).name, changed,
                f", {len(parsed.words) - len(rows)} sentences left out" if len(rows) < len(parsed.words) else "")
    return out
