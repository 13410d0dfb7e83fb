"""Trades: two-phase settlement (pending → settled | void), resolved exactly once."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

from eventsourcing.domain import event

from ipledger.domain.base import Aggregate, natural_id
from ipledger.domain.errors import InvalidInput, NotAuthorised, TradeResolved
from ipledger.domain.listings import Listing, Sale
from ipledger.domain.scopes import Scope
from ipledger.domain.status import trade_status
from ipledger.domain.values import Actor, format_time


class Trade(Aggregate):
    @staticmethod
    def create_id(trade_id: str) -> UUID:
        return natural_id("trade", trade_id)

    @classmethod
    def strike(cls, *, listing: Listing, sale: Sale, at: datetime) -> Trade:
        return cls(
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
            timestamp=at,
        )

    @event("Struck")
    def __init__(
        self,
        trade_id: str,
        listing_id: str,
        ref: str,
        type: str,
        sellers: list[str],
        buyer: str,
        bid_id: str,
        price: Decimal,
        currency: str,
        deadline: datetime,
        scope: Scope | None,
        timestamp: datetime,
    ) -> None:
        self.trade_id = trade_id
        self.listing_id = listing_id
        self.ref = ref
        self.type = type
        self.sellers = list(sellers)
        self.buyer = buyer
        self.bid_id = bid_id
        self.price = price
        self.currency = currency
        self.deadline = deadline
        self.scope = scope
        self.state = "pending"
        self.payment_ref: str | None = None

    def status_at(self, at: datetime) -> str:
        """A pending trade past its settlement deadline has lapsed (void without an event)."""
        return trade_status(self.state, self.deadline, at)

    def _require_pending(self, at: datetime, act: str) -> None:
        status = self.status_at(at)
        if status == "lapsed":
            raise TradeResolved(
                f"trade: {self.trade_id} lapsed at its settlement deadline {format_time(self.deadline)}; cannot {act}"
            )
        if status != "pending":
            raise TradeResolved(f"trade: {self.trade_id} is already {status}; a trade resolves exactly once")

    def settle(self, *, payment_ref: str, effective: date | None, actor: Actor, at: datetime) -> date:
        """Payment confirmed: returns the effective date the conveyance takes."""
        if not actor.is_operator and actor.member_id not in self.sellers:
            raise NotAuthorised(f"actor: only the operator or the seller confirms payment for trade {self.trade_id}")
        self._require_pending(at, "settle")
        effective = effective or at.date()
        if effective > at.date():
            raise InvalidInput(f"effective: {effective} is after the recorded date {at.date()}")
        self._settled(payment_ref=payment_ref, effective=effective, timestamp=at)
        return effective

    @event("Settled")
    def _settled(self, payment_ref: str, effective: date, timestamp: datetime) -> None:
        self.state = "settled"
        self.payment_ref = payment_ref

    def void(self, *, reason: str, actor: Actor, at: datetime) -> None:
        parties = set(self.sellers) | {self.buyer}
        if not actor.is_operator and actor.member_id not in parties:
            raise NotAuthorised(f"actor: only the operator or a party to trade {self.trade_id} may void it")
        if self.state != "pending":
            raise TradeResolved(f"trade: {self.trade_id} is already {self.state}; a trade resolves exactly once")
        self._voided(reason=reason, timestamp=at)

    @event("Voided")
    def _voided(self, reason: str, timestamp: datetime) -> None:
        self.state = "void"
