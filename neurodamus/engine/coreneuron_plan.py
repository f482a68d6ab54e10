"""How a run uses CoreNEURON, decided at load without NEURON: transfer mode, whether to
build the model in NEURON or simulate one written earlier, and what a written model must match.
The engine itself is ``coreneuron_engine.py``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from .core_options import solver_option_names

CORENEURON_INPUT = "coreneuron_input"
MODEL_MARKER = "neurodamus_model.json"
BUILD_MODES = ("AUTO", "ON", "OFF")
#: input modules whose NEURON objects CoreNEURON cannot take over (NEURON 9.0.2 aborts in
#: nrnthread_dat2_vecplay): seclamp plays its levels with a discrete (step) Vector.play
DISCRETE_PLAY_MODULES = {"seclamp"}


# ---- options -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CoreNeuronPlan:
    """How this run uses CoreNEURON: transfer mode, build and simulate steps, input folder."""

    file_mode: bool
    build: str            # "ON", "OFF" or "AUTO" (decided by ``decide_build``)
    simulate: bool
    keep_build: bool
    datpath: Path
    cell_permute: int = 0       # --cell-permute, --model-stats, --enable-shm
    model_stats: bool = False
    enable_shm: bool = False

    @property
    def keep_input(self) -> bool:
        return self.keep_build or not self.simulate


def plan_run(settings, options) -> CoreNeuronPlan | None:
    """The CoreNEURON plan of a run (None for the NEURON engine); ConfigError on bad options."""
    build = (getattr(options, "build_model", None) or "AUTO").upper()
    simulate = getattr(options, "simulate_model", True)
    keep = bool(getattr(options, "keep_build", False))
    direct = bool(getattr(options, "coreneuron_direct_mode", False))
    if build not in BUILD_MODES:
        raise ConfigError(f"--build-model must be one of {', '.join(BUILD_MODES)}, got {build}")
    file_options = [name for name, used in (("--keep-build", keep),
                                            (f"--build-model={build}", build != "AUTO"),
                                            ("--simulate-model=OFF", not simulate)) if used]
    if settings.target_simulator != "CORENEURON":
        named = file_options + (["--coreneuron-direct-mode"] if direct else []) + \
            solver_option_names(options)
        if named:
            raise ConfigError(f"{', '.join(named)}: CoreNEURON options, but the simulator is "
                              f"{settings.target_simulator} (use --simulator=CORENEURON)")
        return None
    if direct and file_options:
        raise ConfigError(f"--coreneuron-direct-mode cannot be combined with "
                          f"{', '.join(file_options)}: they need the model on disk (file mode)")
    if build == "OFF" and not simulate:
        raise ConfigError("--build-model=OFF with --simulate-model=OFF: nothing to do")
    saving = bool(getattr(options, "save", None) or getattr(options, "restore", None))
    if build == "OFF" and saving:
        raise ConfigError("--save / --restore need the model built in NEURON: they cannot be "
                          "used with --build-model=OFF")
    if not simulate and saving:
        raise ConfigError("--save / --restore need a simulation: not with --simulate-model=OFF")
    return CoreNeuronPlan(file_mode=bool(file_options), build=build, simulate=simulate,
                          keep_build=keep, datpath=settings.output_dir / CORENEURON_INPUT,
                          cell_permute=int(getattr(options, "cell_permute", 0) or 0),
                          model_stats=bool(getattr(options, "model_stats", False)),
                          enable_shm=bool(getattr(options, "enable_shm", False)))


def model_identity(settings, populations, n_ranks: int) -> dict:
    """What a written model must match to be simulated by a later run."""
    return {"circuit": str(Path(settings.circuit_path).resolve()),
            "node_set": settings.sim.node_set or "",
            "ranks": int(n_ranks), "dt": float(settings.run.dt),
            "populations": {n: [int(p.offset), len(p.selected), bool(p.is_virtual)]
                            for n, p in populations.items()}}


def read_model_marker(datpath: Path) -> dict | None:
    try:
        data = json.loads((Path(datpath) / MODEL_MARKER).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def model_mismatch(marker: dict | None, identity: dict) -> str | None:
    """Why a written model cannot be simulated by this run (None when it can)."""
    if marker is None:
        return "no complete model (no " + MODEL_MARKER + ")"
    for key, what in (("circuit", "circuit"), ("node_set", "node set"), ("ranks", "rank count"),
                      ("dt", "dt"), ("populations", "populations")):
        if marker.get(key) != identity[key]:
            return f"it was built for another {what} ({marker.get(key)!r}, this run: " \
                   f"{identity[key]!r})"
    return None


def decide_build(plan: CoreNeuronPlan, settings, populations, n_ranks, has_reports: bool,
                 needs_model: bool = False) -> bool:
    """True when this run builds the model in NEURON (same answer on every rank).
    ``needs_model``: the run saves or restores a checkpoint (AUTO then always builds)."""
    identity = model_identity(settings, populations, n_ranks)
    why = model_mismatch(read_model_marker(plan.datpath), identity)
    if plan.build == "ON":
        return True
    if plan.build == "OFF":
        if why:
            raise ConfigError(f"--build-model=OFF: cannot simulate {plan.datpath}: {why}; "
                              f"run with --build-model=ON (or AUTO) first")
        if has_reports:
            raise ConfigError("--build-model=OFF: the config has reports, which need the "
                              "model built in NEURON (CoreNEURON of the NEURON wheel cannot "
                              "write reports itself); run with --build-model=AUTO or ON, or "
                              "with --disable-reports")
        return False
    if why is None and not has_reports and plan.simulate and not needs_model:
        return False
    return True


def check_inputs_supported(settings) -> None:
    sim = settings.sim
    for name in sim.list_input_names:
        module = sim.input(name).module.name
        if module in DISCRETE_PLAY_MODULES:
            raise ConfigError(f"{settings.config_path}: inputs.{name}: module '{module}' plays "
                              f"its levels with a step Vector.play, which CoreNEURON cannot "
                              f"take over (NEURON 9.0.2 aborts); use --simulator=NEURON")


__all__ = ["BUILD_MODES", "CORENEURON_INPUT", "MODEL_MARKER", "CoreNeuronPlan",
           "check_inputs_supported", "decide_build", "model_identity", "model_mismatch",
           "plan_run", "read_model_marker"]
