"""Checks of the ``inputs`` section: every problem named as ``<config>: inputs.<name>.<key>: ...``.

Two entry points, both built on the module table ``SPECS`` (the one place listing what each
module takes):

* ``check_raw_inputs`` runs on the raw JSON before libsonata parses it (libsonata's messages may
  not name the input, e.g. for an unknown module): per-key messages, all of them at once.
* ``check_inputs`` runs on the parsed config before any cell exists: values (negative durations,
  variances, rates, ...), node sets and compartment sets, spike files, and which node attributes
  the inputs need. ``check_block`` is the per-block part, also used by ``apply_inputs``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np

from ..circuit.nodes import open_population
from ..config.issues import IssueList
from ..errors import NeurodamusError
from .base import input_blocks
from .report_replay import report_problem
from .spike_files import spike_file_problem
from .targets import compartment_set_entries, load_compartment_sets

CURRENT, CONDUCTANCE = "current_clamp", "conductance"
_NOISE_LIKE = (CURRENT, CONDUCTANCE)


@dataclass(frozen=True)
class ModuleSpec:
    input_types: tuple
    required: tuple = ()
    optional: tuple = ()          # numeric keys with libsonata defaults
    one_of: tuple = ()            # exactly one of these keys
    positive: tuple = ()          # must be > 0
    non_negative: tuple = ()      # must be >= 0
    relative: bool = False        # reads threshold current / input resistance
    extra: dict = field(default_factory=dict)


_SHOT = ("rise_time", "decay_time")
SPECS = {
    "linear": ModuleSpec((CURRENT,), ("amp_start",), ("amp_end",)),
    "relative_linear": ModuleSpec((CURRENT,), ("percent_start",), ("percent_end",),
                                  relative=True),
    "pulse": ModuleSpec((CURRENT,), ("amp_start", "width", "frequency"), ("amp_end",)),
    "sinusoidal": ModuleSpec((CURRENT,), ("amp_start", "frequency"), ("dt",), positive=("dt",)),
    "subthreshold": ModuleSpec((CURRENT,), ("percent_less",), relative=True),
    "hyperpolarizing": ModuleSpec((CURRENT,), relative=True),
    "synapse_replay": ModuleSpec(("spikes",), ("spike_file",)),
    "replay": ModuleSpec((CURRENT,), ("path", "interpolate")),
    "seclamp": ModuleSpec(("voltage_clamp",), ("voltage",), ("series_resistance",),
                          positive=("series_resistance",)),
    "noise": ModuleSpec((CURRENT,), ("variance",), one_of=("mean", "mean_percent"),
                        positive=("variance",), relative=True),
    "shot_noise": ModuleSpec(_NOISE_LIKE, _SHOT + ("rate", "amp_mean", "amp_var"),
                             ("dt", "reversal", "random_seed"),
                             positive=_SHOT + ("amp_var", "dt"), non_negative=("rate",)),
    "relative_shot_noise": ModuleSpec(_NOISE_LIKE, _SHOT + ("mean_percent", "sd_percent"),
                                      ("dt", "reversal", "random_seed", "relative_skew"),
                                      positive=_SHOT + ("sd_percent", "dt"), relative=True),
    "absolute_shot_noise": ModuleSpec(_NOISE_LIKE, _SHOT + ("mean", "sigma"),
                                      ("dt", "reversal", "random_seed", "relative_skew"),
                                      positive=_SHOT + ("sigma", "dt")),
    "ornstein_uhlenbeck": ModuleSpec(_NOISE_LIKE, ("tau", "mean", "sigma"),
                                     ("dt", "reversal", "random_seed"),
                                     positive=("sigma", "dt"), non_negative=("tau",)),
    "relative_ornstein_uhlenbeck": ModuleSpec(_NOISE_LIKE, ("tau", "mean_percent", "sd_percent"),
                                              ("dt", "reversal", "random_seed"),
                                              positive=("sd_percent", "dt"),
                                              non_negative=("tau",), relative=True),
    "spatially_uniform_e_field": ModuleSpec(("extracellular_stimulation",), ("fields",),
                                            ("ramp_up_time", "ramp_down_time"),
                                            non_negative=("ramp_up_time", "ramp_down_time")),
}
#: modules libsonata knows that this driver does not implement
UNSUPPORTED = {"poisson"}
_COMMON = ("module", "input_type", "delay", "duration", "node_set", "compartment_set",
           "represents_physical_electrode")
_STRING_KEYS = {"spike_file", "source", "node_set", "compartment_set", "module", "input_type",
                "path"}
_BOOL_KEYS = {"represents_physical_electrode", "interpolate"}
_LIST_KEYS = {"fields", "duration_levels", "voltage_levels"}


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# ---- raw JSON (before / instead of libsonata's message) ----------------------------------------
def check_raw_inputs(config_path, inputs) -> IssueList:
    """Structural checks of the raw ``inputs`` object: modules, types, required keys."""
    issues = IssueList()
    if inputs is None:
        return issues
    if not isinstance(inputs, dict):
        issues.fatal(config_path, "inputs", "must be an object of named input blocks")
        return issues
    for name, block in inputs.items():
        key = f"inputs.{name}"
        n_before = len(issues.fatals)
        if not isinstance(block, dict):
            issues.fatal(config_path, key, "must be an object")
            continue
        module = block.get("module")
        if module is None:
            issues.fatal(config_path, f"{key}.module", "missing (the input's module is required)")
            continue
        if module in UNSUPPORTED or module not in SPECS:
            known = ", ".join(sorted(SPECS))
            what = "is not supported by this version" if module in UNSUPPORTED else "is unknown"
            issues.fatal(config_path, f"{key}.module", f"input module '{module}' {what} "
                         f"(supported: {known})")
            continue
        spec = SPECS[module]
        itype = block.get("input_type")
        if itype is None:
            issues.fatal(config_path, f"{key}.input_type", f"missing (module '{module}' takes "
                         f"{' or '.join(spec.input_types)})")
        elif itype not in spec.input_types:
            issues.fatal(config_path, f"{key}.input_type", f"module '{module}' takes input_type "
                         f"{' or '.join(repr(t) for t in spec.input_types)}, got {itype!r}")
        for k in ("delay", "duration") + spec.required:
            if k not in block:
                issues.fatal(config_path, f"{key}.{k}", f"missing (required by module "
                             f"'{module}')")
        present = [k for k in spec.one_of if k in block]
        if spec.one_of and len(present) != 1:
            issues.fatal(config_path, f"{key}.{spec.one_of[0]}", f"give exactly one of "
                         f"{' or '.join(spec.one_of)} (got {len(present)})")
        sets = [k for k in ("node_set", "compartment_set") if k in block]
        if len(sets) != 1:
            issues.fatal(config_path, f"{key}.node_set", f"give exactly one of node_set or "
                         f"compartment_set (got {len(sets)})")
        for k, value in block.items():
            if k in _STRING_KEYS:
                if not isinstance(value, str):
                    issues.fatal(config_path, f"{key}.{k}", f"must be a string, got {value!r}")
            elif k in _LIST_KEYS:
                if not isinstance(value, list):
                    issues.fatal(config_path, f"{key}.{k}", f"must be a list, got {value!r}")
            elif k in _BOOL_KEYS:
                if not isinstance(value, bool):
                    issues.fatal(config_path, f"{key}.{k}", f"must be true or false, got "
                                 f"{value!r}")
            elif k in ("delay", "duration") + spec.required + spec.optional + spec.one_of:
                if not _is_number(value):
                    issues.fatal(config_path, f"{key}.{k}", f"must be a number, got {value!r}")
        spike_file = block.get("spike_file")
        if module == "synapse_replay" and isinstance(spike_file, str) and \
                not spike_file.endswith(".h5"):
            issues.fatal(config_path, f"{key}.spike_file", f"spike file must be SONATA .h5, "
                         f"got {spike_file}")
        if _is_number(block.get("duration")) and block["duration"] < 0:
            issues.fatal(config_path, f"{key}.duration", f"must be >= 0, got {block['duration']}")
        elif len(issues.fatals) == n_before:     # well formed: the value checks too
            try:
                problems = check_block(_raw_block(module, block), with_files=False)
            except (TypeError, ValueError):   # odd list contents: libsonata will say
                problems = []
            for k, text in problems:
                issues.fatal(config_path, f"{key}.{k}" if k else key, text)
    return issues


def _raw_block(module, block):
    """A parsed-block look-alike from raw JSON, for ``check_block`` (missing keys are None)."""
    spec = SPECS[module]
    values = {k: None for k in spec.optional + spec.one_of + ("relative_skew",)}
    values.update(duration_levels=[], voltage_levels=[], fields=[])
    values.update(block)
    values["fields"] = [SimpleNamespace(**dict({"frequency": 0.0, "phase": 0.0, "Ex": 0.0,
                                                "Ey": 0.0, "Ez": 0.0}, **f))
                        for f in block.get("fields", []) if isinstance(f, dict)]
    return SimpleNamespace(module=module, stim=SimpleNamespace(**values))


# ---- parsed config -----------------------------------------------------------------------------
def check_block(block, with_files=True) -> list[tuple[str | None, str]]:
    """Value checks of one parsed block: [(key, message), ...] (empty when fine).

    ``with_files=False`` skips the checks that open files (raw JSON has unresolved paths).
    """
    stim, module = block.stim, block.module
    spec = SPECS.get(module)
    if spec is None:
        return [("module", f"input module '{module}' is not supported by this version")]
    problems = []
    if stim.delay < 0:
        problems.append(("delay", f"must be >= 0, got {stim.delay}"))
    if stim.duration < 0:
        problems.append(("duration", f"must be >= 0, got {stim.duration}"))
    for key in spec.positive:
        value = getattr(stim, key, None)
        if value is not None and not value > 0:
            problems.append((key, f"must be > 0, got {value}"))
    for key in spec.non_negative:
        value = getattr(stim, key, None)
        if value is not None and not value >= 0:
            problems.append((key, f"must be >= 0, got {value}"))
    if with_files or module not in ("synapse_replay", "replay"):
        problems.extend(_MODULE_CHECKS.get(module, lambda b: [])(block))
    return problems


def _check_pulse(block):
    stim = block.stim
    if stim.frequency > 0 and stim.width > 0 and stim.width > 1000.0 / stim.frequency:
        return [("width", f"{stim.width} ms is longer than the pulse period "
                 f"{1000.0 / stim.frequency:g} ms (frequency {stim.frequency} Hz)")]
    return []


def _check_shot(block):
    stim, problems = block.stim, []
    if stim.rise_time > 0 and stim.decay_time > 0 and not stim.rise_time < stim.decay_time:
        problems.append(("rise_time", f"must be smaller than decay_time ({stim.rise_time} >= "
                         f"{stim.decay_time})"))
    if block.module == "shot_noise" and stim.amp_mean == 0:
        problems.append(("amp_mean", "must be non-zero (its sign sets the signal's sign)"))
    skew = getattr(stim, "relative_skew", None)
    if skew is not None and not 0 <= skew <= 1:
        problems.append(("relative_skew", f"must be in [0, 1], got {skew}"))
    return problems


def _check_seclamp(block):
    stim, problems = block.stim, []
    if stim.delay != 0:
        problems.append(("delay", f"must be 0 for seclamp, got {stim.delay}"))
    durations, voltages = list(stim.duration_levels or []), list(stim.voltage_levels or [])
    if len(durations) != len(voltages):
        problems.append(("duration_levels", f"has {len(durations)} values but voltage_levels "
                         f"has {len(voltages)}"))
    if any(d < 0 for d in durations):
        problems.append(("duration_levels", "must all be >= 0"))
    if sum(durations) > stim.duration + 1e-9:
        problems.append(("duration_levels", f"sum to {sum(durations)} ms, more than the "
                         f"duration {stim.duration} ms"))
    return problems


def _check_efield(block):
    stim, problems = block.stim, []
    fields = list(stim.fields or [])
    if not fields:
        problems.append(("fields", "must list at least one field"))
    for i, f in enumerate(fields):
        for k in ("Ex", "Ey", "Ez", "frequency", "phase"):
            if not math.isfinite(getattr(f, k)):
                problems.append((f"fields[{i}].{k}", "must be a finite number"))
        if f.frequency < 0:
            problems.append((f"fields[{i}].frequency", f"must be >= 0, got {f.frequency}"))
    return problems


def _check_replay(block):
    problem = spike_file_problem(block.stim.spike_file)
    return [("spike_file", problem)] if problem else []


def _check_report_replay(block):
    problem = report_problem(str(block.stim.path))
    return [("path", problem)] if problem else []


_MODULE_CHECKS = {
    "pulse": _check_pulse,
    "shot_noise": _check_shot,
    "relative_shot_noise": _check_shot,
    "absolute_shot_noise": _check_shot,
    "seclamp": _check_seclamp,
    "spatially_uniform_e_field": _check_efield,
    "synapse_replay": _check_replay,
    "replay": _check_report_replay,
}


def raise_block_problems(block) -> None:
    problems = check_block(block)
    if problems:
        key, text = problems[0]
        raise block.error(key, text)


def needs_input_resistance(block) -> bool:
    return block.module in ("relative_shot_noise", "relative_ornstein_uhlenbeck") and \
        block.conductance


def check_inputs(settings, populations, node_sets, issues: IssueList) -> dict[str, tuple]:
    """Check every parsed input block; return population -> extra ``@dynamics`` attributes.

    Problems go to ``issues`` as ``inputs.<name>.<key>``. Node sets are resolved on whole
    populations by ``node_sets`` (the run's ``NodeSetService``), so every rank reaches the same
    verdict. An input whose node set selects no simulated cell (a whole-circuit config run on
    a smaller ``node_set``) is a warning: it acts on nothing.
    """
    needs: dict[str, set] = {}
    compartment_sets = False
    for block in input_blocks(settings):
        key0 = f"inputs.{block.name}"
        for key, text in check_block(block):
            issues.fatal(settings.config_path, f"{key0}.{key}" if key else key0, text)
        stim = block.stim
        pops_hit: set = set()
        try:
            if stim.compartment_set:
                if compartment_sets is False:
                    compartment_sets = load_compartment_sets(settings)
                entries = compartment_set_entries(settings, populations, compartment_sets,
                                                  stim.compartment_set,
                                                  block.where("compartment_set"))
                pops_hit = _populations_of(populations, [g for g, _, _ in entries])
            elif stim.node_set:
                gids = node_sets.simulated_gids(stim.node_set, block.where("node_set"))
                if len(gids) == 0:
                    issues.warning(settings.config_path, f"{key0}.node_set",
                                   f"node set '{stim.node_set}' selects no simulated cell: "
                                   f"the input acts on nothing")
                pops_hit = _populations_of(populations, gids)
            if block.module == "synapse_replay":
                source = block.raw.get("source")
                if source and not node_sets.known(source):
                    issues.fatal(settings.config_path, f"{key0}.source",
                                 f"unknown node set '{source}'")
        except NeurodamusError as exc:
            issues.message(str(exc))
            continue
        if needs_input_resistance(block):
            for pop in sorted(pops_hit):
                dyn = _dynamics_names(populations[pop])
                if "input_resistance" not in dyn:
                    issues.fatal(settings.config_path, f"{key0}.input_type",
                                 f"conductance mode of {block.module} needs the node attribute "
                                 f"@dynamics:input_resistance, which population '{pop}' "
                                 f"({populations[pop].info.nodes_file}) lacks")
                needs.setdefault(pop, set()).add("input_resistance")
        elif SPECS.get(block.module, ModuleSpec(())).relative:
            for pop in sorted(pops_hit):
                dyn = _dynamics_names(populations[pop])
                if not {"threshold_current", "holding_current"} <= dyn:
                    issues.warning(settings.config_path, key0,
                                   f"population '{pop}' lacks @dynamics:threshold_current / "
                                   f"holding_current: the input's amplitudes are 0")
    return {pop: tuple(sorted(v)) for pop, v in needs.items()}


def _populations_of(populations, gids) -> set:
    """Names of the populations whose gid range holds any of ``gids``."""
    gids = np.asarray(gids, dtype=np.int64)
    return {p.name for p in populations.values() if not p.is_virtual and
            np.any((gids >= p.offset) & (gids < p.offset + p.size))}


def _dynamics_names(pop_nodes) -> set:
    return set(open_population(pop_nodes.info).dynamics_attribute_names)


__all__ = [
    "SPECS",
    "check_block",
    "check_inputs",
    "check_raw_inputs",
    "needs_input_resistance",
    "raise_block_problems",
]
