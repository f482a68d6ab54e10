"""What a run leaves behind about itself: the end-of-run table and the output folder's record.

* The table: phase wall times (min/max over ranks), spikes and mean rate per population, peak
  memory per rank. ``gather_summary`` is collective (every rank calls it, outside any phase);
  ``format_summary`` runs on rank 0 only. Timings are a flat dict: the phases ``load``,
  ``build``, ``init``, ``run``, ``write`` and optional details named ``<phase>/<what>``
  (``build/cells``), shown indented under their phase.
* The record (``neurodamus_run.json`` in the output folder, rank 0 only): which files the run
  writes, its status (``running`` until every output is closed, then ``complete``; ``failed``
  with the message after an error or a signal) and the
  facts that tools such as ``neurodamus plot`` need (tstop, populations, cell counts). A rerun
  into the same folder first removes the files the previous record lists, so a folder never
  mixes files of two runs; files it did not write are never deleted.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import resource
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import NeurodamusError
from ..output_guard import (
    LOCK_NAME,
    OutputLock,
    clear_active_run,
    set_active_run,
    writing,
)

log = logging.getLogger(__name__)

PHASES = ("load", "build", "init", "run", "write")
_LIST_RANKS_UP_TO = 8


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB (Linux ru_maxrss is in KiB)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024.0 if sys.platform != "darwin" else rss / 2**20


@dataclass
class RankRow:
    """What one rank contributes to the table."""

    timings: dict
    peak_mb: float
    counts: dict = field(default_factory=dict)   # e.g. {"cells": 4, "synapses": 230}

    # rows used to be (timings, peak) tuples: keep indexing working for older callers
    def __getitem__(self, index):
        return (self.timings, self.peak_mb)[index]


def gather_summary(comm, timings: dict, counts: dict | None = None) -> list[RankRow] | None:
    """Every rank's timings, peak memory and counts on rank 0 (None on the other ranks)."""
    row = RankRow(dict(timings), peak_rss_mb(), dict(counts or {}))
    if comm is None or comm.Get_size() == 1:
        return [row]
    return comm.gather(row, root=0)


def _phase_names(rows) -> list[str]:
    """The main phases in run order, each followed by its details in first-seen order."""
    names = list(PHASES)
    for row in rows:
        for key in row.timings:
            base = key.split("/", 1)[0]
            if base not in names:
                names.append(base)
    ordered = []
    for base in names:
        ordered.append(base)
        for row in rows:
            for key in row.timings:
                if key.startswith(base + "/") and key not in ordered:
                    ordered.append(key)
    return ordered


def _memory_line(rows) -> str:
    peaks = [r.peak_mb for r in rows]
    if len(peaks) <= _LIST_RANKS_UP_TO:
        return "peak memory per rank (MiB): " + ", ".join(f"{p:.0f}" for p in peaks)
    top = max(range(len(peaks)), key=peaks.__getitem__)
    return (f"peak memory per rank (MiB): min {min(peaks):.0f}, mean "
            f"{sum(peaks) / len(peaks):.0f}, max {peaks[top]:.0f} (rank {top})")


def format_summary(rows, spike_counts: dict, tstop: float, n_cells: dict,
                   wall_seconds: float | None = None, allocator: dict | None = None) -> str:
    """The table rank 0 prints at the end of a run (``allocator``: ``allocator.active()``)."""
    rows = [r if isinstance(r, RankRow) else RankRow(r[0], r[1]) for r in rows]
    n_ranks = len(rows)
    lines = ["", f"Run summary ({n_ranks} rank{'s' if n_ranks > 1 else ''})",
             f"{'phase':<18}{'min s':>10}{'max s':>10}{'slowest':>9}"]
    total_max = 0.0
    for name in _phase_names(rows):
        values = [r.timings.get(name, 0.0) for r in rows]
        if "/" not in name and name not in PHASES and not any(values):
            continue
        slowest = max(range(n_ranks), key=values.__getitem__)
        label = name if "/" not in name else "  " + name.split("/", 1)[1]
        if "/" not in name:
            total_max += max(values)
        rank_text = f"r{slowest}" if n_ranks > 1 else ""
        lines.append(f"{label:<18}{min(values):>10.3f}{max(values):>10.3f}{rank_text:>9}")
    lines.append(f"{'total':<18}{'':>10}{total_max:>10.3f}")
    if wall_seconds is not None:
        lines.append(f"{'wall (start-up incl.)':<28}{wall_seconds:>10.3f}")

    count_keys = []
    for r in rows:
        count_keys += [k for k in r.counts if k not in count_keys]
    for key in count_keys:
        per_rank = [int(r.counts.get(key, 0)) for r in rows]
        text = f"{key}: {sum(per_rank)}"
        if n_ranks > 1:
            text += f" (per rank min {min(per_rank)}, max {max(per_rank)})"
        lines.append(text)

    lines += ["", f"{'population':<20}{'cells':>8}{'spikes':>10}{'mean rate Hz':>14}"]
    seconds = tstop / 1000.0
    total_cells = total_spikes = 0
    for name, count in spike_counts.items():
        cells = n_cells.get(name, 0)
        total_cells += cells
        total_spikes += count
        rate = count / cells / seconds if cells and seconds > 0 else 0.0
        lines.append(f"{name:<20}{cells:>8}{count:>10}{rate:>14.2f}")
    if len(spike_counts) > 1:
        rate = total_spikes / total_cells / seconds if total_cells and seconds > 0 else 0.0
        lines.append(f"{'all':<20}{total_cells:>8}{total_spikes:>10}{rate:>14.2f}")
    lines.append("")
    lines.append(_memory_line(rows))
    if allocator is not None:
        lib = allocator.get("library")
        lines.append(f"memory allocator: {allocator['name']}" + (f" ({lib})" if lib else
                                                                  " (malloc of the C library)"))
    return "\n".join(lines)


# ---- the output folder's record -------------------------------------------------------------
RECORD_NAME = "neurodamus_run.json"
RECORD_FORMAT = 1


def _now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary name, then rename: a reader never sees half a file."""
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    with writing(path, tmp):
        tmp.write_text(text)
    os.replace(tmp, path)


def _write_json_atomic(path: Path, data: dict) -> None:
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def read_record(folder) -> dict | None:
    """The record of the run that wrote ``folder`` (None when there is none or it is unreadable)."""
    path = Path(folder) / RECORD_NAME
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _plain_name(name) -> bool:
    """Only bare file names inside the folder are ever removed (no paths, no '..')."""
    return isinstance(name, str) and name not in ("", ".", "..", LOCK_NAME) and \
        "/" not in name and "\\" not in name


class RunRecord:
    """Rank 0's bookkeeping of the files one run writes into its output folder.

    The run holds the folder's lock (``output_lock``) from ``begin`` to ``complete`` or
    ``fail``: a second run into the same folder fails at once instead of mixing files.
    """

    def __init__(self, folder: Path, data: dict, existing: set, started: float,
                 lock: OutputLock | None = None):
        self.folder, self.data, self._existing, self._started = folder, data, existing, started
        self._lock = lock

    @classmethod
    def begin(cls, folder, config_path, planned, n_ranks: int) -> RunRecord:
        """Claim the folder, clear what a previous run left, record this run as ``running``."""
        folder = Path(folder)
        lock = OutputLock.acquire(folder, config_path)   # OutputFolderBusy names the holder
        try:
            record = cls._begin(folder, config_path, planned, n_ranks, lock)
        except BaseException:
            lock.release()
            raise
        set_active_run(record)
        return record

    @classmethod
    def _begin(cls, folder, config_path, planned, n_ranks, lock) -> RunRecord:
        planned = [n for n in dict.fromkeys(planned) if _plain_name(n)]
        previous = read_record(folder)
        removed = []
        if previous is not None:
            for name in previous.get("files", []):
                if _plain_name(name) and (folder / name).is_file():
                    (folder / name).unlink()
                    removed.append(name)
        # leftovers of an interrupted write (ours use '<name>.tmp-<pid>')
        ours = set(planned) | set(previous.get("files", []) if previous else [])
        for path in folder.iterdir():
            base, sep, _ = path.name.partition(".tmp-")
            if sep and base in ours and path.is_file():
                path.unlink()
        # files with our names that no record of ours lists: keep them, out of the way
        foreign = [n for n in planned if (folder / n).exists()]
        if foreign:
            aside = folder / f"previous-outputs-{time.strftime('%Y%m%d-%H%M%S')}"
            aside.mkdir(exist_ok=True)
            for name in foreign:
                shutil.move(str(folder / name), str(aside / name))
            log.warning("%s held %s from a run without a %s: moved to %s", folder,
                        ", ".join(foreign), RECORD_NAME, aside)
        if removed:
            log.info("Output folder %s: removed %d file(s) of the previous run", folder,
                     len(removed))
        started = time.time()
        existing = {p.name for p in folder.iterdir()}
        data = {"format": RECORD_FORMAT, "status": "running",
                "config": str(Path(config_path).resolve()), "started": _now(), "ranks": n_ranks,
                "files": [RECORD_NAME, *planned]}
        record = cls(folder, data, existing, started, lock)
        record.save()
        return record

    def save(self) -> None:
        _write_json_atomic(self.folder / RECORD_NAME, self.data)

    def complete(self, **facts) -> None:
        """Every output is closed: list what was written and mark the run complete."""
        files = list(self.data["files"])
        for path in sorted(self.folder.iterdir()):
            if path.is_file() and path.name not in files and ".tmp-" not in path.name and \
                    path.name != LOCK_NAME and (
                    path.name not in self._existing or path.stat().st_mtime >= self._started):
                files.append(path.name)
        self.data["files"] = [n for n in files if (self.folder / n).exists()]
        self.data.update(facts)
        self.data["status"] = "complete"
        self.data["finished"] = _now()
        self.save()
        self._end()

    def fail(self, message: str) -> None:
        """The run failed or was stopped: say so with the message, free the folder."""
        if self.data.get("status") != "running":
            return
        self.data.update(status="failed", error=message, finished=_now())
        self._remove_temporary_files()
        try:
            self.save()
        except (OSError, NeurodamusError):   # full disk: no room for a copy, write in place
            with contextlib.suppress(OSError), open(self.folder / RECORD_NAME, "w") as fd:
                fd.write(json.dumps(self.data, indent=2) + "\n")
        self._end()

    def _remove_temporary_files(self) -> None:
        """``<output>.tmp-<id>`` files of this run's outputs: never left to look like data."""
        ours = set(self.data.get("files", []))
        with contextlib.suppress(OSError):
            for path in self.folder.iterdir():
                base, sep, _ = path.name.partition(".tmp-")
                if sep and base in ours and path.is_file():
                    with contextlib.suppress(OSError):
                        path.unlink()

    def _end(self) -> None:
        if self._lock is not None:
            self._lock.release()
        clear_active_run(self)


__all__ = ["PHASES", "RECORD_NAME", "RankRow", "RunRecord", "format_summary",
           "gather_summary", "peak_rss_mb", "read_record"]
