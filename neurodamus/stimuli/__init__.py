"""SONATA ``inputs``: one module per input family (signal = pure numpy, source = NEURON).

``MODULES`` maps a SONATA ``module`` name to a builder ``build(ctx, name, stim) -> objects``.
``synapse_replay`` is not here: replay belongs to connectivity (compatibility §3.10).
``apply_inputs`` is what the simulation calls, once, after synapses exist (§4.1).
"""

from ..errors import ConfigError
from . import current

MODULES = {
    "linear": current.build_linear,
    "relative_linear": current.build_relative_linear,
    "hyperpolarizing": current.build_hyperpolarizing,
    "subthreshold": current.build_subthreshold,
}


def apply_inputs(ctx) -> list:
    """Build every input of the config in config order; returns the objects to keep alive."""
    sim = ctx.settings.sim
    objects = []
    for name in sim.list_input_names:
        stim = sim.input(name)
        module = stim.module.name
        if module == "synapse_replay":
            continue
        builder = MODULES.get(module)
        if builder is None:
            raise ConfigError(f"{ctx.settings.config_path}: inputs.{name}.module: input "
                              f"module '{module}' is not supported by this version")
        objects.append(builder(ctx, name, stim))
    return objects


__all__ = ["MODULES", "apply_inputs"]
