"""Scalable benchmark circuits: the example model at any size, cached on disk.

    python benchmarks/circuits.py 4000 [--tstop 1000] [--seed 1]   # prints the config path

The circuit is ``neurodamus example`` (``neurodamus/tools/example.py``) at ``n_cells``: 80 %
pyramidal / 20 % basket cells with procedurally grown morphologies (4 variants per class, 64-94
compartments), ~102 afferent synapses per cell (12 excitatory and 6 inhibitory sources with 4
synapses each, 10 thalamic sources with 3), a virtual thalamus of n_cells / 5 Poisson sources
replayed into it. Generation is linear in the cell count (~1 s per 1000 cells) and cached in
``$NEURODAMUS_CACHE_DIR/benchmarks`` (default ``~/.cache/neurodamus/benchmarks``) under a key
of the size, run length, seed and the generator's source, so a changed generator never reuses a
stale circuit. The mechanisms are built once with CoreNEURON support, so both engines run the
same ``libnrnmech.so``.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from neurodamus.tools import example
from neurodamus.tools.mechanisms import build_mechanisms, cache_root


def _generator_hash() -> str:
    text = Path(example.__file__).read_bytes()
    models = Path(example.paths.models_dir()) / example.MODEL
    for path in sorted(models.rglob("*")):
        if path.is_file() and path.suffix in (".hoc", ".mod"):
            text += path.read_bytes()
    return hashlib.sha1(text).hexdigest()[:10]


def circuit_dir(n_cells: int, tstop: float, seed: int = 1) -> Path:
    name = f"example_{n_cells}_{tstop:g}ms_s{seed}_{_generator_hash()}"
    return cache_root() / "benchmarks" / name


def make_circuit(n_cells: int, tstop: float = 1000.0, seed: int = 1, log=print) -> Path:
    """The simulation config of the cached circuit (written on first use)."""
    folder = circuit_dir(n_cells, tstop, seed)
    config = folder / "simulation_config.json"
    done = folder / ".complete"
    if not done.exists():
        if folder.exists():
            shutil.rmtree(folder)
        log(f"writing the {n_cells}-cell circuit to {folder} ...")
        example.write_example(folder, n_cells=n_cells, tstop=tstop, seed=seed)
        done.touch()
    return config


def make_mixed_circuit(directory, n_cells: int = 60, tstop: float = 300.0, seed: int = 7,
                       scale: float = 3.0) -> Path:
    """The example circuit where every even node gets a ``scale`` x longer copy of its
    morphology (same sections, ~``scale`` x the compartments): small and large cells mixed.

    Round robin on 2 ranks puts every large cell on rank 0, the worst case for it. Section
    ids are unchanged, so the edges stay valid.
    """
    import h5py
    import numpy as np

    config = example.write_example(directory, n_cells=n_cells, tstop=tstop, seed=seed)
    morph_dir = config.parent / "morphologies"
    for swc in sorted(morph_dir.glob("*.swc")):
        if swc.stem.endswith("_big"):
            continue
        rows = [line.split() for line in swc.read_text().splitlines()
                if line.strip() and not line.startswith("#")]
        with open(morph_dir / f"{swc.stem}_big.swc", "w") as fd:
            for r in rows:
                x, y, z = (float(v) * (scale if int(r[1]) != 1 else 1.0) for v in r[2:5])
                fd.write(f"{r[0]} {r[1]} {x:.3f} {y:.3f} {z:.3f} {r[5]} {r[6]}\n")
    with h5py.File(config.parent / "nodes.h5", "r+") as fd:
        grp = fd["nodes/cortex/0"]
        names = [m.decode() if isinstance(m, bytes) else m for m in grp["morphology"][:]]
        names = [m + "_big" if i % 2 == 0 else m for i, m in enumerate(names)]
        del grp["morphology"]
        grp.create_dataset("morphology", data=np.array(names, dtype=object),
                           dtype=h5py.string_dtype())
    return config


def mechanisms(config: Path, coreneuron: bool = True, log=print):
    """The circuit's mechanism build (cached by content), with CoreNEURON's library."""
    return build_mechanisms([config.parent / "mechanisms"], coreneuron=coreneuron,
                            log=lambda *a: None)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cells", type=int)
    parser.add_argument("--tstop", type=float, default=1000.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    config = make_circuit(args.cells, args.tstop, args.seed, log=lambda m: print(m,
                                                                                   file=sys.stderr))
    print(config)


if __name__ == "__main__":
    main()
