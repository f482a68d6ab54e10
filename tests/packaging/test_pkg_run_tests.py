"""scripts/run-tests.sh: paths and -k narrow the run; without a path it runs all of tests/."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "run-tests.sh"


def run_tests(*args, cwd=ROOT):
    env = dict(os.environ, NEURODAMUS_VENV=str(Path(sys.executable).parent.parent),
               PYTEST_ADDOPTS="-p no:cacheprovider")
    return subprocess.run([str(SCRIPT), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, check=False)


def collected(res) -> set[str]:
    """Test files of the node ids that `pytest --collect-only -q` printed."""
    return {line.split("::")[0] for line in res.stdout.splitlines() if "::" in line}


def test_a_path_runs_only_that_path():
    res = run_tests("tests/unit/test_doctor_root.py", "-q")
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert re.search(r"\b3 passed\b", res.stdout), res.stdout[-2000:]


def test_a_path_relative_to_the_callers_folder(tmp_path):
    res = run_tests("unit/test_doctor_root.py", "--collect-only", "-q", cwd=ROOT / "tests")
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert collected(res) == {"tests/unit/test_doctor_root.py"}


def test_k_narrows_a_path():
    res = run_tests("tests/unit/test_doctor_root.py", "-k", "both_variables_are_one", "-q")
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert re.search(r"\b1 passed, 2 deselected\b", res.stdout), res.stdout[-2000:]


def test_without_a_path_everything_is_collected():
    # the value of -k is not taken for a path, so all of tests/ is collected
    res = run_tests("--collect-only", "-q", "-k", "tests")
    files = collected(res)
    for folder in ("unit", "integration", "scientific", "model", "packaging"):
        assert any(f.startswith(f"tests/{folder}/") for f in files), (folder, sorted(files))


def test_quick_is_unit_plus_a_few_integration_files():
    res = run_tests("--quick", "--collect-only", "-q")
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    files = collected(res)
    assert any(f.startswith("tests/unit/") for f in files)
    integration = {f for f in files if f.startswith("tests/integration/")}
    assert 0 < len(integration) < 10, sorted(integration)
    assert not any(f.startswith(("tests/scientific/", "tests/packaging/", "tests/model/"))
                   for f in files)
