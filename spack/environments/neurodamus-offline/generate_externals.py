#!/usr/bin/env python3
"""Write the externals of the offline environment from the running Python and the system MPI.

Nothing can be downloaded in the offline environment, so every package except this project's
own (py-neurodamus, neurodamus-models, and python-venv/compiler wrappers that Spack makes
locally) is an external (``buildable: false``):

* python, and the pip-installed Python packages the driver needs (found with
  ``importlib.metadata``), all with the virtualenv root (``sys.prefix``) as prefix;
* ``neuron`` from the NEURON wheel in the same virtualenv;
* the system MPI (Open MPI or MPICH, found through ``mpirun``/``mpiexec``);
* the system gcc (as a ``packages:`` external on Spack 1.x, in ``compilers:`` on Spack 0.23);
* the system jemalloc (Debian: ``libjemalloc2``) for ``py-neurodamus +jemalloc``; without it,
  ``py-neurodamus`` is preferred ``~jemalloc`` (the driver then runs with the system malloc).

With ``--build neuron`` NEURON is left for Spack to build from source (spack/verify-from-source.sh):
it is not declared, and what its build needs is declared instead: the system's build tools and
libraries (cmake, make, ninja, bison, flex, gettext, ncurses, readline, Eigen) and NMODL's
Python packages (jinja2, PyYAML, sympy, find_libpython, packaging).

Usage::

    python generate_externals.py [--output FILE] [--spack SPACK_EXE | --spack-version X.Y]
                                 [--extra DIST ...] [--build neuron]

The default output is ``externals.yaml`` next to this script, which ``spack.yaml`` includes.
Run it with the interpreter whose packages the environment should use.
Only the standard library is used, so that it runs before anything else is installed.
"""

import argparse
import configparser
import datetime
import glob
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHECKOUT = HERE.parents[2]

#: Needed to build and install a Python package with Spack, whatever setup.cfg says.
BUILD_TOOLS = ("pip", "setuptools", "wheel")

#: Python distribution name -> Spack package name, where it is not "py-<name>".
SPACK_NAMES = {"neuron": "neuron"}

#: Python distributions NEURON's own build needs (NMODL's code generator), with --build neuron.
NEURON_BUILD_DISTRIBUTIONS = ("jinja2", "PyYAML", "sympy", "mpmath", "find_libpython",
                              "packaging", "MarkupSafe")


def find_spack():
    """The spack executable: $SPACK_ROOT, then spack on PATH, then /opt/spack (None if absent)."""
    root = os.environ.get("SPACK_ROOT")
    candidates = [Path(root) / "bin" / "spack"] if root else []
    on_path = shutil.which("spack")
    candidates += [Path(on_path)] if on_path else []
    candidates.append(Path("/opt/spack/bin/spack"))
    return next((str(c) for c in candidates if c.is_file()), None)


def spack_major(spack_exe):
    """Major version of that Spack (1 when unknown: the layout of recent Spack)."""
    if not spack_exe:
        return 1
    proc = subprocess.run([spack_exe, "--version"], check=False, capture_output=True, text=True)
    out = proc.stdout
    match = re.match(r"\s*(\d+)\.(\d+)", out)
    return int(match.group(1)) if match else 1


def required_distributions():
    """install_requires of setup.cfg (names only) plus the build tools."""
    cfg = configparser.ConfigParser()
    cfg.read(CHECKOUT / "setup.cfg")
    names = []
    for line in cfg.get("options", "install_requires", fallback="").splitlines():
        line = line.split("#")[0].strip()
        if line:
            names.append(re.split(r"[<>=!~;\[ ]", line, maxsplit=1)[0])
    return names + [t for t in BUILD_TOOLS if t not in names]


def spack_name(dist):
    norm = re.sub(r"[-_.]+", "-", dist).lower()
    return SPACK_NAMES.get(norm, "py-" + norm)


def python_externals(dists, major):
    """(spack name, spec, prefix, extends python) per distribution; exits if one is missing."""
    prefix = sys.prefix
    py = "python@{}.{}.{}".format(*sys.version_info[:3])
    out = [("python", py, prefix, False)]
    missing = []
    for dist in dists:
        try:
            version = metadata.version(dist)
        except metadata.PackageNotFoundError:
            missing.append(dist)
            continue
        name = spack_name(dist)
        spec = f"{name}@{version}"
        if name == "neuron":
            # The NEURON wheel is built with Python, dynamic MPI and CoreNEURON.
            spec += " +python +mpi +coreneuron"
        out.append((name, spec, prefix, name.startswith("py-")))
    if missing:
        sys.exit(
            "generate_externals: not installed in {}: {}\n"
            "  install them first (pip install {})".format(
                sys.prefix, ", ".join(missing), " ".join(missing)
            )
        )
    return out


def mpi_external():
    """(spack name, spec, prefix) of the MPI whose mpirun/mpiexec is first on PATH, or None."""
    for launcher in ("mpirun", "mpiexec"):
        exe = shutil.which(launcher)
        if not exe:
            continue
        text = subprocess.run([exe, "--version"], check=False, capture_output=True, text=True)
        text = text.stdout + text.stderr
        prefix = str(Path(os.path.realpath(exe)).parent.parent)
        match = re.search(r"Open MPI\)?\s+(\d+\.\d+\.\d+)", text)
        if match:
            return "openmpi", "openmpi@" + match.group(1), prefix
        match = re.search(r"Version:\s+(\d+\.\d+(?:\.\d+)?)", text)
        if "HYDRA" in text and match:
            return "mpich", "mpich@" + match.group(1), prefix
    return None


#: prints jemalloc's version; run with the library preloaded (a dlopen of it fails: static TLS)
_JEMALLOC_VERSION = (
    "import ctypes, sys\n"
    "je = ctypes.CDLL(sys.argv[1])\n"
    "v = ctypes.c_char_p()\n"
    "n = ctypes.c_size_t(ctypes.sizeof(v))\n"
    "je.mallctl(b'version', ctypes.byref(v), ctypes.byref(n), None, 0) or print(v.value.decode())\n"
)


def jemalloc_external():
    """(spack name, spec, prefix) of the system's shared jemalloc, or None."""
    for lib in sorted(glob.glob("/usr/lib/*/libjemalloc.so.2") + glob.glob("/usr/lib64/"
                                                                             "libjemalloc.so.2")):
        env = dict(os.environ, LD_PRELOAD=lib)
        out = subprocess.run([sys.executable, "-c", _JEMALLOC_VERSION, lib], env=env,
                             check=False, capture_output=True, text=True).stdout
        number = re.match(r"(\d+\.\d+\.\d+)", out.strip())
        if number:
            return "jemalloc", "jemalloc@{} jemalloc_prefix=none".format(number.group(1)), "/usr"
    return None


def _version_of(command, pattern):
    """The first match of pattern in `command` output (stdout and stderr), or None."""
    exe = shutil.which(command[0])
    if not exe:
        return None
    proc = subprocess.run([exe, *command[1:]], check=False, capture_output=True, text=True)
    match = re.search(pattern, proc.stdout + proc.stderr)
    return match.group(1) if match else None


def _header_version(path, *macros):
    """Version made of #define'd numbers in a header (e.g. Eigen's Macros.h), or None."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return None
    numbers = []
    for macro in macros:
        match = re.search(r"#define\s+" + macro + r"\s+(\w+)", text)
        if not match:
            return None
        numbers.append(match.group(1))
    return numbers


def build_tools():
    """(spack name, spec, prefix) of the system tools and libraries a NEURON build uses.

    Exits naming what is missing (Debian: cmake make ninja-build bison flex gettext
    libncurses-dev libreadline-dev libeigen3-dev).
    """
    found, missing = [], []
    number = r"(\d+\.\d+(?:\.\d+)?)"
    for name, command, pattern in (
        ("cmake", ["cmake", "--version"], r"cmake version " + number),
        ("gmake", ["make", "--version"], r"GNU Make " + number),
        ("ninja", ["ninja", "--version"], number),
        ("bison", ["bison", "--version"], r"bison \(GNU Bison\) " + number),
        ("flex", ["flex", "--version"], r"flex " + number),
        ("gettext", ["gettext", "--version"], r"gettext.*? " + number),
        ("ncurses", ["ncursesw6-config", "--version"], r"(\d+\.\d+)"),
    ):
        version = _version_of(command, pattern)
        if version:
            found.append((name, f"{name}@{version}", "/usr"))
        else:
            missing.append(name)
    readline = _header_version("/usr/include/readline/readline.h", "RL_VERSION_MAJOR",
                               "RL_VERSION_MINOR")
    if readline:
        found.append(("readline", "readline@" + ".".join(readline), "/usr"))
    else:
        missing.append("readline (headers)")
    eigen = _header_version("/usr/include/eigen3/Eigen/src/Core/util/Macros.h",
                            "EIGEN_WORLD_VERSION", "EIGEN_MAJOR_VERSION", "EIGEN_MINOR_VERSION")
    if eigen:
        found.append(("eigen", "eigen@" + ".".join(eigen), "/usr"))
    else:
        missing.append("eigen (headers)")
    if missing:
        sys.exit("generate_externals: --build neuron needs these from the system: "
                 + ", ".join(missing))
    return found


def gcc_compilers():
    """Paths of the system gcc, g++ and gfortran (those found), and gcc's full version."""
    paths = {}
    for lang, exe in (("c", "gcc"), ("cxx", "g++"), ("fortran", "gfortran")):
        found = shutil.which(exe)
        if found:
            paths[lang] = found
    if "c" not in paths or "cxx" not in paths:
        sys.exit("generate_externals: gcc and g++ are needed to compile the mechanisms")
    version = subprocess.run(
        [paths["c"], "-dumpfullversion"], check=False, capture_output=True, text=True
    ).stdout.strip()
    return version, paths


def os_name():
    """Spack's name for this operating system (e.g. debian12), for 0.23's compilers.yaml."""
    info = {}
    try:
        with open("/etc/os-release") as f:
            for line in f:
                key, _, value = line.strip().partition("=")
                info[key] = value.strip('"')
    except OSError:
        pass
    return info.get("ID", "linux") + info.get("VERSION_ID", "").split(".")[0]


def render(major, pkgs, mpi, gcc, jemalloc=None, tools=()):
    lines = [
        "# Generated by generate_externals.py on {} for Spack {}.x".format(
            datetime.date.today().isoformat(), major if major >= 1 else "0"
        ),
        f"# from {sys.executable} (prefix {sys.prefix}).",
        "# Not committed: regenerate it on each machine.",
        "packages:",
    ]

    def external(name, spec, prefix, extra=()):
        lines.extend(
            [
                f"  {name}:",
                "    buildable: false",
                "    externals:",
                f"    - spec: {json.dumps(spec)}",
                f"      prefix: {prefix}",
            ]
        )
        lines.extend(extra)

    for name, spec, prefix, extends_python in pkgs:
        deps = []
        if extends_python and major >= 1:
            deps = ["      dependencies:", "      - spec: python"]
        external(name, spec, prefix, deps)

    for name, spec, prefix in tools:
        external(name, spec, prefix)

    if mpi:
        name, spec, prefix = mpi
        external(name, spec, prefix)
        lines.extend(["  mpi:", "    buildable: false"])

    if jemalloc:
        external(*jemalloc)
    else:
        lines.extend(["  py-neurodamus:", "    variants: '~jemalloc'"])

    version, paths = gcc
    if major >= 1:
        languages = ",".join(
            {"c": "c", "cxx": "c++", "fortran": "fortran"}[lang] for lang in paths
        )
        extra = ["      extra_attributes:", "        compilers:"]
        extra += [f"          {lang}: {path}" for lang, path in paths.items()]
        external("gcc", f"gcc@{version} languages:='{languages}'", "/usr", extra)
    else:
        fortran = paths.get("fortran")
        lines.extend(
            [
                "compilers:",
                "- compiler:",
                f"    spec: gcc@={version}",
                "    paths:",
                "      cc: {}".format(paths["c"]),
                "      cxx: {}".format(paths["cxx"]),
                "      f77: {}".format(fortran or "null"),
                "      fc: {}".format(fortran or "null"),
                f"    operating_system: {os_name()}",
                f"    target: {platform.machine()}",
                "    modules: []",
                "    flags: {}",
                "    environment: {}",
                "    extra_rpaths: []",
            ]
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default=str(HERE / "externals.yaml"))
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--spack", help="spack executable whose version decides the format")
    which.add_argument("--spack-version", help="format for this Spack version (e.g. 1.1, 0.23)")
    parser.add_argument(
        "--extra", action="append", default=[], help="one more pip distribution to declare"
    )
    parser.add_argument(
        "--build", action="append", default=[], choices=["neuron"],
        help="leave this package for Spack to build (declare what its build needs instead)",
    )
    args = parser.parse_args(argv)

    if args.spack_version:
        major = int(args.spack_version.split(".")[0])
    else:
        major = spack_major(args.spack or find_spack())

    dists = required_distributions() + args.extra
    tools = []
    if "neuron" in args.build:
        dists = [d for d in dists if spack_name(d) != "neuron"]
        dists += [d for d in NEURON_BUILD_DISTRIBUTIONS if d not in dists]
        tools = build_tools()
    text = render(major, python_externals(dists, major), mpi_external(), gcc_compilers(),
                  jemalloc_external(), tools)
    Path(args.output).write_text(text)
    print(f"generate_externals: wrote {args.output} (Spack {major} format)")


if __name__ == "__main__":
    main()
