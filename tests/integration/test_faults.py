"""Faults never hang a run, and outputs never mislead: killed ranks, exceptions on one rank,
the SUCCESS marker, temporary names, and reruns into a used output folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from neurodamus.tools.example import write_example
from neurodamus.tools.mechanisms import build_mechanisms
from tests.helpers import NEURODAMUS, base_env, mpirun_prefix, run_neurodamus

pytestmark = pytest.mark.mpi

END_WITHIN_S = 10.0


@pytest.fixture(scope="module")
def long_config(tmp_path_factory):
    """40 cells for 3 s of simulated time: a run loop of several seconds on 2 ranks."""
    config = write_example(tmp_path_factory.mktemp("faults"), n_cells=40, tstop=3000, seed=2)
    build_mechanisms([config.parent / "mechanisms"], log=lambda *_: None)
    return config


@pytest.fixture(scope="module")
def short_config(tmp_path_factory):
    config = write_example(tmp_path_factory.mktemp("faults_short"), n_cells=8, tstop=50, seed=1)
    build_mechanisms([config.parent / "mechanisms"], log=lambda *_: None)
    return config


def _rank_processes(launcher_pid: int) -> dict[int, int]:
    """rank -> pid of the python processes mpirun started."""
    import psutil

    ranks = {}
    for child in psutil.Process(launcher_pid).children(recursive=True):
        try:
            env = child.environ()
        except (psutil.AccessDenied, psutil.NoSuchProcess):
            continue
        if "OMPI_COMM_WORLD_RANK" in env and "python" in " ".join(child.cmdline()):
            ranks[int(env["OMPI_COMM_WORLD_RANK"])] = child.pid
    return ranks


def _start(config, out_dir, env=None, ranks=2):
    cmd = mpirun_prefix(ranks) + NEURODAMUS + [str(config), f"--output-path={out_dir}"]
    env = env or base_env(NEURODAMUS_PROGRESS="lines")
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1, start_new_session=True)


def _wait_for_line(proc, text: str, timeout: float = 120.0) -> list[str]:
    seen, t0 = [], time.monotonic()
    for line in proc.stdout:
        seen.append(line)
        if text in line:
            return seen
        if time.monotonic() - t0 > timeout:
            break
    os.killpg(proc.pid, signal.SIGKILL)
    pytest.fail(f"never saw {text!r}:\n{''.join(seen)[-3000:]}")


def _finish(proc, limit: float) -> tuple[int | None, str, float]:
    """Wait at most ``limit`` s; kill the whole group (and report None) if it is still there."""
    t0 = time.monotonic()
    try:
        rest, _ = proc.communicate(timeout=limit)
        return proc.returncode, rest, time.monotonic() - t0
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        rest, _ = proc.communicate()
        return None, rest, time.monotonic() - t0


@pytest.mark.parametrize("victim", [1, 0])
def test_killing_one_rank_mid_run_ends_the_others(long_config, tmp_path, victim):
    marker = Path(str(long_config) + ".SUCCESS")
    proc = _start(long_config, tmp_path / "out")
    before = _wait_for_line(proc, "Simulated:")          # inside the run loop
    pids = _rank_processes(proc.pid)
    assert set(pids) == {0, 1}, pids
    os.kill(pids[victim], signal.SIGKILL)
    code, rest, elapsed = _finish(proc, END_WITHIN_S + 20)
    output = "".join(before) + rest
    assert code is not None and elapsed < END_WITHIN_S, \
        f"the job outlived the killed rank by {elapsed:.1f} s:\n{output[-3000:]}"
    assert code != 0
    assert not marker.exists()
    assert not (tmp_path / "out" / "out.h5").exists()
    record = json.loads((tmp_path / "out" / "neurodamus_run.json").read_text())
    assert record["status"] == "running"     # never marked complete


def _fault_hook(folder: Path, body: str) -> Path:
    """A sitecustomize that patches the driver in one rank only (fault injection)."""
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(
        "import os\n"
        "if os.environ.get('OMPI_COMM_WORLD_RANK') == os.environ.get('FAULT_RANK', '1'):\n"
        "    import neurodamus.pipeline as _pipeline\n" + body)
    return folder


def test_exception_on_one_rank_in_run_loop_ends_all_ranks(long_config, tmp_path):
    hook = _fault_hook(tmp_path / "hook", (
        "    _orig = _pipeline.ReportSet.flush\n"
        "    def flush(self, t=None):\n"
        "        _orig(self, t)\n"
        "        if t is not None and t >= 100:\n"
        "            raise RuntimeError('injected fault at t=%g' % t)\n"
        "    _pipeline.ReportSet.flush = flush\n"))
    env = base_env(PYTHONPATH=os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")]),
                   NEURODAMUS_PROGRESS="lines")
    t0 = time.monotonic()
    proc = _start(long_config, tmp_path / "out", env=env)
    code, output, _ = _finish(proc, 120)
    assert code is not None and code != 0, output[-3000:]
    # one ERROR line from the failing rank (after its traceback: an internal error)
    assert output.count("ERROR:") == 1, output[-3000:]
    assert "ERROR: internal error: RuntimeError: injected fault at t=100" in output
    assert time.monotonic() - t0 < 60
    assert not Path(str(long_config) + ".SUCCESS").exists()


def test_failed_rank_ends_a_job_whose_peers_wait_in_a_collective(short_config, tmp_path):
    """Rank 1 fails while rank 0 waits in the spike gather: the watchdog ends the job."""
    hook = _fault_hook(tmp_path / "hook", (
        "    def write_spike_outputs(plan, rt, outcome):\n"
        "        raise RuntimeError('injected write failure')\n"
        "    _pipeline.write_spike_outputs = write_spike_outputs\n"))
    env = base_env(PYTHONPATH=os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")]))
    proc = _start(short_config, tmp_path / "out", env=env)
    _wait_for_line(proc, "Synapses built")
    code, rest, elapsed = _finish(proc, 60)
    assert code is not None and code != 0, rest[-3000:]
    assert elapsed < END_WITHIN_S + 5, rest[-3000:]
    assert rest.count("injected write failure") == 1, rest[-3000:]
    assert not Path(str(short_config) + ".SUCCESS").exists()


def test_rerun_into_used_folder_never_mixes_runs(short_config, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")            # not ours: never touched
    (out / "out.h5").write_text("from another tool\n")  # our name, no record: moved aside
    first = run_neurodamus([short_config, f"--output-path={out}", "--dump-cell-state=1"])
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    assert "moved to" in first.stdout
    aside = [p for p in out.iterdir() if p.name.startswith("previous-outputs-")]
    assert len(aside) == 1 and (aside[0] / "out.h5").read_text() == "from another tool\n"
    assert (out / "cellstate_1.json").exists()
    record = json.loads((out / "neurodamus_run.json").read_text())
    assert record["status"] == "complete"
    assert {"out.h5", "populations_offset.dat", "cellstate_1.json"} <= set(record["files"])

    second = run_neurodamus([short_config, f"--output-path={out}"], ranks=2)
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-2000:]
    assert not (out / "cellstate_1.json").exists()     # the first run's extra output is gone
    assert (out / "notes.txt").read_text() == "mine\n"
    assert not [p for p in out.iterdir() if ".tmp-" in p.name]
    record = json.loads((out / "neurodamus_run.json").read_text())
    assert record["status"] == "complete" and record["ranks"] == 2


def test_success_marker_comes_after_every_output(short_config, tmp_path):
    out = tmp_path / "out"
    res = run_neurodamus([short_config, f"--output-path={out}"], ranks=2)
    assert res.returncode == 0, res.stderr[-2000:]
    marker = Path(str(short_config) + ".SUCCESS")
    record = json.loads((out / "neurodamus_run.json").read_text())
    newest = max((out / name).stat().st_mtime_ns for name in record["files"])
    assert marker.stat().st_mtime_ns >= newest


def test_bad_rerun_removes_the_stale_marker(short_config, tmp_path):
    marker = Path(str(short_config) + ".SUCCESS")
    marker.write_text("")
    res = run_neurodamus([short_config, f"--output-path={tmp_path}", "--lb-mode=Nope"],
                         ranks=2)
    assert res.returncode == 2
    assert not marker.exists()
