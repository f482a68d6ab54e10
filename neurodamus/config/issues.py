"""Collect every config problem before the first NEURON call, then report them together.

Each problem is an ``Issue``: ``<file>: <key path>: <what is wrong>``; a run prints the fatal
ones together (at most ``_MAX_LISTED``, then a count) and stops, and prints the warnings once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError

_MAX_LISTED = 10


@dataclass(frozen=True)
class Issue:
    level: str  # "fatal" or "warning"
    file: str
    key: str
    text: str

    def __str__(self):
        where = f"{self.file}: {self.key}" if self.key else self.file
        return f"{where}: {self.text}" if where else self.text


@dataclass
class IssueList:
    items: list[Issue] = field(default_factory=list)

    def fatal(self, file, key, text):
        self.items.append(Issue("fatal", str(file), key, text))

    def warning(self, file, key, text):
        self.items.append(Issue("warning", str(file), key, text))

    def message(self, text: str, level: str = "fatal"):
        """A problem already worded ``<file>: <key>: <what>`` (one line per problem)."""
        for line in str(text).splitlines():
            if line.strip():
                self.items.append(Issue(level, "", "", line))

    def extend(self, other: "IssueList"):
        self.items.extend(other.items)

    @property
    def fatals(self):
        return [i for i in self.items if i.level == "fatal"]

    @property
    def warnings(self):
        return [i for i in self.items if i.level == "warning"]

    def raise_if_fatal(self):
        fatals = self.fatals
        if not fatals:
            return
        lines = [str(i) for i in fatals[:_MAX_LISTED]]
        if len(fatals) > _MAX_LISTED:
            lines.append(f"... and {len(fatals) - _MAX_LISTED} more")
        raise ConfigError("\n".join(lines))


def cap_list(values, limit=_MAX_LISTED) -> str:
    """``3 items: [a, b, c]`` with at most ``limit`` shown."""
    values = list(values)
    shown = ", ".join(map(str, values[:limit]))
    more = f", ... ({len(values) - limit} more)" if len(values) > limit else ""
    return f"{len(values)} item(s): [{shown}{more}]"
