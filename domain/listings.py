"""Listings and their order books: fixed price, English, sealed and negotiated.

A listing owns its bids: the order book is the listing's consistency boundary, so two
racing bids on one English auction both write the listing and one of them loses.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from ipledger.domain.assets import Asset
from ipledger.domain.base import Aggregate, Decision
from ipledger.domain.errors import (
    BidNotWithdrawable,
    BidTooLow,
    InvalidInput,
    InvalidState,
    ListingNotOpen,
    ListingStillOpen,
    NotAuthorised,
    NotFound,
    NotOwner,
    SelfDealing,
)
from ipledger.domain.members import Member
from ipledger.domain.scopes import Scope
from ipledger.domain.status import NO_BIDS, RESERVE_NOT_MET
from ipledger.domain.values import (
    Actor,
    LicenceType,
    ListingType,
    Mechanism,
    format_time,
    parse_amount,
    with_article,
)


@dataclass(frozen=True)
class Bid:
    bid_id: str
    bidder: str
    amount: Decimal
    placed: datetime
    seq: int  # listing version when placed: time priority that never ties
    state: str = "live"  # live | withdrawn | superseded | won | lost

    @property
    def live(self) -> bool:
        return self.state == "live"


@dataclass(frozen=True)
class Sale:
    """The outcome that creates a trade: which bid won, at what price."""

    bid_id: str
    buyer: str
    price: Decimal
    trade_id: str


class Listing(Aggregate):
    KIND = "listing"
    if TYPE_CHECKING:
        listing_id: str
        ref: str
        sellers: list[str]
        type: str
        mechanism: str
        currency: str
        opens_at: datetime
        closes_at: datetime
        ask: Decimal | None
        reserve: Decimal | None
        increment: Decimal | None
        extend_minutes: int | None
        settlement_days: int
        scope: Scope | None
        status: str
        bids: dict[str, Bid]
        sale: Sale | None

    class Opened(Aggregate.Created):
        listing_id: str
        ref: str
        sellers: list[str]
        type: str
        mechanism: str
        currency: str
        opens_at: datetime
        closes_at: datetime
        ask: Decimal | None
        reserve: Decimal | None
        increment: Decimal | None
        extend_minutes: int | None
        settlement_days: int
        scope: Scope | None

        def apply(self, listing: Listing) -> None:
            listing.listing_id = self.listing_id
            listing.ref = self.ref
            listing.sellers = list(self.sellers)
            listing.type = self.type
            listing.mechanism = self.mechanism
            listing.currency = self.currency
            listing.opens_at = self.opens_at
            listing.closes_at = self.closes_at
            listing.ask = self.ask
            listing.reserve = self.reserve
            listing.increment = self.increment
            listing.extend_minutes = self.extend_minutes
            listing.settlement_days = self.settlement_days
            listing.scope = self.scope
            listing.status = "open"
            listing.bids = {}
            listing.sale = None

    class BidPlaced(Aggregate.Event):
        """Version 2 names the bids it superseded (a bidder has one live bid), so no reader
        re-derives that; a version-1 event (a log written before) is upcast to None: not
        recorded, and the rule is applied as it stood."""

        class_version: ClassVar[int] = 2
        bid_id: str
        bidder: str
        amount: Decimal
        supersedes: list[str] | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["supersedes"] = None

        def apply(self, listing: Listing) -> None:
            superseded = self.supersedes
            if superseded is None:  # a log written before version 2: the rule, as it stood
                superseded = superseded_bids(listing.bids.values(), self.bidder)
            for bid_id in superseded:
                listing.bids[bid_id] = replace(listing.bids[bid_id], state="superseded")
            listing.bids[self.bid_id] = Bid(
                self.bid_id, self.bidder, self.amount, self.timestamp, self.originator_version
            )

    class CloseExtended(Aggregate.Event):
        closes_at: datetime

        def apply(self, listing: Listing) -> None:
            listing.closes_at = self.closes_at

    class BidWithdrawn(Aggregate.Event):
        bid_id: str

        def apply(self, listing: Listing) -> None:
            listing.bids[self.bid_id] = replace(listing.bids[self.bid_id], state="withdrawn")

    class Sold(Aggregate.Event):
        bid_id: str
        buyer: str
        price: Decimal
        trade_id: str

        def apply(self, listing: Listing) -> None:
            _end_live_bids(listing, won=self.bid_id)
            listing.status = "sold"
            listing.sale = Sale(self.bid_id, self.buyer, self.price, self.trade_id)

    class EndedUnsold(Aggregate.Event):
        """Version 2 says why an auction ended unsold (`RESERVE_NOT_MET`, `NO_BIDS`; None
        for other mechanisms), so a listing whose best bid missed the reserve says so
        without showing the reserve. A version-1 event (a log written before) is upcast
        to None: not recorded."""

        class_version: ClassVar[int] = 2
        reason: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["reason"] = None

        def apply(self, listing: Listing) -> None:
            _end_live_bids(listing)
            listing.status = "unsold"

    class Withdrawn(Aggregate.Event):
        def apply(self, listing: Listing) -> None:
            _end_live_bids(listing)
            listing.status = "withdrawn"

    class SaleFellThrough(Aggregate.Event):
        trade_id: str

        def apply(self, listing: Listing) -> None:
            listing.status = "closed"

    # ------------------------------------------------------------------ queries

    @property
    def is_english(self) -> bool:
        return self.mechanism == Mechanism.english.value

    def live_bids(self) -> list[Bid]:
        """Price-time priority: price descending, then earliest first."""
        return sorted((b for b in self.bids.values() if b.live), key=lambda b: (-b.amount, b.seq))

    def best_bid(self) -> Bid | None:
        live = self.live_bids()
        return live[0] if live else None

    def settlement_deadline(self, at: datetime) -> datetime:
        return at + timedelta(days=self.settlement_days)

    def bid(self, bid_id: str) -> Bid:
        try:
            return self.bids[bid_id]
        except KeyError:
            raise NotFound(f"bid: no bid {bid_id} on listing {self.listing_id}") from None

    # ------------------------------------------------------------------ the shell

    @classmethod
    def open(
        cls,
        *,
        listing_id: str,
        asset: Asset,
        sellers: list[Member],
        type: ListingType,
        mechanism: Mechanism,
        currency: str,
        opens_at: datetime | None,
        closes_at: datetime,
        ask: Decimal | None,
        reserve: Decimal | None,
        increment: Decimal | None,
        extend_minutes: int | None,
        settlement_days: int,
        scope: Scope | None,
        actor: Actor,
        at: datetime,
    ) -> Listing:
        """Open a listing; the asset checks who may offer it (owners, co-owner consents)
        and, for an assignment, holds it for this listing: saved together, racing
        listings collide."""
        decision = open_listing(
            listing_id=listing_id,
            asset=asset,
            sellers=sellers,
            type=type,
            mechanism=mechanism,
            currency=currency,
            opens_at=opens_at,
            closes_at=closes_at,
            ask=ask,
            reserve=reserve,
            increment=increment,
            extend_minutes=extend_minutes,
            settlement_days=settlement_days,
            scope=scope,
            at=at,
        )
        if type == ListingType.assignment:
            asset.offer_for_assignment(listing_id=listing_id, actor=actor, at=at)
        else:
            assert scope is not None
            asset.offer_licence(exclusive=scope.type == LicenceType.exclusive, actor=actor, at=at)
        return cls.new(decision)

    def place_bid(
        self, *, bid_id: str, bidder: Member, amount: Decimal, trade_id: str, actor: Actor, at: datetime
    ) -> Sale | None:
        """Enter a bid in the book; on a fixed listing a bid at the ask wins at once."""
        self.record(place_bid(self, bid_id=bid_id, bidder=bidder, amount=amount, trade_id=trade_id, actor=actor, at=at))
        return self.sale if self.status == "sold" else None

    def withdraw_bid(self, *, bid_id: str, actor: Actor, at: datetime) -> None:
        self.record(withdraw_bid(self, bid_id=bid_id, actor=actor, at=at))

    def accept_bid(self, *, bid_id: str, trade_id: str, actor: Actor, at: datetime) -> Sale:
        """Negotiated listings: the seller accepts any one live bid explicitly."""
        self.record(accept_bid(self, bid_id=bid_id, trade_id=trade_id, actor=actor, at=at))
        assert self.sale is not None
        return self.sale

    def close(self, *, trade_id: str, actor: Actor, at: datetime) -> Sale | None:
        """At or after the close: the best bid at or above the reserve wins, else unsold."""
        self.record(close(self, trade_id=trade_id, actor=actor, at=at))
        return self.sale if self.status == "sold" else None

    def withdraw(self, *, actor: Actor, at: datetime) -> None:
        self.record(withdraw(self, actor=actor, at=at))

    def sale_fell_through(self, *, trade_id: str, at: datetime) -> None:
        """The listing's trade was voided: the listing ends without a sale."""
        self.record(sale_fell_through(self, trade_id=trade_id, at=at))


# --------------------------------------------------------------------------- rules


class BidState(Protocol):
    """What the rule needs of a bid: the aggregate's `Bid`, or a read model's row."""

    @property
    def bid_id(self) -> str: ...

    @property
    def bidder(self) -> str: ...

    @property
    def state(self) -> str: ...


def superseded_bids(bids: Iterable[BidState], bidder: str) -> list[str]:
    """A bidder has one live bid: its new bid supersedes its earlier live ones."""
    return [b.bid_id for b in bids if b.bidder == bidder and b.state == "live"]


def _end_live_bids(listing: Listing, won: str | None = None) -> None:
    for other in list(listing.bids.values()):
        if other.live:
            listing.bids[other.bid_id] = replace(other, state="won" if other.bid_id == won else "lost")


def open_listing(
    *,
    listing_id: str,
    asset: Asset,
    sellers: list[Member],
    type: ListingType,
    mechanism: Mechanism,
    currency: str,
    opens_at: datetime | None,
    closes_at: datetime,
    ask: Decimal | None,
    reserve: Decimal | None,
    increment: Decimal | None,
    extend_minutes: int | None,
    settlement_days: int,
    scope: Scope | None,
    at: datetime,
) -> Decision:
    """The listing's own rules; who may offer the asset is the asset's (see `Listing.open`)."""
    for seller in sellers:
        seller.require_active("seller")
    opens_at = opens_at or at
    if closes_at <= opens_at:
        raise InvalidInput(f"closes: {format_time(closes_at)} must be after opens ({format_time(opens_at)})")
    if closes_at <= at:
        raise InvalidInput(f"closes: {format_time(closes_at)} is already past")
    if mechanism == Mechanism.fixed and ask is None:
        raise InvalidInput("ask: a fixed-price listing needs an asking price")
    if mechanism != Mechanism.english and (increment is not None or extend_minutes is not None):
        raise InvalidInput("increment: an increment and extend_minutes apply to english auctions only")
    if mechanism in (Mechanism.fixed, Mechanism.negotiated) and reserve is not None:
        raise InvalidInput(f"reserve: a {mechanism.value} listing has no reserve price")
    if type == ListingType.licence and scope is None:
        raise InvalidInput(
            "licence_type: a licence listing needs its scope (licence_type, territory, field, term_start, term_end)"
        )
    if type == ListingType.assignment and scope is not None:
        raise InvalidInput("licence_type: licence scope options apply to licence listings only")
    if extend_minutes is not None and not 0 < extend_minutes <= 24 * 60:
        raise InvalidInput("extend_minutes: must be between 1 and 1440")
    if not 0 < settlement_days <= 365:
        raise InvalidInput("settlement_days: must be between 1 and 365")
    return Decision.creating(
        Listing,
        listing_id,
        Listing.Opened,
        at,
        listing_id=listing_id,
        ref=asset.ref,
        sellers=sorted(asset.owners),
        type=type.value,
        mechanism=mechanism.value,
        currency=currency,
        opens_at=opens_at,
        closes_at=closes_at,
        ask=ask,
        reserve=reserve,
        increment=increment,
        extend_minutes=extend_minutes,
        settlement_days=settlement_days,
        scope=scope,
    )


def _require_open_at(listing: Listing, at: datetime, act: str) -> None:
    if listing.status != "open":
        raise ListingNotOpen(f"listing: {listing.listing_id} is {listing.status}; cannot {act}")
    if at < listing.opens_at:
        raise ListingNotOpen(
            f"listing: {listing.listing_id} opens at {format_time(listing.opens_at)}; cannot {act} yet"
        )
    if at >= listing.closes_at:
        raise ListingNotOpen(f"listing: {listing.listing_id} closed at {format_time(listing.closes_at)}; cannot {act}")


def _require_seller_acts(listing: Listing, actor: Actor, act: str) -> None:
    if not actor.is_operator and actor.member_id not in listing.sellers:
        raise NotOwner(f"actor: {actor.id} is not the seller of listing {listing.listing_id}; cannot {act}")


def place_bid(
    listing: Listing, *, bid_id: str, bidder: Member, amount: Decimal, trade_id: str, actor: Actor, at: datetime
) -> Decision:
    amount = parse_amount(amount, listing.currency, "amount")  # in the listing's currency's minor units
    if not actor.acts_for(bidder.member_id):
        raise NotAuthorised(f"bidder: {actor.id} cannot bid for {bidder.member_id}")
    _require_open_at(listing, at, "bid")
    bidder.require_active("bidder")
    if bidder.member_id in listing.sellers:
        raise SelfDealing(f"bidder: {bidder.member_id} is a seller of listing {listing.listing_id}")
    _check_price(listing, amount)
    decision = Decision.about(listing, at).then(
        Listing.BidPlaced,
        bid_id=bid_id,
        bidder=bidder.member_id,
        amount=amount,
        supersedes=superseded_bids(listing.bids.values(), bidder.member_id),
    )
    extend = listing.extend_minutes
    if listing.is_english and extend and at >= listing.closes_at - timedelta(minutes=extend):
        decision.then(Listing.CloseExtended, closes_at=at + timedelta(minutes=extend))
    if listing.mechanism == Mechanism.fixed.value:
        assert listing.ask is not None
        decision.then(Listing.Sold, bid_id=bid_id, buyer=bidder.member_id, price=listing.ask, trade_id=trade_id)
    return decision


def _check_price(listing: Listing, amount: Decimal) -> None:
    if listing.mechanism == Mechanism.fixed.value and listing.ask is not None and amount < listing.ask:
        raise BidTooLow(f"amount: {amount} is below the asking price {listing.ask} {listing.currency}")
    if listing.is_english:
        best = listing.best_bid()
        if best is None:
            if listing.ask is not None and amount < listing.ask:
                raise BidTooLow(f"amount: {amount} is below the opening price {listing.ask} {listing.currency}")
        else:
            step = listing.increment or Decimal(0)
            needed = best.amount + step
            if amount < needed or amount <= best.amount:
                raise BidTooLow(
                    f"amount: {amount} must beat the best bid {best.amount} by the increment "
                    f"{step} (at least {needed} {listing.currency})"
                )


def withdraw_bid(listing: Listing, *, bid_id: str, actor: Actor, at: datetime) -> Decision:
    bid = listing.bid(bid_id)
    if not actor.acts_for(bid.bidder):
        # Never name the bidder: on a sealed listing who bid is hidden from other members.
        raise NotAuthorised(f"actor: {actor.id} cannot withdraw bid {bid_id}; only its bidder or the operator may")
    if listing.is_english:
        raise BidNotWithdrawable(f"bid: {bid_id} is an English-auction bid; those are binding")
    _require_open_at(listing, at, "withdraw a bid")
    if not bid.live:
        raise InvalidState(f"bid: {bid_id} is {bid.state}, not live")
    return Decision.about(listing, at).then(Listing.BidWithdrawn, bid_id=bid_id)


def accept_bid(listing: Listing, *, bid_id: str, trade_id: str, actor: Actor, at: datetime) -> Decision:
    bid = listing.bid(bid_id)
    _require_seller_acts(listing, actor, "accept bids")
    if listing.mechanism != Mechanism.negotiated.value:
        raise InvalidState(
            f"bid: {listing.listing_id} is {with_article(listing.mechanism)} listing; "
            "only negotiated listings accept bids"
        )
    _require_open_at(listing, at, "accept a bid")
    if not bid.live:
        raise InvalidState(f"bid: {bid_id} is {bid.state}, not live")
    return Decision.about(listing, at).then(
        Listing.Sold, bid_id=bid_id, buyer=bid.bidder, price=bid.amount, trade_id=trade_id
    )


def close(listing: Listing, *, trade_id: str, actor: Actor, at: datetime) -> Decision:
    _require_seller_acts(listing, actor, "close it")
    if listing.status != "open":
        raise ListingNotOpen(f"listing: {listing.listing_id} is already {listing.status}")
    if at < listing.closes_at:
        raise ListingStillOpen(f"listing: {listing.listing_id} closes at {format_time(listing.closes_at)}")
    best = listing.best_bid()
    auction = listing.mechanism in (Mechanism.english.value, Mechanism.sealed.value)
    decision = Decision.about(listing, at)
    if auction and best is not None and (listing.reserve is None or best.amount >= listing.reserve):
        return decision.then(Listing.Sold, bid_id=best.bid_id, buyer=best.bidder, price=best.amount, trade_id=trade_id)
    reason = None if not auction else NO_BIDS if best is None else RESERVE_NOT_MET
    return decision.then(Listing.EndedUnsold, reason=reason)


def withdraw(listing: Listing, *, actor: Actor, at: datetime) -> Decision:
    _require_seller_acts(listing, actor, "withdraw it")
    if listing.status != "open":
        raise ListingNotOpen(
            f"listing: {listing.listing_id} is {listing.status}; only an open listing can be withdrawn"
        )
    if listing.is_english and listing.bids:
        raise InvalidState(f"listing: English auction {listing.listing_id} has bids and cannot be withdrawn")
    return Decision.about(listing, at).then(Listing.Withdrawn)


def sale_fell_through(listing: Listing, *, trade_id: str, at: datetime) -> Decision:
    decision = Decision.about(listing, at)
    if listing.sale is not None and listing.sale.trade_id == trade_id:
        decision.then(Listing.SaleFellThrough, trade_id=trade_id)
    return decision
