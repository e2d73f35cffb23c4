"""Whether a command may write a path: the one guard every writer asks before writing.

The rule (docs/design.md, "Errors and safety"): a command never replaces an input (a file or
folder it reads), nor a file it did not write; it replaces a file it wrote earlier only when asked
(``--overwrite_output_dir``, as the Trainer did).

"Written by us" is known from a small manifest, :data:`MANIFEST_NAME`, in the folder of every file
a command writes: ``{"files": {"<name>": {"command": "select", "size": 123, "mtime_ns": ...}}}``.
A file counts as written by a command only while its manifest entry names that command and its
size and modification time are still the ones it had once written: a file edited, replaced or
copied in since is the user's. A symbolic link is never ours (we never write one).

**Claim, then write.** Checking a folder or a file claims its folder for this command: the lock
:data:`CLAIM_NAME` there is created exclusively (:mod:`~training_dynamics.core.claims`: pid, host, start
time; a stale one is taken over atomically) *before* the check, and held until the command ends (the
guard is released or garbage-collected, or the process exits). A second command writing into the same
folder meanwhile is refused in one line, so two commands can never both pass the check. Manifest
updates are a read-merge-write under the kernel's lock of the folder, so concurrent writers (the
``metrics --partition`` jobs, which claim no folder) merge. A damaged manifest, or a folder in its
place, is named in one line before anything is written.

**The run's own folder is the run's.** No guarded command writes into a run's dynamics folder
(``<run>/training_dynamics``, a folder holding recorded epochs): only ``record`` does, through
:class:`~training_dynamics.core.run_writer.RunWriter`.

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
import weakref
from pathlib import Path
from typing import Iterable

from training_dynamics.core import claims, fileio
from training_dynamics.core.errors import OutputError

logger = logging.getLogger(__name__)

#: in every folder a command wrote a file into: which files it wrote there
MANIFEST_NAME = ".training_dynamics_outputs.json"
#: in every folder a command is writing into, while it runs: which command (see :mod:`claims`)
CLAIM_NAME = ".training_dynamics_outputs.lock"
#: the guard's own files: never a command's output, never counted as a user's file
OWN_FILES = (MANIFEST_NAME, CLAIM_NAME)

#: the names of a run's dynamics folder (and of a recording's staging and retired ones)
DYNAMICS_FOLDER_NAMES = ("training_dynamics", ".training_dynamics.new", ".training_dynamics.old")

#: real folder -> how many live guards of this process hold its claim
_claimed: dict[str, int] = {}

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


def manifest_problem(folder: Path) -> str | None:
    """One line when ``folder``'s manifest cannot be read (damaged, or a folder in its place), else None."""
    path = folder / MANIFEST_NAME
    if not (path.exists() or path.is_symlink()):
        return None
    if path.is_dir() or not path.is_file():
        return (f"{path} is {'a folder' if path.is_dir() else 'not a file'}, not the list of the files training-dynamics "
                "wrote there; move it away and run again")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
            raise ValueError('no {"files": {...}} object')
    except (OSError, ValueError, RecursionError) as exc:
        reason = " ".join(str(exc).split())[:120] or type(exc).__name__
        return (f"{path}: the list of the files training-dynamics wrote there is damaged ({reason}); delete it and run "
                "again (the files it listed then count as yours and are never replaced)")
    return None


def dynamics_folder_of(path: Path) -> Path | None:
    """The run's dynamics folder ``path`` is, or is inside, or None: ``path`` itself, or a folder above it
    named ``training_dynamics`` (or a recording's staging folder), holding a file the recorder writes."""
    from training_dynamics.core.dynamics_file import recorder_file

    for folder in (path, *path.parents):
        if folder != path and folder.name not in DYNAMICS_FOLDER_NAMES:
            continue
        if folder.is_dir() and any(recorder_file(p.name) and not p.name.endswith(".tmp") for p in _entries(folder)):
            return folder
    return None


def _refuse_dynamics_folder(shown: Path, folder: Path, flag: str) -> None:
    dy = dynamics_folder_of(Path(os.path.abspath(folder)))
    if dy is not None:
        raise OutputError(f"{flag} {shown} is in the run's dynamics folder {dy}, which only `training-dynamics "
                          "record` writes into; choose a folder outside training_dynamics/")


def _entries(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError:
        return []


def _release(held: list) -> None:
    """Give back the claims of one guard (the last holder in this process deletes the lock, and the
    folders the claim created when they stayed empty)."""
    while held:
        folder, created = held.pop()
        key = str(folder)
        left = _claimed.get(key, 1) - 1
        if left > 0:
            _claimed[key] = left
            continue
        _claimed.pop(key, None)
        claims.give_back(folder / CLAIM_NAME)
        if created is None:
            continue
        while True:
            try:
                folder.rmdir()
            except OSError:
                break
            if folder == created:
                break
            folder = folder.parent


def written_by(path: PathLike) -> str | None:
    """The command that wrote ``path`` (per its folder's manifest), or None: not recorded, a link,
    or changed since it was written."""
    path = Path(path)
    if path.is_symlink() or not (path.is_file() or path.is_dir()):
        return None
    entry = _read_manifest(path.parent).get(path.name)
    if not isinstance(entry, dict):
        return None
    if path.is_dir():  # a folder a command wrote as a whole (a Trainer checkpoint): recorded by name
        command = entry.get("command") if entry.get("folder") is True else None
        return command if isinstance(command, str) else None
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

    The folders it checks are claimed until :meth:`release` (or the guard is garbage-collected, or the
    process ends); it is also a context manager.
    """

    def __init__(self, command: str, *, inputs: Iterable[PathLike | None] = (), overwrite: bool = False) -> None:
        self.command = command
        self.inputs = [Path(p) for p in inputs if p is not None and str(p) and Path(p).exists()]
        self.overwrite = overwrite
        self._held: list[tuple[Path, Path | None]] = []
        self._release = weakref.finalize(self, _release, self._held)

    def __enter__(self) -> "Outputs":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def release(self) -> None:
        """Give back this guard's claims (the files it wrote stay recorded in the manifests)."""
        _release(self._held)

    def claim(self, folder: PathLike, *, flag: str = "--output_dir") -> Path:
        """Claim ``folder`` (created if needed) for this command before anything is checked or written there.

        Raises:
            OutputError: the folder is a run's dynamics folder, another process's command is writing
                into it, or its manifest is damaged (one line each).
        """
        folder = Path(folder)
        _refuse_dynamics_folder(folder, folder, flag)
        real = Path(os.path.realpath(folder))
        if any(real == f for f, _ in self._held):
            return folder
        missing = [p for p in (real, *real.parents) if not p.exists()]
        real.mkdir(parents=True, exist_ok=True)
        entry = (real, missing[-1] if missing else None)
        holder = claims.take(real / CLAIM_NAME, claims.me(command=f"training-dynamics {self.command}"))
        if holder is not None and not claims.is_mine(holder):
            _claimed[str(real)] = _claimed.get(str(real), 0) + 1
            _release([entry])  # (a folder it created is removed again)
            line = claims.describe(real / CLAIM_NAME, holder, what=f"training-dynamics command writing into {folder}")
            raise OutputError(line or f"{flag} {folder} is being written by `{holder.get('command', 'a command')}` "
                              f"(process {holder.get('pid')} on {holder.get('host')}, since {holder.get('started', '?')}); "
                              f"wait for it to finish or choose another folder (if that process is gone, delete "
                              f"{real / CLAIM_NAME})")
        _claimed[str(real)] = _claimed.get(str(real), 0) + 1
        self._held.append(entry)
        problem = manifest_problem(real)
        if problem is not None:
            raise OutputError(problem)
        return folder

    def _input(self, path: Path) -> Path | None:
        return next((i for i in self.inputs if _same(path, i)), None)

    def check_file(self, path: PathLike, *, flag: str = "--output", claim: bool = True) -> Path:
        """Refuse (:class:`OutputError`) writing the file ``path`` unless it is new, or an earlier
        output of this command and ``overwrite`` was asked; returns ``path``. Its folder is claimed
        first (:meth:`claim`) unless ``claim=False`` (jobs writing their own files into one folder at
        once: still never into a run's dynamics folder)."""
        path = Path(path)
        hit = self._input(path)
        if hit is not None:
            raise OutputError(f"{flag} {path} is the input {hit}; write to a new file")
        if path.is_dir() and not path.is_symlink():
            raise OutputError(f"{flag} {path} is a folder; give a file name")
        if path.name in OWN_FILES:
            raise OutputError(f"{flag} {path}: that name is training-dynamics' own bookkeeping file; choose another name")
        _refuse_dynamics_folder(path, path.parent, flag)
        if claim:
            self.claim(path.parent, flag=flag)
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

    def check_folder(self, path: PathLike, *, flag: str = "--output_dir", claim: bool = True) -> Path:
        """Refuse a folder to write files into that is an input folder or an existing file (each file
        written into it is checked with :meth:`check_file` or by its own writer); then claim it
        (:meth:`claim`), unless ``claim=False`` (a writer with its own lock: the run folder's)."""
        path = Path(path)
        hit = self._input(path)
        if hit is not None:
            raise OutputError(f"{flag} {path} is the input {hit}; write into another folder")
        if path.exists() and not path.is_dir():
            raise OutputError(f"{flag} {path} is a file; give a folder")
        if not claim:
            _refuse_dynamics_folder(path, path, flag)
            return path
        return self.claim(path, flag=flag)

    def written(self, *paths: PathLike) -> None:
        """Record ``paths`` (just written) as this command's, in their folders' manifests (a folder is
        recorded as a whole, by name: a Trainer checkpoint)."""
        by_folder: dict[Path, list[Path]] = {}
        for p in map(Path, paths):
            by_folder.setdefault(p.parent, []).append(p)
        for folder, files in by_folder.items():
            new = {}
            for p in files:
                if p.is_dir() and not p.is_symlink():
                    new[p.name] = {"command": self.command, "folder": True}
                    continue
                st = p.stat()
                new[p.name] = {"command": self.command, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
            with claims.folder_mutex(folder):  # read, merge, write: concurrent writers keep each other's entries
                entries = {**_read_manifest(folder), **new}
                fileio.write_json(folder / MANIFEST_NAME, {"about": "files written by training-dynamics commands (a "
                                                           "command replaces only its own, unchanged, files)",
                                                           "files": entries})
