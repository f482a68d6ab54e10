#!/usr/bin/env bash
# Run the test suite in .venv (set up first if needed). Arguments go to pytest.
#
#   scripts/run-tests.sh                      everything: tests/unit, integration (mpirun, 2-3
#                                             ranks), scientific, model, packaging
#   scripts/run-tests.sh --quick              tests/unit and a fast subset of the integration
#                                             tests (QUICK below)
#   scripts/run-tests.sh tests/unit           only these paths (files, folders, file::test)
#   scripts/run-tests.sh -k rank_invariance   everything, filtered by pytest's -k
#
# `tests` is added only when no path is given, so paths narrow the run.
set -Eeuo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# the unit tests, small example circuits on 1 and 2 ranks (dump, plot), report errors, the CLI
QUICK=(tests/unit
       tests/integration/test_hoc_objects.py
       tests/integration/test_reports_errors.py
       tests/integration/test_plot.py
       tests/integration/test_run.py::test_dump_cell_state
       tests/integration/test_run.py::test_python_m_and_version
       tests/integration/test_run.py::test_bad_option_prints_usage_and_exits_2)

# pytest options whose value is the next argument (that value is never a path)
takes_value='^(-k|-m|-p|-c|-o|-W|-r|--deselect|--ignore|--ignore-glob|--rootdir|--confcutdir|--basetemp|--junitxml|--junit-xml|--maxfail|--tb|--durations|--log-level|--import-mode)$'

args=()
has_path=0
quick=0
expect_value=0
for arg in "$@"; do
    if [ "$expect_value" = 1 ]; then
        expect_value=0
    elif [ "$arg" = "--quick" ]; then
        quick=1
        continue
    elif [[ "$arg" =~ $takes_value ]]; then
        expect_value=1
    elif [[ "$arg" != -* ]] && [ -e "${arg%%::*}" ]; then
        has_path=1
        # pytest runs from the checkout: a path relative to the caller's folder becomes absolute
        [[ "$arg" == /* ]] || arg="$PWD/$arg"
    elif [[ "$arg" != -* ]] && [ -e "$here/${arg%%::*}" ]; then
        has_path=1
    fi
    args+=("$arg")
done
if [ "$quick" = 1 ]; then
    args=("${QUICK[@]}" "${args[@]+"${args[@]}"}")
elif [ "$has_path" = 0 ]; then
    args=(tests "${args[@]+"${args[@]}"}")
fi

"$here/scripts/setup.sh" >/dev/null
venv=${NEURODAMUS_VENV:-$here/.venv}
cd "$here"
exec "$venv/bin/python" -m pytest "${args[@]}"
