"""The driver's one logging set-up: every module logs through ``logging.getLogger(__name__)``.

What a run prints (standard output):

* ``INFO`` lines come from rank 0 only: progress and figures that every rank shares.
* ``WARNING`` lines come from rank 0 only, unless the record carries ``extra=RANK_SPECIFIC``:
  such a warning is about this rank's part of the model and is printed by every rank that has
  it, tagged ``[rank N]``.
* a record with ``extra=ONCE`` is printed the first time only (a warning repeated per cell or
  per block would otherwise flood the log).

Errors that end a run are not logged: the CLI prints them once (``parallel.write_error``).
"""

from __future__ import annotations

import logging
import sys

ROOT = "neurodamus"
#: ``log.warning(..., extra=RANK_SPECIFIC)``: printed by every rank, tagged with its rank
RANK_SPECIFIC = {"rank_specific": True}
#: ``log.warning(..., extra=ONCE)``: printed the first time only
ONCE = {"once": True}


class RankFilter(logging.Filter):
    """Rank 0 speaks for everyone; other ranks only for what is theirs alone."""

    def __init__(self, rank: int):
        super().__init__()
        self.rank = rank

    def filter(self, record):
        if getattr(record, "rank_specific", False):
            record.rank_tag = f"[rank {self.rank}] " if self.rank or record.levelno >= \
                logging.WARNING else ""
            return True
        record.rank_tag = ""
        return self.rank == 0


class OnceFilter(logging.Filter):
    def __init__(self):
        super().__init__()
        self.seen: set = set()

    def filter(self, record):
        if not getattr(record, "once", False):
            return True
        key = (record.levelno, record.getMessage())
        if key in self.seen:
            return False
        self.seen.add(key)
        return True


class _Formatter(logging.Formatter):
    """``<message>`` for INFO, ``WARNING: <message>`` (rank-tagged when so) otherwise."""

    def format(self, record):
        text = record.getMessage()
        tag = getattr(record, "rank_tag", "")
        if record.levelno == logging.INFO:
            return f"{tag}{text}"
        return f"{record.levelname}: {tag}{text}"


def configure(rank: int = 0, debug: bool = False, stream=None) -> None:
    """Route the ``neurodamus`` loggers to ``stream`` (stdout) with the rank and once filters.

    Called again (another run in the same process, a test), it replaces its own handler.
    """
    logger = logging.getLogger(ROOT)
    for handler in list(logger.handlers):
        if getattr(handler, "_neurodamus", False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stdout)
    handler._neurodamus = True
    handler.addFilter(RankFilter(rank))
    handler.addFilter(OnceFilter())
    handler.setFormatter(_Formatter())
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if debug else logging.INFO)
    logger.propagate = False


__all__ = ["ONCE", "RANK_SPECIFIC", "ROOT", "OnceFilter", "RankFilter", "configure"]
