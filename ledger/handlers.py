"""Command handlers: one function per command class, keyed by the class.

A handler loads what the command names through the unit of work, asks the domain to
decide (each aggregate's shell records the events its pure rules return), and returns
the outcome with the aggregates whose new events are to be saved. It never writes,
never reads the clock and never retries: the unit of work and `Exchange.execute` do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from hashlib import sha1
from typing import TYPE_CHECKING, Any, Callable

from ipledger.domain.assets import Asset
from ipledger.domain.base import NAMESPACE_BYTES, Aggregate
from ipledger.domain.licences import Licence, check_conflicts
from ipledger.domain.listings import Listing, Sale
from ipledger.domain.members import BidIndex, Member
from ipledger.domain.pledges import Pledge, use_consents
from ipledger.domain.tokens import Token
from ipledger.domain.trades import Trade
from ipledger.domain.values import Actor, ListingType, owner_list
from ipledger.ledger import commands as c

if TYPE_CHECKING:
    from ipledger.ledger.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class Context:
    """What every handler knows about the command it is executing."""

    actor: Actor
    command_id: str
    at: datetime

    def new_id(self, prefix: str, purpose: str = "") -> str:
        """A fresh id; derived from the command id, so a retried command makes the same one.
        The first 10 hex digits of uuid5(NAMESPACE, name) are those of its SHA-1 (uuid5's
        version and variant bits come later), taken here without building the UUID."""
        name = f"{self.command_id}/{prefix}/{purpose}".encode()
        return f"{prefix}-{sha1(NAMESPACE_BYTES + name).hexdigest()[:10]}"


Outcome = dict[str, Any]
Result = tuple[Outcome, list[Aggregate | None]]
Handler = Callable[[Any, "UnitOfWork", Context], Result]


# -------------------------------------------------------------------------- members


def add_member(cmd: c.AddMember, uow: UnitOfWork, ctx: Context) -> Result:
    uow.require_new(Member, cmd.id, "id", "member")
    member = Member.admit(
        member_id=cmd.id, name=cmd.title, kind=cmd.kind, country=cmd.country, actor=ctx.actor, at=ctx.at
    )
    return {"id": cmd.id, "status": member.status}, [member]


def suspend_member(cmd: c.SuspendMember, uow: UnitOfWork, ctx: Context) -> Result:
    member = uow.member(cmd.id, "id")
    member.suspend(reason=cmd.reason or "", actor=ctx.actor, at=ctx.at)
    return {"id": cmd.id, "status": member.status}, [member]


def reinstate_member(cmd: c.ReinstateMember, uow: UnitOfWork, ctx: Context) -> Result:
    member = uow.member(cmd.id, "id")
    member.reinstate(actor=ctx.actor, at=ctx.at)
    return {"id": cmd.id, "status": member.status}, [member]


# -------------------------------------------------------------------------- assets


def register_asset(cmd: c.RegisterAsset, uow: UnitOfWork, ctx: Context) -> Result:
    uow.require_new(Asset, cmd.ref, "ref", "asset")
    for owner in cmd.owner:
        uow.active_member(owner, "owner")
    asset = Asset.register(
        ref=cmd.ref,
        title=cmd.title,
        owners=cmd.owner,
        expires_on=cmd.expires_on,
        effective=cmd.effective,
        actor=ctx.actor,
        at=ctx.at,
    )
    return {"id": cmd.ref, "owners": owner_list(asset.owners)}, [asset]


def assign_asset(cmd: c.AssignAsset, uow: UnitOfWork, ctx: Context) -> Result:
    asset = uow.asset(cmd.ref)
    for member in cmd.to:
        uow.active_member(member, "to")
    asset.assign(to=cmd.to, kind=cmd.conveyance, effective=cmd.effective, actor=ctx.actor, at=ctx.at)
    pledges = uow.pledges_of(asset)
    use_consents(pledges, act="assignment", offered=cmd.consent, used_for=ctx.command_id, ref=asset.ref, at=ctx.at)
    return {"id": cmd.ref, "owners": owner_list(asset.owners)}, [asset, *pledges]


def consent_as_co_owner(cmd: c.ConsentAsCoOwner, uow: UnitOfWork, ctx: Context) -> Result:
    asset = uow.asset(cmd.ref)
    uow.member(cmd.member, "member")
    consent_id = cmd.id or ctx.new_id("CC")
    asset.give_co_owner_consent(consent_id=consent_id, member=cmd.member, act=cmd.act, actor=ctx.actor, at=ctx.at)
    return {"id": consent_id, "asset": asset.ref, "member": cmd.member, "act": cmd.act}, [asset]


# -------------------------------------------------------------------------- listings


def open_listing(cmd: c.OpenListing, uow: UnitOfWork, ctx: Context) -> Result:
    listing_id = uow.require_new(Listing, cmd.id or ctx.new_id("L"), "id", "listing")
    asset = uow.asset(cmd.ref)
    sellers = [uow.member(m, "seller") for m in sorted(asset.owners)]
    scope = cmd.scope
    if scope is not None:
        check_conflicts(scope, uow.licences_of(asset))
    pledges = uow.pledges_of(asset)
    act = "listing" if cmd.type == ListingType.assignment else "licence"
    listing = Listing.open(
        listing_id=listing_id,
        asset=asset,
        sellers=sellers,
        type=cmd.type,
        mechanism=cmd.mechanism,
        currency=cmd.currency,
        opens_at=cmd.opens,
        closes_at=cmd.closes,
        ask=cmd.ask,
        reserve=cmd.reserve,
        increment=cmd.increment,
        extend_minutes=cmd.extend_minutes,
        settlement_days=cmd.settlement_days,
        scope=scope,
        actor=ctx.actor,
        at=ctx.at,
    )
    use_consents(pledges, act=act, offered=cmd.consent, used_for=ctx.command_id, ref=asset.ref, at=ctx.at)
    return {"id": listing_id, "asset": cmd.ref, "status": listing.status}, [listing, asset, *pledges]


def withdraw_listing(cmd: c.WithdrawListing, uow: UnitOfWork, ctx: Context) -> Result:
    listing = uow.listing(cmd.listing)
    asset = uow.asset(listing.ref)
    listing.withdraw(actor=ctx.actor, at=ctx.at)
    asset.release_hold(holder=listing.listing_id, reason="withdrawn", at=ctx.at)
    return {"id": listing.listing_id, "status": listing.status}, [listing, asset]


def close_listing(cmd: c.CloseListing, uow: UnitOfWork, ctx: Context) -> Result:
    listing = uow.listing(cmd.listing)
    asset = uow.asset(listing.ref)
    trade_id = uow.require_new(Trade, cmd.trade_id or ctx.new_id("T"), "trade_id", "trade")
    sale = listing.close(trade_id=trade_id, actor=ctx.actor, at=ctx.at)
    outcome: Outcome = {"id": listing.listing_id, "status": listing.status}
    if sale is None:
        asset.release_hold(holder=listing.listing_id, reason="unsold", at=ctx.at)
        return outcome, [listing, asset]
    trade = _strike(listing, sale, asset, ctx)
    return {**outcome, "trade": trade.trade_id, "winner": sale.buyer, "price": str(sale.price)}, [
        listing,
        asset,
        trade,
    ]


def _strike(listing: Listing, sale: Sale, asset: Asset, ctx: Context) -> Trade:
    trade = Trade.strike(listing=listing, sale=sale, at=ctx.at)
    if listing.type == ListingType.assignment.value:
        asset.reserve(trade_id=trade.trade_id, listing_id=listing.listing_id, deadline=trade.deadline, at=ctx.at)
    return trade


# -------------------------------------------------------------------------- bids


def place_bid(cmd: c.PlaceBid, uow: UnitOfWork, ctx: Context) -> Result:
    listing = uow.listing(cmd.listing)
    bid_id = uow.require_new(BidIndex, cmd.id or ctx.new_id("B"), "id", "bid")
    bidder = uow.member(cmd.bidder, "bidder")
    trade_id = cmd.trade_id or ctx.new_id("T")
    sale = listing.place_bid(
        bid_id=bid_id, bidder=bidder, amount=cmd.amount, trade_id=trade_id, actor=ctx.actor, at=ctx.at
    )
    index = BidIndex.index(bid_id=bid_id, listing_id=listing.listing_id, at=ctx.at)
    outcome: Outcome = {"id": bid_id, "listing": listing.listing_id, "amount": str(listing.bids[bid_id].amount)}
    if sale is None:
        return outcome, [listing, index]
    uow.require_new(Trade, trade_id, "trade_id", "trade")
    asset = uow.asset(listing.ref)
    trade = _strike(listing, sale, asset, ctx)
    return {**outcome, "trade": trade.trade_id}, [listing, index, asset, trade]


def withdraw_bid(cmd: c.WithdrawBid, uow: UnitOfWork, ctx: Context) -> Result:
    listing = uow.listing_of_bid(cmd.bid)
    listing.withdraw_bid(bid_id=cmd.bid, actor=ctx.actor, at=ctx.at)
    return {"id": cmd.bid, "listing": listing.listing_id, "state": "withdrawn"}, [listing]


def accept_bid(cmd: c.AcceptBid, uow: UnitOfWork, ctx: Context) -> Result:
    listing = uow.listing_of_bid(cmd.bid)
    asset = uow.asset(listing.ref)
    trade_id = uow.require_new(Trade, cmd.trade_id or ctx.new_id("T"), "trade_id", "trade")
    sale = listing.accept_bid(bid_id=cmd.bid, trade_id=trade_id, actor=ctx.actor, at=ctx.at)
    trade = _strike(listing, sale, asset, ctx)
    return {"id": cmd.bid, "listing": listing.listing_id, "trade": trade.trade_id}, [listing, asset, trade]


# -------------------------------------------------------------------------- trades


def settle_trade(cmd: c.SettleTrade, uow: UnitOfWork, ctx: Context) -> Result:
    trade = uow.trade(cmd.trade)
    asset = uow.asset(trade.ref)
    uow.active_member(trade.buyer, "buyer")
    effective = trade.settle(payment_ref=cmd.payment_ref, effective=cmd.effective, actor=ctx.actor, at=ctx.at)
    outcome: Outcome = {"id": trade.trade_id, "state": trade.state, "asset": trade.ref}
    if trade.type == ListingType.assignment.value:
        asset.convey_under_trade(trade_id=trade.trade_id, buyer=trade.buyer, effective=effective, at=ctx.at)
        return outcome, [trade, asset]
    assert trade.scope is not None
    licence_id = uow.require_new(Licence, f"LIC-{trade.trade_id}", "trade", "licence")
    licence = Licence.grant(
        licence_id=licence_id,
        ref=asset.ref,
        licensors=list(trade.sellers),
        licensee=uow.member(trade.buyer, "buyer"),
        scope=trade.scope,
        royalty_rate=None,
        lump_sum=trade.price,
        currency=trade.currency,
        parent=None,
        others=uow.licences_of(asset),
        asset_registered_on=asset.registered_on,
        asset_expires_on=asset.expires_on,
        actor=None,
        at=ctx.at,
    )
    asset.license(licence_id=licence_id, exclusive=trade.scope.type.value == "exclusive", actor=None, at=ctx.at)
    return {**outcome, "licence": licence_id}, [trade, asset, licence]


def void_trade(cmd: c.VoidTrade, uow: UnitOfWork, ctx: Context) -> Result:
    trade = uow.trade(cmd.trade)
    asset = uow.asset(trade.ref)
    listing = uow.listing(trade.listing_id)
    trade.void(reason=cmd.reason or "voided", actor=ctx.actor, at=ctx.at)
    asset.release_hold(holder=trade.trade_id, reason="trade voided", at=ctx.at)
    listing.sale_fell_through(trade_id=trade.trade_id, at=ctx.at)
    return {"id": trade.trade_id, "state": trade.state}, [trade, asset, listing]


# -------------------------------------------------------------------------- licences


def grant_licence(cmd: c.GrantLicence, uow: UnitOfWork, ctx: Context) -> Result:
    licence_id = uow.require_new(Licence, cmd.id or ctx.new_id("LIC"), "id", "licence")
    asset = uow.asset(cmd.ref)
    licensee = uow.member(cmd.licensee, "licensee")
    parent = uow.load(Licence, cmd.parent, "parent", "licence") if cmd.parent else None
    scope = cmd.scope
    assert scope is not None  # a grant's scope options are required
    licence = Licence.grant(
        licence_id=licence_id,
        ref=asset.ref,
        licensors=sorted(asset.owners),
        licensee=licensee,
        scope=scope,
        royalty_rate=cmd.royalty_rate,
        lump_sum=cmd.lump_sum,
        currency=cmd.currency,
        parent=parent,
        others=uow.licences_of(asset),
        asset_registered_on=asset.registered_on,
        asset_expires_on=asset.expires_on,
        actor=ctx.actor,
        at=ctx.at,
    )
    exclusive = scope.type.value == "exclusive"
    pledges: list[Pledge] = []
    if parent is None:
        asset.license(licence_id=licence_id, exclusive=exclusive, actor=ctx.actor, at=ctx.at)
        pledges = uow.pledges_of(asset)
        use_consents(pledges, act="licence", offered=cmd.consent, used_for=ctx.command_id, ref=asset.ref, at=ctx.at)
    else:
        asset.license(licence_id=licence_id, exclusive=exclusive, actor=None, at=ctx.at)
    return {"id": licence_id, "asset": asset.ref, "licensee": cmd.licensee}, [licence, asset, *pledges]


def terminate_licence(cmd: c.TerminateLicence, uow: UnitOfWork, ctx: Context) -> Result:
    licence = uow.load(Licence, cmd.licence, "licence", "licence")
    asset = uow.asset(licence.ref)
    licence.terminate(
        reason=cmd.reason, effective=cmd.effective, actor=ctx.actor, owners=sorted(asset.owners), at=ctx.at
    )
    return {"id": licence.licence_id, "status": licence.status}, [licence]


def surrender_licence(cmd: c.SurrenderLicence, uow: UnitOfWork, ctx: Context) -> Result:
    licence = uow.load(Licence, cmd.licence, "licence", "licence")
    licence.surrender(effective=cmd.effective, actor=ctx.actor, at=ctx.at)
    return {"id": licence.licence_id, "status": licence.status}, [licence]


# -------------------------------------------------------------------------- pledges


def register_pledge(cmd: c.RegisterPledge, uow: UnitOfWork, ctx: Context) -> Result:
    pledge_id = uow.require_new(Pledge, cmd.id or ctx.new_id("P"), "id", "pledge")
    asset = uow.asset(cmd.ref)
    pledge = Pledge.register(
        pledge_id=pledge_id,
        ref=asset.ref,
        pledgors=sorted(asset.owners),
        pledgee=uow.member(cmd.pledgee, "pledgee"),
        amount=cmd.amount,
        currency=cmd.currency,
        start=cmd.start or ctx.at.date(),
        end=cmd.end,
        at=ctx.at,
    )
    asset.pledge(pledge_id=pledge_id, start=pledge.start, end=pledge.end, actor=ctx.actor, at=ctx.at)
    rank = asset.pledge_rank(pledge_id)
    return {"id": pledge_id, "asset": asset.ref, "pledgee": cmd.pledgee, "rank": rank}, [pledge, asset]


def consent_as_pledgee(cmd: c.ConsentAsPledgee, uow: UnitOfWork, ctx: Context) -> Result:
    pledge = uow.load(Pledge, cmd.pledge, "pledge", "pledge")
    consent_id = cmd.id or ctx.new_id("C")
    pledge.consent(consent_id=consent_id, act=cmd.act, actor=ctx.actor, at=ctx.at)
    return {"id": consent_id, "pledge": pledge.pledge_id, "act": cmd.act}, [pledge]


def release_pledge(cmd: c.ReleasePledge, uow: UnitOfWork, ctx: Context) -> Result:
    pledge = uow.load(Pledge, cmd.pledge, "pledge", "pledge")
    asset = uow.asset(pledge.ref)
    ended = pledge.release(effective=cmd.effective, actor=ctx.actor, at=ctx.at)
    asset.discharge_pledge(pledge_id=pledge.pledge_id, effective=ended, at=ctx.at)
    return {"id": pledge.pledge_id, "status": pledge.status}, [pledge, asset]


def enforce_pledge(cmd: c.EnforcePledge, uow: UnitOfWork, ctx: Context) -> Result:
    pledge = uow.load(Pledge, cmd.pledge, "pledge", "pledge")
    asset = uow.asset(pledge.ref)
    uow.active_member(pledge.pledgee, "pledgee")
    effective = pledge.enforce(effective=cmd.effective, actor=ctx.actor, at=ctx.at)
    asset.convey_on_enforcement(pledge_id=pledge.pledge_id, pledgee=pledge.pledgee, effective=effective, at=ctx.at)
    return {"id": pledge.pledge_id, "status": pledge.status, "owners": owner_list(asset.owners)}, [pledge, asset]


# -------------------------------------------------------------------------- tokens


def issue_token(cmd: c.IssueToken, uow: UnitOfWork, ctx: Context) -> Result:
    uow.require_new(Token, cmd.id, "id", "token")
    for_actor = Actor.parse(cmd.actor)
    if for_actor.member_id is not None:
        uow.member(for_actor.member_id, "actor")  # a member's token names an admitted member
    token = Token.issue(
        token_id=cmd.id,
        for_actor=for_actor,
        name=cmd.title,
        secret_sha256=cmd.secret_sha256,
        expires=cmd.expires,
        actor=ctx.actor,
        at=ctx.at,
    )
    return {"id": token.token_id, "actor": token.actor, "name": token.name}, [token]


def revoke_token(cmd: c.RevokeToken, uow: UnitOfWork, ctx: Context) -> Result:
    token = uow.load(Token, cmd.token, "token", "token")
    token.revoke(actor=ctx.actor, at=ctx.at)
    return {"id": token.token_id, "actor": token.actor, "status": token.status}, [token]


#: The one registry: a command class → its handler (the names live on the classes).
HANDLERS: dict[type[c.Command], Handler] = {
    c.AddMember: add_member,
    c.SuspendMember: suspend_member,
    c.ReinstateMember: reinstate_member,
    c.RegisterAsset: register_asset,
    c.AssignAsset: assign_asset,
    c.ConsentAsCoOwner: consent_as_co_owner,
    c.OpenListing: open_listing,
    c.WithdrawListing: withdraw_listing,
    c.CloseListing: close_listing,
    c.PlaceBid: place_bid,
    c.WithdrawBid: withdraw_bid,
    c.AcceptBid: accept_bid,
    c.SettleTrade: settle_trade,
    c.VoidTrade: void_trade,
    c.GrantLicence: grant_licence,
    c.TerminateLicence: terminate_licence,
    c.SurrenderLicence: surrender_licence,
    c.RegisterPledge: register_pledge,
    c.ConsentAsPledgee: consent_as_pledgee,
    c.ReleasePledge: release_pledge,
    c.EnforcePledge: enforce_pledge,
    c.IssueToken: issue_token,
    c.RevokeToken: revoke_token,
}
