"""Resolve an input's node_set to this rank's cells and its soma injection points."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError


def local_target_cells(ctx, name, stim) -> list:
    """Local cells in the input's node set, ascending gid; empty or unknown sets are errors."""
    node_set = stim.node_set
    where = f"{ctx.settings.config_path}: inputs.{name}.node_set"
    if not node_set:
        raise ConfigError(f"{where}: the input names no node_set")
    if node_set not in ctx.settings.node_sets.names:
        raise ConfigError(f"{where}: unknown node set '{node_set}'")
    gids = ctx.node_set_gids(node_set)
    if len(gids) == 0:
        raise ConfigError(f"{where}: node set '{node_set}' selects no cell")
    local = np.intersect1d(gids, np.fromiter(ctx.cells.keys(), dtype=np.int64))
    return [ctx.cells[int(g)] for g in local]


def soma_points(cell):
    """Node-set inputs go to the centre of each soma section (compatibility §4.1)."""
    return [(sec, 0.5) for sec in cell.hoc.soma]
