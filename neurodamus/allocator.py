"""The memory allocator of a run: jemalloc, preloaded, when the machine has it.

Why: a synapse with its NetCons and minis generator is some 30 small NEURON allocations. glibc
malloc adds a header and rounds each up, and keeps freed build-time blocks resident; jemalloc
(size classes, no header, freed pages returned at once with the decay settings below) lowers
the peak memory of the example circuit by 9-11 % at no cost in speed (docs/performance.md).

An allocator can only replace malloc from the start of a process, so the launcher re-executes
the run with ``LD_PRELOAD`` set (into ``special`` when it re-executes into it anyway, else into
the same Python). ``NEURODAMUS_ALLOCATOR`` chooses:

* ``auto`` (default): jemalloc when found (in ``JEMALLOC_ROOT/lib``, the ``LD_LIBRARY_PATH``
  folders, then the system's library folders), else the system's malloc;
* ``system``: no preload;
* ``jemalloc``: like ``auto``, but a run without it stops with a message;
* a path to an allocator library (``.so``), which must exist (the Spack recipe sets its
  jemalloc's path).

A ``LD_PRELOAD`` that already names an allocator is the user's choice and is left alone. The
planning here is pure (environment in, environment out); ``launch`` does the exec.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from .errors import LaunchError
from .launch import mapped_files

ENV = "NEURODAMUS_ALLOCATOR"
#: set on the re-exec: the LD_PRELOAD the user had (restored in the new process) ...
ORIGINAL_PRELOAD_ENV = "NEURODAMUS_ORIGINAL_LD_PRELOAD"
#: ... and whether the user had MALLOC_CONF ("1") or it is ours ("0")
ORIGINAL_CONF_ENV = "NEURODAMUS_ORIGINAL_MALLOC_CONF"
#: freed pages go back to the system at once: the peak of a build that frees as it goes stays low
JEMALLOC_CONF = "dirty_decay_ms:0,muzzy_decay_ms:0"
JEMALLOC_NAMES = ("libjemalloc.so.2", "libjemalloc.so")
SYSTEM_LIB_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
                   "/usr/lib/powerpc64le-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib",
                   "/usr/local/lib64", "/lib/x86_64-linux-gnu", "/lib64")
#: ``Plan.reason`` when ``auto`` finds no jemalloc (doctor says how to install it)
NO_JEMALLOC = "no jemalloc found: the system's malloc is used"
_KNOWN = re.compile(r"lib(jemalloc|tcmalloc\w*|mimalloc|hoard|tbbmalloc\w*)[\w.-]*\.so")


@dataclass
class Plan:
    """What the launcher does: ``env`` is the environment of the re-exec (None: no re-exec)."""

    env: dict | None
    reason: str
    library: str | None = None


def allocator_name(path: str) -> str:
    """``jemalloc`` for ``/usr/lib/.../libjemalloc.so.2``; the file name when unknown."""
    match = _KNOWN.search(os.path.basename(path))
    return match.group(1) if match else os.path.basename(path)


def find_jemalloc(env, exists=os.path.isfile) -> str | None:
    """The first jemalloc library in the ``lib`` folders of ``JEMALLOC_ROOT`` (Spack modules),
    ``LD_LIBRARY_PATH``, then the system's library folders."""
    dirs = []
    root = env.get("JEMALLOC_ROOT", "")
    if root:
        dirs += [os.path.join(root, "lib"), os.path.join(root, "lib64")]
    dirs += [d for d in env.get("LD_LIBRARY_PATH", "").split(":") if d]
    dirs += SYSTEM_LIB_DIRS
    for folder in dirs:
        for name in JEMALLOC_NAMES:
            path = os.path.join(folder, name)
            if exists(path):
                return path
    return None


def plan(env, exists=os.path.isfile) -> Plan:
    """Decide the preload of this run from its environment (no side effect)."""
    choice = env.get(ENV, "").strip() or "auto"
    if ORIGINAL_PRELOAD_ENV in env:
        return Plan(None, "already re-executed with the allocator")
    preload = env.get("LD_PRELOAD", "")
    if choice == "system":
        return Plan(None, f"{ENV}=system")
    preloaded = [p for p in re.split(r"[:\s]+", preload) if p and _KNOWN.search(p)]
    if preloaded:
        return Plan(None, f"LD_PRELOAD already names {allocator_name(preloaded[0])}")
    if choice in ("auto", "jemalloc"):
        library = find_jemalloc(env, exists)
        if library is None:
            if choice == "jemalloc":
                raise LaunchError(f"{ENV}=jemalloc: no libjemalloc.so found (looked in "
                                  f"JEMALLOC_ROOT, LD_LIBRARY_PATH and {', '.join(SYSTEM_LIB_DIRS)}"
                                  f"); install it (Debian: apt-get install libjemalloc2) or set "
                                  f"{ENV}=system")
            return Plan(None, NO_JEMALLOC)
    else:
        library = choice
        if not os.path.isabs(library) or not exists(library):
            raise LaunchError(f"{ENV}={choice}: not 'auto', 'system', 'jemalloc' or the path "
                              f"of an existing allocator library")
    new = dict(env)
    new[ORIGINAL_PRELOAD_ENV] = preload
    new["LD_PRELOAD"] = library + (":" + preload if preload else "")
    if allocator_name(library) == "jemalloc":
        new[ORIGINAL_CONF_ENV] = "1" if "MALLOC_CONF" in env else "0"
        new.setdefault("MALLOC_CONF", JEMALLOC_CONF)
    return Plan(new, f"preloading {library}", library)


def restore(environ) -> None:
    """In the re-executed process: give child processes (compilers, tools) the user's
    LD_PRELOAD and MALLOC_CONF back; this process keeps its allocator."""
    if ORIGINAL_PRELOAD_ENV not in environ:
        return
    original = environ.pop(ORIGINAL_PRELOAD_ENV)
    if original:
        environ["LD_PRELOAD"] = original
    else:
        environ.pop("LD_PRELOAD", None)
    if environ.pop(ORIGINAL_CONF_ENV, "1") == "0":
        environ.pop("MALLOC_CONF", None)


def active(maps_path: str = "/proc/self/maps") -> dict:
    """The allocator this process runs with, from the libraries it has mapped."""
    for lib in mapped_files(maps_path):
        if _KNOWN.search(os.path.basename(lib)):
            return {"name": allocator_name(lib), "library": lib}
    return {"name": "system", "library": None}


__all__ = ["ENV", "Plan", "active", "allocator_name", "find_jemalloc", "plan", "restore"]
