"""The report benchmark's pairs of runs: one after the other, or side by side (both running
at the same moment), and a failed run ends the benchmark either way."""

import threading

import pytest

from benchmarks.reports import pair_order, run_pair


def test_pairs_alternate_their_order():
    assert [pair_order(i, ("none", "lfp")) for i in range(3)] == \
        [("none", "lfp"), ("lfp", "none"), ("none", "lfp")]


def test_side_by_side_runs_are_running_at_the_same_moment():
    # each run waits at the barrier for the other: one after the other, the first would wait
    # in vain (the timeout only turns that hang into a failure)
    both_running = threading.Barrier(2, timeout=120)

    def one(name):
        both_running.wait()
        return name.upper()

    assert run_pair(("none", "lfp"), one, side_by_side=True) == {"none": "NONE", "lfp": "LFP"}


def test_runs_one_after_the_other_keep_the_pair_order():
    started = []

    def one(name):
        started.append(name)
        return len(started)

    assert run_pair(("lfp", "none"), one) == {"lfp": 1, "none": 2}
    assert started == ["lfp", "none"]


def test_a_failed_run_side_by_side_ends_the_benchmark_after_the_other():
    finished = []

    def one(name):
        if name == "lfp":
            raise SystemExit("lfp failed: no such simulator")
        finished.append(name)
        return name

    with pytest.raises(SystemExit, match="lfp failed: no such simulator"):
        run_pair(("none", "lfp"), one, side_by_side=True)
    assert finished == ["none"]


def test_a_failed_first_run_is_not_followed_by_the_second():
    started = []

    def one(name):
        started.append(name)
        raise SystemExit(f"{name} failed")

    with pytest.raises(SystemExit, match="none failed"):
        run_pair(("none", "lfp"), one)
    assert started == ["none"]
