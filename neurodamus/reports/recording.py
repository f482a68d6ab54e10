"""What records report values during the run: the step clock, the bounded solver, hoc helpers.

``StepClock`` tells how many steps the per-step recordings hold, the same number on every rank;
``BoundedSolver`` runs a chunk in pieces so that the recordings never outgrow the report buffer;
the hoc helpers copy and empty many recording vectors in one call.
"""

from __future__ import annotations

import numpy as np


def first_section(h):
    """Any section of this rank, or None (a rank without cells has none)."""
    return next(iter(h.allsec()), None)


class StepClock:
    """How many simulation steps the recordings hold: ``lo`` (the first step not yet flushed)
    plus the steps recorded since, the same number on every rank.

    ``Vector.record(&t)`` needs a section ("Section access unspecified" otherwise), so only a
    rank holding one records the clock; ``steps()`` takes the count from the ranks that do
    (one allreduce, which also checks that they agree: a disagreement would leave ranks
    waiting in collectives the others never make)."""

    def __init__(self, h, comm, capacity: int):
        self.h, self.comm, self.capacity = h, comm, capacity
        self.size = comm.Get_size()
        self.vec = None
        self.lo = 0

    def attach(self) -> None:
        """Record ``t`` at every step, on this rank's first section if it has any."""
        sec = first_section(self.h)
        if sec is None:
            self.vec = None
            return
        if self.vec is None:
            self.vec = self.h.Vector()
            self.vec.buffer_size(self.capacity)
        self.vec.record(self.h._ref_t, sec=sec)

    def detach(self) -> None:
        if self.vec is not None:
            self.vec.play_remove()

    def steps(self) -> int:
        """One past the last recorded step (collective when there are several ranks)."""
        local = self.lo + int(self.vec.size()) if self.vec is not None else -1
        if self.size == 1:
            return max(local, self.lo)
        from mpi4py import MPI  # noqa: PLC0415 - MPI is brought up by launch.py first

        # [max, -min] over the ranks with a clock (the others send -1 and -huge)
        mine = np.array([local, -local if local >= 0 else -np.iinfo(np.int64).max], np.int64)
        both = np.empty_like(mine)
        self.comm.Allreduce(mine, both, op=MPI.MAX)
        most, least = int(both[0]), -int(both[1])
        if most < 0:   # no rank has a section: nothing is recorded anywhere
            return self.lo
        if most != least:
            raise RuntimeError(f"report step clocks disagree across ranks ({least} to {most} "
                               f"steps recorded)")
        return most

    def advance(self, hi: int) -> None:
        """Steps before ``hi`` are flushed: the clock empties."""
        if self.vec is not None:
            self.vec.resize(0)
        self.lo = hi

    def restart(self, step: int, t: float) -> None:
        """Continue at ``step`` (a restore): the clock holds that step only."""
        if self.vec is not None:
            self.vec.resize(0)
            self.vec.append(t)
        self.lo = step


class BoundedSolver:
    """Stands in for ParallelContext in the run loop: ``psolve(t)`` in pieces of at most
    ``flush_steps`` steps (None: one piece) with a report flush after each piece but the last
    (the run loop flushes after that one); the reports prepare and check every piece."""

    def __init__(self, pc, reports):
        self._pc = pc
        self._reports = reports

    def psolve(self, tstop):
        reports, h = self._reports, self._reports.h
        dt, n = reports.dt, reports.flush_steps
        while n is not None and round((tstop - h.t) / dt) > n:
            self._piece(h.t + n * dt)
            reports.flush(h.t)
        self._piece(tstop)

    def _piece(self, t):
        self._reports.before_psolve(t)
        self._pc.psolve(t)
        self._reports.after_psolve()

    def __getattr__(self, name):
        return getattr(self._pc, name)


_HOC_HELPERS = """
proc nd_report_gather() { local i
    // $o1 List of recording Vectors, $o2 destination (count x $5, row-major):
    // row i gets elements $3, $3+$4, ..., ($5 of them) of vector i, which is then emptied
    for i = 0, $o1.count() - 1 {
        $o2.copy($o1.o(i), i * $5, $3, $3 + ($5 - 1) * $4, 1, $4)
        $o1.o(i).resize(0)
    }
}
proc nd_report_clear() { local i
    for i = 0, $o1.count() - 1 { $o1.o(i).resize(0) }
}
"""


def define_hoc_helpers(h):
    if not h.name_declared("nd_report_gather"):
        h(_HOC_HELPERS)


__all__ = ["BoundedSolver", "StepClock", "define_hoc_helpers", "first_section"]
