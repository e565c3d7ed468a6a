"""Modules imported when first used: what keeps ``ttpgraph --help`` and one CLI question from
importing every library a command might need (the driver, FastAPI, networkx...)."""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from types import ModuleType
from typing import Any


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


# The neo4j driver imports numpy, pandas and pyarrow when they are installed, for DataFrame results
# ttpgraph never asks for: half a second of every CLI call where mitreattack-python's pandas is
# installed. While the driver's module of optional dependencies runs, they are not found; they
# stay importable for everything else (mitreattack-python's layers, the benchmarks' peers).
DRIVER_OPTIONAL = frozenset({"numpy", "pandas", "pyarrow"})
DRIVER_OPTIONAL_IMPORTER = "neo4j._optional_deps"


class HideFromDriver(importlib.abc.MetaPathFinder):
    """Finds nothing, and refuses numpy, pandas and pyarrow to the driver's optional imports."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name.partition(".")[0] in DRIVER_OPTIONAL and imported_by(DRIVER_OPTIONAL_IMPORTER):
            raise ImportError(f"{name} is not for the neo4j driver in ttpgraph", name=name)
        return None


def imported_by(module: str) -> bool:
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_globals.get("__name__") == module:
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


def hide_dataframes_from_driver() -> None:
    """Install :class:`HideFromDriver` (once): however the driver comes to be imported first."""
    if not any(isinstance(f, HideFromDriver) for f in sys.meta_path):
        sys.meta_path.insert(0, HideFromDriver())
