"""Report cost on the example circuit (issue 4 targets), printed as one table.

    python benchmarks/reports.py [--cells 4000] [--tstop 1000] [--ranks 2] [--repeat 1]
                                 [--memory-cells 100] [--skip-overhead] [--skip-memory]
                                 [--logs DIR]

1. Overhead: the same run without reports and with a soma report of every cell (``v``,
   dt 0.1 ms, 0..tstop); target <= 10 % more wall time. Runs go in pairs, each pair in the
   order opposite to the one before (none, soma, soma, none, ...): load from other processes
   hits both runs of a pair, and with an even ``--repeat`` a steady drift of the machine's
   speed cancels in the median of the pairs. The table shows the best of ``--repeat`` and
   every sample.
3. LFP (``--lfp-electrodes N``): the same run without reports and with an lfp report of N
   electrodes (random positions in the circuit's box, weights from ``neurodamus lfp-weights``,
   dt 0.1 ms) over every cell, on each engine of ``--engines``; target <= 10 % more wall time.
   Runs go in pairs as in 1. ``--lfp-buffer MB`` (or ``NEURON=MB,CORENEURON=MB``): the lfp
   runs' ``--report-buffer-size``; it holds 8 B per compartment and report row (the flush
   interval, on both engines); without it, the driver's default (64 rows of the lfp report).
   ``--side-by-side``: the two runs of each pair run at the same time, each on ``--ranks``
   ranks (``--ranks 1`` on 2 cores): on a machine whose speed drifts by tens of per cent
   within minutes (a shared VM), both runs see the same speed at every moment, where runs one
   after the other do not. They also share the memory bandwidth and the last-level cache, so
   the report's own memory traffic slows the run without report too, and one rank per run
   leaves out what ranks wait for each other: a measure of the report's work, next to (not
   instead of) the pairs run one after the other.
2. Memory: a full compartment report (every segment, dt 0.1 ms) of ``--memory-cells`` cells,
   for two run lengths and two buffer sizes; peak RSS per rank minus that of the same run
   without the report must follow the buffer size, not the run length.

Each run's output folder is removed once its summary and file sizes are read: a 4000-cell lfp
run writes ~800 MB, and the files of earlier runs (still being written back) must not weigh on
the next ones. ``--logs DIR`` keeps each run's log as ``DIR/<name>.log``: its progress lines
(every 10 % of the simulated time, with the seconds since the run phase began) show where
within a run the time went, e.g. whether the machine's speed changed during it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.launch import run_neurodamus
from neurodamus.tools.example import write_example
from neurodamus.tools.mechanisms import build_mechanisms
from tests.helpers import base_env, mpirun_prefix


def with_reports(config: Path, name: str, reports: dict, tstop: float | None = None) -> Path:
    sim = json.loads(config.read_text())
    sim["reports"] = reports
    if tstop is not None:
        sim["run"]["tstop"] = tstop
    path = config.parent / f"{name}.json"
    path.write_text(json.dumps(sim, indent=1))
    return path


def pair_order(i: int, names: tuple) -> tuple:
    """The runs of the ``i``-th pair: every other pair in the opposite order, so that a steady
    drift of the machine's speed favours each name equally often."""
    return names if i % 2 == 0 else names[::-1]


def run_pair(names, one, side_by_side: bool = False) -> dict:
    """``{name: one(name)}`` for the runs of a pair: one after the other, or all at once
    (``side_by_side``: every moment's machine speed then hits every run). A run that fails
    (``SystemExit``, see ``run``, or any other error) ends the benchmark with its message;
    side by side, once the other runs are done."""
    if not side_by_side:
        return {name: one(name) for name in names}
    results = {}

    def keep(name):
        try:
            results[name] = one(name)
        except BaseException as failed:   # noqa: BLE001 - raised again in the main thread
            results[name] = failed

    threads = [threading.Thread(target=keep, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for name in names:
        if isinstance(results[name], BaseException):
            raise results[name]
    return results


def run(config: Path, args, out: Path, *extra) -> tuple[dict, float]:
    """(run summary, wall seconds) of a run on ``args.ranks`` ranks, its log kept in
    ``args.logs`` if set; the summary gets ``cpu_s``: CPU seconds of all ranks, and
    ``flush_s``: the report flush and write time the run logs (wall, CPU; slowest rank)."""
    result = run_neurodamus(config, out, args.ranks, extra)
    if args.logs is not None:
        args.logs.mkdir(parents=True, exist_ok=True)
        (args.logs / f"{out.name}.log").write_text(result.proc.stdout + result.proc.stderr)
    summary = result.summary_or_exit("run")
    summary["cpu_s"] = result.cpu
    match = re.search(r"Reports: .* ([0-9.]+) s flushing and writing \(([0-9.]+) s CPU",
                      result.proc.stdout + result.proc.stderr)
    summary["flush_s"] = (float(match.group(1)), float(match.group(2))) if match else None
    summary["h5_mib"] = {f.name: f.stat().st_size / 2**20 for f in out.glob("*.h5")}
    shutil.rmtree(out, ignore_errors=True)
    return summary, result.wall


def overhead(tmp: Path, args) -> list:
    config = write_example(tmp / "circuit", n_cells=args.cells, tstop=args.tstop)
    build_mechanisms([config.parent / "mechanisms"], log=lambda *_: None)
    none = with_reports(config, "none", {})
    soma = with_reports(config, "soma", {"soma": {
        "type": "compartment", "variable_name": "v", "dt": 0.1, "start_time": 0.0,
        "end_time": args.tstop}})
    samples = {"none": [], "soma": []}
    flushes, size = [], 0.0
    for i in range(args.repeat):
        for name, cfg in pair_order(i, (("none", none), ("soma", soma))):
            summary, wall = run(cfg, args, tmp / f"out_{name}_{i}")
            samples[name].append((summary["phases_max_s"]["run"], wall, summary["cpu_s"]))
            if summary["flush_s"]:
                flushes.append(summary["flush_s"])
            size = summary["h5_mib"].get("soma.h5", size)
            print(f"  {name:5s} run {summary['phases_max_s']['run']:8.2f} s   wall "
                  f"{wall:8.2f} s   cpu {summary['cpu_s']:8.2f} s   load "
                  f"{os.getloadavg()[0]:.1f}", flush=True)
    best = {k: [min(s[i] for s in v) for i in range(3)] for k, v in samples.items()}
    pct = [100 * (best["soma"][i] / best["none"][i] - 1) for i in range(3)]

    def fmt(name):
        return ", ".join(f"{r:.1f}/{w:.1f}/{c:.1f}" for r, w, c in samples[name])

    return [
        (f"no report: run/wall/cpu (s), {args.repeat}x", fmt("none"), ""),
        (f"soma report: run/wall/cpu (s), {args.repeat}x", fmt("soma"), ""),
        ("soma report file (MiB)", f"{size:.1f}", ""),
        ("added run-phase time (best)", f"{pct[0]:+.1f} %", "<= 10 %"),
        ("added wall time (best)", f"{pct[1]:+.1f} %", "<= 10 %"),
        ("added CPU time, all ranks (best)", f"{pct[2]:+.1f} %",
         f"{best['soma'][2] - best['none'][2]:+.1f} s of {best['none'][2]:.1f} s"),
        ("report flush+write per run: wall/CPU (s)",
         ", ".join(f"{w:.2f}/{c:.2f}" for w, c in flushes), "slowest rank, from the run log"),
    ]


def lfp_buffer(spec: str, engine: str) -> float:
    """``--lfp-buffer`` for ``engine``: ``MB`` for every engine, or ``ENGINE=MB,...``."""
    if not spec:
        return 0.0
    if "=" not in spec:
        return float(spec)
    pairs = dict(item.split("=", 1) for item in spec.split(","))
    return float(pairs.get(engine, 0.0))


def lfp_overhead(tmp: Path, args) -> list:
    import numpy as np

    config = write_example(tmp / "lcircuit", n_cells=args.cells, tstop=args.tstop)
    build_mechanisms([config.parent / "mechanisms"], log=lambda *_: None)
    build_mechanisms([config.parent / "mechanisms"], coreneuron=True, log=lambda *_: None)
    rng = np.random.default_rng(3)
    positions = rng.uniform([-500, 0, -500], [500, 1500, 500], (args.lfp_electrodes, 3))
    csv = config.parent / "electrodes.csv"
    csv.write_text("".join(f"{x:.2f},{y:.2f},{z:.2f}\n" for x, y, z in positions))
    weights = config.parent / "electrodes.h5"
    cmd = mpirun_prefix(args.ranks) if args.ranks > 1 else []
    cmd += [sys.executable, "-m", "neurodamus", "lfp-weights", str(config),
            f"--electrodes={csv}", "-o", str(weights)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=base_env(), capture_output=True, text=True, check=False)
    if proc.returncode:
        sys.exit(f"lfp-weights failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    rows = [("lfp-weights: wall (s), file (MiB)", f"{time.perf_counter() - t0:.1f}, "
             f"{weights.stat().st_size / 2**20:.0f}", f"{args.lfp_electrodes} electrodes")]
    none = with_reports(config, "none", {})
    lfp = with_reports(config, "lfp", {"lfp": {
        "type": "lfp", "electrodes_file": str(weights), "dt": 0.1, "start_time": 0.0,
        "end_time": args.tstop}})
    for engine in args.engines.split(","):
        samples = {"none": [], "lfp": []}
        size = 0.0
        buffer = lfp_buffer(args.lfp_buffer, engine)
        extra = {"none": [], "lfp": [f"--report-buffer-size={buffer:g}"] if buffer else []}
        cfgs = {"none": none, "lfp": lfp}
        for i in range(args.repeat):

            def one(name, i=i, engine=engine, samples=samples):
                summary, wall = run(cfgs[name], args, tmp / f"lfp_{engine}_{name}_{i}",
                                    f"--simulator={engine}", *extra[name])
                # CPU time is counted over every child process, of both runs when side by side
                cpu = float("nan") if args.side_by_side else summary["cpu_s"]
                samples[name].append((summary["phases_max_s"]["run"], wall, cpu,
                                      summary["flush_s"]))
                print(f"  {engine} {name:5s} run {summary['phases_max_s']['run']:8.2f} s   "
                      f"wall {wall:8.2f} s   cpu {cpu:8.2f} s   load "
                      f"{os.getloadavg()[0]:.1f}", flush=True)
                return summary

            results = run_pair(pair_order(i, ("none", "lfp")), one, args.side_by_side)
            size = results["lfp"]["h5_mib"].get("lfp.h5", size)
        best = {k: [min(s[j] for s in v) for j in range(3)] for k, v in samples.items()}
        pct = [100 * (best["lfp"][j] / best["none"][j] - 1) for j in range(3)]
        # each lfp run against the run without report next to it (the load of the moment
        # hits both): the median of these pairs is steadier than best against best
        paired = [100 * float(np.median([lfp[j] / none[j] - 1 for none, lfp in
                                         zip(samples["none"], samples["lfp"])]))
                  for j in range(3)]
        for name in ("none", "lfp"):
            rows.append((f"{engine} {name}: run/wall/cpu (s), {args.repeat}x", ", ".join(
                f"{r:.1f}/{w:.1f}/{c:.1f}" for r, w, c, _ in samples[name]), ""))
        rows += [
            (f"{engine} lfp file (MiB)", f"{size:.0f}", ""),
            (f"{engine} added run / wall / CPU (best)",
             f"{pct[0]:+.1f} / {pct[1]:+.1f} / {pct[2]:+.1f} %", "wall <= 10 %"),
            (f"{engine} added run / wall / CPU (median of pairs)",
             f"{paired[0]:+.1f} / {paired[1]:+.1f} / {paired[2]:+.1f} %", "wall <= 10 %"),
            (f"{engine} lfp flush+write: wall/CPU (s)", ", ".join(
                f"{f[0]:.1f}/{f[1]:.1f}" for *_, f in samples["lfp"] if f), "slowest rank"),
        ]
    return rows


def memory(tmp: Path, args) -> list:
    config = write_example(tmp / "mcircuit", n_cells=args.memory_cells, tstop=1000.0, seed=2)
    build_mechanisms([config.parent / "mechanisms"], log=lambda *_: None)
    full = {"full": {"type": "compartment", "sections": "all", "compartments": "all",
                     "variable_name": "v", "dt": 0.1, "start_time": 0.0, "end_time": 1e9}}
    rows = []
    for tstop in args.memory_tstops:
        base, _ = run(with_reports(config, f"none{tstop:g}", {}, tstop), args,
                      tmp / f"m_none_{tstop:g}")
        base_rss = max(base["peak_rss_mb"])
        rows.append((f"no report, {tstop:g} ms: peak RSS/rank (MiB)", f"{base_rss:.0f}", ""))
        for buffer_mb in args.buffers:
            out = tmp / f"m_full_{tstop:g}_{buffer_mb:g}"
            summary, _ = run(with_reports(config, f"full{tstop:g}", full, tstop), args,
                             out, f"--report-buffer-size={buffer_mb:g}")
            rss = max(summary["peak_rss_mb"])
            size = summary["h5_mib"]["full.h5"]
            rows.append((f"full report, {tstop:g} ms, buffer {buffer_mb:g} MB",
                         f"+{rss - base_rss:.0f} MiB", f"file {size:.0f} MiB"))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=4000)
    parser.add_argument("--tstop", type=float, default=1000.0)
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--memory-cells", type=int, default=100)
    parser.add_argument("--memory-tstops", type=float, nargs="+", default=[250.0, 1000.0])
    parser.add_argument("--buffers", type=float, nargs="+", default=[8.0, 64.0])
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--lfp-electrodes", type=int, default=0,
                        help="also measure an lfp report of this many electrodes")
    parser.add_argument("--engines", default="NEURON,CORENEURON")
    parser.add_argument("--lfp-buffer", default="",
                        help="--report-buffer-size (MB) of the lfp runs, or ENGINE=MB,... "
                             "(default: the driver's)")
    parser.add_argument("--side-by-side", action="store_true",
                        help="run the two lfp runs of each pair at the same time (e.g. with "
                             "--ranks 1 on 2 cores), so that the machine's speed changes hit "
                             "both alike")
    parser.add_argument("--logs", type=Path, default=None,
                        help="keep each run's log in this folder")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if not args.skip_overhead:
            rows += overhead(tmp, args)
        if not args.skip_memory:
            rows += memory(tmp, args)
        if args.lfp_electrodes:
            rows += lfp_overhead(tmp, args)
    parts = ([] if args.skip_overhead else [f"{args.cells} cells x {args.tstop:g} ms (overhead)"]) \
        + ([] if args.skip_memory else [f"{args.memory_cells} cells (memory)"]) \
        + ([f"{args.cells} cells x {args.tstop:g} ms (lfp, {args.lfp_electrodes} electrodes)"]
           if args.lfp_electrodes else [])
    print(f"\nneurodamus report benchmark: {', '.join(parts)}, {args.ranks} rank(s), "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    print(f"{'measure':<46}{'value':>28}  target/notes")
    for name, value, target in rows:
        print(f"{name:<46}{value:>28}  {target}")


if __name__ == "__main__":
    main()
