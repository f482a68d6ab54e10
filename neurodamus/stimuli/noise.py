"""``noise``: Gaussian current samples every 0.5 ms (contract §4.2, §3.7)."""

from __future__ import annotations

from . import signals
from .rng import NeuronRandom, stream_ids
from .sources import inject


def noise_moments(stim, cell) -> tuple[float, float]:
    """(mean, variance): absolute, or relative to the threshold current (left to right)."""
    if stim.mean_percent is not None:
        threshold = float(cell.attrs.get("threshold_current", 0.0))
        return threshold * stim.mean_percent / 100, threshold * stim.variance / 100
    return stim.mean, stim.variance


def build_noise(run, block) -> list:
    """One RNG per cell, shared by its points; the block counter k_noise always advances."""
    stim, objects = block.stim, []
    k = run.counters["noise"]
    try:
        for target in run.targets(block):
            cell = target.cell
            mean, variance = noise_moments(stim, cell)
            if not variance > 0:
                raise block.error("variance", f"gid {cell.gid}: the variance is {variance} "
                                  f"(threshold_current {cell.attrs.get('threshold_current')}); "
                                  f"it must be > 0")
            rng = NeuronRandom(run.h, stream_ids("noise", k, run.stimulus_seed, cell.gid))
            for point in target.points:
                t, v = signals.noise(rng, stim.delay, stim.duration, mean, variance, run.dt)
                objects.extend(inject(run, block, type(target)(cell, [point]), t, v))
    finally:
        run.counters["noise"] = k + 1
    return objects


__all__ = ["build_noise", "noise_moments"]
