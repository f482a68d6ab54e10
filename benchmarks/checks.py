"""Cost of the input data checks (issue 16) in the build and load phases, as one table.

    python benchmarks/checks.py [--cells 4000] [--tstop 20] [--pairs 3] [--ranks 1] [--direct-only]

First, in-process and in CPU time (the load does not enter): the edge checks' share of reading
every edge of the circuit. Then paired runs of the cached benchmark circuit (benchmarks/circuits.py): in each pair one run has
the checks and one has them replaced by no-ops, in alternating order (the replacement is made by
this script's launcher, never by the driver). The data checks are the per-column passes over
what each rank reads (edge columns, node columns, replay spikes) and run in the build phase;
the config and file checks run in the load phase. Target: data checks add <= 3 % to the build
phase. The build phase is the slowest rank's (run_summary.json). The machine may be shared:
each run's load average is shown, and a difference smaller than the spread between pairs is
noise, not a cost.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.circuits import make_circuit, mechanisms
from tests.helpers import base_env, mpirun_prefix

#: the launcher: ``cli.main`` with the checks switched off when the first argument says so
LAUNCHER = """
import sys
off = sys.argv.pop(1) == "off"
if off:
    from neurodamus import plan
    from neurodamus.circuit import cells
    from neurodamus.connectivity import edge_checks, replay
    from neurodamus.stimuli import spike_files

    def noop(*args, **kwargs):
        return None

    for name in ("check_finite", "check_delays", "check_fractions", "check_section_ids",
                 "check_targets"):
        setattr(edge_checks, name, noop)
    cells.check_node_values = noop
    replay._check_spike_ids = spike_files._check_spikes = noop
    plan.run_input_checks = noop
from neurodamus.cli import main
sys.exit(main(sys.argv[1:]))
"""


def run(config: Path, out: Path, ranks: int, arm: str) -> dict:
    cmd = [sys.executable, "-c", LAUNCHER, arm, str(config), f"--output-path={out}"]
    if ranks > 1:
        cmd = mpirun_prefix(ranks) + cmd
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=base_env(NEURODAMUS_PROGRESS="off"), capture_output=True,
                          text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{arm} run failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    summary = json.loads((out / "run_summary.json").read_text())
    return {"build": summary["phases_max_s"]["build"], "load": summary["phases_max_s"]["load"],
            "synapse_build": summary["synapse_build_s"], "wall": wall,
            "load_avg": (load + os.getloadavg()[0]) / 2}


def direct_cost(config: Path) -> tuple[int, float, float]:
    """(edges, CPU s of reading them all, CPU s of that spent in the checks), in this process:
    every edge of the circuit read as one rank reads its share, the checks timed one by one.
    CPU time, so the machine's load does not enter."""
    import numpy as np

    from neurodamus.connectivity import edge_checks
    from neurodamus.connectivity.edges import read_synapses
    from neurodamus.plan import check_run

    checked = check_run(config)
    spent = [0.0]

    def timed(fn):
        def wrapper(*args, **kwargs):
            t = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[0] += time.process_time() - t
        return wrapper

    for name in ("check_finite", "check_delays", "check_fractions", "check_section_ids",
                 "check_targets"):
        setattr(edge_checks, name, timed(getattr(edge_checks, name)))
    settings, pops, n = checked.settings, checked.populations, 0
    t0 = time.process_time()
    for ep in settings.edge_populations:
        target, source = pops[ep.target], pops[ep.source]
        n += len(read_synapses(ep, np.asarray(target.selected), source.offset, target.offset,
                               settings.run.dt, settings.conditions.extracellular_calcium))
    return n, time.process_time() - t0, spent[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=4000)
    parser.add_argument("--tstop", type=float, default=20.0)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--ranks", type=int, default=1)
    parser.add_argument("--direct-only", action="store_true",
                        help="only the in-process CPU cost of the checks (no runs)")
    args = parser.parse_args()
    config = make_circuit(args.cells, args.tstop)
    mechanisms(config, coreneuron=False, log=lambda *_: None)
    edges, read_s, checks_s = direct_cost(config)
    print(f"in-process: {edges} edges read in {read_s:.2f} s CPU, {checks_s:.3f} s of it in the "
          f"edge checks", flush=True)
    if args.direct_only:
        return
    results = {"on": [], "off": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.pairs):
            for arm in (("on", "off") if i % 2 == 0 else ("off", "on")):
                r = run(config, Path(tmp) / f"{arm}{i}", args.ranks, arm)
                results[arm].append(r)
                print(f"pair {i} checks {arm:<3}: build {r['build']:.2f} s, load "
                      f"{r['load']:.2f} s, load average {r['load_avg']:.1f}", flush=True)
    print(f"\nData checks, {args.cells} cells, {args.ranks} rank(s), {args.pairs} pairs "
          f"(median; the machine's load average is shown per run above)")
    print(f"{'phase':<16}{'checks on s':>13}{'checks off s':>14}{'difference':>12}"
          f"{'pair spread':>13}{'target':>9}")
    for phase, target in (("build", "<= 3 %"), ("load", "")):
        on = statistics.median(r[phase] for r in results["on"])
        off = statistics.median(r[phase] for r in results["off"])
        diffs = [a[phase] - b[phase] for a, b in zip(results["on"], results["off"])]
        spread = (max(diffs) - min(diffs)) / off * 100 if off else 0.0
        print(f"{phase:<16}{on:>13.2f}{off:>14.2f}{(on - off) / off * 100:>11.1f}%"
              f"{spread:>12.1f}%{target:>9}")


if __name__ == "__main__":
    main()
