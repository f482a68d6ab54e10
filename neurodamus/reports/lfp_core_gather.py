"""The driver's handle on ``NdCoreImemGather`` (``core/mod/CoreImemGather.mod``) inside
CoreNEURON's mechanism library: lfp reports under CoreNEURON get their compartment currents
copied into their row buffers by CoreNEURON's own step, at report steps only.

The library is the one CoreNEURON runs (``CORENEURONLIB``); opening it here gives the same
loaded copy NEURON hands the model to, so the buffers registered here are those the step
fills. A buffer is registered again before every ``psolve`` (its first row moves with the
flushes) and must stay alive until the next registration or ``clear``.

A flush registered with ``on_full`` is called from inside CoreNEURON's step when a report row
finds the buffer full, on the thread that called ``psolve`` (ctypes takes the GIL). It must not
raise (ctypes would print and drop the exception): it returns the buffer's new first row, or
-1 to stop the gather and the run on every rank.
"""

from __future__ import annotations

import ctypes
import logging

import numpy as np

log = logging.getLogger(__name__)

MAX_SLOTS = 64   # ND_MAX_GATHERS of the mod file

#: ``long on_full(int slot, long row)`` of the mod file
ON_FULL = ctypes.CFUNCTYPE(ctypes.c_long, ctypes.c_int, ctypes.c_long)


class CoreImemGather:
    """ctypes functions of one CoreNEURON mechanism library."""

    def __init__(self, lib: ctypes.CDLL):
        self._set = lib.nd_core_imem_gather_set
        self._set.restype = ctypes.c_int
        self._set.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                              ctypes.c_void_p] + [ctypes.c_long] * 5 + \
            [ctypes.c_double, ctypes.c_void_p, ctypes.c_long]
        self._clear = lib.nd_core_imem_gather_clear
        self._clear.restype = None
        self._clear.argtypes = [ctypes.c_int]
        self._problems = lib.nd_core_imem_gather_problems
        self._problems.restype = ctypes.c_long
        self._problems.argtypes = [ctypes.c_int, ctypes.c_int]
        self._on_full = getattr(lib, "nd_core_imem_gather_on_full", None)   # older builds lack it
        if self._on_full is not None:
            self._on_full.restype = ctypes.c_int
            self._on_full.argtypes = [ctypes.c_int, ON_FULL]
        self._plan = getattr(lib, "nd_core_imem_gather_plan", None)   # older builds lack it
        if self._plan is not None:
            self._plan.restype = ctypes.c_int
            self._plan.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_long]
        self._plans = {}       # slot -> its plan, alive while registered
        self._callbacks = {}   # slot -> the ctypes callback, alive while registered
        self._next_slot = 0

    @property
    def flushes_in_step(self) -> bool:
        """Whether the library can call a flush from CoreNEURON's step (``on_full``)."""
        return self._on_full is not None

    @property
    def computes_axial(self) -> bool:
        """Whether the library can compute the currents from the voltages (``set_plan``)."""
        return self._plan is not None

    @classmethod
    def open(cls, path) -> CoreImemGather | None:
        """The library's gather functions, or None (a library built without core/mod's
        CoreImemGather.mod, or none at all)."""
        if not path:
            return None
        try:
            return cls(ctypes.CDLL(str(path)))
        except (OSError, AttributeError) as exc:
            log.debug("CoreNEURON library %s: no in-step gather (%s)", path, exc)
            return None

    def new_slot(self) -> int:
        if self._next_slot >= MAX_SLOTS:
            raise RuntimeError(f"more than {MAX_SLOTS} lfp reports under CoreNEURON")
        self._next_slot += 1
        return self._next_slot - 1

    def register(self, slot: int, index: np.ndarray, rows: np.ndarray, have: np.ndarray,
                 grid, first_row: int, dt: float, last: np.ndarray, last_step: int) -> None:
        """Rows ``first_row``, ``first_row + 1``, ... of ``grid`` go into ``rows`` [capacity x
        len(index)] (float64, C order) and set ``have`` (bool); rows already set are kept.
        The currents of step ``last_step`` also go into ``last``."""
        assert index.dtype == np.int32 and rows.dtype == np.float64 and have.dtype == np.bool_
        assert rows.flags.c_contiguous and have.flags.c_contiguous
        assert rows.shape == (len(have), len(index)) and last.shape == (len(index),)
        assert last.dtype == np.float64 and last.flags.c_contiguous
        code = self._set(slot, len(index), index.ctypes.data, rows.ctypes.data,
                         have.ctypes.data, len(have), int(grid.first_step), int(grid.period),
                         int(grid.n_steps), int(first_row), float(dt), last.ctypes.data,
                         int(last_step))
        if code != 0:
            raise RuntimeError(f"nd_core_imem_gather_set refused slot {slot}")

    def set_plan(self, slot: int, plan: np.ndarray) -> None:
        """After ``register``: the currents are computed from the voltages with ``plan``
        (``lfp_axial.axial_plan``) instead of read from fast ``i_membrane_``."""
        plan = np.ascontiguousarray(plan, np.int32)
        if self._plan(slot, plan.ctypes.data, len(plan)) != 0:
            raise RuntimeError(f"nd_core_imem_gather_plan refused slot {slot}")
        self._plans[slot] = plan

    def on_full(self, slot: int, flush) -> None:
        """After ``register``: ``flush(row)`` is called when report row ``row`` finds the
        buffer full; it returns the buffer's new first row (-1: stop)."""
        callback = ON_FULL(lambda _slot, row: flush(row))
        if self._on_full(slot, callback) != 0:
            raise RuntimeError(f"nd_core_imem_gather_on_full refused slot {slot}")
        self._callbacks[slot] = callback

    def problems(self, slot: int) -> tuple[int, int]:
        """(report rows beyond the buffer, node indices outside the thread) so far."""
        return int(self._problems(slot, 0)), int(self._problems(slot, 1))

    def clear(self, slot: int = -1) -> None:
        self._clear(slot)
        if slot < 0:
            self._callbacks.clear()
            self._plans.clear()
        else:
            self._callbacks.pop(slot, None)
            self._plans.pop(slot, None)


__all__ = ["CoreImemGather"]
