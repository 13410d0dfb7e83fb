"""Trades: two-phase settlement (pending → settled | void), resolved exactly once."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from ipledger.domain.base import Aggregate, Decision
from ipledger.domain.errors import InvalidInput, NotAuthorised, TradeResolved
from ipledger.domain.listings import Listing, Sale
from ipledger.domain.scopes import Scope
from ipledger.domain.status import trade_status
from ipledger.domain.values import Actor, format_time


class Trade(Aggregate):
    KIND = "trade"
    if TYPE_CHECKING:
        trade_id: str
        listing_id: str
        ref: str
        type: str
        sellers: list[str]
        buyer: str
        bid_id: str
        price: Decimal
        currency: str
        deadline: datetime
        scope: Scope | None
        state: str
        payment_ref: str | None

    class Struck(Aggregate.Created):
        trade_id: str
        listing_id: str
        ref: str
        type: str
        sellers: list[str]
        buyer: str
        bid_id: str
        price: Decimal
        currency: str
        deadline: datetime
        scope: Scope | None

        def apply(self, trade: Trade) -> None:
            trade.trade_id = self.trade_id
            trade.listing_id = self.listing_id
            trade.ref = self.ref
            trade.type = self.type
            trade.sellers = list(self.sellers)
            trade.buyer = self.buyer
            trade.bid_id = self.bid_id
            trade.price = self.price
            trade.currency = self.currency
            trade.deadline = self.deadline
            trade.scope = self.scope
            trade.state = "pending"
            trade.payment_ref = None

    class Settled(Aggregate.Event):
        payment_ref: str
        effective: date

        def apply(self, trade: Trade) -> None:
            trade.state = "settled"
            trade.payment_ref = self.payment_ref

    class Voided(Aggregate.Event):
        reason: str

        def apply(self, trade: Trade) -> None:
            trade.state = "void"

    def status_at(self, at: datetime) -> str:
        """A pending trade past its settlement deadline has lapsed (void without an event)."""
        return trade_status(self.state, self.deadline, at)

    # ------------------------------------------------------------------ the shell

    @classmethod
    def strike(cls, *, listing: Listing, sale: Sale, at: datetime) -> Trade:
        return cls.new(strike(listing=listing, sale=sale, at=at))

    def settle(self, *, payment_ref: str, effective: date | None, actor: Actor, at: datetime) -> date:
        """Payment confirmed: returns the effective date the conveyance takes."""
        decision = settle(self, payment_ref=payment_ref, effective=effective, actor=actor, at=at)
        self.record(decision)
        settled = decision[0]
        assert isinstance(settled, Trade.Settled)
        return settled.effective

    def void(self, *, reason: str, actor: Actor, at: datetime) -> None:
        self.record(void(self, reason=reason, actor=actor, at=at))


# --------------------------------------------------------------------------- decisions


def strike(*, listing: Listing, sale: Sale, at: datetime) -> Decision:
    """A sale on a listing makes a pending trade, due by the listing's settlement deadline."""
    return Decision.creating(
        Trade,
        sale.trade_id,
        Trade.Struck,
        at,
        trade_id=sale.trade_id,
        listing_id=listing.listing_id,
        ref=listing.ref,
        type=listing.type,
        sellers=list(listing.sellers),
        buyer=sale.buyer,
        bid_id=sale.bid_id,
        price=sale.price,
        currency=listing.currency,
        deadline=listing.settlement_deadline(at),
        scope=listing.scope,
    )


def _require_pending(trade: Trade, at: datetime, act: str) -> None:
    status = trade.status_at(at)
    if status == "lapsed":
        raise TradeResolved(
            f"trade: {trade.trade_id} lapsed at its settlement deadline {format_time(trade.deadline)}; cannot {act}"
        )
    if status != "pending":
        raise TradeResolved(f"trade: {trade.trade_id} is already {status}; a trade resolves exactly once")


def settle(trade: Trade, *, payment_ref: str, effective: date | None, actor: Actor, at: datetime) -> Decision:
    if not actor.is_operator and actor.member_id not in trade.sellers:
        raise NotAuthorised(f"actor: only the operator or the seller confirms payment for trade {trade.trade_id}")
    _require_pending(trade, at, "settle")
    effective = effective or at.date()
    if effective > at.date():
        raise InvalidInput(f"effective: {effective} is after the recorded date {at.date()}")
    return Decision.about(trade, at).then(Trade.Settled, payment_ref=payment_ref, effective=effective)


def void(trade: Trade, *, reason: str, actor: Actor, at: datetime) -> Decision:
    parties = set(trade.sellers) | {trade.buyer}
    if not actor.is_operator and actor.member_id not in parties:
        raise NotAuthorised(f"actor: only the operator or a party to trade {trade.trade_id} may void it")
    if trade.state != "pending":
        raise TradeResolved(f"trade: {trade.trade_id} is already {trade.state}; a trade resolves exactly once")
    return Decision.about(trade, at).then(Trade.Voided, reason=reason)
