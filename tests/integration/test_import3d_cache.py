"""Templates that load their morphology with Import3d (issue 21): the per-rank cache of
core/hoc/import3d.hoc builds the same cells as NEURON's Import3d, so the spikes are identical."""

import json
import subprocess
import sys

import pytest

from benchmarks.foreign import foreign_template
from neurodamus import paths
from neurodamus.tools.example import write_example
from neurodamus.tools.mechanisms import build_mechanisms
from tests.helpers import base_env, read_spikes, run_neurodamus, spikes_equal

pytestmark = pytest.mark.mpi


@pytest.fixture(scope="module")
def foreign_config(tmp_path_factory):
    config = write_example(tmp_path_factory.mktemp("foreign"), n_cells=24, tstop=150, seed=5)
    for hoc in (config.parent / "emodels").glob("*.hoc"):
        hoc.write_text(foreign_template(hoc.read_text()))
    build_mechanisms([config.parent / "mechanisms"], log=lambda *_: None)
    return config


def _run(config, out, ranks, cache):
    res = run_neurodamus([config, f"--output-path={out}"], ranks=ranks,
                         env=base_env(NEURODAMUS_IMPORT3D_CACHE=cache))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return read_spikes(out / "out.h5")


@pytest.mark.parametrize("ranks", [1, 2])
def test_spikes_identical_with_and_without_the_cache(foreign_config, tmp_path, ranks):
    reference = _run(foreign_config, tmp_path / "nrn", 1, "0")
    assert len(reference["cortex"][0]) > 20   # the cells fire: the comparison means something
    assert spikes_equal(reference, _run(foreign_config, tmp_path / "cached", ranks, "1"))


_GEOMETRY = r"""
import json, os, sys
from neuron import h
from neurodamus.circuit import import3d_cache
emodels, morph_dir, names = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
h.nrn_load_dll(sys.argv[4])
h.load_file(os.path.join(emodels, "PyrHH.hoc"))
# 4 per file: NEURON's code, two replays that check the section lists, one that appends them
cells = [h.PyrHH(i, morph_dir, names[i % len(names)]) for i in range(4 * len(names))]
def geometry(c):
    return [[s.name().split(".")[-1], s.nseg, s.L,
             [[s.x3d(k), s.y3d(k), s.z3d(k), s.diam3d(k)] for k in range(s.n3d())],
             s.parentseg().sec.name().split(".")[-1] if s.parentseg() else None,
             s.parentseg().x if s.parentseg() else None, [seg.area() for seg in s]]
            for s in c.all]
lists = [[[s.name().split(".")[-1] for s in getattr(c, n)]
          for n in ("all", "somatic", "axonal", "basal", "apical")] for c in cells]
print(json.dumps({"cells": [geometry(c) for c in cells], "lists": lists,
                  "cached_files": len(import3d_cache._cache),
                  "direct_lists": sum(r.lists is not None
                                      for r in import3d_cache._cache.values())}))
"""


def test_cells_are_those_of_neuron_import3d(foreign_config, tmp_path):
    """Every section, 3-D point, connection, nseg, area and SectionList of cells built four
    times from each file (then from the cache: replayed, and the last with its section lists
    appended directly) equals NEURON's Import3d's."""
    folder = foreign_config.parent
    names = sorted(p.name for p in (folder / "morphologies").glob("*.swc"))
    library = build_mechanisms([folder / "mechanisms"], log=lambda *_: None).library
    results = {}
    for cache in ("0", "1"):
        env = base_env(NEURODAMUS_IMPORT3D_CACHE=cache,
                       HOC_LIBRARY_PATH=str(paths.hoc_dir()))
        proc = subprocess.run([sys.executable, "-c", _GEOMETRY, str(folder / "emodels"),
                               str(folder / "morphologies"), ",".join(names), str(library)],
                              env=env, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr[-3000:]
        results[cache] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert results["0"]["cached_files"] == 0
    assert results["1"]["cached_files"] == len(names)   # one parse per file, reused
    assert results["1"]["direct_lists"] == len(names)   # the 4th cell got its lists directly
    assert results["1"]["cells"] == results["0"]["cells"]
    assert results["1"]["lists"] == results["0"]["lists"]
