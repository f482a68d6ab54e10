"""Random streams of stochastic inputs follow the contract (compatibility §3.7, §3.8, §4.1).

* ``noise``, ``ornstein_uhlenbeck`` and ``shot_noise`` signals equal an independent replica
  written from the contract's text alone (plain loops, no driver code), drawing from NEURON's
  Random123 with the documented ids (block counters, stimulus seed, gid or ``random_seed``)
  and draw order (pre-delay discards, the draw lost to each distribution call, the OU
  recursion, shot times, Marsaglia–Tsang gamma amplitudes, the bi-exponential filter).
* ``k_shot`` is shared by the three shot-noise modules and no-op blocks do not advance it.
"""

import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import base_env
from tests.scientific.circuits import write_circuit, write_simulation
from tests.scientific.conftest import run_probe

pytestmark = pytest.mark.mpi

SEED, STIM_SEED, DT = 7, 3, 0.025
NOISE1 = dict(mean=0.1, variance=0.02, delay=7.3, duration=20.0)
NOISE2 = dict(mean=-0.05, variance=0.01, delay=0.0, duration=12.0)
OU1 = dict(tau=4.0, mean=0.2, sigma=0.05, dt=0.25, delay=2.0, duration=30.0)
OU2 = dict(OU1, random_seed=99)
SHOT = dict(rise_time=0.5, decay_time=3.0, rate=400, amp_mean=0.05, amp_var=0.002,
            delay=1.0, duration=50.0, dt=0.25)

REPLICA = r"""
import json, math, sys
from neuron import h
spec = json.loads(sys.argv[1])
h.Random().Random123_globalindex(spec["seed"])
out = {}

def vec(r, n):
    v = h.Vector(n)
    v.setrand(r)
    return list(v)

for gid in spec["gids"]:
    # noise: ids (k + 100, stimulus_seed + 500, gid + 301), one RNG per cell
    for name, k in (("noise1", 0), ("noise2", 1)):
        p = spec[name]
        r = h.Random()
        r.Random123(k + 100, spec["stim_seed"] + 500, gid + 301)
        d, pos, span, end = spec["dt"], 0.0, p["duration"] - spec["dt"], p["delay"] - spec["dt"]
        while p["delay"] > 0 and pos < end:          # pre-delay discards
            q = min(pos + span, end)
            vec(r, int(math.floor((q - pos) / 0.5 + 1e-9)) + 1)
            pos = q + d
        r.normal(p["mean"], p["variance"])
        out[f"{name}/{gid}"] = vec(r, int(math.floor(p["duration"] / 0.5 + 1e-9)) + 1)
    # OU: ids (k + 2997, stimulus_seed + 291204, gid + 124 or random_seed)
    for name, k in (("ou1", 0), ("ou2", 1)):
        p = spec[name]
        r = h.Random()
        r.Random123(k + 2997, spec["stim_seed"] + 291204, p.get("random_seed", gid + 124))
        r.normal(0, 1)
        n = int(math.floor(p["duration"] / p["dt"] + 1e-9)) + 1
        z = vec(r, n)
        mu = math.exp(-p["dt"] / p["tau"])
        c = p["sigma"] * math.sqrt(1 - mu * mu)
        s = [0.0]
        for i in range(1, n):
            s.append(mu * s[-1] + c * z[i])
        out[f"{name}/{gid}"] = [x + p["mean"] for x in s]
    # shot noise (section 4.3): ids (k + 2997, stimulus_seed + 19216, gid + 124), fresh RNG
    p = spec["shot"]
    r = h.Random()
    r.Random123(0 + 2997, spec["stim_seed"] + 19216, gid + 124)
    T, dt, rate = p["duration"], p["dt"], p["rate"]
    n = int(math.floor(T / dt + 1e-9)) + 1
    n_ev = 1 + int(T * rate / 1000)
    n_ev = int(n_ev + 3 * math.sqrt(n_ev))
    r.negexp(1.0 / rate)
    times, acc = [], 0.0
    for x in vec(r, n_ev):
        acc += x
        times.append(acc * 1000)
    idx = [round(x / dt) for x in times if x < T - 1e-9]
    idx = [i for i in idx if i < n - 1e-9]
    m = abs(p["amp_mean"])
    theta = p["amp_var"] / m
    k_shape = m / theta
    d_ = k_shape - 1 / 3
    c_ = 1 / (3 * math.sqrt(d_))
    amps = []
    for _ in idx:
        while True:
            x = r.normal(0, 1)
            v = 1 + c_ * x
            if v <= 0:
                continue
            v = v * v * v
            u = r.uniform(0, 1)
            if u < 1 - 0.0331 * x ** 4 or math.log(u) < 0.5 * x * x + d_ * (1 - v + math.log(v)):
                amps.append(theta * d_ * v)
                break
    E = [0.0] * n
    for i, a in zip(idx, amps):
        E[i] += a
    a, b = math.exp(-dt / p["decay_time"]), math.exp(-dt / p["rise_time"])
    D, R = -math.log(a), -math.log(b)
    tpk = math.log(R / D) / (R - D)
    norm = (a / b - 1) / (a ** tpk - b ** tpk)
    P, B = [0.0] * n, [0.0] * n
    for i in range(1, n):
        P[i] = a * P[i - 1] + b * B[i - 1]
        B[i] = b * B[i - 1] + E[i - 1]
    out[f"shotA/{gid}"] = [norm * x for x in P]
print(json.dumps(out))
"""


def _inputs(blocks):
    base = dict(input_type="current_clamp", node_set="All")
    return {name: dict(base, module=module, **params) for name, module, params in blocks}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("streams")
    write_circuit(d, {"cortex": {"type": "biophysical", "n": 3}},
                  node_sets={"All": {"population": "cortex"}})
    a = _inputs([("noise1", "noise", NOISE1), ("shotA", "shot_noise", SHOT),
                 ("ou1", "ornstein_uhlenbeck", OU1),
                 ("noop", "shot_noise", dict(SHOT, duration=0.2)),     # int(T/dt) == 0
                 ("noop_rel", "relative_shot_noise",
                  dict(rise_time=0.5, decay_time=3.0, mean_percent=0.0, sd_percent=5.0,
                       delay=0.0, duration=10.0)),
                 ("shotB", "shot_noise", SHOT), ("ou2", "ornstein_uhlenbeck", OU2),
                 ("noise2", "noise", NOISE2)])
    c = _inputs([("abs", "absolute_shot_noise",
                  dict(rise_time=0.5, decay_time=3.0, mean=0.1, sigma=0.05, delay=0.0,
                       duration=20.0)),
                 ("shotB", "shot_noise", SHOT)])
    out = {}
    for tag, inputs in (("a", a), ("c", c)):
        config = write_simulation(d, inputs, tstop=5.0, dt=DT, seed=SEED, name=f"{tag}.json",
                                  output_dir=f"out_{tag}", run={"stimulus_seed": STIM_SEED})
        out[tag] = run_probe(config, d / f"probe_{tag}", {"sources": True})
    return out


def _signal(run, name, gid):
    (k, _), = [(k, m) for k, m in run.sources(name) if m["gid"] == gid]
    return run.signal(k)


def _samples(t, v, delay, duration, step):
    n = int(np.floor(duration / step + 1e-9)) + 1
    start = int(np.flatnonzero(t == delay)[0]) + 1
    return v[start:start + n]


def test_noise_ou_and_shot_noise_follow_the_contract_streams(runs):
    import json

    spec = dict(seed=SEED, stim_seed=STIM_SEED, dt=DT, gids=[0, 1, 2], noise1=NOISE1,
                noise2=NOISE2, ou1=OU1, ou2=OU2, shot=SHOT)
    res = subprocess.run([sys.executable, "-c", REPLICA, json.dumps(spec)], capture_output=True,
                         text=True, env=base_env(), timeout=120)
    assert res.returncode == 0, res.stderr
    replica = json.loads(res.stdout.strip().splitlines()[-1])
    run = runs["a"]
    for gid in (0, 1, 2):
        for name, p, step in (("noise1", NOISE1, 0.5), ("noise2", NOISE2, 0.5),
                              ("ou1", OU1, OU1["dt"]), ("ou2", OU2, OU2["dt"]),
                              ("shotA", SHOT, SHOT["dt"])):
            t, v = _signal(run, name, gid)
            got = _samples(t, v, p["delay"], p["duration"], step)
            assert np.array_equal(got, np.array(replica[f"{name}/{gid}"])), (name, gid)
    # random_seed: the same OU signal on every cell; otherwise one stream per gid
    assert replica["ou2/0"] == replica["ou2/2"] and replica["ou1/0"] != replica["ou1/2"]


def test_shot_noise_counter_is_shared_and_skips_noops(runs):
    for gid in (0, 1, 2):
        a_first, a_second = _signal(runs["a"], "shotA", gid), _signal(runs["a"], "shotB", gid)
        c_second = _signal(runs["c"], "shotB", gid)
        assert not np.array_equal(a_first[1], a_second[1])    # k_shot 0 and 1 differ
        assert np.array_equal(a_second[0], c_second[0])
        assert np.array_equal(a_second[1], c_second[1])        # both k_shot = 1
    assert runs["a"].sources("noop") == [] and runs["a"].sources("noop_rel") == []
