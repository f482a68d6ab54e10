"""The vector instruction level compiled mechanisms are built for, and its check at load time.

With ``--vector-math`` CoreNEURON's kernels (``#pragma omp simd`` loops) vectorise; with AVX2
they run 4 doubles wide instead of SSE2's 2 (CoreNEURON's solver on the 1000-cell benchmark:
25.2 s with SSE2, 18.9 s with AVX2; docs/performance.md). Such a build uses AVX2 when the CPU
that builds has it, and records it in a marker next to the libraries. The cache key holds the
level, so a node type without AVX2 that shares the cache builds its own entry; a library
moved to such a node by hand (``NRNMECH_LIB_PATH``, ``special``) is refused with a message
instead of dying of SIGILL in the middle of a run.
"""

from __future__ import annotations

import os
import platform

#: the file written next to libnrnmech.so naming the CPU flags its code needs
MARKER = "neurodamus-cpu-flags.txt"
#: (compiler flags, /proc/cpuinfo flags they need); -mavx2 implies AVX, and no FMA is enabled,
#: so no multiply-add is contracted and the arithmetic stays that of the portable build
AVX2 = ("-mavx2", ("avx", "avx2"))


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> set[str]:
    """The flags of this CPU (empty when they cannot be read)."""
    try:
        with open(cpuinfo) as handle:
            for line in handle:
                if line.startswith("flags"):
                    return set(line.partition(":")[2].split())
    except OSError:
        pass
    return set()


def user_chose_level(cflags: str) -> bool:
    """True when the user's flags pick the instruction set themselves (-march, -m<isa>)."""
    return any(flag.startswith(("-march=", "-mavx", "-mno-avx", "-msse", "-mno-sse"))
               for flag in cflags.split())


def build_level(cflags: str = "", flags: set[str] | None = None) -> tuple[str, tuple[str, ...]]:
    """(compiler flags, required CPU flags) for a build on this machine with ``cflags``."""
    if platform.machine() != "x86_64" or user_chose_level(cflags) or \
            os.environ.get("NEURODAMUS_MECHANISMS_PORTABLE") == "1":
        return "", ()
    compiler_flags, needed = AVX2
    have = cpu_flags() if flags is None else flags
    return (compiler_flags, needed) if set(needed) <= have else ("", ())


def write_marker(arch_dir, needed: tuple[str, ...]) -> None:
    path = os.path.join(arch_dir, MARKER)
    if needed:
        with open(path, "w") as handle:
            handle.write(" ".join(needed) + "\n")
    elif os.path.exists(path):
        os.remove(path)


def library_problem(library, flags: set[str] | None = None) -> str | None:
    """Why the mechanisms in ``library``'s folder cannot run on this CPU, or None."""
    folder = os.path.dirname(os.path.abspath(library))
    try:
        with open(os.path.join(folder, MARKER)) as handle:
            needed = handle.read().split()
    except OSError:
        return None
    have = cpu_flags() if flags is None else flags
    missing = [flag for flag in needed if flag not in have]
    if not have or not missing:
        return None
    return (f"{folder}: these mechanisms were compiled for CPUs with {', '.join(needed)}, and "
            f"this CPU lacks {', '.join(missing)}; build them on this node type (`neurodamus "
            f"build-mechanisms`), or for every node type with NEURODAMUS_MECHANISMS_PORTABLE=1")
