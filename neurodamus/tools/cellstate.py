"""``--dump-cell-state``: JSON snapshot of cells, synapses and NetCons after initialisation."""

from __future__ import annotations

import json

from ..engine.summary import write_text_atomic
from ..errors import ConfigError

_SKIP = {"v", "node_index"}


def _mechanism_params(seg) -> dict:
    out = {}
    for mech in seg:
        params = {}
        for name in dir(mech):
            if name.startswith("_") or name in _SKIP:
                continue
            try:
                value = getattr(mech, name)
            except Exception:  # some range names are not readable (pointers)
                continue
            if isinstance(value, (int, float)):
                params[name] = value
        out[mech.name()] = params
    return out


def _point_params(pp) -> dict:
    params = {}
    for name in dir(pp):
        if name.startswith("_") or name in ("get_segment", "has_loc", "hname", "hocobjptr",
                                            "loc", "same", "get_loc"):
            continue
        try:
            value = getattr(pp, name)
        except Exception:
            continue
        if isinstance(value, (int, float)):
            params[name] = value
    return params


def _sections(hoc_cell) -> list:
    """The cell's sections: its ``all`` list, else its ``soma`` array (point neurons), else
    none (artificial cells)."""
    if hasattr(hoc_cell, "all"):
        return list(hoc_cell.all)
    if hasattr(hoc_cell, "soma"):
        return list(hoc_cell.soma)
    return []


def _own_synapses(model, cell) -> list:
    """Synapses of the chemical builder and Exp2Syn-type synapses (point_neurons.py) placed
    on this cell's sections."""
    own = []
    for builder in (getattr(model, "synapse_builder", None),
                    getattr(model, "point_synapses", None)):
        for pp in (builder.synapses if builder is not None else ()):
            if pp.get_segment().sec.cell() == cell.hoc:
                own.append(pp)
    return own


def cell_state(h, model, gid: int) -> dict:
    cell = model.cells[gid]
    sections = []
    for sec in _sections(cell.hoc):
        sections.append({
            "name": sec.name(), "nseg": sec.nseg, "L": sec.L, "Ra": sec.Ra,
            "segments": [{"x": seg.x, "diam": seg.diam, "cm": seg.cm, "v": seg.v,
                          "area": seg.area(), "mechanisms": _mechanism_params(seg)}
                         for seg in sec],
        })
    synapses, netcons = [], []
    own = _own_synapses(model, cell)
    for pp in own:
        seg = pp.get_segment()
        synapses.append({"type": pp.hname().split("[")[0], "section": seg.sec.name(),
                         "x": seg.x, "params": _point_params(pp)})
    targets = {pp.hname() for pp in own}
    pointcell = getattr(cell.hoc, "pointcell", None) if hasattr(cell.hoc, "pointcell") else None
    if pointcell is not None:   # point neurons: events onto the artificial cell itself
        targets.add(pointcell.hname())
    plist = h.List("NetCon")
    for i in range(int(plist.count())):
        nc = plist.o(i)
        tgt = nc.syn()
        if tgt is None or tgt.hname() not in targets:
            continue
        netcons.append({"source_gid": int(nc.srcgid()), "target": tgt.hname(),
                        "delay": nc.delay, "weight": [nc.weight[k] for k in range(
                            int(nc.wcnt()))], "threshold": nc.threshold,
                        "active": bool(nc.active())})
    state = {"gid": gid, "population": cell.population, "raw_id": cell.raw_id,
             "template": cell.template, "morphology": cell.morphology, "t": h.t,
             "sections": sections, "synapses": synapses, "netcons": netcons}
    if pointcell is not None:
        state["pointcell"] = {"type": pointcell.hname().split("[")[0],
                              "params": _point_params(pointcell)}
    return state


def dump_cells(plan, rt, model, gids) -> None:
    """Write cellstate_<gid>.json for the local ones; every rank checks every gid the same way."""
    simulated = set()
    for pop in plan.populations.values():
        if not pop.is_virtual:
            simulated.update((pop.selected + pop.offset).tolist())
    unknown = [g for g in gids if g not in simulated]
    if unknown:
        raise ConfigError(f"{plan.config_path}: --dump-cell-state: gid(s) "
                          f"{', '.join(map(str, unknown[:10]))} are not simulated (gids are "
                          f"population offset + node id; see populations_offset.dat)")
    for gid in gids:
        if gid not in model.cells:
            continue
        path = plan.outputs.folder / f"cellstate_{gid}.json"
        write_text_atomic(path, json.dumps(cell_state(rt.h, model, gid), indent=1))
