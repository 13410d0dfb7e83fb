"""A command's kept PostgreSQL connection sends its statements through LibpqBatch
(ledger/driver.py): prepared once per connection, flushed once per pipeline. These are
the promises the recorder relies on, on the real server."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import pytest
import sqlalchemy
import sqlalchemy.exc
from sqlalchemy.engine import Engine

from ipledger.ledger import driver
from ipledger.ledger.driver import Raw

PROBE = "ipledger_probe"
INSERT = f"INSERT INTO {PROBE} (id, owner, body) VALUES (%s, %s, %s)"
ACCEPTED = "CN/patent/ZL201810012345.6"


@pytest.fixture
def engine(pg_url: str) -> Iterator[Engine]:
    engine = driver.store_engine(pg_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE {PROBE} (id bigint PRIMARY KEY, owner uuid NOT NULL, body bytea NOT NULL)")
    yield engine
    engine.dispose()


@pytest.fixture
def kept(engine: Engine) -> Iterator[Raw]:
    """A connection as a command keeps it (PinnedConnection): autocommit, batched."""
    conn = engine.connect()
    yield Raw(conn, explicit=True)
    conn.invalidate()


def ours(raw: Raw) -> int:
    """How many statements LibpqBatch has prepared on this connection, as the server says."""
    return len(raw.rows("SELECT name FROM pg_prepared_statements WHERE name LIKE 'ipledger\\_%%'"))


def write(raw: Raw, position: int, *, commit: bool = True) -> None:
    with raw.pipelined():
        raw.begin()
        raw.run(INSERT, (position, UUID(int=position), ACCEPTED.encode()))
        if commit:
            raw.commit()


def test_each_statement_is_prepared_once_per_connection(kept: Raw) -> None:
    for position in range(1, 6):
        write(kept, position)
    prepared = ours(kept)
    for position in range(6, 11):
        write(kept, position)
    assert ours(kept) == prepared  # BEGIN, the INSERT, COMMIT, the count itself: none again


def test_rows_come_back_as_the_driver_gives_them(kept: Raw) -> None:
    write(kept, 7)
    assert kept.rows(f"SELECT id, owner, body FROM {PROBE} WHERE id = %s", (7,)) == [
        (7, UUID(int=7), ACCEPTED.encode())
    ]
    assert kept.rows(f"SELECT array_agg(owner) FROM {PROBE}") == [([UUID(int=7)],)]


def test_rows_inside_a_pipeline_see_the_statements_sent_before_them(kept: Raw) -> None:
    with kept.pipelined():
        kept.begin()
        kept.run(INSERT, (1, UUID(int=1), b"a"))
        kept.run(INSERT, (2, UUID(int=2), b"b"))
        assert kept.rows(f"SELECT count(*) FROM {PROBE}") == [(2,)]
        kept.commit()
    assert kept.rows(f"SELECT count(*) FROM {PROBE}") == [(2,)]


def test_statements_outlive_rolled_back_transactions(kept: Raw) -> None:
    """psycopg answers a ROLLBACK with DEALLOCATE ALL once it has prepared statements of its
    own, which would drop LibpqBatch's too: on a kept connection psycopg prepares none,
    though the recorder's SQLAlchemy reads (the log's head) share that connection."""
    write(kept, 1)
    for _ in range(6):  # psycopg prepares a statement it ran five times
        kept.sa.execute(sqlalchemy.text(f"SELECT max(id) FROM {PROBE}"))
    write(kept, 2, commit=False)
    kept.rollback()
    write(kept, 3)
    assert kept.rows(f"SELECT id FROM {PROBE} ORDER BY id") == [(1,), (3,)]


def test_an_error_in_a_pipeline_is_the_servers_error_and_the_connection_goes_on(kept: Raw) -> None:
    write(kept, 1)
    with pytest.raises(sqlalchemy.exc.IntegrityError, match="duplicate key"), kept.pipelined():
        kept.begin()
        kept.run(INSERT, (2, UUID(int=2), b"kept out"))
        kept.run(INSERT, (1, UUID(int=1), b"a duplicate"))
        kept.commit()
    kept.rollback()
    assert kept.rows(f"SELECT id FROM {PROBE}") == [(1,)]  # nothing of the failed pipeline
    write(kept, 3)
    assert kept.rows(f"SELECT id FROM {PROBE} ORDER BY id") == [(1,), (3,)]


def test_an_error_raised_in_the_block_ends_the_pipeline_for_the_rollback(kept: Raw) -> None:
    with pytest.raises(RuntimeError, match="decided otherwise"), kept.pipelined():
        kept.begin()
        kept.run(INSERT, (1, UUID(int=1), b"a"))
        assert kept.rows(f"SELECT count(*) FROM {PROBE}") == [(1,)]
        raise RuntimeError("decided otherwise")
    kept.rollback()
    assert kept.rows(f"SELECT count(*) FROM {PROBE}") == [(0,)]


def test_statements_dropped_behind_its_back_fail_once_then_are_prepared_again(kept: Raw) -> None:
    write(kept, 1)
    kept.dbapi.pgconn.exec_(b"DEALLOCATE ALL")  # below psycopg, as another tool would
    with pytest.raises(sqlalchemy.exc.ProgrammingError, match="does not exist"):
        write(kept, 2)
    kept.rollback()
    write(kept, 3)
    assert kept.rows(f"SELECT id FROM {PROBE} ORDER BY id") == [(1,), (3,)]


def test_statements_past_the_limit_are_sent_unprepared(kept: Raw, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(driver, "PREPARED_MAX", 3)
    for position in range(1, 8):  # a new statement text each time
        assert kept.rows(f"SELECT {position} AS n, count(*) FROM {PROBE}") == [(position, 0)]
    assert ours(kept) <= 3


def test_a_percent_sign_is_sent_as_psycopg_would_send_it(kept: Raw) -> None:
    assert kept.rows("SELECT 'a%%b', %s || '%%'", ("50",)) == [("a%b", "50%")]


def test_a_value_that_cannot_be_sent_leaves_the_connection_usable(kept: Raw) -> None:
    with pytest.raises(sqlalchemy.exc.DataError):
        kept.rows("SELECT %s::text", ("CN/patent/ZL2018\x00",))
    assert kept.sa.execute(sqlalchemy.text("SELECT 42")).scalar() == 42  # out of pipeline mode


def test_a_block_inside_a_block_joins_its_pipeline(kept: Raw) -> None:
    with kept.pipelined():
        kept.begin()
        kept.run(INSERT, (1, UUID(int=1), b"a"))
        with kept.pipelined():
            kept.run(INSERT, (2, UUID(int=2), b"b"))
        kept.commit()
    assert kept.rows(f"SELECT id FROM {PROBE} ORDER BY id") == [(1,), (2,)]


def interrupted(*_: object, **__: object) -> None:
    raise RuntimeError("interrupted")


def test_replies_left_unread_close_the_connection_and_free_the_lock(
    kept: Raw, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wait cut short (an interrupt, say) leaves replies the connection cannot skip: it is
    closed, so the kept connection is renewed and the log's lock does not outlive it."""
    with pytest.raises(RuntimeError, match="interrupted"), kept.pipelined():
        kept.begin()
        kept.run(f"LOCK TABLE {PROBE} IN EXCLUSIVE MODE")
        monkeypatch.setattr(driver.LibpqBatch, "_wait", interrupted)
        kept.rows(f"SELECT count(*) FROM {PROBE}")
    monkeypatch.undo()
    assert kept.lost
    with engine.connect() as other:
        other.exec_driver_sql("SET lock_timeout = '2s'")
        other.exec_driver_sql(f"LOCK TABLE {PROBE} IN EXCLUSIVE MODE")  # free: no LockNotAvailable
