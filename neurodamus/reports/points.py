"""Report points of a cell: the (section, x) lists of a ``sections``/``compartments`` choice
(contract §8.2).

Only hoc-template introspection, no recording. Section ids (contract §2.1(2)) come from the shared
numbering, ``circuit/section_ids.py`` (``Cell.section_ids``), as for inputs and modifications.
"""

from __future__ import annotations


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
    own order (contract §8.2)."""
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


__all__ = ["array_sections", "report_points", "report_sections", "segment_xs"]
