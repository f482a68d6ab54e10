"""Every collective the driver makes outside NEURON, and how a failure on one rank ends the job.

* ``phase``: a step of the run either succeeds on every rank or fails on all of them. An error on
  one rank is exchanged at the end of the phase (``allgather``), so the message is printed once
  and every rank exits cleanly instead of hanging in the next collective. A rank that failed arms
  a ``FailureWatchdog``: when the other ranks are blocked somewhere it cannot join (a collective
  inside NEURON), the job is aborted after a grace period instead of hanging.
* ``on_root``: rank 0 does a one-time side effect (a file, a build), every rank gets the outcome.
* ``agree_on_errors``, ``fail_together``, ``allsum``, ``allmax``, ``allmin``, ``gather``:
  small collectives that also work without MPI (one rank).
* ``TokenRing``: serialises file access, rank after rank (the report files' HDF5 mapping).

Errors inside the solver are not in a phase; the CLI ends the job with ``abort_job``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
import traceback

from .errors import NeurodamusError, OutputGone
from .output_guard import fail_active_run

#: how long a rank that failed waits for the other ranks to reach the phase's agreement
AGREEMENT_GRACE_S = 4.0


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
    """Context manager: times the phase and makes every rank agree on its outcome."""

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


@contextlib.contextmanager
def phase(comm, name: str, timings: dict | None = None, debug: bool = False):
    """A ``Phase`` whose failing rank also arms a ``FailureWatchdog`` (see the module doc)."""
    watchdog = None
    try:
        with Phase(comm, name, timings, debug):
            try:
                yield
            except Exception as exc:
                if not isinstance(exc, RunFailed):
                    watchdog = FailureWatchdog(comm, str(exc))
                raise
    finally:
        if watchdog is not None:
            watchdog.cancel()


def abort_job(code: int = 1) -> None:
    """End every rank of the job now (MPI_Abort), or this process when there is no MPI job."""
    sys.stdout.flush()
    sys.stderr.flush()
    # should MPI_Abort itself hang, leave anyway: mpirun then ends the other ranks
    threading.Timer(3.0, os._exit, args=(code,)).start()
    try:
        from mpi4py import MPI  # noqa: PLC0415 - the abort path must work without mpi4py

        if MPI.Is_initialized() and not MPI.Is_finalized() and MPI.COMM_WORLD.Get_size() > 1:
            MPI.COMM_WORLD.Abort(code)
    except ImportError:
        pass
    os._exit(code)


def write_error(message: str) -> None:
    """``ERROR: <message>`` as one write to stderr, so that ranks cannot interleave inside it."""
    sys.stderr.write(f"ERROR: {message}\n")
    sys.stderr.flush()


class FailureWatchdog:
    """Armed by a rank whose phase failed; ends the job if the others do not agree in time.

    A failed rank normally waits at the end of its phase until every rank has told whether
    it failed too (``Phase``). The other ranks may however be busy for minutes, or blocked in
    a collective call inside the phase (NEURON's ``set_maxstep``, a gather) that the failed
    rank will never join. After ``seconds`` the failed rank prints its message and aborts the
    whole job, so that a failure never hangs a run and ends it within seconds.
    """

    def __init__(self, comm, message: str, seconds: float = AGREEMENT_GRACE_S):
        self.comm, self.message, self.seconds = comm, message, seconds
        self._timer = None
        if comm is not None and comm.Get_size() > 1:
            self._timer = threading.Timer(seconds, self._fire)
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        rank = self.comm.Get_rank()
        fail_active_run(self.message)   # the run record says failed, folder freed
        write_error(f"{self.message}\n(rank {rank} failed; the other ranks did not reach the "
                    f"end of the phase within {self.seconds:.0f} s: ending the job)")
        abort_job(1)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


# ---- small collectives -------------------------------------------------------------------------
def on_root(comm, fn):
    """Run ``fn`` on rank 0 and broadcast its result; an error there is raised on every rank
    (so that no rank waits in a collective for a rank that failed)."""
    value, error = None, None
    if comm is None or comm.Get_rank() == 0:
        try:
            value = fn()
        except Exception as exc:  # noqa: BLE001 - re-raised below, on every rank
            error = exc
    if comm is not None and comm.Get_size() > 1:
        try:
            value, error = comm.bcast((value, error), root=0)
        except Exception:  # noqa: BLE001 - an exception that does not pickle: in words
            value, error = comm.bcast((None, RuntimeError(str(error))), root=0)
    if error is not None:
        raise error
    return value


def agree_on_errors(comm, error) -> None:
    """Every rank learns the first error of any rank (after a collective step)."""
    errors = comm.allgather(error) if comm.Get_size() > 1 else [error]
    first = next((e for e in errors if e is not None), None)
    if first is not None:
        raise first


def fail_together(comm, error: Exception | None) -> None:
    """After a step every rank takes that may fail with a ``NeurodamusError`` on some of them
    (e.g. a full disk while all ranks write): ``RunFailed`` on every rank with the first
    failing rank's message, which rank 0 alone prints; nothing when no rank failed. A rank
    whose output file is gone (``OutputGone``) only follows another rank's failure, so the
    other rank's message is preferred."""
    mine = None if error is None else (isinstance(error, OutputGone), str(error))
    failed = [m for m in (comm.allgather(mine) if comm.Get_size() > 1 else [mine]) if m]
    if failed:
        raise RunFailed([min(failed, key=lambda m: m[0])[1]]) from error


def _reduce(comm, value, op_name: str):
    if comm.Get_size() == 1:
        return value
    from mpi4py import MPI  # noqa: PLC0415 - only multi-rank runs reach this

    return comm.allreduce(value, op=getattr(MPI, op_name))


def allsum(comm, value):
    return _reduce(comm, value, "SUM")


def allmax(comm, value):
    return _reduce(comm, value, "MAX")


def allmin(comm, value):
    return _reduce(comm, value, "MIN")


def gather(comm, value) -> list | None:
    """Every rank's ``value`` on rank 0 (None elsewhere); ``[value]`` without MPI."""
    return comm.gather(value, root=0) if comm.Get_size() > 1 else [value]


def broadcast(comm, value):
    """Rank 0's ``value`` on every rank."""
    return comm.bcast(value, root=0) if comm.Get_size() > 1 else value


class TokenRing:
    """Serialises file access: ``with ring.turn():`` runs on one rank at a time, rank order.

    The token is passed on even when the body raises, so the other ranks never wait for a
    token that will not come (the error is re-raised after passing it).
    """

    _TAG = 4242

    def __init__(self, comm):
        self.size = comm.Get_size()
        self.rank = comm.Get_rank()
        self.comm = comm.Dup() if self.size > 1 else None
        self._token_out = False   # rank 0: the token is travelling round the ring

    @contextlib.contextmanager
    def turn(self):
        if self.size == 1:
            yield
            return
        if self.rank == 0:
            self.wait_back()
        else:
            self.comm.recv(source=self.rank - 1, tag=self._TAG)
        try:
            yield
        finally:
            self.comm.send(None, dest=(self.rank + 1) % self.size, tag=self._TAG)
            if self.rank == 0:
                self._token_out = True

    def wait_back(self):
        """Rank 0: wait until the last rank has finished its turn."""
        if self.size > 1 and self.rank == 0 and self._token_out:
            self.comm.recv(source=self.size - 1, tag=self._TAG)
            self._token_out = False

    def free(self):
        if self.comm is not None:
            self.comm.Free()
            self.comm = None


class SingleRank:
    """A communicator of one rank, for code paths that run without MPI (tools, unit tests)."""

    def Get_rank(self):  # noqa: N802 - mpi4py's names
        return 0

    def Get_size(self):  # noqa: N802
        return 1

    def bcast(self, value, root=0):
        return value

    def allgather(self, value):
        return [value]

    def gather(self, value, root=0):
        return [value]

    def allreduce(self, value, op=None):
        return value

    def Barrier(self):  # noqa: N802
        pass

    def Dup(self):  # noqa: N802
        return self


__all__ = ["AGREEMENT_GRACE_S", "FailureWatchdog", "Phase", "RunFailed", "SingleRank",
           "TokenRing", "abort_job", "agree_on_errors", "allmax", "allmin", "allsum",
           "broadcast", "fail_together", "gather", "on_root", "phase", "write_error"]
