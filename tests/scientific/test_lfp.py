"""LFP reports against the point- and line-source formulas, and Kirchhoff's law.

Cells (population ``cortex``):
* node 0, ``TestCylinder``: one passive compartment, a cylinder of length L = 100 µm and
  diameter 2 µm along local x, placed at (100, 200, 300) and rotated by 90° about z (its axis
  is global y). A physical electrode (IClamp) injects I = 0.2 nA from 5 ms on. In a single
  compartment all injected current leaves through the membrane, so its membrane current is I
  at every step, and the potential at an electrode is I times the weight of the formula.
* nodes 1 and 2, ``TestCable`` (a soma and a 1 mm dendrite of 201 segments): node 1 gets the
  driver's own current source (``represents_physical_electrode: false``), node 2 an IClamp.
  With weight 1 on every compartment the "LFP" is the cell's total membrane current: 0 for
  node 1 (the source is a membrane current), I for node 2 (an electrode current is not).

The line- and point-source weights come from ``neurodamus lfp-weights``; a file written here
by hand with the point-source weight gives the same report as the tool's point file.
"""

import math

import h5py
import libsonata
import numpy as np
import pytest

from tests.helpers import ROOT, base_env, run_neurodamus
from tests.scientific.circuits import quaternion_z, write_circuit, write_simulation

L, DIAM, I_AMP, SIGMA = 100.0, 2.0, 0.2, 0.3
POS = np.array([100.0, 200.0, 300.0])
R_PERP, D_AXIS, Z_OFF = 30.0, 20.0, 40.0
ELECTRODES = {            # global positions; the cylinder's axis is global y
    "perp": POS + [R_PERP, 0, 0],
    "axis": POS + [0, L / 2 + D_AXIS, 0],
    "above": POS + [0, 0, Z_OFF],
}

CYLINDER_HOC = """
begintemplate TestCylinder
public init, gid, soma, all, somatic, axonal, basal, apical
public nSecAll, nSecSoma, nSecAxonalOrig, synlist, synHelperList, re_init_rng, clear
objref all, somatic, axonal, basal, apical, synlist, synHelperList, this
create soma[1]
proc init() {
    gid = $1
    all = new SectionList()  somatic = new SectionList()  axonal = new SectionList()
    basal = new SectionList()  apical = new SectionList()
    synlist = new List()  synHelperList = new List()
    soma[0] {
        pt3dclear()  pt3dadd(-%(h)r, 0, 0, %(d)r)  pt3dadd(%(h)r, 0, 0, %(d)r)
        nseg = 1  Ra = 100  cm = 1
        insert pas  g_pas = 1e-4  e_pas = -65
        all.append()  somatic.append()
        v(0.0001) = 0
    }
    nSecSoma = 1  nSecAxonalOrig = 0  nSecAll = 1
}
proc re_init_rng() {}
proc clear() { synlist.remove_all() synHelperList.remove_all() }
endtemplate TestCylinder
""" % {"h": L / 2, "d": DIAM}


def line_perpendicular(r):
    """Potential per nA at distance r from the midpoint, perpendicular to the segment."""
    half = L / 2
    return math.log((math.hypot(r, half) + half) / (math.hypot(r, half) - half)) / \
        (4 * math.pi * SIGMA * L)


def line_on_axis(d):
    """Potential per nA on the axis at distance d beyond one end."""
    return math.log((d + L) / d) / (4 * math.pi * SIGMA * L)


def point(r):
    return 1.0 / (4 * math.pi * SIGMA * r)


def _write_hand_file(path, nodes: dict, n_electrodes: int):
    """An electrodes file written from the specification's table (not with the driver)."""
    with h5py.File(path, "w") as fd:
        for e in range(n_electrodes):
            fd.create_group(f"electrodes/contacts/h{e}").attrs["position"] = \
                np.zeros(3, np.float32)
        ids = sorted(nodes)
        rows = [nodes[n] for n in ids]
        fd["electrodes/cortex/scaling_factors"] = np.concatenate([w for _, w in rows])
        fd["cortex/node_ids"] = np.array(ids, np.uint64)
        fd["cortex/offsets"] = np.concatenate(
            [[0], np.cumsum([len(s) for s, _ in rows])]).astype(np.uint64)
        fd["cortex/section_ids"] = np.concatenate([s for s, _ in rows]).astype(np.uint64)


@pytest.fixture(scope="module")
def lfp_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("lfp")
    qx, qy, qz, qw = quaternion_z(math.pi / 2)
    write_circuit(d, {"cortex": {
        "type": "biophysical", "n": 3,
        "template": ["TestCylinder", "TestCable", "TestCable"],
        "attrs": {"x": np.array([POS[0], 0, 0], np.float32),
                  "y": np.array([POS[1], 0, 0], np.float32),
                  "z": np.array([POS[2], 0, 0], np.float32),
                  "orientation_x": [qx, 0.0, 0.0], "orientation_y": [qy, 0.0, 0.0],
                  "orientation_z": [qz, 0.0, 0.0], "orientation_w": [qw, 1.0, 1.0]}}},
        templates=("TestCable",),
        node_sets={"All": {"population": "cortex"},
                   "cyl": {"population": "cortex", "node_id": [0]},
                   "phys": {"population": "cortex", "node_id": [0, 2]},
                   "nonphys": {"population": "cortex", "node_id": [1]},
                   "cables": {"population": "cortex", "node_id": [1, 2]}})
    (d / "emodels" / "TestCylinder.hoc").write_text(CYLINDER_HOC)
    (d / "electrodes.csv").write_text("name,x,y,z\n" + "".join(
        f"{k},{v[0]},{v[1]},{v[2]}\n" for k, v in ELECTRODES.items()))
    step = dict(module="linear", input_type="current_clamp", delay=5.0, duration=100.0,
                amp_start=I_AMP)
    inputs = {"phys": dict(step, node_set="phys", represents_physical_electrode=True),
              "nonphys": dict(step, node_set="nonphys")}
    cable_sections = np.array([0] + [1] * 201)
    _write_hand_file(d / "hand_point.h5", {0: (np.array([0]), np.array(
        [[point(R_PERP), point(math.hypot(L / 2 + D_AXIS, 0)), point(Z_OFF)]]))}, 3)
    _write_hand_file(d / "hand_sum.h5", {1: (cable_sections, np.ones((202, 1))),
                                         2: (cable_sections, np.ones((202, 1)))}, 1)
    rep = dict(type="lfp", dt=0.1, start_time=0.0, end_time=50.0)
    reports = {"line": dict(rep, cells="cyl", electrodes_file="line.h5"),
               "point": dict(rep, cells="cyl", electrodes_file="point.h5"),
               "hand": dict(rep, cells="cyl", electrodes_file="hand_point.h5"),
               "total": dict(rep, cells="cables", electrodes_file="hand_sum.h5")}
    config = write_simulation(d, inputs, tstop=50.0, node_set="All", reports=reports)
    env = base_env(PYTHONPATH=str(ROOT))
    for method in ("line", "point"):
        res = run_neurodamus(["lfp-weights", config, "--electrodes", d / "electrodes.csv",
                              "--method", method, "--sigma", SIGMA, "-o", d / f"{method}.h5"],
                             cwd=d, env=env)
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    res = run_neurodamus([config], cwd=d, env=env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return d


def _report(d, name, output="output"):
    pop = libsonata.ElementReportReader(str(d / output / f"{name}.h5"))["cortex"]
    data = pop.get()
    return pop, np.asarray(data.data, float), np.asarray(data.ids)


def _on_rows(pop):
    start, end, dt = pop.times
    t = start + dt * np.arange(int(round((end - start) / dt)))
    return (t > 5.5) & (t < 49.5)


def test_line_source_formula(lfp_run):
    pop, data, ids = _report(lfp_run, "line")
    assert ids.tolist() == [[0, 0], [0, 1], [0, 2]]
    expected = I_AMP * np.array([line_perpendicular(R_PERP), line_on_axis(D_AXIS),
                                 line_perpendicular(Z_OFF)])
    on = data[_on_rows(pop)]
    assert on.shape[0] > 400
    np.testing.assert_allclose(on, np.broadcast_to(expected, on.shape), rtol=5e-3)
    assert np.all(np.abs(data[0]) < 1e-9 * abs(expected).max())   # before the current


def test_point_source_formula(lfp_run):
    pop, data, _ = _report(lfp_run, "point")
    expected = I_AMP * np.array([point(R_PERP), point(L / 2 + D_AXIS), point(Z_OFF)])
    on = data[_on_rows(pop)]
    np.testing.assert_allclose(on, np.broadcast_to(expected, on.shape), rtol=5e-3)


def test_tool_file_and_hand_file_give_the_same_report(lfp_run):
    _, tool, _ = _report(lfp_run, "point")
    _, hand, _ = _report(lfp_run, "hand")
    np.testing.assert_allclose(tool, hand, rtol=1e-6, atol=0)


def test_total_membrane_current_kirchhoff(lfp_run):
    pop, data, ids = _report(lfp_run, "total")
    assert ids.tolist() == [[1, 0], [2, 0]]
    on = data[_on_rows(pop)]
    # node 1: the driver's source is a membrane current, the total cancels
    assert np.max(np.abs(on[:, 0])) <= 1e-9 * I_AMP
    # node 2: an IClamp is an electrode current: the membrane carries all of I out
    np.testing.assert_allclose(on[:, 1], I_AMP, rtol=1e-6)


@pytest.fixture(scope="module")
def axial_run(lfp_run):
    """The cables again without any electrode: the lfp currents are then computed from the
    voltages (no fast i_membrane_, ``lfp_axial.py``). ``total``: weight 1 everywhere;
    ``parts``: electrode 0 weighs the soma only, electrode 1 the dendrite only."""
    d = lfp_run
    sections = np.array([0] + [1] * 201)
    parts = np.zeros((202, 2))
    parts[0, 0], parts[1:, 1] = 1.0, 1.0
    _write_hand_file(d / "hand_parts.h5", {1: (sections, parts)}, 2)
    step = dict(module="linear", input_type="current_clamp", delay=5.0, duration=100.0,
                amp_start=I_AMP)
    rep = dict(type="lfp", dt=0.1, start_time=0.0, end_time=50.0)
    config = write_simulation(d, {"nonphys": dict(step, node_set="nonphys")}, tstop=50.0,
                              node_set="All", name="axial.json", output_dir="output_axial",
                              reports={"total": dict(rep, cells="cables",
                                                     electrodes_file="hand_sum.h5"),
                                       "parts": dict(rep, cells="nonphys",
                                                     electrodes_file="hand_parts.h5")})
    res = run_neurodamus([config], cwd=d, env=base_env(PYTHONPATH=str(ROOT)))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return d, res.stdout + res.stderr


def test_total_membrane_current_kirchhoff_from_the_voltages(axial_run):
    d, log = axial_run
    assert "lfp reports: compartment currents computed from the voltages" in log
    pop, data, ids = _report(d, "total", "output_axial")
    assert ids.tolist() == [[1, 0], [2, 0]]
    on = data[_on_rows(pop)]
    # node 1 carries the driver's source (a membrane current): its total still cancels
    assert np.max(np.abs(on)) <= 1e-9 * I_AMP
    # ... while its parts do not: the source's current leaves through the dendrite's
    # membrane, taken from the soma's (the soma's membrane current is the source's -I plus
    # its own capacitive and leak currents)
    pop, parts, _ = _report(d, "parts", "output_axial")
    on = parts[_on_rows(pop)]
    assert np.min(on[-100:, 1]) > 0.1 * I_AMP
    np.testing.assert_allclose(on[:, 0], -on[:, 1], rtol=1e-6, atol=1e-9 * I_AMP)
