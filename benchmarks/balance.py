"""Load balance on a circuit mixing small and large cells: round robin against WholeCell.

    python benchmarks/balance.py [--cells 1000] [--tstop 200] [--ranks 2]

The circuit is the example model where every even node has a 3x longer copy of its
morphology (``benchmarks/circuits.py:make_mixed_circuit``), the worst case for round robin on
2 ranks (every large cell on rank 0). For each mode the table shows the cost model's max/mean
load per rank (``run_summary.json``: ``load_balance``), the solver time of the slowest rank,
the whole wall time and the spikes (which must be the same in every mode).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.circuits import make_mixed_circuit, mechanisms
from benchmarks.launch import run_neurodamus
from benchmarks.scale import spike_digest
from tests.helpers import base_env


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=1000)
    parser.add_argument("--tstop", type=float, default=200.0)
    parser.add_argument("--ranks", type=int, default=2)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="balance_bench_"))
    try:
        config = make_mixed_circuit(root / "circuit", n_cells=args.cells, tstop=args.tstop)
        build = mechanisms(config, coreneuron=False)
        env = base_env(NRNMECH_LIB_PATH=str(build.library))
        rows = []
        for mode in ("RoundRobin", "WholeCell", "WholeCell"):
            out = root / f"out_{mode}"
            run = run_neurodamus(config, out, args.ranks, [f"--lb-mode={mode}"], env=env)
            rows.append((mode, run.summary_or_exit(mode), run.wall,
                         spike_digest(out / "out.h5"), run.load))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    wc = rows[1][1]["load_balance"]
    print(f"\nmixed small/large example circuit: {args.cells} cells, {args.tstop:g} ms, "
          f"{args.ranks} ranks, {os.cpu_count()} cores")
    print(f"{'mode':<22}{'max/mean cost':>14}{'build s':>9}{'solver s':>10}{'wall s':>9}"
          f"{'spikes':>8}{'same':>6}{'load':>6}")
    for i, (mode, s, wall, digest, load) in enumerate(rows):
        label = mode + (" (cached)" if i == 2 else "")
        ratio = wc["round_robin_max_over_mean"] if mode == "RoundRobin" else \
            s["load_balance"]["max_over_mean"]
        print(f"{label:<22}{ratio:>14.3f}{s['phases_max_s']['build']:>9.2f}"
              f"{s['phases_max_s']['run']:>10.2f}{wall:>9.2f}{sum(s['spikes'].values()):>8}"
              f"{'yes' if digest == rows[0][3] else 'NO':>6}{load:>6.1f}")
    print(f"\ncost per rank (WholeCell model units): round robin would give "
          f"{wc['round_robin_max_over_mean']:.3f} max/mean, WholeCell {wc['max_over_mean']:.3f}; "
          f"solver time RoundRobin / WholeCell = "
          f"{rows[0][1]['phases_max_s']['run'] / rows[1][1]['phases_max_s']['run']:.2f}")


if __name__ == "__main__":
    main()
