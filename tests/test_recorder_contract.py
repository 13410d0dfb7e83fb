"""The eventsourcing library's recorder contract, applied to our own recorder.

LedgerRecorder is our own recorder on eventsourcing's ApplicationRecorder and
SQLAlchemy Core, with the hash chain beside the events; the library's own test cases say
what any recorder must keep (bench.md asks for them of any storage code of our own).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from eventsourcing.tests.persistence import ApplicationRecorderTestCase

from ipledger.ledger.config import is_sqlite
from ipledger.ledger.driver import store_engine
from ipledger.ledger.recorder import LedgerRecorder
from tests.conftest import fresh_pg_url, pg_available


class _Contract(ApplicationRecorderTestCase[LedgerRecorder]):
    url: str = ""

    def create_recorder(self) -> LedgerRecorder:
        engine = store_engine(self.url)  # as LedgerFactory opens it
        if is_sqlite(self.url):  # as ensure_schema configures a new store
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


@pytest.mark.parametrize("variable", ["SQLALCHEMY_URL", "IPLEDGER_SQLALCHEMY_URL"])
def test_the_store_is_the_one_the_application_names_whatever_the_environment_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    """A command's other processes (its prover, an import's writer) open the URL the
    application was given: a process variable naming another store must not divert it."""
    from ipledger.service import Ledger

    monkeypatch.setenv(variable, f"sqlite:///{tmp_path}/other.db")
    ledger = Ledger(f"sqlite:///{tmp_path}/mine.db")
    try:
        assert ledger.exchange.engine.url.database == f"{tmp_path}/mine.db"
    finally:
        ledger.close()
    assert not (tmp_path / "other.db").exists()
