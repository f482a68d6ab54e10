"""Run under ``mpirun -np 2``: exercises parallel.py with real MPI and prints what happened.

Each rank writes ``rank <r>: <check> <outcome>`` lines to ``<folder>/rank<r>.txt``, which
``test_collectives.py`` reads: a file per rank, because lines two ranks print to one stdout can
interleave mid-line under mpirun (print writes the text and its newline in separate calls).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from mpi4py import MPI

from neurodamus.errors import ConfigError, OutputGone
from neurodamus.parallel import (
    Phase,
    RunFailed,
    TokenRing,
    agree_on_errors,
    allmax,
    allsum,
    fail_together,
    on_root,
)


def main(folder: str) -> int:
    comm = MPI.COMM_WORLD
    rank = comm.Get_rank()

    report = Path(folder) / f"rank{rank}.txt"

    def say(text):
        with open(report, "a") as fd:
            fd.write(f"rank {rank}: {text}\n")

    say(f"size {comm.Get_size()}")
    say(f"allsum {allsum(comm, rank + 1)} allmax {allmax(comm, rank)}")
    say(f"on_root {on_root(comm, lambda: 'made by ' + str(comm.Get_rank()))}")
    try:
        on_root(comm, lambda: (_ for _ in ()).throw(ConfigError("root failed")))
    except ConfigError as exc:
        say(f"on_root error {exc}")
    try:
        agree_on_errors(comm, ValueError("only rank 1") if rank == 1 else None)
    except ValueError as exc:
        say(f"agree {exc}")
    try:
        with Phase(comm, "build"):
            if rank == 1:
                raise ConfigError("edges.h5: broken on rank 1")
    except RunFailed as exc:
        say(f"phase {exc}")
    try:   # both fail at once (a full disk): the first rank's message on every rank
        fail_together(comm, ConfigError(f"disk full seen by rank {rank}"))
    except RunFailed as exc:
        say(f"together {exc}")
    try:   # the rank whose file is gone follows the one that failed writing it
        fail_together(comm, OutputGone("r.h5: removed") if rank == 0 else
                      ConfigError("r.h5: disk full"))
    except RunFailed as exc:
        say(f"gone {exc}")
    fail_together(comm, None)   # nobody failed: nothing raised
    say("together none")
    # the token ring: each rank appends to one file in turn, rank order, twice
    path = Path(folder) / "ring.txt"
    ring = TokenRing(comm)
    for turn in range(2):
        with ring.turn():
            with open(path, "a") as fd:
                fd.write(f"{turn}:{rank}\n")
    ring.wait_back()
    ring.free()
    comm.Barrier()
    if rank == 0:
        say("ring " + ",".join(path.read_text().split()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp()))
