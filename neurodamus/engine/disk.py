"""Writing outputs on a disk that fills up: one message naming the file and the free space
(issue 16), the temporary file removed, instead of an HDF5 traceback."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from pathlib import Path

from ..errors import OutputError, OutputGone

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


__all__ = ["free_space_text", "no_space", "writing"]
