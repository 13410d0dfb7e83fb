"""An import's batches written by a second process while this one decides the next.

A third of an import (two fifths on PostgreSQL) was the write of each batch: its events,
hash-chain links, Merkle leaves and command records, hashed and inserted in one
transaction. The machine has a second core, so a child process (`python -m
ipledger.ledger.writer`) takes each decided batch and writes it through the same
`LedgerRecorder.insert_events`, while this process decides the next batch on the state
the previous one left in its aggregate cache. Nothing about a batch changes: one
transaction each, whole commands only.

Each batch is written directly after a known position, or conflicts and writes nothing
(the recorder's `after`): the first after the head read when it was decided, each later
one after the last position of the batch the child wrote before it. So a batch decided
on the state its predecessor left can only land right behind that predecessor: if
anyone else wrote in between, it conflicts.

The importer (ledger/importer.py) owns the rules of what may run ahead: a conflict, a
lost child or a rejected line make it wait for the batch in flight and go on writing in
process, exactly as without a child.
"""

from __future__ import annotations

import os
import pickle
import signal
import struct
import subprocess
import sys
from collections.abc import Sequence
from typing import IO, Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError as RecordConflict
from eventsourcing.persistence import OperationalError as StoreOperationalError
from eventsourcing.persistence import PersistenceError, StoredEvent

from ipledger.ledger.recorder import CommandWrite

#: A frame: its length (8 bytes, big-endian), then a pickle. Parent and child are the
#: same program, so pickle is safe here: it never reads anything from outside.
_LENGTH = struct.Struct(">Q")


class WriterLost(Exception):
    """The child gave no answer for a batch (it died, or could not start): whether that
    batch was written is unknown, so the importer asks the store (command ids)."""


def _send(stream: IO[bytes], message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(data)))
    stream.write(data)
    stream.flush()


def _receive(stream: IO[bytes]) -> Any:
    """The next frame, or None at the end of the stream (a frame cut short is an end too:
    its sender died while sending, and half a batch is never written)."""
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None
    (size,) = _LENGTH.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        return None
    return pickle.loads(data)


class BatchWriter:
    """The parent's side: one batch at a time in flight (`send`, then `result`)."""

    def __init__(self, url: str) -> None:
        self._child: subprocess.Popen[bytes] | None = subprocess.Popen(
            [sys.executable, "-m", "ipledger.ledger.writer"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # a child that fails gives no answer: the importer writes itself
        )
        # The store goes on stdin: its URL may carry a password, and argv is public.
        self._call({"url": url, "parent": os.getpid()})

    def send(self, events: Sequence[StoredEvent], commands: Sequence[CommandWrite], after: int | None) -> None:
        """Hand a decided batch to the child: written right after position `after` (None:
        after the batch it wrote last), or not at all."""
        rows = [(_uuid(e.originator_id).bytes, e.originator_version, e.topic, e.state) for e in events]
        self._call((rows, list(commands), after))

    def result(self) -> tuple[int, int]:
        """The batch in flight: its first and last position once committed; RecordConflict
        (nothing written: the log moved, or an optimistic id existed), the store's error,
        or WriterLost."""
        child = self._child
        if child is None or child.stdout is None:
            raise WriterLost("the writer process is gone")
        try:
            answer = _receive(child.stdout)
        except (OSError, pickle.UnpicklingError, EOFError, ValueError):
            answer = None
        if answer is None:
            self.close()
            raise WriterLost("the writer process gave no answer")
        kind, detail = answer
        if kind == "ok":
            return detail
        if kind == "conflict":
            raise RecordConflict(detail)
        if kind == "operational":
            raise StoreOperationalError(detail)
        raise PersistenceError(detail)

    def close(self) -> None:
        """End the child: its pipe is closed, and it exits once the batch it is writing,
        if any, is committed or rolled back (a batch not answered for is unknown to the
        importer, see WriterLost). Killed only if it outlives its answers by a minute."""
        child, self._child = self._child, None
        if child is None:
            return
        try:
            if child.stdin is not None:
                child.stdin.close()
            if child.stdout is not None:
                child.stdout.read()  # its end: no answer is owed, so it exits (Popen.wait(timeout) polls)
            child.wait(timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            child.kill()
            child.wait()
        finally:
            if child.stdout is not None:
                child.stdout.close()

    def _call(self, message: Any) -> None:
        child = self._child
        if child is None or child.stdin is None:
            raise WriterLost("the writer process is gone")
        try:
            _send(child.stdin, message)
        except OSError:  # a broken pipe: the child died
            self.close()
            raise WriterLost("the writer process is gone") from None


def _uuid(value: Any) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


def main() -> None:
    """The child: batches in, answers out, until the parent closes the pipe."""
    from ipledger.ledger import driver
    from ipledger.ledger.bulk import bulk_work
    from ipledger.ledger.child import die_with_parent
    from ipledger.ledger.recorder import LedgerRecorder

    inp = sys.stdin.buffer
    # The answers go out on the original stdout; anything a library prints goes to stderr,
    # where it cannot be taken for a frame.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    # The parent alone decides when a batch stops (Ctrl-C reaches the whole process group).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    job = _receive(inp)
    if job is None:
        return
    die_with_parent(int(job["parent"]))  # a killed import: its open transaction rolls back
    engine = driver.store_engine(job["url"])
    recorder = LedgerRecorder(engine)
    last: int | None = None  # where the batch written last ended
    try:
        with bulk_work():
            while (batch := _receive(inp)) is not None:
                rows, commands, after = batch
                events = [StoredEvent(UUID(bytes=oid), version, topic, state) for oid, version, topic, state in rows]
                try:
                    if after is None and last is None:
                        raise RecordConflict("no batch before this one was written here")
                    expect, last = (last if after is None else after), None  # a batch that fails ends the chain
                    positions = recorder.insert_events(events, commands=commands, after=expect)
                    assert positions, "a batch always has events"
                    last = positions[-1]
                    answer: tuple[str, Any] = ("ok", (positions[0], positions[-1]))
                except RecordConflict as e:
                    answer = ("conflict", str(e))
                except StoreOperationalError as e:
                    answer = ("operational", str(e))
                except PersistenceError as e:
                    answer = ("error", str(e))
                _send(out, answer)
    finally:
        recorder.release()
        engine.dispose()
    out.flush()
    os._exit(0)  # every batch answered and committed: nothing is left for the interpreter's teardown


if __name__ == "__main__":
    main()
