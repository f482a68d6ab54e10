"""Small, named edits of a copy of the example circuit (the tools the corpus cases are made of).

A ``Workspace`` is one mutated copy: the files of the example circuit, the simulation config
to run, extra command-line arguments and environment variables. Cases only call these helpers,
so each case reads as one line of what it breaks.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np


@dataclass
class Workspace:
    dir: Path                          # the mutated copy of the example circuit
    config: Path                       # the simulation config given on the command line
    libraries: dict                    # name -> prebuilt mechanism library (libnrnmech.so)
    args: list = field(default_factory=list)
    env: dict = field(default_factory=dict)

    # ---- files --------------------------------------------------------------------------
    def path(self, rel: str) -> Path:
        return self.dir / rel

    def remove(self, rel: str) -> None:
        p = self.path(rel)
        shutil.rmtree(p) if p.is_dir() else p.unlink()

    def write(self, rel: str, text: str | bytes) -> None:
        p = self.path(rel)
        p.write_bytes(text) if isinstance(text, bytes) else p.write_text(text)

    def replace_text(self, rel: str, old: str, new: str, count: int = 1) -> None:
        p = self.path(rel)
        text = p.read_text()
        assert old in text, f"mutation does not apply: {old!r} not in {rel}"
        p.write_text(text.replace(old, new, count))

    # ---- JSON ---------------------------------------------------------------------------
    def edit_json(self, rel: str, edit) -> None:
        """``edit(data)`` changes the parsed JSON in place (its return value is ignored)."""
        p = self.path(rel)
        data = json.loads(p.read_text())
        edit(data)
        p.write_text(json.dumps(data, indent=2))

    def sim(self, edit) -> None:
        self.edit_json("simulation_config.json", edit)

    def circuit(self, edit) -> None:
        self.edit_json("circuit_config.json", edit)

    # ---- HDF5 ---------------------------------------------------------------------------
    def h5_delete(self, rel: str, dataset: str) -> None:
        with h5py.File(self.path(rel), "r+") as fd:
            del fd[dataset]

    def h5_replace(self, rel: str, dataset: str, data) -> None:
        with h5py.File(self.path(rel), "r+") as fd:
            del fd[dataset]
            fd.create_dataset(dataset, data=data)

    def h5_rename(self, rel: str, old: str, new: str) -> None:
        with h5py.File(self.path(rel), "r+") as fd:
            fd.move(old, new)

    def h5_set(self, rel: str, dataset: str, index: int, value) -> None:
        """One value of a dataset, in place (dtype, length and indices unchanged)."""
        with h5py.File(self.path(rel), "r+") as fd:
            fd[dataset][index] = value

    def h5_shorten(self, rel: str, dataset: str) -> None:
        """The dataset without its last row (same dtype): a column shorter than the rest."""
        with h5py.File(self.path(rel), "r+") as fd:
            data, dtype = fd[dataset][()], fd[dataset].dtype
            del fd[dataset]
            fd.create_dataset(dataset, data=data[:-1], dtype=dtype)

    def truncate(self, rel: str, fraction: float = 0.5) -> None:
        """Cut the file (an interrupted copy)."""
        p = self.path(rel)
        data = p.read_bytes()
        p.write_bytes(data[:int(len(data) * fraction)])

    def h5_read(self, rel: str, dataset: str) -> np.ndarray:
        with h5py.File(self.path(rel), "r") as fd:
            return fd[dataset][()]

    # ---- the circuit's own facts (so cases do not hard-code the generator's choices) -----
    def node_column(self, column: str) -> list[str]:
        values = self.h5_read("nodes.h5", f"nodes/cortex/0/{column}")
        return [v.decode() if isinstance(v, bytes) else str(v) for v in values]

    def last_edge(self, rel: str = "edges.h5",
                  population: str = "cortex__cortex__chemical") -> int:
        """Id of an edge onto the highest node id (read only by the last rank)."""
        targets = self.h5_read(rel, f"edges/{population}/target_node_id")
        return int(np.flatnonzero(targets == targets.max())[-1])

    def morphology_of_last_node(self) -> str:
        """The morphology of the highest node id: only used by cells on the last rank."""
        morphs = self.node_column("morphology")
        return morphs[-1]

    def morphology_used_once(self) -> tuple[int, str]:
        """(node id, name) of a morphology used by exactly one cell, preferring odd ids."""
        morphs = self.node_column("morphology")
        once = [(i, m) for i, m in enumerate(morphs) if morphs.count(m) == 1]
        assert once, "the example circuit has no morphology used by a single cell"
        odd = [x for x in once if x[0] % 2 == 1]
        return (odd or once)[0]


def copy_example(source: Path, target: Path, libraries: dict) -> Workspace:
    """A fresh copy of the example circuit (the mechanism folder is shared by content)."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("output", "*.SUCCESS"))
    return Workspace(dir=target, config=target / "simulation_config.json",
                     libraries=libraries)
