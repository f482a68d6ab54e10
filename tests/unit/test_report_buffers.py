"""Report buffers mapped at once (reports/buffers.py)."""

from __future__ import annotations

import mmap

import numpy as np
import pytest

from neurodamus.reports.buffers import MIN_MAPPED_BYTES, mapped_empty


@pytest.mark.skipif(not hasattr(mmap, "MAP_POPULATE"), reason="no MAP_POPULATE on this OS")
def test_large_arrays_get_a_mapping_of_their_own():
    rows = mapped_empty((3, MIN_MAPPED_BYTES // 8))
    assert rows.shape == (3, MIN_MAPPED_BYTES // 8) and rows.dtype == np.float64
    assert rows.flags.c_contiguous and rows.flags.writeable
    owner = rows
    while isinstance(owner, np.ndarray):
        owner = owner.base
    assert isinstance(owner, memoryview) and isinstance(owner.obj, mmap.mmap)
    rows[2, -1] = 5.0
    rows[0] = np.arange(rows.shape[1])
    assert rows[2, -1] == 5.0 and rows[0, 7] == 7.0
    flat = mapped_empty(MIN_MAPPED_BYTES, np.float32)   # a bare count, another dtype
    assert flat.shape == (MIN_MAPPED_BYTES,) and flat.dtype == np.float32
    flat[-1] = 1.5
    assert flat[-1] == np.float32(1.5)


def test_small_arrays_come_from_numpy():
    small = mapped_empty((2, 3), np.float32)
    assert small.shape == (2, 3) and small.dtype == np.float32 and small.base is None
