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

import orjson
from eventsourcing.persistence import IntegrityError as RecordConflict

from ipledger.domain.errors import ConcurrentWrite, InvalidInput, LedgerError
from ipledger.ledger.application import MAX_ATTEMPTS, Exchange
from ipledger.ledger.bulk import bulk_work
from ipledger.ledger.commands import parse_id
from ipledger.ledger.recorder import CommandRecord

#: Lines per transaction: a commit is a durable flush (fsync on SQLite), so fewer, larger
#: transactions are most of an import's speed; a kill still leaves whole commands only.
BATCH = 5000
KEYS = {"command", "args", "command_id", "actor", "at"}


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
        return _run_import(exchange, raw_lines, batch or BATCH, progress)


def _run_import(
    exchange: Exchange,
    raw_lines: Iterable[bytes],
    batch: int,
    progress: Callable[[int], None] | None,
) -> dict[str, Any]:
    applied = skipped = 0
    pending: list[Line] = []

    def run_batch(lines: list[Line]) -> None:
        for attempt in range(MAX_ATTEMPTS):
            try:
                return stage_and_write(lines, optimistic=attempt == 0)
            except RecordConflict:
                # A concurrent writer won a race inside this batch, or (on the first,
                # optimistic attempt) a line made an id that already exists; nothing of
                # it was written. Redo it with every check: lines recorded meanwhile are
                # skipped by command id, and a duplicate id is rejected at its line.
                if attempt + 1 == MAX_ATTEMPTS:
                    raise ConcurrentWrite(
                        f"line {lines[0].number}: the batch lost {MAX_ATTEMPTS} races; re-run the import"
                    ) from None

    def stage_and_write(lines: list[Line], optimistic: bool) -> None:
        """One batch is one unit of work: its lines are decided in order, each against
        what the lines before it decided, and written in one transaction."""
        nonlocal applied, skipped
        records = exchange.command_records([line.command_id for line in lines])
        batch_skipped = 0
        with exchange.unit_of_work(optimistic=optimistic) as uow:
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
                    # The lines before this one stand; the failed line may have changed
                    # aggregates it loaded, so nothing cached is trusted after it.
                    applied += uow.commit()
                    exchange.cache.forget()
                    skipped += batch_skipped
                    raise ImportFailed(line.number, e, applied, skipped) from None
            applied += uow.commit()
        skipped += batch_skipped
        if progress is not None:
            progress(len(lines))

    for number, raw in numbered(raw_lines):
        try:
            line = parse_line(number, raw)
        except LedgerError as e:
            if pending:
                run_batch(pending)
            raise ImportFailed(number, e, applied, skipped) from None
        if line is None:
            continue
        pending.append(line)
        if len(pending) >= batch:
            run_batch(pending)
            pending = []
    if pending:
        run_batch(pending)
    return {"applied": applied, "skipped": skipped}
