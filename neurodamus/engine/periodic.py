"""``--checkpoint-every=MS`` and ``--checkpoints-keep=K``: checkpoints during a run.

The run goes in segments ending at every multiple of MS before tstop. After each segment every
rank writes the same state as ``--save`` (``checkpoint.write_rank_state``) into
``<output>/checkpoints/.t<time>.tmp/``; rank 0 adds the spikes so far and copies of the report
files as flushed so far (``outputs/``), then ``checkpoint.json``, then renames the folder to
``t<time>``. A folder without the ``t<time>`` name or without ``checkpoint.json`` is never a
checkpoint, so a run killed at any moment leaves its last complete checkpoint intact: the
older ones are removed (all but the K newest) only after the new one is renamed.
``--restore=<output>/checkpoints/t<time>`` continues such a run like any ``--save`` folder.

The report recordings stay in NEURON's play/record list while ``SaveState`` saves it (a
recording taken out and put back after initialisation records nothing, so the saving run
could not go on). ``SaveState`` matches the list's entries by position: the restoring run
attaches its recordings after the inputs' plays in the same order and takes out those of
reports already complete at the checkpoint, as the saving run had
(``checkpoint.detach_complete_reports``).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from ..errors import ConfigError
from ..reports.spikes import gather_spikes, write_spikes
from . import rank_state as checkpoint

FOLDER = "checkpoints"
_TMP_PREFIX = ".t"
_TMP_SUFFIX = ".tmp"


# ---- planning (no NEURON) ----------------------------------------------------------------------
def checkpoint_steps(t_start: float, tstop: float, every: float, dt: float) -> list[int]:
    """Simulation steps of the checkpoints after ``t_start`` and before ``tstop``."""
    per = round(every / dt)
    first = int(round(t_start / dt)) // per + 1
    last = int(round(tstop / dt))
    return [k * per for k in range(first, last // per + 1) if k * per < last]


def check_period(every: float, dt: float, where: str) -> None:
    """The period is a whole number of steps (checkpoint times sit on the step grid)."""
    steps = every / dt
    if not every > 0 or abs(steps - round(steps)) > 1e-9 * max(1.0, steps) or round(steps) < 1:
        raise ConfigError(f"{where}: --checkpoint-every={every:g} ms must be a positive "
                          f"multiple of run.dt ({dt:g} ms)")


def folder_name(t: float) -> str:
    return f"t{t:g}"


def complete(root) -> list[tuple[float, Path]]:
    """The complete checkpoints under ``root``, oldest first."""
    out = []
    root = Path(root)
    if not root.is_dir():
        return out
    for path in root.iterdir():
        if path.name.startswith("t") and (path / checkpoint.META).is_file():
            try:
                out.append((float(path.name[1:]), path))
            except ValueError:
                continue
    return sorted(out)


def prune(root, keep: int, protect=None) -> list[Path]:
    """Remove all but the ``keep`` newest complete checkpoints (never ``protect``)."""
    protect = Path(protect).resolve() if protect else None
    removed = []
    for _, path in complete(root)[:-keep] if keep > 0 else []:
        if protect is not None and path.resolve() == protect:
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def remove_incomplete(root) -> None:
    """Leftovers of a run killed while it wrote a checkpoint."""
    root = Path(root)
    if root.is_dir():
        for path in root.iterdir():
            if path.name.startswith(_TMP_PREFIX) and path.name.endswith(_TMP_SUFFIX):
                shutil.rmtree(path, ignore_errors=True)


# ---- the run's side ---------------------------------------------------------------------------
class PeriodicCheckpoints:
    """Every rank holds one; ``run`` replaces the single run-to-tstop call."""

    def __init__(self, root, every: float, keep: int, dt: float, protect=None):
        self.root, self.every, self.keep, self.dt = Path(root), every, keep, dt
        self.protect = protect
        self.written: list[float] = []
        self.seconds: list[float] = []

    def run(self, run_to, h, tstop: float, on_chunk, last_values, save):
        """``run_to(t, hook)`` runs the engine to ``t``, calling ``hook`` after each chunk;
        ``last_values()`` are the reports' values of the last recorded step;
        ``save(t, step, solver_t, values)`` writes one checkpoint (every rank)."""
        captured = {}

        def hook_for(t_end):
            def hook(t):
                if t >= t_end - 1e-9:   # before the flush empties the recordings
                    captured["solver_t"] = float(h.t)
                    captured["values"] = last_values()
                on_chunk(t)
            return hook

        for step in checkpoint_steps(float(h.t), tstop, self.every, self.dt):
            t = step * self.dt
            run_to(t, hook_for(t))
            h.t = captured["solver_t"]   # the engine shows t = its tstop; go on from its own
            t0 = time.perf_counter()
            save(t, step, captured["solver_t"], captured["values"])
            self.seconds.append(time.perf_counter() - t0)
            self.written.append(t)
        run_to(tstop, on_chunk)


def save_mid_run(h, comm, rank: int, tmp_folder: Path, solver_t: float, last_values: dict,
                 report_gids: dict, spikes) -> tuple | None:
    """Every rank: write this rank's state into ``tmp_folder``. Returns the gathered
    (times, gids) on rank 0, None elsewhere."""
    if rank == 0:
        if tmp_folder.exists():
            shutil.rmtree(tmp_folder)
        (tmp_folder / checkpoint.OUTPUTS).mkdir(parents=True)
    if comm.Get_size() > 1:
        comm.Barrier()
    # the reports' recordings stay in the play/record list (a restoring run puts them at the
    # same positions), so the saving run goes on recording undisturbed
    checkpoint.write_rank_state(h, tmp_folder, rank, solver_t, last_values, report_gids)
    times, gids = spikes
    # collective; on rank 0 it also means every rank has finished its report writes
    return gather_spikes(comm, times, gids)


def finish_on_rank0(tmp_folder: Path, final: Path, gathered, spikes_file: Path, populations,
                    report_files, meta: dict) -> None:
    """Rank 0: spikes and report copies, ``checkpoint.json``, then the rename."""
    out = tmp_folder / checkpoint.OUTPUTS
    write_spikes(out / spikes_file.name, *gathered, populations)
    for tmp_path, name in report_files:
        if tmp_path and os.path.isfile(tmp_path):
            shutil.copyfile(tmp_path, out / name)
    checkpoint.write_meta(tmp_folder, meta)
    if final.exists():   # the same time in an earlier run into this folder
        shutil.rmtree(final)
    os.replace(tmp_folder, final)


def temporary_folder(root: Path, t: float) -> Path:
    return root / f"{_TMP_PREFIX}{t:g}{_TMP_SUFFIX}"


__all__ = ["FOLDER", "PeriodicCheckpoints", "check_period", "checkpoint_steps", "complete",
           "finish_on_rank0", "folder_name", "prune", "remove_incomplete", "save_mid_run"]
