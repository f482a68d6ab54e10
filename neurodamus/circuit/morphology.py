"""Morphology reading (swc, asc, h5 through MorphIO) and fast instantiation into NEURON.

Reading is pure (numpy arrays, cached per file: circuits reuse a few hundred morphologies for
many cells).  Two entry points are called from hoc, inside an emodel template's ``init``:

* ``instantiate`` (``core/hoc/ndmorph.hoc``: our own templates, section ids in v(0.0001));
* ``morphio_read`` (``core/hoc/morphio_read.hoc``: the interface of templates written for the
  established driver: MorphIO's NEURON order, the soma and 3-d points exactly as Import3d
  makes them, single files or containers).
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass

import h5py
import numpy as np

from ..errors import CircuitError

#: MorphIO section types → hoc section array names (SONATA / SWC type codes 2, 3, 4)
_ARRAY_OF_TYPE = {2: "axon", 3: "dend", 4: "apic"}
#: order in which the arrays are declared (soma first, then the contract §2.1 type order)
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
    # The section-id convention of contract §2.1(1): the id lives in v(0.0001) until finitialize.
    for ms in morph.sections:
        by_id[ms.section_id](0.0001).v = ms.section_id


# ---- morphio_read (core/hoc/morphio_read.hoc) ---------------------------------------------
#: soma types morphio_read converts, and whether Import3d treats them as a contour
_IMPORT3D_SOMA = {"SOMA_SINGLE_POINT": 0, "SOMA_SIMPLE_CONTOUR": 1}
_COLLECTIONS: dict = {}   # container path -> (open morphio.Collection, its entry names)


@dataclass(frozen=True)
class NrnMorphology:
    """A morphology as morphio_read instantiates it: sections in MorphIO's NEURON order."""
    path: str
    counts: dict                  # array name -> number of sections
    arrays: tuple                 # per section: (array name, index, parent section number)
    points: tuple                 # per section: hoc Vectors x, y, z, diam (rounded); built
                                  # once per file: pt3dadd from them is the fast path


def split_container(path: str) -> tuple[str, str] | None:
    """(container, morphology name) when ``path`` is ``<container file>/<name>.<ext>``."""
    container, base = os.path.split(path)
    if not os.path.isfile(path) and os.path.isfile(container):
        return container, os.path.splitext(base)[0]
    return None


@functools.lru_cache(maxsize=4096)
def file_problem(path: str) -> str | None:
    """Why a morphology file cannot make a cell (None when it can), checked once per file and
    rank before a template sees it: a template's Import3d stops the whole process on a file
    without a soma or with an unknown section type, with no message naming the file."""
    if not os.path.isfile(path):   # a container entry: morphio_read names its own problems
        return None
    import morphio  # noqa: PLC0415 - MorphIO only where morphologies are read

    if path.endswith(".swc") and not _swc_has_soma(path):
        return "has no soma (no sample of type 1)"
    try:
        morph = morphio.Morphology(path)
    except Exception as exc:  # MorphIO's RawDataError and friends: name file and reason
        reason = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).split())
        return f"cannot be read as a morphology: {reason}"
    if len(morph.soma.points) == 0 or "UNDEFINED" in str(morph.soma_type):
        return "has no soma"
    unknown = sorted({int(t) for t in morph.section_types} - {2, 3, 4})
    if unknown:
        return (f"has sections of type {', '.join(map(str, unknown))}: a template makes only "
                f"soma (1), axon (2), dend (3) and apic (4) sections")
    return None


def _swc_has_soma(path: str) -> bool:
    with open(path, errors="replace") as fd:
        for line in fd:
            fields = line.split("#", 1)[0].split()
            if len(fields) >= 2 and fields[1] == "1":
                return True
    return False


def morphology_exists(path: str) -> bool:
    """A morphology file, or an entry of a container file (checked by name when loading)."""
    return os.path.isfile(path) or split_container(path) is not None


def _load_morphio(path: str):
    import morphio

    option = morphio.Option.nrn_order
    in_container = split_container(path)
    try:
        if in_container:
            container, name = in_container
            collection = _COLLECTIONS.get(container)
            if collection is None:
                with h5py.File(container, "r") as fd:
                    names = frozenset(fd.keys())
                collection = (morphio.Collection(container), names)
                _COLLECTIONS[container] = collection
            if name not in collection[1]:
                raise CircuitError(f"Morphology container {container} has no morphology "
                                   f"'{name}' (path {path})")
            return collection[0].load(name, option)
        if not os.path.isfile(path):
            raise CircuitError(f"Morphology file not found: {path}")
        return morphio.Morphology(path, option)
    except CircuitError:
        raise
    except Exception as exc:  # morphio raises several unrelated types
        raise CircuitError(f"Cannot read morphology {path}: {exc}") from exc


def _as_parsed(values) -> np.ndarray:
    """MorphIO's float32 values as the doubles hoc parses from the text they came from."""
    return np.asarray(np.asarray(values, dtype=np.float32).astype(str), dtype=float)


def _import3d_rounded(values: np.ndarray) -> np.ndarray:
    """Import3d passes every 3-d value through ``%.8g`` (it builds hoc statements)."""
    return np.asarray([f"{v:.8g}" for v in values.ravel()], dtype=float).reshape(values.shape)


@functools.lru_cache(maxsize=4096)
def nrn_morphology(path: str) -> NrnMorphology:
    """Parse ``path`` once per process (rank) and compute what morphio_read instantiates."""
    from neuron import h

    morph = _load_morphio(path)
    soma_type = str(morph.soma_type).rsplit(".", 1)[-1]
    if soma_type not in _IMPORT3D_SOMA:
        raise CircuitError(f"Morphology {path}: soma type {soma_type} is not supported by "
                           f"morphio_read (single point or simple contour only)")
    soma = _as_parsed(morph.soma.points)
    if len(soma) == 0:
        raise CircuitError(f"Morphology {path} has no soma")
    diam = _as_parsed(morph.soma.diameters)
    soma_pts = h.nd_import3d_soma(h.Vector(soma[:, 0]), h.Vector(soma[:, 1]),
                                  h.Vector(soma[:, 2]), h.Vector(diam),
                                  _IMPORT3D_SOMA[soma_type])
    soma_xyzd = np.array([[soma_pts.getval(i, k) for k in range(4)]
                          for i in range(int(soma_pts.nrow()))])
    counts = {"soma": 1, "axon": 0, "dend": 0, "apic": 0}
    arrays = [("soma", 0, -1)]
    points = [soma_xyzd]
    number = {}
    for sec in morph.iter():  # roots in NEURON type order, each tree depth first
        array = _ARRAY_OF_TYPE.get(int(sec.type))
        if array is None:
            raise CircuitError(f"Morphology {path}: section {sec.id + 1} has unsupported type "
                               f"{sec.type}")
        parent = 0 if sec.is_root else number[sec.parent.id]
        number[sec.id] = len(arrays)
        arrays.append((array, counts[array], parent))
        counts[array] += 1
        xyzd = np.column_stack([_as_parsed(sec.points), _as_parsed(sec.diameters)])
        points.append(_import3d_rounded(xyzd))
    vectors = tuple(tuple(h.Vector(p[:, k]) for k in range(4)) for p in points)
    return NrnMorphology(path, counts, tuple(arrays), vectors)


def morphio_read(cell, path: str) -> None:
    """``morphio_read(cell, path)`` of core/hoc/morphio_read.hoc."""
    global last_error
    try:
        _morphio_read(cell, str(path))
    except Exception as exc:
        last_error = str(exc)
        raise


def _morphio_read(cell, path: str) -> None:
    from neuron import h

    morph = nrn_morphology(path)
    for array in ARRAY_ORDER:
        if morph.counts[array] and not hasattr(cell, array):
            # hoc can (re)create an array inside an object only if the template declares it
            raise CircuitError(f"Morphology {path} has {array} sections but template "
                               f"'{cell.hname().split('[')[0]}' declares no public section "
                               f"array '{array}' (add 'create {array}[1]' and 'public "
                               f"{array}' at template level, as for Import3d)")
    decl = ", ".join(f"{a}[{morph.counts[a]}]" for a in ARRAY_ORDER if morph.counts[a])
    h.execute1(f"create {decl}", cell)
    made = []
    for (array, index, parent), (xv, yv, zv, dv) in zip(morph.arrays, morph.points):
        sec = getattr(cell, array)[index]
        made.append(sec)
        h.pt3dadd(xv, yv, zv, dv, sec=sec)
        if parent >= 0:  # as Import3d: neurite roots on soma(0.5), others on the parent's end
            sec.connect(made[parent](0.5 if parent == 0 else 1.0), 0.0)
