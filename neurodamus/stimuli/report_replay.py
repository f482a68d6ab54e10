"""``replay`` (current_clamp): a recorded soma trace played back as a current.

Keys (libsonata parses them): ``path`` (a SONATA element report), ``interpolate`` (bool),
``delay``, ``duration``, ``node_set``, ``represents_physical_electrode``.

For each target cell whose population and node are in the report, the first element of the
node (its soma) is played at the soma centre as a current (positive depolarises, as the
amplitude of ``linear``): frame times are shifted so that the first frame is at ``delay``,
frames later than ``delay + duration`` are dropped, and the signal is linear between frames
with ``interpolate: true``, a step per frame (held for one frame period, up to STEP_EDGE
before the next frame) otherwise. It is 0
before ``delay`` and after its last point. Cells missing from the report are counted in one
warning per input.
"""

from __future__ import annotations

import logging
import os

import libsonata
import numpy as np

from ..launch import launcher_rank
from .sources import inject

log = logging.getLogger(__name__)
_EPS = 1e-9
STEP_EDGE = 1e-6   # ms: width of the ramp between two frames of a stepwise replay


def report_problem(path) -> str | None:
    """Why ``path`` cannot be replayed (None when it can be read as an element report)."""
    if not isinstance(path, str) or not path:
        return "must name a SONATA element report (.h5)"
    if not os.path.isfile(path):
        return f"report file not found: {path}"
    try:
        reader = libsonata.ElementReportReader(path)
        if not reader.get_population_names():
            return f"{path} holds no report population"
    except (libsonata.SonataError, RuntimeError, OSError) as exc:
        return f"cannot read {path} as a SONATA element report: {exc}"
    return None


def replay_signal(times, values, delay: float, duration: float, interpolate: bool):
    """(t, amp) points for continuous ``Vector.play`` (a repeated time is a step)."""
    times = np.asarray(times, float)
    values = np.asarray(values, float)
    end = delay + duration
    shifted = delay + (times - times[0]) if len(times) else times
    keep = shifted <= end + _EPS
    shifted, values = shifted[keep], values[keep]
    t, v = ([0.0], [0.0]) if delay > 0 else ([], [])
    if len(shifted) == 0 or duration <= 0:
        return np.array(t + [delay]), np.array(v + [0.0])
    t.append(delay)
    v.append(0.0)
    if interpolate:
        t += shifted.tolist()
        v += values.tolist()
        last = shifted[-1]
    else:
        period = shifted[1] - shifted[0] if len(shifted) > 1 else duration
        ends = np.minimum(np.append(shifted[1:], shifted[-1] + period), end)
        # each value holds until just before the next frame: NEURON samples the played
        # vector at step starts, so a step placed exactly at a frame time could be read
        # from either side (float time); STEP_EDGE before it, the new value is certain
        for start, stop, value in zip(shifted, ends, values):
            t += [start, max(start, stop - STEP_EDGE)]
            v += [value, value]
        last = t[-1]
    t.append(last)
    v.append(0.0)
    return np.asarray(t), np.asarray(v)


def _soma_traces(path: str, population: str, raw_ids) -> tuple[np.ndarray, dict]:
    """Frame times and {raw id: first-element trace} of the nodes present in the report."""
    pop = libsonata.ElementReportReader(path)[population]
    present = np.intersect1d(np.asarray(pop.get_node_ids(), np.int64),
                             np.asarray(raw_ids, np.int64))
    if len(present) == 0:
        return np.zeros(0), {}
    frame = pop.get(node_ids=[int(i) for i in present])
    data = np.asarray(frame.data, float)
    traces = {}
    for column, (node, _) in enumerate(frame.ids):
        traces.setdefault(int(node), data[:, column])
    return np.asarray(frame.times, float), traces


def _missing_count(run, block, reported: dict) -> int:
    """Cells of the input (all ranks) that the report lacks: the same number on every rank."""
    gids = run.node_sets.simulated_gids(block.stim.node_set, block.where("node_set"))
    missing = 0
    for p in run.populations.values():
        if p.is_virtual:
            continue
        raw = gids[(gids >= p.offset) & (gids < p.offset + p.size)] - p.offset
        missing += len(raw) - len(np.intersect1d(raw, reported.get(p.name, [])))
    return missing


def build_replay(run, block) -> list:
    stim = block.stim
    path = str(stim.path)
    problem = report_problem(path)
    if problem:
        raise block.error("path", problem)
    reader = libsonata.ElementReportReader(path)
    report_pops = set(reader.get_population_names())
    reported = {p: np.asarray(reader[p].get_node_ids(), np.int64) for p in report_pops}
    targets = run.targets(block)
    by_pop: dict = {}
    for target in targets:
        by_pop.setdefault(target.cell.population, []).append(target)
    objects = []
    for population, pop_targets in by_pop.items():
        if population not in report_pops:
            continue
        times, traces = _soma_traces(path, population, [t.cell.raw_id for t in pop_targets])
        for target in pop_targets:
            trace = traces.get(target.cell.raw_id)
            if trace is None:
                continue
            t, amp = replay_signal(times, trace, stim.delay, stim.duration, stim.interpolate)
            objects.extend(inject(run, block, target, t, amp))
    if stim.node_set and launcher_rank() == 0:
        missing = _missing_count(run, block, reported)
        if missing:
            log.warning("%s: %d target cell(s) are not in the report %s: nothing is replayed "
                        "into them", block.where(), missing, path)
    return objects


__all__ = ["build_replay", "replay_signal", "report_problem"]
