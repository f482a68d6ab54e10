"""Random streams of stochastic inputs (contract §3.7, §3.8).

``stream_ids`` is pure: the Random123 ids of each input family. ``NeuronRandom`` is the tiny
adapter between NEURON's ``Random`` and the signal code in ``signals.py``; any object with the
same five methods (e.g. a numpy stand-in in the unit tests) can take its place.
"""

from __future__ import annotations

import numpy as np

#: family -> (id1 offset, id2 offset, id3 offset when the id comes from the gid)
_STREAMS = {
    "noise": (100, 500, 301),
    "shot_noise": (2997, 19216, 124),
    "ornstein_uhlenbeck": (2997, 291204, 124),
}


def stream_ids(family: str, counter: int, stimulus_seed: int, gid: int,
               random_seed: int | None = None) -> tuple[int, int, int]:
    """(id1, id2, id3) for an input of ``family`` (contract §3.7).

    ``counter`` is the family's block counter (k_noise, k_shot or k_ou, contract §4.1). With an
    input ``random_seed`` (shot noise and OU only) id3 is that seed for every cell.
    """
    o1, o2, o3 = _STREAMS[family]
    id3 = gid + o3 if random_seed is None else random_seed
    return counter + o1, stimulus_seed + o2, id3


class NeuronRandom:
    """NEURON ``Random`` on a Random123 stream; the global index is set once by the engine.

    Every distribution call (``normal``, ``uniform``, ``negexp``) selects a new distribution
    and returns one draw; ``repick`` and ``fill`` draw from the current one (contract §3.8).
    """

    def __init__(self, h, ids):
        self._h = h
        self.ids = tuple(int(i) for i in ids)
        self._r = h.Random()
        self._r.Random123(*self.ids)

    def normal(self, mean, variance) -> float:
        return self._r.normal(mean, variance)

    def uniform(self, low, high) -> float:
        return self._r.uniform(low, high)

    def negexp(self, mean) -> float:
        return self._r.negexp(mean)

    def repick(self) -> float:
        return self._r.repick()

    def fill(self, n: int) -> np.ndarray:
        """``n`` draws from the current distribution (``Vector.setrand``)."""
        if n <= 0:
            return np.zeros(0)
        vec = self._h.Vector(int(n))
        vec.setrand(self._r)
        return vec.as_numpy().copy()


__all__ = ["NeuronRandom", "stream_ids"]
