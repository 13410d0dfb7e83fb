"""Licences: scoped rights to exploit an asset, with the conflict rules of domain.md.

A licence is its own aggregate (granted → terminated | surrendered; expiry is derived
from the date). Grants are checked against every other licence on the asset, and the
asset's version is bumped by each grant (`Asset.attach_licence`), so two concurrent
grants that would conflict cannot both commit.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Mapping
from uuid import UUID

from eventsourcing.domain import event

from ipledger.domain.base import Aggregate, natural_id
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
from ipledger.domain.values import Actor, LicenceType


class Licence(Aggregate):
    @staticmethod
    def create_id(licence_id: str) -> UUID:
        return natural_id("licence", licence_id)

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
        """Check scope, parties and conflicts.

        The owners' authority for a direct grant is checked by the asset
        (`Asset.license`); a sublicence is granted by the parent's licensee.
        `actor` is None for a grant made by settling a licence listing's trade.
        """
        licensee.require_active("licensee")
        if scope.start < asset_registered_on:
            raise InvalidInput(f"start: {scope.start} is before the asset was registered ({asset_registered_on})")
        if asset_expires_on is not None and scope.end > asset_expires_on:
            raise InvalidInput(
                f"end: {scope.end} is after the asset expires ({asset_expires_on}); a term lies within the asset's life"
            )
        if lump_sum is not None and currency is None:
            raise InvalidInput("currency: a lump sum needs --currency")
        if royalty_rate is not None and not Decimal(0) <= royalty_rate <= Decimal(100):
            raise InvalidInput("royalty_rate: a running royalty is a percentage between 0 and 100")
        chain: set[str] = set()
        if parent is not None:
            if parent.ref != ref:
                raise LicenceOutOfScope(f"parent: licence {parent.licence_id} is of {parent.ref}, not {ref}")
            parent.require_may_sublicense(scope, others, at.date())
            chain = parent.chain_ids()
            licensors = [parent.licensee]
            if actor is not None and not actor.acts_for(parent.licensee):
                raise NotAuthorised(
                    f"actor: only {parent.licensee}, the licensee of {parent.licence_id}, sublicenses it"
                )
        if licensee.member_id in licensors:
            raise SelfDealing(f"licensee: {licensee.member_id} is a licensor of this grant")
        check_conflicts(scope, others, skip=chain)
        return cls(
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
            timestamp=at,
        )

    @event("Granted")
    def __init__(
        self,
        licence_id: str,
        ref: str,
        licensors: list[str],
        licensee: str,
        scope: Scope,
        royalty_rate: Decimal | None,
        lump_sum: Decimal | None,
        currency: str | None,
        parent: str | None,
        parent_chain: list[str],
        timestamp: datetime,
    ) -> None:
        self.licence_id = licence_id
        self.ref = ref
        self.licensors = list(licensors)
        self.licensee = licensee
        self.scope = scope
        self.royalty_rate = royalty_rate
        self.lump_sum = lump_sum
        self.currency = currency
        self.parent = parent
        self.parent_chain = list(parent_chain)
        self.status = "granted"
        self.ended_on: date | None = None

    @property
    def type(self) -> str:
        return self.scope.type.value

    def chain_ids(self) -> set[str]:
        return {self.licence_id, *self.parent_chain}

    def end_date(self, licences: Mapping[str, Licence]) -> date:
        """When the licence stops being in force: term end, an earlier end, or its parent's end."""
        ends = [self.scope.end]
        if self.ended_on is not None:
            ends.append(self.ended_on)
        if self.parent is not None and self.parent in licences:
            ends.append(licences[self.parent].end_date(licences))
        return min(ends)

    def effective_scope(self, licences: Mapping[str, Licence]) -> Scope | None:
        """The scope actually in force (its term cut at its end), or None if it never was."""
        end = self.end_date(licences)
        if end <= self.scope.start:
            return None
        return self.scope.model_copy(update={"end": end})

    def require_may_sublicense(self, scope: Scope, licences: Mapping[str, Licence], today: date) -> None:
        if self.status != "granted" or self.end_date(licences) <= max(today, self.scope.start):
            raise InvalidState(f"parent: licence {self.licence_id} has ended; it cannot be sublicensed")
        if not self.scope.sublicensable:
            raise LicenceOutOfScope(f"parent: licence {self.licence_id} is not sublicensable")
        window = self.effective_scope(licences)
        if window is None or not window.contains(scope):
            raise LicenceOutOfScope(
                f"parent: the sublicence ({scope_text(scope)}) must lie within licence {self.licence_id} "
                f"({scope_text(window or self.scope)})"
            )
        if self.scope.type != LicenceType.exclusive and scope.type == LicenceType.exclusive:
            raise LicenceOutOfScope(f"type: a {self.type} licence cannot grant an exclusive sublicence")

    def terminate(self, *, reason: str, effective: date | None, actor: Actor, owners: list[str], at: datetime) -> None:
        """By the licensor (the asset's owners now) or the operator, with a reason."""
        licensors = self.licensors if self.parent else owners
        if not actor.is_operator and actor.member_id not in licensors:
            raise NotAuthorised(
                f"actor: only the licensor ({', '.join(licensors)}) terminates licence {self.licence_id}"
            )
        self._require_live("terminated")
        self._ended(how="terminated", reason=reason, effective=self._end_date(effective, at), timestamp=at)

    def surrender(self, *, effective: date | None, actor: Actor, at: datetime) -> None:
        if not actor.acts_for(self.licensee):
            raise NotAuthorised(f"actor: only the licensee {self.licensee} surrenders licence {self.licence_id}")
        self._require_live("surrendered")
        self._ended(how="surrendered", reason="", effective=self._end_date(effective, at), timestamp=at)

    def _require_live(self, verb: str) -> None:
        if self.status != "granted":
            raise InvalidState(f"licence: {self.licence_id} is already {self.status}")

    def _end_date(self, effective: date | None, at: datetime) -> date:
        effective = effective or at.date()
        if effective > at.date():
            raise InvalidInput(f"effective: {effective} is after the recorded date {at.date()}")
        return effective

    @event("Ended")
    def _ended(self, how: str, reason: str, effective: date, timestamp: datetime) -> None:
        self.status = how
        self.ended_on = effective


def check_conflicts(scope: Scope, licences: Mapping[str, Licence], skip: set[str] = frozenset()) -> None:  # type: ignore[assignment]
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
