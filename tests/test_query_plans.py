"""The pages people open often read their rows through an index, on a store of any size.

Each test runs a query as a user would (`Ledger`), catches the SQL it sends, and asks
SQLite how it runs it: a table read whole, or sorted whole, costs nothing on a demo
market and a second at a million events (measured: docs/performance.md)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa

from ipledger.demo import run_demo
from ipledger.service import Ledger


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    ledger = Ledger(f"{tmp_path_factory.mktemp('plans')}/demo.db")
    run_demo(ledger)
    ledger.read_models.catch_up()
    yield ledger
    ledger.close()


def plans(ledger: Ledger, query: Callable[[], Any], table: str) -> list[str]:
    """How SQLite runs each SELECT on `table` that `query` sends."""
    sent: list[tuple[str, Any]] = []

    def catch(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT") and f"FROM {table}" in statement:
            sent.append((statement, params))

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", catch)
    try:
        query()
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", catch)
    assert sent, f"no query on {table}"
    with sqlite3.connect(ledger.url.removeprefix("sqlite:///")) as db:
        return [" | ".join(r[-1] for r in db.execute("EXPLAIN QUERY PLAN " + s, p)) for s, p in sent]


def test_a_members_live_bids_are_found_by_bidder(demo: Ledger) -> None:
    assert any(
        "USING INDEX rm_bids_bidder (bidder=? AND state=?)" in p
        for p in plans(demo, lambda: demo.member("zte"), "rm_bids")
    )


def test_a_members_licences_are_found_by_licensee(demo: Ledger) -> None:
    found = plans(demo, lambda: demo.licences(licensee="huawei"), "rm_licences")
    assert "USING INDEX ix_rm_licences_licensee (licensee=?)" in found[0], found


def test_a_page_of_listings_is_read_in_opening_order_without_sorting_them_all(demo: Ledger) -> None:
    found = plans(demo, lambda: demo.listings(limit=2), "rm_listings")
    assert "USING INDEX rm_listings_opening" in found[0] and "TEMP B-TREE" not in found[0], found


def test_a_page_of_assets_finds_each_latest_conveyance_by_its_asset(demo: Ledger) -> None:
    found = plans(demo, lambda: demo.assets(limit=2), "rm_assets")
    assert "SEARCH rm_conveyances USING INDEX rm_conveyances_asset (asset=?)" in found[0], found
    assert "TEMP B-TREE" not in found[0], found


def test_the_latest_events_are_read_back_from_the_head(demo: Ledger) -> None:
    found = plans(demo, lambda: demo.latest(limit=3), "rm_trail_keys")
    assert all("SEARCH rm_trail_keys USING" in p and "SCAN" not in p for p in found), found


def test_a_page_of_trades_is_read_in_the_order_they_were_struck_without_sorting_them_all(demo: Ledger) -> None:
    found = plans(demo, lambda: demo.trades(limit=2), "rm_trades")
    assert "USING INDEX rm_trades_struck" in found[0] and "TEMP B-TREE" not in found[0], found


def test_a_later_page_of_assets_starts_at_its_key_not_at_the_first_asset(demo: Ledger) -> None:
    found = plans(demo, lambda: demo.assets(limit=2, after="CN/patent/ZL2"), "rm_assets")
    assert "SEARCH rm_assets USING INDEX sqlite_autoindex_rm_assets_1 (ref>?)" in found[0], found


def test_a_members_listings_are_found_by_seller_and_by_bidder_not_by_reading_every_listing(demo: Ledger) -> None:
    found = plans(demo, lambda: demo.listings(member="zte"), "rm_listings")
    assert "rm_listing_sellers" in found[0] and "rm_bids_bidder (bidder=?)" in found[0], found
    assert "SCAN rm_listings" not in found[0], found


@pytest.mark.parametrize(
    ("table", "index", "query"),
    [
        ("rm_listings", "rm_listings_opening", lambda d: d.listings(limit=2, after=(datetime(2026, 1, 1), "L-1"))),
        ("rm_trades", "rm_trades_struck", lambda d: d.trades(limit=2, after=(datetime(2026, 1, 1), "T-1"))),
    ],
    ids=["listings", "trades"],
)
def test_a_later_page_of_listings_or_trades_starts_at_its_key_in_the_index(
    demo: Ledger, table: str, index: str, query: Callable[[Ledger], Any]
) -> None:
    found = plans(demo, lambda: query(demo), table)
    assert f"SEARCH {table} USING INDEX {index} (" in found[0] and ")>(?,?)" in found[0], found
