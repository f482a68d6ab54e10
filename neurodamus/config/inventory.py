"""Facts about the loaded configs that several checks need (raw JSON, population sizes)."""

from __future__ import annotations

import json
import os

import libsonata


def raw_simulation(settings) -> dict:
    """The simulation config as JSON, manifest variables expanded."""
    return json.loads(settings.sim.expanded_json)


def population_sizes(settings) -> dict[str, int]:
    """Node count of every population the driver reads (node files are checked beforehand)."""
    sizes = {}
    for name, info in settings.node_populations.items():
        try:
            sizes[name] = libsonata.NodeStorage(info.nodes_file).open_population(name).size
        except (libsonata.SonataError, RuntimeError):
            continue   # files.check_node_files names the file
    return sizes


def node_set_origin(settings, name: str) -> tuple[str, str]:
    """(file, key) defining node set ``name``: the simulation's node_sets_file wins."""
    for path in (settings.sim.node_sets_file, settings.circuit.node_sets_path):
        if path and os.path.isfile(path):
            try:
                with open(path) as fd:
                    if name in json.load(fd):
                        return path, name
            except (OSError, ValueError):
                continue
    return str(settings.config_path), f"node set '{name}'"
