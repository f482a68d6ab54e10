"""Report parameters from the simulation config: parsed, validated, time grid (no NEURON).

Everything here follows compatibility §8.2 and is the same on every rank, so a problem found
here stops every rank with the same message: ``<config>: reports.<name>.<key>: <what>``.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError

TYPES = ("compartment", "summation", "synapse", "compartment_set")
SECTIONS = ("soma", "axon", "dend", "apic", "all")
COMPARTMENTS = ("center", "all")
SCALINGS = ("area", "none")
_ENUM_KEYS = {"type": TYPES + ("lfp",), "sections": SECTIONS, "compartments": COMPARTMENTS,
              "scaling": SCALINGS}
#: a step count within this of an integer is that integer (start_time / dt)
_STEP_TOLERANCE = 1e-9


@dataclass(frozen=True)
class TimeGrid:
    """Which simulation steps become report rows (compatibility §8.2 "Time").

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
    """The §8.2 time formulas; ``start_time <= end_time`` and ``dt_r >= sim_dt`` are checked
    by the caller."""
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

    @property
    def where(self) -> str:
        return f"reports.{self.name}"


def _raw_reports(sim) -> dict:
    try:
        return json.loads(sim.expanded_json).get("reports", {}) or {}
    except (ValueError, AttributeError):
        return {}


def parse_reports(settings, warn=None) -> list[ReportSpec]:
    """The enabled reports of the config, validated; raises ConfigError on the first problem."""
    sim = settings.sim
    cfg = settings.config_path
    run = settings.run
    raw = _raw_reports(sim)
    specs, files = [], {}
    for name in sorted(sim.list_report_names):   # a set: sort, or ranks would disagree
        rep = sim.report(name)
        if not rep.enabled:
            continue
        where = f"{cfg}: reports.{name}"
        rtype = rep.type.name
        if rtype == "lfp":
            raise ConfigError(f"{where}.type: 'lfp' reports exist only under CoreNEURON")
        if rtype not in TYPES:
            raise ConfigError(f"{where}.type: unknown report type '{rtype}' (expected one of "
                              f"{', '.join(TYPES)})")
        variables = tuple(v.strip() for v in (rep.variable_name or "").split(","))
        if not variables or any(not v for v in variables):
            raise ConfigError(f"{where}.variable_name: empty variable name in "
                              f"'{rep.variable_name}'")
        if rtype != "summation" and len(variables) > 1:
            raise ConfigError(f"{where}.variable_name: a {rtype} report takes one variable, got "
                              f"{len(variables)} ('{rep.variable_name}'); only summation reports "
                              f"sum several")
        if not rep.dt > 0:
            raise ConfigError(f"{where}.dt: must be > 0, got {rep.dt}")
        if rep.dt < run.dt * (1 - 1e-9):
            raise ConfigError(f"{where}.dt: {rep.dt} ms is below the simulation time step "
                              f"run.dt = {run.dt} ms")
        if rep.start_time < 0:
            raise ConfigError(f"{where}.start_time: must be >= 0, got {rep.start_time}")
        if rep.end_time < rep.start_time:
            raise ConfigError(f"{where}.end_time: {rep.end_time} ms is before start_time "
                              f"{rep.start_time} ms")
        if rep.start_time > run.tstop:
            raise ConfigError(f"{where}.start_time: {rep.start_time} ms is after the end of the "
                              f"simulation (run.tstop = {run.tstop} ms)")
        grid = time_grid(rep.start_time, rep.end_time, rep.dt, run.dt, run.tstop)
        ratio = rep.dt / run.dt
        if warn and (abs(ratio - round(ratio)) > 1e-9 * ratio or int(ratio) != round(ratio)):
            warn(f"{where}.dt: {rep.dt} ms is not an exact multiple of run.dt = {run.dt} ms "
                 f"in floating point; rows are taken every int({rep.dt}/{run.dt}) = "
                 f"{grid.period} steps, as the established driver does (§8.2)")
        path = report_path(settings.output_dir, rep.file_name, name)
        if path in files:
            raise ConfigError(f"{where}.file_name: {path.name} is also the file of report "
                              f"'{files[path]}'")
        files[path] = name
        raw_rep = raw.get(name, {})
        sections = rep.sections.name if rtype != "compartment_set" else "soma"
        compartments = rep.compartments.name if rtype != "compartment_set" else "center"
        if rtype != "compartment_set":
            if sections not in SECTIONS:
                raise ConfigError(f"{where}.sections: unknown value '{sections}' (expected one "
                                  f"of {', '.join(SECTIONS)})")
            if compartments not in COMPARTMENTS:
                raise ConfigError(f"{where}.compartments: unknown value '{compartments}' "
                                  f"(expected one of {', '.join(COMPARTMENTS)})")
        elif warn and ("sections" in raw_rep or "compartments" in raw_rep):
            warn(f"{where}: 'sections' and 'compartments' are ignored by compartment_set "
                 f"reports")
        scaling = rep.scaling.name
        if rtype == "compartment_set" and not rep.compartment_set:
            raise ConfigError(f"{where}.compartment_set: a compartment_set report needs the "
                              f"name of a compartment set")
        specs.append(ReportSpec(name=name, type=rtype, variables=variables,
                                unit=rep.unit or "mV", grid=grid, path=path,
                                cells=rep.cells or "", sections=sections,
                                compartments=compartments, scaling=scaling,
                                compartment_set=rep.compartment_set or ""))
    return specs


def report_path(output_dir: Path, file_name: str, name: str) -> Path:
    """``<output_dir>/<basename(file_name)>``, default ``<name>.h5``, ``.h5`` added (§8.2)."""
    base = os.path.basename(file_name or "") or name
    if not base.endswith(".h5"):
        base += ".h5"
    return Path(output_dir) / base


def explain_config_error(config_path, exc=None):
    """A ConfigError naming ``reports.<name>.<key>`` for a report value libsonata refused
    (``exc``: its error), or None when the reports are not the cause.

    libsonata rejects unknown enum values (``sections: "foo"``) or missing keys while parsing
    the whole file, with a message that does not name the report; this finds the report and
    the key at fault.
    """
    text = str(exc) if exc is not None else ""
    try:
        with open(config_path) as fd:
            data = json.load(fd)
    except (OSError, ValueError):
        return None
    reports = data.get("reports") if isinstance(data, dict) else None
    if not isinstance(reports, dict):
        return None
    for name, rep in reports.items():
        where = f"{config_path}: reports.{name}"
        if not isinstance(rep, dict):
            return ConfigError(f"{where}: must be an object")
        for key, allowed in _ENUM_KEYS.items():
            if key in rep and rep[key] not in allowed and f"'{key}'" in text:
                return ConfigError(f"{where}.{key}: unknown value {rep[key]!r} (expected one "
                                   f"of {', '.join(allowed)})")
        names = rep.get("variable_name")
        if isinstance(names, str) and "variable names" in text and \
                any(not v.strip() for v in names.split(",")):
            return ConfigError(f"{where}.variable_name: empty variable name in '{names}'")
        for key in ("type", "variable_name", "dt", "start_time", "end_time"):
            if key not in rep and f"'{key}'" in text and not (
                    key == "variable_name" and rep.get("type") == "lfp"):
                return ConfigError(f"{where}.{key}: missing (required)")
    return None


__all__ = [
    "COMPARTMENTS",
    "SCALINGS",
    "SECTIONS",
    "TYPES",
    "ReportSpec",
    "TimeGrid",
    "explain_config_error",
    "parse_reports",
    "report_path",
    "time_grid",
]
