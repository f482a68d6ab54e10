"""Element reports (issue 4): every type read back with libsonata and compared with values that
NEURON records independently in the same process, then rank invariance and bad input.

The independent values come from a harness (this file run as a script): it runs the driver's
``Simulation`` in-process and, just before initialisation, attaches its own ``Vector.record``
probes to every segment's ``v``, ``i_membrane_``, ``ina``, ``ik``, to every ``IClamp``,
``SEClamp`` and ``MembraneCurrentSource`` (found through ``h.List``) and to every synapse the
synapse builder made. One simulation per process (NEURON state is process-global).

The circuit is the example with a second, unconnected biophysical population ``cortexB`` (a copy
of ``cortex``), so report files hold two populations.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from tests.helpers import ROOT, base_env, read_spikes, run_neurodamus, spikes_equal

pytestmark = pytest.mark.mpi

TSTOP, DT = 60.0, 0.025
CSET = [[0, 0, 0.5], [0, 3, 0.25], [0, 3, 0.75], [2, 1, 0.5], [2, 7, 0.1]]

REPORTS = {
    "soma_v": {"type": "compartment", "variable_name": "v", "dt": 0.1, "start_time": 0.0,
               "end_time": TSTOP},
    "all_v": {"type": "compartment", "sections": "all", "compartments": "all",
              "variable_name": "v", "dt": 0.5, "start_time": 5.0, "end_time": 40.0,
              "cells": "Excitatory", "file_name": "everything"},
    "dend_center": {"type": "compartment", "sections": "dend", "compartments": "center",
                    "variable_name": "v",
                    "dt": 0.25, "start_time": 2.0, "end_time": 100.0, "unit": "millivolt"},
    "imem_cell": {"type": "summation", "variable_name": "i_membrane", "dt": 0.1,
                  "start_time": 0.0, "end_time": TSTOP, "unit": "nA"},
    "ionic_area": {"type": "summation", "sections": "all", "compartments": "all",
                   "variable_name": "ina,ik", "dt": 0.2, "start_time": 0.0,
                   "end_time": TSTOP, "cells": "Inhibitory", "unit": "nA"},
    "electrodes": {"type": "summation", "sections": "all", "compartments": "center",
                   "variable_name": "i_membrane,IClamp,SEClamp", "dt": 0.1, "start_time": 0.0,
                   "end_time": TSTOP, "unit": "nA"},
    "sources": {"type": "summation", "sections": "soma",
                "variable_name": "MembraneCurrentSource", "scaling": "none", "dt": 0.1,
                "start_time": 0.0, "end_time": TSTOP, "unit": "nA"},
    "sources_area": {"type": "summation", "sections": "soma",
                     "variable_name": "MembraneCurrentSource", "dt": 0.5, "start_time": 0.0,
                     "end_time": TSTOP},
    "syn_g": {"type": "synapse", "sections": "all", "compartments": "all",
              "variable_name": "ProbAMPANMDA_EMS.g", "dt": 0.1, "start_time": 0.0,
              "end_time": TSTOP, "cells": "Cortex", "unit": "uS"},
    "cset_v": {"type": "compartment_set", "compartment_set": "probe", "variable_name": "v",
               "dt": 0.1, "start_time": 0.0, "end_time": TSTOP},
    "disabled": {"type": "compartment", "variable_name": "v", "dt": 0.1, "start_time": 0.0,
                 "end_time": TSTOP, "enabled": False},
}


# ---- circuit ----------------------------------------------------------------------------------
def make_circuit(directory: Path, n_cells=10) -> Path:
    from neurodamus.tools.example import write_example
    from neurodamus.tools.mechanisms import build_mechanisms

    config = write_example(directory, n_cells=n_cells, tstop=TSTOP, seed=5)
    build_mechanisms([config.parent / "mechanisms"], log=lambda *_: None)
    with h5py.File(directory / "nodes.h5", "a") as fd:
        fd.copy("nodes/cortex", "nodes/cortexB")
    circuit = json.loads((directory / "circuit_config.json").read_text())
    circuit["networks"]["nodes"][0]["populations"]["cortexB"] = {"type": "biophysical"}
    (directory / "circuit_config.json").write_text(json.dumps(circuit, indent=1))
    node_sets = json.loads((directory / "node_sets.json").read_text())
    node_sets.update({"CortexB": {"population": "cortexB"}, "Both": ["Cortex", "CortexB"],
                      "First": {"population": "cortex", "node_id": [0]},
                      "FirstB": {"population": "cortexB", "node_id": [0]},
                      "Nothing": {"population": "cortex", "mtype": "no-such-mtype"}})
    (directory / "node_sets.json").write_text(json.dumps(node_sets, indent=1))
    (directory / "compartment_sets.json").write_text(json.dumps(
        {"probe": {"population": "cortex", "compartment_set": CSET}}))
    sim = json.loads(config.read_text())
    sim.pop("node_set")
    sim["compartment_sets_file"] = "compartment_sets.json"
    sim["inputs"].update({
        "drive": {"module": "linear", "input_type": "current_clamp", "node_set": "Both",
                  "amp_start": 0.25, "delay": 5.0, "duration": 40.0},
        "electrode": {"module": "linear", "input_type": "current_clamp",
                      "node_set": "Excitatory", "amp_start": 0.15, "delay": 10.0,
                      "duration": 30.0, "represents_physical_electrode": True},
        "clamp": {"module": "seclamp", "input_type": "voltage_clamp", "node_set": "FirstB",
                  "voltage": -55.0, "delay": 0.0, "duration": 20.0,
                  "series_resistance": 0.5},
    })
    sim["reports"] = REPORTS
    config.write_text(json.dumps(sim, indent=1))
    return config


# ---- harness (runs in its own process) ---------------------------------------------------------
def _harness(config: str, out_dir: str, probe_file: str) -> int:
    from neurodamus import pipeline
    from neurodamus.config import RunOptions

    probes = {}
    original = pipeline.add_reports

    def add_reports(plan, rt, model):   # the model's reports, plus the probes
        original(plan, rt, model)
        _attach_probes(rt.h, plan, model, probes)
        close = model.reports.close

        def close_and_dump():
            close()
            _dump_probes(probes, probe_file)
        model.reports.close = close_and_dump

    pipeline.add_reports = add_reports
    return pipeline.run(config, RunOptions(output_path=out_dir))


def _attach_probes(h, plan, model, probes):

    def rec(ref):
        vec = h.Vector()
        vec.record(ref)
        return vec

    cells = {}
    for gid, cell in model.cells.items():
        segs = []
        for sec in cell.hoc.all:
            index = int(sec(0.0001).v)   # the template's own section index (§2.1(1))
            has_na, has_k = h.ismembrane("na_ion", sec=sec), h.ismembrane("k_ion", sec=sec)
            for seg in sec:
                segs.append({"sec": index, "x": seg.x, "area": seg.area(), "v": rec(seg._ref_v),
                             "imem": rec(seg._ref_i_membrane_),
                             "ina": rec(seg._ref_ina) if has_na else None,
                             "ik": rec(seg._ref_ik) if has_k else None})
        cset = {}
        if cell.population == "cortex":
            by_index = {int(sec(0.0001).v): sec for sec in cell.hoc.all}
            for node, sid, x in CSET:
                if node == cell.raw_id:
                    cset[(sid, x)] = rec(by_index[sid](x)._ref_v)
        cells[gid] = {"raw": cell.raw_id, "pop": cell.population,
                      "soma": rec(cell.hoc.soma[0](0.5)._ref_v), "segs": segs, "cset": cset,
                      "n_dend": sum(1 for _ in cell.hoc.basal)}
    sources = []
    for kind in ("IClamp", "SEClamp", "MembraneCurrentSource"):
        for pp in h.List(kind):
            gid = int(pp.get_segment().sec.cell().gid)
            sources.append({"kind": kind, "gid": gid, "i": rec(pp._ref_i)})
    synapses = []
    for pp in model.synapse_builder.synapses:
        if pp.hname().startswith("ProbAMPANMDA_EMS"):
            gid = int(pp.get_segment().sec.cell().gid)
            synapses.append({"gid": gid, "id": int(pp.synapseID), "g": rec(pp._ref_g)})
    probes.update(cells=cells, sources=sources, synapses=synapses,
                  offsets={p.name: p.offset for p in plan.populations.values()})


def _dump_probes(probes, path):
    def arr(v):
        return None if v is None else np.array(v.as_numpy(), copy=True)

    out = {"offsets": probes["offsets"], "cells": {}, "sources": [], "synapses": []}
    for gid, c in probes["cells"].items():
        out["cells"][gid] = {"raw": c["raw"], "pop": c["pop"], "soma": arr(c["soma"]),
                             "n_dend": c["n_dend"],
                             "cset": {k: arr(v) for k, v in c["cset"].items()},
                             "segs": [{k: (arr(v) if k in ("v", "imem", "ina", "ik") else v)
                                       for k, v in s.items()} for s in c["segs"]]}
    out["sources"] = [dict(s, i=arr(s["i"])) for s in probes["sources"]]
    out["synapses"] = [dict(s, g=arr(s["g"])) for s in probes["synapses"]]
    with open(path, "wb") as fd:
        pickle.dump(out, fd)


# ---- reading -----------------------------------------------------------------------------------
def read_report(path):
    """{population: (time triple, {node: (element ids, data [rows, elements])}, units)}."""
    import libsonata

    reader = libsonata.ElementReportReader(str(path))
    out = {}
    for pop in sorted(reader.get_population_names()):
        p = reader[pop]
        nodes = {}
        for node in sorted(p.get_node_ids()):
            frame = p.get(node_ids=[node])
            nodes[node] = (np.asarray(frame.ids)[:, 1], np.asarray(frame.data))
        out[pop] = (p.times, nodes, p.data_units, p.time_units)
    return out


def reports_equal(a, b):
    if a.keys() != b.keys():
        return False
    for pop in a:
        ta, na, ua, _ = a[pop]
        tb, nb, ub, _ = b[pop]
        if ta != tb or ua != ub or na.keys() != nb.keys():
            return False
        for node in na:
            if not (np.array_equal(na[node][0], nb[node][0]) and
                    np.array_equal(na[node][1], nb[node][1])):
                return False
    return True


def rows(report_cfg, n_rows):
    """Simulation step of each report row (§8.2: k0 = start/dt, then every int(dt_r/dt))."""
    k0 = int(np.ceil(report_cfg["start_time"] / DT - 1e-9))
    return k0 + np.arange(n_rows) * int(report_cfg["dt"] / DT)


# ---- fixtures ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def circuit(tmp_path_factory):
    return make_circuit(tmp_path_factory.mktemp("reports_circuit"))


@pytest.fixture(scope="module")
def harness(circuit, tmp_path_factory):
    """One in-process run (1 rank) with independent probes: (output dir, probes)."""
    out = tmp_path_factory.mktemp("reports_1rank")
    probe_file = out / "probes.pkl"
    proc = subprocess.run([sys.executable, "-m", "tests.integration.test_reports", str(circuit),
                           str(out), str(probe_file)], cwd=ROOT, env=base_env(),
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(probe_file, "rb") as fd:
        return out, pickle.load(fd)


@pytest.fixture(scope="module")
def two_ranks(circuit, tmp_path_factory):
    out = tmp_path_factory.mktemp("reports_2ranks")
    res = run_neurodamus([circuit, f"--output-path={out}"], ranks=2)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return out


# ---- per type, against independent values -------------------------------------------------------
def test_files_and_layout(harness):
    out, _ = harness
    names = sorted(p.name for p in out.glob("*.h5"))
    assert names == sorted(["out.h5", "soma_v.h5", "everything.h5", "dend_center.h5",
                            "imem_cell.h5", "ionic_area.h5", "electrodes.h5", "sources.h5",
                            "sources_area.h5", "syn_g.h5", "cset_v.h5"])
    # (the report 'disabled' is not written)
    assert not [p for p in out.iterdir() if ".tmp" in p.name]
    with h5py.File(out / "soma_v.h5", "r") as fd:
        assert sorted(fd["report"]) == ["cortex", "cortexB"]     # two populations, one file
        grp = fd["report/cortex"]
        data, mapping = grp["data"], grp["mapping"]
        assert data.dtype == np.float32 and data.shape == (600, 10)
        assert data.attrs["units"] == "mV"
        assert mapping["node_ids"].dtype == np.uint64
        assert list(mapping["node_ids"][:]) == list(range(10))   # 1 rank: ascending
        assert mapping["index_pointers"].dtype == np.uint64
        assert list(mapping["index_pointers"][:]) == list(range(11))
        assert mapping["element_ids"].dtype == np.uint32
        assert mapping["time"].dtype == np.float64
        assert list(mapping["time"][:]) == [0.0, TSTOP, 0.1]
        assert mapping["time"].attrs["units"] == "ms"
    with h5py.File(out / "dend_center.h5", "r") as fd:
        time = fd["report/cortex/mapping/time"][:]
        assert list(time) == [2.0, TSTOP, 0.25]                 # end = min(end_time, tstop)
        assert fd["report/cortex/data"].shape[0] == int(np.ceil((TSTOP - 2.0) / 0.25))
        assert fd["report/cortex/data"].attrs["units"] == "millivolt"


def test_compartment_soma_matches_vector_record(harness):
    out, probes = harness
    rep = read_report(out / "soma_v.h5")
    offsets = probes["offsets"]
    for pop in ("cortex", "cortexB"):
        _, nodes, units, tunits = rep[pop]
        assert (units, tunits) == ("mV", "ms")
        assert len(nodes) == 10
        for node, (ids, data) in nodes.items():
            soma = probes["cells"][node + offsets[pop]]["soma"]
            assert list(ids) == [0]
            steps = rows(REPORTS["soma_v"], data.shape[0])
            assert np.array_equal(data[:, 0], soma[steps].astype(np.float32))


def test_compartment_all_sections_all_segments(harness):
    out, probes = harness
    rep = read_report(out / "everything.h5")
    assert list(rep) == ["cortex"]           # cells: Excitatory (cortex only)
    times, nodes, _, _ = rep["cortex"]
    assert times == (5.0, 40.0, 0.5)
    assert 0 < len(nodes) < 10
    for node, (ids, data) in nodes.items():
        segs = probes["cells"][node]["segs"]
        assert list(ids) == [s["sec"] for s in segs]   # §2.1(2) ids = the template's index
        steps = rows(REPORTS["all_v"], data.shape[0])
        expected = np.stack([s["v"][steps] for s in segs], axis=1).astype(np.float32)
        assert np.array_equal(data, expected)


def test_compartment_dend_centers(harness):
    out, probes = harness
    _, nodes, _, _ = read_report(out / "dend_center.h5")["cortex"]
    for node, (ids, data) in nodes.items():
        cell = probes["cells"][node]
        assert len(ids) == cell["n_dend"]
        steps = rows(REPORTS["dend_center"], data.shape[0])
        for j, sid in enumerate(ids):
            segs = [s for s in cell["segs"] if s["sec"] == sid]
            centre = segs[len(segs) // 2]              # odd nseg: the middle segment is x=0.5
            assert abs(centre["x"] - 0.5) < 1e-9
            assert np.array_equal(data[:, j], centre["v"][steps].astype(np.float32))


def test_summation_i_membrane_per_cell(harness):
    """sections: soma sums every segment of the cell into one element (id 0), no area factor.
    The total membrane current equals the electrode current (IClamp on Excitatory cells)."""
    out, probes = harness
    rep = read_report(out / "imem_cell.h5")
    clamped = 0
    for pop in ("cortex", "cortexB"):
        _, nodes, units, _ = rep[pop]
        assert units == "nA"
        for node, (ids, data) in nodes.items():
            gid = node + probes["offsets"][pop]
            segs = probes["cells"][gid]["segs"]
            assert list(ids) == [0]
            steps = rows(REPORTS["imem_cell"], data.shape[0])
            total = np.sum([s["imem"][steps] for s in segs], axis=0)
            np.testing.assert_allclose(data[:, 0], total, rtol=1e-5, atol=1e-9)
            for src in probes["sources"]:
                if src["gid"] == gid and src["kind"] == "IClamp":
                    np.testing.assert_allclose(data[:, 0], src["i"][steps], atol=1e-6)
                    clamped += 1
    assert clamped >= 5


def test_summation_area_scaling_per_compartment(harness):
    out, probes = harness
    _, nodes, _, _ = read_report(out / "ionic_area.h5")["cortex"]
    assert nodes
    for node, (ids, data) in nodes.items():
        segs = probes["cells"][node]["segs"]
        assert list(ids) == [s["sec"] for s in segs]
        steps = rows(REPORTS["ionic_area"], data.shape[0])
        for j, s in enumerate(segs):
            expected = np.zeros(len(steps))
            for ion in ("ina", "ik"):           # mA/cm2 x area um2 / 100 = nA
                if s[ion] is not None:
                    expected = expected + s[ion][steps] * (s["area"] / 100.0)
            np.testing.assert_allclose(data[:, j], expected, rtol=1e-5, atol=1e-7)
        assert np.abs(data).max() > 0


def test_summation_electrode_sign(harness):
    """i_membrane + IClamp + SEClamp per section centre: electrode currents enter with -1."""
    out, probes = harness
    rep = read_report(out / "electrodes.h5")
    kinds = {s["kind"] for s in probes["sources"]}
    assert {"IClamp", "SEClamp", "MembraneCurrentSource"} <= kinds
    for pop in ("cortex", "cortexB"):
        _, nodes, _, _ = rep[pop]
        for node, (ids, data) in nodes.items():
            gid = node + probes["offsets"][pop]
            segs = probes["cells"][gid]["segs"]
            steps = rows(REPORTS["electrodes"], data.shape[0])
            assert list(ids) == sorted({s["sec"] for s in segs})
            for j, sid in enumerate(ids):
                sec_segs = [s for s in segs if s["sec"] == sid]
                expected = sec_segs[len(sec_segs) // 2]["imem"][steps]
                if sid == 0:   # the sources sit at soma(0.5)
                    for src in probes["sources"]:
                        if src["gid"] == gid and src["kind"] in ("IClamp", "SEClamp"):
                            expected = expected - src["i"][steps]
                np.testing.assert_allclose(data[:, j], expected, rtol=1e-5, atol=1e-9)
    soma_b0 = rep["cortexB"][1][0][1][:, 0]      # cortexB node 0 is voltage-clamped
    assert np.abs(soma_b0).max() > 1e-2


def test_summation_point_process_scaling_none(harness):
    out, probes = harness
    rep = read_report(out / "sources.h5")
    seen = 0
    for pop in ("cortex", "cortexB"):
        _, nodes, _, _ = rep[pop]
        for node, (ids, data) in nodes.items():
            gid = node + probes["offsets"][pop]
            steps = rows(REPORTS["sources"], data.shape[0])
            expected = np.zeros(len(steps))
            for src in probes["sources"]:
                if src["gid"] == gid and src["kind"] == "MembraneCurrentSource":
                    expected = expected + src["i"][steps]
                    seen += 1
            np.testing.assert_allclose(data[:, 0], expected, rtol=1e-6, atol=1e-9)
    assert seen == 20
    assert np.isclose(rep["cortex"][1][0][1][:, 0].min(), -0.25)   # i = -amp while on


def test_summation_point_process_area_scaling(harness):
    """scaling: area (the default) multiplies point-process currents other than IClamp and
    SEClamp by area(seg)/100 too (§8.2, as the established driver does)."""
    out, probes = harness
    rep = read_report(out / "sources_area.h5")
    for pop in ("cortex", "cortexB"):
        _, nodes, _, _ = rep[pop]
        for node, (_, data) in nodes.items():
            gid = node + probes["offsets"][pop]
            soma_area = next(s["area"] for s in probes["cells"][gid]["segs"] if s["sec"] == 0)
            steps = rows(REPORTS["sources_area"], data.shape[0])
            (src,) = [s for s in probes["sources"] if s["gid"] == gid and
                      s["kind"] == "MembraneCurrentSource"]
            np.testing.assert_allclose(data[:, 0], src["i"][steps] * soma_area / 100.0,
                                       rtol=1e-6, atol=1e-9)


def test_synapse_report_element_ids_are_synapse_ids(harness):
    """Every afferent ProbAMPANMDA_EMS once; ids restart per edge population (§3.3), so the
    recurrent and the thalamic synapses of a cell can share an id: match values too."""
    out, probes = harness
    rep = read_report(out / "syn_g.h5")
    assert list(rep) == ["cortex"]
    _, nodes, units, _ = rep["cortex"]
    assert units == "uS"
    for node, (ids, data) in nodes.items():
        syns = [s for s in probes["synapses"] if s["gid"] == node]
        assert sorted(ids) == sorted(s["id"] for s in syns)
        steps = rows(REPORTS["syn_g"], data.shape[0])
        for j, sid in enumerate(ids):
            match = [k for k, s in enumerate(syns) if s["id"] == sid and
                     np.array_equal(data[:, j], s["g"][steps].astype(np.float32))]
            assert match, (node, sid)
            syns.pop(match[0])
    assert max(np.abs(d).max() for _, d in nodes.values()) > 0


def test_compartment_set_exact_entries(harness):
    out, probes = harness
    rep = read_report(out / "cset_v.h5")
    assert list(rep) == ["cortex"]
    _, nodes, _, _ = rep["cortex"]
    assert sorted(nodes) == [0, 2]
    for node, (ids, data) in nodes.items():
        entries = [(s, x) for n, s, x in CSET if n == node]
        assert list(ids) == [s for s, _ in entries]
        steps = rows(REPORTS["cset_v"], data.shape[0])
        cset = probes["cells"][node]["cset"]
        for j, key in enumerate(entries):
            assert np.array_equal(data[:, j], cset[key][steps].astype(np.float32))


# ---- rank invariance -----------------------------------------------------------------------------
REPORT_FILES = ["soma_v.h5", "everything.h5", "dend_center.h5", "imem_cell.h5", "ionic_area.h5",
                "electrodes.h5", "sources.h5", "sources_area.h5", "syn_g.h5", "cset_v.h5"]


@pytest.mark.parametrize("name", REPORT_FILES)
def test_identical_on_1_and_2_ranks(harness, two_ranks, name):
    one = read_report(harness[0] / name)
    two = read_report(two_ranks / name)
    assert reports_equal(one, two)


def test_two_ranks_interleave_nodes_and_compartment_set_on_one_rank(two_ranks):
    with h5py.File(two_ranks / "soma_v.h5", "r") as fd:
        # round robin: rank 0 has even gids, rank 1 odd; ranks concatenated (§8.2)
        assert list(fd["report/cortex/mapping/node_ids"][:]) == [0, 2, 4, 6, 8, 1, 3, 5, 7, 9]
    with h5py.File(two_ranks / "cset_v.h5", "r") as fd:
        # nodes 0 and 2 both live on rank 0; rank 1 has no element
        assert list(fd["report/cortex/mapping/node_ids"][:]) == [0, 2]
        assert list(fd["report/cortex/mapping/index_pointers"][:]) == [0, 3, 5]


def test_three_ranks_and_small_buffer_give_same_reports_and_spikes(circuit, harness,
                                                                   tmp_path):
    """3 ranks, and a buffer so small that chunks are split into 10-step flushes."""
    res = run_neurodamus([circuit, f"--output-path={tmp_path}", "--report-buffer-size=0.05"],
                         ranks=3)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert spikes_equal(read_spikes(tmp_path / "out.h5"), read_spikes(harness[0] / "out.h5"))
    for name in ("soma_v.h5", "everything.h5", "electrodes.h5", "syn_g.h5", "cset_v.h5"):
        assert reports_equal(read_report(harness[0] / name), read_report(tmp_path / name)), name


# ---- a rank without cells ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def one_cell(circuit, tmp_path_factory):
    """Every report on one cell (cortex node 0, in each report's target) on 1 and 2 ranks:
    rank 1 has no cells, so no section to record on (and no i_membrane_ to switch on).
    ``ionic_area`` loses its Inhibitory cells and the voltage clamp (on cortexB) is left out;
    the 2-rank run flushes every 10 steps (small buffer). {ranks: (output dir, summary)}."""
    sim = json.loads(circuit.read_text())
    sim["node_set"] = "First"
    del sim["inputs"]["clamp"]
    sim["reports"]["ionic_area"] = {k: v for k, v in REPORTS["ionic_area"].items()
                                    if k != "cells"}
    config = circuit.parent / "one_cell.json"
    config.write_text(json.dumps(sim, indent=1))
    half = dict(sim, run=dict(sim["run"], tstop=TSTOP / 2))
    (circuit.parent / "one_cell_half.json").write_text(json.dumps(half, indent=1))
    out = {}
    for ranks, extra in ((1, []), (2, ["--report-buffer-size=0.05"])):
        folder = tmp_path_factory.mktemp(f"reports_one_cell_{ranks}")
        res = run_neurodamus([config, f"--output-path={folder}", *extra], ranks=ranks)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        out[ranks] = folder, json.loads((folder / "run_summary.json").read_text())
    return out


def test_rank_without_cells_writes_every_file(one_cell):
    folder, summary = one_cell[2]
    assert (summary["ranks"], summary["cells"]) == (2, 1)      # rank 1 is empty
    assert sorted(p.name for p in folder.glob("*.h5")) == sorted(REPORT_FILES + ["out.h5"])
    assert not [p for p in folder.iterdir() if ".tmp" in p.name]
    assert spikes_equal(read_spikes(folder / "out.h5"), read_spikes(one_cell[1][0] / "out.h5"))


@pytest.mark.parametrize("name", REPORT_FILES)
def test_rank_without_cells_same_report_as_one_rank(one_cell, name):
    """compartment, summation, synapse and compartment_set reports, bit for bit."""
    one = read_report(one_cell[1][0] / name)
    two = read_report(one_cell[2][0] / name)
    assert list(one) == ["cortex"] and list(one["cortex"][1]) == [0]
    assert one["cortex"][1][0][1].size > 0
    assert reports_equal(one, two)


def test_rank_without_cells_save_and_restore(one_cell, circuit, tmp_path):
    """--save at TSTOP/2 and --restore to TSTOP on 2 ranks (the empty rank has no clock to
    take out of and put back into NEURON's record list): the same files as a straight run."""
    ckpt = tmp_path / "ckpt"
    for out, config, option in (("first", "one_cell_half.json", f"--save={ckpt}"),
                                ("second", "one_cell.json", f"--restore={ckpt}")):
        res = run_neurodamus([circuit.parent / config, f"--output-path={tmp_path / out}",
                              option], ranks=2)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    for name in REPORT_FILES:
        assert reports_equal(read_report(one_cell[1][0] / name),
                             read_report(tmp_path / "second" / name)), name


def test_disable_reports(circuit, tmp_path):
    res = run_neurodamus([circuit, f"--output-path={tmp_path}", "--disable-reports"])
    assert res.returncode == 0, res.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.glob("*.h5")) == ["out.h5"]


if __name__ == "__main__":
    sys.exit(_harness(*sys.argv[1:4]))
