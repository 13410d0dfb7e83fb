"""Statuses that depend on the clock as well as on events: one rule, for the aggregates
that enforce it and for the read side that shows it.

Light (no aggregates), so a query applies it without loading the write side.
"""

from __future__ import annotations

from datetime import datetime

#: Why an auction ended unsold (`Listing.EndedUnsold.reason`): what its outcome may tell
#: anyone, the reserve's amount staying hidden (domain/visibility.py).
RESERVE_NOT_MET = "reserve not met"
NO_BIDS = "no bids"


def trade_status(state: str, deadline: datetime, at: datetime) -> str:
    """A pending trade past its settlement deadline has lapsed: void without an event."""
    if state == "pending" and at >= deadline:
        return "lapsed"
    return state


def listing_status(status: str, trade_state: str | None, deadline: datetime | None, at: datetime) -> str:
    """What a listing is, as people should read it: a sale whose trade lapsed is `lapsed`,
    not `sold` (a voided one is `closed` already, by its event)."""
    if status == "sold" and trade_state is not None and deadline is not None:
        return "lapsed" if trade_status(trade_state, deadline, at) == "lapsed" else status
    return status
