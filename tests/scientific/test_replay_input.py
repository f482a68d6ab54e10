"""The ``replay`` input module (issue 15, item 6): a recorded soma current played back.

Scientific check: a passive cell is voltage-clamped (``seclamp`` with levels) and the clamp
current ``SEClamp.i`` is written as a compartment report; replaying that report as a current
into an identical, unclamped cell must give the clamped voltage trace back.

Why not bit for bit: the clamp acts implicitly (its conductance is in NEURON's matrix), while
the recorded ``SEClamp.i`` (row k: the current of the step ending at t_k) is replayed
explicitly and late: NEURON evaluates a played current at mid-step, so the step from t_k to
t_k+1 gets (row k + row k+1)/2 when interpolating (half a step late) and row k when stepwise
(one step late). With a clamp time constant rs·C = 0.2 ms = 8 steps the error is a transient
at each level switch (measured: at most 1.2 mV interpolated, 2.4 mV stepwise after a 20 mV
switch; 0.06 / 0.12 mV on average); the bounds are twice that, rounded.
"""

import json

import libsonata
import numpy as np
import pytest

from tests.helpers import run_neurodamus
from tests.scientific.circuits import PASSIVE_E, write_circuit, write_simulation

DT, TSTOP = 0.025, 60.0
CLAMP_T, HOLD = 50.0, -70.0
MAX_ERROR, MEAN_ERROR = 2.5, 0.15   # mV, interpolated replay (see above)
LAG_FACTOR = 2.0                     # stepwise: one step late instead of half a step
# seclamp semantics (§4.2): HOLD until 10 ms, then each level from the cumulative duration on
LEVELS = ([10.0, 20.0, 15.0], [-50.0, -60.0, -75.0])


def _report(name, variable, cells="All"):
    return {name: {"type": "compartment", "variable_name": variable, "sections": "soma",
                   "dt": DT, "start_time": 0.0, "end_time": TSTOP, "cells": cells}}


def _trace(path, node=0):
    frame = libsonata.ElementReportReader(str(path))["cells"].get(node_ids=[node])
    return np.asarray(frame.times), np.asarray(frame.data, float)[:, 0]


def _run(config):
    proc = run_neurodamus([config])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.fixture(scope="module")
def clamped(tmp_path_factory):
    d = tmp_path_factory.mktemp("clamp")
    write_circuit(d, {"cells": {"type": "biophysical", "n": 2}},
                  node_sets={"All": {"population": "cells"},
                             "first": {"population": "cells", "node_id": [0]}})
    clamp = {"module": "seclamp", "input_type": "voltage_clamp", "voltage": HOLD,
             "series_resistance": 20.0, "delay": 0.0, "duration": CLAMP_T,
             "duration_levels": LEVELS[0], "voltage_levels": LEVELS[1], "node_set": "first"}
    reports = {**_report("clamp_i", "SEClamp.i", "first"), **_report("v", "v")}
    config = write_simulation(d, {"clamp": clamp}, tstop=TSTOP, dt=DT, reports=reports)
    _run(config)
    return d


def _replay_config(clamped, name, interpolate=True, delay=0.0, duration=TSTOP,
                   node_set="first"):
    sim = json.loads((clamped / "simulation_config.json").read_text())
    sim["inputs"] = {"replayed": {"module": "replay", "input_type": "current_clamp",
                                  "path": str(clamped / "output" / "clamp_i.h5"),
                                  "interpolate": interpolate, "delay": delay,
                                  "duration": duration, "node_set": node_set}}
    sim["reports"] = _report("v", "v")
    sim["output"]["output_dir"] = f"out_{name}"
    path = clamped / f"simulation_{name}.json"
    path.write_text(json.dumps(sim))
    return path


def test_clamp_holds_the_levels(clamped):
    t, v = _trace(clamped / "output" / "v.h5")
    ends = np.append(np.cumsum(LEVELS[0]), CLAMP_T)
    for end, level in zip(ends, [HOLD] + LEVELS[1]):
        assert v[np.searchsorted(t, end - 1.0)] == pytest.approx(level, abs=0.5)


@pytest.mark.parametrize("interpolate", [True, False])
def test_replayed_clamp_current_gives_the_clamped_trace_back(clamped, interpolate):
    name = f"interp{int(interpolate)}"
    proc = _run(_replay_config(clamped, name, interpolate))
    t_ref, v_ref = _trace(clamped / "output" / "v.h5")
    t, v = _trace(clamped / f"out_{name}" / "v.h5")
    assert np.array_equal(t, t_ref)
    factor = 1.0 if interpolate else LAG_FACTOR
    assert np.abs(v - v_ref).max() < MAX_ERROR * factor
    assert np.abs(v - v_ref).mean() < MEAN_ERROR * factor
    assert "not in the report" not in proc.stdout + proc.stderr


def test_delay_shifts_and_duration_cuts_the_replay(clamped):
    _run(_replay_config(clamped, "shifted", delay=5.0, duration=20.0))
    t_ref, v_ref = _trace(clamped / "output" / "v.h5")
    t, v = _trace(clamped / "out_shifted" / "v.h5")
    before = t < 5.0
    assert np.abs(v[before] - PASSIVE_E).max() < 1e-9          # nothing before the delay
    during = (t >= 5.0) & (t <= 25.0)
    # the first 20 ms of the clamped trace, 5 ms later
    np.testing.assert_allclose(v[during], np.interp(t[during] - 5.0, t_ref, v_ref),
                               atol=MAX_ERROR)
    # after the cut the cell relaxes back towards rest (tau = 10 ms)
    late = t > 60.0 - 1.0
    assert np.abs(v[late] - PASSIVE_E).max() < np.abs(v_ref[np.searchsorted(t_ref, 20.0)]
                                                      - PASSIVE_E)


def test_cells_missing_from_the_report_are_counted_in_one_warning(clamped):
    """The report holds node 0 only: node 1 of the input is counted, and left alone."""
    proc = _run(_replay_config(clamped, "missing", node_set="All"))
    text = proc.stdout + proc.stderr
    assert text.count("1 target cell(s) are not in the report") == 1, text
    _, v_other = _trace(clamped / "out_missing" / "v.h5", node=1)
    assert np.abs(v_other - PASSIVE_E).max() < 1e-9


def test_unreadable_report_is_a_config_error(clamped):
    sim = json.loads(_replay_config(clamped, "bad").read_text())
    sim["inputs"]["replayed"]["path"] = "no_such_report.h5"
    path = clamped / "simulation_bad.json"
    path.write_text(json.dumps(sim))
    proc = run_neurodamus([path])
    assert proc.returncode != 0
    assert "inputs.replayed.path: report file not found" in proc.stdout + proc.stderr


@pytest.mark.parametrize("value,message", [
    (None, "inputs.replayed.interpolate: missing (required by module 'replay')"),
    ("yes", "inputs.replayed.interpolate: must be true or false, got 'yes'"),
])
def test_interpolate_is_a_required_boolean(clamped, value, message):
    sim = json.loads(_replay_config(clamped, "interp_key").read_text())
    if value is None:
        del sim["inputs"]["replayed"]["interpolate"]
    else:
        sim["inputs"]["replayed"]["interpolate"] = value
    path = clamped / "simulation_interp_key.json"
    path.write_text(json.dumps(sim))
    proc = run_neurodamus([path])
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr


def test_physical_electrode_plays_the_trace_into_an_iclamp(clamped):
    """With represents_physical_electrode the source is an IClamp; its current (summation
    report, electrode factor -1) is the played trace as NEURON applies it: the mean of the two
    frames around each step (mid-step evaluation of a continuously played vector)."""
    sim = json.loads(_replay_config(clamped, "electrode").read_text())
    sim["inputs"]["replayed"]["represents_physical_electrode"] = True
    sim["reports"]["iclamp"] = {"type": "summation", "variable_name": "IClamp",
                                "sections": "soma", "scaling": "none", "dt": DT,
                                "start_time": 0.0, "end_time": TSTOP, "cells": "first"}
    path = clamped / "simulation_electrode.json"
    path.write_text(json.dumps(sim))
    _run(path)
    _, recorded = _trace(clamped / "output" / "clamp_i.h5")
    _, injected = _trace(clamped / "out_electrode" / "iclamp.h5")
    expected = (recorded[:-1] + recorded[1:]) / 2
    np.testing.assert_allclose(-injected[1:], expected, rtol=1e-5, atol=1e-6)
