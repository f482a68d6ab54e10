#!/usr/bin/env bash
# Create the named Spack environment `neurodamus` (or another name) from this clone.
#
#   scripts/spack-env.sh create [--name NAME] [--model MODEL] [--include FILE]... [--force]
#                               [--install]
#
# Afterwards `spack env activate NAME` (spack env activate -p NAME, in a shell where Spack's
# setup-env.sh was sourced) gives `neurodamus`, `special` and the model's mechanisms.
#
#   --name NAME      environment name (default: neurodamus)
#   --model MODEL    bundled model whose mechanisms are built (default: minicol; models/MODEL)
#   --include FILE   one more configuration file for the environment (e.g. a site's
#                    packages.yaml of externals); repeatable; stored as an absolute path
#   --force          replace an existing environment of that name
#   --install        then run `spack -e NAME install`
#
# A named environment keeps its spack.yaml inside Spack (`spack location -e NAME`), not in the
# clone, so the file written here names the clone by absolute paths: the `develop:` entry that
# builds py-neurodamus from it, the shared preferences (spack/environments/common/packages.yaml)
# and our package repository. The repository is also registered in your Spack configuration
# (`spack repo add <clone>/spack`, skipped when already there), so that `spack info` and the
# guide's own `spack add`/`spack develop` sequence (docs/install.md) find our packages.
# Spack: $SPACK_ROOT/bin/spack, else spack on PATH, else /opt/spack/bin/spack.
set -euo pipefail

CHECKOUT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
usage() { sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
die() { echo "spack-env.sh: $*" >&2; exit 2; }

[ $# -gt 0 ] || { usage >&2; exit 2; }
case "$1" in
    create) shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown command '$1' (only: create)" ;;
esac

NAME=neurodamus MODEL=minicol FORCE="" INSTALL="" INCLUDES=()
while [ $# -gt 0 ]; do
    case "$1" in
        --name) [ $# -gt 1 ] || die "--name needs a value"; NAME="$2"; shift 2 ;;
        --model) [ $# -gt 1 ] || die "--model needs a value"; MODEL="$2"; shift 2 ;;
        --include)
            [ $# -gt 1 ] || die "--include needs a file"
            [ -f "$2" ] || die "--include: no such file: $2"
            INCLUDES+=("$(cd "$(dirname "$2")" && pwd -P)/$(basename "$2")"); shift 2 ;;
        --force) FORCE=1; shift ;;
        --install) INSTALL=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
done
[[ "$NAME" =~ ^[A-Za-z0-9_.-]+$ ]] || die "--name: '$NAME' is not a valid environment name"
[ -d "$CHECKOUT/models/$MODEL/mod" ] || die "--model: no models/$MODEL/mod in $CHECKOUT"

if [ -n "${SPACK_ROOT:-}" ] && [ -x "$SPACK_ROOT/bin/spack" ]; then SPACK="$SPACK_ROOT/bin/spack"
elif command -v spack >/dev/null 2>&1 && [ -x "$(command -v spack)" ]; then
    SPACK="$(command -v spack)"
elif [ -x /opt/spack/bin/spack ]; then SPACK=/opt/spack/bin/spack
else die "Spack not found (\$SPACK_ROOT, spack on PATH, /opt/spack/bin/spack)"; fi
unset SPACK_ENV

# Our package repository in the user's configuration, once.
if ! "$SPACK" repo list 2>/dev/null | grep -qF "$CHECKOUT/spack"; then
    "$SPACK" repo add "$CHECKOUT/spack"
fi

if "$SPACK" env list 2>/dev/null | grep -qxE "[[:space:]]*$NAME"; then
    [ -n "$FORCE" ] || die "a Spack environment '$NAME' exists already (--force replaces it)"
    "$SPACK" env rm -y "$NAME"
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
{
    echo "# Made by $CHECKOUT/scripts/spack-env.sh create --name $NAME --model $MODEL"
    echo "# Builds the driver and the $MODEL mechanisms from that clone."
    echo "spack:"
    echo "  include:"
    echo "  - $CHECKOUT/spack/environments/common/packages.yaml"
    for file in ${INCLUDES[@]+"${INCLUDES[@]}"}; do echo "  - $file"; done
    echo "  repos:"
    echo "  - $CHECKOUT/spack"
    echo "  specs:"
    echo "  - py-neurodamus@develop"
    echo "  - neurodamus-models@develop model=$MODEL +coreneuron"
    echo "  develop:"
    echo "    py-neurodamus:"
    echo "      spec: py-neurodamus@develop"
    echo "      path: $CHECKOUT"
    echo "  concretizer:"
    echo "    unify: true"
    echo "  view: true"
} > "$tmp/spack.yaml"
"$SPACK" env create "$NAME" "$tmp/spack.yaml"

if [ -n "$INSTALL" ]; then
    "$SPACK" -e "$NAME" install
    echo "spack-env.sh: installed; now: spack env activate $NAME"
else
    echo "spack-env.sh: next: spack -e $NAME install && spack env activate $NAME"
fi
