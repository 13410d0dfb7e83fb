"""Every kind of command through the CLI on PostgreSQL (the same code as on SQLite)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.generator import generate
from tests.conftest import Cli

pytestmark = pytest.mark.postgres


def test_demo_queries_audit_rebuild_and_export_work_on_postgresql(pg_url: str) -> None:
    cli = Cli(pg_url, now="2026-11-25T12:00:00Z")
    cli.ok("init")
    demo = json.loads(cli.ok("--json", "demo").stdout)
    assert demo["owners"][0]["owners"] == [{"member": "zte", "share": "1"}]
    assert [b["amount"] for b in demo["books"][2]["bids"]] == ["72000.00", "72000.00", "60000.00"]
    for query in (
        ["owner", "CN/patent/ZL201810012345.6", "--as-of", "2020-01-01"],
        ["title", "CN/patent/ZL201810012345.6"],
        ["holdings", "zte"],
        ["book", "L-AUCTION"],
        ["listings", "--status", "open"],
        ["encumbrances", "CN/patent/ZL201810012345.6"],
        ["trail", "--member", "huawei"],
    ):
        cli.ok("--json", *query)
    digest = cli.ok("audit", "digest").stdout.strip()
    cli.ok("projections", "rebuild")
    cli.ok("audit", "verify", "--digest", digest)
    status = json.loads(cli.ok("--json", "projections", "status").stdout)
    assert all(p["behind"] == 0 for p in status["projections"])
    lines = cli.ok("export").stdout.splitlines()
    assert [json.loads(x)["position"] for x in lines] == sorted(json.loads(x)["position"] for x in lines)


def test_import_and_rule_errors_work_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    history = tmp_path / "history.jsonl"
    history.write_bytes(b"\n".join(generate(1500, seed=3)) + b"\n")
    cli = Cli(pg_url)
    result = json.loads(cli.ok("--json", "import", str(history)).stdout)
    assert result["skipped"] == 0 and result["applied"] > 100
    again = json.loads(cli.ok("--json", "import", str(history)).stdout)
    assert again == {"applied": 0, "skipped": result["applied"]}
    before = cli.export()
    refused = cli(
        "--actor",
        "auditor",
        "member",
        "add",
        "tsinghua",
        "--name",
        "Tsinghua",
        "--kind",
        "university",
        "--country",
        "CN",
    )
    assert refused.exit_code == 1
    assert refused.stderr.startswith("error: NotAuthorised: ")
    assert cli.export() == before
    cli.ok("audit", "verify")
