# Spack recipe for NEURON 9.0.x with CoreNEURON, MPI and Python.
#
# Extends Spack's builtin `neuron` recipe (which stops at 8.2.3 and builds the 8.x CMake
# options): the builtin versions, variants and build logic stay available to every package of a
# site that lists this repository before `builtin`; this class adds the 9.0 series and builds it
# with the 9.0 CMake options. Loads on Spack 0.23 and Spack 1.x (old repository layout,
# `from spack.package import *`).

# Spack recipes star-import spack.package and keep it in its own import block:
# ruff: noqa: F403, F405, I001, RUF012, RUF100
import os
import re
import shutil

import spack

from spack.package import *

try:  # Spack 1.x: the builtin recipes are the spack_repo.builtin package
    from spack_repo.builtin.packages.neuron.package import Neuron as _BuiltinNeuron
except ImportError:  # Spack 0.23
    from spack.pkg.builtin.neuron import Neuron as _BuiltinNeuron

_SPACK_1 = int(spack.spack_version_info[0]) >= 1
_RESOURCES = "neurodamus-resources"   # where resources are staged (relative to the sources)


def _submodules(pkg):
    """The git submodules of nrn a 9.0 build uses (of external/), given the variants.

    Eigen is not among them: it is hosted outside GitHub and comes from Spack instead (see
    `patch`). Neither are InterViews, Catch2, backward-cpp and the test data unless asked for.
    """
    spec = pkg.spec
    names = ["coding-conventions", "Random123", "fmt", "CLI11", "json", "pybind11", "spdlog"]
    if spec.satisfies("+python"):
        names.append("nanobind")
    if spec.satisfies("+interviews"):
        names.append("iv")
    if spec.satisfies("+backtrace"):
        names.append("backward")
    if spec.satisfies("+tests"):
        names += ["catch2", "../test/rxd/testdata"]
    return [os.path.normpath("external/" + name) for name in names]


class Neuron(_BuiltinNeuron):
    """NEURON simulates single neurons and networks of neurons; CoreNEURON is its optimised
    engine for large networks. Adds the 9.0 series (NMODL built in) to the builtin recipe."""

    maintainers("neurodamus-sim")

    # ----------------------------------------------------------------------------------------
    # Versions (commits of the release tags in github.com/neuronsimulator/nrn); the builtin
    # recipe's 7.8.2 to 8.2.3 and develop are inherited.
    # ----------------------------------------------------------------------------------------
    version(
        "9.0.2", tag="9.0.2", commit="ba5783378c0aa1d9ac95b4454bea94b15c63f75d",
        submodules=_submodules,
    )
    version(
        "9.0.1", tag="9.0.1", commit="b12a5412428af65c302166785a9753cd48b84b0a",
        submodules=_submodules,
    )
    version(
        "9.0.0", tag="9.0.0", commit="a91d2468bbb8aa55077fc3547095e8258c3a5da6",
        submodules=_submodules,
    )

    # nanobind's own submodule (robin-map): Spack's `git submodule update --recursive` after an
    # init of the listed paths does not initialise nested submodules, so it comes as a resource
    # (the commit nanobind 784efa2, pinned by all of 9.0.0 to 9.0.2, points at). It is staged
    # beside the sources and moved in by `patch`: Spack skips a resource whose placement
    # exists, and nanobind's uninitialised submodule is an existing empty folder (a source
    # archive from a mirror has it).
    resource(
        name="robin-map",
        git="https://github.com/Tessil/robin-map",
        commit="188c45569cc2a5dd768077c193830b51d33a5020",
        destination=_RESOURCES,
        placement="robin_map",
        when="@9.0.0:9.0.2+python",
    )

    # ----------------------------------------------------------------------------------------
    # Variants: the builtin recipe's (mpi, python, coreneuron, openmp, interviews, rx3d,
    # backtrace, tests, ...), with its defaults (+mpi +python +coreneuron).
    # ----------------------------------------------------------------------------------------

    # ----------------------------------------------------------------------------------------
    # Dependencies of the 9.0 series, on top of the builtin ones
    # ----------------------------------------------------------------------------------------
    depends_on("cmake@3.15:", type="build", when="@9:")
    # nrn pins Eigen as a submodule hosted outside GitHub: take Spack's (headers only).
    depends_on("eigen@3.3:", type="build", when="@9:")
    # NMODL (inside NEURON since 9.0) runs Python with jinja2, pyyaml and sympy at build time,
    # and sympy again when nrnivmodl translates mod files, whatever +python says.
    depends_on("python@3.9:", type=("build", "link", "run"), when="@9:")
    depends_on("py-jinja2@2.9.3:", type="build", when="@9:")
    depends_on("py-pyyaml@3.13:", type="build", when="@9:")
    depends_on("py-sympy@1.3:", type=("build", "run"), when="@9:")
    depends_on("py-find-libpython", type=("build", "run"), when="@9:")
    depends_on("py-numpy@1.9.3:", type=("build", "run"), when="@9:+python")
    depends_on("py-packaging@22:", type=("build", "run"), when="@9:+python")
    depends_on("py-setuptools", type=("build", "run"), when="@9:+python")

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
    def patch(self):
        """9.0: put Spack's Eigen where nrn's CMake copies it from (external/eigen/Eigen), and
        robin-map where nanobind includes it from (external/nanobind/ext/robin_map)."""
        if self.spec.satisfies("@:8"):
            return
        source = self.stage.source_path
        target = join_path(source, "external", "eigen", "Eigen")
        if not os.path.exists(target):
            mkdirp(os.path.dirname(target))
            os.symlink(join_path(self.spec["eigen"].prefix.include, "eigen3", "Eigen"), target)
        staged = join_path(source, _RESOURCES, "robin_map")
        robin = join_path(source, "external", "nanobind", "ext", "robin_map")
        header = join_path(robin, "include", "tsl", "robin_map.h")
        if os.path.isdir(staged) and not os.path.exists(header):
            if os.path.isdir(robin):
                shutil.rmtree(robin)   # the empty folder of the uninitialised submodule
            mkdirp(os.path.dirname(robin))
            os.rename(staged, robin)

    def cmake_args(self):
        if self.spec.satisfies("@:8"):
            return super().cmake_args()
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
            # nrnivmodl-core runs the nmodl program; NMODL's own Python module is not needed
            # and is the costliest part of the build (NEURON's docs advise turning it off).
            args.append(self.define("NMODL_ENABLE_PYTHON_BINDINGS", False))
        return args

    def _real_compilers(self):
        """C and C++ compilers for nrnivmodl after the install (not Spack's wrappers)."""
        if self.spec.satisfies("+mpi"):
            return self.spec["mpi"].mpicc, self.spec["mpi"].mpicxx
        if _SPACK_1:
            return self.spec["c"].package.cc, self.spec["cxx"].package.cxx
        return self.compiler.cc, self.compiler.cxx

    @run_after("install", when="@9:")
    def filter_compilers_9(self):
        """nrnivmodl runs long after Spack's compiler wrappers are gone: name real compilers.

        The builtin recipe's filter_compilers runs as well; without MPI it asks Spack 0.23's
        compiler object, which 1.x replaced by the "c"/"cxx" dependencies used here."""
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
