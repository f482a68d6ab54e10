"""Build the mechanism library with nrnivmodl: core/mod plus model folders, cached by content.

The cache key is a hash of every mod file's name and content, the NEURON version, the Python
that builds (the wheel's ``special`` is a script naming it), the CoreNEURON flag and the
compiler flags, so a changed mod file gives a new build and an unchanged
set is reused by every run (and every rank) without calling nrnivmodl again.

Compiler flags go to ``nrnivmodl -incflags``, which puts them after nrnivmodl's own ``-O2`` on
the compile lines of both libraries (NEURON's and CoreNEURON's), so that e.g. ``-O3
-march=native`` wins. By default nothing is added: CoreNEURON then computes bit for bit what
NEURON computes. ``--vector-math`` (``NEURODAMUS_VECTOR_MATH=1``) adds
``core/include/neurodamus_vector_math.h`` (vector exp/log/pow for CoreNEURON's ``omp simd``
kernels) and, on a CPU with AVX2, ``-mavx2`` (``cpu_level``): CoreNEURON's solver ~2x faster,
its spikes no longer guaranteed identical to NEURON's (docs/performance.md).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .. import cpu_level, paths
from ..errors import MechanismError
from ..launch import special_problem

_NAME_RE = re.compile(r"^\s*(SUFFIX|POINT_PROCESS|ARTIFICIAL_CELL)\s+(\w+)", re.MULTILINE)
_DONE_MARKER = ".neurodamus-build-complete"


@dataclass(frozen=True)
class MechanismBuild:
    folder: Path          # the folder holding <arch>/
    coreneuron: bool

    @property
    def arch_dir(self) -> Path:
        return self.folder / platform.machine()

    @property
    def library(self) -> Path:
        return self.arch_dir / "libnrnmech.so"

    @property
    def coreneuron_library(self) -> Path:
        return self.arch_dir / "libcorenrnmech.so"

    @property
    def special(self) -> Path:
        return self.arch_dir / "special"

    def environment_lines(self) -> list[str]:
        lines = [f"export NRNMECH_LIB_PATH={self.library}"]
        if self.coreneuron:
            lines.append(f"export CORENEURONLIB={self.coreneuron_library}")
        lines.append(f"export PATH={self.arch_dir}:$PATH   # provides 'special'")
        return lines


def mechanism_name(mod_file: Path) -> str:
    """The SUFFIX / POINT_PROCESS / ARTIFICIAL_CELL name declared by a mod file."""
    text = mod_file.read_text(errors="replace")
    text = re.sub(r"COMMENT.*?ENDCOMMENT", "", text, flags=re.DOTALL)
    text = re.sub(r":.*", "", text)
    match = _NAME_RE.search(text)
    return match.group(2) if match else mod_file.stem


def collect_mod_files(mod_dirs, log=print) -> dict[str, Path]:
    """Mechanism name -> mod file; later folders win (the model overrides core/mod)."""
    chosen: dict[str, Path] = {}
    for folder in mod_dirs:
        folder = Path(folder)
        if not folder.is_dir():
            raise MechanismError(f"Mechanism folder not found: {folder}")
        if not any(folder.glob("*.mod")):   # refused at once, not built around
            raise MechanismError(f"{folder}: the mechanism folder holds no .mod files")
        for mod in sorted(folder.glob("*.mod")):
            name = mechanism_name(mod)
            if name in chosen and chosen[name].resolve() != mod.resolve():
                log(f"mechanism {name}: using {mod} (overrides {chosen[name]})")
            chosen[name] = mod
    if not chosen:
        raise MechanismError("No .mod files found in " + ", ".join(map(str, mod_dirs)))
    return chosen


#: compiler flags of every build unless --cflags says otherwise ("" = nrnivmodl's own -O2)
DEFAULT_CFLAGS = ""
#: what vectorises CoreNEURON's kernels (see the header): asked for with --vector-math or
#: NEURODAMUS_VECTOR_MATH=1, not by default, since libmvec's exp may differ from the scalar exp
#: NEURON uses in the last bit, and then spikes may differ from NEURON's
VECTOR_MATH_FLAGS = "-fno-math-errno -include"
VECTOR_MATH_ENV = "NEURODAMUS_VECTOR_MATH"


def vector_math_header() -> Path:
    return paths.include_dir() / "neurodamus_vector_math.h"


def vector_math_requested() -> bool:
    return os.environ.get(VECTOR_MATH_ENV, "0") == "1"


def effective_cflags(cflags: str, vector_math: bool | None = None
                     ) -> tuple[str, tuple[str, ...]]:
    """(the flags nrnivmodl gets, the CPU flags the result needs) for the user's ``cflags``;
    ``vector_math`` None: as NEURODAMUS_VECTOR_MATH says."""
    if not (vector_math_requested() if vector_math is None else vector_math):
        return " ".join(cflags.split()), ()
    level, needed = cpu_level.build_level(cflags)
    ours = f"{VECTOR_MATH_FLAGS} {vector_math_header()} {level}"
    return " ".join(f"{ours} {cflags}".split()), needed


def _content_hash(mods: dict[str, Path], coreneuron: bool, cflags: str = "") -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        nrn_version = version("neuron")
    except PackageNotFoundError:
        nrn_version = shutil.which("nrnivmodl") or "unknown"
    flags = f"|cflags={cflags}" if cflags else ""   # nrnivmodl's own flags: no entry
    if VECTOR_MATH_FLAGS in cflags:   # the header's content, not only its path
        flags += f"|header={hashlib.sha256(vector_math_header().read_bytes()).hexdigest()}"
    # sys.executable, not its resolved target: it is the name written into special's "#!"
    digest = hashlib.sha256(f"{nrn_version}|python={sys.executable}|coreneuron={coreneuron}"
                            f"{flags}".encode())
    for name in sorted(mods):
        digest.update(mods[name].name.encode() + b"\0" + mods[name].read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def cache_folder(mods: dict[str, Path], coreneuron: bool, cflags: str | None = None) -> Path:
    """The cache entry of a build (``cflags``: effective flags; None: a run's default)."""
    if cflags is None:
        cflags = effective_cflags(DEFAULT_CFLAGS)[0]
    return cache_root() / "mechanisms" / _content_hash(mods, coreneuron, cflags)


def cache_root() -> Path:
    base = os.environ.get("NEURODAMUS_CACHE_DIR")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "neurodamus"


def _nrnivmodl(tool: str = "nrnivmodl") -> str:
    """nrnivmodl (or ``tool``) next to this Python, on PATH, or inside the installed
    ``neuron`` package."""
    candidates = [Path(sys.executable).parent / tool, shutil.which(tool)]
    try:
        import importlib.util

        spec = importlib.util.find_spec("neuron")
        if spec and spec.origin:
            candidates.append(Path(spec.origin).parent / ".data" / "bin" / tool)
    except (ImportError, ValueError):
        pass
    for exe in candidates:
        if exe and Path(exe).is_file() and os.access(exe, os.X_OK):
            return str(exe)
    if tool != "nrnivmodl":
        return ""
    raise MechanismError("nrnivmodl not found: install NEURON (pip install neuron) or put "
                         "its bin folder on PATH")


def _translate_all(folder: Path, mods: dict[str, Path]) -> None:
    """nocmodl on every mod file (seconds) before any compilation (minutes): every broken file
    is named, with its first error, before the build starts."""
    found = _nrnivmodl("nocmodl")
    if not found:
        return   # an installation without it: nrnivmodl's own messages will have to do
    nocmodl = Path(found).resolve()
    env = dict(os.environ)
    units = nocmodl.parent.parent / "share" / "nrn" / "lib" / "nrnunits.lib"
    if units.is_file():
        env.setdefault("MODLUNIT", str(units))
    out = folder / "translate-check"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    broken = []
    for mod in sorted(mods.values()):
        proc = subprocess.run([str(nocmodl), mod.name, "-o", str(out)], cwd=mod.parent,
                              capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            lines = [ln.strip() for ln in (proc.stdout + proc.stderr).splitlines()
                     if ln.strip() and not ln.startswith("Translating") and ln.strip() != "^"]
            errors = [ln for ln in lines if "Error" in ln] or \
                [ln for ln in lines if "error" in ln] or lines
            broken.append(f"{mod}: {errors[0] if errors else 'nocmodl failed'}")
    shutil.rmtree(out, ignore_errors=True)
    if broken:
        raise MechanismError(f"{len(broken)} mod file(s) cannot be translated (nothing was "
                             f"compiled):\n  " + "\n  ".join(broken))


def _run_nrnivmodl(folder: Path, mods: dict[str, Path], coreneuron: bool, log,
                   cflags: str = "", needed: tuple[str, ...] = ()) -> None:
    """nrnivmodl in a fresh ``folder`` (the wheel's nrnivmodl is not idempotent)."""
    _translate_all(folder, mods)
    if (folder / platform.machine()).exists():
        shutil.rmtree(folder / platform.machine())
    mod_folder = folder / "mod"
    if mod_folder.exists():
        shutil.rmtree(mod_folder)
    mod_folder.mkdir(parents=True)
    for mod in mods.values():
        shutil.copy2(mod, mod_folder / mod.name)
    cmd = [_nrnivmodl()] + (["-coreneuron"] if coreneuron else []) + \
        (["-incflags", cflags] if cflags else []) + ["mod"]
    log(f"Building {len(mods)} mechanisms in {folder} ({' '.join(cmd[1:])}) ...")
    proc = subprocess.run(cmd, cwd=folder, capture_output=True, text=True)
    (folder / "nrnivmodl.log").write_text(proc.stdout + proc.stderr)
    built = MechanismBuild(folder, coreneuron)
    if proc.returncode != 0 or not built.library.exists() or (
            coreneuron and not built.coreneuron_library.exists()):
        output = proc.stdout + proc.stderr
        tail = "\n".join(output.strip().splitlines()[-15:])
        cannot = _coreneuron_failures(output, mods) if coreneuron else ""
        # parallel make interleaves the output: name the failing mod files explicitly
        failing = sorted({m.name for m in mods.values()
                          if re.search(rf"\b{re.escape(m.stem)}\.(?:cpp|c|o)\]? Error", output)})
        which = f" (failing: {', '.join(failing)})" if failing else ""
        raise MechanismError(f"{cannot}nrnivmodl failed{which} in {folder} (log: "
                             f"{folder}/nrnivmodl.log):\n{tail}")
    cpu_level.write_marker(built.arch_dir, needed)


_CORENRN_ERROR_RE = re.compile(r"corenrn/mod2c/(\w+)\.cpp:\d+:\d+: error: (.*)")


def _coreneuron_failures(output: str, mods: dict[str, Path]) -> str:
    """'CoreNEURON cannot compile X.mod (mechanism Y): <first error>' per failing mod file
    (say which mechanism CoreNEURON cannot run)."""
    by_stem = {mod.stem: name for name, mod in mods.items()}
    found = {}
    for stem, error in _CORENRN_ERROR_RE.findall(output):
        if stem in by_stem and stem not in found:
            found[stem] = error.strip()
    lines = [f"CoreNEURON cannot compile {stem}.mod (mechanism {by_stem[stem]}): {error}"
             for stem, error in found.items()]
    if not lines:
        return ""
    return "\n".join(lines) + "\n(these mechanisms run under NEURON only: build without " \
        "--coreneuron and use --simulator=NEURON, or port them to CoreNEURON)\n"


def build_mechanisms(mod_dirs=(), coreneuron=False, output=None, log=print,
                     cflags: str | None = None, vector_math: bool | None = None
                     ) -> MechanismBuild:
    """Build core/mod + ``mod_dirs`` into ``output`` or into the content-hash cache, compiled
    with ``cflags`` (None: ``DEFAULT_CFLAGS``); ``vector_math``: see ``effective_cflags``."""
    cflags, needed = effective_cflags(DEFAULT_CFLAGS if cflags is None else cflags, vector_math)
    mods = collect_mod_files([paths.mod_dir(), *mod_dirs], log=log)
    if output is not None:
        folder = Path(output).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        _run_nrnivmodl(folder, mods, coreneuron, log, cflags, needed)
        return MechanismBuild(folder, coreneuron)

    folder = cache_folder(mods, coreneuron, cflags)
    folder.mkdir(parents=True, exist_ok=True)
    # one builder at a time per cache entry (concurrent runs, or ranks of several jobs)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        built = MechanismBuild(folder, coreneuron)
        stale = built.special.exists() and special_problem(built.special)
        if stale:
            log(f"Rebuilding cached mechanisms: {stale}")
        if stale or not (folder / _DONE_MARKER).exists():
            (folder / _DONE_MARKER).unlink(missing_ok=True)
            _run_nrnivmodl(folder, mods, coreneuron, log, cflags, needed)
            (folder / _DONE_MARKER).write_text("ok\n")
        else:
            log(f"Reusing cached mechanisms: {folder}")
    return MechanismBuild(folder, coreneuron)
