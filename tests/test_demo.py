"""The README's main command: `ipledger demo` on the embedded SQLite default."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from ipledger.cli import cli


def test_demo_builds_a_market_in_the_current_folder_and_reruns_without_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IPLEDGER_")}
    monkeypatch.chdir(tmp_path)
    first = runner.invoke(cli, ["demo"], env=env, catch_exceptions=False)
    assert first.exit_code == 0, first.stderr
    assert Path("ipledger.db").exists()  # the default store: sqlite:///ipledger.db
    assert "L-AUCTION english assignment of CN/patent/ZL201810012345.6 [sold]" in first.stdout
    assert "won by zte at 225000.00 CNY (trade T-AUCTION)" in first.stdout
    before = runner.invoke(cli, ["export"], env=env).stdout
    again = runner.invoke(cli, ["--json", "demo"], env=env, catch_exceptions=False)
    assert again.exit_code == 0
    report = json.loads(again.stdout)
    assert [o["owners"] for o in report["owners"]][:2] == [
        [{"member": "zte", "share": "1"}],
        [{"member": "byd", "share": "1"}],
    ]
    assert [b["amount"] for b in report["books"][0]["bids"]] == ["225000.00", "210000.00", "200000.00"]
    assert report["encumbrances"]["pledges"][0]["pledgee"] == "icbc-sh"
    assert runner.invoke(cli, ["export"], env=env).stdout == before  # every demo command was recorded
    assert runner.invoke(cli, ["audit", "verify"], env=env).exit_code == 0


def _plain_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("IPLEDGER_")}


def _export(runner: CliRunner, db: str) -> str:
    result = runner.invoke(cli, ["--db", db, "export"], env=_plain_env())
    assert result.exit_code == 0, result.stderr
    return result.stdout


def _add_member(runner: CliRunner, db: str, member: str = "acme") -> None:
    args = ["--db", db, "member", "add", member, "--name", "Acme", "--kind", "enterprise", "--country", "CN"]
    assert runner.invoke(cli, args, env=_plain_env()).exit_code == 0


REFUSED = (
    "error: InvalidState: db: sqlite:///mine.db already holds 1 event, not the demo's; the demo builds a fresh "
    "market: use an empty store (--db demo.db) or demo --fresh (a new file beside this one, which is left as it is)\n"
)


def test_demo_refuses_a_store_that_holds_other_events(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    monkeypatch.chdir(tmp_path)
    _add_member(runner, "mine.db")
    before = _export(runner, "mine.db")
    refused = runner.invoke(cli, ["--db", "mine.db", "demo"], env=_plain_env())
    assert (refused.exit_code, refused.stdout, refused.stderr) == (1, "", REFUSED)
    assert _export(runner, "mine.db") == before
    assert [p.name for p in tmp_path.glob("*.db")] == ["mine.db"]  # no other store was made


def test_demo_fresh_builds_beside_a_store_with_events_and_leaves_it_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    monkeypatch.chdir(tmp_path)
    _add_member(runner, "mine.db")
    before = _export(runner, "mine.db")

    fresh = runner.invoke(cli, ["--db", "mine.db", "demo", "--fresh"], env=_plain_env())
    assert fresh.exit_code == 0, fresh.stderr
    assert (
        fresh.stdout.splitlines()[0] == "== a new store beside yours (left as it was): --db sqlite:///mine-demo.db =="
    )
    assert "won by zte at 225000.00 CNY (trade T-AUCTION)" in fresh.stdout
    assert _export(runner, "mine.db") == before
    owner = runner.invoke(
        cli, ["--db", "mine-demo.db", "--json", "owner", "CN/patent/ZL201810012345.6"], env=_plain_env()
    )
    assert json.loads(owner.stdout)["owners"] == [{"member": "zte", "share": "1"}]

    # The demo's own store runs again in place; --fresh on it makes yet another.
    demo_store = _export(runner, "mine-demo.db")
    again = runner.invoke(cli, ["--db", "mine-demo.db", "--json", "demo"], env=_plain_env())
    assert json.loads(again.stdout)["db"] == "sqlite:///mine-demo.db" and not json.loads(again.stdout)["new_store"]
    assert _export(runner, "mine-demo.db") == demo_store
    another = runner.invoke(cli, ["--db", "mine.db", "--json", "demo", "--fresh"], env=_plain_env())
    assert (json.loads(another.stdout)["db"], json.loads(another.stdout)["new_store"]) == (
        "sqlite:///mine-demo-2.db",
        True,
    )
    assert _export(runner, "mine.db") == before


def test_demo_fresh_on_an_empty_store_builds_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    monkeypatch.chdir(tmp_path)
    fresh = runner.invoke(cli, ["--db", "empty.db", "--json", "demo", "--fresh"], env=_plain_env())
    assert fresh.exit_code == 0, fresh.stderr
    assert (json.loads(fresh.stdout)["db"], json.loads(fresh.stdout)["new_store"]) == ("sqlite:///empty.db", False)
    assert [p.name for p in tmp_path.glob("*.db")] == ["empty.db"]


def test_demo_runs_again_on_its_own_store_after_other_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(cli, ["demo"], env=_plain_env()).exit_code == 0
    _add_member(runner, "ipledger.db")
    before = _export(runner, "ipledger.db")
    again = runner.invoke(cli, ["demo"], env=_plain_env())
    assert again.exit_code == 0, again.stderr
    assert _export(runner, "ipledger.db") == before


@pytest.mark.postgres
def test_demo_never_mixes_into_or_beside_a_postgresql_store_with_events(pg_url: str) -> None:
    runner = CliRunner()
    _add_member(runner, pg_url)
    before = _export(runner, pg_url)
    for args in (["demo"], ["demo", "--fresh"]):
        refused = runner.invoke(cli, ["--db", pg_url, *args], env=_plain_env())
        assert refused.exit_code == 1 and refused.stdout == ""
        assert refused.stderr.startswith(f"error: InvalidState: db: {pg_url} already holds 1 event"), refused.stderr
    assert "demo --fresh makes a new store only beside a SQLite file; create an empty database" in refused.stderr
    assert _export(runner, pg_url) == before
