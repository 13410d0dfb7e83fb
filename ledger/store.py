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
from typing import Any, Sequence, cast

import orjson
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Mapper, StoredEvent, Transcoder
from eventsourcing.utils import get_topic, resolve_topic
from eventsourcing_sqlalchemy.factory import SQLAlchemyFactory
from eventsourcing_sqlalchemy.recorders import SQLAlchemyApplicationRecorder
from pydantic import BaseModel
from sqlalchemy import BigInteger, Column, Integer, LargeBinary, MetaData, String, Table, event, insert, select
from sqlalchemy.orm import Session

GENESIS = "0" * 64

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

    def _insert_stored_events(
        self, session: Session, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int]:
        # The library inserts first (taking the write lock: EXCLUSIVE table lock on
        # PostgreSQL, the database lock on SQLite), so positions are assigned in commit
        # order and the previous hash read below cannot change under us.
        positions = super()._insert_stored_events(session, stored_events, **kwargs)
        if not positions:
            return positions
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


class LedgerFactory(SQLAlchemyFactory):
    application_recorder_class = LedgerRecorder

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        engine = self.datastore.engine
        if engine is not None and engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")  # concurrent writers wait, not fail
    cursor.execute("PRAGMA synchronous=FULL")  # an acknowledged command survives power loss
    cursor.close()
