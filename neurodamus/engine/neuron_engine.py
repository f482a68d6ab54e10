"""Global simulator settings and the chunked NEURON run loop (contract §5)."""

from __future__ import annotations

from ..errors import ConfigError

CHUNK_MS = 25.0


def apply_run_settings(h, settings) -> None:
    run, cond = settings.run, settings.conditions
    h.tstop = run.tstop
    h.dt = run.dt
    h.steps_per_ms = 1.0 / run.dt
    h.secondorder = settings.integration_method
    h.celsius = cond.celsius
    h.v_init = cond.v_init
    h.Random().Random123_globalindex(run.random_seed)  # before any stream is made (contract §11.10)


def apply_mechanism_globals(h, settings) -> None:
    """``conditions.mechanisms``: {SUFFIX: {var: value}} -> hoc global var_SUFFIX
    (contract §5.1)."""
    mechanisms = settings.conditions.mechanisms or {}
    for suffix, values in mechanisms.items():
        for var, value in dict(values).items():
            name = f"{var}_{suffix}"
            if not h.name_declared(name):
                raise ConfigError(f"{settings.config_path}: conditions.mechanisms.{suffix}.{var}"
                                  f": the mechanism library has no global '{name}'")
            if isinstance(value, bool):
                value = 1.0 if value else 0.0
            try:
                setattr(h, name, float(value))
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"{settings.config_path}: conditions.mechanisms.{suffix}."
                                  f"{var}: not a number: {value!r}") from exc


def initialize(h, pc, compress_spikes: bool = False) -> None:
    """Transfer set-up, spike exchange, memory layout and maximum step, then ``stdinit``
    (contract §5.2). ``compress_spikes``: ``spike_compress(3, 1, 0)`` as the established
    driver does: spike times go as 1-byte steps inside the exchange interval, gids as 1 byte
    where a rank has fewer than 256 cells, 3 spikes per rank in the fixed-size exchange
    buffer. Not with checkpoints (contract §5.2 item 4)."""
    pc.setup_transfer()
    if compress_spikes:
        pc.spike_compress(3, 1, 0)
    h.cvode.cache_efficient(1)
    pc.set_maxstep(4)
    h.stdinit()


def run(h, pc, tstop: float, on_chunk=None) -> None:
    """psolve in 25 ms chunks (a hook per chunk for report flushes and progress)."""
    t = round(float(h.t), 2)
    while t < tstop - 1e-9:
        t = min(t + CHUNK_MS, tstop)
        pc.psolve(t)
        if h.stoprun:   # NEURON's own SIGINT handler stopped the solver: Ctrl-C ends the run
            raise KeyboardInterrupt("interrupted during the solver")
        if on_chunk is not None:
            on_chunk(t)
    h.t = tstop
