"""Gap junctions: ``electrical`` edge populations (contract §7).

Each edge whose target is local and whose source is simulated becomes one ``Gap`` point process
(core/mod/Gap.mod, ``i = (v - vgap)·g·1e-3`` nA, ``g`` = the edge ``conductance`` in nS) at the
edge's location (contract §3.2 rules). The voltage at that location is published under the edge's
``afferent_junction_id`` (``pc.source_var``) and the gap's ``vgap`` receives the voltage published
under its ``efferent_junction_id`` (``pc.target_var``). Ids are used raw. Both directions of a
junction must therefore be present; an id nobody publishes, or one published twice, is an error
found before NEURON sees it (checked over all ranks).

Connection overrides do not apply to gap junctions. Unlike ND (contract §7, §10.6), a run without a
``node_set`` takes the whole source population as the source filter, not the rank-local cells.
"""

from __future__ import annotations

import math

import numpy as np

from ..config.issues import cap_list
from ..errors import CircuitError, MechanismError
from .overrides import filter_connections
from .synapses import segment_fraction

GAP_COLUMNS = {
    "weight": ("conductance", None),
    "afferent_junction_id": ("afferent_junction_id", None),
    "efferent_junction_id": ("efferent_junction_id", None),
}


def simulated_sources(table, source_selected: np.ndarray):
    """Only the edges whose source is in the simulation node set (sorted raw ids)."""
    src_raw = np.array([c.sgid for c in table.connections], np.int64) - table.source_offset
    return filter_connections(table, np.isin(src_raw, source_selected))


class GapJunctionBuilder:
    """Creates the Gap objects per population, then wires all junction ids at once."""

    def __init__(self, h, pc, cells_by_gid: dict, circuit_path):
        if not hasattr(h, "Gap"):
            raise MechanismError("the mechanism library lacks the point process 'Gap' "
                                 "(core/mod/Gap.mod), needed by electrical edges")
        self.h, self.pc = h, pc
        self.cells = cells_by_gid
        self.circuit_path = circuit_path
        self.gaps = []        # (gap, sec, x, afferent id, efferent id, tgid, sgid, edge pop)
        self.skipped = 0

    def build(self, table) -> None:
        """Gaps for one electrical edge population, per target, sources descending (contract §7)."""
        h = self.h
        p = table.params
        g = p["weight"].tolist()
        aff = p["afferent_junction_id"].astype(np.int64).tolist()
        eff = p["efferent_junction_id"].astype(np.int64).tolist()
        section_ids, xs = table.section_id.tolist(), table.x.tolist()

        for conn in table.connections:
            cell = self.cells[conn.tgid]
            for r in range(conn.start, conn.stop):
                sec = cell.section_by_id(section_ids[r])
                if sec is None:
                    self.skipped += 1
                    continue
                x = xs[r]
                if math.isnan(x):   # segment form (contract §3.2)
                    x = segment_fraction(h, sec, *table.segment[r])
                gap = h.Gap(x, sec=sec)
                gap.g = g[r]
                self.gaps.append((gap, sec, x, aff[r], eff[r], conn.tgid, conn.sgid,
                                  table.edge_pop))

    def connect(self, comm) -> int:
        """Check the junction ids over all ranks, then register source/target variables."""
        published = np.array([e[3] for e in self.gaps], np.int64)
        wanted = np.array([e[4] for e in self.gaps], np.int64)
        if comm.Get_size() > 1:
            everything = np.concatenate(comm.allgather(published))
        else:
            everything = published
        ids, counts = np.unique(everything, return_counts=True)
        dup = ids[counts > 1]
        problems = []
        if len(dup):
            mine = [e for e in self.gaps if e[3] in set(dup.tolist())]
            where = self._where(mine[0][7]) if mine else f"{self.circuit_path}: electrical edges"
            problems.append(f"{where}: afferent_junction_id used by more than one edge: "
                            f"{cap_list(dup.tolist())}")
        orphans = [e for e, w in zip(self.gaps, wanted) if not _contains(ids, w)]
        if orphans:
            first = orphans[0]
            problems.append(
                f"{self._where(first[7])}: gap junction(s) without partner: efferent_junction_id "
                f"{cap_list(sorted({e[4] for e in orphans}))} is not the afferent_junction_id "
                f"of any simulated edge (first: edge onto gid {first[5]} from gid {first[6]}). "
                f"Every junction needs both directions, and both cells must be simulated")
        if problems:
            raise CircuitError("\n".join(problems))
        pc = self.pc
        for gap, sec, x, aff, eff, *_ in self.gaps:
            pc.source_var(sec(x)._ref_v, aff, sec=sec)
            pc.target_var(gap, gap._ref_vgap, eff)
        return len(self.gaps)

    def _where(self, ep) -> str:
        return (f"{self.circuit_path}: networks.edges: population '{ep.name}' "
                f"({ep.edges_file})")


def _contains(sorted_ids: np.ndarray, value: int) -> bool:
    i = np.searchsorted(sorted_ids, value)
    return bool(i < len(sorted_ids) and sorted_ids[i] == value)


__all__ = ["GAP_COLUMNS", "GapJunctionBuilder", "simulated_sources"]
