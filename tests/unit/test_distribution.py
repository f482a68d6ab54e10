import numpy as np
import pytest

from neurodamus.circuit.distribution import distribute


@pytest.mark.parametrize("ranks", [1, 2, 3, 7])
def test_round_robin_partitions_all_gids(ranks):
    gids = np.array([5, 1, 9, 3, 1000, 1002, 7])
    parts = [distribute(gids, r, ranks) for r in range(ranks)]
    merged = np.sort(np.concatenate(parts))
    assert np.array_equal(merged, np.sort(gids))
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_unknown_mode_is_rejected():
    with pytest.raises(ValueError, match="WholeCell"):
        distribute(np.arange(3), 0, 1, "WholeCell")
