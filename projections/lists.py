"""Lists and shows for people (cli.md, "Lists for people"): every member, asset, trade,
pledge and licence, filtered, and everything about one of them.

Beside `queries` (whose shapes they reuse: `owners`, `encumbrances`, `listings`) and
under the same rules: light imports only (no domain aggregates, no eventsourcing), a
trade past its deadline reads `lapsed`, and a sealed listing's bids are shown only to
whom `domain.visibility` allows.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Callable, Iterable, Iterator

import orjson
from sqlalchemy import or_, select
from sqlalchemy.engine import Connection

from ipledger.domain.errors import NotFound
from ipledger.domain.status import trade_status
from ipledger.domain.values import Actor, owner_list
from ipledger.domain.visibility import bid_visible
from ipledger.projections.queries import (
    _time,
    after_key,
    holdings,
    licences_in_force,
    listings,
    owner,
    pledges_in_force,
    require_asset,
)
from ipledger.projections.tables import (
    assets_table,
    bids_table,
    conveyance_members_table,
    conveyances_table,
    licences_table,
    listings_table,
    members_table,
    naive_utc,
    pledges_table,
    trades_table,
)


def _first(rows: Iterable[dict[str, Any]], limit: int | None) -> list[dict[str, Any]]:
    """At most `limit` items, reading no further than needed (the query streams)."""
    out: list[dict[str, Any]] = []
    for row in rows:
        if limit is not None and len(out) >= limit:
            break
        out.append(row)
    return out


def _like(text: str) -> str:
    """`text` as a literal inside a LIKE pattern (escape character `\\`)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# --------------------------------------------------------------------------- members


def require_member(conn: Connection, member_id: str, field: str = "member") -> Any:
    row = conn.execute(select(members_table).where(members_table.c.member_id == member_id)).first()
    if row is None:
        raise NotFound(f"{field}: no member {member_id}")
    return row


def _member_json(r: Any) -> dict[str, Any]:
    return {"member": r.member_id, "name": r.name, "kind": r.kind, "country": r.country, "status": r.status}


def members(
    conn: Connection,
    kind: str | None = None,
    status: str | None = None,
    limit: int | None = None,
    after: str | None = None,
) -> dict[str, Any]:
    """Members by id (`after`: those after that id, a page's start)."""
    m = members_table.c
    q = select(members_table).order_by(m.member_id)
    if after is not None:
        q = q.where(m.member_id > after)
    if kind:
        q = q.where(m.kind == kind)
    if status:
        q = q.where(m.status == status)
    if limit is not None:
        q = q.limit(limit)
    return {"members": [_member_json(r) for r in conn.execute(q)]}


def member_show(conn: Connection, member_id: str, viewer: Actor, now: datetime) -> dict[str, Any]:
    """Everything about one member: what it holds, what is pledged or licensed to it, what
    it sells, its live bids (as `viewer` may see them) and its trades."""
    r = require_member(conn, member_id)
    today = now.date()
    return {
        **_member_json(r),
        "suspension_reason": r.reason,
        "admitted": _time(r.admitted),
        "holdings": holdings(conn, member_id)["assets"],
        "pledges": pledges(conn, today, pledgee=member_id)["pledges"],
        "licences": licences(conn, today, licensee=member_id)["licences"],
        "listings": [
            x
            for x in listings(conn, now, viewer, status="open", member=member_id)["listings"]
            if member_id in x["sellers"]
        ],
        "bids": _live_bids(conn, member_id, viewer),
        "trades": trades(conn, now, member=member_id)["trades"],
    }


def _live_bids(conn: Connection, member_id: str, viewer: Actor) -> list[dict[str, Any]]:
    b, lt = bids_table.c, listings_table.c
    q = (
        select(b.bid_id, lt.listing_id, lt.mechanism, lt.status, lt.currency, b.amount, b.placed)
        .join(listings_table, lt.aggregate_id == b.listing_aggregate)
        .where(b.bidder == member_id, b.state == "live")
        .order_by(b.position)
    )
    return [
        {"id": r.bid_id, "listing": r.listing_id, "amount": r.amount, "currency": r.currency, "placed": _time(r.placed)}
        for r in conn.execute(q)
        if bid_visible(mechanism=r.mechanism, listing_open=r.status == "open", bidder=member_id, viewer=viewer)
    ]


# --------------------------------------------------------------------------- assets


def assets(
    conn: Connection,
    owner: str | None = None,
    jurisdiction: str | None = None,
    kind: str | None = None,
    limit: int | None = None,
    after: str | None = None,
) -> dict[str, Any]:
    """Assets by ref with their owners now (the latest conveyance, as `owner` answers);
    `after`: those after that ref, a page's start."""
    a, cv = assets_table.c, conveyances_table.c
    # Each asset's latest conveyance by its own index (asset, effective, seq), asset by
    # asset in ref order, so a page costs its own rows: ranking every conveyance of the
    # register first took 300 ms for a page of 50 at a million events.
    latest = (
        select(cv.to_owners)
        .where(cv.asset == a.ref)
        .order_by(cv.effective.desc(), cv.seq.desc())
        .limit(1)
        .scalar_subquery()
    )
    q = select(a.ref, a.title, a.registered_on, a.expires_on, latest.label("to_owners")).order_by(a.ref)
    if after is not None:
        q = q.where(a.ref > after)
    if jurisdiction or kind:
        # REF is JURISDICTION/kind/NUMBER and a jurisdiction is two letters (`__` in LIKE).
        prefix = f"{_like(jurisdiction) if jurisdiction else '__'}/" + (f"{_like(kind)}/" if kind else "")
        q = q.where(a.ref.like(prefix + "%", escape="\\"))
    if owner:
        cm = conveyance_members_table.c
        q = q.where(a.ref.in_(select(cm.asset).where(cm.member == owner)))
    elif limit is not None:
        q = q.limit(limit)  # every row is shown

    def rows() -> Iterator[dict[str, Any]]:
        for r in conn.execute(q):
            owners = orjson.loads(r.to_owners)
            if owner is None or owner in owners:
                yield {
                    "asset": r.ref,
                    "title": r.title,
                    "owners": owner_list(owners),
                    "registered_on": r.registered_on.isoformat(),
                    "expires_on": r.expires_on.isoformat() if r.expires_on else None,
                }

    return {"assets": _first(rows(), limit)}


def asset_show(conn: Connection, ref: str, viewer: Actor, now: datetime) -> dict[str, Any]:
    """Everything about one asset: title, owners, dates, encumbrances in force today,
    open listings (as `viewer` may see them) and its trades."""
    require_asset(conn, ref)
    row = conn.execute(select(assets_table).where(assets_table.c.ref == ref)).one()
    today = now.date()
    return {
        "asset": ref,
        "title": row.title,
        "owners": owner(conn, ref)["owners"],
        "registered_on": row.registered_on.isoformat(),
        "expires_on": row.expires_on.isoformat() if row.expires_on else None,
        "expired": row.expires_on is not None and today >= row.expires_on,
        "encumbrances": {
            "as_of": today.isoformat(),
            "licences": licences_in_force(conn, ref, today),
            "pledges": pledges_in_force(conn, ref, today),
        },
        "listings": listings(conn, now, viewer, status="open", asset=ref)["listings"],
        "trades": trades(conn, now, asset=ref)["trades"],
    }


# --------------------------------------------------------------------------- trades


def _trade_json(r: Any, now: datetime) -> dict[str, Any]:
    return {
        "trade": r.trade_id,
        "listing": r.listing_id,
        "asset": r.asset,
        "type": r.type,
        "sellers": orjson.loads(r.sellers),
        "buyer": r.buyer,
        "bid": r.bid_id,
        "price": r.price,
        "currency": r.currency,
        "status": trade_status(r.state, r.deadline, naive_utc(now)),
        "struck": _time(r.struck),
        "deadline": _time(r.deadline),
        "payment_ref": r.payment_ref,
        "effective": r.effective.isoformat() if r.effective else None,
        "reason": r.reason,
        "resolved": _time(r.resolved) if r.resolved else None,
    }


def trades(
    conn: Connection,
    now: datetime,
    status: str | None = None,
    member: str | None = None,
    asset: str | None = None,
    limit: int | None = None,
    after: tuple[datetime, str] | None = None,
) -> dict[str, Any]:
    """Trades in the order they were struck; `status` as people read it (`lapsed`: pending
    past its deadline, which no event records). `after`: those after that (struck, id)."""
    t = trades_table.c
    q = select(trades_table).order_by(t.struck, t.trade_id)
    if after is not None:
        q = q.where(after_key((t.struck, t.trade_id), after))
    at = naive_utc(now)
    if status == "lapsed":
        q = q.where(t.state == "pending", t.deadline <= at)
    elif status == "pending":
        q = q.where(t.state == "pending", t.deadline > at)
    elif status:
        q = q.where(t.state == status)
    if member:
        q = q.where(or_(t.buyer == member, t.sellers.contains(f'"{member}"', autoescape=True)))
    if asset:
        q = q.where(t.asset == asset)
    if limit is not None:
        q = q.limit(limit)
    return {"trades": [_trade_json(r, now) for r in conn.execute(q)]}


def trade_show(conn: Connection, trade_id: str, now: datetime) -> dict[str, Any]:
    row = conn.execute(select(trades_table).where(trades_table.c.trade_id == trade_id)).first()
    if row is None:
        raise NotFound(f"trade: no trade {trade_id}")
    return _trade_json(row, now)


# --------------------------------------------------------------------------- pledges and licences


def _in_force(
    conn: Connection,
    as_of: date,
    table: Any,
    party: str,
    asset: str | None,
    who: str | None,
    read: Callable[[Connection, str, date], list[dict[str, Any]]],
    limit: int | None,
    start: str | None = None,
) -> list[dict[str, Any]]:
    """Pledges or licences in force, by asset: each asset with one (of `who`, its `party`)
    is read as `encumbrances` reads it, so ranks, sublicence ends and licensors agree.
    `start`: from that asset on (a page's start: the pager skips what it showed of it)."""
    c = table.c
    q = select(c.asset).distinct().order_by(c.asset)
    if start is not None:
        q = q.where(c.asset >= start)
    if asset:
        q = q.where(c.asset == asset)
    if who:
        q = q.where(c[party] == who)

    def rows() -> Iterator[dict[str, Any]]:
        for ref in list(conn.execute(q).scalars()):
            for x in read(conn, ref, as_of):
                if who is None or x[party] == who:
                    yield {"id": x.pop("id"), "asset": ref, **x}

    return _first(rows(), limit)


def pledges(
    conn: Connection,
    as_of: date,
    asset: str | None = None,
    pledgee: str | None = None,
    limit: int | None = None,
    start: str | None = None,
) -> dict[str, Any]:
    """Pledges in force on `as_of`, by asset then rank."""
    found = _in_force(conn, as_of, pledges_table, "pledgee", asset, pledgee, pledges_in_force, limit, start)
    return {"as_of": as_of.isoformat(), "pledges": found}


def licences(
    conn: Connection,
    as_of: date,
    asset: str | None = None,
    licensee: str | None = None,
    limit: int | None = None,
    start: str | None = None,
) -> dict[str, Any]:
    """Licences in force on `as_of`, by asset then grant."""
    found = _in_force(conn, as_of, licences_table, "licensee", asset, licensee, licences_in_force, limit, start)
    return {"as_of": as_of.isoformat(), "licences": found}


# --------------------------------------------------------------------------- the trail in words

#: What each kind of aggregate is called, and the facts its events leave out.
_NAMED: tuple[tuple[str, Any, str, tuple[str, ...]], ...] = (
    ("member", members_table, "member_id", ()),
    ("asset", assets_table, "ref", ()),
    ("listing", listings_table, "listing_id", ("currency",)),
    ("trade", trades_table, "trade_id", ("currency",)),
    ("licence", licences_table, "licence_id", ()),
    ("pledge", pledges_table, "pledge_id", ()),
)


def aggregate_names(conn: Connection, aggregate_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """What each aggregate of a trail is: {"kind", "id", and e.g. a listing's currency}."""
    ids = sorted(set(aggregate_ids))
    out: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), 500):  # well under any driver's limit of bound parameters
        chunk = ids[start : start + 500]
        for kind, table, id_column, extra in _NAMED:
            cols = [table.c.aggregate_id, table.c[id_column], *(table.c[x] for x in extra)]
            for r in conn.execute(select(*cols).where(table.c.aggregate_id.in_(chunk))):
                out[r[0]] = {"kind": kind, "id": r[1], **dict(zip(extra, r[2:], strict=True))}
    return out
