"""One run: settings -> plan -> build -> run -> outputs (see docs/architecture)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import allocator, launch
from .circuit import balance
from .circuit import cells as cell_build
from .circuit.modifications import apply_modifications, parse_modifications, report_modifications
from .circuit.nodes import (
    NodeSetResolver,
    distribute_nodes,
    open_population,
    read_local_attributes,
    select_nodes,
)
from .circuit.point_neurons import EXP2SYN_COLUMNS, POINT_EDGE_TYPES, PointSynapseBuilder
from .config import RunOptions, load_settings
from .connectivity.edges import read_synapses
from .connectivity.gap_junctions import GAP_COLUMNS, GapJunctionBuilder, simulated_sources
from .connectivity.minis import MinisBuilder
from .connectivity.neuromodulation import NEUROMOD_COLUMNS, NeuromodulationBuilder
from .connectivity.overrides import plan_overrides
from .connectivity.replay import ReplayBuilder, read_replay_inputs
from .connectivity.synapses import SynapseBuilder, configure_synapses
from .engine import build_steps, checkpoint, coreneuron_engine, neuron_engine, summary
from .errors import CircuitError, ConfigError, MechanismError
from .parallel import Phase, RunFailed
from .progress import Counter, Progress
from .reports import ReportSet, explain_config_error
from .reports.spikes import gather_spikes, write_spikes
from .stimuli import apply_inputs, check_inputs, explain_input_error

log = logging.getLogger(__name__)


@dataclass
class InputContext:
    """What input builders see: NEURON, settings, this rank's cells, node-set resolution."""

    h: object
    settings: object
    cells: dict
    populations: dict
    _cache: dict = field(default_factory=dict)

    def node_set_gids(self, node_set: str) -> np.ndarray:
        if node_set not in self._cache:
            parts = []
            for pop_nodes in self.populations.values():
                if pop_nodes.is_virtual:
                    continue
                pop = open_population(pop_nodes.info)
                sel = self.settings.node_sets.materialize(node_set, pop)
                parts.append(np.asarray(sel.flatten(), dtype=np.int64) + pop_nodes.offset)
            self._cache[node_set] = np.sort(np.concatenate(parts)) if parts else \
                np.zeros(0, np.int64)
        return self._cache[node_set]


class Simulation:
    def __init__(self, config_path, options: RunOptions, out=print):
        self.config_path = config_path
        self.options = options
        self.out = out
        self.timings: dict[str, float] = {}

    def say(self, text):
        if self.rank == 0:
            self.out(text)

    @contextlib.contextmanager
    def phase(self, name):
        """A ``parallel.Phase``; a rank that fails in it ends the job if the others cannot agree."""
        watchdog = None
        try:
            with Phase(self.comm, name, self.timings, self.options.debug):
                try:
                    yield
                except Exception as exc:
                    if not isinstance(exc, RunFailed):
                        watchdog = launch.FailureWatchdog(self.comm, str(exc))
                    raise
        finally:
            if watchdog is not None:
                watchdog.cancel()

    @staticmethod
    def _check_run_values(settings):
        """Values the run loop cannot work with (a dt <= 0 would never end)."""
        run = settings.run
        if not run.dt > 0:
            raise ConfigError(f"{settings.config_path}: run.dt: must be > 0, got {run.dt}")
        if not run.tstop >= 0:
            raise ConfigError(f"{settings.config_path}: run.tstop: must be >= 0, got "
                              f"{run.tstop}")

    def _remove_stale_marker(self):
        """The SUCCESS marker of a previous run goes first, even if the config cannot be read."""
        if launch.launcher_rank() == 0:
            marker = Path(str(self.config_path) + ".SUCCESS")
            with contextlib.suppress(OSError):
                marker.unlink()

    # -------------------------------------------------------------------------------------
    def run(self) -> int:
        self._remove_stale_marker()
        h, pc, comm = launch.start_mpi_and_neuron()
        self.h, self.pc, self.comm = h, pc, comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        with self.phase("load"):
            try:
                self.settings = settings = load_settings(self.config_path, self.options)
            except ConfigError as exc:  # reports: name the report and key libsonata refused
                raise explain_config_error(self.config_path, exc) or \
                    explain_input_error(self.config_path, exc) or exc  # inputs: same, per key
            for w in settings.warnings:
                self.say(f"WARNING: {w}")
            self._check_run_values(settings)
            self.populations = select_nodes(settings)
            # issue 9: WholeCell / Memory give a gid -> rank map (None for RoundRobin)
            self.balance = balance.assign(self)
            distribute_nodes(self.populations, self.rank, self.size, self.options.lb_mode,
                             self.balance.ranks if self.balance else None)
            self.model_slices = balance.build_slices(self)  # --modelbuilding-steps
            # inputs: check every block now; learn which extra node attributes they read
            input_needs = check_inputs(settings, self.populations)
            for p in self.populations.values():
                read_local_attributes(p, input_needs.get(p.name, ()))
            self._plan_circuit_features()
            # issue 5: the engine (None = NEURON) and --save / --restore, checked up front
            self.core = coreneuron_engine.setup(self)
            self.checkpoints = checkpoint.Checkpointing(self)
            self.checkpoints.check()
        if self.options.dry_run:  # issue 9: sample each cell type, estimate memory, no run
            from .tools.dryrun import dry_run
            return dry_run(self)
        self._prepare_output()
        if self.core is not None and not self.core.build_model:  # issue 5: model on disk
            return coreneuron_engine.simulate_written_model(self)
        if build_steps.applies(self):  # issue 9: --modelbuilding-steps=N with CoreNEURON
            return build_steps.build_in_steps(self)
        with self.phase("build"):
            # issue 9: a cost-based --lb-mode may have loaded them already
            origin = getattr(self, "mechanisms_origin", None) or launch.load_mechanisms(
                h, settings.mechanisms_dir, comm, log=self.say,
                where=f"{settings.circuit_path}: components.mechanisms_dir",
                coreneuron=self.core is not None)
            self.say(f"Mechanisms: {origin}")
            if self.core is not None:   # issue 5: CoreNEURON's library, next to NEURON's
                self.say(f"CoreNEURON library: {self.core.locate_library()}")
            neuron_engine.apply_run_settings(h, settings)
            neuron_engine.apply_mechanism_globals(h, settings)
            self._build_cells()
        n_cells = self._allsum(len(self.cells))
        self.say(f"Cells built: {n_cells} in {self.cell_build_seconds:.2f} s (rank 0)")
        self.timings["build/cells"] = self.cell_build_seconds
        with self.phase("build"):
            self._build_connectivity()
            self.stimuli = apply_inputs(InputContext(h, settings, self.cells, self.populations))
        with self.phase("build"):  # issue 7: junction ids checked on all ranks; modifications
            self.n_gap_junctions = self.gap_junctions.connect(comm) if self.gap_junctions else 0
            counts = apply_modifications(h, self.modifications, self.cells,
                                         self.node_set_resolver, settings, self.populations)
        report_modifications(comm, self.modifications, counts, self.say)
        with self.phase("build"):  # reports agree on file layouts: collectives, own phase
            self.reports = ReportSet(self)
        self.n_synapses = n_syn = self._allsum(self.n_local_synapses)
        self.say(f"Synapses built: {n_syn} in {self.synapse_build_seconds:.2f} s (rank 0)")
        self.timings["build/synapses"] = self.synapse_build_seconds
        # collective NEURON calls (set_maxstep, finitialize) get a phase of their own, so that
        # a rank failing before them never leaves the others blocked inside them
        with self.phase("init"):
            self.spike_t, self.spike_gid = h.Vector(), h.Vector()
            pc.spike_record(-1, self.spike_t, self.spike_gid)
            if self.core is not None:   # issue 5: mechanism check, placeholder on empty ranks
                self.core.prepare(h, pc, self.populations, len(self.cells))
            self.checkpoints.prepare_model(h)
            self.reports.start()
        with self.phase("init"):
            neuron_engine.initialize(h, pc)
        with self.phase("init"):   # issue 5: --restore; CoreNEURON file mode writes the model
            if self.checkpoints.restore_dir is not None:
                self.checkpoints.restore(h, pc)
            build_only = self.core is not None and coreneuron_engine.after_init(self)
        if build_only:
            return coreneuron_engine.finish_build_only(self)
        with self.phase("init"):
            if self.options.dump_cell_state:
                self._dump_cell_state()
        self.run_progress = Progress("Simulated", settings.run.tstop, "ms",
                                     enabled=self.rank == 0 and not self.options.verbose)
        t0 = time.perf_counter()
        # reports.solver(pc): pc itself, or one that flushes reports inside long chunks
        on_chunk = self.checkpoints.wrap_on_chunk(self._on_chunk, settings.run.tstop)
        if self.core is not None:   # issue 5: CoreNEURON, chunks as long as reports allow
            self.core.run(h, pc, settings.run.tstop, on_chunk, self.reports)
        else:
            neuron_engine.run(h, self.reports.solver(pc), settings.run.tstop, on_chunk)
        self.run_progress.done()
        self.timings["run"] = time.perf_counter() - t0
        if self.checkpoints.save_dir is not None:   # issue 5: --save, every rank its state
            with self.phase("write"):
                self.checkpoints.save_state(h, pc)
        with self.phase("write"):
            self.reports.close()
        with self.phase("write"):
            counts = self._write_outputs()
        with self.phase("write"):   # issue 5: checkpoint outputs + metadata; CoreNEURON files
            self.checkpoints.finish()
            if self.core is not None:
                self.core.cleanup()
        rows = summary.gather_summary(comm, self.timings, {"cells": len(self.cells),
                                                           "synapses": self.n_local_synapses})
        build = (self.cell_build_seconds, self.synapse_build_seconds)
        builds = comm.gather(build, root=0) if self.size > 1 else [build]
        if self.rank == 0:
            n_cells = {n: len(p.selected) for n, p in self.populations.items()
                       if not p.is_virtual}
            self.out(summary.format_summary(rows, counts, settings.run.tstop, n_cells,
                                            time.time() - _process_start_time(),
                                            allocator.active()))
            self._write_run_summary(rows, builds, counts)
            # every rank closed its outputs (the write phases agreed): record, then SUCCESS
            self.record.complete(tstop=settings.run.tstop, dt=settings.run.dt,
                                 spikes_file=settings.spikes_file.name,
                                 populations={n: {"cells": c, "spikes": counts.get(n, 0)}
                                              for n, c in n_cells.items()})
            settings.success_marker.touch()
            total = sum(counts.values())
            self.out(f"\nSpikes: {total} written to {settings.spikes_file}")
        return 0

    # -------------------------------------------------------------------------------------
    def _prepare_output(self):
        """Rank 0 creates the output folder; every rank learns the outcome."""
        with self.phase("load"):
            if self.rank == 0:
                out = self.settings.output_dir
                try:
                    out.mkdir(parents=True, exist_ok=True)
                    probe = out / f".write-test-{os.getpid()}"
                    probe.touch()
                    probe.unlink()
                except OSError as exc:
                    key = "--output-path" if self.options.output_path else "output.output_dir"
                    raise ConfigError(f"{self.settings.config_path}: {key}: cannot "
                                      f"write to {out}: {exc.strerror}") from exc
                self.record = summary.RunRecord.begin(out, self.config_path,
                                                      self._planned_outputs(), self.size,
                                                      log=self.out)

    def _planned_outputs(self) -> list[str]:
        """Names of the files this run writes into the output folder."""
        settings = self.settings
        names = [settings.spikes_file.name, "populations_offset.dat"]
        if not self.options.disable_reports:
            for name in settings.sim.list_report_names:
                file_name = os.path.basename(settings.sim.report(name).file_name or name)
                names.append(file_name if file_name.endswith(".h5") else file_name + ".h5")
        names += [f"cellstate_{gid}.json" for gid in self.options.dump_cell_state]
        return names

    def _build_cells(self):
        h, pc = self.h, self.pc
        loader = cell_build.TemplateLoader(h)
        self.cells = {}
        self.startup_seconds = time.time() - _process_start_time()
        t0 = time.perf_counter()
        pops = [p for p in self.populations.values() if not p.is_virtual]
        counter = Counter("Cells (rank 0)", sum(len(p.local_raw) for p in pops),
                          enabled=self.rank == 0)
        for p in pops:
            self._load_templates(loader, p)
            for cell in cell_build.instantiate_population(h, pc, p, self.settings, loader):
                self.cells[cell.gid] = cell
            counter.add(len(p.local_raw))
        counter.done()
        self.cell_build_seconds = time.perf_counter() - t0

    @staticmethod
    def _load_templates(loader, p):
        """Load this rank's templates first, naming the first cell that needs a failing one."""
        names = cell_build.template_names(p) if "model_template" in p.attrs else []
        first = {}
        for i, name in enumerate(names):
            first.setdefault(name, i)
        for name, i in first.items():
            try:
                try:
                    loader.load(p.info.emodels_dir, name)
                except RuntimeError as exc:  # a hoc error while reading the template file
                    raise CircuitError(f"{os.path.join(p.info.emodels_dir, name + '.hoc')}: "
                                       f"hoc error while loading template '{name}' (NEURON's "
                                       f"message is printed above): {exc}") from exc
            except (CircuitError, MechanismError) as exc:
                raw = int(p.local_raw[i])
                morph = os.path.join(p.info.morphologies_dir,
                                     f"{p.attrs['morphology'][i]}.{p.info.morphology_ext}") \
                    if "morphology" in p.attrs else "none (point neuron)"   # issue 7
                raise type(exc)(f"{exc}\n  first cell needing it: gid {raw + p.offset} "
                                f"(population '{p.name}', node {raw}), template '{name}', "
                                f"morphology {morph}") from exc

    def _allsum(self, value):
        return self.comm.allreduce(value) if self.size > 1 else value

    def _edge_order(self):
        """Internal connectivity per population first, then projections (§1.3)."""
        pops = self.populations
        internal, projections, seen = [], [], set()
        for name in pops:
            for ep in self.settings.edge_populations:
                if ep.source == ep.target == name and ep.type in ("chemical", "point_process") \
                        or ep.name == f"{name}__{name}__chemical":
                    if name not in seen:
                        internal.append(ep)
                        seen.add(name)
        for ep in self.settings.edge_populations:
            if ep not in internal:
                projections.append(ep)
        return internal + projections

    def _build_connectivity(self):
        h, pc, settings = self.h, self.pc, self.settings
        instantiated = {n for n, p in self.populations.items() if not p.is_virtual}
        builder = SynapseBuilder(h, pc, settings, self.cells, instantiated) \
            if any(ep.type == "chemical" for ep in settings.edge_populations) else None
        replay_spikes = self._read_replay_files()
        replay = ReplayBuilder(h, builder.nc_index if builder else {})
        self.synapse_builder, self.replay_builder = builder, replay
        self.minis = MinisBuilder(h, settings, self.cells)  # spontaneous minis (§3.9)
        types = {ep.type for ep in settings.edge_populations}
        # issue 7: gap junctions, point-neuron edges, neuromodulation (built last)
        self.gap_junctions = GapJunctionBuilder(h, pc, self.cells, settings.circuit_path) \
            if "electrical" in types else None
        self.point_synapses = PointSynapseBuilder(h, pc, settings, self.cells, instantiated)
        neuromodulatory = []
        plan = self.override_plan
        t0 = time.perf_counter()
        for ep in self._edge_order():
            if ep.type not in ("chemical", "electrical", "neuromodulatory", *POINT_EDGE_TYPES):
                if self.rank == 0:
                    log.warning("edge population %s of type %s is not supported yet: skipped",
                                ep.name, ep.type)
                continue
            target = self.populations.get(ep.target)
            source = self.populations.get(ep.source)
            if target is None or target.is_virtual or source is None:
                continue
            if ep.type == "neuromodulatory":   # acts on synapses: after all of them exist
                neuromodulatory.append((ep, target, source))
                continue
            if ep.type == "electrical":        # no overrides (§7)
                table = read_synapses(ep, target.local_raw, source.offset, target.offset,
                                      settings.run.dt, columns=GAP_COLUMNS)
                self.gap_junctions.build(simulated_sources(table, source.selected))
                continue
            if ep.type == "chemical":
                needed = [c for m in plan.modoverrides(ep) for c in builder.helpers.load(m)]
                table = read_synapses(ep, target.local_raw, source.offset, target.offset,
                                      settings.run.dt, settings.conditions.extracellular_calcium,
                                      extra_columns=needed)
                table, conf = plan.apply(table)   # overrides: creation + configure (§6.1)
                rows = builder.build(table, conf.weight_factor, conf.delay, helpers=conf.helper)
                self.minis.attach(table, rows, conf.spont_minis, conf.weight_factor)
            else:                              # point_process / Exp2Syn_synapse
                table = read_synapses(ep, target.local_raw, source.offset, target.offset,
                                      settings.run.dt, columns=EXP2SYN_COLUMNS,
                                      location_required=False)
                self.point_synapses.check_columns(table)
                table, conf = plan.apply(table)
                rows = self.point_synapses.build(table, conf.weight_factor, conf.delay)
            configure_synapses(h, table, rows, conf)
            for stim in replay_spikes:
                if ep.source in stim.spikes:
                    replay.attach(stim.name, table, rows, stim.spikes[ep.source], stim.delay,
                                  weight_factor=conf.weight_factor, delay_override=conf.delay,
                                  targets=stim.targets, sources=stim.source_ids(ep.source))
        if neuromodulatory:
            self.neuromodulation = NeuromodulationBuilder(
                h, self.cells, [builder.synapses if builder else [],
                                self.point_synapses.synapses])
            for ep, target, source in neuromodulatory:
                table = read_synapses(ep, target.local_raw, source.offset, target.offset,
                                      settings.run.dt, columns=NEUROMOD_COLUMNS)
                table, conf = plan.apply(table)
                self.neuromodulation.build(table, conf, replay_spikes)
        self.synapse_build_seconds = time.perf_counter() - t0
        self.n_local_synapses = (len(builder.synapses) if builder else 0) + \
            len(self.point_synapses.synapses)

    def _plan_circuit_features(self):
        """Connection overrides and modifications, parsed and checked before NEURON (issue 7);
        the override chains are printed once."""
        settings = self.settings
        self.node_set_resolver = NodeSetResolver(settings.node_sets, self.populations)
        self.override_plan, warnings = plan_overrides(settings, self.node_set_resolver)
        self.modifications = parse_modifications(settings)
        for w in warnings:
            self.say(f"WARNING: {w}")
        for line in self.override_plan.chain_lines(settings.edge_populations):
            self.say(line)

    def _read_replay_files(self):
        """The ``synapse_replay`` inputs, checked, with their spikes (connectivity/replay.py)."""
        return read_replay_inputs(self.settings, self.populations)

    def _on_chunk(self, t):
        self.reports.flush(t)
        if self.options.verbose:
            self.say(f"  t = {t:.1f} ms")
        self.run_progress.update(t)

    def _write_outputs(self):
        settings = self.settings
        times = np.asarray(self.spike_t.as_numpy(), dtype=float)
        gids = np.asarray(self.spike_gid.as_numpy(), dtype=np.int64)
        gathered = gather_spikes(self.comm, times, gids)
        counts = {}
        if self.rank == 0:
            pops = [(p.name, p.offset, p.offset + p.size) for p in self.populations.values()
                    if not p.is_virtual]
            counts = write_spikes(settings.spikes_file, *gathered, pops)
            if not self.options.disable_reports:
                self._write_offsets_file()
        return counts

    def _write_offsets_file(self):
        lines = []
        for p in self.populations.values():
            if not p.is_virtual:
                lines.append(f"{p.name}::{p.offset}::{p.name}")
        for p in self.populations.values():
            if p.is_virtual:
                lines.append(f"{p.name}::{p.offset}::virtual")
        summary.write_text_atomic(self.settings.output_dir / "populations_offset.dat",
                                  "\n".join(lines) + "\n")

    def _write_run_summary(self, rows, builds, counts):
        """Machine-readable figures of the run (benchmarks and tools read this file)."""
        data = {
            "ranks": self.size,
            "cells": sum(len(p.selected) for p in self.populations.values() if not p.is_virtual),
            "synapses": self.n_synapses,
            "spikes": counts,
            "phases_max_s": {k: max(r[0].get(k, 0.0) for r in rows) for k in summary.PHASES},
            "cell_build_s": max(b[0] for b in builds),
            "synapse_build_s": max(b[1] for b in builds),
            "startup_s": self.startup_seconds,
            "peak_rss_mb": [r[1] for r in rows],
            "allocator": allocator.active(),   # rank 0's; every rank starts the same way
            # issue 9: the mode, max/mean load per rank and the round-robin figure to compare
            "load_balance": (self.balance.report(self.size) if getattr(self, "balance", None)
                             else {"mode": "RoundRobin"}),
        }
        summary.write_text_atomic(self.settings.output_dir / "run_summary.json",
                                  json.dumps(data, indent=1) + "\n")

    def _dump_cell_state(self):
        from .tools.cellstate import dump_cells
        dump_cells(self, self.options.dump_cell_state)


def _process_start_time() -> float:
    import psutil

    return psutil.Process().create_time()


def run_simulation(config_path, options: RunOptions, out=print) -> int:
    return Simulation(config_path, options, out).run()


__all__ = ["run_simulation", "Simulation"]
