"""One run per output folder at a time (issue 16).

Rank 0 holds ``<output>/.neurodamus.lock`` from the moment the run claims the folder until it
ends: an exclusive ``flock`` on the file (released by the kernel when the process dies, however
it dies) plus the holder's pid, host, config and start time written into it for the message a
second run prints. Where ``flock`` is not available (some network file systems) the recorded
pid decides: the lock is broken only when its host is this one and the pid is gone.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import json
import os
import socket
from pathlib import Path

from ..errors import NeurodamusError

LOCK_NAME = ".neurodamus.lock"


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


__all__ = ["LOCK_NAME", "OutputFolderBusy", "OutputLock"]
