# Spack recipe for the compiled mechanisms of a neurodamus model.
#
# Loads on Spack 0.23 and Spack 1.x (old repository layout, `from spack.package import *`).
# The source is this repository: the driver's own mechanisms (core/mod) and HOC library
# (core/hoc) are combined with one bundled model (models/<model>/{mod,hoc}).

# Spack recipes star-import spack.package and keep it in its own import block:
# ruff: noqa: F403, F405, I001, RUF012, RUF100
import glob
import os
import shutil

import spack

from spack.package import *

_SPACK_1 = int(spack.spack_version_info[0]) >= 1

# Public home of the project (same repository as py-neurodamus).
_UPSTREAM = "https://github.com/neurodamus-sim/neurodamus"

# Models bundled in models/<name>/ of the repository.
_MODELS = ("minicol",)


class NeurodamusModels(Package):
    """NEURON mechanisms and HOC templates of a neurodamus model, built with nrnivmodl.

    Installs bin/special (and bin/special-core with +coreneuron), lib/libnrnmech.so,
    lib/libcorenrnmech.so and share/neurodamus-models/hoc (the driver's core/hoc followed by
    the model's hoc templates), and points NRNMECH_LIB_PATH, CORENEURONLIB, HOC_LIBRARY_PATH
    and PATH at them.
    """

    homepage = _UPSTREAM
    git = _UPSTREAM + ".git"
    url = _UPSTREAM + "/archive/refs/tags/v0.1.0.tar.gz"

    license("Apache-2.0")

    # ----------------------------------------------------------------------------------------
    # Versions: the models live in the driver's repository and are versioned with it.
    # ----------------------------------------------------------------------------------------
    version("develop", branch="main")
    # No release tarball yet, so no checksum (see py-neurodamus): after tagging v0.1.0, run
    # `spack checksum neurodamus-models 0.1.0` and paste the sha256 here.
    version("0.1.0")

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
    # A release's HOC templates are written against the driver of the same release. A develop
    # build takes both from the same checkout, and environments list both specs; depending on
    # py-neurodamus@develop would make Spack rebuild the mechanisms after every Python edit
    # (it reinstalls the dependents of a changed develop package).
    depends_on("py-neurodamus@0.1.0", when="@0.1.0", type="run")

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

    def _collect(self, subdir, pattern, dest):
        """Copy core/<subdir> then models/<model>/<subdir> into dest; the model wins on clashes."""
        mkdirp(dest)
        copied = {}
        for src_dir in (join_path("core", subdir), join_path("models", self.model, subdir)):
            src_dir = join_path(self.stage.source_path, src_dir)
            for path in sorted(glob.glob(join_path(src_dir, pattern))):
                name = os.path.basename(path)
                if name in copied:
                    print(f"neurodamus-models: {path} overrides {copied[name]}")
                shutil.copy2(path, join_path(dest, name))
                copied[name] = path
        return copied

    def install(self, spec, prefix):
        model_dir = join_path(self.stage.source_path, "models", self.model)
        if not os.path.isdir(model_dir):
            raise InstallError("model folder not found in the source: " + model_dir)

        # nrnivmodl is not idempotent in a used folder: always start from an empty one.
        build = join_path(self.stage.path, "mechanisms-build")
        if os.path.exists(build):
            shutil.rmtree(build)
        mods = self._collect("mod", "*.mod", join_path(build, "mod"))
        if not mods:
            raise InstallError(f"no .mod files in core/mod or models/{self.model}/mod")

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
        sources = ("core/mod", "core/hoc", join_path("models", self.model))
        return _changed_since(dev_path, sources, installed)

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
