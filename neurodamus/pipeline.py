"""One run, as a pipeline of public steps over one plan (docs/architecture.md):

    load + check + plan -> open outputs -> build (cells, connect, inputs, modifications)
        -> reports -> initialise -> simulate -> write outputs

Every variant of a run composes the same steps and ends in the same output tail
(``finish``: spikes, run summary, run record, SUCCESS marker):

* a plain run (NEURON, or CoreNEURON in memory or through files): ``simulate_model``;
* ``--dry-run``: the plan, then ``tools/dryrun.py`` samples cells (no output tail);
* ``--build-model=OFF`` (or AUTO with a model on disk): CoreNEURON simulates the written model
  (``coreneuron_engine.simulate_written_model``);
* ``--modelbuilding-steps=N``: ``engine/build_steps.py`` builds and writes the model slice by
  slice, then CoreNEURON simulates it;
* ``--simulate-model=OFF``: the model is built and written, nothing is simulated.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from pathlib import Path

import numpy as np

from . import allocator, launch, logs, provenance
from .circuit.modifications import report_modifications
from .config import RunOptions
from .engine import build_steps, checkpoint, coreneuron_engine, neuron_engine, summary
from .engine.outcome import Outcome
from .errors import ConfigError
from .model import Model, build, new_model
from .parallel import allsum, gather
from .plan import RunPlan, make_plan
from .progress import Progress
from .reports import ReportSet
from .reports.spikes import gather_spikes, write_spikes
from .runtime import Runtime, process_start_time, start
from .subnormals import flush_subnormals
from .tools import cellstate, dryrun

log = logging.getLogger(__name__)


# ---- the steps ---------------------------------------------------------------------------------
def remove_stale_marker(config_path) -> None:
    """The SUCCESS marker of a previous run goes first, even if the config cannot be read."""
    if launch.launcher_rank() == 0:
        with contextlib.suppress(OSError):
            Path(str(config_path) + ".SUCCESS").unlink()


def load(config_path, options: RunOptions, rt: Runtime) -> RunPlan:
    """Check everything and make the plan (collective; no cell is built)."""
    with rt.phase("load"):
        return make_plan(config_path, options, rt)


def open_outputs(plan: RunPlan, rt: Runtime):
    """Rank 0 creates the output folder and the run record; every rank learns the outcome."""
    record = None
    with rt.phase("load"):
        if plan.rank == 0:
            folder = plan.outputs.folder
            try:
                folder.mkdir(parents=True, exist_ok=True)
                probe = folder / f".write-test-{os.getpid()}"
                probe.touch()
                probe.unlink()
            except OSError as exc:
                key = "--output-path" if plan.options.output_path else "output.output_dir"
                raise ConfigError(f"{plan.config_path}: {key}: cannot write to {folder}: "
                                  f"{exc.strerror}") from exc
            record = summary.RunRecord.begin(folder, plan.config_path, plan.outputs.files,
                                             plan.size)
    return record


def set_up_engine(plan: RunPlan, rt: Runtime, model: Model) -> None:
    """Mechanisms, NEURON's global settings and (CoreNEURON) the engine object."""
    origin = rt.load_mechanisms(plan.settings)
    log.info("Mechanisms: %s", origin)
    if plan.uses_coreneuron:
        model.core = coreneuron_engine.CoreNeuronEngine(plan.engine, plan.settings, rt.comm,
                                                        plan.options.verbose)
        model.core.build_model = plan.checked.build_model
        log.info("CoreNEURON library: %s", model.core.locate_library())
    neuron_engine.apply_run_settings(rt.h, plan.settings)
    neuron_engine.apply_mechanism_globals(rt.h, plan.settings)


def add_reports(plan: RunPlan, rt: Runtime, model: Model) -> None:
    """Reports agree on their file layouts: collectives, a phase of their own."""
    with rt.phase("build"):
        model.reports = ReportSet(plan, rt.h, rt.comm, model.cells, neuron_engine.CHUNK_MS,
                                  model.core.library if model.core is not None else None)


def initialise(plan: RunPlan, rt: Runtime, model: Model) -> bool:
    """Spike recording, engine preparation, finitialize, restore; CoreNEURON file mode writes
    the model. True when the run ends there (``--simulate-model=OFF``).

    Collective NEURON calls (set_maxstep, finitialize) get a phase of their own, so that a
    rank failing before them never leaves the others blocked inside them.
    """
    h, pc = rt.h, rt.pc
    model.checkpoints = checkpoint.Checkpointing(plan, rt, model)
    with rt.phase("init"):
        model.spike_t, model.spike_gid = h.Vector(), h.Vector()
        pc.spike_record(-1, model.spike_t, model.spike_gid)
        if model.core is not None:   # mechanism check, placeholder cell on empty ranks
            model.core.prepare(h, pc, plan.populations, len(model.cells))
        model.checkpoints.prepare_model(h)
        model.reports.start()
    with rt.phase("init"):
        neuron_engine.initialize(h, pc, compress_spikes=compressible_spikes(plan, model))
    with rt.phase("init"):
        if model.checkpoints.restore_dir is not None:
            model.checkpoints.restore(h, pc)
        build_only = model.core is not None and coreneuron_engine.after_init(plan, rt, model)
    if not build_only and plan.options.dump_cell_state:
        with rt.phase("init"):
            cellstate.dump_cells(plan, rt, model, plan.options.dump_cell_state)
    return build_only


def compressible_spikes(plan: RunPlan, model: Model) -> bool:
    """Compressed spike exchange sends times as whole steps of dt: exact for spikes found by
    threshold detection (always on the step grid), not for artificial cells, whose events fall
    anywhere (point neurons: their spikes would then depend on the rank count). NEURON engine
    only, and not with checkpoints."""
    artificial = any(p.info.type == "point_process" for p in plan.populations.values()
                     if not p.is_virtual)
    return model.core is None and not model.checkpoints.active and not artificial


def simulate(plan: RunPlan, rt: Runtime, model: Model) -> None:
    """The run loop: chunks of the solver, report flushes and progress between them."""
    progress = Progress("Simulated", plan.tstop, "ms",
                        enabled=plan.rank == 0 and not plan.options.verbose)

    def on_chunk(t):
        model.reports.flush(t)
        if plan.options.verbose:
            log.info("  t = %.1f ms", t)
        progress.update(t)

    t0 = time.perf_counter()

    def run_to(t, hook):   # periodic checkpoints split the run into segments
        if model.core is not None:   # CoreNEURON: chunks as long as the reports allow
            model.core.run(rt.h, rt.pc, t, hook, model.reports)
        else:
            neuron_engine.run(rt.h, model.reports.solver(rt.pc), t, hook)
    model.checkpoints.run(run_to, plan.tstop, on_chunk)
    progress.done()
    rt.timings["run"] = time.perf_counter() - t0


def close_model_outputs(plan: RunPlan, rt: Runtime, model: Model) -> None:
    """Checkpoint state, report files, checkpoint copies (every rank takes part)."""
    if model.checkpoints.save_dir is not None:
        with rt.phase("write"):
            model.checkpoints.save_state(rt.h, rt.pc)
    with rt.phase("write"):
        model.reports.close()


# ---- the variants ------------------------------------------------------------------------------
def simulate_model(plan: RunPlan, rt: Runtime) -> Outcome:
    """Build the whole model, then simulate it (NEURON, or CoreNEURON from NEURON's model)."""
    with rt.phase("build"):   # node columns read here: a bad one fails on all ranks at once
        model = new_model(plan)
        set_up_engine(plan, rt, model)
    startup = time.time() - process_start_time()
    build(plan, rt, model)
    report_modifications(rt.comm, list(plan.checked.modifications),
                         model.modification_counts)
    add_reports(plan, rt, model)
    n_synapses = allsum(rt.comm, model.n_local_synapses)
    log.info("Synapses built: %d in %.2f s (rank 0)", n_synapses, model.synapse_build_seconds)
    rt.timings["build/synapses"] = model.synapse_build_seconds
    built = dict(n_local_cells=len(model.cells), n_local_synapses=model.n_local_synapses,
                 cell_build_seconds=model.cell_build_seconds,
                 synapse_build_seconds=model.synapse_build_seconds, startup_seconds=startup,
                 balance=plan.balance.report(plan.size) if plan.balance else None)
    if initialise(plan, rt, model):
        model.core.cleanup()
        datpath = plan.engine.datpath
        return Outcome(simulated=False, record_facts={"coreneuron_input": str(datpath)},
                       last_line=f"CoreNEURON model kept in {datpath} (--simulate-model=OFF); "
                                 f"simulate it with --simulator=CORENEURON --build-model=OFF",
                       **built)
    simulate(plan, rt, model)
    close_model_outputs(plan, rt, model)
    times = np.asarray(model.spike_t.as_numpy(), dtype=float)
    gids = np.asarray(model.spike_gid.as_numpy(), dtype=np.int64)
    # checkpoint outputs and metadata (they copy the spikes file); CoreNEURON's files
    after = [model.checkpoints.finish] + ([model.core.cleanup] if model.core else [])
    return Outcome(simulated=True, times=times, gids=gids, after_spikes=after, **built)


def run(config_path, options: RunOptions) -> int:
    """The whole run (collective); 0 when every output is written."""
    remove_stale_marker(config_path)
    rt = start(options.debug)
    logs.configure(rt.rank, options.debug)
    plan = load(config_path, options, rt)
    if options.dry_run:   # sample each cell type, estimate memory, no run
        return dryrun.dry_run(plan, rt)
    record = open_outputs(plan, rt)
    with flush_subnormals(not options.keep_subnormals) as arithmetic:
        log.info("Subnormal numbers: %s", arithmetic)
        if plan.uses_coreneuron and not plan.checked.build_model:
            outcome = coreneuron_engine.simulate_written_model(plan, rt)
        elif plan.uses_coreneuron and options.modelbuilding_steps > 1:
            outcome = build_steps.build_in_steps(plan, rt)
        else:
            outcome = simulate_model(plan, rt)
    outcome.record_facts = {**(outcome.record_facts or {}), "subnormals": arithmetic}
    finish(plan, rt, record, outcome)
    return 0


# ---- the one output tail -----------------------------------------------------------------------
def finish(plan: RunPlan, rt: Runtime, record, outcome: Outcome) -> None:
    """Spikes and populations_offset.dat, the run summary, the run record, the SUCCESS marker."""
    counts = {}
    with rt.phase("write"):
        if outcome.simulated:
            counts = write_spike_outputs(plan, rt, outcome)
        for step in outcome.after_spikes:
            step()
    rows = summary.gather_summary(rt.comm, rt.timings, {"cells": outcome.n_local_cells,
                                                        "synapses": outcome.n_local_synapses})
    builds = gather(rt.comm, (outcome.cell_build_seconds, outcome.synapse_build_seconds))
    n_synapses = allsum(rt.comm, outcome.n_local_synapses)
    if plan.rank != 0:
        return
    n_cells = plan.simulated_cells
    provenance.write(plan.outputs.folder, provenance.collect(   # listed by the run record
        plan.settings, ranks=plan.size, engine="CORENEURON" if plan.uses_coreneuron else
        "NEURON", h=rt.h, mode=plan.options.provenance))
    if outcome.simulated:
        log.info("%s", summary.format_summary(rows, counts, plan.tstop, n_cells,
                                              time.time() - process_start_time(),
                                              allocator.active()))
        write_run_summary(plan, outcome, rows, builds, counts, n_synapses)
        record.complete(tstop=plan.tstop, dt=plan.dt, spikes_file=plan.outputs.spikes_file.name,
                        populations={n: {"cells": c, "spikes": counts.get(n, 0)}
                                     for n, c in n_cells.items()},
                        **(outcome.record_facts or {}))
    else:
        record.complete(tstop=plan.tstop, dt=plan.dt, simulated=False,
                        **(outcome.record_facts or {}))
    plan.outputs.success_marker.touch()
    last = outcome.last_line or (f"Spikes: {sum(counts.values())} written to "
                                 f"{plan.outputs.spikes_file}")
    log.info("\n%s", last)


def write_spike_outputs(plan: RunPlan, rt: Runtime, outcome: Outcome) -> dict:
    """The spikes file (rank 0 writes what every rank recorded) and populations_offset.dat."""
    counts = outcome.spike_counts or {}
    if outcome.times is not None:
        gathered = gather_spikes(rt.comm, outcome.times, outcome.gids)
    if plan.rank == 0:
        if outcome.times is not None:
            pops = [(p.name, p.offset, p.offset + p.size) for p in plan.populations.values()
                    if not p.is_virtual]
            counts = write_spikes(plan.outputs.spikes_file, *gathered, pops)
        if not plan.options.disable_reports:
            write_offsets_file(plan)
    return counts


def write_offsets_file(plan: RunPlan) -> None:
    pops = plan.populations.values()
    lines = [f"{p.name}::{p.offset}::{p.name}" for p in pops if not p.is_virtual]
    lines += [f"{p.name}::{p.offset}::virtual" for p in pops if p.is_virtual]
    summary.write_text_atomic(plan.outputs.folder / "populations_offset.dat",
                              "\n".join(lines) + "\n")


def write_run_summary(plan: RunPlan, outcome: Outcome, rows, builds, counts,
                      n_synapses: int) -> None:
    """Machine-readable figures of the run (benchmarks and tools read this file)."""
    data = {
        "ranks": plan.size,
        "cells": sum(plan.simulated_cells.values()),
        "synapses": n_synapses,
        "spikes": counts,
        "phases_max_s": {k: max(r[0].get(k, 0.0) for r in rows) for k in summary.PHASES},
        "cell_build_s": max(b[0] for b in builds),
        "synapse_build_s": max(b[1] for b in builds),
        "startup_s": outcome.startup_seconds,
        "peak_rss_mb": [r[1] for r in rows],
        "allocator": allocator.active(),   # rank 0's; every rank starts the same way
        "load_balance": outcome.balance or {"mode": "RoundRobin"},
    }
    summary.write_text_atomic(plan.outputs.folder / "run_summary.json",
                              json.dumps(data, indent=1) + "\n")


__all__ = ["add_reports", "close_model_outputs", "finish", "initialise", "load",
           "open_outputs", "remove_stale_marker", "run", "set_up_engine", "simulate",
           "simulate_model", "write_offsets_file", "write_spike_outputs"]
