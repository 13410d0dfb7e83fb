"""Runs projections: catch up to the log head before every query; drop and rebuild.

Each page of events is applied in one transaction that first locks the projection's
tracking row, so two processes catching up at once never apply an event twice, and
rows and position always move together.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import orjson
from eventsourcing.persistence import ApplicationRecorder
from sqlalchemy import create_engine, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from ledger.store import decode_event
from projections.base import Projection, Recorded, tracking_table
from projections.readmodels import PROJECTIONS

PAGE = 1000

Progress = Callable[[int, int], None]


class ReadModels:
    """The read side of one store: its projections and their tracking positions."""

    def __init__(self, recorder: ApplicationRecorder, engine: Engine) -> None:
        self.recorder = recorder
        self.engine = engine
        self.projections: dict[str, Projection] = {cls.name: cls() for cls in PROJECTIONS}
        tracking_table.create(engine, checkfirst=True)
        with engine.connect() as conn:
            stored = dict(conn.execute(select(tracking_table.c.name, tracking_table.c.fingerprint)).tuples().all())
        for name, projection in self.projections.items():
            if stored.get(name) != projection.fingerprint():
                self._reset(projection, insert_row=name not in stored)

    def head(self) -> int:
        return self.recorder.max_notification_id() or 0

    def names(self, names: Iterable[str] | None = None) -> list[str]:
        chosen = list(names) if names else list(self.projections)
        for name in chosen:
            if name not in self.projections:
                raise KeyError(name)
        return chosen

    def catch_up(self, names: Iterable[str] | None = None, progress: Progress | None = None) -> None:
        for name in self.names(names):
            self._catch_up(self.projections[name], progress)

    def _catch_up(self, projection: Projection, progress: Progress | None, stop: int | None = None) -> None:
        head = self.head() if stop is None else stop
        if self.position(projection.name) >= head:
            return  # already current: no write, so a read-only store still answers
        while True:
            with self.engine.begin() as conn:
                position = self._lock(conn, projection.name)
                if position >= head:
                    return
                notes = self.recorder.select_notifications(
                    start=position + 1, limit=PAGE, stop=head, topics=projection.topics()
                )
                for note in notes:
                    state: dict[str, Any] = orjson.loads(note.state)
                    meta = state.get("meta") or {}
                    event = decode_event(note.topic, state, note.originator_id, note.originator_version)
                    projection.apply(
                        conn,
                        note.topic,
                        Recorded(note.id, event, meta.get("actor", ""), meta.get("command_id", "")),
                    )
                position = notes[-1].id if len(notes) == PAGE else head
                conn.execute(
                    update(tracking_table).where(tracking_table.c.name == projection.name).values(position=position)
                )
            if progress is not None:
                progress(position, head)

    def position(self, name: str) -> int:
        with self.engine.connect() as conn:
            value = conn.execute(select(tracking_table.c.position).where(tracking_table.c.name == name)).scalar()
        return int(value or 0)

    @staticmethod
    def _lock(conn: Connection, name: str) -> int:
        # A no-op update takes the write lock (SQLite) or the row lock (PostgreSQL)
        # before the position is read, so concurrent runners serialise here.
        conn.execute(
            update(tracking_table).where(tracking_table.c.name == name).values(position=tracking_table.c.position)
        )
        return int(conn.execute(select(tracking_table.c.position).where(tracking_table.c.name == name)).scalar_one())

    def rebuild(self, names: Iterable[str] | None = None, progress: Progress | None = None) -> None:
        """Drop the read models' tables and replay the whole log into them."""
        for name in self.names(names):
            projection = self.projections[name]
            self._reset(projection)
            self._catch_up(projection, progress)

    def _reset(self, projection: Projection, insert_row: bool = False) -> None:
        """Drop and recreate a projection's tables at position 0, in one transaction."""
        with self.engine.begin() as conn:
            if insert_row:
                conn.execute(insert(tracking_table).values(name=projection.name, position=0, fingerprint=""))
            self._lock(conn, projection.name)
            for table in reversed(projection.tables):
                table.drop(conn, checkfirst=True)
            for table in projection.tables:
                table.create(conn)
            conn.execute(
                update(tracking_table)
                .where(tracking_table.c.name == projection.name)
                .values(position=0, fingerprint=projection.fingerprint())
            )

    def status(self) -> list[dict[str, Any]]:
        head = self.head()
        with self.engine.connect() as conn:
            rows = dict(conn.execute(select(tracking_table.c.name, tracking_table.c.position)).tuples().all())
        return [
            {"name": name, "position": int(rows.get(name, 0)), "head": head, "behind": head - int(rows.get(name, 0))}
            for name in self.projections
        ]

    def reconcile(self) -> list[str]:
        """Compare every read model with a fresh replay of the log in memory.

        Returns the names of projections whose tables differ (empty when all agree).
        """
        memory = create_engine("sqlite://", poolclass=StaticPool)
        fresh = ReadModels(self.recorder, memory)
        head = self.head()
        for runner in (self, fresh):
            for projection in runner.projections.values():
                runner._catch_up(projection, None, stop=head)
        differ = []
        with self.engine.connect() as live, memory.connect() as replay:
            for name, projection in self.projections.items():
                for table in projection.tables:
                    q = select(table).order_by(*table.primary_key.columns)
                    if [tuple(r) for r in live.execute(q)] != [tuple(r) for r in replay.execute(q)]:
                        differ.append(f"{name} ({table.name})")
                        break
        memory.dispose()
        return differ
