"""Check 4: NEURON and MPI (versions, MPI_LIB_NRN_PATH, running as root under Open MPI, and a
multi-rank launch in which NEURON and mpi4py must see the same ranks)."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path

from ..mechanisms import _nrnivmodl
from .probes import _MPI_PROBE, _probe_env, _run_probe, _tail, _write_probe
from .report import FAIL, INFO, OK, WARN, Report

#: Open MPI's mpirun refuses to start as root unless both are "1" (or --allow-run-as-root)
ROOT_VARIABLES = ("OMPI_ALLOW_RUN_AS_ROOT", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM")


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def launcher_is_openmpi(exe: str) -> bool:
    """Whether ``exe --version`` names Open MPI."""
    try:
        version = subprocess.run([exe, "--version"], capture_output=True, text=True,
                                 timeout=20, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "Open MPI" in version or "OpenRTE" in version


def mpi_launcher(ranks: int) -> list[str] | None:
    """srun inside a Slurm allocation, else mpirun/mpiexec with the flags Open MPI needs here."""
    if os.environ.get("SLURM_JOB_ID") and shutil.which("srun"):
        return ["srun", "-n", str(ranks)]
    exe = shutil.which("mpirun") or shutil.which("mpiexec")
    if exe is None:
        return None
    cmd = [exe, "-np", str(ranks)]
    if launcher_is_openmpi(exe):
        if _is_root():
            cmd.append("--allow-run-as-root")
        cmd += ["--oversubscribe", "--bind-to", "none"]
    return cmd


def root_launch_fix(is_root: bool, openmpi: bool, environ) -> str | None:
    """What to set when root would start Open MPI's mpirun without its permission, else None."""
    if not (is_root and openmpi):
        return None
    if all(environ.get(name) == "1" for name in ROOT_VARIABLES):
        return None
    return ("export " + " ".join(f"{name}=1" for name in ROOT_VARIABLES) + "\n"
            "or launch with scripts/launch.sh -n 2 simulation_config.json (from a checkout), "
            "or add --allow-run-as-root to mpirun")


def check_root_launch(report: Report) -> None:
    """As root, a plain ``mpirun -np N neurodamus ...`` fails under Open MPI: say what to set."""
    if not _is_root() or (os.environ.get("SLURM_JOB_ID") and shutil.which("srun")):
        return
    exe = shutil.which("mpirun") or shutil.which("mpiexec")
    if exe is None:
        return
    fix = root_launch_fix(True, launcher_is_openmpi(exe), os.environ)
    if fix:
        unset = [name for name in ROOT_VARIABLES if os.environ.get(name) != "1"]
        report.add("MPI", WARN, f"running as root: a plain '{Path(exe).name} -np N neurodamus "
                   f"...' is refused by Open MPI ({' and '.join(unset)} not 1)", fix=fix)


def _elf_mpi_flavour(path: str) -> str | None:
    """'openmpi', 'mpich' or None (not an MPI library) from the file's bytes."""
    try:
        with open(path, "rb") as fd:
            data = fd.read()
    except OSError:
        return None
    if not data.startswith(b"\x7fELF") or b"MPI_Init" not in data:
        return None
    if b"ompi_mpi_comm_world" in data:
        return "openmpi"
    return "mpich"


def _one_line(text: str) -> str:
    """First line of a library's version text, without NULs, tabs or runs of spaces."""
    return " ".join(text.replace("\0", " ").splitlines()[0].split()) if text.strip() else ""


def _mpi4py_flavour(library_version: str) -> str:
    text = library_version.lower()
    return "openmpi" if "open mpi" in text else "mpich" if (
        "mpich" in text or "intel" in text or "cray" in text) else "unknown"


def check_neuron_mpi(report: Report, ranks: int, with_mpi: bool, special: str | None,
                     workdir: Path) -> None:
    try:
        nrn_version = importlib.metadata.version("neuron")
    except importlib.metadata.PackageNotFoundError:
        nrn_version = None
    try:
        import neuron
    except Exception as exc:  # noqa: BLE001 - any import failure is the finding
        report.add("NEURON", FAIL, f"cannot import neuron: {type(exc).__name__}: {exc}",
                   fix="pip install 'neuron>=9.0.2' in this Python's environment")
        return
    report.add("NEURON", OK, f"{nrn_version or neuron.__version__} from "
               f"{Path(neuron.__file__).parent}")
    try:
        report.add("NEURON", OK, f"nrnivmodl: {_nrnivmodl()}")
    except Exception as exc:  # noqa: BLE001
        report.add("NEURON", WARN, str(exc))

    try:
        mpi4py_version = importlib.metadata.version("mpi4py")
        from mpi4py import MPI

        lib_version = _one_line(MPI.Get_library_version())
    except Exception as exc:  # noqa: BLE001
        report.add("MPI", FAIL, f"cannot use mpi4py: {type(exc).__name__}: {exc}",
                   fix="pip install mpi4py, and install an MPI (apt-get install "
                       "libopenmpi-dev openmpi-bin, or the 'mpich' wheel)")
        return
    report.add("MPI", OK, f"mpi4py {mpi4py_version} with {lib_version}")
    flavour = _mpi4py_flavour(lib_version)

    nrn_path = os.environ.get("MPI_LIB_NRN_PATH")
    if nrn_path:
        # neurodamus brings MPI up through mpi4py first: NEURON then uses that MPI and
        # ignores MPI_LIB_NRN_PATH; other NEURON programs (nrniv, plain scripts) do not
        ignored = ("neurodamus itself is not affected (NEURON uses the MPI mpi4py loaded), "
                   "but nrniv, special without neurodamus and plain NEURON scripts are")
        nrn_flavour = _elf_mpi_flavour(nrn_path)
        if not os.path.isfile(nrn_path):
            report.add("MPI", WARN, f"MPI_LIB_NRN_PATH={nrn_path}: no such file", [ignored],
                       fix="unset MPI_LIB_NRN_PATH, or point it at the libmpi.so that mpi4py "
                           "uses")
        elif nrn_flavour is None:
            report.add("MPI", WARN, f"MPI_LIB_NRN_PATH={nrn_path} is not an MPI library",
                       [ignored],
                       fix="point MPI_LIB_NRN_PATH at the libmpi.so that mpi4py uses "
                           f"({lib_version}), or unset it")
        elif flavour != "unknown" and nrn_flavour != flavour:
            report.add("MPI", WARN, f"MPI_LIB_NRN_PATH={nrn_path} is {nrn_flavour} but mpi4py "
                       f"uses {flavour} ({lib_version})", [ignored],
                       fix="give NEURON and mpi4py the same MPI: point MPI_LIB_NRN_PATH at "
                           "mpi4py's libmpi.so")
        else:
            report.add("MPI", OK, f"MPI_LIB_NRN_PATH={nrn_path} ({nrn_flavour})")

    check_root_launch(report)
    if not with_mpi:
        report.add("MPI", INFO, "launch check skipped (--no-mpi)")
        return
    launcher = mpi_launcher(ranks)
    if launcher is None:
        report.add("MPI", WARN, "no mpirun, mpiexec or srun found: runs are limited to 1 rank",
                   fix="install an MPI launcher (apt-get install openmpi-bin)")
        return
    probe = _write_probe(workdir, "mpi_probe.py", _MPI_PROBE)
    _launch_check(report, "MPI launch", launcher + [sys.executable, str(probe)], ranks, workdir)
    if special:
        _launch_check(report, "MPI launch (special)",
                      launcher + [special, "-mpi", "-nogui", "-python", str(probe)], ranks,
                      workdir)


def _launch_check(report, topic, cmd, ranks, workdir) -> None:
    records, text, error = _run_probe(cmd, cwd=workdir, env=_probe_env())
    shown = " ".join(cmd[:3]) + " ..."
    if error or not records:
        report.add(topic, FAIL, f"{shown}: {error or 'no rank answered'}", _tail(text),
                   fix="check that this MPI launcher belongs to the MPI that mpi4py uses")
        return
    bad = []
    for rec in records:
        m = rec.get("mpi4py") or [None, None, rec.get("mpi4py_error")]
        n = rec.get("neuron") or [None, None]
        if m[1] != ranks or n[1] != ranks:
            bad.append(f"mpi4py sees rank {m[0]} of {m[1]} ({m[2]}), NEURON sees rank {n[0]} "
                       f"of {n[1]}; libmpi loaded: {', '.join(rec.get('libmpi', [])) or '?'}")
        if rec.get("neuron_error"):
            bad.append(f"NEURON: {rec['neuron_error']}")
    if len(records) != ranks:
        bad.append(f"{len(records)} process(es) answered, {ranks} expected")
    if bad:
        libs = sorted({lib for rec in records for lib in rec.get("libmpi", [])})
        report.add(topic, FAIL, f"under '{shown}' NEURON and mpi4py do not see the same "
                   f"{ranks} ranks",
                   [*bad[:4], f"MPI libraries in the processes: {', '.join(libs)}"],
                   fix="NEURON and mpi4py must load the same libmpi, the one of the launcher:\n"
                       "unset MPI4PY_LIBMPI / remove a stray 'mpich' or 'openmpi' wheel, or "
                       "set MPI_LIB_NRN_PATH to mpi4py's libmpi.so;\nrebuild mpi4py against "
                       "the launcher's MPI if needed (pip install --no-binary mpi4py mpi4py)")
    else:
        flags = [f for f in cmd if f.startswith("--allow-run-as-root")]
        report.add(topic, OK, f"'{shown}': {ranks} ranks, NEURON and mpi4py agree",
                   [f"launched with {' '.join(flags)}"] if flags else [])
