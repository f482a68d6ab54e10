"""NEURON vs CoreNEURON on one rank (issue 5 targets), printed as one table.

    python benchmarks/engines.py [--cells 4000] [--tstop 1000] [--ranks 1] [--repeat 1]

Targets (1 rank, the 4000-cell benchmark circuit): CoreNEURON's solver time <= 0.7 x NEURON's,
and the whole CoreNEURON run (model transfer included) faster than the NEURON run.

Both engines load the same mechanism library (the ``nrnivmodl -coreneuron`` build, through
``NRNMECH_LIB_PATH``; CoreNEURON finds ``libcorenrnmech.so`` next to it), built before timing.
Measured per engine:

* solver: NEURON, the run phase (``psolve`` in 25 ms chunks; the circuit has no reports, so
  nothing else happens in it); CoreNEURON, its own "Solver Time" (the time loop only);
* run phase: for CoreNEURON this adds the model transfer to CoreNEURON and back (one chunk:
  there are no reports);
* total: the process wall time (start-up, build, init, run, outputs).

With ``--repeat N`` each engine runs N times (alternating) and the fastest run is shown, which
filters out the noise of a busy machine.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from circuits import make_circuit, mechanisms

from benchmarks.launch import run_neurodamus
from tests.helpers import base_env, read_spikes, spikes_equal

_SOLVER_RE = re.compile(r"Solver Time\s*:\s*([0-9.eE+-]+)")


def run(config: Path, engine: str, ranks: int, out: Path, library: Path) -> dict:
    args = [f"--simulator={engine}"]
    if engine == "CORENEURON":
        args.append("--verbose")   # CoreNEURON then prints its own solver time
    run = run_neurodamus(config, out, ranks, args, env=base_env(NRNMECH_LIB_PATH=str(library)))
    summary, wall, proc = run.summary_or_exit(f"{engine} run"), run.wall, run.proc
    phases = summary["phases_max_s"]
    result = {"wall": wall, "run": phases["run"], "build": phases["build"],
              "init": phases["init"], "spikes": sum(summary["spikes"].values()),
              "cells": summary["cells"], "synapses": summary["synapses"],
              "rss": max(summary["peak_rss_mb"])}
    solver = [float(x) for x in _SOLVER_RE.findall(proc.stdout + proc.stderr)]
    result["solver"] = sum(solver) if solver else phases["run"]
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=4000)
    parser.add_argument("--tstop", type=float, default=1000.0)
    parser.add_argument("--ranks", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    config = make_circuit(args.cells, args.tstop, log=lambda m: print(m, file=sys.stderr))
    build = mechanisms(config, coreneuron=True)
    best = {}
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.repeat):
            for engine in ("NEURON", "CORENEURON"):
                out = Path(tmp) / f"{engine}{k}"
                res = run(config, engine, args.ranks, out, build.library)
                res["out"] = out
                if engine not in best or res["wall"] < best[engine]["wall"]:
                    best[engine] = res
        same = spikes_equal(read_spikes(best["NEURON"]["out"] / "out.h5"),
                            read_spikes(best["CORENEURON"]["out"] / "out.h5"))
    nrn, core = best["NEURON"], best["CORENEURON"]
    rows = [
        ("solver (s)", nrn["solver"], core["solver"], "<= 0.7"),
        ("run phase, transfer incl. (s)", nrn["run"], core["run"], ""),
        ("build phase (s)", nrn["build"], core["build"], ""),
        ("total wall time (s)", nrn["wall"], core["wall"], "< 1"),
    ]
    print(f"\nneurodamus engines benchmark: {nrn['cells']} cells, {nrn['synapses']} synapses, "
          f"{args.tstop:g} ms, {args.ranks} rank(s), {os.cpu_count()} cores, best of "
          f"{args.repeat}")
    print(f"{'measure':<32}{'NEURON':>10}{'CoreNEURON':>12}{'ratio':>8}  target (ratio)")
    for name, a, b, target in rows:
        print(f"{name:<32}{a:>10.2f}{b:>12.2f}{b / a if a else float('nan'):>8.2f}  {target}")
    print(f"{'spikes':<32}{nrn['spikes']:>10}{core['spikes']:>12}  "
          f"{'identical' if same else 'DIFFERENT'}")
    print(f"{'peak RSS per rank (MiB)':<32}{nrn['rss']:>10.0f}{core['rss']:>12.0f}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
