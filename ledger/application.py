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
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, ClassVar, TypeVar
from uuid import UUID, uuid4, uuid5

import orjson
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError as RecordConflict
from eventsourcing.utils import get_topic
from sqlalchemy import select

from domain.assets import Asset
from domain.base import NAMESPACE, Aggregate
from domain.errors import (
    ClockWentBackwards,
    ConcurrentWrite,
    DuplicateId,
    LedgerError,
    NotAuthorised,
    NotFound,
)
from domain.listings import Listing, Sale
from domain.members import BidIndex, Member
from domain.trades import Trade
from domain.values import Actor, ListingType, format_time, parse_time
from ledger import commands as c
from ledger.store import LedgerFactory, OrjsonTranscoder, PydanticMapper, commands_table

DEFAULT_DB = "sqlite:///ipledger.db"
MAX_ATTEMPTS = 5

A = TypeVar("A", bound=Aggregate)


def store_url(db: str | None = None) -> str:
    url = db or os.environ.get("IPLEDGER_DB") or DEFAULT_DB
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


@dataclass(frozen=True)
class Context:
    """What every handler knows about the command it is executing."""

    actor: Actor
    command_id: str
    at: datetime

    def new_id(self, prefix: str, purpose: str = "") -> str:
        """A fresh id; derived from the command id, so a retried command makes the same one."""
        return f"{prefix}-{uuid5(NAMESPACE, f'{self.command_id}/{prefix}/{purpose}').hex[:10]}"


Outcome = dict[str, Any]
Result = tuple[Outcome, list[Aggregate | None]]


class Exchange(Application[UUID]):
    name = "IPLedger"

    env: ClassVar[dict[str, str]] = {
        "PERSISTENCE_MODULE": get_topic(LedgerFactory),
        "MAPPER_TOPIC": get_topic(PydanticMapper),
        "TRANSCODER_TOPIC": get_topic(OrjsonTranscoder),
    }

    def __init__(self, db: str | None = None) -> None:
        self.url = store_url(db)
        super().__init__(env={"SQLALCHEMY_URL": self.url})
        self.handlers: dict[str, Callable[[Any, Context], Result]] = {
            "member.add": self.add_member,
            "member.suspend": self.suspend_member,
            "member.reinstate": self.reinstate_member,
            "asset.register": self.register_asset,
            "asset.assign": self.assign_asset,
            "listing.open": self.open_listing,
            "listing.withdraw": self.withdraw_listing,
            "listing.close": self.close_listing,
            "bid.place": self.place_bid,
            "bid.withdraw": self.withdraw_bid,
            "bid.accept": self.accept_bid,
            "trade.settle": self.settle_trade,
            "trade.void": self.void_trade,
        }

    @property
    def engine(self) -> Any:
        return self.recorder.datastore.engine  # type: ignore[attr-defined]

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
        command = c.parse_command(name, args)
        who = Actor.parse(actor)
        if who.role == "auditor":
            raise NotAuthorised(f"actor: auditors read; {name} writes")
        handler = self.handlers[name]
        cid = command_id or uuid4().hex
        c.parse_id(cid, "command_id")
        for attempt in range(MAX_ATTEMPTS):
            recorded = self.recorded_outcome(cid)
            if recorded is not None:
                return recorded
            if who.member_id is not None:
                self.member(who.member_id, "actor").require_active("actor")
            ctx = Context(actor=who, command_id=cid, at=self.clock(now))
            outcome, aggregates = handler(command, ctx)
            self.mapper.meta = {"actor": who.id, "command_id": cid}  # type: ignore[attr-defined]
            try:
                self.save(*aggregates, command=(cid, name, outcome))
                return outcome
            except RecordConflict:
                if attempt + 1 < MAX_ATTEMPTS:
                    time.sleep(random.uniform(0.005, 0.05) * (attempt + 1))
            finally:
                self.mapper.meta = None  # type: ignore[attr-defined]
        raise ConcurrentWrite(
            f"command_id: {cid} lost {MAX_ATTEMPTS} races with concurrent writers; retry with the same command id"
        )

    def recorded_outcome(self, command_id: str) -> Outcome | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(commands_table.c.outcome).where(commands_table.c.command_id == command_id)
            ).first()
        return None if row is None else dict(orjson.loads(row[0]))

    def last_recorded(self) -> datetime | None:
        head = self.recorder.max_notification_id()
        if not head:
            return None
        (note,) = self.recorder.select_notifications(start=head, limit=1)
        return parse_time(orjson.loads(note.state)["timestamp"], "timestamp")

    def clock(self, now: str | datetime | None = None) -> datetime:
        """The recorded time: pinned (IPLEDGER_NOW / an import line's `at`) or the wall clock.

        Never backwards: a pinned time before the last recorded event is refused; the
        wall clock, if behind the log (say the log was filled with pinned future times),
        is held at the last recorded time.
        """
        pinned = now if now is not None else os.environ.get("IPLEDGER_NOW") or None
        last = self.last_recorded()
        if pinned is not None:
            at = parse_time(pinned, "IPLEDGER_NOW")
            if last is not None and at < last:
                raise ClockWentBackwards(
                    f"IPLEDGER_NOW: {format_time(at)} is before the last recorded event ({format_time(last)})"
                )
            return at
        at = datetime.now(timezone.utc)
        return max(at, last) if last is not None else at

    # ------------------------------------------------------------------ loading

    def load(self, cls: type[A], key: str, field: str, what: str) -> A:
        try:
            return self.repository.get(cls.create_id(key))  # type: ignore[attr-defined,no-any-return]
        except AggregateNotFoundError:
            raise NotFound(f"{field}: no {what} {key}") from None

    def exists(self, cls: type[Aggregate], key: str) -> bool:
        return cls.create_id(key) in self.repository  # type: ignore[attr-defined]

    def require_new(self, cls: type[Aggregate], key: str, field: str, what: str) -> str:
        if self.exists(cls, key):
            raise DuplicateId(f"{field}: {what} {key} already exists")
        return key

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
        member.suspend(actor=ctx.actor, at=ctx.at)
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
        return {"id": cmd.ref, "owners": _owner_list(asset.owners)}, [asset]

    def assign_asset(self, cmd: c.AssignAsset, ctx: Context) -> Result:
        asset = self.asset(cmd.ref)
        for member in cmd.to:
            self.active_member(member, "to")
        asset.assign(to=cmd.to, kind=cmd.conveyance, effective=cmd.effective, actor=ctx.actor, at=ctx.at)
        return {"id": cmd.ref, "owners": _owner_list(asset.owners)}, [asset]

    # ------------------------------------------------------------------ listings

    def open_listing(self, cmd: c.OpenListing, ctx: Context) -> Result:
        listing_id = self.require_new(Listing, cmd.id or ctx.new_id("L"), "id", "listing")
        asset = self.asset(cmd.ref)
        sellers = [self.member(m, "seller") for m in sorted(asset.owners)]
        listing = Listing.open(
            listing_id=listing_id,
            asset=asset,
            sellers=sellers,
            type=cmd.type,
            mechanism=cmd.mechanism,
            currency=cmd.currency,
            opens_at=cmd.opens,
            closes_at=cmd.closes,
            ask=cmd.money("ask"),
            reserve=cmd.money("reserve"),
            increment=cmd.money("increment"),
            extend_minutes=cmd.extend_minutes,
            settlement_days=cmd.settlement_days,
            scope=cmd.scope(),
            actor=ctx.actor,
            at=ctx.at,
        )
        if cmd.type == ListingType.assignment:
            asset.offer_for_assignment(listing_id=listing_id, actor=ctx.actor, at=ctx.at)
        return {"id": listing_id, "asset": cmd.ref, "status": listing.status}, [listing, asset]

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
        amount = c.parse_amount(cmd.amount, listing.currency, "amount")
        trade_id = cmd.trade_id or ctx.new_id("T")
        sale = listing.place_bid(
            bid_id=bid_id, bidder=bidder, amount=amount, trade_id=trade_id, actor=ctx.actor, at=ctx.at
        )
        index = BidIndex(bid_id=bid_id, listing_id=listing.listing_id, timestamp=ctx.at)
        outcome: Outcome = {"id": bid_id, "listing": listing.listing_id, "amount": str(amount)}
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
        if trade.type == ListingType.assignment.value:
            asset.convey_under_trade(trade_id=trade.trade_id, buyer=trade.buyer, effective=effective, at=ctx.at)
        else:
            raise LedgerError("licence trades settle once licences are recorded")  # replaced in the licences work
        return {"id": trade.trade_id, "state": trade.state, "asset": trade.ref}, [trade, asset]

    def void_trade(self, cmd: c.VoidTrade, ctx: Context) -> Result:
        trade = self.trade(cmd.trade)
        asset = self.asset(trade.ref)
        listing = self.listing(trade.listing_id)
        trade.void(reason=cmd.reason or "voided", actor=ctx.actor, at=ctx.at)
        asset.release_hold(holder=trade.trade_id, reason="trade voided", at=ctx.at)
        listing.sale_fell_through(trade_id=trade.trade_id, at=ctx.at)
        return {"id": trade.trade_id, "state": trade.state}, [trade, asset, listing]


def _owner_list(owners: dict[str, str]) -> list[dict[str, str]]:
    return [{"member": m, "share": s} for m, s in sorted(owners.items())]
