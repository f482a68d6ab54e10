"""Helpers of the packaging tests: paths, Spack lookup, recipe loading without Spack, shells.

Test ids of tests that need no Spack must not contain the word "spack" (``pytest -k spack``
selects the tests that need it), so parametrize ids here use package and environment names.
"""

from __future__ import annotations

import configparser
import contextlib
import os
import re
import shutil
import subprocess
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]
SPACK_DIR = CHECKOUT / "spack"
PACKAGES_DIR = SPACK_DIR / "packages"
ENVS_DIR = SPACK_DIR / "environments"
SCRIPTS = CHECKOUT / "scripts"

#: Persistent cache of the tests (virtualenv, Spack user scope and store, built mechanisms).
CACHE = Path(os.environ.get("NEURODAMUS_TEST_CACHE", "~/.cache/neurodamus-tests")).expanduser()

#: Names that recipes may use from ``from spack.package import *``: checked to be exported by
#: spack.package on Spack 0.23 and on Spack 1.1 (where PythonPackage/CMakePackage/Package come
#: from the v1-API compatibility import that 1.x adds to old-layout repositories).
#: Notably absent: ``tty`` (only 1.x exports it).
SPACK_PACKAGE_NAMES = frozenset(
    [
        "join_path", "Executable", "which", "InstallError", "install", "install_tree", "mkdirp",
        "working_dir", "filter_file", "run_after", "on_package_attributes", "version", "variant",
        "depends_on", "license", "conflicts", "requires", "extends", "maintainers", "when",
        "patch", "resource", "PythonPackage", "CMakePackage", "Package",
    ]
)

#: The Python distribution -> Spack package names that are not "py-<name>".
SPACK_NAMES = {"neuron": "neuron"}


# -------------------------------------------------------------------------------------------
# Spack
# -------------------------------------------------------------------------------------------
def find_spack() -> Path | None:
    """$SPACK_ROOT/bin/spack, then spack on PATH, then /opt/spack/bin/spack.

    ``NEURODAMUS_TEST_SPACK=0`` hides Spack (CI sets it: the Spack tests take longer than CI's
    whole time budget on 2 cores; run them with ``scripts/run-tests.sh tests/packaging``)."""
    if os.environ.get("NEURODAMUS_TEST_SPACK") == "0":
        return None
    candidates = []
    if os.environ.get("SPACK_ROOT"):
        candidates.append(Path(os.environ["SPACK_ROOT"]) / "bin" / "spack")
    if shutil.which("spack"):
        candidates.append(Path(shutil.which("spack")))
    candidates.append(Path("/opt/spack/bin/spack"))
    return next((c for c in candidates if c.is_file() and os.access(c, os.X_OK)), None)


def spack_name(distribution: str) -> str:
    norm = re.sub(r"[-_.]+", "-", distribution).lower()
    return SPACK_NAMES.get(norm, "py-" + norm)


def setup_cfg_requirements() -> dict[str, str]:
    """install_requires of setup.cfg as {spack name: Spack version range ('' if none)}."""
    cfg = configparser.ConfigParser()
    cfg.read(CHECKOUT / "setup.cfg")
    out = {}
    for line in cfg.get("options", "install_requires").splitlines():
        line = line.split("#")[0].split(";")[0].strip()
        if not line:
            continue
        match = re.match(r"^([A-Za-z0-9_.\-]+)\s*(.*)$", line)
        name, constraint = match.group(1), match.group(2).replace(" ", "")
        out[spack_name(name)] = pep440_to_spack(constraint)
    return out


def pep440_to_spack(constraint: str) -> str:
    """'>=9.0.2' -> '@9.0.2:', '' -> ''; other operators are spelled out for the message."""
    if not constraint:
        return ""
    parts = []
    for item in constraint.split(","):
        match = re.match(r"^(>=|==|<)(.+)$", item)
        if not match:
            return "unsupported:" + constraint
        op, version = match.groups()
        parts.append({">=": f"{version}:", "==": f"={version}", "<": f":{version}"}[op])
    return "@" + ",".join(parts)


# -------------------------------------------------------------------------------------------
# Loading recipes without Spack: a recording stand-in for `spack` and `spack.package`
# -------------------------------------------------------------------------------------------
@dataclass
class Recipe:
    name: str
    path: Path
    source: str
    cls: type
    module: types.SimpleNamespace
    versions: dict[str, dict] = field(default_factory=dict)
    variants: dict[str, dict] = field(default_factory=dict)
    depends_on: list[tuple[str, dict]] = field(default_factory=list)
    directives: list[tuple[str, tuple, dict]] = field(default_factory=list)

    def dependency_names(self) -> set[str]:
        return {spec_name(s) for s, _ in self.depends_on}


def spec_name(spec: str) -> str:
    return re.match(r"^[A-Za-z0-9_\-]+", spec).group(0)


def class_name(pkg_name: str) -> str:
    """Spack's class name for a package name: py-libsonata -> PyLibsonata."""
    return "".join(part.capitalize() for part in re.split(r"[-_]", pkg_name))


#: Builtin recipes our recipes extend (subclass), as module name -> (class name, base class).
BUILTIN_EXTENDED = {"neuron": ("Neuron", "CMakePackage"),
                    "py_libsonata": ("PyLibsonata", "PythonPackage")}


@contextlib.contextmanager
def _stub_spack(version_info, record):
    def directive(name):
        def call(*args, **kwargs):
            record.append((name, args, kwargs))

        return call

    def run_after(*_args, **_kwargs):
        return lambda fn: fn

    class _Base:
        pass

    package = types.ModuleType("spack.package")
    names = {
        n: directive(n)
        for n in ("version", "variant", "depends_on", "license", "conflicts", "requires",
                  "extends", "maintainers", "patch", "resource")
    }
    names.update(run_after=run_after, on_package_attributes=lambda **kw: (lambda fn: fn))
    names.update(
        PythonPackage=type("PythonPackage", (_Base,), {}),
        CMakePackage=type("CMakePackage", (_Base,), {}),
        Package=type("Package", (_Base,), {}),
    )
    for name, value in names.items():
        setattr(package, name, value)
    package.__all__ = sorted(names)
    spack = types.ModuleType("spack")
    spack.spack_version_info = version_info
    spack.package = package
    stubs = {"spack": spack, "spack.package": package}
    # The builtin recipes a recipe extends: empty stand-ins, where this Spack keeps them
    # (1.x: spack_repo.builtin.packages.<name>.package; 0.23: spack.pkg.builtin.<name>).
    for module_name, (cls_name, base) in BUILTIN_EXTENDED.items():
        stand_in = types.ModuleType(module_name)
        setattr(stand_in, cls_name, type(cls_name, (names[base],), {}))
        if version_info[0] >= 1:
            stubs[f"spack_repo.builtin.packages.{module_name}.package"] = stand_in
        else:
            stubs[f"spack.pkg.builtin.{module_name}"] = stand_in
    for name in list(stubs):
        parts = name.split(".")
        for i in range(1, len(parts)):
            stubs.setdefault(".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))
    stubs["spack"] = spack
    saved = {k: sys.modules.get(k) for k in stubs}
    sys.modules.update(stubs)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = value


def load_recipe(path: Path, spack_version=(1, 1, 0)) -> Recipe:
    """Execute a package.py against the stand-in and return what its class declared."""
    record: list = []
    source = path.read_text()
    namespace = {"__name__": f"recipe_{path.parent.name.replace('-', '_')}", "__file__": str(path)}
    with _stub_spack(spack_version, record):
        exec(compile(source, str(path), "exec"), namespace)  # noqa: S102 (our own recipes)
    name = path.parent.name
    cls = namespace.get(class_name(name))
    if cls is None:
        raise AssertionError(f"{path}: no class {class_name(name)}")
    module = types.SimpleNamespace(**{k: v for k, v in namespace.items() if k != "__builtins__"})
    recipe = Recipe(name=name, path=path, source=source, cls=cls, module=module,
                    directives=record)
    for kind, args, kwargs in record:
        if kind == "version":
            recipe.versions[args[0]] = kwargs
        elif kind == "variant":
            recipe.variants[args[0]] = kwargs
        elif kind == "depends_on":
            recipe.depends_on.append((args[0], kwargs))
    return recipe


def recipe_paths() -> list[Path]:
    return sorted(PACKAGES_DIR.glob("*/package.py"))


# -------------------------------------------------------------------------------------------
# Shells and processes
# -------------------------------------------------------------------------------------------
BASE_PATH = "/usr/local/bin:/usr/bin:/bin"


def clean_env(**extra: str) -> dict[str, str]:
    """What `env -i` leaves plus HOME, a plain PATH and the given variables."""
    env = {"HOME": os.environ.get("HOME", "/root"), "PATH": BASE_PATH, "LANG": "C.UTF-8"}
    env.update({k: v for k, v in extra.items() if v is not None})
    return env


def run_bash(script: str, env: dict[str, str] | None = None, cwd=None, timeout=300, login=False):
    """Run a bash script in a clean environment; returns the CompletedProcess (text)."""
    cmd = ["bash", "-l", "-c", script] if login else ["bash", "--noprofile", "--norc", "-c", script]
    return subprocess.run(
        cmd, env=env if env is not None else clean_env(), cwd=cwd, check=False, capture_output=True,
        text=True, timeout=timeout,
    )


def shell_vars(stdout: str) -> dict[str, str]:
    """Parse lines 'VAR=value' printed between '@@' markers by a test script."""
    block = stdout.split("@@BEGIN@@", 1)[-1].split("@@END@@", 1)[0]
    out = {}
    for line in block.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key] = value
    return out


PRINT_VARS = (
    'echo @@BEGIN@@; for v in PATH PYTHONPATH HOC_LIBRARY_PATH NRNMECH_LIB_PATH CORENEURONLIB; '
    'do printf "%s=%s\\n" "$v" "${!v-}"; done; echo @@END@@'
)


def mpirun_available() -> bool:
    return bool(shutil.which("mpirun") or shutil.which("mpiexec"))


def lmod_init() -> Path | None:
    for candidate in (
        "/usr/share/lmod/lmod/init/bash",
        "/usr/share/lmod/lmod/init/profile",
        "/opt/apps/lmod/lmod/init/bash",
    ):
        if Path(candidate).is_file():
            return Path(candidate)
    return None
