"""Packaging hook: ship the checkout's ``core/`` and ``models/`` inside the wheel.

In a checkout (and an editable install) the driver reads ``core/hoc``, ``core/mod`` and
``models/`` in place, so that an edited ``.hoc`` file takes effect on the next run.  A regular
install has no checkout, so the same folders are copied to ``neurodamus/data/`` in the wheel.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = {"core/hoc": "hoc", "core/mod": "mod", "core/include": "include", "models": "models"}
SKIP = shutil.ignore_patterns("x86_64", "aarch64", "arm64", "__pycache__", "*.so", "*.o", "*.c")


class BuildWithData(build_py):
    def run(self):
        super().run()
        data = Path(self.build_lib) / "neurodamus" / "data"
        for src, dst in SHIPPED.items():
            if (ROOT / src).is_dir():
                shutil.copytree(ROOT / src, data / dst, ignore=SKIP, dirs_exist_ok=True)


setup(cmdclass={"build_py": BuildWithData})
