"""Outputs are never lost nor look complete after a failure (issue 16), on 1 and 2 ranks.

* one run per output folder: a second run into a busy folder fails at once, naming the folder
  and the other run, and leaves the other run's files alone;
* Ctrl-C and SIGTERM end a run with one line, no traceback, and the record says ``failed``;
* a full disk (a small tmpfs; needs root to mount it) gives one message naming the file and
  the free space, removes the temporary files and marks the record failed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from neurodamus.engine.summary import RECORD_NAME
from neurodamus.output_guard import LOCK_NAME
from tests.helpers import NEURODAMUS, base_env, mpirun_prefix, run_neurodamus

pytestmark = pytest.mark.mpi

WAIT_S = 300.0   # a start-up allowance on a busy machine, not a bound on the driver


def _copy(small_config, tmp_path, tstop=None, reports=None) -> Path:
    work = tmp_path / "circuit"
    shutil.copytree(small_config.parent, work, ignore=shutil.ignore_patterns("output",
                                                                             "*.SUCCESS"))
    config = work / "simulation_config.json"
    data = json.loads(config.read_text())
    if tstop is not None:
        data["run"]["tstop"] = tstop
        data["inputs"]["thalamic_drive"]["duration"] = tstop
    if reports is not None:
        data["reports"] = reports
    config.write_text(json.dumps(data, indent=2))
    return config


_STARTED: list = []


@pytest.fixture(autouse=True)
def _no_run_outlives_its_test():
    """A test that fails half-way must not leave its (long) run behind."""
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _start(config, ranks=1, args=()) -> subprocess.Popen:
    cmd = NEURODAMUS + [str(config), *args]
    if ranks > 1:
        cmd = mpirun_prefix(ranks) + cmd
    # SIGINT as a terminal's foreground job has it: a suite started in the background of a
    # script (`cmd &`, nohup) ignores SIGINT, and an ignored signal stays ignored across exec,
    # so the run would never see the Ctrl-C a test sends (a handled one is reset to default)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen(cmd, cwd=config.parent, env=base_env(NEURODAMUS_PROGRESS="off"),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
    finally:
        signal.signal(signal.SIGINT, previous)
    _STARTED.append(proc)
    return proc


def _wait_running(proc, folder: Path) -> dict:
    """The record of ``proc``'s run once it has claimed ``folder`` and built its model."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < WAIT_S:
        record = folder / RECORD_NAME
        if (folder / LOCK_NAME).exists() and record.exists():
            data = json.loads(record.read_text())
            if data.get("status") == "running":
                time.sleep(2.0)   # let it get into the build / the run
                return data
        assert proc.poll() is None, f"the run ended early:\n{proc.communicate()[0][-2000:]}"
        time.sleep(0.2)
    proc.kill()
    pytest.fail(f"the run did not claim {folder} within {WAIT_S:.0f} s")


def _one_error_no_traceback(out: str) -> str:
    errors = re.findall(r"^ERROR: .*$", out, re.MULTILINE)
    assert len(errors) == 1, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    return errors[0]


@pytest.mark.parametrize("ranks", [1, 2])
def test_second_run_into_a_busy_folder_fails_at_once(small_config, tmp_path, ranks):
    config = _copy(small_config, tmp_path, tstop=200000.0)
    out = config.parent / "output"
    holder = _start(config)
    try:
        _wait_running(holder, out)
        second = run_neurodamus([config], ranks=ranks, cwd=config.parent,
                                env=base_env(NEURODAMUS_PROGRESS="off"))
        assert second.returncode != 0
        line = _one_error_no_traceback(second.stdout + second.stderr)
        assert f"output folder {out}: in use by another run (pid {holder.pid} on " in line
        assert str(config) in line
        record = json.loads((out / RECORD_NAME).read_text())
        assert record["status"] == "running"          # the holder's record is untouched
        assert (out / LOCK_NAME).exists()
    finally:
        holder.send_signal(signal.SIGTERM)
        text = holder.communicate(timeout=WAIT_S)[0]
    assert holder.returncode == 128 + signal.SIGTERM, text[-2000:]
    assert "stopped by SIGTERM" in _one_error_no_traceback(text)
    record = json.loads((out / RECORD_NAME).read_text())
    assert record["status"] == "failed" and "SIGTERM" in record["error"]
    assert not (out / LOCK_NAME).exists()
    assert not Path(str(config) + ".SUCCESS").exists()


def test_ctrl_c_ends_a_run_with_one_line(small_config, tmp_path):
    config = _copy(small_config, tmp_path, tstop=200000.0)
    out = config.parent / "output"
    proc = _start(config)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    _wait_running(proc, out)
    t0 = time.monotonic()   # Ctrl-C in the simulation (NEURON may keep one during hoc code)
    while not any("Synapses built" in line for line in list(lines)):
        assert time.monotonic() - t0 < WAIT_S and proc.poll() is None, "".join(lines)[-2000:]
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=WAIT_S)
    reader.join(timeout=WAIT_S)
    text = "".join(lines)
    assert proc.returncode == 130, text[-2000:]
    assert "interrupted (Ctrl-C)" in _one_error_no_traceback(text)
    record = json.loads((out / RECORD_NAME).read_text())
    assert record["status"] == "failed" and "Ctrl-C" in record["error"]
    assert not (out / LOCK_NAME).exists()
    assert not [p for p in out.iterdir() if ".tmp-" in p.name]


@pytest.mark.parametrize("ranks", [1, 2])
def test_full_disk_one_message_no_temporary_files(small_config, tmp_path, tiny_disk, ranks):
    report = {"soma": {"type": "compartment", "cells": "Cortex", "variable_name": "v",
                       "sections": "soma", "dt": 0.025, "start_time": 0.0, "end_time": 200.0}}
    config = _copy(small_config, tmp_path, reports=report)
    out = tiny_disk / "out"
    done = run_neurodamus([config, f"--output-path={out}"], ranks=ranks, cwd=config.parent,
                          env=base_env(NEURODAMUS_PROGRESS="off"))
    text = done.stdout + done.stderr
    assert done.returncode != 0, text[-2000:]
    line = _one_error_no_traceback(text)
    assert re.search(rf"{re.escape(str(out))}/\S+\.h5: cannot write: the disk is full "
                     rf"\([\d.]+ \w*B free on ", line), line
    assert not [p for p in out.iterdir() if ".tmp-" in p.name]
    record = json.loads((out / RECORD_NAME).read_text())
    assert record["status"] == "failed" and "disk is full" in record["error"]
    assert not (out / LOCK_NAME).exists()
    assert not Path(str(config) + ".SUCCESS").exists()

