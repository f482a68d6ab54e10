"""The load-time checking pass and the plan, without NEURON or MPI (inline configs)."""

from __future__ import annotations

import json

import pytest

from neurodamus.config import RunOptions
from neurodamus.config.issues import IssueList
from neurodamus.config.sonata_parse import parse_collecting
from neurodamus.errors import ConfigError
from neurodamus.plan import check_run
from neurodamus.tools.example import write_example

RUN = {"tstop": 50.0, "dt": 0.025, "random_seed": 1}
GOOD_INPUT = {"module": "linear", "input_type": "current_clamp", "node_set": "Cortex",
              "delay": 0.0, "duration": 10.0, "amp_start": 0.1}
GOOD_REPORT = {"cells": "Cortex", "variable_name": "v", "sections": "soma",
               "type": "compartment", "dt": 0.1, "start_time": 0.0, "end_time": 50.0}


# ---- libsonata's refusals, entry by entry -------------------------------------------------------
def _issues(data: dict, tmp_path):
    issues = IssueList()
    sim = parse_collecting(tmp_path / "sim.json", data, issues)
    return sim, [str(i) for i in issues.fatals]


def test_each_refused_entry_is_one_issue_and_the_rest_still_parses(tmp_path):
    data = {"run": RUN,
            "inputs": {"good": GOOD_INPUT, "neg": dict(GOOD_INPUT, duration=-5.0)},
            "reports": {"ok": GOOD_REPORT, "typo": dict(GOOD_REPORT, sections="somaa")},
            "conditions": {"modifications": [{"name": "m", "type": "Teleport",
                                              "node_set": "Cortex"}]}}
    sim, issues = _issues(data, tmp_path)
    where = tmp_path / "sim.json"
    assert issues == [
        f"{where}: inputs.neg.duration: `duration` must be non-negative in input neg",
        f"{where}: reports.typo.sections: unknown value 'somaa' (expected one of soma, axon, "
        f"dend, apic, all)",
        f"{where}: conditions.modifications[0] (m).type: unknown modification type "
        f"'Teleport'"]
    assert sim is not None
    assert sorted(sim.list_input_names) == ["good"]
    assert sorted(sim.list_report_names) == ["ok"]


def test_a_refused_skeleton_stops_with_one_issue(tmp_path):
    sim, issues = _issues({"run": {"tstop": 10.0}}, tmp_path)
    assert sim is None
    assert issues == [f"{tmp_path / 'sim.json'}: dt: Could not find 'dt' in 'run'"]


def test_a_clean_config_gives_no_issue(tmp_path):
    sim, issues = _issues({"run": RUN, "inputs": {"good": GOOD_INPUT},
                           "reports": {"ok": GOOD_REPORT}}, tmp_path)
    assert issues == [] and sim.list_input_names == ["good"]


# ---- the whole pass on a real circuit -----------------------------------------------------------
@pytest.fixture(scope="module")
def circuit(tmp_path_factory):
    folder = tmp_path_factory.mktemp("example")
    write_example(folder, n_cells=20, tstop=50.0)
    return folder


def _config(circuit, tmp_path, **changes) -> str:
    data = json.loads((circuit / "simulation_config.json").read_text())
    data["network"] = str(circuit / "circuit_config.json")
    data["node_sets_file"] = str(circuit / "node_sets.json")
    for key, value in changes.items():
        data[key] = value
    if "thalamic_drive" in data.get("inputs", {}):
        data["inputs"]["thalamic_drive"]["spike_file"] = str(circuit / "input_spikes.h5")
    path = tmp_path / "simulation_config.json"
    path.write_text(json.dumps(data))
    return str(path)


def _check(path, tmp_path, **options):
    return check_run(path, RunOptions(output_path=str(tmp_path / "out"), **options))


def test_five_unrelated_mistakes_are_five_lines(circuit, tmp_path):
    data = json.loads((circuit / "simulation_config.json").read_text())
    path = _config(
        circuit, tmp_path,
        reports={"soma": dict(GOOD_REPORT, sections="somaa")},
        inputs={**data["inputs"], "a": dict(GOOD_INPUT, node_set="NoSuchSet"),
                "b": dict(GOOD_INPUT, duration=-1.0)},
        connection_overrides=[{"name": "o", "source": "Ghosts", "target": "Cortex",
                               "weight": 0.5}],
        conditions={"modifications": [{"name": "m", "type": "Teleport",
                                       "node_set": "Cortex"}]})
    with pytest.raises(ConfigError) as info:
        _check(path, tmp_path)
    lines = str(info.value).splitlines()
    assert lines == [
        f"{path}: inputs.b.duration: must be >= 0, got -1.0",
        f"{path}: reports.soma.sections: unknown value 'somaa' (expected one of soma, axon, "
        f"dend, apic, all)",
        f"{path}: conditions.modifications[0] (m).type: unknown modification type 'Teleport'",
        f"{path}: inputs.a.node_set: unknown node set 'NoSuchSet'",
        f"{path}: connection_overrides[0] (o).source: unknown node set 'Ghosts'"]


def test_report_problems_are_all_listed(circuit, tmp_path):
    path = _config(circuit, tmp_path, reports={
        "a": dict(GOOD_REPORT, dt=0.01), "b": dict(GOOD_REPORT, cells="Nowhere"),
        "c": dict(GOOD_REPORT, start_time=60.0, end_time=70.0)})
    with pytest.raises(ConfigError) as info:
        _check(path, tmp_path)
    assert str(info.value).splitlines() == [
        f"{path}: reports.a.dt: 0.01 ms is below the simulation time step run.dt = 0.025 ms",
        f"{path}: reports.c.start_time: 60.0 ms is after the end of the simulation "
        f"(run.tstop = 50.0 ms)",
        f"{path}: reports.b.cells: unknown node set 'Nowhere'"]


def test_an_input_on_no_simulated_cell_is_a_warning(circuit, tmp_path):
    data = json.loads((circuit / "simulation_config.json").read_text())
    path = _config(circuit, tmp_path, node_set="Inhibitory",
                   inputs={**data["inputs"], "exc": dict(GOOD_INPUT, node_set="Excitatory")})
    checked = _check(path, tmp_path)
    assert [str(w) for w in checked.warnings] == [
        f"{path}: inputs.exc.node_set: node set 'Excitatory' selects no simulated cell: the "
        f"input acts on nothing"]


def test_the_plan_holds_the_decisions(circuit, tmp_path):
    path = _config(circuit, tmp_path, reports={"soma": GOOD_REPORT})
    checked = _check(path, tmp_path)
    assert [r.name for r in checked.reports] == ["soma"]
    assert checked.engine is None and checked.build_model
    assert checked.outputs.files == ("out.h5", "populations_offset.dat", "soma.h5")
    cortex = checked.populations["cortex"]
    assert len(cortex.selected) == 20 and cortex.offset == 0
    assert checked.populations["thalamus"].offset > 0
    with_disabled = _check(path, tmp_path, disable_reports=True)
    assert with_disabled.reports == ()


def test_engine_options_are_checked_with_the_rest(circuit, tmp_path):
    path = _config(circuit, tmp_path, run=dict(RUN, dt=-1.0))
    with pytest.raises(ConfigError) as info:
        _check(path, tmp_path, keep_build=True)
    lines = str(info.value).splitlines()
    assert f"{path}: run.dt: must be > 0, got -1.0" in lines
    assert any(line.startswith("--keep-build: CoreNEURON options") for line in lines)


def test_node_sets_file_repeating_the_circuit_is_silent_and_redefinitions_summarised(
        circuit, tmp_path):
    sets = json.loads((circuit / "node_sets.json").read_text())
    same = tmp_path / "same.json"
    same.write_text(json.dumps(sets))
    path = _config(circuit, tmp_path, node_sets_file=str(same))
    assert [str(w) for w in _check(path, tmp_path).warnings] == []
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(dict(sets, Excitatory={"population": "cortex",
                                                         "node_id": [0, 1]},
                                       Inhibitory={"population": "cortex", "node_id": [2]})))
    path = _config(circuit, tmp_path, node_sets_file=str(changed))
    assert [str(w) for w in _check(path, tmp_path).warnings] == [
        f"{path}: node_sets_file: {changed} redefines 2 node set(s) of the circuit: "
        f"Excitatory, Inhibitory"]
