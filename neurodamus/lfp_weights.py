"""``neurodamus lfp-weights``: an electrodes file for a circuit, computed from its morphologies.

Cells are instantiated as in a run (the same templates, morphologies and ``--keep-axon``
choice; modifications are not applied) and every compartment's weight for every electrode is
computed in circuit coordinates: a compartment's local points minus the soma centre, rotated
by the node's orientation, plus the node's ``x, y, z`` (the soma centre). Compartments are
listed in the order ``reports/lfp.py`` defines. Sections without 3D points: the axon stubs of
axon replacement lie along local -y (the E-field input's convention, ``stimuli/efield.py``);
any other such section is placed at the soma centre, with a warning.

Under MPI each rank computes its round-robin share of the cells and rank 0 writes the file.
"""

from __future__ import annotations

import logging

import libsonata
import numpy as np

from . import launch, runtime
from .circuit import cells as cell_build
from .circuit.nodes import distribute_nodes, open_population, read_local_attributes, select_nodes
from .circuit.section_ids import section_type_and_index
from .config.settings import RunOptions, load_settings
from .errors import ConfigError
from .parallel import Phase
from .reports.lfp import compartment_section_ids
from .reports.lfp_sources import (
    METHODS,
    line_source_factors,
    point_source_factors,
    read_positions,
    write_electrodes_file,
)
from .stimuli.efield import STUB_EXTENT, interpolate_points, rotations, soma_centre

log = logging.getLogger(__name__)

USAGE = """Write the electrodes file of an lfp report: weights of every compartment of the
simulation's cells for electrodes at the given positions.

Usage:
    neurodamus lfp-weights <simulation_config> --electrodes=FILE -o FILE [options]

Options:
    --electrodes=FILE   Electrode positions (µm, circuit coordinates): CSV rows x,y,z or
                        name,x,y,z, or HDF5 (dataset 'positions' [n x 3], or an electrodes
                        file's /electrodes/contacts).
    -o FILE --output=FILE  The electrodes file to write (HDF5).
    --sigma=S           Extracellular conductivity in S/m [default: 0.3].
    --method=M          line (line source along each segment) or point (point source at the
                        segment centre) [default: line].
    --keep-axon         Instantiate the full axon, as a run with --keep-axon does.
"""


def segment_geometry(cell) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list]:
    """(section ids, starts, ends, radii, warnings) of every compartment in file order, in the
    cell's local frame centred on the soma centre (µm)."""
    hoc = cell.hoc
    ids = cell.section_ids
    centre = soma_centre(hoc)
    by_id = sorted((ids.id_of(sec), sec) for sec in hoc.all)
    starts, ends, radii, warnings = [], [], [], []
    for _, sec in by_id:
        nseg = sec.nseg
        fractions = np.arange(nseg + 1, dtype=float) / nseg
        n3d = int(sec.n3d())
        if n3d > 1:
            arc = np.array([sec.arc3d(i) for i in range(n3d)])
            xyz = np.array([[sec.x3d(i), sec.y3d(i), sec.z3d(i)] for i in range(n3d)])
            pts = interpolate_points(arc, xyz, fractions) - centre
        else:
            pts = np.zeros((nseg + 1, 3))
            try:
                extent = STUB_EXTENT.get(section_type_and_index(sec))
            except ValueError:
                extent = None
            if extent is not None:
                start, stop = extent
                pts[:, 1] = -(start + fractions * (stop - start))
            else:
                warnings.append(f"section {sec.name()} has no 3D points: placed at the soma "
                                f"centre")
        starts.append(pts[:-1])
        ends.append(pts[1:])
        radii.append([seg.diam / 2 for seg in sec])
    sections = compartment_section_ids([(sid, sec.nseg) for sid, sec in by_id])
    return (sections, np.concatenate(starts), np.concatenate(ends),
            np.concatenate(radii).astype(float), warnings)


def cell_factors(geometry, rotation, position, electrodes, sigma, method) -> np.ndarray:
    """[compartments x electrodes] factors of one cell placed at ``position``."""
    _, starts, ends, radii, _ = geometry
    a = rotation.apply(starts) + position
    b = rotation.apply(ends) + position
    if method == "point":
        return point_source_factors((a + b) / 2, radii, electrodes, sigma)
    return line_source_factors(a, b, radii, electrodes, sigma)


def _node_positions(pop_nodes, raw):
    pop = open_population(pop_nodes.info)
    names = set(pop.attribute_names)
    sel = libsonata.Selection(np.asarray(raw, np.int64))
    if not all(c in names for c in "xyz"):
        raise ConfigError(f"{pop_nodes.info.nodes_file}: population '{pop_nodes.name}': "
                          f"x, y, z: missing (the soma positions are needed for LFP weights)")
    return np.column_stack([np.asarray(pop.get_attribute(c, sel), float) for c in "xyz"])


def compute(h, pc, comm, config, positions, sigma, method, keep_axon=False, say=print):
    """(This rank's {population: [(raw id, section ids, factors)]}, warnings)."""
    settings = load_settings(config, RunOptions(keep_axon=keep_axon))
    populations = select_nodes(settings)
    distribute_nodes(populations, comm.Get_rank(), comm.Get_size())
    for p in populations.values():
        read_local_attributes(p)
    runtime.load_mechanisms(h, settings.mechanisms_dir, comm, log=say,
                           where=f"{settings.circuit_path}: components.mechanisms_dir")
    loader = cell_build.TemplateLoader(h)
    result, warnings = {}, []
    for p in populations.values():
        if p.is_virtual or p.info.type == "point_process" or not len(p.selected):
            continue
        rows = result.setdefault(p.name, [])
        if not len(p.local_raw):
            continue
        cells = cell_build.instantiate_population(h, pc, p, settings, loader)
        raw = np.array([c.raw_id for c in cells], np.int64)
        rots = rotations(p, raw)
        pos = _node_positions(p, raw)
        for k, cell in enumerate(cells):
            geometry = segment_geometry(cell)
            warnings += geometry[4]
            rows.append((cell.raw_id, geometry[0],
                         cell_factors(geometry, rots[k], pos[k], positions, sigma, method)))
    return result, list(dict.fromkeys(warnings))


def assemble(parts: list) -> dict:
    """{population: (node_ids, offsets, section_ids, factors)} from every rank's rows."""
    merged = {}
    for part in parts:
        for pop, rows in part.items():
            merged.setdefault(pop, []).extend(rows)
    out = {}
    for pop, rows in merged.items():
        rows.sort(key=lambda r: r[0])
        counts = [len(r[1]) for r in rows]
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        n_elec = rows[0][2].shape[1] if rows else 0
        out[pop] = (np.array([r[0] for r in rows], np.int64), offsets,
                    np.concatenate([r[1] for r in rows]) if rows else np.zeros(0, np.int64),
                    np.concatenate([r[2] for r in rows]) if rows else np.zeros((0, n_elec)))
    return out


def main(args: dict, say=print) -> int:
    sigma = float(args["--sigma"])
    method = args["--method"]
    if method not in METHODS:
        raise ConfigError(f"--method: expected one of {', '.join(METHODS)}, got '{method}'")
    if not sigma > 0:
        raise ConfigError(f"--sigma: the conductivity must be > 0 S/m, got {sigma}")
    names, positions = read_positions(args["--electrodes"])
    h, pc, comm = launch.start_mpi_and_neuron()
    with Phase(comm, "lfp-weights"):
        rows, warnings = compute(h, pc, comm, args["<simulation_config>"], positions, sigma,
                                 method, bool(args["--keep-axon"]), say)
    parts = comm.gather(rows, root=0) if comm.Get_size() > 1 else [rows]
    all_warnings = comm.gather(warnings, root=0) if comm.Get_size() > 1 else [warnings]
    with Phase(comm, "lfp-weights"):
        if comm.Get_rank() == 0:
            _write(args, names, positions, parts, all_warnings, sigma, method, say)
    return 0


def _write(args, names, positions, parts, all_warnings, sigma, method, say):
    for text in dict.fromkeys(w for ws in all_warnings for w in ws):
        say(f"WARNING: {text}")
    pops = assemble(parts)
    try:
        write_electrodes_file(args["--output"], names, positions, pops,
                              attrs={"sigma": sigma, "method": method})
    except OSError as exc:
        raise ConfigError(f"{args['--output']}: cannot write the electrodes file: "
                          f"{exc.strerror or exc}") from exc
    n_cells = sum(len(v[0]) for v in pops.values())
    say(f"lfp-weights: {len(names)} electrode(s), {n_cells} cell(s), method {method}, "
        f"sigma {sigma:g} S/m -> {args['--output']}")


__all__ = ["USAGE", "assemble", "cell_factors", "compute", "main", "segment_geometry"]
