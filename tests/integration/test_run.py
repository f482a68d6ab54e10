"""End-to-end runs of the example circuit with real NEURON under real mpirun."""

import json
import os
import shutil

import numpy as np
import pytest

from neurodamus.allocator import find_jemalloc
from neurodamus.subnormals import _register
from tests.helpers import base_env, read_spikes, run_neurodamus, spikes_equal

pytestmark = pytest.mark.mpi


def run_into(config, out_dir, ranks, *options, **kw):
    result = run_neurodamus([config, f"--output-path={out_dir}", *options], ranks=ranks, **kw)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def runs(example_config, tmp_path_factory):
    """The example on 1, 2 and 3 ranks: (stdout, spikes) per rank count."""
    out = {}
    for ranks in (1, 2, 3):
        d = tmp_path_factory.mktemp(f"out{ranks}")
        res = run_into(example_config, d, ranks)
        out[ranks] = (res.stdout, read_spikes(d / "out.h5"), d)
    return out


def test_example_spikes(runs):
    _, spikes, _ = runs[2]
    times, ids = spikes["cortex"]
    assert set(spikes) == {"cortex"}        # virtual populations get no group
    assert np.all(np.diff(times) >= 0)      # sorted by time
    assert ids.min() >= 0 and ids.max() < 100


def test_example_activity_is_sustained_and_asynchronous(runs, example_config):
    """The example network neither dies out nor bursts: every 100 ms window of the run holds
    spikes, the mean rate is 1-10 Hz per cell, and no window carries more than 3x the mean."""
    import libsonata

    tstop = json.loads(example_config.read_text())["run"]["tstop"]
    nodes = libsonata.NodeStorage(str(example_config.parent / "nodes.h5"))
    n_cells = nodes.open_population("cortex").size
    times, _ = runs[2][1]["cortex"]
    counts, _ = np.histogram(times, bins=np.arange(0.0, tstop + 50.0, 100.0))
    rate = len(times) / n_cells / (tstop / 1000.0)
    assert len(counts) == 10
    assert counts.min() > 0, counts
    assert 1.0 <= rate <= 10.0, rate
    assert counts.max() <= 3 * counts.mean(), counts


@pytest.mark.parametrize("ranks", [2, 3])
def test_spikes_identical_on_any_rank_count(runs, ranks):
    assert spikes_equal(runs[1][1], runs[ranks][1])


def test_rank0_reports_numprocs_and_summary(runs):
    stdout = runs[2][0]
    assert stdout.count("numprocs=2") == 1
    assert "Run summary" in stdout and "peak memory per rank" in stdout
    for phase in ("load", "build", "init", "run", "write"):
        assert f"\n{phase} " in stdout


def test_outputs_and_success_marker(runs, example_config):
    out_dir = runs[1][2]
    offsets = (out_dir / "populations_offset.dat").read_text().split()
    assert offsets == ["cortex::0::cortex", "thalamus::1000::virtual"]
    assert (example_config.parent / "simulation_config.json.SUCCESS").exists()
    leftovers = [p.name for p in out_dir.iterdir() if ".tmp" in p.name]
    assert leftovers == []


def test_spike_file_layout(runs):
    import h5py
    with h5py.File(runs[1][2] / "out.h5", "r") as fd:
        grp = fd["spikes/cortex"]
        assert grp["timestamps"].dtype == np.float64
        assert grp["timestamps"].attrs["units"] == "ms"
        assert grp["node_ids"].dtype == np.uint64
        assert h5py.check_enum_dtype(grp.attrs.get_id("sorting").dtype) == \
            {"none": 0, "by_id": 1, "by_time": 2}
        assert grp.attrs["sorting"] == 2


def test_flushing_subnormals_changes_no_spike_and_no_voltage(example_config, runs, tmp_path):
    """Subnormals are flushed to zero by default (the runs above); --keep-subnormals computes
    with IEEE subnormals (slower on this model, docs/performance.md). Values below 2.2e-308
    reach no spike and no voltage of the example: both give the same spikes and soma voltages,
    on any rank count, and the run record says which arithmetic ran."""
    import libsonata

    sim = json.loads(example_config.read_text())
    sim["reports"] = {"soma": {"type": "compartment", "cells": "Cortex", "sections": "soma",
                               "variable_name": "v", "dt": 0.5, "start_time": 0.0,
                               "end_time": sim["run"]["tstop"]}}
    config = example_config.parent / "simulation_config_soma.json"
    config.write_text(json.dumps(sim, indent=1))
    voltages, spikes = {}, {}
    for mode, ranks, extra in (("flush", 2, []), ("keep", 1, ["--keep-subnormals"])):
        out = tmp_path / mode
        run_into(config, out, ranks, *extra)
        record = json.loads((out / "neurodamus_run.json").read_text())
        flushed = mode == "flush" and _register() is not None   # a known control register
        assert record["subnormals"].startswith("flushed to zero" if flushed else "kept (IEEE)"), \
            record["subnormals"]
        report = libsonata.ElementReportReader(str(out / "soma.h5"))["cortex"]
        frame = report.get()   # columns in the writing ranks' order: sort them by node id
        order = np.argsort([node for node, _ in np.asarray(frame.ids)], kind="stable")
        voltages[mode] = np.asarray(frame.data)[:, order]
        spikes[mode] = read_spikes(out / "out.h5")
    assert voltages["flush"].shape == (2000, 100)
    assert np.array_equal(voltages["flush"], voltages["keep"])
    assert spikes_equal(spikes["flush"], spikes["keep"])
    assert spikes_equal(spikes["keep"], runs[1][1])


def test_special_reexec_gives_one_run_with_same_spikes(example_config, runs, tmp_path):
    build = run_neurodamus(["build-mechanisms", example_config.parent / "mechanisms",
                            "--output", tmp_path], cwd=tmp_path)
    assert build.returncode == 0, build.stderr
    assert "export NRNMECH_LIB_PATH=" in build.stdout
    env = base_env(neurodamus_special=None)
    res = run_neurodamus([example_config, f"--output-path={tmp_path / 'out'}"], ranks=2,
                         cwd=tmp_path, env=env)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert res.stdout.count("Special available. Replacing binary") == 1
    assert res.stdout.count("numprocs=2") == 1
    assert "built into special" in res.stdout
    assert spikes_equal(read_spikes(tmp_path / "out" / "out.h5"), runs[1][1])
    # the allocator preload travels with the one re-exec into special (allocator.py)
    summary = json.loads((tmp_path / "out" / "run_summary.json").read_text())
    assert summary["allocator"]["name"] == ("jemalloc" if find_jemalloc(os.environ) else
                                            "system")


def test_special_disabled_by_environment(small_config, tmp_path):
    build = run_neurodamus(["build-mechanisms", small_config.parent / "mechanisms",
                            "--output", tmp_path], cwd=tmp_path)
    assert build.returncode == 0, build.stderr
    res = run_neurodamus([small_config, f"--output-path={tmp_path / 'out'}"], cwd=tmp_path,
                         env=base_env(neurodamus_special="1"))
    assert res.returncode == 0, res.stderr[-2000:]
    assert "Special available" not in res.stdout
    # ./x86_64/libnrnmech.so was auto-loaded by NEURON, and used instead of a second load
    assert "auto-loaded" in res.stdout


def test_morphology_formats_give_same_spikes(small_config, tmp_path):
    """The example's templates load asc through Import3d and h5 through the driver's
    morphio_read, which builds the soma as Import3d does: asc and h5 copies of the same
    morphologies (contour somata) give identical spikes."""
    import morphio
    import morphio.mut

    from neurodamus import paths

    base = small_config.parent
    spikes = {}
    for fmt, key in (("asc", "neurolucida-asc"), ("h5", "h5v1")):
        morph_dir = tmp_path / fmt
        morph_dir.mkdir()
        for swc in (base / "morphologies").glob("*.swc"):
            morph = morphio.mut.Morphology(swc)
            # multiples of 1/64 um: the float32 values of the h5 file are the asc text's numbers
            for sec in morph.iter():
                sec.points = np.round(np.asarray(sec.points) * 64) / 64
                sec.diameters = np.round(np.asarray(sec.diameters) * 64) / 64
            # asc and h5 need a contour soma: a ring of the swc soma's radius around its centre
            center, radius = morph.soma.points[0], morph.soma.diameters[0] / 2
            angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
            ring = center + radius * np.column_stack([np.cos(angles), np.sin(angles),
                                                      np.zeros(16)])
            morph.soma.points = (np.round(ring * 64) / 64).astype(np.float32)
            morph.soma.diameters = np.zeros(16, np.float32)
            morph.soma.type = morphio.SomaType.SOMA_SIMPLE_CONTOUR
            morph.write(morph_dir / f"{swc.stem}.{fmt}")
        if fmt == "h5" and not (paths.hoc_dir() / "morphio_read.hoc").is_file():
            pytest.skip("h5: the driver's HOC library has no morphio_read yet")
        circuit = json.loads((base / "circuit_config.json").read_text())
        circuit["manifest"]["$BASE_DIR"] = str(base)
        circuit["components"]["alternate_morphologies"] = {key: str(morph_dir)}
        (tmp_path / f"circuit_{fmt}.json").write_text(json.dumps(circuit))
        sim = json.loads(small_config.read_text())
        sim["network"] = str(tmp_path / f"circuit_{fmt}.json")
        sim["inputs"]["thalamic_drive"]["spike_file"] = str(base / "input_spikes.h5")
        cfg = tmp_path / f"sim_{fmt}.json"
        cfg.write_text(json.dumps(sim))
        run_into(cfg, tmp_path / f"out_{fmt}", 1)
        spikes[fmt] = read_spikes(tmp_path / f"out_{fmt}" / "out.h5")
        assert len(spikes[fmt]["cortex"][0]) > 0, fmt
    assert spikes_equal(spikes["h5"], spikes["asc"])


def test_python_m_and_version():
    res = run_neurodamus(["--version"])
    assert res.returncode == 0 and res.stdout.startswith("neurodamus ")


def test_bad_option_prints_usage_and_exits_2():
    res = run_neurodamus(["cfg.json", "--no-such-option"])
    assert res.returncode == 2
    assert "Usage:" in res.stderr


def test_dump_cell_state(small_config, tmp_path):
    res = run_neurodamus([small_config, f"--output-path={tmp_path}", "--dump-cell-state=0,1"],
                         ranks=2)
    assert res.returncode == 0, res.stderr[-2000:]
    for gid in (0, 1):
        state = json.loads((tmp_path / f"cellstate_{gid}.json").read_text())
        assert state["gid"] == gid
        assert state["sections"][0]["name"].endswith("soma[0]")
        assert state["synapses"] and all("synapseID" in s["params"] for s in state["synapses"])
        assert state["netcons"]


def test_hoc_library_path_is_searched_first(small_config, tmp_path):
    """A user's HOC_LIBRARY_PATH entry overrides a file of the driver's own HOC library that a
    template loads by name (as templates written against ndmorph.hoc do)."""
    from neurodamus import paths

    circuit = tmp_path / "circuit"
    shutil.copytree(small_config.parent, circuit, ignore=shutil.ignore_patterns("output"))
    for template in (circuit / "emodels").glob("*.hoc"):
        template.write_text('{load_file("ndmorph.hoc")}\n' + template.read_text())
    user_lib = tmp_path / "hoc"
    user_lib.mkdir()
    text = (paths.hoc_dir() / "ndmorph.hoc").read_text()
    (user_lib / "ndmorph.hoc").write_text('print "USER-NDMORPH"\n' + text)
    config = circuit / small_config.name
    res = run_neurodamus([config, f"--output-path={tmp_path / 'out'}"],
                         env=base_env(HOC_LIBRARY_PATH=str(user_lib)))
    assert res.returncode == 0, res.stderr[-2000:]
    assert "USER-NDMORPH" in res.stdout
    plain = run_neurodamus([config, f"--output-path={tmp_path / 'out2'}"])
    assert "USER-NDMORPH" not in plain.stdout
    assert spikes_equal(read_spikes(tmp_path / "out" / "out.h5"),
                        read_spikes(tmp_path / "out2" / "out.h5"))
