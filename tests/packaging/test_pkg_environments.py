"""The environments in spack/environments are valid YAML and point at things that exist.

No Spack needed. test_pkg_spack.py concretizes and installs the offline one for real.
"""

from __future__ import annotations

import glob
import subprocess
import sys
from pathlib import Path

import pytest
from pkg_helpers import CHECKOUT, ENVS_DIR, PACKAGES_DIR, SPACK_DIR, setup_cfg_requirements

yaml = pytest.importorskip(
    "yaml", reason="PyYAML reads the Spack files: pip install pyyaml (tox -e packaging has it)"
)

ENVS = sorted(p.parent for p in ENVS_DIR.glob("*/spack.yaml"))
ENV_IDS = [p.name for p in ENVS]
GENERATED = {"externals.yaml"}  # written by generate_externals.py, never committed
GENERATOR = ENVS_DIR / "neurodamus-offline" / "generate_externals.py"


def load(env_dir: Path) -> dict:
    data = yaml.safe_load((env_dir / "spack.yaml").read_text())
    assert isinstance(data, dict) and set(data) == {"spack"}, "one top-level key: spack"
    return data["spack"]


def test_expected_environments_exist():
    assert {"neurodamus", "neurodamus-dev", "neurodamus-deploy", "neurodamus-offline"} <= set(
        ENV_IDS
    )


@pytest.mark.parametrize("env_dir", ENVS, ids=ENV_IDS)
def test_includes_and_repos_exist(env_dir):
    env = load(env_dir)
    for include in env.get("include", []):
        path = env_dir / include
        if path.name in GENERATED:
            assert (SPACK_DIR / ".gitignore").read_text().count(path.name), "generated: ignored"
            continue
        assert path.is_file(), f"include {include} not found"
        assert isinstance(yaml.safe_load(path.read_text()), dict)
    repos = env.get("repos", [])
    assert isinstance(repos, list), "a list of repos: 0.23 rejects 1.x's mapping form"
    assert any((env_dir / r).resolve() == SPACK_DIR for r in repos), "our repository is listed"
    for repo in repos:
        assert ((env_dir / repo) / "repo.yaml").is_file(), repo


@pytest.mark.parametrize("env_dir", ENVS, ids=ENV_IDS)
def test_specs_name_our_packages(env_dir):
    env = load(env_dir)
    names = {spec.split("@")[0].split()[0] for spec in env["specs"]}
    assert names == {"py-neurodamus", "neurodamus-models"}
    for name in names:
        assert (PACKAGES_DIR / name / "package.py").is_file()
    for spec in env["specs"]:
        if spec.startswith("neurodamus-models"):
            assert "model=" in spec


@pytest.mark.parametrize("env_dir", ENVS, ids=ENV_IDS)
def test_develop_paths_point_at_this_checkout(env_dir):
    env = load(env_dir)
    develop = env.get("develop", {})
    # every environment builds the driver from this clone; the models package has no source
    # of its own (it compiles what py-neurodamus installs)
    assert set(develop) == {"py-neurodamus"}
    for name, entry in develop.items():
        assert not Path(entry["path"]).is_absolute(), "relative to the environment folder"
        assert (env_dir / entry["path"]).resolve() == CHECKOUT
        assert entry["spec"].startswith(name + "@")


def test_deploy_modules_are_named_as_documented():
    env = load(ENVS_DIR / "neurodamus-deploy")
    includes = [ENVS_DIR / "neurodamus-deploy" / i for i in env["include"]]
    config = {}
    for path in includes:
        config.update(yaml.safe_load(path.read_text()))
    lmod = config["modules"]["default"]["lmod"]
    assert "lmod" in config["modules"]["default"]["enable"]
    projections = lmod["projections"]
    assert projections["py-neurodamus"] == "py-neurodamus/{version}"
    models = (PACKAGES_DIR / "neurodamus-models" / "package.py").read_text()
    for model in ("minicol",):
        assert f'"{model}"' in models
        assert projections[f"neurodamus-models model={model}"] == f"neurodamus-{model}/{{version}}"
    assert lmod.get("hash_length") == 0


@pytest.mark.parametrize("path", ["build-linux-debian12-x86_64-abcdef1/CMakeCache.txt",
                                  "build-linux-debian12-zen2-abcdef1",   # Spack 1.x: a symlink
                                  "spack-build-out.txt", "spack-build-env.txt"])
def test_spack_develop_leftovers_are_ignored_by_git(path):
    proc = subprocess.run(["git", "-C", str(CHECKOUT), "check-ignore", "-q", path], check=False)
    assert proc.returncode == 0, f"git does not ignore {path}"


def test_generator_says_what_is_missing(tmp_path):
    """A virtualenv without wheel: the generator stops and says to install it."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    proc = subprocess.run([str(venv / "bin" / "python"), str(GENERATOR), "--output",
                           str(tmp_path / "x.yaml"), "--spack-version", "1.1"],
                          check=False, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "not installed in" in proc.stderr and "wheel" in proc.stderr
    assert "pip install" in proc.stderr
    assert not (tmp_path / "x.yaml").exists()


@pytest.mark.parametrize("version", ["1.1", "0.23"])
def test_generated_externals_cover_everything_but_ours(tmp_path, version):
    out = tmp_path / "externals.yaml"
    proc = subprocess.run(
        [sys.executable, str(GENERATOR), "--output", str(out), "--spack-version", version],
        check=False, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    data = yaml.safe_load(out.read_text())
    packages = data["packages"]
    needed = set(setup_cfg_requirements()) | {"python", "py-pip", "py-setuptools", "py-wheel"}
    assert needed <= set(packages), needed - set(packages)
    # jemalloc (preloaded by the driver): the system's as an external, else py-neurodamus
    # prefers ~jemalloc (nothing to build it from offline)
    if glob.glob("/usr/lib/*/libjemalloc.so.2"):
        assert packages["jemalloc"]["externals"][0]["spec"].startswith("jemalloc@5")
        assert packages["jemalloc"]["externals"][0]["prefix"] == "/usr"
        assert "py-neurodamus" not in packages
    else:
        assert packages.pop("py-neurodamus") == {"variants": "~jemalloc"}
    for name, entry in packages.items():
        assert entry["buildable"] is False, name
        for ext in entry.get("externals", []):
            assert Path(ext["prefix"]).is_dir(), ext
            if name.startswith("py-") or name in ("python", "neuron"):
                assert ext["prefix"] == sys.prefix
            if name.startswith("py-") and version.startswith("1"):
                assert ext["dependencies"] == [{"spec": "python"}]
    assert "+coreneuron" in packages["neuron"]["externals"][0]["spec"]
    if version.startswith("0"):
        assert data["compilers"][0]["compiler"]["spec"].startswith("gcc@=")
        assert "gcc" not in packages
    else:
        assert "compilers" not in data
        assert "languages:=" in packages["gcc"]["externals"][0]["spec"]


def test_generated_externals_for_a_neuron_built_from_source(tmp_path):
    """--build neuron: no neuron external; its build tools, Eigen and NMODL's packages instead."""
    out = tmp_path / "externals.yaml"
    proc = subprocess.run([sys.executable, str(GENERATOR), "--output", str(out),
                           "--spack-version", "1.1", "--build", "neuron"],
                          check=False, capture_output=True, text=True)
    if proc.returncode and "needs these from the system" in proc.stderr:
        pytest.skip(proc.stderr.strip())
    if proc.returncode and "not installed in" in proc.stderr:
        pytest.skip("NMODL's Python packages are not in this interpreter: " + proc.stderr.strip())
    assert proc.returncode == 0, proc.stderr
    packages = yaml.safe_load(out.read_text())["packages"]
    assert "neuron" not in packages
    assert {"cmake", "gmake", "ninja", "bison", "flex", "gettext", "ncurses", "readline",
            "eigen", "py-jinja2", "py-pyyaml", "py-sympy", "py-find-libpython"} <= set(packages)
    for name in ("cmake", "eigen"):
        assert packages[name]["externals"][0]["prefix"] == "/usr"
