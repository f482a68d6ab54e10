"""Both engines honour the driver's subnormal flush: a conductance decaying as
exp(-t/tau) follows the analytic curve down to the smallest normal double either way; below
it, IEEE arithmetic gives subnormal values and the flush gives exact zeros."""

import subprocess
import sys

import numpy as np
import pytest

from neurodamus.subnormals import _register
from tests.helpers import ROOT, base_env
from tests.scientific.decay_probe import DT, TAU

pytestmark = pytest.mark.skipif(_register() is None,
                                reason="no known floating-point control register here")

SMALLEST_NORMAL = sys.float_info.min


def decay(engine, mode, tmp_path):
    out = tmp_path / f"{engine}-{mode}.npy"
    env = base_env(PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-m", "tests.scientific.decay_probe", engine, mode,
                             str(out)], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return np.load(out), result.stdout


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("decay")
    return {(e, m): decay(e, m, tmp) for e in ("NEURON", "CORENEURON")
            for m in ("flush", "keep")}


def analytic_tail(g):
    """From the first step after the event (weight 1, delivered at a step's start):
    exp(-(n + 1) dt / tau)."""
    start = int(np.argmax(g))
    assert np.all(g[:start] == 0.0)
    return start, np.exp(-np.arange(1, len(g) - start + 1) * DT / TAU)


@pytest.mark.parametrize("engine", ["NEURON", "CORENEURON"])
def test_flushed_below_the_smallest_normal_and_exact_above(runs, engine):
    kept, kept_state = runs[engine, "keep"]
    flushed, flushed_state = runs[engine, "flush"]
    assert "kept (IEEE)" in kept_state and "flushed to zero" in flushed_state
    start, expected = analytic_tail(kept)
    normal = expected > 1e3 * SMALLEST_NORMAL
    assert normal.sum() > 250 and (~normal).sum() > 10
    for g in (kept, flushed):
        np.testing.assert_allclose(g[start:][normal], expected[normal], rtol=1e-9)
    assert np.array_equal(kept[:start], flushed[:start])
    below = (expected < 1e-3 * SMALLEST_NORMAL) & (expected > 1e3 * 5e-324)
    assert below.sum() >= 5
    assert np.all(kept[start:][below] > 0) and np.all(kept[start:][below] < SMALLEST_NORMAL)
    assert np.all(flushed[start:][~normal & (flushed[start:] != 0)] >= SMALLEST_NORMAL)
    assert np.all(flushed[start:][below] == 0.0)


@pytest.mark.parametrize("mode", ["flush", "keep"])
def test_engines_agree_to_the_bit(runs, mode):
    assert np.array_equal(runs["NEURON", mode][0], runs["CORENEURON", mode][0])
