"""Electrode weights of compartments in an infinite homogeneous medium, and the electrodes file
writer (no NEURON; ``lfp_weights.py`` supplies the geometry).

Units: positions and lengths in µm, conductivity ``sigma`` in S/m, factors in mV/nA
(nA / (S/m x µm) = mV). For a current ``I`` leaving the membrane of a compartment:

* ``point``: the current leaves at the compartment's centre, ``phi = I / (4 pi sigma r)``;
* ``line``: it leaves evenly along the segment from ``a`` to ``b`` (length ``L``),
  ``phi = I / (4 pi sigma L) * (asinh(u / r) - asinh((u - L) / r))`` with ``u`` the electrode's
  coordinate along the segment from ``a`` and ``r`` its distance from the segment's axis (the
  line-source approximation).

Distances below the compartment's radius are raised to it (an electrode cannot sit inside the
membrane; this keeps the factors finite).
"""

from __future__ import annotations

import csv
import os

import h5py
import numpy as np

from ..errors import ConfigError

METHODS = ("line", "point")


def point_source_factors(centres, radii, electrodes, sigma: float) -> np.ndarray:
    """[compartments x electrodes] factors of point sources at ``centres`` (n x 3)."""
    c = np.asarray(centres, float)[:, None, :]
    e = np.asarray(electrodes, float)[None, :, :]
    r = np.sqrt(((e - c) ** 2).sum(axis=2))
    r = np.maximum(r, np.asarray(radii, float)[:, None])
    return 1.0 / (4 * np.pi * sigma * r)


def line_source_factors(starts, ends, radii, electrodes, sigma: float) -> np.ndarray:
    """[compartments x electrodes] factors of line sources from ``starts`` to ``ends``."""
    a = np.asarray(starts, float)
    b = np.asarray(ends, float)
    e = np.asarray(electrodes, float)
    seg = b - a
    length = np.sqrt((seg ** 2).sum(axis=1))
    out = np.empty((len(a), len(e)))
    short = length <= 1e-9
    if short.any():   # a zero-length compartment is a point source
        out[short] = point_source_factors(a[short], np.asarray(radii, float)[short], e, sigma)
    keep = ~short
    if keep.any():
        L = length[keep][:, None]
        d = seg[keep] / length[keep][:, None]
        rel = e[None, :, :] - a[keep][:, None, :]                # compartments x electrodes x 3
        u = (rel * d[:, None, :]).sum(axis=2)
        r2 = np.maximum((rel ** 2).sum(axis=2) - u ** 2, 0.0)
        r = np.maximum(np.sqrt(r2), np.asarray(radii, float)[keep][:, None])
        out[keep] = (np.arcsinh(u / r) - np.arcsinh((u - L) / r)) / (4 * np.pi * sigma * L)
    return out


def read_positions(path) -> tuple[list, np.ndarray]:
    """(names, positions n x 3 in µm) of the electrodes in ``path``.

    CSV: rows ``x,y,z`` or ``name,x,y,z`` (a header line naming the columns is allowed; without
    names electrodes are called ``e0``, ``e1``, ...). HDF5: a dataset ``positions`` [n x 3]
    (optional ``names``) or an electrodes file's ``/electrodes/contacts/<name>/position``."""
    path = str(path)
    if not os.path.isfile(path):
        raise ConfigError(f"{path}: electrode positions: file not found")
    if path.endswith((".h5", ".hdf5")):
        return _positions_h5(path)
    names, rows = [], []
    with open(path, newline="") as fd:
        for n, row in enumerate(csv.reader(fd), start=1):
            cells = [c.strip() for c in row if c.strip() != ""]
            if not cells or cells[0].startswith("#"):
                continue
            try:
                values = [float(c) for c in cells[-3:]]
            except ValueError:
                if n == 1 and not rows:   # a header
                    continue
                raise ConfigError(f"{path}: line {n}: expected x,y,z or name,x,y,z numbers, "
                                  f"got {row}") from None
            if len(cells) not in (3, 4):
                raise ConfigError(f"{path}: line {n}: expected x,y,z or name,x,y,z, got "
                                  f"{len(cells)} fields")
            names.append(cells[0] if len(cells) == 4 else f"e{len(rows)}")
            rows.append(values)
    if not rows:
        raise ConfigError(f"{path}: electrode positions: no electrode in the file")
    return _unique(path, names), np.asarray(rows, float)


def _positions_h5(path):
    try:
        fd = h5py.File(path, "r")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot open: {exc}") from exc
    with fd:
        if "positions" in fd:
            pos = np.asarray(fd["positions"][:], float)
            if pos.ndim != 2 or pos.shape[1] != 3 or not len(pos):
                raise ConfigError(f"{path}: positions: expected shape [n x 3], got {pos.shape}")
            names = [n.decode() if isinstance(n, bytes) else str(n)
                     for n in fd["names"][:]] if "names" in fd else \
                [f"e{i}" for i in range(len(pos))]
            return _unique(path, names), pos
        contacts = fd.get("electrodes/contacts")
        if contacts is None or not len(contacts):
            raise ConfigError(f"{path}: neither a 'positions' dataset nor "
                              f"/electrodes/contacts/<name>/position")
        names, rows = [], []
        for name, grp in contacts.items():
            pos = grp.attrs.get("position") if "position" in grp.attrs else \
                (grp["position"][()] if "position" in grp else None)
            if pos is None or np.asarray(pos).shape != (3,):
                raise ConfigError(f"{path}: /electrodes/contacts/{name}/position: missing or "
                                  f"not 3 values")
            names.append(name)
            rows.append(np.asarray(pos, float))
        return names, np.asarray(rows)


def _unique(path, names):
    seen = set()
    for n in names:
        if n in seen:
            raise ConfigError(f"{path}: electrode name '{n}' appears twice")
        seen.add(n)
    return names


def write_electrodes_file(path, names, positions, populations: dict, attrs=None) -> None:
    """Write a SONATA electrodes file (see ``lfp.py``) under a temporary name, then rename.

    ``populations``: name -> (node_ids, offsets, section_ids, scaling_factors [rows x n])."""
    path = str(path)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with h5py.File(tmp, "w") as fd:
            contacts = fd.create_group("electrodes/contacts")
            for name, pos in zip(names, np.asarray(positions, float)):
                grp = contacts.create_group(name)
                grp.attrs["position"] = np.asarray(pos, np.float32)
                grp.attrs["type"] = "LFP"
            for key, value in (attrs or {}).items():
                fd["electrodes"].attrs[key] = value
            for pop, (node_ids, offsets, section_ids, factors) in populations.items():
                fd.create_dataset(f"electrodes/{pop}/scaling_factors",
                                  data=np.asarray(factors, np.float64))
                fd.create_dataset(f"{pop}/node_ids", data=np.asarray(node_ids, np.uint64))
                fd.create_dataset(f"{pop}/offsets", data=np.asarray(offsets, np.uint64))
                fd.create_dataset(f"{pop}/section_ids", data=np.asarray(section_ids, np.uint64))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


__all__ = [
    "METHODS",
    "line_source_factors",
    "point_source_factors",
    "read_positions",
    "write_electrodes_file",
]
