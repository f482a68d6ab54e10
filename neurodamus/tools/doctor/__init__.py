"""``neurodamus doctor [simulation_config.json]``: check the set-up and explain what to fix.

Each check prints one line with its verdict (``ok``, ``info``, ``WARN``, ``FAIL``), what it
found, and for anything not ok the fix. The exit code is 1 when something would block a run
(a ``FAIL``), else 0. Checks, in order:

* Python and the ``neurodamus`` package: which copy is imported, from which ``sys.path``
  entry, and which other copies it shadows (or is shadowed by) on ``PYTHONPATH``;
* a Spack environment or environment modules that bring their own neurodamus or NEURON;
* the HOC library (the driver's ``core/hoc`` and ``HOC_LIBRARY_PATH``);
* NEURON and MPI: versions, ``MPI_LIB_NRN_PATH``, root under Open MPI (whose ``mpirun``
  refuses root without ``OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1``), and a
  2-rank launch (``mpirun -np 2``) that checks NEURON and mpi4py see the same ranks;
* the mechanisms a run would use (``special``, ``./<arch>/libnrnmech.so``,
  ``NRNMECH_LIB_PATH`` or the build cache) and, given a config, whether they hold every
  mechanism the circuit's templates insert and its synapses need;
* given a config: the config itself, template and morphology files, and a writable output
  folder (and a writable folder for the SUCCESS marker next to the config).

Probes that load NEURON or start MPI run in child processes, so that a broken library can
only fail its own check.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ... import launch
from ...config import RunOptions, load_settings
from ...errors import NeurodamusError
from .circuit import check_circuit, check_output
from .environment import check_allocator, check_environment, check_hoc, check_package
from .mechanisms import check_mechanisms
from .mpi import check_neuron_mpi, mpi_launcher
from .report import FAIL, INFO, OK, WARN, Check, Report

USAGE = """Check the neurodamus set-up (and a simulation config) and explain what to fix.

Usage:
    neurodamus doctor [<simulation_config>] [--output-path=DIR] [--no-mpi] [--ranks=N]

Options:
    --output-path=DIR   Check this output folder instead of the config's output.output_dir.
    --no-mpi            Skip the multi-rank launch check (mpirun -np N).
    --ranks=N           Ranks of the launch check [default: 2].

Exit code: 1 when a check FAILs (something would block a run), else 0.
"""


def run_doctor(config: str | None = None, output_path: str | None = None, with_mpi=True,
               ranks: int = 2, out=print) -> int:
    if launch.launcher_rank() != 0:
        return 0   # under mpirun: rank 0 speaks; the launch check starts its own ranks
    os.environ.setdefault("NEURON_MODULE_OPTIONS", "-nogui")
    report = Report(out)
    out(f"neurodamus doctor (working directory {Path.cwd()})")
    package_dir = Path(__file__).resolve().parents[2]
    check_package(report, package_dir)
    check_environment(report)
    check_allocator(report)
    check_hoc(report)
    settings = None
    if config:
        try:
            settings = load_settings(config, RunOptions(output_path=output_path))
        except NeurodamusError as exc:
            report.add("config", FAIL, str(exc).splitlines()[0], str(exc).splitlines()[1:10],
                       fix="correct the file and key named above")
        except Exception as exc:  # noqa: BLE001 - libsonata raises several types
            report.add("config", FAIL, f"{config}: {type(exc).__name__}: {exc}",
                       fix="correct the config")
        else:
            report.add("config", OK, f"{settings.config_path} (circuit "
                       f"{settings.circuit_path}) loads and validates")
            for w in settings.warnings:
                report.add("config", WARN, w)
    special = None if os.environ.get(launch.SPECIAL_ENV) else launch.find_special()
    with tempfile.TemporaryDirectory(prefix="neurodamus-doctor-") as tmp:
        workdir = Path(tmp)
        check_neuron_mpi(report, ranks, with_mpi, special, workdir)
        needs = {}
        if settings is not None:
            try:
                needs = check_circuit(report, settings)
            except Exception as exc:  # noqa: BLE001
                report.add("circuit", FAIL, f"cannot read the circuit: {type(exc).__name__}: "
                           f"{exc}")
        check_mechanisms(report, settings, needs, workdir)
    if settings is not None:
        check_output(report, settings)
    else:
        report.add("config", INFO, "no simulation config given: circuit, mechanisms it needs "
                   "and output folder not checked",
                   fix="neurodamus doctor path/to/simulation_config.json")
    out(report.summary())
    return 1 if report.failed else 0


__all__ = ["USAGE", "Check", "Report", "mpi_launcher", "run_doctor"]
