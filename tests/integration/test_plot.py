"""``neurodamus plot OUTPUT_DIR``: pictures of a real run (raster, rates, soma traces)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from neurodamus.tools.example import write_example
from neurodamus.tools.mechanisms import build_mechanisms
from tests.helpers import run_neurodamus

pytestmark = pytest.mark.mpi
pytest.importorskip("matplotlib", reason="pip install 'neurodamus[plots]' (in the test extra)")

TSTOP = 400.0


@pytest.fixture(scope="module")
def run_output(tmp_path_factory):
    """A 2-rank run of 30 cells with a soma voltage report, then ``neurodamus plot``."""
    config = write_example(tmp_path_factory.mktemp("plot"), n_cells=30, tstop=TSTOP, seed=4)
    build_mechanisms([config.parent / "mechanisms"], log=lambda *_: None)
    sim = json.loads(config.read_text())
    sim["reports"] = {"soma": {"type": "compartment", "cells": "Cortex", "variable_name": "v",
                               "sections": "soma", "dt": 0.5, "start_time": 0.0,
                               "end_time": TSTOP}}
    config.write_text(json.dumps(sim, indent=2))
    out = config.parent / "output"
    res = run_neurodamus([config], ranks=2, cwd=config.parent)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    plot = run_neurodamus(["plot", out])
    assert plot.returncode == 0, plot.stdout + plot.stderr
    return out, plot.stdout


def _picture(path: Path):
    import matplotlib.image

    image = matplotlib.image.imread(str(path))
    return image[..., :3]


def _ink(image) -> float:
    """Fraction of pixels that are not (near) white."""
    return float((image.min(axis=2) < 0.9).mean())


@pytest.mark.parametrize("name", ["plot_raster_cortex.png", "plot_rates.png",
                                  "plot_report_soma.png"])
def test_pictures_exist_with_content(run_output, name):
    out, stdout = run_output
    path = out / name
    assert path.is_file(), stdout
    assert 5_000 < path.stat().st_size < 500_000
    image = _picture(path)
    assert image.shape[0] >= 300 and image.shape[1] >= 500
    assert 0.01 < _ink(image) < 0.6            # drawn on, not a blank or a filled canvas
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 8


def test_raster_has_spikes_in_the_plot_area(run_output):
    image = _picture(run_output[0] / "plot_raster_cortex.png")
    height, width = image.shape[:2]
    area = image[int(0.1 * height):int(0.55 * height), int(0.12 * width):int(0.95 * width)]
    coloured = (area[..., 2] - area[..., 0]) > 0.2   # the blue of the first population
    assert coloured.mean() > 0.001


def test_pictures_join_the_run_record(run_output):
    out = run_output[0]
    record = json.loads((out / "neurodamus_run.json").read_text())
    assert {"plot_raster_cortex.png", "plot_rates.png", "plot_report_soma.png"} <= \
        set(record["files"])


def test_missing_matplotlib_is_explained(run_output, tmp_path):
    fake = tmp_path / "no_mpl" / "matplotlib"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('matplotlib is not installed')\n")
    from tests.helpers import base_env

    res = run_neurodamus(["plot", run_output[0], f"--output={tmp_path / 'pics'}"],
                         env=base_env(PYTHONPATH=str(fake.parent)))
    assert res.returncode == 1
    assert "pip install 'neurodamus[plots]'" in res.stderr


def test_folder_without_outputs_is_explained(tmp_path):
    res = run_neurodamus(["plot", tmp_path])
    assert res.returncode == 1
    assert f"{tmp_path}: no SONATA spike file or report found" in res.stderr


def test_plot_usage_is_in_the_main_help():
    res = run_neurodamus(["--help"])
    assert "neurodamus plot <output_dir>" in res.stdout
    assert "neurodamus doctor" in res.stdout
