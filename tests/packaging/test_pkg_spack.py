"""The offline Spack environment, for real: audit, concretize, install, activate, modules, edits.

Needs Spack: found through $SPACK_ROOT, then `spack` on PATH, then /opt/spack/bin/spack; every
test here is skipped with that reason when there is none. Select them with `pytest -k spack`.

Spack works in folders these tests own, kept between runs to save time (see pkg_helpers.CACHE):
  <cache>/spack-<version>/config    SPACK_USER_CONFIG_PATH (config-dev: the same plus externals,
                                    for the development environment; system: an empty
                                    SPACK_SYSTEM_CONFIG_PATH)
  <cache>/spack-<version>/cache     SPACK_USER_CACHE_PATH: index, install tree, lmod modules
  <cache>/spack-<version>/checkout  a copy of this checkout, synced at the start: the offline
                                    environment builds it through its `develop:` section, and
                                    the edit test changes the copy, never your checkout.
Spack itself must be able to run offline: clingo importable by its Python (SPACK_PYTHON, or
/opt/spack-venv/bin/python when it exists), `bootstrap: {enable: false}` and the builtin
repository configured in its site scope (docs/development.md).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from pkg_helpers import (
    CACHE,
    CHECKOUT,
    PRINT_VARS,
    clean_env,
    find_spack,
    lmod_init,
    mpirun_available,
    run_bash,
    shell_vars,
)

pytestmark = [pytest.mark.spack, pytest.mark.slow]

OURS = ("py-neurodamus", "neurodamus-models", "neuron", "py-libsonata", "py-docopt-ng")
#: What Spack may build in the offline environment: our two packages and Spack's own helpers.
BUILT_HERE = {"py-neurodamus", "neurodamus-models", "python-venv", "compiler-wrapper",
              "gcc-runtime"}
OFFLINE = Path("spack") / "environments" / "neurodamus-offline"


@dataclass
class Spack:
    """One Spack, its test-owned scopes, and the environment (of the synced copy) it acts on."""

    exe: Path
    version: str
    env: dict[str, str]
    base: Path
    checkout: Path
    env_name: str = "neurodamus-offline"

    @property
    def env_dir(self) -> Path:
        return self.checkout / "spack" / "environments" / self.env_name

    @property
    def store(self) -> Path:
        """Install tree of the offline environment (shared with the development one here)."""
        return self.base / "cache" / "neurodamus-offline" / "store"

    def __call__(self, *args: str, timeout=1800, check=True) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(self.exe), "-e", str(self.env_dir), *args], env=self.env,
                              check=False, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode:
            pytest.fail(f"spack {' '.join(args)} failed ({proc.returncode}):\n"
                        f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
        return proc

    def shell_env(self, **extra) -> dict[str, str]:
        """A clean environment that still finds this Spack and its test-owned scopes."""
        keep = ("SPACK_PYTHON", "SPACK_USER_CONFIG_PATH", "SPACK_USER_CACHE_PATH",
                "SPACK_SYSTEM_CONFIG_PATH")
        return clean_env(SPACK_ROOT=str(self.exe.parent.parent),
                         **{k: self.env[k] for k in keep if k in self.env}, **extra)

    def activate_code(self) -> str:
        proc = subprocess.run([str(self.exe), "env", "activate", "--sh", "-d", str(self.env_dir)],
                              env=self.env, check=False, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def location(self, name: str) -> Path:
        return Path(self("location", "-i", name).stdout.strip())


def _sync_checkout(dest: Path) -> None:
    """Make dest a copy of this checkout's files (tracked and untracked, not ignored).

    Changed files are copied with a fresh mtime so that Spack's develop builds notice them;
    unchanged files keep theirs, so that nothing is rebuilt when nothing changed.
    """
    listing = subprocess.run(["git", "-C", str(CHECKOUT), "ls-files", "-co", "--exclude-standard",
                              "-z"], check=False, capture_output=True, text=True)
    if listing.returncode:
        pytest.skip(f"cannot list the checkout's files with git: {listing.stderr.strip()}")
    wanted = {name for name in listing.stdout.split("\0") if name and (CHECKOUT / name).is_file()}
    for name in sorted(wanted):
        src, dst = CHECKOUT / name, dest / name
        data = src.read_bytes()
        if dst.is_file() and dst.read_bytes() == data:
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(data)
        dst.chmod(src.stat().st_mode & 0o777)
    keep = {".spack-env", "spack.lock", "externals.yaml", "__pycache__"}
    for path in sorted(dest.rglob("*"), reverse=True):
        rel = path.relative_to(dest)
        if keep & set(rel.parts):
            continue
        if path.is_file() and str(rel) not in wanted:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


@pytest.fixture(scope="module")
def spack() -> Spack:
    exe = find_spack()
    if exe is None:
        pytest.skip("no Spack found ($SPACK_ROOT, spack on PATH, /opt/spack/bin/spack), or "
                    "NEURODAMUS_TEST_SPACK=0")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPACK_ENV")}
    if "SPACK_PYTHON" not in env and Path("/opt/spack-venv/bin/python").is_file():
        env["SPACK_PYTHON"] = "/opt/spack-venv/bin/python"
    probe = subprocess.run([str(exe), "--version"], env=env, check=False, capture_output=True,
                           text=True)
    if probe.returncode:
        pytest.skip(f"{exe} does not run: {probe.stderr.strip()[-300:]}")
    version = probe.stdout.split()[0]
    base = CACHE / f"spack-{version}"
    # Test-owned user and system scopes (SPACK_DISABLE_LOCAL_CONFIG would drop the user scope,
    # which the development environment's test needs).
    (base / "system").mkdir(parents=True, exist_ok=True)
    env.pop("SPACK_DISABLE_LOCAL_CONFIG", None)
    env.update(SPACK_USER_CONFIG_PATH=str(base / "config"),
               SPACK_USER_CACHE_PATH=str(base / "cache"),
               SPACK_SYSTEM_CONFIG_PATH=str(base / "system"))
    env.pop("PYTHONPATH", None)
    checkout = base / "checkout"
    _sync_checkout(checkout)
    generator = checkout / OFFLINE / "generate_externals.py"
    out = subprocess.run([sys.executable, str(generator), "--spack", str(exe)],
                         check=False, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    return Spack(exe=exe, version=version, env=env, base=base, checkout=checkout)


def _inputs_digest(spack: Spack) -> str:
    """Hash of what a concretization of spack.env_dir depends on: recipes, env files, scope."""
    digest = hashlib.sha256()
    scope = Path(spack.env["SPACK_USER_CONFIG_PATH"])
    inputs = [*sorted((spack.checkout / "spack").rglob("*.py")),
              *sorted((spack.checkout / "spack").rglob("*.yaml")), *sorted(scope.glob("*.yaml"))]
    for path in inputs:
        if ".spack-env" not in path.parts and path.name != "spack.lock":
            digest.update(str(path).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _concretized(spack: Spack) -> None:
    """Record that spack.env_dir was just concretized from the current inputs."""
    stamp = spack.base / "stamps" / spack.env_name
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(_inputs_digest(spack))


def _concretize_if_inputs_changed(spack: Spack) -> None:
    """`concretize -f` unless the last one used the current recipes, env files and scopes.

    `spack install` alone keeps an existing spack.lock, even one made from older recipes.
    """
    stamp = spack.base / "stamps" / spack.env_name
    if not (spack.env_dir / "spack.lock").is_file() or not stamp.is_file() \
            or stamp.read_text() != _inputs_digest(spack):
        spack("concretize", "-f")
        _concretized(spack)


@pytest.fixture(scope="module")
def installed(spack) -> Spack:
    """The offline environment installed."""
    _concretize_if_inputs_changed(spack)
    spack("install")
    return spack


@pytest.fixture(scope="module")
def dev(installed) -> Spack:
    """spack/environments/neurodamus-dev of the copy, as committed, installed.

    It names no externals, so here a user scope of its own holds what a site's configuration
    would: the generated externals and the offline environment's install tree, whose builds of
    the same specs it then reuses.
    """
    yaml = pytest.importorskip("yaml", reason="PyYAML splits the generated externals")
    generated = yaml.safe_load((installed.checkout / OFFLINE / "externals.yaml").read_text())
    scope = installed.base / "config-dev"
    scope.mkdir(parents=True, exist_ok=True)
    for section in ("packages", "compilers"):
        path = scope / f"{section}.yaml"
        if section in generated:
            path.write_text(yaml.safe_dump({section: generated[section]}))
        elif path.exists():
            path.unlink()
    config = {"config": {"install_tree": {"root": str(installed.store)}}}
    (scope / "config.yaml").write_text(yaml.safe_dump(config))
    env = {**installed.env, "SPACK_USER_CONFIG_PATH": str(scope)}
    spack = replace(installed, env_name="neurodamus-dev", env=env)
    _concretize_if_inputs_changed(spack)
    spack("install")
    return spack


def _example(bash_prefix: str, env: dict, folder: Path) -> subprocess.CompletedProcess:
    """In a clean bash after bash_prefix: write the example circuit, run it on 2 ranks."""
    script = f"""
        {bash_prefix}
        {PRINT_VARS}
        neurodamus --version || exit 7
        rm -rf {folder}
        neurodamus example {folder} --cells 10 --tstop 100 || exit 8
        cd {folder}
        {CHECKOUT / "scripts" / "launch.sh"} -n 2 simulation_config.json
    """
    return run_bash(script, env=env, timeout=900)


def _assert_ran(proc, folder: Path):
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    spikes = list((folder / "output").glob("*.h5"))
    assert spikes, f"no spikes written in {folder / 'output'}:\n{proc.stdout[-3000:]}"


# -------------------------------------------------------------------------------------------
def test_spack_audit_packages(spack):
    proc = spack("audit", "packages", *OURS)
    assert not re.search(r"[1-9]\d* issues? found", proc.stdout), proc.stdout


@pytest.mark.parametrize("name", ["neurodamus", "neurodamus-dev", "neurodamus-deploy"])
def test_spack_loads_the_other_environments(spack, name):
    """Spack accepts each committed environment and puts our repository first."""
    env_dir = spack.checkout / "spack" / "environments" / name
    proc = subprocess.run([str(spack.exe), "-e", str(env_dir), "repo", "list"], env=spack.env,
                          check=False, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    repos = [line for line in proc.stdout.splitlines() if "/" in line]
    assert repos and "neurodamus" in repos[0] and str(spack.checkout / "spack") in repos[0]


def test_spack_concretize_builds_only_our_packages(spack):
    proc = spack("concretize", "-f", timeout=1800)
    _concretized(spack)
    node = re.compile(r"^(\[e\]|\[\+\]| - |\[\^\])")
    lines = [line for line in proc.stdout.splitlines() if node.match(line)]
    built = set()
    for line in lines:
        name = re.search(r"\^?([a-z0-9-]+)@", line).group(1)
        if not line.startswith("[e]"):
            built.add(name)
    assert {"py-neurodamus", "neurodamus-models"} <= built | _installed_names(spack)
    assert built <= BUILT_HERE, f"would build more than our packages: {built - BUILT_HERE}"
    assert f"dev_path={spack.checkout}" in proc.stdout


def _installed_names(spack) -> set[str]:
    proc = spack("find", "--format", "{name}", check=False)
    return set(proc.stdout.split())


def test_spack_install_compiles_the_mechanisms(installed):
    models = installed.location("neurodamus-models")
    driver = installed.location("py-neurodamus")
    for prefix in (models, driver):
        assert str(installed.base) in str(prefix), f"{prefix} is not a Spack build of ours"
    for rel in ("bin/special", "bin/special-core", "lib/libnrnmech.so", "lib/libcorenrnmech.so"):
        assert (models / rel).is_file(), rel
    assert (models / "lib" / "libnrnmech.so").read_bytes()[:4] == b"\x7fELF"
    # every mechanism of core/mod and of the model went in
    source = installed.checkout  # the synced copy the environment builds, not the live checkout
    mods = {p.name for p in (source / "core" / "mod").glob("*.mod")}
    mods |= {p.name for p in (source / "models" / "minicol" / "mod").glob("*.mod")}
    assert {p.name for p in (models / "share" / "neurodamus-models" / "mod").glob("*.mod")} == mods
    hoc = {p.name for p in (source / "core" / "hoc").glob("*.hoc")}
    hoc |= {p.name for p in (source / "models" / "minicol" / "hoc").glob("*.hoc")}
    assert {p.name for p in (models / "share" / "neurodamus-models" / "hoc").glob("*.hoc")} == hoc
    assert list(driver.glob("lib/python3*/site-packages/neurodamus/data/hoc/*.hoc"))
    assert (driver / "bin" / "neurodamus").is_file()


def test_spack_test_run(installed):
    proc = installed("test", "run", "py-neurodamus", "neurodamus-models", timeout=600,
                     check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "FAILED" not in proc.stdout


@pytest.mark.skipif(not mpirun_available(), reason="no mpirun/mpiexec on this machine")
def test_spack_env_activate_runs_example_on_2_ranks(installed, tmp_path):
    code = installed.activate_code()
    folder = tmp_path / "example"
    proc = _example(code, installed.shell_env(), folder)
    _assert_ran(proc, folder)
    view = installed.env_dir / ".spack-env" / "view"
    assert f"({view}/lib/" in proc.stdout, "neurodamus --version names the view's package"
    values = shell_vars(proc.stdout)
    assert values["NRNMECH_LIB_PATH"] == f"{view}/lib/libnrnmech.so"
    assert values["CORENEURONLIB"] == f"{view}/lib/libcorenrnmech.so"
    assert f"{view}/share/neurodamus-models/hoc" in values["HOC_LIBRARY_PATH"].split(":")


def test_spack_dev_env_builds_this_checkout(dev, installed):
    """The committed development environment concretizes to the same builds of the copy."""
    for name in ("py-neurodamus", "neurodamus-models"):
        prefix = dev.location(name)
        assert prefix == installed.location(name), "same specs, same builds"
    # the driver from the copy's working tree; the models from what the driver installed
    assert f"dev_path={dev.checkout}" in dev("find", "-v", "py-neurodamus").stdout
    assert "dev_path" not in dev("find", "-v", "neurodamus-models").stdout


def test_spack_activate_script_puts_the_checkout_first(dev):
    """`source scripts/activate.sh --spack` (the development environment by default)."""
    script = f"""
        source {dev.checkout}/scripts/activate.sh --spack || exit 9
        {PRINT_VARS}
        neurodamus --version
    """
    proc = run_bash(script, env=dev.shell_env(), timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"Spack environment {dev.env_dir}" in proc.stdout
    values = shell_vars(proc.stdout)
    view = dev.env_dir / ".spack-env" / "view"
    assert values["PATH"].split(":")[0] == f"{view}/bin"
    assert values["PYTHONPATH"].split(":")[0] == str(dev.checkout)
    assert f"{view}/lib/python" in values["PYTHONPATH"]
    hoc = values["HOC_LIBRARY_PATH"].split(":")
    assert hoc[0] == f"{dev.checkout}/core/hoc"
    assert f"{view}/share/neurodamus-models/hoc" in hoc[1:]
    assert values["NRNMECH_LIB_PATH"] == f"{view}/lib/libnrnmech.so"
    assert f"({dev.checkout}/neurodamus)" in proc.stdout


@pytest.mark.skipif(lmod_init() is None, reason="Lmod is not installed (apt-get install lmod)")
@pytest.mark.skipif(not mpirun_available(), reason="no mpirun/mpiexec on this machine")
def test_spack_lmod_modules_load_and_run(installed, tmp_path):
    installed("module", "lmod", "refresh", "-y", "--delete-tree", timeout=600)
    cores = list((installed.base / "cache" / "neurodamus-offline" / "lmod").glob("*/Core"))
    assert len(cores) == 1, cores
    core = cores[0]
    assert (core / "py-neurodamus" / "develop.lua").is_file()
    assert (core / "neurodamus-minicol" / "develop.lua").is_file()
    folder = tmp_path / "example"
    prefix = f"""
        source {lmod_init()}
        module use {core}
        module load neurodamus-minicol/develop || exit 9
        module list 2>&1
    """
    proc = _example(prefix, installed.shell_env(), folder)
    _assert_ran(proc, folder)
    driver = installed.location("py-neurodamus")
    assert f"({driver}/lib/" in proc.stdout
    for autoloaded in ("py-neurodamus/develop", "neuron/9.0.2", "py-libsonata/"):
        assert autoloaded in proc.stdout, f"{autoloaded} not autoloaded"


def test_spack_develop_env_picks_up_edits(dev):
    """Edit Python, HOC and mod files of the (copied) checkout; `spack install` of the
    development environment takes them in."""
    copy = dev.checkout
    init = copy / "neurodamus" / "__init__.py"
    marker_hoc = copy / "core" / "hoc" / "SpackEditMarker.hoc"
    mod = min((copy / "core" / "mod").glob("*.mod"))
    original_init, original_mod = init.read_text(), mod.read_text()
    models = dev.location("neurodamus-models")
    lib_before = (models / "lib" / "libnrnmech.so").stat().st_mtime
    stamp = str(int(time.time()))
    try:
        time.sleep(1.1)  # mtimes must move past the install time
        init.write_text(re.sub(r'__version__ = "([^"]+)"', rf'__version__ = "\1+edit{stamp}"',
                               original_init))
        marker_hoc.write_text(f"// edited by the packaging tests {stamp}\n")
        mod.write_text(original_mod + f"\n: edited by the packaging tests {stamp}\n")
        proc = dev("install")
        assert "py-neurodamus: Successfully installed" in proc.stdout
        assert "neurodamus-models: Successfully installed" in proc.stdout

        models = dev.location("neurodamus-models")
        share = models / "share" / "neurodamus-models"
        assert (share / "hoc" / marker_hoc.name).is_file()
        assert stamp in (share / "mod" / mod.name).read_text()
        assert (models / "lib" / "libnrnmech.so").stat().st_mtime > lib_before
        driver = dev.location("py-neurodamus")
        data = "lib/python3*/site-packages/neurodamus/data"
        assert list(driver.glob(f"{data}/hoc/{marker_hoc.name}"))
        run = run_bash(f"{dev.activate_code()}\nneurodamus --version",
                       env=dev.shell_env(), timeout=300)
        assert f"+edit{stamp}" in run.stdout, run.stdout + run.stderr
    finally:
        init.write_text(original_init)
        mod.write_text(original_mod)
        marker_hoc.unlink(missing_ok=True)
