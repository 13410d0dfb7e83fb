"""The eventsourcing library's recorder contract, applied to our own recorder.

LedgerRecorder is our own recorder on eventsourcing's ApplicationRecorder and
SQLAlchemy Core, with the hash chain beside the events; the library's own test cases say
what any recorder must keep (bench.md asks for them of any storage code of our own).
"""

from __future__ import annotations

import os

import pytest
from eventsourcing.tests.persistence import ApplicationRecorderTestCase

from ipledger.ledger.config import make_engine
from ipledger.ledger.recorder import LedgerRecorder
from tests.conftest import fresh_pg_url, pg_available


class _Contract(ApplicationRecorderTestCase[LedgerRecorder]):
    url: str = ""

    def create_recorder(self) -> LedgerRecorder:
        engine = make_engine(self.url)  # as LedgerFactory opens it
        if self.url.startswith("sqlite"):  # as ensure_schema configures a new store
            with engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        recorder = LedgerRecorder(engine)
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
