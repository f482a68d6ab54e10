"""Our run loop against a bare ``pc.psolve(tstop)`` on the same built model, in one process.

    python benchmarks/runloop.py [--circuit example|foreign] [--cells 4000] [--tstop 20]
                                 [--ranks 1] [--repeat 2]

The model is built by the driver (``neurodamus <config>``, no reports). When the driver reaches
its run loop (``neuron_engine.run``), this benchmark takes the loop over and runs, alternating
``--repeat`` times, each after a fresh ``stdinit()``:

* ``ours``: the driver's loop as the run calls it (25 ms chunks, the chunk hook: report flush,
  progress);
* ``bare``: one ``pc.psolve(tstop)``;
* ``bare uncompressed``: the same with the spike exchange uncompressed
  (``pc.spike_compress(0, 0)``), to show what the driver's ``spike_compress(3, 1, 0)`` changes.

Each variant's spikes must be identical to the first ``ours`` run (checked; the benchmark stops
otherwise). Timings are the slowest rank's wall and CPU time; the table gives their medians and
the ratio of the CPU medians (on a machine shared with other jobs the wall time of identical
runs varies by 2-3x, the CPU time by a few per cent).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VARIANTS = ("ours", "bare", "bare uncompressed")
_RESULT_ENV = "NEURODAMUS_BENCH_RUNLOOP_OUT"
_REPEAT_ENV = "NEURODAMUS_BENCH_RUNLOOP_REPEAT"
_VARIANTS_ENV = "NEURODAMUS_BENCH_RUNLOOP_VARIANTS"
_extra: dict = {}   # CPU seconds of the cell build and of a CoreNEURON run (slowest rank)


def _max_cpu(seconds: float) -> float:
    from mpi4py import MPI

    return MPI.COMM_WORLD.allreduce(seconds, op=MPI.MAX)


# ---- inside the run (every rank) ----------------------------------------------------------------
def _spikes_since(vec_t, vec_gid, start):
    t, g = vec_t.as_numpy()[start:], vec_gid.as_numpy()[start:]
    return sorted(zip(t.tolist(), g.tolist()))


def _paired_loop(original, repeat, out_path, variants=VARIANTS):
    from mpi4py import MPI
    from neuron import h

    comm = MPI.COMM_WORLD

    def loop(h_, pc, tstop, on_chunk=None):
        bare = h.ParallelContext()
        rec_t, rec_gid = h.Vector(), h.Vector()
        bare.spike_record(-1, rec_t, rec_gid)
        times = {v: [] for v in variants}
        cpu = {v: [] for v in variants}
        reference = None
        for _ in range(repeat):
            for variant in variants:
                bare.spike_compress(0, 0) if variant == "bare uncompressed" else \
                    bare.spike_compress(3, 1, 0)
                h.stdinit()
                start = int(rec_t.size())
                comm.Barrier()
                t0, c0 = time.perf_counter(), time.process_time()
                if variant == "ours":
                    original(h_, pc, tstop, on_chunk)
                else:
                    bare.psolve(tstop)
                elapsed = comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)
                cpu[variant].append(comm.allreduce(time.process_time() - c0, op=MPI.MAX))
                times[variant].append(elapsed)
                spikes = comm.gather(_spikes_since(rec_t, rec_gid, start), root=0)
                if comm.rank == 0:
                    merged = sorted(s for part in spikes for s in part)
                    if reference is None:
                        reference = merged
                    elif merged != reference:
                        raise SystemExit(f"runloop benchmark: {variant} spikes differ "
                                         f"({len(merged)} vs {len(reference)})")
        bare.spike_compress(3, 1, 0)
        if comm.rank == 0:
            Path(out_path).write_text(json.dumps({"times": times, "cpu": cpu, **_extra,
                                                  "spikes": len(reference),
                                                  "spike_list": reference}) + "\n")
    return loop


def _timed_cell_build(original):
    def build(plan, rt, model):
        c0 = time.process_time()
        original(plan, rt, model)
        _extra["cell_build_cpu"] = _max_cpu(time.process_time() - c0)
        _extra["cells_per_rank"] = max(len(model.cells), 1)
    return build


def _timed_core_run(original, out_path):
    def run(engine, *args, **kw):
        c0 = time.process_time()
        original(engine, *args, **kw)
        _extra["coreneuron_run_cpu"] = _max_cpu(time.process_time() - c0)
        if engine.rank == 0:
            Path(out_path).write_text(json.dumps(_extra) + "\n")
    return run


def inner(argv):
    from neurodamus import cli, launch, model
    from neurodamus.engine import coreneuron_engine, neuron_engine

    out = os.environ[_RESULT_ENV]
    variants = tuple(os.environ.get(_VARIANTS_ENV, ",".join(VARIANTS)).split(","))
    model.build_cells = _timed_cell_build(model.build_cells)
    neuron_engine.run = _paired_loop(neuron_engine.run, int(os.environ[_REPEAT_ENV]), out,
                                     variants)
    coreneuron_engine.CoreNeuronEngine.run = _timed_core_run(
        coreneuron_engine.CoreNeuronEngine.run, out)
    code = cli.main(argv)
    if code == 0:   # as the neurodamus command ends: no object-by-object teardown
        launch.exit_without_teardown(0)
    return code


# ---- the benchmark ----------------------------------------------------------------------------
def measure(config: Path, ranks: int, repeat: int, out: Path, env_extra=None, args=(),
            variants=VARIANTS) -> dict:
    """One driver run of ``config`` with the paired loop; its figures and run summary."""
    import subprocess

    from tests.helpers import base_env, mpirun_prefix

    out.mkdir(parents=True, exist_ok=True)
    result = out / "runloop.json"
    env = base_env(**{_RESULT_ENV: str(result), _REPEAT_ENV: str(repeat),
                      _VARIANTS_ENV: ",".join(variants)}, **(env_extra or {}))
    cmd = [sys.executable, __file__, "--inner", str(config), f"--output-path={out}",
           "--disable-reports", *args]
    if ranks > 1:
        cmd = mpirun_prefix(ranks) + cmd
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not result.exists():
        sys.exit(f"runloop run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    data = json.loads(result.read_text())
    data["summary"] = json.loads((out / "run_summary.json").read_text())
    data["stdout"] = proc.stdout
    return data


def circuit_config(kind: str, cells: int, tstop: float) -> Path:
    if kind == "foreign":
        from benchmarks.foreign import make_foreign_circuit
        return make_foreign_circuit(cells, tstop, log=lambda m: print(m, file=sys.stderr))
    from benchmarks.circuits import make_circuit
    return make_circuit(cells, tstop, log=lambda m: print(m, file=sys.stderr))


def rows(data: dict) -> list[tuple[str, str, str]]:
    """Wall and CPU medians per variant; the ratios from the CPU time of the slowest rank,
    which a busy machine disturbs far less than the wall time."""
    out = []
    med = {}
    for key, label in (("times", "wall"), ("cpu", "CPU")):
        for v, ts in data[key].items():
            med[key, v] = statistics.median(ts)
            out.append((f"{v}: {label} s (median of {len(ts)})", f"{med[key, v]:.2f}",
                        " ".join(f"{t:.2f}" for t in ts)))
    for key, label in (("cpu", "CPU"), ("times", "wall")):
        out.append((f"ours / bare ({label})", f"{med[key, 'ours'] / med[key, 'bare']:.3f}",
                    "<= 1.02" if key == "cpu" else "noisy on a busy machine"))
    out.append(("no compression / bare (CPU)",
                f"{med['cpu', 'bare uncompressed'] / med['cpu', 'bare']:.3f}",
                "> 1: what spike_compress(3,1,0) saves"))
    return out


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--inner":
        sys.exit(inner(sys.argv[2:]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--circuit", choices=("example", "foreign"), default="example")
    parser.add_argument("--cells", type=int, default=4000)
    parser.add_argument("--tstop", type=float, default=20.0)
    parser.add_argument("--ranks", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    config = circuit_config(args.circuit, args.cells, args.tstop)
    with tempfile.TemporaryDirectory() as tmp:
        data = measure(config, args.ranks, args.repeat, Path(tmp))
    print(f"\nrun loop vs bare psolve: {args.circuit} circuit, {args.cells} cells, "
          f"{args.tstop:g} ms, {args.ranks} rank(s), load {os.getloadavg()[0]:.1f}, "
          f"{data['spikes']} spikes in every run")
    for name, value, note in rows(data):
        print(f"{name:<36}{value:>10}  {note}")


if __name__ == "__main__":
    main()
