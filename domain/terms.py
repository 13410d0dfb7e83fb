"""When encumbrances end and how they rank: one rule for the aggregates that enforce it
and for the read side that shows it.

Light (no aggregates, no pydantic), so a query applies it without loading the write side.
"""

from __future__ import annotations

from datetime import date


def licence_end(term_end: date, ended_on: date | None, parent_end: date | None) -> date:
    """When a licence stops being in force: its term's end, an earlier termination or
    surrender, or its parent's end, whichever comes first."""
    return min(d for d in (term_end, ended_on, parent_end) if d is not None)


def pledge_ranks(live_pledges: list[str]) -> dict[str, int]:
    """Pledges rank in the order they were registered: the first one still in force ranks 1."""
    return {pledge_id: rank for rank, pledge_id in enumerate(live_pledges, start=1)}
