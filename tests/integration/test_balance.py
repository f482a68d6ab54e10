"""Load-balance modes on a circuit mixing small and large cells (real NEURON, 2 ranks)."""

import json
import os

import pytest

from benchmarks.circuits import make_mixed_circuit
from neurodamus.tools.mechanisms import build_mechanisms
from tests.helpers import read_spikes, run_neurodamus, spikes_equal

pytestmark = pytest.mark.mpi


def _run(args, ranks, cwd=None):
    result = run_neurodamus(args, ranks=ranks, cwd=cwd)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    root = tmp_path_factory.mktemp("mixed")
    config = make_mixed_circuit(root / "circuit")
    build_mechanisms([config.parent / "mechanisms"], log=lambda *_: None)
    cwd = root / "cwd"
    cwd.mkdir()
    out = {}
    for name, extra in (("rr", []), ("wc", ["--lb-mode=WholeCell"]),
                        ("wc_again", ["--lb-mode=WholeCell"])):
        d = root / ("wc" if name == "wc_again" else name)
        res = _run([config, f"--output-path={d}", *extra], 2, cwd=cwd)
        out[name] = (res.stdout, d, json.loads((d / "run_summary.json").read_text()))
    # Memory: the dry-run's allocation for 2 ranks, then the run that uses it
    d = root / "mem"
    dry = _run([config, f"--output-path={d}", "--dry-run", "--num-target-ranks=2"], 1, cwd=cwd)
    res = _run([config, f"--output-path={d}", "--lb-mode=Memory"], 2, cwd=cwd)
    out["dry"] = (dry.stdout, d, None)
    out["mem"] = (res.stdout, d, json.loads((d / "run_summary.json").read_text()))
    return config, cwd, out


def test_every_mode_gives_identical_spikes(mixed):
    _, _, out = mixed
    spikes = {k: read_spikes(out[k][1] / "out.h5") for k in ("rr", "wc", "mem")}
    assert len(spikes["rr"]["cortex"][0]) > 20
    assert spikes_equal(spikes["rr"], spikes["wc"])
    assert spikes_equal(spikes["rr"], spikes["mem"])


def test_wholecell_balances_better_than_round_robin(mixed):
    _, _, out = mixed
    lb = out["wc"][2]["load_balance"]
    print(f"\nmixed small/large circuit, 2 ranks: max/mean cost per rank "
          f"WholeCell {lb['max_over_mean']:.3f}, round robin {lb['round_robin_max_over_mean']:.3f}")
    assert lb["mode"] == "WholeCell" and lb["ranks"] == 2
    assert lb["round_robin_max_over_mean"] > 1.2      # every large cell on rank 0
    assert lb["max_over_mean"] < 1.02
    assert lb["max_over_mean"] < lb["round_robin_max_over_mean"]
    assert "Load balance WholeCell: 2 rank(s), max/mean load" in out["wc"][0]
    mem = out["mem"][2]["load_balance"]
    assert mem["mode"] == "Memory" and mem["max_over_mean"] < 1.02


def test_balance_files_are_cached_next_to_the_output(mixed):
    _, cwd, out = mixed
    assert os.listdir(cwd) == []                       # nothing in the working directory
    wc_dir = out["wc"][1] / "load_balance"
    names = sorted(p.name for p in wc_dir.iterdir())
    assert [n.split("_")[0] for n in names] == ["alloc", "cx"]
    assert names[0].endswith("_r2.npz")
    assert "allocation written" in out["wc"][0]
    assert "allocation reused" in out["wc_again"][0]   # second run: nothing measured again
    assert "measured" not in out["wc_again"][0]
    mem_dir = out["mem"][1] / "load_balance"
    assert any(p.name.startswith("memory_") for p in mem_dir.iterdir())
    assert "allocation reused" in out["mem"][0]        # the dry-run's --num-target-ranks=2


def test_memory_mode_needs_the_dry_run(mixed, tmp_path):
    config, _, _ = mixed
    res = run_neurodamus([config, f"--output-path={tmp_path}", "--lb-mode=Memory"], ranks=2)
    assert res.returncode == 1
    assert "--dry-run" in res.stderr and "load_balance/memory_" in res.stderr


def test_bad_scale_options_print_usage(mixed, tmp_path):
    config, _, _ = mixed
    for args in (["--num-target-ranks=2"], ["--dry-run", "--num-target-ranks=0"],
                 ["--lb-mode=Fastest"], ["--modelbuilding-steps=x"]):
        res = run_neurodamus([config, f"--output-path={tmp_path}", *args])
        assert res.returncode == 2, (args, res.stderr)
        assert "Usage" in res.stderr


def test_modelbuilding_steps_under_neuron_warns_and_runs(mixed, tmp_path):
    config, _, out = mixed
    res = _run([config, f"--output-path={tmp_path}", "--modelbuilding-steps=3"], 1)
    assert "--modelbuilding-steps=3 caps memory only in CoreNEURON file mode" in res.stdout
    assert spikes_equal(read_spikes(tmp_path / "out.h5"), read_spikes(out["rr"][1] / "out.h5"))
