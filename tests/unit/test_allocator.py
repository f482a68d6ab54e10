"""The allocator plan (neurodamus/allocator.py): pure environment-in, environment-out logic."""

import pytest

from neurodamus import allocator
from neurodamus.errors import LaunchError

SYSTEM_JE = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"


def exists_only(*paths):
    return lambda p: p in paths


def test_auto_preloads_system_jemalloc_with_decay_settings():
    plan = allocator.plan({"PATH": "/bin"}, exists_only(SYSTEM_JE))
    assert plan.library == SYSTEM_JE
    assert plan.env["LD_PRELOAD"] == SYSTEM_JE
    assert plan.env["MALLOC_CONF"] == "dirty_decay_ms:0,muzzy_decay_ms:0"
    assert plan.env["PATH"] == "/bin"
    assert plan.env[allocator.ORIGINAL_PRELOAD_ENV] == ""


def test_search_order_root_then_ld_library_path_then_system():
    spack = "/opt/view/jemalloc/lib/libjemalloc.so.2"
    ld = "/home/u/lib/libjemalloc.so"
    env = {"JEMALLOC_ROOT": "/opt/view/jemalloc", "LD_LIBRARY_PATH": "/home/u/lib"}
    assert allocator.find_jemalloc(env, exists_only(spack, ld, SYSTEM_JE)) == spack
    assert allocator.find_jemalloc(env, exists_only(ld, SYSTEM_JE)) == ld
    assert allocator.find_jemalloc(env, exists_only(SYSTEM_JE)) == SYSTEM_JE
    assert allocator.find_jemalloc(env, exists_only()) is None


def test_auto_without_jemalloc_keeps_system_malloc():
    plan = allocator.plan({}, exists_only())
    assert plan.env is None and "system" in plan.reason


def test_required_jemalloc_missing_names_the_variable_and_the_fix():
    with pytest.raises(LaunchError, match=r"NEURODAMUS_ALLOCATOR=jemalloc: no libjemalloc.so "
                                          r"found .*apt-get install libjemalloc2"):
        allocator.plan({"NEURODAMUS_ALLOCATOR": "jemalloc"}, exists_only())


@pytest.mark.parametrize("value", ["/no/such/libfoo.so", "libjemalloc.so.2", "tcmalloc"])
def test_explicit_library_must_be_an_existing_absolute_path(value):
    with pytest.raises(LaunchError, match=f"NEURODAMUS_ALLOCATOR={value}: not 'auto'"):
        allocator.plan({"NEURODAMUS_ALLOCATOR": value}, exists_only(SYSTEM_JE))


def test_explicit_library_is_preloaded_before_the_users_preload():
    tc = "/opt/lib/libtcmalloc_minimal.so.4"
    plan = allocator.plan({"NEURODAMUS_ALLOCATOR": tc, "LD_PRELOAD": "/x/libhook.so"},
                          exists_only(tc))
    assert plan.env["LD_PRELOAD"] == tc + ":/x/libhook.so"
    assert "MALLOC_CONF" not in plan.env           # a jemalloc setting only
    assert plan.env[allocator.ORIGINAL_PRELOAD_ENV] == "/x/libhook.so"


def test_system_choice_and_users_own_allocator_are_left_alone():
    assert allocator.plan({"NEURODAMUS_ALLOCATOR": "system"}, exists_only(SYSTEM_JE)).env is None
    plan = allocator.plan({"LD_PRELOAD": "/opt/lib/libtcmalloc.so.4"}, exists_only(SYSTEM_JE))
    assert plan.env is None and "tcmalloc" in plan.reason


def test_users_malloc_conf_wins():
    plan = allocator.plan({"MALLOC_CONF": "narenas:2"}, exists_only(SYSTEM_JE))
    assert plan.env["MALLOC_CONF"] == "narenas:2"


def test_reexecuted_process_does_not_plan_again_and_restores_the_users_environment():
    plan = allocator.plan({"LD_PRELOAD": "/x/libhook.so"}, exists_only(SYSTEM_JE))
    child = dict(plan.env)
    assert allocator.plan(child, exists_only(SYSTEM_JE)).env is None   # no exec loop
    allocator.restore(child)
    assert child == {"LD_PRELOAD": "/x/libhook.so"}

    plan = allocator.plan({"MALLOC_CONF": "narenas:2"}, exists_only(SYSTEM_JE))
    child = dict(plan.env)
    allocator.restore(child)
    assert child == {"MALLOC_CONF": "narenas:2"}


def test_restore_outside_a_reexec_changes_nothing():
    env = {"LD_PRELOAD": "/x/libjemalloc.so.2", "MALLOC_CONF": "a:1"}
    allocator.restore(env)
    assert env == {"LD_PRELOAD": "/x/libjemalloc.so.2", "MALLOC_CONF": "a:1"}


def test_active_reads_the_mapped_libraries(tmp_path):
    maps = tmp_path / "maps"
    maps.write_text(
        "7f00-7f01 r-xp 00000000 08:01 1 /usr/lib/x86_64-linux-gnu/libc.so.6\n"
        f"7f02-7f03 r-xp 00000000 08:01 2 {SYSTEM_JE}\n"
        "7f04-7f05 rw-p 00000000 00:00 0 [heap]\n")
    assert allocator.active(str(maps)) == {"name": "jemalloc", "library": SYSTEM_JE}
    maps.write_text("7f00-7f01 r-xp 00000000 08:01 1 /usr/lib/x86_64-linux-gnu/libc.so.6\n")
    assert allocator.active(str(maps)) == {"name": "system", "library": None}
    assert allocator.active(str(tmp_path / "missing"))["name"] == "system"


@pytest.mark.parametrize("path, name", [(SYSTEM_JE, "jemalloc"),
                                        ("/l/libtcmalloc_minimal.so.4", "tcmalloc_minimal"),
                                        ("/l/libmimalloc.so.2", "mimalloc"),
                                        ("/l/libother.so", "libother.so")])
def test_allocator_name(path, name):
    assert allocator.allocator_name(path) == name
