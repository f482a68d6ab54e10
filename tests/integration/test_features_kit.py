"""Tiny SONATA circuits for the circuit-feature tests (issue 7): writers, templates, test mods.

Imported by ``test_features_*.py`` (integration and scientific); it holds no tests itself.
Cells are single compartments with analytically known properties: ``Ball`` (passive soma,
area 1000 um2, cm 1 uF/cm2, g_pas 1e-4 S/cm2 -> C = 10 pF, gL = 1 nS, tau_m = 10 ms),
``BallDend`` (the same plus a 3-segment dendrite), ``BallNa`` (Ball + the minicol NaHH/KdrHH
channels: fires on current injection, TTX-sensitive), and the point neurons ``LIFCell``
(passive soma + the driver's PointLIF) and ``IFCell`` (NEURON's IntFire1, no section).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import libsonata
import numpy as np
import pytest

from neurodamus import paths
from tests.helpers import base_env, run_neurodamus

BALL_DIAM = 17.841241161527712   # L = diam: area = pi d^2 = 1000 um2
AREA_UM2 = np.pi * BALL_DIAM ** 2
CM, G_PAS, E_PAS = 1.0, 1e-4, -70.0

_LISTS = """
    all = new SectionList()
    somatic = new SectionList()
    axonal = new SectionList()
    basal = new SectionList()
    apical = new SectionList()
    synlist = new List()
    synHelperList = new List()
"""
_BALL_SOMA = f"""
    soma[0] {{
        L = {BALL_DIAM}
        diam = {BALL_DIAM}
        nseg = 1
        cm = {CM}
        Ra = 100
        insert pas
        g_pas = {G_PAS}
        e_pas = {E_PAS}
        v(0.0001) = 0
        all.append()
        somatic.append()
    }}
"""
_PUBLIC = ("public init, gid, soma, {dend}all, somatic, axonal, basal, apical, nSecAll, "
           "nSecAxonalOrig, synlist, synHelperList, re_init_rng, clear\n"
           "objref all, somatic, axonal, basal, apical, synlist, synHelperList\n")


def _ball(name, extra_soma="", dend=False):
    dend_block = """
    dend[0] {
        L = 200
        diam = 1
        nseg = 3
        cm = 1
        Ra = 100
        insert pas
        g_pas = 1e-4
        e_pas = -70
        v(0.0001) = 1
        all.append()
        basal.append()
    }
    connect dend[0](0), soma[0](1)
""" if dend else ""
    return f"""// {name}: test cell of tests/integration/test_features_kit.py
begintemplate {name}
{_PUBLIC.format(dend="dend, " if dend else "")}
create soma[1]{", dend[1]" if dend else ""}
proc init() {{
    gid = $1
{_LISTS}
{_BALL_SOMA}
    soma[0] {{ {extra_soma} }}
{dend_block}
    nSecAll = {2 if dend else 1}
    nSecAxonalOrig = 0
}}
proc re_init_rng() {{ }}
proc clear() {{ }}
endtemplate {name}
"""


TEMPLATES = {
    "Ball": _ball("Ball"),
    "BallDend": _ball("BallDend", dend=True),
    "BallNa": _ball("BallNa", "insert NaHH gbar_NaHH = 0.05 vt_NaHH = -56 insert KdrHH "
                              "gbar_KdrHH = 0.02 vt_KdrHH = -56 ena = 50 ek = -90"),
    "LIFCell": f"""// LIFCell: point neuron = passive soma + PointLIF (driver mechanism)
begintemplate LIFCell
public init, gid, soma, all, pointcell, re_init_rng
objref all, pointcell
create soma[1]
proc init() {{
    gid = $1
    all = new SectionList()
    soma[0] {{
        L = {BALL_DIAM}
        diam = {BALL_DIAM}
        nseg = 1
        cm = 1
        insert pas
        g_pas = 1e-4
        e_pas = -70
        all.append()
        pointcell = new PointLIF(0.5)
    }}
    pointcell.vthresh = -55
    pointcell.vreset = -70
    pointcell.trefrac = 3
}}
proc re_init_rng() {{ }}
endtemplate LIFCell
""",
    "IFCell": """// IFCell: artificial point neuron (IntFire1), no section
begintemplate IFCell
public init, gid, pointcell
objref pointcell
proc init() {
    gid = $1
    pointcell = new IntFire1()
    pointcell.tau = 10
    pointcell.refrac = 5
}
endtemplate IFCell
""",
}

#: a synapse that tells neuromodulatory events apart (nc_type 10) and shows them as nm_level
NMSYN_MOD = """COMMENT
NMSyn: test synapse of tests/integration/test_features_kit.py. Presynaptic events add
weight (uS) to an exponentially decaying conductance (tau). Neuromodulatory events
(nc_type 10, weight vector [w, strength, dtc, nc_type]) set nm_level = strength, which then
decays with time constant dtc. The empty NET_RECEIVE INITIAL block keeps weight[1..3] as the
driver set them (NEURON zeroes them at finitialize otherwise).
ENDCOMMENT
NEURON {
    POINT_PROCESS NMSyn
    RANGE tau, e, i, g, synapseID, selected_for_report, conductance
    RANGE nm_level, nm_amp, nm_tau, nm_t, nm_events
    GLOBAL nc_type_param
    NONSPECIFIC_CURRENT i
}
UNITS { (nA) = (nanoamp) (mV) = (millivolt) (uS) = (microsiemens) }
PARAMETER {
    tau = 2 (ms)
    e = 0 (mV)
    synapseID = 0
    selected_for_report = 0
    conductance = 0 (uS)
    nc_type_param = 3
}
ASSIGNED { v (mV) i (nA) g (uS) nm_level nm_amp nm_tau (ms) nm_t (ms) nm_events }
STATE { G (uS) }
INITIAL {
    G = 0
    nm_amp = 0
    nm_tau = 1
    nm_t = -1
    nm_events = 0
    nm_level = 0
}
BREAKPOINT {
    SOLVE st METHOD cnexp
    g = G
    i = g * (v - e)
    if (nm_t >= 0) {
        nm_level = nm_amp * exp(-(t - nm_t) / nm_tau)
    } else {
        nm_level = 0
    }
}
DERIVATIVE st { G' = -G / tau }
NET_RECEIVE (weight (uS), strength, dtc (ms), nc_type) {
    INITIAL {
        : keep the weights the driver wrote (without this block NEURON zeroes weight[1..])
    }
    if (nc_type == 10) {
        nm_amp = strength
        nm_tau = dtc
        nm_t = t
        nm_events = nm_events + 1
    } else {
        G = G + weight
    }
}
"""

NMSYN_HELPER = """// NMSynHelper: modoverride helper of the NMSyn test synapse;
// reads the edge column syn_tau
strdef NMSynHelper_NeededAttributes
NMSynHelper_NeededAttributes = "syn_tau"
begintemplate NMSynHelper
public synapse
objref synapse
proc init() {
    synapse = new NMSyn($3)
    synapse.tau = $o2.syn_tau
    synapse.synapseID = $4
}
endtemplate NMSynHelper
"""


# ---- SONATA writers ---------------------------------------------------------------------------
def write_nodes(path: Path, populations: dict) -> None:
    """populations: name -> {"n": int, "model_type": str, "attrs": {col: values},
    "dynamics": {col: values}}."""
    str_t = h5py.string_dtype()
    with h5py.File(path, "w") as fd:
        for name, spec in populations.items():
            n = spec["n"]
            grp = fd.create_group(f"nodes/{name}")
            grp.create_dataset("node_type_id", data=np.full(n, -1, np.int64))
            g0 = grp.create_group("0")
            g0.create_dataset("model_type", data=np.array([spec["model_type"]] * n,
                                                          dtype=object), dtype=str_t)
            for col, values in spec.get("attrs", {}).items():
                values = np.asarray(values)
                if values.dtype.kind in "US" or values.dtype == object:
                    g0.create_dataset(col, data=values.astype(object), dtype=str_t)
                else:
                    g0.create_dataset(col, data=values)
            dyn = spec.get("dynamics", {})
            if dyn:
                dg = g0.create_group("dynamics_params")
                for col, values in dyn.items():
                    dg.create_dataset(col, data=np.asarray(values, float))


def write_edges(path: Path, name: str, source: str, target: str, n_source: int,
                n_target: int, src, tgt, columns: dict) -> None:
    """One edge population; rows are sorted by (target, source) as SONATA indices like."""
    src, tgt = np.asarray(src, np.int64), np.asarray(tgt, np.int64)
    order = np.lexsort((src, tgt))
    n = len(src)
    with h5py.File(path, "a") as fd:
        grp = fd.create_group(f"edges/{name}")
        grp.create_dataset("source_node_id", data=src[order].astype(np.uint64)).attrs[
            "node_population"] = source
        grp.create_dataset("target_node_id", data=tgt[order].astype(np.uint64)).attrs[
            "node_population"] = target
        grp.create_dataset("edge_type_id", data=np.full(n, -1, np.int64))
        grp.create_dataset("edge_group_id", data=np.zeros(n, np.int64))
        grp.create_dataset("edge_group_index", data=np.arange(n, dtype=np.uint64))
        g0 = grp.create_group("0")
        for col, values in columns.items():
            values = np.broadcast_to(np.asarray(values), (n,))[order]
            g0.create_dataset(col, data=values)
    libsonata.EdgePopulation.write_indices(str(path), name, n_source, n_target)


def chemical_columns(n, conductance=0.001, delay=1.0, syn_type=120, U=1.0, nrrp=1,
                     ratio=0.0, **extra) -> dict:
    """Deterministic first release (U = 1, one vesicle), no NMDA (ratio 0), on soma(0.5)."""
    cols = {"conductance": np.full(n, conductance, np.float32),
            "u_syn": np.full(n, U, np.float32), "depression_time": np.full(n, 600, np.float32),
            "facilitation_time": np.full(n, 10, np.float32),
            "decay_time": np.full(n, 1.7, np.float32),
            "syn_type_id": np.full(n, syn_type, np.int32),
            "n_rrp_vesicles": np.full(n, nrrp, np.int32),
            "conductance_scale_factor": np.full(n, ratio, np.float32),
            "delay": np.full(n, delay, np.float32),
            "afferent_section_id": np.zeros(n, np.int32),
            "afferent_section_pos": np.full(n, 0.5, np.float32)}
    cols.update(extra)
    return cols


def write_spikes(path: Path, population: str, node_ids, times) -> None:
    with h5py.File(path, "a") as fd:
        grp = fd.create_group(f"spikes/{population}")
        enum_t = h5py.enum_dtype({"none": 0, "by_id": 1, "by_time": 2}, basetype="u1")
        grp.attrs.create("sorting", 2, dtype=enum_t)
        order = np.argsort(np.asarray(times, float), kind="stable")
        grp.create_dataset("timestamps", data=np.asarray(times, float)[order])
        grp.create_dataset("node_ids", data=np.asarray(node_ids, np.uint64)[order])


class Circuit:
    """A circuit folder: nodes.h5, edges*.h5, templates, configs. Build, then ``config()``."""

    def __init__(self, folder: Path, mechanisms: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.mechanisms = mechanisms
        self.populations: dict = {}
        self.edges: list = []
        (self.folder / "templates").mkdir(exist_ok=True)
        (self.folder / "morphologies").mkdir(exist_ok=True)
        (self.folder / "morphologies" / "ball.swc").write_text(
            "1 1 0 0 0 8.92 -1\n")   # never read: the test templates build their own soma
        for name, text in TEMPLATES.items():
            (self.folder / "templates" / f"{name}.hoc").write_text(text)

    def population(self, name, n, template=None, model_type="biophysical", **attrs):
        if model_type == "virtual":
            spec = {"n": n, "model_type": "virtual", "attrs": {}}
        else:
            templates = template if isinstance(template, (list, tuple)) else [template] * n
            spec = {"n": n, "model_type": model_type,
                    "attrs": {"model_template": [f"hoc:{t}" for t in templates], **attrs}}
            if model_type == "biophysical":
                spec["attrs"]["morphology"] = ["ball"] * n
        self.populations[name] = spec
        return self

    def edge_population(self, name, source, target, src, tgt, columns, etype="chemical"):
        self.edges.append((name, source, target, list(src), list(tgt), columns, etype))
        return self

    def config(self, node_sets=None, **sim) -> Path:
        write_nodes(self.folder / "nodes.h5", self.populations)
        edge_entries = []
        for k, (name, source, target, src, tgt, cols, etype) in enumerate(self.edges):
            path = self.folder / f"edges_{k}.h5"
            if path.exists():
                path.unlink()
            write_edges(path, name, source, target, self.populations[source]["n"],
                        self.populations[target]["n"], src, tgt, cols)
            edge_entries.append({"edges_file": str(path), "populations": {name: {"type": etype}}})
        circuit = {
            "version": 2,
            "components": {"morphologies_dir": str(self.folder / "morphologies"),
                           "biophysical_neuron_models_dir": str(self.folder / "templates"),
                           "point_neuron_models_dir": str(self.folder / "templates"),
                           "mechanisms_dir": str(self.mechanisms)},
            "node_sets_file": str(self.folder / "node_sets.json"),
            "networks": {"nodes": [{"nodes_file": str(self.folder / "nodes.h5"),
                                    "populations": {n: {"type": s["model_type"]}
                                                    for n, s in self.populations.items()}}],
                         "edges": edge_entries},
        }
        all_sets = {n: {"population": n} for n in self.populations}
        all_sets.update(node_sets or {})
        (self.folder / "node_sets.json").write_text(json.dumps(all_sets, indent=1))
        (self.folder / "circuit_config.json").write_text(json.dumps(circuit, indent=1))
        simulation = {"version": 1, "network": "circuit_config.json",
                      "target_simulator": "NEURON",
                      "run": {"tstop": 50.0, "dt": 0.025, "random_seed": 7},
                      "conditions": {"celsius": 34.0, "v_init": E_PAS},
                      "output": {"output_dir": "output", "spikes_file": "out.h5"}}
        for key, value in sim.items():
            if isinstance(value, dict) and isinstance(simulation.get(key), dict):
                simulation[key] = {**simulation[key], **value}
            else:
                simulation[key] = value
        path = self.folder / "simulation_config.json"
        path.write_text(json.dumps(simulation, indent=1))
        return path


# ---- mechanisms and runs ----------------------------------------------------------------------
@pytest.fixture(scope="session")
def feature_mechanisms(tmp_path_factory) -> Path:
    """minicol mods + NMSyn, built once (content-hash cache); HOC dir with NMSynHelper.hoc."""
    from neurodamus.tools.mechanisms import build_mechanisms

    folder = tmp_path_factory.mktemp("feature_mods")
    for mod in (paths.models_dir() / "minicol" / "mod").glob("*.mod"):
        shutil.copy2(mod, folder / mod.name)
    (folder / "NMSyn.mod").write_text(NMSYN_MOD)
    build_mechanisms([folder], log=lambda *_: None)
    hoc = folder / "hoc"
    hoc.mkdir()
    (hoc / "NMSynHelper.hoc").write_text(NMSYN_HELPER)
    return folder


def run(config: Path, ranks=1, tag=None, args=(), expect_ok=True):
    """Run neurodamus on a copy of ``config`` writing to ``out_<tag>``; returns
    (CompletedProcess, output dir)."""
    tag = tag or f"r{ranks}"
    out = config.parent / f"out_{tag}"
    data = json.loads(config.read_text())
    data["output"]["output_dir"] = str(out)
    variant = config.parent / f"simulation_config_{tag}.json"
    variant.write_text(json.dumps(data, indent=1))
    hoc = Path(json.loads((config.parent / "circuit_config.json").read_text())
               ["components"]["mechanisms_dir"]) / "hoc"
    env = base_env(HOC_LIBRARY_PATH=str(hoc))
    res = run_neurodamus([variant, *args], ranks=ranks, env=env)
    if expect_ok:
        assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    return res, out


def soma_report(name="soma_v", dt=0.025, cells=None, variable="v", rtype="compartment",
                sections="soma", tstop=None):
    spec = {"type": rtype, "variable_name": variable, "sections": sections, "dt": dt,
            "start_time": 0.0, "end_time": tstop or 1e9}
    if cells:
        spec["cells"] = cells
    return {name: spec}


def read_report(path: Path, population: str):
    """{node_id: trace} and times of an element report (first element of each node)."""
    reader = libsonata.ElementReportReader(str(path))[population]
    frame = reader.get()
    data = np.asarray(frame.data)
    ids = [int(i) for i, _ in frame.ids]
    times = np.asarray(frame.times)
    traces = {}
    for col, node in enumerate(ids):
        traces.setdefault(node, data[:, col])
    return times, traces


def cell_state(out: Path, gid: int) -> dict:
    return json.loads((out / f"cellstate_{gid}.json").read_text())


__all__ = [
    "AREA_UM2",
    "CM",
    "E_PAS",
    "G_PAS",
    "Circuit",
    "cell_state",
    "chemical_columns",
    "feature_mechanisms",
    "read_report",
    "run",
    "soma_report",
    "write_spikes",
]
