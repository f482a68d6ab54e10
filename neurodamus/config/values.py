"""Config values libsonata accepts but a run cannot use as meant.

Each ``check_*(settings, issues)`` adds ``<file>: <key>: <what is wrong>`` entries to ``issues``
(``config.issues.IssueList``). They read the configs and HDF5 metadata only, no NEURON.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from .inventory import node_set_origin, population_sizes, raw_simulation

#: Random123 streams take 32-bit unsigned seeds
SEED_KEYS = ("random_seed", "ionchannel_seed", "minis_seed", "stimulus_seed", "synapse_seed")
SEED_MAX = 2**32 - 1
#: NEURON's fixed-step loop and the reports count steps in 32-bit signed integers
MAX_STEPS = 2**31 - 1
_VARIABLE_RE = re.compile(r"\$\{?[A-Za-z_]\w*\}?")


def check_seeds(settings, issues) -> None:
    """Every seed an integer in 0 .. 2^32-1 (libsonata truncates 1.5 and wraps -1)."""
    run = raw_simulation(settings).get("run", {})
    for key in SEED_KEYS:
        if key not in run:
            continue
        value = run[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                (isinstance(value, float) and not value.is_integer()):
            issues.fatal(settings.config_path, f"run.{key}",
                         f"must be an integer in 0..{SEED_MAX}, got {json.dumps(value)}")
        elif not 0 <= value <= SEED_MAX:
            issues.fatal(settings.config_path, f"run.{key}",
                         f"{int(value)} is outside 0..{SEED_MAX} (Random123 seeds are "
                         f"32-bit unsigned)")


def check_time_step(settings, issues) -> None:
    """dt no longer than tstop; a step count the integrator can represent."""
    run = settings.run
    if not (run.dt > 0 and run.tstop >= 0):
        return   # the run's own checks name these
    if run.tstop > 0 and run.dt > run.tstop:
        issues.fatal(settings.config_path, "run.dt",
                     f"{run.dt} ms is longer than the whole run (run.tstop = {run.tstop} ms)")
    steps = run.tstop / run.dt
    if steps > MAX_STEPS:
        issues.fatal(settings.config_path, "run.tstop",
                     f"{run.tstop} ms at run.dt = {run.dt} ms is {steps:.3g} steps, more than "
                     f"the {MAX_STEPS} a run can count: shorten tstop or raise dt")


def _walk_strings(value, key=""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk_strings(v, f"{key}.{k}" if key else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk_strings(v, f"{key}[{i}]")
    elif isinstance(value, str):
        yield key, value


def check_undefined_variables(settings, issues) -> None:
    """A ``$NAME`` left after manifest expansion is undefined (else a literal ``$NAME`` folder
    would be created)."""
    for path, expanded in ((settings.config_path, settings.sim.expanded_json),
                           (settings.circuit_path, settings.circuit.expanded_json)):
        data = json.loads(expanded)
        for key, text in _walk_strings({k: v for k, v in data.items() if k != "manifest"}):
            match = _VARIABLE_RE.search(text)
            if match:
                issues.fatal(path, key, f"'{text}' uses {match.group(0)}, which the manifest "
                                        f"does not define")


def _output_name_problem(name: str, output_dir: Path) -> tuple[str, str] | None:
    """('fatal'|'warning', text) for a file name that is not a plain name in the folder."""
    if os.path.basename(name) == name:
        return None
    target = os.path.normpath(os.path.join(str(output_dir), name))
    inside = target.startswith(os.path.normpath(str(output_dir)) + os.sep)
    if not inside:
        return "fatal", (f"'{name}' points outside the output folder {output_dir}: give a "
                         f"file name")
    return "warning", (f"'{name}' has a folder part: the file is written as "
                       f"{output_dir / os.path.basename(name)} (outputs go straight into the "
                       f"output folder, contract §8)")


def _report_file(raw_report: dict, name: str) -> str:
    base = os.path.basename(raw_report.get("file_name") or "") or name
    return base if base.endswith(".h5") else base + ".h5"


def check_output_names(settings, issues) -> None:
    """spikes_file and report file names: not empty, inside the output folder, no report
    writing into the spikes file."""
    raw = raw_simulation(settings)
    output = raw.get("output", {}) or {}
    path = settings.config_path
    out_dir = settings.output_dir
    spikes = output.get("spikes_file")
    if spikes is not None:
        if isinstance(spikes, str) and not spikes.strip():
            issues.fatal(path, "output.spikes_file", "is empty: give a file name (default "
                                                     "out.h5 when the key is left out)")
        elif isinstance(spikes, str):
            problem = _output_name_problem(spikes, out_dir)
            if problem:
                getattr(issues, problem[0])(path, "output.spikes_file", problem[1])
    if settings.options.disable_reports:
        return
    spikes_name = settings.spikes_file.name   # report against report: reports/config.py
    for name, rep in (raw.get("reports", {}) or {}).items():
        if not isinstance(rep, dict) or rep.get("enabled", True) is False:
            continue
        file_name = rep.get("file_name")
        if isinstance(file_name, str) and file_name:
            problem = _output_name_problem(file_name, out_dir)
            if problem:
                getattr(issues, problem[0])(path, f"reports.{name}.file_name", problem[1])
        base = _report_file(rep, name)
        if base == spikes_name:
            issues.fatal(path, f"reports.{name}.file_name",
                         f"{base} is also the file of output.spikes_file: each output needs its "
                         f"own file")


def _used_node_sets(raw: dict) -> set:
    used = {raw.get("node_set")}
    for block in (raw.get("inputs", {}) or {}).values():
        if isinstance(block, dict):
            used |= {block.get("node_set"), block.get("source")}
    for block in (raw.get("reports", {}) or {}).values():
        if isinstance(block, dict):
            used.add(block.get("cells"))
    for block in raw.get("connection_overrides", []) or []:
        if isinstance(block, dict):
            used |= {block.get("source"), block.get("target")}
    mods = (raw.get("conditions", {}) or {}).get("modifications", []) or []
    for block in mods.values() if isinstance(mods, dict) else mods:
        if isinstance(block, dict):
            used.add(block.get("node_set"))
    return {u for u in used if isinstance(u, str)}


def _node_id_lists(name, rule, definitions, seen):
    """(population or None, ids) of every ``node_id`` list ``name`` uses, compounds included."""
    if name in seen:
        return
    seen.add(name)
    if isinstance(rule, list):       # compound: names of other node sets
        for part in rule:
            if isinstance(part, str) and part in definitions:
                yield from _node_id_lists(part, definitions[part], definitions, seen)
        return
    if isinstance(rule, dict) and isinstance(rule.get("node_id"), list):
        population = rule.get("population")   # libsonata writes it as a list
        names = [population] if isinstance(population, str) else \
            [p for p in population if isinstance(p, str)] if isinstance(population, list) \
            else []
        yield names, rule["node_id"]


def check_node_id_lists(settings, issues) -> None:
    """``node_id`` lists of the node sets the run uses name nodes their population has."""
    definitions = json.loads(settings.node_sets.toJSON())
    sizes = population_sizes(settings)
    if not sizes:
        return
    for used in sorted(_used_node_sets(raw_simulation(settings)) & set(definitions)):
        for names, ids in _node_id_lists(used, definitions[used], definitions, set()):
            pops = [p for p in names if p in sizes] if names else list(sizes)
            bad = [i for i in ids if not isinstance(i, int) or i < 0 or
                   all(i >= sizes[p] for p in pops)] if pops else []
            if bad:
                where = " or ".join(names) if names else "any population"
                size_text = ", ".join(f"'{p}' has {sizes[p]}" for p in pops)
                origin, key = node_set_origin(settings, used)
                issues.fatal(origin, key,
                             f"node_id {bad[0]} is not a node of {where} ({size_text} nodes, "
                             f"ids 0..n-1){f'; {len(bad)} such ids' if len(bad) > 1 else ''}")


def check_edge_populations(settings, issues) -> None:
    """Every edge population's source and target populations are in the circuit."""
    known = set(settings.circuit.node_populations)
    networks = json.loads(settings.circuit.expanded_json).get("networks", {})
    index = {name: i for i, entry in enumerate(networks.get("edges", []))
             for name in entry.get("populations", {})}
    for ep in settings.edge_populations:
        key = f"networks.edges[{index.get(ep.name, '?')}].populations.{ep.name}"
        for role, pop in (("source", ep.source), ("target", ep.target)):
            if pop not in known:
                issues.fatal(settings.circuit_path, key,
                             f"its {role} population '{pop}' (node_population of "
                             f"{role}_node_id in {ep.edges_file}) is not in the circuit")


CHECKS = (check_seeds, check_time_step, check_undefined_variables, check_output_names,
          check_node_id_lists, check_edge_populations)

__all__ = ["CHECKS", "check_edge_populations", "check_node_id_lists", "check_output_names",
           "check_seeds", "check_time_step", "check_undefined_variables"]
