"""The provenance record: what a run ran with, written into its output folder.

``neurodamus_provenance.json`` (rank 0, atomically, once the outputs are closed) holds:

* the content hashes of the simulation config (also without its ``output`` section, which
  names where results go, not what they are), the circuit config and the node-sets file;
* every input file by role (``nodes:<population>``, ``edges:<population>``,
  ``replay:<input>``) with its path, size and mtime; ``--provenance=full`` adds content hashes.
  Morphology and emodel folders get a digest of their listing (names and sizes; contents too
  with ``full``);
* the mechanism libraries loaded (path, size, content hash) and a digest of the mechanism
  names NEURON knows: the mechanism build id;
* the NEURON, CoreNEURON, libsonata, numpy, Python and neurodamus versions;
* rank count, engine, seeds (run and inputs), the command line and the run options.

``explain(a, b)`` (used by ``neurodamus compare``) lists what differs between two records and
sums it up: "same inputs and versions, different rank count".
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import time
from dataclasses import asdict, is_dataclass
from pathlib import Path

import libsonata
import numpy as np

from . import __version__, launch
from .engine.coreneuron_mechanisms import mechanism_names
from .engine.summary import write_text_atomic

NAME = "neurodamus_provenance.json"
FORMAT = 1
MODES = ("fast", "full")
_BLOCK = 1 << 20


# ---- digests ------------------------------------------------------------------------------------
def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fd:
        for block in iter(lambda: fd.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def _json_sha256(data) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def describe_file(path, full: bool) -> dict:
    path = Path(path)
    try:
        st = path.stat()
    except OSError:
        return {"path": str(path), "missing": True}
    entry = {"path": str(path.resolve()), "size": st.st_size, "mtime": st.st_mtime}
    if full:
        entry["sha256"] = file_sha256(path)
    return entry


def describe_folder(path, full: bool) -> dict:
    """A digest of a folder's listing (relative names and sizes; contents with ``full``)."""
    path = Path(path)
    if not path.is_dir():
        return {"path": str(path), "missing": True}
    digest = hashlib.sha256()
    count = 0
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            full_path = Path(root) / name
            rel = str(full_path.relative_to(path))
            digest.update(f"{rel}\0{full_path.stat().st_size}\0".encode())
            if full:
                digest.update(file_sha256(full_path).encode())
            count += 1
    key = "content_sha256" if full else "listing_sha256"
    return {"path": str(path.resolve()), "files": count, key: digest.hexdigest()}


def config_hashes(config_path) -> dict:
    """The simulation config's hash, and its hash without the ``output`` section."""
    raw = Path(config_path).read_bytes()
    out = {"path": str(Path(config_path).resolve()), "sha256": hashlib.sha256(raw).hexdigest()}
    try:
        data = json.loads(raw)
        data.pop("output", None)
        out["sha256_without_output"] = _json_sha256(data)
    except ValueError:
        pass
    return out


# ---- what a run collects ----------------------------------------------------------------------
def versions(h=None) -> dict:
    out = {"neurodamus": __version__, "libsonata": getattr(libsonata, "__version__", "?"),
           "numpy": np.__version__, "python": platform.python_version()}
    try:
        import neuron
        out["neuron"] = neuron.__version__
    except ImportError:
        out["neuron"] = None
    if h is not None:
        out["neuron_build"] = str(h.nrnversion(6))
        # CoreNEURON ships inside NEURON (same version) when NEURON was built with it
        out["coreneuron"] = out["neuron"] if _has_coreneuron() else None
    return out


def _has_coreneuron() -> bool:
    try:
        from neuron import coreneuron  # noqa: F401
        return True
    except ImportError:
        return False


def mechanisms(h=None) -> dict:
    """The mechanism build id: the libraries mapped into this process and NEURON's names."""
    libs = [p for p in launch.mapped_files()
            if os.path.basename(p) in ("libnrnmech.so", "libcorenrnmech.so", "special")
            or os.path.basename(p).startswith("libnrnmech")]
    out = {"libraries": [dict(describe_file(p, full=False), sha256=file_sha256(p))
                         for p in libs if os.path.isfile(p)]}
    if h is not None:
        names = mechanism_names(h, 0) + mechanism_names(h, 1)
        out["count"] = len(names)
        out["names_sha256"] = _json_sha256(sorted(names))
    digest = _json_sha256([lib["sha256"] for lib in out["libraries"]] +
                          [out.get("names_sha256", "")])
    out["build_id"] = digest[:16]
    return out


def seeds(sim) -> dict:
    run = sim.run
    out = {k: getattr(run, k) for k in ("random_seed", "stimulus_seed", "ionchannel_seed",
                                        "minis_seed", "synapse_seed") if hasattr(run, k)}
    for name in sim.list_input_names:
        seed = getattr(sim.input(name), "random_seed", None)
        if seed is not None:
            out[f"input:{name}"] = seed
    return out


def input_files(settings, full: bool) -> dict:
    """Node, edge and replay spike files by role; morphology and emodel folders."""
    out = {}
    for name, info in settings.node_populations.items():
        out[f"nodes:{name}"] = describe_file(info.nodes_file, full)
        for key in ("morphologies_dir", "emodels_dir"):
            folder = getattr(info, key, "")
            if folder and f"{key}:{folder}" not in out:
                out[f"{key}:{name}"] = describe_folder(folder, full)
    for ep in settings.edge_populations:
        out[f"edges:{ep.name}"] = describe_file(ep.edges_file, full)
    sim = settings.sim
    for name in sim.list_input_names:
        spike_file = getattr(sim.input(name), "spike_file", None)
        if spike_file:
            out[f"replay:{name}"] = describe_file(spike_file, full)
    return out


def _options(options) -> dict:
    if options is None or not is_dataclass(options):
        return {}
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(options).items()}


def collect(settings, *, ranks: int, engine: str, h=None, argv=None, mode: str = "fast"
            ) -> dict:
    """The record of a run (rank 0; ``h`` given once the mechanisms are loaded)."""
    full = mode == "full"
    node_sets = getattr(settings.sim, "node_sets_file", "") or \
        getattr(settings.circuit, "node_sets_path", "")
    record = {
        "format": FORMAT,
        "mode": mode,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command_line": list(sys.argv if argv is None else argv),
        "host": platform.node(),
        "ranks": ranks,
        "engine": engine,
        "simulation_config": config_hashes(settings.config_path),
        "circuit_config": config_hashes(settings.circuit_path),
        "node_sets": describe_file(node_sets, True) if node_sets and Path(node_sets).is_file()
        else None,
        "files": input_files(settings, full),
        "mechanisms": mechanisms(h),
        "versions": versions(h),
        "seeds": seeds(settings.sim),
        "tstop": settings.run.tstop,
        "dt": settings.run.dt,
        "options": _options(getattr(settings, "options", None)),
    }
    record["circuit_config"].pop("sha256_without_output", None)
    return record


def write(folder, record: dict) -> Path:
    """Into the output folder under a temporary name, then renamed."""
    path = Path(folder) / NAME
    write_text_atomic(path, json.dumps(record, indent=1) + "\n")
    return path


def read(folder) -> dict | None:
    try:
        data = json.loads((Path(folder) / NAME).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == FORMAT else None


# ---- explaining differences --------------------------------------------------------------------
def _file_difference(role, fa, fb) -> tuple[str, bool] | None:
    """(text, certain) when a file differs; ``certain`` False for mtime-only differences."""
    if fa is None or fb is None:
        return f"{role}: only in {'B' if fa is None else 'A'}", True
    if fa.get("missing") or fb.get("missing"):
        return (f"{role}: missing in {'A' if fa.get('missing') else 'B'}", True) \
            if fa.get("missing") != fb.get("missing") else None
    for key in ("sha256", "content_sha256", "listing_sha256"):
        if key in fa and key in fb:
            return (f"{role}: content differs", True) if fa[key] != fb[key] else None
    if fa.get("size") != fb.get("size"):
        return f"{role}: size {fa.get('size')} vs {fb.get('size')}", True
    if fa.get("mtime") != fb.get("mtime"):
        return (f"{role}: same size, different mtime (contents not hashed; "
                f"--provenance=full hashes them)"), False
    return None


def explain(a: dict | None, b: dict | None) -> dict:
    """What differs between two provenance records, and a one-line verdict."""
    if a is None or b is None:
        missing = " and ".join(s for s, r in (("A", a), ("B", b)) if r is None)
        return {"differences": [], "explanation": f"no provenance record in {missing}"}
    inputs, uncertain, other = [], [], []
    sa, sb = a.get("simulation_config", {}), b.get("simulation_config", {})
    if sa.get("sha256_without_output") != sb.get("sha256_without_output"):
        inputs.append("simulation config: content differs")
    elif sa.get("sha256") != sb.get("sha256"):
        other.append("simulation config: only its output section differs")
    if a.get("circuit_config", {}).get("sha256") != b.get("circuit_config", {}).get("sha256"):
        inputs.append("circuit config: content differs")
    na, nb = a.get("node_sets") or {}, b.get("node_sets") or {}
    if na.get("sha256") != nb.get("sha256"):
        inputs.append("node sets file: content differs")
    fa, fb = a.get("files", {}), b.get("files", {})
    for role in sorted(set(fa) | set(fb)):
        found = _file_difference(role, fa.get(role), fb.get(role))
        if found:
            (inputs if found[1] else uncertain).append(found[0])
    for key in sorted(set(a.get("seeds", {})) | set(b.get("seeds", {}))):
        va, vb = a.get("seeds", {}).get(key), b.get("seeds", {}).get(key)
        if va != vb:
            inputs.append(f"seed {key}: {va} vs {vb}")
    if a.get("mechanisms", {}).get("build_id") != b.get("mechanisms", {}).get("build_id"):
        other.append("mechanisms: different build")
    versions_diff = [f"{k} version: {a['versions'].get(k)} vs {b['versions'].get(k)}"
                     for k in sorted(set(a.get("versions", {})) | set(b.get("versions", {})))
                     if a.get("versions", {}).get(k) != b.get("versions", {}).get(k)]
    run_diff = []
    if a.get("ranks") != b.get("ranks"):
        run_diff.append(("rank count", f"ranks: {a.get('ranks')} vs {b.get('ranks')}"))
    if a.get("engine") != b.get("engine"):
        run_diff.append(("engine", f"engine: {a.get('engine')} vs {b.get('engine')}"))
    for key in ("tstop", "dt"):
        if a.get(key) != b.get(key):
            inputs.append(f"{key}: {a.get(key)} vs {b.get(key)}")
    restored = [s for s, r in (("A", a), ("B", b)) if (r.get("options") or {}).get("restore")]
    if restored:
        other.append(f"restored from a checkpoint: {' and '.join(restored)}")
    parts = []
    if inputs:
        parts.append("different inputs")
    elif uncertain:
        parts.append("inputs probably the same (same sizes, different mtimes)")
    else:
        parts.append("same inputs")
    parts.append("different versions" if versions_diff else "same versions")
    if any("mechanisms" in o for o in other):
        parts.append("different mechanism build")
    parts += [f"different {what}" for what, _ in run_diff]
    if not run_diff and not inputs and not versions_diff:
        parts.append("same rank count and engine")
    return {"differences": inputs + uncertain + versions_diff + [t for _, t in run_diff]
            + other, "explanation": ", ".join(parts)}


__all__ = ["MODES", "NAME", "collect", "explain", "read", "write"]
