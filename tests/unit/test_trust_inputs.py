"""Issue 16's building blocks: output folder lock, disk-full translation, edge value checks,
config file shape, HDF5 kind (no NEURON; the runs are in tests/corpus and test_faults_outputs)."""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess

import h5py
import numpy as np
import pytest

from neurodamus.config.files import hdf5_problem, json_problem
from neurodamus.config.issues import IssueList
from neurodamus.config.keys import _unknown
from neurodamus.connectivity import edge_checks
from neurodamus.errors import CircuitError, OutputError
from neurodamus.output_guard import LOCK_NAME, OutputFolderBusy, OutputLock, writing


# ---- output folder lock ---------------------------------------------------------------------
def test_second_claim_of_a_folder_names_the_holder(tmp_path):
    first = OutputLock.acquire(tmp_path, tmp_path / "a.json")
    with pytest.raises(OutputFolderBusy) as err:
        OutputLock.acquire(tmp_path, tmp_path / "b.json")   # another open file: flock refuses
    text = str(err.value)
    assert str(tmp_path) in text and f"pid {os.getpid()} on {socket.gethostname()}" in text
    assert "a.json" in text
    first.release()
    assert not (tmp_path / LOCK_NAME).exists()
    OutputLock.acquire(tmp_path, tmp_path / "b.json").release()   # free again


def test_lock_of_a_dead_run_is_broken(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(),
                                                  "config": "old.json"}))
    lock = OutputLock.acquire(tmp_path, tmp_path / "new.json")
    assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    lock.release()


# ---- full disk ------------------------------------------------------------------------------
def test_full_disk_names_file_and_free_space_and_removes_the_temporary(tmp_path):
    tmp = tmp_path / "out.h5.tmp-1"
    with pytest.raises(OutputError, match=r"out\.h5: cannot write: the disk is full \(.* free "
                                          r"on "):
        with writing(tmp_path / "out.h5", tmp):
            tmp.write_text("partial")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert not tmp.exists()


def test_hdf5_full_disk_text_is_recognised(tmp_path):
    with pytest.raises(OutputError):
        with writing(tmp_path / "r.h5"):
            raise OSError("Can't write data (file write failed: errno = 28, error message = "
                          "'No space left on device')")


def test_other_write_errors_pass_through(tmp_path):
    with pytest.raises(PermissionError):
        with writing(tmp_path / "r.h5"):
            raise PermissionError(errno.EACCES, "Permission denied")


# ---- edge values ----------------------------------------------------------------------------
IDS = np.array([10, 11, 12])


@pytest.mark.parametrize("values, pattern", [
    ([1.0, 0.0, 2.0], r"edge 11 has delay 0 ms \(synaptic delays must be > 0\)"),
    ([1.0, 2.0, -1.5], r"edge 12 has delay -1\.5 ms"),
    ([0.01, 2.0, 2.0], r"edge 10 has delay 0\.01 ms, below run\.dt = 0\.025 ms"),
])
def test_bad_delays_name_the_edge(values, pattern):
    with pytest.raises(CircuitError, match=pattern):
        edge_checks.check_delays("e.h5: population 'p'", np.array(values, np.float32), IDS,
                                 0.025)


def test_delays_on_the_grid_pass():
    # 0.0249999 rounds to one step with the contract's 1e-5 tolerance (§3.1)
    edge_checks.check_delays("w", np.array([0.0249999, 0.025, 5.0]), IDS, 0.025)


def test_non_finite_and_fractions_outside_unit_interval():
    with pytest.raises(CircuitError, match=r"conductance: edge 12 has inf"):
        edge_checks.check_finite("w", "conductance", np.array([1.0, 2.0, np.inf]), IDS)
    with pytest.raises(CircuitError, match=r"afferent_section_pos: edge 10 has nan"):
        edge_checks.check_fractions("w", "afferent_section_pos", np.array([np.nan, 0, 1]), IDS)
    edge_checks.check_fractions("w", "afferent_section_pos", np.array([0.0, 0.5, 1.0]), IDS)


def test_targets_not_listed_by_the_index():
    with pytest.raises(CircuitError, match=r"target_node_id: edge 11 has target 100000"):
        edge_checks.check_targets("w", np.array([3, 100000, 5]), np.array([3, 5]), IDS)
    edge_checks.check_targets("w", np.array([3, 5, 5]), np.array([3, 5]), IDS)


# ---- config files ---------------------------------------------------------------------------
def test_config_not_utf8_names_line(tmp_path):
    path = tmp_path / "c.json"
    path.write_bytes(b'{\n "a": "x",\n "b": "\xff"\n}')
    assert json_problem(path).startswith("not UTF-8 text: byte 0xff at line 3")


def test_config_nesting_is_bounded_but_brackets_in_strings_do_not_count(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"a": "[" * 500, "b": [[[1]]]}))
    assert json_problem(path) is None
    path.write_text("[" * 100 + "]" * 100)
    assert "nested 100 levels" in json_problem(path)


def test_hdf5_kind_and_truncation(tmp_path):
    nodes = tmp_path / "nodes.h5"
    with h5py.File(nodes, "w") as fd:
        fd.create_dataset("nodes/pop/node_type_id", data=np.zeros(1000))
    assert hdf5_problem(nodes, "nodes") is None
    assert "holds nodes (/nodes), not edges" in hdf5_problem(nodes, "edges")
    data = nodes.read_bytes()
    nodes.write_bytes(data[:len(data) // 2])
    assert "truncated or corrupted HDF5 file" in hdf5_problem(nodes, "nodes")


def test_unknown_keys_get_one_warning_each_with_a_close_match():
    issues = IssueList()
    _unknown({"celcius": 1, "v_init": 2, "zzz": 3}, {"celsius", "v_init"}, "conditions.",
             "s.json", issues)
    texts = [str(i) for i in issues.items]
    assert texts == ["s.json: conditions.celcius: unknown key, ignored (did you mean "
                     "'celsius'?)", "s.json: conditions.zzz: unknown key, ignored"]
    assert all(i.level == "warning" for i in issues.items)
