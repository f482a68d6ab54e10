"""Child-process probes: NEURON and MPI are only ever loaded in a child, so that a broken
library fails its own check instead of the doctor. A probe prints ``NDPROBE {json}`` lines."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

PROBE_TAG = "NDPROBE "
PROBE_TIMEOUT_S = 90


def _run_probe(cmd, cwd=None, env=None, timeout=PROBE_TIMEOUT_S):
    """Run a probe; returns (list of decoded NDPROBE records, output text, error or None)."""
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=timeout, start_new_session=True, check=False)
    except subprocess.TimeoutExpired as exc:
        text = (exc.stdout or "") + (exc.stderr or "") if isinstance(exc.stdout, str) else ""
        return [], text, f"no answer within {timeout} s"
    except OSError as exc:
        return [], "", f"cannot start {cmd[0]}: {exc.strerror}"
    return _decode_records(proc.stdout), proc.stdout + proc.stderr, None


def _decode_records(text: str) -> list[dict]:
    """Every ``NDPROBE {...}`` in ``text`` (ranks' lines may arrive glued together)."""
    decoder, records, pos = json.JSONDecoder(), [], 0
    while (pos := text.find(PROBE_TAG, pos)) >= 0:
        pos += len(PROBE_TAG)
        try:
            record, end = decoder.raw_decode(text, pos)
        except ValueError:
            continue
        records.append(record)
        pos = end
    return records


def _tail(text: str, n: int = 6) -> list[str]:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-n:]


_MECH_PROBE = r'''
import json, os, sys
from neuron import h
loaded = [bool(h.nrn_load_dll(lib)) for lib in sys.argv[1:] if lib.endswith(".so")]
names = {}
for kind in (0, 1):
    mt = h.MechanismType(kind)
    ref = h.ref("")
    for i in range(int(mt.count())):
        mt.select(i)
        mt.selected(ref)
        names[ref[0]] = kind
print("NDPROBE " + json.dumps({"mechanisms": names, "loaded": loaded}), flush=True)
'''

_MPI_PROBE = r'''
import json, os, sys
out = {"launcher": {k: os.environ[k] for k in ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
       "PMI_RANK", "PMI_SIZE", "PMIX_RANK", "SLURM_PROCID", "SLURM_NTASKS") if k in os.environ}}
try:
    from mpi4py import MPI
    c = MPI.COMM_WORLD
    version = " ".join(MPI.Get_library_version().replace("\0", " ").splitlines()[0].split())
    out["mpi4py"] = [c.Get_rank(), c.Get_size(), version]
except Exception as exc:
    out["mpi4py_error"] = f"{type(exc).__name__}: {exc}"
try:
    from neuron import h
    h.nrnmpi_init()
    pc = h.ParallelContext()
    out["neuron"] = [int(pc.id()), int(pc.nhost())]
except Exception as exc:
    out["neuron_error"] = f"{type(exc).__name__}: {exc}"
try:
    with open("/proc/self/maps") as fd:
        out["libmpi"] = sorted({ln.split()[-1] for ln in fd if "libmpi" in ln and "/" in ln})
except OSError:
    out["libmpi"] = []
print("NDPROBE " + json.dumps(out), flush=True)
'''


def _probe_env(**extra) -> dict:
    env = dict(os.environ)
    env.setdefault("NEURON_MODULE_OPTIONS", "-nogui")
    env.update(extra)
    return env


def _write_probe(folder: Path, name: str, code: str) -> Path:
    path = folder / name
    path.write_text(code)
    return path
