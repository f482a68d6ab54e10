"""The ``neurodamus`` command (docopt). Sub-commands are dispatched before docopt parsing."""

from __future__ import annotations

import os
import signal
import sys

from docopt import DocoptExit, docopt

from . import __version__
from .output_guard import fail_active_run

USAGE = """neurodamus: run a SONATA simulation on NEURON under MPI.

Usage:
    neurodamus <simulation_config> [--output-path=DIR] [options]
    neurodamus build-mechanisms [<mod_dir>...] [--coreneuron] [--output=DIR] [--cflags=FLAGS]
    neurodamus example <dir> [--cells=N]
    neurodamus doctor [<simulation_config>] [--output-path=DIR] [--no-mpi]
    neurodamus plot <output_dir> [--output=DIR]
    neurodamus lfp-weights <simulation_config> --electrodes=FILE -o FILE [--sigma=S]
                           [--method=line|point] [--keep-axon]
    neurodamus compare <output_a> <output_b> [--rtol=R] [--atol=A] [--json]
    neurodamus --help
    neurodamus --version

Options:
    -h --help                Show this help.
    --version                Show the version and where the package is imported from.
    --output-path=DIR        Write outputs here instead of the config's output.output_dir.
    --lb-mode=MODE           Load balance mode: RoundRobin, WholeCell (cost per cell from
                             compartments and synapses) or Memory (the dry-run's memory
                             estimates); files cached in <output>/load_balance
                             [default: RoundRobin].
    --dry-run                Estimate memory per cell type and in total from a sample of
                             each type, suggest a rank count; simulate nothing.
    --num-target-ranks=N     With --dry-run: write the Memory allocation for N ranks.
    --memory-per-rank=MB     With --dry-run: memory budget per rank for the suggested rank
                             count (default: this node's memory / cores).
    --modelbuilding-steps=N  Build the model in N slices of cells to cap peak memory
                             (CoreNEURON file mode) [default: 1].
    --dump-cell-state=GIDS   Write a JSON dump of the cell, synapse and NetCon state of these
                             comma-separated gids after initialisation.
    --disable-reports        Do not write reports (spikes are still written).
    --report-buffer-size=MB  Memory per rank for report recording between flushes to the
                             files (default: 8, or 64 rows of the lfp reports if more).
    --simulator=SIM          NEURON or CORENEURON (default: the config's target_simulator).
    --keep-axon              Keep the full axon (templates get 400 as extra argument).
    --keep-build             CoreNEURON: keep the model files (<output>/coreneuron_input).
    --build-model=MODE       CoreNEURON: AUTO (build unless a matching model is on disk), ON
                             or OFF (simulate the model on disk) [default: AUTO].
    --simulate-model=MODE    CoreNEURON: ON, or OFF to only build and keep the model
                             [default: ON].
    --coreneuron-direct-mode  CoreNEURON: in-memory transfer (the default unless a
                             file-mode option is given).
    --cell-permute=N         CoreNEURON: cell permutation, 0 (none) or 1 (optimise node
                             adjacency; 2, parent node adjacency, is for GPUs)
                             [default: 0].
    --model-stats            CoreNEURON: print the model's statistics (cells, mechanism
                             instances, memory) before it runs.
    --enable-shm             CoreNEURON file mode: write the model files to /dev/shm (RAM)
                             when it has room, linked from <output>/coreneuron_input.
    --save=DIR               Write a checkpoint into DIR at the end of the run.
    --restore=DIR            Continue from the checkpoint in DIR (run.tstop must be later).
    --checkpoint-every=MS    Write a checkpoint every MS of simulated time into
                             <output>/checkpoints/t<time>/ (continue with --restore).
    --checkpoints-keep=K     Periodic checkpoints kept (the newest) [default: 2].
    --keep-subnormals        Compute with IEEE subnormal numbers (below 2.2e-308) instead of
                             flushing them to zero, which keeps quiet networks from slowing
                             down as their states decay (docs/hpc.md).
    --provenance=MODE        fast: the provenance record holds input files' sizes and mtimes;
                             full: also their content hashes [default: fast].
    --verbose                More messages (progress per run chunk).
    --debug                  Debug messages and tracebacks for internal errors.

Environment:
    NRNMECH_LIB_PATH         Colon-separated libnrnmech.so files to load.
    HOC_LIBRARY_PATH         Searched before the driver's own HOC library.
    neurodamus_special=1     Do not re-exec into a 'special' binary found in ./<arch>/ or PATH.
    NEURODAMUS_VECTOR_MATH=1 Mechanisms the run builds itself vectorise CoreNEURON's
                             exp/log/pow (see build-mechanisms --vector-math).
"""

BUILD_USAGE = """Build the mechanism library (core/mod + the given folders) with nrnivmodl.

Usage:
    neurodamus build-mechanisms [<mod_dir>...] [--coreneuron] [--output=DIR] [--cflags=FLAGS]
                                [--vector-math]

Options:
    --coreneuron    Also build the CoreNEURON library (nrnivmodl -coreneuron).
    --output=DIR    Build into DIR (fresh <arch>/ folder) instead of the shared cache.
    --cflags=FLAGS  Compiler flags for both libraries, after nrnivmodl's own -O2 and ours,
                    e.g. "-O3 -march=native" (cached apart from other flags).
    --vector-math   Vectorise CoreNEURON's exp/log/pow (libmvec) and use AVX2 when this CPU
                    has it: CoreNEURON's solver ~2x faster, its spikes no longer guaranteed
                    bit for bit NEURON's (docs/hpc.md). Also NEURODAMUS_VECTOR_MATH=1.

Environment:
    NEURODAMUS_MECHANISMS_PORTABLE=1  With --vector-math: no AVX2 (runs on every x86-64 CPU).
"""

EXAMPLE_USAGE = """Write the bundled example SONATA circuit and simulation config.

Usage:
    neurodamus example <dir> [--cells=N] [--tstop=MS] [--seed=S]

Options:
    --cells=N     Number of cells [default: 100].
    --tstop=MS    Simulated time in ms [default: 1000].
    --seed=S      Seed of the circuit generator [default: 1].
"""


def _speaks() -> bool:
    """Usage errors come before MPI: only the launcher's rank 0 prints them."""
    from .launch import launcher_rank

    return launcher_rank() == 0


def _parse(usage, argv):
    try:
        return docopt(usage, argv=argv, default_help=False, version=None)
    except DocoptExit as exc:
        if _speaks():
            print(str(exc) or usage, file=sys.stderr)
        raise SystemExit(2) from None


def _version_text():
    pkg = os.path.dirname(os.path.abspath(__file__))
    return f"neurodamus {__version__} ({pkg})"


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # one rank per core: numpy's BLAS threads (lfp reports' weight products) would only fight
    # the other ranks: on 2 ranks x 2 cores they took 20-30x more CPU for the same product.
    # Set before numpy is first imported (OpenBLAS reads it when it loads).
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    if argv and argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    if argv and argv[0] == "--version":
        print(_version_text())
        return 0
    if argv and argv[0] == "build-mechanisms":
        return _build_mechanisms(argv[1:])
    if argv and argv[0] == "example":
        return _example(argv[1:])
    if argv and argv[0] == "lfp-weights":
        return _lfp_weights(argv[1:])
    if argv and argv[0] == "compare":
        return _compare(argv[1:])
    if argv and argv[0] in ("doctor", "plot"):
        return _doctor(argv[1:]) if argv[0] == "doctor" else _plot(argv[1:])
    _remove_stale_marker(argv)
    args = _parse(USAGE, argv)
    if args["--help"]:
        print(USAGE)
        return 0
    return _run(args, argv)


def _remove_stale_marker(argv) -> None:
    """``<config>.SUCCESS`` of an earlier run goes first, even when the options are bad."""
    from .launch import launcher_rank

    config = next((a for a in argv if not a.startswith("-")), None)
    if config and launcher_rank() == 0:
        try:
            os.unlink(config + ".SUCCESS")
        except OSError:
            pass


def _doctor(argv) -> int:
    from .tools.doctor import USAGE as DOCTOR_USAGE
    from .tools.doctor import run_doctor

    if "-h" in argv or "--help" in argv:
        print(DOCTOR_USAGE)
        return 0
    args = _parse(DOCTOR_USAGE, ["doctor", *argv])
    try:
        ranks = int(args["--ranks"])
    except ValueError:
        print(DOCTOR_USAGE, file=sys.stderr)
        return 2
    return run_doctor(args["<simulation_config>"], args["--output-path"],
                      with_mpi=not args["--no-mpi"], ranks=ranks)


def _tool(name: str, usage: str, main, error, argv, error_code: int = 1) -> int:
    """A NEURON-free sub-command: help, docopt parsing, its own error class as one ERROR line."""
    if "-h" in argv or "--help" in argv:
        print(usage)
        return 0
    try:
        return main(_parse(usage, [name, *argv]))
    except error as exc:
        _fail(str(exc))
        return error_code
    except BrokenPipeError:   # `neurodamus compare a b | head`: the reader left, say nothing
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141   # what a shell reports for a process ended by SIGPIPE


def _plot(argv) -> int:
    from .tools import plot

    return _tool("plot", plot.USAGE, plot.main, plot.PlotError, argv)


def _lfp_weights(argv) -> int:
    from . import lfp_weights, logs
    from .errors import NeurodamusError
    from .launch import launcher_rank
    from .parallel import RunFailed

    if "-h" in argv or "--help" in argv:
        print(lfp_weights.USAGE)
        return 0
    args = _parse(lfp_weights.USAGE, ["lfp-weights", *argv])
    logs.configure(launcher_rank(), False)
    try:
        return lfp_weights.main(args)
    except (NeurodamusError, RunFailed) as exc:
        if _rank() == 0:   # the same message on every rank (RunFailed gathers them)
            _fail(str(exc))
        return 1


def _compare(argv) -> int:
    from .tools import compare

    return _tool("compare", compare.USAGE, compare.main, compare.CompareError, argv,
                 error_code=2)


def _fail(message: str) -> int:
    from .parallel import write_error

    write_error(message)
    return 1


class RunInterrupted(BaseException):
    """SIGTERM (or SIGHUP) reached the run: unwind like Ctrl-C, without a traceback."""


def _on_signal(signum, _frame):
    raise RunInterrupted(signal.Signals(signum).name)


def _interrupted(exc) -> int:
    """Ctrl-C or a signal: one line (rank 0), the run record says failed, exit 128 + n."""
    name = "SIGINT" if isinstance(exc, KeyboardInterrupt) else str(exc)
    message = "interrupted (Ctrl-C)" if name == "SIGINT" else f"stopped by {name}"
    fail_active_run(message)
    if _rank() == 0:
        _fail(f"{message}: the run did not finish; its outputs are incomplete")
    _abort_others()
    return 128 + int(getattr(signal, name, signal.SIGINT))


def _build_mechanisms(argv) -> int:
    if "-h" in argv or "--help" in argv:
        print(BUILD_USAGE)
        return 0
    args = _parse(BUILD_USAGE, ["build-mechanisms", *argv])
    from .errors import NeurodamusError
    from .tools.mechanisms import build_mechanisms

    try:
        build = build_mechanisms(args["<mod_dir>"], coreneuron=args["--coreneuron"],
                                 cflags=args["--cflags"], output=args["--output"],
                                 vector_math=True if args["--vector-math"] else None)
    except NeurodamusError as exc:
        return _fail(str(exc))
    print(f"Mechanisms ready in {build.arch_dir}")
    print("Use them with:")
    for line in build.environment_lines():
        print("    " + line)
    return 0


def _example(argv) -> int:
    if "-h" in argv or "--help" in argv:
        print(EXAMPLE_USAGE)
        return 0
    args = _parse(EXAMPLE_USAGE, ["example", *argv])
    from .tools.example import write_example

    try:
        n_cells, tstop, seed = int(args["--cells"]), float(args["--tstop"]), int(args["--seed"])
    except ValueError:
        print(EXAMPLE_USAGE, file=sys.stderr)
        return 2
    if n_cells < 2:
        return _fail("--cells: at least 2 cells are needed")
    config = write_example(args["<dir>"], n_cells=n_cells, tstop=tstop, seed=seed)
    print(f"Example circuit written: {config}")
    return 0


def _options(args):
    from .config import RunOptions

    gids = ()
    if args["--dump-cell-state"]:
        try:
            gids = tuple(int(g) for g in args["--dump-cell-state"].split(",") if g.strip())
        except ValueError:
            raise SystemExit(_usage_error("--dump-cell-state takes comma-separated integers"))
    simulator = args["--simulator"]
    if simulator and simulator.upper() not in ("NEURON", "CORENEURON"):
        raise SystemExit(_usage_error(f"--simulator must be NEURON or CORENEURON, got "
                                      f"{simulator}"))
    try:
        buffer_mb = args["--report-buffer-size"]
        buffer_mb = None if buffer_mb is None else float(buffer_mb)
        if buffer_mb is not None and not buffer_mb > 0:
            raise ValueError
    except ValueError:
        raise SystemExit(_usage_error("--report-buffer-size takes a positive number of MB"))
    from .circuit.distribution import LB_MODES
    if args["--lb-mode"] not in LB_MODES:
        raise SystemExit(_usage_error(f"--lb-mode must be one of {', '.join(LB_MODES)}"))
    scale = _scale_options(args)   # --dry-run, --num-target-ranks, ...
    provenance = (args.get("--provenance") or "fast").lower()
    if provenance not in ("fast", "full"):
        raise SystemExit(_usage_error(f"--provenance must be fast or full, got {provenance}"))
    return RunOptions(output_path=args["--output-path"], lb_mode=args["--lb-mode"],
                      dump_cell_state=gids, disable_reports=args["--disable-reports"],
                      report_buffer_size=buffer_mb,
                      simulator=simulator, verbose=args["--verbose"], debug=args["--debug"],
                      keep_axon=args["--keep-axon"],
                      keep_subnormals=bool(args.get("--keep-subnormals")),
                      provenance=provenance, **scale,
                      **_coreneuron_options(args))


def _coreneuron_options(args) -> dict:
    """--keep-build, --build-model, --simulate-model, --coreneuron-direct-mode, --save,
    --restore; --cell-permute, --model-stats, --enable-shm."""
    build = (args.get("--build-model") or "AUTO").upper()
    if build not in ("AUTO", "ON", "OFF"):
        raise SystemExit(_usage_error(f"--build-model must be AUTO, ON or OFF, got {build}"))
    simulate = (args.get("--simulate-model") or "ON").upper()
    if simulate not in ("ON", "OFF"):
        raise SystemExit(_usage_error(f"--simulate-model must be ON or OFF, got {simulate}"))
    every = args.get("--checkpoint-every")
    try:
        every = float(every) if every is not None else None
        keep = int(args.get("--checkpoints-keep") or 2)
        if (every is not None and not every > 0) or keep < 1:
            raise ValueError
    except ValueError:
        raise SystemExit(_usage_error("--checkpoint-every takes a positive number of ms and "
                                      "--checkpoints-keep a positive integer"))
    permute = args.get("--cell-permute") or "0"
    if permute not in ("0", "1"):
        raise SystemExit(_usage_error(
            f"--cell-permute must be 0 or 1 (2 needs a GPU build of CoreNEURON), got {permute}"))
    return dict(cell_permute=int(permute), model_stats=bool(args.get("--model-stats")),
                enable_shm=bool(args.get("--enable-shm")),
                keep_build=bool(args.get("--keep-build")), build_model=build,
                checkpoint_every=every, checkpoints_keep=keep,
                simulate_model=simulate == "ON",
                coreneuron_direct_mode=bool(args.get("--coreneuron-direct-mode")),
                save=args.get("--save"), restore=args.get("--restore"))


def _scale_options(args) -> dict:
    """--dry-run, --num-target-ranks, --memory-per-rank, --modelbuilding-steps."""
    def positive(name, cast):
        value = args.get(name)
        if value is None:
            return None
        try:
            value = cast(value)
            if not value > 0:
                raise ValueError
        except ValueError:
            raise SystemExit(_usage_error(f"{name} takes a positive number, got {value}"))
        return value
    target = positive("--num-target-ranks", int)
    memory = positive("--memory-per-rank", float)
    steps = positive("--modelbuilding-steps", int) or 1
    dry_run = bool(args.get("--dry-run"))
    if (target or memory) and not dry_run:
        raise SystemExit(_usage_error("--num-target-ranks and --memory-per-rank go with "
                                      "--dry-run"))
    return dict(dry_run=dry_run, num_target_ranks=target, memory_per_rank=memory,
                modelbuilding_steps=steps)


def _usage_error(message):
    if _speaks():
        print(f"ERROR: {message}\n", file=sys.stderr)
        print(USAGE.split("Options:")[0].strip(), file=sys.stderr)
    return 2


def _run(args, argv) -> int:
    options = _options(args)
    from . import allocator, launch

    try:
        preload = allocator.plan(os.environ)
    except launch.LaunchError as exc:
        if _speaks():
            _fail(str(exc))
        return 1
    # one re-exec at most: into special when there is one, else into this Python when an
    # allocator is to be preloaded; each returns when it does not apply
    launch.maybe_exec_special(argv, preload.env)
    if preload.env is not None:
        launch.exec_with_allocator(preload.env)
    allocator.restore(os.environ)
    from . import logs, pipeline
    from .errors import NeurodamusError
    from .parallel import RunFailed

    logs.configure(launch.launcher_rank(), options.debug)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _on_signal)
    try:
        code = pipeline.run(args["<simulation_config>"], options)
        if code == 0 and launch.is_program_entry():
            launch.exit_without_teardown(0)
        return code
    except (KeyboardInterrupt, RunInterrupted) as exc:
        return _leave(_interrupted(exc))
    except RunFailed as exc:
        # every rank agreed on the failure: rank 0 reports, everyone exits cleanly
        fail_active_run(str(exc))
        if _rank() == 0:
            _fail(str(exc))
        return _leave(1)
    except NeurodamusError as exc:
        from .errors import LaunchError, OutputGone
        from .launch import launcher_rank

        fail_active_run(str(exc))
        # a broken MPI makes every rank think it is rank 0: let the launcher's rank 0 speak;
        # a rank whose output file vanished follows the rank that failed writing it
        if (not isinstance(exc, LaunchError) or launcher_rank() == 0) and \
                not isinstance(exc, OutputGone):
            _fail(str(exc))
        _abort_others()
        return _leave(1)
    except Exception as exc:  # an error outside a phase: end every rank now, never hang
        import traceback
        traceback.print_exc()
        fail_active_run(f"internal error: {type(exc).__name__}: {exc}")
        _fail(f"internal error: {type(exc).__name__}: {exc}")
        _abort_others()
        return 1


def _leave(code: int) -> int:
    """A failed run ends without tearing its half-built model down: HDF5 objects of a file
    that failed to write (a full disk) crash when freed at interpreter exit."""
    from . import launch

    if launch.is_program_entry():
        launch.exit_without_teardown(code)
    return code


def _rank() -> int:
    try:
        from mpi4py import MPI
        return MPI.COMM_WORLD.Get_rank()
    except Exception:
        return 0


def _abort_others():
    try:
        from mpi4py import MPI
        if MPI.Is_initialized() and MPI.COMM_WORLD.Get_size() > 1:
            sys.stdout.flush()
            sys.stderr.flush()
            MPI.COMM_WORLD.Abort(1)
    except ImportError:
        pass


if __name__ == "__main__":
    sys.exit(main())
