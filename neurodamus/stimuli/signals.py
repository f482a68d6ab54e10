"""Waveforms as (time, value) point lists (compatibility §4.1–§4.2). Pure numpy."""

from __future__ import annotations

import numpy as np


def step_points(delay: float, duration: float, amp_start: float, amp_end: float | None = None):
    """The ``linear`` skeleton: (t0,0),(t0,a0),(t0+T,a1),(t0+T,0), with (0,0) first if t0>0."""
    amp_end = amp_start if amp_end is None else amp_end
    t = [delay, delay, delay + duration, delay + duration]
    v = [0.0, amp_start, amp_end, 0.0]
    if delay > 0:
        t, v = [0.0] + t, [0.0] + v
    return np.asarray(t, dtype=float), np.asarray(v, dtype=float)
