"""Load balance plan (issue 9): partitions, cost files, the cell table and bulk I/O. No NEURON."""

import numpy as np
import pytest

from neurodamus.circuit import balance
from neurodamus.circuit.distribution import (
    LB_MODES,
    distribute,
    greedy_partition,
    imbalance,
    model_slices,
    rank_loads,
    round_robin_ranks,
)
from neurodamus.tools import dryrun


# ---- partitions ---------------------------------------------------------------------------
def test_modes():
    assert LB_MODES == ("RoundRobin", "WholeCell", "Memory")


@pytest.mark.parametrize("ranks", [1, 2, 3, 7, 64])
def test_greedy_partition_assigns_every_cell_once(ranks):
    rng = np.random.default_rng(4)
    costs = rng.uniform(1, 10, 200)
    r = greedy_partition(costs, ranks)
    assert r.shape == (200,) and r.min() >= 0 and r.max() < ranks
    parts = [np.flatnonzero(r == k) for k in range(ranks)]
    assert sorted(np.concatenate(parts).tolist()) == list(range(200))
    # largest-first greedy: no rank exceeds the mean by more than the largest cell
    loads = rank_loads(costs, r, ranks)
    assert loads.max() <= loads.mean() + costs.max() + 1e-9


def test_greedy_beats_round_robin_on_alternating_sizes():
    costs = np.tile([10.0, 1.0], 50)          # big, small, big, small ...: RR puts all big on 0
    rr = imbalance(rank_loads(costs, round_robin_ranks(100, 2), 2))
    greedy = imbalance(rank_loads(costs, greedy_partition(costs, 2), 2))
    assert rr == pytest.approx(20 / 11)
    assert greedy == pytest.approx(1.0)


def test_greedy_partition_is_deterministic_with_ties():
    costs = np.ones(10)
    a, b = greedy_partition(costs, 3), greedy_partition(costs.copy(), 3)
    assert np.array_equal(a, b)
    assert np.array_equal(a, [0, 1, 2, 0, 1, 2, 0, 1, 2, 0])   # equal costs: gid order


def test_fewer_cells_than_ranks():
    r = greedy_partition(np.array([1.0, 5.0]), 4)
    assert sorted(r.tolist()) == [0, 1] and r[1] == 0       # largest cell on rank 0


def test_imbalance():
    assert imbalance(np.array([2.0, 2.0])) == 1.0
    assert imbalance(np.array([3.0, 1.0])) == 1.5
    assert imbalance(np.zeros(3)) == 1.0


def test_distribute_with_a_map():
    gids = np.array([30, 10, 20, 40])
    ranks = np.array([1, 0, 1, 0])                          # aligned with sorted gids
    assert distribute(gids, 0, 2, "WholeCell", ranks).tolist() == [20, 40]
    assert distribute(gids, 1, 2, "Memory", ranks).tolist() == [10, 30]
    with pytest.raises(ValueError, match="another circuit"):
        distribute(gids, 0, 2, "WholeCell", ranks[:3])
    with pytest.raises(ValueError, match="run has 1"):
        distribute(gids, 0, 1, "WholeCell", ranks)
    with pytest.raises(ValueError, match="not available"):
        distribute(gids, 0, 2, "Nope")


def test_model_slices_cover_local_cells_with_equal_cost():
    gids = np.arange(100, 200)
    costs = np.where(np.arange(100) < 50, 3.0, 1.0)
    slices = model_slices(gids, 4, costs)
    assert len(slices) == 4
    assert np.array_equal(np.concatenate(slices), gids)
    per_slice = [costs[np.searchsorted(gids, s)].sum() for s in slices]
    assert max(per_slice) - min(per_slice) <= 3.0
    assert sorted(len(s) for s in model_slices(np.arange(2), 3)) == [0, 1, 1]
    assert len(model_slices(np.zeros(0, np.int64), 2)) == 2


def test_suggest_ranks():
    costs = np.full(100, 10.0)                               # 1000 MB of cells
    assert dryrun.suggest_ranks(costs, 100.0, 1200.0) == 1
    n = dryrun.suggest_ranks(costs, 100.0, 300.0)            # 200 MB of room per rank
    assert n == 5
    assert dryrun.rank_estimates(costs, 100.0, n).max() <= 300.0
    assert dryrun.suggest_ranks(costs, 100.0, 90.0) is None  # the base alone does not fit


# ---- the circuit side (an example circuit, no NEURON) --------------------------------------
@pytest.fixture(scope="module")
def circuit(tmp_path_factory):
    from neurodamus.tools.example import write_example

    return write_example(tmp_path_factory.mktemp("balance"), n_cells=60, tstop=50, seed=5)


def _settings(config, output):
    from neurodamus.circuit.nodes import select_nodes
    from neurodamus.config import RunOptions, load_settings

    settings = load_settings(config, RunOptions(output_path=str(output)))
    return settings, select_nodes(settings)


def test_afferent_counts_match_the_edges(circuit):
    import h5py

    for name, edges in (("cortex__cortex__chemical", "edges.h5"),
                        ("thalamus__cortex__chemical", "projections.h5")):
        path = circuit.parent / edges
        counts = balance.afferent_counts(str(path), name, 60)
        with h5py.File(path) as fd:
            tgt = fd[f"edges/{name}/target_node_id"][:]
        assert np.array_equal(counts, np.bincount(tgt.astype(int), minlength=60))


def test_cell_table_and_key(circuit, tmp_path):
    settings, pops = _settings(circuit, tmp_path)
    table = balance.cell_table(settings, pops)
    assert np.array_equal(table.gids, np.arange(60))
    assert set(table.template) == {"PyrHH", "IntHH"}
    assert set(table.cell_type) == {"PyrHH x L5_TPC", "IntHH x L5_BC"}
    assert table.synapses.sum() > 60 * 80                   # ~100 synapses per cell
    key = balance.circuit_key(settings, pops)
    assert key == balance.circuit_key(settings, pops)
    pops["cortex"].selected = pops["cortex"].selected[:30]  # another node set: another key
    assert balance.circuit_key(settings, pops) != key
    path = balance.allocation_path(settings, key, "WholeCell", 2)
    assert path.parent == tmp_path / "load_balance" and path.name.endswith("_r2.npz")


def test_allocation_file_round_trip(tmp_path):
    gids = np.arange(10)
    path = tmp_path / "load_balance" / "alloc.npz"
    balance.save_allocation(path, gids, gids % 2, np.ones(10), "WholeCell")
    ranks, _ = balance.load_allocation(path, gids, 2)
    assert np.array_equal(ranks, gids % 2)
    assert balance.load_allocation(path, gids[:5], 2) is None      # another circuit
    assert balance.load_allocation(path, gids, 1) is None          # another rank count
    assert balance.load_allocation(tmp_path / "missing.npz", gids, 2) is None


def test_memory_costs_and_samples(circuit, tmp_path):
    settings, pops = _settings(circuit, tmp_path)
    table = balance.cell_table(settings, pops)
    estimates = {"cell_mb": {"PyrHH x L5_TPC": 0.2, "IntHH x L5_BC": 0.1}, "synapse_kb": 2.0}
    mb = balance.memory_costs(table, estimates)
    pyr = table.template == "PyrHH"
    assert np.allclose(mb[pyr], 0.2 + table.synapses[pyr] * 2.0 / 1024)
    chosen = dryrun.choose_samples(table, per_type=5)
    assert set(chosen) == set(table.cell_type)
    for t, idx in chosen.items():
        assert len(idx) == 5 and all(table.cell_type[i] == t for i in idx)
        # distinct morphologies first (4 variants per class in the example)
        assert len(set(table.morphology[idx])) == len(set(
            table.morphology[table.cell_type == t]))


# ---- bulk reads: the number of reads does not grow with the number of local cells ---------
class _Counting:
    def __init__(self, inner, calls):
        self._inner, self._calls = inner, calls

    def __getattr__(self, name):
        value = getattr(self._inner, name)
        if name in ("get_attribute", "get_dynamics_attribute", "afferent_edges",
                    "source_nodes", "target_nodes"):
            def wrapped(*args, **kw):
                self._calls.append(name)
                return value(*args, **kw)
            return wrapped
        return value


@pytest.mark.parametrize("stride", [2, 7])
def test_reads_are_per_column_not_per_cell(circuit, tmp_path, monkeypatch, stride):
    import libsonata

    from neurodamus.circuit import nodes
    from neurodamus.connectivity import edges

    settings, pops = _settings(circuit, tmp_path)
    cortex = pops["cortex"]
    calls = {}
    real_storage = libsonata.EdgeStorage
    for n_local in (5, 25):
        ids = cortex.selected[::stride][:n_local]
        cortex.local_raw = ids
        node_calls, edge_calls = [], []

        def counting_open(info, real_open=nodes.open_population, calls=node_calls):
            return _Counting(real_open(info), calls)

        monkeypatch.setattr(nodes, "open_population", counting_open)

        class Storage:
            def __init__(self, path, calls=edge_calls):
                self._s, self._calls = real_storage(path), calls

            def open_population(self, name):
                return _Counting(self._s.open_population(name), self._calls)

        monkeypatch.setattr(edges.libsonata, "EdgeStorage", Storage)
        nodes.read_local_attributes(cortex)
        ep = settings.edge_populations[0]
        table = edges.read_synapses(ep, ids, 0, 0, 0.025)
        monkeypatch.undo()
        assert len(table) > 50 * len(ids)
        calls[n_local] = (len(node_calls), len(edge_calls))
    # the same number of reads for 5 and for 25 local cells: one per column
    assert calls[5] == calls[25]
    assert calls[5][1] < 30
