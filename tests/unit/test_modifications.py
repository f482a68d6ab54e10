"""The safe assignment parser and modification plans (compatibility §6.1, §6.2); no NEURON."""

from types import SimpleNamespace

import pytest

from neurodamus.circuit.modifications import (
    StatementError,
    has_number,
    parse_assignments,
    parse_modifications,
)
from neurodamus.errors import ConfigError


@pytest.mark.parametrize("text, expected", [
    ("%s.gnabar_hh *= 0.5; %s.cm = 2", [("%s", "gnabar_hh", "*=", 0.5), ("%s", "cm", "=", 2)]),
    ("%s.e_GABAA = -80.0 %s.e_GABAB = -97.0",            # hoc style: blanks between statements
     [("%s", "e_GABAA", "=", -80), ("%s", "e_GABAB", "=", -97)]),
    ("%s.a = %s.b * 2 + 1e-3\n%s.c /= 4", [("%s", "a", "=", 6.001), ("%s", "c", "/=", 4)]),
    ("somatic.cm = 2", [("somatic", "cm", "=", 2)]),
    ("soma [ 0 ] . gbar = -1", [("soma[0]", "gbar", "=", -1)]),
    ("cm *= +1.5", [(None, "cm", "*=", 1.5)]),
])
def test_assignments_are_parsed(text, expected):
    obj = SimpleNamespace(b=3.0)
    got = [(s.owner, s.attr, s.op, s.value(obj)) for s in parse_assignments(text)]
    assert got == [(o, a, op, pytest.approx(v)) for o, a, op, v in expected]


@pytest.mark.parametrize("text", [
    "", "print(1)", "%s.x", "%s.x == 2", "x = y", "%s.x = 1; import os",
    "%s.x = __import__('os').system('true')", "%s.x = (lambda: 1)()", "%s.x = 1 if 1 else 2",
    "%s.x = 'a'", "%s._x = 1", "%s.x = True", "%s.x = [1]", "%s.x = %s.__class__",
    "exec('x') %s.y = 1",
])
def test_anything_but_an_assignment_is_refused(text):
    with pytest.raises(StatementError):
        parse_assignments(text)


def test_literal_only_and_apply():
    with pytest.raises(StatementError, match="not a numeric literal"):
        parse_assignments("%s.x = %s.y", literal_only=True)
    with pytest.raises(StatementError, match="not a numeric literal"):
        parse_assignments("soma[0].x = 1 + 2", literal_only=True)
    (s,) = parse_assignments("%s.g *= 2")
    obj = SimpleNamespace(g=1.5)
    s.apply(obj)
    s.apply(obj)
    assert obj.g == 6.0
    assert s.attributes == {"g"}
    (s,) = parse_assignments("%s.a = %s.b + %s.c")
    assert s.attributes == {"a", "b", "c"} and s.refs == {"b", "c"}


def test_has_number():
    obj = SimpleNamespace(x=1.0, n=3, flag=True, f=print, _private=1.0)
    assert has_number(obj, "x") and has_number(obj, "n")
    assert not has_number(obj, "flag") and not has_number(obj, "f")
    assert not has_number(obj, "missing") and not has_number(obj, "_private")


class _Type:
    def __init__(self, name):
        self.name = name


def _mod(name, mtype, **kw):
    return SimpleNamespace(name=name, type=_Type(mtype), **kw)


def _settings(*mods):
    return SimpleNamespace(conditions=SimpleNamespace(modifications=lambda: list(mods)),
                           node_sets=SimpleNamespace(names={"A", "B"}), config_path="sim.json")


def test_modification_plans():
    mods = parse_modifications(_settings(
        _mod("t", "ttx", node_set="A"),
        _mod("all", "configure_all_sections", node_set="A",
             section_configure="%s.gbar_NaHH *= 0.5; %s.cm = %s.cm * 2"),
        _mod("lst", "section_list", node_set="B", section_configure="apical.Ra = 50 apical.cm = 2"),
        _mod("sec", "section", node_set="B", section_configure="dend[3].e_pas = -65"),
        _mod("cs", "compartment_set", compartment_set="X", section_configure="g_pas *= 2")))
    assert [m.type for m in mods] == ["ttx", "configure_all_sections", "section_list",
                                      "section", "compartment_set"]
    assert mods[1].attributes == {"gbar_NaHH", "cm"}
    assert mods[2].owner == "apical" and mods[3].owner == ("dend", 3)
    assert mods[4].where == "sim.json: conditions.modifications[4] (cs)"


@pytest.mark.parametrize("mod, message", [
    (_mod("m", "ttx", node_set="Nope"), ".node_set: unknown node set 'Nope'"),
    (_mod("m", "configure_all_sections", node_set="A", section_configure="soma.cm = 1"),
     "every target must be '%s.<attribute>'"),
    (_mod("m", "section_list", node_set="A", section_configure="somatic.cm = 1 apical.cm = 1"),
     "all statements must name the same section list"),
    (_mod("m", "section_list", node_set="A", section_configure="dendrites.cm = 1"),
     "unknown section list 'dendrites'"),
    (_mod("m", "section_list", node_set="A", section_configure="somatic.cm = somatic.Ra"),
     "is not a numeric literal"),
    (_mod("m", "section", node_set="A", section_configure="spine[0].cm = 1"),
     "'spine[0]' is not a section"),
    (_mod("m", "compartment_set", compartment_set="X", section_configure="%s.cm = 1"),
     "no section prefix"),
])
def test_bad_modifications_name_the_block(mod, message):
    with pytest.raises(ConfigError) as err:
        parse_modifications(_settings(mod))
    assert str(err.value).startswith("sim.json: conditions.modifications[0] (m).")
    assert message in str(err.value)
