"""Check 5: the mechanisms a run would use (special, ./<arch>/libnrnmech.so, NRNMECH_LIB_PATH
or the build cache) and whether they hold what the circuit needs."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

from ... import launch, paths
from ..mechanisms import _DONE_MARKER, cache_folder, collect_mod_files
from .probes import _MECH_PROBE, _probe_env, _run_probe, _tail, _write_probe
from .report import FAIL, INFO, OK, WARN, Report


def _probe_mechanisms(cmd_prefix, libs, workdir) -> tuple[dict | None, str]:
    probe = _write_probe(workdir, "mech_probe.py", _MECH_PROBE)
    empty = workdir / "empty"
    empty.mkdir(exist_ok=True)   # no ./<arch>/ here: NEURON auto-loads nothing
    records, text, error = _run_probe(cmd_prefix + [str(probe), *libs], cwd=empty,
                                      env=_probe_env(neurodamus_special="1"))
    if error or not records:
        return None, error or "\n".join(_tail(text))
    rec = records[-1]
    if not all(rec.get("loaded", [True])):
        return None, "\n".join(_tail(text)) or "NEURON could not load the library"
    return rec["mechanisms"], ""


def _mechanism_source(settings, workdir: Path):
    """(kind, description, probe command prefix, libraries) of what a run would load."""
    special = None if os.environ.get(launch.SPECIAL_ENV) else launch.find_special()
    if special:
        return "special", special, [special, "-nogui", "-python"], []
    local = Path.cwd() / platform.machine() / "libnrnmech.so"
    if local.is_file():
        return "local", f"{local} (auto-loaded by NEURON from the working directory)", \
            [sys.executable], [str(local)]
    libs = [p for p in os.environ.get("NRNMECH_LIB_PATH", "").split(":") if p]
    if libs:
        return "NRNMECH_LIB_PATH", ":".join(libs), [sys.executable], libs
    return "cache", None, [sys.executable], []


def _cache_entry(mechanisms_dir: str):
    """The build cache folder a run would use, and whether it is built."""
    dirs = [paths.mod_dir()] + ([mechanisms_dir] if mechanisms_dir else [])
    mods = collect_mod_files(dirs, log=lambda *_: None)
    folder = cache_folder(mods, False)
    return folder, (folder / _DONE_MARKER).exists(), len(mods)


def check_mechanisms(report: Report, settings, needs: dict, workdir: Path) -> None:
    kind, text, prefix, libs = _mechanism_source(settings, workdir)
    if kind == "special":
        script = Path(text)
        if not os.access(script, os.X_OK):
            report.add("mechanisms", FAIL, f"special {script} is not executable",
                       fix=f"chmod +x {script}, or rebuild it (neurodamus build-mechanisms)")
            return
        problem = launch.special_problem(script)
        if problem:   # a run warns and goes on with the library; the doctor says why
            report.add("mechanisms", FAIL, f"special {problem}",
                       fix="rebuild it with this environment: neurodamus build-mechanisms "
                           "<model mod dir> --output .")
            return
        report.add("mechanisms", OK, f"a run re-executes into special {script}",
                   ["set neurodamus_special=1 to use a mechanism library instead"])
    elif kind == "cache":
        mdir = settings.mechanisms_dir if settings else ""
        if mdir and not os.path.isdir(mdir):
            report.add("mechanisms", FAIL, f"{settings.circuit_path}: components.mechanisms_dir"
                       f": folder not found: {mdir}",
                       fix="fix components.mechanisms_dir, or set NRNMECH_LIB_PATH")
            return
        try:
            folder, built, n_mods = _cache_entry(mdir)
        except Exception as exc:  # noqa: BLE001 - the message is the finding
            report.add("mechanisms", FAIL, f"cannot collect the mod files: {exc}",
                       fix="check components.mechanisms_dir and the .mod files in it")
            return
        what = f"core/mod + {mdir}" if mdir else "core/mod only (no config given)"
        if not built:
            report.add("mechanisms", INFO, f"{what}: not built yet; the first run builds "
                       f"{n_mods} mechanisms into {folder} (about {max(5, n_mods)} s)",
                       fix=f"build them now: neurodamus build-mechanisms {mdir}".rstrip())
            return
        libs = [str(folder / platform.machine() / "libnrnmech.so")]
        report.add("mechanisms", OK, f"{what}: cached build {libs[0]}")
    else:
        missing = [lib for lib in libs if not os.path.isfile(lib)]
        if missing:
            report.add("mechanisms", FAIL, f"{kind}: library not found: {', '.join(missing)}",
                       fix="build one with 'neurodamus build-mechanisms <mod dir>' and use the "
                           "NRNMECH_LIB_PATH it prints")
            return
        report.add("mechanisms", OK, f"{kind}: {text}")

    found, error = _probe_mechanisms(prefix, libs, workdir)
    if found is None:
        report.add("mechanisms", FAIL, f"NEURON cannot load the mechanisms ({kind})",
                   error.splitlines()[-6:],
                   fix="rebuild them for this NEURON: neurodamus build-mechanisms <mod dir>")
        return
    core = sorted(collect_mod_files([paths.mod_dir()], log=lambda *_: None))
    lacking_core = [m for m in core if m not in found]
    if lacking_core:
        report.add("mechanisms", WARN, f"the library lacks the driver's own mechanisms "
                   f"{', '.join(lacking_core)} (from core/mod): some inputs will not work",
                   fix="build with 'neurodamus build-mechanisms', which adds core/mod")
    if not needs:
        return
    problems = []
    for mech, users in sorted(needs.items()):
        if mech not in found:
            problems.append(f"'{mech}' needed by {users}")
    if problems:
        report.add("mechanisms", FAIL, f"{len(problems)} mechanism(s) the circuit needs are "
                   f"missing from the library", problems[:10],
                   fix="add their .mod files to components.mechanisms_dir (or rebuild the "
                       "library/special with them)")
    else:
        report.add("mechanisms", OK, f"all {len(needs)} mechanisms the circuit needs are there")
