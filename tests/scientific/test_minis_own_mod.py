"""Minis with the circuit's own pointer-keeping InhPoissonStim (issue 15, item 2).

The InhPoissonStim that circuits ship keeps pointers to the time-bin and rate Vectors it is
given and re-reads them at INITIAL. tests/fixtures/mods/InhPoissonStim.mod does the same with
core/mod's algorithm and streams, so a correct driver (one Vector pair per generator, kept
alive) gives exactly the spikes of the copying core/mod generator, on any rank count. A
shared pair would give every generator of a rank the last rate set, so spikes would depend on
the rank count (and all cells would fire alike).
"""

import numpy as np
import pytest

from tests.fixtures import minis_circuit
from tests.helpers import read_spikes, run_neurodamus, spikes_equal


def _spikes(sim, ranks, name):
    out = sim.parent / f"out_{name}_{ranks}"
    proc = run_neurodamus([sim, f"--output-path={out}"], ranks=ranks)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return read_spikes(out / "out.h5")


@pytest.fixture(scope="module")
def circuits(tmp_path_factory):
    root = tmp_path_factory.mktemp("minis_own")
    return {"own": minis_circuit.write(root / "own", own_mod=True),
            "core": minis_circuit.write(root / "core", own_mod=False)}


@pytest.fixture(scope="module")
def reference(circuits):
    """core/mod's InhPoissonStim (copies the Vectors) on one rank."""
    return _spikes(circuits["core"], 1, "core")


def test_cells_fire_more_with_higher_mini_rates(reference):
    counts = np.bincount(reference["cortex"][1], minlength=minis_circuit.N_CELLS)
    assert np.all(np.diff(counts) > 0), counts   # MINI_RATES ascend


@pytest.mark.parametrize("ranks", [1, 2])
def test_pointer_keeping_mod_gives_core_spikes_on_any_rank_count(circuits, reference, ranks):
    assert spikes_equal(_spikes(circuits["own"], ranks, "own"), reference)
