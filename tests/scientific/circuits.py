"""Tiny SONATA circuits for the input tests: written from scratch, every value known.

Templates (hoc, written into the circuit's emodel folder):
* ``TestPassive``: one passive compartment (area 1000 µm², g_pas 1e-4 S/cm², cm 1 µF/cm²:
  R = 1000 MΩ, τ = 10 ms), e_pas = -65 mV.
* ``TestCable``: a tiny soma and one straight passive dendrite along local +x starting at the
  soma centre (3D points), for the E-field test.
Both ignore the morphology file (a placeholder is written because the driver checks it exists).
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import h5py
import numpy as np

from neurodamus import paths

PASSIVE_AREA = 1000.0      # µm²
PASSIVE_G = 1e-4           # S/cm²
PASSIVE_E = -65.0          # mV
CABLE_LENGTH = 1000.0      # µm
CABLE_DIAM = 1.0           # µm
CABLE_RA = 100.0           # Ω cm
CABLE_G = 1e-4             # S/cm²

_COMMON_HOC = """
public init, gid, soma, all, somatic, axonal, basal, apical
public nSecAll, nSecSoma, nSecAxonalOrig, synlist, synHelperList, re_init_rng, clear
objref all, somatic, axonal, basal, apical, synlist, synHelperList, this
proc lists() {
    all = new SectionList()
    somatic = new SectionList()
    axonal = new SectionList()
    basal = new SectionList()
    apical = new SectionList()
    synlist = new List()
    synHelperList = new List()
}
proc re_init_rng() {}
proc clear() { synlist.remove_all() synHelperList.remove_all() }
"""

PASSIVE_HOC = """
begintemplate TestPassive
%s
create soma[1]
proc init() { local d
    gid = $1
    lists()
    d = sqrt(%r / PI)
    soma[0] {
        L = d  diam = d  nseg = 1  Ra = 100  cm = 1
        insert pas  g_pas = %r  e_pas = %r
        all.append()  somatic.append()
        v(0.0001) = 0
    }
    nSecSoma = 1
    nSecAxonalOrig = 0
    nSecAll = 1
}
endtemplate TestPassive
""" % (_COMMON_HOC, PASSIVE_AREA, PASSIVE_G, PASSIVE_E)

CABLE_HOC = """
begintemplate TestCable
%s
public dend
create soma[1], dend[1]
proc init() {
    gid = $1
    lists()
    soma[0] {
        pt3dclear()  pt3dadd(-0.5, 0, 0, 1)  pt3dadd(0.5, 0, 0, 1)
        nseg = 1  Ra = %r  cm = 1
        insert pas  g_pas = %r  e_pas = %r
        all.append()  somatic.append()
        v(0.0001) = 0
    }
    dend[0] {
        pt3dclear()  pt3dadd(0, 0, 0, %r)  pt3dadd(%r, 0, 0, %r)
        nseg = 201  Ra = %r  cm = 1
        insert pas  g_pas = %r  e_pas = %r
        all.append()  basal.append()
        v(0.0001) = 1
    }
    connect dend[0](0), soma[0](0.5)
    nSecSoma = 1
    nSecAxonalOrig = 0
    nSecAll = 2
}
endtemplate TestCable
""" % (_COMMON_HOC, CABLE_RA, CABLE_G, PASSIVE_E, CABLE_DIAM, CABLE_LENGTH, CABLE_DIAM,
       CABLE_RA, CABLE_G, PASSIVE_E)

TEMPLATES = {"TestPassive": PASSIVE_HOC, "TestCable": CABLE_HOC}


def _strings(grp, name, values):
    grp.create_dataset(name, data=np.array(list(values), dtype=object),
                       dtype=h5py.string_dtype())


def write_nodes(path: Path, populations: dict) -> None:
    """populations: name -> dict(type=..., n=..., attrs={...}, dynamics={...})."""
    with h5py.File(path, "w") as fd:
        for name, spec in populations.items():
            n = spec["n"]
            grp = fd.create_group(f"nodes/{name}")
            grp.create_dataset("node_type_id", data=np.full(n, -1, np.int64))
            g0 = grp.create_group("0")
            if spec["type"] == "virtual":
                _strings(g0, "model_type", ["virtual"] * n)
                continue
            templates = spec.get("template", "TestPassive")
            if isinstance(templates, str):
                templates = [templates] * n
            _strings(g0, "model_type", ["biophysical"] * n)
            _strings(g0, "model_template", [f"hoc:{t}" for t in templates])
            _strings(g0, "morphology", spec.get("morphology", ["placeholder"] * n))
            _strings(g0, "mtype", spec.get("mtype", ["TEST"] * n))
            for k, v in spec.get("attrs", {}).items():
                g0.create_dataset(k, data=np.asarray(v))
            for axis in "xyz":
                if axis not in spec.get("attrs", {}):
                    g0.create_dataset(axis, data=np.zeros(n, np.float32))
            dyn = g0.create_group("dynamics_params")
            for k, v in spec.get("dynamics", {}).items():
                dyn.create_dataset(k, data=np.asarray(v, dtype=float))


EDGE_DEFAULTS = dict(conductance=0.001, u_syn=1.0, depression_time=0.0, facilitation_time=0.0,
                     decay_time=2.0, syn_type_id=120, n_rrp_vesicles=1, delay=1.0,
                     conductance_scale_factor=0.0, u_hill_coefficient=1.0)
_EDGE_DTYPES = dict(conductance=np.float32, u_syn=np.float32, depression_time=np.float32,
                    facilitation_time=np.float32, decay_time=np.float32, syn_type_id=np.int32,
                    n_rrp_vesicles=np.int32, delay=np.float32, conductance_scale_factor=np.float32,
                    u_hill_coefficient=np.float32)


def write_edges(path: Path, name, source, target, src, tgt, n_source, n_target, **columns):
    """Edges (sorted by target, then source) with the synapse columns of compatibility §3.1."""
    import libsonata

    src, tgt = np.asarray(src, np.int64), np.asarray(tgt, np.int64)
    order = np.lexsort((src, tgt))
    n = len(src)
    cols = dict(EDGE_DEFAULTS, afferent_section_id=0, afferent_section_pos=0.5)
    cols.update(columns)
    with h5py.File(path, "w") as fd:
        grp = fd.create_group(f"edges/{name}")
        s = grp.create_dataset("source_node_id", data=src[order].astype(np.uint64))
        s.attrs["node_population"] = source
        t = grp.create_dataset("target_node_id", data=tgt[order].astype(np.uint64))
        t.attrs["node_population"] = target
        grp.create_dataset("edge_type_id", data=np.full(n, -1, np.int64))
        grp.create_dataset("edge_group_id", data=np.zeros(n, np.int64))
        grp.create_dataset("edge_group_index", data=np.arange(n, dtype=np.uint64))
        g0 = grp.create_group("0")
        for key, value in cols.items():
            arr = np.broadcast_to(np.asarray(value), (n,))[order] if n else np.zeros(0)
            dtype = _EDGE_DTYPES.get(key, np.int32 if key == "afferent_section_id"
                                     else np.float32)
            g0.create_dataset(key, data=np.asarray(arr).astype(dtype))
    libsonata.EdgePopulation.write_indices(str(path), name, n_source, n_target)


def write_spikes(path: Path, spikes: dict) -> None:
    """spikes: population -> (times, node_ids); SONATA layout, sorted by time."""
    with h5py.File(path, "w") as fd:
        for pop, (times, ids) in spikes.items():
            times, ids = np.asarray(times, float), np.asarray(ids, np.int64)
            order = np.lexsort((ids, times))
            grp = fd.create_group(f"spikes/{pop}")
            enum_t = h5py.enum_dtype({"none": 0, "by_id": 1, "by_time": 2}, basetype="u1")
            grp.attrs.create("sorting", 2, dtype=enum_t)
            ts = grp.create_dataset("timestamps", data=times[order])
            ts.attrs["units"] = "ms"
            grp.create_dataset("node_ids", data=ids[order].astype(np.uint64))


def write_element_report(path: Path, population: str, node_ids, times, data,
                         unit="nA") -> None:
    """A SONATA element report with one element (id 0) per node: data [n_times, n_nodes]."""
    start, stop, step = times
    data = np.asarray(data, np.float32)
    with h5py.File(path, "w") as fd:
        grp = fd.create_group(f"report/{population}")
        d = grp.create_dataset("data", data=data)
        d.attrs["units"] = unit
        mapping = grp.create_group("mapping")
        mapping.create_dataset("node_ids", data=np.asarray(node_ids, np.uint64))
        mapping.create_dataset("index_pointers",
                               data=np.arange(len(node_ids) + 1, dtype=np.uint64))
        mapping.create_dataset("element_ids", data=np.zeros(len(node_ids), np.uint32))
        t = mapping.create_dataset("time", data=np.array([start, stop, step], float))
        t.attrs["units"] = "ms"


def write_circuit(directory, populations: dict, edges=(), node_sets=None, mechanisms=(),
                  templates=("TestPassive",), emodels_from=None, morphologies_from=None) -> Path:
    """Write nodes, edges, templates, node sets and the circuit config; return its path.

    ``edges``: dicts for ``write_edges`` (name, source, target, src, tgt, + columns).
    ``mechanisms``: mod files copied into the circuit's mechanisms folder (core/mod is added by
    the driver). ``emodels_from`` / ``morphologies_from``: folders copied in (real models).
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    emodels, morph, mech = out / "emodels", out / "morphologies", out / "mechanisms"
    for d in (emodels, morph, mech):
        d.mkdir(exist_ok=True)
    for name in templates:
        (emodels / f"{name}.hoc").write_text(TEMPLATES[name])
    if emodels_from:
        for f in Path(emodels_from).glob("*.hoc"):
            shutil.copy(f, emodels / f.name)
    if morphologies_from:
        for f in Path(morphologies_from).glob("*.swc"):
            shutil.copy(f, morph / f.name)
    (morph / "placeholder.swc").write_text("1 1 0 0 0 5 -1\n")
    for mod in mechanisms:
        shutil.copy(mod, mech / Path(mod).name)
    write_nodes(out / "nodes.h5", populations)
    sizes = {k: v["n"] for k, v in populations.items()}
    edge_entries = []
    for i, e in enumerate(edges):
        e = dict(e)
        name, source, target = e.pop("name"), e.pop("source"), e.pop("target")
        fname = f"edges_{i}.h5"
        write_edges(out / fname, name, source, target, e.pop("src"), e.pop("tgt"),
                    sizes[source], sizes[target], **e)
        edge_entries.append({"edges_file": f"$BASE_DIR/{fname}",
                             "populations": {name: {"type": "chemical"}}})
    node_sets = node_sets or {}
    (out / "node_sets.json").write_text(json.dumps(node_sets, indent=1))
    circuit = {
        "version": 2,
        "manifest": {"$BASE_DIR": "."},
        # no mechanisms of its own: no mechanisms_dir (an empty folder is refused)
        "components": {"morphologies_dir": "$BASE_DIR/morphologies",
                       "biophysical_neuron_models_dir": "$BASE_DIR/emodels",
                       **({"mechanisms_dir": "$BASE_DIR/mechanisms"} if mechanisms else {})},
        "node_sets_file": "$BASE_DIR/node_sets.json",
        "networks": {"nodes": [{"nodes_file": "$BASE_DIR/nodes.h5",
                                "populations": {k: {"type": v["type"]}
                                                for k, v in populations.items()}}],
                     "edges": edge_entries},
    }
    path = out / "circuit_config.json"
    path.write_text(json.dumps(circuit, indent=1))
    return path


def write_simulation(directory, inputs: dict, tstop: float, dt: float = 0.025, seed: int = 7,
                     node_set=None, v_init=PASSIVE_E, name="simulation_config.json",
                     output_dir="output", **extra) -> Path:
    sim = {
        "version": 1,
        "network": "circuit_config.json",
        "run": {"tstop": tstop, "dt": dt, "random_seed": seed},
        "conditions": {"celsius": 34.0, "v_init": v_init},
        "output": {"output_dir": str(output_dir), "spikes_file": "out.h5"},
        "inputs": inputs,
    }
    if node_set:
        sim["node_set"] = node_set
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(sim.get(k), dict):
            sim[k].update(v)
        else:
            sim[k] = v
    path = Path(directory) / name
    path.write_text(json.dumps(sim, indent=1))
    return path


def minicol_mods() -> list[Path]:
    return sorted((paths.models_dir() / "minicol" / "mod").glob("*.mod"))


def synapse_mods() -> list[Path]:
    return [p for p in minicol_mods() if p.name.startswith("Prob")]


def quaternion_z(angle: float) -> tuple[float, float, float, float]:
    """(x, y, z, w) of a rotation by ``angle`` (rad) about z."""
    return 0.0, 0.0, math.sin(angle / 2), math.cos(angle / 2)
