"""The read models' tables: pure SQLAlchemy, no domain code.

Queries import only this module (and not the projectors, which import the domain), so
a query against current read models starts fast.
"""

from __future__ import annotations

import functools
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, Column, Date, DateTime, Index, Integer, LargeBinary, MetaData, String, Table, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

metadata = MetaData()

POSITION = BigInteger().with_variant(Integer(), "sqlite")


class AggregateId(TypeDecorator[UUID]):
    """An aggregate's id as the event store keeps it (16 bytes on SQLite, uuid on
    PostgreSQL), so a read model joins the log on it."""

    impl = LargeBinary
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            # Imported here: loading the PostgreSQL dialect costs a SQLite store's every query.
            from sqlalchemy.dialects.postgresql import UUID as PG_UUID

            return dialect.type_descriptor(PG_UUID(as_uuid=True))
        return dialect.type_descriptor(LargeBinary(16))

    def process_bind_param(self, value: UUID | None, dialect: Dialect) -> Any:
        if value is None or dialect.name == "postgresql":
            return value
        return value.bytes

    def process_result_value(self, value: Any, dialect: Dialect) -> UUID | None:
        if value is None or isinstance(value, UUID):
            return value
        return UUID(bytes=bytes(value))


tracking_table = Table(
    "rm_projections",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("position", POSITION, nullable=False),
    # A fingerprint of the projection's table definitions: when the code's tables
    # change, the stored read model is dropped and rebuilt from the log.
    Column("fingerprint", String(64), nullable=False, default=""),
)


assets_table = Table(
    "rm_assets",
    metadata,
    Column("ref", String(100), primary_key=True),
    Column("aggregate_id", String(36), nullable=False, unique=True, index=True),
    Column("title", Text, nullable=False),
    Column("expires_on", Date),
    Column("registered_on", Date, nullable=False),
    Column("position", POSITION, nullable=False),
)


conveyances_table = Table(
    "rm_conveyances",
    metadata,
    Column("position", POSITION, primary_key=True, autoincrement=False),
    Column("asset", String(100), nullable=False),
    Column("seq", POSITION, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("effective", Date, nullable=False),
    Column("recorded", DateTime, nullable=False),
    Column("from_owners", Text, nullable=False),
    Column("to_owners", Text, nullable=False),
    Column("trade", String(64)),
    Index("rm_conveyances_asset", "asset", "effective", "seq"),
)


# Which members a conveyance names as owners: holdings find their assets through it.
conveyance_members_table = Table(
    "rm_conveyance_members",
    metadata,
    Column("member", String(32), primary_key=True),
    Column("asset", String(100), primary_key=True),
    Column("position", POSITION, primary_key=True, autoincrement=False),
)


listings_table = Table(
    "rm_listings",
    metadata,
    Column("listing_id", String(64), primary_key=True),
    Column("aggregate_id", String(36), nullable=False, unique=True, index=True),
    Column("asset", String(100), nullable=False, index=True),
    Column("type", String(16), nullable=False),
    Column("mechanism", String(16), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("sellers", Text, nullable=False),
    Column("opens_at", DateTime, nullable=False),
    Column("closes_at", DateTime, nullable=False),
    Column("ask", String(32)),
    Column("reserve", String(32)),
    Column("increment", String(32)),
    Column("status", String(16), nullable=False, index=True),
    Column("unsold_reason", String(32)),  # why an auction ended unsold (Listing.EndedUnsold)
    Column("trade", String(64)),
    Column("winner", String(32)),
    Column("price", String(32)),
    # The trade a sale struck: whether it settled, and by when it must (a lapse has no event).
    Column("trade_aggregate", String(36), index=True),
    Column("trade_state", String(16)),
    Column("deadline", DateTime),
    Column("position", POSITION, nullable=False),
    # `listings` in opening order, read until its page is full (not every listing sorted).
    Index("rm_listings_opening", "opens_at", "listing_id"),
)


# Who sells each listing: `listings --member` by index (the listing keeps them as JSON).
listing_sellers_table = Table(
    "rm_listing_sellers",
    metadata,
    Column("member", String(32), primary_key=True),
    Column("listing_id", String(64), primary_key=True),
)


bids_table = Table(
    "rm_bids",
    metadata,
    Column("bid_id", String(64), primary_key=True),
    Column("listing_aggregate", String(36), nullable=False),
    Column("bidder", String(32), nullable=False),
    Column("amount", String(32), nullable=False),
    Column("amount_minor", POSITION, nullable=False),
    Column("placed", DateTime, nullable=False),
    Column("state", String(16), nullable=False),
    Column("position", POSITION, nullable=False),
    Index("rm_bids_book", "listing_aggregate", "state", "amount_minor", "position"),
    # A member's live bids (`member show`, its web page): a scan of every bid otherwise.
    Index("rm_bids_bidder", "bidder", "state"),
)


currencies_table = Table(
    "rm_book_currencies",
    metadata,
    Column("listing_aggregate", String(36), primary_key=True),
    Column("currency", String(3), nullable=False),
)


licences_table = Table(
    "rm_licences",
    metadata,
    Column("licence_id", String(64), primary_key=True),
    Column("aggregate_id", String(36), nullable=False, unique=True, index=True),
    Column("asset", String(100), nullable=False, index=True),
    Column("licensee", String(32), nullable=False, index=True),  # a member's licences
    Column("type", String(16), nullable=False),
    Column("territories", Text, nullable=False),
    Column("fields", Text, nullable=False),
    Column("start", Date, nullable=False),
    Column("end", Date, nullable=False),
    Column("sublicensable", String(5), nullable=False),
    Column("parent", String(64)),
    Column("royalty_rate", String(16)),
    Column("lump_sum", String(32)),
    Column("currency", String(3)),
    Column("granted", DateTime, nullable=False),
    Column("position", POSITION, nullable=False),
    Column("status", String(16), nullable=False),
    Column("ended_on", Date),
    Column("ended_recorded", DateTime),
    Column("reason", Text),
)


pledges_table = Table(
    "rm_pledges",
    metadata,
    Column("pledge_id", String(64), primary_key=True),
    Column("aggregate_id", String(36), nullable=False, unique=True, index=True),
    Column("asset", String(100), nullable=False, index=True),
    Column("pledgee", String(32), nullable=False, index=True),
    Column("pledgors", Text, nullable=False),
    Column("amount", String(32)),
    Column("currency", String(3)),
    Column("start", Date, nullable=False),
    Column("end", Date),
    Column("registered", DateTime, nullable=False),
    Column("position", POSITION, nullable=False),
    Column("status", String(16), nullable=False),
    Column("ended_on", Date),
    Column("ended_recorded", DateTime),
    Column("ended_position", POSITION),  # orders an end against a later pledge recorded in the same second
)


# Members as admitted, with their current status: `members`, `member show`.
members_table = Table(
    "rm_members",
    metadata,
    Column("member_id", String(32), primary_key=True),
    Column("aggregate_id", String(36), nullable=False, unique=True, index=True),
    Column("name", Text, nullable=False),
    Column("kind", String(32), nullable=False, index=True),
    Column("country", String(2), nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", Text),
    Column("admitted", DateTime, nullable=False),
    Column("position", POSITION, nullable=False),
)


# Trades as struck and resolved (a lapse has no event: the deadline and the clock tell it).
trades_table = Table(
    "rm_trades",
    metadata,
    Column("trade_id", String(64), primary_key=True),
    Column("aggregate_id", String(36), nullable=False, unique=True, index=True),
    Column("listing_id", String(64), nullable=False),
    Column("asset", String(100), nullable=False, index=True),
    Column("type", String(16), nullable=False),
    Column("sellers", Text, nullable=False),
    Column("buyer", String(32), nullable=False, index=True),
    Column("bid_id", String(64), nullable=False),
    Column("price", String(32), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("struck", DateTime, nullable=False),
    Column("deadline", DateTime, nullable=False),
    Column("state", String(16), nullable=False, index=True),
    Column("payment_ref", Text),
    Column("effective", Date),
    Column("reason", Text),
    Column("resolved", DateTime),
    Column("position", POSITION, nullable=False),
    # `trades` as struck, read until its page is full (not every trade sorted).
    Index("rm_trades_struck", "struck", "trade_id"),
)


# The trail: every event of an aggregate touches the keys its first event named
# (one row per key and aggregate), and an event touches the parties it names itself
# (one row per such key and event). Both keyed for the query, rows in key order.
trail_keys_table = Table(
    "rm_trail_keys",
    metadata,
    Column("key", String(140), primary_key=True),  # "asset:REF" or "member:ID"
    Column("aggregate_id", AggregateId(), primary_key=True),
    Index("rm_trail_keys_aggregate", "aggregate_id"),
    sqlite_with_rowid=False,
)


trail_table = Table(
    "rm_trail",
    metadata,
    Column("key", String(140), primary_key=True),
    Column("position", POSITION, primary_key=True, autoincrement=False),
    sqlite_with_rowid=False,
)


#: The tables of each projection (by name): the projectors and the fast query path agree.
PROJECTION_TABLES: dict[str, tuple[Table, ...]] = {
    "ownership": (assets_table, conveyances_table, conveyance_members_table),
    "listings": (listings_table, listing_sellers_table),
    "book": (bids_table, currencies_table),
    "encumbrances": (licences_table, pledges_table),
    "trail": (trail_keys_table, trail_table),
    "members": (members_table,),
    "trades": (trades_table,),
}

#: The event store's table as the read side sees it (raw column values, no UUID type).
events_view = Table(
    "ipledger_events",
    MetaData(),
    Column("id", POSITION, primary_key=True),
    Column("originator_id"),
    Column("originator_version", POSITION),
    Column("topic", Text),
    Column("state"),
)


_ZERO = timedelta(0)


def naive_utc(value: datetime) -> datetime:
    """Read models store UTC as naive datetimes: sortable on SQLite and PostgreSQL alike."""
    zone = value.tzinfo
    if zone is UTC or (zone is not None and zone.utcoffset(value) == _ZERO):  # pydantic's UTC is a zone of its own
        return value.replace(tzinfo=None, fold=0)  # as astimezone gives it
    if zone is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


@functools.cache
def fingerprint(tables: tuple[Table, ...]) -> str:
    """A hash of the tables' definitions: when code changes them, the stored read model
    is dropped and rebuilt from the log. Remembered: every query checks its read models'
    fingerprints, and rendering the DDL cost more than the query's own statements."""
    from sqlalchemy.schema import CreateTable

    text = "\n".join(str(CreateTable(t)) + repr(sorted(i.name or "" for i in t.indexes)) for t in tables)
    return hashlib.sha256(text.encode()).hexdigest()
