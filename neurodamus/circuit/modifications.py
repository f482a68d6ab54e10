"""``conditions.modifications`` (contract §6.2) and the safe assignment parser they share
with ``connection_overrides[].synapse_configure`` (contract §6.1).

No configuration text is ever run. A statement such as ``%s.gnabar_hh *= 0.5`` is parsed into
(owner, attribute, operator, expression); the expression may only hold numbers, ``+ - * / **``,
parentheses and reads of the wildcard object's attributes (``%s.attr``). Attribute names are
checked on the NEURON object (section, segment or point process) before anything is set.

Modification types (each names a ``node_set``, or a ``compartment_set`` for the last one):

=========================  ==============================  ======================================
type                       ``section_configure``           applied to
=========================  ==============================  ======================================
``ttx``                    --                              every section: insert
                                                           ``TTXDynamicsSwitch``; the global
                                                           ``ttxo_level_TTXDynamicsSwitch`` = 1
``configure_all_sections`` ``%s.attr (op)= expr; ...``     each section of ``all`` that has every
                                                           attribute named, once per segment
                                                           (on the section: ``*=`` compounds
                                                           nseg times, as in ND)
``section_list``           ``list.attr (op)= number``      each section of the list having the
                                                           attributes, once
``section``                ``type[i].attr (op)= number``   that section, if it exists and has
                                                           the attributes
``compartment_set``        ``attr (op)= number``           the segment ``sec(offset)`` of each
                                                           entry (section id of contract §2.1(2))
=========================  ==============================  ======================================

Deliberate differences from ND (contract §10.6 lists both as observed defects): the
attribute set that decides which sections a ``configure_all_sections`` entry touches is that
entry's own (ND accumulates it over all entries of the run), and compartment-set entries are
matched by raw id within the set's own population (ND compares raw ids with offset gids).
"""

from __future__ import annotations

import ast
import logging
import operator
import re
from dataclasses import dataclass

from ..config.sonata_parse import entry_positions
from ..errors import CircuitError, ConfigError, MechanismError

log = logging.getLogger(__name__)

# ---- safe assignment parser -----------------------------------------------------------------

WILDCARD = "%s"
_WILD_NAME = "__nd_wildcard__"
_OPS = {"=": None, "+=": operator.add, "-=": operator.sub, "*=": operator.mul,
        "/=": operator.truediv}
_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.Pow: operator.pow}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}
# an assignment target followed by its operator: owner.attr, or a bare name
_LHS_RE = re.compile(
    r"(?:(?P<owner>%s|[A-Za-z_]\w*\s*(?:\[\s*\d+\s*\])?)\s*\.\s*)?"
    r"(?P<attr>[A-Za-z_]\w*)\s*(?P<op>[-+*/]?=)(?!=)")
_ATTR_RE = re.compile(r"^[A-Za-z]\w*$")


class StatementError(ValueError):
    """A ``section_configure`` / ``synapse_configure`` text that is not a safe assignment."""


@dataclass(frozen=True)
class Assignment:
    """``owner.attr op expr``; owner is ``%s``, a list/section name, or None (bare name)."""

    owner: str | None
    attr: str
    op: str
    expr: ast.AST
    text: str

    @property
    def refs(self) -> frozenset:
        """Wildcard attributes read by the right-hand side."""
        return frozenset(node.attr for node in ast.walk(self.expr)
                         if isinstance(node, ast.Attribute))

    @property
    def attributes(self) -> frozenset:
        """Every attribute the statement names (left and right side)."""
        return self.refs | {self.attr}

    def value(self, obj=None) -> float:
        return _evaluate(self.expr, obj)

    def apply(self, obj) -> None:
        """Run the statement on ``obj`` (the wildcard object is ``obj`` too)."""
        value = self.value(obj)
        combine = _OPS[self.op]
        if combine is not None:
            value = combine(getattr(obj, self.attr), value)
        setattr(obj, self.attr, value)


def _evaluate(node, obj):
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_evaluate(node.operand, obj))
    if isinstance(node, ast.BinOp):
        return _BINOPS[type(node.op)](_evaluate(node.left, obj), _evaluate(node.right, obj))
    if isinstance(node, ast.Attribute):
        return float(getattr(obj, node.attr))
    raise StatementError(f"unsupported expression {ast.dump(node)}")  # unreachable: validated


def _check_expr(node, rhs: str, literal_only: bool) -> None:
    """Accept numbers, unary +/-, and (unless ``literal_only``) + - * / ** and %s.attr."""
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise StatementError(f"'{rhs}' is not a number")
        return
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        if literal_only and not isinstance(node.operand, ast.Constant):
            raise StatementError(f"'{rhs}' is not a numeric literal")
        _check_expr(node.operand, rhs, literal_only)
        return
    if literal_only:
        raise StatementError(f"'{rhs}' is not a numeric literal (only a number, with an "
                             f"optional sign, may follow the operator)")
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        _check_expr(node.left, rhs, literal_only)
        _check_expr(node.right, rhs, literal_only)
        return
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
            and node.value.id == _WILD_NAME:
        if not _ATTR_RE.match(node.attr):
            raise StatementError(f"'{node.attr}' is not a valid attribute name")
        return
    if isinstance(node, ast.Name):
        raise StatementError(f"'{node.id}' in '{rhs}': only numbers and %s.<attribute> may "
                             f"appear on the right-hand side")
    raise StatementError(f"'{rhs}': only numbers, + - * / ** and %s.<attribute> are allowed "
                         f"on the right-hand side")


def parse_assignments(text, *, literal_only: bool = False) -> list[Assignment]:
    """Split ``text`` into assignments (separated by ';', newlines or blanks, as in hoc).

    Raises StatementError for anything that is not a sequence of assignments.
    """
    if text is None or not str(text).strip():
        raise StatementError("empty: at least one assignment is required")
    text = str(text)
    matches = list(_LHS_RE.finditer(text))
    if not matches:
        raise StatementError(f"'{text.strip()}' is not an assignment (expected e.g. "
                             f"'%s.attr = 1.5')")
    lead = text[:matches[0].start()].strip(" \t\r\n;")
    if lead:
        raise StatementError(f"'{lead}' is not an assignment")
    result = []
    for k, m in enumerate(matches):
        end = matches[k + 1].start() if k + 1 < len(matches) else len(text)
        rhs = text[m.end():end].strip(" \t\r\n;")
        stmt_text = text[m.start():end].strip(" \t\r\n;")
        if not rhs:
            raise StatementError(f"'{stmt_text}': missing value after '{m.group('op')}'")
        if not _ATTR_RE.match(m.group("attr")):
            raise StatementError(f"'{m.group('attr')}' is not a valid attribute name")
        try:
            tree = ast.parse(rhs.replace(WILDCARD, _WILD_NAME), mode="eval")
        except SyntaxError:
            raise StatementError(f"'{stmt_text}': cannot read the value '{rhs}'") from None
        _check_expr(tree.body, rhs, literal_only)
        owner = m.group("owner")
        owner = re.sub(r"\s+", "", owner) if owner else None
        result.append(Assignment(owner, m.group("attr"), m.group("op"), tree.body, stmt_text))
    return result


def has_number(obj, attr: str) -> bool:
    """True when ``obj.attr`` exists and is a number (not a method or an object)."""
    if not _ATTR_RE.match(attr):
        return False
    try:
        value = getattr(obj, attr)
    except (AttributeError, RuntimeError, TypeError, ValueError, LookupError):
        return False
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# ---- modification plans (pure) --------------------------------------------------------------

SECTION_LISTS = ("all", "somatic", "axonal", "basal", "apical", "AIS", "nodal", "myelinated")
SECTION_ARRAYS = ("soma", "axon", "dend", "apic", "ais", "node", "myelin")
_SECTION_RE = re.compile(r"^(\w+)\[(\d+)\]$")
_TYPES = ("ttx", "configure_all_sections", "section_list", "section", "compartment_set")


@dataclass(frozen=True)
class Modification:
    index: int
    name: str
    type: str
    node_set: str | None
    compartment_set: str | None
    statements: tuple
    owner: str | None      # section list name, or (type, index) for ``section``
    where: str             # "<config>: conditions.modifications[i] (name)"

    @property
    def attributes(self) -> frozenset:
        return frozenset().union(*(s.attributes for s in self.statements)) \
            if self.statements else frozenset()


def parse_modifications(settings) -> list[Modification]:
    """Check and parse every ``conditions.modifications`` entry; raise one ConfigError."""
    problems, result = [], []
    try:
        entries = list(settings.conditions.modifications())
    except (AttributeError, TypeError):
        entries = []
    node_set_names = set(settings.node_sets.names)
    positions = entry_positions(settings.config_path, "conditions.modifications")
    for i, mod in enumerate(entries):
        name = getattr(mod, "name", "") or f"#{i}"
        where = f"{settings.config_path}: conditions.modifications" \
                f"[{positions.get(getattr(mod, 'name', None), i)}] ({name})"
        mtype = mod.type.name
        if mtype not in _TYPES:
            problems.append(f"{where}.type: unsupported modification type '{mtype}'")
            continue
        node_set = getattr(mod, "node_set", None)
        cset = getattr(mod, "compartment_set", None)
        if mtype != "compartment_set" and node_set not in node_set_names:
            problems.append(f"{where}.node_set: unknown node set '{node_set}'")
            continue
        statements, owner = (), None
        if mtype != "ttx":
            try:
                statements, owner = _parse_configure(mtype, mod.section_configure)
            except StatementError as exc:
                problems.append(f"{where}.section_configure: {exc}")
                continue
        result.append(Modification(i, name, mtype, node_set, cset, tuple(statements), owner,
                                   where))
    if problems:
        raise ConfigError("\n".join(problems))
    return result


def _parse_configure(mtype, text):
    literal = mtype != "configure_all_sections"
    statements = parse_assignments(text, literal_only=literal)
    owners = {s.owner for s in statements}
    if mtype == "configure_all_sections":
        bad = [s.text for s in statements if s.owner != WILDCARD]
        if bad:
            raise StatementError(f"'{bad[0]}': every target must be '%s.<attribute>' (%s "
                                 f"stands for each section)")
        return statements, None
    if mtype == "compartment_set":
        bad = [s.text for s in statements if s.owner is not None]
        if bad:
            raise StatementError(f"'{bad[0]}': compartment-set statements are "
                                 f"'<attribute> (op)= <number>' with no section prefix")
        return statements, None
    if len(owners) != 1 or None in owners or WILDCARD in owners:
        raise StatementError(f"all statements must name the same "
                             f"{'section list' if mtype == 'section_list' else 'section'} "
                             f"(found {sorted(str(o) for o in owners)})")
    owner = owners.pop()
    if mtype == "section_list":
        if owner not in SECTION_LISTS:
            raise StatementError(f"unknown section list '{owner}' (expected one of "
                                 f"{', '.join(SECTION_LISTS)})")
        return statements, owner
    match = _SECTION_RE.match(owner)
    if not match or match.group(1) not in SECTION_ARRAYS:
        raise StatementError(f"'{owner}' is not a section (expected <type>[<index>] with type "
                             f"one of {', '.join(SECTION_ARRAYS)})")
    return statements, (match.group(1), int(match.group(2)))


# ---- NEURON side ----------------------------------------------------------------------------

class _Counter:
    def __init__(self):
        self.sections = 0
        self.cells = 0


def apply_modifications(h, modifications, cells: dict, resolver, settings,
                        populations) -> list[tuple[int, int]]:
    """Apply every modification in config order to this rank's cells (no MPI calls).

    Returns (sections or segments changed, cells changed) per modification, for
    ``report_modifications``.
    """
    counts = []
    for mod in modifications:
        counter = _Counter()
        if mod.type == "compartment_set":
            _apply_compartment_set(h, mod, cells, settings, populations, counter)
        else:
            gids = [g for g in resolver.gids(mod.node_set).tolist() if g in cells]
            apply = {"ttx": _apply_ttx, "configure_all_sections": _apply_all_sections,
                     "section_list": _apply_section_list, "section": _apply_section}[mod.type]
            if mod.type == "ttx":
                _check_ttx(h, mod)
            for gid in gids:
                before = counter.sections
                apply(h, mod, cells[gid], counter)
                counter.cells += counter.sections > before
        counts.append((counter.sections, counter.cells))
    return counts


def report_modifications(comm, modifications, counts) -> list[tuple[int, int]]:
    """Sum the counts over ranks and report each modification once (rank 0); a modification
    that changed nothing anywhere gets a warning (a misspelt attribute is the usual reason)."""
    totals = []
    for mod, local in zip(modifications, counts):
        total = tuple(comm.allreduce(v) for v in local) if comm.Get_size() > 1 else local
        totals.append(total)
        if comm.Get_rank() != 0:
            continue
        what = "segments" if mod.type == "compartment_set" else "sections"
        if total[0] == 0:
            attrs = ", ".join(sorted(mod.attributes))
            reason = f" has {'all of ' if len(mod.attributes) > 1 else ''}{attrs}" if attrs \
                else " was found"
            log.warning("%s: changed nothing (no %s of the target%s)", mod.where, what[:-1],
                        reason)
        else:
            log.info("Modification '%s' (%s): %d %s in %d cell(s)", mod.name, mod.type,
                     total[0], what, total[1])
    return totals


def _check_ttx(h, mod):
    if not hasattr(h, "ttxo_level_TTXDynamicsSwitch"):
        raise MechanismError(f"{mod.where}: the mechanism library lacks TTXDynamicsSwitch "
                             f"(needed by 'ttx' modifications)")
    h.ttxo_level_TTXDynamicsSwitch = 1.0


def _sections(cell):
    """The cell's ``all`` SectionList; nothing for point neurons without sections."""
    return cell.hoc.all if hasattr(cell.hoc, "all") else ()


def _apply_ttx(h, mod, cell, counter):
    for sec in _sections(cell):
        if not h.ismembrane("TTXDynamicsSwitch", sec=sec):
            sec.insert("TTXDynamicsSwitch")
        counter.sections += 1


def _run(mod, statements, obj, cell, where_obj):
    for stmt in statements:
        try:
            stmt.apply(obj)
        except (ZeroDivisionError, OverflowError, ValueError, TypeError, RuntimeError) as exc:
            raise ConfigError(f"{mod.where}.section_configure: '{stmt.text}' failed on "
                              f"{where_obj} of gid {cell.gid}: {exc}") from exc


def _apply_all_sections(h, mod, cell, counter):
    attrs = mod.attributes
    for sec in _sections(cell):
        if all(has_number(sec, a) for a in attrs):
            for _ in range(sec.nseg):   # once per segment, on the section (contract §6.2)
                _run(mod, mod.statements, sec, cell, sec.name())
            counter.sections += 1


def _apply_section_list(h, mod, cell, counter):
    if not hasattr(cell.hoc, mod.owner):
        raise CircuitError(f"{mod.where}.section_configure: section list '{mod.owner}' does not "
                           f"exist in template '{cell.template}' (gid {cell.gid})")
    attrs = mod.attributes
    for sec in getattr(cell.hoc, mod.owner):
        if all(has_number(sec, a) for a in attrs):
            _run(mod, mod.statements, sec, cell, sec.name())
            counter.sections += 1


def _apply_section(h, mod, cell, counter):
    sec_type, index = mod.owner
    if not hasattr(cell.hoc, sec_type) or not h.section_exists(sec_type, index, cell.hoc):
        return
    sec = getattr(cell.hoc, sec_type)[index]
    if all(has_number(sec, a) for a in mod.attributes):
        _run(mod, mod.statements, sec, cell, sec.name())
        counter.sections += 1


def _apply_compartment_set(h, mod, cells, settings, populations, counter):
    entries, pop = _compartment_entries(mod, settings, populations)
    touched = set()
    for raw, section_id, offset in entries:
        gid = raw + pop.offset
        cell = cells.get(gid)
        if cell is None:
            continue
        sec = cell.section_ids.section(section_id)
        if sec is None:
            raise CircuitError(f"{mod.where}.compartment_set: section id {section_id} does not "
                               f"exist in gid {gid} (template '{cell.template}')")
        seg = sec(offset)
        missing = [a for a in sorted(mod.attributes) if not has_number(seg, a)]
        if missing:
            raise ConfigError(f"{mod.where}.section_configure: {sec.name()}({offset:g}) of gid "
                              f"{gid} has no attribute '{missing[0]}'")
        _run(mod, mod.statements, seg, cell, f"{sec.name()}({offset:g})")
        counter.sections += 1
        touched.add(gid)
    counter.cells = len(touched)


def _compartment_entries(mod, settings, populations):
    import os

    import libsonata

    path = settings.sim.compartment_sets_file
    if not path:
        raise ConfigError(f"{mod.where}.compartment_set: the simulation config has no "
                          f"compartment_sets_file")
    if not os.path.isabs(path):
        path = os.path.join(os.path.dirname(str(settings.config_path)), path)
    try:
        sets = libsonata.CompartmentSets.from_file(path)
    except (libsonata.SonataError, RuntimeError) as exc:
        raise ConfigError(f"{mod.where}.compartment_set: cannot read {path}: {exc}") from exc
    if mod.compartment_set not in sets.names():
        raise ConfigError(f"{mod.where}.compartment_set: unknown compartment set "
                          f"'{mod.compartment_set}' in {path}")
    cset = sets[mod.compartment_set]
    pop = populations.get(cset.population)
    if pop is None or pop.is_virtual:
        raise ConfigError(f"{mod.where}.compartment_set: compartment set "
                          f"'{mod.compartment_set}' names population '{cset.population}', "
                          f"which is not simulated")
    entries = [(int(loc.node_id), int(loc.section_id), float(loc.offset))
               for loc in cset.filtered_iter()]
    return entries, pop


__all__ = [
    "SECTION_ARRAYS",
    "SECTION_LISTS",
    "Assignment",
    "Modification",
    "StatementError",
    "apply_modifications",
    "has_number",
    "parse_assignments",
    "parse_modifications",
    "report_modifications",
]
