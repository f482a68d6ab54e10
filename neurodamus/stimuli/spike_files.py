"""SONATA spike files given as inputs (``synapse_replay``): checked cheaply, then read."""

from __future__ import annotations

import os
from collections import defaultdict

import h5py
import numpy as np

from ..errors import ConfigError


def spike_file_problem(path: str) -> str | None:
    """Why ``path`` is not a readable SONATA spike file (None when it is): cheap, no data read."""
    if not os.path.isfile(path):
        return f"file not found: {path}"
    if not path.endswith(".h5"):
        return f"spike file must be SONATA .h5, got {path}"
    try:
        with h5py.File(path, "r") as fd:
            if "spikes" not in fd or not isinstance(fd["spikes"], h5py.Group):
                return f"{path} has no /spikes group (not a SONATA spike file)"
            for pop, group in fd["spikes"].items():
                if not isinstance(group, h5py.Group) or "timestamps" not in group or \
                        "node_ids" not in group:
                    return f"{path}: /spikes/{pop} lacks timestamps/node_ids (not a SONATA " \
                           f"spike file)"
    except OSError as exc:
        return f"not an HDF5 file: {path} ({exc})"
    return None


def read_spike_file(path: str, input_name: str, config_path) -> dict[str, dict[int, np.ndarray]]:
    """population -> raw node id -> sorted spike times, from a SONATA spike file."""
    where = f"{config_path}: inputs.{input_name}.spike_file"
    problem = spike_file_problem(path)
    if problem:
        raise ConfigError(f"{where}: {problem}")
    fd = h5py.File(path, "r")
    result = {}
    with fd:
        if "spikes" not in fd:
            raise ConfigError(f"{where}: {path} has no /spikes group (not a SONATA spike file)")
        for pop, group in fd["spikes"].items():
            if "timestamps" not in group or "node_ids" not in group:
                raise ConfigError(f"{where}: {path}: /spikes/{pop} lacks timestamps/node_ids")
            times = np.asarray(group["timestamps"][:], dtype=np.float64)
            ids = np.asarray(group["node_ids"][:], dtype=np.int64)
            if times.shape != ids.shape or times.ndim != 1:
                raise ConfigError(f"{where}: {path}: /spikes/{pop} has {times.shape} timestamps "
                                  f"but {ids.shape} node_ids")
            _check_spikes(where, path, pop, times, ids)
            per_node = defaultdict(list)
            order = np.lexsort((times, ids))
            ids, times = ids[order], times[order]
            bounds = np.flatnonzero(np.diff(ids)) + 1
            for chunk_ids, chunk_t in zip(np.split(ids, bounds), np.split(times, bounds)):
                if len(chunk_ids):
                    per_node[int(chunk_ids[0])] = chunk_t
            result[pop] = dict(per_node)
    return result


def _check_spikes(where, path, pop, times, ids) -> None:
    """Times finite and >= 0, node ids >= 0 (they would change the spikes)."""
    bad = ~(np.isfinite(times) & (times >= 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ConfigError(f"{where}: {path}: /spikes/{pop}/timestamps: spike {i} has time "
                          f"{times[i]} ({int(bad.sum())} NaN, infinite or negative time(s))")
    if len(ids) and ids.min() < 0:
        i = int(np.flatnonzero(ids < 0)[0])
        raise ConfigError(f"{where}: {path}: /spikes/{pop}/node_ids: spike {i} has node id "
                          f"{int(ids[i])} (< 0)")


__all__ = ["read_spike_file", "spike_file_problem"]
