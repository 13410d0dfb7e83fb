"""Where the store is, and how to open an engine on it (shared by both sides).

Kept free of the event-sourcing machinery so a query can open the store cheaply.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

DEFAULT_DB = "sqlite:///ipledger.db"
SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


def store_url(db: str | None = None) -> str:
    """The store's SQLAlchemy URL, refused if it is not one or if the store cannot persist:
    an in-memory SQLite store would acknowledge writes that vanish when the command ends."""
    from ipledger.domain.errors import InvalidInput

    url = db or DEFAULT_DB  # the environment is read by the bootstrap (ipledger.service.open_ledger)
    if not url.isprintable():
        raise InvalidInput("db: a store URL has no control characters")
    if "://" not in url:
        # A bare path names a SQLite file, if it says so by its suffix: any other text
        # (a typo, a pasted fragment) must not quietly become a new empty store.
        if not url.lower().endswith(SQLITE_SUFFIXES):
            raise InvalidInput(
                f"db: {url!r} is neither a store URL (sqlite:///…, postgresql://…) nor a SQLite file's path "
                f"(ending {', '.join(SQLITE_SUFFIXES)})"
            )
        url = f"sqlite:///{url}"
    for scheme in ("postgresql://", "postgres://"):  # the spellings libpq and most hosts print
        if url.startswith(scheme):
            url = "postgresql+psycopg://" + url[len(scheme) :]
    try:
        parsed = make_url(url)
    except ArgumentError as e:
        raise InvalidInput(f"db: not a usable SQLAlchemy URL ({e})") from None
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:") or "mode=memory" in url or database.startswith("file::memory:"):
            raise InvalidInput(
                f"db: {url} is an in-memory store and would lose every write when the command ends; "
                "name a file (sqlite:///ipledger.db)"
            )
    return url


@contextmanager
def opening_store(url: str) -> Iterator[None]:
    """Opening a store whose driver is unknown or not installed is StoreUnavailable (exit 5)."""
    from ipledger.domain.errors import StoreUnavailable

    try:
        yield
    except (NoSuchModuleError, ImportError) as e:
        raise StoreUnavailable(f"db: no driver for {make_url(url).drivername} ({e}); nothing was recorded") from None


def sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")  # concurrent writers wait, not fail
    cursor.execute("PRAGMA synchronous=FULL")  # an acknowledged command survives power loss
    # 64 MiB of page cache (the default is 2 MiB): a large log's indexes are written at
    # random places (aggregate ids are uuid5), and imports and rebuilds re-read them.
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.close()


def is_sqlite(url: str) -> bool:
    """Whether a store URL (as `store_url` gives it) names a SQLite file: what
    `make_engine` opens with the SQLite settings."""
    return url.startswith("sqlite")


def make_engine(url: str) -> Engine:
    """An engine with the ledger's connection settings (SQLite: busy timeout, durable
    commits, a large page cache on every new connection; PostgreSQL: pre-pinged)."""
    with opening_store(url):
        if is_sqlite(url):
            engine = create_engine(url)
            event.listen(engine, "connect", sqlite_pragmas)
            return engine
        return create_engine(url, pool_pre_ping=True)
