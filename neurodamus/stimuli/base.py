"""What every input builder shares: the block being built and the state of one ``apply_inputs``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError
from .targets import (
    Target,
    compartment_set_entries,
    load_compartment_sets,
    soma_points,
)


@dataclass
class InputBlock:
    """One entry of the simulation config's ``inputs``."""

    name: str
    stim: object            # the libsonata input object (defaults applied)
    config_path: object
    raw: dict = field(default_factory=dict)   # the block's own JSON (keys libsonata drops)

    @property
    def module(self) -> str:
        return self.stim.module.name

    @property
    def input_type(self) -> str:
        return self.stim.input_type.name

    @property
    def conductance(self) -> bool:
        return self.input_type == "conductance"

    @property
    def electrode(self) -> bool:
        # libsonata's Replay input has no such attribute: read the block's JSON then
        return bool(getattr(self.stim, "represents_physical_electrode",
                            self.raw.get("represents_physical_electrode", False)))

    def where(self, key: str | None = None) -> str:
        return f"{self.config_path}: inputs.{self.name}" + (f".{key}" if key else "")

    def error(self, key: str | None, text: str) -> ConfigError:
        return ConfigError(f"{self.where(key)}: {text}")


def input_blocks(settings) -> list[InputBlock]:
    """Every input block in config order (libsonata keeps that order)."""
    sim = settings.sim
    raw_all = json.loads(sim.expanded_json).get("inputs", {}) or {}
    return [InputBlock(name, sim.input(name), settings.config_path, raw_all.get(name, {}))
            for name in sim.list_input_names]


class InputRun:
    """State of one ``apply_inputs``: NEURON, the plan's settings and node sets, this rank's
    cells, the family counters and target caches."""

    def __init__(self, h, settings, node_sets, populations: dict, cells: dict):
        self.h = h
        self.settings = settings
        self.node_sets = node_sets
        self.populations = populations
        self.cells = cells
        self.counters = {"noise": 0, "shot_noise": 0, "ornstein_uhlenbeck": 0}
        self._compartment_sets = False
        self._node_sets: dict[str, np.ndarray] = {}    # node set -> local gids (ascending)
        self._local_gids = np.fromiter(cells, dtype=np.int64, count=len(cells))

    @property
    def tstop(self) -> float:
        return float(self.settings.run.tstop)

    @property
    def dt(self) -> float:
        return float(self.settings.run.dt)

    @property
    def stimulus_seed(self) -> int:
        return int(self.settings.run.stimulus_seed)

    def compartment_sets(self):
        if self._compartment_sets is False:
            self._compartment_sets = load_compartment_sets(self.settings)
        return self._compartment_sets

    def targets(self, block: InputBlock) -> list[Target]:
        """This rank's cells of the block, ascending gid, with their injection points."""
        stim = block.stim
        populations = self.populations
        if stim.compartment_set:
            entries = compartment_set_entries(self.settings, populations,
                                              self.compartment_sets(), stim.compartment_set,
                                              block.where("compartment_set"))
            by_gid: dict[int, list] = {}
            for gid, section_id, offset in entries:
                if gid in self.cells:
                    by_gid.setdefault(gid, []).append((section_id, offset))
            result = []
            for gid in sorted(by_gid):
                cell = self.cells[gid]
                points = []
                for section_id, offset in by_gid[gid]:
                    sec = cell.section_ids.section(section_id)
                    if sec is None:
                        raise block.error("compartment_set", f"compartment set "
                                          f"'{stim.compartment_set}', gid {gid}: "
                                          f"{cell.section_ids.describe_missing(section_id)}")
                    points.append((sec, offset))
                result.append(Target(cell, points))
            return result
        if not stim.node_set:
            raise block.error(None, "the input names neither a node_set nor a compartment_set")
        if stim.node_set not in self._node_sets:
            gids = self.node_sets.simulated_gids(stim.node_set, block.where("node_set"))
            self._node_sets[stim.node_set] = np.intersect1d(gids, self._local_gids)
        return [Target(self.cells[int(g)], soma_points(self.cells[int(g)]))
                for g in self._node_sets[stim.node_set]]


__all__ = ["InputBlock", "InputRun", "input_blocks"]
