"""The CLI for people (issue 15, first items): a bare group prints its help, and `--db`
takes a SQLite file's path or the PostgreSQL URL spellings hosts print."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from ipledger.cli import cli
from ipledger.domain.errors import InvalidInput
from ipledger.ledger.config import store_url


@pytest.mark.parametrize("argv", [[], ["member"], ["audit"]], ids=["ipledger", "member", "audit"])
def test_a_bare_group_prints_its_help_and_exits_0(argv: list[str]) -> None:
    result = CliRunner().invoke(cli, argv)

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"Usage: {' '.join(['cli', *argv])} [OPTIONS] COMMAND [ARGS]...")
    assert "Commands:" in result.stdout
    assert result.stderr == ""


def test_db_takes_a_sqlite_files_path(tmp_path: Path) -> None:
    path = tmp_path / "exchange.db"
    runner = CliRunner()

    added = runner.invoke(
        cli,
        ["--db", str(path), "member", "add", "huawei", "--name", "Huawei", "--kind", "enterprise", "--country", "CN"],
    )
    again = runner.invoke(cli, ["--db", str(path), "member", "suspend", "huawei", "--reason", "fee unpaid"])

    assert (added.exit_code, added.stdout, again.exit_code) == (0, "huawei\n", 0)
    assert path.is_file()


@pytest.mark.parametrize(
    ("given", "url"),
    [
        ("ipledger.db", "sqlite:///ipledger.db"),
        ("exchange.SQLite3", "sqlite:///exchange.SQLite3"),
        ("/var/lib/ipledger/exchange.db", "sqlite:////var/lib/ipledger/exchange.db"),
        ("postgres://app@db.example/ipledger", "postgresql+psycopg://app@db.example/ipledger"),
        ("postgresql://app@db.example/ipledger", "postgresql+psycopg://app@db.example/ipledger"),
        ("postgresql+psycopg://app@db.example/ipledger", "postgresql+psycopg://app@db.example/ipledger"),
    ],
)
def test_db_spellings_name_one_store(given: str, url: str) -> None:
    assert store_url(given) == url


@pytest.mark.parametrize("given", ["exchange", "'; DROP TABLE ipledger_events; --", "ledger.json"])
def test_a_bare_path_without_a_sqlite_suffix_is_refused_naming_the_rule(given: str) -> None:
    with pytest.raises(InvalidInput, match=r"^db: .* is neither a store URL .* nor a SQLite file's path \(ending \.db"):
        store_url(given)


def test_a_bare_memory_path_is_still_refused_as_an_in_memory_store() -> None:
    with pytest.raises(InvalidInput, match=r"^db: sqlite:///:memory: is an in-memory store"):
        store_url("sqlite:///:memory:")
