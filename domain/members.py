"""Members of the exchange: who may trade, license, pledge and receive rights."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.domain import event

from ipledger.domain.base import Aggregate, natural_id
from ipledger.domain.errors import InvalidState, MemberSuspended, NotAuthorised
from ipledger.domain.values import Actor, MemberKind


class Member(Aggregate):
    @staticmethod
    def create_id(member_id: str) -> UUID:
        return natural_id("member", member_id)

    @classmethod
    def admit(cls, *, member_id: str, name: str, kind: MemberKind, country: str, actor: Actor, at: datetime) -> Member:
        if not actor.is_operator:
            raise NotAuthorised(f"actor: only the operator admits members ({actor.id} is not the operator)")
        return cls(member_id=member_id, name=name, kind=kind.value, country=country, timestamp=at)

    @event("Admitted")
    def __init__(self, member_id: str, name: str, kind: str, country: str, timestamp: datetime) -> None:
        self.member_id = member_id
        self.name = name
        self.kind = kind
        self.country = country
        self.status = "active"

    @property
    def is_active(self) -> bool:
        return self.status == "active"

    @property
    def is_financial_institution(self) -> bool:
        return self.kind == MemberKind.financial_institution.value

    def require_active(self, role: str) -> None:
        """Only active members trade, license, pledge or receive rights."""
        if not self.is_active:
            raise MemberSuspended(f"{role}: member {self.member_id} is suspended")

    def suspend(self, *, reason: str = "", actor: Actor, at: datetime) -> None:
        self._require_operator(actor, "suspends")
        if not self.is_active:
            raise InvalidState(f"member: {self.member_id} is already suspended")
        self._suspended(reason=reason, timestamp=at)

    def reinstate(self, *, actor: Actor, at: datetime) -> None:
        self._require_operator(actor, "reinstates")
        if self.is_active:
            raise InvalidState(f"member: {self.member_id} is already active")
        self._reinstated(timestamp=at)

    @staticmethod
    def _require_operator(actor: Actor, verb: str) -> None:
        if not actor.is_operator:
            raise NotAuthorised(f"actor: only the operator {verb} members ({actor.id} is not the operator)")

    class Suspended(Aggregate.Event):
        """Version 2 records why; version-1 events (no reason) are upcast on reading."""

        class_version: ClassVar[int] = 2
        reason: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["reason"] = ""

    @event(Suspended)
    def _suspended(self, reason: str, timestamp: datetime) -> None:
        self.status = "suspended"
        self.suspension_reason = reason

    @event("Reinstated")
    def _reinstated(self, timestamp: datetime) -> None:
        self.status = "active"


class BidIndex(Aggregate):
    """Maps a bid id to its listing, and makes bid ids unique (a second create collides).

    Bids live inside their Listing (the book is the listing's consistency boundary);
    this small index lets `bid withdraw BID` find the listing without a read model,
    like the library's content-management example maps slugs to pages.
    """

    @staticmethod
    def create_id(bid_id: str) -> UUID:
        return natural_id("bid", bid_id)

    @event("Indexed")
    def __init__(self, bid_id: str, listing_id: str, timestamp: datetime) -> None:
        self.bid_id = bid_id
        self.listing_id = listing_id
