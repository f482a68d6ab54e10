# shellcheck shell=bash
# Make this checkout the neurodamus that runs, on top of a Spack environment or a virtualenv.
#
# Source it (bash or zsh), do not execute it:
#
#   source scripts/activate.sh [--spack [ENV] | --venv DIR | --no-env] [--install] [--model NAME]
#                              [--quiet]
#
#   --spack [ENV]      activate a Spack environment: a directory (default:
#                      spack/environments/neurodamus-dev of this checkout) or the name of a
#                      named environment (scripts/spack-env.sh). Spack is found as
#                      $SPACK_ROOT/bin/spack, `spack` on PATH, /opt/spack/bin/spack.
#                      An environment that is not installed yet is not activated: the script
#                      says which command to run (install first, then activate).
#   --install          run `spack -e ENV install` first, then activate (implies --spack).
#   --venv DIR         activate the virtualenv DIR (DIR/bin/activate).
#   --no-env           activate nothing, only set the paths below.
#   (none of these)    an already active virtualenv is kept; otherwise .venv/ or venv/ of this
#                      checkout is activated if it exists; otherwise nothing is activated.
#   --model NAME       also put models/NAME/hoc of this checkout on HOC_LIBRARY_PATH, right
#                      after core/hoc: files the templates load_file() come from there. The
#                      templates themselves are read from the circuit's
#                      biophysical_neuron_models_dir (see docs/development.md).
#   --quiet            print nothing unless something goes wrong.
#
# Afterwards, whatever a loaded module or a Spack view brings:
#   PATH              starts with the environment's bin/ (virtualenv or Spack view), which
#                     provides `neurodamus` (and, with Spack, `special`);
#   PYTHONPATH        starts with this checkout, so `import neurodamus` is this checkout's code;
#   HOC_LIBRARY_PATH  starts with this checkout's core/hoc (then models/NAME/hoc with --model),
#                     so edited .hoc files take effect on the next run without reinstalling.
# Edited .mod files still need a rebuild: `spack install` in the Spack environment, or
# `neurodamus build-mechanisms` in a virtualenv.
#
# If an activation of an installed Spack environment leaves PYTHONPATH or HOC_LIBRARY_PATH
# unset, the script deactivates and activates once more, and says so.
# `neurodamus_deactivate` undoes what this script did.
#
# This file is sourced into your shell, so it changes no shell options (no `set -e`) and
# returns, never exits.

_nd_prepend() {
    # _nd_prepend VAR DIR: put DIR first in the colon-separated VAR, dropping other copies of it.
    local var="$1" dir="$2" old rest
    eval "old=\${$var:-}"
    rest="$(printf '%s' "$old" | awk -v RS=: -v d="$dir" \
        'length($0) && $0 != d { printf "%s%s", sep, $0; sep = ":" }')"
    eval "export $var=\"\$dir\${rest:+:\$rest}\""
}

_nd_find_spack() {
    if [ -n "${SPACK_ROOT:-}" ] && [ -x "$SPACK_ROOT/bin/spack" ]; then
        echo "$SPACK_ROOT/bin/spack"
    elif command -v spack >/dev/null 2>&1 && [ -x "$(command -v spack)" ]; then
        command -v spack
    elif [ -x /opt/spack/bin/spack ]; then
        echo /opt/spack/bin/spack
    else
        return 1
    fi
}

_nd_spack_activate() {
    # Uses the shell function when Spack's setup-env.sh was sourced, else `spack ... --sh`.
    local spack_exe="$1" env_dir="$2" code
    code="$("$spack_exe" env activate --sh -d "$env_dir")" || return 1
    eval "$code"
}

_nd_spack_installed() {
    # True when the environment's specs are installed: its view has `neurodamus`, or (a view
    # elsewhere) `spack find` lists py-neurodamus in it.
    local spack_exe="$1" env_dir="$2"
    [ -f "$env_dir/spack.lock" ] || return 1
    [ -x "$env_dir/.spack-env/view/bin/neurodamus" ] && return 0
    "$spack_exe" -e "$env_dir" find --format '{name}' py-neurodamus 2>/dev/null \
        | grep -qx py-neurodamus
}

_nd_spack_deactivate() {
    local spack_exe="$1" code
    code="$("$spack_exe" env deactivate --sh)" || return 1
    eval "$code"
}

_nd_activate() {
    local checkout mode="auto" env_dir="" model="" quiet="" spack_exe="" note="" install=""
    if [ -n "${BASH_SOURCE:-}" ]; then
        checkout="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
    elif [ -n "${ZSH_VERSION:-}" ]; then
        # shellcheck disable=SC2296
        checkout="$(cd "$(dirname "${(%):-%x}")/.." && pwd -P)"
    else
        echo "activate.sh: source it from bash or zsh" >&2
        return 1
    fi

    while [ $# -gt 0 ]; do
        case "$1" in
            --spack)
                mode="spack"
                if [ $# -gt 1 ] && [ "${2#-}" = "$2" ]; then env_dir="$2"; shift; fi
                ;;
            --venv)
                [ $# -gt 1 ] || { echo "activate.sh: --venv needs a folder" >&2; return 2; }
                mode="venv"; env_dir="$2"; shift
                ;;
            --no-env) mode="none" ;;
            --install) install=1 ;;
            --model)
                [ $# -gt 1 ] || { echo "activate.sh: --model needs a name" >&2; return 2; }
                model="$2"; shift
                ;;
            --quiet|-q) quiet=1 ;;
            -h|--help)
                sed -n '2,41p' "$checkout/scripts/activate.sh" | sed 's/^# \{0,1\}//'
                return 0
                ;;
            *) echo "activate.sh: unknown option '$1' (see --help)" >&2; return 2 ;;
        esac
        shift
    done

    if [ -n "$install" ]; then
        case "$mode" in
            auto|spack) mode="spack" ;;
            *) echo "activate.sh: --install goes with --spack only" >&2; return 2 ;;
        esac
    fi
    if [ "$mode" = "auto" ]; then
        if [ -n "${VIRTUAL_ENV:-}" ]; then
            mode="kept"
        elif [ -f "$checkout/.venv/bin/activate" ]; then
            mode="venv"; env_dir="$checkout/.venv"
        elif [ -f "$checkout/venv/bin/activate" ]; then
            mode="venv"; env_dir="$checkout/venv"
        else
            mode="none"
        fi
    fi

    # Remember what to restore in neurodamus_deactivate (only on the first activation).
    if [ -z "${_NEURODAMUS_ACTIVE:-}" ]; then
        export _NEURODAMUS_OLD_PYTHONPATH="${PYTHONPATH-__unset__}"
        export _NEURODAMUS_OLD_HOC_LIBRARY_PATH="${HOC_LIBRARY_PATH-__unset__}"
    fi

    case "$mode" in
        spack)
            spack_exe="$(_nd_find_spack)" || {
                echo "activate.sh: Spack not found (SPACK_ROOT, PATH, /opt/spack)" >&2
                return 1
            }
            env_dir="${env_dir:-$checkout/spack/environments/neurodamus-dev}"
            if [ ! -f "$env_dir/spack.yaml" ] && [ "${env_dir#*/}" = "$env_dir" ]; then
                # Not a folder: the name of a named environment?
                local named
                named="$("$spack_exe" location -e "$env_dir" 2>/dev/null)" && env_dir="$named"
            fi
            if [ ! -f "$env_dir/spack.yaml" ]; then
                echo "activate.sh: no spack.yaml in $env_dir (nor a named environment)" >&2
                return 1
            fi
            env_dir="$(cd "$env_dir" && pwd -P)"
            if [ -n "$install" ]; then
                [ -z "$quiet" ] && echo "activate.sh: spack -e $env_dir install"
                "$spack_exe" -e "$env_dir" install || {
                    echo "activate.sh: 'spack -e $env_dir install' failed; nothing activated" >&2
                    return 1
                }
            elif ! _nd_spack_installed "$spack_exe" "$env_dir"; then
                echo "activate.sh: the Spack environment $env_dir is not installed yet;" \
                    "nothing activated. Install it, then activate:" >&2
                echo "  spack -e $env_dir install" >&2
                echo "  source $checkout/scripts/activate.sh --spack $env_dir" >&2
                echo "(or both at once: source $checkout/scripts/activate.sh --install" \
                    "--spack $env_dir)" >&2
                return 1
            fi
            _nd_spack_activate "$spack_exe" "$env_dir" || {
                echo "activate.sh: could not activate the Spack environment $env_dir" >&2
                return 1
            }
            if [ -z "${PYTHONPATH:-}" ] || [ -z "${HOC_LIBRARY_PATH:-}" ]; then
                _nd_spack_deactivate "$spack_exe" || true
                _nd_spack_activate "$spack_exe" "$env_dir" || return 1
                note="activated twice: the first activation left PYTHONPATH or HOC_LIBRARY_PATH unset"
            fi
            export NEURODAMUS_SPACK_ENV="$env_dir"
            export NEURODAMUS_SPACK="$spack_exe"
            ;;
        venv)
            if [ ! -f "$env_dir/bin/activate" ]; then
                echo "activate.sh: $env_dir is not a virtualenv (no bin/activate)" >&2
                return 1
            fi
            # shellcheck disable=SC1091
            . "$env_dir/bin/activate" || return 1
            ;;
    esac

    _nd_prepend PYTHONPATH "$checkout"
    if [ -n "$model" ]; then
        if [ ! -d "$checkout/models/$model/hoc" ]; then
            echo "activate.sh: no models/$model/hoc in $checkout" >&2
            return 1
        fi
        _nd_prepend HOC_LIBRARY_PATH "$checkout/models/$model/hoc"
    fi
    _nd_prepend HOC_LIBRARY_PATH "$checkout/core/hoc"
    export NEURODAMUS_CHECKOUT="$checkout"
    export _NEURODAMUS_ACTIVE=1
    hash -r 2>/dev/null || true

    if [ -z "$quiet" ]; then
        local where
        case "$mode" in
            spack) where="Spack environment $env_dir" ;;
            venv) where="virtualenv $VIRTUAL_ENV" ;;
            kept) where="virtualenv $VIRTUAL_ENV (already active)" ;;
            *) where="no environment (paths only)" ;;
        esac
        echo "neurodamus: $where"
        [ -n "$note" ] && echo "  note: $note"
        echo "  PATH             = ${PATH%%:*}:..."
        echo "  PYTHONPATH       = $PYTHONPATH"
        echo "  HOC_LIBRARY_PATH = $HOC_LIBRARY_PATH"
        if command -v neurodamus >/dev/null 2>&1; then
            echo "  neurodamus       = $(command -v neurodamus) (imports $checkout/neurodamus)"
        else
            echo "  neurodamus       = not on PATH: 'pip install -e $checkout' in a virtualenv," \
                "or 'spack install' in the Spack environment"
        fi
    fi
    return 0
}

neurodamus_deactivate() {
    # Undo scripts/activate.sh: restore PYTHONPATH and HOC_LIBRARY_PATH, leave the environment.
    [ -n "${_NEURODAMUS_ACTIVE:-}" ] || return 0
    if [ -n "${NEURODAMUS_SPACK_ENV:-}" ] && [ -n "${NEURODAMUS_SPACK:-}" ]; then
        _nd_spack_deactivate "$NEURODAMUS_SPACK" || true
    elif [ -n "${VIRTUAL_ENV:-}" ] && command -v deactivate >/dev/null 2>&1; then
        deactivate
    fi
    if [ "${_NEURODAMUS_OLD_PYTHONPATH}" = "__unset__" ]; then unset PYTHONPATH
    else export PYTHONPATH="$_NEURODAMUS_OLD_PYTHONPATH"; fi
    if [ "${_NEURODAMUS_OLD_HOC_LIBRARY_PATH}" = "__unset__" ]; then unset HOC_LIBRARY_PATH
    else export HOC_LIBRARY_PATH="$_NEURODAMUS_OLD_HOC_LIBRARY_PATH"; fi
    unset _NEURODAMUS_ACTIVE _NEURODAMUS_OLD_PYTHONPATH _NEURODAMUS_OLD_HOC_LIBRARY_PATH
    unset NEURODAMUS_CHECKOUT NEURODAMUS_SPACK_ENV NEURODAMUS_SPACK
    hash -r 2>/dev/null || true
}

_nd_activate "$@"
_nd_status=$?
unset -f _nd_activate
# _nd_prepend, _nd_find_spack and the Spack helpers stay defined: neurodamus_deactivate uses them.
# shellcheck disable=SC2317
return $_nd_status 2>/dev/null || exit $_nd_status
