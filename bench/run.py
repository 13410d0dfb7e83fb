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
    """`ipledger projections rebuild` in a child process: wall time and peak RSS (its own,
    and its second process's: ledger/prover.py)."""
    (seconds, head, rss), helper = in_child(
        "t = time.perf_counter(); ledger.rebuild(); d = time.perf_counter() - t\nprint(d, ledger.read_models.head())\n",
        url,
    )
    return {
        "seconds": float(seconds), "events": int(head), "events_per_s": int(head) / float(seconds),
        "peak_rss_mb": int(rss) / 1024, "helper_peak_rss_mb": helper / 1024,
    }  # fmt: skip


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


#: What `ipledger import` writes: the log, its hash chain, the command records and the
#: Merkle tree (its head is one row, rewritten). The floors below copy exactly these rows.
IMPORT_TABLES = (
    "ipledger_events", "ipledger_chain", "ipledger_commands",
    "ipledger_tree_leaves", "ipledger_tree_nodes", "ipledger_tree_head",
)  # fmt: skip


def sqlite_path(url: str) -> str:
    return url.removeprefix("sqlite:///")


def sqlite_tables(url: str, prefix: str) -> list[str]:
    conn = sqlite3.connect(sqlite_path(url))
    names = [r[0] for r in conn.execute("select name from sqlite_master where type='table'")]
    conn.close()
    return [n for n in names if n.startswith(prefix)]


def copy_rows(url: str, tables: tuple[str, ...] | list[str]) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    """Every row of these tables as stored (columns and values), to write again elsewhere."""
    out: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
    if url.startswith("sqlite"):
        conn = sqlite3.connect(sqlite_path(url))
        for table in tables:
            cur = conn.execute(f'select * from "{table}"')
            out[table] = ([d[0] for d in cur.description], cur.fetchall())
        conn.close()
        return out
    with pg_connect(url) as pconn, pconn.cursor() as cur:
        for table in tables:
            cur.execute(f'select * from "{table}"')
            assert cur.description is not None
            out[table] = ([d.name for d in cur.description], cur.fetchall())
    return out


def pg_connect(url: str) -> Any:
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    return psycopg.connect(
        host=u.host or "127.0.0.1", port=u.port or 5432, dbname=u.database or "test", user=u.username or "postgres"
    )


def _schema(source: sqlite3.Connection, tables: list[str], kind: str) -> list[str]:
    marks = ",".join("?" * len(tables))
    return [
        r[0]
        for r in source.execute(
            f"select sql from sqlite_master where type=? and tbl_name in ({marks}) and sql is not null",
            (kind, *tables),
        )
    ]


def _empty_like(url: str, tables: list[str], path: Path, *, indexes: bool) -> tuple[sqlite3.Connection, list[str]]:
    """A new SQLite file at `path` with the store's own DDL for `tables` (and their indexes,
    unless `indexes` is False: then their DDL is returned, to build after a load) and the
    ledger's pragmas (WAL, synchronous=FULL)."""
    from ipledger.ledger.config import sqlite_pragmas

    path.unlink(missing_ok=True)
    source = sqlite3.connect(sqlite_path(url))
    ddl, later = _schema(source, tables, "table"), _schema(source, tables, "index")
    source.close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("pragma journal_mode=wal")
    sqlite_pragmas(conn, None)
    for statement in ddl + (later if indexes else []):
        conn.execute(statement)
    return conn, [] if indexes else later


def floor_sqlite(
    url: str, rows: dict[str, tuple[list[str], list[tuple[Any, ...]]]], folder: Path, name: str,
    indexes_after: bool, before: Callable[[], Any] | None = None,
) -> Row:  # fmt: skip
    """A write floor on SQLite: the same tables (their own DDL and indexes, the ledger's
    pragmas), one executemany per table, one transaction. `before` runs inside the timing
    (the read-model floor reads and decodes the log first). `indexes_after`: indexes are
    built after the load, the fastest way to fill a fresh table (as a rebuild may)."""
    conn, indexes = _empty_like(url, list(rows), folder / f"{name}.db", indexes=not indexes_after)

    def run() -> None:
        if before is not None:
            before()
        conn.execute("begin")
        for table, (columns, values) in rows.items():
            marks = ",".join("?" * len(columns))
            conn.executemany(f'insert into "{table}" ({",".join(columns)}) values ({marks})', values)
        for ddl in indexes:  # built after the load (none here unless indexes_after)
            conn.execute(ddl)
        conn.execute("commit")

    seconds, _ = timed(run)
    conn.close()
    return {"seconds": seconds, "rows": sum(len(v) for _, v in rows.values())}


def floor_postgres(url: str, rows: dict[str, tuple[list[str], list[tuple[Any, ...]]]]) -> Row:
    """The import's write floor on PostgreSQL: copies of the tables with every index
    (`like … including all`), one executemany per table, one transaction."""
    with pg_connect(url) as conn:
        for table in rows:
            conn.execute(f'drop table if exists "floor_{table}"')
            conn.execute(f'create table "floor_{table}" (like "{table}" including all)')
        conn.commit()

        def run() -> None:
            with conn.cursor() as cur:
                for table, (columns, values) in rows.items():
                    marks = ",".join(["%s"] * len(columns))
                    cur.executemany(f'insert into "floor_{table}" ({",".join(columns)}) values ({marks})', values)
            conn.commit()

        seconds, _ = timed(run)
        for table in rows:
            conn.execute(f'drop table "floor_{table}"')
        conn.commit()
    return {"seconds": seconds, "rows": sum(len(v) for _, v in rows.values())}


def floor_interactive(url: str, folder: Path) -> Row:
    """The interactive write floor on SQLite: the rows the interactive commands wrote,
    written again by raw `sqlite3`, one durable transaction per command (its events, chain
    links, Merkle leaves and completed nodes, its command record, the tree's head), into
    the same tables and indexes with the ledger's pragmas (synchronous=FULL). What storing
    a command costs here before any of the ledger's own work."""
    rows = copy_rows(url, IMPORT_TABLES)
    conn, _ = _empty_like(url, list(rows), folder / "interactive-floor.db", indexes=True)

    def by(table: str, column: str) -> dict[int, list[tuple[Any, ...]]]:
        columns, values = rows[table]
        at = columns.index(column)
        grouped: dict[int, list[tuple[Any, ...]]] = {}
        for row in values:
            grouped.setdefault(row[at], []).append(row)
        return grouped

    def insert(table: str) -> str:
        columns = rows[table][0]
        return f'insert into "{table}" ({",".join(columns)}) values ({",".join("?" * len(columns))})'

    events, chain, leaves = (
        by("ipledger_events", "id"),
        by("ipledger_chain", "position"),
        by("ipledger_tree_leaves", "position"),
    )
    leaf_position = {row[0]: row[1] for row in rows["ipledger_tree_leaves"][1]}  # leaf index -> log position
    nodes: dict[int, list[tuple[Any, ...]]] = {}
    for level, idx, hash_ in rows["ipledger_tree_nodes"][1]:  # a node is written with its last leaf
        nodes.setdefault(leaf_position[(idx + 1) * 2**level - 1], []).append((level, idx, hash_))
    (head,) = rows["ipledger_tree_head"][1]
    at = rows["ipledger_commands"][0].index("position")
    commands = sorted(rows["ipledger_commands"][1], key=lambda r: r[at])
    plan, last = [], 0
    for record in commands:
        positions = range(last + 1, record[at] + 1)
        plan.append(
            (
                [r for p in positions for r in events[p]], [r for p in positions for r in chain[p]],
                [r for p in positions for r in leaves[p]], [r for p in positions for r in nodes.get(p, ())], record,
            )
        )  # fmt: skip
        last = record[at]
    sql = [insert(t) for t in ("ipledger_events", "ipledger_chain", "ipledger_tree_leaves", "ipledger_tree_nodes")]
    conn.execute(insert("ipledger_tree_head"), head)

    def run() -> None:
        for *tables, record in plan:
            conn.execute("begin immediate")
            for statement, values in zip(sql, tables, strict=True):
                if values:
                    conn.executemany(statement, values)
            conn.execute(insert("ipledger_commands"), record)
            conn.execute("update ipledger_tree_head set size = size + 1, frontier = ? where id = 1", (head[2],))
            conn.execute("commit")

    seconds, _ = timed(run)
    conn.close()
    return {"seconds": seconds, "commands": len(plan), "commands_per_s": len(plan) / seconds}


def per_event(row: Row, events: int) -> Row:
    return {**row, "events_per_s": events / row["seconds"]}


def in_child(code: str, url: str) -> tuple[list[str], int]:
    """Run `code` in a fresh process (`ledger` open on `url`); it prints its figures. Peak
    RSS comes from /proc VmHWM: ru_maxrss would include the parent's memory copied at fork.
    Also returns the peak RSS (KiB) of the processes it starts (a rebuild's, a verify's
    and a restore's second process: ledger/prover.py, projections/scratch.py): their own
    VmHWM, read every 20 ms while they run."""
    prelude = "import sys, time; from ipledger.service import Ledger; ledger = Ledger(sys.argv[1])\n"
    hwm = "print([x for x in open('/proc/self/status') if x.startswith('VmHWM')][0].split()[1])\n"
    env = {**os.environ, "IPLEDGER_DB": url}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        command = [sys.executable, "-c", prelude + code + hwm, url]
        proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=err)
        helpers = 0
        while proc.poll() is None:
            helpers = max(helpers, *(_peak_rss_kib(pid) for pid in _children(proc.pid)), 0)
            time.sleep(0.02)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(err.read())
        return out.read().split(), helpers


def rss_note(row: Row) -> str:
    """A rebuild's or verify's peak RSS, with its prover's when a second process proved the log."""
    own = f"{row['peak_rss_mb']:.0f} MB"
    if not row["helper_peak_rss_mb"]:
        return own
    return f"{own} + {row['helper_peak_rss_mb']:.0f} MB in its prover"


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _peak_rss_kib(pid: int) -> int:
    """A process's peak RSS so far (VmHWM: a sample of VmRSS could fall between peaks)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def bench_verify(url: str) -> Row:
    """`ipledger audit verify`: the chain, every Merkle leaf, every projection reconciled."""
    (seconds, events, rss), helper = in_child(
        "t = time.perf_counter(); r = ledger.verify(); d = time.perf_counter() - t\n"
        "assert r['ok'], r; print(d, ledger.read_models.head())\n",
        url,
    )
    return {
        "seconds": float(seconds), "events_per_s": int(events) / float(seconds),
        "peak_rss_mb": int(rss) / 1024, "helper_peak_rss_mb": helper / 1024,
    }  # fmt: skip


def bench_restore(url: str, folder: Path) -> Row:
    """`ipledger restore FILE` of the store's own export into a new store (every hash
    checked, read models folded beside it or rebuilt), and the export read back identical."""
    from ipledger.service import Ledger

    export = folder / "export.jsonl"
    source = Ledger(url)
    with export.open("wb") as f:
        for line in source.export():
            f.write(line + b"\n")
    source.close()
    target = fresh_url("sqlite", folder, "restored", None)
    (seconds, events, rss), helper = in_child(
        f"t = time.perf_counter(); ledger.restore(open({str(export)!r}, 'rb')); d = time.perf_counter() - t\n"
        "print(d, ledger.read_models.head())\n",
        target,
    )
    again = Ledger(target)
    identical = b"".join(line + b"\n" for line in again.export()) == export.read_bytes()
    again.close()
    return {
        "seconds": float(seconds), "events_per_s": int(events) / float(seconds), "peak_rss_mb": int(rss) / 1024,
        "helper_peak_rss_mb": helper / 1024, "export_identical": identical,
    }  # fmt: skip


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


def naive_commands(app: Any, n: int) -> None:
    """The naive application's share of the interactive workload: two new aggregates,
    then a change to the last one, one `save` each."""
    ids = []
    for i in range(n):
        if i % 3 == 2:
            thing = app.repository.get(ids[-1])
            thing.change(owner=f"ent-{i}")
        else:
            thing = Thing(name=f"thing {i}", kind="enterprise", country="CN")
            ids.append(thing.id)
        app.save(thing)


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

    seconds, _ = timed(lambda: naive_commands(app, n))
    app.close()
    return {"seconds": seconds, "commands": n, "commands_per_s": n / seconds}


#: The events of one trail page the bench reads (`ipledger trail --asset REF --limit 50`).
TRAIL_PAGE = 50


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
        "trail page": lambda: ledger.trail(asset=rng.choice(refs), limit=TRAIL_PAGE),
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
    """Best of `runs`, with Python's bytecode cache as an installed program has it (an
    environment that sets PYTHONDONTWRITEBYTECODE, as some CI images do, would have every
    run compile the project's 11k lines again: 30 ms of a query, 75 ms of a write)."""
    exe = str(Path(sys.executable).with_name("ipledger"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["IPLEDGER_DB"] = url

    def best(cmd: Callable[[int], list[str]]) -> float:
        times = []
        for i in range(runs):
            start = time.perf_counter()
            subprocess.run(cmd(i), env=env, capture_output=True, check=True)
            times.append(time.perf_counter() - start)
        return min(times)

    def member_add(i: int) -> list[str]:  # a new member each run: one recorded command
        return [exe, "member", "add", f"cold-{i}", "--name", f"Cold {i}", "--kind", "enterprise", "--country", "CN"]

    query = best(lambda _: [exe, "owner", ref])
    write = best(member_add)
    baseline = best(lambda _: [sys.executable, "-c", "pass"])
    return {"seconds": query, "write_seconds": write, "baseline_seconds": baseline}


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
        written = copy_rows(url, IMPORT_TABLES)
        floor = per_event(floor_sqlite(url, written, folder, "import-floor", indexes_after=False), imp["events"])
        results["import"]["write_floor"] = floor
        table.append(
            compared(
                "bulk import events/s (SQLite), against its own write floor", imp, floor,
                f"executemany of its {floor['rows']:,} rows", "events_per_s",
            )
        )  # fmt: skip
        del written

        reb = bench_rebuild(url)
        dec = baseline_read_decode(url)
        rm_rows = copy_rows(url, sqlite_tables(url, "rm_"))
        read = lambda: baseline_read_decode(url)  # noqa: E731 - the floor reads and decodes the log too
        rm_floor = per_event(
            floor_sqlite(url, rm_rows, folder, "rebuild-floor", indexes_after=True, before=read), reb["events"]
        )
        del rm_rows
        results["rebuild"] = {**reb, "baseline": dec, "write_floor": rm_floor}
        table.append(
            compared(
                "projection rebuild events/s", reb, dec, "raw read+decode", "events_per_s",
                note=f" (peak RSS {rss_note(reb)})",
            )
        )  # fmt: skip
        table.append(
            compared(
                "projection rebuild events/s, against the read-model write floor", reb, rm_floor,
                f"read+decode+executemany of its {rm_floor['rows']:,} rows", "events_per_s",
            )
        )  # fmt: skip

        ver = bench_verify(url)
        results["verify"] = {**ver, "baseline": dec}
        table.append(
            compared(
                "`audit verify` events/s (chain, tree, projections)", ver, dec, "raw read+decode", "events_per_s",
                note=f" (peak RSS {rss_note(ver)})",
            )
        )  # fmt: skip
        res = bench_restore(url, folder)
        results["restore"] = {**res, "baseline": raw}
        table.append(
            compared(
                "`restore` events/s (hashes checked, read models made)", res, raw, "import limit", "events_per_s",
                note="" if res["export_identical"] else " (EXPORT DIFFERS)",
            )
        )  # fmt: skip

        cmds = interactive_commands(args.interactive)
        inter, naive = interactive_rounds(
            lambda i: bench_interactive(fresh_url("sqlite", folder, f"interactive{i}", None), cmds),
            lambda i: baseline_naive("sqlite", folder / f"naive{i}", len(cmds), None),
        )
        floor = floor_interactive(fresh_url("sqlite", folder, "interactive0", None), folder)
        results["interactive"] = {**inter, "baseline": naive, "write_floor": floor}
        table.append(compared("interactive commands/s (SQLite)", inter, naive, "naive eventsourcing", "commands_per_s"))
        table.append(
            compared(
                "interactive commands/s (SQLite), against its own write floor", inter, floor,
                "raw sqlite3, its rows, a transaction each", "commands_per_s",
            )
        )  # fmt: skip

        q = bench_queries(url)
        results["queries"] = q
        for name, row in q.items():
            table.append(
                (
                    f"query {name} p50/p99 ms",
                    f"{row['p50_ms']:.2f} / {row['p99_ms']:.2f}",
                    "—",
                    "p99 < 2 ms" if row["p99_ms"] < 2 else "p99 ≥ 2 ms",
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
        table.append(
            (
                "CLI cold start of a write `ipledger member add …` s",
                f"{cold['write_seconds']:.3f}",
                f"python -c pass {cold['baseline_seconds']:.3f}",
                ratio(cold["write_seconds"], cold["baseline_seconds"]),
            )
        )

        if args.db:
            pg = args.db
            pg_url = fresh_url("postgres", folder, "", pg)
            imp_pg = bench_import(pg_url, workload)
            raw_pg = baseline_raw_insert_pg(log_rows(pg_url), pg)
            floor_pg = per_event(floor_postgres(pg_url, copy_rows(pg_url, IMPORT_TABLES)), imp_pg["events"])
            results["import_postgres"] = {**imp_pg, "baseline": raw_pg, "write_floor": floor_pg}
            table.append(
                compared("bulk import events/s (PostgreSQL)", imp_pg, raw_pg, "raw psycopg executemany", "events_per_s")
            )
            table.append(
                compared(
                    "bulk import events/s (PostgreSQL), against its own write floor", imp_pg, floor_pg,
                    f"executemany of its {floor_pg['rows']:,} rows", "events_per_s",
                )
            )  # fmt: skip
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
