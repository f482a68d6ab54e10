"""Shared test helpers: launching neurodamus under real mpirun and reading its outputs."""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
NEURODAMUS = [sys.executable, "-m", "neurodamus"]


def mpirun_prefix(ranks: int) -> list[str]:
    """mpirun with the flags this machine needs (root, oversubscription, no binding)."""
    mpirun = shutil.which("mpirun") or shutil.which("mpiexec")
    if mpirun is None:
        pytest.fail("mpirun not found: install MPI (scripts/setup.sh does it)")
    cmd = [mpirun, "-np", str(ranks)]
    version = subprocess.run([mpirun, "--version"], capture_output=True, text=True).stdout
    if "Open MPI" in version or "OpenRTE" in version:
        if os.geteuid() == 0:
            cmd.insert(1, "--allow-run-as-root")
        cmd[1:1] = ["--oversubscribe", "--bind-to", "none", "--mca", "mpi_yield_when_idle", "1",
                    "--mca", "orte_tmpdir_base", _session_base()]
    return cmd


@functools.cache
def _session_root() -> str:
    """This test process's folder of Open MPI session folders, removed when it exits."""
    root = tempfile.mkdtemp(prefix="nd-test-ompi-")
    atexit.register(shutil.rmtree, root, True)
    return root


def _session_base() -> str:
    """A session folder of its own for each mpirun: Open MPI 4.1 creates /tmp/ompi.<host>.<uid>
    for every job and fails ("mkdir ... File exists", orte_init) when another job creates or
    removes it at the same moment (a test's mpirun while the previous one cleans up)."""
    return tempfile.mkdtemp(dir=_session_root())


def base_env(**extra) -> dict:
    env = dict(os.environ)
    env["neurodamus_special"] = "1"   # tests choose special explicitly
    env.setdefault("NEURON_MODULE_OPTIONS", "-nogui")
    env.pop("NRNMECH_LIB_PATH", None)
    env.update({k: v for k, v in extra.items() if v is not None})
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
    return env


def run_neurodamus(args, ranks=1, cwd=None, env=None, timeout=3600, command=None):
    """Run ``neurodamus args`` on ``ranks`` MPI ranks; returns CompletedProcess. The timeout
    only guards against a hang: on a busy machine a run may take many times its usual time."""
    cmd = (command or NEURODAMUS) + [str(a) for a in args]
    if ranks > 1 or os.environ.get("NEURODAMUS_TEST_ALWAYS_MPIRUN"):
        cmd = mpirun_prefix(ranks) + cmd
    return subprocess.run(cmd, cwd=cwd, env=env or base_env(), capture_output=True, text=True,
                          timeout=timeout)


def read_spikes(path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    import libsonata

    reader = libsonata.SpikeReader(str(path))
    result = {}
    for pop in sorted(reader.get_population_names()):
        spikes = reader[pop].get()
        ids = np.array([s[0] for s in spikes], dtype=np.int64)
        times = np.array([s[1] for s in spikes], dtype=float)
        result[pop] = (times, ids)
    return result


def spikes_equal(a, b) -> bool:
    return a.keys() == b.keys() and all(
        np.array_equal(a[k][0], b[k][0]) and np.array_equal(a[k][1], b[k][1]) for k in a)
