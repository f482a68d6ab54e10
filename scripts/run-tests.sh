#!/usr/bin/env bash
# Run the test suite (unit, integration under mpirun, scientific, packaging).
# Arguments go to pytest, e.g. scripts/run-tests.sh -k rank_invariance
set -Eeuo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$here/scripts/setup.sh" >/dev/null
venv=${NEURODAMUS_VENV:-$here/.venv}
cd "$here"
exec "$venv/bin/python" -m pytest tests "$@"
