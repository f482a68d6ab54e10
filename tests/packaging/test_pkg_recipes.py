"""The recipes in spack/packages load (as on Spack 0.23 and 1.x) and say what the project needs.

No Spack needed: each package.py is executed against a small recording stand-in for
``spack.package`` (see pkg_helpers.load_recipe). test_pkg_spack.py runs the real thing.
"""

from __future__ import annotations

import ast
import builtins
import dis
import re
import sys

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
    # spack_repo does not exist on 0.23: only in a `try:` whose `except ImportError:` imports
    # the same builtin recipe the 0.23 way (spack.pkg.builtin.<name>).
    guarded = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try):
            fallback = [n for h in node.handlers if _catches_import_error(h) for n in h.body
                        if isinstance(n, ast.ImportFrom)]
            for first, second in zip(node.body, fallback):
                if isinstance(first, ast.ImportFrom) and first.module.startswith("spack_repo."):
                    assert second.module.startswith("spack.pkg.builtin."), ast.unparse(node)
                    assert [a.name for a in first.names] == [a.name for a in second.names]
                    guarded.add(id(first))
    for node in imports:
        module = getattr(node, "module", None) or ""
        names = [a.name for a in getattr(node, "names", [])]
        if module.startswith("spack_repo"):
            assert id(node) in guarded, "unguarded spack_repo import does not load on 0.23"
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


def _catches_import_error(handler) -> bool:
    return isinstance(handler.type, ast.Name) and handler.type.id in ("ImportError",
                                                                       "ModuleNotFoundError")


def _global_names(code) -> set[str]:
    """Names a code object (and the functions nested in it) loads as globals."""
    loaded = {i.argval for i in dis.get_instructions(code)
              if i.opname in ("LOAD_GLOBAL", "LOAD_NAME")}
    for const in code.co_consts:
        if hasattr(const, "co_code"):
            loaded |= _global_names(const)
    return loaded


@pytest.mark.parametrize("path", RECIPES, ids=recipe_ids(RECIPES))
def test_every_version_is_pinned(path):
    """Each version has a sha256 or a git commit, except `develop` (a branch, or no source)."""
    recipe = load_recipe(path)
    for version, kwargs in recipe.versions.items():
        if version == "develop":
            assert set(kwargs) <= {"branch", "submodules"}, kwargs
        elif "sha256" in kwargs:
            assert re.fullmatch(r"[0-9a-f]{64}", kwargs["sha256"]), (version, kwargs)
        else:
            assert re.fullmatch(r"[0-9a-f]{40}", kwargs.get("commit", "")), (version, kwargs)


@pytest.mark.parametrize("name", ["py-neurodamus", "neurodamus-models"])
def test_our_packages_name_no_address(name):
    """No repository or tarball of ours is published: the recipes name none (item: no address
    that does not exist); environments build the clone, a site sets `git` (docs/install.md)."""
    recipe = load_recipe(CHECKOUT / "spack" / "packages" / name / "package.py")
    for attr in ("url", "homepage", "list_url", "pypi"):
        assert not isinstance(getattr(recipe.cls, attr, None), str), (name, attr)
    # git, if any, is the clone the recipe sits in
    assert getattr(recipe.cls, "git", None) in (None, str(CHECKOUT))
    if name == "py-neurodamus":
        assert recipe.cls.git == str(CHECKOUT)
    assert "http" not in recipe.source.replace("https://<host>", "")
    assert set(recipe.versions) == {"develop"}


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
    neuron = [k for s, k in recipe.depends_on if spec_name(s) == "neuron"]
    assert [k["type"] for k in neuron] == ["run"], "installing the driver builds nothing on NEURON"
    assert recipe.versions["develop"].get("branch") == "main"


def test_py_neurodamus_pins_python_to_tested_versions():
    recipe = load_recipe(CHECKOUT / "spack" / "packages" / "py-neurodamus" / "package.py")
    python = [s for s, _ in recipe.depends_on if spec_name(s) == "python"]
    assert python == ["python@3.10:3.12"], python
    assert f"{sys.version_info[0]}.{sys.version_info[1]}" in ("3.10", "3.11", "3.12")


@pytest.mark.parametrize("path", RECIPES, ids=recipe_ids(RECIPES))
def test_recipe_names_maintainers(path):
    recipe = load_recipe(path)
    assert any(kind == "maintainers" and args for kind, args, _ in recipe.directives)


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
    # The builtin recipe's versions and variants are inherited (checked with Spack in
    # test_pkg_spack.py); this one declares none of them again.
    assert recipe.cls.__mro__[1].__name__ == "Neuron", "extends the builtin recipe"
    assert not recipe.variants


@pytest.mark.parametrize("variants, expected", [
    ("+python", {"coding-conventions", "Random123", "fmt", "CLI11", "json", "pybind11", "spdlog",
                 "nanobind"}),
    ("~python+interviews+tests", {"coding-conventions", "Random123", "fmt", "CLI11", "json",
                                  "pybind11", "spdlog", "iv", "catch2", "../test/rxd/testdata"}),
])
def test_neuron_fetches_only_the_submodules_its_build_uses(variants, expected):
    """Eigen (hosted outside GitHub) is never fetched: it comes from Spack's eigen."""
    recipe = load_recipe(CHECKOUT / "spack" / "packages" / "neuron" / "package.py")
    submodules = recipe.versions["9.0.2"]["submodules"]

    class Spec:
        def satisfies(self, constraint):
            return constraint in variants

    got = submodules(type("Pkg", (), {"spec": Spec()})())
    assert {p.replace("external/", "", 1) if p.startswith("external/") else "../" + p
            for p in got} == expected
    assert any(spec_name(s) == "eigen" for s, _ in recipe.depends_on)


def test_libsonata_recipe_has_0_2_series():
    recipe = load_recipe(CHECKOUT / "spack" / "packages" / "py-libsonata" / "package.py")
    assert any(v.startswith("0.2.") for v in recipe.versions)
