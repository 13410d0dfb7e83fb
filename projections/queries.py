"""Questions the ledger answers, read from the projections (JSON shapes of cli.md)."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any
from uuid import UUID

import orjson
from sqlalchemy import Integer, String, and_, bindparam, literal, or_, select, tuple_, type_coerce, union_all
from sqlalchemy.engine import Connection

from ipledger.domain.errors import NotFound
from ipledger.domain.rulepacks import PastPledge
from ipledger.domain.status import listing_status
from ipledger.domain.terms import licence_end, pledge_ranks
from ipledger.domain.values import Actor, Mechanism, format_time, owner_list
from ipledger.domain.visibility import bid_visible, reserve_shown, sees_sealed_bids_of, sees_tokens
from ipledger.projections.tables import (
    AggregateId,
    assets_table,
    bids_table,
    conveyance_members_table,
    conveyances_table,
    licences_table,
    listing_sellers_table,
    listings_table,
    naive_utc,
    pledges_table,
    trail_keys_table,
    trail_table,
)


def _time(value: datetime) -> str:
    return format_time(value.replace(tzinfo=None)) if value.tzinfo else value.isoformat() + "Z"


# The statements of the measured queries (owner, title, encumbrances, book; trail below)
# are built once, their keys bound parameters (`ref`, …): building a statement and its
# cache key on every call cost more than SQLite's answer (~0.06 ms each, four or five per
# query). The lists and the bid history still build theirs per call.


@functools.cache
def _asset_exists() -> Any:
    return select(assets_table.c.ref).where(assets_table.c.ref == bindparam("ref"))


def require_asset(conn: Connection, ref: str, field: str = "ref") -> None:
    if conn.execute(_asset_exists(), {"ref": ref}).first() is None:
        raise NotFound(f"{field}: no asset {ref}")


@functools.cache
def _owners_statement(as_of: bool, known_at: bool) -> Any:
    """The conveyance in force last (on `as_of`, as known at `known_at`, when given)."""
    c = conveyances_table.c
    q = select(c.to_owners).where(c.asset == bindparam("ref"))
    if as_of:
        q = q.where(c.effective <= bindparam("as_of"))
    if known_at:
        q = q.where(c.recorded <= bindparam("known_at"))
    return q.order_by(c.effective.desc(), c.seq.desc()).limit(1)


def owners_of(conn: Connection, ref: str, as_of: date | None, known_at: datetime | None) -> dict[str, str]:
    params: dict[str, Any] = {"ref": ref}
    if as_of is not None:
        params["as_of"] = as_of
    if known_at is not None:
        params["known_at"] = naive_utc(known_at)
    row = conn.execute(_owners_statement(as_of is not None, known_at is not None), params).first()
    return {} if row is None else dict(orjson.loads(row[0]))


def owner(conn: Connection, ref: str, as_of: date | None = None, known_at: datetime | None = None) -> dict[str, Any]:
    require_asset(conn, ref)
    return {
        "asset": ref,
        "as_of": as_of.isoformat() if as_of else None,
        "known_at": format_time(known_at) if known_at else None,
        "owners": owner_list(owners_of(conn, ref, as_of, known_at)),
    }


@functools.cache
def _title_statement() -> Any:
    c = conveyances_table.c
    return (
        select(c.position, c.kind, c.effective, c.recorded, c.from_owners, c.to_owners, c.trade)
        .where(c.asset == bindparam("ref"))
        .order_by(c.effective, c.seq)
    )


def title(conn: Connection, ref: str) -> dict[str, Any]:
    require_asset(conn, ref)
    rows = conn.execute(_title_statement(), {"ref": ref}).all()
    return {
        "asset": ref,
        "encumbrance_events": _encumbrance_events(conn, ref),
        "conveyances": [
            {
                "position": r.position,
                "kind": r.kind,
                "effective": r.effective.isoformat(),
                "recorded": _time(r.recorded),
                "from": sorted(orjson.loads(r.from_owners)),
                "to": sorted(orjson.loads(r.to_owners)),
                "shares": owner_list(orjson.loads(r.to_owners)),
                "trade": r.trade,
            }
            for r in rows
        ],
    }


def holdings(
    conn: Connection, member: str, as_of: date | None = None, known_at: datetime | None = None
) -> dict[str, Any]:
    refs = conn.execute(
        select(conveyance_members_table.c.asset)
        .where(conveyance_members_table.c.member == member)
        .distinct()
        .order_by(conveyance_members_table.c.asset)
    ).scalars()
    assets = []
    for ref in refs:
        share = owners_of(conn, ref, as_of, known_at).get(member)
        if share is not None:
            assets.append({"asset": ref, "share": share})
    return {
        "member": member,
        "as_of": as_of.isoformat() if as_of else None,
        "known_at": format_time(known_at) if known_at else None,
        "assets": assets,
    }


@functools.cache
def _listing_statement() -> Any:
    return select(listings_table).where(listings_table.c.listing_id == bindparam("listing"))


def _listing_row(conn: Connection, listing_id: str) -> Any:
    row = conn.execute(_listing_statement(), {"listing": listing_id}).first()
    if row is None:
        raise NotFound(f"listing: no listing {listing_id}")
    return row


def _listing_json(row: Any, now: datetime, viewer: Actor) -> dict[str, Any]:
    """A listing as `listings` and `book` show it to `viewer` (the reserve only to whom may see it)."""
    sellers = orjson.loads(row.sellers)
    return {
        "listing": row.listing_id,
        "asset": row.asset,
        "type": row.type,
        "mechanism": row.mechanism,
        "currency": row.currency,
        "status": listing_status(row.status, row.trade_state, row.deadline, naive_utc(now)),
        "unsold_reason": row.unsold_reason,
        "sellers": sellers,
        "opens": _time(row.opens_at),
        "closes": _time(row.closes_at),
        "ask": row.ask,
        "reserve": reserve_shown(row.reserve, viewer=viewer, sellers=sellers),
        "increment": row.increment,
        "trade": row.trade,
        "winner": row.winner,
        "price": row.price,
        "deadline": _time(row.deadline) if row.deadline is not None else None,
    }


def book(conn: Connection, listing_id: str, viewer: Actor, now: datetime) -> dict[str, Any]:
    """Live bids, price desc then time asc; after the close, the final book with the outcome.

    A sealed listing's bids are visible only to the operator and auditors until it
    closes; a member sees its own bids there and nobody else's.
    """
    row = _listing_row(conn, listing_id)
    is_open = row.status == "open"
    hidden = not bid_visible(mechanism=row.mechanism, listing_open=is_open, bidder="", viewer=viewer)
    listing = _listing_json(row, now, viewer)
    lapsed = listing["status"] == "lapsed"
    bids = [
        {
            "id": r.bid_id,
            "bidder": r.bidder,
            "amount": r.amount,
            "placed": _time(r.placed),
            "state": "lapsed" if lapsed and r.state == "won" else r.state,
        }
        for r in conn.execute(_book_statement(is_open), {"listing": row.aggregate_id})
        if bid_visible(mechanism=row.mechanism, listing_open=is_open, bidder=r.bidder, viewer=viewer)
    ]
    return {**listing, "sealed_hidden": hidden, "bids": bids}


@functools.cache
def _book_statement(is_open: bool) -> Any:
    """A listing's bids, best first: the live ones while it is open, the final book after."""
    b = bids_table.c
    return (
        select(b.bid_id, b.bidder, b.amount, b.placed, b.state)
        .where(b.listing_aggregate == bindparam("listing"))
        .where(b.state.in_(("live",) if is_open else ("live", "won", "lost", "voided")))
        .order_by(b.amount_minor.desc(), b.position)
    )


def bid_history(conn: Connection, listing_id: str, viewer: Actor) -> dict[str, Any]:
    """Every bid ever placed on a listing, in the order placed, whatever became of it
    (superseded, withdrawn, won, lost): what a bids-over-time chart draws. The book shows
    only the bids that stand; each bid here passes the same visibility rule."""
    row = _listing_row(conn, listing_id)
    b = bids_table.c
    is_open = row.status == "open"
    q = (
        select(b.bid_id, b.bidder, b.amount, b.placed, b.state)
        .where(b.listing_aggregate == row.aggregate_id)
        .order_by(b.position)
    )
    bids = [
        {"id": r.bid_id, "bidder": r.bidder, "amount": r.amount, "placed": _time(r.placed), "state": r.state}
        for r in conn.execute(q)
        if bid_visible(mechanism=row.mechanism, listing_open=is_open, bidder=r.bidder, viewer=viewer)
    ]
    return {"listing": listing_id, "bids": bids}


def listings(
    conn: Connection,
    now: datetime,
    viewer: Actor,
    status: str | None = None,
    asset: str | None = None,
    member: str | None = None,
    limit: int | None = None,
    after: tuple[datetime, str] | None = None,
) -> dict[str, Any]:
    """Listings in opening order, as `viewer` may see them; `status` as people read it (a
    sale whose trade lapsed is `lapsed`); `after`: those after that (opens, id).

    `member`: the listings it sells or bids on, counting only the bids `viewer` may see
    (a sealed listing's bids stay hidden while it is open: its listing would say who bid)."""
    lt = listings_table.c
    q = select(listings_table).order_by(lt.opens_at, lt.listing_id)
    if after is not None:
        q = q.where(after_key((lt.opens_at, lt.listing_id), after))
    if status:
        # `lapsed` and `sold` are both stored as sold; the clock tells them apart.
        q = q.where(lt.status == ("sold" if status == "lapsed" else status))
    if asset:
        q = q.where(lt.asset == asset)
    if member:
        # Both by index (rm_listing_sellers, rm_bids_bidder): at a million events, reading
        # every listing's sellers to find one member's took up to 100 ms.
        b, ls = bids_table.c, listing_sellers_table.c
        sells = lt.listing_id.in_(select(ls.listing_id).where(ls.member == member))
        bid_on: Any = lt.aggregate_id.in_(select(b.listing_aggregate).where(b.bidder == member))
        if not sees_sealed_bids_of(viewer, member):
            bid_on = and_(bid_on, or_(lt.mechanism != Mechanism.sealed.value, lt.status != "open"))
        q = q.where(or_(sells, bid_on))
    out: list[dict[str, Any]] = []
    for r in conn.execute(q):
        row = _listing_json(r, now, viewer)
        if status is None or row["status"] == status:
            out.append(row)
            if limit is not None and len(out) >= limit:
                break
    return {"listings": out}


def after_key(columns: tuple[Any, ...], key: tuple[Any, ...]) -> Any:
    """Rows after `key` in the order of `columns`, as one row-value comparison: SQLite and
    PostgreSQL then start at the key in the index ordered so (the same condition written
    `a > x OR (a = x AND b > y)` was read from the first row: a late page cost 33 ms)."""
    return tuple_(*columns) > tuple_(*(literal(v, c.type) for c, v in zip(columns, key, strict=True)))


def _known(recorded: datetime | None, known_at: datetime | None) -> bool:
    return recorded is not None and (known_at is None or recorded <= naive_utc(known_at))


def encumbrances(conn: Connection, ref: str, as_of: date, known_at: datetime | None = None) -> dict[str, Any]:
    """Licences (with scope) and pledges (with rank) in force on `as_of`, as known at `known_at`.

    A right starting on D is in force on D; one ending on D (term end, termination,
    surrender, release, enforcement) is not. A sublicence ends when its parent does.
    """
    require_asset(conn, ref)
    return {
        "asset": ref,
        "as_of": as_of.isoformat(),
        "known_at": format_time(known_at) if known_at else None,
        "licences": licences_in_force(conn, ref, as_of, known_at),
        "pledges": pledges_in_force(conn, ref, as_of, known_at),
    }


def licences_in_force(
    conn: Connection, ref: str, as_of: date, known_at: datetime | None = None
) -> list[dict[str, Any]]:
    """The `licences` of `encumbrances`: one asset's licences in force on `as_of`."""
    rows = {
        r.licence_id: r
        for r in conn.execute(_rights_statement(licences_table), {"ref": ref})
        if _known(r.granted, known_at)
    }

    def end_of(licence_id: str) -> date:
        r = rows[licence_id]
        ended_on = r.ended_on if r.ended_on is not None and _known(r.ended_recorded, known_at) else None
        return licence_end(r.end, ended_on, end_of(r.parent) if r.parent in rows else None)

    owners = sorted(owners_of(conn, ref, as_of, known_at))
    return [
        {
            "id": r.licence_id,
            "licensee": r.licensee,
            "licensors": [rows[r.parent].licensee] if r.parent in rows else owners,
            "type": r.type,
            "territories": orjson.loads(r.territories),
            "fields": orjson.loads(r.fields),
            "start": r.start.isoformat(),
            "end": r.end.isoformat(),
            "sublicensable": r.sublicensable == "true",
            "parent": r.parent,
            "royalty_rate": r.royalty_rate,
            "lump_sum": r.lump_sum,
            "currency": r.currency,
        }
        for r in rows.values()
        if r.start <= as_of < end_of(r.licence_id)
    ]


def pledges_in_force(conn: Connection, ref: str, as_of: date, known_at: datetime | None = None) -> list[dict[str, Any]]:
    """The `pledges` of `encumbrances`: one asset's pledges in force on `as_of`, with rank."""
    in_force = []
    for r in conn.execute(_rights_statement(pledges_table), {"ref": ref}):
        # The term end is the loan's, not the pledge's: a pledge binds until it is
        # released or enforced (docs/rules.md), as the consent rule applies it.
        if not _known(r.registered, known_at) or r.start > as_of:
            continue
        if r.ended_on is not None and _known(r.ended_recorded, known_at) and as_of >= r.ended_on:
            continue
        in_force.append(r)
    ranks = pledge_ranks([r.pledge_id for r in in_force])
    return [
        {
            "id": r.pledge_id,
            "pledgee": r.pledgee,
            "amount": r.amount,
            "currency": r.currency,
            "rank": ranks[r.pledge_id],
            "start": r.start.isoformat(),
            "end": r.end.isoformat() if r.end else None,
        }
        for r in in_force
    ]


@functools.cache
def _rights_statement(table: Any) -> Any:
    """An asset's licences or pledges, in the order they were recorded."""
    return select(table).where(table.c.asset == bindparam("ref")).order_by(table.c.position)


def _encumbrance_events(conn: Connection, ref: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for r in conn.execute(_rights_statement(licences_table), {"ref": ref}):
        events.append(
            {
                "position": r.position,
                "kind": "licence_granted",
                "id": r.licence_id,
                "party": r.licensee,
                "effective": r.start.isoformat(),
                "recorded": _time(r.granted),
            }
        )
        if r.ended_on is not None:
            events.append(
                {
                    "position": None,
                    "kind": f"licence_{r.status}",
                    "id": r.licence_id,
                    "party": r.licensee,
                    "effective": r.ended_on.isoformat(),
                    "recorded": _time(r.ended_recorded),
                }
            )
    for r in conn.execute(_rights_statement(pledges_table), {"ref": ref}):
        events.append(
            {
                "position": r.position,
                "kind": "pledge_registered",
                "id": r.pledge_id,
                "party": r.pledgee,
                "effective": r.start.isoformat(),
                "recorded": _time(r.registered),
            }
        )
        if r.ended_on is not None:
            events.append(
                {
                    "position": None,
                    "kind": f"pledge_{r.status}",
                    "id": r.pledge_id,
                    "party": r.pledgee,
                    "effective": r.ended_on.isoformat(),
                    "recorded": _time(r.ended_recorded),
                }
            )
    return sorted(events, key=lambda e: (e["effective"], e["recorded"]))


class EventPrivacy:
    """What of an event a viewer may see (domain.visibility's rules): a hidden sealed bid's
    events are left out entirely, since even their presence under a member's trail would
    say that the member bid; so are tokens' events, for a member. A listing's opening is
    public but its reserve is its sellers': their `Listing.Opened` keeps the field, with
    the amount replaced (`reserve_shown`)."""

    def __init__(self, conn: Connection, viewer: Actor) -> None:
        self.conn = conn
        self.viewer = viewer
        self._listings: dict[str, Any] = {}

    def shown(self, doc: dict[str, Any]) -> dict[str, Any] | None:
        """The event (as `_event_doc` makes it) as the viewer may see it, or None when it
        may not see it at all: no token's events for a member, no hidden sealed bid."""
        if doc["type"].partition(".")[0] == "Token" and not sees_tokens(self.viewer):
            return None
        if not self.shows(doc["data"]):
            return None
        return self.redacted(doc)

    def redacted(self, doc: dict[str, Any]) -> dict[str, Any]:
        """The event with the amounts the viewer may not see replaced (a new doc; the
        stored event is never touched)."""
        data = doc["data"]
        if doc["type"] == "Listing.Opened" and data.get("reserve") is not None:
            reserve = reserve_shown(data["reserve"], viewer=self.viewer, sellers=data.get("sellers") or ())
            if reserve != data["reserve"]:
                return {**doc, "data": {**data, "reserve": reserve}}
        return doc

    def shows(self, state: dict[str, Any]) -> bool:
        bid_id = state.get("bid_id")
        if not isinstance(bid_id, str) or self.viewer.sees_everything():
            return True
        bid = self.conn.execute(
            select(bids_table.c.listing_aggregate, bids_table.c.bidder).where(bids_table.c.bid_id == bid_id)
        ).first()
        if bid is None:
            return True
        listing = self._listings.get(bid.listing_aggregate)
        if listing is None:
            listing = self._listings[bid.listing_aggregate] = self.conn.execute(
                select(listings_table.c.mechanism, listings_table.c.status).where(
                    listings_table.c.aggregate_id == bid.listing_aggregate
                )
            ).one()
        return bid_visible(
            mechanism=listing.mechanism, listing_open=listing.status == "open", bidder=bid.bidder, viewer=self.viewer
        )


def _event_doc(r: Any) -> dict[str, Any]:
    """One stored event as the trail and the event stream show it: position, type,
    aggregate, version, when, who, which command, and the payload's facts."""
    # Here, not at the top: the codec loads the eventsourcing machinery, which the other
    # queries' fast path never needs.
    from ipledger.ledger.codec import Envelope, payload_fields

    position, originator_id, version, topic, state = r  # a long trail is thousands: by index
    envelope, payload = Envelope.from_state(orjson.loads(bytes(state)))
    recorded, data = payload_fields(payload)
    return {
        "position": position,
        "type": topic.partition(":")[2],
        "aggregate": _uuid_text(originator_id),
        "version": version,
        "recorded": recorded,
        "actor": envelope.actor,
        "command_id": envelope.command_id,
        "data": data,
    }


def _uuid_text(stored: Any) -> str:
    """An aggregate id as stored (16 bytes on SQLite, a uuid from PostgreSQL) in its text
    form, without building a UUID for each of a trail's events."""
    if isinstance(stored, bytes) and len(stored) == 16:
        h = stored.hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    return str(stored if isinstance(stored, UUID) else UUID(str(stored)))


def _visible_events(
    conn: Connection, q: Any, viewer: Actor | None, limit: int | None = None, params: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The events `q` selects, as `trail` shows them to `viewer` (`EventPrivacy`: what it may
    not see left out, or replaced; read until `limit` are shown)."""
    out: list[dict[str, Any]] = []
    if limit is not None and limit <= 0:
        return out
    for _, doc in _shown_events(conn, q, viewer, params):
        if doc is not None:
            out.append(doc)
            if limit is not None and len(out) >= limit:
                break
    return out


def _shown_events(
    conn: Connection, q: Any, viewer: Actor | None, params: dict[str, Any] | None = None
) -> Iterator[tuple[int, dict[str, Any] | None]]:
    """Each event `q` selects: its position, and the event as `viewer` may see it (None when
    it may not see it at all)."""
    privacy = EventPrivacy(conn, viewer or Actor.parse("operator"))
    for r in conn.execute(q, params):
        yield r[0], privacy.shown(_event_doc(r))


def _event_columns(events: Any) -> Any:
    return select(events.c.id, events.c.originator_id, events.c.originator_version, events.c.topic, events.c.state)


def trail(
    conn: Connection,
    events: Any,
    key: str,
    what: str,
    viewer: Actor | None = None,
    after: int = 0,
    limit: int | None = None,
) -> dict[str, Any]:
    """Every event touching an asset or a member, in log order, with actor and payload
    (a sealed listing's bids and a listing's reserve only for those who may see them).

    A page: the events after position `after`, at most `limit` of them; `next` is the
    `after` of the page that follows (None at the end), so a long trail is read in
    bounded answers."""
    params = {"key": key, "after": after}
    out = _visible_events(conn, _trail_statement(events), viewer, None if limit is None else limit + 1, params)
    if not out and after == 0:
        raise NotFound(f"{what}: nothing in the log touches {key.partition(':')[2]}")
    more = limit is not None and len(out) > limit
    if more:
        del out[limit:]
    return {"key": key, "events": out, "next": out[-1]["position"] if more else None}


@functools.cache
def _trail_statement(events: Any) -> Any:
    """Every event of the aggregates that are about a key, and the events naming it besides
    (the projection writes no pair twice, so no event comes twice). Built once: SQLAlchemy
    keys its compiled-statement cache by walking a statement, a fifth of a short trail."""
    k, t = trail_keys_table.c, trail_table.c
    key, after = bindparam("key", type_=String()), bindparam("after", type_=Integer())
    return union_all(
        _event_columns(events).where(
            events.c.originator_id.in_(select(k.aggregate_id).where(k.key == key)), events.c.id > after
        ),
        _event_columns(events).where(events.c.id.in_(select(t.position).where(t.key == key, t.position > after))),
    ).order_by("id")


def events_after(
    conn: Connection, events: Any, after: int, limit: int, viewer: Actor
) -> tuple[list[dict[str, Any]], int]:
    """The log after position `after`, at most `limit` stored events read, as the trail
    shows them to `viewer` (a hidden sealed bid's events left out, a reserve it may not see
    replaced). Also the last position read, so a follower moves past events it may not see."""
    q = _event_columns(events).where(events.c.id > after).order_by(events.c.id).limit(limit)
    last, out = after, []
    for position, doc in _shown_events(conn, q, viewer):
        last = position  # past events the viewer may not see too
        if doc is not None:
            out.append(doc)
    return out, last


def latest(conn: Connection, events: Any, viewer: Actor, limit: int) -> dict[str, Any]:
    """The market's latest events, newest first: those touching an asset (registrations,
    listings, bids, trades, licences, pledges), each as `trail --asset` shows it to `viewer`.

    Read back from the head a page at a time: of each page, the events whose aggregate
    has an asset key (rm_trail_keys, by aggregate id). So the dashboard's cost does not
    grow with the log: selecting every event of every asset's aggregates and sorting them
    took 3.3 s at a million events. (rm_trail need not be asked: it holds the members an
    event names besides its aggregate's keys, never an asset.)"""
    out: list[dict[str, Any]] = []
    before = None
    while len(out) < limit:
        params = {"before": before, "page": LATEST_PAGE}
        page = conn.execute(_latest_page(events, before is not None), params).all()
        if not page:
            break
        before = page[-1][0]
        about_assets = set(conn.execute(_about_assets(), {"aggregates": list({a for _, a in page})}).scalars())
        wanted = [position for position, aggregate in page if aggregate in about_assets]
        if wanted:
            q = _event_columns(events).where(events.c.id.in_(wanted)).order_by(events.c.id.desc())
            out.extend(_visible_events(conn, q, viewer, limit - len(out)))
        if len(page) < LATEST_PAGE:
            break
    return {"events": out}


#: Events `latest` reads back from the head at a time.
LATEST_PAGE = 200


@functools.cache
def _latest_page(events: Any, before: bool) -> Any:
    q = select(events.c.id, type_coerce(events.c.originator_id, AggregateId()))  # as rm_trail_keys reads them
    if before:
        q = q.where(events.c.id < bindparam("before", type_=Integer()))
    return q.order_by(events.c.id.desc()).limit(bindparam("page", type_=Integer()))


@functools.cache
def _about_assets() -> Any:
    k = trail_keys_table.c
    return select(k.aggregate_id).where(
        k.aggregate_id.in_(bindparam("aggregates", expanding=True)), k.key.like("asset:%")
    )


def in_trail(conn: Connection, key: str) -> bool:
    """Whether any event touches the key ("member:ID", "asset:REF")."""
    for table in (trail_keys_table, trail_table):
        if conn.execute(select(table.c.key).where(table.c.key == key).limit(1)).first() is not None:
            return True
    return False


def recorded_pledges(conn: Connection) -> list[PastPledge]:
    """Every pledge as recorded, with its asset's expiry: what `rules check` judges."""
    p, a = pledges_table.c, assets_table.c
    rows = conn.execute(
        select(p.pledge_id, p.asset, a.expires_on, p.start, p.end, p.position, p.ended_position, p.ended_on)
        .join_from(pledges_table, assets_table, a.ref == p.asset)
        .order_by(p.position)
    )
    return [
        PastPledge(r.pledge_id, r.asset, r.expires_on, r.start, r.end, r.position, r.ended_position, r.ended_on)
        for r in rows
    ]


def asset_refs(conn: Connection) -> list[str]:
    return list(conn.execute(select(assets_table.c.ref).order_by(assets_table.c.position)).scalars())
