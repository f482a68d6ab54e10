"""``spatially_uniform_e_field`` (contract §4.6). NEURON only.

Every segment of a target cell gets ``extracellular`` and one ``EFieldIntegrator`` (core/mod)
whose pointer drives ``e_extracellular``. For a field E (V/m) the segment's potential is
``Φ = 1000·(Ex·dx + Ey·dy + Ez·dz)`` mV, with d (m) the segment's start point minus the soma
centre in global coordinates. All blocks are merged per cell into one integrator per segment,
in config order, after every other input.

Geometry (pure numpy) is apart from the NEURON objects: ``segment_offsets`` reads the section
points, ``rotations`` the node orientations, ``potentials`` does the arithmetic.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..circuit.nodes import open_population
from ..circuit.section_ids import section_type_and_index
from ..errors import ConfigError

log = logging.getLogger(__name__)

#: local −y extents (µm from the soma centre) of axon stubs that have no 3D points (contract §4.6)
STUB_EXTENT = {("axon", 0): (0.0, 30.0), ("axon", 1): (30.0, 60.0), ("myelin", 0): (60.0, 1060.0)}
N_TERM_VALUES = 7


@dataclass
class EFieldSource:
    input_names: tuple
    gid: int
    segments: list      # NEURON segments, in section order
    integrators: list   # one EFieldIntegrator per segment
    terms: np.ndarray   # (n_segments, n_terms, 7)


# ---- pure geometry -----------------------------------------------------------------------------
def interpolate_points(arc: np.ndarray, xyz: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """Points at ``fractions`` of the total arc length of a polyline (arc, xyz)."""
    total = arc[-1] if len(arc) and arc[-1] > 0 else 1.0
    target = np.asarray(fractions, dtype=float) * total
    return np.column_stack([np.interp(target, arc, xyz[:, k]) for k in range(3)])


def segment_start_fractions(nseg: int) -> np.ndarray:
    return np.arange(nseg, dtype=float) / nseg


def potentials(d_global_um: np.ndarray, fields) -> np.ndarray:
    """(n_points, n_fields) potentials in mV: 1000·(Ex·dx + Ey·dy + Ez·dz), d in m."""
    d = np.asarray(d_global_um, dtype=float) * 1e-6
    out = np.empty((len(d), len(fields)))
    for j, f in enumerate(fields):
        out[:, j] = 1000 * (f.Ex * d[:, 0] + f.Ey * d[:, 1] + f.Ez * d[:, 2])
    return out


# ---- NEURON geometry ---------------------------------------------------------------------------
def _section_points(sec):
    n = int(sec.n3d())
    if n == 0:
        return None, None
    arc = np.array([sec.arc3d(i) for i in range(n)])
    xyz = np.array([[sec.x3d(i), sec.y3d(i), sec.z3d(i)] for i in range(n)])
    return arc, xyz


def soma_centre(hoc) -> np.ndarray:
    """Mean of the end points of the soma segments (local coordinates)."""
    soma = hoc.soma[0]
    arc, xyz = _section_points(soma)
    if arc is None:
        return np.zeros(3)
    ends = np.arange(soma.nseg + 1, dtype=float) / soma.nseg
    pts = interpolate_points(arc, xyz, ends)
    return np.concatenate([pts[:-1], pts[1:]]).mean(axis=0)


def segment_offsets(hoc, warn=None) -> tuple[list, np.ndarray]:
    """Every segment of the cell and its start point minus the soma centre (local, µm)."""
    centre = soma_centre(hoc)
    segments, offsets = [], []
    for sec in hoc.all:
        nseg = sec.nseg
        segs = list(sec)
        if "soma" in sec.name():
            d = np.zeros((nseg, 3))
        else:
            arc, xyz = _section_points(sec)
            fractions = segment_start_fractions(nseg)
            if arc is not None and len(arc) > 1:
                d = interpolate_points(arc, xyz, fractions) - centre
            else:
                try:
                    key = section_type_and_index(sec)
                except ValueError:
                    key = None
                extent = STUB_EXTENT.get(key)
                d = np.zeros((nseg, 3))
                if extent is not None:
                    start, stop = extent
                    d[:, 1] = -(start + fractions * (stop - start))
                elif warn is not None:
                    warn(f"section {sec.name()} has no 3D points: its E-field potential is 0")
        segments.extend(segs)
        offsets.append(d)
    return segments, (np.concatenate(offsets) if offsets else np.zeros((0, 3)))


def rotations(pop_nodes, raw_ids):
    """scipy Rotations (local → global) of the given nodes: quaternion or Euler angles
    (contract §2).

    Euler angles are extrinsic ``xyz`` with missing angles 0. The established driver reads the
    z angle only when the y column exists (contract §10.6, an observed defect); here every
    angle column present is read.
    """
    import libsonata
    from scipy.spatial.transform import Rotation

    pop = open_population(pop_nodes.info)
    names = set(pop.attribute_names)
    sel = libsonata.Selection(np.asarray(raw_ids, dtype=np.int64))
    n = len(raw_ids)

    def col(name):
        return np.asarray(pop.get_attribute(name, sel), dtype=float)

    quat = [f"orientation_{a}" for a in "xyzw"]
    if all(c in names for c in quat):
        return Rotation.from_quat(np.column_stack([col(c) for c in quat]))
    angles = np.zeros((n, 3))
    found = False
    for k, axis in enumerate("xyz"):
        name = f"rotation_angle_{axis}axis"
        if name in names:
            angles[:, k] = col(name)
            found = True
    if found:
        return Rotation.from_euler("xyz", angles)
    return Rotation.identity(n)


# ---- build -------------------------------------------------------------------------------------
def _time_terms(block):
    stim = block.stim
    ramp_up, ramp_down = stim.ramp_up_time, stim.ramp_down_time
    return [(f, (f.frequency, f.phase, stim.delay, ramp_up, stim.duration, ramp_down))
            for f in stim.fields]


def build_efields(run, blocks) -> list:
    """All ``spatially_uniform_e_field`` blocks, merged per cell (contract §4.1, §4.6)."""
    if not blocks:
        return []
    h = run.h
    if run.settings.target_simulator == "CORENEURON":
        raise blocks[0].error("module", "spatially_uniform_e_field needs NEURON: CoreNEURON has "
                              "no extracellular mechanism (use --simulator=NEURON)")
    if not hasattr(h, "EFieldIntegrator"):
        raise blocks[0].error("module", "the mechanism library lacks EFieldIntegrator "
                              "(core/mod): rebuild the mechanisms with this neurodamus")
    per_cell: dict[int, list] = {}
    for block in blocks:
        for target in run.targets(block):
            per_cell.setdefault(target.cell.gid, []).append(block)
    warnings = []
    rot_of = _rotations_of(run, sorted(per_cell))
    objects = []
    for gid in sorted(per_cell):
        cell = run.cells[gid]
        segments, d_local = segment_offsets(cell.hoc, warn=warnings.append)
        d_global = rot_of[gid].apply(d_local) if len(d_local) else d_local
        term_rows = []
        for block in per_cell[gid]:
            timing = _time_terms(block)
            phi = potentials(d_global, [f for f, _ in timing])
            for j, (_, times) in enumerate(timing):
                cols = np.empty((len(segments), N_TERM_VALUES))
                cols[:, 0] = phi[:, j]
                cols[:, 1:] = times
                term_rows.append(cols)
        terms = np.stack(term_rows, axis=1)  # (n_segments, n_terms, 7)
        for sec in cell.hoc.all:
            sec.insert("extracellular")
        integrators = []
        for i, seg in enumerate(segments):
            seg = seg.sec(seg.x)     # re-fetch after insert
            pp = h.EFieldIntegrator(seg)
            h.setpointer(seg._ref_e_extracellular, "ex", pp)
            pp.setTerms(h.Vector(terms[i].ravel()))
            integrators.append(pp)
        names = tuple(dict.fromkeys(b.name for b in per_cell[gid]))
        objects.append(EFieldSource(names, gid, segments, integrators, terms))
    for text in dict.fromkeys(warnings):
        log.warning(text)
    return objects


def _rotations_of(run, gids) -> dict:
    """gid -> Rotation for the local target cells, read in bulk per population."""
    by_pop: dict[str, list] = {}
    for gid in gids:
        by_pop.setdefault(run.cells[gid].population, []).append(gid)
    result = {}
    for pop_name, pop_gids in by_pop.items():
        pop_nodes = run.populations[pop_name]
        raw = [run.cells[g].raw_id for g in pop_gids]
        try:
            rots = rotations(pop_nodes, raw)
        except Exception as exc:  # libsonata / scipy: name the population
            raise ConfigError(f"{pop_nodes.info.nodes_file}: population '{pop_name}': cannot "
                              f"read node orientations for the E-field input: {exc}") from exc
        for k, gid in enumerate(pop_gids):
            result[gid] = rots[k]
    return result


__all__ = [
    "EFieldSource",
    "build_efields",
    "interpolate_points",
    "potentials",
    "rotations",
    "segment_offsets",
    "soma_centre",
]
