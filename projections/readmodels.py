"""The read models: ownership and chain of title, listings, and order books."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, NamedTuple
from uuid import UUID

import orjson

from ipledger.domain.assets import Asset
from ipledger.domain.base import Aggregate
from ipledger.domain.licences import Licence
from ipledger.domain.listings import Listing, superseded_bids
from ipledger.domain.members import Member
from ipledger.domain.pledges import Pledge
from ipledger.domain.trades import Trade
from ipledger.domain.values import minor
from ipledger.projections.base import Projection, Recorded, Rows, handles, naive_utc
from ipledger.projections.tables import (
    PROJECTION_TABLES,
    assets_table,
    bids_table,
    conveyance_members_table,
    conveyances_table,
    currencies_table,
    licences_table,
    listing_sellers_table,
    listings_table,
    members_table,
    pledges_table,
    trades_table,
    trail_keys_table,
    trail_table,
)


class BidRow(NamedTuple):
    """A bid as the book holds it: what the domain's supersede rule reads."""

    bid_id: str
    bidder: str
    state: str


# --------------------------------------------------------------------------- ownership


class OwnershipProjection(Projection):
    """Chain of title per asset, each conveyance with effective date and recorded time.

    Ownership on any date, as known at any time, is a lookup of the latest conveyance
    in force (effective ≤ D, recorded ≤ R), so bitemporal questions need no replay.
    """

    name = "ownership"
    tables = PROJECTION_TABLES["ownership"]

    @handles(Asset.Registered)
    def registered(self, rows: Rows, r: Recorded) -> None:
        e = r.event
        rows.add(
            assets_table,
            ref=e.ref,
            aggregate_id=r.aggregate,
            title=e.title,
            expires_on=e.expires_on,
            registered_on=e.effective,
            position=r.position,
        )
        self.cache[r.aggregate] = e.ref
        self._conveyance(rows, r, e.ref, "registration", {}, e.owners, None, e.effective)

    @handles(Asset.Conveyed)
    def conveyed(self, rows: Rows, r: Recorded) -> None:
        e = r.event
        aggregate_id = r.aggregate
        ref = self.cache.get(aggregate_id)
        if ref is None:
            ((ref,),) = rows.select(assets_table, ("ref",), aggregate_id=aggregate_id)
            self.cache[aggregate_id] = ref
        self._conveyance(rows, r, ref, e.kind, e.from_owners, e.to_owners, e.trade, e.effective)

    def _conveyance(
        self,
        rows: Rows,
        r: Recorded,
        ref: str,
        kind: str,
        from_owners: dict[str, str],
        to_owners: dict[str, str],
        trade: str | None,
        effective: object,
    ) -> None:
        rows.add(
            conveyances_table,
            position=r.position,
            asset=ref,
            seq=r.event.originator_version,
            kind=kind,
            effective=effective,
            recorded=r.at,
            from_owners=orjson.dumps(from_owners).decode(),
            to_owners=orjson.dumps(to_owners).decode(),
            trade=trade,
        )
        for member in to_owners:
            rows.add(conveyance_members_table, member=member, asset=ref, position=r.position)


# --------------------------------------------------------------------------- market


class ListingsProjection(Projection):
    """Every listing with its status: the `listings` query and the book's header."""

    name = "listings"
    tables = PROJECTION_TABLES["listings"]
    kept = (listings_table,)  # their rows change after they are added

    @handles(Listing.Opened)
    def opened(self, rows: Rows, r: Recorded) -> None:
        e = r.event
        rows.add(
            listings_table,
            listing_id=e.listing_id,
            aggregate_id=r.aggregate,
            asset=e.ref,
            type=e.type,
            mechanism=e.mechanism,
            currency=e.currency,
            sellers=orjson.dumps(e.sellers).decode(),
            opens_at=naive_utc(e.opens_at),
            closes_at=naive_utc(e.closes_at),
            ask=_text(e.ask),
            reserve=_text(e.reserve),
            increment=_text(e.increment),
            status="open",
            position=r.position,
        )
        for seller in e.sellers:
            rows.add(listing_sellers_table, member=seller, listing_id=e.listing_id)

    def _set(self, rows: Rows, r: Recorded, **values: object) -> None:
        rows.update(listings_table, {"aggregate_id": r.aggregate}, position=r.position, **values)

    @handles(Listing.CloseExtended)
    def extended(self, rows: Rows, r: Recorded) -> None:
        self._set(rows, r, closes_at=naive_utc(r.event.closes_at))

    @handles(Listing.Sold)
    def sold(self, rows: Rows, r: Recorded) -> None:
        e = r.event
        self._set(rows, r, status="sold", trade=e.trade_id, winner=e.buyer, price=str(e.price))

    @handles(Listing.EndedUnsold)
    def unsold(self, rows: Rows, r: Recorded) -> None:
        self._set(rows, r, status="unsold", unsold_reason=r.event.reason)

    @handles(Listing.Withdrawn)
    def withdrawn(self, rows: Rows, r: Recorded) -> None:
        self._set(rows, r, status="withdrawn")

    @handles(Listing.SaleFellThrough)
    def fell_through(self, rows: Rows, r: Recorded) -> None:
        self._set(rows, r, status="closed")

    @handles(Trade.Struck)
    def struck(self, rows: Rows, r: Recorded) -> None:
        e = r.event
        rows.update(
            listings_table,
            {"listing_id": e.listing_id},
            trade_aggregate=r.aggregate,
            trade_state="pending",
            deadline=naive_utc(e.deadline),
        )

    @handles(Trade.Settled)
    def settled(self, rows: Rows, r: Recorded) -> None:
        rows.update(listings_table, {"trade_aggregate": r.aggregate}, trade_state="settled")

    @handles(Trade.Voided)
    def voided(self, rows: Rows, r: Recorded) -> None:
        rows.update(listings_table, {"trade_aggregate": r.aggregate}, trade_state="void")


class BookProjection(Projection):
    """Order books: bids with their state; price-time order is an index scan."""

    name = "book"
    tables = PROJECTION_TABLES["book"]
    kept = (bids_table,)  # their rows change after they are added

    @handles(Listing.Opened)
    def opened(self, rows: Rows, r: Recorded) -> None:
        listing = r.aggregate
        rows.add(currencies_table, listing_aggregate=listing, currency=r.event.currency)
        self.cache[("currency", listing)] = r.event.currency

    @handles(Listing.BidPlaced)
    def placed(self, rows: Rows, r: Recorded) -> None:
        e = r.event
        listing = r.aggregate
        currency = self.cache.get(("currency", listing))
        if currency is None:
            ((currency,),) = rows.select(currencies_table, ("currency",), listing_aggregate=listing)
        # The bids this one superseded are named by the event (version 2). A log written
        # before says nothing: the domain's rule picks them from the listing's bids.
        superseded = e.supersedes
        if superseded is None:
            bids = rows.select(bids_table, ("bid_id", "bidder", "state"), listing_aggregate=listing)
            superseded = superseded_bids((BidRow(*b) for b in bids), e.bidder)
        for bid_id in superseded:
            rows.update(bids_table, {"bid_id": bid_id}, state="superseded")
        rows.add(
            bids_table,
            bid_id=e.bid_id,
            listing_aggregate=listing,
            bidder=e.bidder,
            amount=str(e.amount),
            amount_minor=minor(e.amount, currency),
            placed=r.at,
            state="live",
            position=r.position,
        )

    @handles(Listing.BidWithdrawn)
    def withdrawn(self, rows: Rows, r: Recorded) -> None:
        rows.update(bids_table, {"bid_id": r.event.bid_id}, state="withdrawn")

    @handles(Listing.Sold)
    def sold(self, rows: Rows, r: Recorded) -> None:
        listing = r.aggregate
        live = {"listing_aggregate": listing, "state": "live"}
        rows.update(bids_table, {**live, "bid_id": r.event.bid_id}, state="won")
        rows.update(bids_table, live, state="lost")

    @handles(Listing.SaleFellThrough)
    def fell_through(self, rows: Rows, r: Recorded) -> None:
        """The trade was voided: its winning bid no longer won anything."""
        where = {"listing_aggregate": r.aggregate, "state": "won"}
        rows.update(bids_table, where, state="voided")

    @handles(Listing.EndedUnsold, Listing.Withdrawn)
    def ended(self, rows: Rows, r: Recorded) -> None:
        rows.update(bids_table, {"listing_aggregate": r.aggregate, "state": "live"}, state="lost")


# --------------------------------------------------------------------------- encumbrances


class EncumbrancesProjection(Projection):
    """Licences and pledges per asset with grant/registration and end, on both time axes."""

    name = "encumbrances"
    tables = PROJECTION_TABLES["encumbrances"]
    kept = (licences_table, pledges_table)  # their rows change after they are added

    @handles(Licence.Granted)
    def granted(self, rows: Rows, r: Recorded) -> None:
        e = r.event
        s = e.scope
        rows.add(
            licences_table,
            licence_id=e.licence_id,
            aggregate_id=r.aggregate,
            asset=e.ref,
            licensee=e.licensee,
            type=s.type.value,
            territories=orjson.dumps(list(s.territories)).decode(),
            fields=orjson.dumps(list(s.fields)).decode(),
            start=s.start,
            end=s.end,
            sublicensable="true" if s.sublicensable else "false",
            parent=e.parent,
            royalty_rate=_text(e.royalty_rate),
            lump_sum=_text(e.lump_sum),
            currency=e.currency,
            granted=r.at,
            position=r.position,
            status="granted",
        )

    @handles(Licence.Ended)
    def licence_ended(self, rows: Rows, r: Recorded) -> None:
        e = r.event
        rows.update(
            licences_table,
            {"aggregate_id": r.aggregate},
            status=e.how,
            ended_on=e.effective,
            ended_recorded=r.at,
            reason=e.reason or None,
        )

    @handles(Pledge.Registered)
    def registered(self, rows: Rows, r: Recorded) -> None:
        e = r.event
        rows.add(
            pledges_table,
            pledge_id=e.pledge_id,
            aggregate_id=r.aggregate,
            asset=e.ref,
            pledgee=e.pledgee,
            pledgors=orjson.dumps(e.pledgors).decode(),
            amount=_text(e.amount),
            currency=e.currency,
            start=e.start,
            end=e.end,
            registered=r.at,
            position=r.position,
            status="registered",
        )

    @handles(Pledge.Ended)
    def pledge_ended(self, rows: Rows, r: Recorded) -> None:
        e = r.event
        rows.update(
            pledges_table,
            {"aggregate_id": r.aggregate},
            status=e.how,
            ended_on=e.effective,
            ended_recorded=r.at,
            ended_position=r.position,
        )


# --------------------------------------------------------------------------- members and trades


class MembersProjection(Projection):
    """Every member with its kind, country and status: `members` and `member show`."""

    name = "members"
    tables = PROJECTION_TABLES["members"]
    kept = (members_table,)  # their rows change after they are added

    @handles(Member.Admitted)
    def admitted(self, rows: Rows, r: Recorded) -> None:
        e = r.event
        rows.add(
            members_table,
            member_id=e.member_id,
            aggregate_id=r.aggregate,
            name=e.name,
            kind=e.kind,
            country=e.country,
            status="active",
            admitted=r.at,
            position=r.position,
        )

    @handles(Member.Suspended)
    def suspended(self, rows: Rows, r: Recorded) -> None:
        where = {"aggregate_id": r.aggregate}
        rows.update(members_table, where, status="suspended", reason=r.event.reason or None)

    @handles(Member.Reinstated)
    def reinstated(self, rows: Rows, r: Recorded) -> None:
        where = {"aggregate_id": r.aggregate}
        rows.update(members_table, where, status="active", reason=None)


class TradesProjection(Projection):
    """Every trade with its parties, price, deadline and resolution: `trades`, `trade show`."""

    name = "trades"
    tables = PROJECTION_TABLES["trades"]
    kept = (trades_table,)  # their rows change after they are added

    @handles(Trade.Struck)
    def struck(self, rows: Rows, r: Recorded) -> None:
        e = r.event
        rows.add(
            trades_table,
            trade_id=e.trade_id,
            aggregate_id=r.aggregate,
            listing_id=e.listing_id,
            asset=e.ref,
            type=e.type,
            sellers=orjson.dumps(sorted(e.sellers)).decode(),
            buyer=e.buyer,
            bid_id=e.bid_id,
            price=str(e.price),
            currency=e.currency,
            struck=r.at,
            deadline=naive_utc(e.deadline),
            state="pending",
            position=r.position,
        )

    @handles(Trade.Settled)
    def settled(self, rows: Rows, r: Recorded) -> None:
        e = r.event
        where = {"aggregate_id": r.aggregate}
        rows.update(
            trades_table, where, state="settled", payment_ref=e.payment_ref, effective=e.effective, resolved=r.at
        )

    @handles(Trade.Voided)
    def voided(self, rows: Rows, r: Recorded) -> None:
        where = {"aggregate_id": r.aggregate}
        rows.update(trades_table, where, state="void", reason=r.event.reason or None, resolved=r.at)


# --------------------------------------------------------------------------- audit trail


class TrailProjection(Projection):
    """Which events touch which asset and which member: the index behind `trail`.

    An aggregate's first event says what it is about (an asset, its parties): one row
    per key and aggregate says that every event of the aggregate touches the key. A
    later event names parties of its own (a bidder, a buyer, new owners): one row per
    such key and event, for the keys its aggregate does not already have.
    """

    name = "trail"
    tables = PROJECTION_TABLES["trail"]
    retired = ("rm_trail_aggregates",)  # each aggregate's keys as JSON, before rm_trail_keys

    def handler(self, topic: str) -> Callable[[Rows, Recorded], None]:
        return self.apply  # every event

    def apply(self, rows: Rows, recorded: Recorded) -> None:
        e = recorded.event
        fields = vars(e)  # a pydantic model's field values (getattr of an absent one raises inside, slowly)
        spec = _trail_fields(type(e))
        if e.originator_version == 1:
            keys = self._created_keys(rows, fields, spec)
            if spec.remembered:
                # A rebuild keeps one entry per such aggregate: by its id's text (the
                # string the fold already made), each set of keys shared (and one per
                # listing for its bid indexes, see _created_keys).
                self.cache[recorded.aggregate] = self.cache.setdefault(("keys", keys), keys)
            for key in keys:
                rows.add(trail_keys_table, key=key, aggregate_id=e.originator_id)
        elif spec.named or spec.named_maps:
            keys = self._keys_of(rows, e.originator_id, recorded.aggregate)
        else:
            return
        if not (spec.named or spec.named_maps):
            return  # the event names no party of its own (most do not)
        named = {f"member:{v}" for attr in spec.named if isinstance(v := fields[attr], str)}
        for attr in spec.named_maps:
            named.update(f"member:{m}" for m in fields[attr] or {})
        for key in sorted(named.difference(keys)):
            rows.add(trail_table, key=key, position=recorded.position)

    def _keys_of(self, rows: Rows, aggregate_id: UUID, text: str) -> tuple[str, ...]:
        """An aggregate's keys, as its first event set them (they never change)."""
        cached: tuple[str, ...] | None = self.cache.get(text)
        if cached is None:
            found = rows.select(trail_keys_table, ("key",), aggregate_id=aggregate_id)
            cached = self.cache[text] = tuple(sorted(k for (k,) in found))
        return cached

    def _created_keys(self, rows: Rows, fields: dict[str, Any], spec: TrailFields) -> tuple[str, ...]:
        """The keys an aggregate's first event gives it (interned: a rebuild keeps them all;
        a bid index's are its listing's, shared)."""
        keys: set[str] = set()
        if spec.ref and isinstance(ref := fields["ref"], str):
            keys.add(f"asset:{ref}")
        keys.update(f"member:{v}" for attr in spec.parties if isinstance(v := fields[attr], str))
        for attr in spec.party_lists:
            keys.update(f"member:{m}" for m in fields[attr] or ())
        if spec.listing_id and not keys and isinstance(listing_id := fields["listing_id"], str):
            # a bid index: about its listing's asset (remembered by listing id: a listing
            # has many bids, and its aggregate id is a uuid5 of it). Only once found: an
            # index before its listing (a re-chained export) must not keep it from later ones.
            about: tuple[str, ...] | None = self.cache.get(("asset of", listing_id))
            if about is None:
                listing = Listing.create_id(listing_id)
                about = tuple(k for k in self._keys_of(rows, listing, str(listing)) if k.startswith("asset:"))
                if about:
                    self.cache[("asset of", listing_id)] = about
            return about
        return tuple(sorted(sys.intern(k) for k in keys))


class TrailFields(NamedTuple):
    """Which of the fields the trail reads an event class has (read once per class)."""

    ref: bool
    parties: tuple[str, ...]  # first event: one member each
    party_lists: tuple[str, ...]  # first event: members
    listing_id: bool
    named: tuple[str, ...]  # any event: one member each
    named_maps: tuple[str, ...]  # any event: members, as the keys of a mapping
    # A first event: whether its aggregate's keys are needed later, by a later event that
    # names parties of its own or by a bid index (about its listing). Most aggregates
    # (bid indexes: a quarter of a log) have neither, and a rebuild need not keep theirs.
    remembered: bool = False


_TRAIL_FIELDS: dict[type[Any], TrailFields] = {}


def _trail_fields(cls: type[Any]) -> TrailFields:
    spec = _TRAIL_FIELDS.get(cls)
    if spec is None:
        spec = _read_trail_fields(set(cls.model_fields))
        if issubclass(cls, Aggregate.Created):
            spec = spec._replace(remembered=_keys_needed_later(cls))
        _TRAIL_FIELDS[cls] = spec
    return spec


def _keys_needed_later(created: type[Any]) -> bool:
    """Whether the trail reads again the keys an aggregate's first event gave it."""
    aggregate = functools.reduce(getattr, created.__qualname__.split(".")[:-1], sys.modules[created.__module__])
    if aggregate is Listing:
        return True  # a bid index is about its listing's asset
    later = (v for name in dir(aggregate) if isinstance(v := getattr(aggregate, name), type))
    return any(
        (spec := _read_trail_fields(set(v.model_fields))).named or spec.named_maps
        for v in later
        if issubclass(v, Aggregate.Event) and not issubclass(v, Aggregate.Created)
    )


def _read_trail_fields(fields: set[str]) -> TrailFields:
    def having(*names: str) -> tuple[str, ...]:
        return tuple(n for n in names if n in fields)

    return TrailFields(
        "ref" in fields,
        having("member_id", "licensee", "pledgee", "buyer"),
        having("owners", "sellers", "licensors", "pledgors"),
        "listing_id" in fields,
        having("bidder", "buyer", "member"),
        having("from_owners", "to_owners"),
    )


def _text(value: object) -> str | None:
    return None if value is None else str(value)


PROJECTIONS: tuple[type[Projection], ...] = (
    OwnershipProjection,
    ListingsProjection,
    BookProjection,
    EncumbrancesProjection,
    TrailProjection,
    MembersProjection,
    TradesProjection,
)
