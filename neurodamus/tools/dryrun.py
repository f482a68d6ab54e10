"""``neurodamus cfg.json --dry-run``: estimate the memory a run needs without building it.

A sample of cells per cell type (emodel template x morphology class, the class being the
``mtype`` column when there is one) is built in NEURON by the run's own code: cells, their
afferent synapses, minis, replay and inputs. The growth of the resident memory gives MB per
cell of each type and kB per synapse; with the base memory of a rank (Python, NEURON, MPI, the
mechanism library, one warm-up cell per template) this gives:

* a table of the estimated memory per cell type and in total;
* the estimated peak memory per rank for the current rank count and the rank count suggested
  for a memory budget per rank (``--memory-per-rank``, default: this node's memory / cores);
* ``<output>/load_balance/memory_<key>.json``, the estimates ``--lb-mode=Memory`` balances by;
* with ``--num-target-ranks=N``, the Memory allocation for N ranks that such a run then uses.

Sample objects are kept alive until every type is measured, so that later types never reuse
memory freed by earlier ones. The process simulates nothing afterwards (sample gids are
registered with the ParallelContext as in a run).
"""

from __future__ import annotations

import logging
import math
import os
import time

import numpy as np
import psutil

from ..circuit import balance
from ..circuit.cell_costs import cell_complexity
from ..circuit.distribution import greedy_partition, rank_loads
from ..engine import neuron_engine
from ..engine.summary import peak_rss_mb
from ..model import Model, add_inputs, build_cells, connect, new_model
from ..parallel import agree_on_errors, on_root

log = logging.getLogger(__name__)

#: cells instantiated per cell type (spread over its morphologies)
SAMPLE_PER_TYPE = 20
ESTIMATES_VERSION = 1


def _rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def _peak_mb() -> float:
    return peak_rss_mb()


def choose_samples(table: balance.CellTable, per_type: int = SAMPLE_PER_TYPE) -> dict:
    """Per cell type: indices of up to ``per_type`` cells, distinct morphologies first."""
    types = table.cell_type
    result = {}
    for t in sorted(set(types.tolist())):
        idx = np.flatnonzero(types == t)
        _, first = np.unique(table.morphology[idx].astype(str), return_index=True)
        chosen = list(idx[np.sort(first)][:per_type])
        if len(chosen) < per_type:
            rest = np.setdiff1d(idx, chosen)
            if len(rest):
                k = min(per_type - len(chosen), len(rest))
                chosen += list(rest[np.linspace(0, len(rest) - 1, k).round().astype(int)])
        result[t] = sorted(int(i) for i in chosen)
    return result


def _sample_gids(plan, samples) -> np.ndarray:
    """gids of ``samples`` ((population, raw, ...) tuples)."""
    return np.array([plan.populations[pop].offset + raw for pop, raw, *_ in samples], np.int64)


def _build_sample_cells(plan, rt, samples) -> Model:
    """A model of the cells ``samples``, built by the run's own step."""
    model = new_model(plan, _sample_gids(plan, samples))
    build_cells(plan, rt, model)
    return model


def _connect_sample(plan, rt, model: Model) -> Model:
    """Synapses, minis, replay and inputs of the sample cells (the run's own steps)."""
    connect(plan, rt, model)
    add_inputs(plan, rt, model)
    return model


def estimate_memory(plan, rt, per_type: int = SAMPLE_PER_TYPE) -> dict:
    """Collective: sample every cell type (ranks share the types); estimates on every rank.

    Runs in place of a run's build: the sample cells are built by the run's own functions
    (templates, synapses, minis, replay, inputs), so every per-cell and per-synapse cost of a
    real run is in the measurement. Call it only in a process that will not simulate.
    """
    comm, rank, size = rt.comm, plan.rank, plan.size
    settings, populations = plan.settings, plan.populations

    def plan_samples():
        table = balance.cell_table(settings, populations)
        chosen = choose_samples(table, per_type)
        types = table.cell_type
        sampling = []
        for t, idx in chosen.items():
            mask = types == t
            sampling.append((t, int(mask.sum()), int(table.synapses[mask].sum()),
                         [(str(table.population[i]), int(table.raw[i]), str(table.template[i]),
                           str(table.morphology[i])) for i in idx]))
        return sampling, (len(table), int(table.synapses.sum()))

    sampling, totals = on_root(comm, plan_samples)
    rt.load_mechanisms(settings)
    mine = [sampling[k] for k in range(rank, len(sampling), size)]
    # warm-up: one cell per template loads the templates, reads the replay spike files and
    # fills NEURON's first pools; it counts in the base memory, not in a cell type.
    warm, seen = [], set()
    for entry in mine:
        if entry[3] and entry[3][0][2] not in seen:
            seen.add(entry[3][0][2])
            warm.append(entry[3][0])
    groups = [("", warm)] + [(t, [s for s in samples if s not in warm] or samples[:1])
                             for t, _, _, samples in mine]
    keep, cells, deltas, error = [], [], [], None
    try:
        neuron_engine.apply_run_settings(rt.h, settings)
        neuron_engine.apply_mechanism_globals(rt.h, settings)
        # every sample cell exists before any synapse (a gid must be an output port before it
        # is used as an input port); all objects stay alive so no type reuses another's memory
        r_start = _rss_mb()
        for _, samples in groups:
            r0 = _rss_mb()
            cells.append(_build_sample_cells(plan, rt, samples) if samples else None)
            deltas.append([_rss_mb() - r0])
        for k, (_, samples) in enumerate(groups):
            r0 = _rss_mb()
            keep.append(_connect_sample(plan, rt, cells[k]) if samples else None)
            deltas[k].append(_rss_mb() - r0)
            deltas[k].append(int(cells[k].n_local_synapses) if samples else 0)
        base_mb = r_start + sum(deltas[0][:2])
    except Exception as exc:  # noqa: BLE001 - shared below so every rank stops alike
        error = exc
    agree_on_errors(comm, error)

    measured = []
    for k, (t, n_cells, n_syn_type, _) in enumerate(mine, start=1):
        samples = groups[k][1]
        nseg = [cell_complexity(c.hoc)[0] for c in (cells[k].cells.values() if cells[k] else ())
                if hasattr(c.hoc, "all")]
        measured.append({"type": t, "cells": n_cells, "synapses": n_syn_type,
                         "sampled": len(samples), "sample_synapses": deltas[k][2],
                         "compartments": float(np.mean(nseg)) if nseg else 0.0,
                         "cell_mb": deltas[k][0] / max(1, len(samples)),
                         "synapse_mb": deltas[k][1]})
    rss_after = _rss_mb()
    gathered = comm.gather((measured, base_mb), root=0) if size > 1 else [(measured, base_mb)]
    if rank == 0:
        rows = [row for part, _ in gathered for row in part]
        rows.sort(key=lambda r: r["type"])
        syn_mb = sum(r["synapse_mb"] for r in rows)
        syn_n = sum(r["sample_synapses"] for r in rows)
        estimates = {
            "version": ESTIMATES_VERSION,
            "sample_per_type": per_type,
            "base_mb": max(b for _, b in gathered),
            "ranks_sampling": size,
            "synapse_kb": 1024.0 * syn_mb / syn_n if syn_n else 0.0,
            "cell_mb": {r["type"]: r["cell_mb"] for r in rows},
            "types": rows,
            "cells": totals[0],
            "synapses": totals[1],
            "sampling_rss_mb": rss_after,
        }
    else:
        estimates = None
    return comm.bcast(estimates, root=0) if size > 1 else estimates


# ---- what the dry-run prints --------------------------------------------------------------
def default_memory_per_rank_mb() -> float:
    return psutil.virtual_memory().total / 2**20 / max(1, os.cpu_count() or 1)


def rank_estimates(costs_mb: np.ndarray, base_mb: float, n_ranks: int) -> np.ndarray:
    """Estimated peak MB per rank under the Memory allocation for ``n_ranks``."""
    ranks = greedy_partition(costs_mb, n_ranks)
    return base_mb + rank_loads(costs_mb, ranks, n_ranks)


def suggest_ranks(costs_mb: np.ndarray, base_mb: float, budget_mb: float) -> int | None:
    """Fewest ranks whose estimated peak fits ``budget_mb`` each (None: impossible)."""
    costs_mb = np.asarray(costs_mb, float)
    room = budget_mb - base_mb
    if room <= 0 or (len(costs_mb) and costs_mb.max() > room):
        return None
    if not len(costs_mb):
        return 1
    n = max(1, math.ceil(costs_mb.sum() / room))
    while n < len(costs_mb) and rank_estimates(costs_mb, base_mb, n).max() > budget_mb:
        n = max(n + 1, int(n * 1.02))
    return min(n, len(costs_mb))


def format_table(estimates: dict, costs_mb: np.ndarray, n_ranks: int, budget_mb: float,
                 suggested: int | None, target: int | None) -> str:
    lines = ["", (f"Dry run: estimated memory (up to {estimates['sample_per_type']} sample "
                  f"cells per cell type, measured in NEURON)"),
             (f"{'cell type (template x class)':<34}{'cells':>8}{'sampled':>9}"
              f"{'comp./cell':>11}{'syn./cell':>10}{'MB/cell':>9}{'total MB':>10}")]
    syn_kb = estimates["synapse_kb"]
    total_cells_mb = 0.0
    for r in estimates["types"]:
        per_cell = r["cell_mb"] + r["synapses"] / max(1, r["cells"]) * syn_kb / 1024.0
        total = r["cells"] * r["cell_mb"] + r["synapses"] * syn_kb / 1024.0
        total_cells_mb += total
        lines.append(f"{r['type']:<34}{r['cells']:>8}{r['sampled']:>9}{r['compartments']:>11.0f}"
                     f"{r['synapses'] / max(1, r['cells']):>10.0f}{per_cell:>9.3f}{total:>10.1f}")
    base = estimates["base_mb"]
    lines += [(f"{'all cells (synapses included)':<34}{estimates['cells']:>8}{'':>9}{'':>11}"
               f"{estimates['synapses'] / max(1, estimates['cells']):>10.0f}{'':>9}"
               f"{total_cells_mb:>10.1f}"),
              f"synapses: {estimates['synapses']} x {syn_kb:.2f} kB",
              f"base memory per rank (Python, NEURON, MPI, mechanisms): {base:.0f} MB",
              f"estimated total: {base + total_cells_mb:.0f} MB on 1 rank"]
    for n in sorted({n_ranks, target or n_ranks}):
        if n > 1:
            per_rank = rank_estimates(costs_mb, base, n)
            lines.append(f"estimated peak per rank on {n} ranks: max {per_rank.max():.0f} MB, "
                         f"total {per_rank.sum():.0f} MB")
    if suggested is None:
        lines.append(f"memory per rank {budget_mb:.0f} MB: too small (a rank needs "
                     f"{base:.0f} MB before any cell)")
    else:
        lines.append(f"memory per rank {budget_mb:.0f} MB: suggested rank count {suggested}")
    return "\n".join(lines)


def dry_run(plan, rt) -> int:
    """Collective: estimate, print (rank 0) and write the estimates (and an allocation)."""
    t0 = time.perf_counter()
    settings, populations = plan.settings, plan.populations
    options = plan.options
    key = on_root(rt.comm, lambda: balance.circuit_key(settings, populations))
    with rt.phase("build"):
        estimates = estimate_memory(plan, rt)
    if plan.rank != 0:
        return 0
    estimates["key"] = key
    path = balance.memory_path(settings, key)
    balance.save_memory_estimates(path, estimates)
    table = balance.cell_table(settings, populations)
    costs_mb = balance.memory_costs(table, estimates)
    budget = float(options.memory_per_rank or default_memory_per_rank_mb())
    suggested = suggest_ranks(costs_mb, estimates["base_mb"], budget)
    target = options.num_target_ranks
    log.info("%s", format_table(estimates, costs_mb, plan.size, budget, suggested, target))
    log.info("memory estimates written: %s", path)
    if target:
        ranks = greedy_partition(costs_mb, target)
        alloc = balance.allocation_path(settings, key, "Memory", target)
        balance.save_allocation(alloc, table.gids, ranks, costs_mb, "Memory")
        log.info(f"allocation for {target} ranks written: {alloc}\n"
                f"  (used by: mpirun -np {target} neurodamus {settings.config_path} "
                f"--lb-mode=Memory" + (f" --output-path={options.output_path}"
                                       if options.output_path else "") + ")")
    log.info(f"dry run done in {time.perf_counter() - t0:.1f} s (peak memory of this process "
            f"{_peak_mb():.0f} MB); nothing was simulated")
    return 0


__all__ = ["SAMPLE_PER_TYPE", "choose_samples", "default_memory_per_rank_mb", "dry_run",
           "estimate_memory", "format_table", "rank_estimates", "suggest_ranks"]
