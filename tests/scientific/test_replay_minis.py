"""Spike replay and spontaneous minis, observed at the synapses themselves (NEURON runs).

Synapses are the minicol ProbAMPANMDA_EMS / ProbGABAAB_EMS with deterministic release
(u_syn = 1, one vesicle, no depression): every event that reaches a synapse releases exactly one
vesicle, so ``nreleased_total`` counts arrivals and ``tsyn`` holds the arrival time.
"""

import numpy as np
import pytest

from tests.scientific.circuits import synapse_mods, write_circuit, write_simulation, write_spikes
from tests.scientific.conftest import run_probe

DT = 0.025
N_THAL, N_CORTEX, SYN_PER_CONN = 6, 3, 2
REPLAY_DELAY = 4.0


def _edge_delay(source):
    return 1.37 + 0.5 * source            # float32 in the file, rounded down to the dt grid


def _thal_spikes(node):
    return np.round(1.0 + 3.1 * node + 17.3 * np.arange(6), 6)


@pytest.fixture(scope="module")
def replay_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("replay")
    src = np.repeat(np.tile(np.arange(N_THAL), N_CORTEX), SYN_PER_CONN)
    tgt = np.repeat(np.repeat(np.arange(N_CORTEX), N_THAL), SYN_PER_CONN)
    write_circuit(d, {"cortex": {"type": "biophysical", "n": N_CORTEX},
                      "thal": {"type": "virtual", "n": N_THAL}},
                  edges=[dict(name="thal__cortex__chemical", source="thal", target="cortex",
                              src=src, tgt=tgt, delay=_edge_delay(src), conductance=1e-4)],
                  node_sets={"Targets": {"population": "cortex", "node_id": [0, 2]},
                             "SomeThal": {"population": "thal", "node_id": [0, 1, 2, 3]},
                             "Cortex": {"population": "cortex"}},
                  mechanisms=synapse_mods())
    write_spikes(d / "spikes.h5", {"thal": (np.concatenate([_thal_spikes(n)
                                                            for n in range(N_THAL)]),
                                            np.repeat(np.arange(N_THAL), 6))})
    inputs = {"replay": dict(module="synapse_replay", input_type="spikes", delay=REPLAY_DELAY,
                             duration=1000.0, node_set="Targets", source="SomeThal",
                             spike_file="spikes.h5")}
    config = write_simulation(d, inputs, tstop=120.0, dt=DT, node_set="Cortex")
    return run_probe(config, d / "out", {"synapses": ["tsyn", "nreleased_total"]})


def _arrivals(run, k):
    count = run.arrays[f"syn/{k}/nreleased_total"]
    tsyn = run.arrays[f"syn/{k}/tsyn"]
    steps = np.flatnonzero(np.diff(count) > 0) + 1
    assert np.all(np.diff(count)[steps - 1] == 1)      # one event per step at most
    return tsyn[steps]


def test_replay_delivers_each_spike_at_spike_time_plus_delay(replay_run):
    syns = replay_run.meta["synapses"]
    assert len(syns) == N_CORTEX * N_THAL * SYN_PER_CONN
    checked = 0
    for k, syn in enumerate(syns):
        source = int(syn["synapseID"]) // SYN_PER_CONN
        arrivals = _arrivals(replay_run, k)
        if syn["cell"] == 1 or source >= 4:       # not in node_set / not in source
            assert len(arrivals) == 0, syn
            continue
        delay = int(float(np.float32(_edge_delay(source))) / DT + 1e-5) * DT
        spikes = _thal_spikes(source)
        expected = spikes[spikes >= REPLAY_DELAY] + delay
        assert len(arrivals) == len(expected) and len(expected) >= 5, syn
        assert np.allclose(arrivals, expected, atol=1e-9), (syn, arrivals, expected)
        checked += 1
    assert checked == 2 * 4 * SYN_PER_CONN


# ---- minis ---------------------------------------------------------------------------------------
N_SRC, N_EXC = 50, 30
EXC_RATE, INH_RATE, MINIS_T = 25.0, 20.0, 5000.0


@pytest.fixture(scope="module")
def minis_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("minis")
    src = np.tile(np.arange(N_SRC), 2)
    tgt = np.repeat(np.arange(2), N_SRC)
    syn_type = np.where(src < N_EXC, 120, 5)
    write_circuit(d, {"cortex": {"type": "biophysical", "n": 2,
                                 "attrs": {"exc_mini_frequency": [EXC_RATE] * 2,
                                           "inh_mini_frequency": [INH_RATE] * 2}},
                      "thal": {"type": "virtual", "n": N_SRC}},
                  edges=[dict(name="thal__cortex__chemical", source="thal", target="cortex",
                              src=src, tgt=tgt, syn_type_id=syn_type,
                              conductance=np.where(syn_type == 120, 2e-4, 3e-4))],
                  node_sets={"Cortex": {"population": "cortex"}}, mechanisms=synapse_mods())
    config = write_simulation(d, {}, tstop=MINIS_T, dt=DT, node_set="Cortex",
                              run={"minis_seed": 3})
    return run_probe(config, d / "out", {"minis": True, "synapses": ["nreleased_total"]})


@pytest.mark.parametrize("excitatory", [True, False])
def test_minis_rate_within_five_percent(minis_run, excitatory):
    minis = minis_run.meta["minis"]
    rate = EXC_RATE if excitatory else INH_RATE
    picked = [k for k, m in enumerate(minis) if ("AMPANMDA" in m["target"]) == excitatory]
    assert len(picked) == 2 * (N_EXC if excitatory else N_SRC - N_EXC)
    events = sum(len(minis_run.arrays[f"mini/{k}"]) for k in picked)
    measured = events / (len(picked) * MINIS_T / 1000.0)
    assert measured == pytest.approx(rate, rel=0.05)
    intervals = np.concatenate([np.diff(minis_run.arrays[f"mini/{k}"]) for k in picked])
    assert intervals.std() / intervals.mean() == pytest.approx(1.0, rel=0.05)   # Poisson


def test_minis_netcons_follow_the_contract(minis_run):
    for m in minis_run.meta["minis"]:
        assert m["delay"] == pytest.approx(0.1)
        excitatory = "AMPANMDA" in m["target"]
        assert m["weight"] == pytest.approx(2e-4 if excitatory else 3e-4)
        assert m["nc_type"] == 1
        assert m["rate"] == (EXC_RATE if excitatory else INH_RATE)


def test_minis_reach_the_synapses(minis_run):
    released = sum(minis_run.arrays[f"syn/{k}/nreleased_total"][-1]
                   for k in range(len(minis_run.meta["synapses"])))
    generated = sum(len(minis_run.arrays[f"mini/{k}"]) for k in range(len(minis_run.meta["minis"])))
    # every mini that arrives before tstop releases one vesicle (deterministic release)
    assert generated - 5 <= released <= generated
