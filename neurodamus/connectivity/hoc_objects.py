"""Per-synapse NEURON objects made on the hoc side and kept in hoc Lists.

NEURON 9.0.2 leaks one Python wrapper (96 B) for every object constructed from Python, and a
Python list keeps another wrapper per object alive. With hundreds of synapses per cell this is
~0.75 kB per synapse (with its minis generator), so the per-synapse objects are made by the
hoc procedures of ``core/hoc/ndconnect.hoc`` (``ndminis.hoc`` for the minis generators, which
need InhPoissonStim) and referenced from hoc Lists only.
"""

from __future__ import annotations

import re

from ..errors import LaunchError
from ..paths import hoc_dir

#: HOC file of core/hoc -> a name it defines (loaded once per process)
FILES = {"ndconnect.hoc": "nd_event_netcon", "ndminis.hoc": "nd_minis_generator"}


def load(h, name: str = "ndconnect.hoc") -> None:
    """Load the driver's HOC file ``name`` (core/hoc) once per process."""
    if h.name_declared(FILES[name]):
        return
    path = hoc_dir() / name
    try:
        ok = path.is_file() and h.load_file(str(path))
    except RuntimeError:   # hoc errors (e.g. a template it names does not exist)
        ok = False
    if not ok:
        raise LaunchError(f"cannot load the driver's HOC file {path} (incomplete installation "
                          f"or a mechanism of core/mod missing? run 'neurodamus doctor')")


def point_process_factory(h, mechanism: str):
    """``make(x, sec=sec)`` creating a ``mechanism`` point process from hoc."""
    if not re.fullmatch(r"[A-Za-z_]\w*", mechanism):
        raise ValueError(f"not a mechanism name: {mechanism!r}")
    name = f"nd_new_{mechanism}"
    if not h.name_declared(name):
        h(f"obfunc {name}() {{ localobj pp  pp = new {mechanism}($1)  return pp }}")
    return getattr(h, name)


class ObjectList:
    """A hoc List with the Python list operations the driver uses (len, iteration, append)."""

    def __init__(self, h):
        self.hoc = h.List()

    def append(self, obj) -> None:
        self.hoc.append(obj)

    def __len__(self) -> int:
        return int(self.hoc.count())

    def __iter__(self):
        hoc = self.hoc
        for i in range(int(hoc.count())):
            yield hoc.o(i)

    def __getitem__(self, i: int):
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(i)
        return self.hoc.o(i)


class SpikeTrainSources:
    """VecStims replaying spike trains, one train per key (an input and its source node).

    By default every call for a key returns the key's one VecStim (a NetCon per synapse from
    it). ``per_synapse`` (runs that save or restore checkpoints) gives every call a VecStim of
    its own playing the key's Vector: a gid-keyed checkpoint (``engine/gid_state.py``) saves a
    gid-less source with the one synapse it drives. The events each synapse gets are the same.
    In that mode no shared VecStim is made (one driving nothing changed CoreNEURON's spikes on
    2 ranks)."""

    def __init__(self, h, per_synapse: bool = False):
        self.h, self.per_synapse = h, per_synapse
        self._trains = {}   # key -> (Vector, shared VecStim or None)
        self._own = []      # the per-synapse VecStims, kept alive

    def get(self, key, times):
        train = self._trains.get(key)
        if train is None:
            vec = self.h.Vector(times)
            shared = None
            if not self.per_synapse:
                shared = self.h.VecStim()
                shared.play(vec)
            train = self._trains[key] = (vec, shared)
        if not self.per_synapse:
            return train[1]
        stim = self.h.VecStim()
        stim.play(train[0])
        self._own.append(stim)
        return stim


__all__ = ["ObjectList", "SpikeTrainSources", "load", "point_process_factory"]
