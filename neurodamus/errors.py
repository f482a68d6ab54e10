"""One exception root; every message names the file and the key or object at fault."""


class NeurodamusError(Exception):
    """Base of every error the driver reports to the user (exit code 1, no traceback)."""


class ConfigError(NeurodamusError):
    """A simulation or circuit config is missing, malformed or inconsistent."""


class CircuitError(NeurodamusError):
    """Circuit files (nodes, edges, morphologies, templates) are missing or inconsistent."""


class MechanismError(NeurodamusError):
    """A mechanism library is missing, cannot be built, or lacks a needed mechanism."""


class LaunchError(NeurodamusError):
    """MPI / special / NEURON bring-up failed."""


class OutputError(NeurodamusError):
    """An output file cannot be written (full disk, quota, permissions)."""


class OutputGone(OutputError):
    """The temporary output file this rank writes into was removed by the rank that failed
    writing it first (that rank reports the failure and ends the job)."""
