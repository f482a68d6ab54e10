"""SONATA element-report files written by every rank in turn (h5py without MPI-IO).

Scheme (chosen over per-rank spool files merged by column ranges at the end; measured with
``benchmarks/reports_io.py`` on 2 ranks, 2 cores, local disk: 763 MiB report written at
640-990 MiB/s with the token against 250-360 MiB/s for spool + merge, which also needs the
report's size again in temporary disk space; on a 153 MiB report both took ~0.3 s):

* the global layout is computed once from per-rank (nodes, elements) counts exchanged with
  mpi4py (``Layout``): rank ``r`` owns the node range and the element (column) range that
  follow those of ranks ``< r``;
* rank 0 creates the file under a temporary name with every dataset at its final size, the
  time triple and the ``units`` attributes;
* a token travels rank 0 -> 1 -> ... -> N-1 -> 0 (``parallel.TokenRing``): holding it, a rank
  opens the file, writes its mapping slices (once) or its column block of the rows of this
  flush, and closes the file. HDF5 never sees two writers at once, and no rank holds another
  rank's data;
* at the end rank 0 takes the token back from rank N-1 and renames the file to its final name,
  so a run that fails never leaves a file that looks complete: a failure while the files are
  set up removes them, a later one leaves ``<name>.h5.tmp-<id>`` files (the next run in the
  same output folder removes them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import h5py
import numpy as np

from ..output_guard import writing


@dataclass(frozen=True)
class PopulationLayout:
    """Where this rank's part of one population goes in the file."""

    population: str
    total_nodes: int
    total_elements: int
    node_start: int       # this rank's first node row
    elem_start: int       # this rank's first column
    n_nodes: int
    n_elements: int


def layouts_from_counts(populations: list, counts_per_rank: list, rank: int) -> list:
    """``counts_per_rank[r][i] = (n_nodes, n_elements)`` of population ``i`` on rank ``r``."""
    out = []
    for i, pop in enumerate(populations):
        nodes = np.array([c[i][0] for c in counts_per_rank], np.int64)
        elems = np.array([c[i][1] for c in counts_per_rank], np.int64)
        out.append(PopulationLayout(pop, int(nodes.sum()), int(elems.sum()),
                                    int(nodes[:rank].sum()), int(elems[:rank].sum()),
                                    int(nodes[rank]), int(elems[rank])))
    return out


def temporary_name(path) -> str:
    return f"{path}.tmp-{os.getpid()}"


def final_name(tmp_path) -> str:
    """The file a temporary name stands for (for messages)."""
    return str(tmp_path).rsplit(".tmp-", 1)[0]


def create_file(tmp_path: str, layouts: list, grid, unit: str) -> None:
    """Rank 0: the whole file skeleton at its final size (contract §8.2 layout)."""
    with writing(final_name(tmp_path), keep=tmp_path), h5py.File(tmp_path, "w") as fd:
        root = fd.create_group("report")
        for lay in layouts:
            grp = root.create_group(lay.population)
            data = grp.create_dataset("data", shape=(grid.n_steps, lay.total_elements),
                                      dtype=np.float32)
            data.attrs["units"] = unit
            mapping = grp.create_group("mapping")
            mapping.create_dataset("node_ids", shape=(lay.total_nodes,), dtype=np.uint64)
            ptr = mapping.create_dataset("index_pointers", shape=(lay.total_nodes + 1,),
                                         dtype=np.uint64)
            ptr[lay.total_nodes] = lay.total_elements
            mapping.create_dataset("element_ids", shape=(lay.total_elements,), dtype=np.uint32)
            time = mapping.create_dataset("time", data=np.array(
                [grid.start, grid.end, grid.dt], dtype=np.float64))
            time.attrs["units"] = "ms"


def write_mapping(tmp_path: str, layouts: list, blocks: list) -> None:
    """This rank's node ids, index pointers and element ids."""
    if not any(lay.n_nodes for lay in layouts):
        return
    with writing(final_name(tmp_path), keep=tmp_path), h5py.File(tmp_path, "r+") as fd:
        for lay, block in zip(layouts, blocks):
            if lay.n_nodes == 0:
                continue
            mapping = fd[f"report/{lay.population}/mapping"]
            a, b = lay.node_start, lay.node_start + lay.n_nodes
            mapping["node_ids"][a:b] = block.node_ids
            starts = np.concatenate([[0], np.cumsum(block.counts)[:-1]]).astype(np.uint64)
            mapping["index_pointers"][a:b] = starts + np.uint64(lay.elem_start)
            if lay.n_elements:
                mapping["element_ids"][lay.elem_start:lay.elem_start + lay.n_elements] = \
                    block.element_ids


def write_rows(tmp_path: str, layouts: list, row_a: int, values: np.ndarray) -> None:
    """Rows ``[row_a, row_a + len(values))`` of this rank's columns; ``values`` is
    [rows, local elements] float32 with the populations' columns side by side."""
    if values.shape[0] == 0 or values.shape[1] == 0:
        return
    row_b = row_a + values.shape[0]
    with writing(final_name(tmp_path), keep=tmp_path), h5py.File(tmp_path, "r+") as fd:
        col = 0
        for lay in layouts:
            if lay.n_elements == 0:
                continue
            ds = fd[f"report/{lay.population}/data"]
            ds[row_a:row_b, lay.elem_start:lay.elem_start + lay.n_elements] = \
                values[:, col:col + lay.n_elements]
            col += lay.n_elements


__all__ = [
    "PopulationLayout",
    "create_file",
    "layouts_from_counts",
    "temporary_name",
    "write_mapping",
    "write_rows",
]
