"""Circuit features against effects computed independently (issue 7).

* weight overrides scale the PSP of a passive cell linearly;
* ``synapse_delay_override`` shifts the response by exactly the delay difference;
* a weight-0 override plus a delayed override switches a connection on at the given time;
* ``ttx`` silences firing;
* two passive cells coupled by a gap junction equalise with tau = C / (gL + 2 gj), the same on
  1 and 2 ranks;
* a neuromodulatory edge acts on the nearest synapse with the override's strength, at spike
  time + delay, decaying with dtc.

Circuits: tests/integration/test_features_kit.py (Ball: C = 10 pF, gL = 1 nS).
"""

import numpy as np
import pytest

from tests.helpers import read_spikes
from tests.integration.test_features_kit import (
    AREA_UM2,
    CM,
    E_PAS,
    G_PAS,
    Circuit,
    chemical_columns,
    feature_mechanisms,
    read_report,
    run,
    soma_report,
    write_spikes,
)

pytestmark = pytest.mark.mpi
__all__ = ["feature_mechanisms"]

C_PF = CM * AREA_UM2 * 1e-2          # uF/cm2 * um2 -> pF
GL_NS = G_PAS * AREA_UM2 * 10.0      # S/cm2 * um2 -> nS
SETS = {f"b{i}": {"population": "balls", "node_id": [i]} for i in range(4)}


def ov(name, source, target, **fields):
    return {"name": name, "source": source, "target": target, **fields}


def replay(spikes, node_set="balls"):
    return {"replay": {"module": "synapse_replay", "input_type": "spikes", "delay": 0.0,
                       "duration": 1000.0, "node_set": node_set, "spike_file": str(spikes)}}


# ---- weight: linear PSP scaling ---------------------------------------------------------------
def test_weight_override_scales_psp_linearly(tmp_path, feature_mechanisms):
    c = Circuit(tmp_path, feature_mechanisms)
    c.population("balls", 3, "Ball").population("inp", 1, model_type="virtual")
    c.edge_population("inp__balls", "inp", "balls", [0, 0, 0], [0, 1, 2],
                      chemical_columns(3, conductance=1e-8, delay=1.0))
    write_spikes(tmp_path / "spikes.h5", "inp", [0], [5.0])
    # the reversal is moved far away so that the driving force is constant: the PSP is then
    # exactly proportional to the synaptic conductance, i.e. to the weight factor
    overrides = [ov("all", "inp", "balls", synapse_configure="%s.e = 1e6"),
                 ov("double", "inp", "b1", weight=2.0), ov("quad", "inp", "b2", weight=4.0)]
    cfg = c.config(node_sets=SETS, connection_overrides=overrides,
                   inputs=replay(tmp_path / "spikes.h5"), reports=soma_report(),
                   run={"tstop": 30.0})
    _, out = run(cfg)
    t, v = read_report(out / "soma_v.h5", "balls")
    before = t < 5.9
    psp = {n: (trace - trace[before][-1]).max() for n, trace in v.items()}
    assert 1.0 < psp[0] < 10.0                         # mV: a real, small PSP
    assert psp[1] / psp[0] == pytest.approx(2.0, rel=1e-4)
    assert psp[2] / psp[0] == pytest.approx(4.0, rel=1e-4)
    onset = t[np.argmax(v[0] > v[0][before][-1] + 1e-4)]
    assert 6.0 <= onset <= 6.1                          # spike at 5 ms + edge delay 1 ms


# ---- delays -----------------------------------------------------------------------------------
def test_synapse_delay_override_shifts_arrival_exactly(tmp_path, feature_mechanisms):
    c = Circuit(tmp_path, feature_mechanisms)
    c.population("balls", 2, "BallNa").population("inp", 1, model_type="virtual")
    c.edge_population("inp__balls", "inp", "balls", [0, 0], [0, 1],
                      chemical_columns(2, conductance=0.02, delay=1.0))
    write_spikes(tmp_path / "spikes.h5", "inp", [0], [5.0])
    overrides = [ov("all", "inp", "balls"), ov("late", "inp", "b1", synapse_delay_override=3.3)]
    cfg = c.config(node_sets=SETS, connection_overrides=overrides,
                   inputs=replay(tmp_path / "spikes.h5"), run={"tstop": 30.0})
    _, out = run(cfg)
    times, ids = read_spikes(out / "out.h5")["balls"]
    t0, t1 = times[ids == 0], times[ids == 1]
    assert len(t0) == len(t1) >= 1
    assert 6.0 < t0[0] < 9.0
    assert t1 - t0 == pytest.approx(np.full(len(t0), 3.3 - 1.0), abs=1e-9)


def test_delayed_override_switches_a_silent_connection_on(tmp_path, feature_mechanisms):
    c = Circuit(tmp_path, feature_mechanisms)
    c.population("balls", 2, "BallNa").population("src", 1, "BallNa")
    # deterministic release at every event: U = 1, one vesicle, refilled within 0.1 ms
    c.edge_population("src__balls", "src", "balls", [0, 0], [0, 1],
                      chemical_columns(2, conductance=0.02, delay=1.0,
                                       depression_time=np.full(2, 0.1, np.float32)))
    pulse = {"module": "linear", "input_type": "current_clamp", "duration": 1.0,
             "amp_start": 1.0, "node_set": "src"}
    overrides = [ov("all", "src", "balls"), ov("silent", "src", "b1", weight=0.0),
                 ov("switch_on", "src", "b1", delay=20.0, weight=1.0)]
    cfg = c.config(node_sets=SETS, connection_overrides=overrides, run={"tstop": 50.0},
                   inputs={"p1": {**pulse, "delay": 2.0}, "p2": {**pulse, "delay": 30.0}})
    res, out = run(cfg, ranks=2)
    assert "WARNING" not in res.stdout      # the weight-0 override is covered by the delayed one
    spikes = read_spikes(out / "out.h5")
    src_t = spikes["src"][0]
    assert len(src_t) == 2 and src_t[0] < 5 and 30 < src_t[1] < 33
    times, ids = spikes["balls"]
    normal, switched = times[ids == 0], times[ids == 1]
    assert np.any(normal < 20) and np.any(normal > src_t[1])  # answers both events
    assert len(switched) and switched.min() > src_t[1] + 1.0  # weight 0 until 20 ms, then 1


# ---- ttx --------------------------------------------------------------------------------------
def test_ttx_silences_firing(tmp_path, feature_mechanisms):
    c = Circuit(tmp_path, feature_mechanisms)
    c.population("balls", 2, "BallNa")
    step = {"module": "linear", "input_type": "current_clamp", "delay": 5.0, "duration": 40.0,
            "amp_start": 0.04, "node_set": "balls"}
    cfg = c.config(node_sets=SETS, inputs={"step": step}, reports=soma_report(),
                   conditions={"modifications": [{"name": "ttx", "type": "ttx",
                                                  "node_set": "b1"}]})
    _, out = run(cfg)
    _, ids = read_spikes(out / "out.h5")["balls"]
    assert (ids == 0).sum() >= 3
    assert (ids == 1).sum() == 0
    _, v = read_report(out / "soma_v.h5", "balls")
    assert v[0].max() > 0 > v[1].max() > E_PAS + 10        # depolarised, but no spike


# ---- gap junctions ----------------------------------------------------------------------------
def test_gap_junction_equalises_with_the_analytic_time_constant(tmp_path, feature_mechanisms):
    gj_ns = 1.0
    c = Circuit(tmp_path, feature_mechanisms)
    c.population("balls", 2, "Ball")
    c.edge_population("balls__balls__electrical", "balls", "balls", [0, 1], [1, 0],
                      {"conductance": np.full(2, gj_ns, np.float32),
                       "afferent_junction_id": np.array([0, 1], np.int64),
                       "efferent_junction_id": np.array([1, 0], np.int64),
                       "afferent_section_id": np.zeros(2, np.int32),
                       "afferent_section_pos": np.full(2, 0.5, np.float32)},
                      etype="electrical")
    kick = {"module": "linear", "input_type": "current_clamp", "delay": 1.0, "duration": 5.0,
            "amp_start": 0.05, "node_set": "b0"}
    cfg = c.config(node_sets=SETS, inputs={"kick": kick}, reports=soma_report(),
                   run={"tstop": 30.0})
    _, out1 = run(cfg, ranks=1)
    _, out2 = run(cfg, ranks=2)
    t, v = read_report(out1 / "soma_v.h5", "balls")
    _, v2 = read_report(out2 / "soma_v.h5", "balls")
    assert np.array_equal(v[0], v2[0]) and np.array_equal(v[1], v2[1])   # rank-invariant
    window = (t > 8.0) & (t < 20.0)
    diff = (v[0] - v[1])[window].astype(float)
    mean = ((v[0] + v[1]) / 2 - E_PAS)[window].astype(float)
    assert diff.min() > 0.01                                           # mV, well resolved
    tau_diff = -1.0 / np.polyfit(t[window], np.log(diff), 1)[0]
    tau_mean = -1.0 / np.polyfit(t[window], np.log(mean), 1)[0]
    assert tau_diff == pytest.approx(C_PF / (GL_NS + 2 * gj_ns), rel=0.02)   # 3.33 ms
    assert tau_mean == pytest.approx(C_PF / GL_NS, rel=0.02)                 # 10 ms


# ---- neuromodulation --------------------------------------------------------------------------
def test_neuromodulation_acts_on_the_nearest_synapse(tmp_path, feature_mechanisms):
    c = Circuit(tmp_path, feature_mechanisms)
    c.population("balls", 2, "BallDend").population("inp", 1, model_type="virtual")
    c.population("nm", 1, model_type="virtual")
    # two NMSyn synapses (modoverride): soma(0.5) and dend[0](0.9)
    c.edge_population("inp__balls", "inp", "balls", [0, 0], [0, 0],
                      chemical_columns(2, conductance=1e-4, delay=1.0,
                                       syn_tau=np.full(2, 2.0, np.float32),
                                       afferent_section_id=np.array([0, 1], np.int32),
                                       afferent_section_pos=np.array([0.5, 0.9], np.float32)))
    c.edge_population("nm__balls", "nm", "balls", [0], [0],
                      {"delay": np.full(1, 2.0, np.float32),
                       "neuromod_strength": np.full(1, 0.7, np.float32),
                       "neuromod_dtc": np.full(1, 15.0, np.float32),
                       "afferent_section_id": np.array([1], np.int32),
                       "afferent_section_pos": np.array([0.7], np.float32)},
                      etype="neuromodulatory")
    # (replay refuses spikes of a population without chemical edges: give nm a silent one,
    # onto the other cell)
    c.edge_population("nm__balls__chemical", "nm", "balls", [0], [1],
                      chemical_columns(1, conductance=0.0))
    spikes = tmp_path / "spikes.h5"
    write_spikes(spikes, "inp", [0], [5.0])
    write_spikes(spikes, "nm", [0], [10.0])
    overrides = [ov("syn", "inp", "balls", modoverride="NMSyn"),
                 ov("nm", "nm", "balls", neuromodulation_strength=2.5)]
    report = soma_report("nm", variable="NMSyn.nm_level", rtype="synapse", sections="all",
                         cells="b0")
    cfg = c.config(node_sets=SETS, connection_overrides=overrides,
                   inputs=replay(spikes), reports=report, run={"tstop": 40.0})
    _, out = run(cfg)
    t, levels = _synapse_report(out / "nm.h5")
    dend = levels[1]                                   # synapse id 1: dend[0](0.9), nearest
    assert np.all(levels[0] == 0)                      # soma synapse: untouched
    after = t > 12.05
    assert np.all(dend[t < 11.95] == 0)
    expected = 2.5 * np.exp(-(t[after] - 12.0) / 15.0)   # override strength, column dtc
    assert dend[after] == pytest.approx(expected, rel=2e-3, abs=1e-6)


def _synapse_report(path):
    import libsonata

    frame = libsonata.ElementReportReader(str(path))["balls"].get()
    data = np.asarray(frame.data)
    return np.asarray(frame.times), {int(e): data[:, k] for k, (_, e) in enumerate(frame.ids)}
