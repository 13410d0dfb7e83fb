"""Runs projections: catch up to the log head before every query; rebuild from the log.

Both fold the log through the same projection classes (projections/base.py). A
catch-up applies each page of events to the live tables in one transaction that first
locks the projection's tracking row, so two processes catching up at once never apply
an event twice, and rows and position always move together. A rebuild folds the whole
log into fresh tables in one transaction (`Replay`): the old read models are served
until it commits, and kept if it fails.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from itertools import zip_longest
from typing import Any

from eventsourcing.persistence import ApplicationRecorder
from sqlalchemy import Table, create_engine, event, select, update
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.schema import CreateTable

from ipledger.domain.errors import NotFound
from ipledger.ledger.bulk import bulk_work
from ipledger.ledger.chain import Logged, read_log
from ipledger.ledger.codec import decode_event
from ipledger.ledger.driver import passing_cache
from ipledger.projections.base import (
    CACHE_LIMIT,
    MemoryRows,
    Projection,
    Recorded,
    Rows,
    SqlRows,
    copy_rows,
    tracking_table,
)
from ipledger.projections.readmodels import PROJECTIONS

PAGE = 1000

Progress = Callable[[int, int], None]


class ReadModels:
    """The read side of one store: its projections and their tracking positions."""

    def __init__(self, recorder: ApplicationRecorder, engine: Engine) -> None:
        self.recorder = recorder
        self.engine = engine
        self.events = str(getattr(recorder, "events_table_name", "ipledger_events"))
        self.projections: dict[str, Projection] = {cls.name: cls() for cls in PROJECTIONS}
        with engine.connect() as conn:
            stored = dict(conn.execute(select(tracking_table.c.name, tracking_table.c.fingerprint)).tuples().all())
        for name, projection in self.projections.items():
            if stored.get(name) != projection.fingerprint():
                self._reset(projection, insert_row=name not in stored, only_if_stale=True)

    def head(self) -> int:
        return self.recorder.max_notification_id() or 0

    def names(self, names: Iterable[str] | None = None) -> list[str]:
        chosen = list(names) if names else list(self.projections)
        for name in chosen:
            if name not in self.projections:
                raise NotFound(f"name: no projection {name} ({', '.join(self.projections)})")
        return chosen

    def catch_up(self, names: Iterable[str] | None = None, progress: Progress | None = None) -> None:
        self._catch_up([self.projections[n] for n in self.names(names)], progress)

    def _catch_up(self, group: list[Projection], progress: Progress | None, stop: int | None = None) -> None:
        """Bring projections to the head in one pass over the log: each event is read and
        decoded once and offered to every projection that has not yet applied it. A read
        model at position 0 (new, or reset because its tables changed) is rebuilt instead:
        the same fold, into fresh tables."""
        head = self.head() if stop is None else stop
        positions = self.positions()
        fresh = [p for p in group if positions.get(p.name, 0) == 0 < head]
        if fresh:
            self.rebuild([p.name for p in fresh], progress, only_if_empty=True)
            positions = self.positions()
        behind = [p for p in group if positions.get(p.name, 0) < head]
        if not behind:
            return  # already current: no write, so a read-only store still answers
        while True:
            try:
                reached = self._catch_up_page(behind, head)
            except BaseException:
                for p in behind:
                    p.discard()  # what a rolled-back page taught must not leak into the next
                raise
            if reached is None:
                return
            if progress is not None:
                progress(reached, head)

    def _catch_up_page(self, behind: list[Projection], head: int) -> int | None:
        """Apply one page of the log to the projections behind; None when all are current."""
        with self.engine.begin() as conn:
            positions = {p.name: self._lock(conn, p.name) for p in behind}
            for p in behind:
                if p.position_seen != positions[p.name]:
                    p.cache.clear()  # another process applied events: what we cached may be stale
            active = [p for p in behind if positions[p.name] < head]
            if not active:
                return None
            start = min(positions[p.name] for p in active)
            until = min(head, start + PAGE)
            rows = {p.name: SqlRows(conn, p.tables) for p in active}
            fold = Fold(active, rows, positions)
            for page in read_log(conn, self.events, start, until):
                fold(page)
            for p in active:
                rows[p.name].flush()
                reached = max(until, positions[p.name])
                conn.execute(update(tracking_table).where(tracking_table.c.name == p.name).values(position=reached))
                p.position_seen = reached
                if len(p.cache) > CACHE_LIMIT:
                    p.cache.clear()  # memory stays flat on any log size; misses fall back to SQL
        return until if until < head else head

    def positions(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {n: int(p) for n, p in conn.execute(select(tracking_table.c.name, tracking_table.c.position))}

    def position(self, name: str) -> int:
        return self.positions().get(name, 0)

    @staticmethod
    def _lock(conn: Connection, name: str) -> int:
        # A no-op update takes the write lock (SQLite) or the row lock (PostgreSQL)
        # before the position is read, so concurrent runners serialise here.
        conn.execute(
            update(tracking_table).where(tracking_table.c.name == name).values(position=tracking_table.c.position)
        )
        return int(conn.execute(select(tracking_table.c.position).where(tracking_table.c.name == name)).scalar_one())

    def rebuild(
        self,
        names: Iterable[str] | None = None,
        progress: Progress | None = None,
        log: Iterable[list[Logged]] | None = None,
        *,
        only_if_empty: bool = False,
        beside: Beside | None = None,
    ) -> None:
        """Fold the whole log into fresh tables and swap them in, in one transaction.

        `log`: the pages to fold (default: the log as stored, to its head now); a caller
        that proves the log as it reads it passes its pages, and an error raised from
        them rolls the rebuild back. `only_if_empty`: skip read models another process
        brought past position 0 meanwhile. `beside`: read models another process folds
        from the same pages into a SQLite file, taken in here (SQLite stores only)."""
        chosen = [self.projections[n] for n in self.names(names)]
        with (
            bulk_work(),
            self.engine.connect() as conn,
            taking_in(conn, beside),  # before the transaction, as SQLite asks
            conn.begin(),
            passing_cache(conn),
        ):
            positions = {p.name: self._lock(conn, p.name) for p in chosen}
            if only_if_empty:
                chosen = [p for p in chosen if positions[p.name] == 0]
            if not chosen:
                return
            handed = [p for p in chosen if beside is not None and p.name in beside.names]
            replay = Replay(conn, [p for p in chosen if p not in handed])
            try:
                if log is None:
                    head = self.head()
                    log = read_log(conn, self.events, 0, head)
                else:
                    head = 0
                for page in log:
                    replay(page)
                    if progress is not None:
                        progress(page[-1][0], max(head, page[-1][0]))
                replay.load()
                if handed:
                    assert beside is not None
                    if beside.folded() == replay.position:
                        fresh_tables(conn, handed)
                        copy_tables(conn, handed, ATTACHED)
                    else:  # the other process gave no fold: this one folds them, from the log read again
                        again = Replay(conn, handed)
                        for page in beside.again():
                            again(page)
                        again.load()
                finish_tables(conn, chosen, replay.position)
            except BaseException:
                for p in chosen:
                    p.discard()
                raise

    def adopt(self, path: str, position: int) -> None:
        """Swap in every read model as folded into the SQLite file at `path` up to `position`
        (projections/scratch.py), in one transaction: fresh tables filled from its tables,
        their indexes built, every position set. SQLite stores only (ATTACH)."""
        group = list(self.projections.values())
        with bulk_work(), self.engine.connect() as conn, attached(conn, path):  # before the transaction, as SQLite asks
            try:
                with conn.begin():
                    for p in group:
                        self._lock(conn, p.name)
                    fresh_tables(conn, group)
                    copy_tables(conn, group, ATTACHED)
                    finish_tables(conn, group, position)
            except BaseException:
                for p in group:
                    p.discard()
                raise

    def _reset(self, projection: Projection, insert_row: bool = False, only_if_stale: bool = False) -> None:
        """Drop and recreate a projection's tables at position 0, in one transaction
        (the next catch-up rebuilds it).

        Under the tracking row's lock, so two processes opening a store at once do it
        once (`only_if_stale`: skip when the other process already did)."""
        projection.discard()
        if insert_row:
            with self.engine.begin() as conn:
                # The dialect's own INSERT, imported for the store at hand (the other is dead weight).
                dialect_insert: Any
                if conn.dialect.name == "postgresql":
                    from sqlalchemy.dialects.postgresql import insert as dialect_insert
                else:
                    from sqlalchemy.dialects.sqlite import insert as dialect_insert
                conn.execute(
                    dialect_insert(tracking_table)
                    .values(name=projection.name, position=0, fingerprint="")
                    .on_conflict_do_nothing()
                )
        with self.engine.begin() as conn:
            self._lock(conn, projection.name)
            if only_if_stale:
                current = conn.execute(
                    select(tracking_table.c.fingerprint).where(tracking_table.c.name == projection.name)
                ).scalar()
                if current == projection.fingerprint():
                    return
            projection.drop_tables(conn)
            for table in projection.tables:
                table.create(conn)
            conn.execute(
                update(tracking_table)
                .where(tracking_table.c.name == projection.name)
                .values(position=0, fingerprint=projection.fingerprint())
            )

    def status(self) -> list[dict[str, Any]]:
        head = self.head()
        rows = self.positions()
        return [
            {"name": name, "position": rows.get(name, 0), "head": head, "behind": head - rows.get(name, 0)}
            for name in self.projections
        ]

    @contextmanager
    def fresh_replay(self, handed: Iterable[str] = ()) -> Iterator[FreshReplay]:
        """A replay of every projection into a scratch SQLite file beside nothing live:
        feed it the log's pages, then `differ()` names the live read models that do not
        match it (the live ones brought to the same position first). `handed`: read
        models another process folds instead (`differ`'s `beside`)."""
        with tempfile.TemporaryDirectory(prefix="ipledger-replay-") as folder:
            engine = create_engine(f"sqlite:///{folder}/replay.db")
            event.listen(engine, "connect", scratch_pragmas)
            try:
                tracking_table.create(engine)
                with engine.begin() as conn:
                    for p in self.projections.values():
                        conn.execute(tracking_table.insert().values(name=p.name, position=0, fingerprint=""))
                    handed = tuple(handed)
                    group = [type(p)() for p in self.projections.values() if p.name not in handed]
                    fresh = FreshReplay(self, conn, group, handed)
                    yield fresh
                engine.dispose()
            finally:
                engine.dispose()

    def reconcile(self) -> list[str]:
        """Compare every read model with a fresh replay of the log (the rebuild's fold).

        Returns the names of projections whose tables differ (empty when all agree)."""
        head = self.head()
        with bulk_work(), self.engine.connect() as conn, self.fresh_replay() as fresh:
            for page in read_log(conn, self.events, 0, head):
                fresh(page)
            return fresh.differ()


def scratch_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """A scratch replay needs no durability: verify throws it away after its comparison,
    and a restore copies its tables into the store in the store's own transaction."""
    dbapi_connection.execute("PRAGMA journal_mode=OFF")
    dbapi_connection.execute("PRAGMA synchronous=OFF")


class Fold:
    """Offers each event of a page to the projections that take its topic and have not
    yet applied it: the one loop of catch-up, rebuild and verify."""

    def __init__(self, group: list[Projection], rows: Mapping[str, Rows], positions: dict[str, int] | None = None):
        self.group = group
        self.rows = rows
        self.positions = positions or {}
        self._takers: dict[str, list[tuple[str, Callable[[Rows, Recorded], None], Rows]]] = {}

    def takers(self, topic: str) -> list[tuple[str, Callable[[Rows, Recorded], None], Rows]]:
        """(name, handler, rows) of each projection that applies events of `topic`."""
        found = self._takers.get(topic)
        if found is None:
            found = self._takers[topic] = [
                (p.name, handler, self.rows[p.name]) for p in self.group if (handler := p.handler(topic)) is not None
            ]
        return found

    def __call__(self, page: list[Logged]) -> None:
        positions = self.positions
        for position, aggregate, version, topic, state in page:
            takers = self.takers(topic)
            if positions:
                takers = [t for t in takers if positions[t[0]] < position]
            if not takers:
                continue
            recorded = Recorded(position, decode_event(topic, state, aggregate.uuid, version), aggregate.text)
            for _, handler, rows in takers:
                handler(rows, recorded)


class Replay:
    """A rebuild in progress: fresh tables and the fold into them, in the caller's
    transaction; the caller then builds the indexes and records the positions
    (`finish_tables`)."""

    def __init__(self, conn: Connection, group: list[Projection]) -> None:
        self.group = group
        self.position = 0
        fresh_tables(conn, group)
        self.rows = {p.name: MemoryRows(conn, p.tables, p.kept) for p in group}
        self.fold = Fold(group, dict(self.rows))

    def __call__(self, page: list[Logged]) -> None:
        self.fold(page)
        for rows in self.rows.values():
            rows.flush()
        self.position = page[-1][0]

    def load(self) -> None:
        """Every row written (the kept ones last); no index built, no position recorded."""
        for p in self.group:
            self.rows[p.name].finish()


def fresh_tables(conn: Connection, group: list[Projection]) -> None:
    """The group's tables dropped and made again, empty and without indexes (built once,
    after the load: `finish_tables`)."""
    for p in group:
        p.discard()
        p.drop_tables(conn)
        for table in p.tables:
            conn.execute(CreateTable(table))


def finish_tables(conn: Connection, group: list[Projection], position: int) -> None:
    """Loaded fresh tables: their indexes built, and each projection at `position`."""
    for p in group:
        for table in p.tables:
            for index in sorted(table.indexes, key=lambda i: i.name or ""):
                index.create(conn)
        conn.execute(
            update(tracking_table)
            .where(tracking_table.c.name == p.name)
            .values(position=position, fingerprint=p.fingerprint())
        )
        p.position_seen = position


#: The schema name a SQLite file of read models folded elsewhere is attached as.
ATTACHED = "scratch"


@contextmanager
def attached(conn: Connection, path: str | None, schema: str = ATTACHED) -> Iterator[None]:
    """The SQLite file at `path` attached to `conn` as `schema` (nothing when None).
    SQLite attaches and detaches only outside a transaction."""
    if path is None:
        yield
        return
    dbapi: Any = conn.connection.dbapi_connection
    dbapi.execute(f"ATTACH DATABASE ? AS {schema}", (path,))
    try:
        yield
    finally:
        try:
            dbapi.execute(f"DETACH DATABASE {schema}")
        except Exception:  # never hide the error on its way out; the pool must not keep it attached
            conn.invalidate()


@contextmanager
def taking_in(conn: Connection, beside: Beside | None) -> Iterator[None]:
    """The file `beside` folds into attached to `conn` (outside any transaction), and only
    then the other process started: it holds its file's write lock as it folds, and an
    ATTACH waits on that lock."""
    if beside is None:
        yield
        return
    with attached(conn, beside.path):
        beside.start()
        yield


def copy_tables(conn: Connection, group: list[Projection], schema: str) -> None:
    """Fill the group's fresh tables from the same tables in the attached `schema`."""
    for p in group:
        for table in p.tables:
            copy_rows(conn, table, schema, table.name)


@dataclass(frozen=True)
class Beside:
    """Read models another process folds from the same pages of the log as this one (a
    prover: ledger/prover.py), into fresh tables without indexes in the SQLite file `path`.

    `start()` starts it (once `path` is attached); `folded()`, once the pages are read:
    the position it folded them to, or None when it gave no fold (it could not run, or
    failed); this process then folds them itself from `again()`, the log's pages read
    once more."""

    names: tuple[str, ...]
    path: str
    start: Callable[[], None]
    folded: Callable[[], int | None]
    again: Callable[[], Iterable[list[Logged]]]


class FreshReplay(Replay):
    """A replay into scratch tables, to be compared with the live read models."""

    def __init__(self, live: ReadModels, conn: Connection, group: list[Projection], handed: tuple[str, ...]) -> None:
        super().__init__(conn, group)
        self.live = live
        self.conn = conn
        self.handed = handed  # folded by another process, compared through `differ`'s `beside`

    def differ(self, beside: Beside | None = None) -> list[str]:
        """Finish the replay; the live read models that differ from it, by projection
        (table). `beside`: the read models another process folded (or, if it gave no
        fold, this one folds now from the log read again)."""
        if (beside.names if beside is not None else ()) != self.handed:
            raise ValueError(f"differ: the read models handed to another process are {self.handed}")
        self.load()  # no index is built: each table is read whole
        elsewhere: list[Projection] = []
        if beside is not None and beside.names:
            handed = [type(self.live.projections[n])() for n in beside.names]
            if beside.folded() == self.position:
                elsewhere = handed
            else:
                again = Replay(self.conn, handed)
                for page in beside.again():
                    again(page)
                again.load()
                self.group = self.group + handed
        self.live._catch_up(list(self.live.projections.values()), None, stop=self.position)
        scratch = _sqlite_file(self.conn.engine)
        assert scratch is not None
        self.conn.commit()  # what is compared is read by other connections: they must see the rows
        compared = [(self.group, scratch)]
        if elsewhere:
            assert beside is not None
            compared.append((elsewhere, beside.path))
        if _sqlite_file(self.live.engine) is not None:
            differ = self._differ_in_sqlite(compared)
        else:
            differ = _differ(self.live.engine, compared)
        return [f"{p.name} ({t})" for p in self.live.projections.values() for name, t in differ if name == p.name]

    def _differ_in_sqlite(self, compared: list[tuple[list[Projection], str]]) -> list[tuple[str, str]]:
        """Both SQLite: the scratch files are attached to a live connection and SQLite
        compares each table as stored (in Python, row by row, this was a sixth of a verify)."""
        differ = []
        with self.live.engine.connect() as live, ExitStack() as stack:
            for i, (_, path) in enumerate(compared):
                stack.enter_context(attached(live, path, f"replay{i}"))
            with live.begin():  # one snapshot of every live table
                for i, (group, _) in enumerate(compared):
                    for p in group:
                        for table in p.tables:
                            if not live.exec_driver_sql(_same_rows_sql(live.dialect, table, f"replay{i}")).scalar():
                                differ.append((p.name, table.name))
                                break
        return differ


def _differ(live_engine: Engine, compared: list[tuple[list[Projection], str]]) -> list[tuple[str, str]]:
    """The live store is not SQLite: each table compared row by row, in key order, with the
    scratch file's, both as SQLAlchemy's column types read them."""
    differ = []
    with live_engine.connect() as live:
        for group, path in compared:
            scratch = create_engine(f"sqlite:///{path}")
            try:
                with scratch.connect() as replay:
                    for p in group:
                        for table in p.tables:
                            q = select(table).order_by(*table.primary_key.columns)
                            if any(a != b for a, b in zip_longest(_rows(replay, q), _rows(live, q))):
                                differ.append((p.name, table.name))
                                break
            finally:
                scratch.dispose()
    return differ


def _same_rows_sql(dialect: Dialect, table: Table, replay: str) -> str:
    """1 when `main.table` and `{replay}.table` hold the same rows: as many on each side, and
    each live row matched by a replay row equal in every column (`IS`: NULL matches NULL).
    Each side's primary key is unique, so a live row matches one replay row at most, and
    equal counts leave none unmatched on either side. Both sides were written through the
    same columns' bind processors, so equal values are equal as stored; text compares
    byte for byte (BINARY collation), as Python's `==` on the stored strings did."""
    quote = dialect.identifier_preparer.quote
    name = quote(table.name)
    keys = {c.name for c in table.primary_key.columns}
    match = " AND ".join(
        f"r.{quote(c.name)} {'=' if c.name in keys else 'IS'} m.{quote(c.name)}" for c in table.columns
    )
    return (
        f"SELECT (SELECT count(*) FROM main.{name}) = (SELECT count(*) FROM {replay}.{name}) "
        f"AND (SELECT count(*) FROM main.{name}) = "
        f"(SELECT count(*) FROM main.{name} AS m JOIN {replay}.{name} AS r ON {match})"
    )


def _sqlite_file(engine: Engine) -> str | None:
    """The path of the SQLite file behind `engine`, or None (another database, or memory)."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return url.database


def _rows(conn: Connection, q: Any) -> Iterator[tuple[Any, ...]]:
    """A query's rows as tuples, as SQLAlchemy's column types read them."""
    for r in conn.execution_options(yield_per=5000).execute(q):
        yield tuple(r)
