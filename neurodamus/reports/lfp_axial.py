"""Compartment currents of lfp reports computed from the voltages (no fast ``i_membrane_``).

With NEURON's fixed step and ``secondorder = 0``, the step's linear system makes the membrane
current of a node (capacitive + ionic + every NONSPECIFIC_CURRENT, i.e. fast ``i_membrane_``)
equal to the axial current flowing into it from its neighbours at the new voltages, plus the
current of any ELECTRODE_CURRENT on it. NEURON's matrix coefficients (``a``, ``b``, ``area``)
give that axial current, so an lfp report can read voltages at its report steps instead of
having NEURON compute fast ``i_membrane_`` at every step (five passes over every node: about
half of an lfp report's cost on the 4000-cell benchmark). ``core/mod``'s ``nd_gather_axial``
(NEURON) and ``NdCoreImemGather`` (CoreNEURON) compute it with the plan made here, the same
terms in the same order on both engines.

The driver uses it only where it equals fast ``i_membrane_``: no electrode (``IClamp``,
``SEClamp``, ...: their current is not a membrane current) and no ``extracellular`` on a cell
of an lfp report, the fixed step with ``secondorder = 0``, no ``LinearMechanism``, no other
report of ``i_membrane``, and mechanisms built with this driver's ``core/mod`` (``ReportSet``
chooses, the same on every rank, and logs why); else fast ``i_membrane_`` as before.
"""

from __future__ import annotations

import numpy as np

from .variables import ELECTRODE_TYPES

#: NEURON's point processes with an ELECTRODE_CURRENT: those of the driver's physical-electrode
#: inputs and NEURON's other built-in clamps
ELECTRODE_MECHANISMS = (*ELECTRODE_TYPES, "VClamp", "OClamp")


def axial_plan(parents, nodes) -> np.ndarray:
    """int32 plan of ``nd_gather_axial``: per node of ``nodes`` (NEURON node indices, in
    output order) ``[node, parent (-1: none), number of children, children ascending]``;
    ``parents[i]`` is the parent of node ``i`` (-1: a root)."""
    parents = np.asarray(parents, np.int64)
    nodes = np.asarray(nodes, np.int64)
    n_nodes = len(parents)
    if len(nodes) and (nodes.min() < 0 or nodes.max() >= n_nodes):
        raise ValueError(f"node index outside 0..{n_nodes - 1}")
    if ((parents < -1) | (parents >= n_nodes)).any():
        raise ValueError("parent index outside the nodes")
    child = np.flatnonzero(parents >= 0)                       # ascending
    by_parent = child[np.argsort(parents[child], kind="stable")]   # ascending within a parent
    counts = np.bincount(parents[child], minlength=n_nodes)
    starts = np.cumsum(counts) - counts
    nc = counts[nodes]
    lengths = 3 + nc
    offsets = np.cumsum(lengths) - lengths
    plan = np.empty(int(lengths.sum()), np.int64)
    plan[offsets] = nodes
    plan[offsets + 1] = parents[nodes]
    plan[offsets + 2] = nc
    within = np.arange(int(nc.sum())) - np.repeat(np.cumsum(nc) - nc, nc)
    plan[np.repeat(offsets + 3, nc) + within] = by_parent[np.repeat(starts[nodes], nc) + within]
    return plan.astype(np.int32)


def electrode_sections(h) -> set:
    """Sections holding an instance of ``ELECTRODE_MECHANISMS``."""
    found = set()
    for name in ELECTRODE_MECHANISMS:
        if not hasattr(h, name):
            continue
        instances = h.List(name)
        for i in range(int(instances.count())):
            seg = instances.o(i).get_segment()
            if seg is not None:
                found.add(seg.sec)
    return found


def why_not_axial(h, segments, engine_ready: bool, other_imem: bool) -> str | None:
    """Why this rank's lfp currents must come from fast ``i_membrane_`` (None: they can be
    computed from the voltages). ``segments``: the compartments of its lfp reports."""
    if other_imem:
        return "another report records i_membrane (fast i_membrane_ is on anyway)"
    if int(h.secondorder) != 0:
        return f"secondorder = {int(h.secondorder)}"
    if h.cvode.active():
        return "the variable time step"
    if hasattr(h, "LinearMechanism") and int(h.List("LinearMechanism").count()):
        return "a LinearMechanism adds terms to the cable equations"
    if not engine_ready:
        return "the mechanisms lack core/mod's axial gather (rebuild them)"
    sections = {seg.sec for seg in segments}
    if electrode_sections(h) & sections:
        return "an electrode (IClamp, SEClamp or VClamp) is on a cell of an lfp report"
    if any(sec.has_membrane("extracellular") for sec in sections):
        return "extracellular is inserted in a cell of an lfp report"
    return None


__all__ = ["ELECTRODE_MECHANISMS", "axial_plan", "electrode_sections", "why_not_axial"]
