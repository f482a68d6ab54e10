"""Spontaneous minis: one ``InhPoissonStim`` + NetCon per synapse (contract §3.5, §3.7, §3.9).

``mini_rates`` (pure) decides each synapse's rate: a ``connection_overrides.spont_minis`` value
when one is given for its row, otherwise the target cell's ``inh_mini_frequency`` (syn_type_id
< 100) or ``exc_mini_frequency``. ``MinisBuilder.attach`` creates the NEURON objects for the
synapses of one ``SynapseTable`` right after they exist.
"""

from __future__ import annotations

from array import array

import numpy as np

from ..circuit.offsets import population_hash_id
from ..errors import CircuitError, ConfigError
from .hoc_objects import ObjectList, load
from .synapses import _nc_type_index

MINI_DELAY = 0.1   # ms, NetCon delay of every mini (contract §3.5)
MINI_TYPE = 1      # nc_type written to weight[nc_type_param_<mechanism>]


def mini_rates(syn_type: np.ndarray, exc_rate: np.ndarray, inh_rate: np.ndarray,
               spont_minis: np.ndarray | None = None) -> np.ndarray:
    """Per-row rate (Hz). ``spont_minis`` rows that are NaN fall back to the cell attributes."""
    rates = np.where(np.asarray(syn_type) < 100, inh_rate, exc_rate).astype(float)
    if spont_minis is not None:
        spont = np.asarray(spont_minis, dtype=float)
        rates = np.where(np.isnan(spont), rates, spont)
    return rates


def mini_stream_ids(synapse_id: int, tgid: int, src_pop_id: int, dst_pop_id: int,
                    minis_seed: int) -> tuple[tuple, tuple]:
    """(exponential, uniform) stream ids of one synapse's generator (contract §3.7)."""
    base = src_pop_id * 65536 + dst_pop_id + minis_seed
    first = (synapse_id + 200, tgid + 251)
    return first + (base + 300,), first + (base + 350,)


class MinisBuilder:
    """Creates and keeps the minis generators of a run (NEURON side)."""

    def __init__(self, h, settings, cells_by_gid: dict):
        self.h = h
        self.cells = cells_by_gid
        self.minis_seed = int(settings.run.minis_seed)
        self.tstop = float(settings.run.tstop)
        self.config_path = settings.config_path
        self._nc_index: dict[str, int] = {}
        # kept in hoc Lists (hoc_objects.py); entry i of each is generator i
        self.stims = ObjectList(h)
        self.netcons = ObjectList(h)
        # time-bin / rate Vector pairs, one per connection and rate (kept alive: ndminis.hoc)
        self.rate_vectors = ObjectList(h)
        self.generator_rates = array("d")
        self.n_generators = 0

    def generators(self):
        """(InhPoissonStim, NetCon, rate Hz) of every generator, in creation order."""
        return zip(self.stims, self.netcons, self.generator_rates)

    def _nc_type_param(self, pp) -> int:
        kind = pp.hname().split("[")[0]
        if kind not in self._nc_index:
            self._nc_index[kind] = _nc_type_index(self.h, kind)
        return self._nc_index[kind]

    def rates(self, table, spont_minis=None) -> np.ndarray:
        exc = np.empty(len(table))
        inh = np.empty(len(table))
        for conn in table.connections:
            attrs = self.cells[conn.tgid].attrs
            exc[conn.start:conn.stop] = float(attrs.get("exc_mini_frequency", 0.0))
            inh[conn.start:conn.stop] = float(attrs.get("inh_mini_frequency", 0.0))
        rates = mini_rates(table.params["syn_type"], exc, inh, spont_minis)
        bad = np.flatnonzero(rates < 0)
        if len(bad):
            r = int(bad[0])
            if spont_minis is not None and not np.isnan(spont_minis[r]):
                raise ConfigError(f"{self.config_path}: connection_overrides: spont_minis is "
                                  f"negative ({rates[r]} Hz) for edges of "
                                  f"{table.edge_pop.name} onto gid {int(table.tgid[r])}")
            cell = self.cells[int(table.tgid[r])]
            which = "inh" if table.params["syn_type"][r] < 100 else "exc"
            raise CircuitError(f"population '{cell.population}', node {cell.raw_id}: "
                               f"{which}_mini_frequency is negative ({rates[r]} Hz)")
        return rates

    def attach(self, table, row_pp, spont_minis=None, weight_factor=None) -> int:
        """Generators for the synapses of ``table`` (``row_pp`` as returned by the builder).

        ``spont_minis``: optional per-row rate (Hz, NaN = unset) from connection overrides;
        ``weight_factor``: optional per-row override weight. Returns the number created.
        """
        if not len(table):
            return 0
        h = self.h
        if not hasattr(h, "InhPoissonStim"):
            raise CircuitError("the mechanism library lacks InhPoissonStim (core/mod), needed "
                               "for spontaneous minis")
        rates = self.rates(table, spont_minis)
        if not np.any(rates > 0):
            return 0
        ep = table.edge_pop
        src_id, dst_id = population_hash_id(ep.source), population_hash_id(ep.target)
        weight = table.params["weight"]
        wf = np.ones(len(table)) if weight_factor is None else np.asarray(weight_factor, float)
        load(h, "ndminis.hoc")
        make = h.nd_minis_generator
        stims, netcons, tstop = self.stims.hoc, self.netcons.hoc, self.tstop
        vectors = self.rate_vectors.hoc
        keep_rate = self.generator_rates.append
        created = 0
        for conn in table.connections:
            pair_rate = None   # a new Vector pair per connection and per rate (ndminis.hoc)
            for r in range(conn.start, conn.stop):
                pp = row_pp[r]
                rate = float(rates[r])
                if pp is None or rate == 0:
                    continue
                exp_ids, unif_ids = mini_stream_ids(int(table.synapse_id[r]), conn.tgid,
                                                    src_id, dst_id, self.minis_seed)
                make(pp, rate, tstop, *exp_ids, *unif_ids, MINI_DELAY,
                     float(weight[r] * wf[r]), self._nc_type_param(pp), MINI_TYPE,
                     stims, netcons, vectors, int(rate != pair_rate))
                pair_rate = rate
                keep_rate(rate)
                created += 1
        self.n_generators += created
        return created


__all__ = ["MINI_DELAY", "MINI_TYPE", "MinisBuilder", "mini_rates", "mini_stream_ids"]
