"""Who may see what: one rule for every output (book, listings, trail, export, the HTTP API
and the web view).

Pure and light (no aggregates), so the read side applies it without loading the write side.
"""

from __future__ import annotations

from collections.abc import Iterable

from ipledger.domain.values import Actor, Mechanism

#: What an amount the viewer may not see reads as, where its field stays (a JSON key, a
#: CSV or table column, a line of the trail): never `null`, which says there is none.
HIDDEN = "hidden"


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


def sees_reserve(viewer: Actor, sellers: Iterable[str]) -> bool:
    """A listing's reserve (the lowest price its sellers accept) is theirs: seen by the
    operator, auditors and the listing's own sellers, by nobody else, before or after the
    close. Unlike a sealed bid, it never becomes public: the outcome tells whether the best
    bid met it, and the amount would only tell the next bidders the sellers' floor (the
    same asset relisted, or a sale negotiated after the auction). That a reserve exists
    is not hidden: bidders are entitled to know the sale is subject to one."""
    return viewer.sees_everything() or (viewer.member_id is not None and viewer.member_id in sellers)


def reserve_shown(reserve: str | None, *, viewer: Actor, sellers: Iterable[str]) -> str | None:
    """A listing's reserve as `viewer` is shown it: the amount, `HIDDEN` when there is one
    it may not see, None when there is none (that much everyone may know)."""
    if reserve is None or sees_reserve(viewer, sellers):
        return reserve
    return HIDDEN


def may_export(viewer: Actor) -> bool:
    """The whole log holds every sealed bid: it is for the operator and auditors."""
    return viewer.sees_everything()
