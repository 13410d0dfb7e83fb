"""Projection machinery: read models in SQL tables that track their log position.

A projection is one class per read model. It declares its tables and, with
`@handles(EventClass)`, which events it applies. Its handlers write through `Rows`,
which has two backends and one meaning:

* `SqlRows` (catch-up): rows go to the live tables in the page's transaction, with the
  new position, so each event is applied exactly once.
* `MemoryRows` (rebuild): the rows later events change (`Projection.kept`) are held in
  memory and written once at the end, sorted by key; every other row is append-only and
  is written in bulk per page (on SQLite, a table not keyed by log position through a
  temporary heap, moved in sorted at the end). The runner loads fresh tables this way
  and builds their indexes after.

So the rules of a read model are written once, and a rebuild is the same fold as a
catch-up from position 0, only faster; any read model can be dropped and rebuilt.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import Any, ClassVar, NamedTuple, Protocol
from uuid import UUID

import sqlalchemy
from sqlalchemy import Table
from sqlalchemy.engine import Connection
from sqlalchemy.schema import CreateTable

from ipledger.ledger.codec import log_topic
from ipledger.ledger.driver import Raw
from ipledger.projections.tables import (  # noqa: F401
    POSITION,
    AggregateId,
    fingerprint,
    metadata,
    naive_utc,
    tracking_table,
)


class Recorded(NamedTuple):
    """An event as a projection sees it: the domain event, its position and its aggregate
    (a tuple: a rebuild makes one per event). Not who issued it: no read model keeps that
    (the trail shows it from the stored event), and a fold that took every event's
    envelope apart spent 7% of its instructions on it."""

    position: int
    event: Any
    aggregate: str  # the event's aggregate id as text, as read models keep it

    @property
    def at(self) -> datetime:
        return naive_utc(self.event.timestamp)


def ev(aggregate: type[Any], name: str) -> type[Any]:
    """An aggregate's event class by name (classes made by `@event("Name")` are invisible to mypy)."""
    cls: type[Any] = getattr(aggregate, name)
    return cls


#: Facts a catch-up keeps between pages; past this many it forgets them (memory stays
#: flat on any log size; a miss falls back to SQL). A rebuild keeps all (see MemoryRows).
CACHE_LIMIT = 50_000


class Rows(Protocol):
    """Where a projection's handlers write and look up rows (see the module's docstring)."""

    def add(self, table: Table, **row: Any) -> None: ...

    def update(self, table: Table, where: dict[str, Any], **values: Any) -> None:
        """UPDATE table SET values WHERE each column of `where` equals its value."""

    def select(self, table: Table, columns: tuple[str, ...], **where: Any) -> list[tuple[Any, ...]]:
        """The `columns` of every row whose `where` columns equal the values given."""
        ...


_INSERTS: dict[tuple[str, str], tuple[str, tuple[str, ...], tuple[Any, ...]]] = {}


def insert_rows(conn: Connection, table: Table, rows: list[Any], ordered: bool = False) -> None:
    """INSERT many rows through the driver in one `executemany`, each value converted by
    SQLAlchemy's own bind processor for the dialect: stored exactly as `table.insert()`
    would store it, without its per-row work (a rebuild writes millions of rows).
    `rows`: dicts by column name, or (`ordered`) lists of every column's value in order."""
    dialect = conn.dialect
    shape = _INSERTS.get((table.name, dialect.name))
    if shape is None:
        quote = dialect.identifier_preparer.quote
        columns = tuple(c.name for c in table.columns)
        mark = "?" if dialect.name == "sqlite" else "%s"
        sql = (
            f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
            f"VALUES ({', '.join(mark for _ in columns)})"
        )
        processors = tuple(bind_processor(table.c[c].type, dialect) for c in columns)
        shape = _INSERTS[(table.name, dialect.name)] = (sql, columns, processors)
    sql, columns, processors = shape
    values = rows if ordered else [list(map(row.get, columns)) for row in rows]
    for i, process in enumerate(processors):
        if process is not None:
            for value in values:
                if value[i] is not None:
                    value[i] = process(value[i])
    Raw(conn).run(sql, values, many=True)


def bind_processor(column_type: Any, dialect: Any) -> Callable[[Any], Any] | None:
    """SQLAlchemy's bind processor for a column type on a dialect; on SQLite, for the
    read models' dates, times and aggregate ids, one that stores the same value in a
    single step (SQLAlchemy's went through a dict and a % format for every date and time,
    and through a TypeDecorator and a memoryview for every id: a tenth of a restore's
    fold). Any value they do not expect goes to SQLAlchemy's own processor."""
    impl = column_type.dialect_impl(dialect)
    slow = impl.bind_processor(dialect)
    if dialect.name != "sqlite" or slow is None:
        return slow
    from sqlalchemy.dialects.sqlite import DATE, DATETIME

    if isinstance(column_type, AggregateId):

        def aggregate_id(value: Any) -> Any:
            return value.bytes if type(value) is UUID else slow(value)

        return aggregate_id
    if isinstance(impl, DATETIME) and _default_format(impl, DATETIME):

        def naive_time(value: Any) -> Any:  # YYYY-MM-DD HH:MM:SS.ffffff, as the format has it
            if type(value) is datetime and value.tzinfo is None:
                return value.isoformat(" ", "microseconds")
            return slow(value)

        return naive_time
    if isinstance(impl, DATE) and _default_format(impl, DATE):

        def day(value: Any) -> Any:  # YYYY-MM-DD
            return value.isoformat() if type(value) is date else slow(value)

        return day
    return slow


def _default_format(impl: Any, cls: type[Any]) -> bool:
    """Whether a SQLite date or time type stores the dialect's default text (a column
    given a format of its own, or a SQLAlchemy that names it otherwise, keeps its own)."""
    default = getattr(cls, "_storage_format", None)
    return default is not None and getattr(impl, "_storage_format", None) == default


class SqlRows:
    """Rows on the live tables, inside one page's transaction. Inserts are buffered and
    written in bulk (`flush`, before any update or select, so both see them)."""

    _updates: ClassVar[dict[tuple[Any, ...], Any]] = {}

    def __init__(self, conn: Connection, tables: tuple[Table, ...]) -> None:
        self.conn = conn
        self.tables = tables
        self._buffer: dict[Table, list[dict[str, Any]]] = {}

    def add(self, table: Table, **row: Any) -> None:
        self._buffer.setdefault(table, []).append(row)

    def flush(self) -> None:
        for table in self.tables:  # in declaration order: parents before children
            rows = self._buffer.pop(table, None)
            if rows:
                insert_rows(self.conn, table, rows)

    def update(self, table: Table, where: dict[str, Any], **values: Any) -> None:
        """By a statement built once per shape: a catch-up runs thousands, and building
        each cost more than running it."""
        self.flush()
        shape = (table.name, tuple(where), tuple(values))
        statement = self._updates.get(shape)
        if statement is None:
            statement = sqlalchemy.update(table).values({k: sqlalchemy.bindparam(f"v_{k}") for k in values})
            for column in where:
                statement = statement.where(table.c[column] == sqlalchemy.bindparam(f"w_{column}"))
            self._updates[shape] = statement
        params = {**{f"v_{k}": v for k, v in values.items()}, **{f"w_{k}": v for k, v in where.items()}}
        self.conn.execute(statement, params)

    def select(self, table: Table, columns: tuple[str, ...], **where: Any) -> list[tuple[Any, ...]]:
        self.flush()
        q = sqlalchemy.select(*(table.c[c] for c in columns))
        for column, value in where.items():
            q = q.where(table.c[column] == value)
        return [tuple(r) for r in self.conn.execute(q)]


class MemoryRows:
    """Rows for a rebuild into fresh tables. The `kept` tables live in memory, keyed by
    primary key, with a hash index on each column an update or select names, and are
    written once by `finish`, sorted by key; the others only grow, and `flush` writes them
    per page. On SQLite, a table not keyed by log position is written per page to a
    temporary heap of this instance's own and moved in sorted by key at the end (`_heap`)."""

    def __init__(self, conn: Connection, tables: tuple[Table, ...], kept: tuple[Table, ...]) -> None:
        self.conn = conn
        self.tables = tables
        self.kept: dict[Table, _Kept] = {t: _Kept(t) for t in kept}
        self._buffer: dict[Table, list[dict[str, Any]]] = {t: [] for t in tables if t not in self.kept}
        sqlite = conn.dialect.name == "sqlite"
        self._heaps = {t: _heap(t) for t in self._buffer if sqlite and not _in_log_order(t)}
        for heap in self._heaps.values():
            conn.execute(CreateTable(heap))

    def add(self, table: Table, **row: Any) -> None:
        kept = self.kept.get(table)
        if kept is not None:
            kept.add(row)
        else:
            self._buffer[table].append(row)

    def update(self, table: Table, where: dict[str, Any], **values: Any) -> None:
        self.kept[table].update(where, values)  # KeyError: a table updated must be declared kept

    def select(self, table: Table, columns: tuple[str, ...], **where: Any) -> list[tuple[Any, ...]]:
        kept = self.kept.get(table)
        if kept is not None:
            at = [kept.at[c] for c in columns]
            return [tuple(row[i] for i in at) for row in kept.find(where)]
        self.flush()  # an append-only table: read back from the fresh table
        self._settle(table)
        return SqlRows(self.conn, self.tables).select(table, columns, **where)

    def flush(self) -> None:
        for table, rows in self._buffer.items():
            if rows:
                insert_rows(self.conn, self._heaps.get(table, table), rows)
                rows.clear()

    def finish(self) -> None:
        """Write the rows still held, each table's in key order (a heap's, or the kept
        ones); then nothing is left in memory."""
        self.flush()
        for table in self.tables:
            self._settle(table)
            kept = self.kept.get(table)
            if kept is not None and kept.rows:
                insert_rows(self.conn, table, kept.in_key_order(), ordered=True)
                kept.rows.clear()

    def _settle(self, table: Table) -> None:
        """Move a heap's rows into their table, in the order of its primary key, and drop
        the heap: the table's later rows (after a select, which never comes in a rebuild
        of today's read models) go straight in."""
        heap = self._heaps.pop(table, None)
        if heap is not None:
            copy_rows(self.conn, table, "temp", heap.name, sorted_by_key=True)
            heap.drop(self.conn)


def _in_log_order(table: Table) -> bool:
    """Whether a fold adds a table's rows in the order of its primary key: only a key
    that is the log position itself (a fold reads the log in order)."""
    return [c.name for c in table.primary_key.columns] == ["position"]


def copy_rows(conn: Connection, table: Table, schema: str, source: str, *, sorted_by_key: bool = False) -> None:
    """Append every row of table `source` in `schema` (same columns) to `table` in the main
    database, in the order of `table`'s key when asked."""
    quote = conn.dialect.identifier_preparer.quote
    columns = ", ".join(quote(c.name) for c in table.columns)
    order = ""
    if sorted_by_key:
        order = " ORDER BY " + ", ".join(quote(c.name) for c in table.primary_key.columns)
    conn.exec_driver_sql(
        f"INSERT INTO main.{quote(table.name)} ({columns}) SELECT {columns} FROM {schema}.{quote(source)}{order}"
    )


#: Numbers the heaps: each MemoryRows has its own, even beside another on one connection.
_HEAPS = itertools.count(1)


def _heap(table: Table) -> Table:
    """A temporary table with `table`'s columns and no key, where a rebuild on SQLite puts
    the rows of a table whose key is not in log order (`_settle` moves them in, sorted).

    A b-tree filled at random places costs more a row than one filled in order: at 1M
    events the trail's 490,082 (key, position) rows went in at 1.79 µs a row in log
    order and 1.08 through a heap; its 584,698 (key, aggregate) rows at 2.61 and 1.85
    (docs/performance.md, tenth round)."""
    return Table(
        f"heap{next(_HEAPS)}_{table.name}",
        sqlalchemy.MetaData(),
        *(sqlalchemy.Column(c.name, c.type) for c in table.columns),
        prefixes=["TEMP"],
    )


class _Kept:
    """One table's rows in memory: by primary key, and by any column asked about. A row
    is a list in column order (a rebuild at a million events keeps hundreds of
    thousands: a list is a third of a dict's size)."""

    def __init__(self, table: Table) -> None:
        self.columns = tuple(c.name for c in table.columns)
        self.at = {c: i for i, c in enumerate(self.columns)}
        self.key = tuple(self.at[c.name] for c in table.primary_key.columns)
        self.rows: dict[Any, list[Any]] = {}
        self.indexes: dict[int, dict[Any, set[Any]]] = {}

    def in_key_order(self) -> list[list[Any]]:
        """The rows sorted by primary key (as `_heap` explains; on PostgreSQL too, where it
        costs little), or as added when the key's values do not compare (a column's
        values all have its declared type in a read model, but a rebuild never fails for
        the order of its rows)."""
        try:
            return [self.rows[pk] for pk in sorted(self.rows)]
        except TypeError:
            return list(self.rows.values())

    def _pk(self, row: list[Any]) -> Any:
        key = self.key
        return row[key[0]] if len(key) == 1 else tuple(row[i] for i in key)

    def add(self, values: dict[str, Any]) -> None:
        row = list(map(values.get, self.columns))
        pk = self._pk(row)
        if pk in self.rows:
            raise sqlalchemy.exc.IntegrityError(f"duplicate key {pk}", None, ValueError("UNIQUE constraint failed"))
        self.rows[pk] = row
        for i, index in self.indexes.items():
            index.setdefault(row[i], set()).add(pk)

    def find(self, where: dict[str, Any]) -> list[list[Any]]:
        at = self.at
        if len(where) == 1:  # most lookups: by the key, or by one indexed column
            ((column, value),) = where.items()
            i = at[column]
            if self.key == (i,):
                row = self.rows.get(value)
                return [] if row is None else [row]
            return [self.rows[pk] for pk in self._index(i).get(value, ())]
        conditions = [(at[c], v) for c, v in where.items()]
        wanted = dict(conditions)
        if all(i in wanted for i in self.key):
            pk = wanted[self.key[0]] if len(self.key) == 1 else tuple(wanted[i] for i in self.key)
            row = self.rows.get(pk)
            candidates: Iterable[list[Any]] = () if row is None else (row,)
        else:
            i, value = conditions[0]
            candidates = [self.rows[pk] for pk in self._index(i).get(value, ())]
        return [row for row in candidates if all(row[i] == v for i, v in conditions)]

    def update(self, where: dict[str, Any], values: dict[str, Any]) -> None:
        changes = [(self.at[c], v) for c, v in values.items()]
        for row in self.find(where):
            pk = self._pk(row)
            for i, value in changes:
                index = self.indexes.get(i)
                if index is not None:
                    index[row[i]].discard(pk)
                    index.setdefault(value, set()).add(pk)
                row[i] = value

    def _index(self, i: int) -> dict[Any, set[Any]]:
        index = self.indexes.get(i)
        if index is None:
            index = self.indexes[i] = {}
            for pk, row in self.rows.items():
                index.setdefault(row[i], set()).add(pk)
        return index


Handler = Callable[[Any, Rows, Recorded], None]


def handles(*event_classes: type[Any]) -> Callable[[Handler], Handler]:
    def mark(func: Handler) -> Handler:
        vars(func)["__handles__"] = tuple(log_topic(c) for c in event_classes)  # read by __init_subclass__
        return func

    return mark


class Projection:
    """One read model: its tables, the ones later events change (`kept`), and a handler
    per event type. `cache` holds facts learnt while applying events (a rebuild keeps
    them all; a catch-up drops them when another process moved the read model)."""

    name: ClassVar[str]
    tables: ClassVar[tuple[Table, ...]]
    kept: ClassVar[tuple[Table, ...]] = ()
    #: Tables an earlier version of this read model had: dropped when it is rebuilt.
    retired: ClassVar[tuple[str, ...]] = ()
    _dispatch: ClassVar[dict[str, str]]

    def __init__(self) -> None:
        self.cache: dict[Any, Any] = {}
        # The position this process last brought the read model to: if another process
        # moved it since, the cache may be stale and is dropped.
        self.position_seen: int | None = None

    def drop_tables(self, conn: Connection) -> None:
        """Drop this read model's tables, and those earlier versions of it had."""
        for table in reversed(self.tables):
            table.drop(conn, checkfirst=True)
        for name in self.retired:
            sqlalchemy.Table(name, sqlalchemy.MetaData()).drop(conn, checkfirst=True)

    def discard(self) -> None:
        """Forget cached facts (the transaction rolled back or the tables were dropped)."""
        self.cache.clear()
        self.position_seen = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._dispatch = {}
        for attr, value in vars(cls).items():
            for topic in getattr(value, "__handles__", ()):
                cls._dispatch[topic] = attr

    @classmethod
    def fingerprint(cls) -> str:
        return fingerprint(cls.tables)

    def handler(self, topic: str) -> Callable[[Rows, Recorded], None] | None:
        """What applies events of `topic` (None: this read model ignores them)."""
        method = self._dispatch.get(topic)
        if method is None:
            return None
        handler: Callable[[Rows, Recorded], None] = getattr(self, method)
        return handler
