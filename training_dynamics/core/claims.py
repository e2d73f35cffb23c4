"""Exclusive lock files held by a process: the output guard's claims and the run folder's recording lock.

A lock is a small JSON file ``{"pid": ..., "host": ..., "started": ...}`` created exclusively: its
content is written to a private temporary file first and then hard-linked to the lock's name (or,
where links are not supported, created with ``O_CREAT | O_EXCL``), so a lock is never seen half
written and two processes can never both create it.

A lock whose process is no longer running on this host is *stale*. Taking one over is atomic: the
taker locks the folder itself (``flock`` on the folder, released by the kernel if the process dies),
reads the lock again, and only if it still holds the same bytes deletes it and creates its own
exclusively. Of many processes racing on one stale lock, exactly one gets it; the others then see
a live holder.

A lock that names no process id (a pid that is not a positive number below ``2**31``) is never
taken over: whoever wrote it cannot be shown to be gone. It is reported in one line naming the file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Iterator

logger = logging.getLogger(__name__)

#: the largest process id that can name a process (Linux's limit is 2**22)
MAX_PID = 2**31 - 1


def me(**extra) -> dict:
    """This process as a lock's holder: pid, host, start time (plus ``extra``)."""
    return {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S"), **extra}


def holder_pid(holder: dict) -> int | None:
    """The holder's pid, or None when the lock names no process id."""
    pid = holder.get("pid")
    if isinstance(pid, str) and pid.isdigit() and len(pid) <= 10:
        pid = int(pid)
    if isinstance(pid, bool) or not isinstance(pid, int) or not 0 < pid <= MAX_PID:
        return None
    return pid


def is_mine(holder: dict) -> bool:
    """The lock was taken by this process."""
    return holder_pid(holder) == os.getpid() and holder.get("host") == socket.gethostname()


def alive(pid: int) -> bool:
    """A process with this id runs on this host (or cannot be signalled: counted as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OSError, OverflowError):
        return False
    return True


def is_stale(holder: dict) -> bool:
    """The holder was a process on this host that is no longer running."""
    pid = holder_pid(holder)
    return pid is not None and holder.get("host") == socket.gethostname() and not alive(pid)


def _read_bytes(path: Path) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read(65536)
    except FileNotFoundError:
        return None
    except OSError:
        return b""


def read(path: str | os.PathLike) -> dict | None:
    """The lock's holder; ``{}`` when it is unreadable (empty, not JSON, a folder); None when there is none."""
    raw = _read_bytes(Path(path))
    if raw is None:
        return None
    try:
        holder = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _create(path: Path, info: dict) -> None:
    """Create ``path`` holding ``info``, exclusively; :class:`FileExistsError` when it exists."""
    data = json.dumps(info).encode("utf-8")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        try:
            os.link(tmp, path)  # atomic, and the lock is complete the moment it exists
            return
        except FileExistsError:
            raise
        except OSError:  # a file system without hard links
            pass
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


@contextlib.contextmanager
def folder_mutex(folder: str | os.PathLike) -> Iterator[None]:
    """Hold the kernel's exclusive ``flock`` on ``folder`` for a short critical section (a no-op where
    folders cannot be locked). Released when the block ends or the process dies."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            logger.debug("%s: cannot lock the folder; taking a stale lock over without it", folder)
        yield
    finally:
        os.close(fd)  # (closing releases the flock)


def _take_over(path: Path, seen: bytes, info: dict) -> bool:
    """Replace the stale lock ``path`` (still holding ``seen``) by one holding ``info``; False when it changed."""
    with folder_mutex(path.parent):
        if _read_bytes(path) != seen:
            return False  # released, or taken over by another process first
        path.unlink()
        try:
            _create(path, info)
        except FileExistsError:
            return False  # created anew by a process that found it gone
        return True


def take(path: str | os.PathLike, info: dict | None = None) -> dict | None:
    """Create the lock ``path`` for this process, taking over a stale one (logged).

    Returns None when this call took the lock, else the holder found there: this process's own
    (``is_mine``), a live process's, another host's, an unreadable lock (``{}``), or one naming no
    process id (:func:`holder_pid` is None). The caller decides what to say.
    """
    path = Path(path)
    info = info or me()
    unreadable = 0
    for _ in range(100):
        try:
            _create(path, info)
            return None
        except FileExistsError:
            pass
        seen = _read_bytes(path)
        if seen is None:
            continue  # released in between: try again
        holder = read(path) or {}
        if not holder:  # written by an older version right now, or emptied by a crash
            unreadable += 1
            if unreadable < 3:
                time.sleep(0.1)
                continue
            return {}
        if is_mine(holder) or not is_stale(holder):
            return holder
        if _take_over(path, seen, info):
            logger.warning("%s: took over the lock left by process %s (no longer running, started %s)", path,
                           holder.get("pid"), holder.get("started", "?"))
            return None
    return read(path) or {}


def give_back(path: str | os.PathLike) -> None:
    """Delete the lock ``path`` if this process holds it."""
    holder = read(path)
    if holder and is_mine(holder):
        with contextlib.suppress(FileNotFoundError):
            Path(path).unlink()


def describe(path: str | os.PathLike, holder: dict, *, what: str) -> str | None:
    """One line for a lock ``holder`` that names no process (unreadable, no process id), else None.

    ``what``: what the lock guards ("recording into dy_log/x").
    """
    if not holder:
        return f"{path}: an unreadable lock; if no {what} is running, delete this file and run again"
    if holder_pid(holder) is None:
        pid = str(holder.get("pid"))
        pid = pid if len(pid) <= 24 else pid[:21] + "..."
        return (f"{path}: a lock naming no process id (pid {pid!r}), so whether its holder still runs is unknown; "
                f"if no {what} is running, delete this file and run again")
    return None
