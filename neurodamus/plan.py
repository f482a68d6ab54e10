"""The plan of a run: everything decided before the first NEURON object, checked in one pass.

``check_run`` reads the simulation and circuit configs and checks every section (run,
conditions, inputs, reports, overrides, modifications, outputs, node sets, engine and checkpoint
options) in one collecting pass: all problems are printed together as ``<file>: <key>: <what>``
and nothing is built. It needs neither NEURON nor MPI (the rank count is a number), so it is
unit-tested with inline configs.

``make_plan`` then adds what needs the other ranks (load balance, which cells each rank builds)
and freezes the result into a ``RunPlan``: the one object every build step, engine and output
writer reads its decisions from (``plan.tstop``, ``plan.dt``, ``plan.populations``, ...).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .circuit import balance
from .circuit.modifications import parse_modifications
from .circuit.node_sets import NodeSetService
from .circuit.nodes import distribute_nodes, node_set_service, select_nodes
from .config import RunOptions
from .config.input_checks import run_input_checks
from .config.issues import IssueList
from .config.settings import Settings, read_json, read_settings
from .config.sonata_parse import parse_collecting
from .connectivity.overrides import OverridePlan, plan_overrides
from .engine import build_steps, checkpoint, coreneuron_engine, periodic
from .errors import ConfigError, NeurodamusError
from .reports.config import ReportSpec, parse_reports
from .reports.targets import check_report_targets
from .stimuli import check_inputs, check_raw_inputs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outputs:
    """Where the run writes: the folder, the spikes file, the files it plans, the marker."""

    folder: Path
    spikes_file: Path
    files: tuple            # names of the files the run writes into ``folder``
    success_marker: Path


@dataclass(frozen=True)
class CheckedRun:
    """What ``check_run`` learnt: the configs and every section, parsed and checked."""

    settings: Settings
    populations: dict          # name -> PopulationNodes (selection and gid offsets)
    node_sets: NodeSetService
    input_needs: dict          # population -> extra @dynamics attributes the inputs read
    reports: tuple             # ReportSpec of every enabled report (empty: --disable-reports)
    overrides: OverridePlan
    override_warnings: tuple
    modifications: tuple
    engine: coreneuron_engine.CoreNeuronPlan | None
    build_model: bool          # CoreNEURON: this run builds the model in NEURON
    restore_meta: dict | None
    outputs: Outputs
    warnings: tuple            # Issue objects, printed once by rank 0


@dataclass(frozen=True)
class RunPlan:
    """The immutable plan of one run on one rank (see the module doc)."""

    checked: CheckedRun
    options: RunOptions
    rank: int
    size: int
    balance: balance.BalanceResult | None
    model_slices: tuple        # --modelbuilding-steps: this rank's gids per step

    # ---- what the build steps read ----------------------------------------------------------
    @property
    def settings(self) -> Settings:
        return self.checked.settings

    @property
    def config_path(self) -> Path:
        return self.checked.settings.config_path

    @property
    def populations(self) -> dict:
        return self.checked.populations

    @property
    def node_sets(self) -> NodeSetService:
        return self.checked.node_sets

    @property
    def reports(self) -> tuple:
        return self.checked.reports

    @property
    def engine(self):
        return self.checked.engine

    @property
    def outputs(self) -> Outputs:
        return self.checked.outputs

    @property
    def tstop(self) -> float:
        return float(self.settings.run.tstop)

    @property
    def dt(self) -> float:
        return float(self.settings.run.dt)

    @property
    def uses_coreneuron(self) -> bool:
        return self.checked.engine is not None

    @property
    def simulated_cells(self) -> dict:
        """population -> number of simulated cells (all ranks)."""
        return {n: len(p.selected) for n, p in self.populations.items() if not p.is_virtual}

    def local_gids(self) -> np.ndarray:
        """This rank's gids, ascending."""
        return _local_gids(self.populations)


def _local_gids(populations: dict) -> np.ndarray:
    parts = [p.local_raw + p.offset for p in populations.values() if not p.is_virtual]
    return np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64)


# ---- the checking pass ---------------------------------------------------------------------
def check_run(config_path, options: RunOptions = RunOptions(), n_ranks: int = 1) -> CheckedRun:
    """Read and check everything (see the module doc); one ConfigError listing every problem."""
    config_path = Path(config_path)
    issues = IssueList()
    data = read_json(config_path, "Simulation config")
    # inputs first with our own per-key messages; libsonata then parses everything else entry
    # by entry, so that one refused entry does not hide the others
    raw_inputs = check_raw_inputs(config_path, data.get("inputs"))
    issues.extend(raw_inputs)
    refused = {i.key.split(".")[0] + "." + i.key.split(".")[1] for i in raw_inputs.fatals
               if i.key.count(".") >= 1}
    sim = parse_collecting(config_path, data, issues, skip=refused)
    settings = read_settings(config_path, options, issues, sim=sim) if sim is not None else None
    if settings is None:
        issues.raise_if_fatal()
        raise ConfigError(f"{config_path}: cannot be read")   # not reached: issues say why
    _check_run_values(settings, issues)
    first = IssueList()   # values, keys, files; first, as a root cause (an undefined
    run_input_checks(settings, first)   # $VAR explains the missing folder found above)
    issues.items[:0] = first.items
    node_sets = node_set_service(settings)
    populations = select_nodes(settings, node_sets, issues)
    if issues.fatals and not populations:
        issues.raise_if_fatal()
    input_needs = check_inputs(settings, populations, node_sets, issues)
    reports = () if options.disable_reports else tuple(_check_reports(settings, populations,
                                                                      node_sets, issues))
    overrides, override_warnings = _collect(issues, lambda: plan_overrides(settings, node_sets),
                                            (None, []))
    modifications = _collect(issues, lambda: parse_modifications(settings), [])
    engine = _collect(issues, lambda: coreneuron_engine.plan_run(settings, options), None)
    build_model, restore_meta = True, None
    if options.restore:
        restore_meta = _collect(issues, lambda: checkpoint.check_restore(
            options.restore, settings, populations, n_ranks), None)
    if options.save:
        _collect(issues, lambda: checkpoint.check_save(options.save, options.restore), None)
    if options.checkpoint_every:   # checkpoint times on the step grid
        _collect(issues, lambda: periodic.check_period(options.checkpoint_every,
                                                       settings.run.dt, str(config_path)), None)
    if engine is not None:
        _collect(issues, lambda: coreneuron_engine.check_inputs_supported(settings), None)
        if options.modelbuilding_steps > 1:
            _collect(issues, lambda: build_steps.check(settings, options), None)
        if not issues.fatals:
            build_model = _collect(issues, lambda: coreneuron_engine.decide_build(
                engine, settings, populations, n_ranks, bool(reports),
                needs_model=bool(options.save or options.restore or
                                options.checkpoint_every)), True)
    issues.raise_if_fatal()
    return CheckedRun(settings=settings, populations=populations, node_sets=node_sets,
                      input_needs=input_needs, reports=reports, overrides=overrides,
                      override_warnings=tuple(override_warnings or ()),
                      modifications=tuple(modifications), engine=engine,
                      build_model=bool(build_model), restore_meta=restore_meta,
                      outputs=_outputs(settings, reports, options),
                      warnings=tuple(issues.warnings))


def _collect(issues: IssueList, fn, default):
    """``fn()``, its ConfigError-like failure recorded as issues (one per line)."""
    try:
        return fn()
    except NeurodamusError as exc:
        issues.message(str(exc))
        return default


def _check_run_values(settings, issues: IssueList) -> None:
    """Values the run loop cannot work with (a dt <= 0 would never end)."""
    run = settings.run
    if not run.dt > 0:
        issues.fatal(settings.config_path, "run.dt", f"must be > 0, got {run.dt}")
    if not run.tstop >= 0:
        issues.fatal(settings.config_path, "run.tstop", f"must be >= 0, got {run.tstop}")


def _check_reports(settings, populations, node_sets, issues) -> list[ReportSpec]:
    def warn(text):
        issues.message(text, level="warning")

    specs = parse_reports(settings, issues, warn=warn)
    for spec in specs:
        check_report_targets(spec, settings, populations, node_sets, issues)
    return specs


def _outputs(settings, reports, options) -> Outputs:
    """Names of the files this run writes into the output folder."""
    names = [settings.spikes_file.name, "populations_offset.dat"]
    names += [spec.path.name for spec in reports]
    names += [f"cellstate_{gid}.json" for gid in options.dump_cell_state]
    return Outputs(folder=settings.output_dir, spikes_file=settings.spikes_file,
                   files=tuple(names), success_marker=settings.success_marker)


# ---- the plan --------------------------------------------------------------------------------
def make_plan(config_path, options: RunOptions, runtime) -> RunPlan:
    """Collective: ``check_run`` on every rank, then the load balance and this rank's cells.

    ``runtime`` (``neurodamus.runtime.Runtime``): the communicator, and NEURON for a
    cost-based ``--lb-mode`` that measures cells.
    """
    rank, size = runtime.comm.Get_rank(), runtime.comm.Get_size()
    checked = check_run(config_path, options, size)
    for issue in checked.warnings:
        log.warning("%s", issue)
    for line in checked.override_warnings:
        log.warning("%s", line)
    if checked.overrides is not None:
        for line in checked.overrides.chain_lines(checked.settings.edge_populations):
            log.info("%s", line)
    result = balance.assign(checked.settings, options, checked.populations, runtime)
    distribute_nodes(checked.populations, rank, size, options.lb_mode,
                     result.ranks if result else None)
    local = _local_gids(checked.populations)
    slices = balance.build_slices(local, options.modelbuilding_steps, result,
                                  checked.settings.target_simulator)
    return RunPlan(checked=checked, options=options, rank=rank, size=size, balance=result,
                   model_slices=tuple(slices))


def describe(plan: RunPlan) -> str:
    """A short, printable summary of the plan (``--debug``)."""
    pops = {n: {"selected": len(p.selected), "local": len(p.local_raw), "offset": p.offset,
                "virtual": p.is_virtual} for n, p in plan.populations.items()}
    return json.dumps({"rank": plan.rank, "ranks": plan.size, "tstop": plan.tstop,
                       "dt": plan.dt, "populations": pops,
                       "reports": [r.name for r in plan.reports],
                       "engine": "CORENEURON" if plan.uses_coreneuron else "NEURON",
                       "outputs": str(plan.outputs.folder)}, indent=1)


__all__ = ["CheckedRun", "Outputs", "RunPlan", "check_run", "describe", "make_plan"]
