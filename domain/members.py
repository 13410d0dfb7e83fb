"""Members of the exchange: who may trade, license, pledge and receive rights."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from ipledger.domain.base import Aggregate, Decision
from ipledger.domain.errors import InvalidState, MemberSuspended, NotAuthorised
from ipledger.domain.values import Actor, MemberKind


class Member(Aggregate):
    KIND = "member"
    if TYPE_CHECKING:
        member_id: str
        name: str
        kind: str
        country: str
        status: str
        suspension_reason: str

    class Admitted(Aggregate.Created):
        member_id: str
        name: str
        kind: str
        country: str

        def apply(self, member: Member) -> None:
            member.member_id = self.member_id
            member.name = self.name
            member.kind = self.kind
            member.country = self.country
            member.status = "active"

    class Suspended(Aggregate.Event):
        """Version 2 records why; version-1 events (no reason) are upcast on reading."""

        class_version: ClassVar[int] = 2
        reason: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["reason"] = ""

        def apply(self, member: Member) -> None:
            member.status = "suspended"
            member.suspension_reason = self.reason

    class Reinstated(Aggregate.Event):
        def apply(self, member: Member) -> None:
            member.status = "active"

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

    # ------------------------------------------------------------------ the shell

    @classmethod
    def admit(cls, *, member_id: str, name: str, kind: MemberKind, country: str, actor: Actor, at: datetime) -> Member:
        return cls.new(admit(member_id=member_id, name=name, kind=kind, country=country, actor=actor, at=at))

    def suspend(self, *, reason: str = "", actor: Actor, at: datetime) -> None:
        self.record(suspend(self, reason=reason, actor=actor, at=at))

    def reinstate(self, *, actor: Actor, at: datetime) -> None:
        self.record(reinstate(self, actor=actor, at=at))


# --------------------------------------------------------------------------- decisions


def admit(*, member_id: str, name: str, kind: MemberKind, country: str, actor: Actor, at: datetime) -> Decision:
    if not actor.is_operator:
        raise NotAuthorised(f"actor: only the operator admits members ({actor.id} is not the operator)")
    return Decision.creating(
        Member, member_id, Member.Admitted, at, member_id=member_id, name=name, kind=kind.value, country=country
    )


def suspend(member: Member, *, reason: str, actor: Actor, at: datetime) -> Decision:
    _require_operator(actor, "suspends")
    if not member.is_active:
        raise InvalidState(f"member: {member.member_id} is already suspended")
    return Decision.about(member, at).then(Member.Suspended, reason=reason)


def reinstate(member: Member, *, actor: Actor, at: datetime) -> Decision:
    _require_operator(actor, "reinstates")
    if member.is_active:
        raise InvalidState(f"member: {member.member_id} is already active")
    return Decision.about(member, at).then(Member.Reinstated)


def _require_operator(actor: Actor, verb: str) -> None:
    if not actor.is_operator:
        raise NotAuthorised(f"actor: only the operator {verb} members ({actor.id} is not the operator)")


class BidIndex(Aggregate):
    """Maps a bid id to its listing, and makes bid ids unique (a second create collides).

    Bids live inside their Listing (the book is the listing's consistency boundary);
    this small index lets `bid withdraw BID` find the listing without a read model,
    like the library's content-management example maps slugs to pages.
    """

    KIND = "bid"
    if TYPE_CHECKING:
        bid_id: str
        listing_id: str

    class Indexed(Aggregate.Created):
        bid_id: str
        listing_id: str

        def apply(self, index: BidIndex) -> None:
            index.bid_id = self.bid_id
            index.listing_id = self.listing_id

    @classmethod
    def index(cls, *, bid_id: str, listing_id: str, at: datetime) -> BidIndex:
        return cls.new(Decision.creating(cls, bid_id, cls.Indexed, at, bid_id=bid_id, listing_id=listing_id))
