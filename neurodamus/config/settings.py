"""Load the SONATA simulation config and its circuit config into one immutable ``Settings``.

libsonata parses and type-checks both files (its defaults are the contract's defaults); this
module adds what libsonata does not check (files exist, node sets and populations are known)
and reads the circuit config JSON itself where order matters (contract §11.4).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import libsonata

from ..errors import ConfigError
from .files import hdf5_problem, json_problem
from .issues import IssueList

#: population types the driver instantiates; others are rejected with a clear message
SUPPORTED_NODE_TYPES = {"biophysical", "virtual", "point_process"}
#: engine precedence used to order populations (contract §1.3)
_TYPE_PRECEDENCE = {"astrocyte": 1, "point_process": 2}
_EDGE_TYPES = {"chemical", "electrical", "synapse_astrocyte", "endfoot", "neuromodulatory",
               "point_process", "Exp2Syn_synapse"}
_INTEGRATION = {"euler": 0, "crank_nicolson": 1, "crank_nicolson_ion": 2}


@dataclass(frozen=True)
class RunOptions:
    """Command-line choices that are not part of the simulation config."""

    output_path: str | None = None
    lb_mode: str = "RoundRobin"
    dump_cell_state: tuple[int, ...] = ()
    disable_reports: bool = False
    report_buffer_size: float | None = None   # MB per rank for report recording; None:
    # 8, or more for lfp reports (reports/report_set.py)
    simulator: str | None = None
    verbose: bool = False
    debug: bool = False
    keep_axon: bool = False
    keep_subnormals: bool = False            # IEEE subnormals instead of flushing them to zero
    # scale: dry-run memory estimate, target allocation, sliced model building
    dry_run: bool = False
    num_target_ranks: int | None = None
    memory_per_rank: float | None = None   # MB; dry-run default: node memory / cores
    modelbuilding_steps: int = 1
    # CoreNEURON and checkpoints
    keep_build: bool = False                 # keep <output>/coreneuron_input (file mode)
    build_model: str = "AUTO"                # AUTO | ON | OFF
    simulate_model: bool = True              # --simulate-model=OFF: build the model only
    coreneuron_direct_mode: bool = False     # force in-memory transfer
    save: str | None = None                  # --save=DIR: checkpoint at the end of the run
    restore: str | None = None               # --restore=DIR: continue from a checkpoint
    # CoreNEURON solver options (the established driver's meaning)
    cell_permute: int = 0                    # 0 none, 1 node adjacency (2: GPU only)
    model_stats: bool = False                # CoreNEURON prints its model statistics
    enable_shm: bool = False                 # file-mode model in /dev/shm when it fits
    provenance: str = "fast"                 # "full" hashes the input files
    checkpoint_every: float | None = None    # ms between periodic checkpoints
    checkpoints_keep: int = 2                # periodic checkpoints kept


@dataclass(frozen=True)
class NodePopulationInfo:
    name: str
    type: str
    nodes_file: str
    morphologies_dir: str
    morphology_ext: str
    emodels_dir: str
    mechanisms_dir: str

    @property
    def precedence(self) -> int:
        return _TYPE_PRECEDENCE.get(self.type, 0)


@dataclass(frozen=True)
class EdgePopulationInfo:
    name: str
    edges_file: str
    type: str
    source: str
    target: str
    source_size: int = -1   # node count of the source population (-1: unknown)


@dataclass(frozen=True)
class Settings:
    config_path: Path
    sim: libsonata.SimulationConfig
    circuit_path: Path
    circuit: libsonata.CircuitConfig
    node_sets: libsonata.NodeSets
    node_populations: dict  # name -> NodePopulationInfo, in processing order (contract §1.3)
    edge_populations: tuple  # EdgePopulationInfo in circuit-config order (contract §1.3, §11.4)
    output_dir: Path
    spikes_file: Path
    options: RunOptions = field(default_factory=RunOptions)
    warnings: tuple = ()

    # ---- shortcuts used throughout the driver -------------------------------------------
    @property
    def run(self):
        return self.sim.run

    @property
    def conditions(self):
        return self.sim.conditions

    @property
    def integration_method(self) -> int:
        return _INTEGRATION[self.sim.run.integration_method.name]

    @property
    def target_simulator(self) -> str:
        if self.options.simulator:
            return self.options.simulator.upper()
        return self.sim.target_simulator.name.upper()

    @property
    def mechanisms_dir(self) -> str:
        """The circuit's ``components.mechanisms_dir`` (first population that names one)."""
        return next((p.mechanisms_dir for p in self.node_populations.values()
                     if p.mechanisms_dir), "")

    @property
    def success_marker(self) -> Path:
        return Path(str(self.config_path) + ".SUCCESS")


def read_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise ConfigError(f"{what} not found: {path}")
    problem = json_problem(path)   # not UTF-8, absurdly nested
    if problem:
        raise ConfigError(f"{path}: {problem}")
    try:
        with open(path) as fd:
            data = json.load(fd)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: "
                          f"{exc.msg}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a JSON object")
    return data


#: keys whose JSON type libsonata checks without naming them: (section, key) -> expected
_TYPED_KEYS = {
    **{("run", k): (int, float) for k in ("tstop", "dt", "spike_threshold")},
    **{("run", k): int for k in ("random_seed", "ionchannel_seed", "minis_seed",
                                  "stimulus_seed", "synapse_seed")},
    **{("conditions", k): (int, float) for k in ("celsius", "v_init",
                                                  "extracellular_calcium")},
    ("conditions", "randomize_gaba_rise_time"): bool,
    ("output", "output_dir"): str, ("output", "spikes_file"): str,
    (None, "node_set"): str, (None, "network"): str, (None, "target_simulator"): str,
}


def _mistyped_key(config_path) -> str | None:
    """'run.tstop: must be a number, got "fifty"' for the first key of the wrong JSON type."""
    with open(config_path) as fd:
        data = json.load(fd)
    for (section, key), expected in _TYPED_KEYS.items():
        block = data if section is None else data.get(section)
        if not isinstance(block, dict) or key not in block:
            continue
        value = block[key]
        ok = isinstance(value, expected) and not (expected is not bool and
                                                  isinstance(value, bool))
        if not ok:
            kind = "a number" if expected in ((int, float), int) else \
                "true or false" if expected is bool else "a string"
            name = key if section is None else f"{section}.{key}"
            return f"{name}: must be {kind}, got {json.dumps(value)}"
    return None


def _sonata_error(path, exc) -> ConfigError:
    return ConfigError(f"{path}: {str(exc).strip()}")


def load_settings(config_path: str | os.PathLike, options: RunOptions = RunOptions()
                  ) -> Settings:
    """Read and validate everything a run needs from the configs; raise one ConfigError
    listing every problem found (``config.check`` adds the checks of each section)."""
    issues = IssueList()
    settings = read_settings(config_path, options, issues)
    issues.raise_if_fatal()
    return settings


def parse_simulation_config(config_path: Path, text: str | None = None):
    """libsonata's parse of the simulation config (of ``text`` instead of the file when given:
    the checking pass parses a copy without the entries libsonata refused)."""
    try:
        if text is None:
            return libsonata.SimulationConfig.from_file(str(config_path))
        return libsonata.SimulationConfig(text, str(Path(config_path).parent))
    except libsonata.SonataError as exc:
        raise _sonata_error(config_path, exc) from exc
    except RuntimeError as exc:  # libsonata's JSON type errors name no key: find it
        raise ConfigError(f"{config_path}: {_mistyped_key(config_path) or str(exc).strip()}"
                          ) from exc


def read_settings(config_path: str | os.PathLike, options: RunOptions, issues: IssueList,
                  sim=None) -> Settings | None:
    """The run's ``Settings``; problems go to ``issues``. None when the circuit cannot be
    read at all (then ``issues`` says why). ``sim``: an already parsed simulation config."""
    config_path = Path(config_path)
    read_json(config_path, "Simulation config")  # clear messages for missing / bad JSON
    if sim is None:
        sim = parse_simulation_config(config_path)
    circuit_path = Path(sim.network) if sim.network else config_path.parent / "circuit_config.json"
    if not circuit_path.is_absolute():
        circuit_path = config_path.parent / circuit_path
    try:
        read_json(circuit_path, f"Circuit config (from {config_path}: network)")
        circuit = libsonata.CircuitConfig.from_file(str(circuit_path))
    except ConfigError as exc:
        issues.fatal(config_path, "network", str(exc))
        return None
    except (libsonata.SonataError, RuntimeError) as exc:
        issues.fatal(circuit_path, "", str(exc).strip())
        return None
    circuit_json = json.loads(circuit.expanded_json)

    node_pops = _node_populations(circuit, circuit_json, circuit_path, issues)
    edge_pops = _edge_populations(circuit_json, circuit_path, node_pops, issues)
    node_sets = _node_sets(sim, circuit, config_path, circuit_path, issues)
    _check_node_set(sim, node_sets, node_pops, config_path, issues)

    output_dir = Path(options.output_path or sim.output.output_dir)
    if not output_dir.is_absolute():
        output_dir = config_path.parent / output_dir
    spikes_file = output_dir / os.path.basename(sim.output.spikes_file or "out.h5")
    return Settings(config_path=config_path, sim=sim, circuit_path=circuit_path,
                    circuit=circuit, node_sets=node_sets, node_populations=node_pops,
                    edge_populations=tuple(edge_pops), output_dir=output_dir,
                    spikes_file=spikes_file, options=options,
                    warnings=tuple(str(w) for w in issues.warnings))


def _node_populations(circuit, circuit_json, circuit_path, issues) -> dict:
    files = {}
    for i, entry in enumerate(circuit_json.get("networks", {}).get("nodes", [])):
        for name in entry.get("populations", {}):
            files[name] = (entry.get("nodes_file", ""), f"networks.nodes[{i}]")
    pops = []
    for name in sorted(circuit.node_populations):
        props = circuit.node_population_properties(name)
        nodes_file, key = files.get(name, ("", "networks.nodes"))
        ptype = props.type or "biophysical"
        if ptype == "vasculature":
            continue
        if not os.path.isfile(props.elements_path):
            issues.fatal(circuit_path, f"{key}.nodes_file",
                         f"nodes file of population '{name}' not found: {props.elements_path}")
            continue
        problem = hdf5_problem(props.elements_path, "nodes")
        if problem:
            issues.fatal(circuit_path, f"{key}.nodes_file",
                         f"nodes file of population '{name}': {problem}")
            continue
        if ptype not in SUPPORTED_NODE_TYPES:
            issues.fatal(circuit_path, f"{key}.populations.{name}.type",
                         f"population type '{ptype}' is not supported by this version")
            continue
        morph_dir, ext = props.morphologies_dir, "swc"
        alt = dict(props.alternate_morphology_formats or {})
        if "neurolucida-asc" in alt:
            morph_dir, ext = alt["neurolucida-asc"], "asc"
        elif "h5v1" in alt:
            morph_dir, ext = alt["h5v1"], "h5"
        if ptype == "biophysical":
            # h5v1 may name a container file (merged-morphologies.h5) instead of a folder
            if not morph_dir or not (os.path.isdir(morph_dir) or
                                     (ext == "h5" and os.path.isfile(morph_dir))):
                issues.fatal(circuit_path, f"{key}.populations.{name}.morphologies_dir",
                             f"morphology directory of population '{name}' not found: "
                             f"'{morph_dir}'")
            if not props.biophysical_neuron_models_dir or \
                    not os.path.isdir(props.biophysical_neuron_models_dir):
                issues.fatal(circuit_path,
                             f"{key}.populations.{name}.biophysical_neuron_models_dir",
                             f"emodel directory of population '{name}' not found: "
                             f"'{props.biophysical_neuron_models_dir}'")
        models_dir = props.biophysical_neuron_models_dir
        if ptype == "point_process":   # templates from point_neuron_models_dir
            models_dir = props.point_neuron_models_dir or models_dir
            if not models_dir or not os.path.isdir(models_dir):
                issues.fatal(circuit_path, f"{key}.populations.{name}.point_neuron_models_dir",
                             f"point-neuron model directory of population '{name}' not "
                             f"found: '{models_dir}'")
        pops.append(NodePopulationInfo(name, ptype, props.elements_path, morph_dir, ext,
                                       models_dir, props.mechanisms_dir or ""))
    pops.sort(key=lambda p: (p.precedence, p.name))
    return {p.name: p for p in pops}


def _edge_populations(circuit_json, circuit_path, node_pops, issues) -> list:
    base = circuit_path.parent
    result = []
    for i, entry in enumerate(circuit_json.get("networks", {}).get("edges", [])):
        edges_file = entry.get("edges_file", "")
        path = Path(edges_file) if os.path.isabs(edges_file) else base / edges_file
        key = f"networks.edges[{i}].edges_file"
        problem = hdf5_problem(path, "edges")
        if problem:
            issues.fatal(circuit_path, key, f"edges file: {problem}")
            continue
        try:
            storage = libsonata.EdgeStorage(str(path))
        except (libsonata.SonataError, RuntimeError) as exc:
            issues.fatal(circuit_path, key, f"cannot open edges file {path}: {exc}")
            continue
        for name, props in entry.get("populations", {}).items():
            etype = (props or {}).get("type", "chemical")
            if etype not in _EDGE_TYPES:
                issues.warning(circuit_path, f"networks.edges[{i}].populations.{name}.type",
                               f"unknown edge type '{etype}': population skipped")
                continue
            if name not in storage.population_names:
                issues.fatal(circuit_path, f"networks.edges[{i}].populations.{name}",
                             f"population '{name}' not found in {path}")
                continue
            pop = storage.open_population(name)
            source = node_pops.get(pop.source)
            size = libsonata.NodeStorage(source.nodes_file).open_population(source.name).size \
                if source is not None else -1
            result.append(EdgePopulationInfo(name, str(path), etype, pop.source, pop.target,
                                             size))
    return result


def _node_sets(sim, circuit, config_path, circuit_path, issues):
    node_sets = libsonata.NodeSets("{}")
    circuit_file = circuit.node_sets_path
    if circuit_file:
        try:
            node_sets = libsonata.NodeSets.from_file(circuit_file)
        except (libsonata.SonataError, RuntimeError) as exc:
            issues.fatal(circuit_path, "node_sets_file", f"cannot read {circuit_file}: {exc}")
    sim_file = sim.node_sets_file
    if sim_file and sim_file.endswith(".json") and sim_file != circuit_file:
        if not os.path.isfile(sim_file):
            issues.fatal(config_path, "node_sets_file", f"file not found: {sim_file}")
        else:
            try:
                before = json.loads(node_sets.toJSON())
                replaced = node_sets.update(libsonata.NodeSets.from_file(sim_file))
            except (libsonata.SonataError, RuntimeError) as exc:
                issues.fatal(config_path, "node_sets_file", f"cannot read {sim_file}: {exc}")
            else:
                # a node set repeated with the same definition (a whole-circuit file reused)
                # changes nothing: only real redefinitions are worth a line, one for all
                after = json.loads(node_sets.toJSON())
                changed = sorted(n for n in replaced if before.get(n) != after.get(n))
                if changed:
                    issues.warning(config_path, "node_sets_file",
                                   f"{sim_file} redefines {len(changed)} node set(s) of the "
                                   f"circuit: {', '.join(changed[:10])}"
                                   f"{', ...' if len(changed) > 10 else ''}")
    return node_sets


def _check_node_set(sim, node_sets, node_pops, config_path, issues):
    name = sim.node_set
    if name and name not in node_sets.names:
        issues.fatal(config_path, "node_set", f"unknown node set '{name}'")
