#!/usr/bin/env bash
# Launch neurodamus (or any command) on N MPI ranks with the launcher this machine wants.
#
# Usage: scripts/launch.sh [-n N] [--launcher KIND] [--dry-run] [--] [COMMAND] ARGS...
#
#   -n, --ranks N      number of MPI ranks. Without it: all tasks of the Slurm allocation
#                      (srun decides), otherwise one plain process.
#   --launcher KIND    auto (default), srun, mpirun, mpiexec or none.
#   --dry-run          print the command that would run (one line, shell-quoted) and stop.
#   -h, --help         this text.
#
# COMMAND: when the first argument after the options names a program (found on PATH or a path
# to an executable file) it is run as given; otherwise `neurodamus` runs with all the
# arguments, so `launch.sh -n 4 simulation_config.json --verbose` runs
# `neurodamus simulation_config.json --verbose`. NEURODAMUS_CMD replaces the word
# `neurodamus` (e.g. NEURODAMUS_CMD="python -m neurodamus").
#
# Choice of launcher (auto):
#   1. inside a Slurm allocation (SLURM_JOB_ID set) and srun found:  srun [-n N] COMMAND
#   2. mpirun, else mpiexec, on PATH, with the flags its MPI needs:
#      Open MPI: --allow-run-as-root when run by root, --oversubscribe when N exceeds the
#                cores, --bind-to none on small machines (fewer than 8 cores, or
#                oversubscribed);
#      MPICH, Intel MPI and others: no extra flags.
#   3. no launcher: the command runs as one plain process (N must be 1).
# NEURODAMUS_LAUNCH_FLAGS adds flags right after the launcher; NEURODAMUS_SMALL_MACHINE_CORES
# (default 8) sets where a machine stops being small; NEURODAMUS_MPI_FLAVOR (openmpi, mpich)
# skips asking the launcher for its version.
set -Eeuo pipefail

usage() { sed -n '2,29p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
die() { echo "launch.sh: $*" >&2; exit 2; }

ranks=""
kind="auto"
dry_run=0
while [ $# -gt 0 ]; do
    case "$1" in
        -n|--ranks|-np)
            [ $# -gt 1 ] || die "$1 needs a number"
            ranks="$2"; shift 2 ;;
        -n[0-9]*) ranks="${1#-n}"; shift ;;
        --ranks=*) ranks="${1#--ranks=}"; shift ;;
        --launcher)
            [ $# -gt 1 ] || die "--launcher needs auto, srun, mpirun, mpiexec or none"
            kind="$2"; shift 2 ;;
        --launcher=*) kind="${1#--launcher=}"; shift ;;
        --dry-run) dry_run=1; shift ;;
        -h|--help) usage; exit 0 ;;
        --) shift; break ;;
        *) break ;;
    esac
done

if [ -n "$ranks" ] && ! [[ "$ranks" =~ ^[1-9][0-9]*$ ]]; then
    die "-n must be a positive integer, got '$ranks'"
fi
case "$kind" in auto|srun|mpirun|mpiexec|none) ;; *) die "unknown launcher '$kind'" ;; esac

# ---- the command ---------------------------------------------------------------------------
read -r -a driver <<< "${NEURODAMUS_CMD:-neurodamus}"
cmd=()
if [ $# -gt 0 ] && [[ "$1" != -* ]] && [[ "$1" != *.json ]] \
        && { [[ "$1" == */* && -x "$1" && ! -d "$1" ]] || { [[ "$1" != */* ]] && command -v "$1" >/dev/null 2>&1; }; }; then
    cmd=("$@")
else
    cmd=("${driver[@]}" "$@")
fi

# ---- the launcher --------------------------------------------------------------------------
cores="$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)"
small="${NEURODAMUS_SMALL_MACHINE_CORES:-8}"

if [ "$kind" = "auto" ]; then
    if [ -n "${SLURM_JOB_ID:-}" ] && command -v srun >/dev/null 2>&1; then
        kind="srun"
    elif [ -z "$ranks" ]; then
        kind="none"
    elif command -v mpirun >/dev/null 2>&1; then
        kind="mpirun"
    elif command -v mpiexec >/dev/null 2>&1; then
        kind="mpiexec"
    else
        kind="none"
        if [ -n "${SLURM_JOB_ID:-}" ]; then
            echo "launch.sh: SLURM_JOB_ID is set but srun is not on PATH" >&2
        fi
    fi
fi
[ "$kind" = "none" ] || command -v "$kind" >/dev/null 2>&1 || die "$kind not found on PATH"

extra=()
if [ -n "${NEURODAMUS_LAUNCH_FLAGS:-}" ]; then
    read -r -a extra <<< "$NEURODAMUS_LAUNCH_FLAGS"
fi

mpi_flavor() {
    # openmpi, mpich, intel or unknown, from `<launcher> --version`.
    if [ -n "${NEURODAMUS_MPI_FLAVOR:-}" ]; then echo "$NEURODAMUS_MPI_FLAVOR"; return; fi
    local text
    text="$("$1" --version 2>&1 || true)"
    case "$text" in
        *"Open MPI"*|*OpenRTE*|*"Open RTE"*) echo openmpi ;;
        *"Intel(R) MPI"*) echo intel ;;
        *HYDRA*|*MPICH*|*mpich*) echo mpich ;;
        *) echo unknown ;;
    esac
}

launch=()
case "$kind" in
    srun)
        launch=(srun "${extra[@]+"${extra[@]}"}")
        [ -n "$ranks" ] && launch+=(-n "$ranks")
        ;;
    mpirun|mpiexec)
        n="${ranks:-1}"
        launch=("$kind")
        if [ "$(mpi_flavor "$kind")" = "openmpi" ]; then
            [ "$(id -u)" = "0" ] && launch+=(--allow-run-as-root)
            [ "$n" -gt "$cores" ] && launch+=(--oversubscribe)
            if [ "$n" -gt "$cores" ] || [ "$cores" -lt "$small" ]; then
                launch+=(--bind-to none)
            fi
        fi
        launch+=("${extra[@]+"${extra[@]}"}" -n "$n")
        ;;
    none)
        if [ -n "$ranks" ] && [ "$ranks" -gt 1 ]; then
            die "no MPI launcher (srun, mpirun, mpiexec) found for $ranks ranks"
        fi
        ;;
esac

full=("${launch[@]+"${launch[@]}"}" "${cmd[@]}")
if [ "$dry_run" = 1 ]; then
    printf '%q ' "${full[@]}" | sed 's/ $//'
    echo
    exit 0
fi
exec "${full[@]}"
