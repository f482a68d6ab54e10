"""Shared pieces of the scientific input tests: probe runs in their own processes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import ROOT, base_env, run_neurodamus

PROBE = [sys.executable, "-m", "tests.scientific.probe"]


class ProbeResult:
    """Recordings of one probe run, merged over ranks."""

    def __init__(self, out_dir: Path, stdout: str):
        self.out_dir = out_dir
        self.stdout = stdout
        self.arrays: dict[str, np.ndarray] = {}
        self.meta = {"sources": [], "efield": [], "synapses": [], "minis": [], "cells": {}}
        for meta_file in sorted(out_dir.glob("meta_*.json")):
            rank = meta_file.stem.split("_")[1]
            data = np.load(out_dir / f"probe_{rank}.npz")
            meta = json.loads(meta_file.read_text())
            for kind in ("sources", "efield", "synapses", "minis"):
                base = len(self.meta[kind])
                prefix = {"sources": "src", "efield": "ef", "synapses": "syn", "minis": "mini"}
                for key in data.files:
                    head, _, rest = key.partition("/")
                    if head == prefix[kind]:
                        k, _, tail = rest.partition("/")
                        new = f"{head}/{int(k) + base}" + (f"/{tail}" if tail else "")
                        self.arrays[new] = data[key]
                self.meta[kind].extend(meta[kind])
            self.meta["cells"].update({int(g): v for g, v in meta["cells"].items()})
            for key in data.files:
                if key == "t" or key.startswith("v/"):
                    self.arrays[key] = data[key]

    @property
    def t(self):
        return self.arrays["t"]

    def sources(self, input_name):
        """[(index, meta)] of the point sources of one input, ascending gid."""
        found = [(k, m) for k, m in enumerate(self.meta["sources"]) if m["input"] == input_name]
        return sorted(found, key=lambda km: km[1]["gid"])

    def signal(self, k):
        return self.arrays[f"src/{k}/tvec"], self.arrays[f"src/{k}/vvec"]


def run_probe(config, out_dir, spec: dict, ranks=1, extra=()) -> ProbeResult:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    spec_file = out_dir / "probe_spec.json"
    spec_file.write_text(json.dumps(spec))
    env = base_env(PYTHONPATH=str(ROOT))
    res = run_neurodamus([config, out_dir, spec_file, *extra], ranks=ranks, cwd=ROOT, env=env,
                         command=PROBE)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return ProbeResult(out_dir, res.stdout)


def samples_between_base_points(t, v, t0, duration, step):
    """The sampled values of a waveform enclosed by base points at t0 and t0 + duration."""
    n = int(np.floor(duration / step + 1e-9)) + 1
    start = int(np.flatnonzero(np.isclose(t, t0))[0]) + 1   # the base point at t0 comes first
    return t[start:start + n], v[start:start + n]


@pytest.fixture
def probe():
    return run_probe
