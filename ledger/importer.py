"""`ipledger import`: JSON Lines of commands, applied in order with group commit.

Lines are staged in batches (aggregates cached in memory across the batch) and each
batch is written in one transaction, so a kill at any moment leaves whole commands
only. The first rejected line stops the import: every line before it is kept (the
partial batch is flushed), and the error names the line. Re-running skips every
line whose command id is already recorded, so an interrupted import resumes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import IntegrityError as RecordConflict
from eventsourcing.persistence import StoredEvent

from ipledger.domain.errors import ConcurrentWrite, InvalidInput, LedgerError
from ipledger.ledger.application import MAX_ATTEMPTS, Exchange
from ipledger.ledger.bulk import bulk_work
from ipledger.ledger.commands import parse_id
from ipledger.ledger.recorder import CommandRecord, CommandWrite
from ipledger.ledger.unit_of_work import IMPORT_CACHE_LIMIT, UnitOfWork
from ipledger.ledger.writer import BatchWriter, WriterLost

#: Lines per transaction: a commit is a durable flush (fsync on SQLite), so fewer, larger
#: transactions are most of an import's speed; a kill still leaves whole commands only.
BATCH = 5000
KEYS = {"command", "args", "command_id", "actor", "at"}
#: From the first full batch, a second process writes each batch while this one decides
#: the next, on SQLite and PostgreSQL (see _Import and ledger/writer.py).
PIPELINED = True


@dataclass(frozen=True)
class Line:
    number: int
    command: str
    args: dict[str, Any]
    command_id: str
    actor: str
    at: str | None


class ImportFailed(LedgerError):
    """Wraps the rejection of one line, keeping its name, exit code and line number."""

    def __init__(self, line: int, error: LedgerError, applied: int, skipped: int) -> None:
        super().__init__(
            f"line {line}: {error.message} (stopped there; {applied} earlier line(s) applied, "
            f"{skipped} already recorded)"
        )
        self.line = line
        self.error = error
        self.exit_code = error.exit_code
        self.applied = applied
        self.skipped = skipped

    @property
    def name(self) -> str:
        return self.error.name


class DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are unique: with a repeated key, which value counts is a guess."""
    doc = dict(pairs)
    if len(doc) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return doc


MAX_DEPTH = 16  # an import line is four levels deep at most


def _too_deep(text: bytes) -> bool:
    """Nesting measured without recursing: orjson parses in C with a depth limit, and the
    nesting of what it parsed is walked with a stack. Deep lines never reach the Python
    parser, whose recursion (a thousand frames) leaves no stack for a finalizer that the
    garbage collector happens to run meanwhile. Invalid JSON is left to json.loads, whose
    message names the fault. A line with fewer brackets than the limit cannot nest deeper
    than it (the usual case, answered without parsing)."""
    if text.count(b"{") + text.count(b"[") <= MAX_DEPTH:
        return False
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError as e:
        return "depth limit" in str(e)
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
    return False


def json_object(text: bytes, what: str, not_object: str) -> dict[str, Any]:
    """One JSON object as the import format reads it (an import line, an HTTP command's
    body): every key once, nesting bounded, InvalidInput naming the fault."""
    if _too_deep(text):
        raise InvalidInput(f"json: nested too deeply to be {what}")
    fast = _plain_object(text)
    if fast is not None:
        return fast
    try:
        doc = json.loads(text, object_pairs_hook=_unique_keys)
    except RecursionError:  # pragma: no cover - _too_deep refuses such lines first
        raise InvalidInput(f"json: nested too deeply to be {what}") from None
    except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError is a ValueError
        if isinstance(e, DuplicateKey):
            raise InvalidInput(f"{e.key}: appears twice in one JSON object; a line says each thing once") from None
        raise InvalidInput(f"json: not a JSON object ({e})") from None
    if not isinstance(doc, dict):
        raise InvalidInput(not_object)
    return doc


def _plain_object(text: bytes) -> dict[str, Any] | None:
    """The object as `json.loads` with `_unique_keys` reads it, by orjson, when that is sure
    to be the same; else None (the standard library reads it, and names any fault).

    Sure: no backslash, so no escape, and no string holds a quote, so the text between
    quotes alternates between outside and inside strings, and each `:` outside strings
    ends one key; as many as the keys orjson kept means none was repeated (orjson keeps
    the last silently). No float (the standard library's own float is kept). The
    standard library's reading was a tenth of an import's parsing."""
    if b"\\" in text:
        return None
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if type(doc) is not dict:
        return None
    keys, stack = 0, [doc]
    while stack:
        value = stack.pop()
        kind = type(value)
        if kind is dict:
            keys += len(value)
            stack.extend(value.values())
        elif kind is list:
            stack.extend(value)
        elif kind is float:
            return None
    if b"".join(text.split(b'"')[::2]).count(b":") != keys:
        return None
    return doc


def parse_line(number: int, raw: bytes) -> Line | None:
    text = raw.strip()
    if not text:
        return None
    doc = json_object(text, "an import line", "json: each line is a JSON object")
    unknown = set(doc) - KEYS
    if unknown:
        raise InvalidInput(f"{sorted(unknown)[0]}: is not a key of an import line ({', '.join(sorted(KEYS))})")
    for key in ("command", "command_id"):
        if not isinstance(doc.get(key), str) or not doc[key]:
            raise InvalidInput(f"{key}: every import line needs a {key} string")
    args = doc.get("args", {})
    if not isinstance(args, dict):
        raise InvalidInput("args: must be a JSON object")
    actor = doc.get("actor", "operator")
    at = doc.get("at")
    if not isinstance(actor, str) or (at is not None and not isinstance(at, str)):
        raise InvalidInput("actor: actor and at are strings")
    # Checked here, before the batch looks ids up in the store (a lone surrogate cannot be sent).
    return Line(number, doc["command"], args, parse_id(doc["command_id"], "command_id"), actor, at)


def numbered(raw_lines: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    return ((n, raw) for n, raw in enumerate(raw_lines, start=1))


def run_import(
    exchange: Exchange,
    raw_lines: Iterable[bytes],
    *,
    batch: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Apply the lines; returns counts, or raises ImportFailed naming the first bad line."""
    with bulk_work():
        return _Import(exchange, batch or BATCH, progress).run(raw_lines)


@dataclass
class _Flight:
    """A batch decided here and handed to the writer process, not yet answered for."""

    lines: list[Line]
    records: dict[str, CommandRecord]  # its own command ids: the next batch's repeats
    touched: set[UUID]  # its aggregates: the cache keeps them until the store has them
    commands: int  # how many commands it records
    skipped: int  # its lines already recorded
    after: int | None  # the position it must follow; None: the writer's previous batch
    head: int  # the cache's mark for the state it leaves (its last position, on SQLite)


class _Replay(Exception):
    """A line was refused while its batch was decided ahead of the one in flight: that one
    has now landed (or was written here), and this batch is decided again in process."""


class _Import:
    """One import: batches decided in order, each written in one transaction.

    From the first full batch, a second process writes each batch while this one decides
    the next (ledger/writer.py), on the state the batch in flight leaves: its aggregates
    are in the cache, its command ids in `flight.records`, and it must be written directly
    after the batch before it. If it does not land as decided (another writer wrote, an
    optimistic id existed, the writer died), whatever was decided after it is dropped,
    and the import goes on in this process from that batch, exactly as an import that
    never had a writer: command ids tell which lines landed."""

    def __init__(self, exchange: Exchange, batch: int, progress: Callable[[int], None] | None) -> None:
        self.exchange, self.batch, self.progress = exchange, batch, progress
        self.applied = self.skipped = 0
        self.pipelined = PIPELINED
        self.writer: BatchWriter | None = None
        self.flight: _Flight | None = None

    def run(self, raw_lines: Iterable[bytes]) -> dict[str, Any]:
        cache = self.exchange.cache
        limit, cache.limit = cache.limit, max(cache.limit, IMPORT_CACHE_LIMIT)
        try:
            return self._run(raw_lines)
        finally:
            cache.limit = limit  # trimmed back by the next unit of work

    def _run(self, raw_lines: Iterable[bytes]) -> dict[str, Any]:
        try:
            pending: list[Line] = []
            for number, raw in numbered(raw_lines):
                try:
                    line = parse_line(number, raw)
                except LedgerError as e:
                    self.land()
                    if pending:
                        self.run_batch(pending)
                    raise ImportFailed(number, e, self.applied, self.skipped) from None
                if line is None:
                    continue
                pending.append(line)
                if len(pending) >= self.batch:
                    self.full_batch(pending)
                    pending = []
            if pending and self.writer is not None and self.pipelined:
                # The last lines too are decided while the batch before them is written
                # (at 100k lines, the last batch is a tenth of the import).
                self.full_batch(pending)
                pending = []
            self.land()
            if pending:  # an import shorter than a batch never starts a writer process
                self.run_batch(pending)
            return {"applied": self.applied, "skipped": self.skipped}
        finally:
            if self.writer is not None:
                self.writer.close()

    # ------------------------------------------------------------------ in this process

    def run_batch(self, lines: list[Line]) -> None:
        for attempt in range(MAX_ATTEMPTS):
            try:
                return self.stage_and_write(lines, optimistic=attempt == 0)
            except RecordConflict:
                # A concurrent writer won a race inside this batch, or (on the first,
                # optimistic attempt) a line made an id that already exists; nothing of
                # it was written. Redo it with every check: lines recorded meanwhile are
                # skipped by command id, and a duplicate id is rejected at its line.
                if attempt + 1 == MAX_ATTEMPTS:
                    raise ConcurrentWrite(
                        f"line {lines[0].number}: the batch lost {MAX_ATTEMPTS} races; re-run the import"
                    ) from None

    def stage_and_write(self, lines: list[Line], optimistic: bool) -> None:
        """One batch is one unit of work: its lines are decided in order, each against
        what the lines before it decided, and written in one transaction."""
        exchange = self.exchange
        records = exchange.command_records([line.command_id for line in lines])
        with exchange.unit_of_work(optimistic=optimistic) as uow:
            batch_skipped = self.decide(uow, lines, records)
            self.applied += uow.commit()
        self.skipped += batch_skipped
        if self.progress is not None:
            self.progress(len(lines))

    def decide(
        self, uow: UnitOfWork, lines: list[Line], records: dict[str, CommandRecord], *, ahead: bool = False
    ) -> int:
        """Decide the lines in order; returns how many were already recorded. A rejected
        line stops the import: the lines before it are written, then ImportFailed.
        `ahead`: decided on the state of the batch in flight (see `stage_ahead`)."""
        exchange, batch_skipped = self.exchange, 0
        for line in lines:
            try:
                request = exchange.request(line.command, line.args, line.actor)
                record = records.get(line.command_id)
                if record is not None:  # recorded, or earlier in this batch: the same request is skipped
                    exchange.repeat(line.command_id, request, record)
                    batch_skipped += 1
                    continue
                uow.decide(request, line.command_id, line.at, "at")
                records[line.command_id] = CommandRecord(request.name, b"{}", request.digest)
            except LedgerError as e:
                if ahead:
                    # Decided ahead of the batch in flight: once that has landed, the
                    # batch is decided again in process, where a rejection is final.
                    self.land()
                    raise _Replay from None
                # The lines before this one stand; the failed line may have changed
                # aggregates it loaded, so nothing cached is trusted after it.
                self.applied += uow.commit()
                exchange.cache.forget()
                self.skipped += batch_skipped
                raise ImportFailed(line.number, e, self.applied, self.skipped) from None
        return batch_skipped

    # ------------------------------------------------------------------ with the writer process

    def full_batch(self, lines: list[Line]) -> None:
        if not self.pipelined:
            self.run_batch(lines)
            return
        if self.writer is None:
            try:
                self.writer = BatchWriter(self.exchange.url)
            except (OSError, WriterLost):
                self.pipelined = False
                self.run_batch(lines)
                return
        try:
            events, commands, flight = self.stage_ahead(lines)
        except _Replay:  # a line was refused on the state of the batch in flight (now landed)
            self.run_batch(lines)
            return
        if not self.land():
            self.run_batch(lines)
            return
        if not events:  # every line already recorded: nothing to write
            self.count(flight)
            return
        try:
            self.writer.send(events, commands, flight.after)
        except WriterLost:
            self.fall_back()
            self.run_batch(lines)
            return
        self.flight = flight

    def stage_ahead(self, lines: list[Line]) -> tuple[list[StoredEvent], list[CommandWrite], _Flight]:
        """Decide a batch, optimistically, on the state the batch in flight leaves (or on
        the log as it is): what to hand to the writer, and what to expect of it."""
        exchange, before = self.exchange, self.flight
        ahead = before.records if before is not None else {}
        records = {**ahead, **exchange.command_records([line.command_id for line in lines])}
        known = set(records)
        after: int | None
        if before is None:
            uow = exchange.unit_of_work(optimistic=True)  # reads the head
            after = mark = uow.head or 0
        else:
            # Not read: the batch in flight moves the head. `mark` stands for the state it
            # leaves (on PostgreSQL its positions are known only once written).
            uow = exchange.unit_of_work(before.head, optimistic=True, head_unread=True, keep=before.touched)
            after, mark = None, before.head
        with uow:
            batch_skipped = self.decide(uow, lines, records, ahead=before is not None)
            events, commands = uow.hand_off()
        head = mark + len(events)
        if events:  # the cache now holds this batch's state
            exchange.cache.head, exchange.cache.head_time = head, uow.last
        decided = {k: v for k, v in records.items() if k not in known}
        flight = _Flight(lines, decided, set(uow.touched), len(commands), batch_skipped, after, head)
        return events, commands, flight

    def land(self) -> bool:
        """Wait for the batch in flight, if any. True if it landed as decided; False if
        it did not, and was then written here (the import goes on in this process)."""
        flight, self.flight = self.flight, None
        if flight is None:
            return True
        assert self.writer is not None
        try:
            _, last = self.writer.result()
        except (RecordConflict, WriterLost):
            last = None
        if last is not None:
            cache = self.exchange.cache
            if cache.head == flight.head:  # nothing decided since: the cache is current at the real head
                cache.head = last
            self.count(flight)
            return True
        self.fall_back()
        self.run_batch(flight.lines)
        return False

    def count(self, flight: _Flight) -> None:
        self.applied += flight.commands
        self.skipped += flight.skipped
        if self.progress is not None:
            self.progress(len(flight.lines))

    def fall_back(self) -> None:
        """Nothing decided after a batch that did not land holds: the cache is dropped and
        the rest of the import runs in this process."""
        self.exchange.cache.forget()
        self.pipelined = False
        if self.writer is not None:
            self.writer.close()
