"""The one node-set service: per population, unknown attributes contribute nothing."""

from __future__ import annotations

import json

import h5py
import libsonata
import numpy as np
import pytest

from neurodamus.circuit.node_sets import NodeSetError, NodeSetService
from neurodamus.circuit.nodes import PopulationNodes
from neurodamus.config.settings import NodePopulationInfo


@pytest.fixture()
def nodes(tmp_path):
    """'cortex' (4 nodes, with mtype) and a virtual 'POm' (3 nodes, no mtype)."""
    path = tmp_path / "nodes.h5"
    with h5py.File(path, "w") as f:
        for name, n, mtypes in (("cortex", 4, ["L5_TPC", "L5_BC", "L5_TPC", "L5_BC"]),
                                ("POm", 3, None)):
            g = f.create_group(f"nodes/{name}")
            g.create_dataset("node_type_id", data=np.full(n, -1))
            g0 = g.create_group("0")
            g0.create_dataset("x", data=np.arange(n, dtype=float))
            if mtypes:
                g0.create_dataset("mtype", data=np.array(mtypes, dtype=object),
                                  dtype=h5py.string_dtype())
    sets = libsonata.NodeSets(json.dumps({
        "All": {"mtype": ["L5_TPC", "L5_BC"]}, "Exc": {"mtype": "L5_TPC"},
        "POm": {"population": "POm"}, "Both": ["Exc", "POm"], "Empty": {"node_id": []}}))
    service = NodeSetService(sets, {"cortex": str(path), "POm": str(path)})
    info = {name: NodePopulationInfo(name, kind, str(path), "", "swc", "", "")
            for name, kind in (("cortex", "biophysical"), ("POm", "virtual"))}
    pops = {"cortex": PopulationNodes(info["cortex"], 4, np.array([0, 1, 2]), offset=0),
            "POm": PopulationNodes(info["POm"], 3, np.arange(3), offset=1000)}
    service.attach(pops)
    return service


def test_a_population_without_the_attribute_contributes_nothing(nodes):
    assert nodes.raw_ids("All", "POm").tolist() == []
    assert nodes.raw_ids("All", "cortex").tolist() == [0, 1, 2, 3]
    assert nodes.gids("All", include_virtual=True).tolist() == [0, 1, 2, 3]


def test_compound_sets_over_populations(nodes):
    assert nodes.gids("Both", include_virtual=True).tolist() == [0, 2, 1000, 1001, 1002]
    assert nodes.gids("Both").tolist() == [0, 2]               # virtual left out
    assert nodes.gids("All", simulated=True).tolist() == [0, 1, 2]   # node 3 not simulated


def test_unknown_and_empty_sets_are_errors_only_where_needed(nodes):
    with pytest.raises(NodeSetError, match="cfg.json: inputs.x.node_set: unknown node set 'No'"):
        nodes.simulated_gids("No", "cfg.json: inputs.x.node_set")
    assert nodes.simulated_gids("Empty", "w").tolist() == []
    with pytest.raises(NodeSetError, match="w: node set 'Empty' selects no simulated cell"):
        nodes.require_nonempty("Empty", "w")
