"""The model in NEURON: what a run built, and the build steps that make it from the plan.

``Model`` holds every NEURON object the run keeps alive (cells, synapses, NetCons, inputs,
reports, the spike recorders) and the build figures. The steps take the plan (decisions), the
runtime (NEURON and MPI) and the model, in the order ``pipeline.py`` calls them:

    build_cells -> connect -> add_inputs -> apply_modifications   (then reports, initialise)

A step never re-reads the configs: every choice comes from ``plan``. ``--modelbuilding-steps``
builds a slice of the plan's cells at a time into a fresh ``Model`` (``local`` argument).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from dataclasses import dataclass, field

import numpy as np

from .circuit import cells as cell_build
from .circuit.modifications import apply_modifications as apply_modification_list
from .circuit.nodes import read_local_attributes
from .circuit.point_neurons import (
    EXP2SYN_COLUMNS,
    POINT_EDGE_TYPES,
    PointSynapseBuilder,
    instantiate_point_population,
)
from .connectivity.edges import read_synapses
from .connectivity.gap_junctions import GAP_COLUMNS, GapJunctionBuilder, simulated_sources
from .connectivity.minis import MinisBuilder
from .connectivity.neuromodulation import NEUROMOD_COLUMNS, NeuromodulationBuilder
from .connectivity.replay import ReplayBuilder, read_replay_inputs
from .connectivity.synapses import SynapseBuilder, configure_synapses
from .errors import CircuitError, MechanismError
from .parallel import allsum
from .progress import Counter
from .stimuli import apply_inputs

log = logging.getLogger(__name__)

#: edge population types the driver builds
SUPPORTED_EDGE_TYPES = ("chemical", "electrical", "neuromodulatory", *POINT_EDGE_TYPES)


@dataclass
class Model:
    """What one rank built (see the module doc)."""

    populations: dict                      # the plan's populations, local slice + attributes
    cells: dict = field(default_factory=dict)             # gid -> circuit.cells.Cell
    synapse_builder: object = None
    replay_builder: object = None
    minis: object = None
    point_synapses: object = None
    gap_junctions: object = None
    neuromodulation: object = None
    stimuli: list = field(default_factory=list)
    reports: object = None                 # reports.ReportSet
    core: object = None                    # engine.coreneuron_engine.CoreNeuronEngine
    checkpoints: object = None             # engine.checkpoint.Checkpointing
    spike_t: object = None                 # hoc Vectors of pc.spike_record
    spike_gid: object = None
    n_local_synapses: int = 0
    n_gap_junctions: int = 0
    cell_build_seconds: float = 0.0
    synapse_build_seconds: float = 0.0
    modification_counts: tuple = ()


def new_model(plan, gids: np.ndarray | None = None) -> Model:
    """An empty model of this rank's cells, or of the simulated cells ``gids`` (a slice of
    ``--modelbuilding-steps``, the dry run's samples), with the node attributes its build
    needs read in bulk."""
    populations = {}
    for name, p in plan.populations.items():
        if p.is_virtual:
            populations[name] = p
            continue
        raw = p.local_raw if gids is None else p.selected[np.isin(p.selected + p.offset, gids)]
        q = dataclasses.replace(p, local_raw=raw, attrs={})
        read_local_attributes(q, plan.checked.input_needs.get(name, ()))
        populations[name] = q
    return Model(populations=populations)


# ---- cells -------------------------------------------------------------------------------------
def build_cells(plan, rt, model: Model) -> None:
    """Instantiate this rank's cells from their templates (contract §2)."""
    loader = cell_build.TemplateLoader(rt.h)
    t0 = time.perf_counter()
    pops = [p for p in model.populations.values() if not p.is_virtual]
    counter = Counter("Cells (rank 0)", sum(len(p.local_raw) for p in pops),
                      enabled=plan.rank == 0)
    for p in pops:
        _load_templates(loader, p)
        instantiate = instantiate_point_population if p.info.type == "point_process" else \
            cell_build.instantiate_population   # point neurons have no morphology
        for cell in instantiate(rt.h, rt.pc, p, plan.settings, loader):
            model.cells[cell.gid] = cell
        counter.add(len(p.local_raw))
    counter.done()
    model.cell_build_seconds = time.perf_counter() - t0


def _load_templates(loader, p) -> None:
    """Load this rank's templates first, naming the first cell that needs a failing one."""
    names = cell_build.template_names(p) if "model_template" in p.attrs else []
    first: dict = {}
    for i, name in enumerate(names):
        first.setdefault(name, i)
    for name, i in first.items():
        try:
            try:
                loader.load(p.info.emodels_dir, name)
            except RuntimeError as exc:  # a hoc error while reading the template file
                raise CircuitError(f"{os.path.join(p.info.emodels_dir, name + '.hoc')}: hoc "
                                   f"error while loading template '{name}' (NEURON's message "
                                   f"is printed above): {exc}") from exc
        except (CircuitError, MechanismError) as exc:
            raw = int(p.local_raw[i])
            morph = os.path.join(p.info.morphologies_dir,
                                 f"{p.attrs['morphology'][i]}.{p.info.morphology_ext}") \
                if "morphology" in p.attrs else "none (point neuron)"
            raise type(exc)(f"{exc}\n  first cell needing it: gid {raw + p.offset} (population "
                            f"'{p.name}', node {raw}), template '{name}', morphology "
                            f"{morph}") from exc


# ---- connectivity ------------------------------------------------------------------------------
def edge_order(plan) -> list:
    """Internal connectivity per population first, then projections (contract §1.3)."""
    edge_pops = plan.settings.edge_populations
    internal, seen = [], set()
    for name in plan.populations:
        for ep in edge_pops:
            if (ep.source == ep.target == name and ep.type in ("chemical", "point_process")
                    or ep.name == f"{name}__{name}__chemical") and name not in seen:
                internal.append(ep)
                seen.add(name)
    return internal + [ep for ep in edge_pops if ep not in internal]


def connect(plan, rt, model: Model) -> None:
    """Synapses, NetCons, gap junctions, minis and replay of this rank's cells."""
    h, pc, settings = rt.h, rt.pc, plan.settings
    pops = model.populations
    overrides = plan.checked.overrides
    instantiated = {n for n, p in pops.items() if not p.is_virtual}
    builder = SynapseBuilder(h, pc, settings, model.cells, instantiated) \
        if any(ep.type == "chemical" for ep in settings.edge_populations) else None
    replay_spikes = read_replay_inputs(settings, pops, plan.node_sets)
    options = plan.options   # checkpoints keep every gid-less source with its one synapse
    per_synapse = bool(options.save or options.restore or options.checkpoint_every)
    replay = ReplayBuilder(h, builder.nc_index if builder else {}, per_synapse)
    model.synapse_builder, model.replay_builder = builder, replay
    model.minis = MinisBuilder(h, settings, model.cells)   # spontaneous minis (contract §3.9)
    types = {ep.type for ep in settings.edge_populations}
    model.gap_junctions = GapJunctionBuilder(h, pc, model.cells, settings.circuit_path) \
        if "electrical" in types else None
    model.point_synapses = PointSynapseBuilder(h, pc, settings, model.cells, instantiated)
    neuromodulatory = []
    t0 = time.perf_counter()
    for ep in edge_order(plan):
        if ep.type not in SUPPORTED_EDGE_TYPES:
            log.warning("edge population %s of type %s is not supported yet: skipped",
                        ep.name, ep.type)
            continue
        target, source = pops.get(ep.target), pops.get(ep.source)
        if target is None or target.is_virtual or source is None:
            continue
        if ep.type == "neuromodulatory":   # acts on synapses: after all of them exist
            neuromodulatory.append((ep, target, source))
            continue
        if ep.type == "electrical":        # no overrides (contract §7)
            table = read_synapses(ep, target.local_raw, source.offset, target.offset,
                                  plan.dt, columns=GAP_COLUMNS)
            model.gap_junctions.build(simulated_sources(table, source.selected))
            continue
        if ep.type == "chemical":
            needed = [c for m in overrides.modoverrides(ep) for c in builder.helpers.load(m)]
            table = read_synapses(ep, target.local_raw, source.offset, target.offset,
                                  plan.dt, settings.conditions.extracellular_calcium,
                                  extra_columns=needed)
            table, conf = overrides.apply(table)   # overrides: creation + configure (contract §6.1)
            rows = builder.build(table, conf.weight_factor, conf.delay, helpers=conf.helper)
            model.minis.attach(table, rows, conf.spont_minis, conf.weight_factor)
        else:                              # point_process / Exp2Syn_synapse
            table = read_synapses(ep, target.local_raw, source.offset, target.offset,
                                  plan.dt, columns=EXP2SYN_COLUMNS, location_required=False)
            model.point_synapses.check_columns(table)
            table, conf = overrides.apply(table)
            rows = model.point_synapses.build(table, conf.weight_factor, conf.delay)
        configure_synapses(h, table, rows, conf)
        for stim in replay_spikes:
            if ep.source in stim.spikes:
                replay.attach(stim.name, table, rows, stim.spikes[ep.source], stim.delay,
                              weight_factor=conf.weight_factor, delay_override=conf.delay,
                              targets=stim.targets, sources=stim.source_ids(ep.source))
    if neuromodulatory:
        model.neuromodulation = NeuromodulationBuilder(
            h, model.cells, [builder.synapses if builder else [],
                             model.point_synapses.synapses], per_synapse)
        for ep, target, source in neuromodulatory:
            table = read_synapses(ep, target.local_raw, source.offset, target.offset,
                                  plan.dt, columns=NEUROMOD_COLUMNS)
            table, conf = overrides.apply(table)
            model.neuromodulation.build(table, conf, replay_spikes)
    model.synapse_build_seconds = time.perf_counter() - t0
    model.n_local_synapses = (len(builder.synapses) if builder else 0) + \
        len(model.point_synapses.synapses)


def add_inputs(plan, rt, model: Model) -> None:
    """The config's inputs on this rank's cells (after the synapses: contract §4)."""
    model.stimuli = apply_inputs(rt.h, plan.settings, plan.node_sets, plan.populations,
                                 model.cells)


def connect_gap_junctions(plan, rt, model: Model) -> None:
    """Collective: gap-junction ids are checked and connected across ranks."""
    model.n_gap_junctions = model.gap_junctions.connect(rt.comm) if model.gap_junctions else 0


def apply_modifications(plan, rt, model: Model) -> None:
    """``conditions.modifications`` on this rank's cells (counts kept for the log)."""
    model.modification_counts = apply_modification_list(
        rt.h, list(plan.checked.modifications), model.cells, plan.node_sets, plan.settings,
        model.populations)


def build(plan, rt, model: Model) -> None:
    """Cells, connectivity, inputs, modifications: the whole model of this rank."""
    with rt.phase("build"):
        build_cells(plan, rt, model)
    n_cells = allsum(rt.comm, len(model.cells))
    log.info("Cells built: %d in %.2f s (rank 0)", n_cells, model.cell_build_seconds)
    rt.timings["build/cells"] = model.cell_build_seconds
    with rt.phase("build"):
        connect(plan, rt, model)
        add_inputs(plan, rt, model)
    with rt.phase("build"):   # junction ids agreed on all ranks; modifications
        connect_gap_junctions(plan, rt, model)
        apply_modifications(plan, rt, model)


__all__ = ["Model", "SUPPORTED_EDGE_TYPES", "add_inputs", "apply_modifications", "build",
           "build_cells", "connect", "connect_gap_junctions", "edge_order", "new_model"]
