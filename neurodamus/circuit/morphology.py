"""Morphology reading (swc, asc, h5 through MorphIO) and fast instantiation into NEURON.

Reading is pure (numpy arrays, cached per file: circuits reuse a few hundred morphologies for
many cells).  ``instantiate`` is the only function that touches NEURON: it is called by
``core/hoc/ndmorph.hoc`` from inside an emodel template's ``init``.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import numpy as np

from ..errors import CircuitError

#: MorphIO section types → hoc section array names (SONATA / SWC type codes 2, 3, 4)
_ARRAY_OF_TYPE = {2: "axon", 3: "dend", 4: "apic"}
#: order in which the arrays are declared (soma first, then the §2.1 type order)
ARRAY_ORDER = ("soma", "axon", "dend", "apic")


@dataclass(frozen=True)
class MorphSection:
    array: str          # "soma", "axon", "dend" or "apic"
    index: int          # index inside that array
    section_id: int     # SONATA section id (soma = 0, neurites in file order from 1)
    parent_id: int      # SONATA id of the parent section (-1 for the soma)
    points: np.ndarray  # (n, 4): x, y, z, diameter


@dataclass(frozen=True)
class Morphology:
    path: str
    sections: tuple[MorphSection, ...]
    counts: dict  # array name -> number of sections


def _soma_points(soma_points: np.ndarray, soma_diameters: np.ndarray,
                 soma_type: str = "") -> np.ndarray:
    """The soma as one cylinder along y with the area of a sphere of the soma's radius.

    Radius: half the diameter for one-point and three-point (NeuroMorpho) somata, the mean
    distance of the outline points to their centroid for contours.
    """
    if len(soma_points) == 0:
        raise ValueError("no soma points")
    center = soma_points.mean(axis=0)
    if len(soma_points) == 1 or "THREE_POINT" in soma_type:
        center = soma_points[0]
        radius = float(soma_diameters[0]) / 2
    elif "CONTOUR" in soma_type:
        radius = float(np.linalg.norm(soma_points - center, axis=1).mean())
    else:  # stacked cylinders: the mean of their radii
        radius = float(np.mean(soma_diameters)) / 2
    radius = max(radius, 0.5)
    offset = np.array([0.0, radius, 0.0])
    start, end = center - offset, center + offset
    return np.array([[*start, 2 * radius], [*end, 2 * radius]])


@functools.lru_cache(maxsize=4096)
def read(path: str) -> Morphology:
    """Read a morphology file once; errors name the file."""
    import morphio

    if not os.path.isfile(path):
        raise CircuitError(f"Morphology file not found: {path}")
    try:
        morph = morphio.Morphology(path)
    except Exception as exc:  # morphio raises several unrelated types
        raise CircuitError(f"Cannot read morphology {path}: {exc}") from exc
    try:
        soma = _soma_points(np.asarray(morph.soma.points), np.asarray(morph.soma.diameters),
                            str(morph.soma_type))
    except ValueError as exc:
        raise CircuitError(f"Morphology {path} has no soma") from exc

    sections = [MorphSection("soma", 0, 0, -1, soma)]
    counts = {"soma": 1, "axon": 0, "dend": 0, "apic": 0}
    for sec in morph.iter():  # depth first, file order: ids match SONATA section ids - 1
        array = _ARRAY_OF_TYPE.get(int(sec.type))
        if array is None:
            raise CircuitError(f"Morphology {path}: section {sec.id + 1} has unsupported type "
                               f"{sec.type}")
        pts = np.column_stack([np.asarray(sec.points), np.asarray(sec.diameters)])
        parent = 0 if sec.is_root else sec.parent.id + 1
        sections.append(MorphSection(array, counts[array], sec.id + 1, parent, pts))
        counts[array] += 1
    sections.sort(key=lambda s: s.section_id)
    return Morphology(path, tuple(sections), counts)


_HOC_POINTS: dict = {}  # path -> per-section hoc Vectors (x, y, z, diam), built once


def _hoc_points(h, morph: Morphology):
    vectors = _HOC_POINTS.get(morph.path)
    if vectors is None:
        vectors = [tuple(h.Vector(ms.points[:, k]) for k in range(4)) for ms in morph.sections]
        _HOC_POINTS[morph.path] = vectors
    return vectors


#: the message of the last failure inside ``instantiate``: hoc only reports "PyObject method
#: call failed", so the cell builder picks the real reason up from here
last_error: str | None = None


def instantiate(cell, morph_dir: str, morph_file: str) -> None:
    """Replace ``cell``'s sections by those of the morphology (called from ndmorph.hoc)."""
    global last_error
    try:
        _instantiate(cell, str(morph_dir), str(morph_file))
    except Exception as exc:
        last_error = str(exc)
        raise


def _instantiate(cell, morph_dir: str, morph_file: str) -> None:
    from neuron import h

    morph = read(os.path.join(morph_dir, morph_file))
    h.execute1("forall delete_section()", cell)
    decl = ", ".join(f"{a}[{morph.counts[a]}]" for a in ARRAY_ORDER if morph.counts[a])
    h.execute1(f"create {decl}", cell)
    by_id = {}
    for ms, (xv, yv, zv, dv) in zip(morph.sections, _hoc_points(h, morph)):
        sec = getattr(cell, ms.array)[ms.index]
        by_id[ms.section_id] = sec
        h.pt3dadd(xv, yv, zv, dv, sec=sec)
        if ms.parent_id >= 0:
            parent = by_id[ms.parent_id]
            sec.connect(parent(0.5 if ms.parent_id == 0 else 1.0), 0.0)
    # The section-id convention of §2.1(1): the id lives in v(0.0001) until finitialize.
    for ms in morph.sections:
        by_id[ms.section_id](0.0001).v = ms.section_id
