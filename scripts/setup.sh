#!/usr/bin/env bash
# Set up a development/run environment in ./.venv: MPI (Debian's OpenMPI when run as root),
# the neurodamus package (editable) with its test tools, and the example model's mechanisms.
# Idempotent: a second run only checks.
set -Eeuo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${NEURODAMUS_VENV:-$here/.venv}
python=${PYTHON:-python3}

need_apt=()
command -v mpirun >/dev/null 2>&1 || need_apt+=(openmpi-bin)
ls /usr/lib/*/libmpi.so >/dev/null 2>&1 || ls /usr/lib/*/openmpi/lib/libmpi.so >/dev/null 2>&1 \
    || need_apt+=(libopenmpi-dev)
# optional: MPICH's runtime library only (no libmpi.so link), so that the tests can build a
# real NEURON/mpi4py MPI mismatch; installed when we are root anyway, never required
if [ "$(id -u)" = 0 ] && ! ls /usr/lib/*/libmpich.so.12 >/dev/null 2>&1; then
    need_apt+=(libmpich12)
fi
# recommended: jemalloc, which neurodamus preloads for a lower peak memory (neurodamus/allocator.py);
# installed when we are root, otherwise the system's malloc is used
if [ "$(id -u)" = 0 ] && ! ls /usr/lib/*/libjemalloc.so.2 >/dev/null 2>&1; then
    need_apt+=(libjemalloc2)
fi
command -v gcc >/dev/null 2>&1 && command -v make >/dev/null 2>&1 || need_apt+=(build-essential)
"$python" -c "import venv, ensurepip" >/dev/null 2>&1 || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "== installing ${need_apt[*]} (apt)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
    else
        echo "Missing system packages: ${need_apt[*]}" >&2
        echo "Install them with: sudo apt-get install -y ${need_apt[*]}" >&2
        exit 1
    fi
fi

if [ ! -x "$venv/bin/python" ]; then
    echo "== creating virtualenv $venv"
    "$python" -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import neurodamus, neuron, libsonata, mpi4py, pytest" 2>/dev/null \
        || [ "$here/setup.cfg" -nt "$venv/.neurodamus-installed" ]; then
    echo "== installing neurodamus (editable) and its dependencies (log: $venv/pip.log)"
    if ! { "$venv/bin/pip" install --upgrade pip && "$venv/bin/pip" install -e "$here[test]"; } \
            >"$venv/pip.log" 2>&1; then
        tail -n 30 "$venv/pip.log" >&2
        echo "pip install failed (full log: $venv/pip.log)" >&2
        exit 1
    fi
    touch "$venv/.neurodamus-installed"
fi

echo "== mechanisms (core/mod + models/minicol/mod, cached by content)"
"$venv/bin/neurodamus" build-mechanisms "$here/models/minicol/mod" | sed -n '1p'
