"""Point-neuron populations (``type: point_process``) and their Exp2Syn-type synapses.

Template interface (hoc file ``T.hoc`` in the population's ``point_neuron_models_dir``, or its
``biophysical_neuron_models_dir`` when that is not set; ``model_template`` is ``hoc:T``):

- constructor ``T(raw_id, *extra)``: ``extra`` are the node's ``@dynamics:a``, ``@dynamics:b``,
  ... values when the hoc string ``T_NeededAttributes = "a;b"`` exists, else nothing;
- ``pointcell``: the object that emits the cell's spikes with ``net_event`` -- an
  ``ARTIFICIAL_CELL`` (``IntFire1``, ...) or a point process in the cell's soma (e.g. the
  driver's ``PointLIF``). Without it, spikes are detected on ``soma[0](0.5)`` voltage;
- optional section array ``soma`` (and SectionList ``all``): synapses, stimuli and reports act
  there. A template without sections is a pure artificial cell: its afferent edges deliver
  their events to ``pointcell`` directly, with weight ``conductance x weight_factor``.

Edges of type ``point_process`` and ``Exp2Syn_synapse`` (onto point or biophysical targets)
become NEURON ``Exp2Syn`` synapses: columns ``conductance`` (uS, the NetCon weight), ``delay``
(rounded to the time grid as for chemical edges), ``tau1``, ``tau2`` (ms) and ``erev`` (mV).
``tau1``/``tau2``/``erev`` are required only on the rows that make an Exp2Syn: edges into
artificial cells (IntFire1-like) do not need them (Allen-V1-style circuits omit them there),
nor do edge populations without simulated targets.
Location: ``afferent_section_id``/``_pos`` when present (point targets: id 0 = ``soma[0]``),
otherwise ``soma[0](0.5)``. Spike sources connect with ``pc.gid_connect``; nothing here
depends on the rank count (exact event times are exchanged, never compressed).
"""

from __future__ import annotations

import logging

import numpy as np

from ..errors import CircuitError
from .cells import Cell, load_templates
from .nodes import PopulationNodes

log = logging.getLogger(__name__)

POINT_NODE_TYPES = ("point_process",)
POINT_EDGE_TYPES = ("point_process", "Exp2Syn_synapse")
#: NaN default: checked per row by ``PointSynapseBuilder.check_columns`` (only Exp2Syn rows)
EXP2SYN_COLUMNS = {
    "weight": ("conductance", None),
    "delay": ("delay", None),
    "tau1": ("tau1", np.nan),
    "tau2": ("tau2", np.nan),
    "erev": ("erev", np.nan),
}
_EXP2SYN_ONLY = ("tau1", "tau2", "erev")


def is_point_population(pop_nodes: PopulationNodes) -> bool:
    return pop_nodes.info.type in POINT_NODE_TYPES


def is_artificial(cell) -> bool:
    """A point cell without sections: events go to its ``pointcell``."""
    return not hasattr(cell.hoc, "soma") and hasattr(cell.hoc, "pointcell")


def instantiate_point_population(h, pc, pop_nodes: PopulationNodes, settings,
                                 loader) -> list[Cell]:
    """Create this rank's cells of one point-neuron population and register their gids."""
    info = pop_nodes.info
    ids = pop_nodes.local_raw
    if len(ids) == 0:
        return []
    attrs = pop_nodes.attrs
    templates, dyn = load_templates(pop_nodes, loader)
    cells = []
    for i, raw in enumerate(ids):
        name = templates[i]
        gid = int(raw) + pop_nodes.offset
        extra = tuple(float(dyn[a][i]) for a in loader.needed_attributes[name])
        try:
            hoc_cell = getattr(h, name)(int(raw), *extra)
        except Exception as exc:  # hoc errors surface as RuntimeError
            raise CircuitError(f"Point-neuron template '{name}' failed for gid {gid} "
                               f"(population '{info.name}', node {raw}): {exc}") from exc
        if not hasattr(hoc_cell, "pointcell") and not hasattr(hoc_cell, "soma"):
            raise CircuitError(f"Point-neuron template '{name}' (population '{info.name}') "
                               f"exposes neither 'pointcell' nor a 'soma' section")
        cells.append(Cell(gid, int(raw), info.name, name, "", hoc_cell,
                          {k: v[i] for k, v in attrs.items()}))
    _register(h, pc, cells, settings)
    return cells


def _register(h, pc, cells, settings) -> None:
    seed = settings.run.ionchannel_seed
    threshold = settings.run.spike_threshold
    rank = int(pc.id())
    for cell in cells:  # ascending raw id
        hc = cell.hoc
        if hasattr(hc, "re_init_rng"):
            hc.re_init_rng(seed)
        if hasattr(hc, "pointcell"):
            nc = h.NetCon(hc.pointcell, None)
        else:
            sec = hc.soma[0]
            nc = h.NetCon(sec(0.5)._ref_v, None, sec=sec)
            nc.threshold = threshold
        pc.set_gid2node(cell.gid, rank)
        pc.cell(cell.gid, nc)
        cell.spike_detector = nc
        if hasattr(hc, "gid"):
            hc.gid = cell.gid


class PointSynapseBuilder:
    """Exp2Syn-type synapses (and direct events onto artificial cells), NetCons by gid."""

    def __init__(self, h, pc, settings, cells_by_gid: dict, instantiated_sources: set):
        from .offsets import population_hash_id

        self.h, self.pc = h, pc
        self.cells = cells_by_gid
        self.instantiated_sources = instantiated_sources
        self.threshold = settings.run.spike_threshold
        self._hash = population_hash_id
        self.synapses = []
        self.netcons = []
        self.skipped = 0

    def build(self, table, weight_factor=None, delay=None) -> list:
        """Row-aligned synapses (the artificial cell itself for section-less targets)."""
        h, pc = self.h, self.pc
        ep = table.edge_pop
        connect = ep.source in self.instantiated_sources or self._hash(ep.source) == 0
        p = table.params
        n = len(table)
        wf = np.ones(n) if weight_factor is None else np.asarray(weight_factor, float)
        nc_weight = (p["weight"] * wf).tolist()
        nc_delay = (p["delay"] if delay is None else np.asarray(delay)).tolist()
        tau1, tau2, erev = p["tau1"].tolist(), p["tau2"].tolist(), p["erev"].tolist()
        section_ids, xs = table.section_id.tolist(), table.x.tolist()
        row_pp = [None] * n
        for conn in table.connections:
            cell = self.cells[conn.tgid]
            artificial = is_artificial(cell)
            for r in range(conn.start, conn.stop):
                if artificial:
                    pp = cell.hoc.pointcell
                else:
                    sec = cell.section_by_id(section_ids[r])
                    if sec is None:
                        self.skipped += 1
                        continue
                    x = xs[r] if xs[r] == xs[r] else 0.5
                    pp = h.Exp2Syn(x, sec=sec)
                    pp.tau1, pp.tau2, pp.e = tau1[r], tau2[r], erev[r]
                    self.synapses.append(pp)
                row_pp[r] = pp
                if connect:
                    nc = pc.gid_connect(conn.sgid, pp)
                    nc.delay = nc_delay[r]
                    nc.weight[0] = nc_weight[r]
                    nc.threshold = self.threshold
                    self.netcons.append(nc)
        return row_pp

    def check_columns(self, table) -> None:
        """tau1/tau2/erev present (and taus > 0) on every row that makes an Exp2Syn."""
        p = table.params
        needs = np.ones(len(table), bool)
        for conn in table.connections:
            if is_artificial(self.cells[conn.tgid]):
                needs[conn.start:conn.stop] = False
        if not needs.any():
            return
        where = f"{table.edge_pop.edges_file}: population '{table.edge_pop.name}'"
        for column in _EXP2SYN_ONLY:
            missing = np.flatnonzero(needs & np.isnan(p[column]))
            if len(missing):
                r = int(missing[0])
                raise CircuitError(f"{where}: column '{column}' is missing (or NaN), needed by "
                                   f"the Exp2Syn synapses onto gid {int(table.tgid[r])} "
                                   f"(targets with sections; artificial cells do not need it)")
        bad = np.flatnonzero(needs & ((p["tau1"] <= 0) | (p["tau2"] <= 0)))
        if len(bad):
            r = int(bad[0])
            raise CircuitError(f"{table.edge_pop.edges_file}: population "
                               f"'{table.edge_pop.name}': tau1/tau2 must be > 0 (row onto gid "
                               f"{int(table.tgid[r])} has tau1={p['tau1'][r]}, "
                               f"tau2={p['tau2'][r]})")


__all__ = [
    "EXP2SYN_COLUMNS",
    "POINT_EDGE_TYPES",
    "POINT_NODE_TYPES",
    "PointSynapseBuilder",
    "instantiate_point_population",
    "is_artificial",
    "is_point_population",
]
