"""Runs projections: catch up to the log head before every query; drop and rebuild.

Each page of events is applied in one transaction that first locks the projection's
tracking row, so two processes catching up at once never apply an event twice, and
rows and position always move together.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import orjson
from eventsourcing.persistence import ApplicationRecorder
from sqlalchemy import create_engine, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from ipledger.domain.errors import NotFound
from ipledger.ledger.codec import Envelope, decode_event
from ipledger.projections.base import Projection, Recorded, tracking_table
from ipledger.projections.readmodels import PROJECTIONS

PAGE = 1000

Progress = Callable[[int, int], None]


class ReadModels:
    """The read side of one store: its projections and their tracking positions."""

    def __init__(self, recorder: ApplicationRecorder, engine: Engine) -> None:
        self.recorder = recorder
        self.engine = engine
        self.projections: dict[str, Projection] = {cls.name: cls() for cls in PROJECTIONS}
        with engine.connect() as conn:
            stored = dict(conn.execute(select(tracking_table.c.name, tracking_table.c.fingerprint)).tuples().all())
        for name, projection in self.projections.items():
            if stored.get(name) != projection.fingerprint():
                self._reset(projection, insert_row=name not in stored, only_if_stale=True)

    def head(self) -> int:
        return self.recorder.max_notification_id() or 0

    def names(self, names: Iterable[str] | None = None) -> list[str]:
        chosen = list(names) if names else list(self.projections)
        for name in chosen:
            if name not in self.projections:
                raise NotFound(f"name: no projection {name} ({', '.join(self.projections)})")
        return chosen

    def catch_up(self, names: Iterable[str] | None = None, progress: Progress | None = None) -> None:
        self._catch_up([self.projections[n] for n in self.names(names)], progress)

    def _catch_up(self, group: list[Projection], progress: Progress | None, stop: int | None = None) -> None:
        """Bring projections to the head in one pass over the log: each event is read and
        decoded once and offered to every projection that has not yet applied it."""
        head = self.head() if stop is None else stop
        behind = [p for p in group if self.position(p.name) < head]
        if not behind:
            return  # already current: no write, so a read-only store still answers
        wanted = {p.name: set(p.topics()) for p in behind}
        while True:
            try:
                reached = self._catch_up_page(behind, wanted, head)
            except BaseException:
                for p in behind:
                    p.discard()  # rows buffered by a rolled-back page must not leak into the next
                raise
            if reached is None:
                return
            if progress is not None:
                progress(reached, head)

    def _catch_up_page(self, behind: list[Projection], wanted: dict[str, set[str]], head: int) -> int | None:
        """Apply one page of the log to the projections behind; None when all are current."""
        with self.engine.begin() as conn:
            positions = {p.name: self._lock(conn, p.name) for p in behind}
            for p in behind:
                if p.position_seen != positions[p.name]:
                    p.cache.clear()  # another process applied events: what we cached may be stale
            active = [p for p in behind if positions[p.name] < head]
            if not active:
                return None
            topics: tuple[str, ...] = ()
            if all(wanted[p.name] for p in active):
                topics = tuple(sorted(set().union(*(wanted[p.name] for p in active))))
            start = min(positions[p.name] for p in active)
            notes = self.recorder.select_notifications(start=start + 1, limit=PAGE, stop=head, topics=topics)
            for note in notes:
                takers = [
                    p
                    for p in active
                    if positions[p.name] < note.id and (not wanted[p.name] or note.topic in wanted[p.name])
                ]
                if not takers:
                    continue
                envelope, payload = Envelope.from_state(orjson.loads(note.state))
                event = decode_event(note.topic, payload, note.originator_id, note.originator_version)
                recorded = Recorded(note.id, event, envelope.actor or "", envelope.command_id or "")
                for p in takers:
                    p.apply(conn, note.topic, recorded)
            for p in active:
                p.flush(conn)
            reached = notes[-1].id if len(notes) == PAGE else head
            for p in active:
                conn.execute(
                    update(tracking_table)
                    .where(tracking_table.c.name == p.name)
                    .values(position=max(reached, positions[p.name]))
                )
                p.position_seen = max(reached, positions[p.name])
        return reached

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
        chosen = [self.projections[n] for n in self.names(names)]
        for projection in chosen:
            self._reset(projection)
        self._catch_up(chosen, progress)

    def _reset(self, projection: Projection, insert_row: bool = False, only_if_stale: bool = False) -> None:
        """Drop and recreate a projection's tables at position 0, in one transaction.

        Under the tracking row's lock, so two processes opening a store at once do it
        once (`only_if_stale`: skip when the other process already did)."""
        projection.discard()
        if insert_row:
            with self.engine.begin() as conn:
                dialect_insert = postgresql_insert if conn.dialect.name == "postgresql" else sqlite_insert
                conn.execute(
                    dialect_insert(tracking_table)
                    .values(name=projection.name, position=0, fingerprint="")
                    .on_conflict_do_nothing()
                )
        with self.engine.begin() as conn:
            self._lock(conn, projection.name)
            if only_if_stale:
                current = conn.execute(
                    select(tracking_table.c.fingerprint).where(tracking_table.c.name == projection.name)
                ).scalar()
                if current == projection.fingerprint():
                    return
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
        tracking_table.create(memory)
        fresh = ReadModels(self.recorder, memory)
        head = self.head()
        for runner in (self, fresh):
            runner._catch_up(list(runner.projections.values()), None, stop=head)
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
