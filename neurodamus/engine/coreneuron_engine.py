"""The CoreNEURON engine: the model NEURON built, solved by CoreNEURON.

How a run goes with the NEURON 9.0.2 wheel (measured; see docs in ``neuron-facts.md``):

* The model is built in NEURON exactly as for the NEURON engine. ``pc.psolve`` with
  ``neuron.coreneuron.enable`` hands it to CoreNEURON, in memory (*direct mode*, the default) or
  through the files ``pc.nrncore_write`` writes (*file mode*: ``--keep-build``,
  ``--build-model``, ``--simulate-model``). After every ``psolve`` CoreNEURON gives the whole
  state back to NEURON (voltages, mechanism data, random streams, the event queue) together
  with the per-step recordings and the spikes, so report flushes, spike output and checkpoints
  are the NEURON engine's own code. Spikes are bit-identical to the NEURON engine.
* Every ``psolve`` transfers the model, so the run is cut in as few chunks as the report
  buffer (``--report-buffer-size``) allows: one chunk when there are no reports, or only lfp
  reports (CoreNEURON's step flushes those, ``reports/lfp_recording.py``). In file mode
  the model at t=0 is written once into ``<output>/coreneuron_input`` (what ``--keep-build``
  keeps and ``--build-model=OFF`` simulates later); each chunk then goes through files NEURON
  writes with the current state.
* Refused up front with the reason: mechanisms CoreNEURON has no version of (NEURON
  built-ins such as IntFire1, mod files not compiled with ``-coreneuron``) and inputs whose
  step ``Vector.play`` CoreNEURON cannot take over (``seclamp``).
* CoreNEURON loads its own mechanism library, ``libcorenrnmech.so``. It must come from the same
  mod files as the ``libnrnmech.so`` NEURON loaded: the driver takes the one next to it
  (``nrnivmodl -coreneuron`` puts both in one folder) unless ``CORENEURONLIB`` names one.
* A rank without cells crashes CoreNEURON 9.0.2 in file mode (direct mode copes): such a
  rank gets one artificial cell that never fires, in the reserved population ``zzz`` with gid
  ``offset(zzz) + 1 + rank`` (contract §1.1, ``coreneuron_mechanisms.py``). It is never
  written to any output.
* ``--build-model=OFF`` simulates a model written by an earlier run without building anything
  in NEURON: CoreNEURON runs stand-alone (``solve_core`` of the mechanism library, under the
  job's MPI) and its text spike file is turned into the SONATA file. CoreNEURON writes times
  with 8 digits; each one is mapped back to the exact double it stands for (fixed step: the
  time advances by two half steps per step, and a spike is recorded at the step's time
  + 1e-10 ms, as in NEURON), so the spikes are the same numbers as a direct run. Reports need
  the NEURON model and are refused in that mode.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..errors import MechanismError
from ..launch import mapped_files
from ..parallel import allmax
from ..reports.spikes import write_spikes
from . import core_options
from .coreneuron_mechanisms import (
    PLACEHOLDER_POPULATION,
    add_placeholder_cell,
    check_mechanisms,
    find_library,
    placeholder_gid,
)
from .coreneuron_plan import (
    CORENEURON_INPUT,
    MODEL_MARKER,
    CoreNeuronPlan,
    check_inputs_supported,
    decide_build,
    model_identity,
    model_mismatch,
    plan_run,
    read_model_marker,
)
from .neuron_engine import CHUNK_MS
from .outcome import Outcome

log = logging.getLogger(__name__)

_SCRATCH = ".coreneuron-output"


# ---- running -----------------------------------------------------------------------------------
#: settings of ``neuron.coreneuron`` whose setters transform the value: restored through the
#: attribute they keep it in, so that None comes back as None
_RAW_ATTRIBUTES = {"sim_config": "_sim_config", "cell_permute": "_cell_permute"}


@contextmanager
def coreneuron_settings(**values):
    """``neuron.coreneuron`` with ``values`` set inside the block, every one restored after it
    (in reverse order), also the ones changed inside the block (style item 7)."""
    from neuron import coreneuron  # noqa: PLC0415 - NEURON is brought up by launch.py first

    old = {}
    for key in values:
        raw = _RAW_ATTRIBUTES.get(key)
        old[key] = getattr(coreneuron, raw) if raw else getattr(coreneuron, key)
    try:
        for key, value in values.items():
            if value is None and key in _RAW_ATTRIBUTES:
                setattr(coreneuron, _RAW_ATTRIBUTES[key], None)
            else:
                setattr(coreneuron, key, value)
        yield coreneuron
    finally:
        for key in reversed(list(values)):
            raw = _RAW_ATTRIBUTES.get(key)
            if raw:
                setattr(coreneuron, raw, old[key])
            else:
                setattr(coreneuron, key, old[key])


def _write_sim_config(path: Path, outpath: Path) -> None:
    path.write_text(f"outpath={outpath}\n")


class CoreNeuronEngine:
    """One CoreNEURON run: library, checks, chunked solve (all ranks call every method)."""

    def __init__(self, plan: CoreNeuronPlan, settings, comm, verbose=False):
        self.plan, self.settings, self.comm = plan, settings, comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.verbose = verbose
        self.library: Path | None = None
        self.placeholder = None
        self.scratch = settings.output_dir / _SCRATCH
        self.build_model = True

    # -- set-up ----------------------------------------------------------------------------
    def locate_library(self) -> Path:
        self.library = find_library()
        # NEURON reads CORENEURONLIB when psolve hands over (ours, whatever the working dir)
        os.environ["CORENEURONLIB"] = str(self.library)
        return self.library

    def prepare(self, h, pc, populations, n_local_cells: int) -> None:
        """Checks and the placeholder cell, after the model is built and before init."""
        check_mechanisms(h, self.library)
        if n_local_cells == 0:
            self.placeholder = add_placeholder_cell(h, pc, populations, self.rank)

    def _barrier(self):
        if self.size > 1:
            self.comm.Barrier()

    def _make_scratch(self):
        if self.rank == 0:
            self.scratch.mkdir(parents=True, exist_ok=True)
            _write_sim_config(self.scratch / "sim.conf", self.scratch)
        self._barrier()

    def cleanup(self):
        """Remove what the run wrote besides its outputs (the input folder unless kept)."""
        self._barrier()
        if self.rank == 0:
            shutil.rmtree(self.scratch, ignore_errors=True)
            shutil.rmtree(self.plan.datpath / ".chunks", ignore_errors=True)
            if self.plan.file_mode and self.build_model and not self.plan.keep_input:
                core_options.remove_model_folder(self.plan.datpath)
            elif self.plan.keep_input:   # --enable-shm: the kept model goes to disk
                core_options.copy_back_from_shm(self.plan.datpath)

    # -- file mode: the model on disk ------------------------------------------------------
    def write_model(self, h, pc, identity: dict) -> float:
        """``pc.nrncore_write`` of the initialised model into the input folder; returns seconds."""
        t0 = time.perf_counter()
        datpath = self.plan.datpath
        self.make_model_folder()
        pc.nrncore_write(str(datpath))
        self._barrier()
        if self.rank == 0:
            marker = dict(identity, written=time.strftime("%Y-%m-%dT%H:%M:%S"))
            (datpath / MODEL_MARKER).write_text(json.dumps(marker, indent=1) + "\n")
        return time.perf_counter() - t0

    # -- the solve -------------------------------------------------------------------------
    def make_model_folder(self) -> None:
        """A fresh, empty input folder, on disk or in /dev/shm (all ranks call it)."""
        core_options.make_model_folder(self.plan.datpath, self.plan.enable_shm, self.comm)

    def chunk_ms(self, reports, tstop: float, t: float) -> float:
        """As long as the report buffer allows (one transfer per chunk), at least 25 ms."""
        remaining = tstop - t
        active = getattr(reports, "reports", None) or []
        if not active:
            return max(remaining, CHUNK_MS)
        per_step = allmax(self.comm, sum(r.bytes_per_step for r in active))
        if not per_step:
            return max(remaining, CHUNK_MS)
        return max(CHUNK_MS, int(reports.buffer_mb * 2**20 // per_step) * self.settings.run.dt)

    def _settings(self) -> dict:
        values = {"enable": True, "verbose": 2 if self.verbose else 0,
                  "sim_config": str(self.scratch / "sim.conf"),
                  "cell_permute": self.plan.cell_permute, "model_stats": self.plan.model_stats,
                  "file_mode": self.plan.file_mode, "skip_write_model_to_disk": False,
                  "model_path": str(self.plan.datpath) if self.plan.file_mode else None}
        return values

    def run(self, h, pc, tstop: float, on_chunk=None, reports=None) -> None:
        """psolve through CoreNEURON in chunks; NEURON holds the whole state after each one."""
        self._make_scratch()
        t = round(float(h.t), 2)
        chunk = self.chunk_ms(reports, tstop, t)
        solver = reports.solver(pc) if reports is not None else pc
        n_solves = 0
        with coreneuron_settings(**self._settings()) as core:
            while t < tstop - 1e-9:
                t = min(t + chunk, tstop)
                self._file_mode_chunk(core)
                solver.psolve(t)
                n_solves += 1
                if on_chunk is not None:
                    on_chunk(t)
        if self.rank == 0:
            log.debug("CoreNEURON: %d psolve(s) of up to %g ms (each transfers the model)",
                      n_solves, chunk)
        h.t = tstop

    def _file_mode_chunk(self, core):
        """File mode: every chunk goes through files NEURON writes with the current state
        (``.chunks`` of the input folder, removed at the end). The model at t=0, the one
        ``--keep-build`` keeps, is written once after initialisation. (Reading that one with
        ``skip_write_model_to_disk`` would save a write, but then NEURON 9.0.2 gets no spikes
        back.)"""
        if self.plan.file_mode:
            core.model_path = str(self.plan.datpath / ".chunks")

    # -- simulate a model written earlier (no NEURON model) ----------------------------------
    def simulate_files(self, tstop: float) -> tuple[np.ndarray, np.ndarray]:
        """Stand-alone CoreNEURON on the input folder; (times, gids) of all spikes on rank 0."""
        self._make_scratch()
        lib = ctypes.CDLL(str(self.library), mode=ctypes.RTLD_GLOBAL)
        one_openmp_thread()
        run = self.settings.run
        args = ["neurodamus-coreneuron", "--datpath", str(self.plan.datpath),
                "--tstop", repr(float(tstop)), "--dt", repr(float(run.dt)),
                "--outpath", str(self.scratch), "--cell-permute", str(self.plan.cell_permute),
                "--voltage", "1000", "--verbose", "2" if self.verbose else "0",
                "--skip-mpi-finalize"]
        if self.size > 1:
            args += ["--mpi"]
        if self.plan.model_stats:
            args += ["--model-stats"]
        argv = (ctypes.c_char_p * (len(args) + 1))(*[a.encode() for a in args], None)
        lib.solve_core.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_char_p)]
        lib.solve_core.restype = ctypes.c_int
        code = lib.solve_core(len(args), argv)
        if code != 0:
            raise MechanismError(f"CoreNEURON stopped with code {code} simulating "
                                 f"{self.plan.datpath}")
        self._barrier()
        if self.rank != 0:
            return np.zeros(0), np.zeros(0, np.int64)
        return read_out_dat(self.scratch / "out.dat", run.dt)


def one_openmp_thread() -> None:
    """Stand-alone CoreNEURON runs OpenMP regions, by default with a thread per core: with a
    rank per core that oversubscribes every core (measured: 4000 cells on 2 ranks x 2 threads
    on 2 cores, no speed-up over 1 rank). One thread per rank, unless OMP_NUM_THREADS says
    otherwise."""
    if os.environ.get("OMP_NUM_THREADS"):
        return
    for path in mapped_files():
        if not os.path.basename(path).startswith(("libgomp", "libomp", "libiomp")):
            continue
        try:
            ctypes.CDLL(path).omp_set_num_threads(1)
        except (OSError, AttributeError):
            continue


#: fixed step: a spike detected at the end of a step is recorded at that step's time + 1e-10 ms
#: (NEURON and CoreNEURON alike; checked bit for bit against the NEURON engine's spikes)
SPIKE_TIME_OFFSET = 1e-10


def step_times(n_steps: int, dt: float) -> np.ndarray:
    """t after each fixed step 0..n_steps: two half-step additions per step, as NEURON and
    CoreNEURON accumulate it (the exact doubles spike times are taken from)."""
    half = np.cumsum(np.full(2 * n_steps, 0.5 * dt))
    return np.concatenate([[0.0], half[1::2]])


def read_out_dat(path: Path, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """CoreNEURON's ``out.dat`` (time<TAB>gid, 8 digits) with the exact doubles of the spike
    times (step time + ``SPIKE_TIME_OFFSET``)."""
    try:
        data = np.loadtxt(path, ndmin=2) if path.stat().st_size else np.zeros((0, 2))
    except (OSError, ValueError) as exc:
        raise MechanismError(f"CoreNEURON wrote no readable spike file {path}: {exc}") from exc
    if data.size == 0:
        return np.zeros(0), np.zeros(0, np.int64)
    times, gids = data[:, 0], data[:, 1].astype(np.int64)
    steps = np.rint(times / dt).astype(np.int64)
    exact = step_times(int(steps.max()) + 1, dt)[steps] + SPIKE_TIME_OFFSET
    if np.any(np.abs(exact - times) > 1e-6 * np.maximum(1.0, np.abs(times))):
        exact = times   # not on the step grid (should not happen in fixed step): keep as read
    return exact, gids


# ---- the pipeline's CoreNEURON steps -----------------------------------------------------------
def after_init(plan, rt, model) -> bool:
    """Init phase, after initialisation (and a restore): file mode writes the model at t=0.
    True when the run ends here (``--simulate-model=OFF``)."""
    core = model.core
    if not core.plan.file_mode:
        return False
    if model.checkpoints is not None and model.checkpoints.restore_dir:
        return False   # the input folder would hold the restored state, not a model at t=0
    identity = dict(model_identity(plan.settings, plan.populations, plan.size),
                    library=str(core.library))
    seconds = core.write_model(rt.h, rt.pc, identity)
    rt.timings["init/write model"] = seconds
    log.info("CoreNEURON model written to %s in %.2f s", core.plan.datpath, seconds)
    return not core.plan.simulate


def simulate_written_model(plan, rt, core: CoreNeuronEngine | None = None) -> Outcome:
    """``--build-model=OFF`` (or AUTO with a model on disk): CoreNEURON alone, spikes only."""
    if core is None:
        core = CoreNeuronEngine(plan.engine, plan.settings, rt.comm, plan.options.verbose)
        core.build_model = False
        log.info("CoreNEURON: simulating the model already in %s", plan.engine.datpath)
    with rt.phase("build"):
        marker = read_model_marker(core.plan.datpath) or {}
        if os.environ.get("CORENEURONLIB"):
            core.library = find_library([])
        else:
            core.library = Path(marker.get("library", ""))
            if not core.library.is_file():
                raise MechanismError(f"{core.plan.datpath}: the CoreNEURON library it was "
                                     f"built with ({core.library}) is gone; set CORENEURONLIB "
                                     f"or rebuild the model (--build-model=ON)")
        log.info("CoreNEURON library: %s", core.library)
    t0 = time.perf_counter()
    times, gids = core.simulate_files(plan.tstop)
    rt.timings["run"] = time.perf_counter() - t0
    counts = {}
    with rt.phase("write"):
        if plan.rank == 0:
            pops = [(p.name, p.offset, p.offset + p.size) for p in plan.populations.values()
                    if not p.is_virtual]
            order = np.lexsort((gids, times))
            counts = write_spikes(plan.outputs.spikes_file, times[order], gids[order], pops)
        core.cleanup()
    return Outcome(simulated=True, spike_counts=counts,
                   last_line=f"Spikes: {sum(counts.values())} written to "
                             f"{plan.outputs.spikes_file} (CoreNEURON, model from "
                             f"{core.plan.datpath})")


__all__ = [
    "CORENEURON_INPUT",
    "MODEL_MARKER",
    "PLACEHOLDER_POPULATION",
    "SPIKE_TIME_OFFSET",
    "CoreNeuronEngine",
    "CoreNeuronPlan",
    "add_placeholder_cell",
    "after_init",
    "check_inputs_supported",
    "check_mechanisms",
    "coreneuron_settings",
    "decide_build",
    "find_library",
    "model_identity",
    "model_mismatch",
    "one_openmp_thread",
    "placeholder_gid",
    "plan_run",
    "read_out_dat",
    "simulate_written_model",
    "step_times",
]
