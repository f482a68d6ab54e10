"""``pulse``: a train of rectangular current pulses (contract §4.2)."""

from __future__ import annotations

from . import signals
from .sources import inject


def build_pulse(run, block) -> list:
    stim = block.stim
    if stim.frequency <= 0 or stim.width <= 0:
        return []
    t, v = signals.pulse_train(stim.delay, stim.duration, stim.amp_start, stim.width,
                               stim.frequency)
    objects = []
    for target in run.targets(block):
        objects.extend(inject(run, block, target, t, v))
    return objects


__all__ = ["build_pulse"]
