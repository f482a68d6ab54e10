"""``connection_overrides`` (contract §6.1): parse, check, match, plan. No NEURON here.

Every override is a libsonata record (``weight`` defaults to 1, ``delay`` to 0) between a
``source`` and a ``target`` node set. Node sets are materialised on whole populations
(``NodeSetResolver``), so every decision below is the same on every rank.

Creation phase, per edge population (gap junctions excluded):

- no matching override: every edge is created;
- exactly one matching override (delayed ones count) with weight ~ 0: nothing is created;
- otherwise each matching non-delayed override, in config order, creates the connections
  between its source and target; the first one to cover a connection locks it, and edges no
  matching non-delayed override covers are not created.

Configure phase: every matching override is visited in config order on every created
connection between its node sets. ``weight`` sets the weight factor, ``spont_minis`` and
``synapse_delay_override`` set (a later override without them resets them), statements of
``synapse_configure`` accumulate, ``modoverride`` sets the synapse helper, the neuromodulation
fields set the neuromodulatory NetCon weights, and an override with ``delay > 0`` only adds a
(delay, weight) pair to the connection's delayed weight changes (contract §3.6).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace

import numpy as np

from .. import paths
from ..circuit.modifications import WILDCARD, StatementError, parse_assignments
from ..config.issues import IssueList
from ..config.sonata_parse import entry_positions

#: weights whose magnitude is below this count as 0 (creation phase, consistency checks)
ZERO_WEIGHT = 1e-12
_FIELDS = ("weight", "delay", "spont_minis", "synapse_delay_override", "synapse_configure",
           "modoverride", "neuromodulation_dtc", "neuromodulation_strength")


@dataclass(frozen=True)
class Override:
    index: int
    name: str
    source: str
    target: str
    weight: float = 1.0
    delay: float = 0.0
    spont_minis: float | None = None
    synapse_delay_override: float | None = None
    synapse_configure: tuple = ()          # parsed Assignments
    synapse_configure_text: str | None = None
    modoverride: str | None = None
    neuromodulation_dtc: float | None = None
    neuromodulation_strength: float | None = None
    config_path: str = ""

    @property
    def delayed(self) -> bool:
        return self.delay > 0

    @property
    def zero_weight(self) -> bool:
        return abs(self.weight) < ZERO_WEIGHT

    def where(self, key: str | None = None) -> str:
        text = f"{self.config_path}: connection_overrides[{self.index}] ({self.name})"
        return f"{text}.{key}" if key else text

    @property
    def label(self) -> str:
        return f"[{self.index}] '{self.name}'"

    def describe(self) -> str:
        """``[2] 'exc' Excitatory -> Excitatory: weight 2, ...`` for the override log."""
        if self.delayed:
            parts = [f"at {self.delay:g} ms weight {self.weight:g} (delayed)"]
        else:
            parts = [f"weight {self.weight:g}"]
            if self.spont_minis is not None:
                parts.append(f"spont_minis {self.spont_minis:g} Hz")
            if self.synapse_delay_override:
                parts.append(f"synapse_delay_override {self.synapse_delay_override:g} ms")
            if self.synapse_configure_text:
                parts.append(f"synapse_configure '{self.synapse_configure_text}'")
            if self.modoverride:
                parts.append(f"modoverride {self.modoverride}")
            if self.neuromodulation_strength is not None:
                parts.append(f"neuromodulation_strength {self.neuromodulation_strength:g}")
            if self.neuromodulation_dtc is not None:
                parts.append(f"neuromodulation_dtc {self.neuromodulation_dtc:g}")
        return f"{self.label} {self.source} -> {self.target}: {', '.join(parts)}"


def helper_file(name: str) -> str | None:
    """``<name>Helper.hoc`` on the HOC search path (HOC_LIBRARY_PATH, then core/hoc)."""
    for folder in paths.hoc_search_path():
        path = os.path.join(folder, f"{name}Helper.hoc")
        if os.path.isfile(path):
            return path
    return None


def parse_overrides(settings, resolver) -> list[Override]:
    """Read and check every ``connection_overrides`` record; raise one ConfigError."""
    issues = IssueList()
    result = []
    try:
        records = list(settings.sim.connection_overrides())
    except (AttributeError, TypeError):
        records = []
    config = str(settings.config_path)
    positions = entry_positions(config, "connection_overrides")
    for i, rec in enumerate(records):
        name = rec.name or f"#{i}"
        key = f"connection_overrides[{positions.get(rec.name, i)}] ({name})"
        ok = True
        for end in ("source", "target"):
            value = getattr(rec, end)
            if not value or not resolver.known(value):
                issues.fatal(config, f"{key}.{end}", f"unknown node set '{value}'")
                ok = False
        values = {f: getattr(rec, f) for f in _FIELDS}
        for f in ("weight", "delay", "spont_minis", "synapse_delay_override",
                  "neuromodulation_dtc", "neuromodulation_strength"):
            v = values[f]
            if v is not None and not math.isfinite(v):
                issues.fatal(config, f"{key}.{f}", f"must be a finite number, got {v}")
                ok = False
        if values["spont_minis"] is not None and values["spont_minis"] < 0:
            issues.fatal(config, f"{key}.spont_minis", f"a rate must be >= 0 Hz, got "
                         f"{values['spont_minis']:g}")
            ok = False
        if values["synapse_delay_override"] is not None and values["synapse_delay_override"] < 0:
            issues.fatal(config, f"{key}.synapse_delay_override", f"must be >= 0 ms, got "
                         f"{values['synapse_delay_override']:g}")
            ok = False
        statements = ()
        text = values["synapse_configure"]
        if text is not None:
            try:
                statements = tuple(parse_assignments(text))
                for s in statements:
                    if s.owner not in (WILDCARD, None):
                        raise StatementError(f"'{s.text}': the target must be '%s.<attribute>' "
                                             f"(the synapse) or a mechanism global "
                                             f"'<name>_<Mechanism>'")
                    if s.owner is None and (s.op != "=" or "_" not in s.attr.strip("_")):
                        raise StatementError(f"'{s.text}': only '%s.<attribute> (op)= value' "
                                             f"or '<name>_<Mechanism> = value' are allowed")
            except StatementError as exc:
                issues.fatal(config, f"{key}.synapse_configure", str(exc))
                ok = False
        mod = values["modoverride"]
        if mod is not None and helper_file(mod) is None:
            issues.fatal(config, f"{key}.modoverride", f"'{mod}': {mod}Helper.hoc not found on "
                         f"the HOC search path ({':'.join(paths.hoc_search_path())})")
            ok = False
        if ok:
            result.append(Override(
                index=i, name=name, source=rec.source, target=rec.target,
                weight=float(values["weight"]), delay=float(values["delay"] or 0.0),
                spont_minis=values["spont_minis"],
                synapse_delay_override=values["synapse_delay_override"],
                synapse_configure=statements, synapse_configure_text=text,
                modoverride=mod, neuromodulation_dtc=values["neuromodulation_dtc"],
                neuromodulation_strength=values["neuromodulation_strength"],
                config_path=config))
    issues.raise_if_fatal()
    return result


@dataclass
class ConnectionConfig:
    """What the overrides decided for the rows of one (filtered) SynapseTable."""

    weight_factor: np.ndarray            # per row
    delay: np.ndarray                    # per row: final NetCon delay
    spont_minis: np.ndarray              # per row: Hz, NaN = cell attributes (contract §3.9)
    helper: list                         # per row: modoverride name or None
    neuromod_strength: np.ndarray        # per row: NaN = edge column
    neuromod_dtc: np.ndarray             # per row: NaN = edge column
    configure: list = field(default_factory=list)   # per connection: tuple of Overrides
    delayed: list = field(default_factory=list)     # per connection: [(delay, weight, Override)]

    @property
    def has_configure(self) -> bool:
        return any(self.configure)

    @property
    def has_delayed(self) -> bool:
        return any(self.delayed)


def filter_connections(table, keep: np.ndarray):
    """The table with only the connections where ``keep`` is True (synapse ids unchanged)."""
    if keep.all():
        return table
    conns = [c for c, k in zip(table.connections, keep) if k]
    rows = np.concatenate([np.arange(c.start, c.stop) for c in conns]) if conns \
        else np.zeros(0, np.int64)
    new_conns, pos = [], 0
    for c in conns:
        n = c.stop - c.start
        new_conns.append(replace(c, start=pos, stop=pos + n))
        pos += n

    def take(a):
        return None if a is None else a[rows]
    return replace(table, tgid=table.tgid[rows], sgid=table.sgid[rows],
                   synapse_id=table.synapse_id[rows], section_id=table.section_id[rows],
                   x=table.x[rows], segment=take(table.segment),
                   params={k: v[rows] for k, v in table.params.items()}, connections=new_conns)


class OverridePlan:
    """The overrides of a run and what they mean for each edge population."""

    def __init__(self, overrides: list[Override], resolver):
        self.overrides = overrides
        self.resolver = resolver
        self._matching: dict = {}
        self._gid_sets: dict = {}

    # ---- matching ---------------------------------------------------------------------
    def matching(self, ep) -> list[Override]:
        """Overrides whose source meets ep's source population and target its target."""
        if ep.name not in self._matching:
            r = self.resolver
            self._matching[ep.name] = [
                o for o in self.overrides
                if len(r.raw_ids(o.source, ep.source)) and len(r.raw_ids(o.target, ep.target))]
        return self._matching[ep.name]

    def modoverrides(self, ep) -> list[str]:
        return sorted({o.modoverride for o in self.matching(ep)
                       if o.modoverride and not o.delayed})

    def creation_mode(self, ep) -> str:
        """'all', 'none' (single weight-0 override) or 'pathways'."""
        matching = self.matching(ep)
        if not matching:
            return "all"
        if len(matching) == 1 and matching[0].zero_weight:
            return "none"
        return "pathways"

    def _select(self, o: Override, ep, src_raw: np.ndarray, tgt_raw: np.ndarray) -> np.ndarray:
        r = self.resolver
        return np.isin(src_raw, r.raw_ids(o.source, ep.source)) & \
            np.isin(tgt_raw, r.raw_ids(o.target, ep.target))

    # ---- creation + configure ---------------------------------------------------------
    def apply(self, table, nan_minis: bool = True):
        """(filtered table, ConnectionConfig) for one edge population's SynapseTable."""
        ep = table.edge_pop
        conns = table.connections
        n_c = len(conns)
        src_raw = np.array([c.sgid for c in conns], np.int64) - table.source_offset
        tgt_raw = np.array([c.tgid for c in conns], np.int64) - table.target_offset
        matching = self.matching(ep)
        mode = self.creation_mode(ep)
        if mode == "all":
            keep = np.ones(n_c, bool)
        elif mode == "none":
            keep = np.zeros(n_c, bool)
        else:
            keep = np.zeros(n_c, bool)
            for o in matching:
                if not o.delayed:
                    keep |= self._select(o, ep, src_raw, tgt_raw)
        table = filter_connections(table, keep)
        src_raw, tgt_raw = src_raw[keep], tgt_raw[keep]
        n_c = int(keep.sum())

        wf = np.ones(n_c)
        minis = np.full(n_c, np.nan)
        delay_ov = np.full(n_c, np.nan)
        strength = np.full(n_c, np.nan)
        dtc = np.full(n_c, np.nan)
        helper = [None] * n_c
        configure = [[] for _ in range(n_c)]
        delayed = [[] for _ in range(n_c)]
        for o in matching:
            sel = self._select(o, ep, src_raw, tgt_raw)
            idx = np.flatnonzero(sel)
            if not len(idx):
                continue
            if o.delayed:
                for c in idx:
                    delayed[c].append((o.delay, o.weight, o))
                continue
            wf[sel] = o.weight
            minis[sel] = np.nan if o.spont_minis is None else o.spont_minis
            delay_ov[sel] = o.synapse_delay_override if o.synapse_delay_override else np.nan
            if o.neuromodulation_strength is not None:
                strength[sel] = o.neuromodulation_strength
            if o.neuromodulation_dtc is not None:
                dtc[sel] = o.neuromodulation_dtc
            for c in idx:
                if o.synapse_configure:
                    configure[c].append(o)
                if o.modoverride:
                    helper[c] = o.modoverride
        lengths = np.array([c.stop - c.start for c in table.connections], np.int64)

        def rows(a):
            return np.repeat(a, lengths)
        row_delay_ov = rows(delay_ov)
        edge_delay = table.params["delay"] if "delay" in table.params else np.zeros(len(table))
        config = ConnectionConfig(
            weight_factor=rows(wf),
            delay=np.where(np.isnan(row_delay_ov), edge_delay, row_delay_ov),
            spont_minis=rows(minis),
            helper=[h for h, n in zip(helper, lengths) for _ in range(n)],
            neuromod_strength=rows(strength), neuromod_dtc=rows(dtc),
            configure=[tuple(c) for c in configure],
            delayed=[sorted(d, key=lambda p: p[0]) for d in delayed])
        return table, config

    # ---- checks and log -----------------------------------------------------------------
    def _sets(self, o: Override):
        """(source gids, target gids) over every population, virtual ones included."""
        key = (o.source, o.target)
        if key not in self._gid_sets:
            r = self.resolver
            self._gid_sets[key] = (r.gids(o.source, include_virtual=True),
                                   r.gids(o.target, include_virtual=True))
        return self._gid_sets[key]

    def check(self, edge_populations=()) -> list[str]:
        """Consistency of weight-0 overrides (contract §6.1): raise ConfigError, return warnings.

        Overrides that match no edge population, or only gap junctions, get a warning of
        their own and no consistency check.
        """
        issues = IssueList()
        warnings = []
        used = {o.index: [ep for ep in edge_populations if o in self.matching(ep)]
                for o in self.overrides}
        for o in self.overrides:
            if edge_populations and not used[o.index]:
                warnings.append(f"{o.where()}: matches no edge population (source '{o.source}'"
                                f", target '{o.target}'): ignored")
        for z in self.overrides:
            if not z.zero_weight or z.delayed:
                continue
            if edge_populations and all(ep.type == "electrical" for ep in used[z.index]):
                continue
            zs, zt = self._sets(z)
            overlapping, covering = [], []
            for d in self.overrides:
                if not d.delayed:
                    continue
                ds, dt = self._sets(d)
                if np.isin(zs, ds).any() and np.isin(zt, dt).any():
                    overlapping.append(d)
                    if np.isin(zs, ds).all() and np.isin(zt, dt).all():
                        covering.append(d)
            if overlapping and not covering:
                d = overlapping[0]
                issues.fatal(z.config_path, f"connection_overrides[{z.index}] ({z.name}).weight",
                             f"weight 0 between '{z.source}' and '{z.target}' is only partly "
                             f"covered by the delayed override {d.label} ('{d.source}' -> "
                             f"'{d.target}', delay {d.delay:g} ms): a delayed override must "
                             f"cover every connection it re-enables")
                continue
            if overlapping:
                continue
            later = [w for w in self.overrides if w.index > z.index and not w.delayed
                     and not w.zero_weight]
            later = [w for w in later if self._overlaps(z, w)]
            if later:
                w = later[0]
                warnings.append(
                    f"{z.where('weight')}: weight 0 between '{z.source}' and '{z.target}' is "
                    f"followed by {w.label} ('{w.source}' -> '{w.target}') with weight "
                    f"{w.weight:g}, which overlaps it: the later weight applies there")
            else:
                warnings.append(f"{z.where('weight')}: weight 0 and no delayed override "
                                f"re-enables it: connections from '{z.source}' to "
                                f"'{z.target}' won't be instantiated (or stay silent)")
        issues.raise_if_fatal()
        return warnings

    def _overlaps(self, a: Override, b: Override) -> bool:
        a_s, a_t = self._sets(a)
        b_s, b_t = self._sets(b)
        return bool(np.isin(a_s, b_s).any() and np.isin(a_t, b_t).any())

    def chain_lines(self, edge_populations) -> list[str]:
        """One block per edge population: how its connections are created and configured."""
        lines = []
        for ep in edge_populations:
            matching = self.matching(ep)
            if not matching:
                continue
            if ep.type == "electrical":
                lines.append(f"Connection overrides ignored for gap junctions '{ep.name}': "
                             f"{', '.join(o.label for o in matching)}")
                continue
            mode = self.creation_mode(ep)
            creators = [o.label for o in matching if not o.delayed]
            create = {"none": "nothing (a single weight-0 override)",
                      "pathways": ("only the pathways of " + ", ".join(creators)) if creators
                      else "nothing (every matching override is delayed)"}[mode]
            lines.append(f"Connection overrides for '{ep.name}' ({ep.source} -> {ep.target}); "
                         f"creates {create}:")
            lines += [f"  {o.describe()}" for o in matching]
        return lines


def plan_overrides(settings, resolver) -> tuple[OverridePlan, list[str]]:
    """Parse and check the overrides; returns the plan and the warnings to print once."""
    plan = OverridePlan(parse_overrides(settings, resolver), resolver)
    return plan, plan.check(settings.edge_populations)


__all__ = [
    "ZERO_WEIGHT",
    "ConnectionConfig",
    "Override",
    "OverridePlan",
    "filter_connections",
    "helper_file",
    "parse_overrides",
    "plan_overrides",
]
