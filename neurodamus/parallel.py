"""Rank agreement on failures: a phase either succeeds on every rank or fails on all of them.

Every phase runs inside ``Phase``; an error on one rank is exchanged at the end of the phase
(``allgather``), so the message is printed once by rank 0 and every rank exits cleanly instead
of hanging in the next collective. Errors outside phases (inside the solver) fall back to
``MPI_Abort`` in the CLI.
"""

from __future__ import annotations

import time
import traceback

from .errors import NeurodamusError


class RunFailed(NeurodamusError):
    """Raised on every rank when any rank failed a phase; ``messages`` is per rank."""

    def __init__(self, messages: list):
        self.messages = messages
        unique = list(dict.fromkeys(m for m in messages if m))
        if len(unique) == 1 or len(messages) == 1:
            text = unique[0]
        else:
            text = "\n".join(f"[rank {r}] {m}" for r, m in enumerate(messages) if m)
        super().__init__(text)


class Phase:
    def __init__(self, comm, name: str, timings: dict | None = None, debug: bool = False):
        self.comm, self.name, self.timings, self.debug = comm, name, timings, debug

    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, etype, exc, tb):
        if self.timings is not None:
            self.timings[self.name] = self.timings.get(self.name, 0.0) + \
                time.perf_counter() - self.t0
        message = None
        if exc is not None:
            if not isinstance(exc, Exception):
                return False  # KeyboardInterrupt, SystemExit: let them through
            if isinstance(exc, RunFailed):
                raise exc
            if isinstance(exc, NeurodamusError):
                message = str(exc)
            else:
                message = f"internal error during {self.name}: {etype.__name__}: {exc}"
                if self.debug:
                    message += "\n" + "".join(traceback.format_exception(etype, exc, tb))
        messages = self.comm.allgather(message) if self.comm.Get_size() > 1 else [message]
        if any(messages):
            raise RunFailed(messages) from exc
        return False
