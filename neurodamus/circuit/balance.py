"""Load balance: a cost per cell, the gid -> rank map it gives, and the files that cache both.

The plan side (pure numpy + libsonata + h5py) reads the circuit once per run on rank 0:

* ``CellTable``: every instantiated cell of the simulation node set (sorted gids) with its
  template, morphology, morphology class and afferent synapse count (from the edge index,
  never from the edges themselves);
* the **WholeCell cost model**: ``compartments x (1 + density mechanisms) + SYNAPSE_COST x
  synapses`` per cell, in units of "one segment of one mechanism". The compartment term is
  measured: one sample cell per (template, morphology) pair is instantiated in NEURON, which
  applies the template's own nseg rule, axon replacement and channel insertion;
* the **Memory cost**: the dry-run's memory per cell type plus memory per synapse
  (``tools/dryrun.py``).

The map is the greedy partition of ``circuit/distribution.py``; rank 0 computes it and
broadcasts it, so every rank holds the same map. Files live in ``<output>/load_balance/``
(never in the working directory), keyed by a hash of the circuit (node and edge files, node
set, selected cells, cost model) and, for allocations, the rank count:

* ``cx_<key>.npz``            WholeCell cost per cell (rank-count independent);
* ``memory_<key>.json``       dry-run memory estimates (rank-count independent);
* ``alloc_<mode>_<key>_r<N>.npz``  the gid -> rank map of ``mode`` for N ranks
  (``--dry-run --num-target-ranks=N`` writes the Memory one).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..parallel import on_root
from .cell_costs import measure_samples
from .distribution import greedy_partition, imbalance, model_slices, rank_loads, round_robin_ranks
from .nodes import open_population, template_name

log = logging.getLogger(__name__)

COST_MODEL_VERSION = 1
#: cost of one synapse relative to one segment of one density mechanism. Measured on the
#: example model (NEURON 9, fixed step): a ProbAMPANMDA/ProbGABAAB synapse integrates in ~0.25
#: of a segment-mechanism, its share of event delivery at ~20 Hz adds about as much again.
SYNAPSE_COST = 0.5
BALANCE_FOLDER = "load_balance"


# ---- the circuit as the balancer sees it (pure) -----------------------------------------
@dataclass
class CellTable:
    """Every instantiated cell of the simulation, in ascending gid order."""

    gids: np.ndarray
    population: np.ndarray      # population name per cell
    raw: np.ndarray             # node id within its population
    template: np.ndarray        # emodel template name (without "hoc:")
    morphology: np.ndarray      # morphology name
    mclass: np.ndarray          # morphology class: mtype when present, else the morphology
    synapses: np.ndarray        # afferent synapses over every edge population

    def __len__(self):
        return len(self.gids)

    @property
    def cell_type(self) -> np.ndarray:
        """The dry-run's cell type: ``template x morphology class``."""
        return np.char.add(np.char.add(self.template.astype(str), " x "),
                           self.mclass.astype(str))


def afferent_counts(edges_file: str, name: str, n_target_nodes: int) -> np.ndarray:
    """Afferent edge count of every target node, from the edge index (O(nodes + ranges)).

    Falls back to reading the target id column when the file has no index.
    """
    import h5py

    with h5py.File(edges_file, "r") as fd:
        grp = fd[f"edges/{name}"]
        index = grp.get("indices/target_to_source")
        if index is not None and "node_id_to_ranges" in index:
            node_ranges = np.asarray(index["node_id_to_ranges"][:], dtype=np.int64)
            edge_ranges = np.asarray(index["range_to_edge_id"][:], dtype=np.int64)
            lengths = edge_ranges[:, 1] - edge_ranges[:, 0] if len(edge_ranges) else \
                np.zeros(0, np.int64)
            cum = np.concatenate([[0], np.cumsum(lengths)])
            counts = cum[node_ranges[:, 1]] - cum[node_ranges[:, 0]]
            out = np.zeros(n_target_nodes, np.int64)
            m = min(n_target_nodes, len(counts))
            out[:m] = counts[:m]
            return out
        targets = np.asarray(grp["target_node_id"][:], dtype=np.int64)
    return np.bincount(targets, minlength=n_target_nodes)[:n_target_nodes]


def cell_table(settings, populations: dict) -> CellTable:
    """Read what the balancer needs of every selected cell: 3 columns per population, bulk."""
    import libsonata


    parts = []
    for p in populations.values():
        if p.is_virtual or not len(p.selected):
            continue
        pop = open_population(p.info)
        ids = p.selected
        lo, hi = int(ids[0]), int(ids[-1]) + 1
        whole = libsonata.Selection([(lo, hi)])

        def column(name, default=None, pop=pop, whole=whole, ids=ids, lo=lo):
            if name in pop.attribute_names:
                return np.asarray(pop.get_attribute(name, whole))[ids - lo]
            return default
        template = np.array([template_name(t) for t in column("model_template")], dtype=object)
        morph = column("morphology")
        if morph is None:   # point neurons (no morphology): the template names the cell
            morph = template
        morph = np.asarray(morph, dtype=object)
        mclass = column("mtype", morph)
        syn = np.zeros(len(ids), np.int64)
        for ep in settings.edge_populations:
            if ep.target == p.name:
                syn += afferent_counts(ep.edges_file, ep.name, p.size)[ids]
        parts.append((ids + p.offset, np.full(len(ids), p.name, dtype=object), ids, template,
                      morph, np.asarray(mclass, dtype=object), syn))
    if not parts:
        empty = np.zeros(0, np.int64)
        return CellTable(empty, empty.astype(object), empty, empty.astype(object),
                         empty.astype(object), empty.astype(object), empty)
    cols = [np.concatenate(c) for c in zip(*parts)]
    order = np.argsort(cols[0], kind="stable")
    return CellTable(*(c[order] for c in cols))


def all_gids(populations: dict) -> np.ndarray:
    """Sorted gids of every instantiated cell (the domain of the gid -> rank map)."""
    parts = [p.selected + p.offset for p in populations.values() if not p.is_virtual]
    return np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64)


def _file_stamp(path) -> list:
    try:
        st = os.stat(path)
        return [str(Path(path).resolve()), st.st_size, st.st_mtime_ns]
    except OSError:
        return [str(path), -1, -1]


def circuit_key(settings, populations: dict) -> str:
    """A short hash naming this circuit + node set + cost model (rank count excluded)."""
    data = {"version": COST_MODEL_VERSION, "synapse_cost": SYNAPSE_COST,
            "keep_axon": bool(settings.options.keep_axon), "populations": {}, "edges": []}
    for name, p in populations.items():
        digest = hashlib.sha1(np.ascontiguousarray(p.selected, dtype=np.int64).tobytes())
        data["populations"][name] = [*_file_stamp(p.info.nodes_file), p.info.type,
                                     p.info.morphologies_dir, p.info.emodels_dir, p.offset,
                                     digest.hexdigest()]
    for ep in settings.edge_populations:
        data["edges"].append([ep.name, *_file_stamp(ep.edges_file)])
    text = json.dumps(data, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def balance_dir(settings) -> Path:
    """``<output>/load_balance``: where balance files are cached (next to the outputs)."""
    return Path(settings.output_dir) / BALANCE_FOLDER


def costs_path(settings, key) -> Path:
    return balance_dir(settings) / f"cx_{key}.npz"


def memory_path(settings, key) -> Path:
    return balance_dir(settings) / f"memory_{key}.json"


def allocation_path(settings, key, mode: str, n_ranks: int) -> Path:
    return balance_dir(settings) / f"alloc_{mode}_{key}_r{n_ranks}.npz"


def _cannot_write(path: Path, exc: OSError):
    return ConfigError(f"cannot write the load-balance file {path} (next to the outputs; "
                       f"choose another --output-path): {exc.strerror or exc}")


def _atomic_save_npz(path: Path, **arrays) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.tmp-{os.getpid()}.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    except OSError as exc:
        raise _cannot_write(path, exc) from exc


def _atomic_write_text(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError as exc:
        raise _cannot_write(path, exc) from exc


def save_allocation(path: Path, gids: np.ndarray, ranks: np.ndarray, costs: np.ndarray,
                    mode: str) -> None:
    _atomic_save_npz(path, gids=np.asarray(gids, np.int64), ranks=np.asarray(ranks, np.int32),
                     costs=np.asarray(costs, float), mode=np.array(mode))


def load_allocation(path: Path, gids: np.ndarray, n_ranks: int):
    """(ranks, costs) from an allocation file, or None if absent or not for these gids."""
    try:
        with np.load(path) as data:
            if not np.array_equal(data["gids"], gids):
                return None
            ranks, costs = data["ranks"], data["costs"]
    except (OSError, KeyError, ValueError):
        return None
    if len(ranks) and (ranks.min() < 0 or ranks.max() >= n_ranks):
        return None
    return ranks, costs


def save_costs(path: Path, table: CellTable, compartments: np.ndarray, costs: np.ndarray):
    _atomic_save_npz(path, gids=table.gids, compartments=np.asarray(compartments, np.int64),
                     synapses=table.synapses, costs=np.asarray(costs, float))


def load_costs(path: Path, gids: np.ndarray):
    try:
        with np.load(path) as data:
            if not np.array_equal(data["gids"], gids):
                return None
            return {k: data[k] for k in ("compartments", "synapses", "costs")}
    except (OSError, KeyError, ValueError):
        return None


def wholecell_costs(units: np.ndarray, synapses: np.ndarray) -> np.ndarray:
    """Cost per cell: measured segment-mechanism units plus the synapse term."""
    return np.asarray(units, float) + SYNAPSE_COST * np.asarray(synapses, float)


def memory_costs(table: CellTable, estimates: dict) -> np.ndarray:
    """Estimated MB per cell from the dry-run's estimates (``tools/dryrun.py``)."""
    per_type = estimates["cell_mb"]
    fallback = float(np.mean(list(per_type.values()))) if per_type else 0.0
    cell_mb = np.array([per_type.get(t, fallback) for t in table.cell_type], dtype=float)
    return cell_mb + table.synapses * estimates["synapse_kb"] / 1024.0


def unique_pairs(table: CellTable):
    """One representative cell per (population, template, morphology): (index, pair id)."""
    keys = [f"{p}\0{t}\0{m}" for p, t, m in zip(table.population, table.template,
                                                  table.morphology)]
    _, first, inverse = np.unique(np.asarray(keys, dtype=object).astype(str),
                                  return_index=True, return_inverse=True)
    return first, inverse.ravel()


# ---- the collective entry point -----------------------------------------------------------
@dataclass
class BalanceResult:
    mode: str
    gids: np.ndarray             # sorted instantiated gids
    ranks: np.ndarray            # rank of each gid
    costs: np.ndarray            # the cost balanced (units of the mode)
    path: Path | None            # the allocation file used or written
    reused: bool                 # True when the allocation came from the cache

    def report(self, n_ranks: int) -> dict:
        loads = rank_loads(self.costs, self.ranks, n_ranks)
        rr = rank_loads(self.costs, round_robin_ranks(len(self.costs), n_ranks), n_ranks)
        return {"mode": self.mode, "ranks": n_ranks, "max_over_mean": imbalance(loads),
                "round_robin_max_over_mean": imbalance(rr),
                "loads": [float(x) for x in loads],
                "file": str(self.path) if self.path else None, "reused": self.reused}


def assign(settings, options, populations: dict, runtime) -> BalanceResult | None:
    """Collective: the gid -> rank map of ``options.lb_mode`` (None for RoundRobin).

    ``runtime`` (``neurodamus.runtime.Runtime``) gives the communicator and, when costs must be
    measured, NEURON and the mechanisms (loaded early for that). Rank 0 reads and writes the
    files and computes the map; every rank gets the same map (and the same error, if any).
    """
    mode = options.lb_mode
    if mode == "RoundRobin" or options.dry_run:
        return None
    comm = runtime.comm
    size = comm.Get_size()
    gids = all_gids(populations)
    t0 = time.perf_counter()
    root: dict = {}     # rank 0's working data (the cell table)

    def look_up():
        key = circuit_key(settings, populations)
        alloc_file = allocation_path(settings, key, mode, size)
        found = load_allocation(alloc_file, gids, size)
        if found is not None:
            return key, alloc_file, found, None
        if mode == "WholeCell":
            cached = load_costs(costs_path(settings, key), gids)
            if cached is not None:
                return key, alloc_file, None, cached["costs"]
            table = root["table"] = cell_table(settings, populations)
            first, inverse = unique_pairs(table)
            root["inverse"] = inverse
            samples = [(str(table.population[i]), int(table.raw[i]), str(table.template[i]),
                        str(table.morphology[i])) for i in first]
            return key, alloc_file, None, samples
        path = memory_path(settings, key)
        estimates = load_memory_estimates(path)
        if estimates is None:
            out = f" --output-path={options.output_path}" if options.output_path else ""
            raise ConfigError(f"--lb-mode=Memory balances by the dry-run's estimates, and "
                              f"{path} does not exist for this circuit: run 'neurodamus "
                              f"{settings.config_path} --dry-run{out}' first (add "
                              f"--num-target-ranks={size} to fix the allocation)")
        return key, alloc_file, None, memory_costs(cell_table(settings, populations),
                                                     estimates)

    key, alloc_file, found, costs = on_root(comm, look_up)
    if found is not None:
        result = BalanceResult(mode, gids, found[0], found[1], alloc_file, True)
    else:
        if isinstance(costs, list):          # WholeCell, nothing cached: measure the pairs
            nseg, units = measure_samples(settings, populations, runtime, costs)

            def save_costs_file():
                table, inverse = root["table"], root["inverse"]
                compartments = nseg[inverse]
                cell_costs = wholecell_costs(units[inverse], table.synapses)
                path = costs_path(settings, key)
                save_costs(path, table, compartments, cell_costs)
                log.info("Load balance WholeCell: %d (template, morphology) pair(s) measured "
                         "for %d cells, compartments per cell %d..%d; costs written: %s",
                         len(nseg), len(table), compartments.min(), compartments.max(), path)
                return cell_costs
            costs = on_root(comm, save_costs_file)

        def partition():
            ranks = greedy_partition(costs, size)
            save_allocation(alloc_file, gids, ranks, costs, mode)
            return ranks
        result = BalanceResult(mode, gids, on_root(comm, partition), costs, alloc_file, False)
    rep = result.report(size)
    verb = "reused" if result.reused else "written"
    log.info("Load balance %s: %d rank(s), max/mean load %.3f (round robin would give %.3f); "
             "allocation %s: %s (%.2f s)", mode, size, rep["max_over_mean"],
             rep["round_robin_max_over_mean"], verb, alloc_file, time.perf_counter() - t0)
    return result


def build_slices(local: np.ndarray, steps: int, result: BalanceResult | None,
                 engine: str) -> list[np.ndarray]:
    """``--modelbuilding-steps=N``: this rank's gids ``local`` in N slices of about equal cost.

    The slices cap peak memory only where the engine can write a slice out and free it before
    building the next (CoreNEURON file mode, ``pc.nrncore_write`` per slice). The NEURON
    engine needs the whole model in memory, so it builds in one step and says so.
    """
    steps = int(steps or 1)
    costs = None
    if result is not None and len(local):
        costs = result.costs[np.searchsorted(result.gids, local)]
    slices = model_slices(local, steps, costs)
    if steps > 1:
        sizes = ", ".join(str(len(s)) for s in slices)
        if engine != "CORENEURON":
            log.warning("--modelbuilding-steps=%d caps memory only in CoreNEURON file mode; "
                        "the %s engine builds the whole model in one step (slices of rank 0 "
                        "would hold %s cells)", steps, engine, sizes)
        else:
            log.info("Model building in %d steps (rank 0 slices: %s cells)", steps, sizes)
    return slices


def save_memory_estimates(path: Path, estimates: dict) -> None:
    _atomic_write_text(path, json.dumps(estimates, indent=1, sort_keys=True) + "\n")


def load_memory_estimates(path: Path) -> dict | None:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or "cell_mb" not in data or "synapse_kb" not in data:
        return None
    return data


__all__ = [
    "BALANCE_FOLDER",
    "SYNAPSE_COST",
    "BalanceResult",
    "CellTable",
    "afferent_counts",
    "allocation_path",
    "assign",
    "balance_dir",
    "build_slices",
    "cell_table",
    "circuit_key",
    "costs_path",
    "load_allocation",
    "load_costs",
    "load_memory_estimates",
    "memory_costs",
    "memory_path",
    "save_allocation",
    "save_memory_estimates",
    "wholecell_costs",
]
