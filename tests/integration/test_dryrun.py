"""--dry-run on the example circuit: the table, the suggestion, and the estimate against the
measured peak memory of real runs (1 rank, and 2 ranks with the Memory allocation)."""

import json

import numpy as np
import pytest

from neurodamus.tools import dryrun
from neurodamus.tools.example import write_example
from neurodamus.tools.mechanisms import build_mechanisms
from tests.helpers import read_spikes, run_neurodamus, spikes_equal

pytestmark = pytest.mark.mpi

TOLERANCE = 0.30


def _run(args, ranks=1):
    result = run_neurodamus(args, ranks=ranks)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """The example circuit (100 cells; 200 ms: memory hardly depends on tstop)."""
    root = tmp_path_factory.mktemp("dryrun")
    config = write_example(root / "circuit", n_cells=100, tstop=200.0)
    build_mechanisms([config.parent / "mechanisms"], log=lambda *_: None)
    out = root / "out"
    dry = _run([config, f"--output-path={out}", "--dry-run", "--num-target-ranks=2"])
    assert not (out / "out.h5").exists()   # a dry run simulates nothing
    estimates = json.loads(next((out / "load_balance").glob("memory_*.json")).read_text())
    real = {}
    for ranks, extra in ((1, []), (2, ["--lb-mode=Memory"])):
        _run([config, f"--output-path={out}", *extra], ranks)
        real[ranks] = (json.loads((out / "run_summary.json").read_text()),
                       read_spikes(out / "out.h5"))
    return config, out, dry.stdout, estimates, real


def test_table(example):
    _, out, stdout, estimates, _ = example
    assert "Dry run: estimated memory" in stdout
    for cell_type in ("PyrHH x L5_TPC", "IntHH x L5_BC"):
        assert cell_type in stdout
    assert "suggested rank count 1" in stdout
    assert "estimated peak per rank on 2 ranks" in stdout
    assert "nothing was simulated" in stdout
    assert estimates["cells"] == 100 and 9000 < estimates["synapses"] < 11000


def _estimated_peaks(config, out, estimates, ranks):
    from neurodamus.circuit import balance
    from neurodamus.circuit.nodes import select_nodes
    from neurodamus.config import RunOptions, load_settings

    settings = load_settings(config, RunOptions(output_path=str(out)))
    table = balance.cell_table(settings, select_nodes(settings))
    costs = balance.memory_costs(table, estimates)
    return dryrun.rank_estimates(costs, estimates["base_mb"], ranks)


@pytest.mark.parametrize("ranks", [1, 2])
def test_estimate_within_30_percent_of_measured_peak(example, ranks):
    config, out, _, estimates, real = example
    measured = np.array(real[ranks][0]["peak_rss_mb"])
    estimated = _estimated_peaks(config, out, estimates, ranks)
    print(f"\n{ranks} rank(s): estimated peak per rank {np.round(estimated)} MB, measured "
          f"{np.round(measured)} MB")
    assert len(measured) == ranks
    assert abs(estimated.max() - measured.max()) <= TOLERANCE * measured.max()
    assert np.all(np.abs(np.sort(estimated) - np.sort(measured)) <= TOLERANCE * measured)


def test_memory_mode_uses_the_target_allocation_and_keeps_the_spikes(example):
    _, _, _, _, real = example
    summary = real[2][0]
    assert summary["load_balance"]["mode"] == "Memory"
    assert summary["load_balance"]["reused"] is True
    assert spikes_equal(real[1][1], real[2][1])


def test_suggestion_for_a_small_memory_budget(example, tmp_path):
    config, _, _, estimates, _ = example
    budget = estimates["base_mb"] + 20.0     # room for ~40 cells of the example per rank
    res = _run([config, f"--output-path={tmp_path}", "--dry-run",
                f"--memory-per-rank={budget:.0f}"])
    line = next(x for x in res.stdout.splitlines() if "suggested rank count" in x)
    assert int(line.split()[-1]) >= 2
    res = _run([config, f"--output-path={tmp_path}", "--dry-run", "--memory-per-rank=10"])
    assert "too small" in res.stdout
