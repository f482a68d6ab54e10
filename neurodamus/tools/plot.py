"""``neurodamus plot OUTPUT_DIR``: PNG pictures of what a run wrote.

* ``plot_raster_<population>.png``: spike raster (node id over time) with the population
  rate below it, one picture per population of the spike file;
* ``plot_rates.png``: histogram of the mean firing rate of each cell, per population
  (silent cells included when the run record gives the cell counts);
* ``plot_report_<name>.png``: traces of up to ``--max-traces`` cells of each SONATA element
  report in the folder (the first element of each cell: the soma in soma reports).

The run record (``neurodamus_run.json``) gives the simulated time, the spike file and the cell
counts; without it, spike files and reports are recognised by their HDF5 layout and the time
axis ends at the last spike. Pictures written into the output folder are added to the record,
so that a rerun into the folder removes them with the rest of the old outputs.

matplotlib is an optional dependency: ``pip install 'neurodamus[plots]'``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import libsonata
import numpy as np

from ..engine.summary import RECORD_NAME, RunRecord, read_record
from ..reports.spikes import output_kind

USAGE = """Draw PNG pictures of a run's outputs (spike rasters, firing rates, report traces).

Usage:
    neurodamus plot <output_dir> [--output=DIR] [--max-traces=N] [--bin=MS]

Options:
    --output=DIR      Write the pictures here instead of <output_dir>.
    --max-traces=N    Cells drawn per report [default: 8].
    --bin=MS          Bin of the population rate under the raster, in ms (default: tstop/100).
"""

MISSING_MATPLOTLIB = ("neurodamus plot needs matplotlib, an optional dependency: "
                      "pip install 'neurodamus[plots]'  (or: pip install matplotlib)")
_COLORS = ("#1f5fa8", "#c0392b", "#27864a", "#8e44ad", "#d68910", "#117a8b")


class PlotError(Exception):
    """Nothing to draw, or an unreadable file (the message names it)."""


@dataclass
class RunOutputs:
    folder: Path
    spike_files: list
    report_files: list
    tstop: float | None
    cells: dict          # population -> number of simulated cells (from the record)
    record: dict | None




def find_outputs(folder) -> RunOutputs:
    folder = Path(folder)
    if not folder.is_dir():
        raise PlotError(f"{folder}: not a folder (give the run's output folder)")
    record = read_record(folder)
    spikes, reports = [], []
    names = sorted(p for p in folder.glob("*.h5") if ".tmp-" not in p.name)
    for path in names:
        kind = output_kind(path)
        if kind == "spikes":
            spikes.append(path)
        elif kind == "report":
            reports.append(path)
    if record and record.get("spikes_file"):
        main = folder / record["spikes_file"]
        if main in spikes:
            spikes.remove(main)
            spikes.insert(0, main)
    if not spikes and not reports:
        raise PlotError(f"{folder}: no SONATA spike file or report found (*.h5 with /spikes or "
                        f"/report)")
    cells = {name: int(v.get("cells", 0)) for name, v in (record or {}).get(
        "populations", {}).items()}
    tstop = float(record["tstop"]) if record and record.get("tstop") is not None else None
    return RunOutputs(folder, spikes, reports, tstop, cells, record)


def read_spikes(path: Path) -> dict:
    """population -> (times ms, node ids), read with libsonata."""
    try:
        reader = libsonata.SpikeReader(str(path))
    except (libsonata.SonataError, RuntimeError) as exc:
        raise PlotError(f"{path}: cannot read spikes: {exc}") from exc
    result = {}
    for pop in sorted(reader.get_population_names()):
        data = reader[pop].get_dict()
        result[pop] = (np.asarray(data["timestamps"], float),
                       np.asarray(data["node_ids"], np.int64))
    return result


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _pyplot():
    try:
        import matplotlib
    except ImportError as exc:
        raise PlotError(MISSING_MATPLOTLIB) from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_raster(plt, pop, times, ids, tstop, n_cells, bin_ms, color, path: Path) -> Path:
    fig, (ax, ax_rate) = plt.subplots(2, 1, figsize=(8, 5.2), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 1]})
    dense = len(times) > 20000
    ax.scatter(times, ids, s=2 if dense else 30, marker="." if dense else "|", color=color,
               linewidths=0 if dense else 1.2)
    n = n_cells or (int(ids.max()) + 1 if len(ids) else 1)
    ax.set_ylim(-0.5, max(n, 1) - 0.5)
    ax.set_ylabel("node id")
    ax.set_title(f"{pop}: {len(times)} spikes from {len(np.unique(ids))} of {n} cells")
    edges = np.arange(0.0, tstop + bin_ms, bin_ms)
    counts, _ = np.histogram(times, bins=edges)
    rate = counts / max(n, 1) / (bin_ms / 1000.0)
    ax_rate.fill_between(edges[:-1], rate, step="post", color=color, alpha=0.6, linewidth=0)
    ax_rate.set_ylabel("rate (Hz)")
    ax_rate.set_xlabel("time (ms)")
    ax_rate.set_xlim(0, tstop)
    for a in (ax, ax_rate):
        a.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_rates(plt, spikes: dict, tstop, cells: dict, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4.2))
    all_rates = []
    per_pop = {}
    for pop, (times, ids) in spikes.items():
        n = cells.get(pop) or (int(ids.max()) + 1 if len(ids) else 0)
        counts = np.bincount(ids, minlength=n) if len(ids) else np.zeros(n)
        rates = counts / (tstop / 1000.0)
        per_pop[pop] = rates
        all_rates.append(rates)
    top = max((r.max() for r in all_rates if len(r)), default=1.0)
    bins = np.linspace(0.0, max(top, 1.0) * 1.05, 25)
    for k, (pop, rates) in enumerate(per_pop.items()):
        mean = rates.mean() if len(rates) else 0.0
        ax.hist(rates, bins=bins, alpha=0.65, color=_COLORS[k % len(_COLORS)],
                label=f"{pop} ({len(rates)} cells, mean {mean:.1f} Hz)")
    ax.set_xlabel("mean firing rate (Hz)")
    ax.set_ylabel("cells")
    ax.locator_params(axis="y", integer=True)  # a count of cells: whole-number ticks
    ax.set_title(f"Firing rates over {tstop:g} ms")
    ax.legend(frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_report(plt, path: Path, max_traces: int, out: Path) -> Path | None:
    try:
        reader = libsonata.ElementReportReader(str(path))
    except (libsonata.SonataError, RuntimeError) as exc:
        raise PlotError(f"{path}: cannot read the report: {exc}") from exc
    pops = sorted(reader.get_population_names())
    if not pops:
        return None
    fig, axes = plt.subplots(len(pops), 1, figsize=(8, 2.8 + 1.6 * len(pops)), squeeze=False)
    for ax, pop_name in zip(axes[:, 0], pops):
        pop = reader[pop_name]
        node_ids = sorted(pop.get_node_ids())[:max_traces]
        if not node_ids:
            continue
        frame = pop.get(node_ids=node_ids)
        data = np.asarray(frame.data)
        times = np.asarray(frame.times)
        ids = np.asarray(frame.ids)
        node_of_col = ids[:, 0] if ids.ndim == 2 else ids
        for k, node in enumerate(node_ids):
            cols = np.flatnonzero(node_of_col == node)
            if len(cols):
                ax.plot(times, data[:, cols[0]], lw=0.9, color=_COLORS[k % len(_COLORS)],
                        label=f"node {node}")
        ax.set_ylabel(pop.data_units or "value")
        ax.set_title(f"{path.stem} / {pop_name}: first element of {len(node_ids)} cell(s)")
        ax.spines[["top", "right"]].set_visible(False)
        if len(node_ids) <= 8:
            ax.legend(frameon=False, fontsize=7, ncol=4, loc="upper right")
    axes[-1, 0].set_xlabel(f"time ({reader[pops[0]].time_units or 'ms'})")
    fig.tight_layout()
    target = out / f"plot_report_{_safe(path.stem)}.png"
    fig.savefig(target, dpi=100)
    plt.close(fig)
    return target


def _add_to_record(folder: Path, names: list[str]) -> None:
    record = read_record(folder)
    if record is None:
        return
    files = record.setdefault("files", [])
    files += [n for n in names if n not in files]
    RunRecord(folder, record, set(), 0.0).save()


def make_plots(output_dir, target=None, max_traces: int = 8, bin_ms: float | None = None,
               log=print) -> list[Path]:
    """Draw every picture for a run's output folder; returns the files written."""
    plt = _pyplot()
    found = find_outputs(output_dir)
    target = Path(target) if target else found.folder
    target.mkdir(parents=True, exist_ok=True)
    written = []
    spikes = {}
    for path in found.spike_files[:1]:
        spikes = read_spikes(path)
    if found.spike_files:
        last = max((t.max() for t, _ in spikes.values() if len(t)), default=0.0)
        tstop = found.tstop or (float(np.ceil(last / 10.0) * 10.0) if last > 0 else 1.0)
        if found.record is None:
            log(f"no {RECORD_NAME} in {found.folder}: the time axis ends at the last spike "
                f"({tstop:g} ms)")
        bin_ms = bin_ms or max(tstop / 100.0, 0.1)
        for k, (pop, (times, ids)) in enumerate(spikes.items()):
            written.append(plot_raster(plt, pop, times, ids, tstop, found.cells.get(pop),
                                       bin_ms, _COLORS[k % len(_COLORS)],
                                       target / f"plot_raster_{_safe(pop)}.png"))
        if spikes:
            written.append(plot_rates(plt, spikes, tstop, found.cells, target /
                                      "plot_rates.png"))
    for path in found.report_files:
        picture = plot_report(plt, path, max_traces, target)
        if picture is not None:
            written.append(picture)
    if target.resolve() == found.folder.resolve():
        _add_to_record(found.folder, [p.name for p in written])
    return written


def main(args: dict, log=print) -> int:
    try:
        max_traces = int(args["--max-traces"])
        bin_ms = float(args["--bin"]) if args["--bin"] else None
    except ValueError:
        raise SystemExit(2) from None
    written = make_plots(args["<output_dir>"], args["--output"], max_traces, bin_ms, log)
    for path in written:
        log(f"wrote {path}")
    return 0


__all__ = ["USAGE", "PlotError", "find_outputs", "main", "make_plots", "read_spikes"]
