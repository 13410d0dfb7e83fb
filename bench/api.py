"""The HTTP API under load (shared/spec/bench.md, issue 14): `ipledger serve` with 2 workers
on PostgreSQL, 16 concurrent clients, each with its own member's token, beside in-process
interactive commands/s on the same store, in one run.

    python bench/api.py [--db postgresql+psycopg://postgres@127.0.0.1:5432/bench_api]
                        [--clients 16] [--workers 2] [--seconds 20] [--history 10000]

The store is emptied and filled first: a market history from the bench generator
(`--history` events, imported), then the clients' own members, a seller's sealed-bid
listings, and a token per client. Three phases of `--seconds` each, every client looping
with one keep-alive connection: commands only (sealed bids on open listings, and
registrations of the client's own assets), queries only (owner of a random asset, a
listing's book as the member sees it), and a mix (one command in five). Latency is the
client's: from sending the request to having read the whole answer.

Prints a Markdown table and writes JSON to bench/results/. `BENCH_SERVER_LOG=FILE` keeps
the server's log (a refused request's traceback) in FILE.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.run import fresh_url, write_workload  # noqa: E402

DEFAULT_DB = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_api"
LISTINGS = 40
SELLER = "bench-seller"


def client_id(n: int) -> str:
    return f"bench-{n:02d}"


def ensure_database(url: str) -> None:
    """Create the benchmark's own database on the server when it is missing."""
    import psycopg

    base, _, name = url.rpartition("/")
    try:
        with psycopg.connect(f"{base.replace('+psycopg', '')}/postgres", autocommit=True) as conn:
            conn.execute(f'create database "{name}"')
    except psycopg.errors.DuplicateDatabase:
        pass


# --------------------------------------------------------------------------- the market


def set_up(url: str, clients: int, history: int, seed: int, folder: Path) -> dict[str, Any]:
    """The history imported, the clients admitted with a token each, the listings open."""
    from ipledger.service import Ledger

    ledger = Ledger(url)
    workload, lines = write_workload(history, seed, folder)
    with workload.open("rb") as f:
        ledger.import_lines(f)
    closes = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for member in [SELLER, *(client_id(n) for n in range(clients))]:
        ledger.execute("member.add", {"id": member, "name": member.title(), "kind": "enterprise", "country": "CN"})
    listings = []
    for n in range(LISTINGS):
        ref = f"CN/patent/ZL2032{n:08d}.1"
        ledger.execute("asset.register", {"ref": ref, "title": f"Electrode {n}", "owner": [SELLER]})
        listing = f"BL-{n}"
        ledger.execute(
            "listing.open",
            {
                "ref": ref,
                "type": "assignment",
                "mechanism": "sealed",
                "currency": "CNY",
                "closes": closes,
                "id": listing,
            },  # fmt: skip
            actor=SELLER,
        )
        listings.append(listing)
    tokens = [ledger.issue_token(client_id(n), "bench")["secret"] for n in range(clients)]
    ledger.read_models.catch_up()
    with ledger.exchange.engine.connect() as conn:
        import sqlalchemy as sa

        refs = [r[0] for r in conn.execute(sa.text("select ref from rm_assets order by ref"))]
    head = ledger.read_models.head()
    ledger.close()
    return {"listings": listings, "tokens": tokens, "refs": refs, "history_lines": lines, "head": head}


class Workload:
    """What one client sends: its own bids and registrations, queries on the market."""

    def __init__(self, n: int, market: dict[str, Any], tag: str) -> None:
        self.member, self.market, self.tag = client_id(n), market, tag
        self.rng = random.Random(n)
        self.sent = 0
        self.amount = 100_000

    def command(self) -> tuple[str, dict[str, Any]]:
        self.sent += 1
        if self.sent % 2:
            self.amount += self.rng.randint(1, 500)
            listing = self.rng.choice(self.market["listings"])
            return "bid.place", {"listing": listing, "bidder": self.member, "amount": f"{self.amount}.00"}
        ref = f"CN/patent/ZL2033{self.member[-2:]}{self.tag}{self.sent:05d}.1"
        return "asset.register", {"ref": ref, "title": "Separator film", "owner": [self.member]}

    def query(self) -> tuple[str, dict[str, Any]]:
        if self.rng.random() < 0.5:
            return "/v1/owner", {"ref": self.rng.choice(self.market["refs"])}
        return f"/v1/book/{self.rng.choice(self.market['listings'])}", {}


# --------------------------------------------------------------------------- in process


def in_process(url: str, market: dict[str, Any], clients: int, commands: int) -> dict[str, Any]:
    """The same commands, one after another on one in-process Ledger: no HTTP, no concurrency."""
    from ipledger.service import Ledger

    ledger = Ledger(url)
    ledger.exchange  # noqa: B018 - opened before the clock starts
    work = [Workload(n, market, "0") for n in range(clients)]
    times = []
    start = time.perf_counter()
    for i in range(commands):
        w = work[i % clients]
        name, args = w.command()
        t = time.perf_counter()
        ledger.execute(name, args, actor=w.member)
        times.append((time.perf_counter() - t) * 1000)
    seconds = time.perf_counter() - start
    ledger.close()
    return {"commands": commands, "seconds": seconds, "commands_per_s": commands / seconds, **percentiles(times)}


def percentiles(ms: list[float]) -> dict[str, float]:
    if not ms:
        return {"p50_ms": float("nan"), "p99_ms": float("nan")}
    ms = sorted(ms)
    return {"p50_ms": statistics.median(ms), "p99_ms": ms[max(0, int(len(ms) * 0.99) - 1)]}


# --------------------------------------------------------------------------- over HTTP


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(url: str, workers: int, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IPLEDGER_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    cmd = [sys.executable, "-c", "from ipledger.cli import run; run()", "--db", url, "serve", "--port", str(port),
           "--workers", str(workers)]  # fmt: skip
    # BENCH_SERVER_LOG=FILE keeps the server's log (a 500's traceback), appended to FILE.
    log = open(os.environ.get("BENCH_SERVER_LOG", os.devnull), "ab")  # noqa: SIM115 - the server's, for its life
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("bench/api.py: the server did not start")
        time.sleep(0.2)


def phase(base: str, market: dict[str, Any], clients: int, seconds: float, writes: float, tag: str) -> dict[str, Any]:
    """`clients` threads for `seconds`, each sending a command with probability `writes`
    and a query otherwise, one request at a time on its own connection."""
    results: list[list[tuple[str, float, int]]] = [[] for _ in range(clients)]
    start_line = threading.Barrier(clients + 1)
    stop = threading.Event()

    def client(n: int) -> None:
        work = Workload(n, market, tag)
        rng = random.Random(1000 + n)
        headers = {"Authorization": f"Bearer {market['tokens'][n]}"}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
            http.get("/v1/whoami")  # connected and authenticated before the clock starts
            start_line.wait()
            while not stop.is_set():
                if rng.random() < writes:
                    name, args = work.command()
                    t = time.perf_counter()
                    r = http.post(f"/v1/commands/{name}", json=args)
                    kind = "command"
                else:
                    path, params = work.query()
                    t = time.perf_counter()
                    r = http.get(path, params=params)
                    kind = "query"
                results[n].append((kind, (time.perf_counter() - t) * 1000, r.status_code))
                if r.status_code >= 400 and os.environ.get("BENCH_SERVER_LOG"):
                    print(f"refused {r.request.method} {r.request.url.path}: {r.status_code} {r.text}", file=sys.stderr)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    start_line.wait()
    began = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    done = [x for per in results for x in per]
    out: dict[str, Any] = {"seconds": wall, "clients": clients, "writes": writes}
    for kind in ("command", "query"):
        ok = [ms for k, ms, status in done if k == kind and status < 400]
        failed: dict[str, int] = {}
        for k, _, status in done:
            if k == kind and status >= 400:
                failed[str(status)] = failed.get(str(status), 0) + 1
        out[kind] = {"ok": len(ok), "per_s": len(ok) / wall, "failed": failed, **percentiles(ok)}
    return out


# --------------------------------------------------------------------------- the report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default=os.environ.get("IPLEDGER_BENCH_PG", DEFAULT_DB))
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    parser.add_argument("--history", type=int, default=10_000, help="events of market history imported first")
    parser.add_argument("--in-process", type=int, default=1000, help="commands of the in-process baseline")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    ensure_database(args.db)
    with tempfile.TemporaryDirectory() as tmp:
        url = fresh_url("postgres", Path(tmp), "", args.db)
        market = set_up(url, args.clients, args.history, args.seed, Path(tmp))
    baseline = in_process(url, market, args.clients, args.in_process)
    port = free_port()
    server = start_server(url, args.workers, port)
    base = f"http://127.0.0.1:{port}"
    try:
        phases = {
            "commands": phase(base, market, args.clients, args.seconds, 1.0, "1"),
            "queries": phase(base, market, args.clients, args.seconds, 0.0, "2"),
            "mixed": phase(base, market, args.clients, args.seconds, 0.2, "3"),
            # One client alone: a request's own time, without waiting behind 15 others.
            "solo_commands": phase(base, market, 1, args.seconds / 2, 1.0, "4"),
            "solo_queries": phase(base, market, 1, args.seconds / 2, 0.0, "5"),
        }
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    results = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "python": platform.python_version(),
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "load_average": os.getloadavg(),
        "args": vars(args),
        "market": {k: market[k] for k in ("history_lines", "head")} | {"listings": len(market["listings"])},
        "in_process": baseline,
        **phases,
    }
    print(report(results))
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    path = out / f"api-{results['when'].replace(':', '')}.json"
    path.write_text(json.dumps(results, indent=2, default=str))
    print(f"\n(JSON: {path.relative_to(ROOT)})")
    return 0


def git_commit() -> str:
    run = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return run.stdout.strip() or "unknown"


def report(r: dict[str, Any]) -> str:
    fmt: Callable[[float], str] = lambda x: f"{x:.1f}"  # noqa: E731
    c, q, m, b = r["commands"]["command"], r["queries"]["query"], r["mixed"], r["in_process"]
    sc, sq = r["solo_commands"]["command"], r["solo_queries"]["query"]
    ratio = c["per_s"] / b["commands_per_s"]
    lines = [
        f"### HTTP API — {r['args']['clients']} clients, {r['args']['workers']} workers, PostgreSQL; "
        f"{r['machine']}, load {r['load_average'][0]:.1f}, commit {r['commit']}",
        "",
        "| figure | measured | baseline in the same run | goal |",
        "|---|---|---|---|",
        f"| commands/s over HTTP (commands only) | {c['per_s']:,.0f} | in-process, one at a time: "
        f"{b['commands_per_s']:,.0f} ({ratio:.2f}×) | ≥ 0.5× |",
        f"| command latency p50 / p99 | {fmt(c['p50_ms'])} / {fmt(c['p99_ms'])} ms | in-process "
        f"{fmt(b['p50_ms'])} / {fmt(b['p99_ms'])} ms | p99 < 50 ms |",
        f"| query latency p50 / p99 (queries only; {q['per_s']:,.0f}/s) | {fmt(q['p50_ms'])} / {fmt(q['p99_ms'])} ms "
        "| — | p99 < 10 ms |",
        f"| mixed, 1 in 5 a command: commands/s, p99 | {m['command']['per_s']:,.0f}, {fmt(m['command']['p99_ms'])} ms "
        "| — | — |",
        f"| mixed: queries/s, p50 / p99 | {m['query']['per_s']:,.0f}, {fmt(m['query']['p50_ms'])} / "
        f"{fmt(m['query']['p99_ms'])} ms | — | — |",
        f"| one client alone: command p50 / p99 ({sc['per_s']:,.0f}/s) | {fmt(sc['p50_ms'])} / {fmt(sc['p99_ms'])} ms "
        "| — | — |",
        f"| one client alone: query p50 / p99 ({sq['per_s']:,.0f}/s) | {fmt(sq['p50_ms'])} / {fmt(sq['p99_ms'])} ms "
        "| — | — |",
    ]
    phases = [(k, kind) for k in ("commands", "queries", "mixed", "solo_commands", "solo_queries")
              for kind in ("command", "query")]  # fmt: skip
    refused = {f"{k}/{kind}": r[k][kind]["failed"] for k, kind in phases if r[k][kind]["failed"]}
    if refused:
        lines += ["", f"Refused (status: count), not counted above: {refused}"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
