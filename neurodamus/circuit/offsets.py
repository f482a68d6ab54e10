"""Gid offsets and population hash ids (contract §1.1, §1.2). Pure Python."""

from __future__ import annotations

import hashlib


def gid_offsets(max_ids: dict[str, int]) -> dict[str, int]:
    """Offsets by population name in string sort order.

    The first population starts at 0; each next one starts at the next multiple of 1000 strictly
    above ``previous offset + previous max raw id`` (a full multiple still moves one block).
    ``max_ids`` holds the largest registered raw id of each population (0 if none registered).
    """
    offsets: dict[str, int] = {}
    previous = None
    for name in sorted(max_ids):
        if previous is None:
            offsets[name] = 0
        else:
            prev_offset, prev_max = offsets[previous], max_ids[previous]
            offsets[name] = ((prev_offset + prev_max) // 1000 + 1) * 1000
        previous = name
    return offsets


def population_hash_id(name: str) -> int:
    """``((md5[1] & 0x0F) << 8) + md5[0]`` of the UTF-8 name: 0..4095."""
    md5 = hashlib.md5(name.encode("utf-8")).digest()
    return ((md5[1] & 0x0F) << 8) + md5[0]
