"""Which gids live on which rank. Pure numpy; the only rank-dependent decision of a run.

Three load-balance modes (``--lb-mode``):

* ``RoundRobin``: cell ``i`` of the globally sorted gid list goes to rank ``i % n_ranks``.
* ``WholeCell``: whole cells are spread by a cost per cell (compartments and synapses, see
  ``circuit/balance.py``) with the greedy "largest first onto the least loaded rank" rule.
* ``Memory``: the same rule on the dry-run's memory estimate per cell.

Whatever the mode, the result is a gid -> rank map: nothing numeric depends on it (random
streams, synapse ids and stimuli are keyed by gid), so the spikes do not depend on the mode.
"""

from __future__ import annotations

import heapq

import numpy as np

LB_MODES = ("RoundRobin", "WholeCell", "Memory")


def round_robin(gids: np.ndarray, rank: int, n_ranks: int) -> np.ndarray:
    """Cell ``i`` of the globally sorted gid list goes to rank ``i % n_ranks``."""
    gids = np.sort(np.asarray(gids, dtype=np.int64))
    return gids[rank::n_ranks]


def round_robin_ranks(n_cells: int, n_ranks: int) -> np.ndarray:
    """Rank of each cell of a sorted gid list under round robin."""
    return (np.arange(n_cells) % n_ranks).astype(np.int32)


def greedy_partition(costs: np.ndarray, n_ranks: int) -> np.ndarray:
    """Rank of each cell: largest cost first, each onto the currently least loaded rank.

    "Longest processing time first": the most loaded rank exceeds the optimum by at most
    1/3 (Graham's bound), and by at most one cell's cost. Ties are broken by position (gid
    order) and by lowest rank, so every rank computes the same map from the same costs.
    """
    costs = np.asarray(costs, dtype=np.float64)
    n = len(costs)
    ranks = np.zeros(n, dtype=np.int32)
    if n_ranks <= 1 or n == 0:
        return ranks
    order = np.lexsort((np.arange(n), -costs))        # cost descending, then gid ascending
    if n <= n_ranks:
        ranks[order] = np.arange(n, dtype=np.int32)
        return ranks
    heap = [(0.0, r) for r in range(n_ranks)]          # (load, rank): lowest rank wins ties
    ordered_costs = costs[order].tolist()
    assigned = [0] * n
    push, pop = heapq.heappush, heapq.heappop
    for i, c in enumerate(ordered_costs):
        load, r = pop(heap)
        assigned[i] = r
        push(heap, (load + c, r))
    ranks[order] = np.asarray(assigned, dtype=np.int32)
    return ranks


def rank_loads(costs: np.ndarray, ranks: np.ndarray, n_ranks: int) -> np.ndarray:
    """Sum of the costs each rank holds."""
    return np.bincount(np.asarray(ranks, dtype=np.int64), weights=np.asarray(costs, float),
                       minlength=n_ranks)[:n_ranks]


def imbalance(loads: np.ndarray) -> float:
    """max / mean load per rank (1.0 is perfect balance)."""
    loads = np.asarray(loads, dtype=float)
    mean = loads.mean() if len(loads) else 0.0
    return float(loads.max() / mean) if mean > 0 else 1.0


def distribute(gids: np.ndarray, rank: int, n_ranks: int, mode: str = "RoundRobin",
               rank_of: np.ndarray | None = None) -> np.ndarray:
    """This rank's gids (sorted).

    ``rank_of`` (aligned with the sorted ``gids``) is the map a cost-based mode computed
    (``circuit/balance.py``); RoundRobin needs none.
    """
    if mode not in LB_MODES:
        raise ValueError(f"load balance mode '{mode}' is not available (choose from "
                         f"{', '.join(LB_MODES)})")
    if mode == "RoundRobin" or rank_of is None:
        if mode != "RoundRobin":
            raise ValueError(f"load balance mode '{mode}' needs a gid -> rank map "
                             f"(circuit/balance.py computes it)")
        return round_robin(gids, rank, n_ranks)
    gids = np.sort(np.asarray(gids, dtype=np.int64))
    rank_of = np.asarray(rank_of)
    if len(rank_of) != len(gids):
        raise ValueError(f"the gid -> rank map has {len(rank_of)} entries for {len(gids)} "
                         f"cells: it belongs to another circuit or node set")
    if len(rank_of) and (rank_of.min() < 0 or rank_of.max() >= n_ranks):
        raise ValueError(f"the gid -> rank map uses ranks up to {int(rank_of.max())} but the "
                         f"run has {n_ranks}")
    return gids[rank_of == rank]


def model_slices(local_gids: np.ndarray, n_steps: int, costs: np.ndarray | None = None
                 ) -> list[np.ndarray]:
    """Split this rank's gids into ``n_steps`` slices of about equal cost
    (``--modelbuilding-steps``).

    Slices are contiguous in gid order (each slice reads contiguous node and edge ranges) and
    together hold every local gid exactly once; a slice may be empty when there are fewer
    cells than steps.
    """
    local_gids = np.sort(np.asarray(local_gids, dtype=np.int64))
    n_steps = max(1, int(n_steps))
    if costs is None:
        costs = np.ones(len(local_gids))
    costs = np.asarray(costs, dtype=float)
    if n_steps == 1 or len(local_gids) == 0:
        return [local_gids] + [local_gids[:0]] * (n_steps - 1)
    cum = np.cumsum(costs)
    bounds = np.searchsorted(cum, cum[-1] * np.arange(1, n_steps) / n_steps, side="right")
    return np.split(local_gids, bounds)


__all__ = ["LB_MODES", "distribute", "greedy_partition", "imbalance", "model_slices",
           "rank_loads", "round_robin", "round_robin_ranks"]
