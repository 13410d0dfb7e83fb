"""Where the store is, and how to open an engine on it (shared by both sides).

Kept free of the event-sourcing machinery so a query can open the store cheaply.
"""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine

DEFAULT_DB = "sqlite:///ipledger.db"


def store_url(db: str | None = None) -> str:
    url = db or os.environ.get("IPLEDGER_DB") or DEFAULT_DB
    if not url.isprintable():
        from domain.errors import InvalidInput

        raise InvalidInput("db: a store URL has no control characters")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")  # concurrent writers wait, not fail
    cursor.execute("PRAGMA synchronous=FULL")  # an acknowledged command survives power loss
    # 64 MiB of page cache (the default is 2 MiB): a large log's indexes are written at
    # random places (aggregate ids are uuid5), and imports and rebuilds re-read them.
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine with the ledger's connection settings, for reading read models."""
    if url.startswith("sqlite"):
        engine = create_engine(url)
        event.listen(engine, "connect", sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)
