"""neurodamus: run SONATA circuits on NEURON and CoreNEURON under MPI.

Nothing happens at import time: NEURON and MPI are brought up by ``neurodamus.launch``.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
