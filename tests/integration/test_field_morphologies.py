"""H5 morphologies for templates written for the established driver (issue 15, item 1).

The fixtures (tests/fixtures/morph_circuits.py) load .swc / .asc through NEURON's Import3d, and
.h5 (per-cell files or one container) through the driver's ``morphio_read``. The Import3d runs
are the reference: every other loader must give the same cell, so the same soma voltages (bit
for bit) and the same spikes, on 1 and 2 ranks.
"""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from tests.fixtures import morph_circuits
from tests.helpers import read_spikes, run_neurodamus, spikes_equal


def _run(sim, ranks=1, output="output"):
    out = sim.parent / f"{output}_{ranks}"
    proc = run_neurodamus([sim, f"--output-path={out}"], ranks=ranks)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    import libsonata

    report = libsonata.ElementReportReader(str(out / "soma_v.h5"))["cells"]
    data = report.get()
    order = np.argsort(np.asarray(report.get_node_ids()))
    voltages = np.asarray(data.data)[:, order]
    return read_spikes(out / "out.h5"), voltages


@pytest.fixture(scope="module")
def circuits(tmp_path_factory):
    root = tmp_path_factory.mktemp("morph")
    return {(family, fmt): morph_circuits.write_family(root / f"{family}_{fmt}", family, fmt)
            for family, formats in morph_circuits.FAMILIES.items() for fmt in formats}


@pytest.fixture(scope="module")
def references(circuits):
    """The Import3d run of each family."""
    return {"point": _run(circuits[("point", "swc")]),
            "contour": _run(circuits[("contour", "asc")])}


def test_reference_cells_spike(references):
    for family, (spikes, _) in references.items():
        _, ids = spikes["cells"]
        assert set(ids.tolist()) == set(range(morph_circuits.N_CELLS)), family


@pytest.mark.parametrize("family,fmt", [("point", "swc_morphio"), ("contour", "asc_morphio"),
                                        ("contour", "h5"), ("contour", "container")])
def test_morphio_read_gives_the_import3d_cell(circuits, references, family, fmt):
    spikes, voltages = _run(circuits[(family, fmt)])
    ref_spikes, ref_voltages = references[family]
    assert spikes_equal(spikes, ref_spikes)
    assert np.array_equal(voltages, ref_voltages)


@pytest.mark.parametrize("family,fmt", [("point", "swc"), ("point", "swc_morphio"),
                                        ("contour", "asc"), ("contour", "h5"),
                                        ("contour", "container")])
def test_spikes_identical_on_two_ranks(circuits, references, family, fmt):
    spikes, voltages = _run(circuits[(family, fmt)], ranks=2)
    assert spikes_equal(spikes, references[family][0])
    assert np.array_equal(voltages, references[family][1])


def test_container_entry_missing_is_named(circuits, tmp_path):
    sim = circuits[("contour", "container")]
    nodes = sim.parent / "nodes.h5"
    with h5py.File(nodes, "r+") as fd:
        names = fd["nodes/cells/0/morphology"]
        names[2] = "no_such_cell"
    try:
        proc = run_neurodamus([sim, f"--output-path={tmp_path / 'out'}"])
    finally:
        with h5py.File(nodes, "r+") as fd:
            fd["nodes/cells/0/morphology"][2] = "contour_cell2"
    assert proc.returncode != 0
    assert "no_such_cell" in proc.stdout + proc.stderr
    assert morph_circuits.CONTAINER in proc.stdout + proc.stderr


def test_unsupported_soma_type_is_an_error_naming_the_file(circuits, tmp_path):
    """A three-point (NeuroMorpho) soma read by morphio_read is refused, naming the file."""
    sim = circuits[("point", "swc_morphio")]
    circuit = json.loads((sim.parent / "circuit_config.json").read_text())
    folder = tmp_path / "swc"
    folder.mkdir()
    for i in range(morph_circuits.N_CELLS):
        (folder / f"point_cell{i}.swc").write_text(
            "1 1 0 0 0 5 -1\n2 1 0 -5 0 5 1\n3 1 0 5 0 5 1\n"
            "4 3 0 6 0 1 1\n5 3 0 20 0 1 4\n")
    circuit["components"]["morphologies_dir"] = str(folder)
    (sim.parent / "circuit_bad.json").write_text(json.dumps(circuit))
    bad = json.loads(sim.read_text())
    bad["network"] = "circuit_bad.json"
    bad_sim = sim.parent / "simulation_bad.json"
    bad_sim.write_text(json.dumps(bad))
    proc = run_neurodamus([bad_sim, f"--output-path={tmp_path / 'out'}"])
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "point_cell0.swc" in text and "SOMA_NEUROMORPHO_THREE_POINT_CYLINDERS" in text


def test_template_without_a_needed_section_array_is_named(circuits):
    """In-process: hoc can create an array inside an object only if the template declares it."""
    from neuron import h

    from neurodamus import paths
    from neurodamus.circuit import morphology

    h.load_file(str(paths.hoc_dir() / "morphio_read.hoc"))
    h("begintemplate NdTestNoApic\npublic soma, axon, dend\ncreate soma[1], axon[1], dend[1]\n"
      "endtemplate NdTestNoApic")
    sim = circuits[("contour", "h5")]
    folder = json.loads((sim.parent / "circuit_config.json").read_text())[
        "components"]["alternate_morphologies"]["h5v1"]
    with pytest.raises(RuntimeError):
        h.morphio_read(h.NdTestNoApic(), f"{folder}/contour_cell0.h5")
    assert "declares no public section array 'apic'" in morphology.last_error
    assert "NdTestNoApic" in morphology.last_error
