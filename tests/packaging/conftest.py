"""Fixtures of the packaging tests (recipes, environments, scripts, modules, Spack)."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
if importlib.util.find_spec("neurodamus") is None:  # not installed: test the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pkg_helpers import CACHE, CHECKOUT

NEURON_TOOLS = ("nrnivmodl", "nrnivmodl-core", "nrniv", "nrniv-core", "nmodl", "modlunit",
                "mkthreadsafe", "nrnpyenv.sh")


def _site_packages() -> list[str]:
    paths = list(site.getsitepackages())
    user = site.getusersitepackages()
    if isinstance(user, str) and os.path.isdir(user):
        paths.append(user)
    return [p for p in paths if os.path.isdir(p)]


@pytest.fixture(scope="session")
def installed_venv() -> Path:
    """A virtualenv with a regular (non-editable) install of this checkout: "another neurodamus".

    It sees the running interpreter's packages (NEURON, mpi4py, ...) through a .pth file and
    links NEURON's commands (nrnivmodl, ...) into its bin/, so nothing is downloaded. Kept in
    the test cache and rebuilt when the checkout's packaged files change (its key hashes
    setup.cfg, setup.py, pyproject.toml, neurodamus/, core/, models/).
    """
    digest = hashlib.sha256(f"{sys.executable} {NEURON_TOOLS}".encode())
    packaged = [CHECKOUT / "setup.cfg", CHECKOUT / "setup.py", CHECKOUT / "pyproject.toml"]
    for folder, patterns in (("neurodamus", ("*.py",)), ("core", ("*.hoc", "*.mod")),
                             ("models", ("*.hoc", "*.mod", "*.swc", "*.py", "*.json"))):
        for pattern in patterns:
            packaged += (CHECKOUT / folder).rglob(pattern)
    for path in sorted(p for p in packaged if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(CHECKOUT)).encode())
        digest.update(path.read_bytes())
    venv = CACHE / f"venv-{digest.hexdigest()[:12]}"
    python = venv / "bin" / "python"
    marker = venv / ".ready"
    if marker.is_file():
        return venv
    for stale in CACHE.glob("venv-*"):  # earlier revisions of the checkout
        shutil.rmtree(stale, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    Path(purelib, "_neurodamus_tests_parent.pth").write_text("\n".join(_site_packages()) + "\n")
    # ...and its NEURON commands, as `pip install neuron` in the virtualenv would provide them
    parent_bin = Path(sys.executable).parent
    for tool in NEURON_TOOLS:
        if (parent_bin / tool).is_file() and not (venv / "bin" / tool).exists():
            (venv / "bin" / tool).symlink_to(parent_bin / tool)
    # Build from a copy: setuptools leaves build/ and *.egg-info/ in the folder it builds.
    source = venv / "source"
    shutil.rmtree(source, ignore_errors=True)
    ignore = shutil.ignore_patterns("x86_64", "aarch64", "arm64", "__pycache__", "*.so", "*.o",
                                    "build", "build-*", "spack-build-*", "*.egg-info",
                                    ".spack-env", "spack.lock")
    source.mkdir(parents=True)
    for name in ("setup.cfg", "setup.py", "pyproject.toml", "README.md"):
        if (CHECKOUT / name).is_file():
            shutil.copy2(CHECKOUT / name, source / name)
    for name in ("neurodamus", "core", "models"):
        if (CHECKOUT / name).is_dir():
            shutil.copytree(CHECKOUT / name, source / name, ignore=ignore)
    proc = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "--no-build-isolation",
         "--no-index", "--quiet", str(source)],
        check=False, capture_output=True, text=True, cwd=str(venv),
    )
    if proc.returncode:
        pytest.fail(f"pip install of the checkout into {venv} failed:\n"
                    f"{proc.stdout}\n{proc.stderr}")
    shutil.rmtree(source, ignore_errors=True)
    marker.write_text("ok\n")
    return venv
