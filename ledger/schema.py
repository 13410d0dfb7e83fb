"""Bringing a store's schema to the version this code expects (Alembic migrations).

Every ledger opens through `ensure_schema`: one cheap query when the store is current;
otherwise it imports Alembic and upgrades. A new, empty SQLite file is made at head from
the statements the migrations leave (ledger/schema_sqlite.py, generated from them and
held to them by a test), without Alembic. A store made before migrations existed (tables
present, no version) is adopted at revision 0001 and upgraded from there.
"""

from __future__ import annotations

import json
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
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("select pg_advisory_xact_lock(4242424242)"))
        elif _made_at(conn, target):
            return
        from alembic import command

        config = alembic_config(conn)
        revision = current_revision_on(conn)
        if revision == target:
            return
        if revision is None and inspect(conn).has_table("ipledger_events"):
            command.stamp(config, "0001")
        command.upgrade(config, target)


def alembic_config(conn: Connection) -> Any:
    """Alembic's configuration for running this package's migrations on `conn` (imported
    only here: a store at head never loads Alembic)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    return config


def _made_at(conn: Connection, target: str) -> bool:
    """A new SQLite file made at `target` from the statements the migrations leave at head
    (ledger/schema_sqlite.py), without importing Alembic (~0.1 s of a first command) or
    running six migrations; False for any other store or revision. A second process
    racing to make it finds the tables made, and ensure_schema's retry finds it current."""
    if conn.dialect.name != "sqlite" or conn.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar():
        return False
    from ipledger.ledger import schema_sqlite

    if target != schema_sqlite.REVISION:
        return False
    for statement in schema_sqlite.STATEMENTS:
        conn.exec_driver_sql(statement)
    return True


def current_revision_on(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


def sqlite_head_module() -> str:
    """The text of ledger/schema_sqlite.py: what the migrations make of an empty SQLite
    file (its tables and indexes in the order they were made, and the rows they insert),
    read from a file migrated to head in a temporary folder. `python -m
    ipledger.ledger.schema --sqlite-head` prints it; tests/test_migrations.py holds the
    module to it."""
    import sqlite3
    import tempfile

    from alembic import command
    from sqlalchemy import create_engine

    with tempfile.TemporaryDirectory(prefix="ipledger-schema-") as folder:
        engine = create_engine(f"sqlite:///{folder}/head.db")
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), HEAD)
        engine.dispose()
        db = sqlite3.connect(f"{folder}/head.db")
        made = [sql for (sql,) in db.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid")]
        tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY rowid")]
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):  # in its key's order
                values = ", ".join(_literal(v) for v in row)
                made.append(f'INSERT INTO "{table}" VALUES ({values})')
        db.close()
    lines = [
        f'"""The SQLite schema at revision {HEAD}, as the migrations leave an empty file: a new store',
        "is made from these statements (ledger/schema.py), without Alembic. Generated by",
        "`python -m ipledger.ledger.schema --sqlite-head > ledger/schema_sqlite.py`;",
        'tests/test_migrations.py holds this module to the migrations."""',
        "",
        f"REVISION = {json.dumps(HEAD)}",
        "STATEMENTS = (",
        *(_statement(statement) for statement in made),
        ")",
        "",
    ]
    return "\n".join(lines)


def _statement(sql: str) -> str:
    """One statement as a tuple item: a line of code for each of its lines."""
    pieces = sql.splitlines(keepends=True)
    if len(pieces) == 1:
        return f"    {json.dumps(sql)},"
    return "\n".join(["    (", *(f"        {json.dumps(piece)}" for piece in pieces), "    ),"])


def _literal(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return f"X'{value.hex()}'"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["--sqlite-head"]:
        sys.exit("usage: python -m ipledger.ledger.schema --sqlite-head")
    sys.stdout.write(sqlite_head_module())
