"""Bad report input: one message ``<config>: reports.<name>.<key>: ...``, non-zero exit, no hang,
and no report file under its final name."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers import ROOT, base_env, run_neurodamus

pytestmark = pytest.mark.mpi

GOOD = {"type": "compartment", "variable_name": "v", "dt": 0.1, "start_time": 0.0,
        "end_time": 20.0}


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    from neurodamus.tools.example import write_example
    from neurodamus.tools.mechanisms import build_mechanisms

    d = tmp_path_factory.mktemp("report_errors")
    config = write_example(d, n_cells=6, tstop=20, seed=2)
    build_mechanisms([config.parent / "mechanisms"], log=lambda *_: None)
    node_sets = json.loads((d / "node_sets.json").read_text())
    node_sets["Nothing"] = {"population": "cortex", "mtype": "no-such-mtype"}
    node_sets["Zero"] = {"population": "cortex", "node_id": [0]}
    (d / "node_sets.json").write_text(json.dumps(node_sets))
    (d / "compartment_sets.json").write_text(json.dumps({
        "far": {"population": "cortex", "compartment_set": [[0, 0, 0.5], [0, 900, 0.5]]},
        "ok": {"population": "cortex", "compartment_set": [[1, 0, 0.5]]}}))
    return config


def config_with(base, tmp_path, reports, extra=None):
    sim = json.loads(base.read_text())
    sim["network"] = str(base.parent / "circuit_config.json")
    sim["inputs"]["thalamic_drive"]["spike_file"] = str(base.parent / "input_spikes.h5")
    sim["compartment_sets_file"] = str(base.parent / "compartment_sets.json")
    sim["reports"] = reports
    sim.update(extra or {})
    config = tmp_path / "simulation_config.json"
    config.write_text(json.dumps(sim))
    return config


def run_with(base, tmp_path, report, ranks=1, name="bad", extra=None):
    config = config_with(base, tmp_path, {"good": GOOD, name: report}, extra)
    out = tmp_path / "out"
    res = run_neurodamus([config, f"--output-path={out}"], ranks=ranks)
    assert res.returncode != 0, res.stdout[-2000:]
    errors = [line for line in res.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1, res.stderr[-3000:]
    files = sorted(p.name for p in out.glob("*.h5")) if out.exists() else []
    assert "good.h5" not in files and f"{name}.h5" not in files
    return errors[0], str(config)


@pytest.mark.parametrize("change, key, text", [
    ({"variable_name": "foo"}, "variable_name", "unknown variable or mechanism 'foo'"),
    ({"variable_name": "Foo.bar"}, "variable_name", "unknown mechanism 'Foo'"),
    ({"type": "synapse", "variable_name": "ProbAMPANMDA_EMS.nope"}, "variable_name",
     "has no variable 'nope'"),
    ({"sections": "all", "variable_name": "ina"}, "variable_name",
     "'ina' has no reference(s) at gid"),
    ({"dt": 0.01}, "dt", "0.01 ms is below the simulation time step run.dt = 0.025 ms"),
    ({"start_time": 15.0, "end_time": 5.0}, "end_time", "5.0 ms is before start_time 15.0"),
    ({"sections": "axonal"}, "sections", "unknown value 'axonal'"),
    ({"cells": "Nothing"}, "cells", "node set 'Nothing' selects no instantiated cell"),
    ({"cells": "NoSuchSet"}, "cells", "unknown node set 'NoSuchSet'"),
    ({"type": "compartment_set", "compartment_set": "nope"}, "compartment_set",
     "unknown compartment set 'nope'"),
    ({"type": "compartment_set", "compartment_set": "ok", "cells": "Zero"}, "compartment_set",
     ("compartment set 'ok' has no entry on an instantiated cell of the report (empty report "
      "target)")),
])
def test_bad_report_key(base, tmp_path, change, key, text):
    error, config = run_with(base, tmp_path, dict(GOOD, **change))
    assert error.startswith(f"ERROR: {config}: reports.bad.{key}: "), error
    assert text in error


def test_missing_key_names_report(base, tmp_path):
    report = dict(GOOD)
    del report["end_time"]
    error, config = run_with(base, tmp_path, report)
    assert error == f"ERROR: {config}: reports.bad.end_time: missing (required)"


@pytest.mark.parametrize("ranks", [1, 2])
def test_file_not_writable(base, tmp_path, ranks):
    """A 250-character name is valid, its temporary name (``.tmp-<pid>`` added) is not: the
    file cannot be created (as root, permissions cannot stop a write). Rank 0 finds it; every
    rank stops; the file of report 'good', created just before, is removed again."""
    name = "r" * 247
    error, config = run_with(base, tmp_path, dict(GOOD, file_name=name), ranks=ranks,
                             name=name)
    assert error.startswith(f"ERROR: {config}: reports.{name}.file_name: cannot write "), error
    assert error.endswith("File name too long")
    assert not [p.name for p in (tmp_path / "out").iterdir()
                if p.name.startswith(("rr", "good"))]


FAIL_AFTER_FIRST_FLUSH = """
import sys
from neurodamus import logs, pipeline
from neurodamus.config import RunOptions

class FailingReports(pipeline.ReportSet):
    def flush(self, t=None):
        super().flush(t)
        if self.n_flushes == 1:   # rows written, file not closed
            raise OSError(28, "No space left on device")

pipeline.ReportSet = FailingReports
logs.configure()
pipeline.run(sys.argv[1], RunOptions(output_path=sys.argv[2]))
"""


def test_run_failing_after_rows_are_written_leaves_no_complete_looking_file(base, tmp_path):
    """The rows live under ``<name>.h5.tmp-<pid>`` until the file is complete; the next run
    in the folder removes that leftover."""
    import h5py

    config = config_with(base, tmp_path, {"good": GOOD})
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-c", FAIL_AFTER_FIRST_FLUSH, str(config), str(out)],
                          cwd=ROOT, env=base_env(), capture_output=True, text=True,
                          timeout=180, check=False)
    assert proc.returncode != 0 and "No space left on device" in proc.stderr, proc.stderr
    assert not (out / "good.h5").exists()
    (partial,) = [p for p in out.iterdir() if p.name.startswith("good.h5.tmp-")]
    with h5py.File(partial, "r") as fd:      # the rows were written, under the temporary name
        assert abs(fd["report/cortex/data"][:]).max() > 0
    res = run_neurodamus([config, f"--output-path={out}"])
    assert res.returncode == 0, res.stderr[-2000:]
    assert (out / "good.h5").is_file()
    assert not [p.name for p in out.iterdir() if ".tmp-" in p.name]


def test_error_on_one_rank_only_stops_both(base, tmp_path):
    """Section 900 of node 0: only the rank holding node 0 finds the problem."""
    error, config = run_with(base, tmp_path, dict(GOOD, type="compartment_set",
                                                  compartment_set="far"), ranks=2)
    assert error.startswith(f"ERROR: {config}: reports.bad.compartment_set: 'far' names "
                            f"section 900 of gid 0"), error


def test_two_reports_one_file(base, tmp_path):
    error, config = run_with(base, tmp_path, dict(GOOD, file_name="good.h5"))
    # reports are taken in name order: 'good' comes second and finds the clash
    assert error == f"ERROR: {config}: reports.good.file_name: good.h5 is also the file of " \
                    f"report 'bad'"
