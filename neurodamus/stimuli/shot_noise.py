"""Shot noise: ``shot_noise``, ``relative_shot_noise``, ``absolute_shot_noise``
(contract §4.2–§4.4). Poisson bi-exponential shots with gamma amplitudes."""

from __future__ import annotations

from . import signals
from .rng import NeuronRandom, stream_ids
from .sources import inject


def reference_value(block, cell) -> float:
    """R of the relative modules: threshold current (nA), or 1/input resistance (µS)."""
    if block.conductance:
        resistance = float(cell.attrs.get("@dynamics:input_resistance", 0.0))
        if not resistance > 0:
            raise block.error("input_type", f"gid {cell.gid}: conductance mode needs a positive "
                              f"@dynamics:input_resistance, got {resistance}")
        return 1.0 / resistance
    return float(cell.attrs.get("threshold_current", 0.0))


def _is_noop(block) -> bool:
    stim = block.stim
    if int(stim.duration / stim.dt) == 0:
        return True
    if block.module == "shot_noise":
        return stim.rate <= 0
    if block.module == "relative_shot_noise":
        return stim.mean_percent == 0
    return stim.mean == 0


def shot_parameters(block, cell) -> signals.ShotNoiseParams:
    stim = block.stim
    if block.module == "shot_noise":
        return signals.ShotNoiseParams(float(stim.rate), stim.amp_mean, stim.amp_var)
    if block.module == "relative_shot_noise":
        ref = reference_value(block, cell)
        mean, sigma = (stim.mean_percent / 100) * ref, (stim.sd_percent / 100) * ref
    else:
        mean, sigma = stim.mean, stim.sigma
    if mean == 0 or not sigma > 0:
        raise block.error(None, f"gid {cell.gid}: signal mean {mean} and SD {sigma} give no "
                          f"shot noise (the mean must be non-zero and the SD positive)")
    return signals.shot_noise_params(mean, sigma, stim.rise_time, stim.decay_time,
                                     stim.relative_skew)


def build_shot_noise(run, block) -> list:
    """All three shot-noise modules; no-op blocks leave the shared counter k_shot alone."""
    if _is_noop(block):
        return []
    stim, objects = block.stim, []
    k = run.counters["shot_noise"]
    try:
        for target in run.targets(block):
            cell = target.cell
            params = shot_parameters(block, cell)
            ids = stream_ids("shot_noise", k, run.stimulus_seed, cell.gid, stim.random_seed)
            # a fresh RNG per point with the same ids: every point of a cell gets this signal
            rng = NeuronRandom(run.h, ids)
            try:
                t, v = signals.shot_noise(rng, stim.delay, stim.duration, stim.rise_time,
                                          stim.decay_time, params.rate, params.amp_mean,
                                          params.amp_var, stim.dt)
            except ValueError as exc:
                raise block.error(None, f"gid {cell.gid}: {exc}") from None
            objects.extend(inject(run, block, target, t, v))
    finally:
        run.counters["shot_noise"] = k + 1
    return objects


__all__ = ["build_shot_noise", "reference_value", "shot_parameters"]
