"""--modelbuilding-steps=N with CoreNEURON: the model written in N slices gives the spikes of
the one-step NEURON run (real NEURON + CoreNEURON of the wheel)."""

import json

import pytest

from neurodamus.tools.example import write_example
from neurodamus.tools.mechanisms import build_mechanisms
from tests.helpers import read_spikes, run_neurodamus, spikes_equal

pytestmark = pytest.mark.mpi


@pytest.fixture(scope="module")
def circuit(tmp_path_factory):
    root = tmp_path_factory.mktemp("steps")
    config = write_example(root / "circuit", n_cells=40, tstop=150.0, seed=11)
    build_mechanisms([config.parent / "mechanisms"], coreneuron=True, log=lambda *_: None)
    ref = root / "ref"
    res = run_neurodamus([config, f"--output-path={ref}"])
    assert res.returncode == 0, res.stderr[-3000:]
    return config, read_spikes(ref / "out.h5")


@pytest.mark.parametrize("ranks,extra", [(1, []), (2, ["--lb-mode=WholeCell"])])
def test_steps_give_the_one_step_spikes(circuit, tmp_path, ranks, extra):
    config, reference = circuit
    res = run_neurodamus([config, f"--output-path={tmp_path}", "--simulator=CORENEURON",
                          "--modelbuilding-steps=3", *extra], ranks=ranks)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    for k in (1, 2, 3):
        assert f"Model building step {k}/3" in res.stdout
    assert spikes_equal(read_spikes(tmp_path / "out.h5"), reference)
    assert len(reference["cortex"][0]) > 0
    assert not (tmp_path / "coreneuron_input").exists()       # not kept unless asked
    summary = json.loads((tmp_path / "run_summary.json").read_text())
    assert summary["cells"] == 40 and summary["synapses"] > 3000


def test_more_steps_than_cells_per_rank(circuit, tmp_path):
    config, reference = circuit
    res = run_neurodamus([config, f"--output-path={tmp_path}", "--simulator=CORENEURON",
                          "--modelbuilding-steps=100"])
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "40 step(s) instead of 100" in res.stdout
    assert spikes_equal(read_spikes(tmp_path / "out.h5"), reference)
