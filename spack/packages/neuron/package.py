# Spack recipe for NEURON 9.0.x with CoreNEURON, MPI and Python.
#
# Spack's builtin `neuron` stops at 8.2.3, and its build logic is written for the 8.x CMake
# options, so this repository carries its own recipe for the 9.0 series. It shadows the builtin
# one whenever this repository is listed before `builtin`.
# Loads on Spack 0.23 and Spack 1.x (old repository layout, `from spack.package import *`).

# Spack recipes star-import spack.package and keep it in its own import block:
# ruff: noqa: F403, F405, I001, RUF012, RUF100
import re

import spack

from spack.package import *

_SPACK_1 = int(spack.spack_version_info[0]) >= 1


class Neuron(CMakePackage):
    """NEURON simulates single neurons and networks of neurons; CoreNEURON is its optimised
    engine for large networks. This recipe covers the 9.0 series (NMODL is built in)."""

    homepage = "https://www.neuron.yale.edu/"
    git = "https://github.com/neuronsimulator/nrn"

    license("BSD-3-Clause")

    # ----------------------------------------------------------------------------------------
    # Versions (commits of the release tags in github.com/neuronsimulator/nrn)
    # ----------------------------------------------------------------------------------------
    version("develop", branch="master", submodules=True)
    version(
        "9.0.2", tag="9.0.2", commit="ba5783378c0aa1d9ac95b4454bea94b15c63f75d", submodules=True
    )
    version(
        "9.0.1", tag="9.0.1", commit="b12a5412428af65c302166785a9753cd48b84b0a", submodules=True
    )
    version(
        "9.0.0", tag="9.0.0", commit="a91d2468bbb8aa55077fc3547095e8258c3a5da6", submodules=True
    )

    # ----------------------------------------------------------------------------------------
    # Variants
    # ----------------------------------------------------------------------------------------
    variant("mpi", default=True, description="Enable MPI parallelism")
    variant("python", default=True, description="Enable the Python interface")
    variant("coreneuron", default=True, description="Enable CoreNEURON support")
    variant(
        "openmp", default=False, description="Enable CoreNEURON OpenMP support", when="+coreneuron"
    )
    variant("interviews", default=False, description="Enable the InterViews GUI")
    variant("rx3d", default=False, description="Enable Cython-compiled 3D rxd", when="+python")
    variant("backtrace", default=False, description="Print backtraces on failure")
    variant("tests", default=False, description="Build NEURON's own unit tests")

    # ----------------------------------------------------------------------------------------
    # Dependencies
    # ----------------------------------------------------------------------------------------
    if _SPACK_1:
        depends_on("c", type="build")
        depends_on("cxx", type="build")

    depends_on("cmake@3.15:", type="build")
    depends_on("bison@3:", type="build")
    depends_on("flex@2.6:", type="build")
    depends_on("readline")
    depends_on("ncurses")
    depends_on("mpi", when="+mpi")

    # NMODL (inside NEURON since 9.0) runs Python with jinja2, pyyaml and sympy at build time,
    # and sympy again when nrnivmodl translates mod files.
    depends_on("python@3.9:", type=("build", "link", "run"))
    depends_on("py-jinja2@2.9.3:", type="build")
    depends_on("py-pyyaml@3.13:", type="build")
    depends_on("py-sympy@1.3:", type=("build", "run"))
    depends_on("py-find-libpython", type=("build", "run"))
    depends_on("py-numpy@1.9.3:", type=("build", "run"), when="+python")
    depends_on("py-packaging@22:", type=("build", "run"), when="+python")
    depends_on("py-setuptools", type=("build", "run"), when="+python")
    depends_on("py-cython", type="build", when="+rx3d")
    depends_on("py-pytest", type="test", when="+tests")
    depends_on("py-mpi4py", type="test", when="+tests+mpi+python")

    # ----------------------------------------------------------------------------------------
    # External detection: `spack external find neuron` (nrniv --version)
    # ----------------------------------------------------------------------------------------
    executables = ["^nrniv$"]

    @classmethod
    def determine_version(cls, exe):
        output = Executable(exe)("--version", output=str, error=str)
        match = re.search(r"VERSION\s+(\d+\.\d+(?:\.\d+)?)", output)
        return match.group(1) if match else None

    # ----------------------------------------------------------------------------------------
    # Build
    # ----------------------------------------------------------------------------------------
    def cmake_args(self):
        args = [
            self.define_from_variant("NRN_ENABLE_" + name.upper(), name)
            for name in ("coreneuron", "mpi", "python", "interviews", "rx3d", "backtrace", "tests")
        ]
        # One Python (the Spack one), linked at build time rather than found at run time.
        args.append(self.define("NRN_ENABLE_PYTHON_DYNAMIC", False))
        args.append(self.define("NRN_ENABLE_MPI_DYNAMIC", False))
        args.append(self.define("PYTHON_EXECUTABLE", self.spec["python"].command.path))
        if self.spec.satisfies("+coreneuron"):
            args.append(self.define_from_variant("CORENRN_ENABLE_OPENMP", "openmp"))
        return args

    def _real_compilers(self):
        """C and C++ compilers for nrnivmodl after the install (not Spack's wrappers)."""
        if self.spec.satisfies("+mpi"):
            return self.spec["mpi"].mpicc, self.spec["mpi"].mpicxx
        if _SPACK_1:
            return self.spec["c"].package.cc, self.spec["cxx"].package.cxx
        return self.compiler.cc, self.compiler.cxx

    @run_after("install")
    def filter_compilers(self):
        """nrnivmodl runs long after Spack's compiler wrappers are gone: name real compilers."""
        cc, cxx = self._real_compilers()
        makefile = join_path(self.prefix.bin, "nrnmech_makefile")
        filter_file(r"^(\s*)CC\s*=.*$", r"\1CC = " + cc, makefile)
        filter_file(r"^(\s*)CXX\s*=.*$", r"\1CXX = " + cxx, makefile)
        if self.spec.satisfies("+coreneuron"):
            core = join_path(self.prefix.share, "coreneuron", "nrnivmodl_core_makefile")
            filter_file(r"^(\s*)CXX\s*=.*$", r"\1CXX = " + cxx, core)

    # ----------------------------------------------------------------------------------------
    # Environment
    # ----------------------------------------------------------------------------------------
    def setup_run_environment(self, env):
        env.prepend_path("PATH", self.prefix.bin)
        env.prepend_path("LD_LIBRARY_PATH", self.prefix.lib)
        if self.spec.satisfies("+python"):
            # A CMake install puts the `neuron` module in <prefix>/lib/python; the pip wheel
            # (used as an external) keeps it in site-packages, where this entry is harmless.
            env.prepend_path("PYTHONPATH", join_path(self.prefix.lib, "python"))

    def test_nrniv(self):
        """nrniv reports the expected version"""
        nrniv = which("nrniv", path=self.prefix.bin, required=True)
        out = nrniv("--version", output=str.split, error=str.split)
        assert str(self.spec.version) in out
