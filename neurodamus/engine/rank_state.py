"""One rank's checkpoint state and the checkpoint folder's files (``--save``,
``--checkpoint-every``; ``checkpoint.py`` says what is saved and why).

Kept apart from the run-side glue so that the periodic checkpoints (``periodic.py``) and the
end-of-run save write the same files through the same functions.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..errors import NeurodamusError
from .coreneuron_mechanisms import mechanism_names
from .gid_state import save_cells

FORMAT = "neurodamus-checkpoint"
VERSION = 1
META = "checkpoint.json"
OUTPUTS = "outputs"
OPEN_DURATION = 1e9   # InhPoissonStim's default duration (core/mod/InhPoissonStim.mod)


class CheckpointError(NeurodamusError):
    """A checkpoint folder cannot be written or does not fit the run restoring from it."""


def state_file(folder: Path, rank: int) -> Path:
    return Path(folder) / f"rank{rank}.savestate"


def extras_file(folder: Path, rank: int) -> Path:
    return Path(folder) / f"rank{rank}.npz"



# ---- what SaveState misses -----------------------------------------------------------------------
def _point_process_types(h) -> list[str]:
    return mechanism_names(h, 1)


def _range_variables(h, name: str) -> list[tuple[str, int]]:
    out = []
    for vartype in (1, 2):   # PARAMETER, ASSIGNED (STATE is SaveState's)
        ms = h.MechanismStandard(name, vartype)
        vname = h.ref("")
        for i in range(int(ms.count())):
            size = int(ms.name(vname, i))
            out.append((vname[0], size))
    return out


def _random_variables(obj) -> list[str]:
    names = []
    for attr in dir(obj):
        if attr.startswith("_"):
            continue
        try:
            value = getattr(obj, attr)
        except (ValueError, TypeError, RuntimeError, AttributeError):
            value = None   # a POINTER/BBCOREPOINTER without a target raises ValueError
        if type(value).__name__ == "NMODLRandom":
            names.append(attr)
    return names


def collect_extras(h) -> dict:
    """Arrays of point-process RANGE values, RANDOM sequences and NetCon weights."""
    out = {}
    for name in _point_process_types(h):
        items = h.List(name)
        n = int(items.count())
        if n == 0:
            continue
        first = items.o(0)
        artificial = not first.has_loc() if hasattr(first, "has_loc") else False
        variables = [] if artificial else _range_variables(h, name)
        randoms = _random_variables(first)
        if not variables and not randoms:   # nothing to keep (e.g. NdCoreImemGather)
            continue
        width = sum(size for _, size in variables)
        values = np.empty((n, width))
        seqs = np.empty((n, len(randoms)))
        for i in range(n):
            pp = items.o(i)
            col = 0
            for var, size in variables:
                if size == 1:
                    values[i, col] = getattr(pp, var)
                else:
                    arr = getattr(pp, var)
                    values[i, col:col + size] = [arr[j] for j in range(size)]
                col += size
            for j, r in enumerate(randoms):
                seqs[i, j] = getattr(pp, r).get_seq()
        out[f"pp/{name}/values"] = values
        out[f"pp/{name}/vars"] = np.array([f"{v}:{s}" for v, s in variables], dtype=str)
        out[f"pp/{name}/randoms"] = np.array(randoms, dtype=str)
        out[f"pp/{name}/seqs"] = seqs
    weights, counts = [], []
    for nc in h.List("NetCon"):
        w = int(nc.wcnt())
        counts.append(w)
        weights.extend(nc.weight[j] for j in range(w))
    out["netcon/counts"] = np.array(counts, np.int64)
    out["netcon/weights"] = np.array(weights, float)
    return out


def apply_extras(h, data) -> None:
    """Put back what ``collect_extras`` saved; CheckpointError when the model differs."""
    names = sorted({k.split("/")[1] for k in data.files if k.startswith("pp/")})
    for name in names:
        items = h.List(name)
        values, seqs = data[f"pp/{name}/values"], data[f"pp/{name}/seqs"]
        if int(items.count()) != len(values):
            raise CheckpointError(f"the model has {int(items.count())} {name} but the "
                                  f"checkpoint {len(values)}: not the same model")
        variables = [(v.rsplit(":", 1)[0], int(v.rsplit(":", 1)[1]))
                     for v in data[f"pp/{name}/vars"]]
        randoms = [str(r) for r in data[f"pp/{name}/randoms"]]
        for i in range(len(values)):
            pp = items.o(i)
            col = 0
            row = values[i]
            for var, size in variables:
                if size == 1:
                    setattr(pp, var, float(row[col]))
                else:
                    arr = getattr(pp, var)
                    for j in range(size):
                        arr[j] = float(row[col + j])
                col += size
            for j, r in enumerate(randoms):
                getattr(pp, r).set_seq(float(seqs[i, j]))
    counts, weights = data["netcon/counts"], data["netcon/weights"]
    netcons = h.List("NetCon")
    if int(netcons.count()) != len(counts):
        raise CheckpointError(f"the model has {int(netcons.count())} NetCons but the "
                              f"checkpoint {len(counts)}: not the same model")
    k = 0
    for nc, w in zip(netcons, counts):
        for j in range(int(w)):
            nc.weight[j] = float(weights[k])
            k += 1


def open_minis(h) -> None:
    """Minis generators keep their default duration (they must outlive this run's tstop)."""
    if hasattr(h, "InhPoissonStim"):
        for stim in h.List("InhPoissonStim"):
            stim.duration = OPEN_DURATION



def write_rank_state(h, folder, rank: int, solver_t: float, report_values: dict,
                     report_gids: dict) -> None:
    """This rank's ``SaveState`` and what it misses, into ``folder`` (the reports' recordings
    must be out of the play/record list: ``ReportSet.stop_recording``), and its cells'
    gid-keyed state (``gid_state``; collective) for a restore on another rank count."""
    save_cells(h, folder, rank, solver_t)
    ss = h.SaveState()
    shown_t = h.t
    h.t = solver_t   # SaveState wants the threads' own time
    try:
        ss.save()
    finally:
        h.t = shown_t
    f = h.File(str(state_file(folder, rank)))
    f.wopen()
    ss.fwrite(f)
    f.close()
    arrays = collect_extras(h)
    for name, values in report_values.items():
        arrays[f"report/{name}"] = values
    for name, gids in report_gids.items():
        arrays[f"reportgid/{name}"] = gids
    tmp = extras_file(folder, rank).with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, extras_file(folder, rank))


def write_meta(folder, meta: dict) -> None:
    """``checkpoint.json`` last, under a temporary name: its presence marks a checkpoint."""
    tmp = Path(folder) / f"{META}.tmp"
    tmp.write_text(json.dumps(dict(meta, format=FORMAT, version=VERSION), indent=1) + "\n")
    os.replace(tmp, Path(folder) / META)


__all__ = ["FORMAT", "META", "OUTPUTS", "VERSION", "CheckpointError", "apply_extras",
           "collect_extras", "extras_file", "open_minis", "state_file", "write_meta",
           "write_rank_state"]
