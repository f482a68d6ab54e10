"""Node sets across populations (virtual populations without the attributes a node set tests)
and configs reused on a smaller node set: real runs, 1 and 2 ranks."""

from __future__ import annotations

import json

import pytest

from tests.helpers import read_spikes, run_neurodamus, spikes_equal

pytestmark = pytest.mark.mpi


def _variant(config, tmp_path, **changes):
    data = json.loads(config.read_text())
    data["run"]["tstop"] = 50.0
    data.update(changes)
    path = config.parent / f"variant_{tmp_path.name}.json"
    path.write_text(json.dumps(data, indent=1))
    return path


def test_override_on_an_mtype_compound_runs_with_a_virtual_population(small_config, tmp_path):
    """'Mosaic' = [Excitatory, Inhibitory] tests mtype, which the virtual 'thalamus' lacks:
    that population contributes no node, the override applies to the cortex."""
    config = _variant(small_config, tmp_path, connection_overrides=[
        {"name": "scaled", "source": "Mosaic", "target": "Mosaic", "weight": 0.5}])
    spikes = {}
    for ranks in (1, 2):
        out = tmp_path / f"out{ranks}"
        res = run_neurodamus([config, f"--output-path={out}"], ranks=ranks)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        assert "creates only the pathways of [0] 'scaled'" in res.stdout
        spikes[ranks] = read_spikes(out / "out.h5")
    assert spikes_equal(spikes[1], spikes[2])
    assert len(spikes[1]["cortex"][0]) > 0


def test_input_on_no_simulated_cell_is_a_warning(small_config, tmp_path):
    data = json.loads(small_config.read_text())
    pulse = {"module": "linear", "input_type": "current_clamp", "node_set": "Excitatory",
             "delay": 0.0, "duration": 10.0, "amp_start": 0.1}
    config = _variant(small_config, tmp_path, node_set="Inhibitory",
                      inputs={**data["inputs"], "exc_pulse": pulse})
    res = run_neurodamus([config, f"--output-path={tmp_path / 'out'}"], ranks=2)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert res.stdout.count("inputs.exc_pulse.node_set: node set 'Excitatory' selects no "
                            "simulated cell") == 1
    assert (tmp_path / "out" / "out.h5").is_file()
