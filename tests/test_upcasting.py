"""Schema evolution: Member.Suspended gained `reason` (v2); v1 events still load."""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson

from ipledger.domain.members import Member
from ipledger.service import Ledger
from tests.conftest import Market


def _rewrite_as_v1(db_file: str, position: int) -> None:
    """Make the stored event look exactly as version 1 of ipledger wrote it."""
    with sqlite3.connect(db_file) as conn:
        (state,) = conn.execute("select state from ipledger_events where id = ?", (position,)).fetchone()
        doc: dict[str, Any] = orjson.loads(state)
        doc.pop("reason")
        doc.pop("class_version")
        conn.execute("update ipledger_events set state = ? where id = ?", (orjson.dumps(doc), position))


def test_new_suspension_is_stored_as_version_2_with_its_reason(sqlite_market: Market) -> None:
    sqlite_market.do("member.suspend", id="byd", reason="membership fee unpaid")
    (line,) = [x for x in sqlite_market.export().splitlines() if b"Member.Suspended" in x]
    state = orjson.loads(orjson.loads(line)["state"])
    assert state["class_version"] == 2
    assert state["reason"] == "membership fee unpaid"


def test_version_1_suspension_is_upcast_with_an_empty_reason(sqlite_url: str) -> None:
    m = Market(Ledger(sqlite_url))
    m.do("member.add", id="byd", name="BYD Company", kind="enterprise", country="CN")
    m.do("member.suspend", id="byd", reason="to be rewritten as v1")
    head = m.ledger.read_models.head()
    m.ledger.close()
    _rewrite_as_v1(sqlite_url.removeprefix("sqlite:///"), head)

    reopened = Ledger(sqlite_url)
    member = reopened.exchange.member("byd", "id")
    assert member.status == "suspended"
    assert member.suspension_reason == ""
    event = reopened.exchange.repository.event_store.get(Member.create_id("byd"))
    assert [type(e).__name__ for e in event] == ["Admitted", "Suspended"]


def test_member_suspended_under_version_1_can_be_reinstated(sqlite_url: str) -> None:
    m = Market(Ledger(sqlite_url))
    m.do("member.add", id="byd", name="BYD Company", kind="enterprise", country="CN")
    m.do("member.suspend", id="byd")
    head = m.ledger.read_models.head()
    m.ledger.close()
    _rewrite_as_v1(sqlite_url.removeprefix("sqlite:///"), head)

    again = Market(Ledger(sqlite_url), m.clock)
    assert again.do("member.reinstate", id="byd") == {"id": "byd", "status": "active"}


def test_version_1_pledge_detached_is_read_as_ended_the_day_it_was_recorded() -> None:
    """Asset.PledgeDetached gained `effective` (v2): a v1 event upcasts to None, and the
    asset takes the recorded day as the pledge's end (CN judges later pledges by it)."""
    from datetime import date
    from uuid import uuid4

    from ipledger.domain.assets import Asset
    from ipledger.ledger.codec import decode_event

    v1 = {"timestamp": "2026-03-10T09:00:00Z", "pledge_id": "P-1", "meta": {"actor": "icbc-sh", "command_id": "c-9"}}
    event = decode_event("domain.assets:Asset.PledgeDetached", v1, uuid4(), 7)
    assert isinstance(event, Asset.PledgeDetached) and event.effective is None
    asset = Asset.__new__(Asset)
    asset.pledge_ids = ["P-1"]
    asset.last_pledge_end = None
    event.apply(asset)
    assert asset.pledge_ids == [] and asset.last_pledge_end == ("P-1", date(2026, 3, 10))
