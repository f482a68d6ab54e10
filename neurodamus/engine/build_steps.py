"""``--modelbuilding-steps=N`` with CoreNEURON: build the model in N slices to cap peak memory.

Each rank builds its cells in N slices (``circuit/balance.py:build_slices``, made at plan
time: about equal cost, contiguous in gid order). A slice is built by the run's own steps
(``model.py``: cells, connectivity, inputs, modifications) into a fresh ``Model``,
initialised, appended to the CoreNEURON input folder with ``pc.nrncore_write(folder, append)``
(one more cell group per rank in ``files.dat``) and then freed (``pc.gid_clear()`` and the
model dropped) before the next slice. CoreNEURON then loads all groups and runs stand-alone
(``coreneuron_engine.simulate_written_model``); connections between slices are resolved by
gid when CoreNEURON loads the groups, so the spikes are those of the one-step model. Peak
memory is one slice of the NEURON model, or CoreNEURON's (much more compact) copy of the whole
model, whichever is larger.

Limits (checked before building): the written model carries no reports (the NEURON wheel's
CoreNEURON cannot write them itself), no checkpoints, no gap junctions (their transfer set-up
spans the whole model). With the NEURON engine the option only prints a warning: NEURON needs
the whole model in memory to simulate it.
"""

from __future__ import annotations

import gc
import json
import logging
import time

import numpy as np

from ..circuit.distribution import model_slices
from ..errors import ConfigError
from ..model import add_inputs, apply_modifications, build_cells, connect, new_model
from ..parallel import allmin, allsum
from . import core_options, coreneuron_engine, neuron_engine, summary
from .coreneuron_plan import MODEL_MARKER, model_identity
from .outcome import Outcome

log = logging.getLogger(__name__)


def check(settings, options) -> None:
    """Refuse what a model written in steps cannot do (one message, every rank alike)."""
    problems = []
    if settings.sim.list_report_names and not options.disable_reports:
        problems.append("reports (they need the model in NEURON; add --disable-reports)")
    if options.save or options.restore:
        problems.append("--save / --restore")
    if any(ep.type == "electrical" for ep in settings.edge_populations):
        problems.append("gap junctions (electrical edges)")
    if problems:
        raise ConfigError(f"--modelbuilding-steps={options.modelbuilding_steps} writes the "
                          f"model for CoreNEURON in slices, which cannot carry "
                          f"{'; '.join(problems)}")


def build_in_steps(plan, rt) -> Outcome:
    """Build, write and free the model slice by slice, then let CoreNEURON simulate it."""
    h, pc = rt.h, rt.pc
    core = coreneuron_engine.CoreNeuronEngine(plan.engine, plan.settings, rt.comm,
                                              plan.options.verbose)
    datpath = plan.engine.datpath
    with rt.phase("build"):
        log.info("Mechanisms: %s", rt.load_mechanisms(plan.settings))
        log.info("CoreNEURON library: %s", core.locate_library())
        neuron_engine.apply_run_settings(h, plan.settings)
        neuron_engine.apply_mechanism_globals(h, plan.settings)
        # every rank needs a cell in every slice (an empty group is CoreNEURON's weak spot)
        local = plan.local_gids()
        fewest = allmin(rt.comm, len(local))
        requested = int(plan.options.modelbuilding_steps)
        slices = list(plan.model_slices)
        if len(slices) > max(1, fewest):   # fewer steps, cut again by the same costs
            costs = plan.balance.costs[np.searchsorted(plan.balance.gids, local)] \
                if plan.balance is not None and len(local) else None
            slices = model_slices(local, max(1, fewest), costs)
    core.make_model_folder()   # on disk, or in /dev/shm (--enable-shm)
    steps = len(slices)
    if steps != requested:
        log.info("Model building: %d step(s) instead of %d (a rank has %d cell(s))", steps,
                 requested, fewest)
    n_cells = n_syn = 0
    cell_s = syn_s = write_s = 0.0
    for k, gids in enumerate(slices):
        model = new_model(plan, gids)
        with rt.phase("build"):
            build_cells(plan, rt, model)
            connect(plan, rt, model)
            add_inputs(plan, rt, model)
            apply_modifications(plan, rt, model)
            n_cells += len(model.cells)
            n_syn += model.n_local_synapses
            cell_s += model.cell_build_seconds
            syn_s += model.synapse_build_seconds
        with rt.phase("init"):
            core.prepare(h, pc, plan.populations, len(model.cells))
        with rt.phase("init"):
            neuron_engine.initialize(h, pc)
        with rt.phase("init"):
            t0 = time.perf_counter()
            pc.nrncore_write(str(datpath), k > 0)
            write_s += time.perf_counter() - t0
        total = allsum(rt.comm, len(model.cells))
        log.info("Model building step %d/%d: %d cells written to %s (rank 0 peak memory "
                 "%.0f MB)", k + 1, steps, total, datpath, summary.peak_rss_mb())
        # drop the slice: gids, cells, synapses, inputs; NEURON frees them with the last ref
        pc.gid_clear()
        core.placeholder = None
        del model
        gc.collect()
    rt.timings["init/write model"] = write_s
    with rt.phase("init"):
        if plan.rank == 0:
            identity = dict(model_identity(plan.settings, plan.populations, plan.size),
                            library=str(core.library), modelbuilding_steps=steps,
                            written=time.strftime("%Y-%m-%dT%H:%M:%S"))
            (datpath / MODEL_MARKER).write_text(json.dumps(identity, indent=1) + "\n")
    log.info("CoreNEURON model written in %d step(s) to %s (%.2f s writing, rank 0)", steps,
             datpath, write_s)
    built = dict(n_local_cells=n_cells, n_local_synapses=n_syn, cell_build_seconds=cell_s,
                 synapse_build_seconds=syn_s)
    if not plan.engine.simulate:
        core.cleanup()
        return Outcome(simulated=False, record_facts={"coreneuron_input": str(datpath)},
                       last_line=f"CoreNEURON model kept in {datpath} (--simulate-model=OFF); "
                                 f"simulate it with --simulator=CORENEURON --build-model=OFF",
                       **built)
    outcome = coreneuron_engine.simulate_written_model(plan, rt, core)
    if plan.rank == 0:   # the /dev/shm folder too, or the kept model copied back
        if not plan.engine.keep_input:
            core_options.remove_model_folder(datpath)
        else:
            core_options.copy_back_from_shm(datpath)
    for key, value in built.items():
        setattr(outcome, key, value)
    return outcome


__all__ = ["build_in_steps", "check"]
