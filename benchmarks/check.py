"""How long the load-time check takes on the 4000-cell benchmark circuit with 10 mistakes.

    python benchmarks/check.py [--cells 4000] [--repeat 5]

Target: the checking pass (``plan.check_run``: both configs, every section, node sets, the
circuit's headers) lists all 10 mistakes in < 2 s. It runs in this process, without NEURON or
MPI; the circuit is generated once and cached (benchmarks/circuits.py).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.circuits import make_circuit
from neurodamus.config import RunOptions
from neurodamus.errors import ConfigError
from neurodamus.plan import check_run

TARGET_S = 2.0
REPORT = {"cells": "Cortex", "variable_name": "v", "sections": "soma", "type": "compartment",
          "dt": 0.1, "start_time": 0.0, "end_time": 100.0}
PULSE = {"module": "linear", "input_type": "current_clamp", "node_set": "Cortex",
         "delay": 0.0, "duration": 10.0, "amp_start": 0.1}


def with_ten_mistakes(config: Path, folder: Path) -> Path:
    """The benchmark config with 10 unrelated mistakes, each in a section of its own kind."""
    data = json.loads(config.read_text())
    base = str(config.parent)
    data["network"] = str(config.parent / "circuit_config.json")
    for key in ("node_sets_file",):
        if key in data:
            data[key] = data[key].replace("$BASE_DIR", base)
    for block in data.get("inputs", {}).values():
        if "spike_file" in block and not block["spike_file"].startswith("/"):
            block["spike_file"] = str(config.parent / block["spike_file"])
    data["inputs"].update({
        "m1": dict(PULSE, node_set="NoSuchSet"),                # unknown node set
        "m2": dict(PULSE, duration=-5.0),                       # negative duration
        "m3": dict(PULSE, module="teleport"),                   # unknown module
        "m4": {k: v for k, v in PULSE.items() if k != "amp_start"},   # missing key
    })
    data["reports"] = {
        "m5": dict(REPORT, sections="somaa"),                   # misspelt enum
        "m6": dict(REPORT, dt=0.001),                           # below run.dt
        "m7": dict(REPORT, cells="Nowhere"),                    # unknown node set
    }
    data["connection_overrides"] = [
        {"name": "m8", "source": "Ghosts", "target": "Cortex", "weight": 0.5}]
    data["conditions"] = dict(data.get("conditions", {}), modifications=[
        {"name": "m9", "type": "Teleport", "node_set": "Cortex"},
        {"name": "m10", "type": "ttx", "node_set": "Phantoms"}])
    path = folder / "ten_mistakes.json"
    path.write_text(json.dumps(data, indent=1))
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=4000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    config = make_circuit(args.cells, tstop=100.0)
    with tempfile.TemporaryDirectory() as tmp:
        bad = with_ten_mistakes(config, Path(tmp))
        times, lines = [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            try:
                check_run(bad, RunOptions(output_path=str(Path(tmp) / "out")))
            except ConfigError as exc:
                lines = str(exc).splitlines()
            times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    print("\n".join(lines))
    print(f"\n{'figure':<44}{'value':>12}{'target':>12}")
    print(f"{'problems listed in one check':<44}{len(lines):>12}{'10':>12}")
    print(f"{f'check time, median of {args.repeat} (s)':<44}{median:>12.3f}"
          f"{f'< {TARGET_S:g}':>12}")
    print(f"{'check time, min..max (s)':<44}{f'{min(times):.3f}..{max(times):.3f}':>12}")
    return 0 if len(lines) == 10 and median < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
