"""Write an Lmod (Lua) modulefile for a neurodamus installed in a virtualenv.

Spack writes modules for its own installations (spack/environments/neurodamus-deploy); this tool
covers the other common case: ``python -m venv DIR && DIR/bin/pip install neurodamus`` (or
``pip install -e <checkout>``), plus mechanisms built with ``neurodamus build-mechanisms``.

Usage::

    python -m neurodamus.tools.modulefile --venv DIR [options]
    scripts/write-modulefile.sh --venv DIR [options]

Loading the module prepends ``DIR/bin`` to ``PATH`` (so ``neurodamus`` and ``python`` are the
virtualenv's) and sets ``VIRTUAL_ENV``; ``--mechanisms`` adds the mechanism libraries
(``NRNMECH_LIB_PATH``, ``CORENEURONLIB``, ``special`` on ``PATH``), ``--hoc-path`` the HOC
search path. The result is checked to be valid Lua when ``luac`` or ``lua`` is available.

Only the standard library is used: this module must run without NEURON or MPI.
"""

from __future__ import annotations

import argparse
import datetime
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__

__all__ = ["ModuleSpec", "main", "render"]


@dataclass
class ModuleSpec:
    """Everything a modulefile for one virtualenv installation says."""

    venv: Path
    name: str = "neurodamus"
    version: str = ""
    description: str = "neurodamus: SONATA simulations on NEURON/CoreNEURON under MPI"
    mech_libs: list[Path] = field(default_factory=list)
    corenrn_lib: Path | None = None
    special_dirs: list[Path] = field(default_factory=list)
    hoc_paths: list[Path] = field(default_factory=list)
    requires: list[str] = field(default_factory=list)
    setenv: dict[str, str] = field(default_factory=dict)


def _lua(value: object) -> str:
    """A Lua string literal (double-quoted, escaped)."""
    text = str(value)
    for old, new in (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n")):
        text = text.replace(old, new)
    return f'"{text}"'


def installed_version(venv: Path) -> str:
    """Version of neurodamus installed in the virtualenv (dist-info), else of this package."""
    pattern = str(venv / "lib" / "python3*" / "site-packages" / "neurodamus-*.dist-info")
    for info in sorted(glob.glob(pattern)):
        match = re.match(r"neurodamus-([^-]+)\.dist-info$", os.path.basename(info))
        if match:
            return match.group(1)
    return __version__


def render(spec: ModuleSpec) -> str:
    """The Lua text of the modulefile."""
    venv = spec.venv
    today = datetime.date.today().isoformat()
    lines = [
        f"-- {spec.name}/{spec.version}: virtualenv {venv}",
        f"-- Written by neurodamus.tools.modulefile on {today}; rerun it rather than editing.",
        "",
        f"whatis({_lua('Name: ' + spec.name)})",
        f"whatis({_lua('Version: ' + spec.version)})",
        f"whatis({_lua('Description: ' + spec.description)})",
        "help([[",
        f"{spec.description}",
        f"Virtualenv: {venv}",
        "Run:  neurodamus simulation_config.json   (or srun/mpirun -n N neurodamus ...)",
        "]])",
        "",
        'family("neurodamus")',
    ]
    for module in spec.requires:
        lines.append(f"depends_on({_lua(module)})")
    lines += [
        "",
        f"local venv = {_lua(venv)}",
        'setenv("VIRTUAL_ENV", venv)',
        'prepend_path("PATH", pathJoin(venv, "bin"))',
    ]
    # The first path given ends up first: prepend in reverse order.
    for folder in reversed(spec.special_dirs):
        lines.append(f'prepend_path("PATH", {_lua(folder)})')
    for lib in reversed(spec.mech_libs):
        lines.append(f'prepend_path("NRNMECH_LIB_PATH", {_lua(lib)})')
    if spec.corenrn_lib:
        lines.append(f'setenv("CORENEURONLIB", {_lua(spec.corenrn_lib)})')
    for folder in reversed(spec.hoc_paths):
        lines.append(f'prepend_path("HOC_LIBRARY_PATH", {_lua(folder)})')
    for key, value in spec.setenv.items():
        lines.append(f"setenv({_lua(key)}, {_lua(value)})")
    return "\n".join(lines) + "\n"


def check_lua(text: str) -> str | None:
    """A syntax error message from luac/lua, or None (also when neither is installed)."""
    luac = shutil.which("luac") or shutil.which("luac5.3") or shutil.which("luac5.4")
    if not luac:
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(text)
    try:
        proc = subprocess.run([luac, "-p", f.name], check=False, capture_output=True, text=True)
    finally:
        os.unlink(f.name)
    if proc.returncode:
        return proc.stderr.strip() or f"{luac} -p failed"
    return None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="write-modulefile",
        description="Write an Lmod modulefile for neurodamus installed in a virtualenv.",
    )
    p.add_argument("--venv", required=True, type=Path, help="the virtualenv folder")
    p.add_argument("--name", default="neurodamus", help="module name [neurodamus]")
    p.add_argument("--version", default="", help="module version [the installed neurodamus]")
    p.add_argument("--description", default=None)
    p.add_argument(
        "--mechanisms",
        action="append",
        type=Path,
        default=[],
        metavar="ARCH_DIR",
        help="folder made by nrnivmodl / `neurodamus build-mechanisms` (e.g. out/x86_64): "
        "sets NRNMECH_LIB_PATH, CORENEURONLIB when present, and puts its special on PATH",
    )
    p.add_argument(
        "--mech-lib", action="append", type=Path, default=[], help="a libnrnmech.so to load"
    )
    p.add_argument("--corenrn-lib", type=Path, help="libcorenrnmech.so for CoreNEURON")
    p.add_argument(
        "--hoc-path", action="append", type=Path, default=[], help="prepend to HOC_LIBRARY_PATH"
    )
    p.add_argument(
        "--requires", action="append", default=[], help="module to load first (e.g. openmpi)"
    )
    p.add_argument(
        "--setenv", action="append", default=[], metavar="KEY=VALUE", help="set a variable"
    )
    out = p.add_mutually_exclusive_group()
    out.add_argument("--output", type=Path, help="write this file ('-' for stdout)")
    out.add_argument(
        "--modules-root", type=Path, help="write <root>/<name>/<version>.lua (for `module use`)"
    )
    p.add_argument("--no-check", action="store_true", help="skip the checks that paths exist")
    return p


def spec_from_args(args: argparse.Namespace) -> ModuleSpec:
    """Check the arguments and turn them into a ModuleSpec; raises SystemExit on bad input."""
    problems = []
    venv = args.venv.resolve()
    if not args.no_check and not (venv / "bin" / "python").exists():
        problems.append(f"--venv {venv}: not a virtualenv (no bin/python)")

    spec = ModuleSpec(venv=venv, name=args.name)
    spec.version = args.version or installed_version(venv)
    if args.description:
        spec.description = args.description
    for arch in args.mechanisms:
        arch = arch.resolve()
        lib = arch / "libnrnmech.so"
        if not args.no_check and not lib.is_file():
            problems.append(f"--mechanisms {arch}: no libnrnmech.so")
        spec.mech_libs.append(lib)
        if (arch / "libcorenrnmech.so").is_file() and not args.corenrn_lib:
            spec.corenrn_lib = arch / "libcorenrnmech.so"
        if (arch / "special").is_file():
            spec.special_dirs.append(arch)
    for lib in args.mech_lib:
        if not args.no_check and not lib.is_file():
            problems.append(f"--mech-lib {lib}: no such file")
        spec.mech_libs.append(lib.resolve())
    if args.corenrn_lib:
        if not args.no_check and not args.corenrn_lib.is_file():
            problems.append(f"--corenrn-lib {args.corenrn_lib}: no such file")
        spec.corenrn_lib = args.corenrn_lib.resolve()
    for folder in args.hoc_path:
        if not args.no_check and not folder.is_dir():
            problems.append(f"--hoc-path {folder}: no such folder")
        spec.hoc_paths.append(folder.resolve())
    spec.requires = list(args.requires)
    for item in args.setenv:
        key, sep, value = item.partition("=")
        if not sep or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
            problems.append(f"--setenv {item}: expected KEY=VALUE")
        else:
            spec.setenv[key] = value
    if problems:
        raise SystemExit("write-modulefile: " + "\n  ".join(["invalid arguments:"] + problems))
    return spec


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    spec = spec_from_args(args)
    text = render(spec)
    error = check_lua(text)
    if error:
        print(f"write-modulefile: generated Lua does not parse: {error}", file=sys.stderr)
        return 1
    if args.modules_root:
        target = args.modules_root / spec.name / f"{spec.version}.lua"
    elif args.output and str(args.output) != "-":
        target = args.output
    else:
        sys.stdout.write(text)
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    print(f"write-modulefile: wrote {target}")
    if args.modules_root:
        root = args.modules_root.resolve()
        print(f"  module use {root} && module load {spec.name}/{spec.version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
