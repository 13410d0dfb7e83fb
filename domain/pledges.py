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
from uuid import UUID

from eventsourcing.domain import event

from ipledger.domain.base import Aggregate, natural_id
from ipledger.domain.errors import AssetPledged, InvalidInput, InvalidState, NotAuthorised, NotEligible
from ipledger.domain.members import Member
from ipledger.domain.values import Actor

ACTS = ("assignment", "licence", "listing")


@dataclass(frozen=True)
class Consent:
    consent_id: str
    act: str
    used_for: str | None = None


class Pledge(Aggregate):
    @staticmethod
    def create_id(pledge_id: str) -> UUID:
        return natural_id("pledge", pledge_id)

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
        pledgee.require_active("pledgee")
        if not pledgee.is_financial_institution:
            raise NotEligible(
                f"pledgee: {pledgee.member_id} is a {pledgee.kind}; only financial institutions take pledges"
            )
        if pledgee.member_id in pledgors:
            raise NotEligible(f"pledgee: {pledgee.member_id} owns the asset and cannot take a pledge on it")
        if (amount is None) != (currency is None):
            raise InvalidInput("amount: a secured amount and its currency go together (--amount with --currency)")
        if start > at.date():
            raise InvalidInput(f"start: {start} is after the recorded date {at.date()}")
        if end is not None and end <= start:
            raise InvalidInput(f"end: {end} must be after the start {start}")
        return cls(
            pledge_id=pledge_id,
            ref=ref,
            pledgors=sorted(pledgors),
            pledgee=pledgee.member_id,
            amount=amount,
            currency=currency,
            start=start,
            end=end,
            timestamp=at,
        )

    @event("Registered")
    def __init__(
        self,
        pledge_id: str,
        ref: str,
        pledgors: list[str],
        pledgee: str,
        amount: Decimal | None,
        currency: str | None,
        start: date,
        end: date | None,
        timestamp: datetime,
    ) -> None:
        self.pledge_id = pledge_id
        self.ref = ref
        self.pledgors = list(pledgors)
        self.pledgee = pledgee
        self.amount = amount
        self.currency = currency
        self.start = start
        self.end = end
        self.status = "registered"
        self.ended_on: date | None = None
        self.consents: dict[str, Consent] = {}

    @property
    def is_live(self) -> bool:
        return self.status == "registered"

    def in_force_on(self, day: date) -> bool:
        """From its start until released or enforced; `end` is the secured loan's term,
        and a lender keeps its security past it until it releases."""
        return self.start <= day and (self.ended_on is None or day < self.ended_on)

    def _require_pledgee(self, actor: Actor, verb: str) -> None:
        if not actor.acts_for(self.pledgee):
            raise NotAuthorised(f"actor: only the pledgee {self.pledgee} {verb} pledge {self.pledge_id}")

    def _require_live(self) -> None:
        if not self.is_live:
            raise InvalidState(f"pledge: {self.pledge_id} is already {self.status}")

    # ------------------------------------------------------------------ consents

    def consent(self, *, consent_id: str, act: str, actor: Actor, at: datetime) -> None:
        self._require_pledgee(actor, "consents under")
        self._require_live()
        if act not in ACTS:
            raise InvalidInput(f"act: {act!r} is not one of {', '.join(ACTS)}")
        self._consented(consent_id=consent_id, act=act, timestamp=at)

    @event("ConsentGiven")
    def _consented(self, consent_id: str, act: str, timestamp: datetime) -> None:
        self.consents[consent_id] = Consent(consent_id, act)

    def unused_consent(self, act: str, offered: tuple[str, ...]) -> str | None:
        for consent_id in offered:
            consent = self.consents.get(consent_id)
            if consent is not None and consent.act == act and consent.used_for is None:
                return consent_id
        return None

    def use_consent(self, *, consent_id: str, used_for: str, at: datetime) -> None:
        self._consent_used(consent_id=consent_id, used_for=used_for, timestamp=at)

    @event("ConsentUsed")
    def _consent_used(self, consent_id: str, used_for: str, timestamp: datetime) -> None:
        old = self.consents[consent_id]
        self.consents[consent_id] = Consent(old.consent_id, old.act, used_for)

    # ------------------------------------------------------------------ ending

    def release(self, *, effective: date | None, actor: Actor, at: datetime) -> date:
        """The loan is repaid: the pledgee releases the asset."""
        self._require_pledgee(actor, "releases")
        self._require_live()
        effective = self._end_date(effective, at)
        self._ended(how="released", effective=effective, timestamp=at)
        return effective

    def enforce(self, *, effective: date | None, actor: Actor, at: datetime) -> date:
        """Default: the pledgee enforces; the asset is assigned to it in the same write."""
        self._require_pledgee(actor, "enforces")
        self._require_live()
        effective = self._end_date(effective, at)
        self._ended(how="enforced", effective=effective, timestamp=at)
        return effective

    def _end_date(self, effective: date | None, at: datetime) -> date:
        effective = effective or at.date()
        if effective > at.date():
            raise InvalidInput(f"effective: {effective} is after the recorded date {at.date()}")
        if effective < self.start:
            raise InvalidInput(f"effective: {effective} is before the pledge started ({self.start})")
        return effective

    @event("Ended")
    def _ended(self, how: str, effective: date, timestamp: datetime) -> None:
        self.status = how
        self.ended_on = effective


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
                f"needs that pledgee's consent ('ipledger pledge consent {pledge.pledge_id} --act {act}', "
                "then pass --consent)"
            )
    for pledge in pledges:
        if pledge.is_live:
            consent_id = pledge.unused_consent(act, offered)
            assert consent_id is not None
            pledge.use_consent(consent_id=consent_id, used_for=used_for, at=at)


ACT_NAMES = {"assignment": "assignment", "licence": "licensing", "listing": "listing for assignment"}
