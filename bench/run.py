"""ipledger's benchmark: every figure side by side with its baseline, in one run.

    python bench/run.py --events 10000            # smoke (CI runs it; no speed asserted)
    python bench/run.py --events 100000 [--db postgresql+psycopg://…]

Prints the Markdown table of shared/spec/bench.md and writes JSON to bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402
from eventsourcing.domain import Aggregate, event  # noqa: E402

from bench.generator import generate  # noqa: E402


class Thing(Aggregate):
    """The naive baseline's aggregate: a create and a change, as plain as it gets."""

    @event("Created")
    def __init__(self, name: str, kind: str, country: str) -> None:
        self.name = name

    @event("Changed")
    def change(self, owner: str) -> None:
        self.owner = owner


Row = dict[str, Any]


def timed(func: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = func()
    return time.perf_counter() - start, result


# --------------------------------------------------------------------------- workload


def write_workload(events: int, seed: int, folder: Path) -> tuple[Path, int]:
    path = folder / f"history-{events}-{seed}.jsonl"
    lines = 0
    with path.open("wb") as f:
        for line in generate(events, seed):
            f.write(line + b"\n")
            lines += 1
    return path, lines


def fresh_url(kind: str, folder: Path, name: str, pg: str | None) -> str:
    if kind == "postgres":
        assert pg is not None
        import sqlalchemy as sa

        engine = sa.create_engine(pg)
        with engine.begin() as conn:
            for (table,) in conn.execute(
                sa.text(
                    "select tablename from pg_tables where schemaname='public' "
                    "and (tablename like 'ipledger_%' or tablename like 'rm_%' or tablename like 'naive%' "
                    "or tablename = 'alembic_version')"
                )
            ):
                conn.execute(sa.text(f'drop table if exists "{table}" cascade'))
        engine.dispose()
        return pg
    return f"sqlite:///{folder}/{name}.db"


# --------------------------------------------------------------------------- figures


def bench_import(url: str, workload: Path) -> Row:
    from ipledger.service import Ledger

    ledger = Ledger(url)
    with workload.open("rb") as f:
        seconds, result = timed(lambda: ledger.import_lines(f))
    head = ledger.read_models.head()
    ledger.close()
    return {"seconds": seconds, "events": head, "commands": result["applied"], "events_per_s": head / seconds}


def baseline_raw_insert(rows: list[tuple[bytes, int, bytes, bytes]], folder: Path) -> Row:
    """The limit: sqlite3 executemany of the same rows in one transaction."""
    path = folder / "raw.db"
    conn = sqlite3.connect(path)
    conn.execute("pragma journal_mode=wal")
    conn.execute("create table e (id integer primary key, oid blob, v int, topic text, state blob)")
    conn.execute("create unique index e_agg on e (oid, v)")
    seconds, _ = timed(
        lambda: (conn.executemany("insert into e (oid, v, topic, state) values (?,?,?,?)", rows), conn.commit())
    )
    conn.close()
    return {"seconds": seconds, "events_per_s": len(rows) / seconds}


def baseline_raw_insert_pg(rows: list[tuple[bytes, int, bytes, bytes]], pg: str) -> Row:
    """The PostgreSQL limit: psycopg executemany of the same rows in one transaction."""
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(pg)
    with psycopg.connect(
        host=u.host or "127.0.0.1", port=u.port or 5432, dbname=u.database or "test", user=u.username or "postgres"
    ) as conn:
        conn.execute("drop table if exists naive_raw")
        conn.execute("create table naive_raw (id bigserial primary key, oid bytea, v int, topic text, state bytea)")
        conn.execute("create unique index naive_raw_agg on naive_raw (oid, v)")
        conn.commit()

        def run() -> None:
            with conn.cursor() as cur:
                cur.executemany("insert into naive_raw (oid, v, topic, state) values (%s, %s, %s, %s)", rows)
            conn.commit()

        seconds, _ = timed(run)
        conn.execute("drop table naive_raw")
        conn.commit()
    return {"seconds": seconds, "events_per_s": len(rows) / seconds}


def log_rows(url: str) -> list[tuple[bytes, int, bytes, bytes]]:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("select originator_id, originator_version, topic, state from ipledger_events order by id")
        ).all()
    engine.dispose()
    # The real row: the aggregate id as its 16 bytes (the store's binary uuid), not its 36-character text.
    return [(r[0].bytes if isinstance(r[0], uuid.UUID) else bytes(r[0]), r[1], r[2], bytes(r[3])) for r in rows]


def bench_rebuild(url: str) -> Row:
    """`ipledger projections rebuild` in a child process: wall time and peak RSS."""
    env = {**os.environ, "IPLEDGER_DB": url}
    cmd = [
        sys.executable,
        "-c",
        # Peak RSS from /proc VmHWM: ru_maxrss would include the parent's memory copied at fork.
        (
            "import sys, time; from ipledger.service import Ledger; l = Ledger(sys.argv[1]); "
            "t = time.perf_counter(); l.rebuild(); d = time.perf_counter() - t; "
            "hwm = [x for x in open('/proc/self/status') if x.startswith('VmHWM')][0].split()[1]; "
            "print(d, hwm, l.read_models.head())"
        ),
        url,
    ]
    out = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    seconds, rss_kb, head = float(out[0]), int(out[1]), int(out[2])
    return {"seconds": seconds, "events": head, "events_per_s": head / seconds, "peak_rss_mb": rss_kb / 1024}


def baseline_read_decode(url: str) -> Row:
    """The limit: read the same rows and JSON-decode every payload."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)

    def run() -> int:
        n = 0
        with engine.connect() as conn:
            for row in conn.execution_options(stream_results=True).execute(
                sa.text("select id, originator_id, originator_version, topic, state from ipledger_events")
            ):
                orjson.loads(row[4])
                n += 1
        return n

    seconds, n = timed(run)
    engine.dispose()
    return {"seconds": seconds, "events_per_s": n / seconds}


def interactive_commands(n: int) -> list[tuple[str, dict[str, Any]]]:
    cmds: list[tuple[str, dict[str, Any]]] = []
    for i in range(n // 3):
        member = f"ent-{i}"
        ref = f"CN/patent/ZL2020{i:08d}.1"
        cmds.append(("member.add", {"id": member, "name": f"Enterprise {i}", "kind": "enterprise", "country": "CN"}))
        cmds.append(("asset.register", {"ref": ref, "title": "Invention", "owner": [member]}))
        if i:
            cmds.append(("asset.assign", {"ref": ref, "to": [f"ent-{i - 1}"]}))
        else:
            cmds.append(("member.add", {"id": "ent-extra", "name": "Extra", "kind": "enterprise", "country": "CN"}))
    return cmds


def bench_interactive(url: str, commands: list[tuple[str, dict[str, Any]]]) -> Row:
    from ipledger.service import Ledger

    ledger = Ledger(url)
    ledger.exchange  # opened (schema migrated) before the clock starts, as the naive app is  # noqa: B018
    seconds, _ = timed(lambda: [ledger.execute(name, args) for name, args in commands])
    ledger.close()
    return {"seconds": seconds, "commands": len(commands), "commands_per_s": len(commands) / seconds}


def interactive_rounds(ours: Callable[[int], Row], naive: Callable[[int], Row], rounds: int = 3) -> tuple[Row, Row]:
    """Alternate ours and the baseline a few times (fsync timing here is noisy) and keep
    the median round of each, with every round's figure for the record."""
    pairs = [(ours(i), naive(i)) for i in range(rounds)]
    a = sorted((p[0] for p in pairs), key=lambda r: r["commands_per_s"])[rounds // 2]
    b = sorted((p[1] for p in pairs), key=lambda r: r["commands_per_s"])[rounds // 2]
    a = {**a, "rounds": [p[0]["commands_per_s"] for p in pairs]}
    b = {**b, "rounds": [p[1]["commands_per_s"] for p in pairs]}
    return a, b


def baseline_naive(kind: str, folder: Path, n: int, pg: str | None) -> Row:
    """A naive eventsourcing Application: one save per command on the native sqlite/postgres module."""
    from eventsourcing.application import Application

    if kind == "postgres":
        assert pg is not None
        from sqlalchemy.engine import make_url

        u = make_url(pg)
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": u.database or "test",
            "POSTGRES_HOST": u.host or "127.0.0.1",
            "POSTGRES_PORT": str(u.port or 5432),
            "POSTGRES_USER": u.username or "postgres",
            "POSTGRES_PASSWORD": u.password or "",
            "CREATE_TABLE": "y",
        }
    else:
        folder.mkdir(parents=True, exist_ok=True)
        env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(folder / "naive.db")}

    class Naive(Application[Any]):
        name = "Naive" + str(random.randint(0, 10**9))

    app = Naive(env=env)

    def run() -> None:
        ids = []
        for i in range(n):
            if i % 3 == 2:
                thing = app.repository.get(ids[-1])
                thing.change(owner=f"ent-{i}")
            else:
                thing = Thing(name=f"thing {i}", kind="enterprise", country="CN")
                ids.append(thing.id)
            app.save(thing)

    seconds, _ = timed(run)
    app.close()
    return {"seconds": seconds, "commands": n, "commands_per_s": n / seconds}


def bench_queries(url: str, samples: int = 400) -> dict[str, Row]:
    from ipledger.service import Ledger

    ledger = Ledger(url)
    ledger.read_models.catch_up()
    rng = random.Random(1)
    with ledger.exchange.engine.connect() as conn:
        import sqlalchemy as sa

        refs = [r[0] for r in conn.execute(sa.text("select ref from rm_assets"))]
        listings = [r[0] for r in conn.execute(sa.text("select listing_id from rm_listings"))]
    queries: dict[str, Callable[[], Any]] = {
        "owner as-of": lambda: ledger.owner(rng.choice(refs), date(2016 + rng.randint(0, 10), 6, 30)),
        "title": lambda: ledger.title(rng.choice(refs)),
        "encumbrances as-of": lambda: ledger.encumbrances(rng.choice(refs), date(2016 + rng.randint(0, 10), 6, 30)),
        "order book": lambda: ledger.book(rng.choice(listings)),
    }
    out: dict[str, Row] = {}
    for name, query in queries.items():
        times = []
        for _ in range(samples):
            start = time.perf_counter()
            query()
            times.append((time.perf_counter() - start) * 1000)
        times.sort()
        out[name] = {"p50_ms": statistics.median(times), "p99_ms": times[int(len(times) * 0.99) - 1]}
    ledger.close()
    return out


def bench_cold_start(url: str, ref: str, runs: int = 5) -> Row:
    exe = str(Path(sys.executable).with_name("ipledger"))
    env = {**os.environ, "IPLEDGER_DB": url}

    def best(cmd: list[str]) -> float:
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run(cmd, env=env, capture_output=True, check=True)
            times.append(time.perf_counter() - start)
        return min(times)

    return {"seconds": best([exe, "owner", ref]), "baseline_seconds": best([sys.executable, "-c", "pass"])}


def bench_writers(url: str, processes: int, per_process: int) -> Row:
    """Interactive commands/s with N writer processes on one store: each opens its ledger,
    then all start together; the figure is every command over the first start to the last
    finish (process start-up, the same for any program, is not in it)."""
    code = (
        "import sys, time; from ipledger.service import Ledger\n"
        "l = Ledger(sys.argv[1]); p = sys.argv[2]; n = int(sys.argv[3]); l.exchange\n"
        "print('ready', flush=True); sys.stdin.readline(); t = time.time()\n"
        "for i in range(n):\n"
        "    l.execute('member.add', {'id': f'w{p}-{i}', 'name': 'W', 'kind': 'enterprise', 'country': 'CN'})\n"
        "print(t, time.time(), flush=True)\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, url, str(p), str(per_process)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for p in range(processes)
    ]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    spans = []
    for proc in procs:
        out, _ = proc.communicate()
        assert proc.returncode == 0
        first, last = (float(x) for x in out.split())
        spans.append((first, last))
    seconds = max(b for _, b in spans) - min(a for a, _ in spans)
    return {
        "processes": processes,
        "commands": processes * per_process,
        "commands_per_s": processes * per_process / seconds,
    }


# --------------------------------------------------------------------------- report


def compared(figure: str, ours: Row, base: Row, label: str, key: str, note: str = "") -> tuple[str, str, str, str]:
    """One row of the table: our figure beside its baseline from the same run, and the ratio."""
    return (figure, f"{ours[key]:,.0f}{note}", f"{label} {base[key]:,.0f}", ratio(ours[key], base[key]))


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×" if b else "n/a"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--db", default=None, help="postgresql+psycopg://… to also measure PostgreSQL")
    parser.add_argument("--interactive", type=int, default=1500, help="commands per round of the interactive figure")
    args = parser.parse_args()

    results: dict[str, Any] = {
        "events": args.events,
        "seed": args.seed,
        "python": platform.python_version(),
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "at": datetime.now(UTC).isoformat(),
    }
    table: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        workload, lines = write_workload(args.events, args.seed, folder)
        results["import_lines"] = lines

        url = fresh_url("sqlite", folder, "ledger", None)
        imp = bench_import(url, workload)
        raw = baseline_raw_insert(log_rows(url), folder)
        results["import"] = {**imp, "baseline": raw}
        table.append(compared("bulk import events/s (SQLite)", imp, raw, "raw executemany", "events_per_s"))

        reb = bench_rebuild(url)
        dec = baseline_read_decode(url)
        results["rebuild"] = {**reb, "baseline": dec}
        table.append(
            compared(
                "projection rebuild events/s", reb, dec, "raw read+decode", "events_per_s",
                note=f" (peak RSS {reb['peak_rss_mb']:.0f} MB)",
            )
        )  # fmt: skip

        cmds = interactive_commands(args.interactive)
        inter, naive = interactive_rounds(
            lambda i: bench_interactive(fresh_url("sqlite", folder, f"interactive{i}", None), cmds),
            lambda i: baseline_naive("sqlite", folder / f"naive{i}", len(cmds), None),
        )
        results["interactive"] = {**inter, "baseline": naive}
        table.append(compared("interactive commands/s (SQLite)", inter, naive, "naive eventsourcing", "commands_per_s"))

        q = bench_queries(url)
        results["queries"] = q
        for name, row in q.items():
            table.append(
                (
                    f"query {name} p50/p99 ms",
                    f"{row['p50_ms']:.2f} / {row['p99_ms']:.2f}",
                    "—",
                    "p99 < 5 ms" if row["p99_ms"] < 5 else "p99 ≥ 5 ms",
                )
            )

        import sqlalchemy as sa

        engine = sa.create_engine(url)
        with engine.connect() as conn:
            ref = conn.execute(sa.text("select ref from rm_assets limit 1")).scalar_one()
        engine.dispose()
        cold = bench_cold_start(url, ref)
        results["cold_start"] = cold
        table.append(
            (
                "CLI cold start `ipledger owner REF` s",
                f"{cold['seconds']:.3f}",
                f"python -c pass {cold['baseline_seconds']:.3f}",
                ratio(cold["seconds"], cold["baseline_seconds"]),
            )
        )

        if args.db:
            pg = args.db
            pg_url = fresh_url("postgres", folder, "", pg)
            imp_pg = bench_import(pg_url, workload)
            raw_pg = baseline_raw_insert_pg(log_rows(pg_url), pg)
            results["import_postgres"] = {**imp_pg, "baseline": raw_pg}
            table.append(
                compared("bulk import events/s (PostgreSQL)", imp_pg, raw_pg, "raw psycopg executemany", "events_per_s")
            )
            inter_pg, naive_pg = interactive_rounds(
                lambda i: bench_interactive(fresh_url("postgres", folder, "", pg), cmds),
                lambda i: baseline_naive("postgres", folder, len(cmds), pg),
            )
            results["interactive_postgres"] = {**inter_pg, "baseline": naive_pg}
            table.append(
                compared(
                    "interactive commands/s (PostgreSQL, 1 writer)", inter_pg, naive_pg, "naive eventsourcing",
                    "commands_per_s",
                )
            )  # fmt: skip
            for procs in (1, 2):
                w = bench_writers(fresh_url("postgres", folder, "", pg), procs, max(50, args.interactive // 4))
                results[f"writers_postgres_{procs}"] = w
                table.append(
                    compared(
                        f"member.add commands/s (PostgreSQL, {procs} writer process(es))", w, naive_pg,
                        "naive 1 process", "commands_per_s",
                    )
                )  # fmt: skip

    print(f"\n### ipledger bench — {args.events:,} events (seed {args.seed}), {results['machine']}\n")
    print("| figure | ipledger | baseline (same run) | ratio |")
    print("|---|---|---|---|")
    for row in table:
        print("| " + " | ".join(row) + " |")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"bench-{args.events}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nJSON: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
