"""The Exchange application: the write side's one entry point.

`execute` runs one command in a unit of work (ledger/unit_of_work.py) and adds what
every command needs around it: idempotency by command id (a repeated id gets the first
outcome), the clock, and bounded retries when a concurrent writer wins the race. An
import runs many commands in one unit of work per batch (ledger/importer.py). The rules
are the domain's; the handlers (ledger/handlers.py) only load and ask.

Configuration comes in at construction (the store URL, a pinned clock): nothing here
reads the process environment.
"""

from __future__ import annotations

import random
import time
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, TypeVar
from uuid import UUID, uuid4

import orjson
from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError as RecordConflict
from eventsourcing.persistence import OperationalError as StoreOperationalError
from eventsourcing.utils import get_topic

from ipledger.domain.base import Aggregate
from ipledger.domain.errors import (
    ClockAhead,
    ClockWentBackwards,
    ConcurrentWrite,
    IdempotencyConflict,
    LedgerError,
    NotAuthorised,
)
from ipledger.domain.values import Actor, format_time, parse_time
from ipledger.ledger import commands as c
from ipledger.ledger.chain import request_digest
from ipledger.ledger.codec import OrjsonTranscoder, PydanticMapper, recorded_time
from ipledger.ledger.config import store_url
from ipledger.ledger.handlers import Outcome
from ipledger.ledger.recorder import CommandRecord, LedgerFactory, LedgerRecorder, LogMoved, Preflight
from ipledger.ledger.schema import ensure_schema
from ipledger.ledger.unit_of_work import AggregateCache, Loader, Request, UnitOfWork, get

MAX_ATTEMPTS = 5
#: After another process's write made one of this process's commands conflict, this
#: many commands take the write lock before they read and decide (PostgreSQL), and again
#: as many after each that finds another writer's events since its cache was current.
CONTENDED_COMMANDS = 50
#: After this process finds another's events, this many commands decided on its cache
#: are written checked past others' events (LedgerRecorder._written_since): a process
#: alone writes right after its own last event, and skips the check's cost.
CHECKED_COMMANDS = 50
#: How far a pinned time may run ahead of the wall clock (clock skew between machines).
CLOCK_TOLERANCE = timedelta(minutes=5)

A = TypeVar("A", bound=Aggregate)


class Exchange(Application[UUID], Loader):
    name = "IPLedger"

    env: ClassVar[dict[str, str]] = {
        "PERSISTENCE_MODULE": get_topic(LedgerFactory),
        "MAPPER_TOPIC": get_topic(PydanticMapper),
        "TRANSCODER_TOPIC": get_topic(OrjsonTranscoder),
    }
    # What `env` makes of the library's recorder and mapper (checked in __init__).
    recorder: LedgerRecorder
    mapper: PydanticMapper

    def __init__(self, db: str | None = None, *, pinned_now: str | None = None) -> None:
        """`pinned_now`: every command's recorded time when no time is given with it (a
        script's IPLEDGER_NOW, read by the caller that bootstraps the ledger)."""
        self.url = store_url(db)
        self.pinned_now = pinned_now
        # Tables come from versioned migrations (ledger/migrations), not from create_all.
        super().__init__(env={"SQLALCHEMY_URL": self.url})
        if not isinstance(self.recorder, LedgerRecorder) or not isinstance(self.mapper, PydanticMapper):
            # The process environment can override `env`; another store would lose the chain.
            raise TypeError("PERSISTENCE_MODULE and MAPPER_TOPIC must name ipledger's LedgerFactory and PydanticMapper")
        self.cache = AggregateCache()
        # Commands left to run with the write lock taken first (see `submit`).
        self.contended = 0
        # Commands left whose guess is checked past others' events (see `submit`).
        self.others_writing = 0
        ensure_schema(self.engine)

    def close(self) -> None:
        self.recorder.release()
        super().close()  # the factory disposes of the engine and its pooled connections

    @property
    def engine(self) -> Any:
        return self.recorder.engine

    def load(self, cls: type[A], key: str, field: str, what: str) -> A:
        """Outside a command: straight from the store (a unit of work loads through the cache)."""
        return get(self.repository, cls, key, field, what)

    # ------------------------------------------------------------------ execution

    def execute(
        self,
        name: str,
        args: dict[str, Any],
        *,
        actor: str = "operator",
        command_id: str | None = None,
        now: str | datetime | None = None,
    ) -> Outcome:
        """Run one writing command: validate, authorise, decide, save atomically."""
        return self.submit(name, args, actor=actor, command_id=command_id, now=now)[0]

    def submit(
        self,
        name: str,
        args: dict[str, Any],
        *,
        actor: str = "operator",
        command_id: str | None = None,
        now: str | datetime | None = None,
    ) -> tuple[Outcome, bool]:
        """`execute`, also telling whether the command id was already recorded (a repeat,
        answered with the first outcome). Two racing requests with one id are told apart
        by the store's unique index on command ids: the loser's write conflicts, and its
        retry finds the winner's record."""
        request = self.request(name, args, actor)
        cid = command_id or uuid4().hex
        c.parse_id(cid, "command_id")
        # Where this process's cache was current: a failed unit forgets the cache's head,
        # and whether another process wrote since is asked of this one.
        known = self.cache.head
        relock = False  # lost to a long run of others' events, or twice to later times
        later = False  # an attempt lost to another's later time
        self.others_writing = max(self.others_writing - 1, 0)
        decided_on: int | None = None  # the log head the last attempt was decided on
        for attempt in range(MAX_ATTEMPTS):
            # The first attempt leaves "is this id new?" to the store's unique index; a
            # conflict (a duplicate id, or a concurrent writer) retries with every check.
            # A command id made here was never recorded, and the cache knows where this
            # process left the log: the first read is skipped, and the write refuses to land
            # anywhere but there (see UnitOfWork.commit).
            #
            # While other processes write too, the guess still lands if their events since
            # touch nothing this command read (LedgerRecorder._written_since); so does any
            # command after others' writes since its first read. Once a command loses to
            # another writer on what it read (`contended`), such losses come one after another:
            # each command decided twice, the second time often racing again. Then a
            # command takes the write lock first and reads and decides under it: it waits
            # its turn instead of losing a race. A guess that lost only to too many events to
            # check is decided again under the lock once. One that lost to another's later
            # time is decided again first on the log as it is (its clock then starts at that
            # time), and under the lock only if it loses so again: deciding under the lock
            # after every such loss held the lock over decisions, so two processes crossed
            # more, and a fifth of their commands were decided twice (docs/performance.md,
            # seventh round).
            locked = (self.contended > 0 or relock) and self.recorder.lock_first_supported
            trusted = not locked and attempt == 0 and command_id is None and self.cache.head is not None
            try:
                with self.recorder.one_connection():
                    if locked:
                        first = self.recorder.preflight_locked(cid, self.cache.head)
                        recorded, head = first.record, first.head
                        if self.contended > 0:
                            moved = head != known  # another process wrote since this one's cache was current
                            self.contended = CONTENDED_COMMANDS if moved else self.contended - 1
                        self._catch_up(first)
                    elif trusted:
                        recorded, head = None, self.cache.head
                    else:
                        first = self.recorder.preflight_since(cid, self.cache.head)
                        recorded, head = first.record, first.head
                        self._catch_up(first)
                    if recorded is not None:
                        return self.repeat(cid, request, recorded), True
                    decided_on = head
                    # A first read gets the check for the moment until its write; a guess
                    # while others write, for the time since this process's last write.
                    checked = not trusted or self.others_writing > 0
                    with self.unit_of_work(head, optimistic=attempt == 0, head_unread=trusted, checked=checked) as uow:
                        try:
                            outcome = uow.decide(request, cid, now, "IPLEDGER_NOW")
                        except LedgerError:
                            if trusted and self.recorder.preflight(None)[1] != head:
                                # Refused on what this process knew, but another writer
                                # wrote since: decide again on the log as it is.
                                raise RecordConflict("the log moved since this process last wrote") from None
                            raise
                        uow.commit()
                        if self.recorder.moved_since:
                            self.others_writing = CHECKED_COMMANDS
                        return outcome, False
            except RecordConflict as conflict:
                if isinstance(conflict, LogMoved) and not conflict.checked:
                    self.others_writing = CHECKED_COMMANDS  # decided again, and checked from now on
                elif isinstance(conflict, LogMoved) and conflict.later and not later:
                    later = True  # decided again on the log as it is, without the lock first
                elif isinstance(conflict, LogMoved) and not conflict.overlap:
                    relock = True
                elif self._lost_to_another_writer(decided_on):
                    self.contended = CONTENDED_COMMANDS
                if attempt:
                    time.sleep(random.uniform(0.005, 0.05) * attempt)
            except StoreOperationalError:
                if not trusted:
                    raise
                # The write was this command's first statement, and the kept connection may
                # have died since the last command (a server restart): the next attempt
                # reads first, on a new connection if need be, and that read finds the
                # command's record by its id if the write did land.
                continue
        raise ConcurrentWrite(
            f"command_id: {cid} lost {MAX_ATTEMPTS} races with concurrent writers; retry with the same command id"
        )

    def _catch_up(self, first: Preflight) -> None:
        """After a first read that found others' events after the cache's head: only their
        aggregates are put behind, and the cache is current at the new head (a server's
        threads each keep a cache, and each thread's write left every other's stale)."""
        cache = self.cache
        if first.moved is not None and cache.head is not None and first.head is not None and first.head > cache.head:
            cache.advance(first.head, first.moved, recorded_time(first.head_state))
            self.others_writing = CHECKED_COMMANDS

    def _lost_to_another_writer(self, known: int | None) -> bool:
        """After a write lost (see `submit`): whether another process wrote past `known`,
        the head the command was decided on (it wrote an aggregate this one did, or one
        this one read), rather than this command making an id that exists. Only where
        locking first is possible."""
        return self.recorder.lock_first_supported and self.recorder.preflight(None)[1] != known

    def unit_of_work(
        self,
        head: int | None = None,
        *,
        optimistic: bool = False,
        fresh: bool = False,
        head_unread: bool = False,
        checked: bool = False,
        keep: Collection[UUID] = (),
    ) -> UnitOfWork:
        """A unit of work on the log as it is at `head` (read now when not given).

        The aggregate cache carries over from the last unit if nobody wrote since
        (`fresh` drops it anyway). `optimistic` leaves new ids to the unique index: a unit
        that conflicts must be run again without it. `head_unread`: `head` is where this
        process left the log, not read from the store; the write conflicts if it moved.
        `checked`: the write lands after others' events since `head` only if the commands
        would have been decided the same on them (LedgerRecorder._written_since).
        `keep`: aggregates the cache must not drop (see AggregateCache.sync)."""
        if head is None:
            head = self.recorder.preflight(None)[1]
        last = self._head_time(head)
        if fresh:
            self.cache.forget()
        self.cache.sync(head, keep)
        return UnitOfWork(
            repository=self.repository,
            recorder=self.recorder,
            mapper=self.mapper,
            cache=self.cache,
            head=head,
            last=last,
            optimistic=optimistic,
            clock=self.clock,
            head_unread=head_unread,
            checked=checked,
        )

    def _head_time(self, head: int | None) -> datetime | None:
        """When the event at the log head was recorded: known without a read if it is
        this process's own last write."""
        if head is None:
            return None
        if head == self.cache.head and self.cache.head_time is not None:
            return self.cache.head_time
        return recorded_time(self.recorder.state_at(head))

    def request(self, name: str, args: dict[str, Any], actor: str) -> Request:
        """Parse a command as its issuer sent it, and the digest that names it."""
        command = c.Command.named(name).parse(args)
        who = Actor.parse(actor)
        if who.role == "auditor":
            raise NotAuthorised(f"actor: auditors read; {name} writes")
        return Request(name, command, who, request_digest(name, command.digest_args(args), who.id))

    @staticmethod
    def repeat(cid: str, request: Request, record: CommandRecord) -> Outcome:
        """A command id seen before: the same request gets the first outcome; anything else
        is refused. Records from before digests existed are judged by the command name."""
        if record.command != request.name:
            raise IdempotencyConflict(
                f"command_id: {cid} was first used for {record.command}, not {request.name}; "
                "a command id names one command (choose a new id)"
            )
        if record.digest is not None and record.digest != request.digest:
            raise IdempotencyConflict(
                f"command_id: {cid} was first used for {record.command} with other arguments or another actor; "
                "a command id names one command (choose a new id)"
            )
        return dict(orjson.loads(record.outcome))

    # ------------------------------------------------------------------ the record of commands

    def command_records(self, command_ids: list[str]) -> dict[str, CommandRecord]:
        return self.recorder.command_records(command_ids)

    def recorded_outcome(self, command_id: str) -> Outcome | None:
        recorded = self.recorder.preflight(command_id)[0]
        return None if recorded is None else dict(orjson.loads(recorded.outcome))

    def recorded_at(self, command_id: str) -> datetime | None:
        """When a recorded command was recorded (None if it never was)."""
        return recorded_time(self.recorder.command_state(command_id))

    def last_recorded(self) -> datetime | None:
        return recorded_time(self.recorder.last_state())

    # ------------------------------------------------------------------ the clock

    def clock(self, now: str | datetime | None, last: datetime | None, field: str = "IPLEDGER_NOW") -> datetime:
        """The recorded time: given with the command (an import line's `at`), pinned for
        this ledger (`pinned_now`), or the wall clock.

        Never backwards from `last`, the newest recorded time: a pinned time before it is
        refused; the wall clock, if behind the log (say the log was filled with pinned
        future times), is held at it.
        """
        pinned = now if now is not None else self.pinned_now
        wall = wall_clock()
        if pinned is not None:
            at = parse_time(pinned, field)
            if at > wall + CLOCK_TOLERANCE:
                raise ClockAhead(
                    f"{field}: {format_time(at)} is later than the wall clock ({format_time(wall)}) plus "
                    f"{int(CLOCK_TOLERANCE.total_seconds() // 60)} minutes; the ledger records no future"
                )
            if last is not None and at < last:
                raise ClockWentBackwards(
                    f"{field}: {format_time(at)} is before the last recorded event ({format_time(last)})"
                )
            return at
        return max(wall, last) if last is not None else wall


def wall_clock() -> datetime:
    """The machine's time, UTC: the bound for pinned times (tests replace it to pin the present)."""
    return datetime.now(UTC)
