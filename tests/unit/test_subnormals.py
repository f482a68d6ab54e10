"""Subnormals flushed to zero on the calling thread inside the block, IEEE again after it,
and an honest "kept" where the control register is unknown or ignores the bits."""

import sys

import pytest

from neurodamus import subnormals
from neurodamus.subnormals import ControlRegister, flush_subnormals, subnormals_kept

supported = pytest.mark.skipif(subnormals._register() is None,
                               reason="no known floating-point control register here")


def half_of_smallest_normal() -> float:
    tiny = sys.float_info.min
    return tiny * 0.5


@supported
def test_a_subnormal_product_is_zero_inside_and_exact_after():
    assert half_of_smallest_normal() == sys.float_info.min / 2 != 0.0
    with flush_subnormals() as state:
        assert state.startswith("flushed to zero (")
        assert half_of_smallest_normal() == 0.0
        assert not subnormals_kept()
        assert sys.float_info.min * 1.0 == sys.float_info.min   # normal numbers untouched
    assert subnormals_kept()
    assert half_of_smallest_normal() == sys.float_info.min / 2


@supported
def test_the_register_comes_back_after_an_error():
    with pytest.raises(RuntimeError), flush_subnormals():
        assert not subnormals_kept()
        raise RuntimeError("a failing run")
    assert subnormals_kept()


def test_keep_subnormals_changes_nothing():
    with flush_subnormals(enabled=False) as state:
        assert state == "kept (IEEE)"
        assert subnormals_kept()


def test_unknown_platform_keeps_ieee_and_says_why(monkeypatch):
    monkeypatch.setattr(subnormals.platform, "machine", lambda: "sparc64")
    with flush_subnormals() as state:
        assert state.startswith("kept (IEEE): no known floating-point control register")
        assert "sparc64" in state
        assert subnormals_kept()


@supported
def test_bits_the_c_library_ignores_are_not_reported_as_flushed(monkeypatch):
    # a description that sets no bit: the product is still subnormal, so the run says "kept"
    register = subnormals._register()
    dummy = ControlRegister(register.offset, register.width, 0, "nothing")
    monkeypatch.setattr(subnormals, "_register", lambda: dummy)
    with flush_subnormals() as state:
        assert state == "kept (IEEE): setting nothing had no effect"
        assert subnormals_kept()
    assert subnormals_kept()


def test_bits_are_set_and_cleared_in_place():
    register = ControlRegister(4, 4, 0x8040, "test")
    env = bytes(range(8))
    on = subnormals._with_bits(env, register, True)
    assert on[:4] == env[:4]
    assert int.from_bytes(on[4:], sys.byteorder) == \
        int.from_bytes(env[4:], sys.byteorder) | 0x8040
    assert subnormals._with_bits(on, register, False)[4:] == \
        (int.from_bytes(env[4:], sys.byteorder) & ~0x8040).to_bytes(4, sys.byteorder)
