"""``neurodamus doctor`` in a clean environment, under a shadowing install, with mismatched MPI
libraries, and with a mechanism library that lacks what the circuit needs."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from neurodamus.allocator import find_jemalloc
from neurodamus.tools.example import write_example
from neurodamus.tools.mechanisms import build_mechanisms
from tests.helpers import ROOT, mpirun_prefix

pytestmark = pytest.mark.mpi


@pytest.fixture(scope="module")
def circuit(tmp_path_factory):
    config = write_example(tmp_path_factory.mktemp("doctor"), n_cells=8, tstop=50, seed=1)
    build_mechanisms([config.parent / "mechanisms"], log=lambda *_: None)
    return config


def clean_env(**extra) -> dict:
    """What a fresh login shell in the virtualenv has: no PYTHONPATH, no module, no Spack."""
    env = {"PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin",
                                    "/usr/bin", "/bin"]),
           "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8"}
    for key in ("NEURODAMUS_CACHE_DIR", "XDG_CACHE_HOME"):
        if key in os.environ:
            env[key] = os.environ[key]
    env.update(extra)
    return env


def doctor(*args, env=None, cwd=None, timeout=180):
    cmd = [sys.executable, "-m", "neurodamus", "doctor", *map(str, args)]
    return subprocess.run(cmd, env=env or clean_env(), cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False)


def lines(res, status):
    return [ln for ln in res.stdout.splitlines() if ln.startswith(f"[{status}]")]


def test_clean_environment_passes(circuit, tmp_path):
    res = doctor(circuit, cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    assert f"imported from {ROOT / 'neurodamus'}" in out
    assert "HOC library" in out and str(ROOT / "core" / "hoc") in out
    assert "NEURON and mpi4py agree" in out
    assert "mechanisms the circuit needs are there" in out
    assert "is writable" in out
    assert "no Spack environment and no environment modules" in out
    assert not lines(res, "FAIL"), out


def test_shadowing_copy_on_pythonpath_is_named(circuit, tmp_path):
    """An older checkout first on PYTHONPATH (as a loaded module would put it) wins the import."""
    shadow = tmp_path / "old-checkout"
    shutil.copytree(ROOT / "neurodamus", shadow / "neurodamus",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "core" / "hoc", shadow / "core" / "hoc")
    res = doctor(circuit, env=clean_env(PYTHONPATH=str(shadow)), cwd=tmp_path)
    out = res.stdout
    assert f"imported from {shadow / 'neurodamus'} (PYTHONPATH)" in out, out
    warn = "\n".join(lines(res, "WARN"))
    assert f"the installed neurodamus ({ROOT / 'neurodamus'}) is shadowed" in warn, out
    assert "remove" in out and "PYTHONPATH" in out


def test_hoc_library_path_overriding_our_files_is_named(tmp_path):
    old = tmp_path / "old_hoc"
    old.mkdir()
    (old / "ndmorph.hoc").write_text("// an older copy\n")
    res = doctor("--no-mpi", env=clean_env(HOC_LIBRARY_PATH=str(old)), cwd=tmp_path)
    assert f"ndmorph.hoc is taken from {old / 'ndmorph.hoc'}" in res.stdout, res.stdout


def test_environment_managers_are_reported(tmp_path):
    env = clean_env(SPACK_ENV=str(tmp_path / "spack-env"),
                    LOADEDMODULES="unstable:py-neurodamus/3.0:neuron/9.0")
    res = doctor("--no-mpi", env=env, cwd=tmp_path)
    assert f"Spack environment active: {tmp_path / 'spack-env'}" in res.stdout
    assert "relevant to neurodamus: py-neurodamus/3.0, neuron/9.0" in res.stdout


def test_allocator_choice_is_reported(tmp_path):
    res = doctor("--no-mpi", env=clean_env(NEURODAMUS_ALLOCATOR="/no/such/libjemalloc.so.2"),
                 cwd=tmp_path)
    assert res.returncode != 0
    assert "[FAIL] allocator: NEURODAMUS_ALLOCATOR=/no/such/libjemalloc.so.2: not 'auto'" \
        in res.stdout
    res = doctor("--no-mpi", env=clean_env(NEURODAMUS_ALLOCATOR="system"), cwd=tmp_path)
    assert "[info] allocator: no preload: NEURODAMUS_ALLOCATOR=system" in res.stdout
    jemalloc = find_jemalloc(clean_env())
    res = doctor("--no-mpi", env=clean_env(), cwd=tmp_path)
    expected = (f"[ ok ] allocator: runs preload jemalloc ({jemalloc})" if jemalloc else
                "[info] allocator: no jemalloc found")
    assert expected in res.stdout


def test_mpi_lib_nrn_path_to_a_wrong_library_is_flagged(tmp_path):
    wrong = next(iter(glob.glob("/usr/lib/*/libc.so.6") + glob.glob("/lib/*/libc.so.6")), None)
    if wrong is None:
        pytest.skip("no libc.so.6 to point MPI_LIB_NRN_PATH at")
    res = doctor(env=clean_env(MPI_LIB_NRN_PATH=wrong), cwd=tmp_path)
    assert f"MPI_LIB_NRN_PATH={wrong} is not an MPI library" in res.stdout, res.stdout


def _mpich_library() -> str | None:
    """A real second MPI (MPICH) next to the launcher's Open MPI, if installed."""
    candidates = [os.environ.get("NEURODAMUS_TEST_MPICH_LIB", "")]
    candidates += glob.glob("/usr/lib/*/libmpich.so.12") + glob.glob("/usr/lib64/libmpich.so.12")
    return next((c for c in candidates if c and os.path.isfile(c)), None)


def test_mpi4py_on_another_mpi_than_neuron_fails(circuit, tmp_path):
    """mpi4py on MPICH, NEURON on the launcher's Open MPI: 1 rank for one, 2 for the other."""
    mpich = _mpich_library()
    if mpich is None:
        pytest.skip("needs a second MPI: apt-get install libmpich12 (scripts/setup.sh)")
    if "Open MPI" not in subprocess.run(mpirun_prefix(1)[:1] + ["--version"],
                                        capture_output=True, text=True, check=False).stdout:
        pytest.skip("the launcher is not Open MPI")
    libdir = tmp_path / "mpich"
    libdir.mkdir()
    (libdir / "libmpi.so.12").symlink_to(mpich)     # the name mpi4py's MPICH build links to
    env = clean_env(MPI4PY_LIBMPI=str(libdir / "libmpi.so.12"), LD_LIBRARY_PATH=str(libdir))
    res = doctor(circuit, env=env, cwd=tmp_path)
    assert res.returncode == 1, res.stdout + res.stderr
    fail = "\n".join(lines(res, "FAIL"))
    assert "NEURON and mpi4py do not see the same 2 ranks" in fail, res.stdout
    assert "mpi4py sees rank 0 of 1" in res.stdout and "NEURON sees rank" in res.stdout
    assert "libmpich" in res.stdout

    # and the driver itself stops with one message naming both counts
    run_env = dict(env, neurodamus_special="1", NEURON_MODULE_OPTIONS="-nogui")
    run = subprocess.run(mpirun_prefix(2) + ["-x", "MPI4PY_LIBMPI", "-x", "LD_LIBRARY_PATH",
                                            sys.executable, "-m", "neurodamus", str(circuit),
                                            f"--output-path={tmp_path / 'out'}"],
                         env=run_env, capture_output=True, text=True, timeout=120,
                         check=False)
    text = run.stdout + run.stderr
    assert run.returncode != 0
    assert text.count("ERROR: MPI mismatch") == 1, text[-3000:]
    assert "the launcher started 2, NEURON sees 2 rank(s), mpi4py sees 1" in text


def test_library_lacking_a_template_mechanism_fails(circuit, tmp_path):
    mods = tmp_path / "mods"
    mods.mkdir()
    for mod in (circuit.parent / "mechanisms").glob("*.mod"):
        if mod.stem != "KmHH":
            shutil.copy(mod, mods)
    lib = build_mechanisms([mods], log=lambda *_: None).library
    res = doctor(circuit, "--no-mpi", env=clean_env(NRNMECH_LIB_PATH=str(lib)), cwd=tmp_path)
    assert res.returncode == 1, res.stdout
    assert "'KmHH' needed by template PyrHH" in res.stdout


def test_bad_config_and_unwritable_output_fail(circuit, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    res = doctor(bad, "--no-mpi", cwd=tmp_path)
    assert res.returncode == 1
    assert "invalid JSON" in "\n".join(lines(res, "FAIL"))

    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    res = doctor(circuit, "--no-mpi", f"--output-path={blocker / 'out'}", cwd=tmp_path)
    assert res.returncode == 1
    assert "cannot write" in "\n".join(lines(res, "FAIL")), res.stdout


def _openmpi_mpirun():
    exe = shutil.which("mpirun")
    if exe is None:
        return None
    version = subprocess.run([exe, "--version"], capture_output=True, text=True,
                             check=False).stdout
    return exe if "Open MPI" in version else None


def test_root_under_openmpi_gets_the_fix(tmp_path):
    """As root, a plain mpirun is refused by Open MPI; doctor names the two variables, and
    setting them is enough for the same plain mpirun to start."""
    mpirun = _openmpi_mpirun()
    if os.geteuid() != 0 or mpirun is None:
        pytest.skip("needs root and Open MPI's mpirun")
    res = doctor("--no-mpi", env=clean_env(), cwd=tmp_path)
    warn = [ln for ln in lines(res, "WARN") if "running as root" in ln]
    assert warn, res.stdout
    assert ("fix: export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1"
            in res.stdout), res.stdout
    assert "scripts/launch.sh -n 2" in res.stdout

    plain = [mpirun, "-np", "1", "--oversubscribe", sys.executable, "-c", "print('started')"]
    refused = subprocess.run(plain, env=clean_env(), capture_output=True, text=True, check=False)
    assert refused.returncode != 0 and "root" in refused.stdout + refused.stderr
    fixed_env = clean_env(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    started = subprocess.run(plain, env=fixed_env, capture_output=True, text=True, check=False)
    assert started.returncode == 0 and "started" in started.stdout, started.stderr[-2000:]

    res = doctor("--no-mpi", env=fixed_env, cwd=tmp_path)
    assert "running as root" not in res.stdout, res.stdout
