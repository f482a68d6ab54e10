"""``neurodamus compare A B``: are two output folders the same run, and if not, where and why.

* Spikes: per population, exactly by default (ids always exactly; times within ``--atol`` /
  ``--rtol`` when given), naming the first spike that differs in (time, id) order.
* Reports: every report file present in both folders, per population: the time axis, the
  (node, element) layout, the largest absolute and relative difference and the first time
  and element where a value is off by more than ``atol + rtol * |B|`` (default 1e-9 each).
* Run records: the provenance records of both runs (``provenance.py``) say what differs in
  the inputs, versions, rank count and engine, so the verdict can read "same inputs,
  different rank count".

Files are read with libsonata's readers; h5py only tells a spike file from a report file.
Exit status: 0 when identical within the tolerances, 1 otherwise (2 for usage errors).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import libsonata
import numpy as np

from .. import provenance
from ..engine.summary import read_record
from ..reports.spikes import output_kind

USAGE = """Compare the spikes, reports and run records of two output folders.

Usage:
    neurodamus compare <output_a> <output_b> [--rtol=R] [--atol=A] [--json]

Options:
    --rtol=R    Relative tolerance (default: exact for spikes, 1e-9 for reports).
    --atol=A    Absolute tolerance (default: exact for spikes, 1e-9 for reports).
    --json      Print the comparison as JSON (for scripts) instead of text.
"""

REPORT_TOLERANCE = 1e-9
_CHUNK_VALUES = 4_000_000   # report values read per step of the comparison (32 MB of doubles)


class CompareError(Exception):
    """A folder cannot be compared (missing, no outputs, unreadable file)."""


@dataclass
class Tolerance:
    rtol: float
    atol: float

    def close(self, a, b):
        return np.abs(a - b) <= self.atol + self.rtol * np.abs(b)


@dataclass
class Result:
    """Everything compared; ``identical`` is the verdict."""

    a: str
    b: str
    spikes: dict = field(default_factory=dict)    # population -> finding
    reports: dict = field(default_factory=dict)   # "file:population" -> finding
    only_in: dict = field(default_factory=dict)   # "a"/"b" -> [report files]
    records: dict = field(default_factory=dict)   # provenance differences and explanation

    @property
    def identical(self) -> bool:
        return (all(f["equal"] for f in self.spikes.values())
                and all(f["equal"] for f in self.reports.values())
                and not any(self.only_in.values()))

    def as_dict(self) -> dict:
        return {"a": self.a, "b": self.b, "identical": self.identical, "spikes": self.spikes,
                "reports": self.reports, "only_in": self.only_in, "records": self.records}


# ---- which files ----------------------------------------------------------------------------


def output_files(folder) -> tuple[Path | None, dict]:
    """(spike file, {report file name: path}) of an output folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CompareError(f"{folder}: no such folder")
    record = read_record(folder) or {}
    named = record.get("spikes_file")
    spikes = folder / named if named and (folder / named).is_file() else None
    reports = {}
    for path in sorted(folder.glob("*.h5")):
        kind = output_kind(path)
        if kind == "spikes" and spikes is None:
            spikes = path
        elif kind == "report":
            reports[path.name] = path
    if spikes is None and not reports:
        raise CompareError(f"{folder}: no spike or report file (not an output folder?)")
    return spikes, reports


# ---- spikes -----------------------------------------------------------------------------------
def read_spike_trains(path: Path | None) -> dict:
    """population -> (times, ids), sorted by time then id."""
    if path is None:
        return {}
    try:
        reader = libsonata.SpikeReader(str(path))
    except (libsonata.SonataError, RuntimeError) as exc:
        raise CompareError(f"{path}: not a SONATA spike file: {exc}") from exc
    out = {}
    for pop in reader.get_population_names():
        try:
            data = reader[pop].get()
        except (libsonata.SonataError, RuntimeError) as exc:
            raise CompareError(f"{path}: spikes/{pop}: unreadable: {exc}") from exc
        ids = np.array([s[0] for s in data], dtype=np.int64)
        times = np.array([s[1] for s in data], dtype=float)
        order = np.lexsort((ids, times))
        out[pop] = (times[order], ids[order])
    return out


def compare_spike_trains(a: tuple, b: tuple, tol: Tolerance) -> dict:
    (ta, ia), (tb, ib) = a, b
    n = min(len(ta), len(tb))
    same = (ia[:n] == ib[:n]) & tol.close(ta[:n], tb[:n])
    bad = np.flatnonzero(~same)
    finding = {"count_a": int(len(ta)), "count_b": int(len(tb))}
    if len(bad):
        i = int(bad[0])
        finding["first_difference"] = {"index": i, "a": [float(ta[i]), int(ia[i])],
                                       "b": [float(tb[i]), int(ib[i])]}
    elif len(ta) != len(tb):
        longer, t, ids = ("a", ta, ia) if len(ta) > len(tb) else ("b", tb, ib)
        finding["first_difference"] = {"index": n, longer: [float(t[n]), int(ids[n])]}
    finding["equal"] = "first_difference" not in finding
    return finding


# ---- reports ------------------------------------------------------------------------------------
def _canonical_columns(ids: np.ndarray) -> np.ndarray:
    """Column order by node id, keeping each node's element order (ranks may write nodes in
    any order; a node's compartments keep theirs)."""
    return np.argsort(ids[:, 0], kind="stable")


def compare_report_population(ra, rb, tol: Tolerance) -> dict:
    """One population of one report in both folders."""
    finding = {"equal": False}
    if tuple(ra.times) != tuple(rb.times):
        finding["problem"] = f"time axes differ: {tuple(ra.times)} vs {tuple(rb.times)}"
        return finding
    nodes_a, nodes_b = sorted(ra.get_node_ids()), sorted(rb.get_node_ids())
    if nodes_a != nodes_b:
        finding["problem"] = (f"node ids differ: {len(nodes_a)} vs {len(nodes_b)} nodes, "
                              f"first only in one: "
                              f"{sorted(set(nodes_a) ^ set(nodes_b))[:1]}")
        return finding
    start, stop, dt = ra.times
    first = ra.get(tstart=start, tstop=start)   # one row: the layout
    second = rb.get(tstart=start, tstop=start)
    ids_a, ids_b = np.asarray(first.ids), np.asarray(second.ids)
    ca, cb = _canonical_columns(ids_a), _canonical_columns(ids_b)
    if ids_a.shape != ids_b.shape or not np.array_equal(ids_a[ca], ids_b[cb]):
        finding["problem"] = "the (node, element) layouts differ"
        return finding
    layout = ids_a[ca]
    n_steps = int(round((stop - start) / dt)) + 1 if dt > 0 else 1
    rows = max(1, _CHUNK_VALUES // max(1, len(layout)))
    max_abs = max_rel = 0.0
    first_bad = None
    n_read = 0
    for i0 in range(0, n_steps, rows):
        t0, t1 = start + i0 * dt, start + (min(i0 + rows, n_steps) - 1) * dt
        fa, fb = ra.get(tstart=t0, tstop=t1), rb.get(tstart=t0, tstop=t1)
        da, db = np.asarray(fa.data)[:, ca], np.asarray(fb.data)[:, cb]
        if da.shape != db.shape:
            finding["problem"] = f"row counts differ near t = {t0:g} ms"
            return finding
        n_read += len(da)
        diff = np.abs(da - db)
        if diff.size:
            max_abs = max(max_abs, float(np.nanmax(diff)))
            scale = np.maximum(np.abs(da), np.abs(db))
            with np.errstate(divide="ignore", invalid="ignore"):
                rel = np.where(scale > 0, diff / scale, 0.0)
            max_rel = max(max_rel, float(np.nanmax(rel)))
        bad = ~tol.close(da, db) & ~(np.isnan(da) & np.isnan(db))
        if first_bad is None and bad.any():
            row, col = np.argwhere(bad)[0]
            first_bad = {"time": float(np.asarray(fa.times)[row]),
                         "node_id": int(layout[col, 0]), "element_id": int(layout[col, 1]),
                         "a": float(da[row, col]), "b": float(db[row, col])}
    finding.update(steps=n_read, elements=len(layout), max_abs=max_abs, max_rel=max_rel)
    if first_bad is not None:
        finding["first_difference"] = first_bad
    finding["equal"] = first_bad is None
    return finding


def compare_report_file(pa: Path, pb: Path, tol: Tolerance) -> dict:
    try:
        ra, rb = libsonata.ElementReportReader(str(pa)), libsonata.ElementReportReader(str(pb))
    except (libsonata.SonataError, RuntimeError) as exc:
        raise CompareError(f"{pa.name}: not readable as a SONATA report: {exc}") from exc
    out = {}
    pops = sorted(set(ra.get_population_names()) | set(rb.get_population_names()))
    for pop in pops:
        if pop not in ra.get_population_names() or pop not in rb.get_population_names():
            side = "a" if pop in ra.get_population_names() else "b"
            out[pop] = {"equal": False, "problem": f"population only in {side}"}
            continue
        out[pop] = compare_report_population(ra[pop], rb[pop], tol)
    return out


# ---- the whole comparison -------------------------------------------------------------------
def compare_folders(a, b, rtol: float | None = None, atol: float | None = None) -> Result:
    a, b = Path(a), Path(b)
    spikes_a, reports_a = output_files(a)
    spikes_b, reports_b = output_files(b)
    spike_tol = Tolerance(rtol or 0.0, atol or 0.0)
    report_tol = Tolerance(REPORT_TOLERANCE if rtol is None else rtol,
                           REPORT_TOLERANCE if atol is None else atol)
    result = Result(str(a), str(b))
    trains_a, trains_b = read_spike_trains(spikes_a), read_spike_trains(spikes_b)
    empty = (np.zeros(0), np.zeros(0, np.int64))
    for pop in sorted(set(trains_a) | set(trains_b)):
        result.spikes[pop] = compare_spike_trains(trains_a.get(pop, empty),
                                                  trains_b.get(pop, empty), spike_tol)
    for name in sorted(set(reports_a) & set(reports_b)):
        for pop, finding in compare_report_file(reports_a[name], reports_b[name],
                                                report_tol).items():
            result.reports[f"{name}:{pop}"] = finding
    result.only_in = {"a": sorted(set(reports_a) - set(reports_b)),
                      "b": sorted(set(reports_b) - set(reports_a))}
    result.records = provenance.explain(provenance.read(a), provenance.read(b))
    return result


def format_text(result: Result) -> str:
    lines = [f"A: {result.a}", f"B: {result.b}", ""]
    for pop, f in result.spikes.items():
        head = f"spikes {pop}: {f['count_a']} vs {f['count_b']}"
        if f["equal"]:
            lines.append(f"{head}: identical")
            continue
        d = f["first_difference"]
        sides = ", ".join(f"{k} t={d[k][0]:.17g} id={d[k][1]}" for k in ("a", "b") if k in d)
        lines.append(f"{head}: DIFFER at spike #{d['index']} ({sides})")
    for key, f in result.reports.items():
        if "problem" in f:
            lines.append(f"report {key}: DIFFER: {f['problem']}")
            continue
        head = (f"report {key}: {f['steps']} steps x {f['elements']} elements, max |diff| "
                f"{f['max_abs']:.3g}, max rel {f['max_rel']:.3g}")
        if f["equal"]:
            lines.append(f"{head}: identical within tolerance")
        else:
            d = f["first_difference"]
            lines.append(f"{head}: DIFFER first at t={d['time']:g} ms, node {d['node_id']}, "
                         f"element {d['element_id']} ({d['a']:.17g} vs {d['b']:.17g})")
    for side, names in result.only_in.items():
        for name in names:
            lines.append(f"report {name}: only in {side.upper()}")
    rec = result.records
    lines.append("")
    for diff in rec.get("differences", []):
        lines.append(f"run record: {diff}")
    if rec.get("explanation"):
        lines.append(f"runs: {rec['explanation']}")
    lines.append("IDENTICAL" if result.identical else "DIFFERENT")
    return "\n".join(lines)


def _tolerance(text, name):
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise CompareError(f"{name} takes a number >= 0, got {text}") from None
    if not value >= 0:
        raise CompareError(f"{name} takes a number >= 0, got {text}")
    return value


def main(args: dict, out=print) -> int:
    """``args``: docopt's result for USAGE. 0 identical, 1 different (CompareError: caller)."""
    rtol = _tolerance(args["--rtol"], "--rtol")
    atol = _tolerance(args["--atol"], "--atol")
    result = compare_folders(args["<output_a>"], args["<output_b>"], rtol, atol)
    if args["--json"]:
        out(json.dumps(result.as_dict(), indent=1))
    else:
        out(format_text(result))
    return 0 if result.identical else 1


__all__ = ["USAGE", "CompareError", "Result", "compare_folders", "format_text", "main"]
