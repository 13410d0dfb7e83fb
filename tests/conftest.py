"""Shared fixtures: real stores (SQLite files, the PostgreSQL server), a CLI runner,
and a small market whose names read like the domain."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from click.testing import CliRunner, Result

from ipledger.cli import cli
from ipledger.service import Ledger

BASE_PG_URL = os.environ.get("IPLEDGER_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def worker_database(url: str, worker: str | None) -> str:
    """Under pytest-xdist each worker gets its own database (`test_gw0`, `test_gw1`, ...),
    so two workers never drop each other's tables; a single process keeps the named one."""
    if not worker:
        return url
    base, _, name = url.rpartition("/")
    return f"{base}/{name}_{worker}"


PG_URL = worker_database(BASE_PG_URL, os.environ.get("PYTEST_XDIST_WORKER"))

T0 = "2026-03-02T09:00:00Z"

MEMBERS = [
    ("fudan-univ", "Fudan University", "university"),
    ("sjtu", "Shanghai Jiao Tong University", "university"),
    ("cas-sippr", "CAS Shanghai Institute of Process Research", "research_institute"),
    ("huawei", "Huawei Technologies", "enterprise"),
    ("zte", "ZTE Corporation", "enterprise"),
    ("byd", "BYD Company", "enterprise"),
    ("icbc-sh", "ICBC Shanghai Branch", "financial_institution"),
    ("boc-bj", "Bank of China Beijing", "financial_institution"),
]

PATENT = "CN/patent/ZL201810012345.6"
PATENT_2 = "CN/patent/ZL201920054321.X"
CO_OWNED = "CN/patent/ZL202010098765.4"


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg", "postgresql")


def pg_available() -> bool:
    """Reachable, creating this worker's database on first use."""
    import psycopg

    try:
        with psycopg.connect(_libpq(PG_URL), connect_timeout=3):
            return True
    except psycopg.OperationalError:
        if PG_URL == BASE_PG_URL:
            return False
    try:
        with psycopg.connect(_libpq(BASE_PG_URL), connect_timeout=3, autocommit=True) as conn:
            conn.execute(f'create database "{PG_URL.rpartition("/")[2]}"')
        return True
    except psycopg.errors.DuplicateDatabase:
        return True
    except Exception:
        return False


def fresh_pg_url() -> str:
    """A fresh schema-less database per test: drop every table the ledger made."""
    import sqlalchemy as sa

    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        tables = (
            conn.execute(
                sa.text(
                    "select tablename from pg_tables where schemaname = 'public' "
                    "and (tablename like 'ipledger_%' or tablename like 'rm_%' or tablename = 'alembic_version')"
                )
            )
            .scalars()
            .all()
        )
        for t in tables:
            conn.execute(sa.text(f'drop table if exists "{t}" cascade'))
    engine.dispose()
    return PG_URL


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """Store-level tests run on a real SQLite file and on the real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/ledger.db"
    if not pg_available():
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required in CI and is not reachable at {PG_URL}")
        pytest.skip(f"PostgreSQL not reachable at {PG_URL} (start it to run these tests)")
    return fresh_pg_url()


@pytest.fixture
def pg_url() -> str:
    """A fresh PostgreSQL store, for tests that are about the server itself."""
    if not pg_available():
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required in CI and is not reachable at {PG_URL}")
        pytest.skip(f"PostgreSQL not reachable at {PG_URL} (start it to run these tests)")
    return fresh_pg_url()


@pytest.fixture
def sqlite_url(tmp_path: Any) -> str:
    return f"sqlite:///{tmp_path}/ledger.db"


@pytest.fixture
def wall_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Set the machine's present for an in-process story that runs past today: pinned
    times may not run ahead of it (ClockAhead), so a test that lives in 2027 says so."""

    def set_wall_clock(when: str) -> None:
        from datetime import datetime

        from ipledger.ledger import application

        present = datetime.fromisoformat(when.replace("Z", "+00:00"))
        monkeypatch.setattr(application, "wall_clock", lambda: present)

    return set_wall_clock


@dataclass
class Clock:
    """Pinned recorded times that only move forward, like IPLEDGER_NOW in a test script."""

    now: str = T0

    def set(self, when: str) -> str:
        self.now = when
        return when


@dataclass
class Market:
    """A ledger plus a pinned clock; `do` runs a command as the operator by default."""

    ledger: Ledger
    clock: Clock = field(default_factory=Clock)

    def do(
        self,
        command: str,
        /,
        *,
        actor: str = "operator",
        command_id: str | None = None,
        at: str | None = None,
        **args: Any,
    ) -> dict[str, Any]:
        if at is not None:
            self.clock.set(at)
        return self.ledger.execute(command, args, actor=actor, command_id=command_id, now=self.clock.now)

    def export(self) -> bytes:
        from ipledger.ledger.chain import export_lines

        return b"\n".join(export_lines(self.ledger.exchange.recorder, self.ledger.exchange.engine))


def admit_members(m: Market) -> None:
    for mid, name, kind in MEMBERS:
        m.do("member.add", id=mid, name=name, kind=kind, country="CN")


def open_market(url: str) -> Iterator[Market]:
    """The body both market fixtures share: members admitted and PATENT owned by fudan-univ
    since 2019-05-10; the ledger is closed when the test is done."""
    m = Market(Ledger(url))
    admit_members(m)
    m.do(
        "asset.register",
        ref=PATENT,
        title="Method for lithium-ion electrode coating",
        owner=["fudan-univ"],
        effective="2019-05-10",
    )
    yield m
    m.ledger.close()


@pytest.fixture
def market(store_url: str) -> Iterator[Market]:
    """Members admitted and one patent owned by fudan-univ, on each store."""
    yield from open_market(store_url)


@pytest.fixture
def sqlite_market(sqlite_url: str) -> Iterator[Market]:
    """The same market on SQLite only, for tests that do not depend on the store."""
    yield from open_market(sqlite_url)


@dataclass
class Cli:
    """Runs `ipledger` in-process against one store, as a user would from a shell."""

    db: str
    now: str = T0

    def __call__(
        self, *args: str, actor: str | None = None, now: str | None = None, input: str | None = None
    ) -> Result:
        env = {"IPLEDGER_DB": self.db, "IPLEDGER_NOW": now or self.now}
        if actor is not None:
            env["IPLEDGER_ACTOR"] = actor
        else:
            env["IPLEDGER_ACTOR"] = "operator"
        return CliRunner().invoke(cli, list(args), env=env, input=input, catch_exceptions=False)

    def ok(self, *args: str, **kw: Any) -> Result:
        result = self(*args, **kw)
        assert result.exit_code == 0, result.stderr or result.output
        return result

    def export(self) -> str:
        return str(self.ok("export").stdout)


@pytest.fixture
def run(sqlite_url: str) -> Cli:
    """A CLI on a fresh SQLite file with the demo members admitted."""
    return admitted(Cli(sqlite_url))


def admitted(c: Cli) -> Cli:
    """The `run` fixture's market on any store: the members admitted, PATENT owned by fudan-univ."""
    for mid, name, kind in MEMBERS:
        c.ok("member", "add", mid, "--name", name, "--kind", kind, "--country", "CN")
    c.ok(
        "asset",
        "register",
        PATENT,
        "--title",
        "Method for lithium-ion electrode coating",
        "--owner",
        "fudan-univ",
        "--effective",
        "2019-05-10",
    )
    return c


def new_id() -> str:
    return uuid.uuid4().hex[:8]
