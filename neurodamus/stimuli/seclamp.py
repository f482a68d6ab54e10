"""``seclamp``: a plain NEURON ``SEClamp`` holding the voltage (contract §4.2)."""

from __future__ import annotations

import numpy as np

from .sources import Source


def level_schedule(duration_levels, voltage_levels) -> tuple[np.ndarray, np.ndarray]:
    """Switch times (cumulative sums, inclusive) and the voltages that start there."""
    return (np.cumsum(np.asarray(duration_levels, dtype=float)),
            np.asarray(voltage_levels, dtype=float))


def build_seclamp(run, block) -> list:
    h, stim, objects = run.h, block.stim, []
    levels = list(stim.duration_levels or [])
    for target in run.targets(block):
        for sec, x in target.points:
            clamp = h.SEClamp(x, sec=sec)
            clamp.rs = stim.series_resistance
            clamp.dur1 = stim.duration
            clamp.amp1 = stim.voltage
            tvec = vvec = None
            if levels:
                times, volts = level_schedule(levels, stim.voltage_levels)
                tvec, vvec = h.Vector(times), h.Vector(volts)
                vvec.play(clamp._ref_amp1, tvec, 0)      # discrete: switch at each time
            objects.append(Source(block.name, target.cell.gid, clamp, tvec, vvec, "amp1"))
    return objects


__all__ = ["build_seclamp", "level_schedule"]
