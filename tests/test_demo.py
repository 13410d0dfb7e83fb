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
