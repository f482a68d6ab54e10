import subprocess

import pytest

from neurodamus.tools.example import write_example
from neurodamus.tools.mechanisms import build_mechanisms


@pytest.fixture(scope="session")
def example_config(tmp_path_factory):
    """The bundled example circuit (default size, 1 s) with its mechanisms built once."""
    config = write_example(tmp_path_factory.mktemp("example"))
    build_mechanisms([config.parent / "mechanisms"], log=lambda *_: None)
    return config


@pytest.fixture(scope="session")
def small_config(tmp_path_factory):
    """A small, short variant for error and feature tests."""
    config = write_example(tmp_path_factory.mktemp("small"), n_cells=20, tstop=200, seed=3)
    build_mechanisms([config.parent / "mechanisms"], log=lambda *_: None)
    return config


@pytest.fixture(scope="session")
def mechanism_builds(tmp_path_factory):
    """Both flavours (NEURON, CoreNEURON) of the example's mechanisms, built once per session
    (and cached across sessions by content)."""
    mods = write_example(tmp_path_factory.mktemp("mechs"), n_cells=2, tstop=10).parent \
        / "mechanisms"
    quiet = {"log": lambda *_: None}
    return {"NEURON": build_mechanisms([mods], **quiet),
            "CORENEURON": build_mechanisms([mods], coreneuron=True, **quiet)}


@pytest.fixture
def tiny_disk(tmp_path):
    """A 48 KiB tmpfs (root only): too small for the run's report."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], capture_output=True)
