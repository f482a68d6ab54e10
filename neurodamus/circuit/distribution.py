"""Which gids live on which rank. Pure numpy; the only rank-dependent decision of a run."""

from __future__ import annotations

import numpy as np


def round_robin(gids: np.ndarray, rank: int, n_ranks: int) -> np.ndarray:
    """Cell ``i`` of the globally sorted gid list goes to rank ``i % n_ranks``."""
    gids = np.sort(np.asarray(gids, dtype=np.int64))
    return gids[rank::n_ranks]


LB_MODES = ("RoundRobin",)


def distribute(gids: np.ndarray, rank: int, n_ranks: int, mode: str = "RoundRobin"
               ) -> np.ndarray:
    if mode != "RoundRobin":
        raise ValueError(f"load balance mode '{mode}' is not available (choose from "
                         f"{', '.join(LB_MODES)})")
    return round_robin(gids, rank, n_ranks)
