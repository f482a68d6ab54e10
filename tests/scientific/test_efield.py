"""``spatially_uniform_e_field`` on a straight passive cable against the analytic solution.

Cells: ``TestCable`` (a 1000 µm dendrite of 1 µm along local +x from the soma centre, λ = 500
µm, 201 segments). Cell 0 is not rotated; cell 1 is rotated by 90° about z (quaternion), so its
dendrite lies along global +y. Block ``dc``: Ex = 10 V/m on both, from t = 0. Block ``ac``:
Ey = 20 V/m at 100 Hz with phase 0.3, delay 10 ms, ramps of 5 ms, on cell 1 only.

Checks: the extracellular potential of every recorded segment is 1000·E·d (d = segment start −
soma centre, in m) times the ramped cosine, at every step; and the steady-state membrane
polarisation of cell 0 is the sealed-cable solution V = −G λ sinh((x − L/2)/λ)/cosh(L/2λ).
"""

import math

import numpy as np
import pytest

from tests.scientific.circuits import (
    CABLE_DIAM,
    CABLE_G,
    CABLE_LENGTH,
    CABLE_RA,
    PASSIVE_E,
    quaternion_z,
    write_circuit,
    write_simulation,
)
from tests.scientific.conftest import run_probe

DT = 0.025
EX, EY, FREQ, PHASE = 10.0, 20.0, 100.0, 0.3
AC = dict(delay=10.0, ramp_up=5.0, duration=20.0, ramp_down=5.0)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("efield")
    qx, qy, qz, qw = quaternion_z(math.pi / 2)
    write_circuit(d, {"cortex": {"type": "biophysical", "n": 2, "template": "TestCable",
                                 "attrs": {"orientation_x": [0.0, qx], "orientation_y": [0.0, qy],
                                           "orientation_z": [0.0, qz],
                                           "orientation_w": [1.0, qw]}}},
                  templates=("TestCable",),
                  node_sets={"All": {"population": "cortex"},
                             "c1": {"population": "cortex", "node_id": [1]}})
    inputs = {
        "dc": dict(module="spatially_uniform_e_field", input_type="extracellular_stimulation",
                   delay=0.0, duration=200.0, node_set="All",
                   fields=[{"Ex": EX, "Ey": 0.0, "Ez": 0.0}]),
        "ac": dict(module="spatially_uniform_e_field", input_type="extracellular_stimulation",
                   delay=AC["delay"], duration=AC["duration"], ramp_up_time=AC["ramp_up"],
                   ramp_down_time=AC["ramp_down"], node_set="c1",
                   fields=[{"Ex": 0.0, "Ey": EY, "Ez": 0.0, "frequency": FREQ,
                            "phase": PHASE}]),
    }
    config = write_simulation(d, inputs, tstop=100.0, dt=DT)
    return run_probe(config, d / "out", {"efield": True, "every": 10})


def _envelope(t):
    start, up, dur, down = AC["delay"], AC["ramp_up"], AC["duration"], AC["ramp_down"]
    end = start + up + dur + down
    r = np.where((t > start) & (t < end), 1.0, 0.0)
    r = np.where((t > start) & (t < start + up), (t - start) / up, r)
    r = np.where((t > start + up + dur) & (t < end), (end - t) / down, r)
    return r


def _segments(run, gid):
    (k, meta), = [(k, m) for k, m in enumerate(run.meta["efield"]) if m["gid"] == gid]
    recorded = sorted({int(key.split("/")[2]) for key in run.arrays
                       if key.startswith(f"ef/{k}/")})
    return k, meta, recorded


def _start_x(meta, j):
    """Distance (µm) of segment j's start point from the soma centre along the dendrite."""
    if "soma" in meta["sections"][j]:
        return 0.0
    nseg = meta["nseg"][j]
    return math.floor(meta["x"][j] * nseg) / nseg * meta["L"][j]


def test_extracellular_potential_is_the_field_gradient(run):
    t = run.t
    mid = t - DT / 2          # the integrator computes the potential once per step, mid-step
    k, meta, recorded = _segments(run, 0)
    assert meta["inputs"] == ["dc"]
    for j in recorded:
        phi = 1000 * EX * _start_x(meta, j) * 1e-6
        expected = np.where(mid > 0, phi, 0.0)
        assert np.max(np.abs(run.arrays[f"ef/{k}/{j}/e"][1:] - expected[1:])) < 1e-9
    k, meta, recorded = _segments(run, 1)
    assert meta["inputs"] == ["dc", "ac"]
    for j in recorded:
        phi = 1000 * EY * _start_x(meta, j) * 1e-6       # the rotated dendrite lies along +y
        expected = phi * _envelope(mid) * np.cos(2 * np.pi * FREQ * (mid - AC["delay"]) / 1000
                                                 + PHASE)
        assert np.max(np.abs(run.arrays[f"ef/{k}/{j}/e"][1:] - expected[1:])) < 1e-9


def test_steady_state_polarisation_matches_cable_theory(run):
    lam = math.sqrt(CABLE_DIAM * 1e-4 / (4 * CABLE_RA * CABLE_G)) * 1e4     # µm
    gradient = 1000 * EX * 1e-6                                              # mV/µm
    k, meta, recorded = _segments(run, 0)
    n = np.searchsorted(run.t, 60.0)        # 6 membrane time constants after the field is on
    worst, scale = 0.0, gradient * lam * math.tanh(CABLE_LENGTH / (2 * lam))
    checked = 0
    for j in recorded:
        if "dend" not in meta["sections"][j]:
            continue
        x = meta["x"][j] * CABLE_LENGTH
        theory = -gradient * lam * math.sinh((x - CABLE_LENGTH / 2) / lam) / \
            math.cosh(CABLE_LENGTH / (2 * lam))
        vm = run.arrays[f"ef/{k}/{j}/v"][n] - PASSIVE_E
        worst = max(worst, abs(vm - theory))
        checked += 1
    assert checked > 10
    assert worst < 0.02 * scale, f"worst deviation {worst:.4f} mV of {scale:.3f} mV"
