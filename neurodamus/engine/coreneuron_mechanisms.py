"""CoreNEURON's side of the mechanisms and of empty ranks (NEURON objects).

CoreNEURON loads its own mechanism library, ``libcorenrnmech.so``, which must come from the
same mod files as NEURON's ``libnrnmech.so``: ``find_library`` takes the one next to it unless
``CORENEURONLIB`` names one. ``check_mechanisms`` names what the model uses that CoreNEURON
lacks. A rank without cells gets one silent artificial cell (``add_placeholder_cell``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..circuit.offsets import gid_offsets
from ..errors import MechanismError
from ..launch import mapped_files

PLACEHOLDER_POPULATION = "zzz"
_MECH_INFO_RE = re.compile(r"mechanism_info\[\]\s*=\s*\{\s*\"[^\"]*\"\s*,\s*\"(\w+)\"")
_BUILTIN_MECHANISMS = {"morphology", "capacitance", "extracellular"}

#: mechanisms NEURON has built in and CoreNEURON 9.0.2 does not (its built-ins are hh, pas,
#: IClamp, SEClamp, ExpSyn, Exp2Syn, NetStim, PatternStim)
NEURON_ONLY_BUILTINS = {"IntFire1", "IntFire2", "IntFire4", "AlphaSynapse", "VClamp",
                        "OClamp", "APCount", "PointProcessMark", "fastpas"}


# ---- the mechanism library ---------------------------------------------------------------------
def loaded_mechanism_libraries() -> list[Path]:
    """Mechanism libraries mapped into this process (libnrnmech.so, or a special binary)."""
    return [Path(p) for p in mapped_files()
            if os.path.basename(p) == "libnrnmech.so" or os.path.basename(p).startswith("special")]


def find_library(loaded: list[Path] | None = None) -> Path:
    """CoreNEURON's mechanism library matching the NEURON library in use; MechanismError."""
    env = os.environ.get("CORENEURONLIB")
    if env:
        if not os.path.isfile(env):
            raise MechanismError(f"CORENEURONLIB={env}: no such file (it must name the "
                                 f"libcorenrnmech.so built with 'nrnivmodl -coreneuron')")
        return Path(env)
    loaded = loaded_mechanism_libraries() if loaded is None else loaded
    if not loaded:
        raise MechanismError("CoreNEURON: no mechanism library is loaded, so there is no "
                             "libcorenrnmech.so to pair with it; build the mechanisms with "
                             "'neurodamus build-mechanisms --coreneuron <mod folders>'")
    for lib in loaded:
        candidate = lib.parent / "libcorenrnmech.so"
        if candidate.is_file():
            return candidate
    where = ", ".join(str(p) for p in loaded)
    raise MechanismError(
        f"CoreNEURON was asked for (target_simulator / --simulator) but the mechanism library "
        f"in use ({where}) was built without -coreneuron: there is no libcorenrnmech.so next "
        f"to it. Rebuild it with 'neurodamus build-mechanisms --coreneuron <mod folders>' (or "
        f"'nrnivmodl -coreneuron'), or unset NRNMECH_LIB_PATH to let the driver build both, "
        f"or point CORENEURONLIB at a matching libcorenrnmech.so")


def coreneuron_mechanisms(library: Path) -> set[str] | None:
    """Names of the mechanisms compiled into ``library`` (None when its sources are unknown)."""
    sources = library.parent / "corenrn" / "mod2c"
    if not sources.is_dir():
        return None
    names = set(_BUILTIN_MECHANISMS)
    for cpp in sources.glob("*.cpp"):
        try:
            match = _MECH_INFO_RE.search(cpp.read_text(errors="replace"))
        except OSError:
            continue
        if match:
            names.add(match.group(1))
    return names


def mechanism_names(h, kind: int) -> list[str]:
    """Names of NEURON's mechanisms of ``kind`` (0: density, 1: point processes)."""
    mt = h.MechanismType(kind)
    name = h.ref("")
    out = []
    for i in range(int(mt.count())):
        mt.select(i)
        mt.selected(name)
        out.append(name[0])
    return out


def used_mechanisms_missing(h, available: set[str]) -> list[str]:
    """Mechanisms the NEURON model uses that CoreNEURON's library lacks."""
    missing = []
    density = [n for n in mechanism_names(h, 0) if n not in available and not n.endswith("_ion")]
    if density:
        sections = list(h.allsec())
        for name in density:
            if any(sec.has_membrane(name) for sec in sections):
                missing.append(name)
    for name in mechanism_names(h, 1):
        if name not in available and h.List(name).count() > 0:
            missing.append(name)
    return missing


def check_mechanisms(h, library: Path) -> None:
    """MechanismError naming the mechanisms of the model CoreNEURON cannot run."""
    available = coreneuron_mechanisms(library)
    if available is None:
        return   # a library without its build folder: CoreNEURON itself names what it lacks
    missing = used_mechanisms_missing(h, available)
    builtin = sorted(m for m in missing if m in NEURON_ONLY_BUILTINS)
    compiled = sorted(m for m in missing if m not in NEURON_ONLY_BUILTINS)
    reasons = []
    if builtin:
        reasons.append(f"{', '.join(builtin)}: built into NEURON, CoreNEURON has no version of "
                       f"them (use a mod-file model instead, e.g. PointLIF for IntFire1)")
    if compiled:
        reasons.append(f"{', '.join(compiled)}: {library} has no CoreNEURON version of them "
                       f"(their mod files were not compiled with 'nrnivmodl -coreneuron', or "
                       f"the library comes from other mod files than the NEURON library; "
                       f"rebuild both from the same folders with 'neurodamus build-mechanisms "
                       f"--coreneuron')")
    if missing:
        raise MechanismError(f"CoreNEURON cannot run mechanism(s) {', '.join(sorted(missing))} "
                             f"used by the model: {'; '.join(reasons)}. Or run with "
                             f"--simulator=NEURON")


# ---- empty ranks -----------------------------------------------------------------------------
def placeholder_gid(populations: dict, rank: int) -> int:
    """gid of the reserved ``zzz`` cell of an empty rank: offset(zzz) + 1 + rank
    (contract §1.1)."""
    max_ids = {name: p.max_id for name, p in populations.items()}
    max_ids[PLACEHOLDER_POPULATION] = 0
    return gid_offsets(max_ids)[PLACEHOLDER_POPULATION] + 1 + rank


def add_placeholder_cell(h, pc, populations: dict, rank: int):
    """One silent artificial cell so that CoreNEURON gets a non-empty rank; returns its objects."""
    gid = placeholder_gid(populations, rank)
    stim = h.NetStim()
    stim.number = 0
    pc.set_gid2node(gid, rank)
    nc = h.NetCon(stim, None)
    pc.cell(gid, nc)
    return gid, (stim, nc)


__all__ = ["NEURON_ONLY_BUILTINS", "PLACEHOLDER_POPULATION", "add_placeholder_cell",
           "check_mechanisms", "coreneuron_mechanisms", "find_library",
           "loaded_mechanism_libraries", "mechanism_names", "placeholder_gid",
           "used_mechanisms_missing"]
