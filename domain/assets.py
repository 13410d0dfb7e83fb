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
from typing import TYPE_CHECKING, Any, ClassVar

from ipledger.domain.base import Aggregate, Decision
from ipledger.domain.errors import (
    AssetExpired,
    AssetReserved,
    ConsentMissing,
    DuplicateId,
    InvalidInput,
    InvalidState,
    NotAuthorised,
    NotOwner,
)
from ipledger.domain.rulepacks import PledgeFacts, check_pledge, later_end
from ipledger.domain.terms import pledge_ranks
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
#: Conveyances the owners record themselves (registration and enforcement are made by
#: the ledger: by registering, and by a pledgee's enforcement).
DIRECT_CONVEYANCES = (
    ConveyanceKind.assignment,
    ConveyanceKind.merger,
    ConveyanceKind.name_change,
    ConveyanceKind.correction,
)
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
    KIND = "asset"
    if TYPE_CHECKING:
        ref: str
        title: str
        expires_on: date | None
        registered_on: date
        conveyances: list[Conveyance]
        hold: Hold | None
        licence_ids: list[str]
        pledge_ids: list[str]  # live pledges, in registration order (their rank)
        last_pledge_end: tuple[str, date] | None  # the pledge that stopped being in force last, and when
        co_owner_consents: dict[str, CoOwnerConsent]

    class Registered(Aggregate.Created):
        ref: str
        title: str
        owners: dict[str, str]
        expires_on: date | None
        effective: date

        def apply(self, asset: Asset) -> None:
            asset.ref = self.ref
            asset.title = self.title
            asset.expires_on = self.expires_on
            asset.registered_on = self.effective
            asset.conveyances = [
                Conveyance(1, ConveyanceKind.registration.value, self.effective, dict(self.owners), None)
            ]
            asset.hold = None
            asset.licence_ids = []
            asset.pledge_ids = []
            asset.last_pledge_end = None
            asset.co_owner_consents = {}

    class CoOwnerConsented(Aggregate.Event):
        consent_id: str
        member: str
        act: str

        def apply(self, asset: Asset) -> None:
            asset.co_owner_consents[self.consent_id] = CoOwnerConsent(self.consent_id, self.member, self.act, False)

    class CoOwnerConsentsUsed(Aggregate.Event):
        consent_ids: list[str]
        act: str

        def apply(self, asset: Asset) -> None:
            for consent_id in self.consent_ids:
                old = asset.co_owner_consents[consent_id]
                asset.co_owner_consents[consent_id] = CoOwnerConsent(old.consent_id, old.member, old.act, True)

    class Conveyed(Aggregate.Event):
        kind: str
        from_owners: dict[str, str]
        to_owners: dict[str, str]
        effective: date
        trade: str | None

        def apply(self, asset: Asset) -> None:
            # The event's own version ranks it: the registration is version 1, so the
            # first conveyance ranks after it.
            asset.conveyances.append(
                Conveyance(self.originator_version, self.kind, self.effective, dict(self.to_owners), self.trade)
            )
            if self.trade is not None and asset.hold is not None and asset.hold.id == self.trade:
                asset.hold = None

    class OfferedForAssignment(Aggregate.Event):
        listing_id: str

        def apply(self, asset: Asset) -> None:
            asset.hold = Hold("listing", self.listing_id, self.listing_id, None)

    class LicenceAttached(Aggregate.Event):
        licence_id: str

        def apply(self, asset: Asset) -> None:
            asset.licence_ids.append(self.licence_id)

    class PledgeAttached(Aggregate.Event):
        pledge_id: str

        def apply(self, asset: Asset) -> None:
            asset.pledge_ids.append(self.pledge_id)

    class PledgeDetached(Aggregate.Event):
        """Version 2 says when the pledge stopped being in force (its release or
        enforcement's effective date), so a later pledge can be judged against it; a
        version-1 event (a log written before) is upcast to None, read as the day it was
        recorded."""

        class_version: ClassVar[int] = 2
        pledge_id: str
        effective: date | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["effective"] = None

        def apply(self, asset: Asset) -> None:
            asset.pledge_ids.remove(self.pledge_id)
            asset.last_pledge_end = later_end(
                asset.last_pledge_end, self.pledge_id, self.effective or self.timestamp.date()
            )

    class Reserved(Aggregate.Event):
        trade_id: str
        listing_id: str
        deadline: datetime

        def apply(self, asset: Asset) -> None:
            asset.hold = Hold("trade", self.trade_id, self.listing_id, self.deadline)

    class HoldReleased(Aggregate.Event):
        holder: str
        reason: str

        def apply(self, asset: Asset) -> None:
            asset.hold = None

    # ------------------------------------------------------------------ queries

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

    def pledge_rank(self, pledge_id: str) -> int:
        """A live pledge's rank: its place among the live pledges (see `pledge_ranks`)."""
        return pledge_ranks(self.pledge_ids)[pledge_id]

    # ------------------------------------------------------------------ the shell

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
        return cls.new(
            register(
                ref=ref, title=title, owners=owners, expires_on=expires_on, effective=effective, actor=actor, at=at
            )
        )

    def authorise(self, actor: Actor, act: str, at: datetime) -> None:
        """Check the actor may do `act` with the asset, using up co-owner consents it needs."""
        self.record(authorise(self, actor, act, at))

    def give_co_owner_consent(self, *, consent_id: str, member: str, act: str, actor: Actor, at: datetime) -> None:
        self.record(give_co_owner_consent(self, consent_id=consent_id, member=member, act=act, actor=actor, at=at))

    def assign(
        self, *, to: dict[str, str], kind: ConveyanceKind, effective: date | None, actor: Actor, at: datetime
    ) -> None:
        """A direct conveyance recorded by the owners (or the operator for them)."""
        self.record(assign(self, to=to, kind=kind, effective=effective, actor=actor, at=at))

    def convey_under_trade(self, *, trade_id: str, buyer: str, effective: date, at: datetime) -> None:
        """Settlement: title passes to the buyer in the same write that settles the trade."""
        self.record(convey_under_trade(self, trade_id=trade_id, buyer=buyer, effective=effective, at=at))

    def offer_for_assignment(self, *, listing_id: str, actor: Actor, at: datetime) -> None:
        self.record(offer_for_assignment(self, listing_id=listing_id, actor=actor, at=at))

    def offer_licence(self, *, exclusive: bool, actor: Actor, at: datetime) -> None:
        """A licence listing: the owners authorise the grant its trade will make."""
        self.record(offer_licence(self, exclusive=exclusive, actor=actor, at=at))

    def license(self, *, licence_id: str, exclusive: bool, actor: Actor | None, at: datetime) -> None:
        """Record a grant on the asset: bumps its version so racing grants collide."""
        self.record(license(self, licence_id=licence_id, exclusive=exclusive, actor=actor, at=at))

    def pledge(self, *, pledge_id: str, start: date, end: date | None, actor: Actor, at: datetime) -> None:
        self.record(pledge(self, pledge_id=pledge_id, start=start, end=end, actor=actor, at=at))

    def discharge_pledge(self, *, pledge_id: str, effective: date, at: datetime) -> None:
        self.record(discharge_pledge(self, pledge_id=pledge_id, effective=effective, at=at))

    def convey_on_enforcement(self, *, pledge_id: str, pledgee: str, effective: date, at: datetime) -> None:
        """A pledgee enforces on default: title passes to it (other encumbrances remain)."""
        self.record(convey_on_enforcement(self, pledge_id=pledge_id, pledgee=pledgee, effective=effective, at=at))

    def reserve(self, *, trade_id: str, listing_id: str, deadline: datetime, at: datetime) -> None:
        """A winning or accepted bid reserves the asset for its trade."""
        self.record(reserve(self, trade_id=trade_id, listing_id=listing_id, deadline=deadline, at=at))

    def release_hold(self, *, holder: str, reason: str, at: datetime) -> None:
        """A listing ended unsold/withdrawn, or its trade was voided: the asset is free again."""
        self.record(release_hold(self, holder=holder, reason=reason, at=at))


# --------------------------------------------------------------------------- rules


def register(
    *,
    ref: str,
    title: str,
    owners: dict[str, str],
    expires_on: date | None,
    effective: date | None,
    actor: Actor,
    at: datetime,
) -> Decision:
    if not actor.is_operator and (actor.member_id not in owners or len(owners) > 1):
        raise NotAuthorised(
            f"actor: {actor.id} may register only an asset it alone owns; the operator registers co-owned assets"
        )
    effective = effective or at.date()
    _not_after_recording(effective, at)
    if expires_on is not None and expires_on <= effective:
        raise InvalidInput(f"expires_on: {expires_on} must be after the registration date {effective}")
    return Decision.creating(
        Asset,
        ref,
        Asset.Registered,
        at,
        ref=ref,
        title=title,
        owners=owners,
        expires_on=expires_on,
        effective=effective,
    )


def _require_not_expired(asset: Asset, at: datetime, act: str) -> None:
    if asset.is_expired(at.date()):
        raise AssetExpired(f"ref: {asset.ref} expired on {asset.expires_on}; it cannot be {act}")


def _require_free(asset: Asset, at: datetime, act: str) -> None:
    hold = asset.hold
    if hold is not None and hold.active(at):
        if hold.kind == "trade":
            until = hold.until.isoformat() if hold.until else "?"
            reason = f"reserved by pending trade {hold.id} (settlement deadline {until})"
        else:
            reason = f"offered in open assignment listing {hold.id}"
        raise AssetReserved(f"ref: {asset.ref} is {reason}; it cannot be {act}")


def authorise(asset: Asset, actor: Actor, act: str, at: datetime) -> Decision:
    """The operator acts for the owners; a member only for an asset it owns.

    A co-owner acting alone needs every other co-owner's recorded consent for acts that
    bind them all (CO_OWNER_ACTS); the decision uses those consents up, in the same
    write as the act."""
    decision = Decision.about(asset, at)
    if actor.is_operator:
        return decision
    owners = asset.owners
    if actor.member_id not in owners:
        raise NotOwner(
            f"actor: {actor.id} does not own {asset.ref} (owners: {', '.join(sorted(owners))}); "
            f"it cannot {ACT_VERBS.get(act, act)}"
        )
    if len(owners) == 1 or act not in CO_OWNER_ACTS:
        return decision
    used, missing = [], []
    for other in sorted(set(owners) - {actor.member_id or ""}):
        consent = next(
            (c for c in asset.co_owner_consents.values() if c.member == other and c.act == act and not c.used),
            None,
        )
        if consent is None:
            missing.append(other)
        else:
            used.append(consent.consent_id)
    if missing:
        raise ConsentMissing(
            f"actor: {asset.ref} is co-owned; to {ACT_VERBS[act]} {actor.id} needs the consent of "
            f"{', '.join(missing)} (asset consent {asset.ref}, member, act {act})"
        )
    return decision.then(Asset.CoOwnerConsentsUsed, consent_ids=used, act=act)


def give_co_owner_consent(
    asset: Asset, *, consent_id: str, member: str, act: str, actor: Actor, at: datetime
) -> Decision:
    if consent_id in asset.co_owner_consents:
        raise DuplicateId(f"id: consent {consent_id} already exists on {asset.ref}")
    if not actor.acts_for(member):
        raise NotAuthorised(f"member: {actor.id} cannot consent for {member}")
    if member not in asset.owners:
        raise NotOwner(f"member: {member} does not own {asset.ref}")
    if len(asset.owners) == 1:
        raise InvalidState(f"ref: {asset.ref} has one owner; co-owner consents apply to co-owned assets")
    if act not in CO_OWNER_ACTS:
        raise InvalidInput(f"act: {act!r} is not one of {', '.join(CO_OWNER_ACTS)}")
    return Decision.about(asset, at).then(Asset.CoOwnerConsented, consent_id=consent_id, member=member, act=act)


def assign(
    asset: Asset, *, to: dict[str, str], kind: ConveyanceKind, effective: date | None, actor: Actor, at: datetime
) -> Decision:
    if kind not in DIRECT_CONVEYANCES:
        raise InvalidInput(f"conveyance: {kind.value} is not a direct conveyance")
    effective = effective or at.date()
    _not_after_recording(effective, at)
    if effective < asset.registered_on:
        # Backdating before later conveyances is allowed (a deed recorded late takes its
        # place in legal time); before the asset was registered it is not.
        raise InvalidInput(f"effective: {effective} is before {asset.ref} was registered ({asset.registered_on})")
    _require_free(asset, at, "assigned")
    if to == asset.owners_on(effective) and kind != ConveyanceKind.correction:
        raise InvalidInput(f"to: {', '.join(to)} already own(s) {asset.ref} on {effective}")
    return authorise(asset, actor, "assignment", at).then(  # last: it may use consents
        Asset.Conveyed,
        kind=kind.value,
        from_owners=asset.owners_on(effective),
        to_owners=to,
        effective=effective,
        trade=None,
    )


def _require_in_chain_order(asset: Asset, effective: date) -> None:
    """A sale or enforcement takes effect on or after the conveyance that made the
    current owners owners: earlier, the seller would not yet have owned what it was
    paid for, and the title would show someone else conveying it."""
    latest = max(c.effective for c in asset.conveyances)
    if effective < latest:
        raise InvalidInput(
            f"effective: {effective} is before {asset.ref}'s last conveyance took effect ({latest}); "
            "a conveyance cannot take effect before its grantor acquired the asset"
        )


def convey_under_trade(asset: Asset, *, trade_id: str, buyer: str, effective: date, at: datetime) -> Decision:
    _not_after_recording(effective, at)
    _require_in_chain_order(asset, effective)
    if asset.hold is None or asset.hold.kind != "trade" or asset.hold.id != trade_id:
        raise AssetReserved(f"ref: {asset.ref} is not reserved by trade {trade_id}")
    return Decision.about(asset, at).then(
        Asset.Conveyed,
        kind=ConveyanceKind.assignment.value,
        from_owners=asset.owners_on(effective),
        to_owners={buyer: "1"},
        effective=effective,
        trade=trade_id,
    )


def offer_for_assignment(asset: Asset, *, listing_id: str, actor: Actor, at: datetime) -> Decision:
    _require_not_expired(asset, at, "listed")
    _require_free(asset, at, "listed for assignment")
    return authorise(asset, actor, "listing", at).then(Asset.OfferedForAssignment, listing_id=listing_id)


def offer_licence(asset: Asset, *, exclusive: bool, actor: Actor, at: datetime) -> Decision:
    _require_not_expired(asset, at, "licensed")
    if asset.hold is not None and asset.hold.kind == "trade":
        _require_free(asset, at, "listed for a licence")
    return authorise(asset, actor, "exclusive_licence" if exclusive else "licence", at)


def license(asset: Asset, *, licence_id: str, exclusive: bool, actor: Actor | None, at: datetime) -> Decision:
    """`actor` is None for a grant made by settling a licence listing's trade: the owners
    authorised it when they listed."""
    _require_not_expired(asset, at, "licensed")
    act = "exclusive_licence" if exclusive else "licence"
    decision = authorise(asset, actor, act, at) if actor is not None else Decision.about(asset, at)
    return decision.then(Asset.LicenceAttached, licence_id=licence_id)


def pledge(asset: Asset, *, pledge_id: str, start: date, end: date | None, actor: Actor, at: datetime) -> Decision:
    """The common rules, then the asset's jurisdiction's (`rulepacks`), then consent."""
    if start < asset.registered_on:
        raise InvalidInput(f"start: {start} is before {asset.ref} was registered ({asset.registered_on})")
    _require_not_expired(asset, at, "pledged")
    _require_free(asset, at, "pledged")
    check_pledge(PledgeFacts(asset.ref, asset.expires_on, tuple(asset.pledge_ids), start, end, asset.last_pledge_end))
    return authorise(asset, actor, "pledge", at).then(Asset.PledgeAttached, pledge_id=pledge_id)


def discharge_pledge(asset: Asset, *, pledge_id: str, effective: date, at: datetime) -> Decision:
    decision = Decision.about(asset, at)
    if pledge_id in asset.pledge_ids:
        decision.then(Asset.PledgeDetached, pledge_id=pledge_id, effective=effective)
    return decision


def convey_on_enforcement(asset: Asset, *, pledge_id: str, pledgee: str, effective: date, at: datetime) -> Decision:
    _require_free(asset, at, "conveyed on enforcement")
    _require_in_chain_order(asset, effective)
    return (
        Decision.about(asset, at)
        .then(
            Asset.Conveyed,
            kind=ConveyanceKind.enforcement.value,
            from_owners=asset.owners_on(effective),
            to_owners={pledgee: "1"},
            effective=effective,
            trade=None,
        )
        .then(Asset.PledgeDetached, pledge_id=pledge_id, effective=effective)
    )


def reserve(asset: Asset, *, trade_id: str, listing_id: str, deadline: datetime, at: datetime) -> Decision:
    hold = asset.hold
    if hold is not None and hold.active(at) and hold.listing_id != listing_id:
        _require_free(asset, at, "reserved")
    return Decision.about(asset, at).then(Asset.Reserved, trade_id=trade_id, listing_id=listing_id, deadline=deadline)


def release_hold(asset: Asset, *, holder: str, reason: str, at: datetime) -> Decision:
    decision = Decision.about(asset, at)
    if asset.hold is not None and holder in (asset.hold.id, asset.hold.listing_id):
        decision.then(Asset.HoldReleased, holder=holder, reason=reason)
    return decision


def _not_after_recording(effective: date, at: datetime) -> None:
    if effective > at.date():
        raise InvalidInput(
            f"effective: {effective} is after the recorded date {at.date()}; the ledger records what has taken effect"
        )
