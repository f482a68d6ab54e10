"""Collectives and the logging set-up with a fake communicator (no MPI, no NEURON)."""

from __future__ import annotations

import io
import logging

import pytest

from neurodamus import logs
from neurodamus.errors import ConfigError
from neurodamus.parallel import (
    Phase,
    RunFailed,
    SingleRank,
    agree_on_errors,
    allsum,
    broadcast,
    gather,
    on_root,
)


class FakeComm(SingleRank):
    """Rank ``rank`` of ``size``: collectives answer what the other ranks would send."""

    def __init__(self, rank, size, others):
        self.rank, self.size, self.others = rank, size, others   # others: rank -> value
        self.calls = []

    def Get_rank(self):  # noqa: N802
        return self.rank

    def Get_size(self):  # noqa: N802
        return self.size

    def _all(self, value):
        return [value if r == self.rank else self.others[r] for r in range(self.size)]

    def allgather(self, value):
        self.calls.append("allgather")
        return self._all(value)

    def bcast(self, value, root=0):
        self.calls.append("bcast")
        return value if self.rank == root else self.others[root]

    def allreduce(self, value, op=None):
        self.calls.append("allreduce")
        return sum(self._all(value))


def test_on_root_runs_on_rank_zero_only_and_shares_its_error():
    ran = []

    def work():
        ran.append(1)
        raise ConfigError("bad file")

    with pytest.raises(ConfigError, match="bad file"):
        on_root(FakeComm(0, 2, {}), work)
    assert ran == [1]
    # rank 1 does not run it, and raises what rank 0 broadcast
    comm = FakeComm(1, 2, {0: (None, ConfigError("bad file"))})
    with pytest.raises(ConfigError, match="bad file"):
        on_root(comm, work)
    assert ran == [1] and comm.calls == ["bcast"]


def test_agree_on_errors_raises_the_first_rank_error_everywhere():
    with pytest.raises(ValueError, match="rank 1's"):
        agree_on_errors(FakeComm(0, 3, {1: ValueError("rank 1's"), 2: None}), None)
    agree_on_errors(FakeComm(0, 2, {1: None}), None)   # nobody failed


def test_phase_turns_one_rank_failure_into_run_failed_on_every_rank():
    comm = FakeComm(0, 2, {1: "nodes.h5: broken"})
    timings = {}
    with pytest.raises(RunFailed) as info:
        with Phase(comm, "load", timings):
            pass                                   # rank 0 itself was fine
    assert str(info.value) == "nodes.h5: broken" and "load" in timings
    comm = FakeComm(0, 2, {1: "other"})
    with pytest.raises(RunFailed) as info:
        with Phase(comm, "build"):
            raise ConfigError("mine")
    assert str(info.value) == "[rank 0] mine\n[rank 1] other"


def test_phase_names_an_internal_error():
    with pytest.raises(RunFailed, match="internal error during init: KeyError: 'x'"):
        with Phase(SingleRank(), "init"):
            raise KeyError("x")


def test_small_collectives_without_mpi():
    one = SingleRank()
    assert allsum(one, 5) == 5 and gather(one, "a") == ["a"] and broadcast(one, 3) == 3
    assert allsum(FakeComm(0, 3, {1: 2, 2: 4}), 1) == 7


# ---- logging ---------------------------------------------------------------------------------
def _logged(rank, emit):
    stream = io.StringIO()
    logs.configure(rank, stream=stream)
    emit(logging.getLogger("neurodamus.test"))
    return stream.getvalue().splitlines()


def test_info_and_warnings_come_from_rank_zero():
    def emit(log):
        log.info("Cells built: 4")
        log.warning("the same on every rank")
    assert _logged(0, emit) == ["Cells built: 4", "WARNING: the same on every rank"]
    assert _logged(1, emit) == []


def test_rank_specific_warnings_are_tagged_on_every_rank():
    def emit(log):
        log.warning("12 synapses dropped", extra=logs.RANK_SPECIFIC)
    assert _logged(0, emit) == ["WARNING: [rank 0] 12 synapses dropped"]
    assert _logged(3, emit) == ["WARNING: [rank 3] 12 synapses dropped"]


def test_once_filter_prints_a_repeated_warning_once():
    def emit(log):
        for _ in range(3):
            log.warning("template lacks a soma", extra=logs.ONCE)
        log.warning("template lacks a soma")      # not marked: printed
    assert _logged(0, emit) == ["WARNING: template lacks a soma"] * 2
