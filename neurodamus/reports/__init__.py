"""Outputs: SONATA spikes (``spikes.py``) and element reports (compatibility §8.2).

The simulation drives reports through ``ReportSet``: constructed after inputs and
modifications, ``start`` just before initialisation, ``flush(t)`` after each run chunk, ``close``
at the end; ``solver(pc)`` is what the run loop calls ``psolve`` on.

Modules: ``config`` (report keys, validation, time grid; no NEURON), ``sections`` (section
ids §2.1(2) and report points), ``variables`` (variable lookup), ``mapping`` (this rank's
elements and references), ``writer`` (file layout, token-passing writes), ``report_set``
(lifecycle, recording, flushes).
"""

from .config import ReportSpec, TimeGrid, explain_config_error, parse_reports, time_grid
from .report_set import DEFAULT_BUFFER_MB, ReportSet

__all__ = [
           "DEFAULT_BUFFER_MB",
           "ReportSet",
           "ReportSpec",
           "TimeGrid",
           "explain_config_error",
           "parse_reports",
           "time_grid",
]
