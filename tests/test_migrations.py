"""Schema migrations: from an empty database, and from the previous schema version."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from ipledger.ledger.schema import HEAD, MIGRATIONS, current_revision, ensure_schema
from ipledger.service import Ledger
from tests.conftest import PATENT, Market, admit_members


def _indexes(engine: sa.engine.Engine) -> set[str]:
    return {i["name"] for i in sa.inspect(engine).get_indexes("ipledger_events")}


def _downgrade(engine: sa.engine.Engine, target: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, target)


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
