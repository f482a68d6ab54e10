"""Input files that are not what the config says they are.

A truncated or corrupted HDF5 file, a nodes file given as edges (or the reverse), a column
shorter than its population, a config that is not UTF-8 or is nested absurdly deep: each gets
one line naming the file and what it holds instead, before libsonata or NEURON read them.
Only file metadata is read (group names, dataset shapes), never the data.
"""

from __future__ import annotations

import json
import os
import re

import h5py

#: deeper JSON is not a config (and deep enough nesting overflows the C++ parser's stack)
MAX_JSON_DEPTH = 64
SONATA_KINDS = ("nodes", "edges", "spikes", "report")
_STRING_RE = re.compile(rb'"(?:[^"\\]|\\.)*"')


def json_problem(path) -> str | None:
    """Why the config at ``path`` cannot be a config file (None when it may be)."""
    with open(path, "rb") as fd:
        data = fd.read()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        return (f"not UTF-8 text: byte 0x{data[exc.start]:02x} at line {line} (offset "
                f"{exc.start}); save the file as UTF-8")
    depth = deepest = 0
    for byte in _STRING_RE.sub(b'""', data):
        if byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        elif byte in b"]}":
            depth -= 1
    if deepest > MAX_JSON_DEPTH:
        return f"nested {deepest} levels deep (a config needs a handful; limit {MAX_JSON_DEPTH})"
    return None


def hdf5_problem(path, kind: str) -> str | None:
    """Why ``path`` is not a readable SONATA ``kind`` file ('nodes', 'edges' or 'spikes')."""
    path = str(path)
    if not os.path.isfile(path):
        return f"file not found: {path}"
    if not h5py.is_hdf5(path):
        return f"{path} is not an HDF5 file"
    try:
        with h5py.File(path, "r") as fd:
            groups = set(fd.keys())
    except OSError as exc:
        reason = str(exc).split("\n")[0]
        return f"{path} cannot be read: truncated or corrupted HDF5 file ({reason})"
    if kind in groups:
        return None
    holds = [g for g in SONATA_KINDS if g in groups]
    if holds:
        return (f"{path} holds {holds[0]} (/{holds[0]}), not {kind}: a {holds[0]} file "
                f"given as a {kind} file")
    return f"{path} has no /{kind} group (not a SONATA {kind} file; it holds " \
           f"{', '.join('/' + g for g in sorted(groups)) or 'nothing'})"


def _group_problems(fd, base: str, size_from: str, what: str):
    """Columns of population group ``base`` whose length differs from the population's."""
    grp = fd[base]
    if size_from not in grp:
        return
    size = grp[size_from].shape[0] if grp[size_from].shape else 0
    columns = [(name, grp[name]) for name in grp if isinstance(grp[name], h5py.Dataset) and
               name in ("source_node_id", "target_node_id", "edge_type_id", "edge_group_id",
                        "edge_group_index", "node_type_id", "node_group_id", "node_group_index")]
    groups = [name for name in grp if isinstance(grp[name], h5py.Group) and name.isdigit()]
    if groups == ["0"]:   # one attribute group: every row has a value in each column
        g0 = grp["0"]
        columns += [(f"0/{name}", g0[name]) for name in g0 if isinstance(g0[name], h5py.Dataset)]
    for name, dataset in columns:
        length = dataset.shape[0] if dataset.shape else 0
        if length != size:
            kind = "short" if length < size else "long"
            yield f"{base}/{name}", (f"{length} values for the {size} {what} of the population "
                                     f"({kind} column)")


def check_column_lengths(settings, issues) -> None:
    """Every column of every population as long as the population (dataset shapes only)."""
    files = [(p.nodes_file, f"nodes/{p.name}", "node_type_id", "nodes")
             for p in settings.node_populations.values()]
    files += [(e.edges_file, f"edges/{e.name}", "source_node_id", "edges")
              for e in settings.edge_populations]
    for path, base, size_from, what in files:
        try:
            with h5py.File(path, "r") as fd:
                if base not in fd:
                    continue
                for key, text in _group_problems(fd, base, size_from, what):
                    issues.fatal(path, key, text)
        except OSError as exc:
            issues.fatal(path, base, f"cannot be read: {str(exc).splitlines()[0]}")


def check_populations_in_files(settings, issues) -> None:
    """Every node population the circuit config names is in its nodes file."""
    networks = json.loads(settings.circuit.expanded_json).get("networks", {})
    index = {name: i for i, entry in enumerate(networks.get("nodes", []))
             for name in entry.get("populations", {})}
    for name, info in settings.node_populations.items():
        try:
            with h5py.File(info.nodes_file, "r") as fd:
                held = sorted(fd["nodes"]) if "nodes" in fd else []
        except OSError:
            continue   # named by the nodes_file check
        if name not in held:
            issues.fatal(settings.circuit_path,
                         f"networks.nodes[{index.get(name, '?')}].populations.{name}",
                         f"population '{name}' is not in {info.nodes_file} (it holds "
                         f"{', '.join(held) or 'no population'})")


CHECKS = (check_populations_in_files, check_column_lengths)

__all__ = ["CHECKS", "check_column_lengths", "check_populations_in_files", "hdf5_problem",
           "json_problem"]
