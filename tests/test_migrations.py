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
