"""Spack as a site and its users meet it: install-then-activate, named environments, modules.

Needs Spack (skipped with the reason otherwise, like test_pkg_spack.py, whose fixtures these
tests share: the synced copy of the checkout, the generated externals, the installed offline
environment whose builds the environments here reuse). Select them with `pytest -k spack`.

* the documented order: scripts/activate.sh refuses an environment that is not installed and
  prints the commands; `--install` installs, then activates, and `neurodamus` runs;
* the named environment `neurodamus`, made by scripts/spack-env.sh and by the guide's own
  sequence (spack repo add / env create / add / develop / install), runs the example on 2 ranks
  after `spack env activate neurodamus`;
* install + `spack module lmod refresh` of the deployment environment rewrite no committed file;
* `spack info` shows the builtin NEURON and libsonata versions next to ours, and no version of
  our packages without a checksum.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from pkg_helpers import CHECKOUT, PRINT_VARS, mpirun_available, run_bash, shell_vars
from test_pkg_spack import (  # noqa: F401 (fixtures)
    Spack,
    _assert_ran,
    _example,
    _sync_checkout,
    installed,
    spack,
)

pytestmark = [pytest.mark.spack, pytest.mark.slow]

yaml = pytest.importorskip("yaml", reason="PyYAML splits the generated externals")


def _site_scope(installed: Spack, name: str, extra: dict | None = None) -> Path:
    """A user scope holding what a site's configuration would: the generated externals, the
    offline environment's install tree (reused), named environments and modules of the test."""
    generated = yaml.safe_load((installed.checkout / "spack" / "environments" /
                                "neurodamus-offline" / "externals.yaml").read_text())
    scope = installed.base / name
    shutil.rmtree(scope, ignore_errors=True)
    scope.mkdir(parents=True)
    for section in ("packages", "compilers"):
        if section in generated:
            (scope / f"{section}.yaml").write_text(yaml.safe_dump({section: generated[section]}))
    config = {"config": {"install_tree": {"root": str(installed.store)},
                         "environments_root": str(installed.base / f"{name}-environments")}}
    (scope / "config.yaml").write_text(yaml.safe_dump(config))
    for section, value in (extra or {}).items():
        (scope / f"{section}.yaml").write_text(yaml.safe_dump({section: value}))
    shutil.rmtree(installed.base / f"{name}-environments", ignore_errors=True)
    return scope


def _with_scope(spack: Spack, scope: Path) -> Spack:
    return replace(spack, env={**spack.env, "SPACK_USER_CONFIG_PATH": str(scope)})


def _committed_files(root: Path) -> dict[str, bytes]:
    """The files under root/spack that the checkout has under version control."""
    listing = subprocess.run(["git", "-C", str(CHECKOUT), "ls-files", "-z", "spack"],
                             check=True, capture_output=True, text=True).stdout
    return {name: (root / name).read_bytes() for name in listing.split("\0")
            if name and (root / name).is_file()}


# -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def site(installed) -> Spack:
    return _with_scope(installed, _site_scope(installed, "config-site"))


def test_spack_info_keeps_builtin_versions_and_checksums(site):
    # in an environment of ours, so with our repository in front of builtin
    out = {name: site("info", name, check=False, timeout=600)
           for name in ("neuron", "py-libsonata", "py-neurodamus", "neurodamus-models")}
    for name, proc in out.items():
        assert proc.returncode == 0, f"spack info {name}:\n{proc.stdout}\n{proc.stderr}"
    # ours and the builtin ones, side by side
    for version in ("9.0.2", "8.2.3"):
        assert f"    {version} " in out["neuron"].stdout, out["neuron"].stdout
    for version in ("0.2.2", "0.1.29"):
        assert f"    {version} " in out["py-libsonata"].stdout, out["py-libsonata"].stdout
    # our packages: develop only (built from the clone), no unchecked release
    for name in ("py-neurodamus", "neurodamus-models"):
        versions = out[name].stdout.split("Safe versions:")[1].split("Deprecated")[0]
        assert [line.split()[0] for line in versions.strip().splitlines()] == ["develop"], \
            out[name].stdout
    assert f"[git] {site.checkout} on branch main" in out["py-neurodamus"].stdout


def test_spack_activate_refuses_then_installs_then_activates(site, tmp_path):
    """The documented order, through scripts/activate.sh, on a fresh directory environment."""
    env_dir = site.checkout / "spack" / "environments" / "neurodamus-order-test"
    shutil.rmtree(env_dir, ignore_errors=True)
    env_dir.mkdir()
    shutil.copy2(site.checkout / "spack" / "environments" / "neurodamus" / "spack.yaml",
                 env_dir / "spack.yaml")
    try:
        activate = site.checkout / "scripts" / "activate.sh"
        refused = run_bash(f"""
            source {activate} --spack {env_dir}
            echo "status=$?"
            {PRINT_VARS}
        """, env=site.shell_env(), timeout=600)
        assert "status=1" in refused.stdout, refused.stdout + refused.stderr
        assert "is not installed yet" in refused.stderr
        assert f"  spack -e {env_dir} install\n" in refused.stderr
        assert shell_vars(refused.stdout)["PYTHONPATH"] == ""

        proc = run_bash(f"""
            source {activate} --install --spack {env_dir} || exit 9
            {PRINT_VARS}
            neurodamus --version || exit 7
            python -c 'import docopt, libsonata, neuron' || exit 8
        """, env=site.shell_env(), timeout=3600)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
        values = shell_vars(proc.stdout)
        view = env_dir / ".spack-env" / "view"
        assert values["PATH"].split(":")[0] == f"{view}/bin"
        assert values["NRNMECH_LIB_PATH"] == f"{view}/lib/libnrnmech.so"
        assert f"({site.checkout}/neurodamus)" in proc.stdout
    finally:
        shutil.rmtree(env_dir, ignore_errors=True)


@pytest.mark.skipif(not mpirun_available(), reason="no mpirun/mpiexec on this machine")
def test_spack_named_environment_from_spack_env_script(installed, tmp_path):
    scope = _site_scope(installed, "config-named-script")
    env = _with_scope(installed, scope).shell_env()
    script = installed.checkout / "scripts" / "spack-env.sh"
    proc = run_bash(f"{script} create --install", env=env, timeout=3600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    repos = yaml.safe_load((scope / "repos.yaml").read_text())["repos"]
    repo_paths = repos.values() if isinstance(repos, dict) else repos
    assert str(installed.checkout / "spack") in [str(p) for p in repo_paths]
    written = yaml.safe_load((scope.parent / "config-named-script-environments" / "neurodamus" /
                              "spack.yaml").read_text())["spack"]
    assert written["develop"]["py-neurodamus"]["path"] == str(installed.checkout)
    _run_named_example(installed, env, tmp_path)

    again = run_bash(f"{script} create", env=env, timeout=600)
    assert again.returncode == 2 and "exists already (--force replaces it)" in again.stderr


@pytest.mark.skipif(not mpirun_available(), reason="no mpirun/mpiexec on this machine")
def test_spack_named_environment_from_the_guides_sequence(installed, tmp_path):
    scope = _site_scope(installed, "config-named-guide")
    env = _with_scope(installed, scope).shell_env()
    clone = installed.checkout
    root = installed.exe.parent.parent
    proc = run_bash(f"""
        set -e
        source {root}/share/spack/setup-env.sh
        spack repo add {clone}/spack
        spack env create neurodamus
        spack env activate -p neurodamus
        spack add neurodamus-models
        spack develop -p {clone} --no-clone py-neurodamus@develop
        spack add py-neurodamus@develop
        spack install
    """, env=env, timeout=3600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    _run_named_example(installed, env, tmp_path)


def _run_named_example(installed: Spack, env: dict, tmp_path: Path) -> None:
    """In a new shell: `spack env activate neurodamus`, then the example on 2 ranks."""
    root = installed.exe.parent.parent
    folder = tmp_path / "example"
    proc = _example(f"source {root}/share/spack/setup-env.sh\n"
                    "spack env activate neurodamus || exit 6", env, folder)
    _assert_ran(proc, folder)
    assert "-environments/neurodamus/.spack-env/view/lib/" in proc.stdout, \
        "neurodamus --version names the named environment's view"
    values = shell_vars(proc.stdout)
    assert values["NRNMECH_LIB_PATH"].endswith("/neurodamus/.spack-env/view/lib/libnrnmech.so")


def test_spack_install_and_module_refresh_leave_committed_files_alone(installed):
    """The deployment environment: install, write its Lmod modules; no committed file changes."""
    lmod_root = installed.base / "lmod-deploy"
    scope = _site_scope(installed, "config-deploy",
                        {"modules": {"default": {"roots": {"lmod": str(lmod_root)}}}})
    deploy = replace(_with_scope(installed, scope), env_name="neurodamus-deploy")
    _sync_checkout(installed.checkout)  # undo whatever an earlier run left
    before = _committed_files(installed.checkout)
    assert before == _committed_files(CHECKOUT), "the copy is in sync with the checkout"
    deploy("install", timeout=3600)
    shutil.rmtree(lmod_root, ignore_errors=True)
    deploy("module", "lmod", "refresh", "-y", timeout=600)
    assert list(lmod_root.glob("*/Core/neurodamus-minicol/develop.lua"))
    after = _committed_files(installed.checkout)
    changed = sorted(name for name in before if after.get(name) != before[name])
    assert not changed, f"rewritten by install/refresh: {changed}"
