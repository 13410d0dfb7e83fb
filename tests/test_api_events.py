"""`GET /v1/events` (api.md, issue 14): the log as Server-Sent Events, as the token's actor
may see it: a member never sees another member's sealed bid; `Last-Event-ID` resumes;
a revoked token ends a following stream at its next poll."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from tests.conftest import Market
from tests.test_api import NOW, RESERVE, Api, _ledger, problem, reserved_listing, sealed_listing, serving


@pytest.fixture
def api(sqlite_market: Market) -> Iterator[Api]:
    yield from serving(sqlite_market)


def read_events(text: str) -> list[dict[str, Any]]:
    """Parse a text/event-stream body: each event's id, event name and JSON data."""
    out = []
    for block in text.split("\n\n"):
        fields: dict[str, Any] = {}
        for line in block.splitlines():
            name, _, value = line.partition(": ")
            if name in ("id", "event"):
                fields[name] = value
            elif name == "data":
                fields["data"] = orjson.loads(value)
        if fields:
            out.append(fields)
    return out


def stream(api: Api, actor: str, **params: Any) -> list[dict[str, Any]]:
    r = api.get("/v1/events", actor, follow="false", **params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/event-stream")
    return read_events(r.text)


def bids_seen(events: list[dict[str, Any]]) -> dict[str, str]:
    return {
        e["data"]["data"]["bidder"]: e["data"]["data"]["amount"] for e in events if e["event"] == "Listing.BidPlaced"
    }


def test_the_operator_sees_every_event_of_the_log_with_its_position_as_id(api: Api) -> None:
    sealed_listing(api)
    events = stream(api, "operator")
    head = api.digest()["position"]
    assert [int(e["id"]) for e in events] == list(range(1, head + 1))
    assert all(e["data"]["position"] == int(e["id"]) and e["event"] == e["data"]["type"] for e in events)
    assert bids_seen(events) == {"huawei": "100000.00", "zte": "120000.00"}


def test_a_member_sees_its_own_sealed_bid_and_not_another_members(api: Api) -> None:
    sealed_listing(api)
    assert bids_seen(stream(api, "huawei")) == {"huawei": "100000.00"}
    zte = stream(api, "zte")
    assert bids_seen(zte) == {"zte": "120000.00"}
    assert "B-huawei" not in str(zte) and "100000" not in str(zte)


def reserves_seen(events: list[dict[str, Any]]) -> dict[str, Any]:
    opened = [e["data"]["data"] for e in events if e["event"] == "Listing.Opened"]
    return {x["listing_id"]: x["reserve"] for x in opened}


def test_the_stream_tells_a_bidder_or_another_member_of_a_reserve_not_its_amount(api: Api) -> None:
    reserved_listing(api)
    for actor in ("huawei", "zte"):
        events = stream(api, actor)
        assert reserves_seen(events) == {"L-R": "hidden"}, actor  # the opening is shown, the amount is not
        assert RESERVE not in str(events), actor
        trail = api.get("/v1/trail", actor, asset="CN/patent/ZL201810012345.6").json()["events"]
        assert [e["data"] for e in events if e["event"] == "Listing.Opened"] == [
            e for e in trail if e["type"] == "Listing.Opened"
        ]  # as the trail shows it


def test_the_stream_shows_the_reserve_to_the_seller_the_operator_and_auditors(api: Api) -> None:
    reserved_listing(api)
    for actor in ("fudan-univ", "operator", "auditor"):
        assert reserves_seen(stream(api, actor)) == {"L-R": RESERVE}, actor


def test_the_stream_shows_what_the_trail_shows(api: Api) -> None:
    sealed_listing(api)
    trail = api.get("/v1/trail", "zte", asset="CN/patent/ZL201810012345.6").json()["events"]
    positions = {e["position"] for e in trail}
    assert [e["data"] for e in stream(api, "zte") if e["data"]["position"] in positions] == trail


def test_after_and_last_event_id_resume_where_the_client_left_off(api: Api) -> None:
    sealed_listing(api)
    everything = stream(api, "operator")
    middle = int(everything[len(everything) // 2]["id"])
    rest = [e["id"] for e in everything if int(e["id"]) > middle]
    assert [e["id"] for e in stream(api, "operator", after=middle)] == rest
    # A reconnecting EventSource sends its original URL and the last id it saw: the id wins.
    r = api.client.get("/v1/events", headers=api.as_("operator") | {"Last-Event-ID": str(middle)},
                       params={"after": 0, "follow": "false"})  # fmt: skip
    assert [e["id"] for e in read_events(r.text)] == rest
    assert stream(api, "operator", after=api.digest()["position"]) == []


def test_a_bad_resume_point_is_a_problem_naming_it(api: Api) -> None:
    problem(api.get("/v1/events", after=-1), 400, "InvalidInput")
    r = api.client.get("/v1/events", headers=api.as_("operator") | {"Last-Event-ID": "seven"})
    assert problem(r, 400, "InvalidInput")["field"] == "Last-Event-ID"
    problem(api.client.get("/v1/events", params={"follow": "false"}), 401, "Unauthenticated")


def test_a_following_stream_ends_at_its_next_poll_once_the_token_is_revoked(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ipledger import api as served

    monkeypatch.setattr(served, "POLL_SECONDS", 0.05)
    sealed_listing(api)

    def in_another_process(command: str, args: dict[str, Any]) -> None:  # say the operator's CLI
        with _ledger(api.url) as ledger:
            ledger.pinned_now = NOW
            ledger.execute(command, args)

    added = threading.Timer(
        0.3, in_another_process, ("member.add", {"id": "acme", "name": "Acme", "kind": "enterprise", "country": "CN"})
    )
    revoked = threading.Timer(1.0, in_another_process, ("token.revoke", {"token": api.ids["huawei"]}))
    added.start()
    revoked.start()
    try:
        r = api.get("/v1/events", "huawei")  # follows: it ends only because the token was revoked
    finally:
        added.join()
        revoked.join()
    events = read_events(r.text)
    assert events[-1]["event"] == "error" and events[-1]["data"]["title"] == "Unauthenticated"
    # What came in while it followed was sent; the revocation itself is read by no poll of the token's.
    assert events[-2]["event"] == "Member.Admitted" and events[-2]["data"]["data"]["member_id"] == "acme"


def test_a_quiet_following_stream_sends_keep_alive_comments(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from ipledger import api as served

    monkeypatch.setattr(served, "POLL_SECONDS", 0.02)
    monkeypatch.setattr(served, "KEEPALIVE_SECONDS", 0.05)
    timer = threading.Timer(0.5, lambda: api.post("token.revoke", {"token": api.ids["zte"]}))
    timer.start()
    try:
        r = api.get("/v1/events", "zte", after=api.digest()["position"])
    finally:
        timer.join()
    assert ": keep-alive\n\n" in r.text


def test_a_member_never_sees_tokens_events_and_the_operator_does(api: Api) -> None:
    sealed_listing(api)  # the market's members act with tokens issued in the log
    assert any(e["event"] == "Token.Issued" for e in stream(api, "operator"))
    huawei = stream(api, "huawei")
    assert huawei and not any(e["event"].startswith("Token.") for e in huawei)
    assert "secret_sha256" not in str(huawei)
