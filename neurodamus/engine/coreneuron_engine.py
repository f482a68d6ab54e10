"""The CoreNEURON engine (issue 5): the model NEURON built, solved by CoreNEURON.

How a run goes with the NEURON 9.0.2 wheel (measured; see docs in ``neuron-facts.md``):

* The model is built in NEURON exactly as for the NEURON engine. ``pc.psolve`` with
  ``neuron.coreneuron.enable`` hands it to CoreNEURON, in memory (*direct mode*, the default) or
  through the files ``pc.nrncore_write`` writes (*file mode*: ``--keep-build``,
  ``--build-model``, ``--simulate-model``). After every ``psolve`` CoreNEURON gives the whole
  state back to NEURON (voltages, mechanism data, random streams, the event queue) together
  with the per-step recordings and the spikes, so report flushes, spike output and checkpoints
  are the NEURON engine's own code. Spikes are bit-identical to the NEURON engine.
* Every ``psolve`` transfers the model, so the run is cut in as few chunks as the report
  buffer (``--report-buffer-size``) allows: one chunk when there are no reports. In file mode
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
  ``offset(zzz) + 1 + rank`` (compatibility §1.1). It is never written to any output.
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
import os
import re
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, MechanismError
from ..launch import mapped_files
from .neuron_engine import CHUNK_MS

CORENEURON_INPUT = "coreneuron_input"
MODEL_MARKER = "neurodamus_model.json"
PLACEHOLDER_POPULATION = "zzz"
BUILD_MODES = ("AUTO", "ON", "OFF")
_SCRATCH = ".coreneuron-output"
_MECH_INFO_RE = re.compile(r"mechanism_info\[\]\s*=\s*\{\s*\"[^\"]*\"\s*,\s*\"(\w+)\"")
_BUILTIN_MECHANISMS = {"morphology", "capacitance", "extracellular"}
#: mechanisms NEURON has built in and CoreNEURON 9.0.2 does not (its built-ins are hh, pas,
#: IClamp, SEClamp, ExpSyn, Exp2Syn, NetStim, PatternStim)
NEURON_ONLY_BUILTINS = {"IntFire1", "IntFire2", "IntFire4", "AlphaSynapse", "VClamp",
                        "OClamp", "APCount", "PointProcessMark", "fastpas"}


# ---- options -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CoreNeuronPlan:
    """How this run uses CoreNEURON: transfer mode, build and simulate steps, input folder."""

    file_mode: bool
    build: str            # "ON", "OFF" or "AUTO" (decided by ``decide_build``)
    simulate: bool
    keep_build: bool
    datpath: Path

    @property
    def keep_input(self) -> bool:
        return self.keep_build or not self.simulate


def plan_run(settings, options) -> CoreNeuronPlan | None:
    """The CoreNEURON plan of a run (None for the NEURON engine); ConfigError on bad options."""
    build = (getattr(options, "build_model", None) or "AUTO").upper()
    simulate = getattr(options, "simulate_model", True)
    keep = bool(getattr(options, "keep_build", False))
    direct = bool(getattr(options, "coreneuron_direct_mode", False))
    if build not in BUILD_MODES:
        raise ConfigError(f"--build-model must be one of {', '.join(BUILD_MODES)}, got {build}")
    file_options = [name for name, used in (("--keep-build", keep),
                                            (f"--build-model={build}", build != "AUTO"),
                                            ("--simulate-model=OFF", not simulate)) if used]
    if settings.target_simulator != "CORENEURON":
        named = file_options + (["--coreneuron-direct-mode"] if direct else [])
        if named:
            raise ConfigError(f"{', '.join(named)}: CoreNEURON options, but the simulator is "
                              f"{settings.target_simulator} (use --simulator=CORENEURON)")
        return None
    if direct and file_options:
        raise ConfigError(f"--coreneuron-direct-mode cannot be combined with "
                          f"{', '.join(file_options)}: they need the model on disk (file mode)")
    if build == "OFF" and not simulate:
        raise ConfigError("--build-model=OFF with --simulate-model=OFF: nothing to do")
    saving = bool(getattr(options, "save", None) or getattr(options, "restore", None))
    if build == "OFF" and saving:
        raise ConfigError("--save / --restore need the model built in NEURON: they cannot be "
                          "used with --build-model=OFF")
    if not simulate and saving:
        raise ConfigError("--save / --restore need a simulation: not with --simulate-model=OFF")
    return CoreNeuronPlan(file_mode=bool(file_options), build=build, simulate=simulate,
                          keep_build=keep, datpath=settings.output_dir / CORENEURON_INPUT)


def model_identity(settings, populations, n_ranks: int) -> dict:
    """What a written model must match to be simulated by a later run."""
    return {"circuit": str(Path(settings.circuit_path).resolve()),
            "node_set": settings.sim.node_set or "",
            "ranks": int(n_ranks), "dt": float(settings.run.dt),
            "populations": {n: [int(p.offset), len(p.selected), bool(p.is_virtual)]
                            for n, p in populations.items()}}


def read_model_marker(datpath: Path) -> dict | None:
    try:
        data = json.loads((Path(datpath) / MODEL_MARKER).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def model_mismatch(marker: dict | None, identity: dict) -> str | None:
    """Why a written model cannot be simulated by this run (None when it can)."""
    if marker is None:
        return "no complete model (no " + MODEL_MARKER + ")"
    for key, what in (("circuit", "circuit"), ("node_set", "node set"), ("ranks", "rank count"),
                      ("dt", "dt"), ("populations", "populations")):
        if marker.get(key) != identity[key]:
            return f"it was built for another {what} ({marker.get(key)!r}, this run: " \
                   f"{identity[key]!r})"
    return None


def decide_build(plan: CoreNeuronPlan, settings, populations, n_ranks, has_reports: bool,
                 say=print, needs_model: bool = False) -> bool:
    """True when this run builds the model in NEURON (same answer on every rank).
    ``needs_model``: the run saves or restores a checkpoint (AUTO then always builds)."""
    identity = model_identity(settings, populations, n_ranks)
    why = model_mismatch(read_model_marker(plan.datpath), identity)
    if plan.build == "ON":
        return True
    if plan.build == "OFF":
        if why:
            raise ConfigError(f"--build-model=OFF: cannot simulate {plan.datpath}: {why}; "
                              f"run with --build-model=ON (or AUTO) first")
        if has_reports:
            raise ConfigError("--build-model=OFF: the config has reports, which need the "
                              "model built in NEURON (CoreNEURON of the NEURON wheel cannot "
                              "write reports itself); run with --build-model=AUTO or ON, or "
                              "with --disable-reports")
        return False
    if why is None and not has_reports and plan.simulate and not needs_model:
        say(f"CoreNEURON: simulating the model already in {plan.datpath} (--build-model=AUTO)")
        return False
    return True


# ---- the mechanism library ---------------------------------------------------------------------
def loaded_mechanism_libraries() -> list[Path]:
    """Mechanism libraries mapped into this process (libnrnmech.so, or a special binary)."""
    return [Path(p) for p in mapped_files()
            if os.path.basename(p) == "libnrnmech.so" or os.path.basename(p).startswith("special")]


def find_library(loaded: list[Path] | None = None) -> Path:
    """CoreNEURON's mechanism library matching the NEURON library in use; MechanismError."""
    env = os.environ.get("CORENEURONLIB")
    if env:
        if not os.path.isfile(env):
            raise MechanismError(f"CORENEURONLIB={env}: no such file (it must name the "
                                 f"libcorenrnmech.so built with 'nrnivmodl -coreneuron')")
        return Path(env)
    loaded = loaded_mechanism_libraries() if loaded is None else loaded
    if not loaded:
        raise MechanismError("CoreNEURON: no mechanism library is loaded, so there is no "
                             "libcorenrnmech.so to pair with it; build the mechanisms with "
                             "'neurodamus build-mechanisms --coreneuron <mod folders>'")
    for lib in loaded:
        candidate = lib.parent / "libcorenrnmech.so"
        if candidate.is_file():
            return candidate
    where = ", ".join(str(p) for p in loaded)
    raise MechanismError(
        f"CoreNEURON was asked for (target_simulator / --simulator) but the mechanism library "
        f"in use ({where}) was built without -coreneuron: there is no libcorenrnmech.so next "
        f"to it. Rebuild it with 'neurodamus build-mechanisms --coreneuron <mod folders>' (or "
        f"'nrnivmodl -coreneuron'), or unset NRNMECH_LIB_PATH to let the driver build both, "
        f"or point CORENEURONLIB at a matching libcorenrnmech.so")


def coreneuron_mechanisms(library: Path) -> set[str] | None:
    """Names of the mechanisms compiled into ``library`` (None when its sources are unknown)."""
    sources = library.parent / "corenrn" / "mod2c"
    if not sources.is_dir():
        return None
    names = set(_BUILTIN_MECHANISMS)
    for cpp in sources.glob("*.cpp"):
        try:
            match = _MECH_INFO_RE.search(cpp.read_text(errors="replace"))
        except OSError:
            continue
        if match:
            names.add(match.group(1))
    return names


def _mechanism_names(h, kind: int) -> list[str]:
    mt = h.MechanismType(kind)
    name = h.ref("")
    out = []
    for i in range(int(mt.count())):
        mt.select(i)
        mt.selected(name)
        out.append(name[0])
    return out


def used_mechanisms_missing(h, available: set[str]) -> list[str]:
    """Mechanisms the NEURON model uses that CoreNEURON's library lacks."""
    missing = []
    density = [n for n in _mechanism_names(h, 0) if n not in available and not n.endswith("_ion")]
    if density:
        sections = list(h.allsec())
        for name in density:
            if any(sec.has_membrane(name) for sec in sections):
                missing.append(name)
    for name in _mechanism_names(h, 1):
        if name not in available and h.List(name).count() > 0:
            missing.append(name)
    return missing


def check_mechanisms(h, library: Path) -> None:
    """MechanismError naming the mechanisms of the model CoreNEURON cannot run."""
    available = coreneuron_mechanisms(library)
    if available is None:
        return   # a library without its build folder: CoreNEURON itself names what it lacks
    missing = used_mechanisms_missing(h, available)
    builtin = sorted(m for m in missing if m in NEURON_ONLY_BUILTINS)
    compiled = sorted(m for m in missing if m not in NEURON_ONLY_BUILTINS)
    reasons = []
    if builtin:
        reasons.append(f"{', '.join(builtin)}: built into NEURON, CoreNEURON has no version of "
                       f"them (use a mod-file model instead, e.g. PointLIF for IntFire1)")
    if compiled:
        reasons.append(f"{', '.join(compiled)}: {library} has no CoreNEURON version of them "
                       f"(their mod files were not compiled with 'nrnivmodl -coreneuron', or "
                       f"the library comes from other mod files than the NEURON library; "
                       f"rebuild both from the same folders with 'neurodamus build-mechanisms "
                       f"--coreneuron')")
    if missing:
        raise MechanismError(f"CoreNEURON cannot run mechanism(s) {', '.join(sorted(missing))} "
                             f"used by the model: {'; '.join(reasons)}. Or run with "
                             f"--simulator=NEURON")


# ---- empty ranks -----------------------------------------------------------------------------
def placeholder_gid(populations: dict, rank: int) -> int:
    """gid of the reserved ``zzz`` cell of an empty rank: offset(zzz) + 1 + rank (§1.1)."""
    from ..circuit.offsets import gid_offsets

    max_ids = {name: p.max_id for name, p in populations.items()}
    max_ids[PLACEHOLDER_POPULATION] = 0
    return gid_offsets(max_ids)[PLACEHOLDER_POPULATION] + 1 + rank


def add_placeholder_cell(h, pc, populations: dict, rank: int):
    """One silent artificial cell so that CoreNEURON gets a non-empty rank; returns its objects."""
    gid = placeholder_gid(populations, rank)
    stim = h.NetStim()
    stim.number = 0
    pc.set_gid2node(gid, rank)
    nc = h.NetCon(stim, None)
    pc.cell(gid, nc)
    return gid, (stim, nc)


# ---- running -----------------------------------------------------------------------------------
#: settings of ``neuron.coreneuron`` whose setters transform the value: restored through the
#: attribute they keep it in, so that None comes back as None
_RAW_ATTRIBUTES = {"sim_config": "_sim_config", "cell_permute": "_cell_permute"}


@contextmanager
def coreneuron_settings(**values):
    """``neuron.coreneuron`` with ``values`` set inside the block, every one restored after it
    (in reverse order), also the ones changed inside the block (style item 7)."""
    from neuron import coreneuron

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

    def __init__(self, plan: CoreNeuronPlan, settings, comm, verbose=False, say=print):
        self.plan, self.settings, self.comm = plan, settings, comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.verbose, self.say = verbose, say
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
            if self.plan.file_mode and self.build_model and not self.plan.keep_input:
                shutil.rmtree(self.plan.datpath, ignore_errors=True)
            shutil.rmtree(self.plan.datpath / ".chunks", ignore_errors=True)

    # -- file mode: the model on disk ------------------------------------------------------
    def write_model(self, h, pc, identity: dict) -> float:
        """``pc.nrncore_write`` of the initialised model into the input folder; returns seconds."""
        t0 = time.perf_counter()
        datpath = self.plan.datpath
        if self.rank == 0:
            if datpath.exists():
                shutil.rmtree(datpath)
            datpath.mkdir(parents=True)
        self._barrier()
        pc.nrncore_write(str(datpath))
        self._barrier()
        if self.rank == 0:
            marker = dict(identity, written=time.strftime("%Y-%m-%dT%H:%M:%S"))
            (datpath / MODEL_MARKER).write_text(json.dumps(marker, indent=1) + "\n")
        return time.perf_counter() - t0

    # -- the solve -------------------------------------------------------------------------
    def chunk_ms(self, reports, tstop: float, t: float) -> float:
        """As long as the report buffer allows (one transfer per chunk), at least 25 ms."""
        remaining = tstop - t
        active = getattr(reports, "reports", None) or []
        if not active:
            return max(remaining, CHUNK_MS)
        per_step = sum(r.bytes_per_step for r in active)
        if self.size > 1:
            from mpi4py import MPI

            per_step = self.comm.allreduce(per_step, op=MPI.MAX)
        buffer_mb = getattr(self.settings.options, "report_buffer_size", None) or 8.0
        if not per_step:
            return max(remaining, CHUNK_MS)
        return max(CHUNK_MS, int(buffer_mb * 2**20 // per_step) * self.settings.run.dt)

    def _settings(self) -> dict:
        values = {"enable": True, "verbose": 2 if self.verbose else 0,
                  "sim_config": str(self.scratch / "sim.conf"), "cell_permute": 0,
                  "file_mode": self.plan.file_mode, "skip_write_model_to_disk": False,
                  "model_path": str(self.plan.datpath) if self.plan.file_mode else None}
        return values

    def run(self, h, pc, tstop: float, on_chunk=None, reports=None) -> None:
        """psolve through CoreNEURON in chunks; NEURON holds the whole state after each one."""
        self._make_scratch()
        t = round(float(h.t), 2)
        chunk = self.chunk_ms(reports, tstop, t)
        solver = reports.solver(pc) if reports is not None else pc
        with coreneuron_settings(**self._settings()) as core:
            while t < tstop - 1e-9:
                t = min(t + chunk, tstop)
                self._file_mode_chunk(core)
                solver.psolve(t)
                if on_chunk is not None:
                    on_chunk(t)
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
                "--outpath", str(self.scratch), "--cell-permute", "0",
                "--voltage", "1000", "--verbose", "2" if self.verbose else "0",
                "--skip-mpi-finalize"]
        if self.size > 1:
            args += ["--mpi"]
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


__all__ = [
    "CORENEURON_INPUT",
    "PLACEHOLDER_POPULATION",
    "CoreNeuronEngine",
    "CoreNeuronPlan",
    "add_placeholder_cell",
    "check_mechanisms",
    "decide_build",
    "find_library",
    "model_identity",
    "placeholder_gid",
    "plan_run",
    "read_out_dat",
    "step_times",
]


# ---- the run's side (called by Simulation; every rank calls every function) -------------------
#: input modules whose NEURON objects CoreNEURON cannot take over (NEURON 9.0.2 aborts in
#: nrnthread_dat2_vecplay): seclamp plays its levels with a discrete (step) Vector.play
_DISCRETE_PLAY_MODULES = {"seclamp"}


def check_inputs_supported(settings) -> None:
    sim = settings.sim
    for name in sim.list_input_names:
        module = sim.input(name).module.name
        if module in _DISCRETE_PLAY_MODULES:
            raise ConfigError(f"{settings.config_path}: inputs.{name}: module '{module}' plays "
                              f"its levels with a step Vector.play, which CoreNEURON cannot "
                              f"take over (NEURON 9.0.2 aborts); use --simulator=NEURON")


def setup(sim):
    """Load phase: the CoreNEURON engine of this run (None for NEURON), build decided."""
    plan = plan_run(sim.settings, sim.options)
    if plan is None:
        return None
    check_inputs_supported(sim.settings)
    core = CoreNeuronEngine(plan, sim.settings, sim.comm, sim.options.verbose, sim.say)
    has_reports = bool(sim.settings.sim.list_report_names) and not sim.options.disable_reports
    saving = bool(getattr(sim.options, "save", None) or getattr(sim.options, "restore", None))
    core.build_model = decide_build(plan, sim.settings, sim.populations, sim.size, has_reports,
                                    say=sim.say, needs_model=saving)
    return core


def after_init(sim) -> bool:
    """Init phase, after initialisation (and a restore): file mode writes the model at t=0.
    True when the run ends here (``--simulate-model=OFF``)."""
    core = sim.core
    if not core.plan.file_mode:
        return False
    if getattr(sim, "checkpoints", None) is not None and sim.checkpoints.restore_dir:
        return False   # the input folder would hold the restored state, not a model at t=0
    identity = dict(model_identity(sim.settings, sim.populations, sim.size),
                    library=str(core.library))
    seconds = core.write_model(sim.h, sim.pc, identity)
    sim.timings["init/write model"] = seconds
    sim.say(f"CoreNEURON model written to {core.plan.datpath} in {seconds:.2f} s")
    return not core.plan.simulate


def finish_build_only(sim) -> int:
    """``--simulate-model=OFF``: the model is on disk; no simulation, no outputs."""
    sim.core.cleanup()
    if sim.rank == 0:
        settings = sim.settings
        sim.record.complete(tstop=settings.run.tstop, dt=settings.run.dt, simulated=False,
                            coreneuron_input=str(sim.core.plan.datpath))
        settings.success_marker.touch()
        sim.out(f"\nCoreNEURON model kept in {sim.core.plan.datpath} (--simulate-model=OFF); "
                f"simulate it with --simulator=CORENEURON --build-model=OFF")
    return 0


def simulate_written_model(sim) -> int:
    """``--build-model=OFF`` (or AUTO with a model on disk): CoreNEURON alone, spikes only."""
    from ..reports.spikes import write_spikes
    from . import summary

    core, settings = sim.core, sim.settings
    with sim.phase("build"):
        marker = read_model_marker(core.plan.datpath) or {}
        if os.environ.get("CORENEURONLIB"):
            core.library = find_library([])
        else:
            core.library = Path(marker.get("library", ""))
            if not core.library.is_file():
                raise MechanismError(f"{core.plan.datpath}: the CoreNEURON library it was "
                                     f"built with ({core.library}) is gone; set CORENEURONLIB "
                                     f"or rebuild the model (--build-model=ON)")
        sim.say(f"CoreNEURON library: {core.library}")
    t0 = time.perf_counter()
    times, gids = core.simulate_files(settings.run.tstop)
    sim.timings["run"] = time.perf_counter() - t0
    counts = {}
    with sim.phase("write"):
        if sim.rank == 0:
            pops = [(p.name, p.offset, p.offset + p.size) for p in sim.populations.values()
                    if not p.is_virtual]
            order = np.lexsort((gids, times))
            counts = write_spikes(settings.spikes_file, times[order], gids[order], pops)
            if not sim.options.disable_reports:
                sim._write_offsets_file()
        core.cleanup()
    rows = summary.gather_summary(sim.comm, sim.timings, {"cells": 0})
    if sim.rank == 0:
        n_cells = {n: len(p.selected) for n, p in sim.populations.items() if not p.is_virtual}
        sim.out(summary.format_summary(rows, counts, settings.run.tstop, n_cells))
        sim.record.complete(tstop=settings.run.tstop, dt=settings.run.dt,
                            spikes_file=settings.spikes_file.name,
                            populations={n: {"cells": c, "spikes": counts.get(n, 0)}
                                         for n, c in n_cells.items()})
        settings.success_marker.touch()
        sim.out(f"\nSpikes: {sum(counts.values())} written to {settings.spikes_file} "
                f"(CoreNEURON, model from {core.plan.datpath})")
    return 0
