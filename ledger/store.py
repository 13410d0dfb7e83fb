"""The event store: eventsourcing-sqlalchemy, with pydantic payloads and a hash chain.

Three things are added to the library's SQLAlchemy persistence, all inside the same
transaction as the events themselves:

* `PydanticMapper` stores each event's pydantic payload as JSON, plus an envelope
  `meta` (actor, command id) that says who issued the command; it upcasts old
  versions on the way out (`class_version`, `upcast_vN_vN+1`, as the library does).
* `LedgerRecorder` links every stored event into a SHA-256 hash chain (docs/audit.md)
  and records the command id with its outcome, so a repeated command id is answered
  from the record and writes nothing.
* `LedgerFactory` turns on durable SQLite settings (WAL, synchronous=FULL, a busy
  timeout so concurrent writers wait instead of failing).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Sequence, cast
from uuid import UUID

import orjson
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Mapper, Notification, StoredEvent, Transcoder
from eventsourcing.utils import get_topic, resolve_topic
from eventsourcing_sqlalchemy.factory import SQLAlchemyFactory
from eventsourcing_sqlalchemy.recorders import SQLAlchemyApplicationRecorder
from pydantic import BaseModel
from sqlalchemy import BigInteger, Column, Integer, LargeBinary, MetaData, String, Table, event, func, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from ledger.config import sqlite_pragmas

GENESIS = "0" * 64

#: The connection a command's reads share (see LedgerRecorder.one_connection).
_shared: ContextVar[Any] = ContextVar("ipledger_shared_connection", default=None)

ledger_metadata = MetaData()

chain_table = Table(
    "ipledger_chain",
    ledger_metadata,
    Column("position", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=False),
    Column("hash", String(64), nullable=False),
)

commands_table = Table(
    "ipledger_commands",
    ledger_metadata,
    Column("command_id", String(200), primary_key=True),
    Column("command", String(64), nullable=False),
    Column("outcome", LargeBinary(), nullable=False),
    Column("position", BigInteger().with_variant(Integer(), "sqlite"), nullable=False),
)


def chain_hash(prev: str, position: int, originator_id: str, version: int, topic: str, state: bytes) -> str:
    """SHA-256 over the previous hash and the event's stored content (docs/audit.md)."""
    h = hashlib.sha256()
    h.update(f"{prev}\n{position}\n{originator_id}\n{version}\n{topic}\n".encode())
    h.update(state)
    return h.hexdigest()


class OrjsonTranscoder(Transcoder):
    def encode(self, obj: Any) -> bytes:
        return orjson.dumps(obj)

    def decode(self, data: bytes) -> Any:
        return orjson.loads(data)


class PydanticMapper(Mapper[Any]):
    """Maps pydantic domain events to stored events and back (with upcasting)."""

    meta: dict[str, str] | None = None

    def to_stored_event(self, domain_event: DomainEventProtocol[Any]) -> StoredEvent:
        state = cast(BaseModel, domain_event).model_dump(mode="json")
        state.pop("originator_id")
        state.pop("originator_version")
        class_version = getattr(type(domain_event), "class_version", 1)
        if class_version > 1:
            state["class_version"] = class_version
        if self.meta is not None:
            state["meta"] = self.meta
        return StoredEvent(
            originator_id=domain_event.originator_id,
            originator_version=domain_event.originator_version,
            topic=get_topic(type(domain_event)),
            state=self.transcoder.encode(state),
        )

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[Any]:
        state: dict[str, Any] = self.transcoder.decode(stored_event.state)
        return decode_event(stored_event.topic, state, stored_event.originator_id, stored_event.originator_version)


def decode_event(topic: str, state: dict[str, Any], originator_id: Any, version: int) -> Any:
    cls = resolve_topic(topic)
    state.pop("meta", None)
    class_version = getattr(cls, "class_version", 1)
    from_version = state.pop("class_version", 1)
    while from_version < class_version:
        getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(state)
        from_version += 1
    state["originator_id"] = originator_id
    state["originator_version"] = version
    return cls.model_validate(state)


class LedgerRecorder(SQLAlchemyApplicationRecorder):
    """Application recorder that also writes the hash chain and the command record."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tables.extend(ledger_metadata.sorted_tables)

    @contextmanager
    def one_connection(self) -> Iterator[None]:
        """Let every read inside the block share one pooled connection.

        A command reads several aggregates before it writes; on PostgreSQL each separate
        checkout costs a ping, a BEGIN and a ROLLBACK round trip, so a command's reads
        share one connection (the write still goes through the library's transaction)."""
        engine = self.datastore.engine
        if _shared.get() is not None or self.datastore.access_lock is not None or not isinstance(engine, Engine):
            yield
            return
        with engine.connect() as conn:
            token = _shared.set(conn)
            try:
                yield
            finally:
                _shared.reset(token)

    @contextmanager
    def _reading(self) -> Iterator[Any]:
        """A connection for one read: the command's shared one, or straight from the pool
        (no ORM session); an in-memory SQLite store goes through the library's lock."""
        shared = _shared.get()
        if shared is not None:
            yield shared
        elif self.datastore.access_lock is not None or self.datastore.scoped_session is not None:
            with self.transaction(commit=False) as session:
                yield session
        else:
            engine = self.datastore.engine
            assert isinstance(engine, Engine)
            with engine.connect() as conn:
                yield conn

    @property
    def _events(self) -> Table:
        return self.events_record_cls.__table__  # type: ignore[no-any-return]

    def _insert_stored_events(
        self, session: Session, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int]:
        """Insert with one Core executemany (RETURNING ids), then chain and command records.

        The events go in first, which takes the write lock (the database lock on SQLite;
        on PostgreSQL the library's `LOCK TABLE … IN EXCLUSIVE MODE`), so positions are
        assigned in commit order and the previous hash read below cannot change under us.
        """
        if not stored_events:
            return []
        self._lock_table(session)
        table = self._events
        result = session.execute(
            insert(table).returning(table.c.id, sort_by_parameter_order=True),
            [
                {
                    "originator_id": e.originator_id,
                    "originator_version": e.originator_version,
                    "topic": e.topic,
                    "state": e.state,
                }
                for e in stored_events
            ],
        )
        positions = [row[0] for row in result]
        self._notify_channel(session)
        prev = session.execute(
            select(chain_table.c.hash)
            .where(chain_table.c.position < positions[0])
            .order_by(chain_table.c.position.desc())
            .limit(1)
        ).scalar()
        prev = prev or GENESIS
        rows = []
        for position, stored in zip(positions, stored_events, strict=True):
            prev = chain_hash(
                prev, position, str(stored.originator_id), stored.originator_version, stored.topic, stored.state
            )
            rows.append({"position": position, "hash": prev})
        session.execute(insert(chain_table), rows)
        # Each command's record points at its last event: (command id, name, outcome, event count).
        records, offset = [], 0
        for command_id, name, outcome, count in kwargs.get("commands") or ():
            offset += count
            records.append(
                {
                    "command_id": command_id,
                    "command": name,
                    "outcome": orjson.dumps(outcome),
                    "position": positions[offset - 1],
                }
            )
        if records:
            session.execute(insert(commands_table), records)
        return positions

    # The library's reads go through ORM queries; these Core statements return the same
    # values several times faster (the recorder contract tests in tests/ hold them to it).

    def select_events(
        self,
        originator_id: UUID | str,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> list[StoredEvent]:
        """One aggregate's events, by a prepared SQL string: loading aggregates is the hot
        path of every command, and building a SQLAlchemy statement each time cost more
        than the query."""
        engine = self.datastore.engine
        if self.datastore.access_lock is not None or not isinstance(engine, Engine):
            return self._select_events_core(originator_id, gt, lte, desc, limit)
        sqlite = engine.dialect.name == "sqlite"
        mark = "?" if sqlite else "%s"
        uid = originator_id if isinstance(originator_id, UUID) else UUID(str(originator_id))
        sql = [
            f"SELECT originator_id, originator_version, topic, state FROM {self.events_table_name} "
            f"WHERE originator_id = {mark}"
        ]
        params: list[Any] = [uid.bytes if sqlite else uid]
        if gt is not None:
            sql.append(f" AND originator_version > {mark}")
            params.append(gt)
        if lte is not None:
            sql.append(f" AND originator_version <= {mark}")
            params.append(lte)
        sql.append(" ORDER BY originator_version DESC" if desc else " ORDER BY originator_version")
        if limit is not None:
            sql.append(f" LIMIT {int(limit)}")
        with self._reading() as conn:
            rows = conn.exec_driver_sql("".join(sql), tuple(params)).all()
        return [StoredEvent(uid, r[1], r[2], bytes(r[3])) for r in rows]

    def _select_events_core(
        self,
        originator_id: UUID | str,
        gt: int | None,
        lte: int | None,
        desc: bool,
        limit: int | None,
    ) -> list[StoredEvent]:
        t = self._events
        q = select(t.c.originator_id, t.c.originator_version, t.c.topic, t.c.state).where(
            t.c.originator_id == originator_id
        )
        if gt is not None:
            q = q.where(t.c.originator_version > gt)
        if lte is not None:
            q = q.where(t.c.originator_version <= lte)
        q = q.order_by(t.c.originator_version.desc() if desc else t.c.originator_version)
        if limit is not None:
            q = q.limit(limit)
        with self._reading() as conn:
            return [StoredEvent(r[0], r[1], r[2], bytes(r[3])) for r in conn.execute(q)]

    def max_notification_id(self) -> int | None:
        with self._reading() as conn:
            return conn.execute(select(func.max(self._events.c.id))).scalar()  # type: ignore[no-any-return]

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> list[Notification]:
        t = self._events
        q = select(t.c.id, t.c.originator_id, t.c.originator_version, t.c.topic, t.c.state)
        if start is not None:
            q = q.where(t.c.id >= start if inclusive_of_start else t.c.id > start)
        if stop is not None:
            q = q.where(t.c.id <= stop)
        if topics:
            q = q.where(t.c.topic.in_(topics))
        q = q.order_by(t.c.id).limit(limit)
        with self._reading() as conn:
            return [
                Notification(id=r[0], originator_id=r[1], originator_version=r[2], topic=r[3], state=bytes(r[4]))
                for r in conn.execute(q)
            ]

    def last_state(self) -> bytes | None:
        """The newest event's stored state (the clock reads its recorded time)."""
        t = self._events
        with self._reading() as conn:
            row = conn.execute(select(t.c.state).order_by(t.c.id.desc()).limit(1)).first()
        return None if row is None else bytes(row[0])


class LedgerFactory(SQLAlchemyFactory):
    application_recorder_class = LedgerRecorder

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        engine = self.datastore.engine
        if isinstance(engine, Engine) and engine.dialect.name == "postgresql":
            # Test pooled connections before use: a server restarted between two commands
            # costs a reconnect, not a failed command.
            url = engine.url
            engine.dispose()
            self.datastore = self.datastore_class(url=url.render_as_string(hide_password=False), pool_pre_ping=True)
        elif engine is not None and engine.dialect.name == "sqlite":
            event.listen(engine, "connect", sqlite_pragmas)
