"""``--save=DIR`` and ``--restore=DIR``: continue a run later, with a later tstop.

A checkpoint is the NEURON-side state at the end of a run, whatever the engine: after every
``psolve`` CoreNEURON (embedded, direct or file mode) hands its whole state back to NEURON, so
one format serves both engines (a NEURON checkpoint can even continue under CoreNEURON and
back). CoreNEURON's own ``--checkpoint``/``--restore`` is not used: launched from NEURON it
takes its event queue from NEURON and ignores the saved one (NEURON 9.0.2 aborts on the stale
events), and a direct-mode checkpoint cannot be read back at all.

A checkpoint restores on any rank count. What is saved (the restoring run rebuilds the same
model first, with its own distribution of the cells):

* per cell (``cells/``, ``gid_state.py``): NEURON's ``BBSaveState`` keyed by gid: sections,
  synapses and their NetCons, RANDOM sequences, minis generators and replay sources, events
  in flight. A run on another rank count restores from these alone;

and, per rank, for a restore on the same rank count:

* ``SaveState`` (voltages, STATE variables, every variable of artificial cells, NetCon and
  self events in the queue, play/record events);
* what ``SaveState`` misses and this driver's mechanisms keep state in: every RANGE variable
  (PARAMETER and ASSIGNED) of every point process (release-site counts, facilitation), the
  sequence of every NMODL ``RANDOM`` stream of point processes and artificial cells, and every
  NetCon weight vector (delayed weight changes). State kept in non-RANGE variables of a
  non-artificial point process, or in RANDOM streams of density mechanisms, is not saved;
* the report values of the last step with the gid of each, so the restored run (on any rank
  count) writes the row at the checkpoint time as the straight run would (currents are not
  part of the state to restore);
* rank 0: the spike file and the report files written so far (``outputs/``). The restored
  run writes complete outputs: the earlier spikes and report rows (matched by node when the
  rank count, and so the files' node order, differs), then its own.

Spike replay and neuromodulation give every synapse a VecStim of its own in a run that saves
or restores checkpoints (``BBSaveState`` saves a gid-less source with the one synapse it
drives); the events are those of the shared VecStims of other runs.

``checkpoint.json`` (written last, so a half-written folder is no checkpoint) names the
circuit, node set, populations, rank count, dt and time; a restore from a folder that is not
a checkpoint, or from another circuit, node set, population list or dt, or on another rank
count without ``cells/``, or to a tstop not after the checkpoint time, stops in the load
phase with the reason; a cell without saved state stops every rank at initialisation.

Minis (``InhPoissonStim``) keep the mod's default ``duration`` in saving and restoring runs
(as under CoreNEURON, contract §3.9): a generator stopped at the first run's tstop could
not resume. Within the run this changes nothing.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

import h5py
import libsonata
import numpy as np

from ..errors import ConfigError
from ..parallel import agree_on_errors
from . import gid_state, periodic
from .coreneuron_plan import model_identity
from .rank_state import (
    FORMAT,
    META,
    OUTPUTS,
    VERSION,
    CheckpointError,
    apply_extras,
    collect_extras,
    extras_file,
    open_minis,
    state_file,
    write_meta,
    write_rank_state,
)

log = logging.getLogger(__name__)

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
    if saved.get("ranks") != here["ranks"] and not gid_state.has_cells(folder):
        raise CheckpointError(f"{where}: saved on {saved.get('ranks')} rank(s), this run has "
                              f"{here['ranks']}, and the checkpoint has no per-cell state "
                              f"({gid_state.CELLS}/): restore on the same rank count")
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
    for rank in range(int(saved.get("ranks") or 0)):   # every saving rank's files
        for path in (state_file(folder, rank), extras_file(folder, rank)) + \
                (gid_state.bundle_files(folder, rank) if gid_state.has_cells(folder) else ()):
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
            keys = ("node_ids", "index_pointers", "element_ids")
            sm = {k: s[f"mapping/{k}"][()] for k in keys}
            dm = {k: d[f"mapping/{k}"][()] for k in keys}
            same = all(np.array_equal(sm[k], dm[k]) for k in keys)
            # another rank count orders the nodes otherwise: columns follow their node
            cols = None if same else gid_state.column_map(sm, dm)
            st, dtm = s["mapping/time"][()], d["mapping/time"][()]
            if (not same and cols is None) or st[0] != dtm[0] or st[2] != dtm[2]:
                warn(f"report {spec.name}: the checkpoint's copy has another layout; rows "
                     f"before the checkpoint time are left empty")
                continue
            n = min(b, s["data"].shape[0])
            if n > 0:
                d["data"][:n] = s["data"][:n] if same else s["data"][:n][:, cols]


def detach_complete_reports(reports, step: int) -> set:
    """Reports whose every row lies at or before ``step``: a run saving at ``step`` had taken
    them out of the play/record list at its flush there, so the restoring run does the same
    before ``SaveState`` reads the list back (entries are matched by position)."""
    done = set()
    for rep in reports.reports:
        grid = rep.spec.grid
        if rep.vectors and grid.rows_in(0, step + 1)[1] >= grid.n_steps:
            rep.detach()
            done.add(rep.spec.name)
    return done


# ---- the run's side ----------------------------------------------------------------------------
class Checkpointing:
    """``--save`` / ``--restore`` of one run (every rank calls every method)."""

    def __init__(self, plan, rt, model):
        self.plan, self.rt, self.model = plan, rt, model
        options = plan.options
        self.save_dir = Path(options.save) if options.save else None
        self.restore_dir = Path(options.restore) if options.restore else None
        self.meta = plan.checked.restore_meta   # checked at load (``check_restore``)
        every = options.checkpoint_every
        self.periodic = None if not every else periodic.PeriodicCheckpoints(
            plan.outputs.folder / periodic.FOLDER, float(every), int(options.checkpoints_keep),
            float(plan.dt), protect=self.restore_dir)
        self._complete = set()   # reports complete at the restored checkpoint
        self._last_values = {}
        self._solver_t = None
        self.restored_t = None

    @property
    def active(self) -> bool:
        return self.save_dir is not None or self.restore_dir is not None or \
            self.periodic is not None

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
        t = float(self.meta["t"])
        step = round(t / plan.dt)
        self._complete = detach_complete_reports(model.reports, step)
        h.stdinit()
        if int(self.meta["identity"]["ranks"]) != plan.size:
            values = self._restore_by_gid(h, folder)
        else:
            values = self._restore_by_position(h, folder, rank)
        self.restored_t = t
        values.update({name: np.zeros(0) for name in self._complete})
        model.reports.resume(step, h.t, values, log.warning)
        for rep in model.reports.reports:
            if rep.spec.name in self._complete:
                rep.rows_written = rep.spec.grid.n_steps   # every row is in the checkpoint
        if rank == 0:
            self._restore_spikes(folder)

    def _restore_by_gid(self, h, folder) -> dict:
        """Another rank count: each cell's state from ``cells/``, the report values by gid."""
        core = self.model.core
        placeholder = core.placeholder[0] if core is not None and core.placeholder else None
        index = gid_state.read_index(folder, int(self.meta["identity"]["ranks"]))
        gids = list(self.model.cells) + ([placeholder] if placeholder is not None else [])
        missing = gid_state.missing_cells(index, gids)
        error = None
        if missing == [placeholder]:   # BBSaveState restores every gid: no rank without cells
            error = CheckpointError(f"--restore={folder}: rank {self.plan.rank} has no cell "
                                    f"(CoreNEURON's placeholder cell has no saved state): "
                                    f"restore on fewer ranks")
        elif missing:
            error = CheckpointError(f"--restore={folder}: incomplete checkpoint: no state for "
                                    f"gid {missing[0]} ({len(missing)} cell(s))")
        agree_on_errors(self.rt.comm, error)
        gid_state.restore_cells(h, folder, index, gids)
        saved = [np.load(extras_file(folder, r), allow_pickle=False)
                 for r in range(int(self.meta["identity"]["ranks"]))]
        values = {}
        for rep in self.model.reports.reports:
            name = rep.spec.name
            parts = [(d[f"reportgid/{name}"], d[f"report/{name}"]) for d in saved
                     if f"reportgid/{name}" in d.files and f"report/{name}" in d.files]
            found = gid_state.values_for(gid_state.ref_gids(rep.local), parts)
            if found is not None:
                values[name] = found
        for d in saved:
            d.close()
        return values

    def _restore_by_position(self, h, folder, rank) -> dict:
        """The same rank count: this rank's ``SaveState`` and extras."""
        ss = h.SaveState()
        f = h.File(str(state_file(folder, rank)))
        f.ropen()
        try:
            ss.fread(f)
        except RuntimeError as exc:
            raise CheckpointError(f"--restore={folder}: {state_file(folder, rank).name} does "
                                  f"not fit the model built by this run ({exc})") from exc
        finally:
            f.close()
        try:
            ss.restore()
        except RuntimeError as exc:
            raise CheckpointError(f"--restore={folder}: the saved state does not fit the model "
                                  f"built by this run ({exc})") from exc
        with np.load(extras_file(folder, rank), allow_pickle=False) as data:
            apply_extras(h, data)
            return {k.split("/", 1)[1]: data[k] for k in data.files if k.startswith("report/")}

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

    def run(self, run_to, tstop: float, on_chunk) -> None:
        """The run loop: ``run_to(t, hook)`` once to tstop, or in segments with a checkpoint
        after each (``--checkpoint-every``)."""
        on_chunk = self.wrap_on_chunk(on_chunk, tstop)
        if self.periodic is None:
            run_to(tstop, on_chunk)
            return
        self.periodic.run(run_to, self.rt.h, tstop, on_chunk, self.model.reports.last_values,
                          self._save_periodic)

    def _save_periodic(self, t: float, step: int, solver_t: float, values: dict) -> None:
        plan, rt, model, every = self.plan, self.rt, self.model, self.periodic
        final = every.root / periodic.folder_name(t)
        with rt.phase("run/checkpoints"):
            if plan.rank == 0 and not every.written:
                every.root.mkdir(parents=True, exist_ok=True)
                periodic.remove_incomplete(every.root)
            tmp = periodic.temporary_folder(every.root, t)
            spikes = (np.asarray(model.spike_t.as_numpy(), float),
                      np.asarray(model.spike_gid.as_numpy(), np.int64))
            gathered = periodic.save_mid_run(rt.h, rt.comm, plan.rank, tmp, solver_t, values,
                                             self._report_gids(), spikes)
            if plan.rank == 0:
                pops = [(p.name, p.offset, p.offset + p.size)
                        for p in plan.populations.values() if not p.is_virtual]
                reports = [(rep.tmp_path, rep.spec.path.name) for rep in model.reports.reports]
                periodic.finish_on_rank0(tmp, final, gathered, plan.outputs.spikes_file, pops,
                                         reports, self._meta(t, [n for _, n in reports]))
                periodic.prune(every.root, every.keep, protect=self.restore_dir)
        log.info("Checkpoint at t = %g ms written to %s", t, final)

    def _meta(self, t: float, report_names) -> dict:
        plan, settings = self.plan, self.plan.settings
        return {"t": float(t), "dt": float(plan.dt), "engine": settings.target_simulator,
                "identity": identity(settings, plan.populations, plan.size),
                "config": str(Path(settings.config_path).resolve()),
                "spikes_file": settings.spikes_file.name, "reports": list(report_names),
                "restored_from": str(self.restore_dir) if self.restore_dir else None,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S")}

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
            for old in (folder / META, folder / OUTPUTS, gid_state.cells_dir(folder)):
                if old.is_dir():
                    shutil.rmtree(old)
                elif old.exists():
                    old.unlink()
        if plan.size > 1:
            self.rt.comm.Barrier()
        self.model.reports.stop_recording()   # complete at the end of the run in any case
        write_rank_state(h, folder, plan.rank, self._solver_t, self._last_values,
                         self._report_gids())

    def _report_gids(self) -> dict:
        return {rep.spec.name: gid_state.ref_gids(rep.local) for rep in self.model.reports.reports}

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
                last = step + 1 if rep.spec.name in self._complete else step
                copy_report_rows(rep.spec, self.restore_dir / OUTPUTS / rep.spec.path.name,
                                 last, log.warning)
        if self.save_dir is None:
            return
        out = self.save_dir / OUTPUTS
        out.mkdir(parents=True, exist_ok=True)
        files = [settings.spikes_file] + reports.files
        for path in files:
            if Path(path).is_file():
                shutil.copy2(path, out / Path(path).name)
        write_meta(self.save_dir, self._meta(plan.tstop, [Path(p).name for p in files[1:]]))
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
