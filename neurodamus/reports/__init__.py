"""Outputs: SONATA spikes (``spikes.py``) and element reports (contract §8.2).

The simulation drives reports through ``ReportSet``: constructed after inputs and
modifications (in a phase of its own: it agrees on file layouts with collectives), ``start``
just before initialisation, ``flush(t)`` after each run chunk, ``close`` at the end;
``solver(pc)`` is what the run loop calls ``psolve`` on.

Design in short:

* recording: one per-step ``Vector.record(ref)`` per NEURON reference (the form that also
  works under CoreNEURON), emptied at every flush; rows are sampled from the recorded steps and
  summation elements are ``sum(factor * ref)`` (a sparse matrix product), so nothing runs in
  Python per time step;
* memory: between two flushes each rank holds ``8 B x references x steps`` plus the rows being
  written; when a 25 ms chunk would exceed ``--report-buffer-size`` the chunk is run in shorter
  ``psolve`` pieces with a flush after each (bounded by the buffer, not by the run length);
* files: rank 0 creates each file under a temporary name at its final size (the data allocated
  at creation, its place in the file sent to every rank); the mapping is written through HDF5
  rank after rank, then at every flush all ranks write their own column block of each row into
  the data's bytes at once (no rank gathers the report, no MPI-IO needed); the file is renamed
  when complete (see ``writer`` for the measurements that chose this).

Modules: ``config`` (report keys, validation, time grid; no NEURON), ``points`` (report
points; their section ids contract §2.1(2) come from ``circuit/section_ids.py``, shared with inputs
and modifications), ``variables`` (variable lookup), ``mapping`` (this rank's
elements and references), ``writer`` (file layout, writes), ``targets`` (which
cells a report covers), ``recording`` (step clock, bounded solver), ``report_set`` (lifecycle,
flushes); ``lfp``, ``lfp_mapping``, ``lfp_recording`` and ``lfp_sources`` for ``lfp`` reports
(docs/lfp.md).
"""

from .config import ReportSpec, TimeGrid, parse_reports, time_grid
from .report_set import DEFAULT_BUFFER_MB, ReportSet
from .targets import check_report_targets, report_targets

__all__ = ["DEFAULT_BUFFER_MB", "ReportSet", "ReportSpec", "TimeGrid", "check_report_targets",
           "parse_reports", "report_targets", "time_grid"]
