# Spack recipe for docopt-ng.
#
# Spack 1.x's builtin repository has `py-docopt-ng`; Spack 0.23's does not, and an external
# (as in spack/environments/neurodamus-offline) needs a recipe of its name. This recipe serves
# both and shadows the builtin one whenever this repository is listed first.
# Loads on Spack 0.23 and Spack 1.x (old repository layout, `from spack.package import *`).

# Spack recipes star-import spack.package and keep it in its own import block:
# ruff: noqa: F403, F405, I001, RUF012, RUF100
import spack

from spack.package import *

_SPACK_1 = int(spack.spack_version_info[0]) >= 1


class PyDocoptNg(PythonPackage):
    """Command-line interface description language (maintained fork of docopt)."""

    homepage = "https://github.com/jazzband/docopt-ng"
    pypi = "docopt-ng/docopt_ng-0.9.0.tar.gz"

    license("MIT")
    maintainers("neurodamus-maintainers")

    version("0.9.0", sha256="91c6da10b5bb6f2e9e25345829fb8278c78af019f6fc40887ad49b060483b1d7")

    depends_on("python@3.7:", type=("build", "run"))
    # 0.23's builtin repository has no py-pdm-backend: there, use docopt-ng as an external.
    if _SPACK_1:
        depends_on("py-pdm-backend", type="build")

    import_modules = ["docopt"]
