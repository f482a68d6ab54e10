"""SONATA ``inputs``: one module per input family (signal = pure numpy, source = NEURON).

``MODULES`` maps a SONATA ``module`` name to a builder ``build(ctx, name, stim) -> objects``.
``synapse_replay`` is not here: replay belongs to connectivity (compatibility §3.10).
"""

from . import current

MODULES = {
    "linear": current.build_linear,
    "relative_linear": current.build_relative_linear,
    "hyperpolarizing": current.build_hyperpolarizing,
    "subthreshold": current.build_subthreshold,
}

__all__ = ["MODULES"]
