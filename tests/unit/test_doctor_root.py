"""When ``neurodamus doctor`` tells root what Open MPI needs (neurodamus/tools/doctor/mpi.py)."""

from neurodamus.tools.doctor.mpi import ROOT_VARIABLES, root_launch_fix

BOTH = {name: "1" for name in ROOT_VARIABLES}


def test_no_fix_for_other_users_or_other_mpis():
    assert root_launch_fix(False, True, {}) is None
    assert root_launch_fix(True, False, {}) is None


def test_no_fix_when_both_variables_are_one():
    assert root_launch_fix(True, True, BOTH) is None


def test_fix_names_both_variables_and_the_launcher():
    for env in ({}, {"OMPI_ALLOW_RUN_AS_ROOT": "1"}, dict(BOTH, OMPI_ALLOW_RUN_AS_ROOT="yes")):
        fix = root_launch_fix(True, True, env)
        assert fix is not None
        assert "export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1" in fix
        assert "scripts/launch.sh -n 2" in fix
