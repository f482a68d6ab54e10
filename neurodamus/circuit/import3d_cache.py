"""Import3d with one parse per morphology file and rank.

Emodel templates written for other drivers load their morphology themselves:

    morph = new Import3d_SWC_read()      // or Import3d_Neurolucida3()
    morph.quiet = 1
    morph.input(path)
    import = new Import3d_GUI(morph, 0)
    import.instantiate(this)

NEURON's Import3d parses the file in hoc and then builds the cell by ``execute``-ing one
generated hoc statement per section, connection and 3-D point: ~5 ms per small cell, every
cell again. ``core/hoc/import3d.hoc`` (found before NEURON's own on the HOC library path) loads
NEURON's Import3d with these three templates renamed ``nrn_Import3d_*`` and defines thin
templates of the original names whose ``instantiate`` comes here. The first cell of a file runs
NEURON's code unchanged (``instantiate(cell, 1)`` keeps the statements it executed); every
later cell of the same file replays those statements: ``create``/``forsec``/``forall`` through
hoc in the cell's context, ``connect`` and ``pt3dadd``/``pt3dstyle`` through NEURON's Python
API with the same numbers (parsed from the same text), so the cells are identical.

``NEURODAMUS_IMPORT3D_CACHE=0`` loads NEURON's Import3d unchanged.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .. import paths

#: the templates the thin replacements stand for
WRAPPED = ("Import3d_SWC_read", "Import3d_Neurolucida3", "Import3d_GUI")
#: NEURON's import3d.hoc loads these, in this order
_SUITE = ("import3d_sec.hoc", "read_swc.hoc", "read_nlcda.hoc", "read_nlcda3.hoc",
          "read_nts.hoc", "read_morphml.hoc", "import3d_gui.hoc")
_RENAME_RE = re.compile(r"\b(" + "|".join(WRAPPED) + r")\b")
_NUM = r"([-+0-9.eE]+|nan|inf|-inf)"
_SEC = r"(\w+)(?:\[(\d+)\])?"   # "dend[3]", or "dend" for dend[0]
_CONNECT_RE = re.compile(rf"^{_SEC} connect {_SEC}\(0\), {_NUM}$")
_PT3DADD_RE = re.compile(rf"^{_SEC} {{ pt3dadd\({_NUM}, {_NUM}, {_NUM}, {_NUM}\) }}$")
_PT3DSTYLE_RE = re.compile(rf"^{_SEC} {{ pt3dstyle\(1, {_NUM}, {_NUM}, {_NUM}\) }}$")
# "forsec "dend" basal.append", "forall all.append": the section lists
_LIST_RE = re.compile(r'^(?:forsec "[^"]*"|forall) (\w+)\.append(?:\(\))?$')
_KEY_RE = re.compile(r"^(\w+)\[(\d+)\]$")


def enabled() -> bool:
    return os.environ.get("NEURODAMUS_IMPORT3D_CACHE", "1").strip() not in ("0", "off", "no")


def setup() -> None:
    """What core/hoc/import3d.hoc loads: NEURON's Import3d renamed and the thin templates
    (core/hoc/ndimport3d.hoc), or NEURON's import3d.hoc as it is when the cache is off."""
    from neuron import h

    if not enabled():
        if not h.load_file(1, str(Path(str(h.neuronhome())) / "lib" / "hoc" / "import3d.hoc")):
            raise RuntimeError("could not load NEURON's import3d.hoc")
        return
    load_neuron_import3d(h)
    if not h.load_file(1, str(paths.hoc_dir() / "ndimport3d.hoc")):
        raise RuntimeError("could not load ndimport3d.hoc")


def load_neuron_import3d(h) -> None:
    """NEURON's Import3d suite with the wrapped templates renamed ``nrn_<name>`` (called once by
    core/hoc/import3d.hoc; the files are NEURON's, read from its installation)."""
    folder = Path(str(h.neuronhome())) / "lib" / "hoc" / "import3d"
    text = "".join(_RENAME_RE.sub(r"nrn_\1", (folder / name).read_text()) + "\n"
                   for name in _SUITE)
    with tempfile.TemporaryDirectory(prefix="nd-import3d-") as tmp:
        path = Path(tmp) / "nrn_import3d.hoc"
        path.write_text(text)
        if not h.load_file(1, str(path)):
            raise RuntimeError(f"could not load NEURON's Import3d from {folder}")


# ---- the replay -------------------------------------------------------------------------------
@dataclass
class Replay:
    """The statements NEURON's ``instantiate`` executed for one file, ready to replay.

    The section-list statements (``forsec "soma" somatic.append``, ``forall all.append``) cost
    a hoc parse and, for ``forsec``, a compiled regular expression per cell. What they append
    is read on two replayed cells (the sections each list gained, by name); when both agree,
    later cells get those sections appended directly, in the same order."""

    steps: list = field(default_factory=list)
    lists: dict | None = None      # list name -> [(array, index)] appended, once agreed
    _seen: dict | None = None      # what the previous replayed cell appended
    _checks: int = 0

    @classmethod
    def from_commands(cls, commands: list[str]) -> Replay:
        steps, points = [], {}
        for raw in commands:
            cmd = raw.strip()
            m = _PT3DADD_RE.match(cmd)
            if m:
                key = (m.group(1), int(m.group(2) or 0))
                if key not in points:
                    points[key] = []
                    steps.append(("pt3d", key, points[key]))
                points[key].append(tuple(float(v) for v in m.groups()[2:]))
                continue
            m = _CONNECT_RE.match(cmd)
            if m:
                steps.append(("connect", (m.group(1), int(m.group(2) or 0)),
                              (m.group(3), int(m.group(4) or 0)), float(m.group(5))))
                continue
            m = _PT3DSTYLE_RE.match(cmd)
            if m:
                steps.append(("style", (m.group(1), int(m.group(2) or 0)),
                              tuple(float(v) for v in m.groups()[2:])))
                continue
            steps.append(("hoc", cmd))   # create, forsec, forall: in the cell's context
        return cls(steps)

    def vectors(self, h) -> None:
        """The 3-D points of each section as hoc Vectors (x, y, z, diam), made once."""
        self.steps = [(*step[:3], tuple(h.Vector(c) for c in zip(*step[2])))
                      if step[0] == "pt3d" else step for step in self.steps]

    @property
    def list_names(self) -> list:
        names = []
        for step in self.steps:
            m = _LIST_RE.match(step[1]) if step[0] == "hoc" else None
            if m and m.group(1) not in names:
                names.append(m.group(1))
        return names

    def apply(self, h, cell) -> None:
        if self.lists is not None:
            self._run(h, cell, skip_lists=True)
            for name, keys in self.lists.items():
                target = getattr(cell, name)
                for array, index in keys:
                    target.append(sec=getattr(cell, array)[index])
            return
        names = self.list_names if self._checks < 2 else []
        before = _list_lengths(cell, names)
        self._run(h, cell)
        if before is None or not names:
            return
        appended = _appended(cell, names, before)
        self._checks += 1
        if appended is not None and appended == self._seen:
            self.lists = appended
        self._seen = appended

    def _run(self, h, cell, skip_lists=False) -> None:
        def section(key):
            return getattr(cell, key[0])[int(key[1] or 0)]

        for step in self.steps:
            kind = step[0]
            if skip_lists and kind == "hoc" and _LIST_RE.match(step[1]):
                continue
            if kind == "pt3d":   # x, y, z, diam Vectors made once per file (_vectors)
                h.pt3dadd(*step[3], sec=section(step[1]))
            elif kind == "connect":
                parent, child, x = section(step[1]), section(step[2]), step[3]
                child.connect(parent(x), 0)
            elif kind == "style":
                h.pt3dstyle(1, *step[2], sec=section(step[1]))
            else:   # as NEURON ran it ("~create": not wrapped in a block); errors raise
                h.execute(step[1], cell)


def _list_lengths(cell, names) -> dict | None:
    """Length of each named section list of ``cell``, None if one is not a public list."""
    try:
        return {name: sum(1 for _ in getattr(cell, name)) for name in names}
    except (AttributeError, TypeError, LookupError):
        return None


def _appended(cell, names, before) -> dict | None:
    """The sections each list gained past ``before``, as (array, index) of ``cell``'s own
    sections; None if one is not of the cell or not an array element."""
    prefix = cell.hname() + "."
    out = {}
    for name in names:
        keys = []
        for i, sec in enumerate(getattr(cell, name)):
            if i < before[name]:
                continue
            full = sec.name()
            m = _KEY_RE.match(full[len(prefix):]) if full.startswith(prefix) else None
            if not m:
                return None
            keys.append((m.group(1), int(m.group(2))))
        out[name] = keys
    return out


_cache: dict[tuple[str, str, int], Replay] = {}


def instantiate(reader, cell) -> None:
    """``Import3d_GUI.instantiate(cell)`` for the thin templates of core/hoc/import3d.hoc."""
    from neuron import h

    kind = "Neurolucida3" if int(reader.is_asc) else "SWC_read"
    path = str(reader.path)
    key = (kind, path, int(reader.quiet))
    replay = _cache.get(key)
    if replay is not None and cell is not None:
        replay.apply(h, cell)
        return
    impl = getattr(h, f"nrn_Import3d_{kind}")()
    impl.quiet = reader.quiet
    impl.input(path)
    gui = h.nrn_Import3d_GUI(impl, 0)
    if cell is None:   # into the top level: no replay
        gui.instantiate(None)
        return
    gui.instantiate(cell, 1)   # 1: keep the statements
    commands = [str(gui.commands.o(i).s) for i in range(int(gui.commands.count()))]
    gui.commands.remove_all()
    replay = _cache[key] = Replay.from_commands(commands)
    replay.vectors(h)


def clear() -> None:
    _cache.clear()


__all__ = [
    "WRAPPED",
    "Replay",
    "clear",
    "enabled",
    "instantiate",
    "load_neuron_import3d",
    "setup",
]
