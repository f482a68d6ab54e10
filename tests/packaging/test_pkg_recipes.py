"""The recipes in spack/packages load (as on Spack 0.23 and 1.x) and say what the project needs.

No Spack needed: each package.py is executed against a small recording stand-in for
``spack.package`` (see pkg_helpers.load_recipe). test_pkg_spack.py runs the real thing.
"""

from __future__ import annotations

import ast
import builtins
import dis
import re

import pytest
from pkg_helpers import (
    CHECKOUT,
    SPACK_DIR,
    SPACK_PACKAGE_NAMES,
    class_name,
    load_recipe,
    recipe_paths,
    setup_cfg_requirements,
    spec_name,
)

yaml = pytest.importorskip(
    "yaml", reason="PyYAML reads the Spack files: pip install pyyaml (tox -e packaging has it)"
)

OURS = {"py-neurodamus", "neurodamus-models", "neuron", "py-libsonata", "py-docopt-ng"}
SPACK_VERSIONS = {"1.x": (1, 1, 0), "0.23": (0, 23, "0dev0")}


def recipe_ids(paths):
    return [p.parent.name for p in paths]


RECIPES = recipe_paths()


def test_repository_layout():
    """Old layout (loads on 0.23 and 1.x): repo.yaml with a namespace and no v2 api."""
    repo = yaml.safe_load((SPACK_DIR / "repo.yaml").read_text())["repo"]
    assert repo["namespace"] == "neurodamus"
    assert "api" not in repo or str(repo["api"]).startswith("v1"), repo
    assert {p.parent.name for p in RECIPES} >= OURS
    assert (SPACK_DIR / "packages" / "py-neurodamus" / "package.py").is_file()


@pytest.mark.parametrize("path", RECIPES, ids=recipe_ids(RECIPES))
@pytest.mark.parametrize("version", SPACK_VERSIONS.values(), ids=SPACK_VERSIONS.keys())
def test_recipe_loads(path, version):
    recipe = load_recipe(path, spack_version=version)
    assert recipe.cls.__name__ == class_name(path.parent.name)
    assert recipe.cls.__doc__ and recipe.cls.__doc__.strip(), "Spack audit wants a docstring"
    assert recipe.versions, "no version() at all"
    deps = recipe.dependency_names()
    if version[0] == 0:
        # 0.23 has no "c"/"cxx" packages and rejects them
        assert not deps & {"c", "cxx", "fortran"}
        assert "py-pdm-backend" not in deps, "0.23's builtin repository has no py-pdm-backend"


@pytest.mark.parametrize("path", RECIPES, ids=recipe_ids(RECIPES))
def test_recipe_source_rules(path):
    source = path.read_text()
    tree = ast.parse(source)
    imports = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    star = [n for n in imports if isinstance(n, ast.ImportFrom) and n.module == "spack.package"]
    assert star, "recipes import `from spack.package import *` (old layout)"
    for node in imports:
        module = getattr(node, "module", None) or ""
        names = [a.name for a in getattr(node, "names", [])]
        assert not module.startswith("spack_repo"), "spack_repo imports do not load on 0.23"
        assert "spack_repo" not in " ".join(names)
    loaded = load_recipe(path)
    compiled, module = loaded.cls, loaded.module
    # Every global a method uses must come from the module, builtins or spack.package names
    # known to exist on both Spack versions (e.g. not `tty`, which 0.23 does not export).
    module_names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)
                    and isinstance(n.ctx, ast.Store)}
    module_names |= {a.asname or a.name.split(".")[0] for n in imports for a in n.names}
    module_names |= {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    unknown = set()
    functions = [getattr(a, "fget", None) or getattr(a, "__func__", a)
                 for a in vars(compiled).values()]
    functions += [v for v in vars(module).values() if callable(v) and hasattr(v, "__code__")]
    for fn in functions:
        code = getattr(fn, "__code__", None)
        if code is None:
            continue
        for name in _global_names(code):
            if name not in module_names and not hasattr(builtins, name) \
                    and name not in SPACK_PACKAGE_NAMES:
                unknown.add(name)
    assert not unknown, f"names not provided by spack.package on both versions: {unknown}"


def _global_names(code) -> set[str]:
    """Names a code object (and the functions nested in it) loads as globals."""
    loaded = {i.argval for i in dis.get_instructions(code)
              if i.opname in ("LOAD_GLOBAL", "LOAD_NAME")}
    for const in code.co_consts:
        if hasattr(const, "co_code"):
            loaded |= _global_names(const)
    return loaded


@pytest.mark.parametrize("path", RECIPES, ids=recipe_ids(RECIPES))
def test_versions_are_pinned_or_declared_unreleased(path):
    """Each version has a sha256 or a git commit; only our own 0.1.0 may lack both (no tag yet)."""
    recipe = load_recipe(path)
    for version, kwargs in recipe.versions.items():
        if "branch" in kwargs:
            continue
        if "sha256" in kwargs:
            assert re.fullmatch(r"[0-9a-f]{64}", kwargs["sha256"]), (version, kwargs)
        elif "commit" in kwargs:
            assert re.fullmatch(r"[0-9a-f]{40}", kwargs["commit"]), (version, kwargs)
        else:
            assert recipe.name in ("py-neurodamus", "neurodamus-models"), (version, kwargs)
            assert "checksum" in recipe.source, "an unpinned release must say why"


def test_py_neurodamus_dependencies_match_setup_cfg():
    recipe = load_recipe(CHECKOUT / "spack" / "packages" / "py-neurodamus" / "package.py")
    required = setup_cfg_requirements()
    run_deps = {}
    for spec, kwargs in recipe.depends_on:
        deptype = kwargs.get("type", ("build", "link"))
        deptype = (deptype,) if isinstance(deptype, str) else deptype
        if "run" in deptype and spec_name(spec) not in ("python", "jemalloc"):
            run_deps[spec_name(spec)] = spec
    # jemalloc is a library the launcher preloads, not a Python requirement: behind a variant,
    # unprefixed (a je_ prefix would not replace malloc)
    jemalloc = [(s, k) for s, k in recipe.depends_on if spec_name(s) == "jemalloc"]
    assert jemalloc == [("jemalloc jemalloc_prefix=none", {"when": "+jemalloc", "type": "run"})]
    assert recipe.variants["jemalloc"]["default"] is True
    assert set(run_deps) == set(required), (
        f"only in the recipe: {sorted(set(run_deps) - set(required))}; "
        f"only in setup.cfg: {sorted(set(required) - set(run_deps))}"
    )
    for name, constraint in required.items():
        if constraint:
            assert constraint in run_deps[name], (name, constraint, run_deps[name])
    assert "+python" in run_deps["neuron"]
    assert "develop" in recipe.versions and recipe.versions["develop"].get("branch") == "main"
    assert "0.1.0" in recipe.versions


def test_py_neurodamus_version_matches_package():
    init = (CHECKOUT / "neurodamus" / "__init__.py").read_text()
    version = re.search(r'__version__\s*=\s*"([^"]+)"', init).group(1)
    recipe = load_recipe(CHECKOUT / "spack" / "packages" / "py-neurodamus" / "package.py")
    assert version in recipe.versions, f"neurodamus {version} has no version() in the recipe"


def test_models_recipe_covers_bundled_models():
    recipe = load_recipe(CHECKOUT / "spack" / "packages" / "neurodamus-models" / "package.py")
    values = tuple(recipe.variants["model"]["values"])
    assert recipe.variants["model"]["default"] in values
    for model in values:
        assert (CHECKOUT / "models" / model / "mod").is_dir(), f"models/{model}/mod missing"
    bundled = {p.parent.name for p in (CHECKOUT / "models").glob("*/mod")}
    assert bundled <= set(values), f"models without a variant value: {bundled - set(values)}"
    assert "coreneuron" in recipe.variants
    assert any(s.startswith("neuron") and "+coreneuron" in s and k.get("when") == "+coreneuron"
               for s, k in recipe.depends_on)


def test_neuron_recipe_has_9_0_series():
    recipe = load_recipe(CHECKOUT / "spack" / "packages" / "neuron" / "package.py")
    assert {"9.0.0", "9.0.1", "9.0.2"} <= set(recipe.versions)
    assert {"coreneuron", "mpi", "python"} <= set(recipe.variants)
    assert all(recipe.variants[v]["default"] is True for v in ("coreneuron", "mpi", "python"))


def test_libsonata_recipe_has_0_2_series():
    recipe = load_recipe(CHECKOUT / "spack" / "packages" / "py-libsonata" / "package.py")
    assert any(v.startswith("0.2.") for v in recipe.versions)
