"""Raw driver access: plain SQL on the DBAPI connection, and the one connection a process keeps.

A command runs three to six tiny statements; through SQLAlchemy each one cost more in
set-up than SQLite took to run it, and a pool checkout per statement cost as much as
the command. So the recorder's hot path runs fixed SQL strings on the driver's own
connection (`Raw`), on one connection kept for the process's commands
(`PinnedConnection`), with driver errors raised as SQLAlchemy's.
"""

from __future__ import annotations

import functools
import re
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

    __slots__ = ("sa", "dbapi", "sqlite", "mark", "explicit", "_error", "_dialect", "_batch", "_batching")

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
        self._batch: LibpqBatch | None = None
        # A command's kept PostgreSQL connection sends every statement through LibpqBatch.
        self._batching = explicit and pipeline_supported()
        if explicit:
            dbapi: Any = self.dbapi
            dbapi.autocommit = True
            if self._batching:
                # Every statement on this connection goes through LibpqBatch, which
                # prepares its own; psycopg, preparing none, never sends the DEALLOCATE
                # ALL it sends after a ROLLBACK when it has (that would drop ours too).
                dbapi.prepare_threshold = None

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
        if self._batching:
            try:
                batch = self._batch
                return batch.rows(sql, params) if batch is not None else LibpqBatch(self.dbapi).alone(sql, params)
            except self._error as e:
                raise self._translate(sql, params, e) from e
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
        if self._batching:
            try:
                for one in params if many else (params,):
                    if self._batch is not None:
                        self._batch.send(sql, one)
                    else:
                        LibpqBatch(self.dbapi).alone(sql, one)
            except self._error as e:
                raise self._translate(sql, params, e) from e
            return
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
        if self._batching:
            if self._batch is not None:  # inside another block: its statements join that pipeline
                yield
            else:
                yield from self._batched()
            return
        try:
            with self.dbapi.pipeline():
                yield
        except self._error as e:
            raise self._translate("(pipeline)", (), e) from e

    def _batched(self) -> Iterator[None]:
        """The block's statements as one libpq pipeline below psycopg's cursors (see
        LibpqBatch): a command's write is sent in two flushes, not one per statement."""
        batch = self._batch = LibpqBatch(self.dbapi)
        try:
            yield
        except BaseException:
            self._batch = None
            batch.abandon()
            raise
        self._batch = None
        try:
            batch.finish()
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


#: Statements LibpqBatch prepares on one connection, at most: a command's reads and write
#: need a few dozen; any beyond are parsed and planned each time they are sent.
PREPARED_MAX = 200

#: A statement as LibpqBatch prepares it: its SQL and its parameters' types (psycopg
#: picks int2, int4 or int8 by an integer's size).
Key = tuple[str, tuple[int, ...]]


class Prepared:
    """The statements LibpqBatch prepared on one connection (kept on psycopg's connection
    object): a key's name is in `names` only once the server confirmed it."""

    __slots__ = ("names", "count")

    def __init__(self) -> None:
        self.names: dict[Key, bytes] = {}
        self.count = 0

    def new_name(self) -> bytes:
        """A name never used on this connection: a Parse the server skipped (after an error)
        or refused leaves its name unused for good, so every name in `names` exists."""
        self.count += 1
        return f"ipledger_{self.count}".encode()


class LibpqBatch:
    """Statements sent through libpq's pipeline mode directly, on a command's kept
    PostgreSQL connection (in autocommit, see Raw): each statement is prepared once per
    connection and sent without a flush of its own; replies are awaited only where rows
    are read (`rows`) and at the end (`finish`, one Sync). So a command's write is two
    sends and two waits, one of each for a read (`alone`).

    psycopg's pipeline does the same through its cursors and flushes each statement on its
    own: a command cost 558 µs of the client's CPU that way and 308-337 µs this way, much
    of the difference while the write held the log's lock, where two writer processes
    had written fewer commands than one (docs/performance.md, seventh round). Parameters and rows still go through
    psycopg's adapters (its Transformer), and errors are psycopg's exceptions. One thread
    at a time, as every use of the kept connection."""

    __slots__ = ("conn", "pg", "tx", "pending", "error", "prepared", "preparing")

    def __init__(self, conn: Any) -> None:
        from psycopg.adapt import Transformer

        self.conn = conn
        self.pg = conn.pgconn
        self.tx = Transformer(conn)
        # Per statement sent, in order: what it prepared, (key, name), its reply confirming it.
        self.pending: list[tuple[Key, bytes] | None] = []
        self.error: Exception | None = None
        prepared = getattr(conn, "_ipledger_prepared", None)
        if prepared is None:
            prepared = conn._ipledger_prepared = Prepared()
        self.prepared: Prepared = prepared
        self.preparing: dict[Key, bytes] = {}  # sent in this pipeline, not yet confirmed
        self.pg.enter_pipeline_mode()

    def send(self, sql: str, params: Sequence[Any]) -> None:
        """Queue one statement (`%s`/`%b` marks, as psycopg takes them)."""
        query, marks = _numbered(sql)
        values: Sequence[Any] | None = None
        types: tuple[int, ...] = ()
        formats: list[int] | None = None
        if params:
            values = self.tx.dump_sequence(params, marks)
            types = tuple(self.tx.types or ())
            formats = [int(f) for f in self.tx.formats or ()]
        key = (sql, types)
        name = self.prepared.names.get(key) or self.preparing.get(key)
        if name is None and len(self.prepared.names) + len(self.preparing) >= PREPARED_MAX:
            self.pg.send_query_params(query, values, param_types=types, param_formats=formats)
            self.pending.append(None)
            return
        if name is None:
            name = self.preparing[key] = self.prepared.new_name()
            self.pg.send_prepare(name, query, param_types=types)
            self.pending.append((key, name))
        self.pg.send_query_prepared(name, values, param_formats=formats)
        self.pending.append(None)

    def rows(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """Queue a statement and wait for its rows (and every reply before them)."""
        self.send(sql, params)
        self.pg.send_flush_request()
        self._flush()
        return self._rows(self._drain())

    def alone(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """One statement in a pipeline of its own, sent with its Sync: its rows."""
        try:
            self.send(sql, params)
        except BaseException:  # a value psycopg cannot send: nothing went, leave the pipeline
            self.abandon()
            raise
        return self._rows(self._end())

    def finish(self) -> None:
        """Send the Sync, wait for every reply, and leave pipeline mode; the first error
        raises (the server skipped every statement after it)."""
        self._end()
        if self.error is not None:
            raise self.error

    def abandon(self) -> None:
        """After an error in the caller's block: end the pipeline, whatever the replies."""
        with suppress(Exception):
            self._end()

    def _end(self) -> Any:
        try:
            self.pg.pipeline_sync()
            self._flush()
            result = self._drain(sync=True)
        except BaseException:
            # Replies left unread (an interrupted wait, a dead server): the connection is
            # closed, so it is seen as lost (Raw.lost) and renewed, and no transaction or
            # lock outlives it on the server.
            with suppress(Exception):
                self.conn.close()
            raise
        self.pg.exit_pipeline_mode()
        return result

    def _rows(self, result: Any) -> list[Any]:
        if self.error is not None:
            raise self.error
        if result is None or not result.ntuples:
            return []
        self.tx.set_pgresult(result)
        return self.tx.load_rows(0, result.ntuples, tuple)

    def _flush(self) -> None:
        while self.pg.flush():
            self._wait(write=True)

    def _wait(self, write: bool = False) -> None:
        import select

        poll = select.poll()
        poll.register(self.pg.socket, select.POLLOUT if write else select.POLLIN)
        poll.poll()

    def _result(self) -> Any:
        """The next reply of the pipeline (None ends a statement's replies)."""
        pg = self.pg
        while pg.is_busy():
            self._wait()
            pg.consume_input()
        return pg.get_result()

    def _drain(self, sync: bool = False) -> Any:
        """Read the replies of every statement sent (then the Sync's, if sent): the last
        statement's result. The first error is kept."""
        from psycopg import errors
        from psycopg.pq import ExecStatus

        last = None
        while self.pending:
            prepared = self.pending.pop(0)
            result = None
            while (got := self._result()) is not None:
                result = got
            if result is None:
                continue
            status = result.status
            if status == ExecStatus.FATAL_ERROR and self.error is None:
                self.error = errors.error_from_result(result, encoding=self.conn.info.encoding)
                if isinstance(self.error, errors.InvalidSqlStatementName):
                    # Something dropped this connection's statements (a DEALLOCATE ALL not
                    # ours): this statement fails, and the next one prepares afresh.
                    self.prepared.names.clear()
            elif status == ExecStatus.PIPELINE_ABORTED and self.error is None:
                self.error = errors.PipelineAborted("pipeline aborted")
            if prepared is not None:
                key, name = prepared
                del self.preparing[key]
                if status == ExecStatus.COMMAND_OK:
                    self.prepared.names[key] = name
            last = result
        if sync:
            while (got := self._result()) is None or got.status != ExecStatus.PIPELINE_SYNC:
                pass
        return last


@functools.lru_cache(maxsize=512)
def _numbered(sql: str) -> tuple[bytes, tuple[Any, ...]]:
    """psycopg's `%s`/`%b` marks as PostgreSQL's `$1, $2…`, with each mark's format, and
    its `%%` as `%`."""
    from psycopg.adapt import PyFormat

    parts = re.split(r"(%%|%[sb])", sql)
    out, formats = [], []
    for part in parts:
        if part == "%%":
            out.append("%")
        elif part in ("%s", "%b"):
            formats.append(PyFormat.BINARY if part == "%b" else PyFormat.AUTO)
            out.append(f"${len(formats)}")
        else:
            out.append(part)
    return "".join(out).encode(), tuple(formats)


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
