"""``seclamp`` holds the soma at the command voltage against a strong current (NEURON run)."""

import numpy as np
import pytest

from tests.scientific.circuits import PASSIVE_E, write_circuit, write_simulation
from tests.scientific.conftest import run_probe

DT = 0.025


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("seclamp")
    write_circuit(d, {"cortex": {"type": "biophysical", "n": 2}},
                  node_sets={"c0": {"population": "cortex", "node_id": [0]},
                             "All": {"population": "cortex"}})
    inputs = {
        # 0.05 nA into 1000 MΩ would depolarise by 50 mV
        "push": dict(module="linear", input_type="current_clamp", delay=0.0, duration=100.0,
                     amp_start=0.05, node_set="All"),
        "clamp": dict(module="seclamp", input_type="voltage_clamp", delay=0.0, duration=60.0,
                      voltage=-60.0, duration_levels=[20.0, 15.0], voltage_levels=[-50.0, -72.0],
                      node_set="c0"),
    }
    config = write_simulation(d, inputs, tstop=100.0, dt=DT)
    return run_probe(config, d / "out", {"soma_v": True, "sources": True})


@pytest.mark.parametrize("start, stop, target", [(0.0, 20.0, -60.0), (20.0, 35.0, -50.0),
                                                 (35.0, 60.0, -72.0)])
def test_seclamp_holds_each_level_within_0_1_mV(run, start, stop, target):
    t, v = run.t, run.arrays["v/0"]
    window = (t > start + 2 * DT) & (t < stop - DT)
    assert np.max(np.abs(v[window] - target)) < 0.1


def test_clamp_releases_after_its_duration(run):
    t, v0, v1 = run.t, run.arrays["v/0"], run.arrays["v/1"]
    assert v1[-1] == pytest.approx(PASSIVE_E + 50.0 * (1 - np.exp(-10.0)), abs=0.05)
    late = t > 90.0
    assert np.all(v0[late] > -72.0 + 20.0)       # charging towards +50 mV above rest again
    (_, meta), = run.sources("clamp")
    assert meta["kind"] == "SEClamp"
