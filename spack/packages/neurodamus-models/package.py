# Spack recipe for the compiled mechanisms of a neurodamus model.
#
# Loads on Spack 0.23 and Spack 1.x (old repository layout, `from spack.package import *`).
# Its source is the installed driver: py-neurodamus carries the driver's own mechanisms and HOC
# library (core/mod, core/hoc) and the bundled models (models/<model>/{mod,hoc}) under
# neurodamus/data, and this package compiles one model's mechanisms from there. So it fetches
# nothing itself and needs no `develop:` entry: wherever py-neurodamus comes from (the clone an
# environment builds, or a repository a site sets), the mechanisms come from the same files.

# Spack recipes star-import spack.package and keep it in its own import block:
# ruff: noqa: F403, F405, I001, RUF012, RUF100
import glob
import os
import shutil

import spack

from spack.package import *

_SPACK_1 = int(spack.spack_version_info[0]) >= 1

# Models bundled in models/<name>/ of the repository.
_MODELS = ("minicol",)


class NeurodamusModels(Package):
    """NEURON mechanisms and HOC templates of a neurodamus model, built with nrnivmodl.

    Installs bin/special (and bin/special-core with +coreneuron), lib/libnrnmech.so,
    lib/libcorenrnmech.so and share/neurodamus-models/hoc (the driver's core/hoc followed by
    the model's hoc templates), and points NRNMECH_LIB_PATH, CORENEURONLIB, HOC_LIBRARY_PATH
    and PATH at them.
    """

    license("Apache-2.0")
    maintainers("neurodamus-maintainers")

    # Nothing to fetch: the sources are in the py-neurodamus this package depends on.
    has_code = False

    # ----------------------------------------------------------------------------------------
    # Versions: the models live in the driver's repository and are versioned with it.
    # ----------------------------------------------------------------------------------------
    version("develop")

    # ----------------------------------------------------------------------------------------
    # Variants
    # ----------------------------------------------------------------------------------------
    variant(
        "model",
        default="minicol",
        values=_MODELS,
        multi=False,
        description="Bundled model whose mechanisms and templates are built (models/<model>)",
    )
    variant(
        "coreneuron",
        default=True,
        description="Also build the CoreNEURON mechanisms (special-core, libcorenrnmech.so)",
    )

    # ----------------------------------------------------------------------------------------
    # Dependencies
    # ----------------------------------------------------------------------------------------
    if _SPACK_1:
        depends_on("c", type="build")
        depends_on("cxx", type="build")

    depends_on("neuron@9.0:+python", type=("build", "link", "run"))
    depends_on("neuron+coreneuron", when="+coreneuron", type=("build", "link", "run"))
    # The sources (build), and the driver the HOC templates are written for (run: loading the
    # model's module loads the driver). Spack reinstalls this package when a develop build of
    # py-neurodamus changes; edited .py/.hoc files need no install with scripts/activate.sh.
    depends_on("py-neurodamus@develop", when="@develop", type=("build", "run"))

    sanity_check_is_file = ["bin/special", "lib/libnrnmech.so"]

    # ----------------------------------------------------------------------------------------
    # Build
    # ----------------------------------------------------------------------------------------
    @property
    def model(self):
        return self.spec.variants["model"].value

    @property
    def hoc_dir(self):
        return join_path(self.prefix.share, "neurodamus-models", "hoc")

    @property
    def source_dir(self):
        """neurodamus/data of the installed driver: hoc/, mod/ and models/<model>/."""
        driver = self.spec["py-neurodamus"]
        return join_path(driver.prefix, driver["python"].package.purelib, "neurodamus", "data")

    def _collect(self, subdir, pattern, dest):
        """Copy the driver's <subdir> then models/<model>/<subdir> into dest; the model wins."""
        mkdirp(dest)
        copied = {}
        for src_dir in (subdir, join_path("models", self.model, subdir)):
            src_dir = join_path(self.source_dir, src_dir)
            for path in sorted(glob.glob(join_path(src_dir, pattern))):
                name = os.path.basename(path)
                if name in copied:
                    print(f"neurodamus-models: {path} overrides {copied[name]}")
                shutil.copy2(path, join_path(dest, name))
                copied[name] = path
        return copied

    def install(self, spec, prefix):
        model_dir = join_path(self.source_dir, "models", self.model)
        if not os.path.isdir(model_dir):
            raise InstallError("model folder not found in the source: " + model_dir)

        # nrnivmodl is not idempotent in a used folder: always start from an empty one.
        build = join_path(self.stage.path, "mechanisms-build")
        if os.path.exists(build):
            shutil.rmtree(build)
        mods = self._collect("mod", "*.mod", join_path(build, "mod"))
        if not mods:
            raise InstallError(f"no .mod files in {self.source_dir}/mod or models/{self.model}/mod")

        nrnivmodl = Executable(join_path(spec["neuron"].prefix.bin, "nrnivmodl"))
        args = ["-coreneuron"] if spec.satisfies("+coreneuron") else []
        # libnrnmech.so moves to <prefix>/lib: let special (special.nrn) find it there.
        args += ["-loadflags", f"-Wl,-rpath,{prefix.lib}"]
        with working_dir(build):
            nrnivmodl(*(args + ["mod"]))

        built = glob.glob(join_path(build, "*", "libnrnmech.so"))
        if not built:
            raise InstallError("nrnivmodl produced no libnrnmech.so under " + build)
        arch = os.path.dirname(built[0])

        mkdirp(prefix.bin)
        mkdirp(prefix.lib)
        # The NEURON wheel's special is a Python wrapper that execs special.nrn next to it;
        # a NEURON built from source makes special a binary and no special.nrn.
        for exe in ("special", "special.nrn", "special-core"):
            if os.path.isfile(join_path(arch, exe)):
                install(join_path(arch, exe), prefix.bin)
        for lib in ("libnrnmech.so", "libcorenrnmech.so"):
            if os.path.isfile(join_path(arch, lib)):
                install(join_path(arch, lib), prefix.lib)
        if spec.satisfies("+coreneuron") and not os.path.isfile(
            join_path(prefix.lib, "libcorenrnmech.so")
        ):
            raise InstallError("+coreneuron but nrnivmodl built no libcorenrnmech.so")

        # Sources and templates, for the record and for HOC_LIBRARY_PATH.
        share = join_path(prefix.share, "neurodamus-models")
        install_tree(join_path(build, "mod"), join_path(share, "mod"))
        self._collect("hoc", "*.hoc", self.hoc_dir)
        with open(join_path(share, "MODEL"), "w") as f:
            f.write(self.model + "\n")

    @run_after("install")
    def check_special(self):
        """Smoke test at install time: special starts and loads the mechanisms."""
        with working_dir(self.stage.path):
            special = Executable(join_path(self.prefix.bin, "special"))
            out = special("-nogui", "-c", "quit()", output=str, error=str)
        if "Additional mechanisms" not in out:
            raise InstallError("special did not load the mechanisms:\n" + out)


    # ----------------------------------------------------------------------------------------
    # Environment
    # ----------------------------------------------------------------------------------------
    def setup_run_environment(self, env):
        env.prepend_path("PATH", self.prefix.bin)
        env.prepend_path("NRNMECH_LIB_PATH", join_path(self.prefix.lib, "libnrnmech.so"))
        if self.spec.satisfies("+coreneuron"):
            env.set("CORENEURONLIB", join_path(self.prefix.lib, "libcorenrnmech.so"))
        env.prepend_path("HOC_LIBRARY_PATH", self.hoc_dir)

    def test_special(self):
        """special loads the model's mechanisms"""
        special = which("special", path=self.prefix.bin, required=True)
        out = special("-nogui", "-c", "quit()", output=str.split, error=str.split)
        assert "Additional mechanisms" in out

