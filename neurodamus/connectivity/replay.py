"""Spike replay (``synapse_replay`` inputs): VecStim + NetCon per synapse (contract §3.10)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError
from ..stimuli.base import input_blocks
from ..stimuli.spike_files import read_spike_file
from .hoc_objects import ObjectList, SpikeTrainSources, load

log = logging.getLogger(__name__)


def _check_spike_ids(where, path, pop, by_node: dict, size: int) -> None:
    """Every node id is a node of the source population (others change the spikes)."""
    beyond = [i for i in by_node if i >= size]
    if beyond:
        raise ConfigError(f"{where}: {path}: /spikes/{pop}/node_ids: node id {min(beyond)} is "
                          f"outside population '{pop}' ({size} nodes, ids 0..{size - 1}); "
                          f"{len(beyond)} such id(s)")


@dataclass
class ReplayInput:
    """One ``synapse_replay`` block: its spikes, and which targets and sources it concerns."""

    name: str
    delay: float
    spikes: dict                      # population -> raw id -> sorted times
    targets: np.ndarray | None = None  # sorted target gids (the input's node set)
    sources: dict = field(default_factory=dict)  # population -> sorted raw ids (``source``)
    has_source_filter: bool = False

    def source_ids(self, population: str):
        """Raw ids of ``population`` allowed as sources; None when the input has no ``source``."""
        if not self.has_source_filter:
            return None
        return self.sources.get(population, np.zeros(0, np.int64))


def read_replay_inputs(settings, populations, node_sets) -> list[ReplayInput]:
    """Every ``synapse_replay`` input, checked and read (contract §3.10).

    Spikes of populations the circuit does not have are ignored (with a warning), as the
    established driver only looks for the circuit's populations in the file; a circuit population
    with spikes but no chemical edges into a simulated population is an error.
    """
    result = []
    for block in input_blocks(settings):
        if block.module != "synapse_replay":
            continue
        stim = block.stim
        if stim.delay < 0:
            raise block.error("delay", f"must be >= 0, got {stim.delay}")
        spikes = read_spike_file(stim.spike_file, block.name, settings.config_path)
        for pop in sorted(spikes):
            if pop not in populations:
                log.warning("%s: population '%s' of %s is not in the circuit: its spikes are "
                            "not replayed", block.where("spike_file"), pop, stim.spike_file)
                del spikes[pop]
                continue
            _check_spike_ids(block.where("spike_file"), stim.spike_file, pop, spikes[pop],
                             populations[pop].size)
            fed = [ep for ep in settings.edge_populations if ep.source == pop and
                   ep.type == "chemical" and ep.target in populations and
                   not populations[ep.target].is_virtual]
            if not fed:
                raise block.error("spike_file", f"population '{pop}' has spikes in "
                                  f"{stim.spike_file} but no chemical edges to a simulated "
                                  f"population")
        targets = None
        if stim.node_set:
            targets = node_sets.simulated_gids(stim.node_set, block.where("node_set"))
        replay = ReplayInput(block.name, stim.delay, spikes, targets)
        source = block.raw.get("source")
        if source:
            node_sets.require_known(source, block.where("source"))
            replay.has_source_filter = True
            for pop in spikes:
                replay.sources[pop] = node_sets.raw_ids(source, pop)
        result.append(replay)
    return result


class ReplayBuilder:
    """Attach replayed spike trains to existing synapses.

    One VecStim per (input, source node) on this rank drives a NetCon to each synapse of that
    source: the events each synapse receives are the same as with one VecStim per synapse.
    ``per_synapse`` (checkpoints) gives every synapse a VecStim of its own
    (``hoc_objects.SpikeTrainSources``).
    """

    REPLAY_TYPE = 2

    def __init__(self, h, nc_type_index: dict, per_synapse: bool = False):
        self.h = h
        self.nc_type_index = nc_type_index
        self.sources = SpikeTrainSources(h, per_synapse)   # key: (input, population, raw id)
        self.netcons = ObjectList(h)   # hoc List: see hoc_objects.py
        self.n_events = 0

    def attach(self, input_name, table, row_pp, spikes_by_node: dict, delay: float,
               weight_factor=None, delay_override=None, targets=None, sources=None):
        """Replay onto the connections of ``table``; ``targets`` (gids) and ``sources`` (raw
        ids of the source population), when given, restrict which connections get it."""
        h = self.h
        p = table.params
        wf = np.ones(len(table)) if weight_factor is None else weight_factor
        nc_weight = (p["weight"] * wf).tolist()
        nc_delay = (p["delay"] if delay_override is None else np.asarray(delay_override)).tolist()
        population = table.edge_pop.source
        load(h)
        make, netcons = h.nd_event_netcon, self.netcons.hoc
        for conn in table.connections:
            raw = conn.sgid - table.source_offset
            times = spikes_by_node.get(raw)
            if times is None:
                continue
            if targets is not None and not _contains(targets, conn.tgid):
                continue
            if sources is not None and not _contains(sources, raw):
                continue
            times = times[times >= delay]   # the input's delay is a filter (contract §3.10)
            if not len(times):
                continue
            stim = None
            for r in range(conn.start, conn.stop):
                pp = row_pp[r]
                if pp is None:
                    continue
                if stim is None or self.sources.per_synapse:
                    stim = self.sources.get((input_name, population, raw), times)
                k = self.nc_type_index.get(pp.hname().split("[")[0], 0)
                make(stim, pp, nc_delay[r], nc_weight[r], 10, k, self.REPLAY_TYPE, netcons)
                self.n_events += len(times)


def _contains(sorted_ids: np.ndarray, value: int) -> bool:
    i = np.searchsorted(sorted_ids, value)
    return bool(i < len(sorted_ids) and sorted_ids[i] == value)
