"""The vector level of mechanism builds: AVX2 when the building CPU has it, refused (with a
message, not SIGILL) on a CPU without it, and never when the user picked the level."""

import pytest

from neurodamus import cpu_level, launch

pytestmark = pytest.mark.skipif(cpu_level.platform.machine() != "x86_64",
                                reason="the AVX2 level exists on x86_64 only")


def test_avx2_is_used_when_the_cpu_has_it(monkeypatch):
    monkeypatch.delenv("NEURODAMUS_MECHANISMS_PORTABLE", raising=False)
    assert cpu_level.build_level("", {"sse2", "avx", "avx2", "fma"}) == \
        ("-mavx2", ("avx", "avx2"))
    assert cpu_level.build_level("", {"sse2", "avx"}) == ("", ())
    assert cpu_level.build_level("", set()) == ("", ())


@pytest.mark.parametrize("cflags", ["-march=native", "-O3 -march=x86-64", "-mno-avx2",
                                    "-msse4.2", "-mavx512f"])
def test_the_users_choice_of_instruction_set_wins(cflags):
    assert cpu_level.build_level(cflags, {"avx", "avx2"}) == ("", ())


def test_portable_builds_on_request(monkeypatch):
    monkeypatch.setenv("NEURODAMUS_MECHANISMS_PORTABLE", "1")
    assert cpu_level.build_level("", {"avx", "avx2"}) == ("", ())


def test_a_library_built_for_avx2_is_refused_on_a_cpu_without_it(tmp_path):
    arch = tmp_path / "x86_64"
    arch.mkdir()
    library = arch / "libnrnmech.so"
    library.write_bytes(b"")
    assert cpu_level.library_problem(library, {"sse2"}) is None   # no marker: not ours
    cpu_level.write_marker(arch, ("avx", "avx2"))
    assert cpu_level.library_problem(library, {"sse2", "avx", "avx2"}) is None
    problem = cpu_level.library_problem(library, {"sse2", "avx"})
    assert problem and str(arch) in problem and "lacks avx2" in problem
    assert "NEURODAMUS_MECHANISMS_PORTABLE=1" in problem
    # unreadable CPU flags: nothing to compare with, the library is tried
    assert cpu_level.library_problem(library, set()) is None
    cpu_level.write_marker(arch, ())   # a portable rebuild into the same folder
    assert cpu_level.library_problem(library, {"sse2"}) is None


def test_special_built_for_avx2_is_not_executed_on_a_cpu_without_it(tmp_path, monkeypatch):
    arch = tmp_path / "x86_64"
    arch.mkdir()
    special = arch / "special"
    special.write_text("#!/bin/sh\n")
    special.chmod(0o755)
    cpu_level.write_marker(arch, ("avx", "avx2"))
    monkeypatch.setattr(cpu_level, "cpu_flags", lambda *a: {"sse2"})
    problem = launch.special_problem(special)
    assert problem and "lacks avx, avx2" in problem


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx avx2\n\nprocessor\t: 1\n")
    assert cpu_level.cpu_flags(str(info)) == {"fpu", "sse2", "avx", "avx2"}
    assert cpu_level.cpu_flags(str(tmp_path / "missing")) == set()
