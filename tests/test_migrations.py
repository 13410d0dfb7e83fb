"""Schema migrations: from an empty database, and from the previous schema version."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from ipledger.ledger.schema import HEAD, alembic_config, current_revision, ensure_schema
from ipledger.service import Ledger
from tests.conftest import PATENT, Market, admit_members


def _indexes(engine: sa.engine.Engine) -> set[str]:
    return {i["name"] for i in sa.inspect(engine).get_indexes("ipledger_events")}


def _downgrade(engine: sa.engine.Engine, target: str) -> None:
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), target)


def test_empty_database_is_migrated_to_head(store_url: str) -> None:
    engine = sa.create_engine(store_url)
    assert current_revision(engine) is None
    assert ensure_schema(engine) == HEAD
    tables = set(sa.inspect(engine).get_table_names())
    assert {"ipledger_events", "ipledger_chain", "ipledger_commands", "rm_projections", "alembic_version"} <= tables
    assert "ipledger_events_topic_idx" in _indexes(engine)
    engine.dispose()


def test_store_at_previous_version_upgrades_with_its_history_intact(store_url: str) -> None:
    m = Market(Ledger(store_url))
    admit_members(m)
    m.do("asset.register", ref=PATENT, title="Electrode coating", owner=["fudan-univ"], effective="2019-05-10")
    before = m.export()
    m.ledger.close()
    engine = sa.create_engine(store_url)
    _downgrade(engine, "0001")
    assert current_revision(engine) == "0001"
    assert "ipledger_events_topic_idx" not in _indexes(engine)

    reopened = Ledger(store_url)
    again = Market(reopened, m.clock)
    assert again.export() == before  # opening the write side upgrades the store
    assert current_revision(engine) == HEAD
    assert "ipledger_events_topic_idx" in _indexes(engine)
    assert reopened.verify()["ok"] is True
    again.do("asset.assign", ref=PATENT, to=["huawei"])
    assert reopened.owner(PATENT)["owners"] == [{"member": "huawei", "share": "1"}]
    reopened.close()
    engine.dispose()


def test_store_made_before_migrations_is_adopted(sqlite_url: str) -> None:
    from eventsourcing_sqlalchemy.datastore import SQLAlchemyDatastore
    from eventsourcing_sqlalchemy.recorders import SQLAlchemyApplicationRecorder

    from ipledger.ledger.config import make_engine
    from ipledger.ledger.recorder import LedgerRecorder

    # An early store: the log as eventsourcing-sqlalchemy's create_table made it, ipledger's
    # tables beside it, no alembic_version.
    datastore = SQLAlchemyDatastore(url=sqlite_url)
    SQLAlchemyApplicationRecorder(datastore, events_table_name="ipledger_events").create_table()
    assert datastore.engine is not None
    datastore.engine.dispose()
    engine = make_engine(sqlite_url)
    LedgerRecorder(engine).create_table()  # the log is there: only the tables beside it are made
    engine.dispose()
    engine = sa.create_engine(sqlite_url)
    assert current_revision(engine) is None

    ledger = Ledger(sqlite_url)
    assert ledger.read_models.head() == 0
    assert current_revision(engine) == HEAD
    ledger.close()
    engine.dispose()


def _command_indexes(engine: sa.engine.Engine) -> set[str]:
    return {i["name"] for i in sa.inspect(engine).get_indexes("ipledger_commands") if i["name"]}


def test_store_at_0005_gets_its_command_records_indexed_by_position(store_url: str) -> None:
    m = Market(Ledger(store_url))
    admit_members(m)
    m.ledger.close()
    engine = sa.create_engine(store_url)
    _downgrade(engine, "0005")
    assert "ipledger_commands_position_idx" not in _command_indexes(engine)

    reopened = Ledger(store_url)
    assert reopened.verify()["ok"] is True  # opening the store upgrades it
    assert "ipledger_commands_position_idx" in _command_indexes(engine)
    reopened.close()
    engine.dispose()


def test_a_proof_reads_the_command_records_through_their_position_index(sqlite_url: str) -> None:
    """Without it every page of the walk scanned and sorted the whole table (quadratic)."""
    from ipledger.ledger.chain import records_sql

    ledger = Ledger(sqlite_url)
    admit_members(Market(ledger))
    ledger.close()
    engine = sa.create_engine(sqlite_url)
    with engine.connect() as conn:
        plan = " ".join(r[-1] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + records_sql("?"), (0, 2**62, 5000)))
    engine.dispose()
    assert "USING INDEX ipledger_commands_position_idx" in plan and "TEMP B-TREE" not in plan, plan


def test_the_sqlite_head_module_is_what_the_migrations_make() -> None:
    """ledger/schema_sqlite.py, which makes a new SQLite store, is generated from the
    migrations: a new migration fails this until it is made again."""
    from ipledger.ledger import schema_sqlite
    from ipledger.ledger.schema import sqlite_head_module

    assert Path(schema_sqlite.__file__).read_text() == sqlite_head_module(), (
        "run: python -m ipledger.ledger.schema --sqlite-head > ledger/schema_sqlite.py"
    )


def _made(engine: sa.engine.Engine) -> tuple[list[tuple[str, ...]], dict[str, list[tuple[object, ...]]]]:
    """A SQLite store's schema (every table and index, as SQLite keeps it) and its rows."""
    with engine.connect() as conn:
        schema = [
            tuple(r) for r in conn.exec_driver_sql("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name")
        ]
        tables = [name for kind, name, _, _ in schema if kind == "table"]
        rows = {t: [tuple(r) for r in conn.exec_driver_sql(f'SELECT * FROM "{t}"')] for t in tables}
    assert rows["alembic_version"] == [(HEAD,)]
    return schema, rows


def test_a_new_sqlite_store_is_made_as_the_migrations_make_it(tmp_path: Path) -> None:
    migrated = sa.create_engine(f"sqlite:///{tmp_path}/migrated.db")
    with migrated.begin() as conn:
        command.upgrade(alembic_config(conn), HEAD)
    made = sa.create_engine(f"sqlite:///{tmp_path}/made.db")
    assert ensure_schema(made) == HEAD
    assert _made(made) == _made(migrated)
    migrated.dispose()
    made.dispose()


def test_a_new_sqlite_store_asked_for_an_earlier_revision_is_migrated(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path}/earlier.db")
    assert ensure_schema(engine, "0005") == "0005"
    assert current_revision(engine) == "0005"
    assert "ipledger_commands_position_idx" not in {
        i["name"] for i in sa.inspect(engine).get_indexes("ipledger_commands")
    }
    engine.dispose()


def test_statements_made_for_another_revision_are_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A migration added without the module made again: the new store is migrated."""
    from ipledger.ledger import schema_sqlite

    monkeypatch.setattr(schema_sqlite, "REVISION", "0005")
    monkeypatch.setattr(schema_sqlite, "STATEMENTS", ("CREATE TABLE not_the_schema (x)",))
    engine = sa.create_engine(f"sqlite:///{tmp_path}/stale.db")
    assert ensure_schema(engine) == HEAD
    tables = set(sa.inspect(engine).get_table_names())
    assert "ipledger_events" in tables and "not_the_schema" not in tables
    engine.dispose()


#: Opens the store named by argv[1] once "go" arrives on stdin, and admits a member.
RACER = """
import sys
from ipledger.service import Ledger
sys.stdin.readline()
ledger = Ledger(sys.argv[1])
ledger.execute("member.add", {"id": sys.argv[2], "name": "Racer", "kind": "enterprise", "country": "CN"})
ledger.close()
"""


def test_processes_making_one_new_sqlite_store_at_once_all_write_to_it(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path}/raced.db"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    racers = [
        subprocess.Popen([sys.executable, "-c", RACER, url, f"racer-{i}"], stdin=subprocess.PIPE, env=env)
        for i in range(4)
    ]
    for racer in racers:
        assert racer.stdin is not None
        racer.stdin.write(b"go\n")
        racer.stdin.flush()
    assert [racer.wait(timeout=60) for racer in racers] == [0, 0, 0, 0]
    engine = sa.create_engine(url)
    assert current_revision(engine) == HEAD
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM ipledger_events").scalar() == 4
    engine.dispose()
