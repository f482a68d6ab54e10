"""Core driver speed on the example circuit (issue 2 targets), printed as one table.

    python benchmarks/core.py [--cells 1000] [--tstop 1000] [--ranks 1]

Targets (1 rank, 1000 cells, 1000 ms): build >= 1000 cells/s and >= 50 000 synapses/s,
start-up (process start to first cell) <= 2 s, everything but the solver <= 25 % of the wall
time. The first run of a new mechanism set also compiles it; that one-time build is excluded
by building the mechanisms before timing.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.launch import run_neurodamus
from neurodamus.tools.example import write_example
from neurodamus.tools.mechanisms import build_mechanisms


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=1000)
    parser.add_argument("--tstop", type=float, default=1000.0)
    parser.add_argument("--ranks", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        config = write_example(tmp / "circuit", n_cells=args.cells, tstop=args.tstop)
        build_mechanisms([config.parent / "mechanisms"], log=lambda *_: None)
        run = run_neurodamus(config, tmp / "out", args.ranks)
        summary, wall = run.summary_or_exit("run"), run.wall
    cells, syns = summary["cells"], summary["synapses"]
    solver = summary["phases_max_s"]["run"]
    rows = [
        ("cells", f"{cells}", ""),
        ("synapses", f"{syns}", ""),
        ("spikes", f"{sum(summary['spikes'].values())}", ""),
        ("cell build rate (cells/s)", f"{cells / max(summary['cell_build_s'], 1e-9):.0f}",
         ">= 1000"),
        ("synapse build rate (syn/s)", f"{syns / max(summary['synapse_build_s'], 1e-9):.0f}",
         ">= 50000"),
        ("start-up to first cell (s)", f"{summary['startup_s']:.2f}", "<= 2"),
        ("solver (s)", f"{solver:.2f}", ""),
        ("process wall time (s)", f"{wall:.2f}", ""),
        ("non-solver share of wall", f"{100 * (wall - solver) / wall:.1f} %", "<= 25 %"),
        ("peak RSS per rank (MiB)", ", ".join(f"{m:.0f}" for m in summary["peak_rss_mb"]), ""),
    ]
    print(f"\nneurodamus core benchmark: {args.cells} cells, {args.tstop:g} ms, "
          f"{args.ranks} rank(s), {os.cpu_count()} cores")
    print(f"{'measure':<30}{'value':>16}  target")
    for name, value, target in rows:
        print(f"{name:<30}{value:>16}  {target}")


if __name__ == "__main__":
    main()
