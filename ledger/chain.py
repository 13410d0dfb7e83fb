"""The hash chain and what it vouches for: linking, digests, export and verification.

Every stored event is linked into a SHA-256 chain in the same transaction that stores
it (`link_events`, called by the recorder); the command records (idempotency) live beside the
chain and are vouched for by the envelope of each command's last event. The canonical
serialisation that the chain hashes is `chain_hash`, documented in docs/audit.md, so an
auditor can recompute it without ipledger.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple
from uuid import UUID

import orjson
from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, MetaData, String, Table, Text, func, select
from sqlalchemy.engine import Connection, Engine

from ipledger.domain.errors import IntegrityError, InvalidInput
from ipledger.ledger.codec import Envelope
from ipledger.ledger.driver import Raw, passing_cache
from ipledger.ledger.uuidtype import UUIDType

if TYPE_CHECKING:
    from eventsourcing.persistence import StoredEvent

    from ipledger.ledger.recorder import LedgerRecorder

GENESIS = "0" * 64
PAGE = 2000

#: A log position (and any count of events): 64 bits, SQLite's INTEGER (its rowid).
POSITION = BigInteger().with_variant(Integer(), "sqlite")

#: The log: the layout of eventsourcing-sqlalchemy's stored events, as migration 0001
#: creates it and ledger.recorder reads and writes it.
events_metadata = MetaData()
events_table = Table(
    "ipledger_events",
    events_metadata,
    Column("id", POSITION, primary_key=True, autoincrement=True),
    Column("originator_id", UUIDType(), nullable=False),
    Column("originator_version", POSITION, nullable=False),
    Column("topic", Text(), nullable=False),
    Column("state", LargeBinary(), nullable=False),
    Index("ipledger_events_aggregate_idx", "originator_id", "originator_version", unique=True),
)

#: The tables ipledger adds beside the events table (created by migrations).
ledger_metadata = MetaData()

chain_table = Table(
    "ipledger_chain",
    ledger_metadata,
    Column("position", POSITION, primary_key=True, autoincrement=False),
    Column("hash", String(64), nullable=False),
)

commands_table = Table(
    "ipledger_commands",
    ledger_metadata,
    Column("command_id", String(200), primary_key=True),
    Column("command", String(64), nullable=False),
    Column("outcome", LargeBinary(), nullable=False),
    Column("position", POSITION, nullable=False),
    # sha256 of (command, canonical args, actor): a reused id for another request is refused.
    Column("digest", String(64), nullable=True),
    # A proof walks the records in log order beside the log (CommandRecords).
    Index("ipledger_commands_position_idx", "position"),
)


def request_digest(command: str, args: dict[str, Any], actor: str) -> str:
    """One request, one digest: the command's name, its parsed arguments (canonical JSON,
    keys sorted) and the actor. The time it was issued is not part of it: a retry later
    is the same request."""
    body = orjson.dumps({"command": command, "args": args, "actor": actor}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(body).hexdigest()


def outcome_digest(outcome: bytes) -> str:
    """The outcome bytes a command returned, as its last event's envelope records them."""
    return hashlib.sha256(outcome).hexdigest()


def restored_outcome(outcome_sha256: str) -> bytes:
    """What a restored command record keeps for an outcome the export does not hold
    (ledger/restore.py): a note of the digest the log's stamp records."""
    return orjson.dumps({"restored": True, "outcome_sha256": outcome_sha256})


def outcome_matches(outcome: bytes, expected_sha256: str) -> bool:
    """The record's outcome hashes to the stamp's digest, or is a restore's note of it."""
    return outcome_digest(outcome) == expected_sha256 or outcome == restored_outcome(expected_sha256)


def chain_hash(prev: str, position: int, originator_id: str, version: int, topic: str, state: bytes) -> str:
    """SHA-256 over the previous hash and the event's stored content (docs/audit.md)."""
    h = hashlib.sha256()
    h.update(f"{prev}\n{position}\n{originator_id}\n{version}\n{topic}\n".encode())
    h.update(state)
    return h.hexdigest()


def link_events(prev: str, positions: Sequence[int], stored_events: Sequence[StoredEvent]) -> list[tuple[int, str]]:
    """The links of newly stored events, in position order, continuing the chain from `prev`
    (the hash of the log's last event before them, or GENESIS)."""
    links = []
    for position, stored in sorted(zip(positions, stored_events, strict=True), key=lambda pair: pair[0]):
        prev = chain_hash(
            prev, position, str(stored.originator_id), stored.originator_version, stored.topic, stored.state
        )
        links.append((position, prev))
    return links


def export_line(position: int, originator_id: str, version: int, topic: str, state: bytes, hash: str | None) -> bytes:
    """One event as its export line (docs/audit.md), without the newline: also the event's
    leaf in the Merkle tree (ledger.proofs), so the recorder and export share it."""
    return orjson.dumps(
        {
            "position": position,
            "originator_id": originator_id,
            "originator_version": version,
            "topic": topic,
            "state": state.decode("utf-8"),
            "hash": hash,
        }
    )


def export_lines(recorder: LedgerRecorder, engine: Engine, until: int | None = None) -> Iterator[bytes]:
    """The log in position order, one JSON object per event, state verbatim as stored.

    One prefix of the log, fixed when the export starts: it stops at the head it read
    first (writers commit positions in order, under the write lock), so events appended
    meanwhile never make it a mix of two moments. Every page reads committed rows after
    the last position written; a failed read is an error (exit 5), never a short export."""
    events = recorder.events_table
    position = 0
    with engine.connect() as conn:
        head = conn.execute(select(func.max(events.c.id))).scalar() or 0
        until = head if until is None else min(until, head)
        while True:
            q = (
                select(
                    events.c.id,
                    events.c.originator_id,
                    events.c.originator_version,
                    events.c.topic,
                    events.c.state,
                    chain_table.c.hash,
                )
                .select_from(events.outerjoin(chain_table, chain_table.c.position == events.c.id))
                .where(events.c.id > position)
                .order_by(events.c.id)
                .limit(PAGE)
            )
            q = q.where(events.c.id <= until)
            rows = conn.execute(q).all()
            for r in rows:
                yield export_line(r.id, str(r.originator_id), r.originator_version, r.topic, bytes(r.state), r.hash)
            if len(rows) < PAGE:
                return
            position = rows[-1].id


def digest(engine: Engine) -> dict[str, Any]:
    """The head of the chain: hand it to an auditor; later logs must extend it."""
    with engine.connect() as conn:
        row = conn.execute(
            select(chain_table.c.position, chain_table.c.hash).order_by(chain_table.c.position.desc()).limit(1)
        ).first()
    if row is None:
        return {"position": 0, "hash": GENESIS}
    return {"position": row.position, "hash": row.hash}


DIGEST_TEXT = re.compile(r"([0-9]{1,18}):([0-9a-f]{64})")


def parse_digest(text: str) -> tuple[int, str]:
    """`N:HEX` in ASCII only: `isdigit()` would take `٣` or `²`, and a misread digest is a false tamper alarm."""
    m = DIGEST_TEXT.fullmatch(text)
    if m is None:
        raise InvalidInput(
            f"digest: {text!r} is not N:HEX (a position in ASCII digits and a 64-digit lowercase SHA-256)"
        )
    return int(m.group(1)), m.group(2)


#: One event as read from the log for a fold (see `read_log`): position, aggregate id
#: (as a UUID and as text), version, topic, and the decoded stored state. Its envelope
#: (who issued the command) may still be in it: no read model reads it, so a fold does
#: not take it apart (`decode_event` drops it).
Logged = tuple[int, "AggregateIds.Id", int, str, dict[str, Any]]

#: Events per page when the log is walked through the driver.
READ_PAGE = 5000


def paged(raw: Raw, sql: str, after: int, until: int | None = None) -> Iterator[Any]:
    """Rows of `sql` (… WHERE key > ? [AND key <= ?] ORDER BY key LIMIT ?) page by page on the
    driver's connection, the key in the first column: no cursor stays open between pages, so
    one connection walks several tables in step."""
    while True:
        rows = raw.rows(sql, (after, PAGE_LIMIT if until is None else until, READ_PAGE))
        yield from rows
        if len(rows) < READ_PAGE:
            return
        after = rows[-1][0]


PAGE_LIMIT = 2**62


def _log_sql(events: str, mark: str) -> str:
    return (
        f"SELECT id, originator_id, originator_version, topic, state FROM {events} "
        f"WHERE id > {mark} AND id <= {mark} ORDER BY id LIMIT {mark}"
    )


def records_sql(mark: str) -> str:
    """The command records in log order, a page at a time (ipledger_commands_position_idx)."""
    return (
        "SELECT position, command_id, command, outcome, digest FROM ipledger_commands "
        f"WHERE position > {mark} AND position <= {mark} ORDER BY position LIMIT {mark}"
    )


def stored_uuid(value: Any) -> UUID:
    """The stored aggregate id (16 bytes on SQLite, a uuid from PostgreSQL's driver, its
    text in an export line)."""
    if isinstance(value, UUID):
        return value
    return UUID(value) if isinstance(value, str) else UUID(bytes=bytes(value))


class AggregateIds:
    """Each stored aggregate id as a UUID and as text, made once per aggregate while it is
    recent: a log's events of one aggregate lie close together, and making both forms for
    every event was a tenth of a rebuild. Memory stays flat (forgotten past `LIMIT`)."""

    LIMIT = 10_000

    class Id(NamedTuple):
        uuid: UUID
        text: str

    def __init__(self) -> None:
        self._known: dict[Any, AggregateIds.Id] = {}

    def __call__(self, stored: Any) -> AggregateIds.Id:
        known = self._known.get(stored)
        if known is None:
            if len(self._known) >= self.LIMIT:
                self._known.clear()
            uuid = stored_uuid(stored)
            known = self._known[stored] = AggregateIds.Id(uuid, str(uuid))
        return known


class RowDigest:
    """A digest of the events two passes read (position, aggregate, version, topic and the
    stored bytes, up to `until`): when one process proves the log while another folds it
    (ledger.prover), equal digests say the fold read exactly what was proved."""

    def __init__(self, until: int) -> None:
        self.until = until
        self._h = hashlib.sha256()

    def __call__(self, position: int, aggregate_id: AggregateIds.Id, version: int, topic: str, state: bytes) -> None:
        if position <= self.until:
            self._h.update(b"%d\n%d\n%d\n%s\n" % (position, version, len(state), topic.encode()))
            self._h.update(aggregate_id.uuid.bytes)
            self._h.update(state)

    def hexdigest(self) -> str:
        return self._h.hexdigest()


def read_log(
    conn: Connection, events: str, after: int = 0, until: int | None = None, seen: RowDigest | None = None
) -> Iterator[list[Logged]]:
    """The log after `after` (up to `until`), in pages, each event's JSON decoded once:
    what a projection fold reads when no hash is checked (catch-up, the runner's own
    rebuild, and a fold whose pages another process proves: `seen` digests what was read)."""
    raw = Raw(conn)
    ids = AggregateIds()
    page: list[Logged] = []
    for position, originator_id, version, topic, state in paged(raw, _log_sql(events, raw.mark), after, until):
        aggregate_id = ids(originator_id)
        if seen is not None:
            seen(position, aggregate_id, version, topic, state)
        page.append((position, aggregate_id, version, topic, orjson.loads(state)))
        if len(page) == READ_PAGE:
            yield page
            page = []
    if page:
        yield page


def checked_log(
    events: str,
    engine: Engine,
    expect: tuple[int, str] | None = None,
    progress: Callable[[int], None] | None = None,
    report: dict[str, Any] | None = None,
    tree: bool = False,
    seen: RowDigest | None = None,
) -> Iterator[list[Logged]]:
    """The log in pages, each page given out only after every event in it was proved:
    its hash recomputed from the stored bytes and matched to its link, and the command
    records beside it. Raise IntegrityError at the first bad position (a consumer that
    folds the pages in one transaction then rolls back: nothing unproved is kept).
    `report` is filled in at the end (events, position, head hash, commands, and with
    `tree` the Merkle tree's size and root, each leaf checked in the same pass). `seen`
    digests the events read (see RowDigest)."""
    prev = GENESIS
    count = 0
    last_position = 0
    seen_digest = expect is None or expect[0] == 0
    ids = AggregateIds()
    with engine.connect() as conn, passing_cache(conn):
        raw = Raw(conn)
        m = raw.mark
        log = paged(raw, _log_sql(events, m), 0)
        chain_rows = paged(
            raw, f"SELECT position, hash FROM ipledger_chain WHERE position > {m} AND position <= {m} "
            f"ORDER BY position LIMIT {m}", 0
        )  # fmt: skip
        leaves = None
        if tree:
            from ipledger.ledger import merkle, proofs

            leaves = proofs.TreeCheck(raw)
        records = CommandRecords(paged(raw, records_sql(m), 0))
        page: list[Logged] = []
        for position, originator_id, version, topic, stored in log:
            link = next(chain_rows, None)
            if link is None or link[0] > position:
                raise IntegrityError(f"position {position}: event has no link in the hash chain (inserted?)")
            if link[0] < position:
                raise IntegrityError(f"position {link[0]}: chained event is missing from the log (deleted?)")
            state = bytes(stored)
            aggregate_id = ids(originator_id)
            if seen is not None:
                seen(position, aggregate_id, version, topic, state)
            expected = chain_hash(prev, position, aggregate_id.text, version, topic, state)
            if expected != link[1]:
                raise IntegrityError(
                    f"position {position}: event content does not match its hash (altered or reordered)"
                )
            if expect is not None and position == expect[0]:
                if link[1] != expect[1]:
                    raise IntegrityError(
                        f"position {position}: the log no longer extends the digest {expect[0]}:{expect[1]}"
                    )
                seen_digest = True
            if leaves is not None:
                line = export_line(position, aggregate_id.text, version, topic, state, link[1])
                leaves.leaf(position, merkle.leaf_hash(line))
            envelope, payload = Envelope.from_state(orjson.loads(state))
            records.event(position, envelope)
            prev = link[1]
            count += 1
            last_position = position
            page.append((position, aggregate_id, version, topic, payload))
            if len(page) == READ_PAGE:
                yield page
                page = []
                if progress is not None:
                    progress(position)
        extra = next(chain_rows, None)
        if extra is not None:
            raise IntegrityError(f"position {extra[0]}: chained event is missing from the log (deleted?)")
        records.end()
        if not seen_digest:
            raise IntegrityError(f"position {expect[0] if expect else 0}: the digest's position is not in the log")
        tree_report = leaves.end() if leaves is not None else None
    if page:
        yield page
    if progress is not None:
        progress(last_position)
    if report is not None:
        report.update(events=count, position=last_position, hash=prev, commands=records.checked)
        if tree_report is not None:
            report["tree"] = tree_report


def verify_chain(
    events: str,
    engine: Engine,
    expect: tuple[int, str] | None = None,
    progress: Callable[[int], None] | None = None,
    tree: bool = False,
    seen: RowDigest | None = None,
) -> dict[str, Any]:
    """Recompute the hash chain from the first event; raise IntegrityError at the first bad position.

    The command records (idempotency) live outside the chain, so each is checked against
    the hashed envelope of its command's last event: same command id, position, request
    digest and outcome digest. A record edited, added or deleted is caught here. With
    `tree`, every Merkle leaf is checked in the same pass (the report's "tree"). A fold
    that needs the pages too reads them from `checked_log` itself (or ledger.prover)."""
    report: dict[str, Any] = {}
    for _ in checked_log(events, engine, expect, progress, report, tree, seen):
        pass
    return report


class CommandRecords:
    """Walks the command records in position order beside the log.

    A command's events are contiguous (written together under the write lock), and its
    record points at the last of them: so the log's runs of one command id, in order,
    must meet the records, in order, one for one."""

    def __init__(self, rows: Iterator[Any]) -> None:
        self._rows = rows  # (position, command_id, command, outcome, digest) in position order
        self._run: tuple[str, int, Envelope] | None = None  # (command id, last position, its envelope)
        self.checked = 0

    def event(self, position: int, envelope: Envelope) -> None:
        command_id = envelope.command_id
        if self._run is not None and self._run[0] != command_id:
            self._close()
        if isinstance(command_id, str):
            self._run = (command_id, position, envelope)

    def end(self) -> None:
        if self._run is not None:
            self._close()
        extra = next(self._rows, None)
        if extra is not None:
            raise IntegrityError(
                f"position {extra[0]}: command record {extra[1]} has no command in the log (inserted?)"
            )

    def _close(self) -> None:
        assert self._run is not None
        command_id, position, envelope = self._run
        self._run = None
        record = next(self._rows, None)
        if record is None or record[0] > position:
            raise IntegrityError(f"position {position}: command {command_id} has no command record (deleted?)")
        record_position, record_id, command, outcome, digest = record
        if record_position < position or record_id != command_id:
            raise IntegrityError(
                f"position {record_position}: command record {record_id} does not match the log (edited?)"
            )
        stamp = envelope.stamp  # envelopes written before digests existed carry none
        if stamp is not None and (
            stamp.command != command
            or stamp.digest != digest
            or stamp.outcome is None
            or not outcome_matches(bytes(outcome), stamp.outcome)
        ):
            raise IntegrityError(
                f"position {position}: command record {command_id} does not match its event's hashed envelope "
                "(command, request digest or outcome edited)"
            )
        self.checked += 1
