"""Periodic checkpoints: a run writing checkpoints gives the outputs of a straight run;
each checkpoint continues (on either engine) to the same outputs; a run whose rank is killed
with SIGKILL continues from its last complete checkpoint to the same outputs.

The circuit has reports, minis, replay and stochastic inputs (the example circuit plus the
CoreNEURON tests' inputs and reports); its ``soma`` report ends at 50 ms, so the checkpoint at
80 ms is taken with one report complete (its recordings no longer in NEURON's list).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time

import psutil
import pytest

from neurodamus.engine import periodic
from tests.helpers import NEURODAMUS, base_env, mpirun_prefix, run_neurodamus
from tests.integration.test_coreneuron import run_ok, write_circuit

pytestmark = pytest.mark.mpi

TSTOP = 120.0


@pytest.fixture(scope="module")
def circuit(tmp_path_factory, mechanism_builds):
    config = write_circuit(tmp_path_factory.mktemp("periodic_circuit"), n_cells=16, tstop=TSTOP)
    sim = json.loads(config.read_text())
    sim["reports"]["soma"]["end_time"] = 50.0
    config.write_text(json.dumps(sim, indent=1))
    return config


@pytest.fixture(scope="module")
def straight(circuit, tmp_path_factory):
    out = {}
    for engine in ("NEURON", "CORENEURON"):
        folder = tmp_path_factory.mktemp(f"straight_{engine}")
        run_ok([circuit, f"--output-path={folder}", f"--simulator={engine}"], ranks=2)
        out[engine] = folder
    return out


def assert_identical(a, b):
    res = run_neurodamus(["compare", a, b, "--json"])
    data = json.loads(res.stdout)
    assert res.returncode == 0, json.dumps(data, indent=1)[:3000]
    assert data["spikes"]["cortex"]["count_a"] > 20
    assert len(data["reports"]) == 5


@pytest.mark.parametrize("engine", ["NEURON", "CORENEURON"])
def test_periodic_checkpoints_change_nothing_and_each_continues(circuit, straight, tmp_path,
                                                                engine):
    out = tmp_path / "periodic"
    res = run_ok([circuit, f"--output-path={out}", f"--simulator={engine}",
                  "--checkpoint-every=40", "--checkpoints-keep=2"], ranks=2)
    assert "Checkpoint at t = 40 ms" in res.stdout and "Checkpoint at t = 80 ms" in res.stdout
    assert_identical(straight[engine], out)
    root = out / periodic.FOLDER
    assert [t for t, _ in periodic.complete(root)] == [40.0, 80.0]
    assert not [p for p in root.iterdir() if p.name.endswith(".tmp")]
    for t in (40, 80):
        meta = json.loads((root / f"t{t}" / "checkpoint.json").read_text())
        assert meta["t"] == t and meta["identity"]["ranks"] == 2
        # each continues to the straight run's outputs, on this engine and on the other
        other = "NEURON" if engine == "CORENEURON" else "CORENEURON"
        for restore_engine in (engine, other):
            again = tmp_path / f"from{t}_{restore_engine}"
            run_ok([circuit, f"--output-path={again}", f"--simulator={restore_engine}",
                    f"--restore={root / f't{t}'}"], ranks=2)
            assert_identical(straight[engine], again)


def test_only_the_newest_are_kept(circuit, tmp_path):
    out = tmp_path / "o"
    run_ok([circuit.parent / "sim100.json", f"--output-path={out}", "--checkpoint-every=20",
            "--checkpoints-keep=1", "--disable-reports"])
    assert [p.name for p in (out / periodic.FOLDER).iterdir()] == ["t40"]


def test_bad_period(circuit, tmp_path):
    res = run_neurodamus([circuit, f"--output-path={tmp_path}", "--checkpoint-every=0.01"])
    assert res.returncode != 0
    assert "--checkpoint-every=0.01 ms must be a positive multiple of run.dt" in res.stderr
    res = run_neurodamus([circuit, f"--output-path={tmp_path}", "--checkpoint-every=-5"])
    assert res.returncode == 2 and "--checkpoint-every takes a positive" in res.stderr


def _ranks_of(launcher: psutil.Process) -> list[psutil.Process]:
    return [p for p in launcher.children(recursive=True)
            if any("neurodamus" in part for part in p.cmdline())]


def test_kill_a_rank_and_continue(circuit, straight, tmp_path):
    out = tmp_path / "killed"
    cmd = mpirun_prefix(2) + NEURODAMUS + [str(circuit), f"--output-path={out}",
                                           "--checkpoint-every=10", "--checkpoints-keep=2"]
    proc = subprocess.Popen(cmd, env=base_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    root = out / periodic.FOLDER
    try:
        # kill one rank as soon as one checkpoint is complete, whatever the run does then
        while proc.poll() is None and not periodic.complete(root):
            time.sleep(0.02)
        assert proc.poll() is None, "the run ended before it could be killed"
        ranks = _ranks_of(psutil.Process(proc.pid))
        assert len(ranks) == 2
        ranks[-1].send_signal(signal.SIGKILL)
        proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    done = periodic.complete(root)
    assert done, "no complete checkpoint left behind"
    t_last, last = done[-1]
    assert t_last < TSTOP
    # continue in the same output folder, checkpointing again
    run_ok([circuit, f"--output-path={out}", f"--restore={last}", "--checkpoint-every=10"],
           ranks=2)
    assert_identical(straight["NEURON"], out)
    assert last.is_dir()   # the checkpoint restored from is never pruned by the run using it
