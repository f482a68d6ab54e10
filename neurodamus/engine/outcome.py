"""What a variant of the run hands to the pipeline's one output tail (``pipeline.finish``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Outcome:
    simulated: bool
    times: np.ndarray | None = None        # this rank's spikes (None: written already)
    gids: np.ndarray | None = None
    spike_counts: dict | None = None       # population -> spikes, when written already
    n_local_cells: int = 0
    n_local_synapses: int = 0
    cell_build_seconds: float = 0.0
    synapse_build_seconds: float = 0.0
    startup_seconds: float = 0.0           # process start to the first cell
    balance: dict | None = None            # the load balance report (run_summary.json)
    record_facts: dict | None = None       # extra facts for the run record
    last_line: str = ""                    # what rank 0 prints last (default: the spikes)
    #: collective steps that need the written spikes (checkpoint copies, engine clean-up),
    #: run by the output tail in its write phase right after the spikes file
    after_spikes: list = field(default_factory=list)


__all__ = ["Outcome"]
