"""CoreNEURON solver options of the command line and the model folder in /dev/shm.

``--cell-permute``, ``--model-stats`` and ``--enable-shm`` have the established driver's
meaning. With ``--enable-shm`` the file-mode model is written to node-local RAM
(``/dev/shm/neurodamus-<uid>-<key of the output folder>``), linked from
``<output>/coreneuron_input``, when /dev/shm has room for it; ``--keep-build`` copies it back
into a real ``coreneuron_input`` folder at the end, otherwise it is removed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path

import psutil

SHM_ROOT = Path("/dev/shm")
log = logging.getLogger(__name__)


def solver_option_names(options) -> list[str]:
    """The CoreNEURON solver options given (for the message refusing them with NEURON)."""
    names = []
    if int(getattr(options, "cell_permute", 0) or 0) != 0:
        names.append(f"--cell-permute={options.cell_permute}")
    if getattr(options, "model_stats", False):
        names.append("--model-stats")
    if getattr(options, "enable_shm", False):
        names.append("--enable-shm")
    return names


def shm_folder(datpath: Path) -> Path:
    key = hashlib.sha1(str(Path(datpath).resolve()).encode()).hexdigest()[:12]
    return SHM_ROOT / f"neurodamus-{os.getuid()}-{key}"


def shm_free_bytes() -> int:
    try:
        st = os.statvfs(SHM_ROOT)
    except OSError:
        return 0
    return st.f_bavail * st.f_frsize


def link_to_shm(datpath: Path, needed_bytes: int) -> Path | None:
    """Rank 0, before the model is written: make ``datpath`` a link to a fresh /dev/shm folder
    when /dev/shm has ``needed_bytes`` free; returns that folder (None: write to disk)."""
    if not SHM_ROOT.is_dir() or shm_free_bytes() < needed_bytes:
        return None
    target = shm_folder(datpath)
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    remove_model_folder(datpath)
    datpath.parent.mkdir(parents=True, exist_ok=True)
    datpath.symlink_to(target, target_is_directory=True)
    return target


def make_model_folder(datpath: Path, enable_shm: bool, comm) -> None:
    """A fresh, empty input folder (all ranks call it): on disk, or with ``--enable-shm`` a
    link to /dev/shm when it has room for the model (taken as the ranks' memory now: the
    CoreNEURON files are smaller than NEURON's model of them)."""
    rank, size = comm.Get_rank(), comm.Get_size()
    needed, shm = 0, None
    if enable_shm:
        rss = psutil.Process().memory_info().rss
        needed = comm.allreduce(rss) if size > 1 else rss
    if rank == 0:
        remove_model_folder(datpath)
        if enable_shm:
            shm = link_to_shm(datpath, needed)
            if shm:
                log.info("CoreNEURON model files in %s (--enable-shm)", shm)
            else:
                log.warning("--enable-shm: /dev/shm has no room for the model; writing it to "
                            "disk")
        if shm is None:
            datpath.mkdir(parents=True)
    if size > 1:
        comm.Barrier()
    if datpath.is_symlink():   # node-local RAM: every node needs its own folder
        Path(os.readlink(datpath)).mkdir(parents=True, exist_ok=True)


def remove_model_folder(datpath: Path) -> None:
    """Remove the model folder, or the link and the /dev/shm folder it points to."""
    if datpath.is_symlink():
        target = Path(os.readlink(datpath))
        datpath.unlink()
        shutil.rmtree(target, ignore_errors=True)
    elif datpath.exists():
        shutil.rmtree(datpath)


def copy_back_from_shm(datpath: Path) -> None:
    """Rank 0, at the end with ``--keep-build``: the linked /dev/shm model becomes a real folder
    (files are copied under a temporary name, then the link is replaced)."""
    if not datpath.is_symlink():
        return
    target = Path(os.readlink(datpath))
    tmp = datpath.with_name(datpath.name + ".from-shm")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(target, tmp, ignore=shutil.ignore_patterns(".chunks"))
    datpath.unlink()
    tmp.rename(datpath)
    shutil.rmtree(target, ignore_errors=True)


__all__ = ["copy_back_from_shm", "link_to_shm", "make_model_folder", "remove_model_folder",
           "shm_folder", "solver_option_names"]
