"""The Merkle tree's costs (issue 17): proofs and checkpoints at 1M events, and the
tree's share of import time.

    python bench/proofs.py                                   # 1M-leaf tree, 100k-event import, SQLite
    python bench/proofs.py --leaves 1000000 --events 0 --db postgresql+psycopg://…/test_b

* Proofs and checkpoints: a store whose tree holds `--leaves` leaves, appended through
  the recorder's own `append_leaves` in batches of 500 (as an import writes them; the
  events themselves are not needed to prove or sign). Each figure is timed through the
  front door (`Ledger.prove_inclusion`, `prove_consistency`, `checkpoint`), the way the
  CLI calls it, warm, at random positions and sizes; median and 95th percentile.
* Import: the bench workload (bench/generator.py) imported into fresh stores with the
  tree kept and with it switched off, alternately, best of `--rounds`; and the time
  spent inside the tree's code during the import with it on. The same for `--commands`
  interactive commands, one transaction each.

Prints a Markdown table and writes JSON to bench/results/.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import fresh_url, write_workload  # noqa: E402

Row = dict[str, Any]


def samples(func: Callable[[], Any], n: int) -> Row:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        func()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {"median_ms": statistics.median(times), "p95_ms": times[int(len(times) * 0.95) - 1], "samples": n}


def build_tree(url: str, leaves: int, batch: int = 500) -> Row:
    """A tree of `leaves` synthetic leaves, appended as the recorder appends them."""
    import sqlalchemy as sa

    from ipledger.ledger.driver import Raw
    from ipledger.ledger.proofs import append_leaves
    from ipledger.ledger.schema import ensure_schema

    engine = sa.create_engine(url)
    ensure_schema(engine)
    start = time.perf_counter()
    with engine.connect() as conn:
        raw = Raw(conn)
        for first in range(0, leaves, batch):
            positions = range(first + 1, min(first + batch, leaves) + 1)
            chunk = [(p, hashlib.sha256(p.to_bytes(8, "big")).digest()) for p in positions]
            append_leaves(raw, None, chunk, log_was_empty=False)
            raw.commit()
    seconds = time.perf_counter() - start
    if engine.dialect.name == "postgresql":  # steady state: not the autovacuum of a table that just grew by 1M rows
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE ipledger_tree_leaves, ipledger_tree_nodes, ipledger_tree_head")
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            size = int(
                conn.exec_driver_sql(
                    "SELECT sum(pg_total_relation_size(c)) FROM unnest(ARRAY['ipledger_tree_leaves', "
                    "'ipledger_tree_nodes', 'ipledger_tree_head']::regclass[]) c"
                ).scalar()
            )
        else:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            size = Path(str(engine.url.database)).stat().st_size  # the store holds the tree only
    engine.dispose()
    per_leaf = seconds / leaves * 1e6
    return {"leaves": leaves, "seconds": seconds, "us_per_leaf": per_leaf, "bytes_per_leaf": size / leaves}


def bench_proofs(url: str, leaves: int, n: int) -> Row:
    from ipledger.ledger.checkpoints import Signer
    from ipledger.service import Ledger

    signer = Signer.generate("bench.example")
    ledger = Ledger(url)
    ledger.set_origin("bench.example/ipledger")
    ledger.checkpoint(signer)  # warm, and the default size of proofs
    rng = random.Random(17)
    result = {
        "checkpoint": samples(lambda: ledger.checkpoint(signer), n),
        "inclusion": samples(lambda: ledger.prove_inclusion(rng.randint(1, leaves)), n),
        "inclusion_at_size": samples(
            lambda: ledger.prove_inclusion(rng.randint(1, leaves // 2), rng.randint(leaves // 2, leaves)), n
        ),
        "consistency": samples(lambda: ledger.prove_consistency(rng.randint(1, leaves)), n),
        "consistency_between": samples(
            lambda: ledger.prove_consistency(rng.randint(1, leaves // 2), rng.randint(leaves // 2, leaves)), n
        ),
    }
    ledger.close()
    return result


def with_and_without_tree(kind: str, folder: Path, pg: str | None, rounds: int, name: str,
                          work: Callable[[str], Row]) -> Row:  # fmt: skip
    """Run `work` on fresh stores with the tree kept and switched off, alternately (after a
    warm-up run that counts for neither); best of `rounds` each, and the share of the
    time spent inside the tree's code with it on."""
    from ipledger.ledger import recorder

    keep = recorder.append_leaves, recorder.leaves_of
    inside = [0.0]

    def timed_append(*args: Any, **kwargs: Any) -> None:
        start = time.perf_counter()
        keep[0](*args, **kwargs)
        inside[0] += time.perf_counter() - start

    def timed_leaves(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        result = keep[1](*args, **kwargs)
        inside[0] += time.perf_counter() - start
        return result

    work(fresh_url(kind, folder, f"{name}-warm-up", pg))  # imports, caches: in neither figure
    with_tree, without_tree, shares = [], [], []
    for r in range(rounds):
        inside[0] = 0.0
        recorder.append_leaves, recorder.leaves_of = timed_append, timed_leaves  # type: ignore[assignment]
        on = work(fresh_url(kind, folder, f"{name}-on-{r}", pg))
        shares.append(inside[0] / on["seconds"])
        recorder.append_leaves, recorder.leaves_of = (lambda *a, **k: None), (lambda *a, **k: [])  # type: ignore[assignment]
        off = work(fresh_url(kind, folder, f"{name}-off-{r}", pg))
        recorder.append_leaves, recorder.leaves_of = keep  # type: ignore[assignment]
        with_tree.append(on["seconds"])
        without_tree.append(off["seconds"])
    best_on, best_off = min(with_tree), min(without_tree)
    return {
        "with_tree_s": best_on,
        "without_tree_s": best_off,
        "extra_share": (best_on - best_off) / best_off,
        "inside_tree_share": min(shares),
        "runs_with": with_tree,
        "runs_without": without_tree,
        **{k: v for k, v in on.items() if k in ("events", "commands")},
    }


def bench_import_share(kind: str, folder: Path, events: int, rounds: int, pg: str | None) -> Row:
    """The bench workload imported with and without the tree."""
    from bench.run import bench_import

    workload, _ = write_workload(events, 7, folder)
    return with_and_without_tree(kind, folder, pg, rounds, "import", lambda url: bench_import(url, workload))


def bench_interactive_share(kind: str, folder: Path, commands: int, rounds: int, pg: str | None) -> Row:
    """One command per transaction (the interactive path), with and without the tree."""
    from bench.run import bench_interactive, interactive_commands

    cmds = interactive_commands(commands)
    return with_and_without_tree(kind, folder, pg, rounds, "interactive", lambda url: bench_interactive(url, cmds))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=100_000, help="import workload size (0: skip)")
    parser.add_argument("--commands", type=int, default=600, help="interactive commands (0: skip)")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--db", help="a PostgreSQL URL (its tables are dropped); default: SQLite files")
    args = parser.parse_args()
    kind = "postgres" if args.db else "sqlite"
    results: Row = {"store": kind, "python": platform.python_version(), "at": datetime.now(UTC).isoformat()}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        url = fresh_url(kind, folder, "proofs", args.db)
        results["build"] = build_tree(url, args.leaves)
        results["proofs"] = bench_proofs(url, args.leaves, args.samples)
        if args.events:
            results["import"] = bench_import_share(kind, folder, args.events, args.rounds, args.db)
        if args.commands:
            results["interactive"] = bench_interactive_share(kind, folder, args.commands, args.rounds, args.db)
    b, p = results["build"], results["proofs"]
    print(f"| figure ({kind}, {args.leaves:,} leaves) | median ms | p95 ms | goal |")
    print("|---|---|---|---|")
    for name, goal in [("inclusion", "< 5"), ("inclusion_at_size", "< 5"), ("consistency", "< 5"),
                       ("consistency_between", "< 5"), ("checkpoint", "< 5")]:  # fmt: skip
        print(f"| {name} | {p[name]['median_ms']:.2f} | {p[name]['p95_ms']:.2f} | {goal} |")
    print(
        f"\ntree append: {b['us_per_leaf']:.1f} µs per leaf ({b['seconds']:.1f} s for {b['leaves']:,}); "
        f"stored: {b['bytes_per_leaf']:.0f} bytes per leaf"
    )
    if "import" in results:
        i = results["import"]
        print(
            f"import of {i['events']:,} events: {i['with_tree_s']:.1f} s with the tree, {i['without_tree_s']:.1f} s "
            f"without ({i['extra_share']:+.1%}); time inside the tree's code {i['inside_tree_share']:.1%} (goal < 10%)"
        )
    if "interactive" in results:
        i = results["interactive"]
        on_ms, off_ms = (i[k] / i["commands"] * 1000 for k in ("with_tree_s", "without_tree_s"))
        print(
            f"{i['commands']} interactive commands: {on_ms:.2f} ms each with the tree, "
            f"{off_ms:.2f} ms without ({i['extra_share']:+.1%}); "
            f"inside the tree's code {i['inside_tree_share']:.1%}"
        )
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    path = out / f"proofs-{kind}-{args.leaves}-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
