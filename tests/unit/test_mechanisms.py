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
