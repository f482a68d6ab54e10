"""LFP reports on the example circuit: rank-count and engine invariance, bad electrodes files.

Weights come from ``neurodamus lfp-weights`` (4 electrodes around the circuit, line source).
The same report is run on NEURON and CoreNEURON (direct mode, and file mode with
``--keep-build``) on 1 and 2 ranks; every node's values must agree to 1e-9 relative.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import h5py
import libsonata
import numpy as np
import pytest

from neurodamus.tools.example import write_example
from tests.helpers import ROOT, base_env, run_neurodamus

pytestmark = pytest.mark.mpi

TSTOP = 100.0
ELECTRODES = "name,x,y,z\nc0,0,0,0\nc1,150,400,-80\nc2,-200,900,60\nc3,30,-150,200\n"
INPUTS = {
    "pulse": {"input_type": "current_clamp", "module": "pulse", "delay": 10.0,
              "duration": 80.0, "amp_start": 0.3, "width": 5.0, "frequency": 40.0,
              "node_set": "Inhibitory"},
    "stim": {"input_type": "current_clamp", "module": "linear", "delay": 20.0,
             "duration": 60.0, "amp_start": 0.2, "node_set": "Excitatory",
             "represents_physical_electrode": True},
}


def run_ok(args, ranks=1):
    res = run_neurodamus([str(a) for a in args], ranks=ranks,
                         env=base_env(PYTHONPATH=str(ROOT)))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res


def run_fails(args, ranks=1):
    res = run_neurodamus([str(a) for a in args], ranks=ranks, timeout=180,
                         env=base_env(PYTHONPATH=str(ROOT)))
    assert res.returncode != 0, res.stdout[-2000:]
    return res.stdout + res.stderr


def with_lfp(config: Path, name: str, electrodes_file: str, **extra) -> Path:
    sim = json.loads(config.read_text())
    sim["reports"] = {"lfp": dict({"type": "lfp", "electrodes_file": electrodes_file,
                                   "dt": 0.1, "start_time": 0.0, "end_time": TSTOP}, **extra)}
    path = config.parent / name
    path.write_text(json.dumps(sim, indent=1))
    return path


@pytest.fixture(scope="module")
def circuit(tmp_path_factory, mechanism_builds):
    config = write_example(tmp_path_factory.mktemp("lfp_circuit"), n_cells=24, tstop=TSTOP,
                           seed=7)
    sim = json.loads(config.read_text())
    sim["inputs"].update(INPUTS)
    config.write_text(json.dumps(sim, indent=1))
    (config.parent / "positions.csv").write_text(ELECTRODES)
    run_ok(["lfp-weights", config, "--electrodes", config.parent / "positions.csv",
            "-o", config.parent / "weights.h5"], ranks=2)
    return with_lfp(config, "lfp.json", "weights.h5")


@pytest.fixture(scope="module")
def runs(circuit, tmp_path_factory):
    out = {}
    for engine, ranks, extra in (("NEURON", 1, ("--debug",)), ("NEURON", 2, ()),
                                 ("CORENEURON", 1, ("--debug",)),
                                 ("CORENEURON", 2, ("--keep-build", "--debug"))):
        folder = tmp_path_factory.mktemp(f"lfp_{engine.lower()}{ranks}")
        res = run_ok([circuit, f"--output-path={folder}", f"--simulator={engine}", *extra], ranks)
        out[engine, ranks] = folder
        out["log", engine, ranks] = res.stdout + res.stderr
    return out


def test_neuron_reads_the_currents_by_node_index(runs):
    # core/mod's nd_gather_imem, once checked equal to the PtrVector's values; the reports
    # of both ways are compared with CoreNEURON's below
    assert "lfp report lfp: compartment currents read by node index" in runs["log", "NEURON", 1]


@pytest.mark.parametrize("ranks", [1, 2])
def test_coreneuron_gathers_the_currents_in_its_step(runs, ranks):
    # core/mod's NdCoreImemGather; its last row of each psolve is checked against the
    # currents CoreNEURON hands back to NEURON, and the report against NEURON's below
    log = runs["log", "CORENEURON", ranks]
    assert "lfp report lfp: CoreNEURON's step gathered the compartment currents" in log
    # its rows are written from inside the step, so the run is one psolve (one transfer)
    assert "lfp reports under CoreNEURON: flushed from its step every " in log
    assert f"CoreNEURON: 1 psolve(s) of up to {TSTOP:g} ms" in log, log[-3000:]


def test_an_electrode_on_a_report_cell_keeps_fast_i_membrane(runs):
    # the "stim" input is a physical electrode (IClamp) on the Excitatory cells: its current
    # is not a membrane current, so the currents cannot come from the voltages alone
    for key in (("NEURON", 1), ("CORENEURON", 2)):
        assert "lfp reports: compartment currents read from fast i_membrane_ (an electrode " \
            "(IClamp, SEClamp or VClamp) is on a cell of an lfp report)" in runs[("log", *key)]


@pytest.fixture(scope="module")
def axial_runs(circuit, tmp_path_factory):
    """The circuit with the driver's own current source instead of the electrode: the lfp
    currents are computed from the voltages; ``imem``: the same run with a report of
    i_membrane as well (fast i_membrane_ is then on, and the lfp report reads it);
    ``second``: secondorder 2 (fast i_membrane_ again)."""
    sim = json.loads(circuit.read_text())
    del sim["inputs"]["stim"]["represents_physical_electrode"]
    (circuit.parent / "axial.json").write_text(json.dumps(sim, indent=1))
    imem = dict(sim, reports=dict(sim["reports"], imem={
        "type": "compartment", "variable_name": "i_membrane", "cells": "Inhibitory",
        "dt": 1.0, "start_time": 0.0, "end_time": 10.0}))
    (circuit.parent / "axial_imem.json").write_text(json.dumps(imem, indent=1))
    second = dict(sim, run=dict(sim["run"], integration_method="crank_nicolson_ion"))
    (circuit.parent / "axial_second.json").write_text(json.dumps(second, indent=1))
    out = {}
    for name, config, engine, ranks in (("NEURON", "axial.json", "NEURON", 1),
                                        ("CORENEURON", "axial.json", "CORENEURON", 2),
                                        ("imem", "axial_imem.json", "NEURON", 1),
                                        ("second", "axial_second.json", "NEURON", 2)):
        folder = tmp_path_factory.mktemp(f"axial_{name.lower()}")
        res = run_ok([circuit.parent / config, f"--output-path={folder}",
                      f"--simulator={engine}", "--debug"], ranks)
        out[name] = folder
        out["log", name] = res.stdout + res.stderr
    return out


def test_currents_from_the_voltages_equal_fast_i_membrane(axial_runs):
    for name in ("NEURON", "CORENEURON"):
        assert "lfp reports: compartment currents computed from the voltages (no fast " \
            "i_membrane_)" in axial_runs["log", name]
    assert "lfp reports: compartment currents read from fast i_membrane_ (another report " \
        "records i_membrane" in axial_runs["log", "imem"]
    assert "lfp reports: compartment currents read from fast i_membrane_ (secondorder = 2)" \
        in axial_runs["log", "second"]
    axial, membrane = per_node(axial_runs["NEURON"]), per_node(axial_runs["imem"])
    scale = max(np.abs(v).max() for v in membrane.values())
    assert scale > 1e-6
    for node in membrane:   # the same physics: equal to rounding (float32 output)
        np.testing.assert_allclose(axial[node], membrane[node], rtol=1e-6, atol=1e-9 * scale,
                                   err_msg=f"node {node}")


def test_currents_from_the_voltages_identical_across_engines_and_ranks(axial_runs):
    # both engines compute the same terms in the same order (core/mod)
    ref, other = per_node(axial_runs["NEURON"]), per_node(axial_runs["CORENEURON"])
    assert ref.keys() == other.keys()
    for node in ref:
        np.testing.assert_allclose(other[node], ref[node], rtol=1e-9, atol=0,
                                   err_msg=f"node {node}")


@pytest.mark.parametrize("engine,ranks", [("NEURON", 1), ("CORENEURON", 2)])
def test_checkpoint_continues_the_report_from_the_voltages(axial_runs, circuit, tmp_path,
                                                           engine, ranks):
    text = save_half_and_restore(circuit.parent / "axial.json", tmp_path, engine, ranks, ranks)
    assert "compartment currents computed from the voltages" in text
    assert "not in the checkpoint" not in text, text[-2000:]
    ref, other = per_node(axial_runs[engine]), per_node(tmp_path / "second")
    assert ref.keys() == other.keys()
    for node in ref:
        np.testing.assert_array_equal(other[node], ref[node], err_msg=f"node {node}")


def per_node(folder: Path) -> dict:
    pop = libsonata.ElementReportReader(str(folder / "lfp.h5"))["cortex"]
    out = {}
    for node in pop.get_node_ids():
        data = pop.get(node_ids=[node])
        assert [e for _, e in data.ids] == [0, 1, 2, 3]
        out[int(node)] = np.asarray(data.data, float)
    return out


def test_report_layout_and_activity(runs, circuit):
    pop = libsonata.ElementReportReader(str(runs["NEURON", 1] / "lfp.h5"))["cortex"]
    assert sorted(pop.get_node_ids()) == list(range(24))
    assert pop.times == (0.0, TSTOP, 0.1)
    total = sum(per_node(runs["NEURON", 1]).values())     # the field of the whole circuit
    assert total.shape == (1000, 4)
    assert np.ptp(total[:, 0]) > 1e-6 and np.all(np.isfinite(total))


@pytest.mark.parametrize("engine,ranks", [("NEURON", 2), ("CORENEURON", 1),
                                          ("CORENEURON", 2)])
def test_identical_across_ranks_and_engines(runs, engine, ranks):
    ref, other = per_node(runs["NEURON", 1]), per_node(runs[engine, ranks])
    assert ref.keys() == other.keys()
    for node in ref:
        np.testing.assert_allclose(other[node], ref[node], rtol=1e-9, atol=0,
                                   err_msg=f"node {node}")


def test_coreneuron_with_permuted_nodes(runs, circuit, tmp_path):
    """--cell-permute=1 reorders CoreNEURON's nodes: the gather maps NEURON's node indices
    (the solver's own order of operations then differs in the last bits)."""
    run_ok([circuit, f"--output-path={tmp_path}", "--simulator=CORENEURON",
            "--cell-permute=1"])
    ref, other = per_node(runs["NEURON", 1]), per_node(tmp_path)
    assert ref.keys() == other.keys()
    scale = max(np.abs(v).max() for v in ref.values())
    for node in ref:
        np.testing.assert_allclose(other[node], ref[node], rtol=1e-9, atol=1e-9 * scale,
                                   err_msg=f"node {node}")


def save_half_and_restore(config: Path, tmp_path: Path, engine: str, ranks: int,
                          restore_ranks: int) -> str:
    """Run ``config`` to TSTOP / 2 with --save, then the whole of it with --restore, into
    ``tmp_path / 'second'``; the log of the second run."""
    sim = json.loads(config.read_text())
    sim["run"]["tstop"] = TSTOP / 2
    half = config.with_name(f"{config.stem}_half.json")
    half.write_text(json.dumps(sim))
    ckpt = tmp_path / "ckpt"
    run_ok([half, f"--output-path={tmp_path / 'first'}", f"--simulator={engine}",
            f"--save={ckpt}"], ranks)
    res = run_ok([config, f"--output-path={tmp_path / 'second'}", f"--simulator={engine}",
                  f"--restore={ckpt}"], restore_ranks)
    return res.stdout + res.stderr


@pytest.mark.parametrize("engine,ranks,restore_ranks", [("NEURON", 1, 1), ("NEURON", 2, 1),
                                                        ("CORENEURON", 2, 2),
                                                        ("CORENEURON", 2, 1)])
def test_checkpoint_continues_the_report(runs, circuit, tmp_path, engine, ranks, restore_ranks):
    """--save half-way, then --restore (also onto another rank count): the report equals the
    straight run's, the row at the checkpoint included (it comes from the saved currents)."""
    text = save_half_and_restore(circuit, tmp_path, engine, ranks, restore_ranks)
    assert "unknown key" not in text and "not in the checkpoint" not in text, text[-2000:]
    ref, other = per_node(runs[engine, ranks]), per_node(tmp_path / "second")
    assert ref.keys() == other.keys()
    for node in ref:
        np.testing.assert_array_equal(other[node], ref[node], err_msg=f"node {node}")


def test_periodic_checkpoint_continues_the_report(runs, circuit, tmp_path):
    """NEURON: a run with --checkpoint-every, continued from its first checkpoint; its step
    callback is not an event, so the checkpoint holds nothing of it."""
    first = tmp_path / "first"
    run_ok([circuit, f"--output-path={first}", "--checkpoint-every=40"])
    run_ok([circuit, f"--output-path={tmp_path / 'second'}",
            f"--restore={first / 'checkpoints' / 't40'}"])
    ref = per_node(runs["NEURON", 1])
    for folder in (first, tmp_path / "second"):
        other = per_node(folder)
        for node in ref:
            np.testing.assert_array_equal(other[node], ref[node], err_msg=f"node {node}")


@pytest.mark.parametrize("engine", ["NEURON", "CORENEURON"])
def test_short_flush_pieces_and_a_later_window(runs, circuit, tmp_path, engine):
    """A small report buffer: NEURON cuts the run into pieces that end between report steps;
    CoreNEURON's step writes the rows every few report steps (the buffer holds two rows of
    both reports), which must not disturb the run. A second report starting at 12.4 ms every
    0.5 ms samples the same steps."""
    sim = json.loads(circuit.read_text())
    sim["reports"]["late"] = dict(sim["reports"]["lfp"], start_time=12.4, dt=0.5,
                                  end_time=80.0, file_name="late")
    config = circuit.parent / "late.json"
    config.write_text(json.dumps(sim))
    run_ok([config, f"--output-path={tmp_path}", "--report-buffer-size=0.02",
            f"--simulator={engine}"])
    ref, other = per_node(runs["NEURON", 1]), per_node(tmp_path)
    late = libsonata.ElementReportReader(str(tmp_path / "late.h5"))["cortex"]
    assert late.times == (12.5, 80.0, 0.5)    # start' = round(12.4 / 0.5) * 0.5
    same = np.testing.assert_array_equal if engine == "NEURON" else \
        (lambda a, b, err_msg: np.testing.assert_allclose(a, b, rtol=1e-9, atol=0,
                                                          err_msg=err_msg))
    for node in ref:
        same(other[node], ref[node], err_msg=f"node {node}")
        rows = np.asarray(late.get(node_ids=[node]).data, float)
        # first step 496 (12.4 ms), then every 20 steps: rows 124, 129, ... of the 0.1 ms one
        assert len(rows) == 135
        same(rows, ref[node][124::5][:135], err_msg=f"node {node}")


def _copy_file(src: Path, dst: Path, keep_nodes=None, edit=None):
    with h5py.File(src, "r") as fd:
        nodes = fd["cortex/node_ids"][()]
        offsets = fd["cortex/offsets"][()].astype(np.int64)
        secs = fd["cortex/section_ids"][()]
        factors = fd["electrodes/cortex/scaling_factors"][()]
    keep = [i for i, n in enumerate(nodes) if keep_nodes is None or n in keep_nodes]
    rows = [np.arange(offsets[i], offsets[i + 1]) for i in keep]
    sec_parts = [secs[r] for r in rows]
    if edit:
        edit(sec_parts)
    with h5py.File(dst, "w") as fd:
        fd.create_group("electrodes/contacts")
        fd["electrodes/cortex/scaling_factors"] = np.concatenate(
            [factors[r] for r in rows])[:sum(len(s) for s in sec_parts)]
        fd["cortex/node_ids"] = nodes[keep]
        fd["cortex/offsets"] = np.concatenate(
            [[0], np.cumsum([len(s) for s in sec_parts])]).astype(np.uint64)
        fd["cortex/section_ids"] = np.concatenate(sec_parts).astype(np.uint64)


def test_cells_absent_from_the_file_warn_with_the_count(circuit, tmp_path):
    _copy_file(circuit.parent / "weights.h5", circuit.parent / "part.h5",
               keep_nodes=set(range(10)))
    config = with_lfp(circuit, "part.json", "part.h5")
    res = run_ok([config, f"--output-path={tmp_path}"], ranks=2)
    assert (res.stdout + res.stderr).count("14 of the report's 24 cells are not in the "
                                           "electrodes file") == 1
    pop = libsonata.ElementReportReader(str(tmp_path / "lfp.h5"))["cortex"]
    assert sorted(pop.get_node_ids()) == list(range(10))


def test_file_of_another_circuit_names_file_and_node(circuit, tmp_path):
    def drop_one(parts):          # node 3 loses its last compartment
        parts[3] = parts[3][:-1]

    _copy_file(circuit.parent / "weights.h5", circuit.parent / "short.h5", edit=drop_one)
    out = run_fails([with_lfp(circuit, "short.json", "short.h5"),
                     f"--output-path={tmp_path}"], ranks=2)
    assert "short.h5: /cortex/offsets: node 3 has" in out
    assert "compartments in the file" in out
    assert not (tmp_path / "lfp.h5").exists()


def test_section_order_mismatch_names_the_compartment(circuit, tmp_path):
    def swap(parts):              # node 5: compartment 0 claims another section
        parts[5] = parts[5].copy()
        parts[5][0] = parts[5][-1]

    _copy_file(circuit.parent / "weights.h5", circuit.parent / "swap.h5", edit=swap)
    out = run_fails([with_lfp(circuit, "swap.json", "swap.h5"), f"--output-path={tmp_path}"])
    assert "swap.h5: /cortex/section_ids: node 5 compartment 0 is in section" in out


def test_missing_electrodes_file(circuit, tmp_path):
    out = run_fails([with_lfp(circuit, "nofile.json", "nowhere.h5"),
                     f"--output-path={tmp_path}"])
    assert "nowhere.h5: cannot open the electrodes file" in out


def test_weights_do_not_depend_on_the_rank_count(circuit, tmp_path):
    run_ok(["lfp-weights", circuit.parent / "simulation_config.json", "--electrodes",
            circuit.parent / "positions.csv", "-o", tmp_path / "one.h5"])
    with h5py.File(tmp_path / "one.h5") as a, h5py.File(circuit.parent / "weights.h5") as b:
        for key in ("cortex/node_ids", "cortex/offsets", "cortex/section_ids",
                    "electrodes/cortex/scaling_factors"):
            assert np.array_equal(a[key][()], b[key][()]), key
        assert list(a["electrodes/contacts"]) == ["c0", "c1", "c2", "c3"]
        assert a["electrodes/contacts/c1"].attrs["position"].tolist() == [150, 400, -80]


@pytest.mark.parametrize("args,message", [
    (["--method", "volume"], "--method: expected one of line, point, got 'volume'"),
    (["--sigma", "-1"], "--sigma: the conductivity must be > 0 S/m"),
    (["--electrodes", "nowhere.csv"], "nowhere.csv: electrode positions: file not found"),
])
def test_lfp_weights_bad_options(circuit, tmp_path, args, message):
    base = {"--electrodes": str(circuit.parent / "positions.csv"), "--method": "line",
            "--sigma": "0.3"}
    for k, v in zip(args[::2], args[1::2]):
        base[k] = str(tmp_path / v) if k == "--electrodes" else v
    out = run_fails(["lfp-weights", circuit.parent / "simulation_config.json",
                     *[x for kv in base.items() for x in kv], "-o", tmp_path / "w.h5"])
    assert message in out
    assert not (tmp_path / "w.h5").exists()


def test_lfp_report_without_electrodes_file(circuit, tmp_path):
    sim = json.loads(circuit.read_text())
    del sim["reports"]["lfp"]["electrodes_file"]
    config = circuit.parent / "noelectrodes.json"
    config.write_text(json.dumps(sim))
    out = run_fails([config, f"--output-path={tmp_path}"])
    assert "reports.lfp" in out and "electrodes_file" in out


def test_full_disk_under_coreneuron_stops_every_rank_in_step(circuit, tmp_path, tiny_disk):
    """CoreNEURON's step writes the rows (a buffer of two rows here): a full disk there stops
    the run on both ranks at the same step, long before its end, with one message naming the
    file, and leaves no temporary file."""
    out = tiny_disk / "out"
    text = run_fails([circuit, f"--output-path={out}", "--simulator=CORENEURON", "--debug",
                      "--report-buffer-size=0.02"], ranks=2)
    errors = re.findall(r"^ERROR: .*$", text, re.MULTILINE)
    assert len(errors) == 1 and "Traceback" not in text, text[-3000:]
    assert re.search(rf"{re.escape(str(out))}/lfp\S*\.h5: cannot write: the disk is full",
                     errors[0]), errors[0]
    stops = re.findall(r"CoreNEURON's run stopped at t = ([\d.]+) ms", text)
    assert stops and float(stops[0]) < TSTOP / 2, text[-3000:]
    assert not [p for p in out.iterdir() if ".tmp-" in p.name]
