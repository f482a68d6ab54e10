"""Pure input waveforms, parameter maps, stream ids and checks (no NEURON needed)."""

import math

import numpy as np
import pytest
from scipy import integrate

from neurodamus.connectivity.minis import mini_rates, mini_stream_ids
from neurodamus.stimuli import signals
from neurodamus.stimuli.rng import stream_ids
from neurodamus.stimuli.seclamp import level_schedule
from neurodamus.stimuli.validation import check_raw_inputs


class FakeRandom:
    """numpy stand-in with NEURON Random's call semantics; logs every call."""

    def __init__(self, seed=0):
        self.gen = np.random.default_rng(seed)
        self.dist = ("normal", 0.0, 1.0)
        self.calls = []

    def _draw(self):
        kind, a, b = self.dist
        if kind == "normal":
            return self.gen.normal(a, math.sqrt(b))
        if kind == "uniform":
            return self.gen.uniform(a, b)
        return self.gen.exponential(a)

    def normal(self, mean, var):
        self.calls.append(("normal", mean, var))
        self.dist = ("normal", mean, var)
        return self._draw()

    def uniform(self, a, b):
        self.calls.append(("uniform", a, b))
        self.dist = ("uniform", a, b)
        return self._draw()

    def negexp(self, mean):
        self.calls.append(("negexp", mean))
        self.dist = ("negexp", mean, None)
        return self._draw()

    def repick(self):
        return self._draw()

    def fill(self, n):
        self.calls.append(("fill", n))
        return np.array([self._draw() for _ in range(n)])


# ---- deterministic waveforms -------------------------------------------------------------------
def test_linear_skeleton_with_and_without_delay():
    t, v = signals.linear(5.0, 10.0, 1.0, 2.0)
    assert t.tolist() == [0, 5, 5, 15, 15] and v.tolist() == [0, 0, 1, 2, 0]
    t, v = signals.linear(0.0, 10.0, 1.0)
    assert t.tolist() == [0, 0, 10, 10] and v.tolist() == [0, 1, 1, 0]


def test_indgen_counts_like_neuron():
    assert signals.indgen(0.3, 1.3, 0.5).tolist() == [0.3, 0.8, 1.3]
    assert len(signals.indgen(0.0, 1.0, 0.1)) == 11      # 1e-9 tolerance keeps the end
    assert len(signals.indgen(0.0, 0.0, 0.5)) == 1


def _pulse_formula(t, t0, duration, amp, width, period):
    """Left and right limits of A·[t0 <= t < t0+T]·[(t-t0) mod period < width]."""
    def at(x):
        if not t0 <= x < t0 + duration:
            return 0.0
        return amp if (x - t0) % period < width else 0.0
    return at(t - 1e-7), at(t + 1e-7)


@pytest.mark.parametrize("duration", [100.0, 103.0, 108.0])   # remainder r = 0, r < w, r >= w
def test_pulse_train_matches_formula(duration):
    t, v = signals.pulse_train(2.0, duration, 0.5, width=5.0, frequency=100.0)
    period = 10.0
    grid = np.arange(0, 115, 0.025)
    played = np.interp(grid, t, v)   # continuous play: linear between points
    for x, y in zip(grid, played):
        left, right = _pulse_formula(x, 2.0, duration, 0.5, 5.0, period)
        assert y in (left, right) or min(abs(y - left), abs(y - right)) < 1e-12, (x, y)
    assert t[-1] == pytest.approx(2.0 + duration) or t[-1] <= 2.0 + duration
    assert v[-1] == 0


def test_pulse_remainder_rules():
    # n = 1 full pulse, r = 7 >= w = 5: one more full pulse, then min(gap, r - w) = 2
    t, _ = signals.pulse_train(0.0, 17.0, 1.0, 5.0, 100.0)
    assert t[-1] == pytest.approx(17.0)
    # r = 3 < w: a pulse of width 3
    t, v = signals.pulse_train(0.0, 13.0, 1.0, 5.0, 100.0)
    assert t.tolist()[-5:] == [10.0, 10.0, 13.0, 13.0, 13.0]
    assert v.tolist()[-5:] == [0.0, 1.0, 1.0, 0.0, 0.0]
    with pytest.raises(ValueError):
        signals.pulse_train(0.0, 10.0, 1.0, 20.0, 100.0)


def test_sinusoid_matches_formula_and_neuron_order():
    t, v = signals.sinusoid(1.0, 10.0, 2.0, 40.0, 0.025)
    assert len(t) == 1 + 401 + 1 and t[-1] == 11.0 and v[-1] == 0.0
    i = np.arange(401)
    assert np.allclose(v[1:-1], 2.0 * np.sin(2 * np.pi * 40.0 * i * 0.025 / 1000), atol=1e-14)
    period = 2 * math.pi / 1000 * 40.0 * 0.025
    assert v[5] == 2.0 * math.sin(period * 4)   # NEURON's Vector.sin operation order


# ---- noise -------------------------------------------------------------------------------------
def test_noise_predelay_draw_counts():
    assert signals.noise_predelay_draws(10.0, 3.0, 0.025) == [6, 6, 6, 2]
    assert signals.noise_predelay_draws(0.0, 3.0, 0.025) == []
    assert len(signals.noise_predelay_draws(10.0, 0.0, 0.025)) < 1000   # terminates


def test_noise_draw_order_and_samples():
    rng = FakeRandom(1)
    t, v = signals.noise(rng, 10.0, 3.0, 0.5, 0.04, 0.025)
    assert rng.calls == [("fill", 6), ("fill", 6), ("fill", 6), ("fill", 2),
                         ("normal", 0.5, 0.04), ("fill", 7)]
    assert t.tolist() == [0, 10, 10, 10.5, 11, 11.5, 12, 12.5, 13, 13]
    assert v[0] == v[1] == v[-1] == 0


# ---- shot noise --------------------------------------------------------------------------------
def _campbell(rate_hz, amp_mean, amp_var, rise, decay):
    t_pk = math.log(decay / rise) * rise * decay / (decay - rise)
    peak = math.exp(-t_pk / decay) - math.exp(-t_pk / rise)

    def h(t):
        return (math.exp(-t / decay) - math.exp(-t / rise)) / peak
    i1 = integrate.quad(h, 0, 50 * decay, limit=500)[0]
    i2 = integrate.quad(lambda t: h(t) ** 2, 0, 50 * decay, limit=500)[0]
    lam = rate_hz / 1000.0
    return lam * amp_mean * i1, lam * (amp_var + amp_mean ** 2) * i2


def test_mean_sd_to_shot_parameters_inverts_campbell():
    p = signals.shot_noise_params(0.2, 0.05, 0.4, 4.0, 0.5)
    mean, var = _campbell(p.rate, p.amp_mean, p.amp_var, 0.4, 4.0)
    assert mean == pytest.approx(0.2, rel=1e-6)
    assert var == pytest.approx(0.05 ** 2, rel=1e-6)
    assert p.rate > 0 and p.amp_mean > 0 and p.amp_var > 0
    neg = signals.shot_noise_params(-0.2, 0.05, 0.4, 4.0, 0.5)
    assert neg.amp_mean == pytest.approx(-p.amp_mean) and neg.rate == pytest.approx(p.rate)


@pytest.mark.parametrize("shape", [0.4, 3.0])
def test_gamma_sampler_moments(shape):
    rng = FakeRandom(3)
    x = signals.gamma_marsaglia_tsang(rng, shape, 2.0, 20000)
    assert x.mean() == pytest.approx(shape * 2.0, rel=0.03)
    assert x.var() == pytest.approx(shape * 4.0, rel=0.06)
    if shape < 1:
        assert rng.calls[0] == ("uniform", 0, 1) and rng.calls[1] == ("fill", 20000)


def test_biexp_filter_is_the_recursion_bit_for_bit():
    e = np.random.default_rng(0).exponential(size=500) * (np.arange(500) % 7 == 0)
    a, b, _ = signals.biexp_peak_norm(0.25, 0.4, 4.0)
    p_ref, b_ref = np.zeros(500), np.zeros(500)
    for n in range(1, 500):
        p_ref[n] = a * p_ref[n - 1] + b * b_ref[n - 1]
        b_ref[n] = b * b_ref[n - 1] + e[n - 1]
    assert np.array_equal(signals._biexp_filter(e, a, b), p_ref)


def test_biexp_kernel_has_unit_peak():
    a, b, norm = signals.biexp_peak_norm(0.01, 1.0, 5.0)
    impulse = np.zeros(3000)
    impulse[0] = 1.0
    assert (norm * signals._biexp_filter(impulse, a, b)).max() == pytest.approx(1.0, rel=1e-4)


def test_shot_noise_call_order():
    rng = FakeRandom(5)
    signals.shot_noise_samples(rng, 100.0, 0.4, 4.0, 50.0, 0.1, 0.001, 0.25)
    n_ev = 1 + int(100.0 * 50 / 1000)
    assert rng.calls[0] == ("negexp", 1 / 50.0)
    assert rng.calls[1] == ("fill", int(n_ev + 3 * math.sqrt(n_ev)))


# ---- OU ----------------------------------------------------------------------------------------
def test_ou_recursion_bit_for_bit():
    rng = FakeRandom(7)
    s = signals.ou_samples(rng, 50.0, 3.0, 0.2, 0.1, 0.25)
    rng2 = FakeRandom(7)
    rng2.normal(0, 1)
    z_raw = rng2.fill(len(s))
    mu = math.exp(-0.25 / 3.0)
    z = 0.2 * math.sqrt(1 - mu * mu) * z_raw
    ref = np.zeros(len(s))
    for n in range(1, len(s)):
        ref[n] = mu * ref[n - 1] + z[n]
    assert np.array_equal(s, ref + 0.1)
    white = signals.ou_samples(FakeRandom(7), 50.0, 0.0, 0.2, 0.0, 0.25)
    assert np.array_equal(white, 0.2 * z_raw)


# ---- conductance, seclamp, streams -------------------------------------------------------------
def test_conductance_to_rs():
    t, rs = signals.conductance_to_rs([0, 1, 1, 2], [0.0, 0.5, 2e9, -1.0])
    assert t.tolist() == [0, 0, 1, 1, 2]
    assert rs.tolist() == [1e9, 1e9, 2.0, 1e9, 1e9]


def test_seclamp_levels_switch_at_cumulative_times():
    times, volts = level_schedule([10, 5, 20], [-50, -60, -70])
    assert times.tolist() == [10, 15, 35] and volts.tolist() == [-50, -60, -70]


def test_stream_ids_per_family():
    assert stream_ids("noise", 2, 5, 1000) == (102, 505, 1301)
    assert stream_ids("shot_noise", 0, 0, 7) == (2997, 19216, 131)
    assert stream_ids("shot_noise", 1, 0, 7, random_seed=42) == (2998, 19216, 42)
    assert stream_ids("ornstein_uhlenbeck", 3, 1, 7) == (3000, 291205, 131)


def test_minis_rates_and_streams():
    rates = mini_rates(np.array([5, 120, 120]), np.array([2.0, 2.0, 2.0]),
                       np.array([1.0, 1.0, 1.0]), np.array([np.nan, np.nan, 7.0]))
    assert rates.tolist() == [1.0, 2.0, 7.0]
    exp_ids, unif_ids = mini_stream_ids(3, 1000, 10, 20, 5)
    assert exp_ids == (203, 1251, 10 * 65536 + 20 + 5 + 300)
    assert unif_ids == (203, 1251, 10 * 65536 + 20 + 5 + 350)


# ---- raw input checks --------------------------------------------------------------------------
def _messages(inputs):
    return [str(i) for i in check_raw_inputs("sim.json", inputs).fatals]


def test_raw_checks_name_block_and_key():
    base = dict(input_type="current_clamp", delay=0, duration=10, node_set="All")
    msgs = _messages({"a": dict(base, module="foo")})
    specs = sorted(__import__("neurodamus.stimuli", fromlist=["SPECS"]).SPECS)
    assert msgs == [f"sim.json: inputs.a.module: input module 'foo' is unknown (supported: "
                    f"{', '.join(specs)})"]
    assert _messages({"b": dict(base, module="linear")}) == \
        ["sim.json: inputs.b.amp_start: missing (required by module 'linear')"]
    assert _messages({"c": dict(base, module="linear", amp_start=1, duration=-1)}) == \
        ["sim.json: inputs.c.duration: must be >= 0, got -1"]
    msgs = _messages({"d": dict(base, module="seclamp", voltage=-70)})
    assert msgs == ["sim.json: inputs.d.input_type: module 'seclamp' takes input_type "
                    "'voltage_clamp', got 'current_clamp'"]
    msgs = _messages({"e": dict(base, module="noise", variance=1)})
    assert msgs == ["sim.json: inputs.e.mean: give exactly one of mean or mean_percent (got 0)"]
    msgs = _messages({"f": dict(base, module="linear", amp_start="x", compartment_set="c")})
    assert "sim.json: inputs.f.amp_start: must be a number, got 'x'" in msgs
    assert any("inputs.f.node_set: give exactly one of node_set or compartment_set" in m
               for m in msgs)
    assert _messages({"g": dict(base, module="linear", amp_start=1)}) == []
