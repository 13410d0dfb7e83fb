"""Pledges: IP as loan collateral, with the pledgee's one-time consents.

While a pledge is registered, the asset may not be assigned, listed for assignment or
licensed without the pledgee's recorded consent for that act (China Civil Code art.
444). A consent is given once, names its act, and is consumed by the act it permits,
in the same atomic write as the act itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from ipledger.domain.base import Aggregate, Decision
from ipledger.domain.errors import AssetPledged, DuplicateId, InvalidInput, InvalidState, NotAuthorised, NotEligible
from ipledger.domain.members import Member
from ipledger.domain.values import Actor, with_article

#: Acts a pledgee consents to, each with how a person names it.
ACT_NAMES = {"assignment": "assignment", "licence": "licensing", "listing": "listing for assignment"}
ACTS = tuple(ACT_NAMES)


@dataclass(frozen=True)
class Consent:
    consent_id: str
    act: str
    used_for: str | None = None


class Pledge(Aggregate):
    KIND = "pledge"
    if TYPE_CHECKING:
        pledge_id: str
        ref: str
        pledgors: list[str]
        pledgee: str
        amount: Decimal | None
        currency: str | None
        start: date
        end: date | None
        status: str
        ended_on: date | None
        consents: dict[str, Consent]

    class Registered(Aggregate.Created):
        pledge_id: str
        ref: str
        pledgors: list[str]
        pledgee: str
        amount: Decimal | None
        currency: str | None
        start: date
        end: date | None

        def apply(self, pledge: Pledge) -> None:
            pledge.pledge_id = self.pledge_id
            pledge.ref = self.ref
            pledge.pledgors = list(self.pledgors)
            pledge.pledgee = self.pledgee
            pledge.amount = self.amount
            pledge.currency = self.currency
            pledge.start = self.start
            pledge.end = self.end
            pledge.status = "registered"
            pledge.ended_on = None
            pledge.consents = {}

    class ConsentGiven(Aggregate.Event):
        consent_id: str
        act: str

        def apply(self, pledge: Pledge) -> None:
            pledge.consents[self.consent_id] = Consent(self.consent_id, self.act)

    class ConsentUsed(Aggregate.Event):
        consent_id: str
        used_for: str

        def apply(self, pledge: Pledge) -> None:
            old = pledge.consents[self.consent_id]
            pledge.consents[self.consent_id] = Consent(old.consent_id, old.act, self.used_for)

    class Ended(Aggregate.Event):
        how: str
        effective: date

        def apply(self, pledge: Pledge) -> None:
            pledge.status = self.how
            pledge.ended_on = self.effective

    @property
    def is_live(self) -> bool:
        return self.status == "registered"

    def in_force_on(self, day: date) -> bool:
        """From its start until released or enforced; `end` is the secured loan's term,
        and a lender keeps its security past it until it releases."""
        return self.start <= day and (self.ended_on is None or day < self.ended_on)

    def unused_consent(self, act: str, offered: tuple[str, ...]) -> str | None:
        for consent_id in offered:
            consent = self.consents.get(consent_id)
            if consent is not None and consent.act == act and consent.used_for is None:
                return consent_id
        return None

    # ------------------------------------------------------------------ the shell

    @classmethod
    def register(
        cls,
        *,
        pledge_id: str,
        ref: str,
        pledgors: list[str],
        pledgee: Member,
        amount: Decimal | None,
        currency: str | None,
        start: date,
        end: date | None,
        at: datetime,
    ) -> Pledge:
        return cls.new(
            register(
                pledge_id=pledge_id,
                ref=ref,
                pledgors=pledgors,
                pledgee=pledgee,
                amount=amount,
                currency=currency,
                start=start,
                end=end,
                at=at,
            )
        )

    def consent(self, *, consent_id: str, act: str, actor: Actor, at: datetime) -> None:
        self.record(consent(self, consent_id=consent_id, act=act, actor=actor, at=at))

    def use_consent(self, *, consent_id: str, used_for: str, at: datetime) -> None:
        self.record(Decision.about(self, at).then(Pledge.ConsentUsed, consent_id=consent_id, used_for=used_for))

    def release(self, *, effective: date | None, actor: Actor, at: datetime) -> date:
        """The loan is repaid: the pledgee releases the asset."""
        return self._end(end(self, how="released", effective=effective, actor=actor, at=at))

    def enforce(self, *, effective: date | None, actor: Actor, at: datetime) -> date:
        """Default: the pledgee enforces; the asset is assigned to it in the same write."""
        return self._end(end(self, how="enforced", effective=effective, actor=actor, at=at))

    def _end(self, decision: Decision) -> date:
        self.record(decision)
        ended = decision[0]
        assert isinstance(ended, Pledge.Ended)
        return ended.effective


# --------------------------------------------------------------------------- decisions


def register(
    *,
    pledge_id: str,
    ref: str,
    pledgors: list[str],
    pledgee: Member,
    amount: Decimal | None,
    currency: str | None,
    start: date,
    end: date | None,
    at: datetime,
) -> Decision:
    if amount is not None and currency is None:
        raise InvalidInput("currency: a secured amount needs its currency")
    pledgee.require_active("pledgee")
    if not pledgee.is_financial_institution:
        raise NotEligible(
            f"pledgee: {pledgee.member_id} is {with_article(pledgee.kind)}; only financial institutions take pledges"
        )
    if pledgee.member_id in pledgors:
        raise NotEligible(f"pledgee: {pledgee.member_id} owns the asset and cannot take a pledge on it")
    if currency is not None and amount is None:
        raise InvalidInput("amount: a secured amount and its currency go together; give the amount too")
    if start > at.date():
        raise InvalidInput(f"start: {start} is after the recorded date {at.date()}")
    if end is not None and end <= start:
        raise InvalidInput(f"end: {end} must be after the start {start}")
    return Decision.creating(
        Pledge,
        pledge_id,
        Pledge.Registered,
        at,
        pledge_id=pledge_id,
        ref=ref,
        pledgors=sorted(pledgors),
        pledgee=pledgee.member_id,
        amount=amount,
        currency=currency,
        start=start,
        end=end,
    )


def _require_pledgee(pledge: Pledge, actor: Actor, verb: str) -> None:
    if not actor.acts_for(pledge.pledgee):
        raise NotAuthorised(f"actor: only the pledgee {pledge.pledgee} {verb} pledge {pledge.pledge_id}")


def _require_live(pledge: Pledge) -> None:
    if not pledge.is_live:
        raise InvalidState(f"pledge: {pledge.pledge_id} is already {pledge.status}")


def consent(pledge: Pledge, *, consent_id: str, act: str, actor: Actor, at: datetime) -> Decision:
    """The pledgee consents once to one act; a consent id is unique on its pledge."""
    if consent_id in pledge.consents:
        raise DuplicateId(f"id: consent {consent_id} already exists on pledge {pledge.pledge_id}")
    _require_pledgee(pledge, actor, "consents under")
    _require_live(pledge)
    if act not in ACTS:
        raise InvalidInput(f"act: {act!r} is not one of {', '.join(ACTS)}")
    return Decision.about(pledge, at).then(Pledge.ConsentGiven, consent_id=consent_id, act=act)


def end(pledge: Pledge, *, how: str, effective: date | None, actor: Actor, at: datetime) -> Decision:
    """Released (the loan is repaid) or enforced (default), by the pledgee, once."""
    _require_pledgee(pledge, actor, "releases" if how == "released" else "enforces")
    _require_live(pledge)
    effective = effective or at.date()
    if effective > at.date():
        raise InvalidInput(f"effective: {effective} is after the recorded date {at.date()}")
    if effective < pledge.start:
        raise InvalidInput(f"effective: {effective} is before the pledge started ({pledge.start})")
    return Decision.about(pledge, at).then(Pledge.Ended, how=how, effective=effective)


def use_consents(
    pledges: list[Pledge], *, act: str, offered: tuple[str, ...], used_for: str, ref: str, at: datetime
) -> None:
    """Every live pledge's pledgee must have consented to this act; each consent is consumed."""
    for pledge in pledges:
        if not pledge.is_live:
            continue
        consent_id = pledge.unused_consent(act, offered)
        if consent_id is None:
            raise AssetPledged(
                f"consent: {ref} is pledged to {pledge.pledgee} (pledge {pledge.pledge_id}); {ACT_NAMES[act]} "
                f"needs that pledgee's consent: record it (pledge consent {pledge.pledge_id}, act {act}) "
                "and name it as a consent"
            )
    for pledge in pledges:
        if pledge.is_live:
            consent_id = pledge.unused_consent(act, offered)
            assert consent_id is not None
            pledge.use_consent(consent_id=consent_id, used_for=used_for, at=at)
