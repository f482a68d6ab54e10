"""Large report arrays with their pages mapped at once.

An lfp report holds rows of compartment currents (under CoreNEURON a whole chunk: 704 MB per
rank for 50 ms of the 4000-cell circuit), its weights and its output, each written once
before it is read. NumPy backs large arrays with transparent huge pages, faulted in one by
one at first touch; on the VM of ``docs/performance.md`` that first touch cost 0.1-4.6 s for
704 MB from one process to the next (depending on the host's memory), against 0.3-0.8 s for
an anonymous mapping of small pages populated by the ``mmap`` call itself (``MAP_POPULATE``),
and the lfp product over such rows took the same time within 10 %. On bare metal both are
cheap (the kernel zeroing the pages).
"""

from __future__ import annotations

import mmap

import numpy as np

#: smaller arrays come from NumPy (a mapping of their own would waste its rounding)
MIN_MAPPED_BYTES = 1 << 20


def mapped_empty(shape, dtype=np.float64) -> np.ndarray:
    """Like ``np.empty`` (the values are zeros, but callers must not rely on it), with every
    page mapped by one system call when the array is large. The mapping is released with
    the array."""
    shape = (int(shape),) if np.ndim(shape) == 0 else tuple(int(s) for s in shape)
    dtype = np.dtype(dtype)
    count = int(np.prod(shape, dtype=np.int64))
    nbytes = count * dtype.itemsize
    populate = getattr(mmap, "MAP_POPULATE", 0)
    if nbytes < MIN_MAPPED_BYTES or not populate:
        return np.empty(shape, dtype)
    try:
        mapping = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | populate)
    except OSError as exc:
        raise MemoryError(f"cannot map {nbytes / 2**20:.0f} MiB for a report buffer: "
                          f"{exc.strerror or exc}") from exc
    return np.frombuffer(mapping, dtype, count=count).reshape(shape)


__all__ = ["MIN_MAPPED_BYTES", "mapped_empty"]
