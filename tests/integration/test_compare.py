"""``neurodamus compare`` and the provenance record.

One small circuit runs on 1 and on 2 ranks (real NEURON, real MPI): the outputs must compare
identical and the records must say why the runs differ (the rank count). Copies of one output
with one spike shifted, one spike removed, or one report value perturbed must compare
different, naming the spike or the time and element that differs.
"""

from __future__ import annotations

import hashlib
import json
import shutil

import h5py
import numpy as np
import pytest

from neurodamus import provenance
from tests.helpers import run_neurodamus
from tests.integration.test_coreneuron import run_ok, write_circuit

pytestmark = pytest.mark.mpi


@pytest.fixture(scope="module")
def circuit(tmp_path_factory, mechanism_builds):
    return write_circuit(tmp_path_factory.mktemp("compare_circuit"), n_cells=12, tstop=60.0)


@pytest.fixture(scope="module")
def outputs(circuit, tmp_path_factory):
    base = tmp_path_factory.mktemp("compare_runs")
    run_ok([circuit, f"--output-path={base / 'r1'}"], ranks=1)
    run_ok([circuit, f"--output-path={base / 'r2'}", "--provenance=full"], ranks=2)
    return base


def compare(a, b, *extra):
    res = run_neurodamus(["compare", a, b, *extra])
    assert res.returncode in (0, 1), res.stdout + res.stderr
    return res


def compare_json(a, b, *extra):
    res = compare(a, b, "--json", *extra)
    return res.returncode, json.loads(res.stdout)


def copy_of(outputs, tmp_path, name="copy"):
    dst = tmp_path / name
    shutil.copytree(outputs / "r1", dst)
    return dst


# ---- provenance record ---------------------------------------------------------------------
def test_every_run_writes_its_provenance(circuit, outputs):
    rec = provenance.read(outputs / "r1")
    assert rec is not None
    assert rec["ranks"] == 1 and rec["engine"] == "NEURON" and rec["mode"] == "fast"
    assert rec["simulation_config"]["sha256"] == hashlib.sha256(circuit.read_bytes()).hexdigest()
    circuit_config = circuit.parent / "circuit_config.json"
    assert rec["circuit_config"]["sha256"] == \
        hashlib.sha256(circuit_config.read_bytes()).hexdigest()
    nodes = rec["files"]["nodes:cortex"]
    assert nodes["size"] == (circuit.parent / "nodes.h5").stat().st_size
    assert "sha256" not in nodes   # only with --provenance=full
    assert any(k.startswith("edges:") for k in rec["files"])
    assert rec["mechanisms"]["libraries"] and len(rec["mechanisms"]["build_id"]) == 16
    assert rec["versions"]["neuron"] and rec["versions"]["libsonata"]
    assert "random_seed" in rec["seeds"] and "input:ou" in rec["seeds"]
    assert f"--output-path={outputs / 'r1'}" in rec["command_line"]
    # the run record lists it, so a rerun into the folder removes it first
    record = json.loads((outputs / "r1" / "neurodamus_run.json").read_text())
    assert provenance.NAME in record["files"]


def test_full_provenance_hashes_the_files(circuit, outputs):
    rec = provenance.read(outputs / "r2")
    assert rec["ranks"] == 2 and rec["mode"] == "full"
    assert rec["files"]["nodes:cortex"]["sha256"] == \
        hashlib.sha256((circuit.parent / "nodes.h5").read_bytes()).hexdigest()


# ---- compare ---------------------------------------------------------------------------------
def test_identical_runs_on_different_rank_counts(outputs):
    res = compare(outputs / "r1", outputs / "r2")
    assert res.returncode == 0, res.stdout
    assert "IDENTICAL" in res.stdout
    assert "same inputs, same versions, different rank count" in res.stdout
    code, data = compare_json(outputs / "r1", outputs / "r2")
    assert code == 0 and data["identical"]
    assert data["spikes"]["cortex"]["count_a"] > 10
    # every report of the run was compared
    assert {k.split(":")[0] for k in data["reports"]} == \
        {"soma.h5", "allv.h5", "imem.h5", "isoma.h5", "syn.h5"}
    assert all(f["max_abs"] == 0.0 for f in data["reports"].values())


def test_one_spike_shifted(outputs, tmp_path):
    dst = copy_of(outputs, tmp_path)
    with h5py.File(dst / "out.h5", "r+") as fd:
        ts = fd["spikes/cortex/timestamps"]
        ids = fd["spikes/cortex/node_ids"][()]
        times = ts[()]
        k = len(times) // 2
        shifted = times[k] + 0.025
        ts[k] = shifted
        node = int(ids[k])
    code, data = compare_json(outputs / "r1", dst)
    assert code == 1 and not data["identical"]
    found = data["spikes"]["cortex"]["first_difference"]
    order = np.lexsort((ids, times))
    assert found["index"] == int(np.flatnonzero(order == k)[0])
    assert found["a"] == [float(times[k]), node]
    assert found["b"] != found["a"]
    # reports untouched
    assert all(f["equal"] for f in data["reports"].values())
    # a tolerance on spike times accepts it
    code, _ = compare_json(outputs / "r1", dst, "--atol=0.03")
    assert code == 0
    text = compare(outputs / "r1", dst).stdout
    assert "spikes cortex" in text and "DIFFER at spike #" in text


def test_one_spike_missing(outputs, tmp_path):
    dst = copy_of(outputs, tmp_path)
    with h5py.File(dst / "out.h5", "r+") as fd:
        grp = fd["spikes/cortex"]
        times, ids = grp["timestamps"][()], grp["node_ids"][()]
        del grp["timestamps"], grp["node_ids"]
        grp["timestamps"] = times[:-1]
        grp["timestamps"].attrs["units"] = "ms"
        grp["node_ids"] = ids[:-1]
    code, data = compare_json(outputs / "r1", dst)
    f = data["spikes"]["cortex"]
    assert code == 1 and f["count_a"] == f["count_b"] + 1
    assert f["first_difference"]["a"] == [float(times[-1]), int(ids[-1])]


def test_one_report_value_perturbed(outputs, tmp_path):
    dst = copy_of(outputs, tmp_path)
    with h5py.File(dst / "soma.h5", "r+") as fd:
        grp = fd["report/cortex"]
        node = int(grp["mapping/node_ids"][3])
        start, _, dt = grp["mapping/time"][()]
        row = 217
        grp["data"][row, 3] += 1e-3   # float32 values: a change well above their precision
    code, data = compare_json(outputs / "r1", dst)
    assert code == 1
    f = data["reports"]["soma.h5:cortex"]
    assert not f["equal"]
    assert f["first_difference"]["node_id"] == node
    assert f["first_difference"]["time"] == pytest.approx(start + row * dt)
    assert f["max_abs"] == pytest.approx(1e-3, rel=1e-2)
    assert all(v["equal"] for k, v in data["reports"].items() if k != "soma.h5:cortex")
    assert all(v["equal"] for v in data["spikes"].values())


def test_report_difference_within_tolerance(outputs, tmp_path):
    dst = copy_of(outputs, tmp_path)
    with h5py.File(dst / "soma.h5", "r+") as fd:
        fd["report/cortex/data"][10, 0] += 1e-3
    code, _ = compare_json(outputs / "r1", dst)
    assert code == 1   # default tolerance 1e-9
    code, result = compare_json(outputs / "r1", dst, "--atol=0.01")
    assert code == 0 and result["reports"]["soma.h5:cortex"]["max_abs"] > 0


def test_report_only_in_one_folder(outputs, tmp_path):
    dst = copy_of(outputs, tmp_path)
    (dst / "syn.h5").unlink()
    code, data = compare_json(outputs / "r1", dst)
    assert code == 1 and data["only_in"]["a"] == ["syn.h5"]


def test_records_name_changed_inputs(outputs, tmp_path):
    dst = copy_of(outputs, tmp_path)
    rec = provenance.read(dst)
    rec["seeds"]["random_seed"] += 1
    rec["engine"] = "CORENEURON"
    provenance.write(dst, rec)
    res = compare(outputs / "r1", dst)
    assert res.returncode == 0   # the outputs are the same files
    assert "seed random_seed" in res.stdout
    assert "different inputs, same versions, different engine" in res.stdout


def test_compare_usage_errors(outputs, tmp_path):
    res = run_neurodamus(["compare", outputs / "r1", tmp_path / "nowhere"])
    assert res.returncode == 2 and "no such folder" in res.stderr
    (tmp_path / "empty").mkdir()
    res = run_neurodamus(["compare", outputs / "r1", tmp_path / "empty"])
    assert res.returncode == 2 and "no spike or report file" in res.stderr
    res = run_neurodamus(["compare", outputs / "r1", outputs / "r2", "--rtol=abc"])
    assert res.returncode == 2 and "--rtol takes a number" in res.stderr
