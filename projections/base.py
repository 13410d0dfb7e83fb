"""Projection machinery: read models in SQL tables that track their log position.

A projection is one class per read model. It declares its tables and, with
`@handles(EventClass)`, which events it applies. The runner feeds it every stored
event after its tracking position and writes the rows and the new position in one
transaction, so each event is applied exactly once; any read model can be dropped
and rebuilt from the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, ClassVar

import sqlalchemy
from sqlalchemy import Table
from sqlalchemy.engine import Connection

from ipledger.ledger.codec import log_topic
from ipledger.projections.tables import POSITION, fingerprint, metadata, naive_utc, tracking_table  # noqa: F401


@dataclass(frozen=True)
class Recorded:
    """An event as a projection sees it: the domain event plus where and by whom."""

    position: int
    event: Any
    actor: str
    command_id: str

    @property
    def at(self) -> datetime:
        return naive_utc(self.event.timestamp)


def ev(aggregate: type[Any], name: str) -> type[Any]:
    """An aggregate's event class by name (classes made by `@event("Name")` are invisible to mypy)."""
    cls: type[Any] = getattr(aggregate, name)
    return cls


CACHE_LIMIT = 50_000

Handler = Callable[[Any, Connection, Recorded], None]


def handles(*event_classes: type[Any]) -> Callable[[Handler], Handler]:
    def mark(func: Handler) -> Handler:
        vars(func)["__handles__"] = tuple(log_topic(c) for c in event_classes)  # read by __init_subclass__
        return func

    return mark


class Projection:
    """One read model. Inserts may be buffered (`add`) and are written in bulk by
    `flush`, which the runner calls before it records the new position; a handler that
    updates or reads rows calls `flush` first."""

    name: ClassVar[str]
    tables: ClassVar[tuple[Table, ...]]
    _dispatch: ClassVar[dict[str, str]]

    def __init__(self) -> None:
        self._buffer: dict[Table, list[dict[str, Any]]] = {}
        self.cache: dict[Any, Any] = {}  # what this process learnt while applying events
        # The position this process last brought the read model to: if another process
        # moved it since, the cache may be stale and is dropped.
        self.position_seen: int | None = None

    def add(self, table: Table, **row: Any) -> None:
        self._buffer.setdefault(table, []).append(row)

    def flush(self, conn: Connection) -> None:
        for table in self.tables:  # in declaration order: parents before children
            rows = self._buffer.pop(table, None)
            if rows:
                conn.execute(table.insert(), rows)
        if len(self.cache) > CACHE_LIMIT:
            self.cache.clear()  # memory stays flat on any log size; misses fall back to SQL

    _updates: ClassVar[dict[tuple[Any, ...], Any]] = {}

    def update(self, conn: Connection, table: Table, where: dict[str, Any], **values: Any) -> None:
        """UPDATE table SET values WHERE columns equal `where`, by a statement built once
        per shape: a rebuild runs thousands, and building each cost more than running it.
        Buffered rows are written first, so the update sees every row added before it."""
        self.flush(conn)
        shape = (table.name, tuple(where), tuple(values))
        statement = self._updates.get(shape)
        if statement is None:
            statement = sqlalchemy.update(table).values({k: sqlalchemy.bindparam(f"v_{k}") for k in values})
            for column in where:
                statement = statement.where(table.c[column] == sqlalchemy.bindparam(f"w_{column}"))
            self._updates[shape] = statement
        conn.execute(statement, {**{f"v_{k}": v for k, v in values.items()}, **{f"w_{k}": v for k, v in where.items()}})

    def discard(self) -> None:
        """Forget buffered rows and cached facts (the transaction rolled back or the
        tables were dropped)."""
        self._buffer.clear()
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

    @classmethod
    def topics(cls) -> tuple[str, ...]:
        """Topics to read from the log; empty means every event."""
        return tuple(cls._dispatch)

    def apply(self, conn: Connection, topic: str, recorded: Recorded) -> None:
        method = self._dispatch.get(topic)
        if method is not None:
            getattr(self, method)(conn, recorded)
