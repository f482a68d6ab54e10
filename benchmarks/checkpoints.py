"""Cost of periodic checkpoints, printed as one table.

    python benchmarks/checkpoints.py [--cells 4000] [--tstop 1000] [--every 250] [--ranks 2]
                                     [--engines NEURON,CORENEURON] [--repeat 2]

Per engine, runs alternate (plain, with ``--checkpoint-every``, plain, ...) so that load from
other processes on a shared machine hits both kinds alike. Two figures per checkpoint:

* measured: the ``checkpoints`` line of the run summary (slowest rank: state, spikes gather,
  report copies, rename) divided by the number of checkpoints;
* paired: (wall with checkpoints - wall of the plain run next to it) / number of checkpoints;
* paired CPU: the same with the CPU time of every process of the two runs, as a share of the
  plain run's CPU time (steadier than wall times on a shared machine).

All as a share of the plain run's wall (CPU) time; target <= 5 % per checkpoint at one checkpoint
per 250 ms simulated on the 4000-cell benchmark circuit.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.circuits import make_circuit
from benchmarks.launch import run_neurodamus
from neurodamus.tools.mechanisms import build_mechanisms

_CHECKPOINTS_LINE = re.compile(r"^\s+checkpoints\s+([0-9.]+)\s+([0-9.]+)", re.M)


def checkpoint_seconds(text: str) -> float:
    match = _CHECKPOINTS_LINE.search(text)
    return float(match.group(2)) if match else float("nan")


def folder_size_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def bench_engine(config: Path, tmp: Path, engine: str, args) -> list:
    n_ckpt = len([k for k in range(1, int(args.tstop // args.every) + 1)
                  if k * args.every < args.tstop])
    rows, pairs = [], []
    for i in range(args.repeat):
        plain = run_neurodamus(config, tmp / f"plain_{engine}_{i}", args.ranks,
                               [f"--simulator={engine}"])
        plain.summary_or_exit("plain run")
        out = tmp / f"ckpt_{engine}_{i}"
        ckpt = run_neurodamus(config, out, args.ranks,
                              [f"--simulator={engine}", f"--checkpoint-every={args.every:g}",
                               "--checkpoints-keep=1"])
        ckpt.summary_or_exit("checkpointing run")
        seconds = checkpoint_seconds(ckpt.proc.stdout)
        size = folder_size_mb(out / "checkpoints")
        pairs.append((plain.wall, ckpt.wall, seconds, size, plain.load, ckpt.load, plain.cpu,
                      ckpt.cpu))
        print(f"  {engine} pair {i}: plain {plain.wall:.1f} s, with {n_ckpt} checkpoints "
              f"{ckpt.wall:.1f} s (checkpoints {seconds:.2f} s), load {plain.load:.1f}/"
              f"{ckpt.load:.1f}", flush=True)
        shutil.rmtree(tmp / f"plain_{engine}_{i}", ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
    for i, (w0, w1, s, size, l0, l1, c0, c1) in enumerate(pairs):
        rows.append((f"{engine} pair {i}: plain / checkpointing wall (s)", f"{w0:.1f} / {w1:.1f}",
                     f"load {l0:.1f} / {l1:.1f}"))
        rows.append((f"{engine} pair {i}: measured per checkpoint",
                     f"{s / n_ckpt:.2f} s = {100 * s / n_ckpt / w0:.2f} %", "<= 5 %"))
        rows.append((f"{engine} pair {i}: paired wall difference per checkpoint",
                     f"{(w1 - w0) / n_ckpt:+.2f} s = {100 * (w1 - w0) / n_ckpt / w0:+.2f} %",
                     "noisy (shared machine)"))
        rows.append((f"{engine} pair {i}: paired CPU difference per checkpoint",
                     f"{(c1 - c0) / n_ckpt:+.2f} s = {100 * (c1 - c0) / n_ckpt / c0:+.2f} %",
                     f"CPU {c0:.1f} / {c1:.1f} s"))
        rows.append((f"{engine} pair {i}: one checkpoint on disk (MiB)", f"{size:.0f}", ""))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=4000)
    parser.add_argument("--tstop", type=float, default=1000.0)
    parser.add_argument("--every", type=float, default=250.0)
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--engines", default="NEURON,CORENEURON")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    config = make_circuit(args.cells, args.tstop)
    build_mechanisms([config.parent / "mechanisms"], coreneuron=True, log=lambda *_: None)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for engine in args.engines.split(","):
            rows += bench_engine(config, Path(tmp), engine.strip().upper(), args)
    print(f"\nneurodamus checkpoint benchmark: {args.cells} cells x {args.tstop:g} ms, one "
          f"checkpoint per {args.every:g} ms, {args.ranks} rank(s), {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'measure':<54}{'value':>24}  target/notes")
    for name, value, note in rows:
        print(f"{name:<54}{value:>24}  {note}")


if __name__ == "__main__":
    main()
