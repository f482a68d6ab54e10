"""The output record, the progress lines and the run table, without NEURON (fast)."""

from __future__ import annotations

import io
import json
import logging

from neurodamus.engine.summary import RECORD_NAME, RankRow, RunRecord, format_summary
from neurodamus.output_guard import LOCK_NAME
from neurodamus.progress import Counter, Progress


def test_record_removes_previous_run_and_keeps_foreign_files(tmp_path):
    (tmp_path / "mine.txt").write_text("user file")
    first = RunRecord.begin(tmp_path, tmp_path / "cfg.json", ["out.h5", "soma.h5"], 2)
    (tmp_path / "out.h5").write_text("spikes")
    (tmp_path / "soma.h5").write_text("report")
    (tmp_path / "extra.json").write_text("written by some other part of the run")
    first.complete(tstop=10.0)
    data = json.loads((tmp_path / RECORD_NAME).read_text())
    assert data["status"] == "complete"
    assert {"out.h5", "soma.h5", "extra.json", RECORD_NAME} <= set(data["files"])
    assert "mine.txt" not in data["files"]

    (tmp_path / "out.h5.tmp-123").write_text("half written")
    RunRecord.begin(tmp_path, tmp_path / "cfg.json", ["out.h5"], 1)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([RECORD_NAME, "mine.txt", LOCK_NAME])   # the running run's lock
    assert json.loads((tmp_path / RECORD_NAME).read_text())["status"] == "running"


def test_record_never_leaves_the_folder(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    (tmp_path / "precious").write_text("x")
    (folder / RECORD_NAME).write_text(json.dumps({"files": ["../precious", "/etc/passwd"]}))
    RunRecord.begin(folder, "cfg.json", [], 1)
    assert (tmp_path / "precious").exists()


def test_files_of_another_tool_are_moved_aside(tmp_path, caplog):
    (tmp_path / "out.h5").write_text("old driver")
    logging.getLogger("neurodamus").propagate = True   # logs.configure may have turned it off
    with caplog.at_level(logging.INFO, logger="neurodamus"):
        RunRecord.begin(tmp_path, "cfg.json", ["out.h5"], 1)
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("previous-outputs-")]
    assert (aside[0] / "out.h5").read_text() == "old driver"
    assert "moved to" in caplog.records[0].getMessage()


def test_progress_plain_lines_every_ten_percent():
    out = io.StringIO()
    bar = Progress("Simulated", 1000.0, "ms", stream=out, tty=False)
    for t in range(25, 1001, 25):    # 40 chunks
        bar.update(t)
    lines = out.getvalue().splitlines()
    assert len(lines) == 10
    assert lines[0].startswith("Simulated: 100.0/1000.0 ms ( 10%)")
    assert lines[-1].startswith("Simulated: 1000.0/1000.0 ms (100%)")


def test_progress_bar_redraws_one_line_and_is_silent_when_disabled():
    out = io.StringIO()
    bar = Progress("Simulated", 100.0, "ms", stream=out, tty=True)
    for t in (25, 50, 75, 100):
        bar.update(t)
    text = out.getvalue()
    assert text.count("\r") == 4 and text.endswith("\n") and text.count("\n") == 1
    silent = io.StringIO()
    Counter("Cells", 10, enabled=False, stream=silent).add(10)
    assert silent.getvalue() == ""


def test_run_table_min_max_slowest_rank_and_rates():
    rows = [RankRow({"load": 1.0, "build": 2.0, "build/cells": 1.5, "run": 10.0}, 100.0,
                    {"cells": 5}),
            RankRow({"load": 1.5, "build": 3.0, "build/cells": 2.5, "run": 11.0}, 120.0,
                    {"cells": 4})]
    text = format_summary(rows, {"cortex": 90, "inputs": 0}, 1000.0,
                          {"cortex": 9, "inputs": 10})
    lines = text.splitlines()
    build = next(ln for ln in lines if ln.startswith("build "))
    assert build.split() == ["build", "2.000", "3.000", "r1"]
    assert any(ln.split()[:3] == ["cells", "1.500", "2.500"] for ln in lines)
    assert "cells: 9 (per rank min 4, max 5)" in text
    assert next(ln for ln in lines if ln.startswith("cortex")).split() == \
        ["cortex", "9", "90", "10.00"]
    assert "peak memory per rank (MiB): 100, 120" in text


def test_failed_run_says_so_frees_the_folder_and_removes_its_temporary_files(tmp_path):
    from neurodamus.output_guard import fail_active_run

    RunRecord.begin(tmp_path, tmp_path / "cfg.json", ["out.h5"], 1)
    (tmp_path / "out.h5.tmp-77").write_text("half written")
    (tmp_path / "theirs.tmp-1").write_text("not ours")
    fail_active_run("edges.h5: delay: edge 3 has delay 0 ms")
    data = json.loads((tmp_path / RECORD_NAME).read_text())
    assert data["status"] == "failed" and data["error"].startswith("edges.h5: delay")
    assert "finished" in data
    assert sorted(p.name for p in tmp_path.iterdir()) == [RECORD_NAME, "theirs.tmp-1"]
    fail_active_run("a second report changes nothing")
    assert json.loads((tmp_path / RECORD_NAME).read_text())["error"].startswith("edges.h5")
    RunRecord.begin(tmp_path, tmp_path / "cfg.json", ["out.h5"], 1)
