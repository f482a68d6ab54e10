"""Electrodes files (reports/lfp.py), source weights (reports/lfp_sources.py) and the plan of
the currents from the voltages (reports/lfp_axial.py), no NEURON."""

import h5py
import numpy as np
import pytest

from neurodamus.errors import ConfigError
from neurodamus.reports.lfp import (
    BlockWeights,
    compartment_section_ids,
    map_scaling_factors,
    missing_nodes,
    read_cell_weights,
    read_electrodes_file,
)
from neurodamus.reports.lfp_axial import axial_plan, why_not_axial
from neurodamus.reports.lfp_sources import (
    line_source_factors,
    point_source_factors,
    read_positions,
    write_electrodes_file,
)


def _file(path, nodes=(3, 7), rows=(2, 3), n_elec=2, sections=None):
    offsets = np.concatenate([[0], np.cumsum(rows)])
    secs = sections if sections is not None else np.concatenate([np.arange(r) for r in rows])
    factors = np.arange(offsets[-1] * n_elec, dtype=float).reshape(offsets[-1], n_elec)
    write_electrodes_file(path, [f"e{i}" for i in range(n_elec)], np.zeros((n_elec, 3)),
                          {"pop": (np.array(nodes), offsets, secs, factors)})
    return factors


def test_round_trip_and_own_cells_only(tmp_path):
    factors = _file(tmp_path / "w.h5")
    ef = read_electrodes_file(tmp_path / "w.h5")
    assert ef.n_electrodes == 2 and ef.names == ("e0", "e1")
    assert missing_nodes(ef, "pop", [1, 3, 7, 9]).tolist() == [1, 9]
    got = read_cell_weights(ef, "pop", [(7, np.array([0, 1, 2]))])
    assert list(got) == [7]
    np.testing.assert_array_equal(got[7], factors[2:5])
    # straight into the product's stacks: the cells' own views, filled in place
    blocks = BlockWeights([3, 2], 2)
    into = [blocks.cell_weights(0), blocks.cell_weights(1)]
    got = read_cell_weights(ef, "pop", [(7, np.array([0, 1, 2])), (3, np.array([0, 1]))],
                            into=into)
    assert got[7] is into[0] and got[3] is into[1]
    np.testing.assert_array_equal(blocks.cell_weights(0), factors[2:5])
    np.testing.assert_array_equal(blocks.cell_weights(1), factors[0:2])


def test_weights_used_where_they_are_in_the_file(tmp_path):
    """A plain float64 array (as lfp-weights writes it) is mapped, not read: each cell's
    weights are read-only views of the file; chunked or compressed factors are read."""
    factors = _file(tmp_path / "w.h5")
    ef = read_electrodes_file(tmp_path / "w.h5")
    mapped = map_scaling_factors(tmp_path / "w.h5", "pop")
    got = read_cell_weights(ef, "pop", [(7, np.array([0, 1, 2])), (3, np.array([0, 1]))],
                            mapped=mapped)
    np.testing.assert_array_equal(got[7], factors[2:5])
    np.testing.assert_array_equal(got[3], factors[0:2])
    assert not got[7].flags.writeable and np.shares_memory(got[7], mapped)
    with h5py.File(tmp_path / "w.h5", "r+") as fd:
        del fd["electrodes/pop/scaling_factors"]
        fd.create_dataset("electrodes/pop/scaling_factors", data=factors, chunks=(1, 2),
                          compression="gzip")
    assert map_scaling_factors(tmp_path / "w.h5", "pop") is None


def test_compartment_count_mismatch_names_file_and_node(tmp_path):
    _file(tmp_path / "w.h5")
    ef = read_electrodes_file(tmp_path / "w.h5")
    with pytest.raises(ConfigError, match=r"w\.h5: /pop/offsets: node 7 has 3 compartments in "
                                          r"the file, the cell has 4"):
        read_cell_weights(ef, "pop", [(3, np.array([0, 1])), (7, np.array([0, 1, 2, 3]))])


def test_section_id_mismatch_names_first_compartment(tmp_path):
    _file(tmp_path / "w.h5")
    ef = read_electrodes_file(tmp_path / "w.h5")
    with pytest.raises(ConfigError, match=r"/pop/section_ids: node 7 compartment 1 is in "
                                          r"section 1 in the file, in section 2 in the cell"):
        read_cell_weights(ef, "pop", [(7, np.array([0, 2, 2]))])


@pytest.mark.parametrize("change,message", [
    (lambda fd: fd["pop/offsets"].__setitem__(2, 4), "last offset 4 != the 5 rows"),
    (lambda fd: fd.__delitem__("pop/section_ids"), "/pop/section_ids: missing"),
    (lambda fd: fd.__delitem__("electrodes/pop/scaling_factors"),
     "/electrodes/pop/scaling_factors: missing"),
])
def test_malformed_files(tmp_path, change, message):
    _file(tmp_path / "w.h5")
    with h5py.File(tmp_path / "w.h5", "r+") as fd:
        change(fd)
    with pytest.raises(ConfigError, match=message):
        read_electrodes_file(tmp_path / "w.h5")


def test_not_an_hdf5_file(tmp_path):
    (tmp_path / "w.h5").write_text("x")
    with pytest.raises(ConfigError, match="w.h5: cannot open the electrodes file"):
        read_electrodes_file(tmp_path / "w.h5")


def test_compartment_order_is_by_section_id():
    assert compartment_section_ids([(2, 1), (0, 1), (1, 3)]).tolist() == [0, 1, 1, 1, 2]


def test_block_weights_equal_the_block_diagonal_product():
    rng = np.random.default_rng(1)
    cells = [rng.normal(size=(n, 3)) for n in (2, 5, 2, 4)]   # compartments x electrodes
    dense = np.zeros((4 * 3, 13))
    col = 0
    for c, w in enumerate(cells):
        dense[3 * c:3 * c + 3, col:col + len(w)] = w.T
        col += len(w)
    raw = rng.normal(size=(13, 7))          # compartments cell after cell x steps
    blocks = BlockWeights.of(cells, 3)
    assert blocks.shape == (12, 13)
    # the columns are the compartments in ``order``: each cell's together, grouped by count
    assert sorted(blocks.order.tolist()) == list(range(13))
    assert blocks.order.tolist()[:4] == [0, 1, 7, 8]      # the two cells of 2 compartments
    ordered = raw[blocks.order]
    np.testing.assert_allclose(blocks @ ordered, dense @ raw, rtol=1e-12, atol=1e-12)
    # the rows form (the NEURON engine's gathered currents): float32, same values
    got = blocks.product_of_rows(np.ascontiguousarray(ordered.T))
    assert got.dtype == np.float32 and got.shape == (7, 12)
    np.testing.assert_allclose(got, (dense @ raw).T.astype(np.float32), rtol=1e-6)
    np.testing.assert_array_equal(got, (blocks @ ordered).T.astype(np.float32))
    # each cell's weights used as given (views of a mapped file): the same numbers
    given = BlockWeights([len(w) for w in cells], 3, [w.copy() for w in cells])
    assert given.order.tolist() == blocks.order.tolist() and given.nbytes == blocks.nbytes
    np.testing.assert_allclose(given @ ordered, dense @ raw, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(given.product_of_rows(np.ascontiguousarray(ordered.T)), got,
                               rtol=1e-6)


def test_line_source_equals_integrated_point_sources():
    """The closed form against a fine sum of point sources along the segment."""
    a, b = np.array([[0.0, 0.0, 0.0]]), np.array([[30.0, 40.0, 0.0]])   # length 50
    electrodes = np.array([[10.0, -5.0, 20.0], [100.0, 100.0, 0.0], [60.0, 80.0, 3.0]])
    n = 200000
    s = (np.arange(n) + 0.5) / n
    pts = a + s[:, None] * (b - a)
    numeric = point_source_factors(pts, np.zeros(n), electrodes, 0.3).mean(axis=0)
    closed = line_source_factors(a, b, [0.5], electrodes, 0.3)[0]
    np.testing.assert_allclose(closed, numeric, rtol=1e-6)
    # on the axis, 50 µm beyond the end: ln(100/50) / (4 pi sigma L)
    on_axis = line_source_factors(a, b, [1e-3], [[60.0, 80.0, 0.0]], 0.3)[0, 0]
    assert on_axis == pytest.approx(np.log(2) / (4 * np.pi * 0.3 * 50), rel=1e-9)


def test_point_source_units():
    # 1 nA at 1 mm in 0.3 S/m: 1e-9 / (4 pi 0.3 1e-3) V = 0.265 µV
    assert point_source_factors([[0, 0, 0]], [1.0], [[1000.0, 0, 0]], 0.3)[0, 0] == \
        pytest.approx(1e-9 / (4 * np.pi * 0.3 * 1e-3) * 1e3)


def test_positions_csv(tmp_path):
    (tmp_path / "p.csv").write_text("name,x,y,z\na,1,2,3\nb,4,5,6\n")
    names, pos = read_positions(tmp_path / "p.csv")
    assert names == ["a", "b"] and pos.tolist() == [[1, 2, 3], [4, 5, 6]]
    (tmp_path / "q.csv").write_text("1,2,3\n4,5\n")
    with pytest.raises(ConfigError, match=r"q\.csv: line 2"):
        read_positions(tmp_path / "q.csv")


def test_axial_plan_lists_parent_and_children_in_order():
    # a cell's nodes as NEURON numbers them: 0 the root, children after their parents
    parents = [-1, 0, 1, 1, 0, 3, 1]
    plan = axial_plan(parents, [1, 3, 5, 0])
    assert plan.dtype == np.int32
    assert plan.tolist() == [1, 0, 3, 2, 3, 6,    # node 1: parent 0, children 2, 3, 6
                             3, 1, 1, 5,          # node 3: parent 1, child 5
                             5, 3, 0,             # node 5: a leaf
                             0, -1, 2, 1, 4]      # node 0: the root, children 1, 4


def test_axial_plan_matches_a_brute_force_walk_on_a_random_tree():
    rng = np.random.default_rng(5)
    parents = [-1] + [int(rng.integers(0, i)) for i in range(1, 300)]
    nodes = rng.permutation(300)[:120]
    plan, at = axial_plan(parents, nodes).tolist(), 0
    for k in nodes.tolist():
        children = [c for c, p in enumerate(parents) if p == k]
        assert plan[at:at + 3 + len(children)] == [k, parents[k], len(children), *children]
        at += 3 + len(children)
    assert at == len(plan)


@pytest.mark.parametrize("parents,nodes", [([-1, 0], [2]), ([-1, 0], [-1]), ([-1, 5], [1])])
def test_axial_plan_refuses_indices_outside_the_nodes(parents, nodes):
    with pytest.raises(ValueError):
        axial_plan(parents, nodes)


class _Sec:
    def __init__(self, mechs=()):
        self.mechs = set(mechs)

    def has_membrane(self, name):
        return name in self.mechs


class _Seg:
    def __init__(self, sec):
        self.sec = sec


class _Instances:
    def __init__(self, items):
        self.items = items

    def count(self):
        return len(self.items)

    def o(self, i):
        return self.items[i]


class _Clamp:
    def __init__(self, sec):
        self.seg = _Seg(sec) if sec is not None else None

    def get_segment(self):
        return self.seg


class _H:
    """What ``why_not_axial`` asks of NEURON (stubbed: the rule is tested, not NEURON; the
    integration tests run it on NEURON)."""

    def __init__(self, secondorder=0, cvode=0, instances=None):
        self.secondorder = secondorder
        self.cvode = type("Cvode", (), {"active": lambda _self: cvode})()
        self.instances = instances or {}
        for name in ("IClamp", "SEClamp", "VClamp", "LinearMechanism"):
            setattr(self, name, object())

    def List(self, name):   # noqa: N802 - NEURON's name
        return _Instances(self.instances.get(name, []))


def test_why_not_axial_names_the_first_reason():
    mine, other = _Sec(), _Sec()
    segs = [_Seg(mine), _Seg(mine)]
    assert why_not_axial(_H(), segs, True, False) is None
    # an electrode elsewhere, or not placed, does not matter; on a report cell it does
    assert why_not_axial(_H(instances={"IClamp": [_Clamp(other), _Clamp(None)]}), segs,
                         True, False) is None
    assert "an electrode" in why_not_axial(_H(instances={"SEClamp": [_Clamp(mine)]}), segs,
                                           True, False)
    assert why_not_axial(_H(secondorder=2), segs, True, False) == "secondorder = 2"
    assert why_not_axial(_H(cvode=1), segs, True, False) == "the variable time step"
    assert "LinearMechanism" in why_not_axial(_H(instances={"LinearMechanism": [object()]}),
                                              segs, True, False)
    assert "extracellular" in why_not_axial(_H(), [_Seg(_Sec(["extracellular"]))], True, False)
    assert "rebuild" in why_not_axial(_H(), segs, False, False)
    assert "another report" in why_not_axial(_H(secondorder=2), segs, False, True)
