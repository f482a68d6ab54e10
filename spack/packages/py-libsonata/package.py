# Spack recipe for libsonata's Python bindings, 0.2 series.
#
# Extends Spack's builtin `py-libsonata` (which stops at 0.1.29): the builtin versions and their
# build stay available to every package of a site that lists this repository before `builtin`;
# this class adds the 0.2 series, which builds with scikit-build-core from an sdist bundling
# its C++ dependencies (the builtin ones, fmt, HighFive, nlohmann-json and pybind11, are then
# built but unused: a subclass cannot drop a dependency).
# Loads on Spack 0.23 and Spack 1.x (old repository layout, `from spack.package import *`).

# Spack recipes star-import spack.package and keep it in its own import block:
# ruff: noqa: F403, F405, I001, RUF012, RUF100
import spack

from spack.package import *

try:  # Spack 1.x: the builtin recipes are the spack_repo.builtin package
    from spack_repo.builtin.packages.py_libsonata.package import PyLibsonata as _BuiltinLibsonata
except ImportError:  # Spack 0.23
    from spack.pkg.builtin.py_libsonata import PyLibsonata as _BuiltinLibsonata

_SPACK_1 = int(spack.spack_version_info[0]) >= 1


class PyLibsonata(_BuiltinLibsonata):
    """SONATA circuit and simulation file reader (C++ library with Python bindings)."""

    homepage = "https://github.com/openbraininstitute/libsonata"
    git = "https://github.com/openbraininstitute/libsonata.git"
    pypi = "libsonata/libsonata-0.2.2.tar.gz"

    license("LGPL-3.0-or-later")
    maintainers("neurodamus-maintainers")

    # sha256 of the sdists on PyPI
    version("0.2.2", sha256="5d808574a1818c3d44ce164c722e5849822804bf0a90d5ea061d2432505803d2")
    version("0.2.1", sha256="7ba154c17ca50895a24bcf3f4bcf77c22edfbb56ad0845cd4d7b57020dbd5d1b")
    version("0.2.0", sha256="975dea7a8a90abe19e80326879c6e3bb1e83205febce8e277b77b5adcc48afaa")

    if _SPACK_1:
        depends_on("c", type="build")
        depends_on("cxx", type="build")

    depends_on("python@3.9:", type=("build", "run"), when="@0.2:")
    depends_on("py-scikit-build-core", type="build", when="@0.2:")
    depends_on("py-setuptools-scm", type="build", when="@0.2:")
    depends_on("cmake@3.16:", type="build", when="@0.2:")
    # The 0.2 sdist bundles HighFive, fmt, nlohmann-json and pybind11
    # (EXTLIB_FROM_SUBMODULES=ON); HDF5 itself comes from Spack.
    depends_on("hdf5@1.12:", when="@0.2:")
    depends_on("py-numpy@1.17.3:", type=("build", "run"), when="@0.2:")

    import_modules = ["libsonata"]

    def patch(self):
        """The builtin patch edits 0.1's setup.py; 0.2 has none and keeps its bundled libraries."""
        if self.spec.satisfies("@:0.1"):
            super().patch()
