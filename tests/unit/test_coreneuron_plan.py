"""Pure pieces of the CoreNEURON engine and checkpoints (no NEURON, no MPI)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from neurodamus.config import RunOptions
from neurodamus.engine import checkpoint
from neurodamus.engine.coreneuron_engine import (
    SPIKE_TIME_OFFSET,
    model_mismatch,
    placeholder_gid,
    plan_run,
    read_out_dat,
    step_times,
)
from neurodamus.errors import ConfigError


def test_step_times_accumulate_two_half_steps():
    t = 0.0
    expected = [0.0]
    for _ in range(4000):
        t += 0.0125
        t += 0.0125
        expected.append(t)
    assert np.array_equal(step_times(4000, 0.025), np.array(expected))
    assert step_times(4000, 0.025)[-1] == 100.00000000001417   # NEURON's h.t after 100 ms


def test_out_dat_times_become_exact_doubles(tmp_path):
    exact = step_times(10000, 0.025)[[880, 1047, 1047, 9999]] + SPIKE_TIME_OFFSET
    path = tmp_path / "out.dat"
    path.write_text("".join(f"{t:.8g}\t{g}\n" for t, g in zip(exact, [6, 5, 14, 3])))
    times, gids = read_out_dat(path, 0.025)
    assert np.array_equal(times, exact)
    assert gids.tolist() == [6, 5, 14, 3]
    (tmp_path / "empty.dat").write_text("")
    assert len(read_out_dat(tmp_path / "empty.dat", 0.025)[0]) == 0


def pops(**sizes):
    return {name: SimpleNamespace(max_id=size - 1) for name, size in sizes.items()}


def test_placeholder_gid_follows_the_offset_rule():
    # cortex 0.., thalamus at 1000 (maxid 19) -> zzz at 2000; gid 2000 + 1 + rank
    assert placeholder_gid(pops(cortex=2, thalamus=20), 2) == 2003
    assert placeholder_gid(pops(a=1000), 0) == 1001      # maxid 999: next block
    assert placeholder_gid(pops(a=1001), 0) == 2001      # maxid 1000: one block further


def fake_settings(simulator="CORENEURON", tmp="/tmp/x"):
    from pathlib import Path

    return SimpleNamespace(target_simulator=simulator, output_dir=Path(tmp))


@pytest.mark.parametrize("options, words", [
    ({"coreneuron_direct_mode": True, "keep_build": True}, "cannot be combined"),
    ({"build_model": "OFF", "simulate_model": False}, "nothing to do"),
    ({"build_model": "OFF", "save": "/tmp/c"}, "--save / --restore need the model"),
    ({"simulate_model": False, "restore": "/tmp/c"}, "not with --simulate-model=OFF"),
])
def test_plan_conflicts(options, words):
    with pytest.raises(ConfigError, match=words):
        plan_run(fake_settings(), RunOptions(**options))


def test_plan_modes():
    assert plan_run(fake_settings("NEURON"), RunOptions()) is None
    direct = plan_run(fake_settings(), RunOptions())
    assert not direct.file_mode and direct.simulate
    kept = plan_run(fake_settings(), RunOptions(keep_build=True))
    assert kept.file_mode and kept.keep_input and kept.datpath.name == "coreneuron_input"
    build_only = plan_run(fake_settings(), RunOptions(simulate_model=False))
    assert build_only.file_mode and build_only.keep_input
    with pytest.raises(ConfigError, match="use --simulator=CORENEURON"):
        plan_run(fake_settings("NEURON"), RunOptions(keep_build=True))


def test_model_mismatch_names_the_difference():
    identity = {"circuit": "/c.json", "node_set": "All", "ranks": 2, "dt": 0.025,
                "populations": {"a": [0, 10, False]}}
    assert model_mismatch(dict(identity), identity) is None
    assert "no complete model" in model_mismatch(None, identity)
    assert "rank count" in model_mismatch(dict(identity, ranks=1), identity)
    assert "circuit" in model_mismatch(dict(identity, circuit="/d.json"), identity)


def test_read_meta_refuses_what_is_no_checkpoint(tmp_path):
    with pytest.raises(checkpoint.CheckpointError, match="no such folder"):
        checkpoint.read_meta(tmp_path / "missing")
    with pytest.raises(checkpoint.CheckpointError, match="not a checkpoint"):
        checkpoint.read_meta(tmp_path)
    (tmp_path / checkpoint.META).write_text("{not json")
    with pytest.raises(checkpoint.CheckpointError, match="unreadable"):
        checkpoint.read_meta(tmp_path)
    (tmp_path / checkpoint.META).write_text(json.dumps({"format": "something"}))
    with pytest.raises(checkpoint.CheckpointError, match="not a neurodamus checkpoint"):
        checkpoint.read_meta(tmp_path)
    (tmp_path / checkpoint.META).write_text(json.dumps({"format": checkpoint.FORMAT,
                                                        "version": 99}))
    with pytest.raises(checkpoint.CheckpointError, match="format version 99"):
        checkpoint.read_meta(tmp_path)


def test_save_folder_checks(tmp_path):
    checkpoint.check_save(tmp_path / "new")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    with pytest.raises(ConfigError, match="not empty"):
        checkpoint.check_save(tmp_path / "busy")
    with pytest.raises(ConfigError, match="same folder as --restore"):
        checkpoint.check_save(tmp_path / "c", restore=tmp_path / "c")
