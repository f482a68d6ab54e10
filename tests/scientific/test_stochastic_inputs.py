"""Stochastic inputs against theory: noise, shot noise (Campbell), Ornstein–Uhlenbeck.

The waveforms are built in the driver's build phase from NEURON's Random123 streams, for the
whole input duration, whatever tstop: the statistics use the vectors each source plays (long
inputs, short run); one check ties them to the current NEURON actually injects.
"""

import math

import numpy as np
import pytest
from scipy import integrate

from tests.scientific.circuits import write_circuit, write_simulation
from tests.scientific.conftest import run_probe, samples_between_base_points

N_CELLS = 16
DUR = 8000.0        # ms of signal per cell
THRESHOLD = 0.2     # nA
R_IN = 100.0        # MΩ  -> 1/R = 0.01 µS
DELAY = 3.0

NOISE = dict(mean=0.05, variance=4e-4)
SHOT = dict(rise_time=1.0, decay_time=5.0, rate=200, amp_mean=0.02, amp_var=1e-4, dt=0.1)
SHOT_SMALL_K = dict(SHOT, amp_var=8e-4)           # gamma shape 0.5: the k < 1 sampler
ABS_SHOT = dict(rise_time=0.5, decay_time=4.0, mean=0.1, sigma=0.02, dt=0.1)
OU = dict(tau=5.0, mean=0.05, sigma=0.02, dt=0.25)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("stochastic")
    n = N_CELLS
    write_circuit(d, {"cortex": {"type": "biophysical", "n": n,
                                 "dynamics": {"threshold_current": [THRESHOLD] * n,
                                              "holding_current": [0.0] * n,
                                              "input_resistance": [R_IN] * n}}},
                  node_sets={"All": {"population": "cortex"},
                             "First": {"population": "cortex", "node_id": [0]}})
    base = dict(input_type="current_clamp", delay=DELAY, duration=DUR, node_set="All")
    inputs = {
        "noise": dict(base, module="noise", **NOISE),
        "noise_relative": dict(base, module="noise", mean_percent=10.0, variance=0.5),
        "shot": dict(base, module="shot_noise", **SHOT),
        "shot_small_k": dict(base, module="shot_noise", **SHOT_SMALL_K),
        "shot_absolute": dict(base, module="absolute_shot_noise", **ABS_SHOT),
        "shot_relative_g": dict(base, module="relative_shot_noise", input_type="conductance",
                                rise_time=0.5, decay_time=4.0, mean_percent=50.0,
                                sd_percent=10.0, dt=0.1, reversal=-10.0),
        "ou": dict(base, module="ornstein_uhlenbeck", **OU),
        "ou_relative_g": dict(base, module="relative_ornstein_uhlenbeck",
                              input_type="conductance", tau=3.0, mean_percent=100.0,
                              sd_percent=10.0, dt=0.25),
        "ou_same_seed": dict(base, module="ornstein_uhlenbeck", random_seed=12, **OU),
        "noise_short": dict(base, module="noise", duration=30.0, node_set="First", **NOISE),
    }
    config = write_simulation(d, inputs, tstop=40.0, dt=0.025)
    return run_probe(config, d / "out", {"sources": True})


def _samples(run, name, step, duration=DUR):
    """Per-cell sample arrays of one input, from the played vectors."""
    out = []
    for k, _ in run.sources(name):
        t, v = run.signal(k)
        out.append(samples_between_base_points(t, v, DELAY, duration, step)[1])
    return np.array(out)


def _conductance(run, name, step):
    """Per-cell conductance samples (µS) of a conductance input (played as rs = 1/g)."""
    out = []
    for k, _ in run.sources(name):
        t, rs = run.signal(k)
        t, rs = t[1:], rs[1:]               # the leading (0, 0) point of conductance signals
        rs = samples_between_base_points(t, rs, DELAY, DUR, step)[1]
        out.append(np.where(rs >= 1e9, 0.0, 1.0 / rs))
    return np.array(out)


def _within_3_se(x, mean, var):
    n = x.size
    se_mean, se_var = math.sqrt(var / n), var * math.sqrt(2.0 / (n - 1))
    return abs(x.mean() - mean) < 3 * se_mean and abs(x.var(ddof=1) - var) < 3 * se_var


def _campbell(rate_hz, amp_mean, amp_var, rise, decay):
    """Mean and variance of shot noise with unit-peak bi-exponential shots."""
    t_pk = math.log(decay / rise) * rise * decay / (decay - rise)
    peak = math.exp(-t_pk / decay) - math.exp(-t_pk / rise)

    def shape(t):
        return (math.exp(-t / decay) - math.exp(-t / rise)) / peak
    i1 = integrate.quad(shape, 0, 60 * decay, limit=500)[0]
    i2 = integrate.quad(lambda t: shape(t) ** 2, 0, 60 * decay, limit=500)[0]
    lam = rate_hz / 1000.0
    return lam * amp_mean * i1, lam * (amp_var + amp_mean ** 2) * i2


def _skip_transient(x, tau, step):
    """Drop the start of each cell's signal (shot noise starts from 0)."""
    return x[:, int(10 * tau / step):]


# ---- noise -------------------------------------------------------------------------------------
def test_noise_mean_and_variance_within_three_standard_errors(run):
    x = _samples(run, "noise", 0.5)
    assert x.shape == (N_CELLS, int(DUR / 0.5) + 1)
    assert _within_3_se(x, NOISE["mean"], NOISE["variance"])
    # cells draw from their own streams
    assert abs(np.corrcoef(x[0], x[1])[0, 1]) < 0.02


def test_relative_noise_scales_with_threshold(run):
    x = _samples(run, "noise_relative", 0.5)
    assert _within_3_se(x, THRESHOLD * 10.0 / 100, THRESHOLD * 0.5 / 100)


def test_noise_is_what_neuron_injects(run):
    (k, _), = run.sources("noise_short")
    t_sig, v_sig = run.signal(k)
    times, values = samples_between_base_points(t_sig, v_sig, DELAY, 30.0, 0.5)
    t, injected = run.t, -run.arrays[f"src/{k}/i"]
    mid = t - 0.0125
    for ts, vs in zip(times[:-1], values[:-1]):
        n = int(np.argmin(np.abs(mid - (ts + 0.0125))))   # step right after the sample time
        expected = np.interp(mid[n], times, values)
        assert injected[n] == pytest.approx(expected, rel=1e-12, abs=1e-15)


# ---- shot noise --------------------------------------------------------------------------------
@pytest.mark.parametrize("name, params", [("shot", SHOT), ("shot_small_k", SHOT_SMALL_K)])
def test_shot_noise_mean_and_variance_match_campbell(run, name, params):
    x = _skip_transient(_samples(run, name, params["dt"]), params["decay_time"], params["dt"])
    mean, var = _campbell(params["rate"], params["amp_mean"], params["amp_var"],
                          params["rise_time"], params["decay_time"])
    assert x.mean() == pytest.approx(mean, rel=0.05)
    assert x.var() == pytest.approx(var, rel=0.05)


def test_absolute_shot_noise_gives_the_requested_mean_and_sd(run):
    x = _skip_transient(_samples(run, "shot_absolute", 0.1), 4.0, 0.1)
    assert x.mean() == pytest.approx(ABS_SHOT["mean"], rel=0.05)
    assert x.std() == pytest.approx(ABS_SHOT["sigma"], rel=0.05)


def test_relative_shot_noise_in_conductance_mode(run):
    g = _skip_transient(_conductance(run, "shot_relative_g", 0.1), 4.0, 0.1)
    reference = 1.0 / R_IN
    assert g.mean() == pytest.approx(0.5 * reference, rel=0.05)
    assert g.std() == pytest.approx(0.1 * reference, rel=0.05)
    (_, meta), *_ = run.sources("shot_relative_g")
    assert meta["kind"] == "ConductanceSource"


# ---- Ornstein–Uhlenbeck ------------------------------------------------------------------------
def _ou_estimates(x, step):
    centred = x - x.mean()
    lag1 = (centred[:, 1:] * centred[:, :-1]).mean() / centred.var()
    return x.mean(), x.var(), -step / math.log(lag1)


def test_ou_mean_variance_and_correlation_time(run):
    x = _skip_transient(_samples(run, "ou", OU["dt"]), OU["tau"], OU["dt"])
    mean, var, tau = _ou_estimates(x, OU["dt"])
    assert mean == pytest.approx(OU["mean"], rel=0.05)
    assert var == pytest.approx(OU["sigma"] ** 2, rel=0.05)
    assert tau == pytest.approx(OU["tau"], rel=0.05)
    # the autocorrelation at lag tau is 1/e
    lag = round(OU["tau"] / OU["dt"])
    centred = x - x.mean()
    assert (centred[:, lag:] * centred[:, :-lag]).mean() / centred.var() == \
        pytest.approx(math.exp(-1), rel=0.05)


def test_relative_ou_in_conductance_mode(run):
    g = _skip_transient(_conductance(run, "ou_relative_g", 0.25), 3.0, 0.25)
    mean, var, tau = _ou_estimates(g, 0.25)
    reference = 1.0 / R_IN
    assert mean == pytest.approx(1.0 * reference, rel=0.05)
    assert var == pytest.approx((0.1 * reference) ** 2, rel=0.05)
    assert tau == pytest.approx(3.0, rel=0.05)


def test_random_seed_gives_every_cell_the_same_signal(run):
    x = _samples(run, "ou_same_seed", OU["dt"])
    assert all(np.array_equal(x[0], row) for row in x[1:])
    y = _samples(run, "ou", OU["dt"])
    assert not np.array_equal(y[0], y[1])
