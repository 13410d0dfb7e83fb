"""The eventsourcing library's recorder contract, applied to our own recorder.

LedgerRecorder replaces the library's ORM reads and inserts with Core statements and
adds the hash chain; the library's own test cases say what any recorder must keep.
"""

from __future__ import annotations

import os

import pytest

# The recorder first, as the application imports it: the library then runs on the UUID
# column type ledger.uuidtype loads (without the rest of sqlalchemy_utils), and the
# contract holds for that (when this module is the first to import either).
from ipledger.ledger.recorder import LedgerRecorder

# isort: split
from eventsourcing.tests.persistence import ApplicationRecorderTestCase
from eventsourcing_sqlalchemy.datastore import SQLAlchemyDatastore
from sqlalchemy import event

from ipledger.ledger.config import sqlite_pragmas
from tests.conftest import fresh_pg_url, pg_available


class _Contract(ApplicationRecorderTestCase[LedgerRecorder]):
    url: str = ""

    def create_recorder(self) -> LedgerRecorder:
        datastore = SQLAlchemyDatastore(url=self.url)
        if self.url.startswith("sqlite"):  # configured as LedgerFactory and ensure_schema configure it
            event.listen(datastore.engine, "connect", sqlite_pragmas)
            with datastore.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        recorder = LedgerRecorder(datastore, events_table_name="ipledger_events")
        recorder.create_table()
        return recorder


# Throughput timings belong in bench/, not in timed tests: not collected here (the
# unittest loader collects only callables).
for _timed in ("test_performance", "test_concurrent_throughput"):
    setattr(_Contract, _timed, None)


class TestLedgerRecorderOnSQLite(_Contract):
    def setUp(self) -> None:
        import tempfile

        self._dir = tempfile.TemporaryDirectory()
        self.url = f"sqlite:///{self._dir.name}/contract.db"
        super().setUp()

    def tearDown(self) -> None:
        super().tearDown()
        self._dir.cleanup()


class TestLedgerRecorderOnPostgreSQL(_Contract):
    def setUp(self) -> None:
        if not pg_available():
            if os.environ.get("CI") == "true":
                pytest.fail("PostgreSQL is required in CI")
            pytest.skip("PostgreSQL not reachable")
        self.url = fresh_pg_url()
        super().setUp()


del _Contract  # the shared base is not a test of its own
