"""``--save=DIR`` and ``--restore=DIR``: continue a run later, with a later tstop.

A checkpoint is the NEURON-side state at the end of a run, whatever the engine: after every
``psolve`` CoreNEURON (embedded, direct or file mode) hands its whole state back to NEURON, so
one format serves both engines (a NEURON checkpoint can even continue under CoreNEURON and
back). CoreNEURON's own ``--checkpoint``/``--restore`` is not used: launched from NEURON it
takes its event queue from NEURON and ignores the saved one (NEURON 9.0.2 aborts on the stale
events), and a direct-mode checkpoint cannot be read back at all.

What is saved, per rank (the restoring run rebuilds the same model first):

* ``SaveState`` (voltages, STATE variables, every variable of artificial cells, NetCon and
  self events in the queue, play/record events);
* what ``SaveState`` misses and this driver's mechanisms keep state in: every RANGE variable
  (PARAMETER and ASSIGNED) of every point process (release-site counts, facilitation), the
  sequence of every NMODL ``RANDOM`` stream of point processes and artificial cells, and every
  NetCon weight vector (delayed weight changes). State kept in non-RANGE variables of a
  non-artificial point process, or in RANDOM streams of density mechanisms, is not saved;
* the report values of the last step, so the restored run writes the row at the checkpoint
  time as the straight run would (currents are not part of the state to restore);
* rank 0: the spike file and the report files written so far (``outputs/``). The restored
  run writes complete outputs: the earlier spikes and report rows, then its own.

``checkpoint.json`` (written last, so a half-written folder is no checkpoint) names the
circuit, node set, populations, rank count, dt and time; a restore from a folder that is not
a checkpoint, or from another circuit or rank count, or to a tstop not after the checkpoint
time, stops in the load phase with the reason.

Minis (``InhPoissonStim``) keep the mod's default ``duration`` in saving and restoring runs
(as under CoreNEURON, contract §3.9): a generator stopped at the first run's tstop could
not resume. Within the run this changes nothing.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path

import h5py
import libsonata
import numpy as np

from ..errors import ConfigError, NeurodamusError
from .coreneuron_plan import model_identity

log = logging.getLogger(__name__)

FORMAT = "neurodamus-checkpoint"
VERSION = 1
META = "checkpoint.json"
OUTPUTS = "outputs"
OPEN_DURATION = 1e9   # InhPoissonStim's default duration (core/mod/InhPoissonStim.mod)


class CheckpointError(NeurodamusError):
    """A checkpoint folder cannot be written or does not fit the run restoring from it."""


def _state_file(folder: Path, rank: int) -> Path:
    return Path(folder) / f"rank{rank}.savestate"


def _extras_file(folder: Path, rank: int) -> Path:
    return Path(folder) / f"rank{rank}.npz"


def identity(settings, populations, n_ranks: int) -> dict:
    return model_identity(settings, populations, n_ranks)


def read_meta(folder) -> dict:
    """The metadata of a checkpoint folder; CheckpointError saying why it is not one."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"--restore={folder}: no such folder")
    path = folder / META
    if not path.is_file():
        raise CheckpointError(f"--restore={folder}: not a checkpoint (no {META}; write one "
                              f"with --save=DIR)")
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"--restore={folder}: {META} is unreadable: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"--restore={folder}: {META} is not a neurodamus checkpoint")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"--restore={folder}: checkpoint format version "
                              f"{meta.get('version')} (this driver reads {VERSION})")
    return meta


def check_restore(folder, settings, populations, n_ranks: int) -> dict:
    """Load-phase check of ``--restore``: the folder fits this circuit, rank count and tstop."""
    meta = read_meta(folder)
    here = identity(settings, populations, n_ranks)
    saved = meta.get("identity", {})
    where = f"--restore={folder}"
    if saved.get("ranks") != here["ranks"]:
        raise CheckpointError(f"{where}: saved on {saved.get('ranks')} rank(s), this run has "
                              f"{here['ranks']}: restore on the same rank count")
    if saved.get("circuit") != here["circuit"]:
        raise CheckpointError(f"{where}: saved from another circuit ({saved.get('circuit')}; "
                              f"this run: {here['circuit']})")
    for key, what in (("node_set", "node set"), ("populations", "populations"), ("dt", "dt")):
        if saved.get(key) != here[key]:
            raise CheckpointError(f"{where}: saved with another {what} "
                                  f"({saved.get(key)!r}; this run: {here[key]!r})")
    t = float(meta["t"])
    if not settings.run.tstop > t + 0.5 * settings.run.dt:
        raise CheckpointError(f"{where}: the checkpoint is at t = {t:g} ms; run.tstop "
                              f"({settings.run.tstop:g} ms) must be later to continue")
    for rank in range(n_ranks):
        for path in (_state_file(folder, rank), _extras_file(folder, rank)):
            if not path.is_file():
                raise CheckpointError(f"{where}: incomplete checkpoint: {path.name} missing")
    return meta


def check_save(folder, restore=None) -> None:
    folder = Path(folder)
    if restore is not None and Path(restore).resolve() == folder.resolve():
        raise ConfigError(f"--save={folder}: the same folder as --restore; save into a new one")
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--save={folder}: exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / META).is_file():
        raise ConfigError(f"--save={folder}: the folder is not empty and holds no checkpoint: "
                          f"choose an empty or new folder")


# ---- what SaveState misses -----------------------------------------------------------------------
def _point_process_types(h) -> list[str]:
    mt = h.MechanismType(1)
    name = h.ref("")
    out = []
    for i in range(int(mt.count())):
        mt.select(i)
        mt.selected(name)
        out.append(name[0])
    return out


def _range_variables(h, name: str) -> list[tuple[str, int]]:
    out = []
    for vartype in (1, 2):   # PARAMETER, ASSIGNED (STATE is SaveState's)
        ms = h.MechanismStandard(name, vartype)
        vname = h.ref("")
        for i in range(int(ms.count())):
            size = int(ms.name(vname, i))
            out.append((vname[0], size))
    return out


def _random_variables(obj) -> list[str]:
    names = []
    for attr in dir(obj):
        if attr.startswith("_"):
            continue
        try:
            value = getattr(obj, attr)
        except (ValueError, TypeError, RuntimeError, AttributeError):
            value = None   # a POINTER/BBCOREPOINTER without a target raises ValueError
        if type(value).__name__ == "NMODLRandom":
            names.append(attr)
    return names


def collect_extras(h) -> dict:
    """Arrays of point-process RANGE values, RANDOM sequences and NetCon weights."""
    out = {}
    for name in _point_process_types(h):
        items = h.List(name)
        n = int(items.count())
        if n == 0:
            continue
        first = items.o(0)
        artificial = not first.has_loc() if hasattr(first, "has_loc") else False
        variables = [] if artificial else _range_variables(h, name)
        randoms = _random_variables(first)
        width = sum(size for _, size in variables)
        values = np.empty((n, width))
        seqs = np.empty((n, len(randoms)))
        for i in range(n):
            pp = items.o(i)
            col = 0
            for var, size in variables:
                if size == 1:
                    values[i, col] = getattr(pp, var)
                else:
                    arr = getattr(pp, var)
                    values[i, col:col + size] = [arr[j] for j in range(size)]
                col += size
            for j, r in enumerate(randoms):
                seqs[i, j] = getattr(pp, r).get_seq()
        out[f"pp/{name}/values"] = values
        out[f"pp/{name}/vars"] = np.array([f"{v}:{s}" for v, s in variables], dtype=str)
        out[f"pp/{name}/randoms"] = np.array(randoms, dtype=str)
        out[f"pp/{name}/seqs"] = seqs
    weights, counts = [], []
    for nc in h.List("NetCon"):
        w = int(nc.wcnt())
        counts.append(w)
        weights.extend(nc.weight[j] for j in range(w))
    out["netcon/counts"] = np.array(counts, np.int64)
    out["netcon/weights"] = np.array(weights, float)
    return out


def apply_extras(h, data) -> None:
    """Put back what ``collect_extras`` saved; CheckpointError when the model differs."""
    names = sorted({k.split("/")[1] for k in data.files if k.startswith("pp/")})
    for name in names:
        items = h.List(name)
        values, seqs = data[f"pp/{name}/values"], data[f"pp/{name}/seqs"]
        if int(items.count()) != len(values):
            raise CheckpointError(f"the model has {int(items.count())} {name} but the "
                                  f"checkpoint {len(values)}: not the same model")
        variables = [(v.rsplit(":", 1)[0], int(v.rsplit(":", 1)[1]))
                     for v in data[f"pp/{name}/vars"]]
        randoms = [str(r) for r in data[f"pp/{name}/randoms"]]
        for i in range(len(values)):
            pp = items.o(i)
            col = 0
            row = values[i]
            for var, size in variables:
                if size == 1:
                    setattr(pp, var, float(row[col]))
                else:
                    arr = getattr(pp, var)
                    for j in range(size):
                        arr[j] = float(row[col + j])
                col += size
            for j, r in enumerate(randoms):
                getattr(pp, r).set_seq(float(seqs[i, j]))
    counts, weights = data["netcon/counts"], data["netcon/weights"]
    netcons = h.List("NetCon")
    if int(netcons.count()) != len(counts):
        raise CheckpointError(f"the model has {int(netcons.count())} NetCons but the "
                              f"checkpoint {len(counts)}: not the same model")
    k = 0
    for nc, w in zip(netcons, counts):
        for j in range(int(w)):
            nc.weight[j] = float(weights[k])
            k += 1


def open_minis(h) -> None:
    """Minis generators keep their default duration (they must outlive this run's tstop)."""
    if hasattr(h, "InhPoissonStim"):
        for stim in h.List("InhPoissonStim"):
            stim.duration = OPEN_DURATION


# ---- reports --------------------------------------------------------------------------------
def copy_report_rows(spec, saved_file: Path, step: int, warn) -> None:
    """Rows of ``spec``'s final file before ``step`` from the checkpoint's copy (rank 0)."""
    _, b = spec.grid.rows_in(0, step)
    if b <= 0:
        return
    if not saved_file.is_file():
        warn(f"report {spec.name}: the checkpoint has no {saved_file.name}; rows before the "
             f"checkpoint time are left empty")
        return
    with h5py.File(saved_file, "r") as src, h5py.File(spec.path, "r+") as dst:
        for pop in dst["report"]:
            if pop not in src.get("report", {}):
                warn(f"report {spec.name}: population {pop} not in the checkpoint's copy")
                continue
            s, d = src[f"report/{pop}"], dst[f"report/{pop}"]
            same = all(np.array_equal(s[f"mapping/{k}"][()], d[f"mapping/{k}"][()])
                       for k in ("node_ids", "index_pointers", "element_ids"))
            st, dtm = s["mapping/time"][()], d["mapping/time"][()]
            if not same or st[0] != dtm[0] or st[2] != dtm[2]:
                warn(f"report {spec.name}: the checkpoint's copy has another layout; rows "
                     f"before the checkpoint time are left empty")
                continue
            n = min(b, s["data"].shape[0])
            if n > 0:
                d["data"][:n] = s["data"][:n]


# ---- the run's side ----------------------------------------------------------------------------
class Checkpointing:
    """``--save`` / ``--restore`` of one run (every rank calls every method)."""

    def __init__(self, plan, rt, model):
        self.plan, self.rt, self.model = plan, rt, model
        options = plan.options
        self.save_dir = Path(options.save) if options.save else None
        self.restore_dir = Path(options.restore) if options.restore else None
        self.meta = plan.checked.restore_meta   # checked at load (``check_restore``)
        self._last_values = {}
        self._solver_t = None
        self.restored_t = None

    @property
    def active(self) -> bool:
        return self.save_dir is not None or self.restore_dir is not None

    def prepare_model(self, h):
        if self.active:
            open_minis(h)

    def restore(self, h, pc):
        """After initialisation: the saved state, spikes and report steps."""
        plan, model, rank = self.plan, self.model, self.plan.rank
        folder = self.restore_dir
        # the reports' recordings go after the saved plays of the list; a second
        # initialisation makes them record (a record made after one never does)
        model.reports.stop_recording()
        model.reports.record_again()
        h.stdinit()
        ss = h.SaveState()
        f = h.File(str(_state_file(folder, rank)))
        f.ropen()
        try:
            ss.fread(f)
        except RuntimeError as exc:
            raise CheckpointError(f"--restore={folder}: {_state_file(folder, rank).name} does "
                                  f"not fit the model built by this run ({exc})") from exc
        finally:
            f.close()
        try:
            ss.restore()
        except RuntimeError as exc:
            raise CheckpointError(f"--restore={folder}: the saved state does not fit the model "
                                  f"built by this run ({exc})") from exc
        with np.load(_extras_file(folder, rank), allow_pickle=False) as data:
            apply_extras(h, data)
            values = {k.split("/", 1)[1]: data[k] for k in data.files
                      if k.startswith("report/")}
        t = float(self.meta["t"])
        self.restored_t = t
        step = round(t / plan.dt)
        model.reports.resume(step, h.t, values, log.warning)
        if rank == 0:
            self._restore_spikes(folder)

    def _restore_spikes(self, folder):
        """Rank 0: the spikes before the checkpoint go into this run's spike vectors."""
        path = Path(folder) / OUTPUTS / self.meta["spikes_file"]
        if not path.is_file():
            return
        reader = libsonata.SpikeReader(str(path))
        times, gids = [], []
        for name in reader.get_population_names():
            pop = self.plan.populations.get(name)
            if pop is None:
                continue
            data = reader[name].get()
            if data:
                ids, ts = zip(*data)
                gids.append(np.asarray(ids, np.int64) + pop.offset)
                times.append(np.asarray(ts, float))
        if times:
            t, g = np.concatenate(times), np.concatenate(gids)
            order = np.lexsort((g, t))
            h = self.rt.h
            self.model.spike_t.append(h.Vector(t[order]))
            self.model.spike_gid.append(h.Vector(g[order].astype(float)))

    def wrap_on_chunk(self, on_chunk, tstop: float):
        """Before the flush that ends the run, keep the last step's report values."""
        if self.save_dir is None:
            return on_chunk

        def hook(t):
            if t >= tstop - 1e-9:
                self._last_values = self.model.reports.last_values()
                self._solver_t = float(self.rt.h.t)   # the run loop then sets t = tstop
            on_chunk(t)
        return hook

    def save_state(self, h, pc):
        """After the run: every rank writes its state (the folder is made by rank 0)."""
        plan = self.plan
        folder = self.save_dir
        if plan.rank == 0:
            folder.mkdir(parents=True, exist_ok=True)
            for old in (folder / META, folder / OUTPUTS):
                if old.is_dir():
                    shutil.rmtree(old)
                elif old.exists():
                    old.unlink()
        if plan.size > 1:
            self.rt.comm.Barrier()
        self.model.reports.stop_recording()   # complete at the end of the run in any case
        ss = h.SaveState()
        shown_t = h.t
        h.t = self._solver_t   # SaveState wants the threads' own time
        try:
            ss.save()
        finally:
            h.t = shown_t
        f = h.File(str(_state_file(folder, plan.rank)))
        f.wopen()
        ss.fwrite(f)
        f.close()
        arrays = collect_extras(h)
        for name, values in self._last_values.items():
            arrays[f"report/{name}"] = values
        tmp = _extras_file(folder, plan.rank).with_suffix(".tmp.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, _extras_file(folder, plan.rank))

    def finish(self):
        """After the outputs are closed (rank 0): earlier report rows of a restored run;
        the outputs and the metadata of a saved one."""
        plan, reports = self.plan, self.model.reports
        if plan.rank != 0:
            return
        settings = plan.settings
        if self.restore_dir is not None:
            step = round(self.restored_t / plan.dt)
            for rep in reports.reports:
                copy_report_rows(rep.spec, self.restore_dir / OUTPUTS / rep.spec.path.name,
                                 step, log.warning)
        if self.save_dir is None:
            return
        out = self.save_dir / OUTPUTS
        out.mkdir(parents=True, exist_ok=True)
        files = [settings.spikes_file] + reports.files
        for path in files:
            if Path(path).is_file():
                shutil.copy2(path, out / Path(path).name)
        meta = {"format": FORMAT, "version": VERSION, "t": float(settings.run.tstop),
                "dt": float(settings.run.dt), "engine": settings.target_simulator,
                "identity": identity(settings, plan.populations, plan.size),
                "config": str(Path(settings.config_path).resolve()),
                "spikes_file": settings.spikes_file.name,
                "reports": [Path(p).name for p in files[1:]],
                "restored_from": str(self.restore_dir) if self.restore_dir else None,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
        tmp = self.save_dir / f"{META}.tmp"
        tmp.write_text(json.dumps(meta, indent=1) + "\n")
        os.replace(tmp, self.save_dir / META)
        log.info("Checkpoint at t = %g ms written to %s", plan.tstop, self.save_dir)


__all__ = [
    "FORMAT",
    "META",
    "CheckpointError",
    "Checkpointing",
    "apply_extras",
    "check_restore",
    "collect_extras",
    "open_minis",
    "read_meta",
]
