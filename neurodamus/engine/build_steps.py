"""``--modelbuilding-steps=N`` with CoreNEURON: build the model in N slices to cap peak memory.

Each rank builds its cells in N slices (``circuit/balance.py:build_slices``, about equal cost,
contiguous in gid order). A slice is built by the run's own code (cells, connectivity, inputs,
modifications), initialised, appended to the CoreNEURON input folder with
``pc.nrncore_write(folder, append)`` (one more cell group per rank in ``files.dat``) and then
freed (``pc.gid_clear()`` and every reference dropped) before the next slice. CoreNEURON then
loads all groups and runs stand-alone (the engine's ``simulate_written_model``); connections
between slices are resolved by gid when CoreNEURON loads the groups, so the spikes are those of
the one-step model. Peak memory is one slice of the NEURON model, or CoreNEURON's (much more
compact) copy of the whole model, whichever is larger.

Limits (checked before building): the written model carries no reports (the NEURON wheel's
CoreNEURON cannot write them itself), no checkpoints, no gap junctions (their transfer set-up
spans the whole model). With the NEURON engine the option only prints a warning: NEURON needs
the whole model in memory to simulate it.
"""

from __future__ import annotations

import gc
import shutil
import time

import numpy as np

from ..errors import ConfigError

#: attributes of the Simulation that hold one slice's NEURON objects
_MODEL_ATTRIBUTES = ("cells", "synapse_builder", "replay_builder", "minis", "point_synapses",
                     "gap_junctions", "neuromodulation", "stimuli")


def applies(sim) -> bool:
    """True when this run builds in steps: CoreNEURON engine and N > 1."""
    return getattr(sim, "core", None) is not None and \
        int(getattr(sim.options, "modelbuilding_steps", 1) or 1) > 1


def check(sim) -> None:
    """Refuse what a model written in steps cannot do (one message, every rank alike)."""
    settings, options = sim.settings, sim.options
    problems = []
    if settings.sim.list_report_names and not options.disable_reports:
        problems.append("reports (they need the model in NEURON; add --disable-reports)")
    checkpoints = getattr(sim, "checkpoints", None)
    if checkpoints is not None and (checkpoints.save_dir or checkpoints.restore_dir):
        problems.append("--save / --restore")
    if any(ep.type == "electrical" for ep in settings.edge_populations):
        problems.append("gap junctions (electrical edges)")
    if not sim.core.plan.simulate:
        pass   # --simulate-model=OFF: write the model only; fine
    if problems:
        raise ConfigError(f"--modelbuilding-steps={options.modelbuilding_steps} writes the "
                          f"model for CoreNEURON in slices, which cannot carry "
                          f"{'; '.join(problems)}")


def _local_gids(sim) -> np.ndarray:
    parts = [p.local_raw + p.offset for p in sim.populations.values() if not p.is_virtual]
    return np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64)


def _set_local(sim, gids: np.ndarray, all_local: dict) -> None:
    for name, p in sim.populations.items():
        if not p.is_virtual:
            raw = all_local[name]
            p.local_raw = raw[np.isin(raw + p.offset, gids)]


def _clear_model(sim) -> None:
    """Drop one slice: gids, cells, synapses, inputs; NEURON frees them with the last ref."""
    sim.pc.gid_clear()
    for name in _MODEL_ATTRIBUTES:
        if hasattr(sim, name):
            setattr(sim, name, {} if name == "cells" else None)
    if sim.core is not None:
        sim.core.placeholder = None
    gc.collect()


def build_in_steps(sim) -> int:
    """Build, write and free the model slice by slice, then let CoreNEURON simulate it."""
    from .. import launch
    from ..circuit.distribution import model_slices
    from ..circuit.modifications import apply_modifications
    from ..circuit.nodes import read_local_attributes
    from ..stimuli import apply_inputs, check_inputs
    from . import coreneuron_engine, neuron_engine, summary

    h, pc, comm, settings = sim.h, sim.pc, sim.comm, sim.settings
    core = sim.core
    with sim.phase("load"):
        check(sim)
    with sim.phase("build"):
        origin = getattr(sim, "mechanisms_origin", None) or launch.load_mechanisms(
            h, settings.mechanisms_dir, comm, log=sim.say,
            where=f"{settings.circuit_path}: components.mechanisms_dir", coreneuron=True)
        sim.say(f"Mechanisms: {origin}")
        sim.say(f"CoreNEURON library: {core.locate_library()}")
        neuron_engine.apply_run_settings(h, settings)
        neuron_engine.apply_mechanism_globals(h, settings)
        input_needs = check_inputs(settings, sim.populations)
        # every rank needs a cell in every slice (an empty group is CoreNEURON's weak spot)
        local = _local_gids(sim)
        fewest = comm.allreduce(len(local), op=_min()) if sim.size > 1 else len(local)
        steps = max(1, min(int(sim.options.modelbuilding_steps), fewest))
        costs = None
        if getattr(sim, "balance", None) is not None and len(local):
            costs = sim.balance.costs[np.searchsorted(sim.balance.gids, local)]
        slices = model_slices(local, steps, costs)
        all_local = {n: p.local_raw.copy() for n, p in sim.populations.items()
                     if not p.is_virtual}
        datpath = core.plan.datpath
        if sim.rank == 0:
            if datpath.exists():
                shutil.rmtree(datpath)
            datpath.mkdir(parents=True)
    if steps != sim.options.modelbuilding_steps:
        sim.say(f"Model building: {steps} step(s) instead of {sim.options.modelbuilding_steps} "
                f"(a rank has {fewest} cell(s))")

    n_cells = n_syn = 0
    cell_s = syn_s = write_s = 0.0
    peaks = []
    for k, gids in enumerate(slices):
        with sim.phase("build"):
            _set_local(sim, gids, all_local)
            for p in sim.populations.values():
                read_local_attributes(p, input_needs.get(p.name, ()))
            sim._build_cells()
            sim._build_connectivity()
            sim.stimuli = apply_inputs(_input_context(sim))
            apply_modifications(h, sim.modifications, sim.cells, sim.node_set_resolver,
                                settings, sim.populations)
            n_cells += len(sim.cells)
            n_syn += sim.n_local_synapses
            cell_s += sim.cell_build_seconds
            syn_s += sim.synapse_build_seconds
        with sim.phase("init"):
            core.prepare(h, pc, sim.populations, len(sim.cells))
        with sim.phase("init"):
            neuron_engine.initialize(h, pc)
        with sim.phase("init"):
            t0 = time.perf_counter()
            pc.nrncore_write(str(datpath), k > 0)
            write_s += time.perf_counter() - t0
        peaks.append(summary.peak_rss_mb())
        total = comm.allreduce(len(sim.cells)) if sim.size > 1 else len(sim.cells)
        sim.say(f"Model building step {k + 1}/{steps}: {total} cells written to {datpath} "
                f"(rank 0 peak memory {peaks[-1]:.0f} MB)")
        _clear_model(sim)
    sim.timings["init/write model"] = write_s
    sim.cell_build_seconds, sim.synapse_build_seconds = cell_s, syn_s
    sim.n_local_synapses = n_syn
    sim.n_synapses = comm.allreduce(n_syn) if sim.size > 1 else n_syn
    sim.n_local_cells = n_cells
    with sim.phase("init"):
        if sim.rank == 0:
            import json

            identity = dict(coreneuron_engine.model_identity(settings, sim.populations,
                                                             sim.size),
                            library=str(core.library), modelbuilding_steps=steps,
                            written=time.strftime("%Y-%m-%dT%H:%M:%S"))
            (datpath / coreneuron_engine.MODEL_MARKER).write_text(
                json.dumps(identity, indent=1) + "\n")
    sim.say(f"CoreNEURON model written in {steps} step(s) to {datpath} "
            f"({write_s:.2f} s writing, rank 0)")
    if not core.plan.simulate:
        return coreneuron_engine.finish_build_only(sim)
    code = coreneuron_engine.simulate_written_model(sim)
    _write_summary(sim)
    if sim.rank == 0 and not core.plan.keep_input:
        shutil.rmtree(datpath, ignore_errors=True)
    return code


def _input_context(sim):
    from ..simulation import InputContext

    return InputContext(sim.h, sim.settings, sim.cells, sim.populations)


def _min():
    from mpi4py import MPI

    return MPI.MIN


def _write_summary(sim) -> None:
    """run_summary.json as a one-step run writes it (tools and benchmarks read it)."""
    from . import summary

    counts_local = {"cells": getattr(sim, "n_local_cells", 0), "synapses": sim.n_local_synapses}
    rows = summary.gather_summary(sim.comm, sim.timings, counts_local)
    build = (sim.cell_build_seconds, sim.synapse_build_seconds)
    builds = sim.comm.gather(build, root=0) if sim.size > 1 else [build]
    if sim.rank == 0:
        counts = _spike_counts(sim.settings.spikes_file)
        if not hasattr(sim, "startup_seconds"):
            sim.startup_seconds = 0.0
        sim._write_run_summary(rows, builds, counts)


def _spike_counts(path) -> dict:
    import h5py

    try:
        with h5py.File(path, "r") as fd:
            return {pop: len(fd[f"spikes/{pop}/node_ids"]) for pop in fd.get("spikes", {})}
    except OSError:
        return {}


__all__ = ["applies", "build_in_steps", "check"]
