"""Faults: a writer killed mid-command, the database restarted or unreachable, a
read-only or full disk. Each leaves only whole commands, a clear one-line error, and a
ledger that verifies."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from ipledger.service import Ledger
from tests.conftest import Cli, Market, pg_available

ROOT = Path(__file__).resolve().parent.parent
IPLEDGER = str(Path(sys.executable).with_name("ipledger"))

pytestmark = pytest.mark.slow

WRITER = """
import sys
from ipledger.service import Ledger
ledger = Ledger(sys.argv[1])
ledger.execute("member.add", {"id": "fudan-univ", "name": "Fudan", "kind": "university", "country": "CN"},
               command_id="setup-member")
for i in range(100000):
    ref = f"CN/patent/ZL2019{i:08d}.1"
    ledger.execute("asset.register", {"ref": ref, "title": "Invention", "owner": ["fudan-univ"]},
                   command_id=f"reg-{i}")
    print(f"reg-{i}", flush=True)
    out = ledger.execute("listing.open", {"ref": ref, "type": "assignment", "mechanism": "negotiated",
                                          "currency": "CNY", "closes": "2099-01-01T00:00:00Z"},
                         command_id=f"list-{i}")
    print(f"list-{i}", flush=True)
"""


def test_writer_killed_mid_command_leaves_whole_commands_only(store_url: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, store_url], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    acknowledged: list[str] = []
    deadline = time.time() + 60
    assert proc.stdout is not None
    while len(acknowledged) < 40 and time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        acknowledged.append(line.strip())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(acknowledged) >= 40, proc.stderr.read() if proc.stderr else ""

    ledger = Ledger(store_url)
    rows = [orjson.loads(line) for line in ledger.export()]
    per_command = Counter(orjson.loads(r["state"])["meta"]["command_id"] for r in rows)
    for command_id, count in per_command.items():
        expected = 2 if command_id.startswith("list-") else 1  # Listing.Opened + Asset.OfferedForAssignment
        assert count == expected, (command_id, count)
        assert ledger.exchange.recorded_outcome(command_id) is not None
    assert set(acknowledged) <= set(per_command)  # nothing acknowledged is lost
    assert ledger.verify()["ok"] is True


def test_unreachable_database_is_one_clear_error() -> None:
    result = Cli("postgresql+psycopg://postgres@127.0.0.1:1/test")(
        "member", "add", "huawei", "--name", "Huawei", "--kind", "enterprise", "--country", "CN"
    )
    assert result.exit_code == 5
    assert result.stderr.startswith("error: StoreUnavailable: db: the store could not be used (")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_read_only_store_refuses_writes_clearly_and_still_answers(run: Cli) -> None:
    before = run.export()
    path = run.db.removeprefix("sqlite:///")
    read_only = Cli(f"sqlite:///file:{path}?mode=ro&uri=true")
    run.ok("audit", "verify")  # brings every projection to the head before the store goes read-only
    result = read_only("member", "add", "tsinghua", "--name", "Tsinghua", "--kind", "university", "--country", "CN")
    assert result.exit_code == 5
    assert "error: StoreUnavailable: db: the store could not be used (" in result.stderr
    assert "readonly" in result.stderr
    assert read_only("owner", "CN/patent/ZL201810012345.6").exit_code == 0
    assert read_only("audit", "verify").exit_code == 0
    assert run.export() == before


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Any:
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must be able to mount a tmpfs for the disk-full test: {done.stderr!r}")
        pytest.skip("needs root to mount a small tmpfs (the disk-full test runs in CI)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_is_reported_and_leaves_a_verifiable_ledger(tiny_disk: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tiny_disk}/ledger.db"
    cli = Cli(url)
    cli.ok("member", "add", "fudan-univ", "--name", "Fudan", "--kind", "university", "--country", "CN")
    result = None
    for i in range(5000):
        result = cli("asset", "register", f"CN/patent/ZL2020{i:08d}.1", "--title", "x" * 400, "--owner", "fudan-univ")
        if result.exit_code != 0:
            break
    assert result is not None and result.exit_code == 5, "the tiny disk never filled up"
    assert result.stderr.startswith("error: StoreUnavailable: db: the store could not be used (")
    assert "full" in result.stderr
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in os.listdir(tiny_disk):
        shutil.copy(tiny_disk / name, copy / name)
    assert Cli(f"sqlite:///{copy}/ledger.db")("audit", "verify").exit_code == 0


@pytest.mark.serial  # it restarts the shared server: never beside another worker's tests
def test_database_restart_between_commands_costs_only_a_reconnect(pg_url: str) -> None:
    market = Market(Ledger(pg_url))
    cluster = subprocess.run(["bash", "-c", "ls /etc/postgresql | head -n1"], capture_output=True, text=True)
    version = cluster.stdout.strip()
    if not version:
        pytest.fail("PostgreSQL tests run but pg_ctlcluster has no cluster to restart")
    market.do("member.add", id="tsinghua", name="Tsinghua", kind="university", country="CN")
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"], check=True, capture_output=True
    )
    for _ in range(30):
        if pg_available():
            break
        time.sleep(0.5)
    outcome = market.do("member.add", id="zju", name="Zhejiang University", kind="university", country="CN")
    assert outcome == {"id": "zju", "status": "active"}
    assert market.ledger.verify()["ok"] is True
