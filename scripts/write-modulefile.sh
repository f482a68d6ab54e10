#!/usr/bin/env bash
# Write an Lmod modulefile for neurodamus installed in a virtualenv.
#
# Usage: scripts/write-modulefile.sh --venv DIR [--mechanisms ARCH_DIR] [--hoc-path DIR]
#                                    [--requires MODULE] [--modules-root ROOT | --output FILE]
#                                    [more: --help]
#
# Example (a virtualenv with neurodamus and mechanisms built by `neurodamus build-mechanisms`):
#   scripts/write-modulefile.sh --venv ~/venvs/nd --mechanisms ~/mech/x86_64 \
#       --requires openmpi --modules-root ~/modulefiles
#   module use ~/modulefiles && module load neurodamus
#
# Runs neurodamus.tools.modulefile from this checkout with $PYTHON (default: python3); it needs
# only the Python standard library.
set -Eeuo pipefail

checkout="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
python="${PYTHON:-python3}"
command -v "$python" >/dev/null 2>&1 || { echo "write-modulefile.sh: $python not found" >&2; exit 2; }
PYTHONPATH="$checkout${PYTHONPATH:+:$PYTHONPATH}" exec "$python" -m neurodamus.tools.modulefile "$@"
