"""Report points of a cell: section ids (compatibility §2.1(2)) and (section, x) lists (§8.2).

Only hoc-template introspection, no recording: ``section_ids`` numbers the sections the way
reports, compartment sets and modifications do, ``report_points`` lists the points of a
``sections``/``compartments`` choice.
"""

from __future__ import annotations

import re

from ..errors import CircuitError

#: section types in the order their id blocks follow, with the SectionList giving each count
#: (axon: ``nSecAxonalOrig``, the count before axon replacement)
SECTION_TYPES = (("soma", "somatic"), ("axon", "axonal"), ("dend", "basal"),
                 ("apic", "apical"), ("ais", "AIS"), ("node", "nodal"),
                 ("myelin", "myelinated"))
_NAME_RE = re.compile(r"(?:^|\.)(\w+)\[(\d+)\]$")


def section_type_and_index(sec) -> tuple[str, int]:
    """``('dend', 5)`` for a section named ``Template[3].dend[5]``."""
    m = _NAME_RE.search(sec.name())
    if not m:
        raise CircuitError(f"section '{sec.name()}' is not named <type>[<index>]")
    return m.group(1), int(m.group(2))


def _list_count(hoc_cell, list_name: str) -> int:
    lst = getattr(hoc_cell, list_name, None) if hasattr(hoc_cell, list_name) else None
    if lst is None:
        return 0
    return sum(1 for _ in lst)


def type_offsets(hoc_cell) -> dict[str, int]:
    """First section id of each section type (§2.1(2))."""
    offsets, total = {}, 0
    for stype, list_name in SECTION_TYPES:
        offsets[stype] = total
        if stype == "axon" and hasattr(hoc_cell, "nSecAxonalOrig"):
            total += int(hoc_cell.nSecAxonalOrig)
        else:
            total += _list_count(hoc_cell, list_name)
    offsets["_end"] = total
    return offsets


class SectionIds:
    """Section id <-> section for one cell (§2.1(2)): offset(type) + index in the name."""

    def __init__(self, cell):
        self.cell = cell
        self.offsets = type_offsets(cell.hoc)
        self._by_id = None

    def id_of(self, sec) -> int:
        stype, index = section_type_and_index(sec)
        if stype not in self.offsets or stype == "_end":
            raise CircuitError(f"gid {self.cell.gid}: section '{sec.name()}' has a type that "
                               f"has no section id (expected one of "
                               f"{', '.join(t for t, _ in SECTION_TYPES)})")
        return self.offsets[stype] + index

    def section(self, section_id: int):
        """The section with this id, or None (unknown id, or a removed axon section)."""
        if self._by_id is None:
            self._by_id = {self.id_of(sec): sec for sec in self.cell.hoc.all}
        return self._by_id.get(int(section_id))


def array_sections(hoc_cell, name: str) -> list:
    """The existing sections of the template's section array ``name`` (deleted ones skipped:
    touching a deleted section aborts NEURON)."""
    from neuron import h

    if not hasattr(hoc_cell, name):
        return []
    arr = getattr(hoc_cell, name)
    try:
        n = len(arr)
    except TypeError:
        return []
    return [arr[i] for i in range(n) if h.section_exists(name, i, hoc_cell)]


def report_sections(cell, sections: str) -> list:
    """Sections of a report point list: the named array, or the ``all`` SectionList in its
    own order (§8.2)."""
    if sections == "all":
        return list(cell.hoc.all)
    return array_sections(cell.hoc, sections)


def segment_xs(sec, compartments: str) -> list[float]:
    """``center``: x = 0.5; ``all``: every segment centre."""
    if compartments == "center":
        return [0.5]
    return [seg.x for seg in sec]


def report_points(cell, sections: str, compartments: str) -> list[tuple]:
    """[(section, x)] in report order."""
    return [(sec, x) for sec in report_sections(cell, sections)
            for x in segment_xs(sec, compartments)]


__all__ = [
    "SECTION_TYPES",
    "SectionIds",
    "array_sections",
    "report_points",
    "report_sections",
    "section_type_and_index",
    "segment_xs",
    "type_offsets",
]
