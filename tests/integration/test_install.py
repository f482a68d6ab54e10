"""A regular (non-editable) install carries the HOC library, mechanisms and model with it."""

import subprocess
import sys

from tests.helpers import ROOT, base_env, read_spikes


def test_wheel_install_runs_example(tmp_path):
    wheel_dir, target = tmp_path / "wheel", tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", wheel_dir,
                    ROOT], check=True, capture_output=True)
    wheel = next(wheel_dir.glob("neurodamus-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    target, wheel], check=True, capture_output=True)
    env = base_env(PYTHONPATH=str(target))
    where = subprocess.run([sys.executable, "-c", "import neurodamus.paths as p; "
                            "print(p.hoc_dir()); print(p.checkout_root())"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    hoc_dir, checkout = where.stdout.split()
    assert hoc_dir == str(target / "neurodamus" / "data" / "hoc") and checkout == "None"
    cmd = [sys.executable, "-m", "neurodamus"]
    subprocess.run(cmd + ["example", tmp_path / "ex", "--cells=6", "--tstop=100"], cwd=tmp_path,
                   env=env, check=True, capture_output=True)
    run = subprocess.run(cmd + [tmp_path / "ex" / "simulation_config.json"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    spikes = read_spikes(tmp_path / "ex" / "output" / "out.h5")
    assert "cortex" in spikes
