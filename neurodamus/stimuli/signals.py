"""Input waveforms as (time, value) point lists (contract §4.1–§4.5). Pure numpy.

Nothing here touches NEURON. Stochastic waveforms take an ``rng`` with the draw semantics of
NEURON's ``Random`` (contract §3.8; see ``rng.py``): ``normal(mean, variance)``,
``uniform(a, b)`` and ``negexp(mean)`` each select a new distribution *and draw one value*;
``repick()`` draws one more from the current distribution; ``fill(n)`` draws ``n`` values from
it (``Vector.setrand``).

The point lists are played into a source with NEURON's continuous ``Vector.play``: values are
linearly interpolated between points and a repeated time gives a step.

Base value: the established driver encloses every waveform with points at a *base* value that is
0 for currents and the ``reversal`` potential for conductances. A conductance equal to a reversal
potential is meaningless (contract §10.6 lists it as an observed defect: a positive reversal R
gives a conductance of R µS outside the signal), so here the base is 0 for both. The result is
identical to the established driver whenever ``reversal <= 0``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

EPSILON = 1e-9          # NEURON's hoc EPSILON, used by Vector.indgen and Vector.where
NOISE_STEP = 0.5        # ms, the fixed sampling step of ``noise`` (contract §4.2)
RS_OFF = 1e9            # MΩ, the series resistance standing for "no conductance" (contract §4.1)


# ---- point-list builder ------------------------------------------------------------------------
class Signal:
    """(time, value) points built left to right from a cursor, as the established driver does.

    ``delay`` adds a base point and moves the cursor; every waveform segment is enclosed by base
    points at its own start and end (contract §4.1 "signal skeleton").
    """

    BASE = 0.0

    def __init__(self):
        self._t: list = []
        self._v: list = []
        self.cursor = 0.0

    def point(self, value, t=None) -> None:
        self._t.append(self.cursor if t is None else t)
        self._v.append(value)

    def delay(self, duration: float) -> None:
        if duration > 0:
            self.point(self.BASE)
            self.cursor += duration

    def ramp(self, a0: float, a1: float, duration: float) -> None:
        self.point(self.BASE)
        self.point(a0)
        self.cursor += duration
        self.point(a1)
        self.point(self.BASE)

    def samples(self, times: np.ndarray, values: np.ndarray, duration: float) -> None:
        """Enclose sampled values by base points at the cursor and at cursor + duration."""
        self.point(self.BASE)
        self._t.extend(np.asarray(times, dtype=float).tolist())
        self._v.extend(np.asarray(values, dtype=float).tolist())
        self.cursor += duration
        self.point(self.BASE)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self._t, dtype=float), np.asarray(self._v, dtype=float)


def indgen(start: float, end: float, step: float) -> np.ndarray:
    """NEURON ``Vector.indgen(start, end, step)``: floor((end-start)/step + 1e-9) + 1 points."""
    n = math.floor((end - start) / step + EPSILON) + 1
    return np.arange(max(n, 0), dtype=float) * step + start


# ---- deterministic waveforms -------------------------------------------------------------------
def linear(delay: float, duration: float, amp_start: float, amp_end: float | None = None):
    """``linear`` and the step inputs: (t0,0),(t0,a0),(t0+T,a1),(t0+T,0), (0,0) first if t0>0."""
    sig = Signal()
    sig.delay(delay)
    sig.ramp(amp_start, amp_start if amp_end is None else amp_end, duration)
    return sig.arrays()


step_points = linear  # the name used by the first version of this package


def pulse_train(delay: float, duration: float, amp: float, width: float, frequency: float):
    """``pulse``: full pulses of period 1000/f, then the remainder rule of contract §4.2."""
    period = 1000.0 / frequency
    gap = period - width
    if gap < 0:
        raise ValueError(f"width {width} ms is longer than the period {period} ms")
    sig = Signal()
    sig.delay(delay)

    def pulse(w):
        sig.point(Signal.BASE)
        sig.point(amp)
        sig.cursor += w
        sig.point(amp)
        sig.point(Signal.BASE)

    n = int(duration / period)
    for _ in range(n):
        pulse(width)
        sig.cursor += gap
    remainder = duration - n * period
    if width <= remainder:
        pulse(width)
        sig.cursor += min(gap, remainder - width)
    else:
        pulse(remainder)
    sig.point(Signal.BASE)
    return sig.arrays()


def sinusoid(delay: float, duration: float, amp: float, frequency: float, dt: float = 0.025):
    """``sinusoidal``: A·sin(2π f i dt/1000) at t0 + i·dt (NEURON ``Vector.sin``), then
    (t0+T, 0)."""
    sig = Signal()
    sig.delay(delay)
    t0 = sig.cursor
    times = indgen(t0, t0 + duration, dt)
    period = 2 * math.pi / 1000 * frequency * dt        # NEURON's order of operations
    values = [amp * math.sin(period * i + 0.0) for i in range(len(times))]
    sig._t.extend(times.tolist())
    sig._v.extend(values)
    sig.cursor += duration
    sig.point(Signal.BASE)
    return sig.arrays()


# ---- stochastic waveforms ----------------------------------------------------------------------
def noise_predelay_draws(delay: float, duration: float, sim_dt: float,
                         step: float = NOISE_STEP) -> list[int]:
    """How many values the established driver draws and throws away before a delayed noise.

    With d = run.dt, p = 0, L = T - d: while p < delay - d, q = min(p + L, delay - d), draw
    floor((q-p)/step + 1e-9) + 1 values, p = q + d (contract §4.2). A chunk never makes the loop go
    backwards; a zero-length input (T <= 0) would never end it, so it stops there.
    """
    chunks = []
    if delay <= 0:
        return chunks
    p, span, end = 0.0, duration - sim_dt, delay - sim_dt
    while p < end:
        q = min(p + span, end)
        chunks.append(max(math.floor((q - p) / step + EPSILON) + 1, 0))
        if q + sim_dt <= p:      # T <= 0: the established driver would loop forever
            break
        p = q + sim_dt
    return chunks


def noise(rng, delay: float, duration: float, mean: float, variance: float, sim_dt: float,
          step: float = NOISE_STEP):
    """``noise``: Normal(mean, variance) samples every 0.5 ms, enclosed by base points."""
    for n in noise_predelay_draws(delay, duration, sim_dt, step):
        rng.fill(n)                      # still the RNG's current distribution
    rng.normal(mean, variance)           # selects the distribution, draw lost (contract §3.8)
    sig = Signal()
    sig.delay(delay)
    t0 = sig.cursor
    times = indgen(t0, t0 + duration, step)
    sig.samples(times, rng.fill(len(times)), duration)
    return sig.arrays()


def gamma_marsaglia_tsang(rng, shape: float, scale: float, n: int) -> np.ndarray:
    """n gamma(shape, scale) draws, Marsaglia–Tsang on NEURON Random calls
    (contract §4.3 step 3)."""
    out = np.empty(n)
    if n == 0:
        return out
    if shape < 1:
        rng.uniform(0, 1)                # one lost draw
        w = rng.fill(n)
        boosted = gamma_marsaglia_tsang(rng, shape + 1, scale, n)
        return w ** (1.0 / shape) * boosted
    d = shape - 1.0 / 3.0
    c = 1.0 / (3.0 * math.sqrt(d))
    for i in range(n):
        while True:
            x = rng.normal(0, 1)
            v = 1.0 + c * x
            if v <= 0:
                continue
            v = v * v * v
            u = rng.uniform(0, 1)
            if u < 1 - 0.0331 * x ** 4 or math.log(u) < 0.5 * x * x + d * (1 - v + math.log(v)):
                out[i] = scale * d * v
                break
    return out


def biexp_peak_norm(dt: float, rise: float, decay: float) -> tuple[float, float, float]:
    """(a, b, Anorm) of the discrete bi-exponential kernel with unit peak (contract §4.3 step 4)."""
    a = math.exp(-dt / decay)
    b = math.exp(-dt / rise)
    rate_d, rate_r = -math.log(a), -math.log(b)
    t_peak = math.log(rate_r / rate_d) / (rate_r - rate_d)
    return a, b, (a / b - 1) / (a ** t_peak - b ** t_peak)


def _biexp_filter(impulses: np.ndarray, a: float, b: float) -> np.ndarray:
    """P[0]=B[0]=0; P[n] = a·P[n-1] + b·B[n-1]; B[n] = b·B[n-1] + E[n-1]."""
    from scipy.signal import lfilter

    # lfilter's first-order recursions compute exactly b1·x[n-1] + (-a1)·y[n-1]
    drive = lfilter([0.0, 1.0], [1.0, -b], impulses)
    return lfilter([0.0, b], [1.0, -a], drive)


def shot_noise_samples(rng, duration: float, rise: float, decay: float, rate: float,
                       amp_mean: float, amp_var: float, dt: float) -> np.ndarray:
    """The sample values of one shot-noise point, contract §4.3 steps 1–4 (time origin 0)."""
    n_samples = len(indgen(0.0, duration, dt))
    n_ev = 1 + int(duration * rate / 1000)
    n_ev = int(n_ev + 3 * math.sqrt(n_ev))
    rng.negexp(1.0 / rate)               # selects the distribution; its draw is lost
    intervals = rng.fill(n_ev)
    times = np.cumsum(intervals) * 1000.0
    if times[-1] < duration:
        raise ValueError(f"{n_ev} shot-noise events did not reach the end of the input "
                         f"({times[-1]:.3f} < {duration} ms)")
    times = times[times < duration - EPSILON]
    idx = np.rint(times / dt).astype(np.int64)          # ties to even, as Python round
    idx = idx[idx < n_samples - EPSILON]
    sign = 1.0 if amp_mean > 0 else -1.0
    m = abs(amp_mean)
    theta = amp_var / m
    amps = gamma_marsaglia_tsang(rng, m / theta, theta, len(idx))
    impulses = np.zeros(n_samples)
    np.add.at(impulses, idx, sign * amps)
    a, b, norm = biexp_peak_norm(dt, rise, decay)
    return norm * _biexp_filter(impulses, a, b)


def shot_noise(rng, delay: float, duration: float, rise: float, decay: float, rate: float,
               amp_mean: float, amp_var: float, dt: float):
    sig = Signal()
    sig.delay(delay)
    t0 = sig.cursor
    times = indgen(t0, t0 + duration, dt)
    values = shot_noise_samples(rng, duration, rise, decay, rate, amp_mean, amp_var, dt)
    sig.samples(times, values, duration)
    return sig.arrays()


@dataclass(frozen=True)
class ShotNoiseParams:
    rate: float       # Hz
    amp_mean: float
    amp_var: float


def shot_noise_params(mean: float, sigma: float, rise: float, decay: float,
                      relative_skew: float) -> ShotNoiseParams:
    """Signal mean/SD → (rate, amp_mean, amp_var) of contract §4.4 (Campbell's theorem inverted)."""
    t_peak = math.log(decay / rise) / (1 / rise - 1 / decay)
    peak = math.exp(-t_peak / decay) - math.exp(-t_peak / rise)
    xi = (decay - rise) / peak
    big_a = 1 / (decay + rise)
    big_b = 1 / ((decay + 2 * rise) * (2 * decay + rise))
    skew_min = (8 / 3) * (big_b / big_a ** 2) * (sigma / mean)
    skew = (1 + relative_skew) * skew_min
    theta1 = 2 / (big_a * xi) * sigma ** 2 / mean
    theta2 = 3 * big_a / (4 * big_b * xi) * sigma * skew
    amp_mean = 2 * theta1 - theta2
    amp_var = amp_mean * (theta2 - theta1)
    rate = 1000 * mean / (amp_mean * xi)
    return ShotNoiseParams(rate, amp_mean, amp_var)


def ou_samples(rng, duration: float, tau: float, sigma: float, mean: float,
               dt: float) -> np.ndarray:
    """Ornstein–Uhlenbeck samples of contract §4.5 (exact AR(1) discretisation)."""
    n = len(indgen(0.0, duration, dt))
    rng.normal(0, 1)                     # lost; its cached partner becomes the first sample
    z = rng.fill(n)
    if tau < 1e-9:
        s = sigma * z
    else:
        from scipy.signal import lfilter

        mu = math.exp(-dt / tau)
        z = sigma * math.sqrt(1 - mu * mu) * z
        s = np.zeros(n)
        if n > 1:
            s[1:] = lfilter([1.0], [1.0, -mu], z[1:])   # s[n] = mu·s[n-1] + z[n], s[0] = 0
    return s + mean


def ornstein_uhlenbeck(rng, delay: float, duration: float, tau: float, sigma: float,
                       mean: float, dt: float):
    sig = Signal()
    sig.delay(delay)
    t0 = sig.cursor
    times = indgen(t0, t0 + duration, dt)
    sig.samples(times, ou_samples(rng, duration, tau, sigma, mean, dt), duration)
    return sig.arrays()


# ---- conductance -------------------------------------------------------------------------------
def conductance_to_rs(times: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Prepend (0, 0) and map every conductance (µS) to rs = 1/g MΩ, or 1e9 MΩ outside
    1e-9 < g < 1e9 (contract §4.1)."""
    t = np.concatenate([[0.0], np.asarray(times, dtype=float)])
    g = np.concatenate([[0.0], np.asarray(g, dtype=float)])
    on = (g > 1e-9) & (g < 1e9)
    rs = np.full(len(g), RS_OFF)
    rs[on] = 1.0 / g[on]
    return t, rs


__all__ = [
    "NOISE_STEP",
    "RS_OFF",
    "ShotNoiseParams",
    "Signal",
    "biexp_peak_norm",
    "conductance_to_rs",
    "gamma_marsaglia_tsang",
    "indgen",
    "linear",
    "noise",
    "noise_predelay_draws",
    "ornstein_uhlenbeck",
    "ou_samples",
    "pulse_train",
    "shot_noise",
    "shot_noise_params",
    "shot_noise_samples",
    "sinusoid",
    "step_points",
]
