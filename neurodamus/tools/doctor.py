"""``neurodamus doctor [simulation_config.json]``: check the set-up and explain what to fix.

Each check prints one line with its verdict (``ok``, ``info``, ``WARN``, ``FAIL``), what it
found, and for anything not ok the fix. The exit code is 1 when something would block a run
(a ``FAIL``), else 0. Checks, in order:

* Python and the ``neurodamus`` package: which copy is imported, from which ``sys.path``
  entry, and which other copies it shadows (or is shadowed by) on ``PYTHONPATH``;
* a Spack environment or environment modules that bring their own neurodamus or NEURON;
* the HOC library (the driver's ``core/hoc`` and ``HOC_LIBRARY_PATH``);
* NEURON and MPI: versions, ``MPI_LIB_NRN_PATH``, and a 2-rank launch (``mpirun -np 2``)
  that checks NEURON and mpi4py see the same ranks;
* the mechanisms a run would use (``special``, ``./<arch>/libnrnmech.so``,
  ``NRNMECH_LIB_PATH`` or the build cache) and, given a config, whether they hold every
  mechanism the circuit's templates insert and its synapses need;
* given a config: the config itself, template and morphology files, and a writable output
  folder (and a writable folder for the SUCCESS marker next to the config).

Probes that load NEURON or start MPI run in child processes, so that a broken library can
only fail its own check.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

OK, INFO, WARN, FAIL = "ok", "info", "WARN", "FAIL"
PROBE_TAG = "NDPROBE "
PROBE_TIMEOUT_S = 90

USAGE = """Check the neurodamus set-up (and a simulation config) and explain what to fix.

Usage:
    neurodamus doctor [<simulation_config>] [--output-path=DIR] [--no-mpi] [--ranks=N]

Options:
    --output-path=DIR   Check this output folder instead of the config's output.output_dir.
    --no-mpi            Skip the multi-rank launch check (mpirun -np N).
    --ranks=N           Ranks of the launch check [default: 2].

Exit code: 1 when a check FAILs (something would block a run), else 0.
"""


@dataclass
class Check:
    topic: str
    status: str
    text: str
    details: list = field(default_factory=list)
    fix: str = ""


class Report:
    def __init__(self, out=print):
        self.checks: list[Check] = []
        self.out = out

    def add(self, topic, status, text, details=(), fix="") -> Check:
        check = Check(topic, status, text, list(details), fix)
        self.checks.append(check)
        self._print(check)
        return check

    def _print(self, c: Check) -> None:
        label = {OK: " ok ", INFO: "info", WARN: "WARN", FAIL: "FAIL"}[c.status]
        self.out(f"[{label}] {c.topic}: {c.text}")
        for line in c.details:
            self.out(f"       {line}")
        if c.fix:
            lines = c.fix.splitlines()
            self.out(f"       fix: {lines[0]}")
            for line in lines[1:]:
                self.out(f"            {line}")

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAIL]

    def summary(self) -> str:
        n_fail = len(self.failed)
        n_warn = sum(c.status == WARN for c in self.checks)
        if n_fail:
            verdict = f"{n_fail} problem(s) would block a run"
        else:
            verdict = "nothing blocks a run"
        return f"\nneurodamus doctor: {verdict}; {n_warn} warning(s)."


# ---- helpers --------------------------------------------------------------------------------
def _run_probe(cmd, cwd=None, env=None, timeout=PROBE_TIMEOUT_S):
    """Run a probe; returns (list of decoded NDPROBE records, output text, error or None)."""
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=timeout, start_new_session=True, check=False)
    except subprocess.TimeoutExpired as exc:
        text = (exc.stdout or "") + (exc.stderr or "") if isinstance(exc.stdout, str) else ""
        return [], text, f"no answer within {timeout} s"
    except OSError as exc:
        return [], "", f"cannot start {cmd[0]}: {exc.strerror}"
    return _decode_records(proc.stdout), proc.stdout + proc.stderr, None


def _decode_records(text: str) -> list[dict]:
    """Every ``NDPROBE {...}`` in ``text`` (ranks' lines may arrive glued together)."""
    decoder, records, pos = json.JSONDecoder(), [], 0
    while (pos := text.find(PROBE_TAG, pos)) >= 0:
        pos += len(PROBE_TAG)
        try:
            record, end = decoder.raw_decode(text, pos)
        except ValueError:
            continue
        records.append(record)
        pos = end
    return records


def _tail(text: str, n: int = 6) -> list[str]:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-n:]


_MECH_PROBE = r'''
import json, os, sys
from neuron import h
loaded = [bool(h.nrn_load_dll(lib)) for lib in sys.argv[1:] if lib.endswith(".so")]
names = {}
for kind in (0, 1):
    mt = h.MechanismType(kind)
    ref = h.ref("")
    for i in range(int(mt.count())):
        mt.select(i)
        mt.selected(ref)
        names[ref[0]] = kind
print("NDPROBE " + json.dumps({"mechanisms": names, "loaded": loaded}), flush=True)
'''

_MPI_PROBE = r'''
import json, os, sys
out = {"launcher": {k: os.environ[k] for k in ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
       "PMI_RANK", "PMI_SIZE", "PMIX_RANK", "SLURM_PROCID", "SLURM_NTASKS") if k in os.environ}}
try:
    from mpi4py import MPI
    c = MPI.COMM_WORLD
    version = " ".join(MPI.Get_library_version().replace("\0", " ").splitlines()[0].split())
    out["mpi4py"] = [c.Get_rank(), c.Get_size(), version]
except Exception as exc:
    out["mpi4py_error"] = f"{type(exc).__name__}: {exc}"
try:
    from neuron import h
    h.nrnmpi_init()
    pc = h.ParallelContext()
    out["neuron"] = [int(pc.id()), int(pc.nhost())]
except Exception as exc:
    out["neuron_error"] = f"{type(exc).__name__}: {exc}"
try:
    with open("/proc/self/maps") as fd:
        out["libmpi"] = sorted({ln.split()[-1] for ln in fd if "libmpi" in ln and "/" in ln})
except OSError:
    out["libmpi"] = []
print("NDPROBE " + json.dumps(out), flush=True)
'''


def _probe_env(**extra) -> dict:
    env = dict(os.environ)
    env.setdefault("NEURON_MODULE_OPTIONS", "-nogui")
    env.update(extra)
    return env


def _write_probe(folder: Path, name: str, code: str) -> Path:
    path = folder / name
    path.write_text(code)
    return path


def mpi_launcher(ranks: int) -> list[str] | None:
    """srun inside a Slurm allocation, else mpirun/mpiexec with the flags Open MPI needs here."""
    if os.environ.get("SLURM_JOB_ID") and shutil.which("srun"):
        return ["srun", "-n", str(ranks)]
    exe = shutil.which("mpirun") or shutil.which("mpiexec")
    if exe is None:
        return None
    cmd = [exe, "-np", str(ranks)]
    try:
        version = subprocess.run([exe, "--version"], capture_output=True, text=True,
                                 timeout=20, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        version = ""
    if "Open MPI" in version or "OpenRTE" in version:
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-run-as-root")
        cmd += ["--oversubscribe", "--bind-to", "none"]
    return cmd


# ---- 1. Python and the neurodamus package ---------------------------------------------------
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
    import neurodamus

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
    report.add("neurodamus", OK, f"{neurodamus.__version__} imported from {imported} "
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
    from .. import allocator
    from ..errors import LaunchError

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
    from .. import paths

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


# ---- 4. NEURON and MPI ----------------------------------------------------------------------
def _elf_mpi_flavour(path: str) -> str | None:
    """'openmpi', 'mpich' or None (not an MPI library) from the file's bytes."""
    try:
        with open(path, "rb") as fd:
            data = fd.read()
    except OSError:
        return None
    if not data.startswith(b"\x7fELF") or b"MPI_Init" not in data:
        return None
    if b"ompi_mpi_comm_world" in data:
        return "openmpi"
    return "mpich"


def _one_line(text: str) -> str:
    """First line of a library's version text, without NULs, tabs or runs of spaces."""
    return " ".join(text.replace("\0", " ").splitlines()[0].split()) if text.strip() else ""


def _mpi4py_flavour(library_version: str) -> str:
    text = library_version.lower()
    return "openmpi" if "open mpi" in text else "mpich" if (
        "mpich" in text or "intel" in text or "cray" in text) else "unknown"


def check_neuron_mpi(report: Report, ranks: int, with_mpi: bool, special: str | None,
                     workdir: Path) -> None:
    try:
        nrn_version = importlib.metadata.version("neuron")
    except importlib.metadata.PackageNotFoundError:
        nrn_version = None
    try:
        import neuron
    except Exception as exc:  # noqa: BLE001 - any import failure is the finding
        report.add("NEURON", FAIL, f"cannot import neuron: {type(exc).__name__}: {exc}",
                   fix="pip install 'neuron>=9.0.2' in this Python's environment")
        return
    report.add("NEURON", OK, f"{nrn_version or neuron.__version__} from "
               f"{Path(neuron.__file__).parent}")
    from .mechanisms import _nrnivmodl
    try:
        report.add("NEURON", OK, f"nrnivmodl: {_nrnivmodl()}")
    except Exception as exc:  # noqa: BLE001
        report.add("NEURON", WARN, str(exc))

    try:
        mpi4py_version = importlib.metadata.version("mpi4py")
        from mpi4py import MPI

        lib_version = _one_line(MPI.Get_library_version())
    except Exception as exc:  # noqa: BLE001
        report.add("MPI", FAIL, f"cannot use mpi4py: {type(exc).__name__}: {exc}",
                   fix="pip install mpi4py, and install an MPI (apt-get install "
                       "libopenmpi-dev openmpi-bin, or the 'mpich' wheel)")
        return
    report.add("MPI", OK, f"mpi4py {mpi4py_version} with {lib_version}")
    flavour = _mpi4py_flavour(lib_version)

    nrn_path = os.environ.get("MPI_LIB_NRN_PATH")
    if nrn_path:
        # neurodamus brings MPI up through mpi4py first: NEURON then uses that MPI and
        # ignores MPI_LIB_NRN_PATH; other NEURON programs (nrniv, plain scripts) do not
        ignored = ("neurodamus itself is not affected (NEURON uses the MPI mpi4py loaded), "
                   "but nrniv, special without neurodamus and plain NEURON scripts are")
        nrn_flavour = _elf_mpi_flavour(nrn_path)
        if not os.path.isfile(nrn_path):
            report.add("MPI", WARN, f"MPI_LIB_NRN_PATH={nrn_path}: no such file", [ignored],
                       fix="unset MPI_LIB_NRN_PATH, or point it at the libmpi.so that mpi4py "
                           "uses")
        elif nrn_flavour is None:
            report.add("MPI", WARN, f"MPI_LIB_NRN_PATH={nrn_path} is not an MPI library",
                       [ignored],
                       fix="point MPI_LIB_NRN_PATH at the libmpi.so that mpi4py uses "
                           f"({lib_version}), or unset it")
        elif flavour != "unknown" and nrn_flavour != flavour:
            report.add("MPI", WARN, f"MPI_LIB_NRN_PATH={nrn_path} is {nrn_flavour} but mpi4py "
                       f"uses {flavour} ({lib_version})", [ignored],
                       fix="give NEURON and mpi4py the same MPI: point MPI_LIB_NRN_PATH at "
                           "mpi4py's libmpi.so")
        else:
            report.add("MPI", OK, f"MPI_LIB_NRN_PATH={nrn_path} ({nrn_flavour})")

    if not with_mpi:
        report.add("MPI", INFO, "launch check skipped (--no-mpi)")
        return
    launcher = mpi_launcher(ranks)
    if launcher is None:
        report.add("MPI", WARN, "no mpirun, mpiexec or srun found: runs are limited to 1 rank",
                   fix="install an MPI launcher (apt-get install openmpi-bin)")
        return
    probe = _write_probe(workdir, "mpi_probe.py", _MPI_PROBE)
    _launch_check(report, "MPI launch", launcher + [sys.executable, str(probe)], ranks, workdir)
    if special:
        _launch_check(report, "MPI launch (special)",
                      launcher + [special, "-mpi", "-nogui", "-python", str(probe)], ranks,
                      workdir)


def _launch_check(report, topic, cmd, ranks, workdir) -> None:
    records, text, error = _run_probe(cmd, cwd=workdir, env=_probe_env())
    shown = " ".join(cmd[:3]) + " ..."
    if error or not records:
        report.add(topic, FAIL, f"{shown}: {error or 'no rank answered'}", _tail(text),
                   fix="check that this MPI launcher belongs to the MPI that mpi4py uses")
        return
    bad = []
    for rec in records:
        m = rec.get("mpi4py") or [None, None, rec.get("mpi4py_error")]
        n = rec.get("neuron") or [None, None]
        if m[1] != ranks or n[1] != ranks:
            bad.append(f"mpi4py sees rank {m[0]} of {m[1]} ({m[2]}), NEURON sees rank {n[0]} "
                       f"of {n[1]}; libmpi loaded: {', '.join(rec.get('libmpi', [])) or '?'}")
        if rec.get("neuron_error"):
            bad.append(f"NEURON: {rec['neuron_error']}")
    if len(records) != ranks:
        bad.append(f"{len(records)} process(es) answered, {ranks} expected")
    if bad:
        libs = sorted({lib for rec in records for lib in rec.get("libmpi", [])})
        report.add(topic, FAIL, f"under '{shown}' NEURON and mpi4py do not see the same "
                   f"{ranks} ranks",
                   [*bad[:4], f"MPI libraries in the processes: {', '.join(libs)}"],
                   fix="NEURON and mpi4py must load the same libmpi, the one of the launcher:\n"
                       "unset MPI4PY_LIBMPI / remove a stray 'mpich' or 'openmpi' wheel, or "
                       "set MPI_LIB_NRN_PATH to mpi4py's libmpi.so;\nrebuild mpi4py against "
                       "the launcher's MPI if needed (pip install --no-binary mpi4py mpi4py)")
    else:
        report.add(topic, OK, f"'{shown}': {ranks} ranks, NEURON and mpi4py agree")


# ---- 5. mechanisms --------------------------------------------------------------------------
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
    from .. import launch

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
    from .. import paths
    from . import mechanisms as mech

    dirs = [paths.mod_dir()] + ([mechanisms_dir] if mechanisms_dir else [])
    mods = mech.collect_mod_files(dirs, log=lambda *_: None)
    folder = mech.cache_root() / "mechanisms" / mech._content_hash(mods, False)
    return folder, (folder / mech._DONE_MARKER).exists(), len(mods)


def check_mechanisms(report: Report, settings, needs: dict, workdir: Path) -> None:
    from .. import paths
    from .mechanisms import collect_mod_files

    kind, text, prefix, libs = _mechanism_source(settings, workdir)
    if kind == "special":
        script = Path(text)
        first = script.read_bytes()[:200].split(b"\n", 1)[0].decode(errors="replace")
        interp = first[2:].strip().split()[0] if first.startswith("#!") else ""
        if not os.access(script, os.X_OK):
            report.add("mechanisms", FAIL, f"special {script} is not executable",
                       fix=f"chmod +x {script}, or rebuild it (neurodamus build-mechanisms)")
            return
        if interp and not os.path.exists(interp):
            report.add("mechanisms", FAIL, f"special {script} runs {interp}, which does not "
                       f"exist (built in another virtualenv?)",
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


# ---- 6. the simulation config and the circuit -----------------------------------------------
_INSERT = re.compile(r"\binsert\s+(\w+)")


def _strip_hoc_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
    return re.sub(r"//.*", "", text)


def check_circuit(report: Report, settings) -> dict:
    """Files of the circuit; returns mechanism -> who needs it."""
    import libsonata
    import numpy as np

    needs: dict[str, str] = {}
    for info in settings.node_populations.values():
        if info.type != "biophysical":
            continue
        pop = libsonata.NodeStorage(info.nodes_file).open_population(info.name)
        names = set(pop.attribute_names)
        if not {"model_template", "morphology"} <= names:
            report.add("circuit", FAIL, f"{info.nodes_file}: population '{info.name}' lacks "
                       f"{sorted({'model_template', 'morphology'} - names)}")
            continue
        sel = libsonata.Selection([(0, pop.size)])
        templates = sorted(set(pop.get_attribute("model_template", sel)))
        morphs = sorted(set(pop.get_attribute("morphology", sel)))
        missing_t = []
        for t in templates:
            name = t.removeprefix("hoc:")
            path = Path(info.emodels_dir) / f"{name}.hoc"
            if not path.is_file():
                missing_t.append(str(path))
                continue
            for mech in sorted(set(_INSERT.findall(_strip_hoc_comments(path.read_text(
                    errors="replace"))))):
                needs.setdefault(mech, f"template {name} ({path})")
        missing_m = [m for m in morphs if not (Path(info.morphologies_dir) /
                                              f"{m}.{info.morphology_ext}").is_file()]
        if missing_t:
            report.add("circuit", FAIL, f"population '{info.name}': {len(missing_t)} template "
                       f"file(s) missing", missing_t[:10],
                       fix=f"check model_template in {info.nodes_file} and "
                           f"biophysical_neuron_models_dir")
        if missing_m:
            report.add("circuit", FAIL, f"population '{info.name}': {len(missing_m)} of "
                       f"{len(morphs)} morphologies missing in {info.morphologies_dir}",
                       [f"{m}.{info.morphology_ext}" for m in missing_m[:10]],
                       fix="check morphologies_dir (or alternate_morphologies) in "
                           f"{settings.circuit_path}")
        if not missing_t and not missing_m:
            report.add("circuit", OK, f"population '{info.name}': {pop.size} cells, "
                       f"{len(templates)} template(s), {len(morphs)} morphologies, all found")
    for ep in settings.edge_populations:
        if ep.type != "chemical":
            continue
        pop = libsonata.EdgeStorage(ep.edges_file).open_population(ep.name)
        if "syn_type_id" not in pop.attribute_names or pop.size == 0:
            continue
        n = min(pop.size, 2_000_000)
        types = np.asarray(pop.get_attribute("syn_type_id", libsonata.Selection([(0, n)])))
        if (types >= 100).any():
            needs.setdefault("ProbAMPANMDA_EMS", f"excitatory edges of {ep.name}")
        if (types < 100).any():
            needs.setdefault("ProbGABAAB_EMS", f"inhibitory edges of {ep.name}")
    sim = settings.sim
    if any(sim.input(n).module.name == "synapse_replay" for n in sim.list_input_names):
        needs.setdefault("VecStim", "synapse_replay inputs")
    return needs


def _writable_folder(path: Path) -> tuple[bool, str]:
    """Whether ``path`` (existing or to be created) can be written."""
    probe_dir = path
    while not probe_dir.exists():
        if probe_dir.parent == probe_dir:
            return False, "no existing parent folder"
        probe_dir = probe_dir.parent
    if not probe_dir.is_dir():
        return False, f"{probe_dir} is a file"
    try:
        with tempfile.NamedTemporaryFile(dir=probe_dir, prefix=".neurodamus-doctor-"):
            pass
    except OSError as exc:
        return False, f"{probe_dir}: {exc.strerror}"
    return True, ""


def check_output(report: Report, settings) -> None:
    from ..engine.summary import RECORD_NAME, read_record

    out = settings.output_dir
    ok, why = _writable_folder(out)
    if not ok:
        report.add("output", FAIL, f"{settings.config_path}: output.output_dir: cannot write "
                   f"{out}: {why}",
                   fix="choose a writable folder (output.output_dir or --output-path)")
    else:
        record = read_record(out) if out.is_dir() else None
        extra = []
        if record is not None:
            extra.append(f"holds a {record.get('status', '?')} run of "
                         f"{record.get('config', '?')}: a new run first removes its "
                         f"{len(record.get('files', []))} file(s)")
        elif out.is_dir() and any(out.iterdir()):
            extra.append(f"not empty and without {RECORD_NAME}: files named like this run's "
                         f"outputs will be moved aside")
        report.add("output", OK, f"{out} is writable", extra)
    marker_dir = Path(os.path.abspath(settings.config_path)).parent
    ok, why = _writable_folder(marker_dir)
    if not ok:
        report.add("output", FAIL, f"the SUCCESS marker goes next to the config, but {why}",
                   fix="run from a copy of the config in a writable folder")


# ---- the command ----------------------------------------------------------------------------
def run_doctor(config: str | None = None, output_path: str | None = None, with_mpi=True,
               ranks: int = 2, out=print) -> int:
    from .. import launch

    if launch.launcher_rank() != 0:
        return 0   # under mpirun: rank 0 speaks; the launch check starts its own ranks
    os.environ.setdefault("NEURON_MODULE_OPTIONS", "-nogui")
    report = Report(out)
    out(f"neurodamus doctor (working directory {Path.cwd()})")
    package_dir = Path(__file__).resolve().parent.parent
    check_package(report, package_dir)
    check_environment(report)
    check_allocator(report)
    check_hoc(report)
    settings = None
    if config:
        from ..config import RunOptions, load_settings
        from ..errors import NeurodamusError

        try:
            settings = load_settings(config, RunOptions(output_path=output_path))
        except NeurodamusError as exc:
            report.add("config", FAIL, str(exc).splitlines()[0], str(exc).splitlines()[1:10],
                       fix="correct the file and key named above")
        except Exception as exc:  # noqa: BLE001 - libsonata raises several types
            report.add("config", FAIL, f"{config}: {type(exc).__name__}: {exc}",
                       fix="correct the config")
        else:
            report.add("config", OK, f"{settings.config_path} (circuit "
                       f"{settings.circuit_path}) loads and validates")
            for w in settings.warnings:
                report.add("config", WARN, w)
    special = None if os.environ.get(launch.SPECIAL_ENV) else launch.find_special()
    with tempfile.TemporaryDirectory(prefix="neurodamus-doctor-") as tmp:
        workdir = Path(tmp)
        check_neuron_mpi(report, ranks, with_mpi, special, workdir)
        needs = {}
        if settings is not None:
            try:
                needs = check_circuit(report, settings)
            except Exception as exc:  # noqa: BLE001
                report.add("circuit", FAIL, f"cannot read the circuit: {type(exc).__name__}: "
                           f"{exc}")
        check_mechanisms(report, settings, needs, workdir)
    if settings is not None:
        check_output(report, settings)
    else:
        report.add("config", INFO, "no simulation config given: circuit, mechanisms it needs "
                   "and output folder not checked",
                   fix="neurodamus doctor path/to/simulation_config.json")
    out(report.summary())
    return 1 if report.failed else 0


__all__ = ["USAGE", "Check", "Report", "mpi_launcher", "run_doctor"]
