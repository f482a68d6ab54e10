#!/usr/bin/env bash
# Everything from a fresh machine to spikes: set up, write the example circuit, run it on 2 MPI
# ranks, and say where the spikes are and how many.
set -Eeuo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$here/scripts/setup.sh"
venv=${NEURODAMUS_VENV:-$here/.venv}
export PATH="$venv/bin:$PATH"

circuit=${1:-$here/example-circuit}
neurodamus example "$circuit"
echo "== running the example circuit on 2 ranks"
cd "$circuit"
"$here/scripts/launch.sh" -n 2 neurodamus simulation_config.json
"$venv/bin/python" - "$circuit/output/out.h5" <<'PY'
import sys, libsonata
path = sys.argv[1]
reader = libsonata.SpikeReader(path)
total = sum(len(reader[p].get()) for p in reader.get_population_names())
print(f"\n{total} spikes in {path}")
PY
