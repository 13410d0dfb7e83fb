"""Listings and their order books: fixed price, English, sealed and negotiated.

A listing owns its bids: the order book is the listing's consistency boundary, so two
racing bids on one English auction both write the listing and one of them loses.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from uuid import UUID

from eventsourcing.domain import event

from ipledger.domain.assets import Asset
from ipledger.domain.base import Aggregate, natural_id
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
from ipledger.domain.values import Actor, LicenceType, ListingType, Mechanism, format_time


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
    @staticmethod
    def create_id(listing_id: str) -> UUID:
        return natural_id("listing", listing_id)

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
        for seller in sellers:
            seller.require_active("seller")
        opens_at = opens_at or at
        if closes_at <= opens_at:
            raise InvalidInput(f"closes: {format_time(closes_at)} must be after opens ({format_time(opens_at)})")
        if closes_at <= at:
            raise InvalidInput(f"closes: {format_time(closes_at)} is already past")
        if mechanism == Mechanism.fixed and ask is None:
            raise InvalidInput("ask: a fixed-price listing needs --ask")
        if mechanism != Mechanism.english and (increment is not None or extend_minutes is not None):
            raise InvalidInput("increment: --increment and --extend-minutes apply to english auctions only")
        if mechanism in (Mechanism.fixed, Mechanism.negotiated) and reserve is not None:
            raise InvalidInput(f"reserve: a {mechanism.value} listing has no reserve price")
        if type == ListingType.licence and scope is None:
            raise InvalidInput(
                "licence_type: a licence listing needs its scope "
                "(--licence-type, --territory, --field, --term-start, --term-end)"
            )
        if type == ListingType.assignment and scope is not None:
            raise InvalidInput("licence_type: licence scope options apply to licence listings only")
        if extend_minutes is not None and not 0 < extend_minutes <= 24 * 60:
            raise InvalidInput("extend_minutes: must be between 1 and 1440")
        if not 0 < settlement_days <= 365:
            raise InvalidInput("settlement_days: must be between 1 and 365")
        # The asset checks who may offer it (owners, co-owner consents) and, for an
        # assignment, holds it for this listing: saved together, racing listings collide.
        if type == ListingType.assignment:
            asset.offer_for_assignment(listing_id=listing_id, actor=actor, at=at)
        else:
            assert scope is not None
            asset.offer_licence(exclusive=scope.type == LicenceType.exclusive, actor=actor, at=at)
        return cls(
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
            timestamp=at,
        )

    @event("Opened")
    def __init__(
        self,
        listing_id: str,
        ref: str,
        sellers: list[str],
        type: str,
        mechanism: str,
        currency: str,
        opens_at: datetime,
        closes_at: datetime,
        ask: Decimal | None,
        reserve: Decimal | None,
        increment: Decimal | None,
        extend_minutes: int | None,
        settlement_days: int,
        scope: Scope | None,
        timestamp: datetime,
    ) -> None:
        self.listing_id = listing_id
        self.ref = ref
        self.sellers = list(sellers)
        self.type = type
        self.mechanism = mechanism
        self.currency = currency
        self.opens_at = opens_at
        self.closes_at = closes_at
        self.ask = ask
        self.reserve = reserve
        self.increment = increment
        self.extend_minutes = extend_minutes
        self.settlement_days = settlement_days
        self.scope = scope
        self.status = "open"
        self.bids: dict[str, Bid] = {}
        self.sale: Sale | None = None

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

    def _require_open_at(self, at: datetime, act: str) -> None:
        if self.status != "open":
            raise ListingNotOpen(f"listing: {self.listing_id} is {self.status}; cannot {act}")
        if at < self.opens_at:
            raise ListingNotOpen(f"listing: {self.listing_id} opens at {format_time(self.opens_at)}; cannot {act} yet")
        if at >= self.closes_at:
            raise ListingNotOpen(f"listing: {self.listing_id} closed at {format_time(self.closes_at)}; cannot {act}")

    def _require_seller_acts(self, actor: Actor, act: str) -> None:
        if not actor.is_operator and actor.member_id not in self.sellers:
            raise NotOwner(f"actor: {actor.id} is not the seller of listing {self.listing_id}; cannot {act}")

    # ------------------------------------------------------------------ bids

    def place_bid(
        self,
        *,
        bid_id: str,
        bidder: Member,
        amount: Decimal,
        trade_id: str,
        actor: Actor,
        at: datetime,
    ) -> Sale | None:
        """Enter a bid in the book; on a fixed listing a bid at the ask wins at once."""
        if not actor.acts_for(bidder.member_id):
            raise NotAuthorised(f"bidder: {actor.id} cannot bid for {bidder.member_id}")
        self._require_open_at(at, "bid")
        bidder.require_active("bidder")
        if bidder.member_id in self.sellers:
            raise SelfDealing(f"bidder: {bidder.member_id} is a seller of listing {self.listing_id}")
        self._check_price(amount)
        self._bid_placed(bid_id=bid_id, bidder=bidder.member_id, amount=amount, timestamp=at)
        if self.is_english and self.extend_minutes and at >= self.closes_at - timedelta(minutes=self.extend_minutes):
            self._close_extended(closes_at=at + timedelta(minutes=self.extend_minutes), timestamp=at)
        if self.mechanism == Mechanism.fixed.value:
            assert self.ask is not None
            return self._sell(bid_id, self.ask, trade_id, at)
        return None

    def _check_price(self, amount: Decimal) -> None:
        if self.mechanism == Mechanism.fixed.value and self.ask is not None and amount < self.ask:
            raise BidTooLow(f"amount: {amount} is below the asking price {self.ask} {self.currency}")
        if self.is_english:
            best = self.best_bid()
            if best is None:
                if self.ask is not None and amount < self.ask:
                    raise BidTooLow(f"amount: {amount} is below the opening price {self.ask} {self.currency}")
            else:
                step = self.increment or Decimal(0)
                needed = best.amount + step
                if amount < needed or amount <= best.amount:
                    raise BidTooLow(
                        f"amount: {amount} must beat the best bid {best.amount} by the increment "
                        f"{step} (at least {needed} {self.currency})"
                    )

    @event("BidPlaced")
    def _bid_placed(self, bid_id: str, bidder: str, amount: Decimal, timestamp: datetime) -> None:
        # A bidder has one live bid: a new bid supersedes the bidder's earlier one.
        for other in list(self.bids.values()):
            if other.bidder == bidder and other.live:
                self.bids[other.bid_id] = replace(other, state="superseded")
        self.bids[bid_id] = Bid(bid_id, bidder, amount, timestamp, self.version + 1)  # the event's version

    @event("CloseExtended")
    def _close_extended(self, closes_at: datetime, timestamp: datetime) -> None:
        self.closes_at = closes_at

    def withdraw_bid(self, *, bid_id: str, actor: Actor, at: datetime) -> None:
        bid = self._bid(bid_id)
        if not actor.acts_for(bid.bidder):
            # Never name the bidder: on a sealed listing who bid is hidden from other members.
            raise NotAuthorised(f"actor: {actor.id} cannot withdraw bid {bid_id}; only its bidder or the operator may")
        if self.is_english:
            raise BidNotWithdrawable(f"bid: {bid_id} is an English-auction bid; those are binding")
        self._require_open_at(at, "withdraw a bid")
        if not bid.live:
            raise InvalidState(f"bid: {bid_id} is {bid.state}, not live")
        self._bid_withdrawn(bid_id=bid_id, timestamp=at)

    @event("BidWithdrawn")
    def _bid_withdrawn(self, bid_id: str, timestamp: datetime) -> None:
        self.bids[bid_id] = replace(self.bids[bid_id], state="withdrawn")

    def accept_bid(self, *, bid_id: str, trade_id: str, actor: Actor, at: datetime) -> Sale:
        """Negotiated listings: the seller accepts any one live bid explicitly."""
        bid = self._bid(bid_id)
        self._require_seller_acts(actor, "accept bids")
        if self.mechanism != Mechanism.negotiated.value:
            raise InvalidState(
                f"bid: {self.listing_id} is a {self.mechanism} listing; only negotiated listings accept bids"
            )
        self._require_open_at(at, "accept a bid")
        if not bid.live:
            raise InvalidState(f"bid: {bid_id} is {bid.state}, not live")
        return self._sell(bid_id, bid.amount, trade_id, at)

    def _bid(self, bid_id: str) -> Bid:
        try:
            return self.bids[bid_id]
        except KeyError:
            raise NotFound(f"bid: no bid {bid_id} on listing {self.listing_id}") from None

    # ------------------------------------------------------------------ ending

    def close(self, *, trade_id: str, actor: Actor, at: datetime) -> Sale | None:
        """At or after the close: the best bid at or above the reserve wins, else unsold."""
        self._require_seller_acts(actor, "close it")
        if self.status != "open":
            raise ListingNotOpen(f"listing: {self.listing_id} is already {self.status}")
        if at < self.closes_at:
            raise ListingStillOpen(f"listing: {self.listing_id} closes at {format_time(self.closes_at)}")
        best = self.best_bid()
        auction = self.mechanism in (Mechanism.english.value, Mechanism.sealed.value)
        if auction and best is not None and (self.reserve is None or best.amount >= self.reserve):
            return self._sell(best.bid_id, best.amount, trade_id, at)
        self._ended_unsold(timestamp=at)
        return None

    def _sell(self, bid_id: str, price: Decimal, trade_id: str, at: datetime) -> Sale:
        bid = self.bids[bid_id]
        self._sold(bid_id=bid_id, buyer=bid.bidder, price=price, trade_id=trade_id, timestamp=at)
        assert self.sale is not None
        return self.sale

    @event("Sold")
    def _sold(self, bid_id: str, buyer: str, price: Decimal, trade_id: str, timestamp: datetime) -> None:
        for other in list(self.bids.values()):
            if other.live:
                self.bids[other.bid_id] = replace(other, state="won" if other.bid_id == bid_id else "lost")
        self.status = "sold"
        self.sale = Sale(bid_id, buyer, price, trade_id)

    @event("EndedUnsold")
    def _ended_unsold(self, timestamp: datetime) -> None:
        for other in list(self.bids.values()):
            if other.live:
                self.bids[other.bid_id] = replace(other, state="lost")
        self.status = "unsold"

    def withdraw(self, *, actor: Actor, at: datetime) -> None:
        self._require_seller_acts(actor, "withdraw it")
        if self.status != "open":
            raise ListingNotOpen(f"listing: {self.listing_id} is {self.status}; only an open listing can be withdrawn")
        if self.is_english and self.bids:
            raise InvalidState(f"listing: English auction {self.listing_id} has bids and cannot be withdrawn")
        self._withdrawn(timestamp=at)

    @event("Withdrawn")
    def _withdrawn(self, timestamp: datetime) -> None:
        for other in list(self.bids.values()):
            if other.live:
                self.bids[other.bid_id] = replace(other, state="lost")
        self.status = "withdrawn"

    def sale_fell_through(self, *, trade_id: str, at: datetime) -> None:
        """The listing's trade was voided: the listing ends without a sale."""
        if self.sale is not None and self.sale.trade_id == trade_id:
            self._sale_fell_through(trade_id=trade_id, timestamp=at)

    @event("SaleFellThrough")
    def _sale_fell_through(self, trade_id: str, timestamp: datetime) -> None:
        self.status = "closed"
