"""Rebuild and catch-up are one fold with two backends (projections/base.py): the rows a
rebuild writes into fresh tables are the rows a page-by-page catch-up wrote, on SQLite and
on PostgreSQL, and the trail answers the same from its (key, aggregate) pairs."""

from __future__ import annotations

import json
import sqlite3
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.generator import generate
from ipledger.projections.base import MemoryRows, SqlRows, bind_processor
from ipledger.projections.tables import (
    AggregateId,
    assets_table,
    bids_table,
    metadata,
    naive_utc,
    tracking_table,
    trail_keys_table,
)
from ipledger.service import Ledger

MARKET = 1200  # events of a generated market: members, listings, bids, trades, licences, pledges


def read_models(ledger: Ledger) -> dict[str, list[tuple[Any, ...]]]:
    """Every read model's rows, in primary-key order."""
    out = {}
    with ledger.exchange.engine.connect() as conn:
        for table in metadata.sorted_tables:
            if table is not tracking_table:
                out[table.name] = [tuple(r) for r in conn.execute(sa.select(table).order_by(*table.primary_key))]
    return out


def caught_up_page_by_page(url: str) -> Ledger:
    """A market whose read models followed it a few commands at a time (the SQL backend)."""
    ledger = Ledger(url)
    lines = list(generate(MARKET, seed=5))
    for start in range(0, len(lines), 97):
        ledger.import_lines(lines[start : start + 97])
        ledger.read_models.catch_up()
    return ledger


def test_a_rebuild_writes_the_rows_catch_up_wrote(store_url: str) -> None:
    ledger = caught_up_page_by_page(store_url)
    try:
        live = read_models(ledger)
        assert len(live["rm_bids"]) > 50 and len(live["rm_trail_keys"]) > 100
        ledger.rebuild()
        assert read_models(ledger) == live
        assert all(row["behind"] == 0 for row in ledger.projection_status())
    finally:
        ledger.close()


def test_verify_finds_the_live_read_models_equal_to_a_fresh_fold(store_url: str) -> None:
    ledger = caught_up_page_by_page(store_url)
    try:
        assert ledger.read_models.reconcile() == []
        assert ledger.verify()["ok"] is True
    finally:
        ledger.close()


def test_the_trail_answers_the_same_after_a_rebuild(store_url: str) -> None:
    ledger = caught_up_page_by_page(store_url)
    try:
        with ledger.exchange.engine.connect() as conn:
            refs = [r[0] for r in conn.execute(sa.text("SELECT ref FROM rm_assets ORDER BY ref LIMIT 5"))]
            members = [r[0] for r in conn.execute(sa.text("SELECT member_id FROM rm_members ORDER BY 1 LIMIT 5"))]
        before = [ledger.trail(asset=ref) for ref in refs] + [ledger.trail(member=m) for m in members]
        ledger.rebuild()
        after = [ledger.trail(asset=ref) for ref in refs] + [ledger.trail(member=m) for m in members]
        assert after == before
        assert sum(len(t["events"]) for t in before) > 20
    finally:
        ledger.close()


def _bid_index_keys(conn: sa.Connection) -> dict[str, tuple[str, set[str]]]:
    """Each bid index's listing and the trail's keys for it (the trail keeps a listing's
    asset by listing id for its bid indexes: readmodels.TrailProjection._created_keys)."""
    indexed = conn.execute(
        sa.text("SELECT originator_id, state FROM ipledger_events WHERE topic = 'domain.members:BidIndex.Indexed'")
    ).all()
    keys: dict[bytes, set[str]] = {}
    for key, aggregate in conn.execute(sa.select(trail_keys_table.c.key, trail_keys_table.c.aggregate_id)):
        keys.setdefault(aggregate.bytes, set()).add(key)
    return {str(uuid.UUID(bytes=oid)): (json.loads(st)["listing_id"], keys.get(oid, set())) for oid, st in indexed}


def test_each_bid_index_is_about_its_own_listings_asset(sqlite_url: str) -> None:
    ledger = Ledger(sqlite_url)
    try:
        ledger.import_lines(list(generate(MARKET, seed=5)))
        ledger.rebuild()
        with ledger.exchange.engine.connect() as conn:
            asset_of = dict(conn.execute(sa.text("SELECT listing_id, asset FROM rm_listings")).all())
            found = _bid_index_keys(conn)
        assert len(set(asset_of.values())) > 3 and len({listing for listing, _ in found.values()}) > 3
        assert all(keys == {f"asset:{asset_of[listing]}"} for listing, keys in found.values())
    finally:
        ledger.close()


def test_a_bid_index_before_its_listing_does_not_keep_later_ones_from_its_asset(sqlite_url: str) -> None:
    """A re-chained export may hold a bid index before its listing: that one has no asset
    yet, but the listing's later bid indexes do (the trail does not remember "none")."""
    from ipledger.ledger.chain import read_log
    from ipledger.projections.readmodels import TrailProjection
    from ipledger.projections.runner import Replay

    ledger = Ledger(sqlite_url)
    try:
        ledger.import_lines(list(generate(MARKET, seed=5)))
        with ledger.exchange.engine.connect() as conn:
            log = [e for page in read_log(conn, "ipledger_events") for e in page]
        indexes = [e for e in log if e[3] == "domain.members:BidIndex.Indexed"]
        listing = indexes[0][4]["listing_id"]
        mine = [e for e in indexes if e[4]["listing_id"] == listing]
        assert len(mine) >= 2
        early = mine[0]
        log.remove(early)
        log.insert(0, early)  # before the listing's Opened
        engine = sa.create_engine(f"sqlite:///{sqlite_url.removeprefix('sqlite:///')}.scratch")
        with engine.begin() as conn:
            replay = Replay(conn, [TrailProjection()])
            replay(log)
            replay.load()
            keys = _bid_index_keys_of(conn, [e[1].uuid.bytes for e in mine])
        engine.dispose()
        ledger.read_models.catch_up()
        with ledger.exchange.engine.connect() as conn:
            query = sa.text("SELECT asset FROM rm_listings WHERE listing_id = :listing")
            asset = conn.execute(query, {"listing": listing}).scalar()
        assert keys[early[1].uuid.bytes] == set()  # before its listing: nothing to be about yet
        assert all(keys[e[1].uuid.bytes] == {f"asset:{asset}"} for e in mine[1:])
    finally:
        ledger.close()


def _bid_index_keys_of(conn: sa.Connection, aggregates: list[bytes]) -> dict[bytes, set[str]]:
    keys: dict[bytes, set[str]] = {a: set() for a in aggregates}
    for key, aggregate in conn.execute(sa.select(trail_keys_table.c.key, trail_keys_table.c.aggregate_id)):
        if aggregate.bytes in keys:
            keys[aggregate.bytes].add(key)
    return keys


def test_a_trail_from_before_the_pairs_is_rebuilt_and_its_old_table_dropped(sqlite_url: str) -> None:
    ledger = caught_up_page_by_page(sqlite_url)
    member = "uni-1"
    answer = ledger.trail(member=member)
    ledger.close()
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:  # as the previous version left it: its table, its fingerprint
        conn.execute(sa.text("CREATE TABLE rm_trail_aggregates (aggregate_id VARCHAR(36), trail_keys TEXT)"))
        conn.execute(sa.text("UPDATE rm_projections SET fingerprint = 'earlier' WHERE name = 'trail'"))
    reopened = Ledger(sqlite_url)
    try:
        assert reopened.trail(member=member) == answer
        assert "rm_trail_aggregates" not in sa.inspect(engine).get_table_names()
    finally:
        reopened.close()
        engine.dispose()


def test_memory_rows_update_and_select_as_sql_rows_do(sqlite_url: str) -> None:
    engine = sa.create_engine(sqlite_url)
    bids = (bids_table,)
    bid = {"bidder": "huawei", "amount": "100.00", "amount_minor": 10000, "position": 1}
    results = []
    for backend in ("sql", "memory"):
        with engine.begin() as conn:
            bids_table.drop(conn, checkfirst=True)
            bids_table.create(conn)
            rows = SqlRows(conn, bids) if backend == "sql" else MemoryRows(conn, bids, kept=bids)
            for i, listing in enumerate(["L-a", "L-a", "L-b"]):
                rows.add(bids_table, **bid, placed=_at(i), bid_id=f"B-{i}", listing_aggregate=listing, state="live")
            rows.update(bids_table, {"listing_aggregate": "L-a", "state": "live", "bid_id": "B-1"}, state="won")
            rows.update(bids_table, {"listing_aggregate": "L-a", "state": "live"}, state="lost")
            rows.update(bids_table, {"bid_id": "B-2"}, state="withdrawn")  # by the key alone
            rows.update(bids_table, {"bid_id": "B-9"}, state="won")  # no such bid: nothing changes
            rows.update(bids_table, {"listing_aggregate": "L-b"}, bidder="zte")  # by one other column
            seen = sorted(rows.select(bids_table, ("bid_id", "state"), listing_aggregate="L-a"))
            seen += rows.select(bids_table, ("bid_id", "bidder", "state"), bid_id="B-2")
            seen += rows.select(bids_table, ("bid_id",), state="lost")
            seen += rows.select(bids_table, ("bid_id",), listing_aggregate="L-c")
            if isinstance(rows, MemoryRows):
                rows.finish()
            else:
                rows.flush()
            stored = [tuple(r) for r in conn.execute(sa.select(bids_table).order_by(bids_table.c.bid_id))]
            results.append((seen, stored))
    assert results[0] == results[1]
    assert results[0][0] == [("B-0", "lost"), ("B-1", "won"), ("B-2", "zte", "withdrawn"), ("B-0",)]
    engine.dispose()


def _fresh_table(conn: sa.Connection, table: sa.Table) -> None:
    table.drop(conn, checkfirst=True)
    table.create(conn)


def _rowid_order(conn: sa.Connection, table: sa.Table, column: str) -> list[Any]:
    return [r[0] for r in conn.execute(sa.text(f"SELECT {column} FROM {table.name} ORDER BY rowid"))]


def _temporary_tables(conn: sa.Connection) -> list[str]:
    return [r[0] for r in conn.execute(sa.text("SELECT name FROM temp.sqlite_master WHERE type = 'table'"))]


def test_a_rebuild_on_sqlite_loads_a_table_keyed_off_the_log_in_key_order(sqlite_url: str) -> None:
    """Assets come in log order; their table is keyed by ref: the rows go in sorted by ref
    (through a temporary heap), which a b-tree takes faster than rows at random places."""
    engine = sa.create_engine(sqlite_url)
    refs = ["US/patent/9000003", "CN/patent/ZL201810012345.6", "US/patent/9000001", "CN/trademark/TM-2"]
    with engine.begin() as conn:
        _fresh_table(conn, assets_table)
        rows = MemoryRows(conn, (assets_table,), kept=())
        for position, ref in enumerate(refs, start=1):
            rows.add(assets_table, **_asset(ref, position))
            rows.flush()  # a page each
        assert _rowid_order(conn, assets_table, "ref") == []  # waiting in the heap
        rows.finish()
        assert _rowid_order(conn, assets_table, "ref") == sorted(refs)
        assert _temporary_tables(conn) == []
    engine.dispose()


#: Two aggregates the trail's keys name.
_A, _B = uuid.uuid5(uuid.NAMESPACE_URL, "a"), uuid.uuid5(uuid.NAMESPACE_URL, "b")


def _stored_keys(conn: sa.Connection) -> list[str]:
    return sorted(r[0] for r in conn.execute(sa.select(trail_keys_table.c.key)))


def test_memory_rows_select_sees_the_rows_a_heap_holds(sqlite_url: str) -> None:
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:
        _fresh_table(conn, trail_keys_table)
        rows = MemoryRows(conn, (trail_keys_table,), kept=())
        rows.add(trail_keys_table, key="member:icbc-sh", aggregate_id=_A)
        rows.add(trail_keys_table, key="asset:CN/patent/ZL201810012345.6", aggregate_id=_A)
        assert sorted(rows.select(trail_keys_table, ("key",), aggregate_id=_A)) == [
            ("asset:CN/patent/ZL201810012345.6",),
            ("member:icbc-sh",),
        ]
        rows.add(trail_keys_table, key="member:huawei", aggregate_id=_B)
        rows.finish()
        assert _temporary_tables(conn) == []
        assert _stored_keys(conn) == ["asset:CN/patent/ZL201810012345.6", "member:huawei", "member:icbc-sh"]
    engine.dispose()


def test_two_memory_rows_on_one_connection_keep_their_own_heaps(sqlite_url: str) -> None:
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:
        _fresh_table(conn, trail_keys_table)
        first, second = (MemoryRows(conn, (trail_keys_table,), kept=()) for _ in range(2))
        first.add(trail_keys_table, key="member:icbc-sh", aggregate_id=_A)
        second.add(trail_keys_table, key="member:huawei", aggregate_id=_B)
        first.flush()
        second.flush()
        first.finish()
        second.finish()
        assert _stored_keys(conn) == ["member:huawei", "member:icbc-sh"]
        assert _temporary_tables(conn) == []
    engine.dispose()


def _kept_bids_as_written(sqlite_url: str, bid_ids: list[Any]) -> list[Any]:
    """Bids added in this order to a kept table, as `finish` wrote them (rowid order)."""
    engine = sa.create_engine(sqlite_url)
    bid = {"bidder": "huawei", "amount": "100.00", "amount_minor": 10000, "listing_aggregate": "L-a", "state": "live"}
    with engine.begin() as conn:
        _fresh_table(conn, bids_table)
        rows = MemoryRows(conn, (bids_table,), kept=(bids_table,))
        for position, bid_id in enumerate(bid_ids, start=1):
            rows.add(bids_table, **bid, bid_id=bid_id, placed=_at(position), position=position)
        rows.finish()
        written = _rowid_order(conn, bids_table, "bid_id")
    engine.dispose()
    return written


def test_kept_rows_are_written_in_key_order(sqlite_url: str) -> None:
    assert _kept_bids_as_written(sqlite_url, ["B-c", "B-a", "B-b"]) == ["B-a", "B-b", "B-c"]


def test_kept_rows_whose_keys_do_not_compare_are_written_as_added(sqlite_url: str) -> None:
    # an int beside a str: no order between them (SQLite stores the int as text)
    assert _kept_bids_as_written(sqlite_url, ["B-2", 1]) == ["B-2", "1"]


def _asset(ref: str, position: int) -> dict[str, Any]:
    aggregate = str(uuid.uuid5(uuid.NAMESPACE_URL, ref))
    return {"ref": ref, "aggregate_id": aggregate, "title": "Invention", "expires_on": None,
            "registered_on": date(2018, 1, 3), "position": position}  # fmt: skip


def _at(minute: int) -> datetime:
    return datetime(2025, 3, 5, 10, minute)


# --------------------------------------------------------------------------- naive UTC


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        (datetime(2025, 3, 5, 10, 0, tzinfo=UTC), datetime(2025, 3, 5, 10, 0)),
        (datetime(2025, 1, 5, 10, 0, tzinfo=ZoneInfo("Europe/London")), datetime(2025, 1, 5, 10, 0)),  # +00:00
        (datetime(2025, 7, 5, 10, 0, tzinfo=ZoneInfo("Europe/London")), datetime(2025, 7, 5, 9, 0)),  # +01:00
        (datetime(2025, 3, 5, 18, 0, tzinfo=timezone(timedelta(hours=8))), datetime(2025, 3, 5, 10, 0)),
        (datetime(2025, 3, 5, 10, 0), datetime(2025, 3, 5, 10, 0)),  # naive: already UTC
        (datetime(2025, 10, 26, 1, 30, fold=1, tzinfo=ZoneInfo("Europe/London")), datetime(2025, 10, 26, 1, 30)),
    ],
)
def test_a_read_model_keeps_the_utc_time_of_any_zone(value: datetime, stored: datetime) -> None:
    assert naive_utc(value) == stored and naive_utc(value).tzinfo is None and naive_utc(value).fold == 0


def test_a_read_model_keeps_the_utc_time_of_an_event_as_pydantic_reads_it() -> None:
    """An event's time is parsed by pydantic, whose UTC is a zone of its own, not datetime.UTC."""
    from ipledger.ledger.codec import decode_event

    admitted = decode_event(
        "domain.members:Member.Admitted",
        {"timestamp": "2015-01-05T09:00:39Z", "originator_topic": "domain.members:Member",
         "member_id": "icbc-sh", "name": "ICBC Shanghai", "kind": "bank", "country": "CN"},
        uuid.uuid4(),
        1,
    )  # fmt: skip
    assert admitted.timestamp.tzinfo is not UTC
    assert naive_utc(admitted.timestamp) == datetime(2015, 1, 5, 9, 0, 39)


# --------------------------------------------------------------------------- bind processors

_READ_MODEL_COLUMNS = [
    (table.name, column.name, column.type)
    for table in metadata.sorted_tables
    for column in table.columns
    if isinstance(column.type, (sa.DateTime, sa.Date, AggregateId))
]
_VALUES = {
    sa.DateTime: st.one_of(st.datetimes(timezones=st.none() | st.just(UTC)), st.dates()),
    sa.Date: st.one_of(st.dates(), st.datetimes()),
    AggregateId: st.uuids(),
}


@pytest.mark.parametrize(("table", "column", "column_type"), _READ_MODEL_COLUMNS)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_a_read_model_value_is_stored_on_sqlite_as_sqlalchemy_stores_it(
    table: str, column: str, column_type: Any, data: st.DataObject
) -> None:
    """`insert_rows`' processors (projections.base.bind_processor) store every date, time
    and aggregate id exactly as SQLAlchemy's own processor does: the same type and value
    in SQLite, so SQLAlchemy's queries compare them as they always did."""
    engine = sa.create_engine("sqlite://")
    dialect = engine.dialect
    kind = next(k for k in _VALUES if isinstance(column_type, k))
    value = data.draw(_VALUES[kind])
    ours = bind_processor(column_type, dialect)
    theirs = column_type.dialect_impl(dialect).bind_processor(dialect)
    assert ours is not None and theirs is not None
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (n INTEGER, v)")
    db.executemany("INSERT INTO t VALUES (?, ?)", [(1, ours(value)), (2, theirs(value))])
    (a, b) = db.execute("SELECT typeof(v), v FROM t ORDER BY n").fetchall()
    assert a == b, f"{table}.{column}"
