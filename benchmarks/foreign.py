"""A benchmark circuit of "foreign" templates: cells that load their morphology themselves with
NEURON's Import3d (swc), as emodel templates written for other drivers do.

    python benchmarks/foreign.py 1000 [--tstop 100] [--seed 1]   # prints the config path

It is ``neurodamus example`` (same nodes, edges, morphologies, mechanisms and channels) with
the two templates rewritten: instead of the driver's ``nd_load_morphology`` each one reads its
swc file with ``Import3d_SWC_read`` + ``Import3d_GUI.instantiate(this)`` and numbers its
sections itself (``v(0.0001)`` = index in the order soma, axon, dend, apic). Cached like
``benchmarks/circuits.py``, under a key that includes this file.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import circuits
from neurodamus.tools import example
from neurodamus.tools.mechanisms import cache_root

LOAD_MORPHOLOGY = r"""
// Import3d, as foreign templates load their morphology: swc or asc by extension.
proc load_morphology() { localobj morph, import, sf
    strdef path
    sprint(path, "%s/%s", $s1, $s2)
    sf = new StringFunctions()
    if (sf.substr(path, ".asc") >= 0 || sf.substr(path, ".ASC") >= 0) {
        morph = new Import3d_Neurolucida3()
    } else {
        morph = new Import3d_SWC_read()
    }
    morph.quiet = 1
    morph.input(path)
    import = new Import3d_GUI(morph, 0)
    import.instantiate(this)
}

// Section index (SONATA section id) of each section in v(0.0001): soma, axon, dend, apic.
proc number_sections() { local i
    i = 0
    forsec all { v(0.0001) = i  i += 1 }
}
"""


def foreign_template(text: str) -> str:
    """The example template with Import3d morphology loading instead of the driver's (the
    bundled templates already load swc/asc with Import3d: then they are used as they are)."""
    if "Import3d_SWC_read" in text:
        return text
    text = text.replace('{load_file("ndmorph.hoc")}',
                        '{load_file("stdrun.hoc")}\n{load_file("import3d.hoc")}')
    text = text.replace("external nd_load_morphology\n", "")
    text, n = re.subn(r"nd_load_morphology\(this, \$s2, \$s3\)\n\s*drop_placeholders\(\)\n"
                      r"(\s*)index_sections\(\)\n",
                      r"load_morphology($s2, $s3)\n\1index_sections()\n\1number_sections()\n",
                      text)
    if n != 1:
        raise RuntimeError("the example template changed: update benchmarks/foreign.py")
    return text.replace("\nendtemplate", LOAD_MORPHOLOGY + "\nendtemplate")


def _key() -> str:
    return hashlib.sha1(Path(__file__).read_bytes()).hexdigest()[:8]


def make_foreign_circuit(n_cells: int, tstop: float = 100.0, seed: int = 1, log=print) -> Path:
    folder = cache_root() / "benchmarks" / \
        f"foreign_{n_cells}_{tstop:g}ms_s{seed}_{circuits._generator_hash()}_{_key()}"
    config = folder / "simulation_config.json"
    done = folder / ".complete"
    if not done.exists():
        if folder.exists():
            shutil.rmtree(folder)
        log(f"writing the {n_cells}-cell Import3d-template circuit to {folder} ...")
        example.write_example(folder, n_cells=n_cells, tstop=tstop, seed=seed)
        for hoc in sorted((folder / "emodels").glob("*.hoc")):
            hoc.write_text(foreign_template(hoc.read_text()))
        done.touch()
    return config


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cells", type=int)
    parser.add_argument("--tstop", type=float, default=100.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(make_foreign_circuit(args.cells, args.tstop, args.seed,
                               log=lambda m: print(m, file=sys.stderr)))


if __name__ == "__main__":
    main()
