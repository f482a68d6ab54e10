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
        n = len(table)
        # plain Python lists: indexing numpy scalars costs more than the NEURON calls
        use, dep, fac = (np.abs(p[k]).tolist() for k in ("U", "D", "F"))
        dtc, nrrp, ratio = p["DTC"].tolist(), p["nrrp"].tolist(), p["cond_ratio"].tolist()
        weight = p["weight"].tolist()
        wf = np.ones(n) if weight_factor is None else np.asarray(weight_factor, float)
        nc_weight = (p["weight"] * wf).tolist()
        nc_delay = (p["delay"] if delay_override is None else np.asarray(delay_override)).tolist()
        excitatory = (p["syn_type"] >= 100).tolist()
        section_ids, xs = table.section_id.tolist(), table.x.tolist()
        synapse_ids = table.synapse_id.tolist()
        set_conductance = {m: self._has_conductance(m) for m in (EXC_MECH, INH_MECH)}
        threshold, randomize_gaba = self.threshold, self.randomize_gaba
        exc_cls, inh_cls = h.ProbAMPANMDA_EMS, h.ProbGABAAB_EMS
        synapses, netcons = self.synapses, self.netcons
        row_pp = [None] * n
        for conn in table.connections:
            cell = self.cells[conn.tgid]
            tgid, sgid = conn.tgid, conn.sgid
            for r in range(conn.start, conn.stop):
                sec = cell.section_by_id(section_ids[r])
                if sec is None:
                    self.skipped += 1
                    continue
                x = xs[r]
                if x != x:  # NaN: segment form, needs the section's 3D points
                    x = segment_fraction(h, sec, *table.segment[r])
                sid = synapse_ids[r]
                if excitatory[r]:
                    pp = exc_cls(x, sec=sec)
                    pp.tau_d_AMPA = dtc[r]
                    mech = EXC_MECH
                else:
                    pp = inh_cls(x, sec=sec)
                    if randomize_gaba:
                        pp.tau_r_GABAA = self._gaba_rise_time(tgid, sid, stream3)
                    pp.tau_d_GABAA = dtc[r]
                    mech = INH_MECH
                pp.Use = use[r]
                pp.Dep = dep[r]
                pp.Fac = fac[r]
                if nrrp[r] >= 0:
                    pp.Nrrp = nrrp[r]
                pp.setRNG(tgid + 251, sid + 100, stream3 + 300)
                pp.synapseID = sid
                if set_conductance[mech]:
                    pp.conductance = weight[r]
                if ratio[r] >= 0:
                    if mech is EXC_MECH:
                        pp.NMDA_ratio = ratio[r]
                    else:
                        pp.GABAB_ratio = ratio[r]
                row_pp[r] = pp
                synapses.append(pp)
                if connect:
                    nc = pc.gid_connect(sgid, pp)
                    nc.delay = nc_delay[r]
                    nc.weight[0] = nc_weight[r]
                    nc.threshold = threshold
                    netcons.append(nc)
        return row_pp

    def _has_conductance(self, mech: str) -> bool:
        """Whether the mechanism has a ``conductance`` field (probed once on a throw-away)."""
        if mech not in self._conductance_field:
            probe_sec = self.h.Section(name="nd_probe")
            self._conductance_field[mech] = hasattr(getattr(self.h, mech)(0.5, sec=probe_sec),
                                                    "conductance")
            self.h.delete_section(sec=probe_sec)
        return self._conductance_field[mech]

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
