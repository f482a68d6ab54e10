"""--save / --restore (issue 5): a run to 200 ms saved at 100 ms and restored equals a straight
run, on both engines; a folder that does not fit is refused with the reason, never a hang."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.helpers import read_spikes, spikes_equal
from tests.integration.test_coreneuron import (
    assert_reports_equal,
    run_fails,
    run_ok,
    write_circuit,
)

pytestmark = pytest.mark.mpi


@pytest.fixture(scope="module")
def circuit(tmp_path_factory, mechanism_builds):
    return write_circuit(tmp_path_factory.mktemp("ckpt_circuit"))


@pytest.fixture(scope="module")
def straight(circuit, tmp_path_factory):
    """Straight runs to 200 ms: NEURON on 1 rank, CoreNEURON on 2."""
    out = {}
    for engine, ranks in (("NEURON", 1), ("CORENEURON", 2)):
        folder = tmp_path_factory.mktemp(f"straight_{engine}{ranks}")
        run_ok([circuit, f"--output-path={folder}", f"--simulator={engine}"], ranks=ranks)
        out[engine, ranks] = folder
    return out


@pytest.fixture(scope="module")
def checkpoint_1rank(circuit, tmp_path_factory):
    """A NEURON run to 100 ms saved into a checkpoint."""
    base = tmp_path_factory.mktemp("ckpt1")
    run_ok([circuit.parent / "sim100.json", f"--output-path={base / 'first'}",
            f"--save={base / 'ckpt'}"])
    return base / "ckpt"


@pytest.mark.parametrize("engine, ranks, restore_engine", [
    ("NEURON", 1, "NEURON"),
    ("CORENEURON", 2, "CORENEURON"),
])
def test_restore_equals_straight_run(circuit, straight, tmp_path, engine, ranks,
                                     restore_engine):
    ckpt = tmp_path / "ckpt"
    res = run_ok([circuit.parent / "sim100.json", f"--output-path={tmp_path / 'first'}",
                  f"--simulator={engine}", f"--save={ckpt}"], ranks=ranks)
    assert "Checkpoint at t = 100 ms" in res.stdout
    meta = json.loads((ckpt / "checkpoint.json").read_text())
    assert meta["t"] == 100.0 and meta["identity"]["ranks"] == ranks
    run_ok([circuit, f"--output-path={tmp_path / 'second'}", f"--simulator={restore_engine}",
            f"--restore={ckpt}"], ranks=ranks)
    reference = straight[engine, ranks]
    # the restored run writes complete outputs: earlier spikes and report rows, then its own
    assert spikes_equal(read_spikes(tmp_path / "second" / "out.h5"),
                        read_spikes(reference / "out.h5"))
    assert_reports_equal(reference, tmp_path / "second")


def test_neuron_checkpoint_continues_under_coreneuron(circuit, straight, checkpoint_1rank,
                                                      tmp_path):
    run_ok([circuit, f"--output-path={tmp_path}", "--simulator=CORENEURON",
            f"--restore={checkpoint_1rank}"])
    assert spikes_equal(read_spikes(tmp_path / "out.h5"),
                        read_spikes(straight["NEURON", 1] / "out.h5"))
    assert_reports_equal(straight["NEURON", 1], tmp_path, ["soma", "syn"])


def test_restore_from_a_folder_that_is_no_checkpoint(circuit, tmp_path):
    (tmp_path / "junk").mkdir()
    text = run_fails([circuit, f"--output-path={tmp_path / 'o'}",
                      f"--restore={tmp_path / 'junk'}"], ranks=2)
    assert "not a checkpoint" in text
    text = run_fails([circuit, f"--output-path={tmp_path / 'o'}",
                      f"--restore={tmp_path / 'missing'}"])
    assert "no such folder" in text


def test_another_rank_count_needs_the_cells_state(circuit, checkpoint_1rank, tmp_path):
    """Without ``cells/`` (the gid-keyed state) only the same rank count can restore
    (test_checkpoint_ranks.py restores complete checkpoints on other rank counts)."""
    old = tmp_path / "old"
    shutil.copytree(checkpoint_1rank, old)
    shutil.rmtree(old / "cells")
    text = run_fails([circuit, f"--output-path={tmp_path / 'o'}", f"--restore={old}"], ranks=2)
    assert "saved on 1 rank(s), this run has 2" in text and "restore on the same rank" in text


def test_restore_needs_a_later_tstop(circuit, checkpoint_1rank, tmp_path):
    text = run_fails([circuit.parent / "sim100.json", f"--output-path={tmp_path}",
                      f"--restore={checkpoint_1rank}"])
    assert "must be later" in text


def test_restore_into_another_circuit(checkpoint_1rank, tmp_path, mechanism_builds):
    other = write_circuit(tmp_path / "other", n_cells=10, reports=False, inputs=False)
    text = run_fails([other, f"--output-path={tmp_path / 'o'}", f"--restore={checkpoint_1rank}"])
    assert "another circuit" in text


def test_incomplete_checkpoint(circuit, checkpoint_1rank, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(checkpoint_1rank, broken)
    (broken / "rank0.savestate").unlink()
    text = run_fails([circuit, f"--output-path={tmp_path / 'o'}", f"--restore={broken}"])
    assert "incomplete checkpoint" in text and "rank0.savestate" in text


def test_save_refuses_a_foreign_folder(circuit, tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "precious.txt").write_text("keep me")
    text = run_fails([circuit.parent / "sim100.json", f"--output-path={tmp_path / 'o'}",
                      f"--save={tmp_path / 'busy'}"])
    assert "not empty" in text
    assert (tmp_path / "busy" / "precious.txt").read_text() == "keep me"
