"""Instantiate biophysical cells from hoc emodel templates (the NEURON side of circuit/)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import libsonata
import numpy as np

from .. import paths
from ..errors import CircuitError, LaunchError, MechanismError
from . import morphology
from .node_checks import check_node_values
from .nodes import PopulationNodes, open_population, template_name
from .section_ids import SectionIds

_INSERT_RE = re.compile(r"\binsert\s+(\w+)")
_NEW_RE = re.compile(r"\bnew\s+(\w+)\s*\(")


@dataclass
class Cell:
    gid: int
    raw_id: int
    population: str
    template: str
    morphology: str
    hoc: object
    attrs: dict
    spike_detector: object = None
    _section_table: list | None = field(default=None, repr=False)
    _section_ids: SectionIds | None = field(default=None, repr=False)

    @property
    def section_ids(self) -> SectionIds:
        """Report / compartment-set section ids of this cell (contract §2.1(2)), built once."""
        if self._section_ids is None:
            self._section_ids = SectionIds(self.hoc)
        return self._section_ids

    def section_by_id(self, section_id: int):
        """Section for a SONATA ``afferent_section_id``: the v(0.0001) index (contract §2.1(1))."""
        if self._section_table is None and not hasattr(self.hoc, "nSecAll"):
            # point-neuron templates (point_neurons.py) have no index: id 0 is soma[0]
            soma = getattr(self.hoc, "soma", None) if hasattr(self.hoc, "soma") else None
            self._section_table = [soma[0]] if soma is not None else []
        if self._section_table is None:
            n = int(self.hoc.nSecAll)
            table = [None] * n
            for sec in self.hoc.all:
                idx = int(sec(0.0001).v)
                if idx < 0:
                    continue
                if idx >= n:
                    raise CircuitError(f"gid {self.gid}: section {sec.name()} stores index "
                                       f"{idx} >= nSecAll ({n})")
                table[idx] = sec
            self._section_table = table
        table = self._section_table
        return table[section_id] if 0 <= section_id < len(table) else None

    @property
    def n_section_ids(self) -> int:
        """How many ``afferent_section_id`` values the cell has (nSecAll; 1 for point
        neurons): ids below it may be missing only because the axon was replaced."""
        self.section_by_id(0)
        return len(self._section_table)


class TemplateLoader:
    """Loads each emodel template file once and checks its mechanisms are available."""

    def __init__(self, h):
        self.h = h
        self.loaded: dict[str, str] = {}
        self.needed_attributes: dict[str, list[str]] = {}
        # templates written for the established driver call morphio_read (h5 morphologies)
        if not h.name_declared("morphio_read"):
            hoc_file = paths.hoc_dir() / "morphio_read.hoc"
            if not (hoc_file.is_file() and h.load_file(str(hoc_file))):
                raise LaunchError(f"cannot load the driver's HOC file {hoc_file} (incomplete "
                                  f"installation? run 'neurodamus doctor')")

    def load(self, emodels_dir: str, name: str) -> None:
        if name in self.loaded:
            return
        h = self.h
        path = os.path.join(emodels_dir, name + ".hoc")
        if not os.path.isfile(path):
            raise CircuitError(f"Emodel template file not found: {path} (template '{name}', "
                               f"model_template 'hoc:{name}')")
        self._check_mechanisms(path, name)
        if not h.load_file(path):
            raise CircuitError(f"Could not load emodel template {path}")
        if not h.name_declared(name):
            raise CircuitError(f"{path} does not define a template named '{name}'")
        needed = []
        if h.name_declared(f"{name}_NeededAttributes") == 4:
            text = str(getattr(h, f"{name}_NeededAttributes"))
            needed = [a for a in text.split(";") if a]
        self.needed_attributes[name] = needed
        self.loaded[name] = path

    def _check_mechanisms(self, path: str, name: str) -> None:
        """A mechanism the template inserts must be in the loaded library: say which."""
        h = self.h
        with open(path, errors="replace") as fd:
            text = re.sub(r"//.*", "", fd.read())
        text = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
        known_density = set()
        mt = h.MechanismType(0)
        name_ref = h.ref("")
        for i in range(int(mt.count())):
            mt.select(i)
            mt.selected(name_ref)
            known_density.add(name_ref[0])
        for mech in sorted(set(_INSERT_RE.findall(text))):
            if mech not in known_density:
                raise MechanismError(f"Template '{name}' ({path}) inserts mechanism '{mech}', "
                                     f"which the loaded mechanism library does not provide")


def template_names(pop_nodes: PopulationNodes) -> list[str]:
    """Template name per local node from ``model_template`` (``hoc:T`` or plain ``T``)."""
    info = pop_nodes.info
    values = pop_nodes.attrs["model_template"]
    where = f"{info.nodes_file}: population '{info.name}': column model_template"
    if np.asarray(values).dtype.kind not in "OSU":
        raise CircuitError(f"{where} must hold strings such as 'hoc:MyTemplate', got "
                           f"{np.asarray(values).dtype}")
    names = []
    for raw, value in zip(pop_nodes.local_raw, values):
        try:
            names.append(template_name(value))
        except ValueError as exc:
            raise CircuitError(f"{where}: node {raw}: {exc}") from None
    return names


def load_templates(pop_nodes: PopulationNodes, loader: TemplateLoader):
    """Load the templates of this rank's cells; read the ``@dynamics`` columns they need.

    Returns (template name per local cell, {attribute: values per local cell}).
    """
    info = pop_nodes.info
    templates = template_names(pop_nodes)
    for name in sorted(set(templates)):
        loader.load(info.emodels_dir, name)
    needed = sorted({a for name in set(templates) for a in loader.needed_attributes[name]})
    if not needed:
        return templates, {}
    pop = open_population(info)
    missing = [a for a in needed if a not in pop.dynamics_attribute_names]
    if missing:
        raise CircuitError(f"{info.nodes_file}: population '{info.name}' lacks "
                           f"'@dynamics:{missing[0]}' needed by its template")
    sel = libsonata.Selection(pop_nodes.local_raw)
    return templates, {a: np.asarray(pop.get_dynamics_attribute(a, sel), dtype=float)
                       for a in needed}


def instantiate_population(h, pc, pop_nodes: PopulationNodes, settings, loader: TemplateLoader,
                           log=None) -> list[Cell]:
    """Create this rank's cells of one biophysical population (contract §2); point
    neurons: ``point_neurons.instantiate_point_population``."""
    info = pop_nodes.info
    attrs = pop_nodes.attrs
    ids = pop_nodes.local_raw
    if len(ids) == 0:
        return []
    check_node_values(pop_nodes)   # NaN/inf in the columns read
    templates, dyn_values = load_templates(pop_nodes, loader)

    keep_axon = settings.options.keep_axon
    default_extra = (400 if keep_axon else 0,)
    morph_dir = info.morphologies_dir
    ext = info.morphology_ext
    cells = []
    for i, raw in enumerate(ids):
        name = templates[i]
        morph_file = f"{attrs['morphology'][i]}.{ext}"
        gid = int(raw) + pop_nodes.offset
        morph_path = os.path.join(morph_dir, morph_file)
        if not morphology.morphology_exists(morph_path):   # a file or a container entry
            raise CircuitError(f"{info.nodes_file}: gid {gid} (population '{info.name}', node "
                               f"{raw}): morphology file not found: {morph_path}")
        need = loader.needed_attributes[name]
        problem = morphology.file_problem(morph_path)
        if problem:
            raise CircuitError(f"Template '{name}' for gid {gid} (population '{info.name}', "
                               f"node {raw}): morphology {morph_path} {problem}")
        extra = tuple(float(dyn_values[a][i]) for a in need) if need else default_extra
        morphology.last_error = None
        try:
            hoc_cell = getattr(h, name)(int(raw), morph_dir, morph_file, *extra)
        except Exception as exc:  # hoc errors arrive as RuntimeError
            reason = morphology.last_error or str(exc)
            raise CircuitError(f"Template '{name}' failed for gid {gid} (population "
                               f"'{info.name}', node {raw}, morphology {morph_path}): {reason}"
                               ) from exc
        cells.append(Cell(gid, int(raw), info.name, name, morph_path, hoc_cell,
                          {k: v[i] for k, v in attrs.items()}))
    _register(h, pc, cells, settings)
    return cells


def _register(h, pc, cells, settings) -> None:
    """After all cells exist: re_init_rng, spike detector, gid registration, gid field."""
    seed = settings.run.ionchannel_seed
    threshold = settings.run.spike_threshold
    location = settings.conditions.spike_location.name
    rank = int(pc.id())
    for cell in cells:  # ascending raw id
        hc = cell.hoc
        if hasattr(hc, "re_init_rng"):
            hc.re_init_rng(seed)
        if location == "AIS":
            sec, x = hc.axon[1], 0.5
        else:
            sec, x = hc.soma[0], 1.0
        nc = h.NetCon(sec(x)._ref_v, None, sec=sec)
        nc.threshold = threshold
        pc.set_gid2node(cell.gid, rank)
        pc.cell(cell.gid, nc)
        cell.spike_detector = nc
        hc.gid = cell.gid
