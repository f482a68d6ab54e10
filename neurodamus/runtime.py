"""NEURON and MPI as a run uses them: the handles, the phases, the mechanism library, once.

Mechanisms: one library is loaded, once (a second library with the same mechanisms crashes
NEURON): the one already in the process (``special``, ``./x86_64``), ``NRNMECH_LIB_PATH``, or
the circuit's ``mechanisms_dir`` built by rank 0 into the content-addressed cache.

A ``Runtime`` is made by ``start()`` after MPI and NEURON are up. Every step of the pipeline
that talks to NEURON or to the other ranks receives it; nothing else keeps NEURON state.
"""

from __future__ import annotations

import logging
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from . import cpu_level, launch
from .errors import MechanismError
from .parallel import phase
from .tools.mechanisms import build_mechanisms

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    h: object
    pc: object
    comm: object
    debug: bool = False
    timings: dict = field(default_factory=dict)   # phase name -> seconds (this rank)
    mechanisms_origin: str | None = None

    @property
    def rank(self) -> int:
        return self.comm.Get_rank()

    @property
    def size(self) -> int:
        return self.comm.Get_size()

    def phase(self, name: str):
        """``parallel.phase``: a step that succeeds on every rank or fails on all of them."""
        return phase(self.comm, name, self.timings, self.debug)

    def load_mechanisms(self, settings) -> str:
        """Load the run's mechanism library once (cost-based load balance may need it before
        the build); returns where the mechanisms came from."""
        if self.mechanisms_origin is None:
            self.mechanisms_origin = load_mechanisms(
                self.h, settings.mechanisms_dir, self.comm, log=log.info,
                where=f"{settings.circuit_path}: components.mechanisms_dir",
                coreneuron=settings.target_simulator == "CORENEURON")
        return self.mechanisms_origin


SENTINEL_MECHANISM = "MembraneCurrentSource"


def mechanisms_loaded(h) -> bool:
    """True when a library with the driver's own mechanisms is already in (special, ./x86_64)."""
    return hasattr(h, SENTINEL_MECHANISM)


def load_mechanisms(h, mechanisms_dir: str = "", comm=None, log=print, where: str = "",
                    coreneuron: bool = False) -> str:
    """Load one mechanism library; build the circuit's mechanisms_dir (cached) when needed.

    ``where`` names the config key ``mechanisms_dir`` came from, for messages. Returns a
    description of where the mechanisms came from. ``coreneuron``: the cached build is the
    ``nrnivmodl -coreneuron`` flavour, with ``libcorenrnmech.so`` next to ``libnrnmech.so``
    (the CoreNEURON engine finds it there).
    """
    if mechanisms_loaded(h):
        return "built into special" if os.environ.get("NEURODAMUS_UNDER_SPECIAL") else \
            f"auto-loaded {Path.cwd() / platform.machine() / 'libnrnmech.so'}"
    libs = [p for p in os.environ.get("NRNMECH_LIB_PATH", "").split(":") if p]
    if not libs:
        if mechanisms_dir and not os.path.isdir(mechanisms_dir):
            raise MechanismError(f"{where or 'mechanisms_dir'}: mechanism folder not found: "
                                 f"{mechanisms_dir}")
        try:
            libs = [str(_cached_build(mechanisms_dir, comm, log, coreneuron).library)]
        except MechanismError as exc:
            if where:
                raise MechanismError(f"{where}: building {mechanisms_dir} failed: {exc}") from exc
            raise
    for lib in libs:
        if not os.path.isfile(lib):
            raise MechanismError(f"Mechanism library not found: {lib} (NRNMECH_LIB_PATH)")
        cpu = cpu_level.library_problem(lib)
        if cpu:
            raise MechanismError(cpu)
        if not h.nrn_load_dll(lib):
            raise MechanismError(f"NEURON could not load the mechanism library {lib} "
                                 f"(NRNMECH_LIB_PATH): not a shared library built by nrnivmodl "
                                 f"for this NEURON; rebuild it with 'neurodamus "
                                 f"build-mechanisms'")
    return ", ".join(libs)


def _cached_build(mechanisms_dir, comm, log, coreneuron=False):
    """Rank 0 builds (or finds) the cached library; every rank then gets the outcome."""
    rank = comm.Get_rank() if comm is not None else 0
    result, error = None, None
    if rank == 0:
        try:
            dirs = [mechanisms_dir] if mechanisms_dir else []
            result = build_mechanisms(dirs, coreneuron=coreneuron, log=log)
        except MechanismError as exc:
            error = str(exc)
        except Exception as exc:  # noqa: BLE001 - never leave the other ranks in the bcast
            error = f"building the mechanisms of {mechanisms_dir or 'core/mod'} failed: " \
                    f"{type(exc).__name__}: {exc}"
    if comm is not None and comm.Get_size() > 1:
        result, error = comm.bcast((result, error), root=0)
    if error:
        raise MechanismError(error)
    return result


def start(debug: bool = False) -> Runtime:
    """Bring up MPI and NEURON (``launch.start_mpi_and_neuron``)."""
    h, pc, comm = launch.start_mpi_and_neuron()
    return Runtime(h, pc, comm, debug=debug)


def process_start_time() -> float:
    """When this process started (the run summary's start-up figure counts from there)."""

    return psutil.Process(os.getpid()).create_time()


__all__ = ["SENTINEL_MECHANISM", "Runtime", "load_mechanisms", "mechanisms_loaded",
           "process_start_time", "start"]
