"""``sinusoidal``: a sampled sine current (contract §4.2)."""

from __future__ import annotations

from . import signals
from .sources import inject


def build_sinusoidal(run, block) -> list:
    stim = block.stim
    if stim.frequency <= 0:
        return []
    t, v = signals.sinusoid(stim.delay, stim.duration, stim.amp_start, stim.frequency, stim.dt)
    objects = []
    for target in run.targets(block):
        objects.extend(inject(run, block, target, t, v))
    return objects


__all__ = ["build_sinusoidal"]
