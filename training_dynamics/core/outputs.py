"""Whether a command may write a path: the one guard every writer asks before writing.

The rule (docs/design.md, "Errors and safety"): a command never replaces an input (a file or
folder it reads), nor a file it did not write; it replaces a file it wrote earlier only when asked
(``--overwrite_output_dir``, as the Trainer did).

"Written by us" is known from a small manifest, :data:`MANIFEST_NAME`, in the folder of every file
a command writes: ``{"files": {"<name>": {"command": "select", "size": 123, "mtime_ns": ...}}}``.
A file counts as written by a command only while its manifest entry names that command and its
size and modification time are still the ones it had once written: a file edited, replaced or
copied in since is the user's. A symbolic link is never ours (we never write one).

Usage: check every output before the work starts, write (atomically, :mod:`fileio`), then record::

    guard = Outputs("review", inputs=[issues_file], overwrite=args.overwrite_output_dir)
    page = guard.check_file(args.page, flag="--output")
    ...write page...
    guard.written(page)
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Iterable

from training_dynamics.core import fileio
from training_dynamics.core.errors import OutputError

logger = logging.getLogger(__name__)

#: in every folder a command wrote a file into: which files it wrote there
MANIFEST_NAME = ".training_dynamics_outputs.json"

PathLike = str | os.PathLike


def _same(a: Path, b: Path) -> bool:
    """The same file or folder, by path (links resolved) or by inode (hard links)."""
    try:
        if a.resolve() == b.resolve():
            return True
        return os.path.samefile(a, b)
    except OSError:
        return False


def _read_manifest(folder: Path) -> dict:
    try:
        files = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))["files"]
        return files if isinstance(files, dict) else {}
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return {}


def written_by(path: PathLike) -> str | None:
    """The command that wrote ``path`` (per its folder's manifest), or None: not recorded, a link,
    or changed since it was written."""
    path = Path(path)
    if path.is_symlink() or not path.is_file():
        return None
    entry = _read_manifest(path.parent).get(path.name)
    if not isinstance(entry, dict):
        return None
    st = path.stat()
    if entry.get("size") != st.st_size or entry.get("mtime_ns") != st.st_mtime_ns:
        return None
    command = entry.get("command")
    return command if isinstance(command, str) else None


class Outputs:
    """The outputs of one command: checked before writing, recorded after.

    Args:
        command: the command's name (``"review"``, ``"select"``, ...), recorded in the manifest.
        inputs: the files and folders the command reads; never written (missing ones are ignored).
        overwrite: ``--overwrite_output_dir``: replace files this command wrote earlier.
    """

    def __init__(self, command: str, *, inputs: Iterable[PathLike | None] = (), overwrite: bool = False) -> None:
        self.command = command
        self.inputs = [Path(p) for p in inputs if p is not None and str(p) and Path(p).exists()]
        self.overwrite = overwrite

    def _input(self, path: Path) -> Path | None:
        return next((i for i in self.inputs if _same(path, i)), None)

    def check_file(self, path: PathLike, *, flag: str = "--output") -> Path:
        """Refuse (:class:`OutputError`) writing the file ``path`` unless it is new, or an earlier
        output of this command and ``overwrite`` was asked; returns ``path``."""
        path = Path(path)
        hit = self._input(path)
        if hit is not None:
            raise OutputError(f"{flag} {path} is the input {hit}; write to a new file")
        if path.is_dir() and not path.is_symlink():
            raise OutputError(f"{flag} {path} is a folder; give a file name")
        if not (path.exists() or path.is_symlink()):
            return path
        by = written_by(path)
        if by != self.command:
            raise OutputError(f"{flag} {path} exists and was not written by `training-dynamics {self.command}`"
                              f"{f' (it was by `{by}`)' if by else ''}; move it away or choose another name")
        if not self.overwrite:
            raise OutputError(f"{flag} {path} was written by an earlier `training-dynamics {self.command}`; pass "
                              "--overwrite_output_dir to replace it, or choose another name")
        return path

    def check_files(self, paths: Iterable[PathLike], *, flag: str = "--output_dir") -> list[Path]:
        """:meth:`check_file` for each path (all before any is written)."""
        return [self.check_file(p, flag=flag) for p in paths]

    def check_folder(self, path: PathLike, *, flag: str = "--output_dir") -> Path:
        """Refuse a folder to write files into that is an input folder or an existing file (each file
        written into it is checked with :meth:`check_file` or by its own writer)."""
        path = Path(path)
        hit = self._input(path)
        if hit is not None:
            raise OutputError(f"{flag} {path} is the input {hit}; write into another folder")
        if path.exists() and not path.is_dir():
            raise OutputError(f"{flag} {path} is a file; give a folder")
        return path

    def written(self, *paths: PathLike) -> None:
        """Record ``paths`` (just written) as this command's, in their folders' manifests."""
        by_folder: dict[Path, list[Path]] = {}
        for p in map(Path, paths):
            by_folder.setdefault(p.parent, []).append(p)
        for folder, files in by_folder.items():
            entries = _read_manifest(folder)
            for p in files:
                st = p.stat()
                entries[p.name] = {"command": self.command, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
            fileio.write_json(folder / MANIFEST_NAME, {"about": "files written by training-dynamics commands (a "
                                                       "command replaces only its own, unchanged, files)",
                                                       "files": entries})
