# Spack recipe for the neurodamus driver (this repository's Python package).
#
# Loads on Spack 0.23 and Spack 1.x (old repository layout, `from spack.package import *`).
# Keep the run dependencies in step with `install_requires` in setup.cfg: the test
# tests/packaging/test_pkg_recipes.py compares the two lists.

# Spack recipes star-import spack.package and keep it in its own import block:
# ruff: noqa: F403, F405, I001, RUF012, RUF100
import glob
import os

import spack

from spack.package import *

# Spack 1.x hands compiler wrappers only to packages that declare "c"/"cxx"; 0.23 has no such
# packages and rejects the names. This package compiles nothing, but keep the switch in one place
# for every recipe of this repository.
_SPACK_1 = int(spack.spack_version_info[0]) >= 1

# Where the source comes from: the clone this recipe lives in (<clone>/spack/packages/...).
# Every environment in spack/environments builds its working tree through a committed
# `develop:` section (scripts/spack-env.sh writes the same for a named environment); without
# one, Spack clones the clone's `main` branch. No repository has been published yet, so no
# other address is named here. A site with a published repository sets it once, in a
# packages.yaml (neurodamus-models builds from what py-neurodamus installs, so it follows):
#
#   packages:
#     py-neurodamus:
#       package_attributes:
#         git: https://<host>/<group>/neurodamus.git
#
_CLONE = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


class PyNeurodamus(PythonPackage):
    """Pure-Python driver running SONATA brain-circuit simulations with NEURON and CoreNEURON
    under MPI.

    The driver carries its HOC library (core/hoc), its own NMODL mechanisms (core/mod) and the
    bundled example models under neurodamus/data/ in the installed package. Compiled
    mechanisms come from a separate package, neurodamus-models.
    """

    # git: the clone this recipe is in (a packages.yaml may set another; see the top).
    git = _CLONE

    license("Apache-2.0")
    maintainers("neurodamus-maintainers")

    # ----------------------------------------------------------------------------------------
    # Versions
    # ----------------------------------------------------------------------------------------
    # The only version until a release is published: the environments build the clone's working
    # tree (`develop:`); otherwise the `main` branch of `git`. A release adds
    # `version("X.Y.Z", sha256=...)` with the sha256 `spack checksum` prints, never without.
    version("develop", branch="main")

    # ----------------------------------------------------------------------------------------
    # Dependencies (run dependencies mirror setup.cfg install_requires)
    # ----------------------------------------------------------------------------------------
    # The Pythons the driver is tested with (3.11) and supports (setup.cfg: >=3.10); without an
    # upper bound a site's concretizer picks the newest Python, which older recipes of the
    # dependencies (py-morphio, ...) do not build with.
    depends_on("python@3.10:3.12", type=("build", "run"))
    depends_on("py-setuptools@64:", type="build")

    # Installing the package runs no NEURON: a run dependency only.
    depends_on("neuron@9.0.2:+python", type="run")
    depends_on("py-libsonata", type=("build", "run"))
    depends_on("py-h5py", type=("build", "run"))
    depends_on("py-numpy", type=("build", "run"))
    depends_on("py-docopt-ng", type=("build", "run"))
    depends_on("py-psutil", type=("build", "run"))
    depends_on("py-scipy", type=("build", "run"))
    depends_on("py-mpi4py", type=("build", "run"))
    depends_on("py-morphio", type=("build", "run"))

    # Not a Python dependency: the launcher preloads jemalloc into each run (lower peak memory,
    # neurodamus/allocator.py); ~jemalloc leaves the search to the driver (system folders).
    variant("jemalloc", default=True, description="Preload jemalloc into runs (less memory)")
    depends_on("jemalloc jemalloc_prefix=none", when="+jemalloc", type="run")

    # Importing the package must not need NEURON or MPI (nothing happens at import time).
    import_modules = ["neurodamus"]


    # ----------------------------------------------------------------------------------------
    # Development builds (spack develop / the `develop:` section of spack/environments)
    # ----------------------------------------------------------------------------------------
    def detect_dev_src_change(self):
        """Reinstall a develop build only when the files it is made from changed.

        Spack's default looks at every file of the checkout, including the environment's own
        .spack-env/ folder (which lives in it), so every `spack install` would rebuild.
        Used by Spack 1.x; Spack 0.23 has no such hook and always compares the whole checkout.
        """
        try:
            installed = os.stat(join_path(self.prefix, ".spack", "spec.json")).st_mtime
        except OSError:
            return True
        dev_path = self.spec.variants["dev_path"].value
        sources = ("setup.cfg", "setup.py", "pyproject.toml", "README.md", "neurodamus", "core",
                   "models")
        return _changed_since(dev_path, sources, installed)

    # ----------------------------------------------------------------------------------------
    # Environment
    # ----------------------------------------------------------------------------------------
    def _data_dir(self):
        """neurodamus/data inside this installation (hoc, mod, models shipped by setup.py)."""
        python = self.spec["python"]
        return join_path(self.prefix, python.package.purelib, "neurodamus", "data")

    def setup_run_environment(self, env):
        data = self._data_dir()
        env.set("NEURODAMUS_DATA", data)
        env.prepend_path("HOC_LIBRARY_PATH", join_path(data, "hoc"))
        if self.spec.satisfies("+jemalloc"):
            library = _jemalloc_library(self.spec["jemalloc"].prefix)
            if library:
                env.set("NEURODAMUS_ALLOCATOR", library)

    # ----------------------------------------------------------------------------------------
    # Checks
    # ----------------------------------------------------------------------------------------
    @run_after("install")
    def check_installed_files(self):
        """Smoke test at install time: the package imports and carries its HOC library."""
        site = join_path(self.prefix, self.spec["python"].package.purelib)
        python = Executable(self.spec["python"].command.path)
        # Run from the prefix: from the source folder, `import neurodamus` finds the source.
        with working_dir(self.prefix):
            out = python(
                "-c",
                "import neurodamus; print(neurodamus.__version__, neurodamus.__file__)",
                output=str,
                error=str,
                extra_env={"PYTHONPATH": site},
            )
        if site not in out:
            raise InstallError("neurodamus imported from outside the install prefix: " + out)
        if not any(f.endswith(".hoc") for f in _listdir(join_path(self._data_dir(), "hoc"))):
            raise InstallError("no HOC files under " + join_path(self._data_dir(), "hoc"))

    def test_version(self):
        """neurodamus --version names the installed package"""
        exe = which("neurodamus", path=self.prefix.bin, required=True)
        out = exe("--version", output=str.split, error=str.split)
        assert "neurodamus" in out


def _listdir(path):
    return os.listdir(path) if os.path.isdir(path) else []


def _changed_since(root, relpaths, time):
    """True if a file or folder under root/<relpath> (for each relpath) is newer than time.

    Build outputs (<arch>/ folders of nrnivmodl, __pycache__) are ignored.
    """
    skip = {"__pycache__", "x86_64", "aarch64", "arm64", "build", ".spack-env"}
    for rel in relpaths:
        top = os.path.join(root, rel)
        if not os.path.exists(top):
            continue
        if os.stat(top).st_mtime > time:
            return True
        for folder, dirs, files in os.walk(top):
            dirs[:] = [d for d in dirs if d not in skip and not d.endswith(".egg-info")]
            for name in dirs + files:
                try:
                    if os.lstat(os.path.join(folder, name)).st_mtime > time:
                        return True
                except OSError:
                    continue
    return False


def _jemalloc_library(prefix):
    """The shared jemalloc of ``prefix`` (lib, lib64, or lib/<multiarch> of a system external)."""
    for pattern in ("lib/libjemalloc.so.2", "lib64/libjemalloc.so.2", "lib/*-linux-gnu/"
                    "libjemalloc.so.2", "lib/libjemalloc.so", "lib64/libjemalloc.so"):
        found = sorted(glob.glob(join_path(str(prefix), pattern)))
        if found:
            return found[0]
    return None
