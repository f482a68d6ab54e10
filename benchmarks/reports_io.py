"""Report file-writing schemes without MPI-IO, measured on this machine (no NEURON).

    mpirun -np 2 python benchmarks/reports_io.py [--elements 20000] [--rows 10000]
                                                  [--flush-rows 250]

Every rank owns ``elements / ranks`` columns of a float32 [rows, elements] dataset and produces
``flush-rows`` rows at a time, as a report does at each flush. Schemes:

* ``direct``: what ``neurodamus.reports.writer`` does: rank 0 creates the file with the data
  allocated at creation; at every flush all ranks write their column block of each row into
  the data's bytes at once;
* ``token``: rank 0 creates the file at its final size; at every flush a token goes round the
  ranks and each writes its column block into the shared file through HDF5 (what the writer
  did before the ``direct`` scheme);
* ``spool``: every rank appends its rows to its own raw temporary file, and at the end the
  ranks copy their spool into the shared file in turn, in blocks of ``flush-rows`` rows.

Printed: wall time of the writing (max over ranks) and the extra disk space each needs.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
from mpi4py import MPI

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from neurodamus.reports import writer


def token_turn(comm, fn):
    rank, size = comm.Get_rank(), comm.Get_size()
    if rank > 0:
        comm.recv(source=rank - 1, tag=7)
    fn()
    if rank < size - 1:
        comm.send(None, dest=rank + 1, tag=7)
    comm.Barrier()


def create(path, rows, elements):
    with h5py.File(path, "w") as fd:
        fd.create_dataset("data", shape=(rows, elements), dtype=np.float32)


def scheme_token(comm, path, rows, elements, flush_rows, block):
    rank, size = comm.Get_rank(), comm.Get_size()
    c0, c1 = rank * elements // size, (rank + 1) * elements // size
    if rank == 0:
        create(path, rows, elements)
    comm.Barrier()
    def write(a, b):
        with h5py.File(path, "r+") as fd:
            fd["data"][a:b, c0:c1] = block[: b - a, : c1 - c0]

    for a in range(0, rows, flush_rows):
        token_turn(comm, lambda a=a: write(a, min(rows, a + flush_rows)))
    return 0


def scheme_direct(comm, path, rows, elements, flush_rows, block):
    rank, size = comm.Get_rank(), comm.Get_size()
    counts = [[(1, (r + 1) * elements // size - r * elements // size)] for r in range(size)]
    layouts = writer.layouts_from_counts(["p"], counts, rank)
    grid = argparse.Namespace(n_steps=rows, start=0.0, end=rows * 0.1, dt=0.1)
    offsets = writer.create_file(path, layouts, grid, "mV") if rank == 0 else None
    layouts = writer.with_offsets(layouts, comm.bcast(offsets))
    width = layouts[0].n_elements
    for a in range(0, rows, flush_rows):
        b = min(rows, a + flush_rows)
        writer.write_rows(path, layouts, a, block[: b - a, :width])
    comm.Barrier()
    return 0


def scheme_spool(comm, path, rows, elements, flush_rows, block):
    rank, size = comm.Get_rank(), comm.Get_size()
    c0, c1 = rank * elements // size, (rank + 1) * elements // size
    spool = f"{path}.spool{rank}"
    with open(spool, "wb") as fd:
        for a in range(0, rows, flush_rows):
            b = min(rows, a + flush_rows)
            np.ascontiguousarray(block[: b - a, : c1 - c0]).tofile(fd)
    if rank == 0:
        create(path, rows, elements)
    comm.Barrier()
    extra = os.path.getsize(spool)
    def merge():
        spooled = np.memmap(spool, dtype=np.float32, mode="r", shape=(rows, c1 - c0))
        with h5py.File(path, "r+") as fd:
            for a in range(0, rows, flush_rows):
                b = min(rows, a + flush_rows)
                fd["data"][a:b, c0:c1] = spooled[a:b]

    token_turn(comm, merge)
    os.unlink(spool)
    return extra


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--elements", type=int, default=20000)
    parser.add_argument("--rows", type=int, default=10000)
    parser.add_argument("--flush-rows", type=int, default=250)
    args = parser.parse_args()
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    tmp = comm.bcast(tempfile.mkdtemp(dir=os.environ.get("TMPDIR", "/tmp")) if rank == 0
                     else None)
    width = args.elements // size + 1
    block = np.random.default_rng(rank).random((args.flush_rows, width), dtype=np.float32)
    results = []
    schemes = (("direct", scheme_direct), ("token", scheme_token), ("spool", scheme_spool))
    for name, fn in schemes + schemes:
        path = os.path.join(tmp, f"{name}.h5")
        comm.Barrier()
        t0 = time.perf_counter()
        extra = fn(comm, path, args.rows, args.elements, args.flush_rows, block)
        elapsed = comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)
        extra = comm.allreduce(extra)
        results.append((name, elapsed, extra))
        if rank == 0:
            os.unlink(path)
    if rank == 0:
        size_mb = args.rows * args.elements * 4 / 2**20
        print(f"\n{size} ranks, {args.elements} elements x {args.rows} rows ({size_mb:.0f} MiB), "
              f"flush every {args.flush_rows} rows")
        print(f"{'scheme':<8}{'seconds':>10}{'MiB/s':>10}{'extra disk MiB':>16}")
        for name, elapsed, extra in results:
            print(f"{name:<8}{elapsed:>10.2f}{size_mb / elapsed:>10.0f}{extra / 2**20:>16.0f}")
        os.rmdir(tmp)


if __name__ == "__main__":
    main()
