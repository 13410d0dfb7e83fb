"""Domain builders for the tests that drive aggregates without a store.

One market, defined once: the members, PATENT registered to fudan-univ, listings, bids,
trades, licences and pledges, each built through the aggregates' public methods with the
events of the set-up already collected, so a test sees only what its own call records.
Keeping them here means a change to an aggregate's API is mended in one place.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from ipledger.domain.assets import Asset
from ipledger.domain.base import Aggregate
from ipledger.domain.errors import LedgerError
from ipledger.domain.licences import Licence
from ipledger.domain.listings import Listing
from ipledger.domain.members import Member
from ipledger.domain.pledges import Pledge
from ipledger.domain.scopes import Scope, parse_scope
from ipledger.domain.trades import Trade
from ipledger.domain.values import Actor, ListingType, Mechanism, MemberKind, parse_amount
from tests.conftest import PATENT

# --------------------------------------------------------------------------- the market

OPERATOR = Actor.parse("operator")
AUDITOR = Actor.parse("auditor")
FUDAN = Actor.parse("fudan-univ")
CAS = Actor.parse("cas-sippr")
SJTU = Actor.parse("sjtu")
HUAWEI = Actor.parse("huawei")
ZTE = Actor.parse("zte")
BYD = Actor.parse("byd")
ICBC = Actor.parse("icbc-sh")
BOC = Actor.parse("boc-bj")

US_PATENT = "US/patent/7654321"

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # "now" in every story: listings open, licences are granted
ADMITTED_AT = T0 - timedelta(days=400)
REGISTERED_AT = T0 - timedelta(days=300)
REGISTERED_ON = date(2019, 5, 10)  # PATENT's effective date, as in the store fixtures (conftest)
CLOSES = T0 + timedelta(days=7)
SETTLEMENT_DAYS = 7
TERM = ("2026-04-01", "2031-04-01")

KINDS = {
    "fudan-univ": MemberKind.university,
    "sjtu": MemberKind.university,
    "cas-sippr": MemberKind.research_institute,
    "huawei": MemberKind.enterprise,
    "zte": MemberKind.enterprise,
    "byd": MemberKind.enterprise,
    "icbc-sh": MemberKind.financial_institution,
    "boc-bj": MemberKind.financial_institution,
}


def cny(text: str) -> Decimal:
    """An amount in yuan, checked to the fen as the market checks it."""
    return parse_amount(text, "CNY")


# --------------------------------------------------------------------------- members


def admit(member_id: str) -> Member:
    """An active member, admitted long before T0; a member not in KINDS is an enterprise."""
    member = Member.admit(
        member_id=member_id,
        name=member_id.upper(),
        kind=KINDS.get(member_id, MemberKind.enterprise),
        country="CN",
        actor=OPERATOR,
        at=ADMITTED_AT,
    )
    member.collect_events()
    return member


def suspended(member_id: str) -> Member:
    """A member the operator suspended the day before T0."""
    member = admit(member_id)
    member.suspend(reason="sanctions review", actor=OPERATOR, at=T0 - timedelta(days=1))
    member.collect_events()
    return member


# --------------------------------------------------------------------------- assets


def register(
    ref: str = PATENT,
    owners: dict[str, str] | None = None,
    *,
    expires_on: date | None = None,
    registered_on: date | None = REGISTERED_ON,
    at: datetime = REGISTERED_AT,
) -> Asset:
    """An asset owned by fudan-univ unless `owners` says otherwise; `registered_on=None`
    makes the effective date the recorded date `at` (registered the day it is recorded)."""
    asset = Asset.register(
        ref=ref,
        title="Method for lithium-ion electrode coating",
        owners=owners or {"fudan-univ": "1"},
        expires_on=expires_on,
        effective=registered_on,
        actor=OPERATOR,
        at=at,
    )
    asset.collect_events()
    return asset


def co_owned() -> Asset:
    """PATENT held in halves by fudan-univ and cas-sippr: one acting alone needs consent."""
    return register(owners={"fudan-univ": "1/2", "cas-sippr": "1/2"})


# --------------------------------------------------------------------------- listings, bids, trades


def open_listing(
    asset: Asset,
    mechanism: Mechanism,
    *,
    listing_id: str = "L-1",
    type: ListingType = ListingType.assignment,
    sellers: list[Member] | None = None,
    opens_at: datetime | None = None,
    closes_at: datetime = CLOSES,
    ask: str | None = None,
    reserve: str | None = None,
    increment: str | None = None,
    extend_minutes: int | None = None,
    scope: Scope | None = None,
    actor: Actor = OPERATOR,
    at: datetime = T0,
) -> Listing:
    """A listing in CNY opened at T0 by the operator; the sellers default to the owners."""
    listing = Listing.open(
        listing_id=listing_id,
        asset=asset,
        sellers=sellers if sellers is not None else [admit(m) for m in sorted(asset.owners)],
        type=type,
        mechanism=mechanism,
        currency="CNY",
        opens_at=opens_at,
        closes_at=closes_at,
        ask=cny(ask) if ask else None,
        reserve=cny(reserve) if reserve else None,
        increment=cny(increment) if increment else None,
        extend_minutes=extend_minutes,
        settlement_days=SETTLEMENT_DAYS,
        scope=scope,
        actor=actor,
        at=at,
    )
    listing.collect_events()
    return listing


def bid(
    listing: Listing,
    bidder: str | Member,
    amount: str,
    *,
    bid_id: str | None = None,
    at: datetime = T0 + timedelta(hours=1),
    actor: Actor | None = None,
    trade_id: str = "T-1",
) -> Any:
    """A bid placed by the bidder itself an hour after T0; its events stay on the listing."""
    member = bidder if isinstance(bidder, Member) else admit(bidder)
    return listing.place_bid(
        bid_id=bid_id or f"B-{member.member_id}-{amount}",
        bidder=member,
        amount=cny(amount),
        trade_id=trade_id,
        actor=actor or Actor.parse(member.member_id),
        at=at,
    )


def pending_trade(asset: Asset | None = None) -> tuple[Asset, Listing, Trade]:
    """fudan-univ sells PATENT to huawei at a fixed 1,200,000.00 CNY; the trade is pending."""
    asset = asset or register()
    listing = open_listing(asset, Mechanism.fixed, ask="1200000.00")
    at = T0 + timedelta(hours=2)
    sale = bid(listing, "huawei", "1200000.00", at=at)
    trade = Trade.strike(listing=listing, sale=sale, at=at)
    asset.reserve(trade_id=trade.trade_id, listing_id=listing.listing_id, deadline=trade.deadline, at=at)
    for aggregate in (asset, listing, trade):
        aggregate.collect_events()
    return asset, listing, trade


# --------------------------------------------------------------------------- licences and pledges


def scope(
    type: str = "exclusive",
    territories: tuple[str, ...] = ("CN",),
    fields: tuple[str, ...] = ("EV batteries",),
    term: tuple[str, str] = TERM,
    *,
    sublicensable: bool = False,
) -> Scope:
    """A licence scope: by default exclusive, in China, for EV batteries, over TERM."""
    return parse_scope(
        type=type,
        territories=territories,
        fields=fields,
        start=term[0],
        end=term[1],
        sublicensable=sublicensable,
    )


def grant(
    licence_id: str,
    licensee: str | Member,
    scope_: Scope,
    others: dict[str, Licence] | None = None,
    *,
    parent: Licence | None = None,
    ref: str = PATENT,
    licensors: tuple[str, ...] = ("fudan-univ",),
    royalty_rate: Decimal | None = None,
    lump_sum: Decimal | None = None,
    currency: str | None = None,
    expires_on: date | None = None,
    actor: Actor | None = OPERATOR,
    at: datetime = T0,
) -> Licence:
    """Grant a licence checked against `others`; an accepted one joins `others`."""
    pool = others if others is not None else {}
    licence = Licence.grant(
        licence_id=licence_id,
        ref=ref,
        licensors=list(licensors),
        licensee=licensee if isinstance(licensee, Member) else admit(licensee),
        scope=scope_,
        royalty_rate=royalty_rate,
        lump_sum=lump_sum,
        currency=currency,
        parent=parent,
        others=pool,
        asset_registered_on=REGISTERED_ON,
        asset_expires_on=expires_on,
        actor=actor,
        at=at,
    )
    licence.collect_events()
    pool[licence_id] = licence
    return licence


def pledge(
    pledge_id: str = "P-1",
    pledgee: str | Member = "icbc-sh",
    *,
    ref: str = PATENT,
    pledgors: tuple[str, ...] = ("fudan-univ",),
    amount: str | None = "10000000.00",
    currency: str | None = "CNY",
    start: date = date(2026, 3, 1),
    end: date | None = date(2029, 3, 1),
    at: datetime = T0,
) -> Pledge:
    """PATENT pledged by fudan-univ to icbc-sh for 10,000,000.00 CNY, 2026 to 2029."""
    registered = Pledge.register(
        pledge_id=pledge_id,
        ref=ref,
        pledgors=list(pledgors),
        pledgee=pledgee if isinstance(pledgee, Member) else admit(pledgee),
        amount=Decimal(amount) if amount is not None else None,
        currency=currency,
        start=start,
        end=end,
        at=at,
    )
    registered.collect_events()
    return registered


def consented(p: Pledge, consent_id: str, act: str, actor: Actor = ICBC) -> Pledge:
    """The pledge with the pledgee's consent to `act` given at T0."""
    p.consent(consent_id=consent_id, act=act, actor=actor, at=T0)
    p.collect_events()
    return p


# --------------------------------------------------------------------------- reading what was recorded


def names(aggregate: Aggregate) -> list[str]:
    """The qualified names of the events recorded since the last collect, e.g. `Asset.Conveyed`."""
    return [type(e).__qualname__ for e in aggregate.collect_events()]


def events(aggregate: Aggregate) -> list[Any]:
    """The events recorded since the last collect, to check their fields."""
    return list(aggregate.collect_events())


@contextmanager
def rejected(error: type[LedgerError], field: str, *aggregates: Aggregate) -> Iterator[pytest.ExceptionInfo[Any]]:
    """The block raises exactly `error`, naming `field`, and records nothing on `aggregates`."""
    before = [(a.version, list(a.pending_events)) for a in aggregates]
    with pytest.raises(error) as info:
        yield info
    assert type(info.value) is error
    assert info.value.message.startswith(f"{field}: "), info.value.message
    assert [(a.version, list(a.pending_events)) for a in aggregates] == before
