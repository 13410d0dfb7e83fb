"""Export and integrity: the log as JSON Lines, its hash chain, digests and verification.

The canonical serialisation that the chain hashes is defined in `ledger.store.chain_hash`
and documented in docs/audit.md, so an auditor can recompute it without ipledger.
"""

from __future__ import annotations

import re
from typing import Any, Iterator

import orjson
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from ipledger.domain.errors import IntegrityError, InvalidInput
from ipledger.ledger.store import GENESIS, chain_hash, chain_table, commands_table, outcome_digest

PAGE = 2000


def _events_table(recorder: Any) -> Any:
    return recorder.events_record_cls.__table__


def export_lines(recorder: Any, engine: Engine, until: int | None = None) -> Iterator[bytes]:
    """The log in position order, one JSON object per event, state verbatim as stored.

    One prefix of the log, fixed when the export starts: it stops at the head it read
    first (writers commit positions in order, under the write lock), so events appended
    meanwhile never make it a mix of two moments. Every page reads committed rows after
    the last position written; a failed read is an error (exit 5), never a short export."""
    events = _events_table(recorder)
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
                yield orjson.dumps(
                    {
                        "position": r.id,
                        "originator_id": str(r.originator_id),
                        "originator_version": r.originator_version,
                        "topic": r.topic,
                        "state": bytes(r.state).decode("utf-8"),
                        "hash": r.hash,
                    }
                )
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


def verify_chain(recorder: Any, engine: Engine, expect: tuple[int, str] | None = None) -> dict[str, Any]:
    """Recompute the hash chain from the first event; raise IntegrityError at the first bad position.

    The command records (idempotency) live outside the chain, so each is checked against
    the hashed envelope of its command's last event: same command id, position, request
    digest and outcome digest. A record edited, added or deleted is caught here."""
    events = _events_table(recorder)
    prev = GENESIS
    count = 0
    last_position = 0
    seen_digest = expect is None or expect[0] == 0
    with engine.connect() as conn, engine.connect() as records_conn:
        chain = conn.execute(select(chain_table.c.position, chain_table.c.hash).order_by(chain_table.c.position))
        records = CommandRecords(records_conn)
        log = conn.execution_options(stream_results=True).execute(
            select(
                events.c.id, events.c.originator_id, events.c.originator_version, events.c.topic, events.c.state
            ).order_by(events.c.id)
        )
        chain_rows = iter(chain)
        for row in log:
            link = next(chain_rows, None)
            if link is None or link.position > row.id:
                raise IntegrityError(f"position {row.id}: event has no link in the hash chain (inserted?)")
            if link.position < row.id:
                raise IntegrityError(f"position {link.position}: chained event is missing from the log (deleted?)")
            state = bytes(row.state)
            expected = chain_hash(prev, row.id, str(row.originator_id), row.originator_version, row.topic, state)
            if expected != link.hash:
                raise IntegrityError(f"position {row.id}: event content does not match its hash (altered or reordered)")
            if expect is not None and row.id == expect[0]:
                if link.hash != expect[1]:
                    raise IntegrityError(
                        f"position {row.id}: the log no longer extends the digest {expect[0]}:{expect[1]}"
                    )
                seen_digest = True
            records.event(row.id, state)
            prev = link.hash
            count += 1
            last_position = row.id
        extra = next(chain_rows, None)
        if extra is not None:
            raise IntegrityError(f"position {extra.position}: chained event is missing from the log (deleted?)")
        records.end()
    if not seen_digest:
        raise IntegrityError(f"position {expect[0] if expect else 0}: the digest's position is not in the log")
    return {"events": count, "position": last_position, "hash": prev, "commands": records.checked}


class CommandRecords:
    """Walks the command records in position order beside the log (both streamed).

    A command's events are contiguous (written together under the write lock), and its
    record points at the last of them: so the log's runs of one command id, in order,
    must meet the records, in order, one for one."""

    def __init__(self, conn: Any) -> None:
        c = commands_table.c
        self._rows = iter(
            conn.execution_options(stream_results=True).execute(
                select(c.command_id, c.command, c.outcome, c.position, c.digest).order_by(c.position)
            )
        )
        self._run: tuple[str, int, dict[str, Any]] | None = None  # (command id, last position, its meta)
        self.checked = 0

    def event(self, position: int, state: bytes) -> None:
        meta = orjson.loads(state).get("meta") or {}
        command_id = meta.get("command_id")
        if self._run is not None and self._run[0] != command_id:
            self._close()
        if isinstance(command_id, str):
            self._run = (command_id, position, meta)

    def end(self) -> None:
        if self._run is not None:
            self._close()
        extra = next(self._rows, None)
        if extra is not None:
            raise IntegrityError(
                f"position {extra.position}: command record {extra.command_id} has no command in the log (inserted?)"
            )

    def _close(self) -> None:
        assert self._run is not None
        command_id, position, meta = self._run
        self._run = None
        record = next(self._rows, None)
        if record is None or record.position > position:
            raise IntegrityError(f"position {position}: command {command_id} has no command record (deleted?)")
        if record.position < position or record.command_id != command_id:
            raise IntegrityError(
                f"position {record.position}: command record {record.command_id} does not match the log (edited?)"
            )
        if "digest" in meta and (  # envelopes written before digests existed carry none
            meta.get("command") != record.command
            or meta.get("digest") != record.digest
            or meta.get("outcome") != outcome_digest(bytes(record.outcome))
        ):
            raise IntegrityError(
                f"position {position}: command record {command_id} does not match its event's hashed envelope "
                "(command, request digest or outcome edited)"
            )
        self.checked += 1
