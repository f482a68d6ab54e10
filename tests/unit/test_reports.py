"""Report parameters, time grid, variable checks and the file writer, without NEURON."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from neurodamus.config import RunOptions, load_settings
from neurodamus.errors import ConfigError
from neurodamus.plan import check_run
from neurodamus.reports.config import parse_reports, report_path, time_grid
from neurodamus.reports.mapping import PopulationBlock
from neurodamus.reports.report_set import create_report_file
from neurodamus.reports.variables import MechanismCatalog, parse_variable
from neurodamus.reports.writer import (
    create_file,
    layouts_from_counts,
    with_offsets,
    write_mapping,
    write_rows,
)
from neurodamus.tools.example import write_example

REPORT = {"type": "compartment", "variable_name": "v", "dt": 0.1, "start_time": 0.0,
          "end_time": 50.0}


# ---- time grid (§8.2) -------------------------------------------------------------------------
def test_time_grid_basic():
    g = time_grid(0.0, 100.0, 0.1, 0.025, 100.0)
    assert (g.start, g.end, g.dt, g.n_steps, g.first_step, g.period) == \
        (0.0, 100.0, 0.1, 1000, 0, 4)
    assert g.last_step == 3996


def test_time_grid_end_clipped_to_tstop_and_start_rounded():
    g = time_grid(0.04, 500.0, 0.1, 0.025, 50.0)
    assert g.start == 0.0 and g.end == 50.0          # start' = round(0.04/0.1)*0.1
    assert g.n_steps == 500 and g.first_step == 2    # rows from step ceil(0.04/0.025) = 2
    g = time_grid(0.3, 10.0, 0.1, 0.1, 10.0)         # 0.3/0.1 = 2.9999999999999996
    assert g.first_step == 3


def test_time_grid_period_truncates_like_the_established_driver():
    assert time_grid(0.0, 10.0, 0.075, 0.025, 10.0).period == 2   # int(2.9999999999999996)
    assert time_grid(0.0, 10.0, 0.025, 0.025, 10.0).period == 1


def test_rows_in_step_ranges():
    g = time_grid(1.0, 10.0, 0.5, 0.025, 10.0)       # rows at steps 40, 60, ..., 18 rows
    assert g.n_steps == 18 and g.first_step == 40 and g.period == 20
    assert g.rows_in(0, 40) == (0, 0)
    assert g.rows_in(0, 41) == (0, 1)
    assert g.rows_in(41, 60) == (1, 1)
    assert g.rows_in(41, 61) == (1, 2)
    assert g.rows_in(0, 100000) == (0, 18)
    assert list(g.steps_of(1, 3)) == [60, 80]
    covered = [g.rows_in(a, a + 7) for a in range(0, 401, 7)]
    rows = [r for a, b in covered for r in range(a, b)]
    assert rows == list(range(18))                  # any chunking covers every row once


def test_report_path(tmp_path):
    assert report_path(tmp_path, "", "soma") == tmp_path / "soma.h5"
    assert report_path(tmp_path, "/elsewhere/x/voltage", "soma") == tmp_path / "voltage.h5"
    assert report_path(tmp_path, "v.h5", "soma") == tmp_path / "v.h5"


# ---- parsing and validation --------------------------------------------------------------------
@pytest.fixture(scope="module")
def example(tmp_path_factory):
    return write_example(tmp_path_factory.mktemp("rep"), n_cells=4, tstop=50)


def settings_with(example, tmp_path, reports):
    cfg = json.loads(example.read_text())
    cfg["network"] = str(example.parent / "circuit_config.json")
    cfg["reports"] = reports
    path = tmp_path / "simulation_config.json"
    path.write_text(json.dumps(cfg))
    return load_settings(path, RunOptions(output_path=str(tmp_path / "out")))


def test_parse_defaults_and_order(example, tmp_path):
    s = settings_with(example, tmp_path, {
        "zeta": dict(REPORT), "alpha": dict(REPORT, type="summation", sections="all",
                                            variable_name="i_membrane, IClamp"),
        "off": dict(REPORT, enabled=False)})
    specs = parse_reports(s)
    assert [r.name for r in specs] == ["alpha", "zeta"]    # sorted; disabled left out
    alpha, zeta = specs
    assert alpha.variables == ("i_membrane", "IClamp")
    assert (alpha.sections, alpha.compartments, alpha.scaling) == ("all", "all", "area")
    assert (zeta.sections, zeta.compartments, zeta.unit) == ("soma", "center", "mV")
    assert zeta.path == tmp_path / "out" / "zeta.h5"


@pytest.mark.parametrize("change, message", [
    ({"dt": 0.01}, "reports.r.dt: 0.01 ms is below the simulation time step run.dt = 0.025"),
    ({"dt": 0}, "reports.r.dt: must be > 0"),
    ({"start_time": 20.0, "end_time": 10.0}, ("reports.r.end_time: 10.0 ms is before "
                                              "start_time 20.0 ms")),
    ({"start_time": -1.0}, "reports.r.start_time: must be >= 0"),
    ({"start_time": 60.0, "end_time": 70.0}, ("reports.r.start_time: 60.0 ms is after "
                                              "the end of the simulation")),
    ({"variable_name": "v,ina"}, ("reports.r.variable_name: a compartment report "
                                  "takes one variable")),
    ({"variable_name": "v,"}, "reports.r.variable_name: empty variable name"),
    ({"type": "compartment_set"}, "compartment_set"),
])
def test_parse_errors_name_report_and_key(example, tmp_path, change, message):
    try:
        s = settings_with(example, tmp_path, {"r": dict(REPORT, **change)})
    except ConfigError:   # refused by libsonata: the checking pass names report and key
        with pytest.raises(ConfigError) as info:
            check_run(tmp_path / "simulation_config.json",
                      RunOptions(output_path=str(tmp_path / "out")))
        assert message in str(info.value)
        return
    with pytest.raises(ConfigError) as info:
        parse_reports(s)
    assert str(info.value).startswith(f"{s.config_path}: reports.r")
    assert message in str(info.value)


def test_two_reports_same_file(example, tmp_path):
    s = settings_with(example, tmp_path, {"a": dict(REPORT, file_name="x"),
                                          "b": dict(REPORT, file_name="x.h5")})
    with pytest.raises(ConfigError, match=r"reports.b.file_name: x.h5 is also the file of "
                                          r"report 'a'"):
        parse_reports(s)


def test_dt_not_a_multiple_warns(example, tmp_path):
    s = settings_with(example, tmp_path, {"r": dict(REPORT, dt=0.075)})
    warnings = []
    parse_reports(s, warn=warnings.append)
    assert len(warnings) == 1 and "every int(0.075/0.025) = 2 steps" in warnings[0]


@pytest.mark.parametrize("key, value, text", [
    ("sections", "axonal", ("reports.r.sections: unknown value 'axonal' (expected one of "
                            "soma, axon, dend, apic, all)")),
    ("compartments", "some", "reports.r.compartments: unknown value 'some'"),
    ("scaling", "volume", "reports.r.scaling: unknown value 'volume'"),
])
def test_libsonata_enum_errors_explained(example, tmp_path, key, value, text):
    with pytest.raises(ConfigError):
        settings_with(example, tmp_path, {"r": dict(REPORT, **{key: value})})
    with pytest.raises(ConfigError) as info:
        check_run(tmp_path / "simulation_config.json",
                  RunOptions(output_path=str(tmp_path / "out")))
    assert str(info.value).startswith(f"{tmp_path / 'simulation_config.json'}: {text}")


# ---- variables ----------------------------------------------------------------------------------
CATALOG = MechanismCatalog(
    density={"pas": {"g_pas", "e_pas", "i_pas"}, "na_ion": {"ena", "ina", "nai", "nao"},
             "NaHH": {"gNabar_NaHH", "gNa_NaHH"}},
    point={"IClamp": {"del", "dur", "amp", "i"}, "ProbAMPANMDA_EMS": {"g", "i", "synapseID"},
           "MembraneCurrentSource": {"amp", "i"}})


@pytest.mark.parametrize("text", ["v", "ina", "i_membrane", "pas", "gNa_NaHH", "NaHH.gNa",
                                  "pas.g", "IClamp", "ProbAMPANMDA_EMS.g", "Prob.g",
                                  "MembraneCurrentSource"])
def test_known_variables(text):
    assert CATALOG.problem(parse_variable(text)) is None


@pytest.mark.parametrize("text, problem", [
    ("foo", "unknown variable or mechanism 'foo'"),
    ("Foo.bar", "unknown mechanism 'Foo'"),
    ("NaHH", "mechanism 'NaHH' has no current 'i'"),
    ("NaHH.nope", "mechanism 'NaHH' has no variable 'nope'"),
    ("ProbAMPANMDA_EMS.nope", "point process ProbAMPANMDA_EMS has no variable 'nope'"),
])
def test_unknown_variables(text, problem):
    assert CATALOG.problem(parse_variable(text)).startswith(problem)


# ---- writer: each rank writes its own bytes of the file ---------------------------------------
def test_file_assembled_from_two_ranks_reads_back(tmp_path):
    import libsonata

    grid = time_grid(0.0, 1.0, 0.1, 0.025, 1.0)
    counts = [[(2, 3), (1, 1)], [(1, 2), (0, 0)]]          # rank -> population -> (nodes, elems)
    blocks = {
        0: [PopulationBlock("A", 0, np.array([0, 2], np.uint64), np.array([1, 2]),
                            np.array([0, 0, 5], np.uint32)),
            PopulationBlock("B", 1000, np.array([4], np.uint64), np.array([1]),
                            np.array([0], np.uint32))],
        1: [PopulationBlock("A", 0, np.array([1], np.uint64), np.array([2]),
                            np.array([0, 3], np.uint32)),
            PopulationBlock("B", 1000, np.zeros(0, np.uint64), np.zeros(0, int),
                            np.zeros(0, np.uint32))],
    }
    path = str(tmp_path / "r.h5")
    layouts = {r: layouts_from_counts(["A", "B"], counts, r) for r in (0, 1)}
    assert layouts[1][0].node_start == 2 and layouts[1][0].elem_start == 3
    offsets = create_file(path, layouts[0], grid, "mV")
    layouts = {r: with_offsets(lay, offsets) for r, lay in layouts.items()}
    for r in (0, 1):
        write_mapping(path, layouts[r], blocks[r])
    for a, b in ((0, 4), (4, 10)):                        # two flushes
        for r in (0, 1):
            n = sum(lay.n_elements for lay in layouts[r])
            cols = np.arange(n) + 100 * r
            values = (np.arange(a, b)[:, None] * 1000 + cols[None, :]).astype(np.float32)
            write_rows(path, layouts[r], a, values)
    reader = libsonata.ElementReportReader(path)
    a = reader["A"]
    assert a.times == (0.0, 1.0, 0.1) and a.data_units == "mV" and a.time_units == "ms"
    assert sorted(a.get_node_ids()) == [0, 1, 2]
    frame = a.get(node_ids=[1])
    assert [tuple(i) for i in np.asarray(frame.ids)] == [(1, 0), (1, 3)]
    data = np.asarray(frame.data)
    assert data.shape == (10, 2)
    assert list(data[7]) == [7100.0, 7101.0]               # rank 1's columns 0 and 1
    frame = a.get(node_ids=[2])
    assert [tuple(i) for i in np.asarray(frame.ids)] == [(2, 0), (2, 5)]
    assert list(np.asarray(frame.data)[3]) == [3001.0, 3002.0]
    b = reader["B"]
    assert list(b.get_node_ids()) == [4]
    assert list(np.asarray(b.get(node_ids=[4]).data)[:, 0]) == [i * 1000 + 3 for i in range(10)]


def test_rows_written_in_any_order_and_rows_never_written_read_zero(tmp_path):
    """One rank owning every column (whole rows in one range); HDF5 reads what was written
    around it, and the rows never written are zeros (no fill pass at creation)."""
    import h5py

    grid = time_grid(0.0, 0.6, 0.1, 0.025, 0.6)
    path = str(tmp_path / "r.h5")
    layouts = layouts_from_counts(["A"], [[(2, 3)]], 0)
    layouts = with_offsets(layouts, create_file(path, layouts, grid, "mV"))
    write_mapping(path, layouts, [PopulationBlock("A", 0, np.array([0, 1], np.uint64),
                                                  np.array([1, 2]),
                                                  np.array([0, 0, 1], np.uint32))])
    rows = np.arange(18, dtype=np.float32).reshape(6, 3) + 1
    write_rows(path, layouts, 4, rows[4:5])
    write_rows(path, layouts, 0, rows[:2])
    with h5py.File(path, "r") as fd:
        data = fd["report/A/data"][()]
        assert list(fd["report/A/mapping/node_ids"][()]) == [0, 1]
    assert np.array_equal(data[[0, 1, 4]], rows[[0, 1, 4]])
    assert not data[[2, 3, 5]].any()


@pytest.mark.skipif(not hasattr(os, "posix_fadvise"),
                    reason="no posix_fadvise on this system: the writer gives no hint")
def test_written_rows_leave_the_page_cache_only_once_complete(tmp_path, monkeypatch):
    """Each write hands back the pages of the rows before its own (written by every rank in
    earlier flushes) and starts the write-back of its own; it never drops a byte of a later
    row. The data read back is whole."""
    import h5py

    from neurodamus.reports import writer

    calls = []
    monkeypatch.setattr(writer, "_FADVISE", lambda fd, at, size, advice: calls.append(
        (at, size, advice)))
    grid = time_grid(0.0, 1.0, 0.1, 0.025, 1.0)
    path = str(tmp_path / "r.h5")
    layouts = {r: layouts_from_counts(["A"], [[(1, 2)], [(1, 3)]], r) for r in (0, 1)}
    offsets = create_file(path, layouts[0], grid, "mV")
    layouts = {r: with_offsets(lay, offsets) for r, lay in layouts.items()}
    row_bytes, start = 4 * 5, offsets[0]
    for a, b in ((0, 4), (4, 10)):
        for r in (0, 1):
            n = layouts[r][0].n_elements
            calls.clear()
            write_rows(path, layouts[r], a, np.full((b - a, n), a + r, np.float32))
            assert all(advice == os.POSIX_FADV_DONTNEED for *_, advice in calls)
            assert [(at, size) for at, size, _ in calls] == \
                [(start, a * row_bytes)] * (a > 0) + [(start + a * row_bytes, (b - a) * row_bytes)]
    with h5py.File(path, "r") as fd:
        data = fd["report/A/data"][()]
    assert data[:4, :2].tolist() == [[0, 0]] * 4 and data[:4, 2:].tolist() == [[1, 1, 1]] * 4
    assert data[4:, :2].tolist() == [[4, 4]] * 6 and data[4:, 2:].tolist() == [[5, 5, 5]] * 6


def test_create_report_file_errors_name_the_key(example, tmp_path):
    s = settings_with(example, tmp_path, {"r": dict(REPORT)})
    spec = parse_reports(s)[0]
    layouts = layouts_from_counts(["cortex"], [[(1, 1)]], 0)
    spec.path.mkdir(parents=True)                     # a directory where the file should go
    with pytest.raises(ConfigError, match=r"reports.r.file_name: cannot write .*r.h5: Is a "
                                          r"directory"):
        create_report_file(spec, layouts, f"{s.config_path}: reports.r.file_name")
    spec.path.rmdir()
    tmp, offsets = create_report_file(spec, layouts, "x")
    assert len(offsets) == 1 and offsets[0] > 0
    assert tmp.startswith(str(spec.path) + ".tmp-") and not spec.path.exists()


def test_create_report_file_in_a_folder_that_is_a_file(example, tmp_path):
    """The file cannot be created: one message naming the report's key and the reason, and
    nothing left behind (a case root cannot bypass, unlike a read-only folder)."""
    s = settings_with(example, tmp_path, {"r": dict(REPORT)})
    spec = parse_reports(s)[0]
    layouts = layouts_from_counts(["cortex"], [[(1, 1)]], 0)
    spec.path.parent.write_text("")                   # 'out' is a file, not a folder
    with pytest.raises(ConfigError, match=r"^.*: reports.r.file_name: cannot write .*r.h5: Not "
                                          r"a directory$"):
        create_report_file(spec, layouts, f"{s.config_path}: reports.r.file_name")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "simulation_config.json"]


def test_lfp_reports_hold_64_rows_without_a_buffer_size():
    """Without --report-buffer-size an lfp report gets room for LFP_DEFAULT_ROWS rows (a flush
    every few rows would read every weight each time); other reports keep 8 MB."""
    from types import SimpleNamespace

    from neurodamus.parallel import SingleRank
    from neurodamus.reports.report_set import DEFAULT_BUFFER_MB, LFP_DEFAULT_ROWS, ReportSet

    rank0 = SimpleNamespace(comm=SingleRank(), rank=0)
    soma = SimpleNamespace(spec=SimpleNamespace(type="compartment"), n_refs=10**6)
    small_lfp = SimpleNamespace(spec=SimpleNamespace(type="lfp"), n_refs=1000)
    big_lfp = SimpleNamespace(spec=SimpleNamespace(type="lfp"), n_refs=100_000)
    assert ReportSet._default_buffer_mb(rank0, [soma]) == DEFAULT_BUFFER_MB
    assert ReportSet._default_buffer_mb(rank0, [soma, small_lfp]) == DEFAULT_BUFFER_MB
    assert ReportSet._default_buffer_mb(rank0, [soma, big_lfp]) == \
        pytest.approx(LFP_DEFAULT_ROWS * 8 * 100_000 / 2**20)


def test_a_flush_is_cut_into_even_pieces():
    """As few pieces as the bound allows, equal but the last: an lfp piece's product reads every
    weight once whatever its rows, so a one-row remainder would cost a whole pass."""
    from neurodamus.reports.report_set import _even_block

    assert _even_block(64, 64) == 64 and _even_block(64, 100) == 64
    assert _even_block(64, 40) == 32          # 32 + 32, not 40 + 24
    assert _even_block(64, 63) == 32          # not 63 + 1
    assert _even_block(250, 50) == 50
    assert _even_block(251, 50) == 42         # 6 pieces: 5 x 42 + 41
    for rows in range(1, 200):
        for most in range(1, 70):
            block = _even_block(rows, most)
            n = -(-rows // block)
            assert block <= most and n == -(-rows // most) and rows - (n - 1) * block > 0


def test_lfp_pieces_are_bounded_per_rank_not_over_all_ranks():
    """The output of a piece is bounded on the rank with the most elements: over thousands of
    ranks, a bound on all ranks' output would leave pieces of one row (each a pass over all of
    a rank's weights)."""
    from types import SimpleNamespace

    from neurodamus.reports.lfp_recording import LfpGatherReport

    local = SimpleNamespace(spec=None, n_elements=2000 * 100)
    rep = LfpGatherReport(local, [], [], 0.025, piece_bytes=64 * 2**20, widest_rank=2100 * 100)
    assert rep.row_block == 64 * 2**20 // (4 * 2100 * 100) == 79
    # the same on a rank with fewer elements: every rank cuts its flush into as many pieces
    other = LfpGatherReport(SimpleNamespace(spec=None, n_elements=10), [], [], 0.025,
                            piece_bytes=64 * 2**20, widest_rank=2100 * 100)
    assert other.row_block == rep.row_block
    huge = LfpGatherReport(local, [], [], 0.025, piece_bytes=2**20, widest_rank=10**7)
    assert huge.row_block == 1


def test_lfp_flush_in_coreneurons_step_carries_its_failure_out():
    """CoreNEURON's step calls the flush through ctypes, which would swallow an exception: the
    call returns the buffer's next first row, or -1 (stop) with the error kept, which
    after_psolve raises once the run has stopped. Rows flushed in the step do not count
    toward the chunk's buffer."""
    from types import SimpleNamespace

    from neurodamus.parallel import RunFailed
    from neurodamus.reports.lfp_recording import LfpGatherReport

    class Core:   # the ctypes side (lfp_core_gather.CoreImemGather), as far as used here
        def new_slot(self):
            return 0

        def problems(self, slot):
            return 0, 0

        def clear(self, slot):
            self.cleared = True

    local = SimpleNamespace(spec=SimpleNamespace(name="lfp", grid=SimpleNamespace(period=4)),
                            n_elements=8, n_refs=5)
    rep = LfpGatherReport(local, [], [], 0.025, core=Core())
    assert rep.bytes_per_step == 8.0 * 5 / 4 and not rep.flushes_in_step
    written = []

    def write(report):   # what ReportSet._write_in_step does with the held rows
        written.append(report.held_rows)
        report._have[:] = False
        report._next_row += written[-1]

    rep.flush_in_step(3, write)
    assert rep.flushes_in_step and rep.bytes_per_step == 0.0
    rep._attached, rep._have = True, np.array([True, True, True])
    assert rep._on_full(3) == 3 and written == [3]

    def fail(report):
        raise RunFailed(["out/lfp.h5: cannot write: the disk is full"])

    rep._in_step = fail
    rep._have[:2] = True
    assert rep.held_rows == 2
    assert rep._on_full(5) == -1
    with pytest.raises(RunFailed, match="disk is full"):
        rep.after_psolve(SimpleNamespace(t=0.6))
    assert rep._core.cleared and rep._in_step_error is None
