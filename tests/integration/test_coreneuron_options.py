"""CoreNEURON solver options (issue 21): --cell-permute, --model-stats, --enable-shm, with
the spikes and reports of the NEURON engine, and errors for options the run cannot use."""

from __future__ import annotations

import numpy as np
import pytest

from neurodamus.engine import core_options
from tests.helpers import read_spikes, spikes_equal
from tests.integration.test_coreneuron import (
    report_data,
    run_fails,
    run_ok,
    write_circuit,
)

pytestmark = pytest.mark.mpi


@pytest.fixture(scope="module")
def circuit(tmp_path_factory, mechanism_builds):
    return write_circuit(tmp_path_factory.mktemp("core_options"), tstop=100.0)


@pytest.fixture(scope="module")
def neuron_run(circuit, tmp_path_factory):
    folder = tmp_path_factory.mktemp("neuron")
    run_ok([circuit, f"--output-path={folder}", "--simulator=NEURON"])
    assert len(read_spikes(folder / "out.h5")["cortex"][0]) > 10
    return folder


@pytest.mark.parametrize("ranks", [1, 2])
def test_cell_permutation_keeps_spikes_and_report_values(circuit, neuron_run, tmp_path, ranks):
    run_ok([circuit, f"--output-path={tmp_path}", "--simulator=CORENEURON",
            "--cell-permute=1"], ranks=ranks)
    assert spikes_equal(read_spikes(tmp_path / "out.h5"), read_spikes(neuron_run / "out.h5"))
    if ranks == 1:
        # the permuted node order changes the order of floating-point operations: values
        # agree to float32 rounding (measured: 1.2e-10 mV in one compartment, 3e-11 nA in
        # summations), the spikes above bit for bit
        for name in ("soma", "allv", "syn", "imem", "isoma"):
            a, b = report_data(neuron_run, name), report_data(tmp_path, name)
            for key in a:
                if key not in ("time", "elements"):
                    assert np.allclose(a[key], b[key], rtol=1e-6, atol=1e-9), (name, key)


def test_model_stats_printed(circuit, tmp_path):
    res = run_ok([circuit, f"--output-path={tmp_path}", "--simulator=CORENEURON",
                  "--model-stats"])
    out = res.stdout + res.stderr
    assert "model size (bytes)" in out and "n_cell" in out


@pytest.mark.parametrize("keep", [True, False])
def test_enable_shm_file_mode(circuit, neuron_run, tmp_path, keep):
    args = [circuit, f"--output-path={tmp_path}", "--simulator=CORENEURON", "--enable-shm",
            "--keep-build" if keep else "--build-model=ON"]
    res = run_ok(args, ranks=2)
    datpath = tmp_path / "coreneuron_input"
    shm = core_options.shm_folder(datpath)
    assert f"CoreNEURON model files in {shm}" in res.stdout
    assert spikes_equal(read_spikes(tmp_path / "out.h5"), read_spikes(neuron_run / "out.h5"))
    assert not shm.exists()              # nothing left in RAM
    if keep:                              # the kept model is a real folder, and complete
        assert datpath.is_dir() and not datpath.is_symlink()
        assert (datpath / "files.dat").exists() and (datpath / "neurodamus_model.json").exists()
        run_ok([circuit, f"--output-path={tmp_path}", "--simulator=CORENEURON",
                "--build-model=OFF", "--disable-reports"], ranks=2)
        assert spikes_equal(read_spikes(tmp_path / "out.h5"), read_spikes(neuron_run / "out.h5"))
    else:
        assert not datpath.exists()


def test_solver_options_refused_with_neuron(circuit, tmp_path):
    out = run_fails([circuit, f"--output-path={tmp_path}", "--simulator=NEURON",
                     "--model-stats", "--cell-permute=1"])
    assert "--cell-permute=1, --model-stats: CoreNEURON options, but the simulator is " \
           "NEURON" in out


def test_cell_permute_2_is_for_gpus(circuit, tmp_path):
    out = run_fails([circuit, f"--output-path={tmp_path}", "--simulator=CORENEURON",
                     "--cell-permute=2"])
    assert "--cell-permute must be 0 or 1 (2 needs a GPU build of CoreNEURON), got 2" in out
