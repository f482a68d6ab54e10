"""Node values that would change results silently, on the nodes this rank reads."""

from __future__ import annotations

import numpy as np

from ..errors import CircuitError


def check_node_values(pop_nodes) -> None:
    """No NaN or infinity in the numeric node columns this rank read (one pass per column)."""
    info = pop_nodes.info
    for column, values in pop_nodes.attrs.items():
        values = np.asarray(values)
        if values.dtype.kind != "f" or not len(values):
            continue
        finite = np.isfinite(values)
        if not finite.all():
            i = int(np.flatnonzero(~finite)[0])
            raise CircuitError(f"{info.nodes_file}: population '{info.name}': {column}: node "
                               f"{int(pop_nodes.local_raw[i])} has {values[i]}")


__all__ = ["check_node_values"]
