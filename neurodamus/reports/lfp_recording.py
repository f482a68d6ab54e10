"""Recording of an lfp report: compartment currents taken at report steps only.

The generic recording (one per-step ``Vector.record`` per reference, ``report_set``) would
record every compartment of every cell at every step and copy each vector at each flush,
which costs more than the simulation for a circuit-wide LFP. Here, at each report step, one
``PtrVector.gather`` copies the fast ``i_membrane_`` of all of the rank's compartments into a
row of a NumPy buffer (the references in the weights' column order; with ``core/mod``'s
``nd_gather_imem`` the values are read by node index instead, ~30x cheaper, once checked equal
to the ``PtrVector``'s); the flush multiplies the
buffered rows by the weights (``lfp.BlockWeights.product_of_rows``: batched, no copy of the
rows, each weight read once per flush, output and scratch arrays reused across flushes).

When the report steps are reached: step 0 by an ``FInitializeHandler`` (type 2, after the
currents of ``finitialize``), the later ones by a callback NEURON makes at every step
(``cvode.extra_scatter_gather``, one integer test per step when the step is not a report
step; the steps are counted from the initialisation or the restored step). NEURON calls it at
the end of each step, after ``i_membrane_`` is computed: the value ``Vector.record`` stores
for that step (checked against CoreNEURON's in-step gather below by the engine-invariance
test). It is not an event, so a ``SaveState`` checkpoint holds nothing of it (a pending Python
``cvode.event`` is written as the hoc statement ``{PythonObject}``, which fails when a
restored run reaches it). NEURON allows the callback with one thread per rank only, which is
how this driver runs NEURON.

Where the driver can (``lfp_axial.py``: no electrode on the report's cells, ``secondorder``
0, ...), ``axial``: the currents are computed from the voltages by ``nd_gather_axial`` (NEURON)
or in CoreNEURON's step (same plan, same terms in the same order), and NEURON computes no fast
``i_membrane_``; the references are then the segments themselves (nothing reads through them).

Under CoreNEURON the solver runs without Python: the rows are filled inside CoreNEURON's step
by ``NdCoreImemGather`` (``core/mod/CoreImemGather.mod``, one instance per rank, created before
initialisation), which copies the currents of report steps by node index into this report's
row buffer, registered before every ``psolve`` (``lfp_core_gather.py``); the t = 0 row is
taken by NEURON at initialisation as above. The gather also copies the currents of the
``psolve``'s last step, which are compared with those CoreNEURON hands back to NEURON: a wrong
node mapping stops the run instead of writing wrong values. A CoreNEURON library without that
mechanism falls back to the generic per-step recording (``report_set``).

Every ``psolve`` transfers the model to CoreNEURON and back (~1 s for 2000 cells), so the rows
are not held until ``psolve`` returns: when a report row finds the buffer full (a few rows,
``flush_in_step``), CoreNEURON's step calls back into the driver, which writes the held rows
there and then (``ReportSet``, on every rank at the same step: every rank has an instance) and
the step goes on. One ``psolve`` covers the run, whatever its length, with a buffer of a few
rows. A library built before that callback existed holds the rows of a whole chunk instead.
"""

from __future__ import annotations

import itertools
import logging

import numpy as np

from .lfp_axial import axial_plan
from .recording import first_section

log = logging.getLogger(__name__)


class LfpGatherReport:
    """Stands for ``recording.ActiveReport`` (same attributes and methods) for one lfp report,
    on either engine (``core``: CoreNEURON's in-step gather)."""

    _axial_slots = itertools.count()   # nd_axial_plan's slot of each report of the process

    def __init__(self, local, layouts: list, populations: list, dt: float, core=None,
                 piece_bytes: float = 8 * 2**20, widest_rank: int | None = None,
                 axial: bool = False):
        self.local = local
        self.spec = local.spec
        self.layouts = layouts
        self.populations = populations
        self.dt = dt
        self.tmp_path = None
        self.vectors = []          # no per-step recordings (report_set checks their length)
        self.rows_written = 0
        self._attached = False
        self._next_row = 0         # first row not yet handed to a flush
        self._buf = None           # [rows x compartments]: row _next_row + i at _base + i
        self._have = None          # which rows of _buf were gathered
        self._base = 0
        self._step = 0             # the simulation step NEURON is at
        self._core = core          # lfp_core_gather.CoreImemGather: CoreNEURON fills the rows
        self._slot = core.new_slot() if core is not None else None
        self._trigger = None       # the NdCoreImemGather instance (CoreNEURON)
        self._nodes = None         # NEURON node index of every reference (_node_indices)
        self._core_last = None     # the currents of a psolve's last step (CoreNEURON)
        self._core_checked = False
        self._in_step = None       # CoreNEURON: writes the held rows, called from the step
        self._in_step_rows = 0     # rows held between those calls
        self._in_step_error = None   # what the call raised (carried out of CoreNEURON)
        self._out = None           # the flush's output rows, reused (float32)
        self.piece_bytes = piece_bytes   # output of one piece of a flush, per rank
        self.axial = axial         # currents from the voltages (lfp_axial.py)
        self._plan = None          # its plan (int32), in NEURON's node indices
        self._plan_set = False     # given to nd_axial_plan (NEURON)
        self._axial_slot = next(LfpGatherReport._axial_slots) if axial else None
        if axial and self._axial_slot >= 64:   # ND_AXIAL_SLOTS of FastImemGather.mod
            raise RuntimeError("more than 64 lfp reports")
        # elements of the rank with the most (the same on every rank, as the pieces must be)
        self.widest_rank = local.n_elements if widest_rank is None else widest_rank

    @property
    def done(self) -> bool:
        return self.rows_written >= self.spec.grid.n_steps

    @property
    def bytes_per_step(self) -> float:
        """The held rows of currents (float64) per simulation step; the flush's output is
        bounded by ``row_block`` and the product's scratch by ``BlockWeights``. Nothing when
        CoreNEURON's step flushes the rows: they do not grow with the chunk."""
        return 0.0 if self._in_step else 8.0 * self.local.n_refs / self.spec.grid.period

    def flush_in_step(self, rows: int, write) -> None:
        """CoreNEURON: hold ``rows`` rows, and when a report row finds them full, have the
        step call ``write(self)``, which writes every held row (on every rank at once; it
        raises the same error on every rank if any fails). Every rank must then have an
        instance of the mechanism, with or without currents of its own."""
        self._in_step, self._in_step_rows = write, max(1, int(rows))

    @property
    def flushes_in_step(self) -> bool:
        """Whether CoreNEURON's step writes this report's rows (``flush_in_step``)."""
        return self._in_step is not None

    @property
    def held_rows(self) -> int:
        """Rows gathered from the next one to flush on, without a gap."""
        gaps = np.flatnonzero(~self._have[self._base:])
        return int(gaps[0]) if len(gaps) else len(self._have) - self._base

    # ---- NEURON side ------------------------------------------------------------------------
    def attach(self, h, capacity: int) -> None:
        if self._attached:   # attached again (a restore): one step callback only
            self.detach()
        self.h = h
        n = self.local.n_refs
        self._pv = None
        if not self.axial:
            self._pv = h.PtrVector(max(n, 1))
            for i, ref in enumerate(self.local.refs):
                self._pv.pset(i, ref)
        self._column = h.Vector(max(n, 1))
        self._index = None   # node indices for nd_gather_imem, False: use the PtrVector
        cols = self._in_step_rows or capacity // self.spec.grid.period + 2
        self._buf = np.zeros((cols, n))
        self._have = np.zeros(cols, bool)
        self._base = 0
        self._attached = True
        self._fih = h.FInitializeHandler(2, self._on_init)
        if self._core is None:
            self._hook = self._on_step     # the very object NEURON holds, to remove it later
            h.cvode.extra_scatter_gather(0, self._hook)
        elif self._trigger is None and (n or self._in_step):
            # kept for the whole run (a new one after initialisation would change the model);
            # stateless, and ignored by BBSaveState, so checkpoints hold nothing of it. On a
            # rank without currents of its own it only calls the flush (on any section)
            seg = self.local.segments[0] if n else first_section(h)(0.5)
            self._trigger = h.NdCoreImemGather(seg)
            h.BBSaveState().ignore(self._trigger)

    def detach(self) -> None:
        if self._attached and self._core is None:
            self.h.cvode.extra_scatter_gather_remove(self._hook)
        self._attached = False
        self._fih = None
        self._pv = None

    def clear(self, h) -> None:
        """Rows before the report's window: nothing is held for them."""

    # ---- CoreNEURON: rows filled inside the step ------------------------------------------
    def _core_active(self) -> bool:
        return self._core is not None and self._attached and \
            bool(self.local.n_refs or self._in_step)

    def before_psolve(self, h, tstop: float) -> None:
        """Register the row buffer: as it is when the step flushes it, else grown to hold
        every row up to ``tstop``."""
        if not self._core_active():
            return
        if self._core_last is None:
            self._core_last = np.full(self.local.n_refs, np.nan)
        last_step = round(tstop / self.dt)
        if self._in_step:
            self._to_front()
        else:
            self._grow(self.spec.grid.rows_in(0, last_step + 1)[1] - self._next_row)
        self._core_last[:] = np.nan
        self._core.register(self._slot, self._node_indices(), self._buf[self._base:],
                            self._have[self._base:], self.spec.grid, self._next_row, self.dt,
                            self._core_last, last_step)
        if self.axial:
            self._core.set_plan(self._slot, self._axial_plan())
        if self._in_step:
            self._core.on_full(self._slot, self._on_full)

    def _on_full(self, row: int) -> int:
        """Called from CoreNEURON's step (``NdCoreImemGather``) when report row ``row``
        finds the buffer full: write the held rows; the buffer's first row from now on, or -1
        (the write failed on every rank) to stop the run. Nothing may escape to ctypes."""
        try:
            self._in_step(self)
            return self._next_row
        except BaseException as exc:   # noqa: BLE001 - raised again by after_psolve
            self._in_step_error = exc
            return -1

    def after_psolve(self, h) -> None:
        if not self._core_active():
            return
        overflow, bad = self._core.problems(self._slot)
        self._core.clear(self._slot)   # the buffers may move before the next psolve
        if self._in_step_error is not None:   # every rank has it and stopped at that step
            error, self._in_step_error = self._in_step_error, None
            log.debug("report %s: CoreNEURON's run stopped at t = %g ms (its flush failed)",
                      self.spec.name, h.t)
            raise error
        if overflow or bad:
            raise RuntimeError(f"report {self.spec.name}: CoreNEURON's step gather found "
                               f"{overflow} row(s) beyond the buffer and {bad} node "
                               f"index(es) outside the thread")
        if self.local.n_refs and not np.array_equal(self._core_last, self._gather()):
            raise RuntimeError(f"report {self.spec.name}: the currents CoreNEURON's step "
                               f"gathered at t = {h.t:g} ms differ from those it handed back "
                               f"to NEURON (node order?)")
        if not self._core_checked:
            self._core_checked = True
            log.debug("lfp report %s: CoreNEURON's step gathered the compartment currents",
                      self.spec.name)

    def _grow(self, rows: int) -> None:
        """Room for at least ``rows`` rows from ``_next_row`` on: the held rows move to the
        front, into a larger buffer if needed, whose new rows are left unwritten (``_have``
        tells which rows hold values; writing hundreds of MB of zeros cost a second)."""
        base = self._base
        if rows <= len(self._buf) - base:
            return
        if rows <= len(self._buf):   # room enough at the front
            self._to_front()
            return
        held = np.flatnonzero(self._have[base:])
        keep = int(held[-1]) + 1 if len(held) else 0
        buf = np.empty((rows, self._buf.shape[1]))
        buf[:keep] = self._buf[base:base + keep]
        have = np.zeros(rows, bool)
        have[:keep] = self._have[base:base + keep]
        self._buf, self._have = buf, have
        self._base = 0

    def _to_front(self) -> None:
        """The held rows move to the front of the buffer."""
        base = self._base
        if not base:
            return
        held = np.flatnonzero(self._have[base:])
        keep = int(held[-1]) + 1 if len(held) else 0
        self._buf[:keep] = self._buf[base:base + keep]
        self._have[:keep] = self._have[base:base + keep].copy()
        self._have[keep:] = False
        self._base = 0

    def _row_of_step(self, k: int) -> int | None:
        grid = self.spec.grid
        if k < grid.first_step or (k - grid.first_step) % grid.period:
            return None
        r = (k - grid.first_step) // grid.period
        return r if r < grid.n_steps else None

    def _on_init(self) -> None:
        self._step = 0
        if self._attached:
            self._gather_step(0)

    def _on_step(self) -> None:
        # counted: during psolve NEURON's h.t stays at the time psolve started (the threads'
        # own t is copied to it at the end)
        self._step += 1
        self._gather_step(self._step)

    def _gather_step(self, k: int) -> None:
        r = self._row_of_step(k)
        if r is None or r < self._next_row:
            return
        col = r - self._next_row
        self._grow(col + 1)   # more rows than planned between flushes
        if self.local.n_refs:
            self._buf[self._base + col] = self._gather()
        self._have[self._base + col] = True

    def _gather(self) -> np.ndarray:
        """Every compartment current now, in reference order (a view of ``_column``)."""
        if self.axial:
            if not self._plan_set:
                got = self.h.nd_axial_plan(self._axial_slot,
                                           self.h.Vector(self._axial_plan().astype(float)))
                if got != self.local.n_refs:
                    raise RuntimeError(f"report {self.spec.name}: nd_axial_plan refused the "
                                       f"plan ({got:g})")
                self._plan_set = True
                log.debug("lfp report %s: compartment currents computed from the voltages",
                          self.spec.name)
            got = self.h.nd_gather_axial(self._axial_slot, self._column)
            if got != self.local.n_refs:
                raise RuntimeError(f"report {self.spec.name}: nd_gather_axial computed {got:g} "
                                   f"of {self.local.n_refs} currents")
            return self._column.as_numpy()[:self.local.n_refs]
        if self._index is None:
            self._index = self._node_index()   # gathers through the PtrVector
            if self._index is not None:
                log.debug("lfp report %s: compartment currents read %s", self.spec.name,
                          "through the PtrVector" if self._index is False else "by node index")
        elif self._index is False:
            self._pv.gather(self._column)
        else:
            self.h.nd_gather_imem(self._index, self._column)
        return self._column.as_numpy()[:self.local.n_refs]

    def _node_indices(self) -> np.ndarray:
        """NEURON's node index of every reference (int32), read once the model is final (at
        the first gather or ``psolve``); the same under CoreNEURON, which maps them itself."""
        if self._nodes is None:
            self._nodes = np.array([seg.node_index() for seg in self.local.segments], np.int32)
        return self._nodes

    def _axial_plan(self) -> np.ndarray:
        """The plan of the currents from the voltages (``lfp_axial.axial_plan``), made once
        the model is final, from NEURON's parent of every node."""
        if self._plan is None:
            h = self.h
            count = int(h.nd_node_count())
            parents = h.Vector(max(1, count))
            if count < 0 or h.nd_node_parents(parents) != count:
                raise RuntimeError(f"report {self.spec.name}: nd_node_parents failed")
            self._plan = axial_plan(parents.as_numpy()[:count].astype(np.int64),
                                    self._node_indices())
        return self._plan

    def _node_index(self):
        """Gather through the PtrVector, and say how later gathers go: the node index of each
        reference when ``nd_gather_imem`` reads the same values (checked when NEURON's nodes
        are set up, i.e. at a gather), False when it cannot, None when this gather cannot tell
        (every current equal, e.g. all 0: the check waits for a later step)."""
        h, segments, n = self.h, self.local.segments, self.local.n_refs
        self._pv.gather(self._column)
        if not hasattr(h, "nd_gather_imem") or len(segments) != n:
            return False
        values = self._column.as_numpy()[:n]
        if np.ptp(values) == 0:
            return None
        index = h.Vector(self._node_indices())
        direct = h.Vector(n)
        if h.nd_gather_imem(index, direct) != n:
            return False
        return index if np.array_equal(direct.as_numpy(), values) else False

    # ---- checkpoints --------------------------------------------------------------------
    @property
    def n_recorded(self) -> int:
        return self.local.n_refs

    def last_values(self) -> np.ndarray:
        """Every compartment current now (the state after the last step; taken before the
        flush that ends a run or a checkpoint's segment), in reference order."""
        if not self._attached or not self.local.n_refs:
            return np.full(self.local.n_refs, np.nan)
        return self._gather().copy()

    def restart(self, step: int, saved) -> None:
        """A restore at ``step``: rows before it are in the checkpoint's files, the row of
        ``step`` (if it is one) holds the saved currents, the later ones are gathered as
        the run reaches them."""
        self._step = step
        self._next_row = self.spec.grid.rows_in(0, step)[1]
        self._have[:] = False
        self._base = 0
        if self._row_of_step(step) == self._next_row and self.local.n_refs:
            self._buf[0] = np.asarray(saved, float)
            self._have[0] = True

    @property
    def row_block(self) -> int:
        """Rows per piece of a flush (``report_set``): the output of a piece on the widest
        rank stays within ``piece_bytes`` (at least one row; the same on every rank, and so is
        the number of pieces). Bounded per rank, not over all ranks: each piece's product
        reads all of the rank's weights, so pieces of a row or two (what a bound over
        thousands of ranks would give) make it memory-bound, several times slower per row."""
        return max(1, int(self.piece_bytes // max(1, 4 * self.widest_rank)))

    def values(self, h, first: int, period: int, n_rows: int) -> np.ndarray:
        """[rows, local elements] float32 of the next ``n_rows`` rows (report_set asks for them
        in order, possibly in pieces; each was gathered during its step). The array is reused
        by the next call."""
        grid, base = self.spec.grid, self._base
        held = self._have[base:base + n_rows]
        missing = np.flatnonzero(~held).tolist() + list(range(len(held), n_rows))
        if missing:
            row = self._next_row + missing[0]
            raise RuntimeError(f"report {self.spec.name}: row {row} (step "
                               f"{grid.first_step + row * period}) was not recorded")
        need = n_rows * self.local.n_elements
        if self._out is None or self._out.size < need:   # kept: see product_of_rows
            self._out = np.empty(need, np.float32)
        out = self.local.combine.product_of_rows(self._buf[base:base + n_rows], self._out) \
            if self.local.n_refs else np.zeros((n_rows, self.local.n_elements), np.float32)
        # the rows after those handed out (gathered ahead of the flush) stay where they are
        self._have[base:base + n_rows] = False
        self._base = base + n_rows if self._have[base + n_rows:].any() else 0
        self._next_row += n_rows
        return out


__all__ = ["LfpGatherReport"]
