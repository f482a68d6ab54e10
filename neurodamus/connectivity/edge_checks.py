"""Edge values that would change results silently, checked on what this rank reads.

One vectorised pass (min/max/finite) per column this rank has already read: no second read of
the files. Each problem is a CircuitError ``<edges file>: population '<name>': <column>: ...``
naming the first offending edge; the build phase makes every rank agree on the failure
(``parallel.Phase``), so the outcome does not depend on the rank count.
"""

from __future__ import annotations

import numpy as np

from ..errors import CircuitError


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def check_finite(where: str, column: str, values: np.ndarray, edge_ids: np.ndarray) -> None:
    """No NaN or infinity in a numeric column the run uses."""
    if values.dtype.kind != "f" or not len(values):
        return
    finite = np.isfinite(values)
    if not finite.all():
        i = _first(~finite)
        raise CircuitError(f"{where}: {column}: edge {int(edge_ids[i])} has {values[i]} "
                           f"({int((~finite).sum())} non-finite value(s) on this rank)")


def check_delays(where: str, delay: np.ndarray, edge_ids: np.ndarray, dt: float) -> None:
    """Synaptic delays > 0 and >= run.dt (a shorter one rounds to 0 ms: NEURON then refuses
    to exchange spikes between ranks, so the run would depend on the rank count)."""
    if not len(delay):
        return
    delay = delay.astype(np.float64)
    low = delay <= 0
    if low.any():
        i = _first(low)
        raise CircuitError(f"{where}: delay: edge {int(edge_ids[i])} has delay {delay[i]:g} ms "
                           f"(synaptic delays must be > 0)")
    short = (delay / dt + 1e-5).astype(np.int64) == 0
    if short.any():
        i = _first(short)
        raise CircuitError(f"{where}: delay: edge {int(edge_ids[i])} has delay {delay[i]:g} ms, "
                           f"below run.dt = {dt:g} ms (it would round to 0 ms; the smallest "
                           f"delay must be >= dt)")


#: float32 rounding may put a position this far outside [0, 1]: clamped as the contract says
#: (contract §3.2); anything further out is corrupt data, refused instead of silently clamped
FRACTION_TOLERANCE = 1e-5


def check_fractions(where: str, column: str, pos: np.ndarray, edge_ids: np.ndarray) -> None:
    """Positions along a section in [0, 1] (outside values were silently clipped before)."""
    if not len(pos):
        return
    tol = FRACTION_TOLERANCE
    bad = ~((pos >= -tol) & (pos <= 1 + tol))   # NaN is bad too
    if bad.any():
        i = _first(bad)
        raise CircuitError(f"{where}: {column}: edge {int(edge_ids[i])} has {pos[i]:g}, outside "
                           f"[0, 1]")


def check_section_ids(where: str, column: str, sec_id: np.ndarray, edge_ids: np.ndarray) -> None:
    if len(sec_id) and sec_id.min() < 0:
        i = _first(sec_id < 0)
        raise CircuitError(f"{where}: {column}: edge {int(edge_ids[i])} has section id "
                           f"{int(sec_id[i])} (< 0)")


def check_targets(where: str, tgt: np.ndarray, targets: np.ndarray,
                  edge_ids: np.ndarray) -> None:
    """The target_node_id of each edge is one of the nodes the index gave it for."""
    if not len(tgt):
        return
    pos = np.minimum(np.searchsorted(targets, tgt), len(targets) - 1)
    bad = targets[pos] != tgt
    if bad.any():
        i = _first(bad)
        raise CircuitError(f"{where}: target_node_id: edge {int(edge_ids[i])} has target "
                           f"{int(tgt[i])}, which the file's index does not list it under "
                           f"(an id outside the target population, or a stale index)")


def section_problem(where: str, gid: int, section_id: int, n_sections: int,
                    edge_id=None) -> CircuitError:
    """An afferent_section_id beyond the sections of the cell's morphology."""
    edge = f"edge {edge_id}: " if edge_id is not None else ""
    return CircuitError(f"{where}: afferent_section_id: {edge}section {section_id} of gid "
                        f"{gid} is beyond the cell's {n_sections} sections")


__all__ = ["check_delays", "check_finite", "check_fractions", "check_section_ids",
           "check_targets", "section_problem"]
