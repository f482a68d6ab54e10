"""SONATA ``inputs``: one module per input family (signal = pure numpy, source = NEURON).

``MODULES`` maps a SONATA ``module`` name to a builder ``build(run, block) -> objects``.
``synapse_replay`` is not built here: replay belongs to connectivity (contract §3.10), and
``spatially_uniform_e_field`` blocks are merged and applied after every other input (contract §4.1).
``apply_inputs`` is what the pipeline calls, once, after synapses exist. ``check_inputs`` and
``check_raw_inputs`` are the checks of the load-time pass, before any cell exists.
"""

from . import (
    current,
    efield,
    noise,
    ornstein_uhlenbeck,
    pulse,
    report_replay,
    seclamp,
    shot_noise,
    sinusoidal,
)
from .base import InputBlock, InputRun, input_blocks
from .validation import (
    SPECS,
    check_inputs,
    check_raw_inputs,
    needs_input_resistance,
    raise_block_problems,
)

MODULES = {
    "linear": current.build_linear,
    "relative_linear": current.build_relative_linear,
    "subthreshold": current.build_subthreshold,
    "hyperpolarizing": current.build_hyperpolarizing,
    "pulse": pulse.build_pulse,
    "sinusoidal": sinusoidal.build_sinusoidal,
    "noise": noise.build_noise,
    "shot_noise": shot_noise.build_shot_noise,
    "relative_shot_noise": shot_noise.build_shot_noise,
    "absolute_shot_noise": shot_noise.build_shot_noise,
    "ornstein_uhlenbeck": ornstein_uhlenbeck.build_ornstein_uhlenbeck,
    "relative_ornstein_uhlenbeck": ornstein_uhlenbeck.build_ornstein_uhlenbeck,
    "seclamp": seclamp.build_seclamp,
    "replay": report_replay.build_replay,
}
#: handled outside MODULES: replay in connectivity, E-fields merged at the end
DEFERRED = ("synapse_replay", "spatially_uniform_e_field")


def apply_inputs(h, settings, node_sets, populations: dict, cells: dict) -> list:
    """Build every input of the config in config order on this rank's ``cells``; returns the
    objects to keep alive."""
    run = InputRun(h, settings, node_sets, populations, cells)
    objects, efields = [], []
    for block in input_blocks(settings):
        module = block.module
        if module == "synapse_replay":
            continue
        raise_block_problems(block)
        if module == "spatially_uniform_e_field":
            efields.append(block)
            continue
        builder = MODULES.get(module)
        if builder is None:
            raise block.error("module", f"input module '{module}' is not supported by this "
                              f"version")
        objects.extend(builder(run, block))
    objects.extend(efield.build_efields(run, efields))
    return objects


__all__ = [
    "DEFERRED",
    "MODULES",
    "SPECS",
    "InputBlock",
    "InputRun",
    "apply_inputs",
    "check_inputs",
    "check_raw_inputs",
    "input_blocks",
    "needs_input_resistance",
]
