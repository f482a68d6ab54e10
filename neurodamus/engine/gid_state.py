"""Gid-keyed checkpoint state: what lets a checkpoint saved on N ranks continue on M ranks.

The rank files of ``rank_state.py`` (``SaveState`` and the point-process extras) name every
object by its position on the saving rank, so they only fit the same rank layout. Next to them
every checkpoint holds ``cells/``: NEURON's ``BBSaveState`` in its binary form, one file per
cell, written by the rank holding it and read by whichever rank holds the cell later. Per gid
it keeps the sections' voltages and STATE variables, the whole data of every point process with
a NET_RECEIVE block (synapses: release sites, facilitation, last spike times), their NMODL
RANDOM sequences, the NetCons onto them (weight vectors) with their events in flight, the
queued self-events, and a gid-less source driving one of them (minis generators; replay
VecStims, one per synapse in a checkpointing run: ``ReplayBuilder.per_synapse``). Spikes sent
but not yet delivered are kept as the spike of their source gid and sent again on restore.
Binary, so every double comes back bit for bit (the text form keeps 15 digits).

NEURON writes ``binbufout/<gid>.<size>``, ``binbufout/<gid>.size`` and ``binbufout/global.*``
(the time) below the working directory and reads the same names below ``binbufin/``: two files
per cell, too many for a parallel file system. They go to a temporary folder (``$TMPDIR``,
node-local on clusters) and each rank packs its cells into ``cells/rank<r>.bin`` with the index
``cells/rank<r>.idx.npy`` (gid, offset, size per cell; written last), rank 0 the time into
``cells/global.bin``. A restoring rank reads the indexes, unpacks the cells it holds into a
temporary folder and lets NEURON read them from there.

Restoring clears the event queue: the plays of the inputs start again from their vectors
(``vector_play_init``); the reports' per-step recordings need no event.

The reports' last values (``rank_state.write_rank_state``) are saved per rank with the gid of
each value, so a restoring rank picks those of its own cells (``values_for``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

CELLS = "cells"
GLOBAL = "global.bin"
_OUT, _IN = "binbufout", "binbufin"


# ---- the cells/ folder (no NEURON) -------------------------------------------------------------
def cells_dir(folder) -> Path:
    return Path(folder) / CELLS


def bundle_files(folder, rank: int) -> tuple[Path, Path]:
    where = cells_dir(folder)
    return where / f"rank{rank}.bin", where / f"rank{rank}.idx.npy"


def has_cells(folder) -> bool:
    return (cells_dir(folder) / GLOBAL).is_file()


def pack(binbuf: Path, folder, rank: int) -> int:
    """This rank's cells as NEURON wrote them into ``binbuf`` -> ``cells/rank<r>.*`` (and the
    time into ``cells/global.bin`` when ``binbuf`` has it). Returns the number of cells."""
    data, idx = bundle_files(folder, rank)
    data.parent.mkdir(parents=True, exist_ok=True)
    rows, offset = [], 0
    with open(data, "wb") as out:
        for size_file in sorted(binbuf.glob("*.size")):
            name = size_file.name[:-len(".size")]
            size = int(size_file.read_text().split()[0])
            payload = (binbuf / f"{name}.{size}").read_bytes()
            if name == "global":
                (cells_dir(folder) / GLOBAL).write_bytes(payload)
                continue
            out.write(payload)
            rows.append((int(name), offset, size))
            offset += size
    table = np.array(rows, np.int64).reshape(-1, 3)
    tmp = idx.with_name(idx.name + ".tmp.npy")
    np.save(tmp, table)
    os.replace(tmp, idx)
    return len(rows)


def read_index(folder, n_ranks: int) -> dict:
    """gid -> (saving rank, offset, size) over every saving rank's index."""
    out = {}
    for r in range(n_ranks):
        for gid, offset, size in np.load(bundle_files(folder, r)[1]).tolist():
            out[gid] = (r, offset, size)
    return out


def missing_cells(index: dict, gids) -> list[int]:
    """The gids among ``gids`` whose state the checkpoint lacks."""
    return [int(g) for g in gids if int(g) not in index]


def unpack(folder, index: dict, gids, binbuf: Path) -> None:
    """The state of ``gids`` (and the time) as NEURON reads it, into ``binbuf``."""
    binbuf.mkdir(parents=True, exist_ok=True)

    def put(name, payload):
        (binbuf / f"{name}.{len(payload)}").write_bytes(payload)
        (binbuf / f"{name}.size").write_text(f"{len(payload)}\n")

    put("global", (cells_dir(folder) / GLOBAL).read_bytes())
    by_rank = {}
    for g in gids:
        r, offset, size = index[int(g)]
        by_rank.setdefault(r, []).append((int(g), offset, size))
    for r, cells in by_rank.items():
        with open(bundle_files(folder, r)[0], "rb") as f:
            for gid, offset, size in sorted(cells, key=lambda c: c[1]):
                f.seek(offset)
                put(gid, f.read(size))


def ref_gids(local) -> np.ndarray:
    """The gid of every recorded reference of a ``LocalReport``, in recording order."""
    elems = [np.repeat(np.asarray(b.node_ids, np.int64) + int(b.offset),
                       np.asarray(b.counts, np.int64)) for b in local.blocks]
    elem_gids = np.concatenate(elems) if elems else np.zeros(0, np.int64)
    return elem_gids[local.element_of_refs()]


def values_for(here: np.ndarray, parts) -> np.ndarray | None:
    """The saved values of this rank's references, whose gids are ``here`` (in recording
    order), from ``parts`` = [(gids, values)] of the saving ranks. The k-th reference of a gid
    here is the k-th of that gid where it was saved (a cell's references are made in the same
    order on any rank). None when a gid or a reference is not in the checkpoint."""
    here = np.asarray(here, np.int64)
    if parts:
        gids = np.concatenate([np.asarray(g, np.int64) for g, _ in parts])
        values = np.concatenate([np.asarray(v, float) for _, v in parts])
    else:
        gids, values = np.zeros(0, np.int64), np.zeros(0)
    order = np.argsort(gids, kind="stable")
    gids, values = gids[order], values[order]
    mine = np.argsort(here, kind="stable")
    sorted_here = here[mine]
    # position of each reference within its gid's group here
    starts = np.searchsorted(sorted_here, sorted_here, "left")
    k = np.arange(len(sorted_here)) - starts
    first = np.searchsorted(gids, sorted_here, "left")
    count = np.searchsorted(gids, sorted_here, "right") - first
    if (k >= count).any():
        return None
    out = np.empty(len(here))
    out[mine] = values[first + k]
    return out


def column_map(src: dict, dst: dict) -> np.ndarray | None:
    """For each column of a report population written with the mapping ``dst``, its column
    in the same report written on another rank count with ``src`` (``node_ids``,
    ``index_pointers``, ``element_ids``); None when a node or its elements differ."""
    def columns(m):
        nodes, ptr = np.asarray(m["node_ids"], np.int64), np.asarray(m["index_pointers"])
        return {int(n): (int(ptr[i]), int(ptr[i + 1])) for i, n in enumerate(nodes)}
    src_cols, dst_cols = columns(src), columns(dst)
    src_el, dst_el = np.asarray(src["element_ids"]), np.asarray(dst["element_ids"])
    out = np.empty(len(dst_el), np.int64)
    for node, (a, b) in dst_cols.items():
        where = src_cols.get(node)
        if where is None or where[1] - where[0] != b - a or \
                not np.array_equal(src_el[where[0]:where[1]], dst_el[a:b]):
            return None
        out[a:b] = np.arange(where[0], where[1])
    return out


# ---- NEURON side ---------------------------------------------------------------------------------
class _InFolder:
    """BBSaveState reads and writes below the working directory: go there for the call."""

    def __init__(self, folder: Path):
        self.folder, self.back = folder, None

    def __enter__(self):
        self.back = os.getcwd()
        os.chdir(self.folder)

    def __exit__(self, *exc):
        os.chdir(self.back)


def save_cells(h, folder, rank: int, solver_t: float) -> None:
    """This rank's cells into ``<folder>/cells`` (every rank; rank 0 also writes the time)."""
    shown_t = h.t
    h.t = solver_t   # the threads' own time (CoreNEURON shows its tstop)
    try:
        with tempfile.TemporaryDirectory(prefix="nd_cells_") as tmp:
            (Path(tmp) / _OUT).mkdir()
            with _InFolder(Path(tmp)):
                h.BBSaveState().save_test_bin()
            pack(Path(tmp) / _OUT, folder, rank)
    finally:
        h.t = shown_t


def restore_cells(h, folder, index: dict, gids) -> None:
    """After initialisation: the cells ``gids`` of this rank (every gid it has, or NEURON
    stops) from ``<folder>/cells``; every rank together (the spikes in flight are exchanged).
    The inputs' plays restart."""
    bbss = h.BBSaveState()
    with tempfile.TemporaryDirectory(prefix="nd_cells_") as tmp:
        unpack(folder, index, gids, Path(tmp) / _IN)
        with _InFolder(Path(tmp)):
            bbss.restore_test_bin()
    bbss.vector_play_init()


__all__ = ["CELLS", "GLOBAL", "bundle_files", "cells_dir", "column_map", "has_cells",
           "missing_cells", "pack", "read_index", "ref_gids", "restore_cells", "save_cells",
           "unpack", "values_for"]
