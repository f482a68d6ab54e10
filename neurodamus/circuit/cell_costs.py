"""The NEURON side of load balancing: instantiate sample cells and measure their cost.

WholeCell balancing measures one sample cell per (template, morphology) pair: the template's own
nseg rule, axon replacement and channel insertion decide how many compartments and mechanisms a
cell has. The ranks share the samples; every rank gets every measurement.
"""

from __future__ import annotations

import os

import libsonata
import numpy as np

from ..errors import CircuitError
from ..parallel import agree_on_errors
from .cells import TemplateLoader
from .nodes import open_population


def template_extra_args(loader, info, template: str, raws: np.ndarray, keep_axon: bool):
    """The extra constructor arguments of ``template`` for ``raws`` (as cells.py passes them)."""
    needed = loader.needed_attributes.get(template, [])
    if not needed:
        return [(400 if keep_axon else 0,)] * len(raws)
    pop = open_population(info)
    raws = np.asarray(raws, dtype=np.int64)
    lo, hi = int(raws.min()), int(raws.max()) + 1
    values = [np.asarray(pop.get_dynamics_attribute(a, libsonata.Selection([(lo, hi)])),
                         dtype=float)[raws - lo] for a in needed]
    return [tuple(float(v[i]) for v in values) for i in range(len(raws))]


def instantiate_sample(h, info, raw: int, template: str, morphology: str, extra):
    """One template instance outside the model (no gid registered); the caller drops it."""
    morph_file = f"{morphology}.{info.morphology_ext}"
    try:
        return getattr(h, template)(int(raw), info.morphologies_dir, morph_file, *extra)
    except Exception as exc:  # hoc errors arrive as RuntimeError
        raise CircuitError(f"load balance: template '{template}' failed for node {raw} of "
                           f"population '{info.name}' (morphology "
                           f"{os.path.join(info.morphologies_dir, morph_file)}): {exc}") from exc


def cell_complexity(hoc_cell) -> tuple[int, float]:
    """(compartments, segment-mechanism units) of one instantiated cell."""
    nseg, units = 0, 0.0
    for sec in hoc_cell.all:
        n = int(sec.nseg)
        mechs = sum(1 for m in sec(0.5) if not m.name().endswith("_ion"))
        nseg += n
        units += n * (1 + mechs)
    return nseg, units


def measure_samples(settings, populations, runtime, samples: list
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Collective: (compartments, units) of each (population, raw, template, morphology)
    sample, the ranks sharing the samples; the same arrays on every rank."""
    comm = runtime.comm
    rank, size = comm.Get_rank(), comm.Get_size()
    runtime.load_mechanisms(settings)
    mine, error = [], None
    try:
        h = runtime.h
        loader = TemplateLoader(h)
        keep_axon = bool(settings.options.keep_axon)
        for k in range(rank, len(samples), size):
            pop_name, raw, template, morph = samples[k]
            p = populations[pop_name]
            if p.info.type != "biophysical":   # a point neuron: one state, one mechanism
                mine.append((k, 1, 2.0))
                continue
            loader.load(p.info.emodels_dir, template)
            extra = template_extra_args(loader, p.info, template, [raw], keep_axon)[0]
            cell = instantiate_sample(h, p.info, raw, template, morph, extra)
            mine.append((k, *cell_complexity(cell)))
            del cell
    except Exception as exc:  # noqa: BLE001 - shared below so every rank stops alike
        error = exc
    agree_on_errors(comm, error)
    gathered = comm.allgather(mine) if size > 1 else [mine]
    nseg = np.zeros(len(samples), np.int64)
    units = np.zeros(len(samples))
    for part in gathered:
        for k, n, u in part:
            nseg[k], units[k] = n, u
    return nseg, units


__all__ = ["cell_complexity", "instantiate_sample", "measure_samples", "template_extra_args"]
