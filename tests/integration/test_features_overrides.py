"""connection_overrides and modifications end to end (issue 7; compatibility §6).

Each test writes a tiny circuit (tests/integration/test_features_kit.py), runs neurodamus in a
subprocess and checks what NEURON ended up with (``--dump-cell-state``, run_summary.json) or
the message of a bad input.
"""

import json

import numpy as np
import pytest

from tests.integration.test_features_kit import (
    Circuit,
    cell_state,
    chemical_columns,
    feature_mechanisms,
    run,
    write_spikes,
)

pytestmark = pytest.mark.mpi
__all__ = ["feature_mechanisms"]   # the fixture, imported for pytest

NODE_SETS = {f"b{i}": {"population": "balls", "node_id": [i]} for i in range(4)}
NODE_SETS.update({"inp0": {"population": "inp", "node_id": [0]},
                  "inp1": {"population": "inp", "node_id": [1]},
                  "Nowhere": {"population": "balls", "node_id": []}})


def syn_circuit(folder, mechanisms, overrides=(), **sim):
    """inp (virtual, 2) -> balls (Ball x3, BallDend): inp0 -> balls 0,1,2 (one synapse each),
    inp1 -> ball 3 (two synapses). Both inputs spike once at 5 ms (replay)."""
    c = Circuit(folder, mechanisms)
    c.population("balls", 4, ["Ball", "Ball", "Ball", "BallDend"])
    c.population("inp", 2, model_type="virtual")
    src, tgt = [0, 0, 0, 1, 1], [0, 1, 2, 3, 3]
    c.edge_population("inp__balls__chemical", "inp", "balls", src, tgt,
                      chemical_columns(5, conductance=0.0002, delay=1.0,
                                       syn_tau=np.full(5, 7.25, np.float32)))
    spikes = folder / "spikes.h5"
    if not spikes.exists():
        write_spikes(spikes, "inp", [0, 1], [5.0, 5.0])
    inputs = {"replay": {"module": "synapse_replay", "input_type": "spikes", "delay": 0.0,
                         "duration": 1000.0, "node_set": "balls",
                         "spike_file": str(spikes)}}
    inputs.update(sim.pop("inputs", {}))
    return c.config(node_sets=NODE_SETS, connection_overrides=list(overrides), inputs=inputs,
                    **sim)


def ov(name, source, target, **fields):
    return {"name": name, "source": source, "target": target, **fields}


def synapses(state):
    return [s for s in state["synapses"]]


def presyn_netcons(state):
    return [n for n in state["netcons"] if n["source_gid"] >= 0 or n["weight"]]


# ---- creation phase ---------------------------------------------------------------------------
def summary(out):
    return json.loads((out / "run_summary.json").read_text())


def test_no_override_creates_everything(tmp_path, feature_mechanisms):
    cfg = syn_circuit(tmp_path, feature_mechanisms)
    res, out = run(cfg)
    assert summary(out)["synapses"] == 5
    assert "Connection overrides" not in res.stdout


def test_single_zero_weight_override_creates_nothing_and_warns_once(tmp_path,
                                                                    feature_mechanisms):
    cfg = syn_circuit(tmp_path, feature_mechanisms, [ov("off", "inp", "balls", weight=0.0)])
    res, out = run(cfg, ranks=2)
    assert summary(out)["synapses"] == 0
    assert res.stdout.count("creates nothing (a single weight-0 override)") == 1
    warnings = [line for line in res.stdout.splitlines() if line.startswith("WARNING")]
    assert len(warnings) == 1 and "connection_overrides[0] (off).weight" in warnings[0]
    assert "won't be instantiated" in warnings[0]


def test_only_pathways_of_overrides_are_created_and_chain_logged_once(tmp_path,
                                                                      feature_mechanisms):
    overrides = [ov("first", "inp0", "b1", weight=2.0),
                 ov("second", "inp", "b3", weight=3.0, synapse_delay_override=2.5),
                 ov("third", "inp0", "b1", weight=0.5)]
    cfg = syn_circuit(tmp_path, feature_mechanisms, overrides)
    res, out = run(cfg, ranks=2, args=["--dump-cell-state=1,3"])
    # edges of balls 0 and 2 are covered by no override: not instantiated (§6.1)
    assert summary(out)["synapses"] == 3
    assert res.stdout.count("Connection overrides for 'inp__balls__chemical'") == 1
    assert "[0] 'first' inp0 -> b1: weight 2" in res.stdout
    # configure phase: the last matching override sets the weight (no product)
    nc1 = cell_state(out, 1)["netcons"]
    assert [n["weight"][0] for n in nc1] == pytest.approx([0.0002 * 0.5])
    assert [n["delay"] for n in nc1] == pytest.approx([1.0])
    nc3 = cell_state(out, 3)["netcons"]
    assert [n["weight"][0] for n in nc3] == pytest.approx([0.0002 * 3.0] * 2)
    assert [n["delay"] for n in nc3] == pytest.approx([2.5, 2.5])   # unrounded override


# ---- configure phase: synapse_configure, modoverride, spont_minis -------------------------------
def test_synapse_configure_modoverride_and_minis(tmp_path, feature_mechanisms):
    # (statements of an override apply to every synapse it matches: NMSyn has no tau_d_AMPA)
    overrides = [ov("all", "inp0", "balls",
                    synapse_configure="%s.tau_d_AMPA = 5.5 %s.Use *= 0.5"),
                 ov("nm", "inp1", "b3", modoverride="NMSyn", synapse_configure="%s.e = -10"),
                 ov("minis", "inp0", "b2", spont_minis=4.0)]
    cfg = syn_circuit(tmp_path, feature_mechanisms, overrides)
    _, out = run(cfg, args=["--dump-cell-state=0,2,3"])
    s0 = cell_state(out, 0)["synapses"]
    assert [s["type"] for s in s0] == ["ProbAMPANMDA_EMS"]
    assert s0[0]["params"]["tau_d_AMPA"] == 5.5
    assert s0[0]["params"]["Use"] == 0.5                       # u_syn 1 * 0.5
    s3 = cell_state(out, 3)["synapses"]
    assert [s["type"] for s in s3] == ["NMSyn", "NMSyn"]
    assert [s["params"]["tau"] for s in s3] == [7.25, 7.25]    # NeededAttributes column
    assert [s["params"]["e"] for s in s3] == [-10.0, -10.0]    # its own override's statement
    assert [s["params"]["synapseID"] for s in s3] == [0, 1]
    assert [s["params"]["conductance"] for s in s3] == pytest.approx([0.0002, 0.0002])
    # spont_minis: one InhPoissonStim NetCon (delay 0.1 ms) per synapse of ball 2 only
    minis = [n for n in cell_state(out, 2)["netcons"] if n["source_gid"] < 0
             and n["delay"] == pytest.approx(0.1)]
    assert len(minis) == 1


def test_delayed_weight_change_needs_setup_delay_vecs(tmp_path, feature_mechanisms):
    overrides = [ov("all", "inp", "balls"),
                 ov("nm", "inp1", "b3", modoverride="NMSyn"),
                 ov("later", "inp1", "b3", delay=10.0, weight=2.0)]
    cfg = syn_circuit(tmp_path, feature_mechanisms, overrides)
    res, _ = run(cfg, expect_ok=False)
    assert res.returncode != 0
    assert "connection_overrides[2] (later).delay: synapse mechanism NMSyn" in res.stderr
    assert "setup_delay_vecs" in res.stderr


# ---- modifications read back from NEURON -------------------------------------------------------
def test_modifications_read_back(tmp_path, feature_mechanisms):
    (tmp_path / "csets.json").write_text(json.dumps(
        {"mid_dend": {"population": "balls", "compartment_set": [[3, 1, 0.5]]}}))
    mods = [
        {"name": "dense", "type": "configure_all_sections", "node_set": "b3",
         "section_configure": "%s.g_pas *= 2; %s.cm = 1.5"},
        {"name": "basal_ra", "type": "section_list", "node_set": "b3",
         "section_configure": "basal.Ra = 50"},
        {"name": "soma_epas", "type": "section", "node_set": "b0",
         "section_configure": "soma[0].e_pas = -65"},
        {"name": "cs", "type": "compartment_set", "compartment_set": "mid_dend",
         "section_configure": "e_pas = -60"},
        {"name": "block", "type": "ttx", "node_set": "b1"},
        {"name": "typo", "type": "section_list", "node_set": "b0",
         "section_configure": "somatic.gbar_nothing = 1"},
    ]
    cfg = syn_circuit(tmp_path, feature_mechanisms, compartment_sets_file="csets.json",
                      conditions={"modifications": mods})
    res, out = run(cfg, ranks=2, args=["--dump-cell-state=0,1,2,3"])
    b3 = {s["name"].split(".")[-1]: s for s in cell_state(out, 3)["sections"]}
    soma, dend = b3["soma[0]"], b3["dend[0]"]
    assert soma["segments"][0]["mechanisms"]["pas"]["g"] == pytest.approx(2e-4)
    # configure_all_sections runs once per segment on the section (§6.2): *= compounds
    assert [s["mechanisms"]["pas"]["g"] for s in dend["segments"]] == pytest.approx([8e-4] * 3)
    assert [s["cm"] for s in soma["segments"] + dend["segments"]] == [1.5] * 4
    assert dend["Ra"] == 50 and soma["Ra"] == 100
    assert [s["mechanisms"]["pas"]["e"] for s in dend["segments"]] == [-70, -60, -70]
    b0 = cell_state(out, 0)["sections"][0]
    assert b0["segments"][0]["mechanisms"]["pas"]["e"] == -65
    assert "TTXDynamicsSwitch" in cell_state(out, 1)["sections"][0]["segments"][0]["mechanisms"]
    assert "TTXDynamicsSwitch" not in \
        cell_state(out, 2)["sections"][0]["segments"][0]["mechanisms"]
    assert res.stdout.count("Modification 'dense' (configure_all_sections): 2 sections in "
                            "1 cell(s)") == 1
    assert res.stdout.count("conditions.modifications[5] (typo): changed nothing") == 1


# ---- bad input ---------------------------------------------------------------------------------
BAD = {
    "unknown_node_set": (
        dict(overrides=[ov("bad", "Nope", "balls")]),
        "connection_overrides[0] (bad).source: unknown node set 'Nope'"),
    "not_an_assignment": (
        dict(overrides=[ov("cfg", "inp", "balls", synapse_configure="%s.Use = 1 print(1)")]),
        "connection_overrides[0] (cfg).synapse_configure:"),
    "unknown_attribute": (
        dict(overrides=[ov("cfg", "inp", "balls", synapse_configure="%s.Usee = 0.5")]),
        "connection_overrides[0] (cfg).synapse_configure: '%s.Usee = 0.5': synapse mechanism "
        "ProbAMPANMDA_EMS has no attribute 'Usee'"),
    "partly_covered_zero_weight": (
        dict(overrides=[ov("off", "inp", "balls", weight=0.0),
                        ov("on", "inp0", "b1", delay=5.0, weight=1.0)]),
        "connection_overrides[0] (off).weight: weight 0 between 'inp' and 'balls' is only "
        "partly covered by the delayed override [1] 'on'"),
    "missing_section_list": (
        dict(conditions={"modifications": [{"name": "ais", "type": "section_list",
                                            "node_set": "b0",
                                            "section_configure": "AIS.cm = 2"}]}),
        "conditions.modifications[0] (ais).section_configure: section list 'AIS' does not "
        "exist in template 'Ball'"),
    "modification_not_literal": (
        dict(conditions={"modifications": [{"name": "m", "type": "section", "node_set": "b0",
                                            "section_configure": "soma[0].cm = __import__"}]}),
        "conditions.modifications[0] (m).section_configure:"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_names_the_block(tmp_path, feature_mechanisms, case):
    kwargs, message = BAD[case]
    overrides = kwargs.pop("overrides", [])
    cfg = syn_circuit(tmp_path, feature_mechanisms, overrides, **kwargs)
    res, _ = run(cfg, expect_ok=False)
    assert res.returncode != 0, res.stdout[-2000:]
    assert str(cfg.parent) in res.stderr
    assert message in res.stderr, res.stderr[-3000:]
    assert "Traceback" not in res.stderr


def test_zero_weight_then_positive_weight_warns_once(tmp_path, feature_mechanisms):
    overrides = [ov("off", "inp", "balls", weight=0.0), ov("on", "inp0", "balls", weight=2.0)]
    cfg = syn_circuit(tmp_path, feature_mechanisms, overrides)
    res, out = run(cfg, ranks=2, args=["--dump-cell-state=0,3"])
    warnings = [line for line in res.stdout.splitlines() if line.startswith("WARNING")]
    assert len(warnings) == 1, warnings
    assert "connection_overrides[0] (off).weight: weight 0 between 'inp' and 'balls' is " \
           "followed by [1] 'on'" in warnings[0]
    # both create: 'off' locks every connection first; the last weight applies where it matches
    assert [n["weight"][0] for n in cell_state(out, 0)["netcons"]] == pytest.approx([0.0004])
    assert [n["weight"][0] for n in cell_state(out, 3)["netcons"]] == [0.0, 0.0]
