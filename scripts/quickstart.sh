#!/usr/bin/env bash
# Everything from a fresh machine to spikes: set up, write the example circuit, run it on 2 MPI
# ranks. The run's last line says how many spikes were written and where.
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
echo "== pictures of the run: neurodamus plot $circuit/output"
