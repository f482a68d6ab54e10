"""scripts/activate.sh, sourced in a clean bash, makes this checkout the neurodamus that runs.

Documented order (docs/development.md, header of activate.sh):
  PATH              <environment bin>:...      (virtualenv bin/ or Spack view bin/)
  PYTHONPATH        <checkout>:...             (before any module or view site-packages)
  HOC_LIBRARY_PATH  <checkout>/core/hoc:...    (before any installed HOC library)
The Spack flavour runs in test_pkg_spack.py; the re-activation logic is checked here against a
stand-in `spack` executable.
"""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
from pkg_helpers import CHECKOUT, PRINT_VARS, SCRIPTS, clean_env, run_bash, shell_vars

ACTIVATE = SCRIPTS / "activate.sh"


@pytest.fixture
def other_install(tmp_path) -> dict[str, str]:
    """What a loaded module would bring: another neurodamus on PYTHONPATH, other HOC files."""
    site = tmp_path / "module" / "site-packages"
    (site / "neurodamus").mkdir(parents=True)
    (site / "neurodamus" / "__init__.py").write_text('__version__ = "0.0.0-module"\n')
    hoc = tmp_path / "module" / "hoc"
    hoc.mkdir()
    return {"PYTHONPATH": str(site), "HOC_LIBRARY_PATH": str(hoc)}


def test_venv_checkout_comes_first(installed_venv, other_install):
    env = clean_env(**other_install)
    script = f"""
        source {ACTIVATE} --venv {installed_venv} || exit 9
        {PRINT_VARS}
        neurodamus --version
        python -c 'import neurodamus; print("imported", neurodamus.__file__)'
    """
    proc = run_bash(script, env=env)
    assert proc.returncode == 0, proc.stderr
    values = shell_vars(proc.stdout)
    path = values["PATH"].split(":")
    assert path[0] == str(installed_venv / "bin")
    pythonpath = values["PYTHONPATH"].split(":")
    assert pythonpath == [str(CHECKOUT), other_install["PYTHONPATH"]]
    hoc = values["HOC_LIBRARY_PATH"].split(":")
    assert hoc == [str(CHECKOUT / "core" / "hoc"), other_install["HOC_LIBRARY_PATH"]]
    # the entry point is the virtualenv's, the code is the checkout's (not the venv's copy)
    assert f"({CHECKOUT / 'neurodamus'})" in proc.stdout
    assert f"imported {CHECKOUT / 'neurodamus' / '__init__.py'}" in proc.stdout
    # and it says what it set
    assert "PYTHONPATH       = " in proc.stdout and "HOC_LIBRARY_PATH = " in proc.stdout


def test_without_activation_the_venv_copy_runs(installed_venv):
    """Control for the test above: the virtualenv really carries another neurodamus."""
    proc = run_bash(f"{installed_venv}/bin/neurodamus --version", env=clean_env())
    assert proc.returncode == 0, proc.stderr
    assert "site-packages" in proc.stdout and str(CHECKOUT / "neurodamus") not in proc.stdout


def test_sourcing_twice_adds_nothing_twice(other_install):
    env = clean_env(**other_install)
    script = f"""
        source {ACTIVATE} --no-env --quiet
        source {ACTIVATE} --no-env --quiet --model minicol
        {PRINT_VARS}
    """
    proc = run_bash(script, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("@@BEGIN@@"), "--quiet prints nothing"
    values = shell_vars(proc.stdout)
    assert values["PATH"] == env["PATH"]
    assert values["PYTHONPATH"].split(":") == [str(CHECKOUT), other_install["PYTHONPATH"]]
    assert values["HOC_LIBRARY_PATH"].split(":") == [
        str(CHECKOUT / "core" / "hoc"),
        str(CHECKOUT / "models" / "minicol" / "hoc"),
        other_install["HOC_LIBRARY_PATH"],
    ]


def test_deactivate_restores(other_install, installed_venv):
    env = clean_env(**other_install)
    script = f"""
        source {ACTIVATE} --venv {installed_venv} --quiet
        neurodamus_deactivate
        {PRINT_VARS}
    """
    values = shell_vars(run_bash(script, env=env).stdout)
    assert values["PYTHONPATH"] == other_install["PYTHONPATH"]
    assert values["HOC_LIBRARY_PATH"] == other_install["HOC_LIBRARY_PATH"]
    assert values["PATH"] == env["PATH"]


def test_errors_return_without_closing_the_shell(tmp_path):
    script = f"""
        source {ACTIVATE} --venv {tmp_path}/nowhere
        echo "status=$?"
        source {ACTIVATE} --bogus
        echo "status=$?"
    """
    proc = run_bash(script)
    assert "status=1" in proc.stdout and "status=2" in proc.stdout
    assert "not a virtualenv" in proc.stderr and "unknown option" in proc.stderr


def _fake_spack(tmp_path: Path, view: Path, fail_first: bool) -> Path:
    """A stand-in `spack` whose first `env activate --sh` forgets PYTHONPATH/HOC_LIBRARY_PATH."""
    root = tmp_path / "fake-spack"
    (root / "bin").mkdir(parents=True)
    counter = root / "activations"
    counter.write_text("0")
    exe = root / "bin" / "spack"
    exe.write_text(textwrap.dedent(f"""\
        #!/bin/bash
        if [ "$1 $3" = "-e install" ]; then
            # what an install leaves in a directory environment: the lock and the view
            echo "installing $2" >> {root}/log
            touch "$2/spack.lock"; mkdir -p "$2/.spack-env/view/bin"
            printf '#!/bin/sh\\necho fake\\n' > "$2/.spack-env/view/bin/neurodamus"
            chmod +x "$2/.spack-env/view/bin/neurodamus"
        elif [ "$1 $3" = "-e find" ]; then
            exit 1
        elif [ "$1 $2 $3" = "env activate --sh" ]; then
            n=$(( $(cat {counter}) + 1 )); echo $n > {counter}
            echo "export PATH={view}/bin:$PATH;"
            echo "export SPACK_ENV=$5;"
            if [ {int(fail_first)} = 0 ] || [ $n -gt 1 ]; then
                echo "export PYTHONPATH={view}/lib/python3/site-packages;"
                echo "export HOC_LIBRARY_PATH={view}/share/neurodamus-models/hoc;"
            fi
        elif [ "$1 $2 $3" = "env deactivate --sh" ]; then
            echo "unset SPACK_ENV; unset PYTHONPATH; unset HOC_LIBRARY_PATH;"
            echo "export PATH=$(echo "$PATH" | sed 's|{view}/bin:||');"
        else
            exit 3
        fi
    """))
    exe.chmod(0o755)
    return root


def _installed_env_dir(tmp_path: Path) -> Path:
    env_dir = tmp_path / "env"
    (env_dir / ".spack-env" / "view" / "bin").mkdir(parents=True)
    (env_dir / "spack.yaml").write_text("spack: {specs: []}\n")
    (env_dir / "spack.lock").write_text("{}\n")
    exe = env_dir / ".spack-env" / "view" / "bin" / "neurodamus"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    return env_dir


@pytest.mark.parametrize("fail_first", [False, True], ids=["first-ok", "first-forgets"])
def test_reactivates_when_first_activation_leaves_paths_unset(tmp_path, fail_first):
    view = tmp_path / "view"
    env_dir = _installed_env_dir(tmp_path)
    root = _fake_spack(tmp_path, view, fail_first)
    script = f"""
        source {ACTIVATE} --spack {env_dir} || exit 9
        {PRINT_VARS}
        echo "activations=$(cat {root}/activations)"
    """
    proc = run_bash(script, env=clean_env(SPACK_ROOT=str(root)))
    assert proc.returncode == 0, proc.stderr
    values = shell_vars(proc.stdout)
    assert values["PATH"].split(":")[0] == f"{view}/bin"
    assert values["PYTHONPATH"].split(":") == [str(CHECKOUT), f"{view}/lib/python3/site-packages"]
    assert values["HOC_LIBRARY_PATH"].split(":") == [
        str(CHECKOUT / "core" / "hoc"), f"{view}/share/neurodamus-models/hoc"
    ]
    assert f"activations={2 if fail_first else 1}" in proc.stdout
    assert ("activated twice" in proc.stdout) == fail_first


def test_an_environment_not_installed_is_not_activated(tmp_path):
    """Activate before install: nothing changes, and the message gives the commands to run."""
    env_dir = tmp_path / "env"
    env_dir.mkdir()
    (env_dir / "spack.yaml").write_text("spack: {specs: []}\n")
    root = _fake_spack(tmp_path, tmp_path / "view", fail_first=False)
    env = clean_env(SPACK_ROOT=str(root))
    script = f"""
        source {ACTIVATE} --spack {env_dir}
        echo "status=$?"
        {PRINT_VARS}
        echo "activations=$(cat {root}/activations)"
    """
    proc = run_bash(script, env=env)
    assert "status=1" in proc.stdout
    assert "activations=0" in proc.stdout
    values = shell_vars(proc.stdout)
    assert values["PYTHONPATH"] == "" and values["PATH"] == env["PATH"]
    assert "is not installed yet" in proc.stderr
    assert f"  spack -e {env_dir} install\n" in proc.stderr
    assert f"  source {ACTIVATE} --spack {env_dir}\n" in proc.stderr
    assert f"source {ACTIVATE} --install --spack {env_dir}" in proc.stderr


def test_install_option_installs_then_activates(tmp_path):
    env_dir = tmp_path / "env"
    env_dir.mkdir()
    (env_dir / "spack.yaml").write_text("spack: {specs: []}\n")
    view = tmp_path / "view"
    root = _fake_spack(tmp_path, view, fail_first=False)
    script = f"""
        source {ACTIVATE} --install --spack {env_dir} || exit 9
        {PRINT_VARS}
    """
    proc = run_bash(script, env=clean_env(SPACK_ROOT=str(root)))
    assert proc.returncode == 0, proc.stderr
    assert (root / "log").read_text() == f"installing {env_dir}\n"
    assert proc.stdout.index(f"spack -e {env_dir} install") < proc.stdout.index("@@BEGIN@@")
    values = shell_vars(proc.stdout)
    assert values["PATH"].split(":")[0] == f"{view}/bin"
    assert values["PYTHONPATH"].split(":")[0] == str(CHECKOUT)


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_gets_the_same_order(other_install):
    script = f"""
        source {ACTIVATE} --no-env --quiet --model minicol || exit 9
        print -r -- "PYTHONPATH=$PYTHONPATH"
        print -r -- "HOC_LIBRARY_PATH=$HOC_LIBRARY_PATH"
    """
    proc = subprocess.run(["zsh", "-f", "-c", script], env=clean_env(**other_install),
                          check=False, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    values = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    assert values["PYTHONPATH"].split(":") == [str(CHECKOUT), other_install["PYTHONPATH"]]
    assert values["HOC_LIBRARY_PATH"].split(":") == [
        str(CHECKOUT / "core" / "hoc"),
        str(CHECKOUT / "models" / "minicol" / "hoc"),
        other_install["HOC_LIBRARY_PATH"],
    ]
