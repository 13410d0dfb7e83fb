"""sqlalchemy_utils's UUIDType without the rest of sqlalchemy_utils (the cold start of a write).

The event store's `originator_id` column is sqlalchemy_utils's UUIDType, as in
eventsourcing-sqlalchemy's layout of the log: the log's table (ledger.chain.events_table)
and the first migration use it. Importing it the ordinary way runs `sqlalchemy_utils/__init__.py`, which
imports every type the package has, and with them cryptography and the PostgreSQL,
MS SQL and Oracle dialects: about 80 ms, a sixth of a write command's cold start.

`load()` runs the package's own `types/uuid.py` (and the one module it needs) under its
own name, so the class is the library's, unchanged, and what it stores is what it always
stored; the two dialects that file names are imported when a column first asks for one
(on a PostgreSQL or MS SQL store). Anyone importing sqlalchemy_utils later gets this same
module from `sys.modules`. Import this module before eventsourcing_sqlalchemy (only the
tests still import that library: a store its create_table made is adopted).
"""

from __future__ import annotations

import builtins
import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

NAME = "sqlalchemy_utils.types.uuid"
_NEEDS = "sqlalchemy_utils.types.scalar_coercible"


class _Dialect:
    """A dialect module imported on first use (`postgresql.UUID`, on a PostgreSQL store)."""

    def __init__(self, name: str) -> None:
        self._name = f"sqlalchemy.dialects.{name}"

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)


def _import(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0) -> Any:
    """`from sqlalchemy.dialects import mssql, postgresql`, deferred; any other import as usual."""
    if name == "sqlalchemy.dialects" and level == 0 and fromlist:
        return SimpleNamespace(**{n: _Dialect(n) for n in fromlist})
    return builtins.__import__(name, globals, locals, fromlist, level)


def _run(name: str, path: Path, **extra: Any) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    module.__dict__.update(extra)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def load() -> type[Any]:
    """sqlalchemy_utils's UUIDType, its module registered under its own name."""
    module = sys.modules.get(NAME)
    if module is None:
        package = importlib.util.find_spec("sqlalchemy_utils")  # finds the package without running it
        assert package is not None and package.origin is not None
        types = Path(package.origin).parent / "types"
        if _NEEDS not in sys.modules:
            _run(_NEEDS, types / "scalar_coercible.py")
        module = _run(NAME, types / "uuid.py", __builtins__={**vars(builtins), "__import__": _import})
    uuid_type: type[Any] = module.UUIDType
    return uuid_type


UUIDType = load()
