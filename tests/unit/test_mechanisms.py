"""Mechanism set assembly (no nrnivmodl here; the integration tests build for real)."""

import pytest

from neurodamus import paths
from neurodamus.errors import MechanismError
from neurodamus.tools.mechanisms import collect_mod_files, mechanism_name


def write_mod(path, kind, name):
    path.write_text(f"COMMENT\nPOINT_PROCESS Fake\nENDCOMMENT\nNEURON {{\n  {kind} {name}\n}}\n")
    return path


def test_mechanism_name_ignores_comments(tmp_path):
    mod = write_mod(tmp_path / "x.mod", "SUFFIX", "kdr_model")
    assert mechanism_name(mod) == "kdr_model"


def test_model_folder_wins_and_says_so(tmp_path):
    core, model = tmp_path / "core", tmp_path / "model"
    core.mkdir()
    model.mkdir()
    write_mod(core / "Gap.mod", "POINT_PROCESS", "Gap")
    write_mod(core / "Other.mod", "SUFFIX", "other")
    # same mechanism name under another file name still counts as the same mechanism
    ours = write_mod(model / "GapJunction.mod", "POINT_PROCESS", "Gap")
    messages = []
    chosen = collect_mod_files([core, model], log=messages.append)
    assert chosen["Gap"] == ours
    assert set(chosen) == {"Gap", "other"}
    assert len(messages) == 1 and "GapJunction.mod" in messages[0] and "Gap.mod" in messages[0]


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(MechanismError, match="Mechanism folder not found: .*nowhere"):
        collect_mod_files([tmp_path / "nowhere"])


def test_checkout_data_is_used_in_place():
    # an editable install reads core/ and models/ of the checkout: edits apply on the next run
    root = paths.checkout_root()
    assert root is not None
    assert paths.hoc_dir() == root / "core" / "hoc"
    assert (paths.hoc_dir() / "ndmorph.hoc").is_file()
    assert (paths.mod_dir() / "MembraneCurrentSource.mod").is_file()


def test_hoc_library_path_comes_first(monkeypatch, tmp_path):
    monkeypatch.setenv("HOC_LIBRARY_PATH", f"{tmp_path}:/other")
    assert paths.hoc_search_path() == [str(tmp_path), "/other", str(paths.hoc_dir())]


def test_compiler_flags_reach_nrnivmodl_and_the_cache_key(tmp_path, monkeypatch):
    """--cflags: its own cache entry, passed as -incflags (after nrnivmodl's -O2 on both
    libraries' compile lines); "" (nrnivmodl's own flags) and the default are one entry."""
    import subprocess

    from neurodamus.tools import mechanisms

    mods = {"other": write_mod(tmp_path / "Other.mod", "SUFFIX", "other")}
    plain = mechanisms._content_hash(mods, True)
    assert mechanisms._content_hash(mods, True, "") == plain
    assert len({plain, mechanisms._content_hash(mods, True, "-O3"),
                mechanisms._content_hash(mods, True, "-O3 -march=native")}) == 3
    commands = []

    def fake_run(cmd, cwd, **kw):   # nrnivmodl itself is exercised by the integration tests
        commands.append(cmd)
        return subprocess.CompletedProcess(cmd, 1, "", "stopped by the test")

    monkeypatch.setattr(mechanisms.subprocess, "run", fake_run)
    monkeypatch.setattr(mechanisms, "_translate_all", lambda *_: None)   # nocmodl: not here
    with pytest.raises(MechanismError):
        mechanisms.build_mechanisms([tmp_path], coreneuron=True, output=tmp_path / "b",
                                    cflags="-O3   -march=native", log=lambda *_: None)
    assert commands[0][1:] == ["-coreneuron", "-incflags", "-O3 -march=native", "mod"]
    # --vector-math: ours first (no instruction set: the user chose one), the user's last
    with pytest.raises(MechanismError):
        mechanisms.build_mechanisms([tmp_path], coreneuron=True, output=tmp_path / "b",
                                    cflags="-O3 -march=native", vector_math=True,
                                    log=lambda *_: None)
    header = mechanisms.vector_math_header()
    assert commands[1][1:] == ["-coreneuron", "-incflags",
                               f"-fno-math-errno -include {header} -O3 -march=native", "mod"]


def test_vector_math_is_asked_for_and_its_header_keys_the_cache(tmp_path, monkeypatch):
    from neurodamus.tools import mechanisms

    monkeypatch.delenv(mechanisms.VECTOR_MATH_ENV, raising=False)
    assert mechanisms.effective_cflags("") == ("", ())   # default: NEURON's arithmetic
    monkeypatch.setenv(mechanisms.VECTOR_MATH_ENV, "1")
    monkeypatch.setattr(mechanisms.cpu_level, "build_level", lambda cflags: ("-mavx2", ("avx2",)))
    flags, needed = mechanisms.effective_cflags("")
    assert mechanisms.effective_cflags("", vector_math=False) == ("", ())
    header = mechanisms.vector_math_header()
    assert header.is_file() and "#pragma omp declare simd" in header.read_text()
    assert flags == f"-fno-math-errno -include {header} -mavx2" and needed == ("avx2",)
    mods = {"other": write_mod(tmp_path / "Other.mod", "SUFFIX", "other")}
    before = mechanisms._content_hash(mods, True, flags)
    # same flags (same path), another content: another cache entry
    edited = tmp_path / header.name
    edited.write_text(header.read_text() + "/* edited */\n")
    monkeypatch.setattr(mechanisms, "vector_math_header", lambda: edited)
    assert mechanisms._content_hash(mods, True, flags) != before


def _special_script(path, interpreter):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!{interpreter}\nprint('special')\n")
    path.chmod(0o755)
    return path


def test_a_special_whose_python_is_gone_is_rebuilt_not_reused(tmp_path, monkeypatch):
    """The wheel's special is a script naming the Python that built it: a cache entry made by a
    deleted virtualenv is rebuilt, and the key tells apart interpreters."""
    import sys

    from neurodamus import launch
    from neurodamus.tools import mechanisms

    mods = {"other": write_mod(tmp_path / "Other.mod", "SUFFIX", "other")}
    here = mechanisms._content_hash(mods, False)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "other-venv" / "bin" / "python3"))
    assert mechanisms._content_hash(mods, False) != here
    monkeypatch.undo()

    gone = tmp_path / "deleted-venv" / "bin" / "python3"
    assert launch.special_problem(_special_script(tmp_path / "ok" / "special",
                                                  sys.executable)) is None
    problem = launch.special_problem(_special_script(tmp_path / "bad" / "special", gone))
    assert problem and str(gone) in problem and "build-mechanisms" in problem

    monkeypatch.setenv("NEURODAMUS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(mechanisms, "collect_mod_files", lambda *a, **k: mods)
    entry = mechanisms.cache_folder(mods, False)
    assert entry.parent == tmp_path / "cache" / "mechanisms"
    stale = _special_script(entry / mechanisms.platform.machine() / "special", gone)
    (entry / mechanisms._DONE_MARKER).write_text("ok\n")
    rebuilt = []

    def fake_build(folder, *_args):   # nrnivmodl itself is exercised by the integration tests
        rebuilt.append(folder)
        _special_script(stale, sys.executable)

    monkeypatch.setattr(mechanisms, "_run_nrnivmodl", fake_build)
    messages = []
    mechanisms.build_mechanisms([tmp_path], log=messages.append)
    assert rebuilt == [entry] and any("Rebuilding" in m for m in messages)
    mechanisms.build_mechanisms([tmp_path], log=messages.append)   # now sound: reused
    assert rebuilt == [entry] and "Reusing" in messages[-1]


def test_launcher_runs_without_a_special_that_cannot_start(tmp_path, monkeypatch, capsys):
    from neurodamus import launch

    special = _special_script(tmp_path / "special", tmp_path / "gone" / "python3")
    monkeypatch.delenv(launch.SPECIAL_ENV, raising=False)
    monkeypatch.setattr(launch, "find_special", lambda: str(special))
    monkeypatch.setattr(launch.os, "execve", lambda *a: pytest.fail("exec of a broken special"))
    launch.maybe_exec_special(["simulation_config.json"])
    err = capsys.readouterr().err
    assert "WARNING: not using special" in err and str(tmp_path / "gone" / "python3") in err
