"""Where an input acts: its node set or compartment set resolved to this rank's cells and points.

Node-set inputs go to the centre of every ``soma`` section; compartment-set inputs go to each
listed (section id, offset) point, the section id following the report numbering of
compatibility §2.1(2). Only local cells are returned, in ascending gid.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError

#: section types in the order their counts accumulate into section ids (§2.1(2)), with the
#: SectionList that gives each count (axon: nSecAxonalOrig, the count before axon replacement)
SECTION_TYPES = (("soma", "somatic"), ("axon", None), ("dend", "basal"), ("apic", "apical"),
                 ("ais", "AIS"), ("node", "nodal"), ("myelin", "myelinated"))
_NAME_RE = re.compile(r"(\w+)\[(\d+)\]$")


@dataclass
class Target:
    """One local cell and the (section, x) points an input acts on."""

    cell: object
    points: list


def _list_count(hoc, name) -> int:
    lst = getattr(hoc, name, None)
    return 0 if lst is None else sum(1 for _ in lst)


def section_id_offsets(hoc) -> dict[str, int]:
    """First section id of every type (§2.1(2))."""
    offsets, total = {}, 0
    for sec_type, list_name in SECTION_TYPES:
        offsets[sec_type] = total
        if list_name is None:
            count = int(getattr(hoc, "nSecAxonalOrig", 0) or 0)
        else:
            count = _list_count(hoc, list_name)
        total += count
    offsets["_end"] = total
    return offsets


def section_by_report_id(hoc, section_id: int, offsets: dict | None = None):
    """The section with report/compartment-set id ``section_id``, or raise ValueError."""
    offsets = offsets or section_id_offsets(hoc)
    if not 0 <= section_id < offsets["_end"]:
        raise ValueError(f"section id {section_id} is out of range (the cell has "
                         f"{offsets['_end']} sections)")
    types = [t for t, _ in SECTION_TYPES]
    for i, sec_type in enumerate(types):
        nxt = offsets[types[i + 1]] if i + 1 < len(types) else offsets["_end"]
        if offsets[sec_type] <= section_id < nxt:
            local = section_id - offsets[sec_type]
            array = getattr(hoc, sec_type, None)
            try:
                return array[local]
            except (IndexError, TypeError, RuntimeError):
                raise ValueError(f"section id {section_id} ({sec_type}[{local}]) does not exist "
                                 f"(removed by axon replacement?)") from None
    raise ValueError(f"section id {section_id} is out of range")


def section_type_and_index(sec) -> tuple[str, int]:
    """('dend', 3) from a section named 'Cell[0].dend[3]'."""
    match = _NAME_RE.search(sec.name())
    if not match:
        return sec.name(), 0
    return match.group(1), int(match.group(2))


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
    "SECTION_TYPES",
    "Target",
    "compartment_set_entries",
    "instantiated_gids",
    "load_compartment_sets",
    "node_set_gids",
    "section_by_report_id",
    "section_id_offsets",
    "section_type_and_index",
    "soma_points",
]
