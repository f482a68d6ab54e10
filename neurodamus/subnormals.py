"""Subnormal numbers flushed to zero while the model runs (``--keep-subnormals`` opts out).

Why: states that decay towards zero (synaptic conductances, gating variables, event
weights) pass through the subnormal range, below 2.2e-308, where every multiply or add is
done in the CPU's slow path, many times slower than a normal one. A long run
of a quiet network therefore slows down as it goes: the 4000-cell benchmark went from 77 to
138 s per 100 ms over 1000 ms, and 1.4-1.55x faster with subnormals flushed, with the same
spikes (docs/performance.md). Values that small are below anything a model can resolve.

How: the floating-point control register of the calling thread, set through the C library's
``fegetenv``/``fesetenv``: on x86-64 the MXCSR bits FTZ (results flushed) and DAZ (inputs
read as zero), on AArch64 FPCR.FZ (both). NEURON and CoreNEURON (in memory, through files, and
the stand-alone solver of ``--build-model=OFF``) all compute on the thread that calls them,
the Python main thread; threads started later inherit the register. After setting it, a
subnormal product is computed: if it is not zero the register is put back and the run keeps
IEEE arithmetic, with a message (``flush_subnormals`` never fails a run).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
import sys
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class ControlRegister:
    """Where the flush bits are in the C library's ``fenv_t`` of one platform."""

    offset: int     # byte offset of the control register's copy in fenv_t
    width: int      # its size in bytes
    bits: int       # the flush-to-zero bits
    name: str


#: glibc's fenv_t layouts (stable ABI): x86-64 {x87 environment (28 bytes), mxcsr};
#: aarch64 {fpcr, fpsr}
REGISTERS = {
    ("Linux", "x86_64"): ControlRegister(28, 4, (1 << 15) | (1 << 6), "MXCSR FTZ+DAZ"),
    ("Linux", "aarch64"): ControlRegister(0, 4, 1 << 24, "FPCR.FZ"),
}
#: bytes handed to fegetenv: more than any fenv_t above (32 and 8 bytes)
ENV_BUFFER = 64


def _register() -> ControlRegister | None:
    return REGISTERS.get((platform.system(), platform.machine()))


def _libm():
    name = ctypes.util.find_library("m") or "libm.so.6"
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


def subnormals_kept() -> bool:
    """True when this thread computes with IEEE subnormals (a subnormal product is not zero).
    The operands are read at run time, so the compiler cannot fold the product."""
    tiny = sys.float_info.min   # the smallest normal double
    return tiny * 0.5 != 0.0


def _get_env(libm) -> bytes:
    buffer = ctypes.create_string_buffer(ENV_BUFFER)
    if libm.fegetenv(buffer) != 0:
        raise OSError("fegetenv failed")
    return buffer.raw


def _set_env(libm, env: bytes) -> None:
    if libm.fesetenv(ctypes.create_string_buffer(env, len(env))) != 0:
        raise OSError("fesetenv failed")


def _with_bits(env: bytes, register: ControlRegister, on: bool) -> bytes:
    start, end = register.offset, register.offset + register.width
    value = int.from_bytes(env[start:end], sys.byteorder)
    value = value | register.bits if on else value & ~register.bits
    return env[:start] + value.to_bytes(register.width, sys.byteorder) + env[end:]


@contextmanager
def flush_subnormals(enabled: bool = True):
    """Flush subnormals to zero on this thread inside the block; the previous floating-point
    environment comes back after it. Yields what the block runs with, for the log and the run
    record: "flushed to zero (<bits>)", "kept (IEEE)" or "kept (IEEE): <why not flushed>"."""
    if not enabled:
        yield "kept (IEEE)"
        return
    register, libm = _register(), _libm()
    if register is None or libm is None:
        why = "the C math library (fegetenv) cannot be loaded" if libm is None else \
            f"no known floating-point control register on {platform.system()} " \
            f"{platform.machine()}"
        yield f"kept (IEEE): {why}"
        return
    try:
        saved = _get_env(libm)
        _set_env(libm, _with_bits(saved, register, True))
    except OSError as exc:
        yield f"kept (IEEE): {exc}"
        return
    if subnormals_kept():   # the C library ignored the bits: do not pretend
        _set_env(libm, saved)
        yield f"kept (IEEE): setting {register.name} had no effect"
        return
    try:
        yield f"flushed to zero ({register.name})"
    finally:
        _set_env(libm, saved)
