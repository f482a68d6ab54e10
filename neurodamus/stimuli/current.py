"""Deterministic current-clamp steps and ramps: ``linear``, ``relative_linear``,
``subthreshold``, ``hyperpolarizing`` (contract §4.2, §11.1)."""

from __future__ import annotations

from . import signals
from .sources import inject


def _threshold(cell) -> float:
    return float(cell.attrs.get("threshold_current", 0.0))


def _ramp(run, block, amplitudes) -> list:
    """The ``linear`` skeleton on every point of every target; ``amplitudes(cell)`` -> (a0, a1)."""
    stim, objects = block.stim, []
    for target in run.targets(block):
        a0, a1 = amplitudes(target.cell)
        t, v = signals.linear(stim.delay, stim.duration, a0, a1)
        objects.extend(inject(run, block, target, t, v))
    return objects


def build_linear(run, block) -> list:
    stim = block.stim
    if stim.amp_start == 0 and stim.amp_end == 0:
        return []
    return _ramp(run, block, lambda cell: (stim.amp_start, stim.amp_end))


def build_relative_linear(run, block) -> list:
    stim = block.stim
    if stim.percent_start == 0 and stim.percent_end == 0:
        return []
    return _ramp(run, block, lambda cell: (_threshold(cell) * (stim.percent_start / 100),
                                           _threshold(cell) * (stim.percent_end / 100)))


def build_subthreshold(run, block) -> list:
    def amps(cell):
        a = _threshold(cell) * (100 - block.stim.percent_less) / 100   # multiply, then divide
        return a, a
    return _ramp(run, block, amps)


def build_hyperpolarizing(run, block) -> list:
    """A step of +holding_current (no sign flip, contract §11.1); never a no-op."""
    def amps(cell):
        hold = float(cell.attrs.get("holding_current", 0.0))
        return hold, hold
    return _ramp(run, block, amps)


__all__ = [
    "build_hyperpolarizing",
    "build_linear",
    "build_relative_linear",
    "build_subthreshold",
]
