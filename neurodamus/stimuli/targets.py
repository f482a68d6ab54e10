"""Where an input acts: its node set or compartment set resolved to this rank's cells and points.

Node-set inputs go to the centre of every ``soma`` section; compartment-set inputs go to each
listed (section id, offset) point, the section id following the report numbering of
contract §2.1(2). Only local cells are returned, in ascending gid.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import libsonata

from ..errors import ConfigError


@dataclass
class Target:
    """One local cell and the (section, x) points an input acts on."""

    cell: object
    points: list


def soma_points(cell) -> list:
    """Node-set inputs go to the centre of each soma section (contract §4.1)."""
    return [(sec, 0.5) for sec in cell.hoc.soma]


def load_compartment_sets(settings):
    """The simulation's compartment sets (libsonata), or None when no file is configured."""
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
    "load_compartment_sets",
    "soma_points",
]
