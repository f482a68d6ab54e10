"""This rank's elements of one report: node ids, element ids and the NEURON references.

One ``LocalReport`` per report: for each population of the report (population order), this
rank's nodes in ascending id, each with its elements (contract §8.2 per type). Each element's
value is ``sum(factor * value(ref))`` over its references (``combine``); compartment, synapse and
compartment_set elements have exactly one reference with factor 1 (``combine`` is None).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import CircuitError, ConfigError
from .config import ReportSpec
from .lfp import BlockWeights
from .points import report_points
from .variables import (
    DENSITY_CURRENT,
    ELECTRODE_TYPES,
    MechanismCatalog,
    PointCache,
    Variable,
    parse_variable,
    references,
)


@dataclass
class PopulationBlock:
    """One population of a report as this rank holds it."""

    population: str
    offset: int
    node_ids: np.ndarray                       # raw ids, ascending (uint64)
    counts: np.ndarray                         # elements per node
    element_ids: np.ndarray                    # uint32, node-major


@dataclass
class LocalReport:
    spec: ReportSpec
    blocks: list                               # PopulationBlock per report population
    refs: list = field(default_factory=list)   # NEURON references, in recording order
    combine: object = None   # scipy CSR (n_elements x n_refs), lfp.BlockWeights or None
    #: references whose t = 0 value is reported as 0 (bare density currents, contract §11 item 17)
    zero_at_start: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    #: lfp reports: the segment of each reference (same order), read by node index on NEURON
    segments: list = field(default_factory=list)

    @property
    def n_elements(self) -> int:
        return int(sum(len(b.element_ids) for b in self.blocks))

    @property
    def n_refs(self) -> int:
        return len(self.refs)

    def element_of_refs(self) -> np.ndarray:
        """The element each reference feeds, in recording order (for an lfp report, the
        first electrode of its cell)."""
        if self.combine is None:
            return np.arange(self.n_refs)
        if isinstance(self.combine, BlockWeights):
            return self.combine.column_cells() * self.combine.n_electrodes
        coo = self.combine.tocoo()
        row_of = np.full(self.n_refs, -1, np.int64)
        row_of[coo.col] = coo.row
        if (row_of < 0).any():
            raise ValueError("a report reference belongs to no element")
        return row_of


class _Builder:
    """Accumulates elements and references of one population block."""

    def __init__(self):
        self.node_ids, self.counts, self.element_ids = [], [], []
        self.rows, self.cols, self.factors = [], [], []   # combination entries
        self.refs = []
        self.zero_at_start = []

    def element(self, element_id: int, refs_factors) -> None:
        """``refs_factors``: [(ref, factor, kind)], kind as given by ``references``."""
        row = len(self.element_ids)
        self.element_ids.append(element_id)
        for ref, factor, kind in refs_factors:
            self.rows.append(row)
            self.cols.append(len(self.refs))
            self.factors.append(factor)
            if kind == DENSITY_CURRENT:
                self.zero_at_start.append(len(self.refs))
            self.refs.append(ref)


def check_variables(spec: ReportSpec, catalog: MechanismCatalog, where: str) -> list:
    variables = [parse_variable(v) for v in spec.variables]
    for v in variables:
        problem = catalog.problem(v)
        if problem:
            raise ConfigError(f"{where}.variable_name: {problem}")
    if spec.type == "synapse":
        v = variables[0]
        if not catalog.point_types(v.mech):
            raise ConfigError(f"{where}.variable_name: a synapse report needs a point-process "
                              f"variable 'Mechanism.var', got '{v.text}'")
    return variables


def _fmt_point(cell, sec, x) -> str:
    return f"gid {cell.gid} ({cell.population} node {cell.raw_id}) {sec.name()}({x:g})"


def _one_reference(spec, where, cell, sec, x, v: Variable, points):
    refs = references(sec, x, v, points.of(sec))
    if len(refs) != 1:
        what = "no" if not refs else f"{len(refs)}"
        raise ConfigError(f"{where}.variable_name: '{v.text}' has {what} reference(s) at "
                          f"{_fmt_point(cell, sec, x)}; a {spec.type} report needs exactly one "
                          f"per compartment")
    return refs[0]


def _summation_terms(sec, x, variables, scaling, points):
    """[(ref, factor, kind)] of one summation point, variables in order (contract §8.2 factors)."""
    terms = []
    seg = sec(x)
    area = None
    for v in variables:
        for ref, ptype in references(sec, x, v, points.of(sec)):
            if ptype in ELECTRODE_TYPES:
                factor = -1.0
            elif scaling == "area" and not v.is_i_membrane:
                if area is None:
                    area = seg.area() / 100.0
                factor = area
            else:
                factor = 1.0
            terms.append((ref, factor, ptype))
    return terms


def _section_id(cell, sec) -> int:
    """The section id of ``sec`` (contract §2.1(2), the numbering shared with inputs and
    modifications); CircuitError naming the cell if the section has no id."""
    try:
        return cell.section_ids.id_of(sec)
    except ValueError as exc:
        raise CircuitError(f"gid {cell.gid} ({cell.population} node {cell.raw_id}): "
                           f"{exc}") from exc


def build_cell(b: _Builder, spec: ReportSpec, where: str, cell, variables, points,
               entries=None) -> None:
    """Append one cell's elements (contract §8.2)."""
    rtype = spec.type
    n0 = len(b.element_ids)
    if rtype == "compartment":
        for sec, x in report_points(cell, spec.sections, spec.compartments):
            ref, kind = _one_reference(spec, where, cell, sec, x, variables[0], points)
            b.element(_section_id(cell, sec), [(ref, 1.0, kind)])
    elif rtype == "summation":
        if spec.sections == "soma":   # everything of the cell summed into one element, id 0
            terms = []
            for sec, x in report_points(cell, "all", "all"):
                terms += _summation_terms(sec, x, variables, spec.scaling, points)
            b.element(0, terms)
        else:
            for sec, x in report_points(cell, spec.sections, spec.compartments):
                b.element(_section_id(cell, sec),
                          _summation_terms(sec, x, variables, spec.scaling, points))
    elif rtype == "synapse":
        v = variables[0]
        for sec, x in report_points(cell, spec.sections, spec.compartments):
            sp = points.of(sec)
            k = int(x * sp.nseg)
            for pp, _, _, index in sp.matching(v.mech):
                if index != k:
                    continue
                if not hasattr(pp, v.var):
                    raise ConfigError(f"{where}.variable_name: {pp.hname()} at "
                                      f"{_fmt_point(cell, sec, x)} has no variable '{v.var}'")
                if not hasattr(pp, "synapseID"):
                    raise ConfigError(f"{where}.variable_name: {pp.hname()} has no 'synapseID'"
                                      f" (synapse reports need it for the element ids)")
                if hasattr(pp, "selected_for_report"):
                    pp.selected_for_report = 1
                b.element(int(pp.synapseID), [(getattr(pp, "_ref_" + v.var), 1.0, None)])
        if len(b.element_ids) == n0:
            raise ConfigError(f"{where}: gid {cell.gid} ({cell.population} node "
                              f"{cell.raw_id}) has no '{v.mech}' synapse on the report's "
                              f"sections ({spec.sections}, compartments {spec.compartments})")
    elif rtype == "compartment_set":
        for section_id, offset in entries:
            sec = cell.section_ids.section(section_id)
            if sec is None:
                raise ConfigError(f"{where}.compartment_set: '{spec.compartment_set}' names "
                                  f"section {section_id} of gid {cell.gid} ({cell.population} "
                                  f"node {cell.raw_id}): "
                                  f"{cell.section_ids.describe_missing(section_id)}")
            ref, _ = _one_reference(spec, where, cell, sec, offset, variables[0], points)
            b.element(int(section_id), [(ref, 1.0, None)])
    b.node_ids.append(cell.raw_id)
    b.counts.append(len(b.element_ids) - n0)


def build_local_report(spec: ReportSpec, where: str, populations: list, cells_of,
                       catalog: MechanismCatalog, entries_of=None) -> LocalReport:
    """``populations``: [(name, offset, local raw ids in the report, ascending)];
    ``cells_of(name, raw)`` gives the Cell; ``entries_of(raw)`` the compartment-set entries
    [(section_id, offset)] of a node."""
    variables = check_variables(spec, catalog, where)
    points = PointCache()
    blocks, refs, zero_at_start = [], [], []
    rows, cols, factors = [], [], []
    n_elem = 0
    for name, offset, raw_ids in populations:
        b = _Builder()
        for raw in raw_ids:
            build_cell(b, spec, where, cells_of(name, int(raw)), variables, points,
                       entries_of(int(raw)) if entries_of else None)
        blocks.append(PopulationBlock(name, offset, np.asarray(b.node_ids, np.uint64),
                                      np.asarray(b.counts, np.int64),
                                      np.asarray(b.element_ids, np.uint32)))
        rows += [r + n_elem for r in b.rows]
        cols += [c + len(refs) for c in b.cols]
        factors += b.factors
        zero_at_start += [c + len(refs) for c in b.zero_at_start]
        refs += b.refs
        n_elem += len(b.element_ids)
    combine = None
    if spec.type == "summation":
        from scipy.sparse import csr_matrix
        combine = csr_matrix((np.asarray(factors, float), (np.asarray(rows, np.int64),
                                                            np.asarray(cols, np.int64))),
                             shape=(n_elem, len(refs)))
        combine.sort_indices()
    return LocalReport(spec, blocks, refs, combine, np.asarray(zero_at_start, np.int64))


__all__ = ["LocalReport", "PopulationBlock", "build_local_report", "check_variables"]
