"""Create synapse point processes and NetCons from a SynapseTable (compatibility §3.4–§3.7)."""

from __future__ import annotations

import logging

import numpy as np

from ..circuit.offsets import population_hash_id
from ..errors import CircuitError, MechanismError
from .edges import SynapseTable

log = logging.getLogger(__name__)

EXC_MECH, INH_MECH = "ProbAMPANMDA_EMS", "ProbGABAAB_EMS"


def _nc_type_index(h, mech: str) -> int:
    name = f"nc_type_param_{mech}"
    return int(getattr(h, name)) if h.name_declared(name) else 0


class SynapseBuilder:
    """Holds what the per-synapse loop needs; one instance per run."""

    def __init__(self, h, pc, settings, cells_by_gid: dict, instantiated_sources: set):
        self.h, self.pc = h, pc
        self.cells = cells_by_gid
        self.instantiated_sources = instantiated_sources
        run = settings.run
        self.synapse_seed = run.synapse_seed
        self.threshold = run.spike_threshold
        self.randomize_gaba = bool(settings.conditions.randomize_gaba_rise_time)
        for mech in (EXC_MECH, INH_MECH):
            if not hasattr(h, mech):
                raise MechanismError(f"The mechanism library lacks the synapse mechanism "
                                     f"'{mech}' needed by chemical edges")
        self.nc_index = {m: _nc_type_index(h, m) for m in (EXC_MECH, INH_MECH)}
        self.synapses = []   # keep references (NEURON frees unreferenced point processes)
        self.netcons = []
        self.skipped = 0
        self._conductance_field = {}

    def build(self, table: SynapseTable, weight_factor=None, delay_override=None) -> list:
        """Create the point processes (and presynaptic NetCons); return them row-aligned."""
        h, pc = self.h, self.pc
        ep = table.edge_pop
        src_hash, tgt_hash = population_hash_id(ep.source), population_hash_id(ep.target)
        stream3 = src_hash * 65536 + tgt_hash + self.synapse_seed
        connect = ep.source in self.instantiated_sources or src_hash == 0
        p = table.params
        weight, U, D, F, DTC = p["weight"], p["U"], p["D"], p["F"], p["DTC"]
        syn_type, nrrp, delay, ratio = p["syn_type"], p["nrrp"], p["delay"], p["cond_ratio"]
        threshold = self.threshold
        wf = np.ones(len(table)) if weight_factor is None else weight_factor
        row_pp = [None] * len(table)
        for conn in table.connections:
            cell = self.cells[conn.tgid]
            for r in range(conn.start, conn.stop):
                sec = cell.section_by_id(int(table.section_id[r]))
                if sec is None:
                    self.skipped += 1
                    continue
                x = table.x[r]
                if x != x:  # NaN: segment form, needs the section's 3D points
                    x = segment_fraction(h, sec, *table.segment[r])
                sid = int(table.synapse_id[r])
                tgid = conn.tgid
                excitatory = syn_type[r] >= 100
                if excitatory:
                    pp = h.ProbAMPANMDA_EMS(x, sec=sec)
                    pp.tau_d_AMPA = DTC[r]
                else:
                    pp = h.ProbGABAAB_EMS(x, sec=sec)
                    if self.randomize_gaba:
                        pp.tau_r_GABAA = self._gaba_rise_time(tgid, sid, stream3)
                    pp.tau_d_GABAA = DTC[r]
                pp.Use = abs(U[r])
                pp.Dep = abs(D[r])
                pp.Fac = abs(F[r])
                if nrrp[r] >= 0:
                    pp.Nrrp = nrrp[r]
                pp.setRNG(tgid + 251, sid + 100, stream3 + 300)
                pp.synapseID = sid
                if self._has_conductance(pp):
                    pp.conductance = weight[r]
                if ratio[r] >= 0:
                    if excitatory:
                        pp.NMDA_ratio = ratio[r]
                    else:
                        pp.GABAB_ratio = ratio[r]
                row_pp[r] = pp
                self.synapses.append(pp)
                if connect:
                    nc = pc.gid_connect(conn.sgid, pp)
                    nc.delay = delay_override[r] if delay_override is not None else delay[r]
                    nc.weight[0] = weight[r] * wf[r]
                    nc.threshold = threshold
                    self.netcons.append(nc)
        return row_pp

    def _has_conductance(self, pp) -> bool:
        kind = pp.hname().split("[")[0]
        if kind not in self._conductance_field:
            self._conductance_field[kind] = hasattr(pp, "conductance")
        return self._conductance_field[kind]

    def _gaba_rise_time(self, tgid, sid, stream3):
        rng = self.h.Random()
        rng.Random123(tgid + 251, sid + 100, stream3 + 450)
        rng.lognormal(0.2, 0.1)  # draws and discards one value (§3.7, §3.8)
        return rng.repick()


def segment_fraction(h, sec, ipt, off) -> float:
    """Segment-form location (compatibility §3.2)."""
    ipt, off = int(ipt), max(float(off), 0.0)
    n3d = int(h.n3d(sec=sec))
    flipped = h.section_orientation(sec=sec) == 1
    if flipped:
        ipt, off = n3d - 1 - ipt, -off
    if ipt < n3d:
        x = min(max((h.arc3d(ipt, sec=sec) + off) / sec.L, 1e-7), 0.9999999)
    else:
        x = 0.5
    return 1 - x if flipped else x


def check_skipped(builder: SynapseBuilder, table: SynapseTable):
    if builder.skipped:
        log.warning("%s: %d synapse(s) point at sections that do not exist (e.g. removed axon) "
                    "and were skipped", table.edge_pop.name, builder.skipped)


__all__ = ["SynapseBuilder", "segment_fraction", "CircuitError"]
