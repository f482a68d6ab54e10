"""Lmod modulefiles for virtualenv installations (neurodamus.tools.modulefile).

The Lua text is checked on its own, then loaded with Debian's lmod in a clean bash, and the
example circuit is run through the loaded module on 2 ranks with scripts/launch.sh.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest
from pkg_helpers import (
    CHECKOUT,
    PRINT_VARS,
    SCRIPTS,
    clean_env,
    lmod_init,
    mpirun_available,
    run_bash,
    shell_vars,
)

from neurodamus.tools import modulefile

WRITE = SCRIPTS / "write-modulefile.sh"
LMOD = lmod_init()
needs_lmod = pytest.mark.skipif(LMOD is None, reason="Lmod is not installed (apt-get install lmod)")


def write(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(WRITE), *args], check=False, capture_output=True, text=True,
                          env={**clean_env(), "PYTHON": sys.executable})


def test_render_orders_and_quotes(tmp_path):
    spec = modulefile.ModuleSpec(
        venv=tmp_path / 'v"env', version="1.2", mech_libs=[tmp_path / "a.so", tmp_path / "b.so"],
        corenrn_lib=tmp_path / "core.so", hoc_paths=[tmp_path / "h1", tmp_path / "h2"],
        requires=["openmpi"], setenv={"NEURON_MODULE_OPTIONS": "-nogui"},
    )
    text = modulefile.render(spec)
    assert 'local venv = "' + str(tmp_path) + '/v\\"env"' in text
    assert 'prepend_path("PATH", pathJoin(venv, "bin"))' in text
    assert 'depends_on("openmpi")' in text and 'family("neurodamus")' in text
    # prepend in reverse so that the first given ends up first
    assert text.index(str(tmp_path / "b.so")) < text.index(str(tmp_path / "a.so"))
    assert text.index(str(tmp_path / "h2")) < text.index(str(tmp_path / "h1"))
    assert f'setenv("CORENEURONLIB", "{tmp_path / "core.so"}")' in text
    if shutil.which("luac"):
        assert modulefile.check_lua(text) is None
        assert modulefile.check_lua("prepend_path(") is not None


def test_rejects_bad_arguments(tmp_path):
    proc = write("--venv", str(tmp_path), "--mech-lib", str(tmp_path / "no.so"),
                 "--setenv", "1BAD", "--output", "-")
    assert proc.returncode != 0
    for text in ("not a virtualenv", "no.so: no such file", "1BAD: expected KEY=VALUE"):
        assert text in proc.stderr


def test_version_defaults_to_the_installed_one(installed_venv):
    proc = write("--venv", str(installed_venv), "--output", "-")
    assert proc.returncode == 0, proc.stderr
    init = (CHECKOUT / "neurodamus" / "__init__.py").read_text()
    version = re.search(r'__version__\s*=\s*"([^"]+)"', init).group(1)
    assert f'whatis("Version: {version}")' in proc.stdout


@needs_lmod
def test_lmod_loads_it(installed_venv, tmp_path):
    hoc = tmp_path / "hoc"
    hoc.mkdir()
    root = tmp_path / "modules"
    proc = write("--venv", str(installed_venv), "--name", "nd-test", "--version", "9.9",
                 "--hoc-path", str(hoc), "--modules-root", str(root))
    assert proc.returncode == 0, proc.stderr
    assert (root / "nd-test" / "9.9.lua").is_file()
    script = f"""
        source {LMOD}
        module use {root}
        module load nd-test/9.9 || exit 9
        {PRINT_VARS}
        neurodamus --version
        module unload nd-test
        echo "after=$PATH"
    """
    result = run_bash(script, env=clean_env())
    assert result.returncode == 0, result.stderr
    values = shell_vars(result.stdout)
    assert values["PATH"].split(":")[0] == str(installed_venv / "bin")
    assert values["HOC_LIBRARY_PATH"].split(":")[0] == str(hoc)
    assert "site-packages/neurodamus" in result.stdout  # the virtualenv's own copy runs
    assert f"after={clean_env()['PATH']}" in result.stdout


@pytest.fixture(scope="module")
def venv_neurodamus(installed_venv):
    """The virtualenv's `neurodamus`, if this revision has the `example` sub-command."""
    exe = installed_venv / "bin" / "neurodamus"
    if subprocess.run([str(exe), "example", "--help"], check=False, capture_output=True).returncode:
        pytest.skip("`neurodamus example` is not available in this revision")
    return exe


@needs_lmod
@pytest.mark.skipif(not mpirun_available(), reason="no mpirun/mpiexec on this machine")
def test_module_runs_the_example_on_two_ranks(installed_venv, venv_neurodamus, tmp_path):
    example = tmp_path / "example"
    nd = str(venv_neurodamus)
    made = subprocess.run([nd, "example", str(example), "--cells", "10", "--tstop", "100"],
                          check=False, capture_output=True, text=True, env=clean_env(), timeout=120)
    assert made.returncode == 0, made.stdout + made.stderr
    built = subprocess.run([nd, "build-mechanisms", str(example / "mechanisms"), "--coreneuron"],
                           check=False, capture_output=True, text=True, env=clean_env(),
                           timeout=600)
    assert built.returncode == 0, built.stdout + built.stderr
    arch = re.search(r"Mechanisms ready in (\S+)", built.stdout).group(1)

    root = tmp_path / "modules"
    proc = write("--venv", str(installed_venv), "--mechanisms", arch, "--version", "test",
                 "--modules-root", str(root))
    assert proc.returncode == 0, proc.stderr
    script = f"""
        source {LMOD}
        module use {root}
        module load neurodamus/test || exit 9
        cd {example}
        {PRINT_VARS}
        {SCRIPTS / "launch.sh"} -n 2 simulation_config.json
    """
    result = run_bash(script, env=clean_env(), timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    values = shell_vars(result.stdout)
    assert values["NRNMECH_LIB_PATH"] == f"{arch}/libnrnmech.so"
    assert values["CORENEURONLIB"] == f"{arch}/libcorenrnmech.so"
    assert str(installed_venv / "bin") in values["PATH"].split(":")[:2]
    spikes = list((example / "output").glob("*.h5"))
    assert spikes, f"no spike file in {example / 'output'}:\n{result.stdout[-2000:]}"
