"""CoreNEURON engine (issue 5): same spikes and reports as NEURON, file mode, empty ranks, errors.

One small example circuit with replay, minis, current inputs and five report types is run on
both engines, on 1 and 2 ranks, in separate processes. Both mechanism flavours are built once
(cached by neurodamus' build cache) before any run, so the runs' timings exclude nrnivmodl.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from neurodamus.tools.example import write_example
from tests.helpers import base_env, read_spikes, run_neurodamus, spikes_equal

pytestmark = pytest.mark.mpi

TSTOP = 200.0
REPORTS = {
    "soma": {"type": "compartment", "variable_name": "v", "sections": "soma", "dt": 0.1},
    "allv": {"type": "compartment", "variable_name": "v", "sections": "all",
             "compartments": "all", "dt": 0.5},
    "imem": {"type": "summation", "variable_name": "i_membrane", "sections": "all",
             "compartments": "all", "dt": 0.5, "unit": "nA"},
    "isoma": {"type": "summation", "variable_name": "ina,ik", "sections": "soma", "dt": 0.1,
              "unit": "nA"},
    "syn": {"type": "synapse", "variable_name": "ProbAMPANMDA_EMS.g", "sections": "dend",
            "compartments": "all", "cells": "Excitatory", "dt": 0.1, "unit": "uS"},
}
CLAMP = {"input_type": "current_clamp"}
INPUTS = {
    "pulse": {**CLAMP, "module": "pulse", "delay": 20.0, "duration": 150.0, "amp_start": 0.3,
              "width": 5.0, "frequency": 20.0, "node_set": "Inhibitory"},
    "noise": {**CLAMP, "module": "noise", "delay": 40.0, "duration": 140.0,
              "mean_percent": 30.0, "variance": 0.3, "node_set": "Excitatory"},
    "ou": {**CLAMP, "module": "relative_ornstein_uhlenbeck", "delay": 10.0, "duration": 170.0,
           "tau": 5.0, "mean_percent": 10.0, "sd_percent": 10.0, "random_seed": 5,
           "node_set": "Cortex"},
}


def write_circuit(directory: Path, n_cells=24, tstop=TSTOP, seed=7, reports=True,
                  inputs=True) -> Path:
    """The example circuit with inputs and reports; also ``sim100.json`` ending at 100 ms."""
    config = write_example(directory, n_cells=n_cells, tstop=tstop, seed=seed)
    sim = json.loads(config.read_text())
    if reports:
        sim["reports"] = {name: dict(r, start_time=0.0, end_time=1e4)
                          for name, r in REPORTS.items()}
    if inputs:
        sim["inputs"].update(INPUTS)
    config.write_text(json.dumps(sim, indent=1))
    half = dict(sim, run=dict(sim["run"], tstop=tstop / 2))
    (config.parent / "sim100.json").write_text(json.dumps(half, indent=1))
    return config


@pytest.fixture(scope="module")
def circuit(tmp_path_factory, mechanism_builds):
    return write_circuit(tmp_path_factory.mktemp("core_circuit"))


def run_ok(args, ranks=1, **kw):
    res = run_neurodamus([str(a) for a in args], ranks=ranks, **kw)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res


def run_fails(args, ranks=1, **kw):
    res = run_neurodamus([str(a) for a in args], ranks=ranks, **kw)
    assert res.returncode != 0, res.stdout[-2000:]
    return res.stdout + res.stderr


@pytest.fixture(scope="module")
def runs(circuit, tmp_path_factory):
    """(engine, ranks) -> output folder of a straight run to TSTOP."""
    out = {}
    for engine, ranks in (("NEURON", 1), ("CORENEURON", 1), ("NEURON", 2), ("CORENEURON", 2)):
        folder = tmp_path_factory.mktemp(f"{engine.lower()}{ranks}")
        run_ok([circuit, f"--output-path={folder}", f"--simulator={engine}"], ranks=ranks)
        out[engine, ranks] = folder
    return out


def report_data(folder: Path, name: str) -> dict:
    """{node id: [steps, elements of that node]} plus the time triple (order-independent)."""
    with h5py.File(folder / f"{name}.h5", "r") as fd:
        grp = fd["report/cortex"]
        data = grp["data"][()]
        nodes = grp["mapping/node_ids"][()]
        ptr = grp["mapping/index_pointers"][()]
        out = {int(n): data[:, ptr[i]:ptr[i + 1]] for i, n in enumerate(nodes)}
        out["time"] = tuple(grp["mapping/time"][()])
        out["elements"] = grp["mapping/element_ids"][()].tolist()
    return out


def assert_reports_equal(a: Path, b: Path, names=tuple(REPORTS)):
    for name in names:
        ra, rb = report_data(a, name), report_data(b, name)
        assert ra.keys() == rb.keys(), name
        assert ra["time"] == rb["time"], name
        for key in ra:
            if key not in ("time", "elements"):
                assert ra[key].shape == rb[key].shape, (name, key)
                assert np.array_equal(ra[key], rb[key]), \
                    f"report {name}, node {key}: max |diff| {np.abs(ra[key] - rb[key]).max()}"


# ---- equality with the NEURON engine ------------------------------------------------------
def test_circuit_is_active(runs):
    spikes = read_spikes(runs["NEURON", 1] / "out.h5")
    assert len(spikes["cortex"][0]) > 20


@pytest.mark.parametrize("ranks", [1, 2])
def test_spikes_identical_to_neuron(runs, ranks):
    assert spikes_equal(read_spikes(runs["NEURON", 1] / "out.h5"),
                        read_spikes(runs["CORENEURON", ranks] / "out.h5"))


@pytest.mark.parametrize("ranks", [1, 2])
def test_reports_identical_to_neuron(runs, ranks):
    assert_reports_equal(runs["NEURON", ranks], runs["CORENEURON", ranks])


def test_two_rank_reports_equal_one_rank(runs):
    assert_reports_equal(runs["CORENEURON", 1], runs["CORENEURON", 2])


def test_coreneuron_leaves_no_files_behind(runs, circuit):
    folder = runs["CORENEURON", 2]
    assert not (folder / "coreneuron_input").exists()
    assert not any(p.name.startswith(".coreneuron") for p in folder.iterdir())
    assert not (circuit.parent / "out.dat").exists()


def test_target_simulator_in_config(circuit, runs, tmp_path):
    sim = json.loads(circuit.read_text())
    sim["target_simulator"] = "CORENEURON"
    sim["reports"] = {}
    cfg = circuit.parent / "sim_core.json"
    cfg.write_text(json.dumps(sim))
    res = run_ok([cfg, f"--output-path={tmp_path}"])
    assert "CoreNEURON library:" in res.stdout
    assert spikes_equal(read_spikes(tmp_path / "out.h5"),
                        read_spikes(runs["NEURON", 1] / "out.h5"))


# ---- ranks without cells ------------------------------------------------------------------
def test_empty_ranks(tmp_path, mechanism_builds):
    """2 cells on 3 ranks: the empty rank gets the placeholder, which no output shows; it has
    no section, so it records no report clock and learns the step count from the others."""
    cfg = write_circuit(tmp_path / "c2", n_cells=2, tstop=100.0, inputs=False)
    ref, out, fmode = tmp_path / "nrn", tmp_path / "core", tmp_path / "core_files"
    run_ok([cfg, f"--output-path={ref}"])
    run_ok([cfg, f"--output-path={out}", "--simulator=CORENEURON"], ranks=3)
    run_ok([cfg, f"--output-path={fmode}", "--simulator=CORENEURON", "--keep-build"], ranks=3)
    for folder in (out, fmode):
        spikes = read_spikes(folder / "out.h5")
        assert set(spikes) == {"cortex"}
        assert spikes_equal(spikes, read_spikes(ref / "out.h5"))
        offsets = (folder / "populations_offset.dat").read_text()
        assert "zzz" not in offsets
        assert_reports_equal(ref, folder)
    # the placeholder is in the model files of the empty rank only: offset(zzz) + 1 + rank 2
    names = sorted(p.name for p in (fmode / "coreneuron_input").glob("*_1.dat"))
    assert names == ["0_1.dat", "1_1.dat", "2003_1.dat"]


# ---- file mode ----------------------------------------------------------------------------
def test_build_once_simulate_later(circuit, runs, tmp_path):
    out = tmp_path / "out"
    common = [circuit, f"--output-path={out}", "--simulator=CORENEURON"]
    res = run_ok(common + ["--simulate-model=OFF"], ranks=2)
    assert "--build-model=OFF" in res.stdout
    marker = json.loads((out / "coreneuron_input" / "neurodamus_model.json").read_text())
    assert marker["ranks"] == 2
    assert not (out / "out.h5").exists()
    # reports need the NEURON model: refused with the reason
    text = run_fails(common + ["--build-model=OFF"], ranks=2)
    assert "reports" in text and "--disable-reports" in text
    run_ok(common + ["--build-model=OFF", "--disable-reports"], ranks=2)
    assert spikes_equal(read_spikes(out / "out.h5"), read_spikes(runs["NEURON", 1] / "out.h5"))
    assert (out / "coreneuron_input").is_dir()   # the model stays for further runs
    # another rank count cannot use it
    text = run_fails(common + ["--build-model=OFF", "--disable-reports"], ranks=1)
    assert "rank count" in text


def test_file_mode_run_keeps_input(circuit, runs, tmp_path):
    run_ok([circuit, f"--output-path={tmp_path}", "--simulator=CORENEURON", "--keep-build"])
    assert (tmp_path / "coreneuron_input" / "files.dat").is_file()
    assert not (tmp_path / "coreneuron_input" / ".chunks").exists()
    assert spikes_equal(read_spikes(tmp_path / "out.h5"),
                        read_spikes(runs["NEURON", 1] / "out.h5"))
    assert_reports_equal(runs["NEURON", 1], tmp_path, ["soma", "isoma"])


# ---- bad input ----------------------------------------------------------------------------
def test_library_without_coreneuron(circuit, mechanism_builds, tmp_path):
    lib = mechanism_builds["NEURON"].library
    text = run_fails([circuit, f"--output-path={tmp_path}", "--simulator=CORENEURON"],
                     env=base_env(NRNMECH_LIB_PATH=str(lib)))
    assert "built without -coreneuron" in text and str(lib) in text
    assert "build-mechanisms --coreneuron" in text


def test_coreneuronlib_missing(circuit, tmp_path):
    text = run_fails([circuit, f"--output-path={tmp_path}", "--simulator=CORENEURON"],
                     env=base_env(CORENEURONLIB=str(tmp_path / "nope.so")))
    assert "CORENEURONLIB" in text and "no such file" in text


def test_mechanism_coreneuron_cannot_run(circuit, mechanism_builds, tmp_path):
    """A CoreNEURON library whose sources lack NaHH: the run names the mechanism."""
    real = mechanism_builds["CORENEURON"].coreneuron_library
    fake = tmp_path / "x86_64"
    (fake / "corenrn" / "mod2c").mkdir(parents=True)
    shutil.copy(real, fake / "libcorenrnmech.so")
    for cpp in (real.parent / "corenrn" / "mod2c").glob("*.cpp"):
        if cpp.name != "NaHH.cpp":
            shutil.copy(cpp, fake / "corenrn" / "mod2c" / cpp.name)
    text = run_fails([circuit, f"--output-path={tmp_path / 'out'}", "--simulator=CORENEURON"],
                     ranks=2, env=base_env(CORENEURONLIB=str(fake / "libcorenrnmech.so")))
    assert "CoreNEURON cannot run mechanism(s) NaHH" in text


@pytest.mark.parametrize("args, words", [
    (["--simulator=CORENEURON", "--coreneuron-direct-mode", "--keep-build"],
     "cannot be combined"),
    (["--simulator=NEURON", "--keep-build"], "use --simulator=CORENEURON"),
    (["--simulator=CORENEURON", "--build-model=SOMETIMES"], "--build-model must be"),
    (["--simulator=CORENEURON", "--build-model=OFF", "--simulate-model=OFF"], "nothing to do"),
])
def test_option_conflicts(circuit, tmp_path, args, words):
    text = run_fails([circuit, f"--output-path={tmp_path}", *args])
    assert words in text


def test_input_coreneuron_cannot_take_over(circuit, tmp_path):
    sim = json.loads(circuit.read_text())
    sim["inputs"]["clamp"] = {"module": "seclamp", "input_type": "voltage_clamp", "delay": 0.0,
                              "duration": 50.0, "voltage": -70.0, "node_set": "Inhibitory"}
    cfg = circuit.parent / "sim_seclamp.json"
    cfg.write_text(json.dumps(sim))
    text = run_fails([cfg, f"--output-path={tmp_path}", "--simulator=CORENEURON"], ranks=2)
    assert "inputs.clamp: module 'seclamp'" in text and "--simulator=NEURON" in text
