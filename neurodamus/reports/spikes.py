"""SONATA spike file (contract §8.1): gather to rank 0, sort by (time, gid), write.

Written to a temporary name and renamed when complete, so that an interrupted run never
leaves a spike file that looks whole.
"""

from __future__ import annotations

import os

import h5py
import numpy as np

from ..output_guard import writing

SORTING_ENUM = {"none": 0, "by_id": 1, "by_time": 2}


def gather_spikes(comm, times: np.ndarray, gids: np.ndarray):
    """All ranks' spikes on rank 0, sorted by time with ties broken by gid (else None)."""
    parts = comm.gather((np.asarray(times, float), np.asarray(gids, np.int64)), root=0) \
        if comm.Get_size() > 1 else [(np.asarray(times, float), np.asarray(gids, np.int64))]
    if parts is None:
        return None
    t = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0)
    g = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64)
    order = np.lexsort((g, t))
    return t[order], g[order]


def write_spikes(path, times, gids, populations) -> dict[str, int]:
    """One /spikes/<population> group per instantiated population, in population order.

    ``populations`` is a list of (name, offset, gid_stop) with gids in [offset, gid_stop).
    Returns the spike count per population.
    """
    path = str(path)
    tmp = f"{path}.tmp-{os.getpid()}"
    enum_type = h5py.enum_dtype(SORTING_ENUM, basetype="u1")
    counts = {}
    with writing(path, tmp), h5py.File(tmp, "w") as fd:   # a full disk: one message
        root = fd.create_group("spikes")
        for name, offset, stop in populations:
            mask = (gids >= offset) & (gids < stop)
            grp = root.create_group(name)
            grp.attrs.create("sorting", SORTING_ENUM["by_time"], dtype=enum_type)
            ts = grp.create_dataset("timestamps", data=times[mask].astype(np.float64))
            ts.attrs["units"] = "ms"
            grp.create_dataset("node_ids", data=(gids[mask] - offset).astype(np.uint64))
            counts[name] = int(mask.sum())
    os.replace(tmp, path)
    return counts


def output_kind(path) -> str | None:
    """'spikes' or 'report' for a SONATA output file, None for anything else."""
    try:
        with h5py.File(path, "r") as fd:
            if "spikes" in fd:
                return "spikes"
            if "report" in fd:
                return "report"
    except OSError:
        return None
    return None
