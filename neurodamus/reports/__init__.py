"""Outputs: SONATA spikes (``spikes.py``) and element reports.

The simulation drives reports through ``ReportSet``: ``setup`` after inputs and modifications,
``start`` just before initialisation, ``flush(t)`` after each run chunk, ``close`` at the end.
"""

from ..errors import ConfigError


class ReportSet:
    """The run's element reports (none are implemented in this version)."""

    def __init__(self, sim):
        self.sim = sim
        settings = sim.settings
        if settings.options.disable_reports:
            return
        for name in settings.sim.list_report_names:
            report = settings.sim.report(name)
            if report.enabled:
                raise ConfigError(f"{settings.config_path}: reports.{name}: element reports are "
                                  f"not supported by this version (use --disable-reports)")

    def start(self):
        pass

    def flush(self, t):
        pass

    def close(self):
        pass
