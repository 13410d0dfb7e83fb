"""The Exchange's aggregate cache: commands read aggregates from memory, never stale ones.

A process keeps the aggregates its commands loaded, current as of the log head it last
saw. These tests hold it to the rules that make that safe: another writer's events are
seen at once, a rejected command leaves nothing of itself in the cache, and an id made
optimistically (left to the store's unique index) is still refused when it exists.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from ipledger.domain.errors import AssetPledged, ClockWentBackwards, DuplicateId, MemberSuspended
from ipledger.domain.members import Member
from ipledger.ledger import recorder as recorder_module
from ipledger.service import Ledger
from tests.conftest import PATENT, PATENT_2, T0, Market


@pytest.fixture
def other(market: Market) -> Iterator[Market]:
    """A second process's view of the same store: its own Exchange and cache."""
    m = Market(Ledger(market.ledger.url))
    yield m
    m.ledger.close()


def test_another_writers_suspension_is_seen_by_the_next_command(market: Market, other: Market) -> None:
    market.do("asset.assign", ref=PATENT, to=["huawei"])  # huawei is now in this process's cache
    other.do("member.suspend", id="huawei", reason="sanctions review")
    with pytest.raises(MemberSuspended):  # huawei, suspended, may no longer act for itself
        market.do("asset.assign", ref=PATENT, to=["zte"], actor="huawei")
    assert market.ledger.owner(PATENT)["owners"] == [{"member": "huawei", "share": "1"}]


def test_another_writers_assignment_is_seen_by_the_next_command(market: Market, other: Market) -> None:
    market.do("asset.assign", ref=PATENT, to=["huawei"])
    other.do("asset.assign", ref=PATENT, to=["zte"])
    outcome = market.do("asset.assign", ref=PATENT, to=["byd"], actor="zte")
    assert outcome["owners"] == [{"member": "byd", "share": "1"}]


def test_a_rejected_command_leaves_no_change_in_the_cache(market: Market) -> None:
    pledge = market.do(
        "pledge.register", ref=PATENT, pledgee="icbc-sh", amount="5000000.00", currency="CNY", end="2030-12-31"
    )["id"]
    with pytest.raises(AssetPledged):  # the assignment was decided, then refused for want of consent
        market.do("asset.assign", ref=PATENT, to=["huawei"])
    consent = market.do("pledge.consent", pledge=pledge, act="assignment", actor="icbc-sh")["id"]
    market.do("asset.assign", ref=PATENT, to=["zte"], consent=[consent])
    fresh = Ledger(market.ledger.url)  # replays the asset from the store
    try:
        assert fresh.exchange.asset(PATENT).owners == {"zte": "1"}
        assert "huawei" not in json.dumps(fresh.title(PATENT))  # the refused assignment was never written
        assert fresh.verify()["ok"]
    finally:
        fresh.close()


def test_an_existing_member_id_is_refused_when_the_cache_does_not_know_it(market: Market, other: Market) -> None:
    other.do("member.add", id="catl", name="CATL", kind="enterprise", country="CN")
    head = market.ledger.exchange.recorder.max_notification_id()
    with pytest.raises(DuplicateId, match="id: member catl already exists"):
        market.do("member.add", id="catl", name="CATL again", kind="enterprise", country="CN")
    assert market.ledger.exchange.recorder.max_notification_id() == head


def test_an_existing_asset_ref_is_refused_in_a_fresh_process(market: Market) -> None:
    fresh = Ledger(market.ledger.url)
    try:
        with pytest.raises(DuplicateId, match=f"ref: asset {PATENT} already exists"):
            fresh.execute("asset.register", {"ref": PATENT, "title": "Again", "owner": ["sjtu"]}, now=T0)
    finally:
        fresh.close()


def test_the_clock_refuses_a_time_before_this_processs_last_write(market: Market) -> None:
    market.do("member.add", id="catl", name="CATL", kind="enterprise", country="CN", at="2026-03-05T09:00:00Z")
    with pytest.raises(ClockWentBackwards):
        market.do("member.add", id="nio", name="NIO", kind="enterprise", country="CN", at="2026-03-04T09:00:00Z")


def test_the_clock_refuses_a_time_before_another_writers_last_write(market: Market, other: Market) -> None:
    market.do("member.add", id="catl", name="CATL", kind="enterprise", country="CN", at="2026-03-05T09:00:00Z")
    other.do("member.add", id="nio", name="NIO", kind="enterprise", country="CN", at="2026-03-09T09:00:00Z")
    with pytest.raises(ClockWentBackwards, match="2026-03-09T09:00:00Z"):
        market.do("member.add", id="xpeng", name="XPeng", kind="enterprise", country="CN", at="2026-03-06T09:00:00Z")


def _fresh(market: Market) -> Market:
    """Another process: nothing of the market is in its cache."""
    return Market(Ledger(market.ledger.url), market.clock)


def _trade_t1_and_a_second_patent(market: Market) -> None:
    """Trade T-1 (PATENT sold at a fixed price) and PATENT_2 registered, free to list."""
    market.do("asset.register", ref=PATENT_2, title="Battery separator", owner=["fudan-univ"], effective="2019-05-10")
    market.do(
        "listing.open", ref=PATENT, type="assignment", mechanism="fixed", currency="CNY", ask="100.00",
        closes="2026-04-01T00:00:00Z", id="L1",
    )  # fmt: skip
    market.do("bid.place", listing="L1", bidder="huawei", amount="100.00", trade_id="T-1")


def test_a_listing_closing_unsold_refuses_a_trade_id_that_exists(market: Market) -> None:
    _trade_t1_and_a_second_patent(market)
    market.do(
        "listing.open", ref=PATENT_2, type="assignment", mechanism="english", currency="CNY", ask="100.00",
        closes="2026-04-01T00:00:00Z", id="L2",
    )  # fmt: skip
    fresh = _fresh(market)
    try:
        head = fresh.ledger.exchange.recorder.max_notification_id()
        with pytest.raises(DuplicateId, match="trade_id: trade T-1 already exists"):
            fresh.do("listing.close", listing="L2", trade_id="T-1", at="2026-05-01T00:00:00Z")
        assert fresh.ledger.exchange.recorder.max_notification_id() == head
    finally:
        fresh.ledger.close()


def test_a_duplicate_bid_id_is_refused_as_duplicate_before_any_later_rule(market: Market) -> None:
    market.do(
        "listing.open", ref=PATENT, type="assignment", mechanism="english", currency="CNY", ask="100.00",
        increment="10.00", closes="2026-04-01T00:00:00Z", id="L1",
    )  # fmt: skip
    market.do("bid.place", listing="L1", bidder="huawei", amount="200.00", id="B1")
    fresh = _fresh(market)
    try:  # a lower amount would also be BidTooLow; the id is checked first, as in a checked command
        with pytest.raises(DuplicateId, match="id: bid B1 already exists"):
            fresh.do("bid.place", listing="L1", bidder="zte", amount="150.00", id="B1")
    finally:
        fresh.ledger.close()


def test_a_closed_ledger_is_freed_with_its_connections(store_url: str) -> None:
    """Nothing process-wide keeps a closed ledger's recorder (and so its engine and pool) alive."""
    import gc
    import weakref

    recorders = []
    for i in range(3):
        ledger = Ledger(store_url)
        ledger.execute("member.add", {"id": f"m{i}", "name": "M", "kind": "enterprise", "country": "CN"}, now=T0)
        recorders.append(weakref.ref(ledger.exchange.recorder))
        ledger.close()
    del ledger
    gc.collect()
    assert [r() for r in recorders] == [None, None, None]


def test_an_import_line_closing_unsold_refuses_a_trade_id_that_exists(market: Market) -> None:
    import orjson

    from ipledger.ledger.importer import ImportFailed

    _trade_t1_and_a_second_patent(market)

    def line(cid: str, command: str, at: str, **args: str) -> bytes:
        return orjson.dumps({"command": command, "args": args, "command_id": cid, "at": at})

    lines = [
        line(
            "c-open", "listing.open", "2026-03-03T09:00:00Z", ref=PATENT_2, type="assignment",
            mechanism="english", currency="CNY", ask="100.00", closes="2026-04-01T00:00:00Z", id="L2",
        ),
        line("c-close", "listing.close", "2026-05-01T00:00:00Z", listing="L2", trade_id="T-1"),
    ]  # fmt: skip
    fresh = _fresh(market)
    try:
        with pytest.raises(ImportFailed, match="line 2: trade_id: trade T-1 already exists") as failed:
            fresh.ledger.import_lines(lines)
        assert failed.value.name == "DuplicateId" and failed.value.applied == 1
    finally:
        fresh.ledger.close()


def test_a_command_after_this_processs_own_write_skips_its_first_read(
    market: Market, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cache knows where this process left the log, and a command id made here is new:
    no preflight read (the write itself checks the head, see the tests above)."""
    market.do("asset.assign", ref=PATENT, to=["huawei"])
    recorder = market.ledger.exchange.recorder
    reads: list[str | None] = []
    preflight = recorder.preflight_since
    monkeypatch.setattr(recorder, "preflight_since", lambda cid, known: reads.append(cid) or preflight(cid, known))
    market.do("asset.assign", ref=PATENT, to=["zte"], actor="huawei")
    assert reads == []
    market.do("asset.assign", ref=PATENT, to=["byd"], actor="zte", command_id="given-1")
    assert reads == ["given-1"]  # a caller's id may be a repeat: its record is read first


def test_a_write_lands_after_another_writers_events_on_what_it_did_not_read(
    market: Market, other: Market, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Decided on the cache (current where this process last wrote), a command lands after
    the other writer's events when they touch nothing it read: it is not decided again.
    A process that has seen no other writer writes only right after its own last event:
    its first guess after another's write is decided again, and checked from then on."""
    market.do("asset.assign", ref=PATENT, to=["huawei"])
    recorder = market.ledger.exchange.recorder
    reads: list[str | None] = []
    preflight = recorder.preflight_since
    monkeypatch.setattr(recorder, "preflight_since", lambda cid, known: reads.append(cid) or preflight(cid, known))
    other.do("member.add", id="catl", name="CATL", kind="enterprise", country="CN")
    market.do("asset.assign", ref=PATENT, to=["zte"], actor="huawei")
    assert len(reads) == 1  # the first guess past another's write: read, decided again
    other.do("member.add", id="nio", name="NIO", kind="enterprise", country="CN")
    market.do("asset.assign", ref=PATENT, to=["byd"], actor="zte")
    assert len(reads) == 1  # no read before the write, and no second attempt after it
    assert market.ledger.exchange.cache.head == recorder.max_notification_id()  # the cache is still current
    assert [o["member"] for o in market.ledger.owner(PATENT)["owners"]] == ["byd"]


def test_a_write_past_another_writers_events_drops_their_aggregates_from_the_cache(
    market: Market, other: Market
) -> None:
    market.do("asset.assign", ref=PATENT, to=["huawei"])  # huawei is now in this process's cache
    other.do("member.add", id="nio", name="NIO", kind="enterprise", country="CN")
    market.do("member.add", id="xpeng", name="XPeng", kind="enterprise", country="CN")  # its guesses are checked now
    other.do("member.suspend", id="huawei", reason="sanctions review")
    market.do("member.add", id="catl", name="CATL", kind="enterprise", country="CN")  # lands past the suspension
    cache = market.ledger.exchange.cache
    assert cache.head == market.ledger.exchange.recorder.max_notification_id()  # current, past it
    assert Member.create_id("huawei") not in cache.aggregates  # but not with huawei as it held it
    with pytest.raises(MemberSuspended):  # brought forward: suspended
        market.do("asset.assign", ref=PATENT, to=["zte"], actor="huawei")


def sees_another_writer(market: Market, other: Market) -> None:
    """`other` writes, then `market`: its guess had to follow its own last event, so it is
    decided again; its next guesses are checked past others' events (Exchange.submit)."""
    other.do("member.add", id="cas-lab", name="CAS Lab", kind="research_institute", country="CN")
    market.do("member.add", id="sjtu-lab", name="SJTU Lab", kind="research_institute", country="CN")
    assert market.ledger.exchange.others_writing > 0


def test_a_write_is_decided_again_when_others_wrote_too_many_events_to_check(
    market: Market, other: Market, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recorder_module, "WRITTEN_SINCE_LIMIT", 2)
    market.do("asset.assign", ref=PATENT, to=["huawei"])
    sees_another_writer(market, other)
    for member in ("catl", "nio", "xpeng"):
        other.do("member.add", id=member, name=member.upper(), kind="enterprise", country="CN")
    recorder = market.ledger.exchange.recorder
    writes: list[object] = []
    insert_events = recorder.insert_events
    monkeypatch.setattr(recorder, "insert_events", lambda *a, **k: writes.append(a) or insert_events(*a, **k))
    market.do("asset.assign", ref=PATENT, to=["zte"], actor="huawei")
    assert len(writes) == 2  # the guess did not land: decided again, and written
    assert [o["member"] for o in market.ledger.owner(PATENT)["owners"]] == ["zte"]
    assert market.ledger.verify()["ok"]


def test_an_id_found_free_is_refused_when_another_writer_takes_it_before_the_write(
    market: Market, other: Market, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A listing closing unsold looks its trade id up while it is decided; if another
    writer records that trade before the write, the close is decided again and refused,
    as it would have been on the log as it is."""
    sees_another_writer(market, other)
    market.do("asset.register", ref=PATENT_2, title="Battery separator", owner=["fudan-univ"], effective="2019-05-10")
    market.do(
        "listing.open", ref=PATENT_2, type="assignment", mechanism="english", currency="CNY", ask="100.00",
        closes="2026-04-01T00:00:00Z", id="L2",
    )  # fmt: skip
    market.do(
        "listing.open", ref=PATENT, type="assignment", mechanism="fixed", currency="CNY", ask="100.00",
        closes="2026-06-01T00:00:00Z", id="L3",
    )  # fmt: skip
    recorder = market.ledger.exchange.recorder
    insert_events = recorder.insert_events

    def the_other_writer_first(*args: object, **kwargs: object) -> object:
        monkeypatch.setattr(recorder, "insert_events", insert_events)
        other.do("bid.place", listing="L3", bidder="zte", amount="100.00", trade_id="T-9", at="2026-04-15T00:00:00Z")
        return insert_events(*args, **kwargs)

    monkeypatch.setattr(recorder, "insert_events", the_other_writer_first)
    with pytest.raises(DuplicateId, match="trade_id: trade T-9 already exists"):
        market.do("listing.close", listing="L2", trade_id="T-9", at="2026-05-01T00:00:00Z")
    assert market.ledger.exchange.listing("L2").status == "open"


def test_a_command_read_first_is_decided_again_when_another_writer_changes_what_it_read_before_the_write(
    market: Market, other: Market, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A caller's command id: the command reads the log first, so its decision is fresh,
    but another writer may still write between that read and its write. The write checks
    that window as a guess's is checked: huawei, suspended in it, may no longer act."""
    market.do("asset.assign", ref=PATENT, to=["huawei"])
    recorder = market.ledger.exchange.recorder
    insert_events = recorder.insert_events

    def the_other_writer_first(*args: object, **kwargs: object) -> object:
        monkeypatch.setattr(recorder, "insert_events", insert_events)
        other.do("member.suspend", id="huawei", reason="sanctions review")
        return insert_events(*args, **kwargs)

    monkeypatch.setattr(recorder, "insert_events", the_other_writer_first)
    with pytest.raises(MemberSuspended):
        market.do("asset.assign", ref=PATENT, to=["zte"], actor="huawei", command_id="c-assign-zte")
    assert market.ledger.owner(PATENT)["owners"] == [{"member": "huawei", "share": "1"}]


def test_a_first_read_that_finds_another_writers_events_drops_only_their_aggregates(
    market: Market, other: Market, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first read (a caller's command id) returns the aggregates written since the
    cache's head: those are brought forward from the store, the rest stay as held."""
    market.do("asset.assign", ref=PATENT, to=["huawei"])  # PATENT and the members held, current
    recorder = market.ledger.exchange.recorder
    loaded: list[object] = []
    select_events = recorder.select_events
    monkeypatch.setattr(
        recorder,
        "select_events",
        lambda *a, **k: loaded.append(a[0] if a else k["originator_id"]) or select_events(*a, **k),
    )
    other.do("member.suspend", id="byd", reason="sanctions review")
    market.do("asset.assign", ref=PATENT, to=["zte"], actor="huawei", command_id="c-assign-zte")
    assert loaded == []  # nothing it holds moved: huawei, PATENT and zte not read again
    other.do("member.suspend", id="sjtu", reason="sanctions review")
    other.do("member.suspend", id="zte", reason="sanctions review")
    with pytest.raises(MemberSuspended):  # zte was brought forward: suspended
        market.do("asset.assign", ref=PATENT, to=["huawei"], actor="zte", command_id="c-assign-huawei")
    assert loaded == [Member.create_id("zte")]  # sjtu, not needed, was not read either
