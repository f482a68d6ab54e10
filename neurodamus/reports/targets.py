"""Which cells (and compartment-set points) a report records: resolved without NEURON.

``report_targets`` answers for one report: per population, the simulated cells it covers and
this rank's share of them; for a ``compartment_set`` report also the (section id, offset)
points per cell. The load-time check calls it with no cell distributed yet, so that an unknown
node set, an empty target or a missing compartment set stops the run before anything is built.
"""

from __future__ import annotations

import libsonata
import numpy as np

from ..config.issues import IssueList
from ..errors import ConfigError, NeurodamusError


def report_targets(spec, settings, populations: dict, node_sets):
    """([(population, gid offset, target raw ids, local raw ids)], entries_of or None)."""
    where = f"{settings.config_path}: {spec.where}"
    if spec.type == "compartment_set":
        return _compartment_set_target(spec, settings, populations, node_sets, where)
    return _cells_target(spec, settings, populations, node_sets, where), None


def check_report_targets(spec, settings, populations, node_sets, issues: IssueList) -> None:
    try:
        report_targets(spec, settings, populations, node_sets)
    except NeurodamusError as exc:
        issues.message(str(exc))


def _node_set_raw(node_sets, node_set: str, pop) -> np.ndarray:
    """Raw ids of the simulated cells of ``pop`` in ``node_set`` ('' = the run's own)."""
    if not node_set:
        return pop.selected
    return np.intersect1d(node_sets.raw_ids(node_set, pop.name), pop.selected)


def _cells_target(spec, settings, populations, node_sets, where):
    node_set = spec.cells or settings.sim.node_set or ""
    if spec.cells:
        node_sets.require_known(spec.cells, f"{where}.cells")
    targets = []
    for pop in populations.values():
        if pop.is_virtual:
            continue
        raw = _node_set_raw(node_sets, node_set, pop)
        if len(raw):
            targets.append((pop.name, pop.offset, raw, np.intersect1d(raw, pop.local_raw)))
    if not targets:
        what = f"node set '{node_set}'" if node_set else "the simulation"
        raise ConfigError(f"{where}.cells: {what} selects no instantiated cell (empty report "
                          f"target)")
    return targets


def _compartment_set_target(spec, settings, populations, node_sets, where):
    path = settings.sim.compartment_sets_file
    if not path:
        raise ConfigError(f"{where}.compartment_set: the simulation config names no "
                          f"compartment_sets_file")
    try:
        sets = libsonata.CompartmentSets.from_file(path)
    except (libsonata.SonataError, RuntimeError, OSError) as exc:
        raise ConfigError(f"{settings.config_path}: compartment_sets_file: cannot read "
                          f"{path}: {exc}") from exc
    name = spec.compartment_set
    if name not in sets.names():
        raise ConfigError(f"{where}.compartment_set: unknown compartment set '{name}' "
                          f"(not in {path})")
    cset = sets[name]
    pop = populations.get(cset.population)
    if pop is None or pop.is_virtual:
        raise ConfigError(f"{where}.compartment_set: compartment set '{name}' is on "
                          f"population '{cset.population}', which has no instantiated cells")
    if spec.cells:
        node_sets.require_known(spec.cells, f"{where}.cells")
    entries = [(loc.node_id, loc.section_id, loc.offset) for loc in cset]
    node_ids = np.array([e[0] for e in entries], np.int64)
    target = np.intersect1d(node_ids, _node_set_raw(
        node_sets, spec.cells or settings.sim.node_set or "", pop))
    if not len(target):
        raise ConfigError(f"{where}.compartment_set: compartment set '{name}' has no entry "
                          f"on an instantiated cell of the report (empty report target)")
    local = np.intersect1d(target, pop.local_raw)
    local_set = {int(n) for n in local}
    by_node: dict = {}
    for node, section_id, offset in entries:   # file order (sorted by node, section, x)
        if int(node) in local_set:
            by_node.setdefault(int(node), []).append((int(section_id), float(offset)))

    def entries_of(raw):
        return by_node[raw]

    return [(pop.name, pop.offset, target, local)], entries_of


__all__ = ["check_report_targets", "report_targets"]
