"""The issue-16 checks of config values, keys and input files, in the order they run.

Each is ``check_<what>(settings, issues)``: files first (later checks open them), then values,
then unknown keys (warnings only).
"""

from __future__ import annotations

from . import files, keys, values

CHECKS = (*files.CHECKS, *values.CHECKS, *keys.CHECKS)


def run_input_checks(settings, issues) -> None:
    for check in CHECKS:
        check(settings, issues)


__all__ = ["CHECKS", "run_input_checks"]
