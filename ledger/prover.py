"""The hash chain proved by a second process while this one folds the log.

A rebuild and `audit verify` use every event twice: to prove it (its hash recomputed,
its command record and Merkle leaf checked) and to fold it into read models. In one
process the proof was a third of the time; the machine has a second core. So a child
process proves the log while this one folds it, and nothing is committed or reported
before the child's verdict is in:

* a bad log fails the fold with the proof's IntegrityError (the first bad position),
  also when the fold itself tripped over the bad event first (`Proof.__exit__`);
* what this process folded is tied to what the child proved by a digest of the rows
  both read (chain.RowDigest), up to the head read before the child started: equal,
  or IntegrityError;
* a child that cannot run (no interpreter, killed) is not a verdict: the proof is
  then done here, after the fold, as before.

Below PARALLEL_FROM events a child's start (its imports, ~0.4 s) costs more than it
saves, and one pass proves and folds (chain.checked_log), page by page.

The proof alone keeps the child busy for about a third of the fold's time, so the child
may also fold some read models from the pages it proves (`fold`: the job of a child
module that knows read models, projections/scratch.py), into a file of its own; this
process folds the rest and takes those in (`Proof.folded`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.engine import Engine

from ipledger.domain.errors import IntegrityError
from ipledger.ledger.chain import Logged, RowDigest, checked_log, read_log, verify_chain
from ipledger.ledger.driver import passing_cache

#: From this many events in the log a child process proves it (see the module's note).
PARALLEL_FROM = 25_000


class SinkFailed(Exception):
    """A PageSink failed: the child ends with no verdict (not "the log is bad")."""


class PageSink(Protocol):
    """What a child does with the pages it proved besides proving them (see `main`)."""

    def __call__(self, page: list[Logged]) -> None: ...

    def finish(self) -> int:
        """Done: the last position taken in."""
        ...


class Proof:
    """The log's pages for a fold (`pages()`), proved: here as they are read, or by a
    child process beside the fold. Use as a context manager around the fold; `report`
    holds what chain.checked_log reports once the pages are exhausted."""

    def __init__(
        self,
        url: str,
        events: str,
        engine: Engine,
        *,
        expect: tuple[int, str] | None = None,
        tree: bool = False,
        progress: Callable[[int], None] | None = None,
        fold: dict[str, Any] | None = None,
        child: tuple[str, ...] = ("-m", __name__),
        deferred: bool = False,
    ) -> None:
        """`fold`: a job the child also does with the proved pages, when `child` (its
        interpreter's arguments) runs a module whose `main` passes a PageSink to this
        module's `main`; ignored when there is no child. `deferred`: the child starts at
        `start()` or with the first page, not on entering (a caller that must first
        attach the file the child writes: SQLite's ATTACH waits on a writer's lock)."""
        self.url, self.events, self.engine = url, events, engine
        self.expect, self.tree, self.progress = expect, tree, progress
        self.report: dict[str, Any] = {}
        with engine.connect() as conn:
            # The child's view starts after this read: the log only grows, so it holds this prefix.
            self.until = int(conn.execute(text(f"SELECT max(id) FROM {events}")).scalar() or 0)
        self.parallel = self.until >= PARALLEL_FROM
        self.fold, self.child, self.deferred = fold, child, deferred
        self._started = False
        self._child: subprocess.Popen[bytes] | None = None
        self._verdict: dict[str, Any] | None = None

    def __enter__(self) -> Proof:
        if not self.deferred:
            self.start()
        return self

    def start(self) -> None:
        """Start the child (once; there is none for a short log)."""
        if self.parallel and not self._started:
            self._started = True
            job = {
                "url": self.url,
                "events": self.events,
                "until": self.until,
                "expect": self.expect,
                "tree": self.tree,
                "parent": os.getpid(),
                "fold": self.fold,
            }
            try:
                self._child = subprocess.Popen(
                    [sys.executable, *self.child],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,  # a child that fails gives no verdict: the proof is done here
                )
                assert self._child.stdin is not None
                # The job goes on stdin: a store URL may carry a password, and argv is public.
                self._child.stdin.write(json.dumps(job).encode())
                self._child.stdin.close()
            except OSError:
                self._child = None  # proved here instead, after the fold

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        """A fold that failed on unproved pages: the proof's verdict comes first (a bad
        event is reported as the chain reports it, not as whatever the fold tripped on)."""
        try:
            if self._started and isinstance(error, Exception) and not isinstance(error, IntegrityError):
                verdict = self._result()
                if not verdict["proved"]:
                    raise IntegrityError(verdict["error"]) from None
        finally:
            child = self._child
            if child is not None and child.poll() is None:
                child.kill()
                child.wait()

    def pages(self) -> Iterator[list[Logged]]:
        if not self.parallel:
            yield from checked_log(self.events, self.engine, self.expect, self.progress, self.report, self.tree)
            return
        self.start()
        seen = RowDigest(self.until)
        with self.engine.connect() as conn, passing_cache(conn):
            for page in read_log(conn, self.events, 0, self.until, seen):
                yield page
                if self.progress is not None:
                    self.progress(page[-1][0])
        verdict = self._result()
        if not verdict["proved"]:
            raise IntegrityError(verdict["error"])
        if verdict["digest"] != seen.hexdigest():
            raise IntegrityError(
                f"log: events up to position {self.until} read differently by the two passes of this check "
                "(the store changed under it?); run it again"
            )
        self.report.update(verdict["report"])

    @property
    def folded(self) -> int | None:
        """Once the pages are read: the position to which the child folded its `fold` job,
        or None (no child, or it gave no verdict and the proof was done here)."""
        if self._verdict is None:
            return None
        folded = self._verdict.get("folded")
        return folded if isinstance(folded, int) else None

    def _result(self) -> dict[str, Any]:
        """The child's verdict; if it could not give one, the proof done here."""
        if self._verdict is None:
            child, verdict = self._child, None
            if child is not None:
                assert child.stdout is not None
                out = child.stdout.read()
                if child.wait() == 0:
                    try:
                        verdict = json.loads(out)
                    except ValueError:
                        verdict = None
            self._verdict = verdict or prove(self.engine, self.events, self.until, self.expect, self.tree)
        return self._verdict


def prove(
    engine: Engine, events: str, until: int, expect: tuple[int, str] | None, tree: bool, sink: PageSink | None = None
) -> dict[str, Any]:
    """The verdict on the log: proved (with chain.checked_log's report and the digest of
    the events up to `until`), or the IntegrityError's message. `sink` takes each page
    once it is proved; its `finish` is the verdict's "folded"."""
    from ipledger.ledger.bulk import bulk_work

    seen = RowDigest(until)
    try:
        with bulk_work():
            if sink is None:
                report = verify_chain(events, engine, expect, tree=tree, seen=seen)
            else:
                report = {}
                pages = checked_log(events, engine, expect, None, report, tree, seen)
                while (page := next(pages, None)) is not None:
                    try:
                        sink(page)
                    except Exception as e:  # the sink's failure is no verdict on the log
                        raise SinkFailed from e
    except IntegrityError as e:
        return {"proved": False, "error": e.message}
    verdict = {"proved": True, "report": report, "digest": seen.hexdigest()}
    if sink is not None:
        verdict["folded"] = sink.finish()
    return verdict


def main(sink: Callable[[dict[str, Any], int], PageSink] | None = None) -> None:
    """The child: the job on stdin, the verdict as JSON on stdout. `sink(fold, until)`:
    what takes the proved pages when the job has a `fold` (a child module's own main)."""
    from ipledger.ledger.child import die_with_parent
    from ipledger.ledger.config import make_engine

    job = json.loads(sys.stdin.buffer.read())
    die_with_parent(int(job["parent"]))  # a killed rebuild or verify: no proof goes on alone
    engine = make_engine(job["url"])
    try:
        expect = None if job["expect"] is None else (int(job["expect"][0]), str(job["expect"][1]))
        until = int(job["until"])
        pages = None if sink is None or job.get("fold") is None else sink(job["fold"], until)
        verdict = prove(engine, job["events"], until, expect, bool(job["tree"]), pages)
    finally:
        engine.dispose()
    sys.stdout.write(json.dumps(verdict))
    sys.stdout.flush()
    # Nothing is left to clean up: skip the interpreter's teardown of a large heap (the id
    # caches, a fold's kept rows; 0.16 s of CPU at 100k events), which competes for the
    # two cores with the parent still folding, or keeps it waiting (it reads the verdict
    # to the pipe's end, which comes when this process has ended).
    os._exit(0)


if __name__ == "__main__":
    main()
