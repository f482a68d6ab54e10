"""Every input module in one circuit on 1, 2 and 3 ranks; bad inputs fail clearly, never hang."""

import json
import math

import numpy as np
import pytest

from neurodamus import paths
from neurodamus.tools.example import make_morphology, write_swc
from tests.helpers import read_spikes, run_neurodamus, spikes_equal
from tests.scientific.circuits import (
    minicol_mods,
    write_circuit,
    write_element_report,
    write_simulation,
    write_spikes,
)

pytestmark = pytest.mark.mpi

N_CELLS, N_THAL, TSTOP = 9, 10, 250.0


def _all_inputs():
    base = dict(input_type="current_clamp", delay=20.0, duration=150.0)
    shot = dict(rise_time=0.5, decay_time=4.0, dt=0.25)
    return {
        "replay": dict(module="synapse_replay", input_type="spikes", delay=0.0,
                       duration=TSTOP, node_set="Cortex", spike_file="thal_spikes.h5"),
        "linear": dict(base, module="linear", amp_start=0.25, amp_end=0.4, node_set="A"),
        "relative_linear": dict(base, module="relative_linear", percent_start=60,
                                percent_end=90, node_set="B"),
        "pulse": dict(base, module="pulse", amp_start=0.6, width=5.0, frequency=25.0,
                      node_set="C", represents_physical_electrode=True),
        "sinusoidal": dict(base, module="sinusoidal", amp_start=0.3, frequency=8.0,
                           node_set="A"),
        "subthreshold": dict(base, module="subthreshold", percent_less=30, node_set="C"),
        "hyperpolarizing": dict(base, module="hyperpolarizing", node_set="B"),
        "seclamp": dict(module="seclamp", input_type="voltage_clamp", delay=0.0, duration=60.0,
                        voltage=-70.0, duration_levels=[30.0], voltage_levels=[-65.0],
                        node_set="Clamped"),
        "noise": dict(base, module="noise", mean_percent=40.0, variance=0.5, delay=50.0,
                      node_set="Cortex"),
        "shot_noise": dict(base, module="shot_noise", rate=300, amp_mean=0.05, amp_var=0.001,
                           node_set="A", **shot),
        "relative_shot_noise": dict(base, module="relative_shot_noise", input_type="conductance",
                                    mean_percent=30.0, sd_percent=10.0, reversal=0.0,
                                    node_set="B", **shot),
        "absolute_shot_noise": dict(base, module="absolute_shot_noise", mean=0.1, sigma=0.05,
                                    node_set="C", represents_physical_electrode=True, **shot),
        "ornstein_uhlenbeck": dict(base, module="ornstein_uhlenbeck", input_type="conductance",
                                   tau=3.0, mean=0.002, sigma=0.001, reversal=0.0,
                                   node_set="A"),
        "relative_ornstein_uhlenbeck": dict(base, module="relative_ornstein_uhlenbeck",
                                            tau=5.0, mean_percent=20.0, sd_percent=10.0,
                                            random_seed=5, node_set="Cortex"),
        "efield": dict(module="spatially_uniform_e_field",
                       input_type="extracellular_stimulation", delay=10.0, duration=100.0,
                       ramp_up_time=10.0, ramp_down_time=10.0, node_set="B",
                       fields=[{"Ex": 40.0, "Ey": -20.0, "Ez": 5.0, "frequency": 20.0},
                               {"Ex": 0.0, "Ey": 30.0, "Ez": 0.0}]),
        "on_compartments": dict(base, module="linear", amp_start=0.05, compartment_set="cs"),
        "current_replay": dict(base, module="replay", path="replayed_current.h5",
                               interpolate=True, delay=30.0, duration=120.0, node_set="C"),
    }


def _write(directory, inputs, tstop=TSTOP, name="simulation_config.json", output_dir="output"):
    rng = np.random.default_rng(11)
    n = N_CELLS
    pyr = np.arange(n) % 3 != 2
    model = paths.models_dir() / "minicol"
    # internal edges: 3 sources per target, 2 synapses each; thalamic: 3 sources x 2
    src, tgt, sec = [], [], []
    for t in range(n):
        for s in rng.choice([c for c in range(n) if c != t], 3, replace=False):
            src += [s, s]
            tgt += [t, t]
            sec += [0, 2]
    tsrc, ttgt = [], []
    for t in range(n):
        for s in rng.choice(N_THAL, 3, replace=False):
            tsrc += [s, s]
            ttgt += [t, t]
    src, tgt = np.array(src), np.array(tgt)
    write_circuit(
        directory,
        {"cortex": {"type": "biophysical", "n": n,
                    "template": ["PyrHH" if p else "IntHH" for p in pyr],
                    "morphology": ["pyr_0" if p else "int_0" for p in pyr],
                    "attrs": {"exc_mini_frequency": np.full(n, 3.0),
                              "inh_mini_frequency": np.full(n, 2.0),
                              "rotation_angle_yaxis": np.linspace(0, math.pi, n)},
                    "dynamics": {"threshold_current": np.where(pyr, 0.3, 0.2),
                                 "holding_current": np.where(pyr, 0.05, 0.03),
                                 "input_resistance": np.where(pyr, 150.0, 250.0)}},
         "thal": {"type": "virtual", "n": N_THAL}},
        edges=[dict(name="cortex__cortex__chemical", source="cortex", target="cortex", src=src,
                    tgt=tgt, afferent_section_id=np.array(sec),
                    syn_type_id=np.where(pyr[src], 120, 5), conductance=0.003, u_syn=0.5,
                    depression_time=600.0, facilitation_time=10.0, n_rrp_vesicles=2,
                    delay=1.0 + 0.1 * (src % 4)),
               dict(name="thal__cortex__chemical", source="thal", target="cortex",
                    src=np.array(tsrc), tgt=np.array(ttgt), conductance=0.004, u_syn=0.6,
                    depression_time=500.0, n_rrp_vesicles=2, delay=1.5)],
        node_sets={"Cortex": {"population": "cortex"},
                   "A": {"population": "cortex", "node_id": [0, 1, 2]},
                   "B": {"population": "cortex", "node_id": [3, 4, 5]},
                   "C": {"population": "cortex", "node_id": [6, 7, 8]},
                   "Clamped": {"population": "cortex", "node_id": [4]},
                   "Empty": {"population": "cortex", "node_id": []}},
        mechanisms=minicol_mods(), templates=(), emodels_from=model / "hoc")
    morph_rng = np.random.default_rng(2)
    for morph, pyramidal in (("pyr_0", True), ("int_0", False)):
        write_swc(directory / "morphologies" / f"{morph}.swc",
                  make_morphology(morph_rng, pyramidal))
    (directory / "compartment_sets.json").write_text(json.dumps(
        {"cs": {"population": "cortex", "compartment_set": [[1, 1, 0.5], [1, 2, 0.2],
                                                            [7, 0, 0.5]]}}))
    times = np.sort(np.random.default_rng(5).uniform(0, tstop, 300))
    write_spikes(directory / "thal_spikes.h5",
                 {"thal": (times, np.random.default_rng(6).integers(0, N_THAL, 300))})
    # a recorded current (nA, 0.5 ms frames) for nodes 6 and 7 of set C: 8 is missing
    frames = np.arange(0.0, 100.0, 0.5)
    current = 0.3 * (1 + np.sin(2 * np.pi * frames / 40.0))
    write_element_report(directory / "replayed_current.h5", "cortex", [6, 7],
                         (0.0, 100.0, 0.5), np.column_stack([current, 0.5 * current]))
    return write_simulation(directory, inputs, tstop=tstop, dt=0.025, node_set="Cortex",
                            v_init=-70.0, name=name, compartment_sets_file="compartment_sets.json",
                            output_dir=output_dir, run={"stimulus_seed": 4, "minis_seed": 2})


@pytest.fixture(scope="module")
def circuit(tmp_path_factory):
    d = tmp_path_factory.mktemp("all_inputs")
    return _write(d, _all_inputs())


@pytest.fixture(scope="module")
def spikes_by_ranks(circuit):
    out = {}
    config = json.loads(circuit.read_text())
    for ranks in (1, 2, 3):
        config["output"]["output_dir"] = f"out_{ranks}_ranks"
        path = circuit.with_name(f"simulation_{ranks}_ranks.json")
        path.write_text(json.dumps(config))
        res = run_neurodamus([path], ranks=ranks)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        out[ranks] = read_spikes(circuit.parent / f"out_{ranks}_ranks" / "out.h5")
    return out


def test_every_module_is_in_the_circuit(circuit):
    modules = {b["module"] for b in json.loads(circuit.read_text())["inputs"].values()}
    from neurodamus.stimuli import SPECS
    assert modules == set(SPECS)


def test_all_inputs_give_spikes(spikes_by_ranks):
    times, ids = spikes_by_ranks[1]["cortex"]
    assert len(times) > 20 and len(set(ids.tolist())) >= 6


@pytest.mark.parametrize("ranks", [2, 3])
def test_identical_spikes_on_any_rank_count(spikes_by_ranks, ranks):
    assert spikes_equal(spikes_by_ranks[1], spikes_by_ranks[ranks])


# ---- bad inputs ----------------------------------------------------------------------------------
def _bad(module, **kw):
    block = dict(module=module, input_type="current_clamp", delay=10.0, duration=50.0,
                 node_set="Cortex")
    block.update(kw)
    return {k: v for k, v in block.items() if v is not None}


BAD = {
    "unknown_module": (_bad("quantum_noise"),
                       "inputs.bad.module: input module 'quantum_noise' is unknown"),
    "missing_parameter": (_bad("linear"),
                          "inputs.bad.amp_start: missing (required by module 'linear')"),
    "negative_duration": (_bad("linear", amp_start=0.1, duration=-5.0),
                          "inputs.bad.duration: must be >= 0, got -5"),
    "negative_variance": (_bad("noise", mean=0.1, variance=-0.01),
                          "inputs.bad.variance: must be > 0, got -0.01"),
    "negative_rate": (_bad("shot_noise", rise_time=0.5, decay_time=4.0, rate=-10,
                           amp_mean=0.1, amp_var=0.01), "inputs.bad.rate: must be >= 0, got -10"),
    "missing_spike_file": (_bad("synapse_replay", input_type="spikes", spike_file="nope.h5"),
                           "inputs.bad.spike_file: file not found:"),
    "not_sonata_spikes": (_bad("synapse_replay", input_type="spikes",
                               spike_file="circuit_nodes_copy.h5"),
                          "has no /spikes group (not a SONATA spike file)"),
    "text_spike_file": (_bad("synapse_replay", input_type="spikes", spike_file="spikes.dat"),
                        "inputs.bad.spike_file: spike file must be SONATA .h5"),
    "unknown_node_set": (_bad("linear", amp_start=0.1, node_set="Nowhere"),
                         "inputs.bad.node_set: unknown node set 'Nowhere'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_gives_one_clear_message(circuit, case, tmp_path):
    import shutil

    block, expected = BAD[case]
    shutil.copy(circuit.parent / "nodes.h5", circuit.parent / "circuit_nodes_copy.h5")
    (circuit.parent / "spikes.dat").write_text("/scatter\n1.0 3\n")
    config = write_simulation(circuit.parent, {"bad": block}, tstop=20.0,
                              name=f"bad_{case}.json", node_set="Cortex", output_dir=tmp_path)
    res = run_neurodamus([config], ranks=2)
    assert res.returncode != 0
    errors = [line for line in res.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1, res.stderr[-2000:]
    assert f"{config}: " in errors[0] and expected in errors[0], errors[0]


def test_input_on_an_empty_node_set_is_a_warning_not_an_error(circuit, tmp_path):
    """A config reused on another node set: the input acts on nothing, the run goes on."""
    config = write_simulation(circuit.parent, {"bad": _bad("linear", amp_start=0.1,
                                                           node_set="Empty")},
                              tstop=20.0, name="empty_input.json", node_set="Cortex",
                              output_dir=tmp_path)
    res = run_neurodamus([config], ranks=2)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert res.stdout.count("WARNING: ") == 1
    assert f"{config}: inputs.bad.node_set: node set 'Empty' selects no simulated cell: the " \
           f"input acts on nothing" in res.stdout
