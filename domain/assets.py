"""The title register: one Asset aggregate per IP right.

The asset is the consistency boundary for every rule that spans aggregates: who owns
it (its chain of conveyances), whether a listing or a pending trade holds it, and
(see licences/pledges) which rights encumber it. Commands that touch those rules save
the asset together with the listing, trade, licence or pledge in one atomic write, so
optimistic concurrency on the asset's version rejects a racing writer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

from eventsourcing.domain import event

from ipledger.domain.base import Aggregate, natural_id
from ipledger.domain.errors import (
    AssetExpired,
    AssetReserved,
    ConsentMissing,
    InvalidInput,
    InvalidState,
    NotAuthorised,
    NotOwner,
)
from ipledger.domain.values import Actor, ConveyanceKind


@dataclass(frozen=True)
class Conveyance:
    seq: int  # the asset's event version: breaks ties between equal effective dates
    kind: str
    effective: date
    owners: dict[str, str]  # the complete owner set after this conveyance
    trade: str | None


@dataclass(frozen=True)
class CoOwnerConsent:
    consent_id: str
    member: str
    act: str
    used: bool


#: Acts that bind every co-owner: one co-owner alone needs the others' consent.
CO_OWNER_ACTS = ("assignment", "listing", "exclusive_licence", "pledge")
ACT_VERBS = {
    "assignment": "assign it",
    "listing": "list it for assignment",
    "exclusive_licence": "grant an exclusive licence",
    "licence": "license it",
    "pledge": "pledge it",
}


@dataclass(frozen=True)
class Hold:
    """What keeps the asset from being sold elsewhere: an open assignment listing,
    or a pending trade until its settlement deadline."""

    kind: str  # "listing" | "trade"
    id: str
    listing_id: str
    until: datetime | None

    def active(self, at: datetime) -> bool:
        return self.until is None or at < self.until


class Asset(Aggregate):
    @staticmethod
    def create_id(ref: str) -> UUID:
        return natural_id("asset", ref)

    # ------------------------------------------------------------------ registration

    @classmethod
    def register(
        cls,
        *,
        ref: str,
        title: str,
        owners: dict[str, str],
        expires_on: date | None,
        effective: date | None,
        actor: Actor,
        at: datetime,
    ) -> Asset:
        if not actor.is_operator and (actor.member_id not in owners or len(owners) > 1):
            raise NotAuthorised(
                f"actor: {actor.id} may register only an asset it alone owns; the operator registers co-owned assets"
            )
        effective = effective or at.date()
        _not_after_recording(effective, at)
        if expires_on is not None and expires_on <= effective:
            raise InvalidInput(f"expires_on: {expires_on} must be after the registration date {effective}")
        return cls(ref=ref, title=title, owners=owners, expires_on=expires_on, effective=effective, timestamp=at)

    @event("Registered")
    def __init__(
        self,
        ref: str,
        title: str,
        owners: dict[str, str],
        expires_on: date | None,
        effective: date,
        timestamp: datetime,
    ) -> None:
        self.ref = ref
        self.title = title
        self.expires_on = expires_on
        self.registered_on = effective
        self.conveyances: list[Conveyance] = [
            Conveyance(1, ConveyanceKind.registration.value, effective, dict(owners), None)
        ]
        self.hold: Hold | None = None
        self.licence_ids: list[str] = []
        self.pledge_ids: list[str] = []  # live pledges, in registration order (their rank)
        self.co_owner_consents: dict[str, CoOwnerConsent] = {}

    # ------------------------------------------------------------------ ownership

    def owners_on(self, day: date) -> dict[str, str]:
        """Owners on an effective date: the latest conveyance in force by then.

        Ordered by (effective date, version), so a backdated conveyance recorded later
        takes its place in legal time without rewriting anything.
        """
        in_force = [c for c in self.conveyances if c.effective <= day]
        if not in_force:
            return {}
        return max(in_force, key=lambda c: (c.effective, c.seq)).owners

    @property
    def owners(self) -> dict[str, str]:
        return max(self.conveyances, key=lambda c: (c.effective, c.seq)).owners

    def is_expired(self, day: date) -> bool:
        return self.expires_on is not None and day >= self.expires_on

    def require_not_expired(self, at: datetime, act: str) -> None:
        if self.is_expired(at.date()):
            raise AssetExpired(f"ref: {self.ref} expired on {self.expires_on}; it cannot be {act}")

    def authorise(self, actor: Actor, act: str, at: datetime) -> None:
        """The operator acts for the owners; a member only for an asset it owns.

        A co-owner acting alone needs every other co-owner's recorded consent for acts
        that bind them all (assignment, listing for assignment, exclusive licence,
        pledge); the consents are consumed by the act, in the same write.
        """
        if actor.is_operator:
            return
        owners = self.owners
        if actor.member_id not in owners:
            raise NotOwner(
                f"actor: {actor.id} does not own {self.ref} (owners: {', '.join(sorted(owners))}); "
                f"it cannot {ACT_VERBS.get(act, act)}"
            )
        if len(owners) == 1 or act not in CO_OWNER_ACTS:
            return
        used, missing = [], []
        for other in sorted(set(owners) - {actor.member_id or ""}):
            consent = next(
                (c for c in self.co_owner_consents.values() if c.member == other and c.act == act and not c.used),
                None,
            )
            if consent is None:
                missing.append(other)
            else:
                used.append(consent.consent_id)
        if missing:
            raise ConsentMissing(
                f"actor: {self.ref} is co-owned; to {ACT_VERBS[act]} {actor.id} needs the consent of "
                f"{', '.join(missing)} ('ipledger asset consent {self.ref} --member M --act {act}')"
            )
        self._co_owner_consents_used(consent_ids=used, act=act, timestamp=at)

    def give_co_owner_consent(self, *, consent_id: str, member: str, act: str, actor: Actor, at: datetime) -> None:
        if not actor.acts_for(member):
            raise NotAuthorised(f"member: {actor.id} cannot consent for {member}")
        if member not in self.owners:
            raise NotOwner(f"member: {member} does not own {self.ref}")
        if len(self.owners) == 1:
            raise InvalidState(f"ref: {self.ref} has one owner; co-owner consents apply to co-owned assets")
        if act not in CO_OWNER_ACTS:
            raise InvalidInput(f"act: {act!r} is not one of {', '.join(CO_OWNER_ACTS)}")
        self._co_owner_consented(consent_id=consent_id, member=member, act=act, timestamp=at)

    @event("CoOwnerConsented")
    def _co_owner_consented(self, consent_id: str, member: str, act: str, timestamp: datetime) -> None:
        self.co_owner_consents[consent_id] = CoOwnerConsent(consent_id, member, act, False)

    @event("CoOwnerConsentsUsed")
    def _co_owner_consents_used(self, consent_ids: list[str], act: str, timestamp: datetime) -> None:
        for consent_id in consent_ids:
            old = self.co_owner_consents[consent_id]
            self.co_owner_consents[consent_id] = CoOwnerConsent(old.consent_id, old.member, old.act, True)

    def require_free(self, at: datetime, act: str) -> None:
        if self.hold is not None and self.hold.active(at):
            if self.hold.kind == "trade":
                until = self.hold.until.isoformat() if self.hold.until else "?"
                reason = f"reserved by pending trade {self.hold.id} (settlement deadline {until})"
            else:
                reason = f"offered in open assignment listing {self.hold.id}"
            raise AssetReserved(f"ref: {self.ref} is {reason}; it cannot be {act}")

    # ------------------------------------------------------------------ conveyances

    def assign(
        self,
        *,
        to: dict[str, str],
        kind: ConveyanceKind,
        effective: date | None,
        actor: Actor,
        at: datetime,
    ) -> None:
        """A direct conveyance recorded by the owners (or the operator for them)."""
        if kind == ConveyanceKind.registration or kind == ConveyanceKind.enforcement:
            raise InvalidInput(f"conveyance: {kind.value} is not a direct conveyance")
        effective = effective or at.date()
        _not_after_recording(effective, at)
        if effective < self.registered_on:
            # Backdating before later conveyances is allowed (a deed recorded late takes its
            # place in legal time); before the asset was registered it is not.
            raise InvalidInput(f"effective: {effective} is before {self.ref} was registered ({self.registered_on})")
        self.require_free(at, "assigned")
        if to == self.owners_on(effective) and kind != ConveyanceKind.correction:
            raise InvalidInput(f"to: {', '.join(to)} already own(s) {self.ref} on {effective}")
        self.authorise(actor, "assignment", at)  # last: it may record consents used
        self._conveyed(
            kind=kind.value,
            from_owners=self.owners_on(effective),
            to_owners=to,
            effective=effective,
            trade=None,
            timestamp=at,
        )

    def _require_in_chain_order(self, effective: date) -> None:
        """A sale or enforcement takes effect on or after the conveyance that made the
        current owners owners: earlier, the seller would not yet have owned what it was
        paid for, and the title would show someone else conveying it."""
        latest = max(c.effective for c in self.conveyances)
        if effective < latest:
            raise InvalidInput(
                f"effective: {effective} is before {self.ref}'s last conveyance took effect ({latest}); "
                "a conveyance cannot take effect before its grantor acquired the asset"
            )

    def convey_under_trade(self, *, trade_id: str, buyer: str, effective: date, at: datetime) -> None:
        """Settlement: title passes to the buyer in the same write that settles the trade."""
        _not_after_recording(effective, at)
        self._require_in_chain_order(effective)
        if self.hold is None or self.hold.kind != "trade" or self.hold.id != trade_id:
            raise AssetReserved(f"ref: {self.ref} is not reserved by trade {trade_id}")
        self._conveyed(
            kind=ConveyanceKind.assignment.value,
            from_owners=self.owners_on(effective),
            to_owners={buyer: "1"},
            effective=effective,
            trade=trade_id,
            timestamp=at,
        )

    @event("Conveyed")
    def _conveyed(
        self,
        kind: str,
        from_owners: dict[str, str],
        to_owners: dict[str, str],
        effective: date,
        trade: str | None,
        timestamp: datetime,
    ) -> None:
        # The event's own version (apply runs before the aggregate's version moves on):
        # the registration is version 1, so its first conveyance must rank after it.
        self.conveyances.append(Conveyance(self.version + 1, kind, effective, dict(to_owners), trade))
        if trade is not None and self.hold is not None and self.hold.id == trade:
            self.hold = None

    # ------------------------------------------------------------------ holds

    def offer_for_assignment(self, *, listing_id: str, actor: Actor, at: datetime) -> None:
        self.require_not_expired(at, "listed")
        self.require_free(at, "listed for assignment")
        self.authorise(actor, "listing", at)
        self._offered(listing_id=listing_id, timestamp=at)

    @event("OfferedForAssignment")
    def _offered(self, listing_id: str, timestamp: datetime) -> None:
        self.hold = Hold("listing", listing_id, listing_id, None)

    def offer_licence(self, *, exclusive: bool, actor: Actor, at: datetime) -> None:
        """A licence listing: the owners authorise the grant its trade will make."""
        self.require_not_expired(at, "licensed")
        if self.hold is not None and self.hold.kind == "trade":
            self.require_free(at, "listed for a licence")
        self.authorise(actor, "exclusive_licence" if exclusive else "licence", at)

    # ------------------------------------------------------------------ encumbrances

    def license(self, *, licence_id: str, exclusive: bool, actor: Actor | None, at: datetime) -> None:
        """Record a grant on the asset: bumps its version so racing grants collide.

        `actor` is None for a grant made by settling a licence listing's trade: the
        owners authorised it when they listed.
        """
        self.require_not_expired(at, "licensed")
        if actor is not None:
            self.authorise(actor, "exclusive_licence" if exclusive else "licence", at)
        self._licence_attached(licence_id=licence_id, timestamp=at)

    @event("LicenceAttached")
    def _licence_attached(self, licence_id: str, timestamp: datetime) -> None:
        self.licence_ids.append(licence_id)

    def pledge(self, *, pledge_id: str, actor: Actor, at: datetime, start: date | None = None) -> None:
        if start is not None and start < self.registered_on:
            raise InvalidInput(f"start: {start} is before {self.ref} was registered ({self.registered_on})")
        self.require_not_expired(at, "pledged")
        self.require_free(at, "pledged")
        self.authorise(actor, "pledge", at)
        self._pledge_attached(pledge_id=pledge_id, timestamp=at)

    @event("PledgeAttached")
    def _pledge_attached(self, pledge_id: str, timestamp: datetime) -> None:
        self.pledge_ids.append(pledge_id)

    def discharge_pledge(self, *, pledge_id: str, at: datetime) -> None:
        if pledge_id in self.pledge_ids:
            self._pledge_detached(pledge_id=pledge_id, timestamp=at)

    @event("PledgeDetached")
    def _pledge_detached(self, pledge_id: str, timestamp: datetime) -> None:
        self.pledge_ids.remove(pledge_id)

    def convey_on_enforcement(self, *, pledge_id: str, pledgee: str, effective: date, at: datetime) -> None:
        """A pledgee enforces on default: title passes to it (other encumbrances remain)."""
        self.require_free(at, "conveyed on enforcement")
        self._require_in_chain_order(effective)
        self._conveyed(
            kind=ConveyanceKind.enforcement.value,
            from_owners=self.owners_on(effective),
            to_owners={pledgee: "1"},
            effective=effective,
            trade=None,
            timestamp=at,
        )
        self._pledge_detached(pledge_id=pledge_id, timestamp=at)

    # ------------------------------------------------------------------ trades

    def reserve(self, *, trade_id: str, listing_id: str, deadline: datetime, at: datetime) -> None:
        """A winning or accepted bid reserves the asset for its trade."""
        if self.hold is not None and self.hold.active(at) and self.hold.listing_id != listing_id:
            self.require_free(at, "reserved")
        self._reserved(trade_id=trade_id, listing_id=listing_id, deadline=deadline, timestamp=at)

    @event("Reserved")
    def _reserved(self, trade_id: str, listing_id: str, deadline: datetime, timestamp: datetime) -> None:
        self.hold = Hold("trade", trade_id, listing_id, deadline)

    def release_hold(self, *, holder: str, reason: str, at: datetime) -> None:
        """A listing ended unsold/withdrawn, or its trade was voided: the asset is free again."""
        if self.hold is not None and holder in (self.hold.id, self.hold.listing_id):
            self._hold_released(holder=holder, reason=reason, timestamp=at)

    @event("HoldReleased")
    def _hold_released(self, holder: str, reason: str, timestamp: datetime) -> None:
        self.hold = None


def _not_after_recording(effective: date, at: datetime) -> None:
    if effective > at.date():
        raise InvalidInput(
            f"effective: {effective} is after the recorded date {at.date()}; the ledger records what has taken effect"
        )
