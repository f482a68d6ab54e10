"""Planning and folder handling of the periodic checkpoints (engine/periodic.py), no NEURON."""

from __future__ import annotations

import pytest

from neurodamus.engine import periodic
from neurodamus.errors import ConfigError


def test_checkpoint_steps():
    assert periodic.checkpoint_steps(0.0, 1000.0, 250.0, 0.025) == [10000, 20000, 30000]
    # none at tstop itself, none at or before the start (a restored run)
    assert periodic.checkpoint_steps(500.0, 1000.0, 250.0, 0.025) == [30000]
    assert periodic.checkpoint_steps(510.0, 760.0, 250.0, 0.025) == [30000]
    assert periodic.checkpoint_steps(0.0, 100.0, 250.0, 0.025) == []
    assert periodic.checkpoint_steps(0.0, 0.3, 0.1, 0.1) == [1, 2]


def test_period_must_be_whole_steps():
    periodic.check_period(250.0, 0.025, "sim.json")
    periodic.check_period(0.1, 0.1, "sim.json")
    for bad in (0.01, 0.0375, 0.0):
        with pytest.raises(ConfigError, match="multiple of run.dt"):
            periodic.check_period(bad, 0.025, "sim.json")


def _checkpoint(root, t, complete=True):
    folder = root / periodic.folder_name(t)
    folder.mkdir(parents=True)
    if complete:
        (folder / "checkpoint.json").write_text("{}")
    return folder


def test_complete_prune_and_leftovers(tmp_path):
    for t in (250.0, 500.0, 750.0, 1000.0):
        _checkpoint(tmp_path, t)
    _checkpoint(tmp_path, 1250.0, complete=False)          # renamed but no metadata: not one
    (tmp_path / ".t1500.tmp").mkdir()                      # a killed write
    assert [t for t, _ in periodic.complete(tmp_path)] == [250.0, 500.0, 750.0, 1000.0]
    removed = periodic.prune(tmp_path, 2, protect=tmp_path / "t250")
    assert sorted(p.name for p in removed) == ["t500"]
    assert [t for t, _ in periodic.complete(tmp_path)] == [250.0, 750.0, 1000.0]
    periodic.remove_incomplete(tmp_path)
    assert not (tmp_path / ".t1500.tmp").exists()
    assert (tmp_path / "t1250").exists()   # not ours to judge: only .t*.tmp are leftovers
    assert periodic.folder_name(250.0) == "t250" and periodic.folder_name(0.5) == "t0.5"
