"""The performance targets of issue 21 in one table: run loop against a bare psolve, build of
Import3d templates, CoreNEURON against NEURON, compiler flags of the mechanisms, memory.

    python benchmarks/targets.py [--cells 4000] [--tstop 10] [--foreign-cells 1000]
                                 [--foreign-tstop 50] [--ranks 1] [--repeat 2]
                                 [--flags=",vector-math,vector-math:-march=x86-64"]
                                 [--parts=loop,engines]

Every figure comes from driver runs of the benchmark circuits (``benchmarks/circuits.py``: the
example model; ``benchmarks/foreign.py``: the same cells with templates that load their
morphology with Import3d) in the process that built them (``benchmarks/runloop.py``):

* run loop: the driver's loop and a bare ``pc.psolve(tstop)`` alternating on the same model,
  CPU time of the slowest rank (a busy machine changes the wall time of identical runs by 2-3x,
  the CPU time by a few per cent), median of ``--repeat``;
* foreign build: local cells / CPU seconds of the cell build on the slowest rank;
* CoreNEURON: CPU time of its run (in-memory transfer included) / NEURON's bare psolve, for
  each set of compiler flags (both libraries built with ``build-mechanisms --cflags``): ""
  is the default (nrnivmodl's flags), ``vector-math`` is ``--vector-math`` (vector
  exp/log/pow, AVX2 when the CPU has it), ``vector-math:FLAGS`` the same with ``--cflags``
  (``-march=x86-64``: the portable SSE2 level); and CoreNEURON's own solver time (its time
  loop, printed with ``--verbose``) / the wall time of NEURON's bare psolve, the target's
  figure;
* memory: the peak RSS per rank of the NEURON run (jemalloc preloaded, as runs do by default).

Spikes must be the same in every run of a circuit (checked; the benchmark stops otherwise),
except CoreNEURON's with ``vector-math``, whose differences from NEURON's are reported.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.runloop import circuit_config, measure
from neurodamus import allocator
from neurodamus.tools.mechanisms import build_mechanisms
from tests.helpers import read_spikes

BASELINE_RSS_MIB = {1: 1638, 2: 870}   # 4000 cells, NEURON, jemalloc, before issue 21
_SOLVER_RE = re.compile(r"Solver Time\s*:\s*([0-9.eE+-]+)")   # CoreNEURON's, with --verbose


def _allocator_env() -> dict:
    lib = allocator.find_jemalloc(os.environ)
    return {"LD_PRELOAD": lib, "MALLOC_CONF": allocator.JEMALLOC_CONF} if lib else {}


def _spike_list(path: Path) -> list[tuple[float, int]]:
    """(time, gid) of every spike of the example circuit (cortex has offset 0)."""
    times, ids = read_spikes(path)["cortex"]
    return sorted(zip(times.tolist(), ids.tolist()))


def _median(xs):
    return statistics.median(xs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=4000)
    parser.add_argument("--tstop", type=float, default=10.0)
    parser.add_argument("--foreign-cells", type=int, default=1000)
    parser.add_argument("--foreign-tstop", type=float, default=50.0)
    parser.add_argument("--ranks", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--flags", default=",vector-math,vector-math:-march=x86-64",
                        help="comma-separated compiler flag sets ('' = nrnivmodl's default)")
    parser.add_argument("--parts", default="loop,engines",
                        help="loop (run loop, foreign build, memory), engines (CoreNEURON and "
                             "compiler flags), or both")
    args = parser.parse_args()
    args.flags = args.flags.split(",")
    parts = set(args.parts.split(","))
    env = _allocator_env()
    rows = []
    example = circuit_config("example", args.cells, args.tstop)
    foreign = circuit_config("foreign", args.foreign_cells, args.foreign_tstop)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # 1 + 2: run loop on both circuits, the foreign build rate
        reference = None
        for name, config in (("example", example), ("foreign", foreign)):
            if "loop" not in parts:
                break
            data = measure(config, args.ranks, args.repeat, tmp / name, env)
            ours, bare = _median(data["cpu"]["ours"]), _median(data["cpu"]["bare"])
            plain = _median(data["cpu"]["bare uncompressed"])
            rows.append((f"run loop / bare psolve, {name} (CPU)", f"{ours / bare:.3f}",
                         "<= 1.02", f"{ours:.1f} / {bare:.1f} s"))
            rows.append((f"uncompressed / compressed exchange, {name}", f"{plain / bare:.3f}",
                         "", "spike_compress(3,1,0)"))
            if name == "foreign":
                rate = data["cells_per_rank"] / data["cell_build_cpu"]
                rows.append(("foreign build, cells/s per rank (CPU)", f"{rate:.0f}", ">= 1000",
                             f"{data['cells_per_rank']} cells"))
            else:
                rss = max(data["summary"]["peak_rss_mb"])
                limit = 0.8 * BASELINE_RSS_MIB.get(args.ranks, 0)
                rows.append((f"peak RSS per rank, {args.cells} cells (MiB)", f"{rss:.0f}",
                             f"<= {limit:.0f}" if limit else "",
                             "jemalloc" if env else "system malloc"))
                reference = [tuple(x) for x in data["spike_list"]]
        # 3 + 4: CoreNEURON against NEURON, for each set of compiler flags
        neuron_bare = {}
        for flags in args.flags if "engines" in parts else ():
            vector_math = flags.startswith("vector-math")
            build = build_mechanisms([example.parent / "mechanisms"], coreneuron=True,
                                     cflags=flags.partition(":")[2] if vector_math else flags,
                                     vector_math=vector_math, log=lambda *a: None)
            lib_env = dict(env, NRNMECH_LIB_PATH=str(build.library))
            label = flags or "default"
            out = tmp / f"neuron_{len(neuron_bare)}"
            data = measure(example, args.ranks, 1, out, lib_env, variants=("bare",))
            neuron_bare[flags] = _median(data["cpu"]["bare"])
            reference = reference or [tuple(x) for x in data["spike_list"]]
            if [tuple(x) for x in data["spike_list"]] != reference:
                sys.exit(f"NEURON ({label}): spikes differ from the first run's")
            out = tmp / f"core_{len(neuron_bare)}"
            core = measure(example, args.ranks, 1, out, lib_env,
                           args=("--simulator=CORENEURON", "--verbose"),
                           variants=())
            same = _spike_list(out / "out.h5") == reference
            if not same and not vector_math:
                sys.exit(f"CoreNEURON ({label}): spikes differ from NEURON's")
            spikes_note = "" if same else ", spikes differ from NEURON's"
            ratio = core["coreneuron_run_cpu"] / neuron_bare[flags]
            rows.append((f"CoreNEURON run / NEURON solver, {label}", f"{ratio:.3f}", "",
                         f"CPU {core['coreneuron_run_cpu']:.1f} / {neuron_bare[flags]:.1f} s "
                         f"(CoreNEURON's: model transfer included)"))
            # CoreNEURON's own "Solver Time" (its time loop, wall, slowest rank) against the
            # wall time of NEURON's bare psolve
            solver = [float(x) for x in _SOLVER_RE.findall(core["stdout"])]
            if solver:
                bare_wall = _median(data["times"]["bare"])
                rows.append((f"CoreNEURON / NEURON solver, {label}",
                             f"{max(solver) / bare_wall:.3f}", "<= 0.5",
                             f"wall {max(solver):.1f} / {bare_wall:.1f} s{spikes_note}"))
        for flags in args.flags[1:] if neuron_bare else ():
            base = neuron_bare[args.flags[0]]
            rows.append((f"NEURON solver, {flags} / {args.flags[0] or 'default'}",
                         f"{neuron_bare[flags] / base:.3f}", "", "CPU"))
    print(f"\nneurodamus issue-21 targets: example {args.cells} cells x {args.tstop:g} ms, "
          f"Import3d templates {args.foreign_cells} cells x {args.foreign_tstop:g} ms, "
          f"{args.ranks} rank(s), {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    print(f"{'measure':<48}{'value':>9}  {'target':<9} notes")
    for name, value, target, note in rows:
        print(f"{name:<48}{value:>9}  {target:<9} {note}")


if __name__ == "__main__":
    main()
