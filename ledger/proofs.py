"""The Merkle tree kept beside the log, its proofs, and the signed checkpoints (shared/spec/proofs.md).

The recorder appends every event's leaf in the transaction that stores the event
(`append_leaves`, from `LedgerRecorder._write`, the one place events are written, by
commands and imports alike). The leaf is the event's export line (ledger.chain.export_line),
so anyone can recompute the root from `ipledger export` with any RFC 9162 implementation.

Storage (migration 0005), sized for speed and for space:

* `ipledger_tree_leaves (idx, position, hash)`: one row per event, its leaf hash. The
  position maps an event to its leaf (PostgreSQL may leave gaps in positions).
* `ipledger_tree_nodes (level, idx, hash)`: the perfect subtrees at levels 4, 8, 12, …
  (STRIDE), a sixteenth of a row per event. A proof's node at another level is folded
  from at most 2**(STRIDE-1) stored nodes below it: a proof at 1M events reads about a
  hundred hashes in one query and never recomputes the tree.
* `ipledger_tree_head (id = 1, size, frontier)`: the tree size and the roots of the
  perfect subtrees it ends with (at most 64 hashes), so an append reads one row.
* `ipledger_checkpoints (id, size, root, note)`: every signed checkpoint, append-only.
* `ipledger_settings (name, value)`: the log's origin (its name in checkpoints).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, LargeBinary, SmallInteger, String, Table, Text, select
from sqlalchemy.engine import Connection

from ipledger.domain.errors import IntegrityError, InvalidInput, NotFound
from ipledger.ledger import merkle
from ipledger.ledger.chain import POSITION, chain_table, events_table, export_line, ledger_metadata
from ipledger.ledger.merkle import Node

if TYPE_CHECKING:
    from eventsourcing.persistence import StoredEvent

    from ipledger.ledger.driver import Raw

#: Interior nodes are stored at every STRIDE-th level.
STRIDE = 4

leaves_table = Table(
    "ipledger_tree_leaves",
    ledger_metadata,
    Column("idx", POSITION, primary_key=True, autoincrement=False),
    Column("position", POSITION, nullable=False),
    Column("hash", LargeBinary(), nullable=False),
)

nodes_table = Table(
    "ipledger_tree_nodes",
    ledger_metadata,
    Column("level", SmallInteger(), primary_key=True, autoincrement=False),
    Column("idx", POSITION, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(), nullable=False),
    sqlite_with_rowid=False,
)

head_table = Table(
    "ipledger_tree_head",
    ledger_metadata,
    Column("id", SmallInteger(), primary_key=True, autoincrement=False),
    Column("size", POSITION, nullable=False),
    Column("frontier", LargeBinary(), nullable=False),
)

checkpoints_table = Table(
    "ipledger_checkpoints",
    ledger_metadata,
    Column("id", POSITION, primary_key=True, autoincrement=True),
    Column("size", POSITION, nullable=False),
    Column("root", String(64), nullable=False),
    Column("note", Text(), nullable=False),
)

settings_table = Table(
    "ipledger_settings",
    ledger_metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text(), nullable=False),
)

HEAD_SQL = "SELECT size, frontier FROM ipledger_tree_head WHERE id = 1"


# --------------------------------------------------------------------------- writing


def leaves_of(
    positions: Sequence[int], stored_events: Sequence[StoredEvent], links: Sequence[tuple[int, str]]
) -> list[tuple[int, bytes]]:
    """(position, leaf hash) of newly stored events, in position order; `links` are their
    chain links in position order (ledger.chain.link_events)."""
    ordered = sorted(zip(positions, stored_events, strict=True), key=lambda pair: pair[0])
    return [
        (
            position,
            merkle.leaf_hash(
                export_line(position, str(e.originator_id), e.originator_version, e.topic, bytes(e.state), link)
            ),
        )  # fmt: skip
        for (position, e), (_, link) in zip(ordered, links, strict=True)
    ]


def _frontier(blob: bytes) -> list[bytes]:
    return [blob[i : i + merkle.HASH_SIZE] for i in range(0, len(blob), merkle.HASH_SIZE)]


def append_leaves(
    raw: Raw, head: tuple[Any, Any] | None, leaves: Sequence[tuple[int, bytes]], *, log_was_empty: bool
) -> None:
    """Append leaves to the stored tree, inside the caller's write transaction (under the
    write lock). `head` is the head row read under that lock, (size, frontier), or None
    to read it here. Only a log that was empty may have no head row yet (tables made
    by LedgerRecorder.create_table, as the recorder contract's tests make them, rather
    than by the migrations)."""
    if head is None or head[0] is None:
        rows = raw.rows(HEAD_SQL)
        head = (rows[0][0], rows[0][1]) if rows else (None, None)
    mark = raw.mark
    if head[0] is None:
        if not log_was_empty:
            raise IntegrityError("tree: the Merkle tree's head row is missing (store altered?)")
        raw.run(f"INSERT INTO ipledger_tree_head (id, size, frontier) VALUES (1, 0, {mark})", (b"",))
        head = (0, b"")
    size, frontier = int(head[0] or 0), _frontier(bytes(head[1] or b""))
    first = size
    size, completed = merkle.append(size, frontier, (h for _, h in leaves))
    _insert(raw, "ipledger_tree_leaves (idx, position, hash)", [(first + i, p, h) for i, (p, h) in enumerate(leaves)])
    _insert(raw, "ipledger_tree_nodes (level, idx, hash)", [row for row in completed if row[0] % STRIDE == 0])
    raw.run(f"UPDATE ipledger_tree_head SET size = {mark}, frontier = {mark} WHERE id = 1", (size, b"".join(frontier)))


def _insert(raw: Raw, into: str, rows: Sequence[tuple[int, int, bytes]]) -> None:
    """Insert rows of (integer, integer, hash). On PostgreSQL as three arrays in one
    statement of three parameters: psycopg re-parses a statement of more than 50
    parameters every time, and a row per statement (executemany) costs a round trip's
    work each; either made the tree a fifth of an import's time (bench/proofs.py)."""
    if not rows:
        return
    if raw.sqlite:
        sql = f"INSERT INTO {into} VALUES (?, ?, ?)"
        raw.run(sql, rows[0]) if len(rows) == 1 else raw.run(sql, rows, many=True)
        return
    columns = [list(column) for column in zip(*rows, strict=True)]  # lists: psycopg sends them as arrays
    raw.run(f"INSERT INTO {into} SELECT * FROM unnest(%b::bigint[], %b::bigint[], %b::bytea[])", columns)


def fill_tree(conn: Connection) -> int:
    """Build the tree from the log as it is: for a store written before the tree existed
    (migration 0005). Replaces whatever tree rows there were; returns the tree size."""
    conn.execute(leaves_table.delete())
    conn.execute(nodes_table.delete())
    conn.execute(head_table.delete())
    size, frontier = 0, list[bytes]()
    batch: list[tuple[int, bytes]] = []
    for leaf in log_leaves(conn):
        batch.append(leaf)
        if len(batch) == 5000:
            size = _store_batch(conn, size, frontier, batch)
            batch = []
    size = _store_batch(conn, size, frontier, batch)
    conn.execute(head_table.insert().values(id=1, size=size, frontier=b"".join(frontier)))
    return size


def log_leaves(conn: Connection) -> Iterator[tuple[int, bytes]]:
    """(position, leaf hash) of every event in the log as it is now, from its export lines."""
    e = events_table.c
    rows = conn.execute(
        select(e.id, e.originator_id, e.originator_version, e.topic, e.state, chain_table.c.hash)
        .select_from(events_table.outerjoin(chain_table, chain_table.c.position == e.id))
        .order_by(e.id)
        .execution_options(stream_results=True, yield_per=5000)
    )
    for r in rows:
        line = export_line(r.id, str(r.originator_id), r.originator_version, r.topic, bytes(r.state), r.hash)
        yield r.id, merkle.leaf_hash(line)


def _store_batch(conn: Connection, size: int, frontier: list[bytes], batch: list[tuple[int, bytes]]) -> int:
    if not batch:
        return size
    first = size
    size, completed = merkle.append(size, frontier, (h for _, h in batch))
    rows = [{"idx": first + i, "position": p, "hash": h} for i, (p, h) in enumerate(batch)]
    conn.execute(leaves_table.insert(), rows)
    nodes = [{"level": lv, "idx": i, "hash": h} for lv, i, h in completed if lv % STRIDE == 0]
    if nodes:
        conn.execute(nodes_table.insert(), nodes)
    return size


# --------------------------------------------------------------------------- reading


class Tree:
    """The stored tree, read on one connection: tree heads and proofs in O(log n) rows."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def head(self) -> tuple[int, bytes]:
        """The current tree size and root."""
        row = self.conn.exec_driver_sql(HEAD_SQL).first()
        if row is None:
            raise IntegrityError("tree: the Merkle tree's head row is missing (store altered?)")
        return int(row[0]), merkle.frontier_root(_frontier(bytes(row[1])))

    def root(self, size: int) -> bytes:
        """The root of the tree of the first `size` leaves (from stored hashes)."""
        if size == 0:
            return merkle.EMPTY_ROOT
        nodes = merkle.root_nodes(size)
        return merkle.fold([self.hashes(nodes)[n] for n in nodes])

    def hashes(self, nodes: Iterable[Node]) -> dict[Node, bytes]:
        """The hashes of perfect subtrees, in one query: a node at a level that is not
        stored is folded from its stored descendants STRIDE-aligned below it."""
        wanted = sorted(set(nodes))
        if not wanted:
            return {}
        by_base: dict[int, set[int]] = {}
        for level, idx in wanted:
            base = level - level % STRIDE
            by_base.setdefault(base, set()).update(range(idx << (level - base), (idx + 1) << (level - base)))
        parts = []  # one index scan per stored level (a planner plans a few, not dozens)
        for base, ids in sorted(by_base.items()):
            listed = ",".join(map(str, sorted(ids)))
            if base == 0:
                parts.append(f"SELECT 0, idx, hash FROM ipledger_tree_leaves WHERE idx IN ({listed})")
            else:
                parts.append(
                    f"SELECT level, idx, hash FROM ipledger_tree_nodes WHERE level = {base} AND idx IN ({listed})"
                )
        stored = {(int(r[0]), int(r[1])): bytes(r[2]) for r in self.conn.exec_driver_sql(" UNION ALL ".join(parts))}
        found = {}
        for level, idx in wanted:
            base = level - level % STRIDE
            width = 1 << (level - base)
            try:
                below = [stored[(base, (idx << (level - base)) + j)] for j in range(width)]
            except KeyError:
                raise IntegrityError(
                    f"tree: a stored hash under node ({level}, {idx}) is missing (store altered?)"
                ) from None
            found[(level, idx)] = merkle.perfect_root(below)
        return found

    def inclusion(self, index: int, size: int) -> list[bytes]:
        plan = merkle.inclusion_plan(index, size)
        return merkle.resolve(plan, self.hashes(merkle.needed([plan])))

    def consistency(self, first: int, second: int) -> list[bytes]:
        plan = merkle.consistency_plan(first, second)
        return merkle.resolve(plan, self.hashes(merkle.needed([plan])))

    def consistency_with_roots(self, first: int, second: int) -> tuple[bytes, bytes, list[bytes]]:
        """Both roots and the proof, in one read."""
        plans = [[merkle.root_nodes(first)], [merkle.root_nodes(second)]]
        if 0 < first < second:
            plans.append(merkle.consistency_plan(first, second))
        hashes = self.hashes(merkle.needed(plans)) if second else {}
        first_root = merkle.resolve(plans[0], hashes)[0] if first else merkle.EMPTY_ROOT
        second_root = merkle.resolve(plans[1], hashes)[0] if second else merkle.EMPTY_ROOT
        path = merkle.resolve(plans[2], hashes) if len(plans) == 3 else []
        return first_root, second_root, path

    def leaf(self, position: int, size: int) -> tuple[int, bytes]:
        """The leaf index and hash of the event at `position`. Positions run ahead of leaf
        indices by the gaps before them (PostgreSQL), so the leaf is among the `gaps + 1`
        leaves ending at index position − 1: one bounded range read."""
        if size == 0:
            raise InvalidInput(f"position: the tree of size 0 has no event {position}")
        if position >= 1:  # one read: the window of candidate leaves, bounded by the last leaf's position
            row = self.conn.exec_driver_sql(
                f"SELECT idx, hash FROM ipledger_tree_leaves WHERE position = {int(position)} AND idx BETWEEN "
                f"{int(position) - 1} - ((SELECT position FROM ipledger_tree_leaves WHERE idx = {size - 1}) - {size}) "
                f"AND {min(position - 1, size - 1)}"
            ).first()
            if row is not None:
                return int(row[0]), bytes(row[1])
        last = self.conn.exec_driver_sql(f"SELECT position FROM ipledger_tree_leaves WHERE idx = {size - 1}").scalar()
        if last is None:
            raise IntegrityError(f"tree: leaf {size - 1} is missing (store altered?)")
        gaps = int(last) - size
        if gaps < 0:
            raise IntegrityError(f"tree: leaf {size - 1} names position {last}, before its index (store altered?)")
        if not 1 <= position <= last:
            raise InvalidInput(
                f"position: event {position} is not in the tree of size {size} (its last event is at position {last})"
            )
        lo, hi = max(0, position - 1 - gaps), min(position - 1, size - 1)
        row = self.conn.exec_driver_sql(
            f"SELECT idx, hash FROM ipledger_tree_leaves WHERE idx BETWEEN {lo} AND {hi} AND position = {int(position)}"
        ).first()
        if row is None:
            raise NotFound(f"position: no event {position} in the tree (a gap in positions)")
        return int(row[0]), bytes(row[1])

    def position_of(self, index: int) -> int:
        value = self.conn.execute(select(leaves_table.c.position).where(leaves_table.c.idx == index)).scalar()
        if value is None:
            raise IntegrityError(f"tree: leaf {index} is missing (store altered?)")
        return int(value)


class TreeCheck:
    """The tree's checks (`audit verify`, with or without `--checkpoint`), fed each event's
    leaf in log order by the pass that proves the hash chain (`checked_log(tree=True)`): the
    stored leaves are walked beside it, the root recomputed, and the stored head compared
    at the end. The first failure is raised by `end`, so a pass that also proves the hash
    chain reports the chain's failures first (as when the tree was checked after it)."""

    def __init__(self, raw: Raw) -> None:
        from ipledger.ledger.chain import paged

        self.stored_size, self.stored_root = Tree(raw.sa).head()
        m = raw.mark
        self._leaves = paged(
            raw, f"SELECT idx, position, hash FROM ipledger_tree_leaves WHERE idx > {m} AND idx <= {m} "
            f"ORDER BY idx LIMIT {m}", -1
        )  # fmt: skip
        self.size = 0
        self._frontier: list[bytes] = []
        self._failure: IntegrityError | None = None

    def leaf(self, position: int, h: bytes) -> None:
        """The next event's leaf hash, as recomputed from its export line."""
        if self._failure is None:
            self._failure = self._check(position, h)

    def _check(self, position: int, h: bytes) -> IntegrityError | None:
        leaf = next(self._leaves, None)
        if leaf is None or leaf[0] != self.size:
            return IntegrityError(
                f"position {position}: event has no leaf in the Merkle tree (appended behind its back?)"
            )
        if leaf[1] != position:
            return IntegrityError(
                f"position {min(position, leaf[1])}: the log and the Merkle tree disagree on which event is "
                f"leaf {self.size} (inserted or deleted?)"
            )
        if bytes(leaf[2]) != h:
            return IntegrityError(f"position {position}: event does not match its leaf in the Merkle tree (altered?)")
        self.size, _ = merkle.append(self.size, self._frontier, [h])
        return None

    def end(self) -> dict[str, Any]:
        if self._failure is not None:
            raise self._failure
        extra = next(self._leaves, None)
        if extra is not None:
            raise IntegrityError(
                f"position {extra[1]}: the Merkle tree has a leaf for an event the log lacks (deleted?)"
            )
        root = merkle.frontier_root(self._frontier)
        if (self.stored_size, self.stored_root) != (self.size, root):
            raise IntegrityError(
                f"tree: the stored tree head (size {self.stored_size}) is not the tree of the log (size {self.size}); "
                "store altered"
            )
        return {"size": self.size, "root_hash": root.hex()}


# --------------------------------------------------------------------------- origin and checkpoints

ORIGIN = "origin"


def origin(conn: Connection) -> str | None:
    value = conn.execute(select(settings_table.c.value).where(settings_table.c.name == ORIGIN)).scalar()
    return None if value is None else str(value)


def set_origin(conn: Connection, name: str) -> None:
    """Name the log (checkpoints carry it). Once a checkpoint is signed the name is fixed:
    every later checkpoint must name the same log."""
    current = origin(conn)
    if current == name:
        return
    if current is not None and conn.execute(select(checkpoints_table.c.id).limit(1)).first() is not None:
        raise InvalidInput(
            f"origin: this log is {current!r} and has signed checkpoints under that name; it cannot be renamed"
        )
    if current is None:
        conn.execute(settings_table.insert().values(name=ORIGIN, value=name))
    else:
        conn.execute(settings_table.update().where(settings_table.c.name == ORIGIN).values(value=name))


def named_origin(conn: Connection) -> str:
    """The log's origin; a log never named gets `ipledger/<random>` now, for good."""
    name = origin(conn)
    if name is None:
        from uuid import uuid4

        name = f"ipledger/{uuid4().hex[:16]}"
        set_origin(conn, name)
    return name


def sizes(conn: Connection) -> tuple[int, int | None]:
    """The tree's size and the latest checkpoint's (None before the first), in one read."""
    row = conn.exec_driver_sql(
        "SELECT size, (SELECT size FROM ipledger_checkpoints ORDER BY id DESC LIMIT 1) FROM ipledger_tree_head "
        "WHERE id = 1"
    ).first()
    if row is None:
        raise IntegrityError("tree: the Merkle tree's head row is missing (store altered?)")
    return int(row[0]), None if row[1] is None else int(row[1])


def keep_checkpoint(conn: Connection, size: int, root: bytes, note: str) -> None:
    conn.execute(checkpoints_table.insert().values(size=size, root=root.hex(), note=note))


def checkpoints(conn: Connection) -> list[dict[str, Any]]:
    c = checkpoints_table.c
    return [
        {"id": r.id, "size": r.size, "root_hash": r.root, "checkpoint": r.note}
        for r in conn.execute(select(c.id, c.size, c.root, c.note).order_by(c.id))
    ]
