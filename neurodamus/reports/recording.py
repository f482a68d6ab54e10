"""What records report values during the run: the reports' per-step recordings, the step
clock, the bounded solver, hoc helpers.

``ActiveReport`` records one report's references at every step (one ``Vector.record`` each);
``StepClock`` tells how many steps the per-step recordings hold, the same number on every rank;
``BoundedSolver`` runs a chunk in pieces so that the recordings never outgrow the report buffer;
the hoc helpers copy and empty many recording vectors in one call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .mapping import LocalReport


def first_section(h):
    """Any section of this rank, or None (a rank without cells has none)."""
    return next(iter(h.allsec()), None)


class ActiveReport:
    """One report on this rank: its elements, layout, file and recording vectors."""

    def __init__(self, local: LocalReport, layouts: list, populations: list):
        self.local = local
        self.spec = local.spec
        self.layouts = layouts
        self.populations = populations
        self.tmp_path = None
        self.vectors = []
        self.rows_written = 0

    @property
    def done(self) -> bool:
        return self.rows_written >= self.spec.grid.n_steps

    @property
    def bytes_per_step(self) -> float:
        """Recording bytes per simulation step, plus the share of the rows being written."""
        p = self.spec.grid.period
        return 8.0 * self.local.n_refs * (1 + 1 / p) + 12.0 * self.local.n_elements / p

    def attach(self, h, capacity: int) -> None:
        """One per-step recording vector per reference (kept in a hoc List for bulk calls)."""
        self.vectors, self.vlist, self.gathered = [], h.List(), h.Vector()
        for ref in self.local.refs:
            vec = h.Vector()
            vec.buffer_size(capacity)
            vec.record(ref)
            self.vectors.append(vec)
            self.vlist.append(vec)

    def before_psolve(self, h, tstop: float) -> None:
        """Nothing: the recording vectors fill themselves."""

    def after_psolve(self, h) -> None:
        """Nothing to check."""

    #: rows per piece of a flush: all at once (``values`` empties the vectors)
    row_block = None

    def values(self, h, first: int, period: int, n_rows: int) -> np.ndarray:
        """[rows, local elements] float32 from the recorded indices first, first+period, ...

        One hoc call copies the rows of every vector and empties it (a Python loop over the
        vectors costs ~3x more per flush)."""
        n = len(self.vectors)
        if n == 0:
            return np.zeros((n_rows, self.local.n_elements), np.float32)
        self.gathered.resize(n * n_rows)
        h.nd_report_gather(self.vlist, self.gathered, first, period, n_rows)
        raw = self.gathered.as_numpy().reshape(n, n_rows)
        if self.rows_written == 0 and self.spec.grid.first_step == 0 and n_rows:
            raw[self.local.zero_at_start, 0] = 0.0   # the t = 0 row (contract §11 item 17)
        if self.local.combine is not None:
            raw = self.local.combine @ raw
        return np.ascontiguousarray(raw.T, dtype=np.float32)

    def clear(self, h) -> None:
        if self.vectors:
            h.nd_report_clear(self.vlist)

    # ---- checkpoints --------------------------------------------------------------------
    @property
    def n_recorded(self) -> int:
        return len(self.vectors)

    def last_values(self) -> np.ndarray:
        """The value of every recording at the last recorded step (NaN if it has none)."""
        return np.array([v.x[int(v.size()) - 1] if v.size() else np.nan for v in self.vectors],
                        float)

    def restart(self, step: int, saved) -> None:
        """A restore at ``step``: each recording starts with that step's saved value."""
        for vec, value in zip(self.vectors, saved):
            vec.resize(0)
            vec.append(float(value))

    def detach(self) -> None:
        """Stop recording (every row is written): no more cost per step or per flush."""
        for vec in self.vectors:
            vec.play_remove()
        self.vectors, self.vlist = [], None


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


__all__ = ["ActiveReport", "BoundedSolver", "StepClock", "define_hoc_helpers", "first_section"]
