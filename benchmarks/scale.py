"""Scaling benchmark (issue 9): the example circuit at several sizes, on 1 and 2 ranks, NEURON and
CoreNEURON, printed as one table with the 1 -> 2 rank ratios.

    python benchmarks/scale.py [--sizes 1000,4000,16000] [--ranks 1,2]
                               [--engines NEURON,CORENEURON[,CORENEURON:4]]
                               [--tstop 1000[,1000,250]]
                               [--lb-mode RoundRobin] [--json results.json]

``bare s`` (NEURON rows; ``--no-bare`` skips it): a second driver run of the same circuit that
builds the model and then times one bare ``pc.psolve(tstop)`` in the same process
(``benchmarks/runloop.py``), the solver's own limit; ``solver/bare`` is the driver's run phase
over it. CoreNEURON's run phase is one ``psolve`` already (the model transfer included).
``cells/s`` is the cell build rate per rank (slowest rank), ``KiB/syn`` the peak RSS per rank
over its synapses (cells, Python, NEURON and MPI included).

``CORENEURON:4`` is CoreNEURON with ``--modelbuilding-steps=4`` (the model built and written in
4 slices, then simulated from the files). Every figure except the wall time comes from
``<output>/run_summary.json``, which the driver writes: cells, synapses, the slowest rank's
phase times (build = cells + synapses + inputs; solver = the ``run`` phase, for CoreNEURON
including the model transfer), peak RSS per rank. "wall" is the whole command as the user sees
it (``mpirun`` and the Python start-up included), "overhead" is wall - solver; "load" is the
load phase (settings, node selection, distribution, attribute reads), which must grow with the
circuit and not with the ranks. The spikes of every run are compared with the first run of the
same circuit: they must not depend on ranks, engine or load-balance mode.

Targets at 4000 cells (issue 9): 2-rank parallel efficiency of the solver >= 85 %, overhead <=
20 % of the wall time, peak RSS per rank <= 150 MB + 4 kB per synapse of the rank. The load
average of the machine is sampled before and after each run and printed with it: on a shared
machine the solver figures are only as good as that load.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.circuits import make_circuit, mechanisms
from benchmarks.launch import run_neurodamus
from benchmarks.runloop import measure
from tests.helpers import base_env

RSS_BASE_MB, RSS_PER_SYNAPSE_KB = 150.0, 4.0
TARGET_EFFICIENCY, TARGET_OVERHEAD = 0.85, 0.20


def spike_digest(path: Path) -> str:
    import h5py
    import numpy as np

    h = hashlib.sha1()
    with h5py.File(path, "r") as fd:
        for pop in sorted(fd["spikes"]):
            t = np.asarray(fd[f"spikes/{pop}/timestamps"][:], dtype=np.float64)
            n = np.asarray(fd[f"spikes/{pop}/node_ids"][:], dtype=np.int64)
            order = np.lexsort((n, t))
            h.update(pop.encode() + t[order].tobytes() + n[order].tobytes())
    return h.hexdigest()[:12]


def run_one(config: Path, ranks: int, engine: str, lb_mode: str, out: Path, env: dict,
            timeout: float) -> dict:
    simulator, _, steps = engine.partition(":")
    args = [f"--simulator={simulator}", f"--lb-mode={lb_mode}"]
    if steps:
        args.append(f"--modelbuilding-steps={steps}")
    run = run_neurodamus(config, out, ranks, args, env=env, timeout=timeout)
    proc, wall, summary = run.proc, run.wall, run.summary
    row = {"engine": engine, "ranks": ranks, "wall_s": wall, "load": run.load}
    if summary is None:
        text = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
        reason = next((line for line in reversed(text) if "ERROR" in line), text[-1] if text
                      else f"exit {proc.returncode}")
        row["error"] = reason.replace("ERROR: ", "")[:160]
        return row
    phases = summary["phases_max_s"]
    row.update(cells=summary["cells"], synapses=summary["synapses"],
               build_s=phases.get("build", 0.0), solver_s=phases.get("run", 0.0),
               phases=phases, cell_build_s=summary.get("cell_build_s"),
               synapse_build_s=summary.get("synapse_build_s"),
               startup_s=summary.get("startup_s"),
               peak_rss_mb=summary["peak_rss_mb"], spikes=sum(summary["spikes"].values()),
               digest=spike_digest(out / "out.h5"),
               load_balance=summary.get("load_balance"),
               allocator=summary.get("allocator", {}).get("name", "?"))
    row["overhead"] = (wall - row["solver_s"]) / wall
    row["rss_limit_mb"] = RSS_BASE_MB + RSS_PER_SYNAPSE_KB * row["synapses"] / ranks / 1024.0
    if row["cell_build_s"]:
        row["cells_per_s"] = row["cells"] / ranks / row["cell_build_s"]
    row["kib_per_synapse"] = max(row["peak_rss_mb"]) * 1024.0 / max(row["synapses"] / ranks, 1)
    return row


def bare_psolve(config: Path, ranks: int, out: Path, env: dict) -> float:
    """Wall time of one bare ``pc.psolve(tstop)`` on the model the driver built (slowest rank)."""
    data = measure(config, ranks, 1, out, {"NRNMECH_LIB_PATH": env["NRNMECH_LIB_PATH"]},
                   variants=("bare",))
    return data["times"]["bare"][0]


def print_table(rows, out=print):
    """The table; ``rows`` as ``run_one`` returns them (also re-printable from --json)."""
    head = (f"{'cells':>6} {'synapses':>9} {'engine':<13}{'ranks':>5} {'load s':>7} "
            f"{'build s':>8} "
            f"{'solver s':>9} {'wall s':>8} {'overhead':>9} {'peak RSS/rank MB':>18} "
            f"{'RSS limit':>9} {'KiB/syn':>7} {'cells/s':>7} {'bare s':>8} {'solver/bare':>11} "
            f"{'spikes':>7} {'same':>5} {'load':>5} {'allocator':>9}")
    out(head)
    out("-" * len(head))
    for r in rows:
        if "error" in r:
            out(f"{r.get('size', ''):>6} {'':>9} {r['engine']:<13}{r['ranks']:>5}  "
                f"not run: {r['error']}")
            continue
        rss = "/".join(f"{m:.0f}" for m in r["peak_rss_mb"])
        bare = f"{r['bare_s']:>8.2f} {r['solver_s'] / r['bare_s']:>11.3f}" if r.get("bare_s") \
            else f"{'-':>8} {'-':>11}"
        out(f"{r['cells']:>6} {r['synapses']:>9} {r['engine']:<13}{r['ranks']:>5} "
            f"{r['phases'].get('load', 0.0):>7.2f} {r['build_s']:>8.2f} {r['solver_s']:>9.2f} "
            f"{r['wall_s']:>8.2f} "
            f"{100 * r['overhead']:>8.1f}% {rss:>18} {r['rss_limit_mb']:>9.0f} "
            f"{r.get('kib_per_synapse', 0):>7.2f} {r.get('cells_per_s', 0):>7.0f} {bare} "
            f"{r['spikes']:>7} {'yes' if r.get('same', True) else 'NO':>5} {r['load']:>5.1f} "
            f"{r.get('allocator', '?'):>9}")


def _met(condition) -> str:
    return "met" if condition else "NOT met"


def ratios(rows) -> list[dict]:
    """1 -> 2 rank figures per (size, engine)."""
    result = []
    by_key = {}
    for r in rows:
        if "error" not in r:
            by_key.setdefault((r["cells"], r["engine"]), {})[r["ranks"]] = r
    for (cells, engine), runs in sorted(by_key.items()):
        if 1 in runs and 2 in runs:
            a, b = runs[1], runs[2]
            solver_speedup = a["solver_s"] / b["solver_s"]
            result.append({"cells": cells, "engine": engine, "synapses": a["synapses"],
                           "solver_speedup": solver_speedup,
                           "efficiency": solver_speedup / 2,
                           "build_speedup": a["build_s"] / b["build_s"],
                           "wall_speedup": a["wall_s"] / b["wall_s"],
                           "overhead_2": b["overhead"],
                           "rss_2": max(b["peak_rss_mb"]), "rss_limit_2": b["rss_limit_mb"]})
    return result


def print_ratios(result, out=print):
    out(f"\n{'cells':>6} {'engine':<13}{'solver 1->2':>12}{'efficiency':>11}{'build 1->2':>11}"
        f"{'wall 1->2':>10}")
    for r in result:
        out(f"{r['cells']:>6} {r['engine']:<13}{r['solver_speedup']:>11.2f}x"
            f"{100 * r['efficiency']:>10.1f}%{r['build_speedup']:>10.2f}x"
            f"{r['wall_speedup']:>9.2f}x")
    for r in result:
        if r["cells"] == 4000:
            out(f"\ntargets at 4000 cells ({r['engine']}, 2 ranks): solver efficiency "
                f"{100 * r['efficiency']:.1f} % (>= 85 %: {_met(r['efficiency'] >= 0.85)}); "
                f"overhead {100 * r['overhead_2']:.1f} % of wall (<= 20 %: "
                f"{_met(r['overhead_2'] <= 0.20)}); peak RSS {r['rss_2']:.0f} MB per rank "
                f"(<= {r['rss_limit_2']:.0f} MB: {_met(r['rss_2'] <= r['rss_limit_2'])})")


def _list(text, cast):
    return [cast(x) for x in str(text).split(",") if x.strip()]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,4000,16000")
    parser.add_argument("--ranks", default="1,2")
    parser.add_argument("--engines", default="NEURON,CORENEURON")
    parser.add_argument("--tstop", default="1000",
                        help="ms; one value, or one per size (e.g. 1000,1000,250)")
    parser.add_argument("--lb-mode", default="RoundRobin")
    parser.add_argument("--timeout", type=float, default=7200.0, help="s per run")
    parser.add_argument("--json", help="also write every row to this file")
    parser.add_argument("--no-bare", action="store_true",
                        help="skip the bare-psolve run of the NEURON rows")
    parser.add_argument("--show", nargs="+", metavar="JSON",
                        help="print the table of earlier --json files and stop")
    args = parser.parse_args()
    if args.show:
        rows = [r for path in args.show for r in json.loads(Path(path).read_text())["rows"]]
        print_table(rows)
        print_ratios(ratios(rows))
        return
    sizes, ranks, engines = _list(args.sizes, int), _list(args.ranks, int), \
        _list(args.engines, str.upper)
    tstops = _list(args.tstop, float)
    tstops = tstops * len(sizes) if len(tstops) == 1 else tstops
    if len(tstops) != len(sizes):
        sys.exit("--tstop: one value, or one per size")

    rows = []
    print(f"neurodamus scaling benchmark on {os.cpu_count()} cores, lb-mode {args.lb_mode}; "
          f"load average at start {os.getloadavg()[0]:.1f}", flush=True)
    for n_cells, tstop in zip(sizes, tstops):
        config = make_circuit(n_cells, tstop, log=lambda m: print(m, flush=True))
        build = mechanisms(config)
        env = base_env(NRNMECH_LIB_PATH=str(build.library))
        if build.coreneuron_library.exists():
            env["CORENEURONLIB"] = str(build.coreneuron_library)
        reference = None
        for engine in engines:
            for n in ranks:
                out = Path(tempfile.mkdtemp(prefix=f"scale{n_cells}_{engine}_{n}_"))
                print(f"  {n_cells} cells, {tstop:g} ms, {engine}, {n} rank(s) ...", end=" ",
                      flush=True)
                try:
                    row = run_one(config, n, engine, args.lb_mode, out, env, args.timeout)
                    if engine == "NEURON" and not args.no_bare and "error" not in row:
                        row["bare_s"] = bare_psolve(config, n, out / "bare", env)
                except subprocess.TimeoutExpired:
                    row = {"engine": engine, "ranks": n, "error": f"timeout {args.timeout} s",
                           "load": os.getloadavg()[0]}
                finally:
                    shutil.rmtree(out, ignore_errors=True)
                row.update(size=n_cells, tstop=tstop)
                if "error" not in row:
                    reference = reference or row["digest"]
                    row["same"] = row["digest"] == reference
                    print(f"wall {row['wall_s']:.1f} s, solver {row['solver_s']:.1f} s",
                          flush=True)
                else:
                    print(row["error"], flush=True)
                rows.append(row)
    print(f"\nexample circuit, tstop {', '.join(f'{t:g}' for t in tstops)} ms; 'same': spikes "
          f"identical to the first run of the size; 'load': 1-min load average during the run")
    print_table(rows)
    result = ratios(rows)
    print_ratios(result)
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "ratios": result}, indent=1) + "\n")


if __name__ == "__main__":
    main()
