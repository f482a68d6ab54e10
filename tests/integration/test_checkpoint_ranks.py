"""A checkpoint continues on another rank count: saved on 2 ranks, restored on 1 and 3; saved
on 1, restored on 2; on NEURON and CoreNEURON. The continued run's spikes and reports equal a
straight run's bit for bit.

The circuit (the CoreNEURON tests' one) has five report types, minis (InhPoissonStim), spike
replay (VecStim), a noise and an Ornstein-Uhlenbeck input. Each checkpoint is saved once and
restored several times; the straight run is one NEURON run on 1 rank (NEURON and CoreNEURON,
on any rank count, give the same outputs: test_coreneuron.py).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
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
    return write_circuit(tmp_path_factory.mktemp("ranks_circuit"))


@pytest.fixture(scope="module")
def straight(circuit, tmp_path_factory):
    folder = tmp_path_factory.mktemp("straight")
    run_ok([circuit, f"--output-path={folder}"])
    return folder


@pytest.fixture(scope="module")
def saved(circuit, tmp_path_factory):
    """(engine, ranks) -> a checkpoint at 100 ms, made lazily (each is one run)."""
    made = {}

    def get(engine, ranks):
        if (engine, ranks) not in made:
            base = tmp_path_factory.mktemp(f"save_{engine}{ranks}")
            run_ok([circuit.parent / "sim100.json", f"--output-path={base / 'first'}",
                    f"--simulator={engine}", f"--save={base / 'ckpt'}"], ranks=ranks)
            meta = json.loads((base / "ckpt" / "checkpoint.json").read_text())
            assert meta["identity"]["ranks"] == ranks and meta["t"] == 100.0
            made[engine, ranks] = base / "ckpt"
        return made[engine, ranks]
    return get


def assert_same_as_straight(straight, folder):
    spikes = read_spikes(folder / "out.h5")
    assert len(spikes["cortex"][0]) > 20
    assert spikes_equal(spikes, read_spikes(straight / "out.h5"))
    assert_reports_equal(straight, folder)


@pytest.mark.parametrize("engine, saved_on, restored_on", [
    ("NEURON", 2, 1),
    ("NEURON", 2, 3),
    ("NEURON", 1, 2),
    ("CORENEURON", 2, 1),
    ("CORENEURON", 2, 3),
])
def test_restore_on_another_rank_count(circuit, straight, saved, tmp_path, engine, saved_on,
                                       restored_on):
    ckpt = saved(engine, saved_on)
    run_ok([circuit, f"--output-path={tmp_path}", f"--simulator={engine}",
            f"--restore={ckpt}"], ranks=restored_on)
    assert_same_as_straight(straight, tmp_path)


def test_another_engine_and_rank_count(circuit, straight, saved, tmp_path):
    """Saved by NEURON on 2 ranks, continued by CoreNEURON on 3."""
    run_ok([circuit, f"--output-path={tmp_path}", "--simulator=CORENEURON",
            f"--restore={saved('NEURON', 2)}"], ranks=3)
    assert_same_as_straight(straight, tmp_path)


def test_a_missing_cell_is_refused_on_every_rank(circuit, saved, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(saved("NEURON", 2), broken)
    for idx in (broken / "cells").glob("rank*.idx.npy"):   # forget gid 5
        table = np.load(idx)
        np.save(idx, table[table[:, 0] != 5])
    text = run_fails([circuit, f"--output-path={tmp_path / 'o'}", f"--restore={broken}"],
                     ranks=3)
    assert "incomplete checkpoint: no state for gid 5" in text
