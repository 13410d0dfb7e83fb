"""Licences: scoped rights to exploit an asset, with the conflict rules of domain.md.

A licence is its own aggregate (granted → terminated | surrendered; expiry is derived
from the date). Grants are checked against every other licence on the asset, and the
asset's version is bumped by each grant (`Asset.license`), so two concurrent
grants that would conflict cannot both commit.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Mapping

from ipledger.domain.base import Aggregate, Decision
from ipledger.domain.errors import (
    InvalidInput,
    InvalidState,
    LicenceConflict,
    LicenceOutOfScope,
    NotAuthorised,
    SelfDealing,
)
from ipledger.domain.members import Member
from ipledger.domain.scopes import Scope, conflicts
from ipledger.domain.terms import licence_end
from ipledger.domain.values import Actor, LicenceType


class Licence(Aggregate):
    KIND = "licence"
    if TYPE_CHECKING:
        licence_id: str
        ref: str
        licensors: list[str]
        licensee: str
        scope: Scope
        royalty_rate: Decimal | None
        lump_sum: Decimal | None
        currency: str | None
        parent: str | None
        parent_chain: list[str]
        status: str
        ended_on: date | None

    class Granted(Aggregate.Created):
        licence_id: str
        ref: str
        licensors: list[str]
        licensee: str
        scope: Scope
        royalty_rate: Decimal | None
        lump_sum: Decimal | None
        currency: str | None
        parent: str | None
        parent_chain: list[str]

        def apply(self, licence: Licence) -> None:
            licence.licence_id = self.licence_id
            licence.ref = self.ref
            licence.licensors = list(self.licensors)
            licence.licensee = self.licensee
            licence.scope = self.scope
            licence.royalty_rate = self.royalty_rate
            licence.lump_sum = self.lump_sum
            licence.currency = self.currency
            licence.parent = self.parent
            licence.parent_chain = list(self.parent_chain)
            licence.status = "granted"
            licence.ended_on = None

    class Ended(Aggregate.Event):
        how: str
        reason: str
        effective: date

        def apply(self, licence: Licence) -> None:
            licence.status = self.how
            licence.ended_on = self.effective

    @property
    def type(self) -> str:
        return self.scope.type.value

    def chain_ids(self) -> set[str]:
        return {self.licence_id, *self.parent_chain}

    def end_date(self, licences: Mapping[str, Licence]) -> date:
        """When the licence stops being in force (see `licence_end`)."""
        parent_end = (
            licences[self.parent].end_date(licences) if self.parent is not None and self.parent in licences else None
        )
        return licence_end(self.scope.end, self.ended_on, parent_end)

    def effective_scope(self, licences: Mapping[str, Licence]) -> Scope | None:
        """The scope actually in force (its term cut at its end), or None if it never was."""
        end = self.end_date(licences)
        if end <= self.scope.start:
            return None
        return self.scope.model_copy(update={"end": end})

    # ------------------------------------------------------------------ the shell

    @classmethod
    def grant(
        cls,
        *,
        licence_id: str,
        ref: str,
        licensors: list[str],
        licensee: Member,
        scope: Scope,
        royalty_rate: Decimal | None,
        lump_sum: Decimal | None,
        currency: str | None,
        parent: Licence | None,
        others: Mapping[str, Licence],
        asset_registered_on: date,
        asset_expires_on: date | None,
        actor: Actor | None,
        at: datetime,
    ) -> Licence:
        return cls.new(
            grant(
                licence_id=licence_id,
                ref=ref,
                licensors=licensors,
                licensee=licensee,
                scope=scope,
                royalty_rate=royalty_rate,
                lump_sum=lump_sum,
                currency=currency,
                parent=parent,
                others=others,
                asset_registered_on=asset_registered_on,
                asset_expires_on=asset_expires_on,
                actor=actor,
                at=at,
            )
        )

    def terminate(self, *, reason: str, effective: date | None, actor: Actor, owners: list[str], at: datetime) -> None:
        self.record(terminate(self, reason=reason, effective=effective, actor=actor, owners=owners, at=at))

    def surrender(self, *, effective: date | None, actor: Actor, at: datetime) -> None:
        self.record(surrender(self, effective=effective, actor=actor, at=at))


# --------------------------------------------------------------------------- rules


def grant(
    *,
    licence_id: str,
    ref: str,
    licensors: list[str],
    licensee: Member,
    scope: Scope,
    royalty_rate: Decimal | None,
    lump_sum: Decimal | None,
    currency: str | None,
    parent: Licence | None,
    others: Mapping[str, Licence],
    asset_registered_on: date,
    asset_expires_on: date | None,
    actor: Actor | None,
    at: datetime,
) -> Decision:
    """Check scope, parties and conflicts.

    The owners' authority for a direct grant is checked by the asset
    (`Asset.license`); a sublicence is granted by the parent's licensee.
    `actor` is None for a grant made by settling a licence listing's trade.
    """
    if royalty_rate is not None and not Decimal(0) <= royalty_rate <= Decimal(100):
        raise InvalidInput(f"royalty_rate: {royalty_rate} is not a running royalty, a percentage from 0 to 100")
    if lump_sum is not None and currency is None:
        raise InvalidInput("currency: a lump sum needs its currency")
    licensee.require_active("licensee")
    if scope.start < asset_registered_on:
        raise InvalidInput(f"start: {scope.start} is before the asset was registered ({asset_registered_on})")
    if asset_expires_on is not None and scope.end > asset_expires_on:
        raise InvalidInput(
            f"end: {scope.end} is after the asset expires ({asset_expires_on}); a term lies within the asset's life"
        )
    chain: set[str] = set()
    if parent is not None:
        if parent.ref != ref:
            raise LicenceOutOfScope(f"parent: licence {parent.licence_id} is of {parent.ref}, not {ref}")
        require_may_sublicense(parent, scope, others, at.date())
        chain = parent.chain_ids()
        licensors = [parent.licensee]
        if actor is not None and not actor.acts_for(parent.licensee):
            raise NotAuthorised(f"actor: only {parent.licensee}, the licensee of {parent.licence_id}, sublicenses it")
    if licensee.member_id in licensors:
        raise SelfDealing(f"licensee: {licensee.member_id} is a licensor of this grant")
    check_conflicts(scope, others, skip=chain)
    return Decision.creating(
        Licence,
        licence_id,
        Licence.Granted,
        at,
        licence_id=licence_id,
        ref=ref,
        licensors=sorted(licensors),
        licensee=licensee.member_id,
        scope=scope,
        royalty_rate=royalty_rate,
        lump_sum=lump_sum,
        currency=currency,
        parent=parent.licence_id if parent else None,
        parent_chain=sorted(chain),
    )


def require_may_sublicense(parent: Licence, scope: Scope, licences: Mapping[str, Licence], today: date) -> None:
    if parent.status != "granted" or parent.end_date(licences) <= max(today, parent.scope.start):
        raise InvalidState(f"parent: licence {parent.licence_id} has ended; it cannot be sublicensed")
    if not parent.scope.sublicensable:
        raise LicenceOutOfScope(f"parent: licence {parent.licence_id} is not sublicensable")
    window = parent.effective_scope(licences)
    if window is None or not window.contains(scope):
        raise LicenceOutOfScope(
            f"parent: the sublicence ({scope_text(scope)}) must lie within licence {parent.licence_id} "
            f"({scope_text(window or parent.scope)})"
        )
    if parent.scope.type != LicenceType.exclusive and scope.type == LicenceType.exclusive:
        raise LicenceOutOfScope(f"type: a {parent.type} licence cannot grant an exclusive sublicence")


def terminate(
    licence: Licence, *, reason: str, effective: date | None, actor: Actor, owners: list[str], at: datetime
) -> Decision:
    """By the licensor (the asset's owners now) or the operator, with a reason."""
    licensors = licence.licensors if licence.parent else owners
    if not actor.is_operator and actor.member_id not in licensors:
        raise NotAuthorised(
            f"actor: only the licensor ({', '.join(licensors)}) terminates licence {licence.licence_id}"
        )
    _require_live(licence)
    return Decision.about(licence, at).then(
        Licence.Ended, how="terminated", reason=reason, effective=_end_date(effective, at)
    )


def surrender(licence: Licence, *, effective: date | None, actor: Actor, at: datetime) -> Decision:
    if not actor.acts_for(licence.licensee):
        raise NotAuthorised(f"actor: only the licensee {licence.licensee} surrenders licence {licence.licence_id}")
    _require_live(licence)
    return Decision.about(licence, at).then(
        Licence.Ended, how="surrendered", reason="", effective=_end_date(effective, at)
    )


def _require_live(licence: Licence) -> None:
    if licence.status != "granted":
        raise InvalidState(f"licence: {licence.licence_id} is already {licence.status}")


def _end_date(effective: date | None, at: datetime) -> date:
    effective = effective or at.date()
    if effective > at.date():
        raise InvalidInput(f"effective: {effective} is after the recorded date {at.date()}")
    return effective


def check_conflicts(
    scope: Scope, licences: Mapping[str, Licence], skip: frozenset[str] | set[str] = frozenset()
) -> None:
    """Reject a scope that conflicts with any licence in force (but its own parent chain)."""
    for other in licences.values():
        if other.licence_id in skip:
            continue
        window = other.effective_scope(licences)
        if window is not None and conflicts(scope, window):
            raise LicenceConflict(
                f"type: {scope.type.value} licence {scope_text(scope)} collides with "
                f"{other.type} licence {other.licence_id} to {other.licensee} ({scope_text(window)})"
            )


def scope_text(scope: Scope) -> str:
    return f"{scope.type.value} {'+'.join(scope.territories)} × {'+'.join(scope.fields)} × [{scope.start}, {scope.end})"
