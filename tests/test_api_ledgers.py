"""The server's ledgers: requests share them one at a time, whatever thread they run on.

The server runs each request on a worker thread that anyio retires after 10 s idle; a
ledger per thread left a retired thread's connections open, and bursts of requests ran
PostgreSQL out of connections ("too many clients").
"""

from __future__ import annotations

import threading
from pathlib import Path

from ipledger.api import Ledgers


def request_on_a_new_thread(ledgers: Ledgers, member: str) -> list[str]:
    """A write on a thread that ends after it; what it recorded (empty if it failed)."""
    recorded: list[str] = []

    def request() -> None:
        with ledgers.use() as ledger:
            args = {"id": member, "name": member.title(), "kind": "enterprise", "country": "CN"}
            recorded.append(ledger.execute("member.add", args)["id"])

    thread = threading.Thread(target=request)
    thread.start()
    thread.join()
    return recorded


def test_requests_on_threads_that_come_and_go_reuse_one_ledger(tmp_path: Path) -> None:
    ledgers = Ledgers(f"sqlite:///{tmp_path}/ledger.db", None)
    try:
        members = ["huawei", "zte", "byd", "catl", "tsinghua"]
        assert [request_on_a_new_thread(ledgers, m) for m in members] == [[m] for m in members]
        assert len(ledgers.opened) == 1
    finally:
        ledgers.close()


def test_requests_at_the_same_time_each_get_a_ledger_of_their_own(tmp_path: Path) -> None:
    ledgers = Ledgers(f"sqlite:///{tmp_path}/ledger.db", None)
    try:
        with ledgers.use() as first, ledgers.use() as second:
            assert first is not second
        with ledgers.use() as again:
            assert again in (first, second)
        assert len(ledgers.opened) == 2
    finally:
        ledgers.close()
