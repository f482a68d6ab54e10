"""Where the driver's own HOC library, mechanisms and bundled models live.

A checkout (editable install) uses its own ``core/`` and ``models/`` folders so that edits take
effect without reinstalling; an installed wheel carries copies under ``neurodamus/data/``.
"""

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parent


def _pick(checkout_rel: str, data_rel: str) -> Path:
    in_checkout = _CHECKOUT / checkout_rel
    if in_checkout.is_dir():
        return in_checkout
    return _PACKAGE / "data" / data_rel


def hoc_dir() -> Path:
    """The driver's HOC library (``core/hoc``)."""
    return _pick("core/hoc", "hoc")


def mod_dir() -> Path:
    """The driver's own NMODL mechanisms (``core/mod``)."""
    return _pick("core/mod", "mod")


def include_dir() -> Path:
    """Headers force-included into the mechanism builds (``core/include``)."""
    return _pick("core/include", "include")


def models_dir() -> Path:
    """Bundled example models (``models/<name>/{mod,hoc}``)."""
    return _pick("models", "models")


def checkout_root() -> Path | None:
    """The source checkout this package runs from, or None for an installed wheel."""
    return _CHECKOUT if (_CHECKOUT / "core" / "hoc").is_dir() else None


def hoc_search_path() -> list[str]:
    """HOC_LIBRARY_PATH entries first (the user's override), then our own library."""
    user = [p for p in os.environ.get("HOC_LIBRARY_PATH", "").replace(" ", ":").split(":") if p]
    ours = str(hoc_dir())
    return user + ([ours] if ours not in user else [])
