"""Modules imported when first used: what keeps ``ttpgraph --help`` and one CLI question from
importing every library a command might need (the driver, FastAPI, networkx...)."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def lazy_module(name: str) -> ModuleType:
    """``import name``, with the module's code run at its first attribute access."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"no module named {name!r}", name=name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module


def import_driver() -> None:
    """Import the neo4j driver without numpy, pandas and pyarrow: it imports them when they
    are installed, for DataFrame results ttpgraph never asks for (half a second of every CLI
    call where mitreattack-python's pandas is installed). They stay importable afterwards."""
    if "neo4j" in sys.modules:
        return
    hidden = [m for m in ("numpy", "pandas", "pyarrow") if m not in sys.modules]
    for m in hidden:
        sys.modules[m] = None  # type: ignore[assignment]  # an ImportError for the driver
    try:
        import neo4j  # noqa: F401
    finally:
        for m in hidden:
            if sys.modules.get(m) is None:
                del sys.modules[m]
