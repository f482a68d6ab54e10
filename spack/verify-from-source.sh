#!/usr/bin/env bash
# Build NEURON 9.0.2 (+coreneuron +mpi +python) from source with this repository's recipe, then
# neurodamus-models and py-neurodamus from this checkout, and run the example circuit on 2 MPI
# ranks with NEURON and with CoreNEURON. Prints a summary (versions, build times, spikes).
#
# Not part of CI: the NEURON build takes ~21 minutes on 2 cores. Everything it makes lives under
# --work (default ~/.cache/neurodamus-from-source); the checkout is left as it was.
#
#   spack/verify-from-source.sh [--work DIR] [--jobs N] [--snapshots DIR] [--cells N]
#
# Spack: $SPACK_ROOT/bin/spack, else spack on PATH, else /opt/spack/bin/spack; it must run
# offline if the machine is offline (docs/development.md, "Spack without internet").
#
# Sources. NEURON is fetched with git (tag 9.0.2, commit ba57833, with the submodules the recipe
# lists) into a Spack source mirror (<work>/mirror) by `spack mirror create`; the install then
# fetches it from that mirror only. Without internet, give --snapshots DIR: a folder of git
# clones (bare or not) of github.com/neuronsimulator/nrn and of each submodule's repository,
# named <owner>+<name> (or <owner>+<name>/repo), e.g. neuronsimulator+nrn, BlueBrain+Random123,
# Tessil+robin-map (nanobind's own submodule). git then reads them in place of GitHub.
# Eigen, hosted outside GitHub, comes from the system (Debian: libeigen3-dev) as a Spack external.
#
# Everything else is an external (generate_externals.py --build neuron): the system's build
# tools, compilers and MPI, and a virtualenv (<work>/venv) holding the Python packages, made
# with pip from the configured index.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CHECKOUT="$(dirname "$HERE")"
WORK="${XDG_CACHE_HOME:-$HOME/.cache}/neurodamus-from-source"
JOBS=2
SNAPSHOTS=""
CELLS=100
NEURON_SPEC="neuron@9.0.2 +coreneuron +mpi +python build_type=Release"

usage() { sed -n '2,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --work) WORK="$2"; shift 2 ;;
        --jobs) JOBS="$2"; shift 2 ;;
        --snapshots) SNAPSHOTS="$(cd "$2" && pwd)"; shift 2 ;;
        --cells) CELLS="$2"; shift 2 ;;
        -h|--help) usage 0 ;;
        *) echo "verify-from-source.sh: unknown argument: $1" >&2; usage 2 >&2 ;;
    esac
done

if [ -n "${SPACK_ROOT:-}" ] && [ -x "$SPACK_ROOT/bin/spack" ]; then SPACK="$SPACK_ROOT/bin/spack"
elif command -v spack >/dev/null 2>&1; then SPACK="$(command -v spack)"
elif [ -x /opt/spack/bin/spack ]; then SPACK=/opt/spack/bin/spack
else echo "verify-from-source.sh: no Spack (\$SPACK_ROOT, PATH, /opt/spack)" >&2; exit 2; fi

# Offline, Spack concretizes with the clingo of SPACK_PYTHON (docs/development.md, "Spack without
# internet"); the interpreter set up there is used when none is given and python3 lacks clingo.
if [ -z "${SPACK_PYTHON:-}" ] && ! python3 -c "import clingo" 2>/dev/null \
        && [ -x /opt/spack-venv/bin/python ]; then
    export SPACK_PYTHON=/opt/spack-venv/bin/python
fi

mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd)"
ENV_DIR="$WORK/env"
SUMMARY="$WORK/summary.txt"
# Spack scopes of our own: nothing from ~/.spack changes what is verified.
export SPACK_USER_CONFIG_PATH="$WORK/user-config" SPACK_USER_CACHE_PATH="$WORK/user-cache"
export SPACK_SYSTEM_CONFIG_PATH="$WORK/system-config"
mkdir -p "$SPACK_USER_CONFIG_PATH" "$SPACK_USER_CACHE_PATH" "$SPACK_SYSTEM_CONFIG_PATH"
unset SPACK_ENV PYTHONPATH
SECONDS=0
step() { printf '\n==== [%s +%ds] %s\n' "$(date -u +%H:%M:%S)" "$SECONDS" "$*"; }
spackenv() { "$SPACK" -e "$ENV_DIR" "$@"; }

# ---------------------------------------------------------------------------------------------
step "Python packages (virtualenv $WORK/venv)"
if [ ! -x "$WORK/venv/bin/python" ]; then python3 -m venv "$WORK/venv"; fi
"$WORK/venv/bin/python" -m pip install --quiet --upgrade pip setuptools wheel
# What the driver needs (setup.cfg, without NEURON) and what NEURON's build needs (NMODL).
"$WORK/venv/bin/python" -m pip install --quiet libsonata h5py numpy docopt-ng psutil scipy \
    mpi4py morphio jinja2 pyyaml sympy find_libpython packaging
"$WORK/venv/bin/python" -c "import neuron" 2>/dev/null \
    && { echo "the virtualenv must not hold the NEURON wheel" >&2; exit 2; }

# ---------------------------------------------------------------------------------------------
step "Environment $ENV_DIR"
mkdir -p "$ENV_DIR"
"$WORK/venv/bin/python" "$HERE/environments/neurodamus-offline/generate_externals.py" \
    --spack "$SPACK" --build neuron --output "$ENV_DIR/externals.yaml"
cat > "$ENV_DIR/spack.yaml.new" <<EOF
# Written by spack/verify-from-source.sh: NEURON from source, our packages from $CHECKOUT.
spack:
  include:
  - $HERE/environments/common/packages.yaml
  - externals.yaml
  repos:
  - $HERE
  specs:
  - $NEURON_SPEC
  - py-neurodamus@develop
  - neurodamus-models@develop model=minicol +coreneuron
  develop:
    py-neurodamus:
      spec: py-neurodamus@develop
      path: $CHECKOUT
  mirrors:
    from-source: file://$WORK/mirror
  concretizer:
    unify: true
  config:
    install_tree:
      root: $WORK/store
    build_jobs: $JOBS
  view: $WORK/view
EOF

# A second run continues where the first stopped: same environment, no new concretization
# (it alone takes half an hour on a busy 2-core machine), no new mirror.
if cmp -s "$ENV_DIR/spack.yaml.new" "$ENV_DIR/spack.yaml" \
        && [ "$ENV_DIR/spack.lock" -nt "$ENV_DIR/spack.yaml" ]; then
    rm "$ENV_DIR/spack.yaml.new"
    step "Concretize: $ENV_DIR/spack.lock is up to date (kept)"
else
    mv "$ENV_DIR/spack.yaml.new" "$ENV_DIR/spack.yaml"
    step "Concretize"
    spackenv concretize -f | tee "$WORK/concretize.txt"
fi

# ---------------------------------------------------------------------------------------------
step "Source mirror of NEURON ($WORK/mirror)"
if [ -n "$(find "$WORK/mirror" -path '*neuronsimulator/nrn/*.tar.gz' 2>/dev/null)" ]; then
    echo "kept: NEURON's sources are already in the mirror"
else
if [ -n "$SNAPSHOTS" ]; then
    # git reads https://github.com/<owner>/<name>[.git] from the snapshots instead.
    export GIT_CONFIG_GLOBAL="$WORK/gitconfig-snapshots"
    : > "$GIT_CONFIG_GLOBAL"
    git config --global protocol.file.allow always
    for dir in "$SNAPSHOTS"/*+*; do
        name="$(basename "$dir")"
        src="$dir"; [ -d "$dir/repo" ] && src="$dir/repo"
        url="https://github.com/${name%%+*}/${name#*+}"
        git config --global --add "url.$src.insteadOf" "$url.git"
        git config --global --add "url.$src.insteadOf" "$url"
    done
fi
spackenv mirror create -d "$WORK/mirror" "$NEURON_SPEC"
unset GIT_CONFIG_GLOBAL
fi
find "$WORK/mirror" -name '*.tar.gz' -printf '%P %s bytes\n'

# ---------------------------------------------------------------------------------------------
step "Install (-j$JOBS)"
# With GitHub replaced by nothing: the sources must come from the mirror.
GIT_CONFIG_GLOBAL=/dev/null spackenv install --fail-fast -j "$JOBS" 2>&1 | tee "$WORK/install.log"

step "Check: the NEURON in use is the one built here"
NEURON_PREFIX="$(spackenv location -i neuron)"
MODELS_PREFIX="$(spackenv location -i neurodamus-models)"
eval "$("$SPACK" env activate --sh -d "$ENV_DIR")"
python -c "import neuron, sys; p = neuron.__file__; print('neuron module:', p); \
sys.exit(0 if p.startswith('$NEURON_PREFIX') or p.startswith('$WORK/view') else 3)"
nrniv --version
for f in bin/special bin/special-core lib/libnrnmech.so lib/libcorenrnmech.so; do
    test -f "$MODELS_PREFIX/$f" || { echo "missing $MODELS_PREFIX/$f" >&2; exit 4; }
done

# ---------------------------------------------------------------------------------------------
count_spikes() {
    python -c "import libsonata, sys; r = libsonata.SpikeReader(sys.argv[1]); \
print(sum(len(r[p].get()) for p in r.get_population_names()))" "$1"
}
RUN="$WORK/example"
for sim in NEURON CORENEURON; do
    step "Example on 2 ranks, $sim ($CELLS cells)"
    rm -rf "$RUN-$sim"
    neurodamus example "$RUN-$sim" --cells "$CELLS"
    (cd "$RUN-$sim" && "$CHECKOUT/scripts/launch.sh" -n 2 simulation_config.json \
        --simulator="$sim" --output-path="$RUN-$sim/output")
done

# ---------------------------------------------------------------------------------------------
step "Summary ($SUMMARY)"
{
    echo "verify-from-source.sh on $(date -u +%Y-%m-%d), $(nproc) cores, -j$JOBS, total ${SECONDS}s"
    echo "spack: $("$SPACK" --version)"
    echo "built from source:"
    spackenv find --no-groups --format '  {name}@{version} {variants} {/hash:7}' neuron \
        neurodamus-models py-neurodamus
    echo "install times (Spack's install_times.json, seconds):"
    for prefix in "$NEURON_PREFIX" "$MODELS_PREFIX" "$(spackenv location -i py-neurodamus)"; do
        python - "$prefix" <<'PY'
import json, os, sys
prefix = sys.argv[1]
data = json.load(open(os.path.join(prefix, ".spack", "install_times.json")))
phases = ", ".join(f"{p['name']} {p['seconds']:.0f}" for p in data.get("phases", []))
print(f"  {os.path.basename(prefix)}: total {data['total']:.0f} ({phases})")
PY
    done
    for sim in NEURON CORENEURON; do
        out="$RUN-$sim/output/out.h5"
        echo "example $sim on 2 ranks: $(count_spikes "$out") spikes in $out"
    done
    python - "$RUN-NEURON/output/out.h5" "$RUN-CORENEURON/output/out.h5" <<'PY'
import sys
import numpy as np
import libsonata
def trains(path):
    r = libsonata.SpikeReader(path)
    return {p: sorted(map(tuple, r[p].get())) for p in r.get_population_names()}
a, b = trains(sys.argv[1]), trains(sys.argv[2])
same = a.keys() == b.keys() and all(
    len(a[p]) == len(b[p]) and all(x[0] == y[0] and abs(x[1] - y[1]) < 1e-6
                                   for x, y in zip(a[p], b[p])) for p in a)
print("NEURON and CoreNEURON spike trains identical:", same)
sys.exit(0 if same else 5)
PY
} | tee "$SUMMARY"
