"""Who may see what: one rule for every output (book, trail, export, later the HTTP API).

Pure and light (no aggregates), so the read side applies it without loading the write side.
"""

from __future__ import annotations

from ipledger.domain.values import Actor, Mechanism


def bid_visible(*, mechanism: str, listing_open: bool, bidder: str, viewer: Actor) -> bool:
    """A sealed listing's bids (bidder and amount) are seen until it closes only by the
    operator, auditors and the bidder itself; every other bid is public."""
    if mechanism != Mechanism.sealed.value or not listing_open:
        return True
    return sees_sealed_bids_of(viewer, bidder)


def sees_sealed_bids_of(viewer: Actor, bidder: str) -> bool:
    """Whether `viewer` sees `bidder`'s bids on a sealed listing that is still open (a
    query that selects listings by bidder in SQL asks this once, not per bid)."""
    return viewer.sees_everything() or viewer.member_id == bidder


def sees_tokens(viewer: Actor) -> bool:
    """Who holds a token, for whom, and its secret's hash are the operator's and auditors'
    business (`token list` is theirs): a member's trail or event stream never shows them."""
    return viewer.sees_everything()


def may_export(viewer: Actor) -> bool:
    """The whole log holds every sealed bid: it is for the operator and auditors."""
    return viewer.sees_everything()
