"""Bringing a store's schema to the version this code expects (Alembic migrations).

Every ledger opens through `ensure_schema`: one cheap query when the store is current;
otherwise it imports Alembic and upgrades. A store made before migrations existed (tables
present, no version) is adopted at revision 0001 and upgraded from there.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import column, inspect, select, table, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.selectable import ScalarSelect

HEAD = "0006"
MIGRATIONS = Path(__file__).with_name("migrations")


def revision(conn: Connection) -> str | None:
    """The schema revision a store is at (the one place that reads it)."""
    value = conn.execute(select(revision_column())).scalar()
    return None if value is None else str(value)


def revision_column() -> ScalarSelect[Any]:
    """The revision as a column, for a check that reads it with other things in one round trip."""
    return select(column("version_num")).select_from(table("alembic_version")).scalar_subquery()


def current_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            return revision(conn)
    except DBAPIError:
        return None


def ensure_schema(engine: Engine, target: str = HEAD) -> str:
    """Upgrade the store to `target` (default: head); returns the revision it is at.

    Several processes may open a fresh store at once: on PostgreSQL an advisory lock
    serialises them; on SQLite the loser of the race finds the schema done and retries.
    """
    with engine.connect() as conn:  # an unreachable store fails here, once, not after the retries below
        if conn.dialect.name == "sqlite" and ":memory:" not in str(engine.url):
            # WAL is a property of the file: set it once, before concurrent users arrive
            # (switching modes needs the database to itself).
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")
    for attempt in range(20):
        if current_revision(engine) == target:
            return target
        try:
            _upgrade(engine, target)
            return target
        except DBAPIError:
            if attempt == 19:
                raise
            time.sleep(0.05 * (attempt + 1))
    return target


def _upgrade(engine: Engine, target: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("select pg_advisory_xact_lock(4242424242)"))
        revision = current_revision_on(conn)
        if revision == target:
            return
        config.attributes["connection"] = conn
        if revision is None and inspect(conn).has_table("ipledger_events"):
            command.stamp(config, "0001")
        command.upgrade(config, target)


def current_revision_on(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()
