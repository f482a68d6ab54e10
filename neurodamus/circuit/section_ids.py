"""Section ids of reports, compartment sets, inputs and modifications (contract §2.1(2)).

``section_id = offset(type) + local index``, with the offsets accumulated over the counts of
soma, axon (``nSecAxonalOrig``: the count before axon replacement), dend, apic, ais, node and
myelin. (Synapse placement uses the other numbering, the ``v(0.0001)`` index:
``Cell.section_by_id``.) Only template introspection, no NEURON objects are created.
"""

from __future__ import annotations

import re

#: section types in the order their id blocks follow, with the SectionList giving each count
SECTION_TYPES = (("soma", "somatic"), ("axon", "axonal"), ("dend", "basal"),
                 ("apic", "apical"), ("ais", "AIS"), ("node", "nodal"),
                 ("myelin", "myelinated"))
_NAME_RE = re.compile(r"(?:^|\.)(\w+)\[(\d+)\]$")


def section_type_and_index(sec) -> tuple[str, int]:
    """``('dend', 5)`` for a section named ``Template[3].dend[5]``; ValueError otherwise."""
    match = _NAME_RE.search(sec.name())
    if not match:
        raise ValueError(f"section '{sec.name()}' is not named <type>[<index>]")
    return match.group(1), int(match.group(2))


def _list_count(hoc_cell, list_name: str) -> int:
    lst = getattr(hoc_cell, list_name, None) if hasattr(hoc_cell, list_name) else None
    return 0 if lst is None else sum(1 for _ in lst)


def type_offsets(hoc_cell) -> dict[str, int]:
    """First section id of each section type, and ``_end`` = the number of ids."""
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
    """Section id <-> section for one template instance."""

    def __init__(self, hoc_cell):
        self.hoc = hoc_cell
        self.offsets = type_offsets(hoc_cell)
        self._by_id = None

    def id_of(self, sec) -> int:
        stype, index = section_type_and_index(sec)
        if stype not in self.offsets or stype == "_end":
            raise ValueError(f"section '{sec.name()}' has a type without section ids "
                             f"(expected one of {', '.join(t for t, _ in SECTION_TYPES)})")
        return self.offsets[stype] + index

    def section(self, section_id: int):
        """The section with this id, or None (unknown id, or a removed axon section)."""
        if self._by_id is None:
            self._by_id = {self.id_of(sec): sec for sec in self.hoc.all}
        return self._by_id.get(int(section_id))

    def describe_missing(self, section_id: int) -> str:
        """Why ``section(section_id)`` is None, for error messages."""
        if not 0 <= section_id < self.offsets["_end"]:
            return (f"section id {section_id} is out of range (the cell has "
                    f"{self.offsets['_end']} section ids)")
        return f"section id {section_id} does not exist (removed by axon replacement?)"
