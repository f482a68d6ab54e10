"""The NEURON side of current and conductance inputs (contract §4.1).

A current signal drives ``MembraneCurrentSource`` (a membrane current, the default) or ``IClamp``
(``represents_physical_electrode: true``); a conductance signal drives ``ConductanceSource`` or
``SEClamp``. The amplitude (``amp``) or series resistance (``rs``) is played with NEURON's
continuous ``Vector.play``; ``del = 0`` and the duration is the last time point of the signal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .signals import conductance_to_rs


@dataclass
class Source:
    """One point source and the vectors it plays (kept referenced for the whole run)."""

    input_name: str
    gid: int
    point: object       # the point process
    tvec: object        # hoc Vector of times
    vvec: object        # hoc Vector of played values (amp in nA, or rs in MΩ)
    variable: str       # "amp" or "rs"
    extra: tuple = ()

    def signal(self) -> tuple[np.ndarray, np.ndarray]:
        return self.tvec.as_numpy().copy(), self.vvec.as_numpy().copy()


def current_source(h, input_name, gid, sec, x, times, values, electrode: bool) -> Source:
    pp = h.IClamp(x, sec=sec) if electrode else h.MembraneCurrentSource(x, sec=sec)
    setattr(pp, "del", 0.0)
    pp.dur = float(times[-1])
    tvec, vvec = h.Vector(np.asarray(times, float)), h.Vector(np.asarray(values, float))
    vvec.play(pp._ref_amp, tvec, 1)
    return Source(input_name, gid, pp, tvec, vvec, "amp")


def conductance_source(h, input_name, gid, sec, x, times, g, reversal: float,
                       electrode: bool) -> Source:
    t, rs = conductance_to_rs(times, g)
    pp = h.SEClamp(x, sec=sec) if electrode else h.ConductanceSource(x, sec=sec)
    pp.amp1 = reversal
    pp.dur1 = float(t[-1])
    tvec, vvec = h.Vector(t), h.Vector(rs)
    vvec.play(pp._ref_rs, tvec, 1)
    return Source(input_name, gid, pp, tvec, vvec, "rs")


def inject(run, block, target, times, values, reversal=None) -> list[Source]:
    """One source per point of ``target`` playing (times, values): current or conductance."""
    h, gid, out = run.h, target.cell.gid, []
    for sec, x in target.points:
        if block.conductance:
            out.append(conductance_source(h, block.name, gid, sec, x, times, values,
                                          block.stim.reversal if reversal is None else reversal,
                                          block.electrode))
        else:
            out.append(current_source(h, block.name, gid, sec, x, times, values,
                                      block.electrode))
    return out


__all__ = ["Source", "conductance_source", "current_source", "inject"]
