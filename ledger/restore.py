"""`ipledger restore`: a new, empty store from an export, every hash checked.

The export's lines are the log itself (docs/audit.md), so a restore writes them back
as they were (same positions, bytes, hashes) after checking each link of the chain:
the first line that does not hash to its stated link stops the restore, in the one
transaction that holds everything, so nothing is kept (exit 4). The Merkle tree is
grown page by page as an import grows it (the recorder's bulk writer); kept
checkpoints (`export --checkpoints`) are restored only if each one's root is the
restored tree's root at its size. The read models are rebuilt afterwards by the usual
rebuild path.

Command records (idempotency) are not in the export: each is rebuilt from the stamp in
its command's last event (name, request digest, outcome digest). The outcome's bytes
are not in the log, so a restored record keeps a note of its digest instead
(`restored_outcome`), which `audit verify` accepts for the stamp's digest; a command id
repeated after a restore is still recognised, and answers with that note.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from ipledger.domain.errors import IntegrityError, InvalidState
from ipledger.ledger import merkle
from ipledger.ledger.chain import GENESIS, AggregateIds, chain_hash, export_line, restored_outcome
from ipledger.ledger.checkpoints import body
from ipledger.ledger.codec import Envelope
from ipledger.ledger.driver import Raw
from ipledger.ledger.recorder import insert_rows, write_beside_events

KEYS = ("position", "originator_id", "originator_version", "topic", "state", "hash")
PAGE = 5000


def _line(number: int, raw: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise IntegrityError(f"line {number}: not a line of an export (not JSON)") from None
    if not isinstance(doc, dict) or tuple(doc) != KEYS:
        raise IntegrityError(f"line {number}: not a line of an export (keys must be {', '.join(KEYS)}, in that order)")
    return doc


class Restore:
    """Writes an export's events into an empty store on one connection (one transaction),
    a page at a time through the recorder's bulk writer: one executemany per table."""

    def __init__(self, conn: Connection, events_table: Any) -> None:
        self.raw = Raw(conn)
        self.table = events_table.name
        self.prev = GENESIS
        self.position = 0
        self.count = 0
        self.events: list[tuple[int, Any, int, str, bytes]] = []
        self.links: list[tuple[int, str]] = []
        self.leaves: list[tuple[int, bytes]] = []
        self.records: list[tuple[str, str, bytes, int, str | None]] = []
        self._run: tuple[str, int, Envelope] | None = None
        # Each recent id parsed once: most events are not their aggregate's first, and
        # parsing and writing every id again took about a tenth of this process's time.
        self._ids = AggregateIds()

    def line(self, number: int, raw: bytes) -> None:
        doc = _line(number, raw)
        position, state = doc["position"], doc["state"]
        if not isinstance(position, int) or isinstance(position, bool) or position <= self.position:
            raise IntegrityError(f"line {number}: position {position!r} does not follow {self.position} (reordered?)")
        if not isinstance(state, str):
            raise IntegrityError(f"line {number}: state must be the stored event as JSON text")
        originator_id, version, topic = doc["originator_id"], doc["originator_version"], doc["topic"]
        try:
            if not (isinstance(version, int) and 0 < version < 2**31 and isinstance(topic, str) and position < 2**62):
                raise ValueError
            aggregate = self._ids(originator_id)
            envelope, _ = Envelope.from_state(orjson.loads(state))
        except (ValueError, orjson.JSONDecodeError, AttributeError, TypeError):
            raise IntegrityError(f"line {number}: position {position}: not a stored event") from None
        state_bytes = state.encode()
        expected = chain_hash(self.prev, position, originator_id, version, topic, state_bytes)
        if expected != doc["hash"]:
            raise IntegrityError(
                f"line {number}: position {position}: event content does not match its hash (altered?)"
            )
        line = export_line(position, aggregate.text, version, topic, state_bytes, expected)
        if raw.rstrip(b"\r\n") != line:
            # Hashes right but is not the line the store would export again (an id in
            # upper case, other spacing): restored, it would not export byte for byte.
            raise IntegrityError(f"line {number}: position {position}: not a stored event (not as an export writes it)")
        stored = aggregate.uuid.bytes if self.raw.sqlite else aggregate.uuid
        self.events.append((position, stored, version, topic, state_bytes))
        self.links.append((position, expected))
        self.leaves.append((position, merkle.leaf_hash(line)))  # an event's leaf is its export line
        self._command(position, envelope)
        self.prev, self.position = expected, position
        self.count += 1
        if len(self.events) >= PAGE:
            self.flush()

    def _command(self, position: int, envelope: Envelope) -> None:
        """A command's events are contiguous; its record points at the last of them."""
        if self._run is not None and self._run[0] != envelope.command_id:
            self._close()
        if isinstance(envelope.command_id, str):
            self._run = (envelope.command_id, position, envelope)

    def _close(self) -> None:
        assert self._run is not None
        command_id, position, envelope = self._run
        self._run = None
        stamp = envelope.stamp
        if stamp is None or stamp.command is None or stamp.outcome is None:
            # Written before commands were stamped: the name is all the log knows.
            name, digest, outcome = "unknown", None, b"{}"
        else:
            name, digest, outcome = stamp.command, stamp.digest, restored_outcome(stamp.outcome)
        self.records.append((command_id, name, outcome, position, digest))

    def flush(self) -> None:
        """The page's events, then what the recorder writes beside them (chain links, tree
        leaves, command records), as an import batch writes them."""
        mark = self.raw.mark
        try:
            insert_rows(
                self.raw,
                f"INSERT INTO {self.table} (id, originator_id, originator_version, topic, state) "
                f"VALUES ({mark}, {mark}, {mark}, {mark}, {mark})",
                self.events,
            )
            write_beside_events(self.raw, self.links, self.leaves, self.records, tree_head=None, log_was_empty=True)
        except (DBAPIError, OverflowError) as e:
            first = self.events[0][0] if self.events else "?"
            cause = (str(getattr(e, "orig", None) or e).strip().splitlines() or [type(e).__name__])[0]
            raise IntegrityError(
                f"positions {first} to {self.position}: the store refuses these events ({cause}); "
                "an export never holds them (a duplicated or forged line?)"
            ) from None
        self.events, self.links, self.leaves, self.records = [], [], [], []

    def finish(self) -> None:
        if self._run is not None:
            self._close()
        self.flush()
        if not self.raw.sqlite and self.position:
            self.raw.run(f"SELECT setval(pg_get_serial_sequence('{self.table}', 'id'), %s)", (self.position,))


def restore(
    conn: Connection,
    events_table: Any,
    lines: Iterable[bytes],
    checkpoints: Iterable[bytes] = (),
    progress: Callable[[int], None] | None = None,
    accepted: Callable[[bytes], None] | None = None,
) -> dict[str, Any]:
    """Restore into the store on `conn` (inside its transaction): events, chain, command
    records, tree and checkpoints. Raises IntegrityError at the first bad line.
    `accepted(line)`: each line once it is checked (a fold beside the restore)."""

    head = conn.execute(text(f"SELECT max(id) FROM {events_table.name}")).scalar()
    if head:
        raise InvalidState(
            f"db: the store already holds events (head {head}); restore builds a new store: name an empty one with --db"
        )
    job = Restore(conn, events_table)
    number = 0
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        job.line(number, raw)
        if accepted is not None:
            accepted(raw)
        if progress is not None:
            progress(1)
    job.finish()
    kept = _checkpoints(conn, checkpoints, job.count)  # the tree has a leaf per event
    return {"events": job.count, "position": job.position, "hash": job.prev, "checkpoints": kept}


def _checkpoints(conn: Connection, lines: Iterable[bytes], size: int) -> int:
    """Kept checkpoints come back only if the restored tree has their root at their size."""
    from ipledger.ledger import proofs

    tree = proofs.Tree(conn)
    kept = 0
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            doc = orjson.loads(raw)
            cp_size, root, note = int(doc["size"]), str(doc["root_hash"]), str(doc["checkpoint"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise IntegrityError(f"checkpoints line {number}: not a line of export --checkpoints") from None
        origin = note.split("\n", 1)[0]
        signed = note.partition("\n\n")[0] + "\n"  # the note's text: origin, size, root
        if cp_size > size or tree.root(cp_size).hex() != root or signed != body(origin, cp_size, bytes.fromhex(root)):
            raise IntegrityError(
                f"checkpoints line {number}: the checkpoint of size {cp_size} does not match the restored log's tree"
            )
        if kept == 0:
            proofs.set_origin(conn, origin)
        elif proofs.origin(conn) != origin:
            raise IntegrityError(f"checkpoints line {number}: names the log {origin!r}, not {proofs.origin(conn)!r}")
        proofs.keep_checkpoint(conn, cp_size, bytes.fromhex(root), note)
        kept += 1
    return kept
