"""Deterministic current inputs against their formulas, in a real NEURON run (one process).

Cells are single passive compartments (R = 1000 MΩ, τ = 10 ms, see circuits.py).
The checks use the current the source injects during each step (its ``i``): NEURON evaluates
the continuously played amplitude at the step midpoint, and a jump (a repeated time point)
takes effect from the first step whose midpoint is past it. So the current recorded at t_n is
the waveform at t_n - dt/2, jumps included.
"""


import numpy as np
import pytest

from tests.scientific.circuits import PASSIVE_E, write_circuit, write_simulation
from tests.scientific.conftest import run_probe

DT = 0.025
T0, T = 10.0, 100.0
STEP = 0.02          # nA
THRESHOLD, HOLDING = 0.04, 0.013


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("current")
    n = 8
    write_circuit(d, {"cortex": {"type": "biophysical", "n": n,
                                 "template": ["TestPassive"] * 7 + ["TestCable"],
                                 "dynamics": {"threshold_current": [THRESHOLD] * n,
                                              "holding_current": [HOLDING] * n}}},
                  templates=("TestPassive", "TestCable"),
                  node_sets={f"c{i}": {"population": "cortex", "node_id": [i]} for i in range(n)})
    (d / "compartment_sets.json").write_text(
        '{"cable": {"population": "cortex", "compartment_set": [[7, 1, 0.25]]}}')
    base = dict(input_type="current_clamp", delay=T0, duration=T)
    inputs = {
        "step": dict(base, module="linear", amp_start=STEP, node_set="c0"),
        "step_electrode": dict(base, module="linear", amp_start=STEP, node_set="c1",
                               represents_physical_electrode=True),
        "pulse": dict(base, module="pulse", amp_start=0.03, width=3.0, frequency=70.0,
                      duration=103.3, node_set="c2"),
        "sine": dict(base, module="sinusoidal", amp_start=0.05, frequency=37.0, node_set="c3"),
        "ramp": dict(base, module="linear", amp_start=0.01, amp_end=0.03, node_set="c4"),
        "relative": dict(base, module="relative_linear", percent_start=50, node_set="c5"),
        "subthreshold": dict(base, module="subthreshold", percent_less=25, node_set="c5"),
        "hyper": dict(base, module="hyperpolarizing", node_set="c6"),
        "on_dendrite": dict(base, module="linear", amp_start=0.01, compartment_set="cable"),
    }
    config = write_simulation(d, inputs, tstop=130.0, dt=DT,
                              compartment_sets_file="compartment_sets.json")
    return run_probe(config, d / "out", {"soma_v": True, "sources": True})


def _source(run, name):
    (k, meta), = run.sources(name)
    return k, meta


def test_step_into_passive_compartment_follows_rc_charging(run):
    _, meta = _source(run, "step")
    cell = run.meta["cells"][meta["gid"]]
    resistance = 1e-6 / (cell["g_pas"] * cell["area"] * 1e-8)          # MΩ
    tau = cell["cm"] / cell["g_pas"] * 1e-3                             # ms
    t, v = run.t, run.arrays[f"v/{meta['gid']}"]
    on = (t >= T0) & (t <= T0 + T)
    theory = PASSIVE_E + STEP * resistance * (1 - np.exp(-(t[on] - T0) / tau))
    error = np.max(np.abs(v[on] - theory)) / (STEP * resistance)
    assert meta["kind"] == "MembraneCurrentSource"
    assert error < 0.01, f"max deviation {100 * error:.3f} % of I·R"
    before = t < T0
    assert np.allclose(v[before], PASSIVE_E, atol=1e-9)


def test_electrode_and_membrane_current_give_the_same_voltage(run):
    _, m0 = _source(run, "step")
    _, m1 = _source(run, "step_electrode")
    assert m1["kind"] == "IClamp"
    assert np.allclose(run.arrays[f"v/{m0['gid']}"], run.arrays[f"v/{m1['gid']}"], atol=1e-9)


def _pulse_value(x, t0, duration, amp, width, period):
    if not t0 <= x < t0 + duration:
        return 0.0
    return amp if (x - t0) % period < width else 0.0


def _injected(run, k):
    """Current injected during each step (nA, positive depolarises)."""
    kind = run.meta["sources"][k]["kind"]
    i = run.arrays[f"src/{k}/i"]
    return i if kind == "IClamp" else -i


def test_pulse_train_sample_by_sample(run):
    k, _ = _source(run, "pulse")
    injected = _injected(run, k)
    period = 1000.0 / 70.0
    mid = run.t[1:] - DT / 2
    n_bad = 0
    for x, y in zip(mid, injected[1:]):
        lo = _pulse_value(x - 1e-9, T0, 103.3, 0.03, 3.0, period)
        hi = _pulse_value(x + 1e-9, T0, 103.3, 0.03, 3.0, period)
        n_bad += min(abs(y - lo), abs(y - hi)) > 1e-12
    assert n_bad == 0
    expected_on = sum(_pulse_value(x, T0, 103.3, 0.03, 3.0, period) > 0 for x in mid)
    assert (injected > 0).sum() == expected_on > 500


def test_sinusoid_sample_by_sample(run):
    k, _ = _source(run, "sine")
    t, injected = run.t, _injected(run, k)
    grid = T0 + np.arange(int(T / DT) + 1) * DT              # the sine's own sample times
    samples = 0.05 * np.sin(2 * np.pi * 37.0 * (grid - T0) / 1000)
    on = (t - DT / 2 > T0) & (t - DT / 2 < T0 + T)       # steps whose midpoint is inside
    mid = t[on] - DT / 2
    assert np.max(np.abs(injected[on] - np.interp(mid, grid, samples))) < 1e-12
    exact = 0.05 * np.sin(2 * np.pi * 37.0 * (mid - T0) / 1000)
    assert np.max(np.abs(injected[on] - exact)) < 1e-6       # 0.002 % of the amplitude
    assert np.all(injected[~on] == 0)


def test_ramp_is_linear(run):
    k, _ = _source(run, "ramp")
    t, injected = run.t, _injected(run, k)
    on = (t - DT / 2 > T0) & (t - DT / 2 < T0 + T)
    expected = 0.01 + 0.02 * (t[on] - DT / 2 - T0) / T
    assert np.max(np.abs(injected[on] - expected)) < 1e-12
    assert np.all(injected[~on] == 0)


def test_relative_amplitudes_follow_threshold_and_holding(run):
    for name, amp in (("relative", THRESHOLD * 0.5), ("subthreshold", THRESHOLD * 75 / 100),
                      ("hyper", HOLDING)):
        k, _ = _source(run, name)
        t, v = run.signal(k)
        assert t.tolist() == [0.0, T0, T0, T0 + T, T0 + T]
        assert v.tolist() == [0.0, 0.0, amp, amp, 0.0], name


def test_compartment_set_injects_at_the_listed_point(run):
    _, meta = _source(run, "on_dendrite")
    assert meta["gid"] == 7 and meta["section"].endswith(".dend[0]")
    assert abs(meta["x"] - 0.25) <= 0.5 / 201 + 1e-12
