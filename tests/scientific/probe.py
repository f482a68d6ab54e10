"""Run neurodamus exactly as the CLI does, plus in-process recordings for the input tests.

    python -m tests.scientific.probe <simulation_config> <out_dir> <spec.json> [options]

The run goes through ``neurodamus.cli.main`` (the pipeline: load → plan → build → run). The only
addition is a wrapper around the model's ``ReportSet`` (``pipeline.add_reports``: made after the
inputs, started just before initialisation, closed after the run) that records what
``spec.json`` asks for with per-step ``Vector.record`` and writes
``<out_dir>/probe_<rank>.npz`` (the run's own outputs go where its config says):

* ``soma_v``: soma[0](0.5) voltage of every local cell  → ``v/<gid>``
* ``sources``: every input point source: its played (t, value) vectors and the recorded
  played variable and current                            → ``src/<k>/...`` + metadata
* ``efield``: e_extracellular and v of every segment of E-field cells (every ``every`` steps)
* ``synapses``: the listed range variables of every synapse → ``syn/<k>/<var>``
* ``minis``: event times of every minis generator         → ``mini/<k>``
Metadata (gids, input names, segment positions, areas...) goes into ``meta_<rank>.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def _install(spec: dict, out_dir: Path):
    from neurodamus import pipeline

    original = pipeline.add_reports

    class ProbeReports:
        def __init__(self, inner, h, model, rank):
            self._inner = inner
            self._h, self._model, self._rank = h, model, rank
            self._vectors: dict[str, object] = {}
            self._meta: dict = {"sources": [], "efield": [], "synapses": [], "minis": [],
                                "cells": {}}
            self._setup()

        def __getattr__(self, name):
            return getattr(self._inner, name)

        def _rec(self, key, ref):
            vec = self._h.Vector()
            vec.record(ref)
            self._vectors[key] = vec

        def _setup(self):
            sim, h = self._model, self._h
            self._rec("t", h._ref_t)
            for gid, cell in sorted(sim.cells.items()):
                seg = cell.hoc.soma[0](0.5)
                self._meta["cells"][gid] = {"area": seg.area(), "cm": seg.cm,
                                            "g_pas": getattr(seg, "g_pas", None)}
                if spec.get("soma_v"):
                    self._rec(f"v/{gid}", seg._ref_v)
            if spec.get("sources"):
                for k, src in enumerate(s for s in sim.stimuli if hasattr(s, "variable")):
                    pp = src.point
                    kind = pp.hname().split("[")[0]
                    seg = pp.get_segment()
                    self._meta["sources"].append({"input": src.input_name, "gid": src.gid,
                                                  "kind": kind, "variable": src.variable,
                                                  "section": seg.sec.name(), "x": seg.x})
                    if src.tvec is not None:
                        self._vectors[f"src/{k}/tvec"] = src.tvec
                        self._vectors[f"src/{k}/vvec"] = src.vvec
                    self._rec(f"src/{k}/played", getattr(pp, f"_ref_{src.variable}"))
                    self._rec(f"src/{k}/i", pp._ref_i)
            if spec.get("efield"):
                every = int(spec.get("every", 1))
                for k, src in enumerate(s for s in sim.stimuli if hasattr(s, "integrators")):
                    segs = src.segments
                    self._meta["efield"].append({"gid": src.gid, "inputs": list(src.input_names),
                                                 "sections": [s.sec.name() for s in segs],
                                                 "x": [s.x for s in segs],
                                                 "nseg": [s.sec.nseg for s in segs],
                                                 "L": [s.sec.L for s in segs]})
                    for j, seg in enumerate(segs):
                        seg = seg.sec(seg.x)
                        if j % every == 0 or j == len(segs) - 1:
                            self._rec(f"ef/{k}/{j}/e", seg._ref_e_extracellular)
                            self._rec(f"ef/{k}/{j}/v", seg._ref_v)
            for k, pp in enumerate(sim.synapse_builder.synapses if spec.get("synapses") and
                                   sim.synapse_builder else []):
                seg = pp.get_segment()
                self._meta["synapses"].append({"name": pp.hname(), "synapseID": pp.synapseID,
                                               "cell": seg.sec.cell().gid})
                for var in spec["synapses"]:
                    self._rec(f"syn/{k}/{var}", getattr(pp, f"_ref_{var}"))
            if spec.get("minis"):
                for k, (stim, nc, rate) in enumerate(sim.minis.generators()):
                    vec = h.Vector()
                    nc.record(vec)
                    self._vectors[f"mini/{k}"] = vec
                    target = nc.syn()
                    self._meta["minis"].append({"rate": rate, "target": target.hname(),
                                                "gid": target.get_segment().sec.cell().gid,
                                                "delay": nc.delay, "weight": nc.weight[0],
                                                "nc_type": nc.weight[4] if nc.wcnt() > 4
                                                else None})

        def close(self):
            self._inner.close()
            rank = int(self._rank)
            arrays = {k: np.asarray(v.as_numpy() if hasattr(v, "as_numpy") else v).copy()
                      for k, v in self._vectors.items()}
            np.savez(out_dir / f"probe_{rank}.npz", **arrays)
            (out_dir / f"meta_{rank}.json").write_text(json.dumps(self._meta))

    def add_reports(plan, rt, model):
        original(plan, rt, model)
        model.reports = ProbeReports(model.reports, rt.h, model, plan.rank)

    pipeline.add_reports = add_reports


def main(argv) -> int:
    config, out_dir, spec_path = argv[:3]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    spec = json.loads(Path(spec_path).read_text())
    _install(spec, out_dir)
    from neurodamus.cli import main as cli_main

    return cli_main([config, *argv[3:]])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
