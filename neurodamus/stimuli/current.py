"""Current-clamp step inputs: linear, relative_linear, hyperpolarizing, subthreshold."""

from __future__ import annotations

from ..errors import ConfigError
from .signals import step_points
from .targets import local_target_cells, soma_points


def current_source(h, sec, x, times, values, electrode: bool):
    """MembraneCurrentSource (default) or IClamp with ``amp`` played continuously (§4.1)."""
    src = h.IClamp(x, sec=sec) if electrode else h.MembraneCurrentSource(x, sec=sec)
    src.dur = float(times[-1])
    setattr(src, "del", 0.0)
    tvec, avec = h.Vector(times), h.Vector(values)
    avec.play(src._ref_amp, tvec, 1)
    return src, tvec, avec


def _check_common(ctx, name, stim):
    if stim.duration < 0:
        raise ConfigError(f"{ctx.settings.config_path}: inputs.{name}.duration: must be >= 0, "
                          f"got {stim.duration}")


def _inject(ctx, name, stim, amplitude_of_cell, skip_zero=True):
    _check_common(ctx, name, stim)
    objects = []
    electrode = bool(stim.represents_physical_electrode)
    for cell in local_target_cells(ctx, name, stim):
        a0, a1 = amplitude_of_cell(cell)
        if skip_zero and a0 == 0 and a1 == 0:
            continue
        t, v = step_points(stim.delay, stim.duration, a0, a1)
        for sec, x in soma_points(cell):
            objects.append(current_source(ctx.h, sec, x, t, v, electrode))
    return objects


def build_linear(ctx, name, stim):
    return _inject(ctx, name, stim, lambda cell: (stim.amp_start, stim.amp_end))


def build_relative_linear(ctx, name, stim):
    def amps(cell):
        thr = cell.attrs.get("threshold_current", 0.0)
        return thr * (stim.percent_start / 100.0), thr * (stim.percent_end / 100.0)
    return _inject(ctx, name, stim, amps)


def build_hyperpolarizing(ctx, name, stim):
    def amps(cell):
        hold = cell.attrs.get("holding_current", 0.0)
        return hold, hold
    return _inject(ctx, name, stim, amps, skip_zero=False)


def build_subthreshold(ctx, name, stim):
    def amps(cell):
        a = cell.attrs.get("threshold_current", 0.0) * (100.0 - stim.percent_less) / 100.0
        return a, a
    return _inject(ctx, name, stim, amps)
