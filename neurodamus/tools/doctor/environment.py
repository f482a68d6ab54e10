"""Checks 1-3: the Python and the ``neurodamus`` package it imports, Spack environments and
environment modules, the allocator a run would preload, and the HOC library."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import re
import sys
from pathlib import Path

from ... import __version__, allocator, paths
from ...errors import LaunchError
from .report import FAIL, INFO, OK, WARN, Report


def _package_copies() -> list[tuple[Path, str]]:
    """Every ``neurodamus`` package Python could import: (package dir, where it comes from)."""
    copies, seen = [], set()
    pythonpath = [os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                  if p]

    def add(pkg: Path, origin: str):
        try:
            key = pkg.resolve()
        except OSError:
            return
        if key not in seen and (pkg / "__init__.py").is_file():
            seen.add(key)
            copies.append((key, origin))

    for entry in sys.path:
        if not entry or not os.path.isdir(entry):
            continue
        absolute = os.path.abspath(entry)
        origin = "PYTHONPATH" if absolute in pythonpath else f"sys.path entry {absolute}"
        add(Path(entry) / "neurodamus", origin)
        # editable installs (setuptools finder modules and .pth files) point elsewhere
        for finder in Path(entry).glob("__editable__*neurodamus*finder.py"):
            match = re.search(r"MAPPING[^=]*=\s*(\{.*?\})", finder.read_text(), re.DOTALL)
            if match:
                try:
                    mapping = eval(match.group(1), {"__builtins__": {}})  # a dict literal
                except Exception:  # noqa: BLE001 - an unreadable finder is just skipped
                    mapping = {}
                if "neurodamus" in mapping:
                    add(Path(mapping["neurodamus"]), f"editable install ({finder.name})")
    return copies


def _distribution_package() -> tuple[Path | None, str]:
    """The package dir of the installed ``neurodamus`` distribution (the command's own)."""
    try:
        dist = importlib.metadata.distribution("neurodamus")
    except importlib.metadata.PackageNotFoundError:
        return None, "no installed 'neurodamus' distribution (only PYTHONPATH)"
    direct = dist.read_text("direct_url.json")
    if direct:
        try:
            info = json.loads(direct)
        except ValueError:
            info = {}
        url = info.get("url", "")
        if info.get("dir_info", {}).get("editable") and url.startswith("file://"):
            src = Path(url[len("file://"):])
            return (src / "neurodamus").resolve(), f"editable install of {src}"
    init = dist.locate_file("neurodamus/__init__.py")
    return Path(init).parent.resolve(), f"installed in {Path(dist.locate_file('')).resolve()}"


def check_package(report: Report, package_dir: Path) -> None:
    venv = sys.prefix != getattr(sys, "base_prefix", sys.prefix)
    report.add("Python", OK, f"{sys.executable} ({platform.python_version()}"
               f"{', virtualenv ' + sys.prefix if venv else ''})")
    active = os.environ.get("VIRTUAL_ENV")
    if active and Path(active).resolve() != Path(sys.prefix).resolve():
        report.add("Python", WARN, f"the active virtualenv is {active} but this Python is "
                   f"{sys.prefix}",
                   fix=f"run {Path(active) / 'bin' / 'neurodamus'}, or activate {sys.prefix}")

    imported = package_dir.resolve()
    copies = _package_copies()
    where = next((origin for path, origin in copies if path == imported), "sys.path")
    dist_pkg, dist_text = _distribution_package()
    report.add("neurodamus", OK, f"{__version__} imported from {imported} "
               f"({where})", [f"installed distribution: {dist_text}"])
    others = [(p, o) for p, o in copies if p != imported]
    if dist_pkg is not None and dist_pkg != imported:
        report.add("neurodamus", WARN,
                   f"the installed neurodamus ({dist_pkg}) is shadowed: Python imports "
                   f"{imported} instead ({where})",
                   [f"PYTHONPATH={os.environ.get('PYTHONPATH', '')}"],
                   fix=f"if you meant to run {dist_pkg.parent}, remove {imported.parent} from "
                       f"PYTHONPATH (a loaded module or Spack view may have put it there);\n"
                       f"if you meant to run {imported.parent}, install it instead: "
                       f"pip install -e {imported.parent}  (or source "
                       f"scripts/activate.sh of that checkout)")
    elif others:
        report.add("neurodamus", INFO, "other copies on sys.path are not used: " + "; ".join(
            f"{p} ({o})" for p, o in others))


# ---- 2. Spack and environment modules -------------------------------------------------------
def check_environment(report: Report) -> None:
    spack_env = os.environ.get("SPACK_ENV")
    modules = [m for m in os.environ.get("LOADEDMODULES", "").split(":") if m]
    if not spack_env and not modules:
        report.add("environment", OK, "no Spack environment and no environment modules loaded")
        return
    if spack_env:
        report.add("environment", INFO, f"Spack environment active: {spack_env}",
                   ["its view comes first on PATH, PYTHONPATH and HOC_LIBRARY_PATH"])
    if modules:
        ours = [m for m in modules if re.search(r"neurodamus|neuron|nrn|mpi", m, re.IGNORECASE)]
        report.add("environment", INFO, f"modules loaded: {', '.join(modules)}",
                   [f"relevant to neurodamus: {', '.join(ours)}"] if ours else [])
    variables = {v: os.environ.get(v, "") for v in ("PYTHONPATH", "HOC_LIBRARY_PATH",
                                                    "NRNMECH_LIB_PATH")}
    foreign = [f"{v} has {p}" for v, value in variables.items() for p in value.split(":")
               if p and spack_env and p.startswith(str(Path(spack_env)))]
    if foreign:
        report.add("environment", INFO, "set by the Spack environment: " + "; ".join(foreign))


def check_allocator(report: Report) -> None:
    """What a run would preload (neurodamus/allocator.py)."""
    try:
        preload = allocator.plan(os.environ)
    except LaunchError as exc:
        report.add("allocator", FAIL, str(exc), fix=f"unset {allocator.ENV} or fix its value")
        return
    if preload.library:
        report.add("allocator", OK, f"runs preload {allocator.allocator_name(preload.library)} "
                   f"({preload.library})")
    elif preload.reason == allocator.NO_JEMALLOC:
        report.add("allocator", INFO, "no jemalloc found: runs use the C library's malloc "
                   "(about 10 % more memory per rank)",
                   fix="apt-get install libjemalloc2, or spack load jemalloc")
    else:
        report.add("allocator", INFO, f"no preload: {preload.reason}")


# ---- 3. HOC library -------------------------------------------------------------------------
def check_hoc(report: Report) -> None:
    ours = paths.hoc_dir()
    search = paths.hoc_search_path()
    if not ours.is_dir():
        report.add("HOC library", FAIL, f"the driver's HOC library is missing: {ours}",
                   fix="reinstall neurodamus (pip install -e <checkout>), or put a core/hoc "
                       "folder on HOC_LIBRARY_PATH")
        return
    missing = [p for p in search if not os.path.isdir(p)]
    report.add("HOC library", OK, f"{ours}", [f"search order: {':'.join(search)}"])
    if missing:
        report.add("HOC library", WARN, f"HOC_LIBRARY_PATH names missing folder(s): "
                   f"{', '.join(missing)}", fix="remove them from HOC_LIBRARY_PATH")
    for hoc in sorted(ours.glob("*.hoc")):
        winner = next((Path(d) / hoc.name for d in search if (Path(d) / hoc.name).is_file()),
                      hoc)
        if winner.resolve() != hoc.resolve():
            report.add("HOC library", WARN, f"{hoc.name} is taken from {winner}, not from the "
                       f"driver's own {hoc}",
                       fix=f"if that is an older copy (e.g. from a loaded module), remove "
                           f"{winner.parent} from HOC_LIBRARY_PATH")
