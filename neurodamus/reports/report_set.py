"""The run's element reports: set-up, per-step recording, bounded flushes, parallel writes.

Lifecycle (driven by the pipeline, ``neurodamus/pipeline.py``): the constructor takes the
reports of the plan (parsed and checked at load), resolves their cells, builds this rank's
elements, agrees on the file layout and creates the files; ``start``
attaches one per-step ``Vector.record(ref)`` per reference (the form that also works under
CoreNEURON); ``flush(t)`` takes the report rows out of the recorded steps, writes this rank's
columns (all ranks at once, ``writer.py``) and empties the vectors (``resize(0)``); ``close``
renames the complete files. No Python runs per time step.

Step count: ranks agree on how many steps are recorded through a clock (``Vector.record(&t)``)
on every rank that holds a section, and one allreduce per flush (``StepClock``). A rank
without cells (more ranks than cells, or a small node set; under CoreNEURON it only has an
artificial placeholder) has no section to record on, records nothing and still takes part in
every flush, so that no rank waits for another.

Memory: the recorded steps are the buffer. Per rank it holds ``8 B x references x steps since
the last flush`` plus the rows being written. When 25 ms of that exceed ``--report-buffer-size``
(MB; default 8, or 64 rows of the lfp reports if more), ``solver(pc)`` returns a
``ParallelContext`` stand-in whose ``psolve`` runs the chunk in shorter pieces and flushes
between them, so memory is bounded by the buffer size and
never by the run length (down to a floor of ``MIN_FLUSH_STEPS`` steps per flush). Under
CoreNEURON, where every ``psolve`` transfers the model, the floor is the engine's chunk
(25 ms or more): memory is then bounded by 25 ms of recording, still not by the run length.
lfp reports under CoreNEURON are flushed from inside CoreNEURON's step instead, whenever their
few rows are full (``lfp_recording.py``), and do not make the run chunked.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import time

from ..errors import ConfigError, NeurodamusError
from ..parallel import Phase, TokenRing, allmax, allmin, fail_together, on_root
from . import writer
from .lfp_axial import why_not_axial
from .lfp_core_gather import CoreImemGather
from .lfp_mapping import build_lfp_report, use_membrane_refs
from .lfp_recording import LfpGatherReport
from .mapping import build_local_report
from .recording import ActiveReport, BoundedSolver, StepClock, define_hoc_helpers, first_section
from .targets import report_targets
from .variables import MechanismCatalog, parse_variable

log = logging.getLogger(__name__)

DEFAULT_BUFFER_MB = 8.0
#: without --report-buffer-size, lfp reports hold at least this many rows between flushes
LFP_DEFAULT_ROWS = 64
#: never flush more often than every this many steps (a flush costs ~2 us per reference)
MIN_FLUSH_STEPS = 10
#: an lfp flush writes its rows in pieces of at most this much output per rank: its output
#: array is touched once and reused, and fresh memory costs page faults
MAX_PIECE_MB = 64.0


def _even_block(rows: int, most: int) -> int:
    """Rows per piece when ``rows`` are cut into pieces of at most ``most``: as few pieces as
    that allows, of equal size but the last (an lfp piece's product reads every weight once
    whatever its rows, so 64 rows as 32 + 32 cost less than as 40 + 24 or 63 + 1)."""
    pieces = -(-rows // max(1, most))
    return -(-rows // max(1, pieces))


def _lfp_row_bytes(comm, locals_) -> float:
    """Bytes of one row of currents (float64) of all lfp reports, on the widest rank."""
    return allmax(comm, sum(8.0 * local.n_refs for local in locals_ if local.spec.type == "lfp"))


class ReportSet:
    """All enabled reports of the run (``plan.reports``; none with ``--disable-reports``).

    Collective: every rank constructs it and calls every method.
    """

    def __init__(self, plan, h, comm, cells: dict, chunk_ms: float, core_library=None):
        self.reports: list[ActiveReport] = []
        self.flush_steps = None
        self.buffer_mb = plan.options.report_buffer_size or DEFAULT_BUFFER_MB
        self.flush_seconds, self.flush_cpu, self.n_flushes = 0.0, 0.0, 0
        self._clock = None
        self._ring = None
        self.comm, self.rank, self.size = comm, comm.Get_rank(), comm.Get_size()
        self.h = h
        self.dt = plan.dt
        self.tstop = plan.tstop
        specs = plan.reports
        if not specs:
            return
        debug = plan.options.debug
        with Phase(comm, "reports", None, debug):
            catalog = MechanismCatalog.from_neuron(h)
            other_imem = any(parse_variable(v).is_i_membrane for s in specs
                             if s.type != "lfp" for v in s.variables)
            if other_imem:
                self._fast_imem()
            locals_ = [self._build_local(plan, spec, catalog, cells) for spec in specs]
        # after the phase: its end tells every rank whether one failed (collectives follow)
        core_gather = _core_gather(h, core_library, [lr for lr, _ in locals_]) \
            if plan.uses_coreneuron else None
        with Phase(comm, "reports", None, debug):
            why = self._why_not_axial(plan, [lr for lr, _ in locals_], core_gather, other_imem)
        axial = self._lfp_currents([lr for lr, _ in locals_], why, other_imem)
        counts = [[(len(b.node_ids), len(b.element_ids)) for b in lr.blocks] for lr, _ in locals_]
        all_counts = comm.allgather(counts) if self.size > 1 else [counts]
        self.buffer_mb = plan.options.report_buffer_size or \
            self._default_buffer_mb([lr for lr, _ in locals_])
        in_step_rows = self._rows_in_step(core_gather, [lr for lr, _ in locals_]) \
            if core_gather is not None else None
        for i, (local, pops) in enumerate(locals_):
            layouts = writer.layouts_from_counts(pops, [c[i] for c in all_counts], self.rank)
            if local.spec.type == "lfp" and (not plan.uses_coreneuron or core_gather is not None):
                # currents taken at report steps, by NEURON or inside CoreNEURON's step
                # (lfp_recording.py)
                widest = max(sum(n for _, n in c[i]) for c in all_counts)   # elements
                rep = LfpGatherReport(local, layouts, pops, self.dt, core_gather,
                                      min(self.buffer_mb, MAX_PIECE_MB) * 2**20, widest, axial)
                if in_step_rows:
                    rep.flush_in_step(in_step_rows, self._write_in_step)
                self.reports.append(rep)
                continue
            self.reports.append(ActiveReport(local, layouts, pops))
        self._create_files(plan.config_path, debug)
        try:
            self._ring = TokenRing(comm)
            with Phase(comm, "reports", None, debug), self._ring.turn():
                for rep in self.reports:
                    writer.write_mapping(rep.tmp_path, rep.layouts, rep.local.blocks)
            self._plan_flushes(self.buffer_mb, chunk_ms, plan.uses_coreneuron)
        except Exception:   # every rank gets here (Phase): no half-made files left behind
            if self.rank == 0:
                _remove_quietly(rep.tmp_path for rep in self.reports)
            raise

    # ---- set-up -----------------------------------------------------------------------------
    def _default_buffer_mb(self, locals_) -> float:
        """Without ``--report-buffer-size``: ``DEFAULT_BUFFER_MB``, or room for
        ``LFP_DEFAULT_ROWS`` rows of the lfp reports if more (the same on every rank). An lfp
        flush reads every weight once and multiplies them by the rows held, so a flush every
        few rows (what 8 MB holds for a circuit-wide LFP) would cost more than the run."""
        lfp_mb = LFP_DEFAULT_ROWS * _lfp_row_bytes(self.comm, locals_) / 2**20
        if lfp_mb > DEFAULT_BUFFER_MB and self.rank == 0:
            log.info("lfp reports: %d report rows held between flushes (%.0f MB per rank; "
                     "--report-buffer-size sets it)", LFP_DEFAULT_ROWS, lfp_mb)
        return max(DEFAULT_BUFFER_MB, lfp_mb)

    def _rows_in_step(self, gather: CoreImemGather, locals_) -> int | None:
        """CoreNEURON: the rows an lfp report holds when CoreNEURON's step flushes them (the
        same on every rank: the buffer over the widest rank's lfp rows), or None when some rank
        cannot take part (a mechanism library built before the step's flush existed; a rank
        without sections, which has no mechanism instance to make the call)."""
        able = gather.flushes_in_step and first_section(self.h) is not None
        if not allmin(self.comm, int(able)):
            return None
        rows = max(1, int(self.buffer_mb * 2**20 // max(_lfp_row_bytes(self.comm, locals_), 1.0)))
        if self.rank == 0:
            log.debug("lfp reports under CoreNEURON: flushed from its step every %d rows", rows)
        return rows

    def _fast_imem(self) -> None:
        if first_section(self.h) is not None:
            # not on a rank without sections: NEURON 9.0.2 then fails an assertion
            # (vec_sav_d) at the first step
            self.h.cvode.use_fast_imem(1)

    def _why_not_axial(self, plan, locals_, core_gather, other_imem: bool) -> str | None:
        """Why this rank's lfp currents cannot be computed from the voltages (None: they
        can, or there is no lfp report)."""
        lfp = [local for local in locals_ if local.spec.type == "lfp"]
        if not lfp:
            return None
        h = self.h
        ready = hasattr(h, "nd_gather_axial") and h.nd_node_count() >= 0
        if plan.uses_coreneuron:
            ready = ready and core_gather is not None and core_gather.computes_axial
        return why_not_axial(h, [seg for local in lfp for seg in local.segments], ready,
                             other_imem)

    def _lfp_currents(self, locals_, why: str | None, other_imem: bool) -> bool:
        """Where the lfp reports' currents come from, the same on every rank: True when
        they are computed from the voltages (``lfp_axial.py``), else NEURON computes fast
        ``i_membrane_`` and they read it (logged with the reason). Collective."""
        lfp = [local for local in locals_ if local.spec.type == "lfp"]
        if not lfp:   # the same reports on every rank
            return False
        whys = self.comm.allgather(why) if self.size > 1 else [why]
        why = next((w for w in whys if w), None)
        if why is None:
            log.info("lfp reports: compartment currents computed from the voltages (no fast "
                     "i_membrane_)")
            return True
        log.info("lfp reports: compartment currents read from fast i_membrane_ (%s)", why)
        if not other_imem:
            self._fast_imem()
        for local in lfp:
            use_membrane_refs(local)
        return False

    @staticmethod
    def _build_local(plan, spec, catalog, cells):
        """(LocalReport, population names) of one report on this rank."""
        where = f"{plan.config_path}: {spec.where}"
        targets, entries_of = report_targets(spec, plan.settings, plan.populations,
                                             plan.node_sets)

        def cells_of(pop_name, raw):
            return cells[raw + plan.populations[pop_name].offset]

        if spec.type == "lfp":   # one element per electrode (lfp_mapping.py)
            return build_lfp_report(spec, where, targets, cells_of, log.warning), \
                [t[0] for t in targets]
        local = build_local_report(spec, where, [(n, off, loc) for n, off, _, loc in targets],
                                   cells_of, catalog, entries_of)
        return local, [t[0] for t in targets]

    def _create_files(self, config_path, debug):
        """Rank 0 creates every file under a temporary name; all ranks learn the names."""
        def create_all():
            made = []   # (name, data offsets)
            try:
                for rep in self.reports:
                    made.append(create_report_file(
                        rep.spec, rep.layouts, f"{config_path}: {rep.spec.where}.file_name"))
            except Exception:   # the files created before the one that failed go too
                _remove_quietly(name for name, _ in made)
                raise
            return made

        with Phase(self.comm, "reports", None, debug):
            made = on_root(self.comm, create_all)
        for rep, (name, offsets) in zip(self.reports, made):
            rep.tmp_path = name
            rep.layouts = writer.with_offsets(rep.layouts, offsets)

    def _plan_flushes(self, buffer_mb, chunk_ms, coreneuron=False):
        """Steps between flushes so that the recorded steps fit the buffer (all ranks agree).

        Not under CoreNEURON: every ``psolve`` there transfers the model, so its chunks
        (``coreneuron_engine.chunk_ms``, at least ``chunk_ms``) are not cut further."""
        per_step = allmax(self.comm, sum(rep.bytes_per_step for rep in self.reports))
        chunk_steps = round(chunk_ms / self.dt)
        fit = int(buffer_mb * 1024 * 1024 // per_step) if per_step else chunk_steps + 1
        if coreneuron and fit <= chunk_steps and self.rank == 0:
            log.info("--report-buffer-size=%g MB holds %d steps of report recording; "
                     "CoreNEURON runs chunks of at least %g ms (each transfers the model), "
                     "which hold %.3g MB", buffer_mb, fit, chunk_ms,
                     chunk_steps * per_step / 2**20)
        if fit > chunk_steps or coreneuron:
            self.flush_steps = None
            capacity = chunk_steps + 2
        else:
            self.flush_steps = max(fit, MIN_FLUSH_STEPS)
            capacity = self.flush_steps + 2
            if fit < MIN_FLUSH_STEPS and self.rank == 0:
                log.warning("--report-buffer-size=%g MB holds only %d steps of report recording;"
                            " flushing every %d steps (%.3g MB)", buffer_mb, fit,
                            MIN_FLUSH_STEPS, MIN_FLUSH_STEPS * per_step / 2**20)
        self._capacity = capacity

    # ---- run ---------------------------------------------------------------------------------
    def start(self):
        """Attach the per-step recordings (before initialisation)."""
        if not self.reports:
            return
        define_hoc_helpers(self.h)
        for rep in self.reports:
            rep.attach(self.h, self._capacity)
        # flush decisions (rows, pieces) must agree across ranks, with or without
        # elements of their own
        self._clock = StepClock(self.h, self.comm, self._capacity)
        self._clock.attach()

    def solver(self, pc):
        """``pc``, or a stand-in whose ``psolve`` flushes often enough for the buffer size
        and lets the reports prepare and check each ``psolve``."""
        if not self.reports:
            return pc
        return BoundedSolver(pc, self)

    def before_psolve(self, tstop: float) -> None:
        for rep in self.reports:
            rep.before_psolve(self.h, tstop)

    def after_psolve(self) -> None:
        for rep in self.reports:
            rep.after_psolve(self.h)

    def recorded_steps(self) -> int:
        """One past the last simulation step recorded so far, the same on every rank
        (collective: every rank calls it)."""
        return self._clock.steps()

    def flush(self, t=None):
        if not self.reports:
            return
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            self._flush(t)
        finally:
            self.flush_seconds += time.perf_counter() - t0
            self.flush_cpu += time.process_time() - c0
            self.n_flushes += 1

    def _flush(self, t=None):
        at_end = t is not None and t >= self.tstop - self.dt / 2
        lo, hi = self._clock.lo, self.recorded_steps()
        if hi <= lo:
            return
        pieces = []   # (piece number, report, first row, rows, first recorded step)
        for rep in self.reports:
            grid = rep.spec.grid
            if rep.done:   # complete: recordings (re-attached by a restore?) are not needed
                if rep.vectors:
                    rep.detach()
                continue
            a, b = grid.rows_in(lo, hi)
            if getattr(rep, "flushes_in_step", False):   # rows written from CoreNEURON's step
                a = max(a, rep.rows_written)
            if b > a:
                if rep.vectors and len(rep.vectors[0]) != hi - lo:
                    raise RuntimeError(f"report {rep.spec.name}: {len(rep.vectors[0])} steps "
                                       f"recorded, expected {hi - lo}")
                first = grid.first_step + a * grid.period - lo
                block = _even_block(b - a, rep.row_block or (b - a))
                pieces += [(k, rep, r, min(block, b - r), first + (r - a) * grid.period)
                           for k, r in enumerate(range(a, b, block))]
            else:
                rep.clear(self.h)
        self._write_pieces(pieces, at_end)
        self._clock.advance(hi)

    def _write_pieces(self, pieces, at_end: bool, any_error: bool = False) -> None:
        """Write ``(piece number, report, first row, rows, first recorded step)`` in piece
        order, so that large outputs are never held whole; every rank writes its own bytes of
        the files, all at once (writer.py), and learns after each piece whether any rank
        failed. ``any_error``: every exception is shared that way, not only NeurodamusError."""
        for k in range(max((p[0] for p in pieces), default=-1) + 1):
            pending, error = [], None
            try:
                for piece, rep, r, n, first in pieces:
                    if piece == k:
                        pending.append((rep, r, rep.values(self.h, first, rep.spec.grid.period,
                                                           n)))
                for rep, r, values in pending:
                    writer.write_rows(rep.tmp_path, rep.layouts, r, values)
            except NeurodamusError as exc:   # a full disk hits every rank at once: one message
                error = exc
            except Exception as exc:
                if not any_error:
                    raise
                error = exc
            fail_together(self.comm, error)
            for rep, r, values in pending:
                rep.rows_written = r + values.shape[0]
                # complete: stop recording if the run goes on (a checkpoint taken now must not
                # hold it: checkpoint.detach_complete_reports). Not at the run's end: NEURON's
                # play_remove scans every recording of the process per vector, O(n^2) for n
                # vectors (5 s for 44 000), while close() lets them go in O(n)
                if rep.rows_written >= rep.spec.grid.n_steps and not at_end:
                    rep.detach()

    def _write_in_step(self, rep: LfpGatherReport) -> None:
        """Every held row of ``rep``, called from CoreNEURON's step on every rank at the same
        report step (``lfp_recording.py``). Any failure is raised on every rank alike, so that
        every rank stops its run at the same step."""
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            a, n = rep.rows_written, rep.held_rows
            block = _even_block(n, rep.row_block)
            # not detached when complete: CoreNEURON still runs (after_psolve checks it)
            self._write_pieces([(k, rep, r, min(block, a + n - r), 0)
                                for k, r in enumerate(range(a, a + n, block))],
                               at_end=True, any_error=True)
        finally:
            self.flush_seconds += time.perf_counter() - t0
            self.flush_cpu += time.process_time() - c0
            self.n_flushes += 1

    def close(self):
        if not self.reports:
            return
        self.flush(self.tstop)
        self._ring.wait_back()
        # collective: on rank 0 it also means every rank's writes have returned
        seconds = tuple(allmax(self.comm, x) for x in (self.flush_seconds, self.flush_cpu))
        if self.rank == 0:
            log.info("Reports: %d file(s), %d flushes, %.2f s flushing and writing (%.2f s "
                     "CPU; slowest rank)", len(self.reports), self.n_flushes, *seconds)
            for rep in self.reports:
                if rep.rows_written < rep.spec.grid.n_steps:
                    log.warning("report %s: %d of %d rows recorded", rep.spec.name,
                                rep.rows_written, rep.spec.grid.n_steps)
                os.replace(rep.tmp_path, rep.spec.path)
        for rep in self.reports:
            rep.vectors, rep.vlist = [], None
        self._clock.detach()
        self._clock = None
        self._ring.free()

    @property
    def files(self) -> list:
        return [rep.spec.path for rep in self.reports]

    # ---- checkpoints (engine/checkpoint.py) -------------------------------------------------
    def last_values(self) -> dict:
        """Per report name, this rank's value of every recorded reference at the last
        recorded step (NaN for a vector that recorded nothing); kept by ``--save``."""
        return {rep.spec.name: rep.last_values() for rep in self.reports}

    def stop_recording(self) -> None:
        """Take every report recording and the step clock out of NEURON's play/record list.

        ``SaveState`` names each entry of that list by its position, and the reports' entries
        depend on the run (a complete report stops recording, reports may differ between the
        saving and the restoring run); without them only the inputs' plays are saved."""
        for rep in self.reports:
            if rep.vectors:
                rep.detach()
        if self._clock is not None:
            self._clock.detach()

    def record_again(self) -> None:
        """Attach the recordings again, after every entry already in the list (a restore:
        they record from the next initialisation on)."""
        for rep in self.reports:
            rep.attach(self.h, self._capacity)
        if self._clock is not None:
            self._clock.attach()

    def resume(self, step: int, t: float, values: dict, warn) -> None:
        """A restored run continues at ``step`` (time ``t``): each recording starts with that
        step's value, ``values[name]`` from ``last_values`` of the saving run (or, if the
        checkpoint lacks them, the restored state with a warning). The rows before ``step``
        come from the checkpoint's copy of the files, so they count as written."""
        if not self.reports:
            return
        for rep in self.reports:
            rep.rows_written = max(rep.rows_written, rep.spec.grid.rows_in(0, step)[1])
            saved = values.get(rep.spec.name)
            if saved is None or len(saved) != rep.n_recorded:
                warn(f"report {rep.spec.name}: not in the checkpoint; its row at t = {t:g} ms "
                     f"is taken from the restored state")
                saved = rep.last_values() if isinstance(rep, LfpGatherReport) else \
                    [ref[0] for ref in rep.local.refs]
            rep.restart(step, saved)
        self._clock.restart(step, t)


def _core_gather(h, library, locals_) -> CoreImemGather | None:
    """CoreNEURON's in-step gather for lfp reports (``lfp_core_gather.py``), or None when
    there is no lfp report or the mechanisms lack ``NdCoreImemGather`` (then they record
    every compartment at every step, which is much slower)."""
    if not any(local.spec.type == "lfp" for local in locals_):
        return None
    gather = CoreImemGather.open(library) if hasattr(h, "NdCoreImemGather") else None
    if gather is None:
        log.warning("lfp reports under CoreNEURON: the mechanisms (CoreNEURON library %s) "
                    "have no NdCoreImemGather (built without this driver's core/mod?): every "
                    "compartment is recorded at every step, which is slow; rebuild them with "
                    "`neurodamus build-mechanisms`", library)
    return gather


def create_report_file(spec, layouts, where: str) -> tuple:
    """Create the file skeleton under a temporary name (rank 0): (that name, the data offset
    of each layout); ConfigError if impossible."""
    path = spec.path
    tmp = writer.temporary_name(path)
    try:
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
        offsets = writer.create_file(tmp, layouts, spec.grid, spec.unit)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else (exc.strerror or str(exc))
        raise ConfigError(f"{where}: cannot write {path}: {reason}") from exc
    return tmp, offsets


def _remove_quietly(paths) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            os.unlink(path)


__all__ = ["DEFAULT_BUFFER_MB", "LFP_DEFAULT_ROWS", "ReportSet", "StepClock", "create_report_file"]
