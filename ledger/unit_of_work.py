"""The unit of work: one atomic write of one command (`execute`) or of many (an import batch).

    with exchange.unit_of_work(head, optimistic=True) as uow:
        outcome = uow.decide(request, command_id, now)
        uow.commit()

It holds what used to hide on the long-lived application: the aggregates the commands
loaded, the ids they created without asking the store (optimistic), the stored events and
the command records waiting to be written. `commit` writes them in one transaction (events,
hash chain links and command records together); leaving the block without committing, or
with an error, drops whatever the commands changed from the process's aggregate cache.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import TypeVar
from uuid import UUID

import orjson
from eventsourcing.application import AggregateNotFoundError, Repository, project_aggregate
from eventsourcing.persistence import IntegrityError as RecordConflict
from eventsourcing.persistence import StoredEvent

from ipledger.domain.assets import Asset
from ipledger.domain.base import Aggregate
from ipledger.domain.errors import DuplicateId, LedgerError, NotFound
from ipledger.domain.licences import Licence
from ipledger.domain.listings import Listing
from ipledger.domain.members import BidIndex, Member
from ipledger.domain.pledges import Pledge
from ipledger.domain.trades import Trade
from ipledger.domain.values import Actor
from ipledger.ledger import commands as c
from ipledger.ledger.chain import outcome_digest
from ipledger.ledger.codec import CommandStamp, Envelope, PydanticMapper
from ipledger.ledger.handlers import HANDLERS, Context, Outcome
from ipledger.ledger.recorder import CommandWrite, LedgerRecorder, LogMoved

A = TypeVar("A", bound=Aggregate)

#: Aggregates a process keeps in memory between commands (a server's worker, a script).
CACHE_LIMIT = 50_000
#: ... and an import, between batches: an aggregate missing from the cache is replayed
#: from the store (an asset's title chain, ~27 events at 1M, ~0.3 ms). At 1M events a
#: 50,000 cache missed 57,000 times (a quarter of the import); 150,000 missed 4,000 times,
#: for 100 MB more (peak RSS 321 -> 419 MB).
IMPORT_CACHE_LIMIT = 150_000


@dataclass(frozen=True)
class Request:
    """A command as issued: parsed, with its actor and the digest that names it."""

    name: str
    command: c.Command
    actor: Actor
    digest: str


class Loader:
    """Aggregates by natural key, for handlers and for reads outside a command."""

    def load(self, cls: type[A], key: str, field: str, what: str) -> A:
        raise NotImplementedError

    def member(self, member_id: str, field: str) -> Member:
        return self.load(Member, member_id, field, "member")

    def active_member(self, member_id: str, field: str) -> Member:
        member = self.member(member_id, field)
        member.require_active(field)
        return member

    def asset(self, ref: str) -> Asset:
        return self.load(Asset, ref, "ref", "asset")

    def listing(self, listing_id: str) -> Listing:
        return self.load(Listing, listing_id, "listing", "listing")

    def trade(self, trade_id: str) -> Trade:
        return self.load(Trade, trade_id, "trade", "trade")

    def licences_of(self, asset: Asset) -> dict[str, Licence]:
        return {lid: self.load(Licence, lid, "licence", "licence") for lid in asset.licence_ids}

    def pledges_of(self, asset: Asset) -> list[Pledge]:
        return [self.load(Pledge, pid, "pledge", "pledge") for pid in asset.pledge_ids]

    def listing_of_bid(self, bid_id: str) -> Listing:
        index = self.load(BidIndex, bid_id, "bid", "bid")
        return self.listing(index.listing_id)


def get(repository: Repository[UUID], cls: type[A], key: str, field: str, what: str) -> A:
    """An aggregate from the store, or NotFound naming the field."""
    try:
        aggregate: Aggregate = repository.get(cls.create_id(key))
    except AggregateNotFoundError:
        raise NotFound(f"{field}: no {what} {key}") from None
    assert isinstance(aggregate, cls)
    return aggregate


class AggregateCache:
    """The aggregates this process holds, current as of one log position (`head`).

    It is current only while the log head is where this process left it: then no other
    writer has written since. Aggregates are handed to commands uncopied (a copy per load
    cost more than the rules), so a unit of work that does not commit drops what it touched.

    What is no longer known to be current is kept `behind`: each is its aggregate's state
    at its own version (committed, never ahead of the store), brought forward on its next
    load by the events after that version alone. A replay reads them all: a busy listing's
    hundreds of bids, for each server thread whose cache another thread's write had left.
    """

    def __init__(self, limit: int = CACHE_LIMIT) -> None:
        self.aggregates: OrderedDict[UUID, Aggregate] = OrderedDict()
        self.behind: OrderedDict[UUID, Aggregate] = OrderedDict()
        self.limit = limit
        self.head: int | None = None
        self.head_time: datetime | None = None  # when the event at `head` was recorded, if known

    def sync(self, head: int | None, keep: Collection[UUID] = ()) -> None:
        """Current at `head`, or everything held put behind; the oldest aggregates beyond
        the limit dropped, except those in `keep` (a batch in flight to an import's writer:
        the store does not have their state yet, so they are never put behind)."""
        if head != self.head:
            self.outdate(drop=keep)
            self.head = head  # an empty cache is current anywhere; the head's time is unknown
        guard = len(self.aggregates)
        while len(self.aggregates) > self.limit and guard:
            guard -= 1
            aggregate_id, aggregate = self.aggregates.popitem(last=False)
            if aggregate_id in keep:
                self.aggregates[aggregate_id] = aggregate

    def drop(self, aggregate_ids: Collection[UUID]) -> None:
        """Forget these (touched by a unit of work that did not commit: possibly ahead of
        the store)."""
        for aggregate_id in aggregate_ids:
            self.aggregates.pop(aggregate_id, None)
            self.behind.pop(aggregate_id, None)

    def outdate(self, drop: Collection[UUID] = ()) -> None:
        """Nothing held is known to be current: it is put behind, except `drop`, dropped."""
        self.drop(drop)
        self._put_behind(self.aggregates)
        self.aggregates.clear()
        self.head = self.head_time = None

    def _put_behind(self, aggregates: Mapping[UUID, Aggregate]) -> None:
        self.behind.update(aggregates)
        while len(self.behind) > self.limit:
            self.behind.popitem(last=False)

    def advance(self, head: int, moved: Collection[UUID], head_time: datetime | None) -> None:
        """Current again at `head`, past others' events since this cache's head: `moved`
        names every aggregate those events changed, and only those are put behind."""
        for aggregate_id in moved:
            aggregate = self.aggregates.pop(aggregate_id, None)
            if aggregate is not None:
                self._put_behind({aggregate_id: aggregate})
        self.head, self.head_time = head, head_time

    def forget(self) -> None:
        """Drop everything (a restore, an import that fell back: the store is another now)."""
        self.aggregates.clear()
        self.behind.clear()
        self.head = self.head_time = None

    def wrote(
        self,
        read_head: int | None,
        positions: list[int],
        chained_after: int | None,
        at: datetime | None,
        moved: Collection[UUID] | None = None,
    ) -> None:
        """After a write: still current at its last position if nobody wrote between the head
        read and the write (the recorder linked the first new event to that head), or if
        the recorder let the write past others' events (`moved`: their aggregates, put
        behind here, as the write touched none of them)."""
        if not positions:
            return
        if moved is not None:
            self.advance(max(positions), moved, at)
            return
        current = chained_after == (read_head or 0)
        self.head = max(positions) if current else None
        self.head_time = at if current else None  # every event of a write is recorded at its time


class UnitOfWork(Loader):
    def __init__(
        self,
        *,
        repository: Repository[UUID],
        recorder: LedgerRecorder,
        mapper: PydanticMapper,
        cache: AggregateCache,
        head: int | None,
        last: datetime | None,
        optimistic: bool,
        clock: Callable[[str | datetime | None, datetime | None, str], datetime],
        head_unread: bool = False,
        checked: bool = False,
    ) -> None:
        self.repository, self.recorder, self.mapper, self.cache = repository, recorder, mapper, cache
        self.checked = checked  # the write may land past others' events after `head`, checked
        self.head = head
        self.last = last  # the newest recorded time: no command in this unit goes back from it
        self.optimistic = optimistic
        self.clock = clock
        self.head_unread = head_unread  # `head` is the cache's, not read: the write checks it
        self.touched: list[UUID] = []
        self.unchecked: list[tuple[UUID, str]] = []  # ids an optimistic command did not look up
        self.looked_up: list[UUID] = []  # ids the commands found absent, or left to the store
        self.first_at: datetime | None = None  # the first command's recorded time
        self.events: list[StoredEvent] = []
        self.commands: list[CommandWrite] = []
        self.committed = False

    def __enter__(self) -> UnitOfWork:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if kind is not None and issubclass(kind, LogMoved):
            # Refused before anything was written, on what others wrote after `head`: the
            # cache is still current there, but for what this unit touched (unsaved events).
            self.cache.drop(self.touched)
        elif kind is not None and issubclass(kind, RecordConflict):
            # Another writer won: nothing cached is known to be current, and what this
            # unit touched may hold its unsaved events.
            self.cache.outdate(drop=self.touched)
        elif not self.committed:
            self.rollback()

    def rollback(self) -> None:
        """Drop what the uncommitted commands changed: the aggregates they loaded may hold
        events that will never be saved."""
        self.cache.drop(self.touched)
        self.touched.clear()
        self.looked_up.clear()
        self.events.clear()
        self.commands.clear()

    # ------------------------------------------------------------------ loading

    def load(self, cls: type[A], key: str, field: str, what: str) -> A:
        """From the cache (current, see AggregateCache), else from the store into the cache."""
        aggregate_id = cls.create_id(key)
        cached = self.cache.aggregates.get(aggregate_id)
        if cached is not None:
            self.cache.aggregates.move_to_end(aggregate_id)
            assert isinstance(cached, cls)
            aggregate = cached
        else:
            behind = self.cache.behind.pop(aggregate_id, None)
            if behind is None:
                aggregate = get(self.repository, cls, key, field, what)
            else:  # its later events only (eventsourcing's fast-forward of a cached aggregate)
                later = self.repository.event_store.get(aggregate_id, gt=behind.version)
                forward: Aggregate | None = project_aggregate(behind, later)
                assert isinstance(forward, cls)
                aggregate = forward
            self.cache.aggregates[aggregate_id] = aggregate
        self.touched.append(aggregate_id)
        return aggregate

    def require_new(self, cls: type[Aggregate], key: str, field: str, what: str) -> str:
        """Refuse an id that exists. Optimistically the store is not asked: the check is
        noted and settled (`_settle_unchecked`) before anything is written."""
        aggregate_id = cls.create_id(key)
        message = f"{field}: {what} {key} already exists"
        if aggregate_id in self.cache.aggregates or aggregate_id in self.cache.behind:  # never deleted: it exists
            raise DuplicateId(message)
        if self.optimistic:
            self.unchecked.append((aggregate_id, message))
        elif aggregate_id in self.repository:
            raise DuplicateId(message)
        else:
            self.looked_up.append(aggregate_id)
        return key

    def _settle_unchecked(self, saved: list[Aggregate | None] | None) -> None:
        """Make an optimistic command end exactly as a checked one would.

        An id created by the command (its aggregate's first event is version 1) is left
        to the unique index: a duplicate conflicts and the unit is retried with every
        check. Any other unchecked id (a trade id of a listing that closed unsold), and
        every unchecked id when the command was refused by a later rule (`saved` None),
        is looked up now, in the order the handler asked: the first that exists is the
        DuplicateId the checked command would have raised first."""
        unchecked, self.unchecked = self.unchecked, []
        self.looked_up.extend(aggregate_id for aggregate_id, _ in unchecked)
        created = {
            a.id
            for a in saved or ()
            if a is not None and a.pending_events and a.pending_events[0].originator_version == 1
        }
        for aggregate_id, message in unchecked:
            if aggregate_id not in created and aggregate_id in self.repository:
                raise DuplicateId(message)

    # ------------------------------------------------------------------ deciding

    def decide(self, request: Request, command_id: str, now: str | datetime | None, field: str) -> Outcome:
        """Run one command against the unit's state: its events and record wait for `commit`.

        The one decide path of `execute` and of an import batch: the clock (`now` pinned,
        never before the unit's last recorded time), the actor's standing, the handler and
        the domain's rules, then the events mapped for storage with their envelope."""
        at = self.clock(now, self.last, field)
        who = request.actor
        if who.member_id is not None:  # a member acting for itself must be admitted and active
            self.member(who.member_id, "actor").require_active("actor")
        handler = HANDLERS[type(request.command)]
        try:
            outcome, aggregates = handler(request.command, self, Context(actor=who, command_id=command_id, at=at))
        except LedgerError:
            self._settle_unchecked(None)
            raise
        self._settle_unchecked(aggregates)
        answer = orjson.dumps(outcome)
        events = self._stored_events(aggregates, request, command_id, answer)
        for aggregate in aggregates:
            if aggregate is not None:  # new ones too: later commands of the unit load them
                self.cache.aggregates[aggregate.id] = aggregate
                self.touched.append(aggregate.id)
        self.events.extend(events)
        self.commands.append((command_id, request.name, answer, len(events), request.digest))
        self.last = at
        if self.first_at is None:
            self.first_at = at
        return outcome

    def _stored_events(
        self, aggregates: list[Aggregate | None], request: Request, command_id: str, outcome: bytes
    ) -> list[StoredEvent]:
        """The command's new events, mapped for storage with who issued it (the envelope).

        The last one's envelope also carries the command record's digests (the request's
        and the outcome's): the record lives outside the hash chain, and this is how
        `audit verify` proves it was not edited."""
        new_events = [e for aggregate in aggregates if aggregate is not None for e in aggregate.collect_events()]
        actor = request.actor.id
        envelope = Envelope(actor, command_id)
        stored = [self.mapper.to_stored_event(e, envelope) for e in new_events[:-1]]
        if new_events:
            stamp = CommandStamp(command=request.name, digest=request.digest, outcome=outcome_digest(outcome))
            stored.append(self.mapper.to_stored_event(new_events[-1], Envelope(actor, command_id, stamp)))
        return stored

    # ------------------------------------------------------------------ writing

    def commit(self) -> int:
        """Write every decided command atomically; returns how many commands were written."""
        if self.events:
            # The head the commands were decided on is checked under the write lock: others'
            # events since are let through (`checked`) if the commands read none of their
            # aggregates and were recorded no earlier (LedgerRecorder._write); else, or
            # for a head not read and not `checked`, the write conflicts, and is decided
            # again on fresh state.
            expect = (self.head or 0) if self.checked or self.head_unread else None
            positions = self.recorder.insert_events(
                self.events,
                commands=self.commands,
                after=expect,
                reads=set(self.touched).union(self.looked_up) if self.checked else None,
                at=self.first_at,
            )
            self.cache.wrote(
                self.head, list(positions or ()), self.recorder.last_prev_position, self.last, self.recorder.moved_since
            )
        self.committed = True
        return len(self.commands)

    def hand_off(self) -> tuple[list[StoredEvent], list[CommandWrite]]:
        """What `commit` would write, for a writer elsewhere (an import's writer process,
        ledger/writer.py, which answers for it): the unit keeps what it decided in the cache."""
        self.committed = True
        return self.events, self.commands
