"""``ornstein_uhlenbeck`` and ``relative_ornstein_uhlenbeck`` (contract §4.2, §4.5)."""

from __future__ import annotations

from . import signals
from .rng import NeuronRandom, stream_ids
from .shot_noise import reference_value
from .sources import inject


def ou_moments(block, cell) -> tuple[float, float]:
    """(mean, sigma) of the process for one cell."""
    stim = block.stim
    if block.module == "relative_ornstein_uhlenbeck":
        ref = reference_value(block, cell)
        sigma, mean = (stim.sd_percent / 100) * ref, (stim.mean_percent / 100) * ref
        if not sigma > 0:
            raise block.error("sd_percent", f"gid {cell.gid}: the signal SD is {sigma}; it "
                              f"must be > 0")
        return mean, sigma
    return stim.mean, stim.sigma


def build_ornstein_uhlenbeck(run, block) -> list:
    """Both OU modules; they share the counter k_ou, which advances for every block."""
    stim, objects = block.stim, []
    k = run.counters["ornstein_uhlenbeck"]
    try:
        for target in run.targets(block):
            cell = target.cell
            mean, sigma = ou_moments(block, cell)
            ids = stream_ids("ornstein_uhlenbeck", k, run.stimulus_seed, cell.gid,
                             stim.random_seed)
            rng = NeuronRandom(run.h, ids)   # fresh per cell; every point gets the same signal
            t, v = signals.ornstein_uhlenbeck(rng, stim.delay, stim.duration, stim.tau, sigma,
                                              mean, stim.dt)
            objects.extend(inject(run, block, target, t, v))
    finally:
        run.counters["ornstein_uhlenbeck"] = k + 1
    return objects


__all__ = ["build_ornstein_uhlenbeck", "ou_moments"]
