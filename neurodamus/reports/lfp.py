"""LFP reports: the electrodes file and this rank's weights (no NEURON).

The electrodes file follows the SONATA simulation specification ("format of the
electrodes_file"):

* ``/electrodes/contacts/<name>``: one group per electrode (``position`` in µm, optional
  ``layer``, ``region``, ``type``), as attributes or datasets;
* ``/electrodes/<population>/scaling_factors``: float64 [compartments x electrodes], mV/nA;
* ``/<population>/node_ids`` (uint64, one per node), ``/<population>/offsets`` (uint64,
  nodes + 1: the rows of each node) and ``/<population>/section_ids`` (uint64, one per row).

Compartment order of a node: its sections in ascending section id (the contract §2.1(2) numbering of
reports and compartment sets), each section's segments from x = 0 to x = 1. Electrode ``e``
is column ``e`` of ``scaling_factors`` and element id ``e`` of the report.

A rank reads the node index of the populations it reports (small) and the rows of its own
cells only, so the weights it holds are those of its cells. Where HDF5 stores the factors as
one plain array (contiguous, unfiltered float64, as ``lfp-weights`` writes them), the rank maps
the file instead of reading it (``map_scaling_factors``): its cells' rows are used where they
are, the file's own pages in the page cache, not a copy in fresh memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import h5py
import numpy as np

from ..errors import ConfigError


@dataclass(frozen=True)
class PopulationIndex:
    node_ids: np.ndarray     # int64, as in the file
    offsets: np.ndarray      # int64, len(node_ids) + 1
    row_of: dict             # node id -> position in node_ids


@dataclass(frozen=True)
class ElectrodesFile:
    """What every rank knows of an electrodes file: electrodes and the node index."""

    path: str
    n_electrodes: int
    names: tuple
    populations: dict        # population -> PopulationIndex

    def has(self, population: str) -> bool:
        return population in self.populations

    def node_ids(self, population: str) -> np.ndarray:
        index = self.populations.get(population)
        return index.node_ids if index is not None else np.zeros(0, np.int64)


def _fail(path, key, what):
    raise ConfigError(f"{path}: {key}: {what}")


def _contact_names(fd, path) -> tuple:
    contacts = fd.get("electrodes/contacts")
    if contacts is None:
        return ()
    if not isinstance(contacts, h5py.Group):
        _fail(path, "/electrodes/contacts", "must be a group (one subgroup per electrode)")
    return tuple(contacts.keys())


def read_electrodes_file(path, population_names=None) -> ElectrodesFile:
    """The electrodes and node index of ``path`` (``population_names``: the populations to
    read, default all); ConfigError ``<file>: <key>: <what>`` on a malformed file."""
    path = str(path)
    try:
        fd = h5py.File(path, "r")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot open the electrodes file: "
                          f"{exc.strerror or exc}") from exc
    with fd:
        electrodes = fd.get("electrodes")
        if not isinstance(electrodes, h5py.Group):
            _fail(path, "/electrodes", "missing (not an electrodes file)")
        names = _contact_names(fd, path)
        pops = [p for p in electrodes if p != "contacts"]
        if population_names is not None:
            pops = [p for p in pops if p in population_names]
        n_elec = None
        populations = {}
        for pop in sorted(pops):
            factors = electrodes.get(f"{pop}/scaling_factors")
            if not isinstance(factors, h5py.Dataset):
                _fail(path, f"/electrodes/{pop}/scaling_factors", "missing")
            if factors.ndim != 2:
                _fail(path, f"/electrodes/{pop}/scaling_factors",
                      f"must be 2-D [compartments x electrodes], has shape {factors.shape}")
            if n_elec is not None and factors.shape[1] != n_elec:
                _fail(path, f"/electrodes/{pop}/scaling_factors",
                      f"{factors.shape[1]} electrodes (columns), other populations have {n_elec}")
            n_elec = factors.shape[1]
            populations[pop] = _read_index(fd, path, pop, factors.shape[0])
        if n_elec is None:
            n_elec = len(names)
        if names and len(names) != n_elec:
            _fail(path, "/electrodes/contacts", f"{len(names)} electrodes, but scaling_factors "
                  f"has {n_elec} columns")
    return ElectrodesFile(path, int(n_elec), names, populations)


def _read_index(fd, path, pop, n_rows) -> PopulationIndex:
    arrays = {}
    for key in ("node_ids", "offsets", "section_ids"):
        ds = fd.get(f"{pop}/{key}")
        if not isinstance(ds, h5py.Dataset) or ds.ndim != 1:
            _fail(path, f"/{pop}/{key}", "missing (a 1-D dataset is required)")
        arrays[key] = ds
    node_ids = np.asarray(arrays["node_ids"][:], np.int64)
    offsets = np.asarray(arrays["offsets"][:], np.int64)
    if len(offsets) != len(node_ids) + 1:
        _fail(path, f"/{pop}/offsets", f"{len(offsets)} values for {len(node_ids)} nodes "
              f"(expected nodes + 1)")
    if len(offsets) and (offsets[0] != 0 or np.any(np.diff(offsets) < 0)):
        _fail(path, f"/{pop}/offsets", "must start at 0 and never decrease")
    if len(offsets) and offsets[-1] != n_rows:
        _fail(path, f"/{pop}/offsets", f"last offset {offsets[-1]} != the {n_rows} rows of "
              f"/electrodes/{pop}/scaling_factors")
    if arrays["section_ids"].shape[0] != n_rows:
        _fail(path, f"/{pop}/section_ids", f"{arrays['section_ids'].shape[0]} values for the "
              f"{n_rows} rows of /electrodes/{pop}/scaling_factors")
    row_of = {}
    for i, node in enumerate(node_ids.tolist()):
        if node in row_of:
            _fail(path, f"/{pop}/node_ids", f"node {node} is listed twice")
        row_of[node] = i
    return PopulationIndex(node_ids, offsets, row_of)


def missing_nodes(electrodes: ElectrodesFile, population: str, raw_ids) -> np.ndarray:
    """The nodes of ``raw_ids`` that the file has no rows for."""
    raw = np.asarray(raw_ids, np.int64)
    return raw[~np.isin(raw, electrodes.node_ids(population))]


def compartment_section_ids(sections) -> np.ndarray:
    """Section id of every compartment, in file order, from [(section_id, nseg)]."""
    ordered = sorted((int(s), int(n)) for s, n in sections)
    return np.repeat(np.array([s for s, _ in ordered], np.int64),
                     np.array([n for _, n in ordered], np.int64))


def map_scaling_factors(path, population: str) -> np.ndarray | None:
    """``/electrodes/<population>/scaling_factors`` of ``path`` mapped into memory
    (read-only float64 [compartments x electrodes]), or None when HDF5 does not keep it as one
    plain array in the file (chunked, compressed, external, another type or byte order, empty):
    then it is read.

    A mapped file must not be rewritten in place during the run (``lfp-weights`` writes a new
    file and renames it, which leaves the mapped one alone)."""
    with h5py.File(str(path), "r") as fd:
        ds = fd[f"electrodes/{population}/scaling_factors"]
        plist = ds.id.get_create_plist()
        if plist.get_layout() != h5py.h5d.CONTIGUOUS or plist.get_external_count() or \
                ds.dtype != np.dtype("<f8") or ds.size == 0:
            return None
        offset, shape = ds.id.get_offset(), ds.shape
    if offset is None:   # never written
        return None
    return np.memmap(str(path), dtype="<f8", mode="r", offset=offset, shape=shape)


def read_cell_weights(electrodes: ElectrodesFile, population: str, cells, into=None,
                      mapped=None) -> dict:
    """node id -> weights [compartments x electrodes] (float64) of this rank's ``cells``:
    [(node id, expected section id per compartment)] of nodes present in the file. With
    ``into`` (one writable C-ordered float64 array of that shape per cell, e.g.
    ``BlockWeights.cell_weights``) the weights are read straight into them: no second copy.
    With ``mapped`` (``map_scaling_factors``) they are views of it, nothing is read.

    ConfigError naming the file and the first node whose compartments do not match (a file
    made for another circuit or another morphology instantiation)."""
    index = electrodes.populations[population]
    path = electrodes.path
    out = {}
    if not cells:
        return out
    with h5py.File(path, "r") as fd:
        factors = fd[f"electrodes/{population}/scaling_factors"]
        sec_ds = fd[f"{population}/section_ids"]
        for j, (node, expected) in enumerate(cells):
            i = index.row_of[int(node)]
            a, b = int(index.offsets[i]), int(index.offsets[i + 1])
            if b - a != len(expected):
                _fail(path, f"/{population}/offsets", f"node {node} has {b - a} compartments "
                      f"in the file, the cell has {len(expected)} (a file for another circuit "
                      f"or morphology?)")
            found = np.asarray(sec_ds[a:b], np.int64)
            bad = np.flatnonzero(found != expected)
            if len(bad):
                k = int(bad[0])
                _fail(path, f"/{population}/section_ids", f"node {node} compartment {k} is in "
                      f"section {found[k]} in the file, in section {expected[k]} in the cell")
            if mapped is not None:
                out[int(node)] = np.asarray(mapped[a:b])
                continue
            dest = np.empty((b - a, factors.shape[1])) if into is None else into[j]
            if b > a:
                factors.read_direct(dest, np.s_[a:b, :])
            out[int(node)] = dest
    return out


class BlockWeights:
    """The block-diagonal weights of a rank's cells, applied as dense products.

    The columns are the cells' compartments in ``order`` (indices into the compartments as
    given, cell after cell): cells with the same compartment count form a group whose columns
    are contiguous, so that a group's recorded currents are a view [cells x compartments x
    steps] and one batched BLAS call multiplies them by the group's stacked weights, without
    copying them; each weight is read once per product however many steps it holds. The
    recording takes its references in ``order`` (``lfp_mapping``).

    ``self @ raw`` with ``raw`` [columns x steps] gives [cells x electrodes, steps]: row
    ``c*n_electrodes + e`` is electrode ``e`` of cell ``c`` (cells as given).
    ``product_of_rows`` does the same for [steps x columns] and gives float32 [steps x cells x
    electrodes]."""

    #: bytes of float64 products held at once by ``product_of_rows`` (cells taken in batches)
    SCRATCH_BYTES = 16 * 2**20

    def __init__(self, counts, n_electrodes: int, arrays=None):
        """Room for the weights of cells of ``counts`` compartments (``cell_weights`` gives
        each cell's, to fill), or, with ``arrays``, each cell's weights [compartments x
        electrodes] used as they are (e.g. views of the mapped file): not copied, one product
        per cell instead of batched ones."""
        self.n_electrodes = n_electrodes
        counts = np.asarray(counts, np.int64)
        self.n_cells = len(counts)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        self.n_columns = int(counts.sum())
        self.groups = []     # (cell indices, first column, weights [g x n x e])
        self._place = {}     # cell -> (group, position in it)
        order, column = [], 0
        for n in np.unique(counts).tolist():
            cells = np.flatnonzero(counts == n)
            order.append((starts[cells][:, None] + np.arange(n)[None, :]).ravel())
            # as product_of_rows reads it; filled in place (a second copy of the weights
            # costs memory and, on some VMs, seconds of page faults per GB)
            stack = np.empty((len(cells), n, n_electrodes)) if arrays is None else \
                tuple(arrays[c] for c in cells.tolist())
            self._place.update((c, (len(self.groups), i)) for i, c in enumerate(cells.tolist()))
            self.groups.append((cells, column, stack))
            column += len(cells) * n
        self.order = np.concatenate(order) if order else np.zeros(0, np.int64)
        self._scratch = np.zeros(0)

    @classmethod
    def of(cls, weights_per_cell: list, n_electrodes: int) -> "BlockWeights":
        """From each cell's weights [compartments x electrodes], copied."""
        blocks = cls([len(w) for w in weights_per_cell], n_electrodes)
        for c, w in enumerate(weights_per_cell):
            blocks.cell_weights(c)[:] = w
        return blocks

    def cell_weights(self, c: int) -> np.ndarray:
        """The weights [compartments x electrodes] of cell ``c`` (index as given): a writable
        C-ordered view into the group's stack."""
        group, i = self._place[c]
        return self.groups[group][2][i]

    @property
    def shape(self) -> tuple:
        return (self.n_cells * self.n_electrodes, self.n_columns)

    @property
    def nbytes(self) -> int:
        return sum(sum(w.nbytes for w in weights) if isinstance(weights, tuple) else
                   weights.nbytes for *_, weights in self.groups) + self.order.nbytes

    @staticmethod
    def _dims(weights) -> tuple[int, int]:
        """(cells, compartments per cell) of a group's weights, a stack or a tuple."""
        if isinstance(weights, tuple):
            return len(weights), weights[0].shape[0]
        return weights.shape[0], weights.shape[1]

    def column_cells(self) -> np.ndarray:
        """The cell (index as given) of every column."""
        cells = np.empty(self.n_columns, np.int64)
        for group_cells, start, weights in self.groups:
            g, n = self._dims(weights)
            cells[start:start + g * n] = np.repeat(group_cells, n)
        return cells

    def __matmul__(self, raw: np.ndarray) -> np.ndarray:
        raw = np.ascontiguousarray(raw, np.float64)
        n_steps = raw.shape[1]
        out = np.empty((self.n_cells, self.n_electrodes, n_steps))
        for cells, start, weights in self.groups:
            g, n = self._dims(weights)
            block = raw[start:start + g * n].reshape(g, n, n_steps)
            if isinstance(weights, tuple):
                for i, w in enumerate(weights):
                    out[cells[i]] = w.T @ block[i]
            else:
                out[cells] = np.matmul(weights.transpose(0, 2, 1), block)
        return out.reshape(self.n_cells * self.n_electrodes, n_steps)

    def product_of_rows(self, rows: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """float32 [steps x cells * electrodes] = ``(self @ rows.T).T`` for C-ordered ``rows``
        [steps x columns] (the gathered currents), into ``out`` if given (float32, at least
        that many values; its first ones are used and returned as a view).

        Per group, batches of cells: their rows are a view [cells x steps x compartments]
        (no copy), one batched BLAS call multiplies it by the transposed weights into a
        scratch [cells x steps x electrodes] kept between calls, and the copy into the output
        keeps the electrodes contiguous. Reusing the output and the scratch matters: freshly
        allocated arrays are page-faulted in again at every flush."""
        n_steps, n_e = rows.shape[0], self.n_electrodes
        size = n_steps * self.n_cells * n_e
        if out is None or out.size < size:
            out = np.empty(size, np.float32)
        out = out.reshape(-1)[:size].reshape(n_steps, self.n_cells, n_e)
        batch = max(1, self.SCRATCH_BYTES // max(1, 8 * n_steps * n_e))
        for cells, start, weights in self.groups:
            g, n = self._dims(weights)
            block = rows[:, start:start + g * n].reshape(n_steps, g, n).transpose(1, 0, 2)
            if isinstance(weights, tuple):   # one cell at a time, where its weights are
                product = self._scratch_for(n_steps, n_e)
                for i, w in enumerate(weights):
                    out[:, cells[i], :] = np.matmul(block[i], w, out=product)
                continue
            for a in range(0, g, batch):
                b = min(g, a + batch)
                product = np.matmul(block[a:b], weights[a:b],
                                    out=self._scratch_for(b - a, n_steps, n_e))
                out[:, cells[a:b], :] = product.transpose(1, 0, 2)
        return out.reshape(n_steps, self.n_cells * n_e)

    def _scratch_for(self, *shape) -> np.ndarray:
        need = int(np.prod(shape))
        if self._scratch.size < need:   # once: its size hardly changes from piece to piece
            self._scratch = np.empty(max(need, self.SCRATCH_BYTES // 8))
        return self._scratch[:need].reshape(shape)


__all__ = [
    "BlockWeights",
    "ElectrodesFile",
    "PopulationIndex",
    "compartment_section_ids",
    "map_scaling_factors",
    "missing_nodes",
    "read_cell_weights",
    "read_electrodes_file",
]
