"""The run's memory allocator (neurodamus/allocator.py) under real mpirun and NEURON."""

import json
import os

import pytest

from neurodamus.allocator import find_jemalloc
from tests.helpers import base_env, read_spikes, run_neurodamus, spikes_equal

pytestmark = pytest.mark.mpi


def _run(config, out, env):
    res = run_neurodamus([config, f"--output-path={out}"], ranks=2, env=env)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    return res, json.loads((out / "run_summary.json").read_text())


def test_default_preloads_jemalloc_when_present_and_spikes_do_not_change(small_config,
                                                                        tmp_path):
    jemalloc = find_jemalloc(os.environ)
    res, summary = _run(small_config, tmp_path / "default", base_env())
    if jemalloc:
        assert summary["allocator"] == {"name": "jemalloc", "library": jemalloc}
        assert f"memory allocator: jemalloc ({jemalloc})" in res.stdout
    else:   # nothing to preload: the C library's malloc, said so
        assert summary["allocator"]["name"] == "system"
    assert res.stdout.count("numprocs=2") == 1       # still one 2-rank run after the re-exec

    res, summary = _run(small_config, tmp_path / "system",
                        base_env(NEURODAMUS_ALLOCATOR="system"))
    assert summary["allocator"] == {"name": "system", "library": None}
    assert "memory allocator: system (malloc of the C library)" in res.stdout
    assert spikes_equal(read_spikes(tmp_path / "default" / "out.h5"),
                        read_spikes(tmp_path / "system" / "out.h5"))


def test_a_missing_allocator_library_stops_the_run_before_any_output(small_config, tmp_path):
    out = tmp_path / "out"
    res = run_neurodamus([small_config, f"--output-path={out}"], ranks=2,
                         env=base_env(NEURODAMUS_ALLOCATOR="/no/such/libjemalloc.so.2"))
    assert res.returncode != 0
    assert res.stderr.count("ERROR: NEURODAMUS_ALLOCATOR=/no/such/libjemalloc.so.2: not "
                            "'auto', 'system', 'jemalloc' or the path of an existing "
                            "allocator library") == 1
    assert not (out / "out.h5").exists() and not (out / "run_summary.json").exists()
