"""A restore's read models, folded by a second process while the first writes the log.

`ipledger restore` writes an export's events, every hash checked, and then rebuilt the
read models by reading every event back: two passes, one after the other, on one core.
On a SQLite store a child process now folds the export's lines into a scratch SQLite
file as the restore accepts them (the rebuild's own fold, projections/runner.Replay),
and once the log is written the restore swaps the folded tables in, in one transaction
(`ReadModels.adopt`). The child sees only lines the restore accepted, in order, through
a pipe from this process; a restore that fails stops it, and a child that gives no
verdict leaves the read models to the usual rebuild.

Below FROM_EVENTS events the child's start (its imports, ~0.3 s) costs more than the
second pass, and the restore rebuilds as before. An export read from a file large
enough to hold that many events starts its child before the store is opened, so the
child's start overlaps the opening and the restore's first lines instead of following
them.

A rebuild's or a verify's prover (ledger/prover.py) runs as this module's child with
`--prove`: besides proving the log it folds the read models its job names, from the
pages it proved, into a scratch file (`ProvedFold`), which the parent takes in.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ipledger.ledger.chain import Logged

#: From this many events a child process folds the restore's read models.
FROM_EVENTS = 25_000
#: An export line's size, about (558 bytes on the bench's market): a file of at least
#: FROM_EVENTS such lines starts the child at once.
BYTES_PER_EVENT = 500
#: Lines per write to the child's pipe.
CHUNK = 2000
#: The read models a rebuild's prover folds beside its proof (`ProvedFold`): chosen so
#: that, with the proof, they weigh about what the parent reads and folds meanwhile
#: (measured at 300k events: the trail alone, a third of the fold, kept the parent
#: waiting; docs/performance.md).
BESIDE_REBUILD = ("book", "ownership", "listings")
#: The same for `audit verify`, whose proof also checks every Merkle leaf: less beside it.
BESIDE_VERIFY = ("book", "listings")
#: Below this many events the prover's fixed start (its imports and first reads, ~0.3 s)
#: weighs more than a read model, and it is handed one fewer: at 100k events a rebuild
#: took 2.01-2.12 s with BESIDE_REBUILD_SMALL against 2.23-2.40 s, and a verify 2.11-2.24
#: s against 2.30-2.36 s; the larger shares were the faster at 300k (both) and at 1M (a
#: rebuild).
SMALL_LOG = 150_000
BESIDE_REBUILD_SMALL = ("book", "listings")
BESIDE_VERIFY_SMALL = ("book",)


def beside_rebuild(events: int) -> tuple[str, ...]:
    """The read models a rebuild's prover folds on a log of `events` events."""
    return BESIDE_REBUILD_SMALL if events < SMALL_LOG else BESIDE_REBUILD


def beside_verify(events: int) -> tuple[str, ...]:
    """The read models `audit verify`'s prover folds on a log of `events` events."""
    return BESIDE_VERIFY_SMALL if events < SMALL_LOG else BESIDE_VERIFY


#: The interpreter's arguments that run this module as a prover (ledger/prover.Proof's `child`).
PROVER = ("-m", __name__, "--prove")


class ExportFold:
    """Feeds the lines a restore accepts (`send`) to a child process that folds them into
    the SQLite file `path`; `finish` returns the position the child folded to, or None
    when there is no child (a short log) or it gave no verdict."""

    def __init__(self, path: str, size: int | None = None) -> None:
        """`size`: the export's size in bytes, when it is a file (None: not known)."""
        self.path = path
        self._at_once = size is not None and size >= FROM_EVENTS * BYTES_PER_EVENT
        self._lines: list[bytes] = []
        self._child: subprocess.Popen[bytes] | None = None
        self._chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=8)
        self._writer: threading.Thread | None = None
        self._broken = False

    def start(self) -> None:
        """Start the child now if the export is a file large enough, before the restore
        opens the store (see `Ledger.restore`); otherwise `send` starts it once
        FROM_EVENTS lines came (an export on standard input)."""
        if self._at_once and self._child is None and not self._broken:
            self._start()

    def send(self, line: bytes) -> None:
        if self._broken and self._child is None:
            return  # no child could start: the restore rebuilds
        self._lines.append(line if line.endswith(b"\n") else line + b"\n")
        if self._child is None:
            if len(self._lines) >= FROM_EVENTS:
                self._start()
        elif len(self._lines) >= CHUNK:
            self._put()

    def finish(self) -> int | None:
        """The last position the child folded, or None: no child (a short log), or one that
        gave no verdict (it failed, or was fed only part of the log)."""
        if self._child is None:
            return None
        self._put()
        self._chunks.put(None)
        assert self._writer is not None and self._child.stdout is not None
        self._writer.join()
        out = self._child.stdout.read()
        if self._child.wait() != 0 or self._broken:
            return None
        try:
            position = json.loads(out)["position"]
        except (ValueError, KeyError, TypeError):
            return None
        return position if isinstance(position, int) else None

    def close(self) -> None:
        """Stop a child still running (the restore failed, or was interrupted)."""
        self._broken = True
        child = self._child
        if child is not None and child.poll() is None:
            child.kill()
            child.wait()
        if self._writer is not None and self._writer.is_alive():
            self._chunks.put(None)  # the writer discards what is queued, then stops
            self._writer.join()

    def _start(self) -> None:
        try:
            self._child = subprocess.Popen(
                [sys.executable, "-m", "ipledger.projections.scratch", self.path],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,  # a child that fails gives no verdict: the restore rebuilds
            )
        except OSError:
            self._broken = True
            self._lines = []
            return
        self._writer = threading.Thread(target=self._write, args=(self._child.stdin,), daemon=True)
        self._writer.start()
        self._put()

    def _put(self) -> None:
        if self._lines and self._child is not None:
            self._chunks.put(b"".join(self._lines))
        self._lines = []

    def _write(self, pipe: IO[bytes]) -> None:
        """On its own thread, so the restore goes on while the child catches up (a write
        to a full pipe waits without holding the interpreter)."""
        while True:
            chunk = self._chunks.get()
            if chunk is None:
                break
            if not self._broken:
                try:
                    pipe.write(chunk)
                except (BrokenPipeError, OSError, ValueError):
                    self._broken = True
        try:
            pipe.close()
        except (BrokenPipeError, OSError):
            self._broken = True


def fold_lines(lines: Iterable[bytes], path: str) -> int:
    """Fold export lines (as a restore accepted them) into fresh read-model tables in the
    SQLite file at `path`, without indexes; returns the last position folded."""
    import orjson
    from sqlalchemy import create_engine, event

    from ipledger.ledger.bulk import bulk_work
    from ipledger.ledger.chain import READ_PAGE, AggregateIds
    from ipledger.projections.readmodels import PROJECTIONS
    from ipledger.projections.runner import Replay, scratch_pragmas

    engine = create_engine(f"sqlite:///{path}")
    event.listen(engine, "connect", scratch_pragmas)
    ids = AggregateIds()
    try:
        with bulk_work(), engine.begin() as conn:
            replay = Replay(conn, [cls() for cls in PROJECTIONS])
            page: list[Logged] = []
            for line in lines:
                doc = orjson.loads(line)
                aggregate = ids(doc["originator_id"])  # str(UUID), as the store exports it (checked by the restore)
                state = orjson.loads(doc["state"])
                page.append((doc["position"], aggregate, doc["originator_version"], doc["topic"], state))
                if len(page) == READ_PAGE:
                    replay(page)
                    page = []
            if page:
                replay(page)
            replay.load()
    finally:
        engine.dispose()
    return replay.position


class ProvedFold:
    """A prover's second job: fold the named read models from the pages it proved, up to
    `until` (the parent's head), into fresh tables without indexes in the SQLite file
    `path`, committed when the proof is done (`finish`)."""

    def __init__(self, path: str, names: list[str], until: int) -> None:
        from sqlalchemy import create_engine, event

        from ipledger.projections.readmodels import PROJECTIONS
        from ipledger.projections.runner import Replay, scratch_pragmas

        self.until = until
        self.engine = create_engine(f"sqlite:///{path}")
        event.listen(self.engine, "connect", scratch_pragmas)
        self.conn = self.engine.connect()
        self.conn.begin()
        self.replay = Replay(self.conn, [cls() for cls in PROJECTIONS if cls.name in names])

    @classmethod
    def of_job(cls, job: dict[str, Any], until: int) -> ProvedFold:
        return cls(str(job["path"]), [str(n) for n in job["names"]], until)

    def __call__(self, page: list[Logged]) -> None:
        if page[-1][0] > self.until:  # the proof reads to the log's end; the parent folded to its head
            page = [e for e in page if e[0] <= self.until]
        if page:
            self.replay(page)

    def finish(self) -> int:
        self.replay.load()
        self.conn.commit()
        self.conn.close()
        self.engine.dispose()
        return self.replay.position


def main() -> None:
    """The child: export lines on stdin, the scratch file's path as the argument, the last
    position folded as JSON on stdout. A fold that fails gives no verdict (its traceback
    goes to stderr, exit 1): the restore then rebuilds, and the rebuild, the authority on
    whether a log replays, reports why not."""
    position = fold_lines(sys.stdin.buffer, sys.argv[1])
    sys.stdout.write(json.dumps({"position": position}))
    sys.stdout.flush()
    os._exit(0)  # nothing left to clean up: skip the interpreter's teardown of a large heap


if __name__ == "__main__":
    if sys.argv[1:] == ["--prove"]:
        from ipledger.ledger import prover

        prover.main(ProvedFold.of_job)
    else:
        main()
