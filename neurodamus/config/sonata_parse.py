"""libsonata's parse errors, gathered entry by entry instead of stopping at the first one.

libsonata parses the whole simulation config at once and stops at the first value it refuses,
with a message that often names neither the section nor the entry (``Invalid value: '"somaa"'
for key 'sections'``). ``parse_collecting`` parses the config without its entry sections first
(the skeleton: run, conditions, output, ...), then each entry of ``inputs``, ``reports``,
``connection_overrides`` and ``conditions.modifications`` on its own with that skeleton. Each
refused entry becomes one issue ``<file>: <section>.<entry>[.<key>]: <libsonata's words>`` and
is left out of the copy of the config that is then parsed as a whole, so that every other check
of the run still sees a parsed config and one run lists every mistake.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import libsonata

from .issues import IssueList

#: sections whose entries are parsed one by one: name -> whether entries are named (dict)
ENTRY_SECTIONS = {"inputs": True, "reports": True, "connection_overrides": False}
#: libsonata's enumerations that it names only by key, with their allowed values
ENUM_VALUES = {
    "sections": ("soma", "axon", "dend", "apic", "all"),
    "compartments": ("center", "all"),
    "scaling": ("area", "none"),
}
_KEY_PATTERNS = (re.compile(r"for key '(\w+)'"), re.compile(r"`(\w+)`"),
                 re.compile(r"Could not find '(\w+)'"))


#: libsonata messages that name their key only in words
_PHRASES = {"variable names": "variable_name"}


def sonata_key(message: str) -> str:
    """The key a libsonata message is about ('' when it names none)."""
    for phrase, key in _PHRASES.items():
        if phrase in message:
            return key
    for pattern in _KEY_PATTERNS:
        match = pattern.search(message)
        if match:
            return match.group(1)
    return ""


def _parse(data: dict, base: str):
    """(SimulationConfig, None) or (None, libsonata's message)."""
    try:
        sim = libsonata.SimulationConfig(json.dumps(data), base)
        sim.conditions.modifications()   # parsed on demand: make it speak now
        return sim, None
    except (libsonata.SonataError, RuntimeError) as exc:
        return None, " ".join(str(exc).split())


def _entry_message(section: str, key: str, entry, message: str) -> str:
    value = entry.get(key) if isinstance(entry, dict) else None
    if section == "conditions.modifications" and key == "type" and value is not None:
        return f"unknown modification type {value!r}"
    if key in ENUM_VALUES and value is not None:
        return f"unknown value {value!r} (expected one of {', '.join(ENUM_VALUES[key])})"
    if message.startswith("Could not find"):
        return "missing (required)"
    if key == "variable_name" and isinstance(value, str) and \
            any(not v.strip() for v in value.split(",")):
        return f"empty variable name in '{value}'"
    return message


def skeleton_of(data: dict) -> dict:
    """The config without its entry sections (and without conditions.modifications)."""
    skeleton = {k: v for k, v in data.items() if k not in ENTRY_SECTIONS}
    conditions = skeleton.get("conditions")
    if isinstance(conditions, dict) and "modifications" in conditions:
        skeleton["conditions"] = {k: v for k, v in conditions.items() if k != "modifications"}
    return skeleton


def _entries(data: dict):
    """(section path, entry key, entry, how to put one entry back) for every entry."""
    for section, named in ENTRY_SECTIONS.items():
        entries = data.get(section)
        if named and isinstance(entries, dict):
            for name, entry in entries.items():
                yield section, f"{section}.{name}", entry, (section, name)
        elif not named and isinstance(entries, list):
            for i, entry in enumerate(entries):
                yield section, f"{section}[{i}]", entry, (section, i)
    mods = (data.get("conditions") or {}).get("modifications") \
        if isinstance(data.get("conditions"), dict) else None
    if isinstance(mods, list):
        for i, entry in enumerate(mods):
            name = entry.get("name", "") if isinstance(entry, dict) else ""
            label = f"conditions.modifications[{i}]" + (f" ({name})" if name else "")
            yield "conditions.modifications", label, entry, ("conditions.modifications", i)


def _with_entries(skeleton: dict, data: dict, chosen: list) -> dict:
    """``skeleton`` plus the ``chosen`` entries of ``data`` (in their original order)."""
    result = copy.copy(skeleton)
    for section, named in ENTRY_SECTIONS.items():
        if section not in data:
            continue
        if named:
            result[section] = {n: e for (s, n) in chosen if s == section
                               for e in [data[section][n]]}
        else:
            result[section] = [data[section][i] for (s, i) in chosen if s == section]
    mods = [i for (s, i) in chosen if s == "conditions.modifications"]
    if isinstance(data.get("conditions"), dict) and "modifications" in data["conditions"]:
        conditions = dict(result.get("conditions") or {})
        conditions["modifications"] = [data["conditions"]["modifications"][i] for i in mods]
        result["conditions"] = conditions
    return result


def entry_positions(config_path, section: str) -> dict:
    """name -> position of the entries of a list section (``connection_overrides``,
    ``conditions.modifications``) in the config file, so that messages name the entry where
    the user wrote it even when entries before it were refused."""
    try:
        data = json.loads(Path(config_path).read_text())
    except (OSError, ValueError):
        return {}
    for key in section.split("."):
        data = data.get(key) if isinstance(data, dict) else None
    if not isinstance(data, list):
        return {}
    return {e.get("name"): i for i, e in enumerate(data) if isinstance(e, dict)}


def parse_collecting(config_path, data: dict, issues: IssueList, skip=frozenset()):
    """libsonata's parse of ``data`` (the config's JSON) without the entries it refuses.

    Every refusal becomes an issue. Entries whose key is in ``skip`` (already reported by a
    more precise check) are left out silently. Returns the SimulationConfig, or None when even
    the skeleton is refused (then nothing else of the config can be checked).
    """
    base = str(Path(config_path).parent)
    skeleton = skeleton_of(data)
    sim, message = _parse(skeleton, base)
    if sim is None:
        issues.fatal(config_path, sonata_key(message), message)
        return None
    chosen = []
    for section, label, entry, ref in _entries(data):
        if label in skip:
            continue
        _, message = _parse(_with_entries(skeleton, data, [ref]), base)
        if message is None:
            chosen.append(ref)
            continue
        key = sonata_key(message)
        issues.fatal(config_path, f"{label}.{key}" if key else label,
                     _entry_message(section, key, entry, message))
    if len(chosen) == sum(1 for _ in _entries(data)):
        return libsonata.SimulationConfig(json.dumps(data), base)
    sim, message = _parse(_with_entries(skeleton, data, chosen), base)
    if sim is None:   # entries that are fine alone but not together (duplicate names, ...)
        issues.fatal(config_path, sonata_key(message), message)
    return sim


__all__ = ["ENTRY_SECTIONS", "entry_positions", "parse_collecting", "skeleton_of",
           "sonata_key"]
