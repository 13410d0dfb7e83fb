"""The event store's recorder: eventsourcing's ApplicationRecorder on SQLAlchemy Core,
with the hash chain and command records.

Every write goes through `LedgerRecorder.insert_events`, and inside the same transaction
as the events themselves it links every stored event into the SHA-256 hash chain
(ledger.chain, docs/audit.md), appends it to the Merkle tree (ledger.proofs), and records
the command id with its outcome, so a repeated command id is answered from the record
(`CommandRecord`) and writes nothing. `LedgerFactory` (the application's
PERSISTENCE_MODULE) opens the engine with durable SQLite settings (synchronous=FULL, a
busy timeout so concurrent writers wait instead of failing; the store's WAL mode is set
once by ledger.schema) or a pre-pinged PostgreSQL pool.

The log keeps eventsourcing-sqlalchemy's table layout (ledger.chain.events_table), but
the recorder is our own, as bench.md allows one that passes the library's recorder
contract (tests/test_recorder_contract.py): its hot path is plain SQL on the driver's
connection (ledger.driver), so the library's ORM session, models and datastore, which
every command imported and never used, are no longer loaded (the cold start of a write).
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, NamedTuple, Sequence
from uuid import UUID

import orjson
import sqlalchemy.exc
from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    InfrastructureFactory,
    Notification,
    PersistenceError,
    ProcessRecorder,
    StoredEvent,
    TrackingRecorder,
)
from eventsourcing.persistence import IntegrityError as RecordConflict
from eventsourcing.persistence import OperationalError as StoreOperationalError
from sqlalchemy import Table, func, select
from sqlalchemy.engine import Connection, Engine

from ipledger.ledger import driver
from ipledger.ledger.chain import GENESIS, events_metadata, events_table, ledger_metadata, link_events, stored_uuid
from ipledger.ledger.codec import recorded_time
from ipledger.ledger.driver import PinnedConnection, Raw
from ipledger.ledger.proofs import append_leaves, leaves_of

INSERT_CHUNK = 200  # rows per multi-row INSERT: 800 parameters, well inside SQLite's and PostgreSQL's limits
#: A command decided on a cached head lands after at most this many events that others
#: wrote since (see `_written_since`); more, and it is decided again on the log as it is.
WRITTEN_SINCE_LIMIT = 100

#: A command as the recorder writes its record: (command id, name, outcome bytes, how many
#: of the written events are its own, request digest).
CommandWrite = tuple[str, str, bytes, int, str]


class CommandRecord(NamedTuple):
    """What the store remembers of a command id: enough to answer a repeat, or refuse a reuse."""

    command: str
    outcome: bytes
    digest: str | None


def insert_rows(raw: Raw, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    """A table's rows of one write: one statement for one row (an interactive command),
    else one executemany (a batch)."""
    if len(rows) == 1:
        raw.run(sql, rows[0])
    elif rows:
        raw.run(sql, rows, many=True)


def write_beside_events(
    raw: Raw,
    links: Sequence[tuple[int, str]],
    leaves: Sequence[tuple[int, bytes]],
    records: Sequence[tuple[str, str, bytes, int, str | None]],
    *,
    tree_head: tuple[Any, Any] | None,
    log_was_empty: bool,
) -> None:
    """What is written with every event, in the events' transaction (a command, an import
    batch, a restore's page): its chain link, its leaf in the Merkle tree (ledger.proofs;
    `tree_head` as append_leaves takes it), and the records (command id, name, outcome,
    position of its last event, request digest) of the commands they belong to."""
    mark = raw.mark
    insert_rows(raw, f"INSERT INTO ipledger_chain (position, hash) VALUES ({mark}, {mark})", links)
    append_leaves(raw, tree_head, leaves, log_was_empty=log_was_empty)
    columns = "command_id, command, outcome, position, digest"
    insert_rows(raw, f"INSERT INTO ipledger_commands ({columns}) VALUES ({', '.join([mark] * 5)})", records)


def _written_after(events: str, after: str, end: str, also: str = "") -> str:
    """The aggregate ids (and `also`, more columns) of the events after `after` up to `end`
    (SQL expressions), in log order, one more than WRITTEN_SINCE_LIMIT at most: what
    others wrote since a head."""
    return (
        f"SELECT originator_id{also} FROM {events} WHERE id > {after} AND id <= {end} "
        f"ORDER BY id LIMIT {WRITTEN_SINCE_LIMIT + 1}"
    )


def _moved(ids: Sequence[Any]) -> list[UUID] | None:
    """`_written_after`'s ids as UUIDs, or None if they are more than are worth checking."""
    return None if len(ids) > WRITTEN_SINCE_LIMIT else [stored_uuid(i) for i in ids]


class Preflight(NamedTuple):
    """A command's first read (see `LedgerRecorder.preflight_since`)."""

    record: CommandRecord | None
    head: int | None
    moved: list[UUID] | None  # the aggregates written after the known head; None: unknown
    head_state: bytes | None  # the head event's stored state, when the head moved


class LogMoved(RecordConflict):
    """A write decided on a head the log has left (see `LedgerRecorder._write`). `overlap`:
    another writer's events since touch what the command read (it lost a real race), not
    only a later recorded time (`later`) or more events than are worth checking."""

    def __init__(self, message: str, *, overlap: bool, checked: bool = True, later: bool = False) -> None:
        super().__init__(message)
        self.overlap = overlap
        self.checked = checked  # False: a write that had to follow `after` directly
        self.later = later


class LedgerRecorder(ApplicationRecorder):
    """Application recorder that also writes the hash chain and the command record."""

    last_prev_position = 0
    #: After a write allowed past others' events (`reads`): the aggregates those events
    #: changed, which the writer's cache must drop. None after any other write.
    moved_since: list[UUID] | None = None

    #: The log (ledger.chain): one table, whatever the application is called.
    events_table: Table = events_table
    events_table_name: str = events_table.name

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        # Writers in one process queue here, not on SQLite's busy wait.
        self.write_lock = threading.Lock() if self.sqlite else None
        self._pinned = PinnedConnection()
        self._insert_sqls: dict[tuple[str, int, bool, bool], str] = {}

    def create_table(self) -> None:
        """The log and the tables beside it, for a store made without the migrations (the
        library's recorder contract tests); ledger.schema migrates every real store."""
        events_metadata.create_all(self.engine)
        ledger_metadata.create_all(self.engine)

    def subscribe(self, gt: int | None = None, topics: Sequence[str] = ()) -> Any:
        raise NotImplementedError("ipledger's projections read the log in pages; nothing subscribes")

    @contextmanager
    def one_connection(self) -> Iterator[None]:
        """Let every read and the write inside the block use the process's one connection.

        A command reads and then writes; a pool checkout per statement cost more than the
        statement (on PostgreSQL a ping, a BEGIN and a ROLLBACK round trip each). Reads
        see every committed write: SQLite and PostgreSQL (in autocommit) read outside a
        transaction."""
        if driver.shared() is not None:
            yield
            return
        # If the server went away, the next command (or its first read, see `_one`) gets
        # a new connection.
        with self._pinned.sharing(self.engine):
            yield

    def release(self) -> None:
        """Give back the connection this process kept for its commands (see one_connection)."""
        self._pinned.release()

    @property
    def lock_first_supported(self) -> bool:
        """Whether a command may take the write lock before it reads (`preflight_locked`):
        on PostgreSQL. SQLite's writers already queue on its database lock (busy_timeout)."""
        return self.engine.dialect.name == "postgresql"

    def preflight_locked(self, command_id: str | None, known: int | None) -> Preflight:
        """`preflight_since` under the log's write lock, taken first: the command's
        transaction begins on its kept connection, and what it reads and decides no other
        writer can move until it commits (`insert_events` writes and commits in this
        transaction) or rolls back (`one_connection` ends with a rollback). BEGIN, LOCK
        and the read go in one round trip."""
        raw = driver.shared()
        assert raw is not None and not raw.sqlite, "inside one_connection, on PostgreSQL"
        try:
            row = self._locked_read(raw, command_id, known)
        except sqlalchemy.exc.DBAPIError:
            if not raw.lost or self._pinned.raw is not raw:
                raise
            # The kept connection died between commands (a server restart): nothing was
            # read or written on it yet, so the lock and the read are safe to redo.
            row = self._locked_read(self._pinned.renew(self.engine), command_id, known)
        return self._since_result(row, known)

    def _locked_read(self, raw: Raw, command_id: str | None, known: int | None) -> Any:
        with raw.pipelined():
            raw.begin()
            raw.run(f"LOCK TABLE {self.events_table_name} IN EXCLUSIVE MODE")
            sql, params = self._since_sql(command_id, known)
            return raw.rows(sql.format(raw.mark), params)[0]

    def preflight_since(self, command_id: str | None, known: int | None) -> Preflight:
        """`preflight`, and what was written after `known` (where this process's cache was
        current): the aggregates of those events (None if more than WRITTEN_SINCE_LIMIT,
        or `known` is None) and the head's stored state (its recorded time). With them a
        cache drops only what moved and needs no read for the clock. On PostgreSQL in the
        same statement, so a command still reads once before it writes."""
        if self.sqlite:  # in process: the preflight, then (if the head moved) what moved
            record, head = self.preflight(command_id)
            if known is None or head is None or head == known:
                return Preflight(record, head, None if known is None else [], None)
            with driver.connection(self.engine) as raw:
                ids, head_state = self._since_rows(raw, known, head)
            moved = _moved(ids)
            return Preflight(record, head, moved, None if moved is None else head_state)
        return self._since_result(self._one(*self._since_sql(command_id, known)), known)

    def _since_sql(self, command_id: str | None, known: int | None) -> tuple[str, tuple[Any, ...]]:
        """The preflight statement (`{0}` for the parameter mark), with the aggregates
        written after `known` and the head's state when `known` is given (PostgreSQL)."""
        if known is None:
            return self._preflight_sql(), (command_id,)
        return self._preflight_sql(since=True), (known, known, command_id)

    def _since_result(self, row: Any, known: int | None) -> Preflight:
        record, head = self._preflight_result(row)
        if known is None:
            return Preflight(record, head, None, None)
        moved = _moved(list(row[4] or ()))
        return Preflight(record, head, moved, None if moved is None or row[5] is None else bytes(row[5]))

    def _since_rows(self, raw: Raw, after: int, head: int) -> tuple[list[Any], bytes | None]:
        """The aggregate ids of the events after `after` up to `head` (one more than
        WRITTEN_SINCE_LIMIT at most), and the stored state of the event at `head`."""
        mark = raw.mark
        also = f", CASE WHEN id = {mark} THEN state END"
        rows = raw.rows(_written_after(self.events_table_name, mark, mark, also), (head, after, head))
        last = rows[-1][1] if rows and len(rows) <= WRITTEN_SINCE_LIMIT else None
        return [r[0] for r in rows], None if last is None else bytes(last)

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        """A connection for one read: the command's shared one, or straight from the pool."""
        shared = driver.shared()
        if shared is not None:
            yield shared.sa
        else:
            with self.engine.connect() as conn:
                yield conn

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        """Write events, chain links and command records in one transaction, in plain SQL.

        Every command ends here, so this is the interactive hot path. `commands`
        (keyword) are the records to write, see CommandWrite; `after`, the log position
        the write must follow, and with it `reads` and `at` (see `_write`)."""
        lock = self.write_lock
        if lock is not None:
            lock.acquire()
        try:
            with driver.connection(self.engine) as raw:
                try:
                    with raw.pipelined():
                        raw.begin()
                        positions = self._write(
                            raw,
                            stored_events,
                            kwargs.get("commands") or (),
                            kwargs.get("after"),
                            kwargs.get("reads"),
                            kwargs.get("at"),
                        )
                        raw.commit()
                except BaseException:
                    raw.rollback()
                    raise
                return positions
        except sqlalchemy.exc.IntegrityError as e:
            raise RecordConflict(e) from e
        except sqlalchemy.exc.OperationalError as e:
            raise StoreOperationalError(e) from e
        except sqlalchemy.exc.SQLAlchemyError as e:
            raise PersistenceError(e) from e
        finally:
            if lock is not None:
                lock.release()

    def _write(
        self,
        raw: Raw,
        stored_events: Sequence[StoredEvent],
        commands: Sequence[CommandWrite],
        after: int | None = None,
        reads: Collection[UUID] | None = None,
        at: datetime | None = None,
    ) -> list[int]:
        """Events first (that takes the write lock: SQLite's database lock, or on PostgreSQL
        `LOCK TABLE … IN EXCLUSIVE MODE`), so positions follow commit order and the
        previous hash read below cannot change under us; then chain links and commands.
        `after`: the log position the write must follow directly (0 for an empty log), or
        RecordConflict (nothing written), as if another writer had won a race. With
        `reads` (every aggregate the commands loaded or looked up) and `at` (their latest
        recorded time), the write may also follow others' events written since `after`,
        if those touch none of `reads` and none is recorded later than `at`: the commands
        would have been decided the same on the log as it is (`_written_since`)."""
        if not stored_events:
            return []
        sqlite, mark = raw.sqlite, raw.mark
        table = self.events_table_name
        if not sqlite:
            raw.run(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
        keys = [
            (uid.bytes if sqlite else uid, e.originator_version)
            for e in stored_events
            for uid in (e.originator_id if isinstance(e.originator_id, UUID) else UUID(str(e.originator_id)),)
        ]
        returned: list[Any] = []
        positions: list[int] = []
        # On PostgreSQL the first INSERT also returns what others wrote since `after`, so a
        # write decided on a cached head takes no more round trips (`_written_since`).
        since = after is not None and reads is not None and not sqlite
        for start in range(0, len(stored_events), INSERT_CHUNK):
            chunk = stored_events[start : start + INSERT_CHUNK]
            params: list[Any] = []
            for (oid, version), e in zip(keys[start : start + INSERT_CHUNK], chunk, strict=True):
                params += (oid, version, e.topic, e.state)
            if since and start == 0:
                returned += raw.rows(self._insert_sql(mark, len(chunk), since=True), [*params, after, after])
            elif sqlite:
                # A rowid table numbers new rows max + 1, one after another, in the order
                # given: the positions follow from the last one (RETURNING costs more
                # than the INSERT itself here).
                last = raw.insert(self._insert_sql(mark, len(chunk), returning=False), params)
                positions += range(last - len(chunk) + 1, last + 1)
            else:
                returned += raw.rows(self._insert_sql(mark, len(chunk)), params)
        if not sqlite:
            if all(r[1] == k[0] and r[2] == k[1] for r, k in zip(returned, keys, strict=True)):
                positions = [r[0] for r in returned]  # RETURNING gave the rows in the order given
            else:
                position_of = {(r[1], r[2]): r[0] for r in returned}
                positions = [position_of[k] for k in keys]
            last_link = (returned[0][3], returned[0][4])
        else:
            found = raw.rows("SELECT position, hash FROM ipledger_chain ORDER BY position DESC LIMIT 1")
            last_link = found[0] if found else (None, None)
        # Where the log ended before this write (under the write lock): the Exchange
        # compares it with the head it read first to learn whether anyone wrote between.
        self.last_prev_position, prev = (last_link[0], last_link[1]) if last_link[0] is not None else (0, GENESIS)
        self.moved_since = None
        if after is not None and self.last_prev_position != after:
            if reads is None or at is None:
                raise LogMoved(
                    f"the log moved from {after} to {self.last_prev_position} before this write",
                    overlap=False,
                    checked=False,
                )
            others = (list(returned[0][7]), returned[0][8]) if since else None
            self.moved_since = self._written_since(raw, after, self.last_prev_position, reads, at, others)
        links = link_events(prev, positions, stored_events)
        # Each command's record points at its last event, whose hashed envelope carries the
        # record's digests (verify checks one against the other).
        records, offset = [], 0
        for command_id, name, outcome, count, digest in commands:
            offset += count
            if count:  # a command that decided nothing is not recorded (as in a single write)
                records.append((command_id, name, outcome, max(positions[offset - count : offset]), digest))
        write_beside_events(
            raw,
            links,
            leaves_of(positions, stored_events, links),
            records,
            tree_head=None if sqlite else (returned[0][5], returned[0][6]),
            log_was_empty=self.last_prev_position == 0,
        )
        return positions

    def _written_since(
        self,
        raw: Raw,
        after: int,
        head: int,
        reads: Collection[UUID],
        at: datetime,
        found: tuple[list[Any], Any] | None = None,
    ) -> list[UUID]:
        """The aggregates of the events between `after` and `head` (others' writes, read
        under the write lock), or LogMoved if the commands might have been decided
        otherwise on them: an event of an aggregate they read, or recorded later than they
        were (the recorded time never goes backwards).

        Two writer processes on one log each decide on their own cache, which is current
        only where that process last wrote; before this, every write after the other's
        was decided again, and on PostgreSQL under the lock, so two processes wrote fewer
        commands than one."""
        if head < after:
            raise LogMoved(f"the log ends at {head}, before {after} where this write was decided", overlap=True)
        ids, last = self._since_rows(raw, after, head) if found is None else found
        moved = _moved(ids)
        if moved is None:
            raise LogMoved(f"the log moved from {after} to {head}: too far to check", overlap=False)
        touched = next((m for m in moved if m in reads), None)
        if touched is not None:
            raise LogMoved(f"another writer wrote to {touched} after {after}", overlap=True)
        recorded = recorded_time(last)
        if recorded is not None and recorded > at:
            raise LogMoved(f"another writer recorded a later time after {after}", overlap=False, later=True)
        return moved

    def _insert_sql(self, mark: str, rows: int, returning: bool = True, since: bool = False) -> str:
        key = (mark, rows, returning, since)
        sql = self._insert_sqls.get(key)
        if sql is None:
            sql = self._insert_sqls[key] = self._build_insert_sql(mark, rows, returning, since)
        return sql

    def _build_insert_sql(self, mark: str, rows: int, returning: bool, since: bool = False) -> str:
        """INSERT of `rows` events, returning their positions. The chain's last link and the
        Merkle tree's head come back in the same statement: both are written after the
        events and under the same lock, so they end where the log ended."""
        sql = (
            f"INSERT INTO {self.events_table_name} (originator_id, originator_version, topic, state) VALUES "
            + ",".join([f"({mark},{mark},{mark},{mark})"] * rows)
        )
        if not returning:
            return sql
        sql += (
            " RETURNING id, originator_id, originator_version, "
            "(SELECT position FROM ipledger_chain ORDER BY position DESC LIMIT 1), "
            "(SELECT hash FROM ipledger_chain ORDER BY position DESC LIMIT 1), "
            "(SELECT size FROM ipledger_tree_head WHERE id = 1), (SELECT frontier FROM ipledger_tree_head WHERE id = 1)"
        )
        if since:
            # Others' events after the head the write was decided on (the parameter), up
            # to the chain's end: this statement's own rows are not among them.
            end = "(SELECT position FROM ipledger_chain ORDER BY position DESC LIMIT 1)"
            table = self.events_table_name
            head_state = f"(SELECT state FROM {table} WHERE id = {end} AND id > {mark})"
            sql += f", ARRAY({_written_after(table, mark, end)}), {head_state}"
        return sql

    # Reads: the log by aggregate (every command's loads) and in order (projections).

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
        sqlite = self.sqlite
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
        with driver.connection(self.engine) as raw:
            rows = raw.rows("".join(sql), params)
        return [StoredEvent(uid, r[1], r[2], bytes(r[3])) for r in rows]

    def max_notification_id(self) -> int | None:
        with self._reading() as conn:
            head: int | None = conn.execute(select(func.max(self.events_table.c.id))).scalar()
            return head

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> list[Notification]:
        t = self.events_table
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

    # The command records: a command's first read, and what idempotency and the clock ask.

    def last_state(self) -> bytes | None:
        """The newest event's stored state (the clock reads its recorded time)."""
        head = self.preflight(None)[1]
        return None if head is None else self.state_at(head)

    def preflight(self, command_id: str | None) -> tuple[CommandRecord | None, int | None]:
        """A command's first read, one statement: what is recorded under its id
        (idempotency) and the log head (has anyone else written since this process did?)."""
        return self._preflight_result(self._one(self._preflight_sql(), (command_id,)))

    def _preflight_sql(self, since: bool = False) -> str:
        """The preflight (`{0}` for the parameter mark); `since`: also the aggregates of the
        events after a known head (first parameter) and the head's state if it moved
        (second), as `preflight_since` reads them on PostgreSQL."""
        table = self.events_table_name
        moved = (
            f", ARRAY({_written_after(table, '{0}', 'h.head')}), "
            f"(SELECT state FROM {table} WHERE id = h.head AND h.head <> {{0}})"
        )
        return (
            f"SELECT c.command, c.outcome, c.digest, h.head{moved if since else ''} FROM "
            f"(SELECT max(id) AS head FROM {table}) h "
            "LEFT JOIN ipledger_commands c ON c.command_id = {0}"
        )

    @staticmethod
    def _preflight_result(row: Any) -> tuple[CommandRecord | None, int | None]:
        record = None if row[1] is None else CommandRecord(row[0], bytes(row[1]), row[2])
        return record, row[3]

    def command_records(self, command_ids: list[str]) -> dict[str, CommandRecord]:
        """The records of these command ids (an import's batch asks for all its lines at once)."""
        if not command_ids:
            return {}
        # The ids travel as one parameter (an array; on SQLite a JSON array): an IN list of
        # 5,000 bound parameters was compiled by SQLAlchemy and parsed by psycopg for every
        # batch, 5% of an import on PostgreSQL.
        columns = "command_id, command, outcome, digest FROM ipledger_commands WHERE command_id"
        with driver.connection(self.engine) as raw:
            ids: Any
            if raw.sqlite:
                sql, ids = f"SELECT {columns} IN (SELECT value FROM json_each(?))", orjson.dumps(command_ids).decode()
            else:
                sql, ids = f"SELECT {columns} = ANY(%s)", list(command_ids)
            rows = raw.rows(sql, (ids,))
        return {r[0]: CommandRecord(r[1], bytes(r[2]), r[3]) for r in rows}

    def command_state(self, command_id: str) -> bytes | None:
        """The stored state of a recorded command's last event (its recorded time is there)."""
        row = self._one(
            f"SELECT (SELECT e.state FROM ipledger_commands c JOIN {self.events_table_name} e ON e.id = c.position "
            "WHERE c.command_id = {0})",
            (command_id,),
        )
        return None if row[0] is None else bytes(row[0])

    def state_at(self, position: int) -> bytes | None:
        """The stored state of the event at a position (the clock reads the head's time)."""
        row = self._one(f"SELECT (SELECT state FROM {self.events_table_name} WHERE id = {{0}})", (position,))
        return None if row[0] is None else bytes(row[0])

    def _one(self, sql: str, params: tuple[Any, ...]) -> Any:
        """One row of a read with `{0}` for the parameter mark, on the command's connection."""
        try:
            with driver.connection(self.engine) as raw:
                return raw.rows(sql.format(raw.mark), params)[0]
        except sqlalchemy.exc.DBAPIError:
            pinned = self._pinned.raw
            if pinned is None or not pinned.lost or driver.shared() is not pinned:
                raise
            # The kept connection died (a server restart between commands): a command's
            # reads come before its write, so they are safe to redo on a new one.
            raw = self._pinned.renew(self.engine)
            return raw.rows(sql.format(raw.mark), params)[0]


class LedgerFactory(InfrastructureFactory[TrackingRecorder]):
    """The persistence module (PERSISTENCE_MODULE): one engine on the store named by
    SQLALCHEMY_URL, with the driver's connection settings, and LedgerRecorder on it.
    ipledger keeps no snapshots and runs no process applications: the other recorders
    the library can ask a factory for are refused."""

    SQLALCHEMY_URL = "SQLALCHEMY_URL"

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        # The store the application names, never a prefixed process variable
        # (IPLEDGER_SQLALCHEMY_URL): every process of one command (its prover, an import's
        # writer) opens the application's URL, and must find the same store.
        url = dict.get(self.env, self.SQLALCHEMY_URL)
        if not url:
            raise ValueError(f"{self.SQLALCHEMY_URL} names no store")
        self.engine = driver.store_engine(url)

    def application_recorder(self) -> ApplicationRecorder:
        return LedgerRecorder(self.engine)

    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:
        raise NotImplementedError("ipledger keeps no snapshots (IS_SNAPSHOTTING_ENABLED)")

    def tracking_recorder(self, tracking_recorder_class: type[TrackingRecorder] | None = None) -> TrackingRecorder:
        raise NotImplementedError("ipledger's projections track their own positions (projections/runner.py)")

    def process_recorder(self) -> ProcessRecorder:
        raise NotImplementedError("ipledger runs no process applications")

    def close(self) -> None:
        self.engine.dispose()
