"""Raw driver access: plain SQL on the DBAPI connection, and the one connection a process keeps.

A command runs three to six tiny statements; through SQLAlchemy each one cost more in
set-up than SQLite took to run it, and a pool checkout per statement cost as much as
the command. So the recorder's hot path runs fixed SQL strings on the driver's own
connection (`Raw`), on one connection kept for the process's commands
(`PinnedConnection`), with driver errors raised as SQLAlchemy's.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from contextvars import ContextVar
from typing import Any, Sequence

import sqlalchemy.exc
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from ipledger.ledger.config import make_engine


@functools.cache
def pipeline_supported() -> bool:
    """libpq's pipeline mode (psycopg 3 with libpq 14 or later; the binary wheel has it)."""
    try:
        import psycopg
    except ImportError:
        return False
    return bool(psycopg.Pipeline.is_supported())


class Raw:
    """Plain SQL on the driver's own connection, with driver errors raised as SQLAlchemy's.

    A command runs six or so tiny statements; through SQLAlchemy each one costs more in
    result-metadata set-up than SQLite takes to run it. The statements here are fixed
    strings, so nothing is lost by handing them to the driver directly."""

    __slots__ = ("sa", "dbapi", "sqlite", "mark", "explicit", "_error", "_dialect")

    def __init__(self, conn: Connection, *, explicit: bool = False) -> None:
        self.sa = conn
        self.dbapi: Any = conn.connection.dbapi_connection
        self._dialect = conn.dialect
        self._error: type[Exception] = conn.dialect.loaded_dbapi.Error
        self.sqlite = conn.dialect.name == "sqlite"
        self.mark = "?" if self.sqlite else "%s"
        # PostgreSQL in autocommit, with BEGIN/COMMIT sent by us: reads need no
        # transaction (a round trip each for BEGIN and ROLLBACK), and the write's BEGIN
        # travels in its pipeline.
        self.explicit = explicit
        if explicit:
            dbapi: Any = self.dbapi
            dbapi.autocommit = True

    @property
    def lost(self) -> bool:
        """The server went away (restarted, or the connection was cut)."""
        return bool(getattr(self.dbapi, "broken", False) or getattr(self.dbapi, "closed", False))

    def begin(self) -> None:
        """BEGIN, unless a transaction is open already (a command that took the write lock
        first writes in the transaction that holds it)."""
        if self.explicit and self.dbapi.info.transaction_status == 0:  # IDLE
            self.run("BEGIN")

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        rows: list[Any]
        if self.sqlite:  # sqlite3's own shortcut: one C call makes, runs and fetches a cursor
            try:
                rows = self.dbapi.execute(sql, params).fetchall()
                return rows
            except self._error as e:
                raise self._translate(sql, params, e) from e
        cursor = None
        try:
            cursor = self.dbapi.cursor()
            cursor.execute(sql, params)
            rows = cursor.fetchall()
            return rows
        except self._error as e:
            raise self._translate(sql, params, e) from e
        finally:
            if cursor is not None:
                cursor.close()

    def insert(self, sql: str, params: Sequence[Any]) -> int:
        """Run an INSERT; the rowid of its last row (SQLite)."""
        try:
            return int(self.dbapi.execute(sql, params).lastrowid)
        except self._error as e:
            raise self._translate(sql, params, e) from e

    def run(self, sql: str, params: Sequence[Any] = (), *, many: bool = False) -> None:
        cursor = None
        try:
            cursor = self.dbapi.cursor()
            if many:
                cursor.executemany(sql, params)
            else:
                cursor.execute(sql, params)
        except self._error as e:
            raise self._translate(sql, params, e) from e
        finally:
            if cursor is not None:
                cursor.close()

    def commit(self) -> None:
        if self.explicit:
            self.run("COMMIT")
            return
        try:
            self.dbapi.commit()
        except self._error as e:
            raise self._translate("COMMIT", (), e) from e

    def pipelined(self) -> AbstractContextManager[None]:
        return nullcontext() if self.sqlite else self._pipelined()

    @contextmanager
    def _pipelined(self) -> Iterator[None]:
        """On PostgreSQL, send the block's statements without waiting for each reply (libpq
        pipeline mode): a reply is awaited only where a result is read, so a write costs
        two round trips instead of one per statement. SQLite runs in process: no change."""
        if not pipeline_supported():
            yield
            return
        try:
            with self.dbapi.pipeline():
                yield
        except self._error as e:
            raise self._translate("(pipeline)", (), e) from e

    def rollback(self) -> None:
        with suppress(self._error):
            if not self.explicit:
                self.dbapi.rollback()
            elif not self.lost and self.dbapi.info.transaction_status != 0:  # not IDLE
                self.dbapi.execute("ROLLBACK")

    def _translate(self, sql: str, params: Any, e: Exception) -> Exception:
        return sqlalchemy.exc.DBAPIError.instance(sql, params, e, self._error, dialect=self._dialect)


#: SQLite's page cache for a pass over the whole log (KiB): the log is read once, in
#: order, and fresh tables are written in order, so a few pages suffice; the usual 64 MiB
#: (config.sqlite_pragmas) per connection was a quarter of a rebuild's memory at 1M events.
#: 4 MiB rebuilds 1M events as fast as 16 did, in 35 MB less (docs/performance.md, sixth round).
PASS_CACHE_KIB = 4096


@contextmanager
def passing_cache(conn: Connection) -> Iterator[None]:
    """A small SQLite page cache on `conn` for one pass over the log, put back after."""
    if conn.dialect.name != "sqlite":
        yield
        return
    dbapi: Any = conn.connection.dbapi_connection
    (before,) = dbapi.execute("PRAGMA cache_size").fetchone()
    dbapi.execute(f"PRAGMA cache_size=-{PASS_CACHE_KIB}")
    try:
        yield
    finally:
        dbapi.execute(f"PRAGMA cache_size={int(before)}")


#: The connection a command's statements share (see PinnedConnection.sharing).
_shared: ContextVar[Raw | None] = ContextVar("ipledger_shared_connection", default=None)


def shared() -> Raw | None:
    """The connection the running command shares, if it shares one."""
    return _shared.get()


@contextmanager
def connection(engine: Engine) -> Iterator[Raw]:
    """The command's shared connection, or one from the pool for this statement."""
    current = _shared.get()
    if current is not None:
        yield current
        return
    with engine.connect() as conn:
        raw = Raw(conn)
        try:
            yield raw
        finally:
            raw.rollback()


class PinnedConnection:
    """The one connection a process keeps for its commands (a recorder holds one).

    On PostgreSQL it is in autocommit (see Raw): reads need no transaction, and the
    write sends its own BEGIN. If the server went away, the next command (or its first
    read, which is safe to redo) gets a new connection."""

    __slots__ = ("raw",)

    def __init__(self) -> None:
        self.raw: Raw | None = None

    @contextmanager
    def sharing(self, engine: Engine) -> Iterator[None]:
        """Let every statement inside the block (see `connection`) use the kept connection."""
        if self.raw is None or self.raw.lost:
            self.renew(engine)
        token = _shared.set(self.raw)
        try:
            yield
        finally:
            _shared.reset(token)
            if self.raw is not None:
                self.raw.rollback()

    def renew(self, engine: Engine) -> Raw:
        """A new connection in place of the kept one, shared if the old one was."""
        if self.raw is not None:
            with suppress(Exception):
                self.raw.sa.invalidate()
        conn = engine.connect()
        self.raw = raw = Raw(conn, explicit=conn.dialect.name != "sqlite")
        if _shared.get() is not None:
            _shared.set(raw)
        return raw

    def release(self) -> None:
        """Give the connection back."""
        raw, self.raw = self.raw, None
        if raw is None:
            return
        raw.rollback()
        if raw.explicit:
            # In autocommit: closed rather than pooled, so the pool only hands out
            # connections in their default mode.
            with suppress(Exception):
                raw.sa.invalidate()
        raw.sa.close()


def _default_mode(dbapi_connection: Any, _record: Any) -> None:
    """A connection a command kept in autocommit (see Raw) goes back to the pool in the
    default mode, even if its Exchange was dropped without `close()`."""
    if dbapi_connection is not None and getattr(dbapi_connection, "autocommit", False):
        with suppress(Exception):
            dbapi_connection.autocommit = False


def hook_postgresql(engine: Engine) -> None:
    """Hook a PostgreSQL engine's pool: connections come back in the default mode."""
    event.listen(engine, "checkin", _default_mode)


def store_engine(url: str) -> Engine:
    """The engine a writer of the log opens (the application's factory, an import's writer
    process): the ledger's connection settings, and on PostgreSQL the pool hook above."""
    engine = make_engine(url)
    if engine.dialect.name == "postgresql":
        hook_postgresql(engine)
    return engine
