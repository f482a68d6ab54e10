"""Guarding a run's outputs: one run per output folder, a full disk said plainly,
and the run's record marked failed whatever ends the run.

* ``OutputLock``: rank 0 holds ``<output>/.neurodamus.lock`` from the moment the run claims the
  folder until it ends: an exclusive ``flock`` on the file (released by the kernel when the
  process dies, however it dies) plus the holder's pid, host, config and start time written into
  it for the message a second run prints. Where ``flock`` is not available (some network file
  systems) the recorded pid decides: the lock is broken only when its host is this one and the
  pid is gone.
* ``writing``: a full disk while writing a file becomes one message naming the file and the
  free space, and the temporary file is removed, instead of an HDF5 traceback.
* ``fail_active_run``: the run record of this process (``engine.summary.RunRecord``) says
  ``failed`` with the message, from the CLI's error paths, signal handlers and the watchdog.

No dependency but ``errors``: the CLI, ``parallel``, the engine and the report writers use it.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import json
import os
import shutil
import socket
from pathlib import Path

from .errors import NeurodamusError, OutputError, OutputGone

LOCK_NAME = ".neurodamus.lock"


# ---- the run in this process -----------------------------------------------------------------
_ACTIVE = None


def set_active_run(record) -> None:
    """``record`` (with a ``fail(message)`` method) is this process's run until it ends."""
    global _ACTIVE
    _ACTIVE = record


def clear_active_run(record) -> None:
    global _ACTIVE
    if _ACTIVE is record:
        _ACTIVE = None


def fail_active_run(message: str) -> None:
    """Mark this process's run ``failed`` with ``message`` and free its output folder (no-op
    when this process records no run). Safe to call from a signal handler or twice."""
    record = _ACTIVE
    if record is not None:
        record.fail(message)


# ---- one run per output folder ---------------------------------------------------------------
class OutputFolderBusy(NeurodamusError):
    """Another live run holds the folder; ``holder`` is what it recorded."""

    def __init__(self, folder: Path, holder: dict):
        self.folder, self.holder = folder, holder
        who = (f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, config "
               f"{holder.get('config', '?')}, started {holder.get('started', '?')}")
        super().__init__(f"output folder {folder}: in use by another run ({who}): wait for it "
                         f"to end or choose another output folder")


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _alive_here(holder: dict) -> bool:
    """Whether the recorded holder may still run (unknown hosts count as alive)."""
    if holder.get("host") != socket.gethostname():
        return bool(holder)
    try:
        os.kill(int(holder.get("pid", -1)), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, TypeError):
        return True
    return True


class OutputLock:
    def __init__(self, path: Path, fd: int):
        self.path, self._fd = path, fd

    @classmethod
    def acquire(cls, folder, config_path) -> OutputLock:
        """Claim ``folder`` for this run or raise OutputFolderBusy naming the holder."""
        folder = Path(folder)
        path = folder / LOCK_NAME
        for _ in range(3):   # the holder may remove the file between our open and flock
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    os.close(fd)
                    raise OutputFolderBusy(folder, _read(path)) from None
                holder = _read(path)   # no flock here: trust the recorded pid
                if holder and holder.get("pid") != os.getpid() and _alive_here(holder):
                    os.close(fd)
                    raise OutputFolderBusy(folder, holder) from None
            try:
                if os.fstat(fd).st_ino == os.stat(path).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        record = {"pid": os.getpid(), "host": socket.gethostname(),
                  "config": str(Path(config_path).resolve()),
                  "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
        return cls(path, fd)

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._fd = None


# ---- full disk ----------------------------------------------------------------------------------
_NO_SPACE_TEXT = ("No space left on device", "Disk quota exceeded", "errno = 28",
                  "errno = 122")


def no_space(exc: BaseException) -> bool:
    """Whether ``exc`` (OSError, or HDF5's error text) says the device or quota is full."""
    if getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
        return True
    return any(text in str(exc) for text in _NO_SPACE_TEXT)


def free_space_text(path) -> str:
    folder = Path(path).parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return f"free space on {folder} unknown"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if free < 1024 or unit == "TiB":
            return f"{free:.0f} {unit} free on {folder}" if unit == "B" else \
                f"{free:.1f} {unit} free on {folder}"
        free /= 1024.0
    return ""


@contextlib.contextmanager
def writing(path, tmp=None, keep=None):
    """Translate a full disk while writing ``path`` (through ``tmp``) into an OutputError;
    ``tmp`` is removed on any failure. ``keep``: a temporary file several ranks write in turn,
    left in place (the run record removes it when the run fails)."""
    try:
        yield
    except (OSError, RuntimeError) as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if no_space(exc):
            raise OutputError(f"{path}: cannot write: the disk is full "
                              f"({free_space_text(path)})") from exc
        # ranks write report files in turn: a file gone, or still locked by the rank before,
        # means that rank failed writing it (it reports the failure and ends the job)
        if isinstance(exc, (FileNotFoundError, BlockingIOError)) and ".tmp-" in str(exc) + \
                str(keep or ""):
            raise OutputGone(f"{path}: removed or left locked by the rank that failed writing "
                             f"it") from exc
        raise


__all__ = ["LOCK_NAME", "OutputFolderBusy", "OutputLock", "clear_active_run",
           "fail_active_run", "free_space_text", "no_space", "set_active_run", "writing"]
