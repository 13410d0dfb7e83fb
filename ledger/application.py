"""The Exchange application: command handlers over the event store.

Each handler loads aggregates, calls one domain method per aggregate (which checks the
rules and records events), and returns the outcome with the aggregates to save. The
`execute` wrapper adds what every command needs — authorisation of the actor, the
clock, idempotency by command id, one atomic save (events, hash chain and command
record together) and bounded retries when a concurrent writer wins the race.
"""

from __future__ import annotations

import os
import random
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Callable, ClassVar, TypeVar
from uuid import UUID, uuid4, uuid5

import orjson
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError as RecordConflict
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from ipledger.domain.assets import Asset
from ipledger.domain.base import NAMESPACE, Aggregate
from ipledger.domain.errors import (
    ClockAhead,
    ClockWentBackwards,
    ConcurrentWrite,
    DuplicateId,
    IdempotencyConflict,
    LedgerError,
    NotAuthorised,
    NotFound,
)
from ipledger.domain.licences import Licence, check_conflicts
from ipledger.domain.listings import Listing, Sale
from ipledger.domain.members import BidIndex, Member
from ipledger.domain.pledges import Pledge, use_consents
from ipledger.domain.trades import Trade
from ipledger.domain.values import Actor, ListingType, format_time, owner_list, parse_time
from ipledger.ledger import commands as c
from ipledger.ledger.chain import outcome_digest, request_digest
from ipledger.ledger.codec import CommandStamp, Envelope, OrjsonTranscoder, PydanticMapper
from ipledger.ledger.config import store_url
from ipledger.ledger.recorder import CommandRecord, LedgerFactory, LedgerRecorder
from ipledger.ledger.schema import ensure_schema

MAX_ATTEMPTS = 5
#: How far a pinned time may run ahead of the wall clock (clock skew between machines).
CLOCK_TOLERANCE = timedelta(minutes=5)
CACHE_LIMIT = 50_000  # aggregates an import keeps in memory between batches (about 200 MB)

A = TypeVar("A", bound=Aggregate)


@dataclass(frozen=True)
class Context:
    """What every handler knows about the command it is executing."""

    actor: Actor
    command_id: str
    at: datetime

    def new_id(self, prefix: str, purpose: str = "") -> str:
        """A fresh id; derived from the command id, so a retried command makes the same one."""
        return f"{prefix}-{uuid5(NAMESPACE, f'{self.command_id}/{prefix}/{purpose}').hex[:10]}"


@dataclass(frozen=True)
class Request:
    """A command as issued: parsed, with its actor and the digest that names it."""

    name: str
    command: c.Command
    actor: Actor
    digest: str


Outcome = dict[str, Any]
Result = tuple[Outcome, list[Aggregate | None]]


class Exchange(Application[UUID]):
    name = "IPLedger"

    env: ClassVar[dict[str, str]] = {
        "PERSISTENCE_MODULE": get_topic(LedgerFactory),
        "MAPPER_TOPIC": get_topic(PydanticMapper),
        "TRANSCODER_TOPIC": get_topic(OrjsonTranscoder),
    }
    # What `env` makes of the library's recorder and mapper (checked in __init__).
    recorder: LedgerRecorder
    mapper: PydanticMapper

    def __init__(self, db: str | None = None) -> None:
        self.url = store_url(db)
        # Tables come from versioned migrations (ledger/migrations), not from create_all.
        super().__init__(env={"SQLALCHEMY_URL": self.url, "CREATE_TABLE": "n"})
        if not isinstance(self.recorder, LedgerRecorder) or not isinstance(self.mapper, PydanticMapper):
            # The process environment can override `env`; another store would lose the chain.
            raise TypeError("PERSISTENCE_MODULE and MAPPER_TOPIC must name ipledger's LedgerFactory and PydanticMapper")
        self._aggregates: OrderedDict[UUID, Aggregate] = OrderedDict()
        ensure_schema(self.engine)
        self.handlers: dict[type[c.Command], Callable[[Any, Context], Result]] = {
            c.AddMember: self.add_member,
            c.SuspendMember: self.suspend_member,
            c.ReinstateMember: self.reinstate_member,
            c.RegisterAsset: self.register_asset,
            c.AssignAsset: self.assign_asset,
            c.OpenListing: self.open_listing,
            c.WithdrawListing: self.withdraw_listing,
            c.CloseListing: self.close_listing,
            c.PlaceBid: self.place_bid,
            c.WithdrawBid: self.withdraw_bid,
            c.AcceptBid: self.accept_bid,
            c.SettleTrade: self.settle_trade,
            c.VoidTrade: self.void_trade,
            c.ConsentAsCoOwner: self.consent_as_co_owner,
            c.GrantLicence: self.grant_licence,
            c.TerminateLicence: self.terminate_licence,
            c.SurrenderLicence: self.surrender_licence,
            c.RegisterPledge: self.register_pledge,
            c.ConsentAsPledgee: self.consent_as_pledgee,
            c.ReleasePledge: self.release_pledge,
            c.EnforcePledge: self.enforce_pledge,
        }

    def close(self) -> None:
        self.recorder.release()
        super().close()

    @property
    def engine(self) -> Any:
        return self.recorder.datastore.engine

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
        request = self.request(name, args, actor)
        command, who = request.command, request.actor
        handler = self.handlers[type(command)]
        cid = command_id or uuid4().hex
        c.parse_id(cid, "command_id")
        for attempt in range(MAX_ATTEMPTS):
            # The first attempt leaves "is this id new?" to the store's unique index; a
            # conflict (a duplicate id, or a concurrent writer) retries with every check.
            self._touched, self._optimistic, self._unchecked = [], attempt == 0, []
            try:
                with self.recorder.one_connection():
                    recorded, head = self.recorder.preflight(cid)
                    if recorded is not None:
                        return self.repeat(cid, request, recorded)
                    last = self._head_time(head)
                    self._sync(head)
                    self._require_active_actor(who)
                    ctx = Context(actor=who, command_id=cid, at=self.clock(now, last=last))
                    try:
                        outcome, aggregates = handler(command, ctx)
                    except LedgerError:
                        self._settle_unchecked(None)
                        raise
                    self._settle_unchecked(aggregates)
                    answer = orjson.dumps(outcome)
                    events = self._stored_events(aggregates, request, cid, answer)
                    positions = self.recorder.insert_events(
                        events, commands=[(cid, name, answer, len(events), request.digest)]
                    )
                    self._wrote(head, positions, aggregates, ctx.at)
                    return outcome
            except RecordConflict:
                self._forget()
                if attempt:
                    time.sleep(random.uniform(0.005, 0.05) * attempt)
            except BaseException:
                for aggregate_id in self._touched:  # they may hold changes that were never saved
                    self._aggregates.pop(aggregate_id, None)
                raise
            finally:
                self._touched, self._optimistic = None, False
        raise ConcurrentWrite(
            f"command_id: {cid} lost {MAX_ATTEMPTS} races with concurrent writers; retry with the same command id"
        )

    # ------------------------------------------------------------------ the aggregate cache

    def _sync(self, head: int | None) -> None:
        """Keep the cache only if the log head is where this process left it: then no
        other writer has written since, and every cached aggregate is current."""
        if head != self._synced_head:
            self._forget()
            self._synced_head = head  # an empty cache is current anywhere; the head's time is unknown
        while len(self._aggregates) > CACHE_LIMIT:
            self._aggregates.popitem(last=False)

    def _head_time(self, head: int | None) -> datetime | None:
        """When the event at the log head was recorded: known without a read if it is
        this process's own last write."""
        if head is None:
            return None
        if head == self._synced_head and self._synced_at is not None:
            return self._synced_at
        return _recorded_time(self.recorder.state_at(head))

    def _wrote(self, head: int | None, positions: Any, saved: list[Aggregate | None], at: datetime | None) -> None:
        """After a write: the cache is current at its last position if nobody wrote between
        the head we read and our write (the recorder saw the chain end at that head); the
        aggregates just saved, new ones included, are current and join it."""
        if positions:
            current = self.recorder.last_prev_position == (head or 0)
            self._synced_head = max(positions) if current else None
            self._synced_at = at if current else None  # every event of a command is recorded at its time
        for aggregate in saved:
            if aggregate is not None:
                self._aggregates[aggregate.id] = aggregate

    def _forget(self) -> None:
        self._aggregates.clear()
        self._synced_head = self._synced_at = None

    def _stored_events(
        self, aggregates: list[Aggregate | None], request: Request, cid: str, outcome: bytes
    ) -> list[StoredEvent]:
        """The command's new events, mapped for storage with who issued it (the envelope).

        The last one's envelope also carries the command record's digests (the request's
        and the outcome's): the record lives outside the hash chain, and this is how
        `audit verify` proves it was not edited."""
        new_events = [e for aggregate in aggregates if aggregate is not None for e in aggregate.collect_events()]
        envelope = Envelope(actor=request.actor.id, command_id=cid)
        stored = [self.mapper.to_stored_event(e, envelope) for e in new_events[:-1]]
        if new_events:
            stamp = CommandStamp(command=request.name, digest=request.digest, outcome=outcome_digest(outcome))
            stored.append(self.mapper.to_stored_event(new_events[-1], replace(envelope, stamp=stamp)))
        return stored

    def request(self, name: str, args: dict[str, Any], actor: str) -> Request:
        """Parse a command as its issuer sent it, and the digest that names it."""
        command = c.Command.named(name).parse(args)
        who = Actor.parse(actor)
        self._require_writer(who, name)
        return Request(name, command, who, request_digest(name, command.model_dump(mode="json"), who.id))

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

    @staticmethod
    def _require_writer(who: Actor, name: str) -> None:
        if who.role == "auditor":
            raise NotAuthorised(f"actor: auditors read; {name} writes")

    def _require_active_actor(self, who: Actor) -> None:
        """A member acting for itself must be admitted and active; roles need no record."""
        if who.member_id is not None:
            self.member(who.member_id, "actor").require_active("actor")

    # ------------------------------------------------------------------ group commit

    def begin_batch(self, keep_cache: bool = False, optimistic: bool = False) -> None:
        """Stage many commands in memory and write them in one transaction (`flush_batch`).

        Aggregates are cached across the batch, so a later command sees what an earlier
        one decided; every rule runs exactly as in `execute`. With `keep_cache` the cache
        outlives the batch (an import's batches share it) for as long as no other writer
        writes. `optimistic` leaves new ids to the unique index (see `execute`); a batch
        that conflicts must be staged again without it.
        """
        head = self.recorder.preflight(None)[1]
        last = self._head_time(head)
        if not keep_cache:
            self._forget()
        self._sync(head)
        self._optimistic = optimistic
        self._batch_head = head
        self._staged = self._aggregates
        self._staged_events: list[StoredEvent] = []
        self._staged_commands: list[tuple[str, str, bytes, int, str]] = []
        self._staged_clock = last

    def stage(self, request: Request, *, command_id: str, now: str | None) -> Outcome:
        """Decide one command against the staged state; its events wait for `flush_batch`."""
        assert self._staged is not None, "begin_batch() first"
        name, command, who = request.name, request.command, request.actor
        cid = c.parse_id(command_id, "command_id")
        at = self.clock(now, last=self._staged_clock, field="at")
        self._require_active_actor(who)
        self._unchecked = []
        try:
            outcome, aggregates = self.handlers[type(command)](command, Context(actor=who, command_id=cid, at=at))
        except LedgerError:
            self._settle_unchecked(None)
            raise
        self._settle_unchecked(aggregates)
        answer = orjson.dumps(outcome)
        events = self._stored_events(aggregates, request, cid, answer)
        for aggregate in aggregates:
            if aggregate is not None:
                self._staged[aggregate.id] = aggregate
        self._staged_events.extend(events)
        self._staged_commands.append((cid, name, answer, len(events), request.digest))
        self._staged_clock = at
        return outcome

    def flush_batch(self) -> int:
        """Write the staged commands' events, chain links and command records atomically."""
        events, commands = self._staged_events, self._staged_commands
        self._staged, self._optimistic = None, False
        if events:
            try:
                positions = self.recorder.insert_events(events, commands=commands)
            except BaseException:
                self._forget()
                raise
            # Staged aggregates are in the cache already; the batch's last line has the latest time.
            self._wrote(self._batch_head, positions, [], self._staged_clock)
        return len(commands)

    def flush_batch_discard(self) -> None:
        self._staged, self._optimistic = None, False
        self._forget()

    def command_records(self, command_ids: list[str]) -> dict[str, CommandRecord]:
        return self.recorder.command_records(command_ids)

    def recorded_outcome(self, command_id: str) -> Outcome | None:
        recorded = self.recorder.preflight(command_id)[0]
        return None if recorded is None else dict(orjson.loads(recorded.outcome))

    def recorded_at(self, command_id: str) -> datetime | None:
        """When a recorded command was recorded (None if it never was)."""
        return _recorded_time(self.recorder.command_state(command_id))

    def last_recorded(self) -> datetime | None:
        return _recorded_time(self.recorder.last_state())

    @staticmethod
    def clock(now: str | datetime | None, *, last: datetime | None, field: str = "IPLEDGER_NOW") -> datetime:
        """The recorded time: pinned (IPLEDGER_NOW / an import line's `at`) or the wall clock.

        Never backwards from `last`, the newest recorded time: a pinned time before it is
        refused; the wall clock, if behind the log (say the log was filled with pinned
        future times), is held at it.
        """
        pinned = now if now is not None else os.environ.get("IPLEDGER_NOW") or None
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

    # ------------------------------------------------------------------ loading

    #: The aggregate cache is current as of this log position (see `_sync`): commands
    #: load from it without reading the store, and change its aggregates in place.
    _synced_head: int | None = None
    _synced_at: datetime | None = None
    #: Aggregates loaded by the running `execute`: handed out uncopied (a copy per load
    #: cost more than the rules), so a command that fails drops them from the cache.
    _touched: list[UUID] | None = None
    _staged: dict[UUID, Aggregate] | None = None
    _optimistic = False
    _unchecked: list[tuple[UUID, str]] = []  # ids an optimistic command did not look up (see require_new)

    def load(self, cls: type[A], key: str, field: str, what: str) -> A:
        """An aggregate by its natural key: from the cache inside a command or a batch
        (which keeps it current, see `_sync`), otherwise straight from the store."""
        aggregate_id = cls.create_id(key)  # type: ignore[attr-defined]
        touched = self._touched
        in_command = touched is not None or self._staged is not None
        aggregate = self._aggregates.get(aggregate_id) if in_command else None
        if aggregate is not None:
            self._aggregates.move_to_end(aggregate_id)
        else:
            try:
                aggregate = self.repository.get(aggregate_id)
            except AggregateNotFoundError:
                raise NotFound(f"{field}: no {what} {key}") from None
            if in_command:
                self._aggregates[aggregate_id] = aggregate
        if touched is not None:
            touched.append(aggregate_id)
        return aggregate  # type: ignore[return-value]

    def require_new(self, cls: type[Aggregate], key: str, field: str, what: str) -> str:
        """Refuse an id that exists. Optimistically (see `execute`) the store is not asked:
        the check is noted and settled by `_settle_unchecked` before anything is written."""
        aggregate_id = cls.create_id(key)  # type: ignore[attr-defined]
        message = f"{field}: {what} {key} already exists"
        if aggregate_id in self._aggregates:  # aggregates are never deleted: a cached one exists
            raise DuplicateId(message)
        if self._optimistic:
            self._unchecked.append((aggregate_id, message))
        elif aggregate_id in self.repository:
            raise DuplicateId(message)
        return key

    def _settle_unchecked(self, saved: list[Aggregate | None] | None) -> None:
        """Make an optimistic command end exactly as a checked one would.

        An id created by the command (its aggregate's first event is version 1) is left
        to the unique index: a duplicate conflicts and the command is retried with every
        check. Any other unchecked id (a trade id of a listing that closed unsold), and
        every unchecked id when the command was refused by a later rule (`saved` None),
        is looked up now, in the order the handler asked: the first that exists is the
        DuplicateId the checked command would have raised first."""
        unchecked, self._unchecked = self._unchecked, []
        created = {
            a.id
            for a in saved or ()
            if a is not None and a.pending_events and a.pending_events[0].originator_version == 1
        }
        for aggregate_id, message in unchecked:
            if aggregate_id not in created and aggregate_id in self.repository:
                raise DuplicateId(message)

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

    # ------------------------------------------------------------------ members

    def add_member(self, cmd: c.AddMember, ctx: Context) -> Result:
        self.require_new(Member, cmd.id, "id", "member")
        member = Member.admit(
            member_id=cmd.id, name=cmd.title, kind=cmd.kind, country=cmd.country, actor=ctx.actor, at=ctx.at
        )
        return {"id": cmd.id, "status": member.status}, [member]

    def suspend_member(self, cmd: c.SuspendMember, ctx: Context) -> Result:
        member = self.member(cmd.id, "id")
        member.suspend(reason=cmd.reason or "", actor=ctx.actor, at=ctx.at)
        return {"id": cmd.id, "status": member.status}, [member]

    def reinstate_member(self, cmd: c.ReinstateMember, ctx: Context) -> Result:
        member = self.member(cmd.id, "id")
        member.reinstate(actor=ctx.actor, at=ctx.at)
        return {"id": cmd.id, "status": member.status}, [member]

    # ------------------------------------------------------------------ assets

    def register_asset(self, cmd: c.RegisterAsset, ctx: Context) -> Result:
        self.require_new(Asset, cmd.ref, "ref", "asset")
        for owner in cmd.owner:
            self.active_member(owner, "owner")
        asset = Asset.register(
            ref=cmd.ref,
            title=cmd.title,
            owners=cmd.owner,
            expires_on=cmd.expires_on,
            effective=cmd.effective,
            actor=ctx.actor,
            at=ctx.at,
        )
        return {"id": cmd.ref, "owners": owner_list(asset.owners)}, [asset]

    def assign_asset(self, cmd: c.AssignAsset, ctx: Context) -> Result:
        asset = self.asset(cmd.ref)
        for member in cmd.to:
            self.active_member(member, "to")
        asset.assign(to=cmd.to, kind=cmd.conveyance, effective=cmd.effective, actor=ctx.actor, at=ctx.at)
        pledges = self.pledges_of(asset)
        use_consents(pledges, act="assignment", offered=cmd.consent, used_for=ctx.command_id, ref=asset.ref, at=ctx.at)
        return {"id": cmd.ref, "owners": owner_list(asset.owners)}, [asset, *pledges]

    def consent_as_co_owner(self, cmd: c.ConsentAsCoOwner, ctx: Context) -> Result:
        asset = self.asset(cmd.ref)
        self.member(cmd.member, "member")
        consent_id = cmd.id or ctx.new_id("CC")
        asset.give_co_owner_consent(consent_id=consent_id, member=cmd.member, act=cmd.act, actor=ctx.actor, at=ctx.at)
        return {"id": consent_id, "asset": asset.ref, "member": cmd.member, "act": cmd.act}, [asset]

    # ------------------------------------------------------------------ listings

    def open_listing(self, cmd: c.OpenListing, ctx: Context) -> Result:
        listing_id = self.require_new(Listing, cmd.id or ctx.new_id("L"), "id", "listing")
        asset = self.asset(cmd.ref)
        sellers = [self.member(m, "seller") for m in sorted(asset.owners)]
        scope = cmd.scope
        if scope is not None:
            check_conflicts(scope, self.licences_of(asset))
        pledges = self.pledges_of(asset)
        act = "listing" if cmd.type == ListingType.assignment else "licence"
        listing = Listing.open(
            listing_id=listing_id,
            asset=asset,
            sellers=sellers,
            type=cmd.type,
            mechanism=cmd.mechanism,
            currency=cmd.currency,
            opens_at=cmd.opens,
            closes_at=cmd.closes,
            ask=cmd.ask,
            reserve=cmd.reserve,
            increment=cmd.increment,
            extend_minutes=cmd.extend_minutes,
            settlement_days=cmd.settlement_days,
            scope=scope,
            actor=ctx.actor,
            at=ctx.at,
        )
        use_consents(pledges, act=act, offered=cmd.consent, used_for=ctx.command_id, ref=asset.ref, at=ctx.at)
        return {"id": listing_id, "asset": cmd.ref, "status": listing.status}, [listing, asset, *pledges]

    def withdraw_listing(self, cmd: c.WithdrawListing, ctx: Context) -> Result:
        listing = self.listing(cmd.listing)
        asset = self.asset(listing.ref)
        listing.withdraw(actor=ctx.actor, at=ctx.at)
        asset.release_hold(holder=listing.listing_id, reason="withdrawn", at=ctx.at)
        return {"id": listing.listing_id, "status": listing.status}, [listing, asset]

    def close_listing(self, cmd: c.CloseListing, ctx: Context) -> Result:
        listing = self.listing(cmd.listing)
        asset = self.asset(listing.ref)
        trade_id = self.require_new(Trade, cmd.trade_id or ctx.new_id("T"), "trade_id", "trade")
        sale = listing.close(trade_id=trade_id, actor=ctx.actor, at=ctx.at)
        outcome: Outcome = {"id": listing.listing_id, "status": listing.status}
        if sale is None:
            asset.release_hold(holder=listing.listing_id, reason="unsold", at=ctx.at)
            return outcome, [listing, asset]
        trade = self._strike(listing, sale, asset, ctx)
        return {**outcome, "trade": trade.trade_id, "winner": sale.buyer, "price": str(sale.price)}, [
            listing,
            asset,
            trade,
        ]

    def _strike(self, listing: Listing, sale: Sale, asset: Asset, ctx: Context) -> Trade:
        trade = Trade.strike(listing=listing, sale=sale, at=ctx.at)
        if listing.type == ListingType.assignment.value:
            asset.reserve(trade_id=trade.trade_id, listing_id=listing.listing_id, deadline=trade.deadline, at=ctx.at)
        return trade

    # ------------------------------------------------------------------ bids

    def place_bid(self, cmd: c.PlaceBid, ctx: Context) -> Result:
        listing = self.listing(cmd.listing)
        bid_id = self.require_new(BidIndex, cmd.id or ctx.new_id("B"), "id", "bid")
        bidder = self.member(cmd.bidder, "bidder")
        trade_id = cmd.trade_id or ctx.new_id("T")
        sale = listing.place_bid(
            bid_id=bid_id, bidder=bidder, amount=cmd.amount, trade_id=trade_id, actor=ctx.actor, at=ctx.at
        )
        index = BidIndex.index(bid_id=bid_id, listing_id=listing.listing_id, at=ctx.at)
        outcome: Outcome = {"id": bid_id, "listing": listing.listing_id, "amount": str(listing.bids[bid_id].amount)}
        if sale is None:
            return outcome, [listing, index]
        self.require_new(Trade, trade_id, "trade_id", "trade")
        asset = self.asset(listing.ref)
        trade = self._strike(listing, sale, asset, ctx)
        return {**outcome, "trade": trade.trade_id}, [listing, index, asset, trade]

    def withdraw_bid(self, cmd: c.WithdrawBid, ctx: Context) -> Result:
        listing = self.listing_of_bid(cmd.bid)
        listing.withdraw_bid(bid_id=cmd.bid, actor=ctx.actor, at=ctx.at)
        return {"id": cmd.bid, "listing": listing.listing_id, "state": "withdrawn"}, [listing]

    def accept_bid(self, cmd: c.AcceptBid, ctx: Context) -> Result:
        listing = self.listing_of_bid(cmd.bid)
        asset = self.asset(listing.ref)
        trade_id = self.require_new(Trade, cmd.trade_id or ctx.new_id("T"), "trade_id", "trade")
        sale = listing.accept_bid(bid_id=cmd.bid, trade_id=trade_id, actor=ctx.actor, at=ctx.at)
        trade = self._strike(listing, sale, asset, ctx)
        return {"id": cmd.bid, "listing": listing.listing_id, "trade": trade.trade_id}, [listing, asset, trade]

    # ------------------------------------------------------------------ trades

    def settle_trade(self, cmd: c.SettleTrade, ctx: Context) -> Result:
        trade = self.trade(cmd.trade)
        asset = self.asset(trade.ref)
        self.active_member(trade.buyer, "buyer")
        effective = trade.settle(payment_ref=cmd.payment_ref, effective=cmd.effective, actor=ctx.actor, at=ctx.at)
        outcome: Outcome = {"id": trade.trade_id, "state": trade.state, "asset": trade.ref}
        if trade.type == ListingType.assignment.value:
            asset.convey_under_trade(trade_id=trade.trade_id, buyer=trade.buyer, effective=effective, at=ctx.at)
            return outcome, [trade, asset]
        assert trade.scope is not None
        licence_id = self.require_new(Licence, f"LIC-{trade.trade_id}", "trade", "licence")
        licence = Licence.grant(
            licence_id=licence_id,
            ref=asset.ref,
            licensors=list(trade.sellers),
            licensee=self.member(trade.buyer, "buyer"),
            scope=trade.scope,
            royalty_rate=None,
            lump_sum=trade.price,
            currency=trade.currency,
            parent=None,
            others=self.licences_of(asset),
            asset_registered_on=asset.registered_on,
            asset_expires_on=asset.expires_on,
            actor=None,
            at=ctx.at,
        )
        asset.license(licence_id=licence_id, exclusive=trade.scope.type.value == "exclusive", actor=None, at=ctx.at)
        return {**outcome, "licence": licence_id}, [trade, asset, licence]

    def void_trade(self, cmd: c.VoidTrade, ctx: Context) -> Result:
        trade = self.trade(cmd.trade)
        asset = self.asset(trade.ref)
        listing = self.listing(trade.listing_id)
        trade.void(reason=cmd.reason or "voided", actor=ctx.actor, at=ctx.at)
        asset.release_hold(holder=trade.trade_id, reason="trade voided", at=ctx.at)
        listing.sale_fell_through(trade_id=trade.trade_id, at=ctx.at)
        return {"id": trade.trade_id, "state": trade.state}, [trade, asset, listing]

    # ------------------------------------------------------------------ licences

    def grant_licence(self, cmd: c.GrantLicence, ctx: Context) -> Result:
        licence_id = self.require_new(Licence, cmd.id or ctx.new_id("LIC"), "id", "licence")
        asset = self.asset(cmd.ref)
        licensee = self.member(cmd.licensee, "licensee")
        parent = self.load(Licence, cmd.parent, "parent", "licence") if cmd.parent else None
        scope = cmd.scope
        assert scope is not None  # a grant's scope options are required
        licence = Licence.grant(
            licence_id=licence_id,
            ref=asset.ref,
            licensors=sorted(asset.owners),
            licensee=licensee,
            scope=scope,
            royalty_rate=cmd.royalty_rate,
            lump_sum=cmd.lump_sum,
            currency=cmd.currency,
            parent=parent,
            others=self.licences_of(asset),
            asset_registered_on=asset.registered_on,
            asset_expires_on=asset.expires_on,
            actor=ctx.actor,
            at=ctx.at,
        )
        exclusive = scope.type.value == "exclusive"
        pledges: list[Pledge] = []
        if parent is None:
            asset.license(licence_id=licence_id, exclusive=exclusive, actor=ctx.actor, at=ctx.at)
            pledges = self.pledges_of(asset)
            use_consents(pledges, act="licence", offered=cmd.consent, used_for=ctx.command_id, ref=asset.ref, at=ctx.at)
        else:
            asset.license(licence_id=licence_id, exclusive=exclusive, actor=None, at=ctx.at)
        return {"id": licence_id, "asset": asset.ref, "licensee": cmd.licensee}, [licence, asset, *pledges]

    def terminate_licence(self, cmd: c.TerminateLicence, ctx: Context) -> Result:
        licence = self.load(Licence, cmd.licence, "licence", "licence")
        asset = self.asset(licence.ref)
        licence.terminate(
            reason=cmd.reason, effective=cmd.effective, actor=ctx.actor, owners=sorted(asset.owners), at=ctx.at
        )
        return {"id": licence.licence_id, "status": licence.status}, [licence]

    def surrender_licence(self, cmd: c.SurrenderLicence, ctx: Context) -> Result:
        licence = self.load(Licence, cmd.licence, "licence", "licence")
        licence.surrender(effective=cmd.effective, actor=ctx.actor, at=ctx.at)
        return {"id": licence.licence_id, "status": licence.status}, [licence]

    # ------------------------------------------------------------------ pledges

    def register_pledge(self, cmd: c.RegisterPledge, ctx: Context) -> Result:
        pledge_id = self.require_new(Pledge, cmd.id or ctx.new_id("P"), "id", "pledge")
        asset = self.asset(cmd.ref)
        pledge = Pledge.register(
            pledge_id=pledge_id,
            ref=asset.ref,
            pledgors=sorted(asset.owners),
            pledgee=self.member(cmd.pledgee, "pledgee"),
            amount=cmd.amount,
            currency=cmd.currency,
            start=cmd.start or ctx.at.date(),
            end=cmd.end,
            at=ctx.at,
        )
        asset.pledge(pledge_id=pledge_id, start=pledge.start, actor=ctx.actor, at=ctx.at)
        rank = asset.pledge_rank(pledge_id)
        return {"id": pledge_id, "asset": asset.ref, "pledgee": cmd.pledgee, "rank": rank}, [pledge, asset]

    def consent_as_pledgee(self, cmd: c.ConsentAsPledgee, ctx: Context) -> Result:
        pledge = self.load(Pledge, cmd.pledge, "pledge", "pledge")
        consent_id = cmd.id or ctx.new_id("C")
        pledge.consent(consent_id=consent_id, act=cmd.act, actor=ctx.actor, at=ctx.at)
        return {"id": consent_id, "pledge": pledge.pledge_id, "act": cmd.act}, [pledge]

    def release_pledge(self, cmd: c.ReleasePledge, ctx: Context) -> Result:
        pledge = self.load(Pledge, cmd.pledge, "pledge", "pledge")
        asset = self.asset(pledge.ref)
        pledge.release(effective=cmd.effective, actor=ctx.actor, at=ctx.at)
        asset.discharge_pledge(pledge_id=pledge.pledge_id, at=ctx.at)
        return {"id": pledge.pledge_id, "status": pledge.status}, [pledge, asset]

    def enforce_pledge(self, cmd: c.EnforcePledge, ctx: Context) -> Result:
        pledge = self.load(Pledge, cmd.pledge, "pledge", "pledge")
        asset = self.asset(pledge.ref)
        self.active_member(pledge.pledgee, "pledgee")
        effective = pledge.enforce(effective=cmd.effective, actor=ctx.actor, at=ctx.at)
        asset.convey_on_enforcement(pledge_id=pledge.pledge_id, pledgee=pledge.pledgee, effective=effective, at=ctx.at)
        return {"id": pledge.pledge_id, "status": pledge.status, "owners": owner_list(asset.owners)}, [pledge, asset]


def wall_clock() -> datetime:
    """The machine's time, UTC: the bound for pinned times (tests replace it to pin the present)."""
    return datetime.now(UTC)


def _recorded_time(state: bytes | None) -> datetime | None:
    return None if state is None else parse_time(orjson.loads(state)["timestamp"], "timestamp")

