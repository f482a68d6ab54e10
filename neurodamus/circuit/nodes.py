"""Node selection and attribute reading (libsonata, bulk reads; no NEURON)."""

from __future__ import annotations

from dataclasses import dataclass, field

import libsonata
import numpy as np

from ..config.issues import IssueList, cap_list
from ..config.settings import NodePopulationInfo, Settings
from ..errors import CircuitError
from .distribution import distribute
from .node_sets import NodeSetService
from .offsets import gid_offsets

#: attributes read in pairs: both must exist, otherwise both are 0 (contract §2)
_PAIRED = (("exc_mini_frequency", "inh_mini_frequency"), )
_PAIRED_DYNAMICS = (("threshold_current", "holding_current"), )


@dataclass
class PopulationNodes:
    """One node population as this rank sees it."""

    info: NodePopulationInfo
    size: int
    selected: np.ndarray            # raw ids in the simulation node set (sorted)
    offset: int = 0
    local_raw: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    attrs: dict = field(default_factory=dict)   # column -> array aligned with local_raw

    @property
    def name(self):
        return self.info.name

    @property
    def is_virtual(self):
        return self.info.type == "virtual"

    @property
    def local_gids(self) -> np.ndarray:
        return self.local_raw + self.offset

    @property
    def max_id(self) -> int:
        if self.is_virtual:
            return self.size - 1
        return int(self.selected.max()) if len(self.selected) else 0


def template_name(value) -> str:
    """The hoc template named by a ``model_template`` value (``hoc:T`` or ``T``).

    Raises ValueError for another kind of model (``nml:...``) or a name hoc cannot have.
    """
    text = value.decode() if isinstance(value, bytes) else str(value)
    kind, _, name = text.rpartition(":")
    if kind not in ("", "hoc") or not name.isidentifier():
        raise ValueError(f"'{text}' is not a hoc template ('hoc:<name>')")
    return name


def open_population(info: NodePopulationInfo) -> libsonata.NodePopulation:
    try:
        return libsonata.NodeStorage(info.nodes_file).open_population(info.name)
    except (libsonata.SonataError, RuntimeError) as exc:
        raise CircuitError(f"{info.nodes_file}: cannot open node population '{info.name}': "
                           f"{exc}") from exc


def node_set_service(settings: Settings) -> NodeSetService:
    """The run's node-set service over every node population of the circuit."""
    return NodeSetService(settings.node_sets, {name: info.nodes_file for name, info
                                               in settings.node_populations.items()})


def select_nodes(settings: Settings, node_sets: NodeSetService | None = None,
                 issues: IssueList | None = None) -> dict[str, PopulationNodes]:
    """Materialise the simulation node set for every population and freeze gid offsets.

    Problems go to ``issues`` (raised at once without it). A population the node set cannot
    be evaluated on contributes no cell (``NodeSetService``); selecting no cell at all is an
    error. The service, when given, is attached to the populations.
    """
    own = issues is None
    issues = IssueList() if own else issues
    node_sets = node_sets or node_set_service(settings)
    node_set = settings.sim.node_set
    if node_set:
        referenced = node_sets.referenced_populations(node_set) \
            if node_sets.known(node_set) else []
        unknown = sorted(set(referenced) - set(settings.node_populations))
        if unknown:
            issues.fatal(settings.config_path, "node_set",
                         f"node set '{node_set}' names unknown population(s) {unknown} "
                         f"(the circuit has {sorted(settings.node_populations)})")
    result = {}
    for name, info in settings.node_populations.items():
        try:
            size = node_sets.population(name).size
        except (libsonata.SonataError, RuntimeError) as exc:
            issues.fatal(info.nodes_file, f"nodes/{name}",
                         f"cannot open node population '{name}': {exc}")
            continue
        if info.type != "virtual" and node_set and node_sets.known(node_set):
            selected = node_sets.raw_ids(node_set, name)
        else:
            selected = np.arange(size, dtype=np.int64)
        result[name] = PopulationNodes(info, size, selected)
    if node_set and node_sets.known(node_set) and not issues.fatals and \
            not any(len(p.selected) for p in result.values() if not p.is_virtual):
        issues.fatal(settings.config_path, "node_set", f"node set '{node_set}' selects no "
                     f"cell of any non-virtual population")
    if own:
        issues.raise_if_fatal()
    offsets = gid_offsets({name: p.max_id for name, p in result.items()})
    for name, pop_nodes in result.items():
        pop_nodes.offset = offsets[name]
    node_sets.attach(result)
    return result


def distribute_nodes(populations: dict[str, PopulationNodes], rank: int, n_ranks: int,
                     lb_mode: str = "RoundRobin", rank_of: np.ndarray | None = None) -> None:
    """Assign local cells: one global round robin over the gids of all populations, or the
    gid -> rank map ``rank_of`` (aligned with the sorted gids) of a cost-based mode."""
    instantiated = [p for p in populations.values() if not p.is_virtual]
    if not instantiated:
        return
    all_gids = np.concatenate([p.selected + p.offset for p in instantiated])
    local = distribute(all_gids, rank, n_ranks, lb_mode, rank_of)
    for p in instantiated:
        p.local_raw = p.selected[np.isin(p.selected + p.offset, local)]


def _read_range(getter, column, ids: np.ndarray):
    """Read ``column`` for sorted ``ids`` as one contiguous range, then pick the rows."""
    lo, hi = int(ids[0]), int(ids[-1]) + 1
    values = np.asarray(getter(column, libsonata.Selection([(lo, hi)])))
    return values[ids - lo]


REQUIRED_COLUMNS = ("model_template", "morphology")
OPTIONAL_COLUMNS = ("mtype", "etype", "x", "y", "z")


def read_local_attributes(pop_nodes: PopulationNodes, needs_dynamics=()) -> None:
    """Bulk-read the attributes the driver uses for this rank's cells (contract §2)."""
    ids = pop_nodes.local_raw
    info = pop_nodes.info
    if len(ids) == 0 or pop_nodes.is_virtual:
        return
    pop = open_population(info)
    names = set(pop.attribute_names)
    # point neurons have no morphology
    required = ("model_template",) if info.type == "point_process" else REQUIRED_COLUMNS
    missing = [c for c in required if c not in names]
    if missing:
        raise CircuitError(f"{info.nodes_file}: population '{info.name}' lacks required "
                           f"attribute(s) {cap_list(missing)}")
    attrs = {}
    for col in REQUIRED_COLUMNS + OPTIONAL_COLUMNS:
        if col in names:
            attrs[col] = _read_range(pop.get_attribute, col, ids)
    for pair in _PAIRED:
        present = all(c in names for c in pair)
        for c in pair:
            attrs[c] = (_read_range(pop.get_attribute, c, ids).astype(float) if present
                        else np.zeros(len(ids)))
    dyn = set(pop.dynamics_attribute_names)
    for pair in _PAIRED_DYNAMICS:
        present = all(c in dyn for c in pair)
        for c in pair:
            attrs[c] = (_read_range(pop.get_dynamics_attribute, c, ids).astype(float)
                        if present else np.zeros(len(ids)))
    for c in needs_dynamics:
        if c not in dyn:
            raise CircuitError(f"{info.nodes_file}: population '{info.name}' lacks the "
                               f"attribute '@dynamics:{c}' that its template needs")
        attrs["@dynamics:" + c] = _read_range(pop.get_dynamics_attribute, c, ids)
    pop_nodes.attrs = attrs
