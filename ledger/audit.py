"""Export and integrity: the log as JSON Lines, its hash chain, digests and verification.

The canonical serialisation that the chain hashes is defined in `ledger.store.chain_hash`
and documented in docs/audit.md, so an auditor can recompute it without ipledger.
"""

from __future__ import annotations

from typing import Any, Iterator

import orjson
from sqlalchemy import select
from sqlalchemy.engine import Engine

from domain.errors import IntegrityError, InvalidInput
from ledger.store import GENESIS, chain_hash, chain_table

PAGE = 2000


def _events_table(recorder: Any) -> Any:
    return recorder.events_record_cls.__table__


def export_lines(recorder: Any, engine: Engine, until: int | None = None) -> Iterator[bytes]:
    """The log in position order, one JSON object per event, state verbatim as stored."""
    events = _events_table(recorder)
    position = 0
    with engine.connect() as conn:
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
            if until is not None:
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


def parse_digest(text: str) -> tuple[int, str]:
    position, sep, hexhash = text.partition(":")
    if not sep or not position.isdigit() or len(hexhash) != 64 or any(ch not in "0123456789abcdef" for ch in hexhash):
        raise InvalidInput(f"digest: {text!r} is not N:HEX (a position and a 64-digit lowercase SHA-256)")
    return int(position), hexhash


def verify_chain(recorder: Any, engine: Engine, expect: tuple[int, str] | None = None) -> dict[str, Any]:
    """Recompute the hash chain from the first event; raise IntegrityError at the first bad position."""
    events = _events_table(recorder)
    prev = GENESIS
    count = 0
    last_position = 0
    seen_digest = expect is None or expect[0] == 0
    with engine.connect() as conn:
        chain = conn.execute(select(chain_table.c.position, chain_table.c.hash).order_by(chain_table.c.position))
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
            expected = chain_hash(
                prev, row.id, str(row.originator_id), row.originator_version, row.topic, bytes(row.state)
            )
            if expected != link.hash:
                raise IntegrityError(f"position {row.id}: event content does not match its hash (altered or reordered)")
            if expect is not None and row.id == expect[0]:
                if link.hash != expect[1]:
                    raise IntegrityError(
                        f"position {row.id}: the log no longer extends the digest {expect[0]}:{expect[1]}"
                    )
                seen_digest = True
            prev = link.hash
            count += 1
            last_position = row.id
        extra = next(chain_rows, None)
        if extra is not None:
            raise IntegrityError(f"position {extra.position}: chained event is missing from the log (deleted?)")
    if not seen_digest:
        raise IntegrityError(f"position {expect[0] if expect else 0}: the digest's position is not in the log")
    return {"events": count, "position": last_position, "hash": prev}
