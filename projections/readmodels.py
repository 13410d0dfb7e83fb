"""The read models: ownership and chain of title, listings, and order books."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.engine import Connection

from ipledger.domain.assets import Asset
from ipledger.domain.licences import Licence
from ipledger.domain.listings import Listing, superseded_bids
from ipledger.domain.members import Member
from ipledger.domain.pledges import Pledge
from ipledger.domain.trades import Trade
from ipledger.domain.values import minor
from ipledger.projections.base import Projection, Recorded, handles, naive_utc
from ipledger.projections.tables import (
    PROJECTION_TABLES,
    assets_table,
    bids_table,
    conveyance_members_table,
    conveyances_table,
    currencies_table,
    licences_table,
    listings_table,
    members_table,
    pledges_table,
    trades_table,
    trail_aggregates_table,
    trail_table,
)

# --------------------------------------------------------------------------- ownership


class OwnershipProjection(Projection):
    """Chain of title per asset, each conveyance with effective date and recorded time.

    Ownership on any date, as known at any time, is a lookup of the latest conveyance
    in force (effective ≤ D, recorded ≤ R), so bitemporal questions need no replay.
    """

    name = "ownership"
    tables = PROJECTION_TABLES["ownership"]

    @handles(Asset.Registered)
    def registered(self, conn: Connection, r: Recorded) -> None:
        e = r.event
        self.add(
            assets_table,
            ref=e.ref,
            aggregate_id=str(e.originator_id),
            title=e.title,
            expires_on=e.expires_on,
            registered_on=e.effective,
            position=r.position,
        )
        self.cache[str(e.originator_id)] = e.ref
        self._conveyance(conn, r, e.ref, "registration", {}, e.owners, None, e.effective)

    @handles(Asset.Conveyed)
    def conveyed(self, conn: Connection, r: Recorded) -> None:
        e = r.event
        aggregate_id = str(e.originator_id)
        ref = self.cache.get(aggregate_id)
        if ref is None:
            ref = conn.execute(
                select(assets_table.c.ref).where(assets_table.c.aggregate_id == aggregate_id)
            ).scalar_one()
            self.cache[aggregate_id] = ref
        self._conveyance(conn, r, ref, e.kind, e.from_owners, e.to_owners, e.trade, e.effective)

    def _conveyance(
        self,
        conn: Connection,
        r: Recorded,
        ref: str,
        kind: str,
        from_owners: dict[str, str],
        to_owners: dict[str, str],
        trade: str | None,
        effective: object,
    ) -> None:
        self.add(
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
            self.add(conveyance_members_table, member=member, asset=ref, position=r.position)


# --------------------------------------------------------------------------- market


class ListingsProjection(Projection):
    """Every listing with its status: the `listings` query and the book's header."""

    name = "listings"
    tables = PROJECTION_TABLES["listings"]

    @handles(Listing.Opened)
    def opened(self, conn: Connection, r: Recorded) -> None:
        e = r.event
        self.add(
            listings_table,
            listing_id=e.listing_id,
            aggregate_id=str(e.originator_id),
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

    def _set(self, conn: Connection, r: Recorded, **values: object) -> None:
        self.update(conn, listings_table, {"aggregate_id": str(r.event.originator_id)}, position=r.position, **values)

    @handles(Listing.CloseExtended)
    def extended(self, conn: Connection, r: Recorded) -> None:
        self._set(conn, r, closes_at=naive_utc(r.event.closes_at))

    @handles(Listing.Sold)
    def sold(self, conn: Connection, r: Recorded) -> None:
        e = r.event
        self._set(conn, r, status="sold", trade=e.trade_id, winner=e.buyer, price=str(e.price))

    @handles(Listing.EndedUnsold)
    def unsold(self, conn: Connection, r: Recorded) -> None:
        self._set(conn, r, status="unsold")

    @handles(Listing.Withdrawn)
    def withdrawn(self, conn: Connection, r: Recorded) -> None:
        self._set(conn, r, status="withdrawn")

    @handles(Listing.SaleFellThrough)
    def fell_through(self, conn: Connection, r: Recorded) -> None:
        self._set(conn, r, status="closed")

    @handles(Trade.Struck)
    def struck(self, conn: Connection, r: Recorded) -> None:
        e = r.event
        self.update(
            conn,
            listings_table,
            {"listing_id": e.listing_id},
            trade_aggregate=str(e.originator_id),
            trade_state="pending",
            deadline=naive_utc(e.deadline),
        )

    @handles(Trade.Settled)
    def settled(self, conn: Connection, r: Recorded) -> None:
        self.update(conn, listings_table, {"trade_aggregate": str(r.event.originator_id)}, trade_state="settled")

    @handles(Trade.Voided)
    def voided(self, conn: Connection, r: Recorded) -> None:
        self.update(conn, listings_table, {"trade_aggregate": str(r.event.originator_id)}, trade_state="void")


class BookProjection(Projection):
    """Order books: bids with their state; price-time order is an index scan."""

    name = "book"
    tables = PROJECTION_TABLES["book"]

    @handles(Listing.Opened)
    def opened(self, conn: Connection, r: Recorded) -> None:
        listing = str(r.event.originator_id)
        self.add(currencies_table, listing_aggregate=listing, currency=r.event.currency)
        self.cache[("currency", listing)] = r.event.currency

    @handles(Listing.BidPlaced)
    def placed(self, conn: Connection, r: Recorded) -> None:
        e = r.event
        listing = str(e.originator_id)
        currency = self.cache.get(("currency", listing))
        if currency is None:
            self.flush(conn)
            currency = conn.execute(
                select(currencies_table.c.currency).where(currencies_table.c.listing_aggregate == listing)
            ).scalar_one()
        # The bids this one superseded are named by the event (version 2). A log written
        # before says nothing: the domain's rule picks them from the listing's bids.
        superseded = e.supersedes
        if superseded is None:
            self.flush(conn)
            b = bids_table.c
            rows = conn.execute(select(b.bid_id, b.bidder, b.state).where(b.listing_aggregate == listing)).all()
            superseded = superseded_bids(rows, e.bidder)
        if superseded:
            self.flush(conn)
            for bid_id in superseded:
                self.update(conn, bids_table, {"bid_id": bid_id}, state="superseded")
        self.add(
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
    def withdrawn(self, conn: Connection, r: Recorded) -> None:
        self.flush(conn)
        self.update(conn, bids_table, {"bid_id": r.event.bid_id}, state="withdrawn")

    @handles(Listing.Sold)
    def sold(self, conn: Connection, r: Recorded) -> None:
        self.flush(conn)
        listing = str(r.event.originator_id)
        live = {"listing_aggregate": listing, "state": "live"}
        self.update(conn, bids_table, {**live, "bid_id": r.event.bid_id}, state="won")
        self.update(conn, bids_table, live, state="lost")

    @handles(Listing.SaleFellThrough)
    def fell_through(self, conn: Connection, r: Recorded) -> None:
        """The trade was voided: its winning bid no longer won anything."""
        where = {"listing_aggregate": str(r.event.originator_id), "state": "won"}
        self.update(conn, bids_table, where, state="voided")

    @handles(Listing.EndedUnsold, Listing.Withdrawn)
    def ended(self, conn: Connection, r: Recorded) -> None:
        self.flush(conn)
        self.update(conn, bids_table, {"listing_aggregate": str(r.event.originator_id), "state": "live"}, state="lost")


# --------------------------------------------------------------------------- encumbrances


class EncumbrancesProjection(Projection):
    """Licences and pledges per asset with grant/registration and end, on both time axes."""

    name = "encumbrances"
    tables = PROJECTION_TABLES["encumbrances"]

    @handles(Licence.Granted)
    def granted(self, conn: Connection, r: Recorded) -> None:
        e = r.event
        s = e.scope
        self.add(
            licences_table,
            licence_id=e.licence_id,
            aggregate_id=str(e.originator_id),
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
    def licence_ended(self, conn: Connection, r: Recorded) -> None:
        e = r.event
        self.update(
            conn,
            licences_table,
            {"aggregate_id": str(e.originator_id)},
            status=e.how,
            ended_on=e.effective,
            ended_recorded=r.at,
            reason=e.reason or None,
        )

    @handles(Pledge.Registered)
    def registered(self, conn: Connection, r: Recorded) -> None:
        e = r.event
        self.add(
            pledges_table,
            pledge_id=e.pledge_id,
            aggregate_id=str(e.originator_id),
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
    def pledge_ended(self, conn: Connection, r: Recorded) -> None:
        e = r.event
        self.update(
            conn,
            pledges_table,
            {"aggregate_id": str(e.originator_id)},
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

    @handles(Member.Admitted)
    def admitted(self, conn: Connection, r: Recorded) -> None:
        e = r.event
        self.add(
            members_table,
            member_id=e.member_id,
            aggregate_id=str(e.originator_id),
            name=e.name,
            kind=e.kind,
            country=e.country,
            status="active",
            admitted=r.at,
            position=r.position,
        )

    @handles(Member.Suspended)
    def suspended(self, conn: Connection, r: Recorded) -> None:
        where = {"aggregate_id": str(r.event.originator_id)}
        self.update(conn, members_table, where, status="suspended", reason=r.event.reason or None)

    @handles(Member.Reinstated)
    def reinstated(self, conn: Connection, r: Recorded) -> None:
        where = {"aggregate_id": str(r.event.originator_id)}
        self.update(conn, members_table, where, status="active", reason=None)


class TradesProjection(Projection):
    """Every trade with its parties, price, deadline and resolution: `trades`, `trade show`."""

    name = "trades"
    tables = PROJECTION_TABLES["trades"]

    @handles(Trade.Struck)
    def struck(self, conn: Connection, r: Recorded) -> None:
        e = r.event
        self.add(
            trades_table,
            trade_id=e.trade_id,
            aggregate_id=str(e.originator_id),
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
    def settled(self, conn: Connection, r: Recorded) -> None:
        e = r.event
        where = {"aggregate_id": str(e.originator_id)}
        self.update(
            conn, trades_table, where, state="settled", payment_ref=e.payment_ref, effective=e.effective, resolved=r.at
        )

    @handles(Trade.Voided)
    def voided(self, conn: Connection, r: Recorded) -> None:
        where = {"aggregate_id": str(r.event.originator_id)}
        self.update(conn, trades_table, where, state="void", reason=r.event.reason or None, resolved=r.at)


# --------------------------------------------------------------------------- audit trail


class TrailProjection(Projection):
    """Which events touch which asset and which member: the index behind `trail`.

    An aggregate's first event says what it is about (an asset, its parties); its later
    events inherit that, plus any party they name themselves (a bidder, a buyer).
    """

    name = "trail"
    tables = PROJECTION_TABLES["trail"]

    def apply(self, conn: Connection, topic: str, recorded: Recorded) -> None:
        e = recorded.event
        fields = vars(e)  # a pydantic model's field values (getattr of an absent one raises inside, slowly)
        aggregate_id = str(e.originator_id)
        created = self._created_keys(conn, e)
        keys = set() if created is not None else set(self._keys_of(conn, aggregate_id))  # a new aggregate has none
        if created is not None:
            keys |= created
            self.cache[aggregate_id] = sorted(keys)
            self.add(trail_aggregates_table, aggregate_id=aggregate_id, trail_keys=orjson.dumps(sorted(keys)).decode())
        for attr in ("bidder", "buyer", "member"):
            value = fields.get(attr)
            if isinstance(value, str):
                keys.add(f"member:{value}")
        for attr in ("from_owners", "to_owners"):
            keys |= {f"member:{m}" for m in fields.get(attr) or {}}
        for key in sorted(keys):
            self.add(trail_table, key=key, position=recorded.position)

    def _keys_of(self, conn: Connection, aggregate_id: str) -> list[str]:
        cached = self.cache.get(aggregate_id)
        if cached is not None:
            return list(cached)
        row = conn.execute(
            select(trail_aggregates_table.c.trail_keys).where(trail_aggregates_table.c.aggregate_id == aggregate_id)
        ).first()
        keys = [] if row is None else list(orjson.loads(row[0]))
        if row is not None:
            self.cache[aggregate_id] = keys
        return keys

    def _created_keys(self, conn: Connection, e: Any) -> set[str] | None:
        """Keys of an aggregate's first event, or None for later events."""
        if e.originator_version != 1:
            return None
        fields = vars(e)
        keys: set[str] = set()
        ref = fields.get("ref")
        if isinstance(ref, str):
            keys.add(f"asset:{ref}")
        for attr in ("member_id", "licensee", "pledgee", "buyer"):
            value = fields.get(attr)
            if isinstance(value, str):
                keys.add(f"member:{value}")
        for attr in ("owners", "sellers", "licensors", "pledgors"):
            keys |= {f"member:{m}" for m in fields.get(attr) or ()}
        listing_id = fields.get("listing_id")
        if isinstance(listing_id, str) and not keys:  # a bid index: about its listing's asset
            keys |= {k for k in self._keys_of(conn, str(Listing.create_id(listing_id))) if k.startswith("asset:")}
        return keys


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
