"""The one writer of a run folder's recorded dynamics: create, lock, stage, swap in, recover, prune.

A recording goes through a :class:`RunWriter` (the Trainer receives it):

* **Lock.** ``<run>/.td_recording.lock`` is created exclusively (:mod:`~training_dynamics.core.claims`) and
  holds the recording process's pid, host and start time. A second recording into the same folder
  refuses at once, naming the holder. A lock left by a process that is no longer running on this host
  is taken over atomically (of many racing takers exactly one gets it; logged); one from another host,
  or one naming no process id, is named with how to proceed.
* **Stage and swap in.** A new recording writes into ``.training_dynamics.new`` beside the folder
  and swaps it in once its epoch 0 is complete, so an interrupted first epoch leaves the old run as
  it was and the folder never holds epochs of two runs. A crash between the two renames is finished
  by :meth:`RunWriter.recover`.
* **Prune.** A resumed recording keeps the epochs before its checkpoint and removes later ones.

A ``training_dynamics/`` that is a symbolic link keeps working: staging and renames happen beside
the folder it points to, and the link is left as it is.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Sequence

from training_dynamics.core import claims, dynamics_file
from training_dynamics.core.dynamics_file import recorder_file
from training_dynamics.core.errors import RunLockedError
from training_dynamics.core.outputs import Outputs

logger = logging.getLogger(__name__)

LOCK_NAME = ".td_recording.lock"


def epoch_files(dy_dir: str | os.PathLike) -> list[Path]:
    """The ``dynamics_epoch_<e>.<jsonl|npz>`` files in ``dy_dir`` (none when it does not exist)."""
    dy_dir = Path(dy_dir)
    if not dy_dir.is_dir():
        return []
    return sorted(p for p in dy_dir.iterdir() if dynamics_file.EPOCH_FILE_RE.fullmatch(p.name))


def epoch_of(path: Path) -> int:
    """The epoch number of an epoch file's name."""
    return int(dynamics_file.EPOCH_FILE_RE.fullmatch(path.name).group(1))


def check_dynamics_dir(dy_dir: str | os.PathLike, *, overwrite: bool) -> None:
    """Refuse to start a new recording in a folder that holds recorded epochs, unless ``overwrite``, and
    in one that holds files the recorder did not write (:func:`recorder_file`), which the new run's
    folder would replace.

    Raises:
        FileExistsError: one line suggesting ``--overwrite_dynamics`` or another ``--dy_model_name``.
    """
    files = epoch_files(dy_dir)
    others = sorted(p.name for p in Path(dy_dir).iterdir() if not recorder_file(p.name)) if Path(dy_dir).is_dir() else []
    if others:  # a new recording replaces the whole folder: only ever the recorder's own files
        shown = ", ".join(others[:3]) + (f", ... ({len(others) - 3} more)" if len(others) > 3 else "")
        raise FileExistsError(f"{dy_dir} holds files the recorder did not write ({shown}); a new recording replaces "
                              f"only recorded dynamics: move them out of {Path(dy_dir).name}/ and run again, or pass "
                              "another --dy_model_name")
    if files and not overwrite:
        epochs = sorted(epoch_of(p) for p in files)
        raise FileExistsError(f"{dy_dir} already holds training dynamics (epochs {epochs[0]}..{epochs[-1]}); pass "
                              "--overwrite_dynamics to replace them (they are kept until the new run completes its "
                              "first epoch), or another --dy_model_name")


def _real(dy_dir: Path) -> Path:
    """The folder renames act on: the target of a symlinked dynamics folder, else the folder itself."""
    return Path(os.path.realpath(dy_dir)) if dy_dir.is_symlink() else dy_dir


def staging_dir(dy_dir: str | os.PathLike) -> Path:
    """Where a new recording writes until its first epoch is complete (beside ``dy_dir``'s real folder)."""
    real = _real(Path(dy_dir))
    return real.with_name(f".{real.name}.new")


def _retired_dir(dy_dir: Path) -> Path:
    real = _real(dy_dir)
    return real.with_name(f".{real.name}.old")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def swap_in(staged: Path, dy_dir: Path) -> None:
    """Replace ``dy_dir`` (its real folder, for a symlink) by the folder ``staged``: two renames, then the
    old folder is deleted. A crash between the renames leaves no folder (readers fail loudly, never read
    a mix); :func:`recover_swap` finishes the swap."""
    dy_dir = Path(dy_dir)
    real = _real(dy_dir) if dy_dir.is_symlink() else dy_dir
    retired = _retired_dir(dy_dir)
    if retired.exists():
        shutil.rmtree(retired)
    if real.exists():
        os.rename(real, retired)
    os.rename(staged, real)
    _fsync_dir(real.parent)
    shutil.rmtree(retired, ignore_errors=True)


def recover_swap(dy_dir: str | os.PathLike) -> None:
    """Finish a :func:`swap_in` interrupted between its two renames (the staged run had completed an epoch)."""
    dy_dir = Path(dy_dir)
    real = _real(dy_dir)
    retired, staged = _retired_dir(dy_dir), staging_dir(dy_dir)
    if real.exists() or not retired.exists():
        return
    if epoch_files(staged):
        os.rename(staged, real)
        shutil.rmtree(retired, ignore_errors=True)
        logger.warning("%s: finished replacing the old dynamics by the new run's (interrupted before)", dy_dir)
    else:
        os.rename(retired, real)
        logger.warning("%s: restored the dynamics an interrupted run was replacing", dy_dir)


def recording_holder(run_dir: str | os.PathLike) -> dict | None:
    """Who records into ``run_dir`` now: the lock's holder (``{"pid", "host", "started"}``) while its process
    runs (on another host it cannot be checked, so it counts as running), else ``None``."""
    holder = claims.read(Path(run_dir) / LOCK_NAME)
    if not holder or claims.holder_pid(holder) is None or claims.is_stale(holder):
        return None
    return holder


class RunWriter:
    """Writes a run folder's recorded dynamics; the only code that creates, renames or removes its files.

    Args:
        run_dir: the run folder ``<dy_log_dir>/<task>/<model>`` (its lock goes there).
        dynamics_dir: where the epoch files go (default ``<run_dir>/training_dynamics``).
    """

    def __init__(self, run_dir: str | os.PathLike, *, dynamics_dir: str | os.PathLike | None = None,
                 inputs: Sequence[str | os.PathLike | None] = ()):
        self.run_dir = Path(run_dir)
        self.inputs = list(inputs)  #: what the recording reads (model folder, data files): never written over
        self.dynamics_dir = Path(dynamics_dir) if dynamics_dir is not None else dynamics_file.dynamics_dir(self.run_dir)
        self.staged = False  #: writing into the staging folder until a new run's first epoch is complete
        self._held = self._owner = False

    def __repr__(self) -> str:
        return f"RunWriter({str(self.run_dir)!r})"

    @property
    def lock_path(self) -> Path:
        return self.run_dir / LOCK_NAME

    # -- the lock ---------------------------------------------------------------------------
    def acquire(self) -> "RunWriter":
        """Take the run folder's lock (created if needed); re-entrant within this process.

        Raises:
            RunLockedError: another live process records into this folder (one line naming it).
        """
        if self._held:
            return self
        Outputs("record", inputs=self.inputs).check_folder(self.run_dir, flag="the run folder (--dy_log_dir)",
                                                         claim=False)  # (its own lock, below)
        missing = [p for p in (self.run_dir, *self.run_dir.parents) if not p.exists()]
        self._created = missing[-1] if missing else None  # removed again if the run writes nothing
        self.run_dir.mkdir(parents=True, exist_ok=True)
        holder = claims.take(self.lock_path, claims.me())  # (a stale lock is taken over atomically, logged)
        if holder is None:
            self._held, self._owner = True, True
            return self
        if claims.is_mine(holder):
            self._held, self._owner = True, False  # taken earlier by this process: its taker releases it
            return self
        line = claims.describe(self.lock_path, holder, what=f"recording into {self.run_dir}")
        if line is not None:
            raise RunLockedError(line)
        raise RunLockedError(
            f"{self.run_dir} is being recorded by process {holder.get('pid')} on {holder.get('host')} "
            f"(since {holder.get('started', '?')}); wait for it to finish or pass another --dy_model_name "
            f"(if that process is gone, delete {self.lock_path})")

    def _holder(self) -> dict:
        return claims.read(self.lock_path) or {}

    def release(self) -> None:
        """Give the lock back (only when this process holds it)."""
        if not self._held:
            return
        if self._owner and self._holder().get("pid") == os.getpid():
            self.lock_path.unlink(missing_ok=True)
            self._remove_if_empty()
        self._held = self._owner = False

    def _remove_if_empty(self) -> None:
        """A run that wrote nothing leaves no folders behind (only those the lock created, and only empty)."""
        top = getattr(self, "_created", None)
        if top is None:
            return
        folder = self.run_dir
        while True:
            try:
                folder.rmdir()
            except OSError:
                return
            if folder == top:
                return
            folder = folder.parent

    def __enter__(self) -> "RunWriter":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    # -- where files go ---------------------------------------------------------------------
    @property
    def out(self) -> Path:
        """The folder epoch files go to now: the staging folder until a new run's first epoch is complete."""
        return staging_dir(self.dynamics_dir) if self.staged else self.dynamics_dir

    def check_new(self, *, overwrite: bool) -> None:
        """Refuse a new recording over recorded epochs unless ``overwrite`` (see :func:`check_dynamics_dir`)."""
        check_dynamics_dir(self.dynamics_dir, overwrite=overwrite)

    def recover(self) -> None:
        """Finish a swap interrupted by a crash (see :func:`recover_swap`)."""
        recover_swap(self.dynamics_dir)

    def recorded_epochs(self) -> list[int]:
        """The epochs with a dynamics file in the run's dynamics folder."""
        return sorted(epoch_of(p) for p in epoch_files(self.dynamics_dir))

    # -- a recording's life -----------------------------------------------------------------
    def begin_new(self) -> Path:
        """Start a new recording in a fresh staging folder; the dynamics folder is not touched yet."""
        self.staged = True
        staged = self.out
        if staged.exists():
            shutil.rmtree(staged)  # left by an interrupted earlier attempt
        staged.mkdir(parents=True)
        return staged

    def begin_resumed(self, first: int) -> None:
        """Keep the epochs before ``first``; remove later ones and half-written temporary files."""
        self.staged = False
        self.dynamics_dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(staging_dir(self.dynamics_dir), ignore_errors=True)  # a new run interrupted in its epoch 0
        for p in epoch_files(self.dynamics_dir):
            if epoch_of(p) >= first:
                logger.warning("removing %s from an earlier run (this run records epoch %d on)", p, first)
                p.unlink()
        for p in self.dynamics_dir.glob(".dynamics_*.tmp"):
            p.unlink()  # an atomic write killed before its rename

    def epoch_complete(self) -> None:
        """An epoch file was written: a staged new recording now replaces the folder."""
        if self.staged:
            swap_in(self.out, self.dynamics_dir)
            self.staged = False

    def abandon(self) -> None:
        """A new recording that completed no epoch leaves the dynamics folder as it was."""
        if self.staged:
            shutil.rmtree(self.out, ignore_errors=True)
        self.staged = False
