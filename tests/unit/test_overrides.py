"""connection_overrides planning without NEURON (compatibility §6.1)."""

from types import SimpleNamespace

import numpy as np
import pytest

from neurodamus.config.settings import EdgePopulationInfo
from neurodamus.connectivity.edges import Connection, SynapseTable
from neurodamus.connectivity.overrides import Override, OverridePlan, parse_overrides
from neurodamus.errors import ConfigError

EP = EdgePopulationInfo("a__b", "edges.h5", "chemical", "a", "b")
GAP = EdgePopulationInfo("b__b", "gaps.h5", "electrical", "b", "b")


class Resolver:
    """Node sets over populations a (raw 0..3) and b (raw 0..3); gids: a = raw, b = raw + 10."""

    SETS = {"All": {"a": [0, 1, 2, 3], "b": [0, 1, 2, 3]}, "A": {"a": [0, 1, 2, 3]},
            "B": {"b": [0, 1, 2, 3]}, "a0": {"a": [0]}, "a01": {"a": [0, 1]}, "b1": {"b": [1]},
            "b12": {"b": [1, 2]}, "Empty": {}}
    OFFSETS = {"a": 0, "b": 10}

    def known(self, name):
        return name in self.SETS

    def raw_ids(self, name, population):
        return np.array(self.SETS[name].get(population, []), np.int64)

    def gids(self, name, include_virtual=False):
        return np.sort(np.concatenate([self.raw_ids(name, p) + off
                                       for p, off in self.OFFSETS.items()]))


def override(i, source, target, **kw):
    return Override(index=i, name=f"o{i}", source=source, target=target, config_path="sim.json",
                    **kw)


def table():
    """Targets b0..b2 (gids 10..12); connections (t, s): (10,1) (11,1) (11,0) (12,0) with 2, 1,
    2, 1 synapses."""
    conns = [(10, 1, 2), (11, 1, 1), (11, 0, 2), (12, 0, 1)]
    tg, sg, connections, pos = [], [], [], 0
    for t, s, n in conns:
        tg += [t] * n
        sg += [s] * n
        connections.append(Connection(t, s, pos, pos + n))
        pos += n
    n = pos
    return SynapseTable(EP, 0, 10, np.array(tg), np.array(sg), np.arange(n) + 100,
                        np.zeros(n, int), np.full(n, 0.5), None,
                        {"weight": np.ones(n), "delay": np.full(n, 1.0)}, connections)


def plan(*overrides):
    return OverridePlan(list(overrides), Resolver())


def test_creation_modes():
    assert plan().creation_mode(EP) == "all"
    assert plan(override(0, "A", "B", weight=0.0)).creation_mode(EP) == "none"
    assert plan(override(0, "A", "B", weight=0.0, delay=5.0)).creation_mode(EP) == "none"
    assert plan(override(0, "A", "B", weight=2.0)).creation_mode(EP) == "pathways"
    assert plan(override(0, "a0", "Empty")).matching(EP) == []          # no intersection
    t, _ = plan(override(0, "A", "B", weight=0.0)).apply(table())
    assert len(t) == 0 and t.connections == []


def test_only_covered_connections_are_created_and_ids_kept():
    t, _ = plan(override(0, "a0", "B"), override(1, "a01", "b1", delay=3.0)).apply(table())
    assert [(c.tgid, c.sgid) for c in t.connections] == [(11, 0), (12, 0)]
    assert t.synapse_id.tolist() == [103, 104, 105]      # ids survive the filtering
    assert [(c.start, c.stop) for c in t.connections] == [(0, 2), (2, 3)]
    # a delayed override alone creates nothing
    t, _ = plan(override(0, "A", "B", delay=2.0), override(1, "A", "B", delay=4.0)).apply(table())
    assert len(t) == 0


def test_configure_phase_sets_resets_and_accumulates():
    from neurodamus.circuit.modifications import parse_assignments

    s1, s2 = parse_assignments("%s.Use = 0.1"), parse_assignments("%s.Dep *= 2")
    overrides = [
        override(0, "A", "B", weight=2.0, spont_minis=3.0, synapse_delay_override=4.5,
                 synapse_configure=tuple(s1), modoverride="X"),
        override(1, "a0", "b12", weight=0.5, synapse_configure=tuple(s2),
                 synapse_delay_override=0.0, neuromodulation_strength=7.0),
        override(2, "A", "b1", delay=30.0, weight=1.5),
        override(3, "A", "b1", delay=10.0, weight=0.7),
    ]
    t, conf = plan(*overrides).apply(table())
    assert len(t) == 6
    # rows: (10,1)x2 (11,1) (11,0)x2 (12,0)
    assert conf.weight_factor.tolist() == [2.0, 2.0, 2.0, 0.5, 0.5, 0.5]      # last one wins
    assert np.isnan(conf.spont_minis[3:]).all() and conf.spont_minis[:3].tolist() == [3.0] * 3
    assert conf.delay.tolist() == [4.5, 4.5, 4.5, 1.0, 1.0, 1.0]   # 0 = no override: edge delay
    assert conf.helper == ["X"] * 6
    assert np.isnan(conf.neuromod_strength[:3]).all() and conf.neuromod_strength[3] == 7.0
    assert [[o.index for o in c] for c in conf.configure] == [[0], [0], [0, 1], [0, 1]]
    assert [[(d, w) for d, w, _ in c] for c in conf.delayed] == \
        [[], [(10.0, 0.7), (30.0, 1.5)], [(10.0, 0.7), (30.0, 1.5)], []]


def test_weight_zero_consistency_checks():
    # partly covered by a delayed override: error naming the block
    with pytest.raises(ConfigError, match=r"connection_overrides\[0\] \(o0\)\.weight: weight 0 "
                       r"between 'A' and 'B' is only partly covered by the delayed override "
                       r"\[1\] 'o1'"):
        plan(override(0, "A", "B", weight=0.0),
             override(1, "a0", "B", delay=5.0)).check([EP])
    # fully covered: a connection switched on later, no warning
    assert plan(override(0, "a0", "b1", weight=0.0),
                override(1, "A", "B", delay=5.0)).check([EP]) == []
    # not covered at all, nothing after it: won't be instantiated
    (w,) = plan(override(0, "A", "B", weight=0.0)).check([EP])
    assert w.startswith("sim.json: connection_overrides[0] (o0).weight:") and \
        "won't be instantiated" in w
    # followed by a positive weight on the same pair: a warning naming both
    (w,) = plan(override(0, "A", "B", weight=0.0), override(1, "a0", "b1", weight=2.0)) \
        .check([EP])
    assert "is followed by [1] 'o1' ('a0' -> 'b1') with weight 2" in w


def test_unmatched_and_gap_junction_only_overrides_warn_differently():
    warnings = plan(override(0, "B", "A", weight=1.0)).check([EP])
    assert warnings == ["sim.json: connection_overrides[0] (o0): matches no edge population "
                        "(source 'B', target 'A'): ignored"]
    assert plan(override(0, "B", "B", weight=0.0)).check([EP, GAP]) == []
    lines = plan(override(0, "B", "B", weight=0.0)).chain_lines([GAP])
    assert lines == ["Connection overrides ignored for gap junctions 'b__b': [0] 'o0'"]


def _settings(*records):
    sim = SimpleNamespace(connection_overrides=lambda: list(records))
    return SimpleNamespace(sim=sim, config_path="sim.json")


def _record(name, source, target, **kw):
    fields = dict(weight=1.0, delay=0.0, spont_minis=None, synapse_delay_override=None,
                  synapse_configure=None, modoverride=None, neuromodulation_dtc=None,
                  neuromodulation_strength=None)
    fields.update(kw)
    return SimpleNamespace(name=name, source=source, target=target, **fields)


def test_parse_collects_every_problem_with_its_key():
    records = [_record("u", "Nope", "B"), _record("m", "A", "B", spont_minis=-1.0),
               _record("s", "A", "B", synapse_configure="%s.Use = 1 os.system(1)"),
               _record("g", "A", "B", synapse_configure="tau = 2"),
               _record("h", "A", "B", modoverride="DoesNotExist")]
    with pytest.raises(ConfigError) as err:
        parse_overrides(_settings(*records), Resolver())
    text = str(err.value)
    assert "sim.json: connection_overrides[0] (u).source: unknown node set 'Nope'" in text
    assert "connection_overrides[1] (m).spont_minis: a rate must be >= 0 Hz, got -1" in text
    assert "connection_overrides[2] (s).synapse_configure:" in text
    assert "connection_overrides[3] (g).synapse_configure: 'tau = 2'" in text
    assert "connection_overrides[4] (h).modoverride: 'DoesNotExist': DoesNotExistHelper.hoc " \
           "not found" in text


def test_parse_keeps_statements_and_defaults():
    (o,) = parse_overrides(_settings(_record(
        "ok", "A", "B",
        synapse_configure="%s.e_GABAA = -80 %s.Use *= 0.5; cao_CR_GluSynapse = 1.2")),
        Resolver())
    assert [(s.owner, s.attr, s.op) for s in o.synapse_configure] == \
        [("%s", "e_GABAA", "="), ("%s", "Use", "*="), (None, "cao_CR_GluSynapse", "=")]
    assert o.weight == 1.0 and not o.delayed and o.where("weight") == \
        "sim.json: connection_overrides[0] (ok).weight"
