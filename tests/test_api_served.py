"""A real `ipledger serve` process spoken to over HTTP on 127.0.0.1 (httpx), on SQLite and
on PostgreSQL (two workers there: stateless processes on one store): a command, its
repeat, a query, and the event stream followed live as a member may see it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import PATENT
from tests.test_api import _child_env, _free_port, _ledger

pytestmark = pytest.mark.slow


@pytest.fixture
def served(store_url: str) -> Iterator[tuple[str, dict[str, str]]]:
    """The server on the store, and a token's header for the operator and three members."""
    with _ledger(store_url) as ledger:  # the wall clock, as the server's
        for member, kind in (("fudan-univ", "university"), ("huawei", "enterprise"), ("zte", "enterprise")):
            ledger.execute("member.add", {"id": member, "name": member.title(), "kind": kind, "country": "CN"})
        ledger.execute("asset.register", {"ref": PATENT, "title": "Electrode coating", "owner": ["fudan-univ"]})
        headers = {
            actor: {"Authorization": f"Bearer {ledger.issue_token(actor)['secret']}"}
            for actor in ("operator", "fudan-univ", "huawei", "zte")
        }
    port = _free_port()
    workers = "2" if store_url.startswith("postgresql") else "1"
    server = subprocess.Popen(
        [sys.executable, "-c", "from ipledger.cli import run; run()", "--db", store_url, "serve", "--port", str(port),
         "--workers", workers],
        env=_child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        yield base, headers
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.communicate()


def post(http: httpx.Client, command: str, args: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
    return http.post(f"/v1/commands/{command}", json=args, headers=headers)


def next_event(lines: Iterator[str]) -> dict[str, Any]:
    """Read the stream up to its next event (keep-alive comments skipped)."""
    fields: dict[str, Any] = {}
    for line in lines:
        if not line:
            if "data" in fields:
                return fields
            continue
        name, _, value = line.partition(": ")
        if name in ("id", "event"):
            fields[name] = value
        elif name == "data":
            fields["data"] = orjson.loads(value)
    raise AssertionError("the stream ended")


def test_a_command_its_repeat_a_query_and_the_live_event_stream_over_http(
    served: tuple[str, dict[str, str]],
) -> None:
    base, headers = served
    closes = (datetime.now(UTC) + timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with httpx.Client(base_url=base, timeout=20) as http:
        listing = {"ref": PATENT, "type": "assignment", "mechanism": "sealed", "currency": "CNY", "closes": closes,
                   "id": "L-1"}  # fmt: skip
        opened = post(http, "listing.open", listing, headers["fudan-univ"])
        assert opened.status_code == 201, opened.text
        bid = {"listing": "L-1", "bidder": "huawei", "amount": "100000.00", "id": "B-huawei"}
        keyed = headers["huawei"] | {"Idempotency-Key": "huawei-bid-1"}
        first = http.post("/v1/commands/bid.place", json=bid, headers=keyed)
        assert first.status_code == 201, first.text
        again = http.post("/v1/commands/bid.place", json=bid, headers=keyed)
        assert again.status_code == 200 and again.json() == first.json()
        assert [b["bidder"] for b in http.get("/v1/book/L-1", headers=headers["operator"]).json()["bids"]] == ["huawei"]
        assert http.get("/v1/book/L-1", headers=headers["zte"]).json()["bids"] == []  # sealed: not zte's to see

        with http.stream("GET", "/v1/events", headers=headers["zte"]) as stream:  # follows the log
            assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.iter_lines()
            seen = [next_event(lines)["data"]["type"] for _ in range(4)]  # three members and the asset
            assert seen == ["Member.Admitted"] * 3 + ["Asset.Registered"]
            live = {"listing": "L-1", "bidder": "zte", "amount": "90000.00", "id": "B-zte"}
            assert post(http, "bid.place", live, headers["zte"]).status_code == 201
            rest = []
            while not rest or rest[-1]["data"]["type"] != "Listing.BidPlaced":
                rest.append(next_event(lines))
        text = str(rest)
        assert "B-huawei" not in text and "100000" not in text  # huawei's sealed bid, never
        assert rest[-1]["data"]["data"]["bidder"] == "zte" and rest[-1]["id"] == str(rest[-1]["data"]["position"])
        assert any(e["data"]["type"] == "Listing.Opened" for e in rest)


def test_connections_to_several_workers_send_at_once() -> None:
    """uvicorn's `--workers` socket says proto 0, so asyncio left Nagle on and each keep-alive
    answer waited ~40 ms for a delayed ACK: the socket `serve` hands its workers says TCP, and
    what it accepts sends without delay (TCP_NODELAY)."""
    import asyncio
    import socket

    import uvicorn

    from ipledger.api import said_tcp

    config = uvicorn.Config("ipledger.api:from_environment", host="127.0.0.1", port=_free_port(), workers=2)
    listening = said_tcp(config.bind_socket())
    assert listening.proto == socket.IPPROTO_TCP

    async def accepted_nodelay() -> int:
        accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def connected(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.set_result(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(connected, sock=listening)
        async with server:
            _, writer = await asyncio.open_connection(*listening.getsockname())
            value = await asyncio.wait_for(accepted, 10)
            writer.close()
        return value

    assert asyncio.run(accepted_nodelay()) != 0
