"""Gid-keyed checkpoint planning (engine/gid_state.py), no NEURON: which saved report value goes
to which reference of the restoring rank, which cells a checkpoint lacks."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from scipy.sparse import csr_matrix

from neurodamus.engine import gid_state
from neurodamus.reports.mapping import LocalReport


def _block(offset, node_ids, counts):
    return SimpleNamespace(offset=offset, node_ids=np.asarray(node_ids, np.uint64),
                           counts=np.asarray(counts))


def test_ref_gids_one_reference_per_element():
    local = LocalReport(None, [_block(10, [0, 3], [2, 1]), _block(100, [5], [1])],
                        refs=[None] * 4, combine=None)
    assert gid_state.ref_gids(local).tolist() == [10, 10, 13, 105]


def test_ref_gids_summation():
    # elements: gid 10 (row 0), gid 13 (row 1); refs 0,1 -> row 0, refs 2,3,4 -> row 1
    combine = csr_matrix((np.ones(5), ([0, 0, 1, 1, 1], [0, 1, 2, 3, 4])), shape=(2, 5))
    local = LocalReport(None, [_block(10, [0, 3], [1, 1])], refs=[None] * 5, combine=combine)
    assert gid_state.ref_gids(local).tolist() == [10, 10, 13, 13, 13]


def test_values_follow_their_gid_across_rank_layouts():
    # saved on 2 ranks: rank 0 held gids 1 and 3 (two refs each), rank 1 held gid 2
    parts = [(np.array([1, 1, 3, 3]), np.array([1.1, 1.2, 3.1, 3.2])),
             (np.array([2]), np.array([2.1]))]
    # one restoring rank holds all three, in another order
    out = gid_state.values_for(np.array([2, 3, 3, 1, 1]), parts)
    assert out.tolist() == [2.1, 3.1, 3.2, 1.1, 1.2]
    # a rank holding gid 3 only, and one holding nothing
    assert gid_state.values_for(np.array([3, 3]), parts).tolist() == [3.1, 3.2]
    assert gid_state.values_for(np.array([], np.int64), parts).tolist() == []


def test_values_missing_in_the_checkpoint():
    parts = [(np.array([1]), np.array([1.0]))]
    assert gid_state.values_for(np.array([4]), parts) is None
    assert gid_state.values_for(np.array([1, 1]), parts) is None   # one ref more than saved
    assert gid_state.values_for(np.array([1]), []) is None


def _neuron_files(binbuf, cells):
    binbuf.mkdir(parents=True)
    for name, payload in cells.items():
        (binbuf / f"{name}.{len(payload)}").write_bytes(payload)
        (binbuf / f"{name}.size").write_text(f"{len(payload)}\n")


def test_cells_packed_per_rank_and_unpacked_by_gid(tmp_path):
    """NEURON's two files per cell go into one bundle per saving rank; a restoring rank gets
    back the files of its own cells, byte for byte, whichever rank saved them."""
    ckpt = tmp_path / "ckpt"
    _neuron_files(tmp_path / "r0", {"global": b"T" * 8, 0: b"\x00\x01zero", 2: b"two"})
    _neuron_files(tmp_path / "r1", {1: b"one!", 3: b"\xff" * 300})
    assert not gid_state.has_cells(ckpt)
    assert gid_state.pack(tmp_path / "r0", ckpt, 0) == 2
    assert gid_state.pack(tmp_path / "r1", ckpt, 1) == 2
    assert gid_state.has_cells(ckpt)
    index = gid_state.read_index(ckpt, 2)
    assert sorted(index) == [0, 1, 2, 3] and index[3][0] == 1
    assert gid_state.missing_cells(index, [0, 3, 5, 7]) == [5, 7]
    out = tmp_path / "in"
    gid_state.unpack(ckpt, index, [3, 0], out)
    assert sorted(p.name for p in out.iterdir()) == ["0.6", "0.size", "3.300", "3.size",
                                                    "global.8", "global.size"]
    assert (out / "3.300").read_bytes() == b"\xff" * 300
    assert (out / "0.6").read_bytes() == b"\x00\x01zero"
    assert (out / "3.size").read_text() == "300\n"
    assert (out / "global.8").read_bytes() == b"T" * 8


@pytest.mark.parametrize("n", [0, 7])
def test_values_for_identity(n):
    gids = np.arange(n)
    values = np.linspace(0, 1, n)
    assert np.array_equal(gid_state.values_for(gids, [(gids, values)]), values)


def test_report_columns_follow_their_node():
    # saved on 2 ranks: nodes 4, 1 (rank 0 then rank 1); restored on 1 rank: nodes 1, 4
    src = {"node_ids": [4, 1], "index_pointers": [0, 2, 3], "element_ids": [0, 1, 0]}
    dst = {"node_ids": [1, 4], "index_pointers": [0, 1, 3], "element_ids": [0, 0, 1]}
    assert gid_state.column_map(src, dst).tolist() == [2, 0, 1]
    other = dict(dst, element_ids=[0, 0, 2])
    assert gid_state.column_map(src, other) is None
    assert gid_state.column_map(src, dict(dst, node_ids=[1, 5])) is None


def _settings(tmp_path, tstop=200.0):
    return SimpleNamespace(circuit_path=tmp_path / "circuit_config.json",
                           sim=SimpleNamespace(node_set="All"),
                           run=SimpleNamespace(dt=0.025, tstop=tstop))


def _checkpoint_on(folder, settings, pops, ranks, cells=True):
    from neurodamus.engine import checkpoint, rank_state

    folder.mkdir()
    for r in range(ranks):
        rank_state.state_file(folder, r).write_text("x")
        rank_state.extras_file(folder, r).write_text("x")
    if cells:
        for r in range(ranks):
            files = {"global": b"T" * 8} if r == 0 else {}
            _neuron_files(folder.parent / f"{folder.name}_nrn{r}", {**files, r: b"x"})
            gid_state.pack(folder.parent / f"{folder.name}_nrn{r}", folder, r)
    rank_state.write_meta(folder, {"t": 100.0,
                                   "identity": checkpoint.identity(settings, pops, ranks)})


def test_check_restore_on_another_rank_count(tmp_path):
    from neurodamus.engine import checkpoint

    pops = {"cortex": SimpleNamespace(offset=0, selected=range(24), is_virtual=False)}
    settings = _settings(tmp_path)
    _checkpoint_on(tmp_path / "c", settings, pops, 2)
    for ranks in (1, 2, 3):
        assert checkpoint.check_restore(tmp_path / "c", settings, pops, ranks)["t"] == 100.0
    # a checkpoint without the per-cell state: the same rank count only
    _checkpoint_on(tmp_path / "old", settings, pops, 2, cells=False)
    checkpoint.check_restore(tmp_path / "old", settings, pops, 2)
    with pytest.raises(checkpoint.CheckpointError, match="saved on 2 rank.*restore on the same"):
        checkpoint.check_restore(tmp_path / "old", settings, pops, 3)
    # every saving rank's files must be there, whatever the restoring rank count
    (tmp_path / "c" / gid_state.CELLS / "rank1.idx.npy").unlink()
    with pytest.raises(checkpoint.CheckpointError, match="rank1.idx.npy missing"):
        checkpoint.check_restore(tmp_path / "c", settings, pops, 3)
    (tmp_path / "c" / "rank1.npz").unlink()
    with pytest.raises(checkpoint.CheckpointError, match="rank1.npz missing"):
        checkpoint.check_restore(tmp_path / "c", settings, pops, 1)
    # another circuit, node set, population list or dt is still refused
    other = dict(pops, thalamus=SimpleNamespace(offset=24, selected=range(5), is_virtual=True))
    with pytest.raises(checkpoint.CheckpointError, match="another populations"):
        checkpoint.check_restore(tmp_path / "old", settings, other, 2)
    settings.run.dt = 0.05
    with pytest.raises(checkpoint.CheckpointError, match="another dt"):
        checkpoint.check_restore(tmp_path / "c", settings, pops, 3)
