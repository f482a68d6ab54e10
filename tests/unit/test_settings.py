"""Config loading and validation: every problem names the file and the key."""

import json

import pytest

from neurodamus.config import load_settings
from neurodamus.errors import ConfigError
from neurodamus.tools.example import write_example


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    return write_example(tmp_path_factory.mktemp("ex"), n_cells=10, tstop=50)


def edited(example, tmp_path, **changes):
    cfg = json.loads(example.read_text())
    for key, value in changes.items():
        cfg[key] = value
    cfg["network"] = str(example.parent / "circuit_config.json")
    path = tmp_path / "simulation_config.json"
    path.write_text(json.dumps(cfg))
    return path


def test_example_loads_with_contract_defaults(example):
    s = load_settings(example)
    assert list(s.node_populations) == ["cortex", "thalamus"]
    assert [e.name for e in s.edge_populations] == ["cortex__cortex__chemical",
                                                    "thalamus__cortex__chemical"]
    assert s.run.spike_threshold == -30
    assert s.spikes_file == example.parent / "output" / "out.h5"
    assert s.success_marker.name == "simulation_config.json.SUCCESS"


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="Simulation config not found: .*nope.json"):
        load_settings(tmp_path / "nope.json")


def test_invalid_json_names_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"run": {"tstop": 10,}}')
    with pytest.raises(ConfigError, match=r"bad\.json: invalid JSON at line 1"):
        load_settings(bad)


def test_missing_run_key_names_file_and_key(example, tmp_path):
    path = edited(example, tmp_path, run={"tstop": 10, "random_seed": 1})
    with pytest.raises(ConfigError, match=r"simulation_config\.json: .*'dt'"):
        load_settings(path)


def test_unknown_node_set(example, tmp_path):
    path = edited(example, tmp_path, node_set="NoSuchSet")
    with pytest.raises(ConfigError, match=r"simulation_config\.json: node_set: unknown node "
                                          r"set 'NoSuchSet'"):
        load_settings(path)


def test_missing_nodes_file_names_circuit_key(example, tmp_path):
    circuit = json.loads((example.parent / "circuit_config.json").read_text())
    circuit["networks"]["nodes"][0]["nodes_file"] = str(tmp_path / "missing.h5")
    circuit["manifest"]["$BASE_DIR"] = str(example.parent)
    (tmp_path / "circuit.json").write_text(json.dumps(circuit))
    path = edited(example, tmp_path)
    cfg = json.loads(path.read_text())
    cfg["network"] = str(tmp_path / "circuit.json")
    path.write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match=r"circuit\.json: networks\.nodes\[0\]\.nodes_file"):
        load_settings(path)
