"""Create synapse point processes and NetCons from a SynapseTable (contract §3.4–§3.7)."""

from __future__ import annotations

import logging
import math

import numpy as np

from ..circuit.modifications import has_number
from ..circuit.offsets import population_hash_id
from ..errors import CircuitError, ConfigError, MechanismError
from .edge_checks import section_problem
from .edges import SynapseTable
from .hoc_objects import ObjectList, load, point_process_factory

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
        # the default mechanisms are checked when an edge needs them: a circuit whose chemical
        # edges all carry a modoverride (e.g. "Exp2Syn") may lack them
        self.nc_index = {m: _nc_type_index(h, m) for m in (EXC_MECH, INH_MECH)}
        load(h)
        # keep references (NEURON frees unreferenced point processes), in hoc Lists: a
        # Python list would hold a wrapper per object (hoc_objects.py)
        self.synapses = ObjectList(h)
        self.netcons = ObjectList(h)
        self.skipped = 0
        self._conductance_field = {}
        # connection overrides: modoverride helpers
        self.random_seed = run.random_seed
        self.helpers = SynapseHelpers(h)

    def build(self, table: SynapseTable, weight_factor=None, delay_override=None,
              helpers=None) -> list:
        """Create the point processes (and presynaptic NetCons); return them row-aligned.

        ``helpers``: optional per-row modoverride name (None = default helper), contract §3.4.
        """
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
        threshold, randomize_gaba = self.threshold, self.randomize_gaba
        set_conductance, exc_cls, inh_cls = {}, None, None
        if n and (helpers is None or any(helper is None for helper in helpers)):
            for mech in (EXC_MECH, INH_MECH):
                if not hasattr(h, mech):
                    raise MechanismError(f"The mechanism library lacks the synapse mechanism "
                                         f"'{mech}' needed by the chemical edges of "
                                         f"'{ep.name}' (no modoverride covers them)")
            set_conductance = {m: self._has_conductance(m) for m in (EXC_MECH, INH_MECH)}
            exc_cls, inh_cls = (point_process_factory(h, m) for m in (EXC_MECH, INH_MECH))
        keep_synapse, keep_netcon = self.synapses.hoc.append, self.netcons.hoc.append
        row_pp = [None] * n
        skipped_before = self.skipped
        for conn in table.connections:
            cell = self.cells[conn.tgid]
            tgid, sgid = conn.tgid, conn.sgid
            for r in range(conn.start, conn.stop):
                sec = cell.section_by_id(section_ids[r])
                if sec is None:
                    if section_ids[r] >= cell.n_section_ids:   # not a removed axon section
                        raise section_problem(f"{ep.edges_file}: population '{ep.name}'",
                                              tgid, section_ids[r], cell.n_section_ids)
                    self.skipped += 1
                    continue
                x = xs[r]
                if math.isnan(x):  # segment form: needs the section's 3D points
                    x = segment_fraction(h, sec, *table.segment[r])
                sid = synapse_ids[r]
                if helpers is not None and helpers[r] is not None:   # modoverride (contract §3.4)
                    pp = self._helper_synapse(helpers[r], table, r, tgid, sec, x, src_hash,
                                              tgt_hash)
                else:
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
                keep_synapse(pp)
                if connect:
                    nc = pc.gid_connect(sgid, pp)
                    nc.delay = nc_delay[r]
                    nc.weight[0] = nc_weight[r]
                    nc.threshold = threshold
                    keep_netcon(nc)
        check_skipped(table, self.skipped - skipped_before)
        return row_pp

    def _has_conductance(self, mech: str) -> bool:
        """Whether the mechanism has a ``conductance`` field (probed once on a throw-away)."""
        if mech not in self._conductance_field:
            probe_sec = self.h.Section(name="nd_probe")
            self._conductance_field[mech] = hasattr(getattr(self.h, mech)(0.5, sec=probe_sec),
                                                    "conductance")
            self.h.delete_section(sec=probe_sec)
        return self._conductance_field[mech]

    def _helper_synapse(self, name, table, r, tgid, sec, x, src_hash, tgt_hash):
        """A modoverride synapse: ``<name>Helper(gid+1, params, x, synapse_id, seed, src, dst)``
        made in ``sec``; then ``conductance`` is set as for every synapse (contract §3.4)."""
        h = self.h
        cls = self.helpers.template(name)
        params = self.helpers.params(table, r, x)
        sid = int(table.synapse_id[r])
        sec.push()
        try:
            helper = cls(tgid + 1, params, x, sid, self.random_seed, src_hash, tgt_hash)
        except RuntimeError as exc:
            raise CircuitError(f"{name}Helper failed for gid {tgid} (synapse {sid} of "
                               f"'{table.edge_pop.name}'): {exc}") from exc
        finally:
            h.pop_section()
        pp = getattr(helper, "synapse", None)
        if pp is None or not hasattr(pp, "get_segment"):
            raise CircuitError(f"{name}Helper must expose its point process as 'synapse'")
        self.helpers.objects.append(helper)
        mech = pp.hname().split("[")[0]
        if mech not in self.nc_index:
            self.nc_index[mech] = _nc_type_index(h, mech)
        if self._has_conductance(mech):
            pp.conductance = float(table.params["weight"][r])
        return pp

    def _gaba_rise_time(self, tgid, sid, stream3):
        rng = self.h.Random()
        rng.Random123(tgid + 251, sid + 100, stream3 + 450)
        rng.lognormal(0.2, 0.1)  # draws and discards one value (contract §3.7, §3.8)
        return rng.repick()


def segment_fraction(h, sec, ipt, off) -> float:
    """Segment-form location (contract §3.2)."""
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


def check_skipped(table: SynapseTable, skipped: int):
    """Synapses on sections the cell no longer has (replaced axon): skipped, said once per
    table and rank (ids beyond the morphology are an error, raised in ``build``)."""
    if skipped:
        log.warning("%s: population '%s': %d synapse(s) on sections removed by axon "
                    "replacement were skipped on this rank", table.edge_pop.edges_file,
                    table.edge_pop.name, skipped)


# ---- connection overrides, NEURON side (the plan is connectivity/overrides.py) -----
class SynapseHelpers:
    """modoverride helpers: hoc template ``<Name>Helper`` from ``<Name>Helper.hoc``
    (contract §3.4, §6.1).

    A helper is constructed in the synapse's section as ``(gid + 1, params, x, synapse_id,
    run.random_seed, src_pop_id, dst_pop_id)`` and exposes its point process as ``synapse``.
    ``params`` carries the edge fields under ND's names (``sgid, delay, weight, U, D, F, DTC,
    synType, nrrp, u_hill_coefficient, conductance_ratio, maskValue, location``) plus every column
    listed in the hoc string ``<Name>Helper_NeededAttributes`` ("a;b;c").
    """

    _FIELDS = (("delay", "delay"), ("weight", "weight"), ("U", "U"), ("D", "D"), ("F", "F"),
               ("DTC", "DTC"), ("synType", "syn_type"), ("nrrp", "nrrp"),
               ("u_hill_coefficient", "u_hill"), ("conductance_ratio", "cond_ratio"))

    def __init__(self, h):
        self.h = h
        self.needed: dict[str, list[str]] = {}
        self.objects = []   # helper instances (they own their synapse)

    def load(self, name: str) -> list[str]:
        """Load ``<name>Helper.hoc`` once; return its needed edge columns."""
        if name not in self.needed:
            from .overrides import helper_file

            h = self.h
            path = helper_file(name)
            if path is None or not h.load_file(path):
                raise MechanismError(f"modoverride '{name}': cannot load {name}Helper.hoc from "
                                     f"the HOC search path")
            if not h.name_declared(f"{name}Helper"):
                raise MechanismError(f"{path} does not define a template named '{name}Helper'")
            needed = []
            if h.name_declared(f"{name}Helper_NeededAttributes") == 4:
                text = str(getattr(h, f"{name}Helper_NeededAttributes"))
                needed = [a.strip() for a in text.split(";") if a.strip()]
            self.needed[name] = needed
        return self.needed[name]

    def template(self, name: str):
        self.load(name)
        return getattr(self.h, f"{name}Helper")

    def params(self, table, r: int, x: float):
        from types import SimpleNamespace

        p = table.params
        values = {nd: (float(p[ours][r]) if ours in p else 0.0) for nd, ours in self._FIELDS}
        values.update(sgid=int(table.sgid[r]), maskValue=-1.0, location=float(x))
        for columns in self.needed.values():
            for column in columns:
                if column in p:
                    values[column] = float(p[column][r])
        return SimpleNamespace(**values)


def _check_statement(h, override, stmt, pp, mech) -> None:
    where = override.where("synapse_configure")
    if stmt.owner is None:   # a mechanism global, e.g. cao_CR_GluSynapse = 1.2
        if not stmt.attr.endswith(f"_{mech}") or not has_number(h, stmt.attr):
            raise ConfigError(f"{where}: '{stmt.text}': '{stmt.attr}' is not a global of the "
                              f"synapse mechanism {mech}")
        return
    for attr in sorted(stmt.attributes):
        if not has_number(pp, attr):
            raise ConfigError(f"{where}: '{stmt.text}': synapse mechanism {mech} has no "
                              f"attribute '{attr}'")


def configure_synapses(h, table, row_pp, config) -> None:
    """Run the overrides' ``synapse_configure`` statements on each synapse of a connection, in
    override order, then give it its delayed weight changes (``setup_delay_vecs``,
    contract §3.6)."""
    checked = set()
    for c, conn in enumerate(table.connections):
        overrides, delayed = config.configure[c], config.delayed[c]
        if not overrides and not delayed:
            continue
        vecs = None
        if delayed:
            vecs = (h.Vector([d[0] for d in delayed]), h.Vector([d[1] for d in delayed]))
        for r in range(conn.start, conn.stop):
            pp = row_pp[r]
            if pp is None:
                continue
            mech = pp.hname().split("[")[0]
            for o in overrides:
                for stmt in o.synapse_configure:
                    key = (o.index, stmt.text, mech)
                    if key not in checked:
                        _check_statement(h, o, stmt, pp, mech)
                        checked.add(key)
                    try:
                        if stmt.owner is None:
                            setattr(h, stmt.attr, stmt.value(pp))
                        else:
                            stmt.apply(pp)
                    except (ZeroDivisionError, OverflowError, ValueError, TypeError,
                            RuntimeError) as exc:
                        raise ConfigError(f"{o.where('synapse_configure')}: '{stmt.text}' "
                                          f"failed on {mech} (gid {conn.tgid}): {exc}") from exc
            if vecs is not None:
                if not hasattr(pp, "setup_delay_vecs"):
                    o = delayed[0][2]
                    raise ConfigError(f"{o.where('delay')}: synapse mechanism {mech} (edge "
                                      f"population '{table.edge_pop.name}') has no "
                                      f"setup_delay_vecs: delayed weight changes are "
                                      f"impossible on it")
                pp.setup_delay_vecs(*vecs)


__all__ = [
    "CircuitError",
    "SynapseBuilder",
    "SynapseHelpers",
    "configure_synapses",
    "segment_fraction",
]
