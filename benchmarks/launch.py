"""One neurodamus run as the benchmarks time it: the whole command (mpirun and the Python
start-up included), the machine's load around it and the ``run_summary.json`` it writes."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import base_env, mpirun_prefix


@dataclass
class Run:
    proc: subprocess.CompletedProcess
    wall: float          # s, the whole command
    cpu: float           # s, user + system of every process it started
    load: float          # 1-min load average, mean of before and after
    summary: dict | None  # run_summary.json (None when the run failed)

    def summary_or_exit(self, label: str) -> dict:
        """The summary; a failed run ends the benchmark with the end of its output."""
        if self.summary is None:
            sys.exit(f"{label} failed:\n{self.proc.stdout[-2000:]}\n{self.proc.stderr[-2000:]}")
        return self.summary


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_neurodamus(config: Path, out: Path, ranks: int = 1, args=(), env: dict | None = None,
                   timeout: float | None = None) -> Run:
    """``neurodamus config --output-path=out *args``, under mpirun when ``ranks`` > 1."""
    cmd = [sys.executable, "-m", "neurodamus", str(config), f"--output-path={out}", *args]
    if ranks > 1:
        cmd = mpirun_prefix(ranks) + cmd
    load0, cpu0 = os.getloadavg()[0], _children_cpu()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=base_env() if env is None else env, capture_output=True,
                          text=True, timeout=timeout, check=False)
    wall = time.perf_counter() - t0
    summary = json.loads((out / "run_summary.json").read_text()) if proc.returncode == 0 \
        else None
    return Run(proc, wall, _children_cpu() - cpu0, (load0 + os.getloadavg()[0]) / 2, summary)


__all__ = ["Run", "run_neurodamus"]
