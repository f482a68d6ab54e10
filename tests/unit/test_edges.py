"""Synapse planning from SONATA edges: ordering, ids and parameter patches (§1.3, §3.1–§3.3)."""

import h5py
import libsonata
import numpy as np
import pytest

from neurodamus.config.settings import EdgePopulationInfo
from neurodamus.connectivity.edges import read_synapses, u_hill_factor
from neurodamus.errors import CircuitError


def write_edges(path, src, tgt, delay, pos=None, drop=()):
    n = len(src)
    with h5py.File(path, "w") as fd:
        g = fd.create_group("edges/p")
        g.create_dataset("source_node_id", data=np.asarray(src, np.uint64)).attrs[
            "node_population"] = "a"
        g.create_dataset("target_node_id", data=np.asarray(tgt, np.uint64)).attrs[
            "node_population"] = "b"
        g.create_dataset("edge_type_id", data=np.full(n, -1))
        g.create_dataset("edge_group_id", data=np.zeros(n, np.int64))
        g.create_dataset("edge_group_index", data=np.arange(n, dtype=np.uint64))
        cols = {"conductance": np.arange(n) + 1.0, "u_syn": np.full(n, 0.5),
                "depression_time": np.full(n, 600.0), "facilitation_time": np.full(n, 20.0),
                "decay_time": np.full(n, 1.7), "syn_type_id": np.full(n, 113),
                "n_rrp_vesicles": np.full(n, 2), "delay": np.asarray(delay, np.float32),
                "afferent_section_id": np.arange(n) % 3,
                "afferent_section_pos": np.asarray(pos if pos is not None else np.full(n, 0.5),
                                                   np.float32)}
        for k, v in cols.items():
            if k not in drop:
                g.create_dataset(f"0/{k}", data=v)
    libsonata.EdgePopulation.write_indices(str(path), "p", 10, 10)
    return EdgePopulationInfo("p", str(path), "chemical", "a", "b")


def test_order_ids_and_connections(tmp_path):
    # target 1 has rows from sources 0,1,0 (not grouped), target 0 from sources 2,5
    src = [0, 1, 0, 2, 5]
    tgt = [1, 1, 1, 0, 0]
    info = write_edges(tmp_path / "e.h5", src, tgt, delay=[1.0] * 5)
    table = read_synapses(info, np.array([0, 1]), source_offset=100, target_offset=1000,
                          dt=0.025)
    # targets ascending; per target sources descending (stable); runs of equal source
    assert [(c.tgid, c.sgid) for c in table.connections] == \
        [(1000, 105), (1000, 102), (1001, 101), (1001, 100), (1001, 100)]
    # synapse_id = row index among the target's edges in edge-id order
    assert table.synapse_id.tolist() == [1, 0, 1, 0, 2]
    assert table.params["weight"].tolist() == [5.0, 4.0, 2.0, 1.0, 3.0]


def test_delay_rounding_to_grid_with_tolerance(tmp_path):
    dt = 0.1
    delays = [0.3999999, 0.39, 1.25]   # 3.999999 steps -> 4; 3.9 steps -> 3; 12.5 -> 12
    info = write_edges(tmp_path / "e.h5", [0, 1, 2], [0, 0, 0], delay=delays)
    table = read_synapses(info, np.array([0]), 0, 0, dt)
    by_source = dict(zip(table.sgid.tolist(), table.params["delay"].tolist()))
    assert by_source == pytest.approx({0: 0.4, 1: 0.3, 2: 1.2})


def test_position_is_clamped(tmp_path):
    # rounding-size excursions below 0 are clamped (§3.2); issue 16 refuses larger ones
    info = write_edges(tmp_path / "e.h5", [0, 1, 2], [0, 0, 0], delay=[1, 1, 1],
                       pos=[-1e-6, 0.0, 1.0])
    table = read_synapses(info, np.array([0]), 0, 0, 0.025)
    assert sorted(table.x.tolist()) == pytest.approx([1e-7, 1e-7, 0.9999999])


def test_position_outside_unit_interval_is_refused(tmp_path):
    info = write_edges(tmp_path / "e.h5", [0, 1, 2], [0, 0, 0], delay=[1, 1, 1],
                       pos=[0.5, -0.5, 1.0])
    with pytest.raises(CircuitError, match=r"e\.h5.*'p'.*afferent_section_pos: edge 1 has "
                                           r"-0\.5, outside \[0, 1\]"):
        read_synapses(info, np.array([0]), 0, 0, 0.025)


def test_missing_required_column_names_file_and_column(tmp_path):
    info = write_edges(tmp_path / "e.h5", [0], [0], delay=[1], drop=("u_syn",))
    with pytest.raises(CircuitError, match=r"e\.h5.*'p'.*u_syn"):
        read_synapses(info, np.array([0]), 0, 0, 0.025)


def test_u_hill_factor_limits():
    # factor (K^4+16)/16 * Ca^4/(K^4+Ca^4) is 1 at Ca = 2 mM, whatever K
    assert u_hill_factor(np.array([1.0, 2.79]), 2.0) == pytest.approx([1.0, 1.0])
    assert u_hill_factor(np.array([2.0]), 1.0)[0] == pytest.approx(2 * 1 / 17)
