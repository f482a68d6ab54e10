"""This rank's elements of an ``lfp`` report (the NEURON side of ``lfp``).

Every cell of the report that the electrodes file lists gets one element per electrode
(element id = electrode index, the column of ``scaling_factors``); its value is
``sum over the cell's compartments of factor x i_membrane_`` (fast ``i_membrane_``, nA; factors
in mV/nA, so the value is in mV). The references are the ``i_membrane_`` of every compartment
in file order within each cell, the cells grouped by compartment count
(``BlockWeights.order``), and the combination is the block-diagonal weight matrix (its
weights mapped from the file where it allows, else read); the files are those of the other
reports (the currents are taken at report steps only, by NEURON or inside CoreNEURON's step,
``lfp_recording.py``).

Which currents enter: fast ``i_membrane_`` holds the capacitive and ionic currents and every
NONSPECIFIC_CURRENT point process, hence the driver's own current source
(``MembraneCurrentSource``, ``represents_physical_electrode: false``) as a membrane current; an
``IClamp`` (a physical electrode) is an electrode current and is not in it. Summed over a cell
without physical electrode, the membrane currents cancel (Kirchhoff). Where that is the same
thing, the currents are computed from the voltages instead (``lfp_axial.py``): the references
are then the segments until ``report_set`` has chosen (``use_membrane_refs``).
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .lfp import (
    BlockWeights,
    compartment_section_ids,
    map_scaling_factors,
    missing_nodes,
    read_cell_weights,
    read_electrodes_file,
)
from .mapping import LocalReport, PopulationBlock


def cell_compartments(cell) -> tuple[list, np.ndarray]:
    """(segments, section id of each) of ``cell`` in electrodes-file order: sections by
    ascending section id, segments from x = 0 to 1."""
    ids = cell.section_ids
    by_id = sorted((ids.id_of(sec), sec) for sec in cell.hoc.all)
    segments = [seg for _, sec in by_id for seg in sec]
    sections = compartment_section_ids([(sid, sec.nseg) for sid, sec in by_id])
    return segments, sections


def build_lfp_report(spec, where: str, targets: list, cells_of, warn=None) -> LocalReport:
    """``targets``: [(population, offset, report raw ids (all ranks), local raw ids)];
    ``cells_of(population, raw)`` gives the Cell. One warning (``warn``) with the number of
    report cells the file lacks; they get no element."""
    if not spec.electrodes_file:
        raise ConfigError(f"{where}.electrodes_file: an lfp report needs an electrodes file")
    electrodes = read_electrodes_file(spec.electrodes_file, {t[0] for t in targets})
    absent = sum(len(missing_nodes(electrodes, pop, raw)) for pop, _, raw, _ in targets)
    total = sum(len(raw) for _, _, raw, _ in targets)
    if absent == total:
        raise ConfigError(f"{where}.electrodes_file: {electrodes.path} has no compartments "
                          f"of any of the report's {total} cells")
    if absent and warn:
        warn(f"{where}: {absent} of the report's {total} cells are not in the electrodes file "
             f"{electrodes.path}: they are left out of the report")
    n_elec = electrodes.n_electrodes
    blocks, recorded, cells = [], [], []   # cells: [(raw id, section ids)] per population
    for pop, offset, _, local in targets:
        present = np.setdiff1d(np.asarray(local, np.int64),
                               missing_nodes(electrodes, pop, local))
        mine = []
        for raw in present.tolist():
            segments, sections = cell_compartments(cells_of(pop, raw))
            recorded += segments
            mine.append((raw, sections))
        cells.append((pop, mine))
        blocks.append(PopulationBlock(
            pop, offset, present.astype(np.uint64), np.full(len(present), n_elec, np.int64),
            np.tile(np.arange(n_elec, dtype=np.uint32), len(present))))
    counts = [len(sections) for _, mine in cells for _, sections in mine]
    mapped = [map_scaling_factors(electrodes.path, pop) for pop, _ in cells]
    if all(m is not None for m in mapped):   # used where they are in the file (page cache)
        arrays = []
        for (pop, mine), factors in zip(cells, mapped):
            got = read_cell_weights(electrodes, pop, mine, mapped=factors)
            arrays += [got[raw] for raw, _ in mine]
        combine = BlockWeights(counts, n_elec, arrays)
    else:   # read straight into the stacks the product uses
        combine = BlockWeights(counts, n_elec)
        first = 0
        for pop, mine in cells:
            read_cell_weights(electrodes, pop, mine, into=[
                combine.cell_weights(k) for k in range(first, first + len(mine))])
            first += len(mine)
    # recorded in the weights' column order: cells grouped by compartment count
    recorded = [recorded[i] for i in combine.order.tolist()]
    # the references are the segments until the currents' source is chosen (report_set:
    # computed from the voltages, or read through i_membrane_ references, use_membrane_refs)
    return LocalReport(spec, blocks, list(recorded), combine, segments=recorded)


def use_membrane_refs(local: LocalReport) -> None:
    """The report reads fast ``i_membrane_`` (it must be on): a reference per segment."""
    local.refs = [seg._ref_i_membrane_ for seg in local.segments]


__all__ = ["build_lfp_report", "cell_compartments", "use_membrane_refs"]
