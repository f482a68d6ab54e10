"""The one answer to "which nodes does this node set name": inputs, reports, overrides,
modifications, replay and the simulation's own ``node_set`` all ask ``NodeSetService``.

A node set is evaluated population by population on whole populations (libsonata's
``materialize``), so the answer never depends on which cells a rank holds and decisions taken
from it are the same on every rank. A population on which the node set cannot be evaluated (it
lacks an attribute the node set tests, e.g. ``mtype`` on a virtual population) contributes no
node, with one debug line: this is what circuits with virtual populations need, and what the
established driver does. It is an error (``NodeSetError``) only to name an unknown node set, or
when nothing at all is selected where something must be (``require_nonempty``).
"""

from __future__ import annotations

import json
import logging

import libsonata
import numpy as np

from ..errors import ConfigError

log = logging.getLogger(__name__)
_EMPTY = np.zeros(0, np.int64)


class NodeSetError(ConfigError):
    """A node set is unknown, or selects nothing where something is needed."""


class NodeSetService:
    """Node-set name -> node ids, per population, cached.

    ``node_sets`` is the libsonata ``NodeSets`` of the run (circuit's, then the simulation's);
    ``nodes_files`` maps population name -> its nodes file.
    """

    def __init__(self, node_sets: libsonata.NodeSets, nodes_files: dict[str, str]):
        self.node_sets = node_sets
        self.nodes_files = dict(nodes_files)
        # compound node sets are unions: evaluated member by member, so that a member that
        # cannot be evaluated on a population does not hide the others
        self._compounds = {name: value for name, value in
                           json.loads(node_sets.toJSON()).items() if isinstance(value, list)}
        self.populations: dict = {}
        self._pops: dict = {}
        self._cache: dict = {}

    @property
    def names(self) -> set:
        return set(self.node_sets.names)

    def known(self, name: str) -> bool:
        return name in self.node_sets.names

    def require_known(self, name: str, where: str) -> None:
        """``NodeSetError`` naming ``where`` (``<file>: <key>``) when ``name`` is unknown."""
        if not self.known(name):
            raise NodeSetError(f"{where}: unknown node set '{name}'")

    def referenced_populations(self, name: str) -> list[str]:
        return list(self.node_sets.referenced_populations(name))

    def population(self, name: str) -> libsonata.NodePopulation:
        pop = self._pops.get(name)
        if pop is None:
            pop = self._pops[name] = libsonata.NodeStorage(
                self.nodes_files[name]).open_population(name)
        return pop

    def raw_ids(self, name: str, population: str) -> np.ndarray:
        """Sorted node ids of ``population`` in node set ``name`` (empty when it cannot be
        evaluated there, or the population is unknown)."""
        key = (name, population)
        ids = self._cache.get(key)
        if ids is None:
            ids = _EMPTY
            self._cache[key] = ids   # a compound naming itself stops here
            if name in self._compounds:
                parts = [self.raw_ids(member, population) for member in self._compounds[name]
                         if self.known(member)]
                ids = np.unique(np.concatenate(parts)) if parts else _EMPTY
            elif population in self.nodes_files:
                try:
                    sel = self.node_sets.materialize(name, self.population(population))
                except libsonata.SonataError as exc:
                    log.debug("node set '%s' cannot be evaluated on population '%s' (%s): no "
                              "node from it", name, population, exc)
                else:
                    ids = np.unique(np.asarray(sel.flatten(), dtype=np.int64))
            self._cache[key] = ids
        return ids

    def attach(self, populations: dict) -> None:
        """The run's populations (name -> PopulationNodes, gid offsets fixed): ``gids`` then
        answers in gids. Called once, when the plan has selected the nodes."""
        self.populations = populations

    def gids(self, name: str, include_virtual: bool = False, simulated: bool = False,
             populations: dict | None = None) -> np.ndarray:
        """Sorted gids of node set ``name`` over the attached populations (or ``populations``).

        ``include_virtual``: virtual populations count too; ``simulated``: only nodes in the
        run's own selection (the simulation's ``node_set``).
        """
        parts = []
        for p in (populations if populations is not None else self.populations).values():
            if p.is_virtual and not include_virtual:
                continue
            raw = self.raw_ids(name, p.name)
            if simulated and not p.is_virtual:
                raw = raw[np.isin(raw, p.selected)]
            parts.append(raw + p.offset)
        return np.unique(np.concatenate(parts)) if parts else _EMPTY

    def simulated_gids(self, name: str, where: str) -> np.ndarray:
        """Simulated gids of a node set that must exist (``NodeSetError`` naming ``where``)."""
        self.require_known(name, where)
        return self.gids(name, simulated=True)

    def require_nonempty(self, name: str, where: str, what: str = "simulated cell"
                         ) -> np.ndarray:
        """Simulated gids of a node set that must select something: unknown or empty is an
        error."""
        gids = self.simulated_gids(name, where)
        if len(gids) == 0:
            raise NodeSetError(f"{where}: node set '{name}' selects no {what}")
        return gids


__all__ = ["NodeSetError", "NodeSetService"]
