"""scripts/launch.sh picks srun / mpirun / mpiexec / a plain process and the right flags.

The choice is checked with --dry-run on a PATH made of stand-ins (srun, mpirun, mpiexec, and
`id`/`nproc` to play root or not, many cores or few); one test launches for real.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path

import pytest
from pkg_helpers import SCRIPTS, clean_env, mpirun_available, run_bash

LAUNCH = SCRIPTS / "launch.sh"
OPENMPI = "mpirun (Open MPI) 4.1.4\n\nReport bugs to http://www.open-mpi.org/community/help/"
MPICH = "HYDRA build details:\n    Version:                                 4.0.2"
TOOLS = ("bash", "env", "sed", "awk", "cat", "getconf", "dirname")


def make_bin(folder: Path, *, uid=0, cores=2, launchers=None) -> Path:
    """A bin/ with the basic tools, fake `id`/`nproc`, and fake launchers {name: version text}."""
    folder.mkdir(parents=True, exist_ok=True)
    for tool in TOOLS:
        (folder / tool).symlink_to(shutil.which(tool))
    scripts = {
        "id": f'[ "$1" = "-u" ] && echo {uid} || echo "uid={uid}"',
        "nproc": f"echo {cores}",
    }
    for name, version in (launchers or {}).items():
        (folder / f"{name}.version").write_text(version + "\n")
        scripts[name] = (
            f'if [ "$1" = "--version" ]; then cat "{folder}/{name}.version"; exit 0; fi\n'
            f'echo "{name} ran: $*"'
        )
    for name, body in scripts.items():
        (folder / name).write_text("#!/bin/bash\n" + body + "\n")
        (folder / name).chmod(0o755)
    return folder


def dry_run(bin_dir: Path, *args: str, **env: str) -> list[str]:
    proc = run_bash(
        " ".join(shlex.quote(a) for a in [str(LAUNCH), "--dry-run", *args]),
        env=clean_env(PATH=str(bin_dir), **env),
    )
    assert proc.returncode == 0, proc.stderr
    return shlex.split(proc.stdout.strip())


CASES = {
    # id: (make_bin kwargs, launch.sh args, extra env, expected command)
    "slurm-srun": (
        {"launchers": {"srun": "slurm 23.02", "mpirun": OPENMPI}},
        ["-n", "4", "sim.json"], {"SLURM_JOB_ID": "1234"},
        ["srun", "-n", "4", "neurodamus", "sim.json"],
    ),
    "slurm-srun-all-tasks": (
        {"launchers": {"srun": "slurm 23.02"}},
        ["sim.json"], {"SLURM_JOB_ID": "1234"},
        ["srun", "neurodamus", "sim.json"],
    ),
    "slurm-without-srun": (
        {"launchers": {"mpirun": OPENMPI}, "uid": 1000, "cores": 64},
        ["-n", "2", "sim.json"], {"SLURM_JOB_ID": "1234"},
        ["mpirun", "-n", "2", "neurodamus", "sim.json"],
    ),
    "openmpi-root-small": (
        {"launchers": {"mpirun": OPENMPI}, "uid": 0, "cores": 2},
        ["-n", "2", "sim.json"], {},
        ["mpirun", "--allow-run-as-root", "--bind-to", "none", "-n", "2", "neurodamus",
         "sim.json"],
    ),
    "openmpi-user-oversubscribed": (
        {"launchers": {"mpirun": OPENMPI}, "uid": 1000, "cores": 2},
        ["-n", "3", "sim.json"], {},
        ["mpirun", "--oversubscribe", "--bind-to", "none", "-n", "3", "neurodamus", "sim.json"],
    ),
    "openmpi-user-big-machine": (
        {"launchers": {"mpirun": OPENMPI}, "uid": 1000, "cores": 64},
        ["-n", "8", "sim.json"], {},
        ["mpirun", "-n", "8", "neurodamus", "sim.json"],
    ),
    "mpich-root-oversubscribed": (
        {"launchers": {"mpiexec": MPICH}, "uid": 0, "cores": 2},
        ["-n", "4", "sim.json"], {},
        ["mpiexec", "-n", "4", "neurodamus", "sim.json"],
    ),
    "no-launcher-one-process": (
        {"launchers": {}},
        ["sim.json", "--verbose"], {},
        ["neurodamus", "sim.json", "--verbose"],
    ),
    "no-ranks-no-slurm-plain": (
        {"launchers": {"mpirun": OPENMPI}},
        ["sim.json"], {},
        ["neurodamus", "sim.json"],
    ),
    "other-command": (
        {"launchers": {"mpirun": OPENMPI}, "uid": 1000, "cores": 64},
        ["-n", "2", "bash", "-c", "true"], {},
        ["mpirun", "-n", "2", "bash", "-c", "true"],
    ),
    "driver-command-override": (
        {"launchers": {"mpirun": OPENMPI}, "uid": 1000, "cores": 64},
        ["-n", "2", "--", "sim.json"], {"NEURODAMUS_CMD": "python3 -m neurodamus"},
        ["mpirun", "-n", "2", "python3", "-m", "neurodamus", "sim.json"],
    ),
    "extra-flags": (
        {"launchers": {"mpirun": OPENMPI}, "uid": 1000, "cores": 64},
        ["-n", "2", "sim.json"], {"NEURODAMUS_LAUNCH_FLAGS": "--mca btl self,vader"},
        ["mpirun", "--mca", "btl", "self,vader", "-n", "2", "neurodamus", "sim.json"],
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_launcher_choice(tmp_path, case):
    bin_kwargs, args, env, expected = case
    assert dry_run(make_bin(tmp_path / "bin", **bin_kwargs), *args, **env) == expected


def test_many_ranks_without_launcher_is_an_error(tmp_path):
    bin_dir = make_bin(tmp_path / "bin", launchers={})
    proc = run_bash(f"{LAUNCH} -n 2 sim.json", env=clean_env(PATH=str(bin_dir)))
    assert proc.returncode == 2
    assert "no MPI launcher" in proc.stderr


def test_bad_rank_count(tmp_path):
    proc = run_bash(f"{LAUNCH} -n zero sim.json")
    assert proc.returncode == 2 and "positive integer" in proc.stderr


def test_executes_the_chosen_command(tmp_path):
    bin_dir = make_bin(tmp_path / "bin", launchers={"mpirun": OPENMPI}, uid=1000, cores=64)
    proc = run_bash(f"{LAUNCH} -n 2 sim.json", env=clean_env(PATH=str(bin_dir)))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "mpirun ran: -n 2 neurodamus sim.json"


@pytest.mark.skipif(not mpirun_available(), reason="no mpirun/mpiexec on this machine")
def test_two_real_ranks():
    # one write per line: two ranks' print() calls can interleave mid-line on mpirun's stdout
    code = ("import sys; from mpi4py import MPI; c = MPI.COMM_WORLD; "
            "sys.stdout.write(f'rank {c.rank} of {c.size}\\n')")
    python_dir = str(Path(sys.executable).parent)
    env = clean_env(PATH=f"{python_dir}:/usr/local/bin:/usr/bin:/bin")
    proc = run_bash(f"{LAUNCH} -n 2 python -c {shlex.quote(code)}", env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert sorted(line for line in proc.stdout.splitlines() if line.startswith("rank")) == [
        "rank 0 of 2", "rank 1 of 2"
    ]
