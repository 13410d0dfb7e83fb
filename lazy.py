"""Modules imported on first use: a command's cold start pays only for what it runs."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

#: Modules made lazy here that may not be loaded yet (see `load_all`).
_PENDING: list[ModuleType] = []


def lazy_module(name: str) -> ModuleType:
    """The module `name`, imported on first attribute access (importlib's LazyLoader); a
    module already imported is returned as it is."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.loader is not None
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    _PENDING.append(module)
    return module


def load_all() -> None:
    """Load every lazy module now, before threads share them (the API server's request
    threads). On Python 3.11 a lazy module's first attribute access is not thread-safe
    (CPython gh-114763, fixed in 3.12): a second thread could see the module half loaded
    and fail on a name it defines, a 500 on a worker's first concurrent queries."""
    while _PENDING:
        _PENDING.pop().__doc__  # any attribute loads it  # noqa: B018
