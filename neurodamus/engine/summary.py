"""End-of-run table: phase wall times (min/max over ranks), spikes, peak memory per rank."""

from __future__ import annotations

import resource
import sys

PHASES = ("load", "build", "init", "run", "write")


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB (Linux ru_maxrss is in KiB)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024.0 if sys.platform != "darwin" else rss / 2**20


def gather_summary(comm, timings: dict):
    rows = comm.gather((dict(timings), peak_rss_mb()), root=0) if comm.Get_size() > 1 \
        else [(dict(timings), peak_rss_mb())]
    return rows


def format_summary(rows, spike_counts: dict, tstop: float, n_cells: dict) -> str:
    lines = ["", "Run summary", f"{'phase':<8}{'min s':>10}{'max s':>10}"]
    total_max = 0.0
    for phase in PHASES:
        values = [r[0].get(phase, 0.0) for r in rows]
        total_max += max(values)
        lines.append(f"{phase:<8}{min(values):>10.3f}{max(values):>10.3f}")
    lines.append(f"{'total':<8}{'':>10}{total_max:>10.3f}")
    lines.append("")
    lines.append(f"{'population':<20}{'cells':>8}{'spikes':>10}{'rate Hz':>10}")
    for name, count in spike_counts.items():
        cells = n_cells.get(name, 0)
        rate = count / cells / (tstop / 1000.0) if cells and tstop > 0 else 0.0
        lines.append(f"{name:<20}{cells:>8}{count:>10}{rate:>10.2f}")
    lines.append("")
    lines.append("peak memory per rank (MiB): " + ", ".join(f"{r[1]:.0f}" for r in rows))
    return "\n".join(lines)
