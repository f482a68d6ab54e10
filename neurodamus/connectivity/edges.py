"""Read afferent chemical edges of this rank's cells and turn them into a synapse plan.

Pure numpy + libsonata. This is the one place that maps SONATA edge columns to synapse
parameters (contract §3.1–§3.3); ``synapses.py`` only creates the NEURON objects.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import libsonata
import numpy as np

from ..config.settings import EdgePopulationInfo
from ..errors import CircuitError
from . import edge_checks

#: internal field -> SONATA column; None default means the column is required (contract §3.1)
COLUMNS = {
    "weight": ("conductance", None),
    "U": ("u_syn", None),
    "D": ("depression_time", None),
    "F": ("facilitation_time", None),
    "DTC": ("decay_time", None),
    "syn_type": ("syn_type_id", None),
    "nrrp": ("n_rrp_vesicles", None),
    "delay": ("delay", None),
    "u_hill": ("u_hill_coefficient", 0.0),
    "cond_ratio": ("conductance_scale_factor", -1.0),
}


@dataclass
class Connection:
    tgid: int
    sgid: int
    start: int   # row range in the SynapseTable
    stop: int


@dataclass
class SynapseTable:
    """This rank's synapses of one edge population, in creation order (contract §1.3)."""

    edge_pop: EdgePopulationInfo
    source_offset: int
    target_offset: int
    tgid: np.ndarray
    sgid: np.ndarray
    synapse_id: np.ndarray
    section_id: np.ndarray
    x: np.ndarray              # fraction along the section, NaN when segment form is used
    segment: np.ndarray | None  # (segment id, offset) when the segment form is used
    params: dict               # internal field -> array
    connections: list

    def __len__(self):
        return len(self.tgid)


def _location(pop, sel, n, where, edge_ids):
    names = set(pop.attribute_names)

    def col(c):
        return np.asarray(pop.get_attribute(c, sel))

    if "afferent_section_id" in names:
        sec_id = col("afferent_section_id").astype(np.int64)
        edge_checks.check_section_ids(where, "afferent_section_id", sec_id, edge_ids)
        if "afferent_section_pos" in names:
            pos = col("afferent_section_pos").astype(float)
            edge_checks.check_fractions(where, "afferent_section_pos", pos, edge_ids)
        elif "afferent_section_fraction" in names:
            warnings.warn(f"{where}: afferent_section_pos missing, using "
                          f"afferent_section_fraction")
            pos = col("afferent_section_fraction").astype(float)
            edge_checks.check_fractions(where, "afferent_section_fraction", pos, edge_ids)
        elif {"afferent_segment_id", "afferent_segment_offset"} <= names:
            seg = np.column_stack([col("afferent_segment_id"), col("afferent_segment_offset")])
            return sec_id, np.full(n, np.nan), seg
        else:
            raise CircuitError(f"{where}: no synapse position column (afferent_section_pos, "
                               f"afferent_section_fraction or afferent_segment_id/offset)")
    elif "morpho_section_id_post" in names:
        sec_id = col("morpho_section_id_post").astype(np.int64)
        if "morpho_section_fraction_post" in names:
            pos = col("morpho_section_fraction_post").astype(float)
            edge_checks.check_fractions(where, "morpho_section_fraction_post", pos, edge_ids)
        else:
            seg = np.column_stack([col("morpho_segment_id_post"),
                                   col("morpho_offset_segment_post")])
            return sec_id, np.full(n, np.nan), seg
    else:
        raise CircuitError(f"{where}: no synapse location column (afferent_section_id)")
    return sec_id, np.clip(np.maximum(pos, 0.0), 1e-7, 0.9999999), None


def u_hill_factor(k: np.ndarray, calcium: float) -> np.ndarray:
    """(K^4 + 16)/16 · Ca^4/(K^4 + Ca^4) (contract §3.1)."""
    k4 = np.asarray(k, dtype=float) ** 4
    ca4 = calcium ** 4
    return (k4 + 16.0) / 16.0 * ca4 / (k4 + ca4)


def read_synapses(edge_pop: EdgePopulationInfo, local_target_raw: np.ndarray,
                  source_offset: int, target_offset: int, dt: float,
                  extracellular_calcium: float | None = None, columns: dict | None = None,
                  extra_columns=(), location_required: bool = True) -> SynapseTable:
    """Read the afferent edges of this rank's targets in bulk and order them (contract §1.3, §3).

    ``columns`` (internal field -> (column, default)) replaces ``COLUMNS`` for other edge
    types (gap junctions, Exp2Syn-type, neuromodulatory); ``extra_columns`` are required
    columns read under their own names (modoverride ``_NeededAttributes``). Without
    ``location_required``, edges lacking location columns go to section 0 at x = 0.5.
    """
    columns = dict(COLUMNS if columns is None else columns)
    columns.update({c: (c, None) for c in extra_columns if c not in columns})
    where = f"{edge_pop.edges_file}: population '{edge_pop.name}'"
    try:
        return _read_synapses(edge_pop, local_target_raw, source_offset, target_offset, dt,
                              extracellular_calcium, columns, location_required, where)
    except (libsonata.SonataError, RuntimeError, OSError) as exc:   # a corrupted file
        raise CircuitError(f"{where}: cannot be read ({str(exc).strip()})") from exc


def _read_synapses(edge_pop, local_target_raw, source_offset, target_offset, dt,
                   extracellular_calcium, columns, location_required, where) -> SynapseTable:
    pop = libsonata.EdgeStorage(edge_pop.edges_file).open_population(edge_pop.name)
    targets = np.sort(np.asarray(local_target_raw, dtype=np.int64))
    sel = pop.afferent_edges(targets.tolist()) if len(targets) else libsonata.Selection([])
    edge_ids = np.asarray(sel.flatten(), dtype=np.int64)
    n = len(edge_ids)
    names = set(pop.attribute_names)
    missing = [c for c, d in columns.values() if d is None and c not in names]
    if missing:
        raise CircuitError(f"{where}: missing required edge column(s) {', '.join(missing)}")

    tgt = np.asarray(pop.target_nodes(sel), dtype=np.int64) if n else np.zeros(0, np.int64)
    src = np.asarray(pop.source_nodes(sel), dtype=np.int64) if n else np.zeros(0, np.int64)
    edge_checks.check_targets(where, tgt, targets, edge_ids)
    if n and 0 <= edge_pop.source_size <= src.max():
        bad = int(np.flatnonzero(src >= edge_pop.source_size)[0])
        raise CircuitError(f"{where}: source_node_id {int(src[bad])} of edge "
                           f"{int(edge_ids[bad])} is out of range (source population "
                           f"'{edge_pop.source}' has {edge_pop.source_size} nodes)")
    params = {}
    for field_name, (column, default) in columns.items():
        if column in names and n:
            values = np.asarray(pop.get_attribute(column, sel))
            if values.dtype.kind not in "iufb":
                raise CircuitError(f"{where}: column '{column}' must be numeric, got "
                                   f"{'strings' if values.dtype.kind in 'OSU' else values.dtype}")
            edge_checks.check_finite(where, column, values, edge_ids)
            if field_name == "delay":
                edge_checks.check_delays(where, values, edge_ids, dt)
            params[field_name] = values
        else:
            params[field_name] = np.full(n, default if default is not None else 0.0)
    has_location = names & {"afferent_section_id", "morpho_section_id_post"}
    if n and (location_required or has_location):
        sec_id, x, seg = _location(pop, sel, n, where, edge_ids)
    elif n:
        sec_id, x, seg = np.zeros(n, np.int64), np.full(n, 0.5), None
    else:
        sec_id, x, seg = np.zeros(0, np.int64), np.zeros(0), None

    # float32 delays must become float64 before the grid rounding (contract §11.11)
    if "delay" in params:
        delay = params["delay"].astype(np.float64)
        params["delay"] = (delay / dt + 1e-5).astype(np.int64) * dt
    for key in ("weight", "U", "D", "F", "DTC", "u_hill", "cond_ratio", "nrrp"):
        if key in params:
            params[key] = params[key].astype(np.float64)
    if "syn_type" in params:
        params["syn_type"] = params["syn_type"].astype(np.int64)
    if extracellular_calcium is not None and n and "U" in params:
        params["U"] = params["U"] * u_hill_factor(params["u_hill"], extracellular_calcium)

    # rows per target in ascending edge id -> synapse ids; libsonata returns ids sorted
    order = np.lexsort((edge_ids, tgt))
    tgt, src, edge_ids = tgt[order], src[order], edge_ids[order]
    first_of_target = np.searchsorted(tgt, tgt, side="left")
    synapse_id = np.arange(n) - first_of_target

    # connections = runs of equal source within a target; creation order: target ascending,
    # then source descending (stable), rows in edge order within a connection (contract §1.3, §11.3)
    runs = []
    if n:
        breaks = np.flatnonzero((np.diff(tgt) != 0) | (np.diff(src) != 0)) + 1
        starts = np.concatenate([[0], breaks])
        stops = np.concatenate([breaks, [n]])
        run_t, run_s = tgt[starts], src[starts]
        run_order = np.lexsort((np.arange(len(starts)), -run_s, run_t))
        runs = [(int(starts[i]), int(stops[i])) for i in run_order]
    row_order = np.concatenate([np.arange(a, b) for a, b in runs]) if runs else np.zeros(0, int)
    rows = order[row_order]

    def take(a):
        return a[rows] if a is not None else None

    connections, pos = [], 0
    for a, b in runs:
        connections.append(Connection(int(tgt[a]) + target_offset, int(src[a]) + source_offset,
                                      pos, pos + (b - a)))
        pos += b - a
    return SynapseTable(
        edge_pop=edge_pop, source_offset=source_offset, target_offset=target_offset,
        tgid=tgt[row_order] + target_offset, sgid=src[row_order] + source_offset,
        synapse_id=synapse_id[row_order], section_id=take(sec_id), x=take(x),
        segment=take(seg), params={k: take(v) for k, v in params.items()},
        connections=connections)
