"""Where an input acts: its node set or compartment set resolved to this rank's cells and points.

Node-set inputs go to the centre of every ``soma`` section; compartment-set inputs go to each
listed (section id, offset) point, the section id following the report numbering of
compatibility §2.1(2). Only local cells are returned, in ascending gid.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError


@dataclass
class Target:
    """One local cell and the (section, x) points an input acts on."""

    cell: object
    points: list


def soma_points(cell) -> list:
    """Node-set inputs go to the centre of each soma section (compatibility §4.1)."""
    return [(sec, 0.5) for sec in cell.hoc.soma]


def instantiated_gids(populations) -> np.ndarray:
    """Every gid that some rank instantiates (the simulation node set, all populations)."""
    parts = [p.selected + p.offset for p in populations.values() if not p.is_virtual]
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def node_set_gids(settings, populations, node_set, where) -> np.ndarray:
    """Instantiated gids of ``node_set`` on any rank; unknown or empty sets are errors."""
    import libsonata

    from ..circuit.nodes import open_population

    if node_set not in settings.node_sets.names:
        raise ConfigError(f"{where}: unknown node set '{node_set}'")
    parts = []
    for pop_nodes in populations.values():
        if pop_nodes.is_virtual:
            continue
        try:
            sel = settings.node_sets.materialize(node_set, open_population(pop_nodes.info))
        except libsonata.SonataError as exc:
            raise ConfigError(f"{where}: node set '{node_set}' cannot be evaluated on "
                              f"population '{pop_nodes.name}': {exc}") from exc
        raw = np.asarray(sel.flatten(), dtype=np.int64)
        raw = raw[np.isin(raw, pop_nodes.selected)]
        parts.append(raw + pop_nodes.offset)
    gids = np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)
    if len(gids) == 0:
        raise ConfigError(f"{where}: node set '{node_set}' selects no simulated cell")
    return gids


def load_compartment_sets(settings):
    """The simulation's compartment sets (libsonata), or None when no file is configured."""
    import libsonata

    path = settings.sim.compartment_sets_file
    if not path:
        return None
    if not os.path.isabs(path):
        path = os.path.join(os.path.dirname(str(settings.config_path)), path)
    if not os.path.isfile(path):
        raise ConfigError(f"{settings.config_path}: compartment_sets_file: file not found: {path}")
    try:
        return libsonata.CompartmentSets.from_file(path)
    except (libsonata.SonataError, RuntimeError) as exc:
        raise ConfigError(f"{settings.config_path}: compartment_sets_file: {path}: {exc}") from exc


def compartment_set_entries(settings, populations, compartment_sets, name, where):
    """[(gid, section_id, offset), ...] in file order; unknown/empty sets are errors."""
    if compartment_sets is None:
        raise ConfigError(f"{where}: compartment set '{name}' is used but the simulation config "
                          f"has no compartment_sets_file")
    if name not in compartment_sets.names():
        raise ConfigError(f"{where}: unknown compartment set '{name}'")
    cset = compartment_sets[name]
    pop = populations.get(cset.population)
    if pop is None or pop.is_virtual:
        raise ConfigError(f"{where}: compartment set '{name}' names population "
                          f"'{cset.population}', which is not a simulated population")
    simulated = set(pop.selected.tolist())
    entries = [(int(loc.node_id) + pop.offset, int(loc.section_id), float(loc.offset))
               for loc in cset.filtered_iter() if int(loc.node_id) in simulated]
    if not entries:
        raise ConfigError(f"{where}: compartment set '{name}' selects no simulated cell")
    return entries


__all__ = [
    "Target",
    "compartment_set_entries",
    "instantiated_gids",
    "load_compartment_sets",
    "node_set_gids",
    "soma_points",
]
