"""Neuromodulatory edges (type ``neuromodulatory``; contract §3.5, §6.1).

A neuromodulatory edge creates no synapse of its own: it acts on the existing synapse of its
target cell that is nearest to the edge's location -- same section, smallest distance between the
synapse's position and the edge's ``afferent_section_pos`` (the first created wins a tie). Edges
whose section holds no synapse are skipped (counted, one warning). Its events come from replay
(``synapse_replay`` inputs whose spike file has the edge's source population): one VecStim per
(input, source node) and a NetCon onto the chosen synapse with

- delay: the edge ``delay`` rounded to the grid, or the override's ``synapse_delay_override``;
- ``weight[0]`` = 1 if the connection's weight factor is > 0, else 0;
- ``weight[1]`` = ``neuromod_strength`` (edge column; ``neuromodulation_strength`` override);
- ``weight[2]`` = ``neuromod_dtc`` (edge column; ``neuromodulation_dtc`` override);
- ``weight[nc_type_param_<Mechanism>]`` = 10 (nc_type "neuromodulatory"), threshold 10.

The synapse mechanism must declare ``nc_type_param`` (otherwise it could not tell these events
from presynaptic spikes) and have at least three NetCon weights; anything else is an error.
Synapses are only looked for after every other edge population is built, so the order of the
populations in the circuit config does not matter.
"""

from __future__ import annotations

import numpy as np

from ..errors import CircuitError
from .hoc_objects import SpikeTrainSources
from .synapses import _nc_type_index

NEUROMOD_TYPE = 10
NEUROMOD_COLUMNS = {
    "delay": ("delay", None),
    "neuromod_strength": ("neuromod_strength", None),
    "neuromod_dtc": ("neuromod_dtc", None),
}


class NeuromodulationBuilder:
    def __init__(self, h, cells_by_gid: dict, synapse_lists, per_synapse: bool = False):
        """``synapse_lists``: the point-process lists of the synapse builders (creation order);
        ``per_synapse``: a VecStim per NetCon (checkpoints, as ``ReplayBuilder``)."""
        self.h = h
        self.cells = cells_by_gid
        self.synapse_lists = synapse_lists
        self._by_section = None
        self._nc_index: dict[str, int] = {}
        self.sources = SpikeTrainSources(h, per_synapse)
        self.netcons = []
        self.skipped = 0

    def _index(self):
        """section name -> [(x, pp)] of every synapse, in creation order."""
        if self._by_section is None:
            index = {}
            for lst in self.synapse_lists:
                for pp in lst:
                    seg = pp.get_segment()
                    index.setdefault(seg.sec.name(), []).append((seg.x, pp))
            self._by_section = index
        return self._by_section

    def nearest(self, sec, x):
        best, best_d = None, None
        for sx, pp in self._index().get(sec.name(), ()):
            d = abs(sx - x)
            if best_d is None or d < best_d:
                best, best_d = pp, d
        return best

    def build(self, table, config, replays) -> int:
        """NetCons for one neuromodulatory edge population. ``replays``: objects with ``name``,
        ``delay``, ``spikes`` (population -> raw id -> times) and optional ``targets`` gids."""
        h = self.h
        ep = table.edge_pop
        p = table.params
        strength = np.where(np.isnan(config.neuromod_strength), p["neuromod_strength"],
                            config.neuromod_strength).tolist()
        dtc = np.where(np.isnan(config.neuromod_dtc), p["neuromod_dtc"],
                       config.neuromod_dtc).tolist()
        active = (config.weight_factor > 0).tolist()
        delays = np.asarray(config.delay).tolist()
        section_ids, xs = table.section_id.tolist(), table.x.tolist()
        made = 0
        for stim_in in replays:
            spikes = stim_in.spikes.get(ep.source)
            if not spikes:
                continue
            targets = getattr(stim_in, "targets", None)
            for conn in table.connections:
                raw = conn.sgid - table.source_offset
                times = spikes.get(raw)
                if times is None:
                    continue
                if targets is not None and not np.isin(conn.tgid, targets):
                    continue
                times = times[times >= stim_in.delay]
                if not len(times):
                    continue
                cell = self.cells[conn.tgid]
                for r in range(conn.start, conn.stop):
                    sec = cell.section_by_id(section_ids[r])
                    pp = self.nearest(sec, xs[r] if xs[r] == xs[r] else 0.5) \
                        if sec is not None else None
                    if pp is None:
                        self.skipped += 1
                        continue
                    k = self._type_index(pp, ep)
                    stim = self.sources.get((stim_in.name, ep.source, raw), times)
                    nc = h.NetCon(stim, pp)
                    nc.delay = delays[r]
                    nc.weight[0] = 1.0 if active[r] else 0.0
                    nc.weight[1] = strength[r]
                    nc.weight[2] = dtc[r]
                    nc.weight[k] = NEUROMOD_TYPE
                    nc.threshold = 10
                    self.netcons.append(nc)
                    made += 1
        return made

    def _type_index(self, pp, ep) -> int:
        mech = pp.hname().split("[")[0]
        if mech not in self._nc_index:
            k = _nc_type_index(self.h, mech)
            n_weights = int(self.h.NetCon(None, pp).wcnt())
            if k <= 0 or n_weights < 3 or k >= n_weights:
                raise CircuitError(f"{ep.edges_file}: neuromodulatory population '{ep.name}': "
                                   f"synapse mechanism {mech} cannot receive neuromodulation "
                                   f"(needs a GLOBAL nc_type_param and NetCon weights "
                                   f"[weight, strength, dtc, ..., nc_type]; it has "
                                   f"nc_type_param={k}, {n_weights} weights)")
            self._nc_index[mech] = k
        return self._nc_index[mech]


__all__ = ["NEUROMOD_COLUMNS", "NEUROMOD_TYPE", "NeuromodulationBuilder"]
