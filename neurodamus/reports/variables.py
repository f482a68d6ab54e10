"""Report variables: parse, check against the loaded mechanisms, find references (contract §8.2).

Lookup rule for a variable ``mech.var`` (a bare name ``n`` is read as ``(n, "i")``) at the
point ``sec(x)``:

1. ``i_membrane`` is NEURON's fast ``i_membrane_`` (nA) of the segment;
2. if the section holds point processes whose hoc name starts with ``mech``, the ``var`` of
   those of them that lie in the point's segment (``int(loc*nseg) == int(x*nseg)``);
3. otherwise the range variable ``sec(x).<mech>`` (``v``, ``ina``, ``gNa_NaHH``);
4. otherwise ``sec(x).<mech>.<var>`` (``pas`` -> ``pas.i``).

A bare mechanism name resolved by rule 4 (a density-mechanism current such as ``pas``) is
marked ``DENSITY_CURRENT``: its t = 0 row is 0 in compartment and summation reports, as in the
established driver's files (contract §11 item 17: that recorder samples t = 0 before the
currents are evaluated). Every later row, and every other variable, is the recorded value.

A name that no loaded mechanism can provide is an error before anything is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

I_MEMBRANE = "i_membrane"
#: point processes whose current is an electrode current: summed with factor -1 (contract §8.2)
ELECTRODE_TYPES = ("IClamp", "SEClamp")
#: the "type" ``references`` gives a bare density-mechanism current (rule 4): 0 at t = 0
DENSITY_CURRENT = "density current"


@dataclass(frozen=True)
class Variable:
    text: str
    mech: str
    var: str
    bare: bool

    @property
    def is_i_membrane(self) -> bool:
        return self.mech == I_MEMBRANE and (self.bare or self.var in ("i", ""))


def parse_variable(text: str) -> Variable:
    if "." in text:
        mech, var = text.split(".", 1)
        return Variable(text, mech, var, False)
    return Variable(text, text, "i", True)


@dataclass
class MechanismCatalog:
    """Names the loaded mechanism library provides (read once from NEURON)."""

    density: dict = field(default_factory=dict)    # mech -> set of range names (gNa_NaHH, ina)
    point: dict = field(default_factory=dict)      # type -> set of variable names

    @classmethod
    def from_neuron(cls, h) -> MechanismCatalog:
        cat = cls()
        name = h.ref("")
        for kind, target in ((0, cat.density), (1, cat.point)):
            mt = h.MechanismType(kind)
            for i in range(int(mt.count())):
                mt.select(i)
                mt.selected(name)
                mech = name[0]
                ms = h.MechanismStandard(mech, 0)
                var = h.ref("")
                names = set()
                for j in range(int(ms.count())):
                    ms.name(var, j)
                    names.add(var[0])
                target[mech] = names
        return cat

    @property
    def range_names(self) -> set:
        names = {"v"}
        for values in self.density.values():
            names |= values
        return names

    def point_types(self, prefix: str) -> list:
        return [t for t in self.point if t.startswith(prefix)]

    def problem(self, v: Variable) -> str | None:
        """Why no mechanism can provide ``v`` (None when one can)."""
        if v.is_i_membrane:
            return None
        points = self.point_types(v.mech)
        if points:
            if any(v.var in self.point[t] for t in points):
                return None
            return (f"point process {', '.join(points[:3])} has no variable '{v.var}'")
        if v.bare:
            if v.text in self.range_names:
                return None
            if v.mech in self.density:
                if f"i_{v.mech}" in self.density[v.mech]:
                    return None
                return f"mechanism '{v.mech}' has no current 'i' (name a variable: mech.var)"
            return (f"unknown variable or mechanism '{v.text}' (not a range variable, density "
                    f"mechanism or point process of the loaded mechanism library)")
        if v.mech in self.density:
            names = self.density[v.mech]
            if f"{v.var}_{v.mech}" in names or v.var in names:
                return None
            return f"mechanism '{v.mech}' has no variable '{v.var}'"
        if v.mech in self.range_names:
            return None
        return (f"unknown mechanism '{v.mech}' (not a density mechanism or point process of "
                f"the loaded mechanism library)")


def point_process_type(pp) -> str:
    return pp.hname().split("[", 1)[0]


class SectionPoints:
    """The point processes of one section with their segment index (cached per section)."""

    def __init__(self, sec):
        self.nseg = sec.nseg
        self.items = []   # (pp, type name, hname, segment index int(loc*nseg))
        for seg in sec.allseg():
            for pp in seg.point_processes():
                where = pp.get_segment()
                if where.sec != sec:   # x=0 of a child is the parent's node: not ours
                    continue
                self.items.append((pp, point_process_type(pp), pp.hname(),
                                   int(where.x * self.nseg)))

    def matching(self, prefix: str) -> list:
        return [it for it in self.items if it[2].startswith(prefix)]


class PointCache:
    def __init__(self):
        self._cache = {}

    def of(self, sec) -> SectionPoints:
        key = sec.hoc_internal_name() if hasattr(sec, "hoc_internal_name") else sec.name()
        if key not in self._cache:
            self._cache[key] = SectionPoints(sec)
        return self._cache[key]


def references(sec, x: float, v: Variable, points: SectionPoints) -> list[tuple]:
    """[(ref, kind)] for variable ``v`` at ``sec(x)`` (rules above); kind is the point-process
    type, ``DENSITY_CURRENT`` (rule 4 for a bare name) or None."""
    seg = sec(x)
    if v.is_i_membrane:
        return [(seg._ref_i_membrane_, None)]
    matches = points.matching(v.mech)
    if matches:
        k = int(x * points.nseg)
        out = []
        for pp, ptype, _, index in matches:
            if index == k:
                ref = getattr(pp, "_ref_" + v.var, None) if hasattr(pp, v.var) else None
                if ref is not None:
                    out.append((ref, ptype))
        return out
    try:
        return [(getattr(seg, "_ref_" + v.mech), None)]
    except (AttributeError, NameError, TypeError, RuntimeError):
        pass
    try:
        mech = getattr(seg, v.mech)
        return [(getattr(mech, "_ref_" + v.var), DENSITY_CURRENT if v.bare else None)]
    except (AttributeError, NameError, TypeError, RuntimeError):
        return []


__all__ = [
    "DENSITY_CURRENT",
    "ELECTRODE_TYPES",
    "I_MEMBRANE",
    "MechanismCatalog",
    "PointCache",
    "SectionPoints",
    "Variable",
    "parse_variable",
    "point_process_type",
    "references",
]
