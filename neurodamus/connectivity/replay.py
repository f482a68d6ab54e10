"""Spike replay (``synapse_replay`` inputs): VecStim + NetCon per synapse (compatibility §3.10)."""

from __future__ import annotations

import os
from collections import defaultdict

import h5py
import numpy as np

from ..errors import ConfigError


def read_spike_file(path: str, input_name: str, config_path) -> dict[str, dict[int, np.ndarray]]:
    """population -> raw node id -> sorted spike times, from a SONATA spike file."""
    where = f"{config_path}: inputs.{input_name}.spike_file"
    if not path.endswith(".h5"):
        raise ConfigError(f"{where}: spike file must be SONATA .h5, got {path}")
    if not os.path.isfile(path):
        raise ConfigError(f"{where}: file not found: {path}")
    try:
        fd = h5py.File(path, "r")
    except OSError as exc:
        raise ConfigError(f"{where}: not an HDF5 file: {path} ({exc})") from exc
    result = {}
    with fd:
        if "spikes" not in fd:
            raise ConfigError(f"{where}: {path} has no /spikes group (not a SONATA spike file)")
        for pop, group in fd["spikes"].items():
            if "timestamps" not in group or "node_ids" not in group:
                raise ConfigError(f"{where}: {path}: /spikes/{pop} lacks timestamps/node_ids")
            times = np.asarray(group["timestamps"][:], dtype=np.float64)
            ids = np.asarray(group["node_ids"][:], dtype=np.int64)
            per_node = defaultdict(list)
            order = np.lexsort((times, ids))
            ids, times = ids[order], times[order]
            bounds = np.flatnonzero(np.diff(ids)) + 1
            for chunk_ids, chunk_t in zip(np.split(ids, bounds), np.split(times, bounds)):
                if len(chunk_ids):
                    per_node[int(chunk_ids[0])] = chunk_t
            result[pop] = dict(per_node)
    return result


class ReplayBuilder:
    """Attach replayed spike trains to existing synapses.

    One VecStim per (input, source node) on this rank drives a NetCon to each synapse of that
    source: the events each synapse receives are the same as with one VecStim per synapse.
    """

    REPLAY_TYPE = 2

    def __init__(self, h, nc_type_index: dict):
        self.h = h
        self.nc_type_index = nc_type_index
        self.sources = {}   # (input name, population, raw id) -> (Vector, VecStim)
        self.netcons = []
        self.n_events = 0

    def _source(self, key, times):
        src = self.sources.get(key)
        if src is None:
            vec = self.h.Vector(times)
            stim = self.h.VecStim()
            stim.play(vec)
            src = self.sources[key] = (vec, stim)
        return src[1]

    def attach(self, input_name, table, row_pp, spikes_by_node: dict, delay: float,
               weight_factor=None, delay_override=None):
        h = self.h
        p = table.params
        wf = np.ones(len(table)) if weight_factor is None else weight_factor
        nc_weight = (p["weight"] * wf).tolist()
        nc_delay = (p["delay"] if delay_override is None else np.asarray(delay_override)).tolist()
        population = table.edge_pop.source
        for conn in table.connections:
            raw = conn.sgid - table.source_offset
            times = spikes_by_node.get(raw)
            if times is None:
                continue
            times = times[times >= delay]   # the input's delay is a filter (§3.10)
            if not len(times):
                continue
            stim = None
            for r in range(conn.start, conn.stop):
                pp = row_pp[r]
                if pp is None:
                    continue
                if stim is None:
                    stim = self._source((input_name, population, raw), times)
                nc = h.NetCon(stim, pp)
                nc.delay = nc_delay[r]
                nc.weight[0] = nc_weight[r]
                nc.threshold = 10
                k = self.nc_type_index.get(pp.hname().split("[")[0], 0)
                if k:
                    nc.weight[k] = self.REPLAY_TYPE
                self.netcons.append(nc)
                self.n_events += len(times)
