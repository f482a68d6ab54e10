"""parallel.py's collectives on 2 real MPI ranks (the script runs under mpirun)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers import base_env, mpirun_prefix

SCRIPT = Path(__file__).with_name("collectives_main.py")


def test_collectives_on_two_ranks(tmp_path):
    cmd = mpirun_prefix(2) + [sys.executable, str(SCRIPT), str(tmp_path)]
    res = subprocess.run(cmd, capture_output=True, text=True, env=base_env(), timeout=300,
                         cwd=Path(__file__).resolve().parents[2])
    assert res.returncode == 0, res.stdout + res.stderr
    lines = set()
    for rank in (0, 1):
        lines.update((tmp_path / f"rank{rank}.txt").read_text().splitlines())
    for rank in (0, 1):
        assert f"rank {rank}: size 2" in lines
        assert f"rank {rank}: allsum 3 allmax 1" in lines
        assert f"rank {rank}: on_root made by 0" in lines
        assert f"rank {rank}: on_root error root failed" in lines
        assert f"rank {rank}: agree only rank 1" in lines
        assert f"rank {rank}: phase edges.h5: broken on rank 1" in lines
        assert f"rank {rank}: together disk full seen by rank 0" in lines
        assert f"rank {rank}: together none" in lines
        assert f"rank {rank}: gone r.h5: disk full" in lines
    assert "rank 0: ring 0:0,0:1,1:0,1:1" in lines
