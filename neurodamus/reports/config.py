"""Report parameters from the simulation config: parsed, validated, time grid (no NEURON).

Everything here follows contract §8.2 and is the same on every rank, so a problem found
here stops every rank with the same message: ``<config>: reports.<name>.<key>: <what>``.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from ..config.issues import IssueList

TYPES = ("compartment", "summation", "synapse", "compartment_set")
SECTIONS = ("soma", "axon", "dend", "apic", "all")
COMPARTMENTS = ("center", "all")
SCALINGS = ("area", "none")
#: a step count within this of an integer is that integer (start_time / dt)
_STEP_TOLERANCE = 1e-9


@dataclass(frozen=True)
class TimeGrid:
    """Which simulation steps become report rows (contract §8.2 "Time").

    Row ``i`` (``0 <= i < n_steps``) holds the value at simulation step ``first_step + i*period``
    (step ``k`` is time ``k*dt``; step 0 is the state after initialisation).
    """

    start: float          # start' = round(start_time/dt_r)*dt_r, written in the time triple
    end: float            # min(end_time, tstop)
    dt: float             # dt_r
    n_steps: int
    first_step: int       # k0: first simulation step sampled
    period: int           # p = int(dt_r / dt): simulation steps between rows

    @property
    def last_step(self) -> int:
        return self.first_step + (self.n_steps - 1) * self.period

    def rows_in(self, step_lo: int, step_hi: int) -> tuple[int, int]:
        """Row range [a, b) whose steps fall in the simulation steps [step_lo, step_hi)."""
        if self.n_steps == 0 or step_hi <= step_lo:
            return 0, 0
        a = max(0, -(-(step_lo - self.first_step) // self.period))
        b = min(self.n_steps, (step_hi - 1 - self.first_step) // self.period + 1)
        return (a, b) if b > a else (a, a)

    def steps_of(self, row_a: int, row_b: int):
        return range(self.first_step + row_a * self.period,
                     self.first_step + row_b * self.period, self.period)


def time_grid(start_time: float, end_time: float, dt_r: float, sim_dt: float,
              tstop: float) -> TimeGrid:
    """The time formulas of contract §8.2; ``start_time <= end_time`` and ``dt_r >= sim_dt`` are
    checked by the caller."""
    start = round(start_time / dt_r) * dt_r
    end = min(end_time, tstop)
    n_steps = max(0, math.ceil((end - start) / dt_r))
    period = max(1, int(dt_r / sim_dt))
    first = math.ceil(start_time / sim_dt - _STEP_TOLERANCE)
    return TimeGrid(start, end, dt_r, n_steps, first, period)


@dataclass(frozen=True)
class ReportSpec:
    name: str
    type: str
    variables: tuple          # variable names as written, comma-separated list split
    unit: str
    grid: TimeGrid
    path: Path                # the final file
    cells: str                # node set name ('' = the simulation's cells)
    sections: str
    compartments: str
    scaling: str
    compartment_set: str
    electrodes_file: str = ""  # lfp reports (reports/lfp.py)

    @property
    def where(self) -> str:
        return f"reports.{self.name}"


def _raw_reports(sim) -> dict:
    try:
        return json.loads(sim.expanded_json).get("reports", {}) or {}
    except (ValueError, AttributeError):
        return {}


def parse_reports(settings, issues: IssueList | None = None, warn=None) -> list[ReportSpec]:
    """The enabled reports of the config, validated.

    Every problem goes to ``issues`` as ``reports.<name>.<key>``; without ``issues``, all of
    them are raised together as one ConfigError.
    """
    own = issues is None
    issues = IssueList() if own else issues
    specs, files = [], {}
    for name in sorted(settings.sim.list_report_names):   # a set: sort, or ranks would disagree
        spec = _parse_report(settings, name, files, issues, warn)
        if spec is not None:
            specs.append(spec)
    if own:
        issues.raise_if_fatal()
    return specs


def _parse_report(settings, name, files, issues, warn) -> ReportSpec | None:
    """One report, or None when it is disabled or has a problem (then in ``issues``)."""
    sim, cfg, run = settings.sim, settings.config_path, settings.run
    rep = sim.report(name)
    if not rep.enabled:
        return None
    key = f"reports.{name}"
    n_before = len(issues.fatals)

    def fatal(sub, text):
        issues.fatal(cfg, f"{key}.{sub}" if sub else key, text)

    rtype = rep.type.name
    lfp = rtype == "lfp"   # the fields of an lfp report (reports/lfp.py)
    if rtype not in TYPES and not lfp:
        fatal("type", f"unknown report type '{rtype}' (expected one of {', '.join(TYPES)})")
        return None
    variables = ("i_membrane",) if lfp else \
        tuple(v.strip() for v in (rep.variable_name or "").split(","))
    if not variables or any(not v for v in variables):
        fatal("variable_name", f"empty variable name in '{rep.variable_name}'")
    elif rtype != "summation" and len(variables) > 1:
        fatal("variable_name", f"a {rtype} report takes one variable, got {len(variables)} "
              f"('{rep.variable_name}'); only summation reports sum several")
    if not rep.dt > 0:
        fatal("dt", f"must be > 0, got {rep.dt}")
    elif rep.dt < run.dt * (1 - 1e-9):
        fatal("dt", f"{rep.dt} ms is below the simulation time step run.dt = {run.dt} ms")
    if rep.start_time < 0:
        fatal("start_time", f"must be >= 0, got {rep.start_time}")
    if rep.end_time < rep.start_time:
        fatal("end_time", f"{rep.end_time} ms is before start_time {rep.start_time} ms")
    if rep.start_time > run.tstop:
        fatal("start_time", f"{rep.start_time} ms is after the end of the simulation "
              f"(run.tstop = {run.tstop} ms)")
    path = report_path(settings.output_dir, rep.file_name, name)
    if path in files:
        fatal("file_name", f"{path.name} is also the file of report '{files[path]}'")
    files.setdefault(path, name)
    raw_rep = _raw_reports(sim).get(name, {})
    sections = rep.sections.name if rtype != "compartment_set" else "soma"
    compartments = rep.compartments.name if rtype != "compartment_set" else "center"
    if lfp:   # every compartment of the cell, in the electrodes file's order
        sections, compartments = "all", "all"
    if rtype != "compartment_set":
        if sections not in SECTIONS:
            fatal("sections", f"unknown value '{sections}' (expected one of "
                  f"{', '.join(SECTIONS)})")
        if compartments not in COMPARTMENTS:
            fatal("compartments", f"unknown value '{compartments}' (expected one of "
                  f"{', '.join(COMPARTMENTS)})")
    elif warn and ("sections" in raw_rep or "compartments" in raw_rep):
        warn(f"{cfg}: {key}: 'sections' and 'compartments' are ignored by compartment_set "
             f"reports")
    if rtype == "compartment_set" and not rep.compartment_set:
        fatal("compartment_set", "a compartment_set report needs the name of a compartment set")
    if len(issues.fatals) > n_before:
        return None
    grid = time_grid(rep.start_time, rep.end_time, rep.dt, run.dt, run.tstop)
    ratio = rep.dt / run.dt
    if warn and (abs(ratio - round(ratio)) > 1e-9 * ratio or int(ratio) != round(ratio)):
        warn(f"{cfg}: {key}.dt: {rep.dt} ms is not an exact multiple of run.dt = {run.dt} ms "
             f"in floating point; rows are taken every int({rep.dt}/{run.dt}) = "
             f"{grid.period} steps, as the established driver does (docs/compatibility-notes.md,"
             f" reports)")
    return ReportSpec(name=name, type=rtype, variables=variables, unit=rep.unit or "mV",
                      grid=grid, path=path, cells=rep.cells or "", sections=sections,
                      compartments=compartments, scaling=rep.scaling.name,
                      compartment_set=rep.compartment_set or "",
                      electrodes_file=(rep.electrodes_file or "") if lfp else "")


def report_path(output_dir: Path, file_name: str, name: str) -> Path:
    """``<output_dir>/<basename(file_name)>``, default ``<name>.h5``, ``.h5`` added
    (contract §8.2)."""
    base = os.path.basename(file_name or "") or name
    if not base.endswith(".h5"):
        base += ".h5"
    return Path(output_dir) / base


__all__ = [
    "COMPARTMENTS",
    "SCALINGS",
    "SECTIONS",
    "TYPES",
    "ReportSpec",
    "TimeGrid",
    "parse_reports",
    "report_path",
    "time_grid",
]
