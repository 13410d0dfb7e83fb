"""An import on SQLite hands each decided batch to a writer process (ledger/writer.py) and
decides the next one meanwhile. Whatever happens to a batch in flight, the import ends as
one written in process would: the same log, the same counts, the same first rejected line.

Batches here are small (BATCH lines), so a history of ~850 lines has several in flight.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from bench.generator import generate
from ipledger.domain.errors import LedgerError
from ipledger.ledger import importer, writer
from ipledger.service import Ledger
from tests.conftest import Cli
from tests.test_import import doc, export

HISTORY = list(generate(1500, 7))  # 856 lines
BATCH = 100
IPLEDGER = str(Path(sys.executable).with_name("ipledger"))


@pytest.fixture(autouse=True)
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importer, "BATCH", BATCH)


@pytest.fixture
def writers(monkeypatch: pytest.MonkeyPatch) -> list[writer.BatchWriter]:
    """Every writer process an import starts, or tries to (a spy: they run as they would)."""
    started: list[writer.BatchWriter] = []
    real = writer.BatchWriter.__init__

    def init(self: writer.BatchWriter, url: str) -> None:
        started.append(self)
        real(self, url)

    monkeypatch.setattr(writer.BatchWriter, "__init__", init)
    return started


def imported(url: str, lines: list[bytes], progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    ledger = Ledger(url)
    try:
        return ledger.import_lines(iter(lines), progress=progress)
    finally:
        ledger.close()


def in_process(tmp_path: Path, name: str, lines: list[bytes], monkeypatch: pytest.MonkeyPatch) -> bytes:
    """The reference: the same lines imported without a writer process."""
    url = f"sqlite:///{tmp_path}/{name}.db"
    with monkeypatch.context() as m:
        m.setattr(importer, "PIPELINED", False)
        imported(url, lines)
    return export(url)


@pytest.fixture
def fell_back(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Each time an import went back to this process (a spy: it falls back as it would)."""
    calls: list[int] = []
    real = importer._Import.fall_back

    def fall_back(self: Any) -> None:
        calls.append(1)
        real(self)

    monkeypatch.setattr(importer._Import, "fall_back", fall_back)
    return calls


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The batches handed to a writer process (a spy: each is written as it would be)."""
    batches: list[int] = []
    real = writer.BatchWriter.send

    def send(self: writer.BatchWriter, *batch: Any) -> None:
        batches.append(1)
        real(self, *batch)

    monkeypatch.setattr(writer.BatchWriter, "send", send)
    return batches


def with_unknown_assignee(lines: list[bytes], after: int) -> tuple[list[bytes], int]:
    """The lines with the first assignment past `after` made to a member nobody admitted."""
    k = next(i for i, raw in enumerate(lines) if i > after and doc(raw)["command"] == "asset.assign")
    bad = dict(doc(lines[k]))
    bad["args"] = {**bad["args"], "to": ["no-such-member"]}
    return [*lines[:k], orjson.dumps(bad), *lines[k + 1 :]], k


def member_added_before(k: int, url: str) -> str:
    """Line k's member admitted in advance, by another ledger (not in the importer's cache)."""
    ledger = Ledger(url)
    try:
        ledger.execute("member.add", doc(HISTORY[k])["args"], command_id="earlier", now=str(doc(HISTORY[0])["at"]))
    finally:
        ledger.close()
    return str(doc(HISTORY[k])["args"]["id"])


def refused_like_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, k: int, lines: list[bytes]) -> str:
    """Import `lines` into a store that has line k's member already, with the writer process
    and without; both must refuse, and keep the same log. The first refusal's message."""
    url, reference = f"sqlite:///{tmp_path}/l.db", f"sqlite:///{tmp_path}/reference.db"
    member_added_before(k, url)
    with pytest.raises(LedgerError) as refused:
        imported(url, lines)
    member_added_before(k, reference)
    with monkeypatch.context() as m:
        m.setattr(importer, "PIPELINED", False)
        with pytest.raises(LedgerError) as reference_refused:
            imported(reference, lines)
    assert refused.value.message == reference_refused.value.message
    assert export(url) == export(reference)
    return refused.value.message


def test_batches_written_by_the_writer_process_give_the_log_an_import_in_process_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writers: list[writer.BatchWriter]
) -> None:
    url = f"sqlite:///{tmp_path}/piped.db"
    assert imported(url, HISTORY) == {"applied": len(HISTORY), "skipped": 0}
    assert len(writers) == 1
    assert export(url) == in_process(tmp_path, "reference", HISTORY, monkeypatch)


def test_progress_counts_every_line_once_with_batches_in_flight(tmp_path: Path) -> None:
    seen: list[int] = []
    imported(f"sqlite:///{tmp_path}/l.db", HISTORY, progress=seen.append)
    assert sum(seen) == len(HISTORY)


def test_a_command_id_repeated_in_the_batch_after_the_one_in_flight_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sent: list[int]
) -> None:
    """The batch in flight is not in the store yet: its command ids count as recorded
    (so the repeat is skipped where it is decided, and every batch goes to the writer,
    the last, partial one too)."""
    lines = [*HISTORY[: 2 * BATCH + 10], HISTORY[BATCH + 10], *HISTORY[2 * BATCH + 10 :]]
    url = f"sqlite:///{tmp_path}/l.db"
    assert imported(url, lines) == {"applied": len(HISTORY), "skipped": 1}
    assert len(sent) == -(-len(lines) // BATCH)
    monkeypatch.undo()
    assert export(url) == in_process(tmp_path, "reference", HISTORY, monkeypatch)


def import_refused_at(tmp_path: Path, lines: list[bytes], k: int) -> str:
    """Import `lines` from the CLI, whose line k names a member nobody admitted: it stops
    there with that line's message; the store's path is returned."""
    run = Cli(f"sqlite:///{tmp_path}/l.db")
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"".join(raw + b"\n" for raw in lines))

    result = run("import", str(path))

    assert result.exit_code == 1
    assert result.stderr == (
        f"error: NotFound: line {k + 1}: to: no member no-such-member "
        f"(stopped there; {k} earlier line(s) applied, 0 already recorded)\n"
    )
    return run.db


def test_a_line_rejected_while_the_batch_before_it_is_in_flight_stops_the_import_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sent: list[int]
) -> None:
    lines, k = with_unknown_assignee(HISTORY, 2 * BATCH + 20)
    db = import_refused_at(tmp_path, lines, k)
    assert len(sent) == k // BATCH, "the batches before the bad line went through the writer process"
    assert export(db) == in_process(tmp_path, "prefix", HISTORY[:k], monkeypatch)


def test_a_line_rejected_in_the_last_partial_batch_decided_ahead_stops_the_import_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sent: list[int]
) -> None:
    """The last lines (fewer than a batch) are decided while the batch before them is
    written, too: a line refused there is decided again in process and reported."""
    lines, k = with_unknown_assignee(HISTORY, len(HISTORY) // BATCH * BATCH + 5)
    db = import_refused_at(tmp_path, lines, k)
    assert len(sent) == len(HISTORY) // BATCH  # every full batch; the partial one was refused
    monkeypatch.undo()
    assert export(db) == in_process(tmp_path, "prefix", HISTORY[:k], monkeypatch)


def test_a_write_landing_between_two_batches_sends_the_import_back_in_process_and_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fell_back: list[int]
) -> None:
    """Another writer records a command while a batch is decided: the batch decided on the
    log as it was must not be written after it. It conflicts, and is decided again here."""
    url = f"sqlite:///{tmp_path}/l.db"
    other = Ledger(url)
    first_time = str(doc(HISTORY[0])["at"])
    done: list[int] = []

    def interleave(lines: int) -> None:
        done.append(lines)
        if len(done) == 1:  # the first batch has landed; the second is decided, not yet sent
            at = max(str(doc(HISTORY[BATCH])["at"]), first_time)
            bank = {"id": "icbc-sh", "name": "ICBC Shanghai", "kind": "financial_institution", "country": "CN"}
            other.execute("member.add", bank, command_id="concurrent-1", now=at)

    try:
        counts = imported(url, HISTORY, progress=interleave)
    finally:
        other.close()

    assert counts == {"applied": len(HISTORY), "skipped": 0}
    assert sum(done) == len(HISTORY)
    ledger = Ledger(url)
    try:
        assert ledger.verify()["ok"] is True
        assert ledger.exchange.recorded_outcome("concurrent-1") == {"id": "icbc-sh", "status": "active"}
        log = [doc(raw) for raw in ledger.export()]
    finally:
        ledger.close()
    # Every line is in the log once, in the file's order, with the other command among them.
    ids = [cid for e in log if (cid := orjson.loads(e["state"])["meta"]["command_id"]).startswith("bench-")]
    assert list(dict.fromkeys(ids)) == [str(doc(raw)["command_id"]) for raw in HISTORY]
    assert fell_back == [1], "the import went back to this process once, when the batch conflicted"


def test_an_id_the_store_already_has_in_a_batch_in_flight_is_refused_at_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fell_back: list[int]
) -> None:
    """Ids are left to the store's unique index while a batch is decided (optimistic): the
    writer's insert conflicts, and the batch decided again with every check stops at the line."""
    k = next(i for i, raw in enumerate(HISTORY) if i > BATCH + 20 and doc(raw)["command"] == "member.add")
    message = refused_like_in_process(tmp_path, monkeypatch, k, HISTORY)
    assert message == (
        f"line {k + 1}: id: member {doc(HISTORY[k])['args']['id']} already exists "
        f"(stopped there; {k} earlier line(s) applied, 0 already recorded)"
    )
    assert fell_back == [1], "the batch was written by the writer process, and conflicted"


def test_a_refused_line_in_the_batch_in_flight_is_reported_before_one_refused_in_the_batch_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fell_back: list[int]
) -> None:
    """Batch 2 conflicts in the writer (an id the store has), while batch 3, decided ahead
    of it, has a bad line of its own: batch 2 is decided again in process and its line,
    the first bad one in the file, is the one reported; batch 3 is never written."""
    k = next(i for i, raw in enumerate(HISTORY) if BATCH + 20 < i < 2 * BATCH and doc(raw)["command"] == "member.add")
    lines, _ = with_unknown_assignee(HISTORY, 2 * BATCH + 20)
    message = refused_like_in_process(tmp_path, monkeypatch, k, lines)
    assert message == (
        f"line {k + 1}: id: member {doc(HISTORY[k])['args']['id']} already exists "
        f"(stopped there; {k} earlier line(s) applied, 0 already recorded)"
    )
    assert fell_back == [1], "batch 2 went to the writer process, and conflicted there"


def test_a_writer_process_that_cannot_run_leaves_the_import_to_this_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writers: list[writer.BatchWriter]
) -> None:
    monkeypatch.setattr(writer.sys, "executable", "/bin/false")
    url = f"sqlite:///{tmp_path}/l.db"
    assert imported(url, HISTORY) == {"applied": len(HISTORY), "skipped": 0}
    monkeypatch.undo()
    assert len(writers) == 1
    assert export(url) == in_process(tmp_path, "reference", HISTORY, monkeypatch)


@pytest.mark.parametrize("killed_after", [1, 3])
def test_a_writer_process_killed_with_a_batch_in_flight_leaves_no_line_lost_or_written_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writers: list[writer.BatchWriter], killed_after: int
) -> None:
    """Killed just after it was handed a batch: whether that batch landed is unknown to the
    import, which asks the store (command ids) and writes the rest itself."""
    sends: list[int] = []
    real = writer.BatchWriter.send

    def send_then_kill(self: writer.BatchWriter, *batch: Any) -> None:
        real(self, *batch)
        sends.append(1)
        if len(sends) == killed_after and self._child is not None:
            self._child.send_signal(signal.SIGKILL)

    monkeypatch.setattr(writer.BatchWriter, "send", send_then_kill)
    seen: list[int] = []
    url = f"sqlite:///{tmp_path}/l.db"
    assert imported(url, HISTORY, progress=seen.append) == {"applied": len(HISTORY), "skipped": 0}
    assert len(sends) == killed_after, "no batch went to the writer after it was killed"
    assert sum(seen) == len(HISTORY)
    monkeypatch.undo()
    assert export(url) == in_process(tmp_path, "reference", HISTORY, monkeypatch)


@pytest.mark.postgres
def test_a_postgresql_import_through_the_writer_process_gives_the_log_an_import_in_process_gives(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writers: list[writer.BatchWriter]
) -> None:
    """PostgreSQL numbers positions from a sequence: each batch is told to follow the one
    the writer wrote before it, not a position foretold."""
    assert imported(pg_url, HISTORY) == {"applied": len(HISTORY), "skipped": 0}
    assert len(writers) == 1
    assert export(pg_url) == in_process(tmp_path, "reference", HISTORY, monkeypatch)


@pytest.mark.postgres
def test_a_postgresql_write_landing_between_two_batches_sends_the_import_back_in_process(
    pg_url: str, fell_back: list[int]
) -> None:
    other = Ledger(pg_url)
    done: list[int] = []

    def interleave(lines: int) -> None:
        done.append(lines)
        if len(done) == 1:
            bank = {"id": "icbc-sh", "name": "ICBC Shanghai", "kind": "financial_institution", "country": "CN"}
            other.execute("member.add", bank, command_id="concurrent-1", now=str(doc(HISTORY[BATCH])["at"]))

    try:
        assert imported(pg_url, HISTORY, progress=interleave) == {"applied": len(HISTORY), "skipped": 0}
    finally:
        other.close()
    ledger = Ledger(pg_url)
    try:
        assert ledger.verify()["ok"] is True
        assert ledger.exchange.recorded_outcome("concurrent-1") == {"id": "icbc-sh", "status": "active"}
    finally:
        ledger.close()
    assert fell_back == [1]


# --------------------------------------------------------------------------- killed with its import


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


@pytest.fixture
def victim(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    path = tmp_path / "history.jsonl"
    path.write_bytes(b"".join(raw + b"\n" for raw in generate(40_000, 11)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("IPLEDGER_")}
    proc = subprocess.Popen(
        [IPLEDGER, "--db", f"sqlite:///{tmp_path}/l.db", "import", str(path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    yield proc, path
    if proc.poll() is None:
        proc.kill()
    proc.wait()


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads a process's children from /proc (Linux)")
def test_the_writer_process_dies_with_a_killed_import(victim: tuple[subprocess.Popen[bytes], Path]) -> None:
    """A killed import leaves no writer behind to go on holding the store's write lock."""
    proc, _ = victim
    deadline = time.monotonic() + 60
    kids: list[int] = []
    while not kids:
        assert proc.poll() is None, "the import ended before it started a writer process"
        assert time.monotonic() < deadline, "no writer process in 60 s"
        time.sleep(0.05)
        kids = children(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{kid}").exists() and "Z" not in _state(kid) for kid in kids):
        assert time.monotonic() < deadline, f"writer {kids} outlived its import"
        time.sleep(0.05)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return "Z"


# --------------------------------------------------------------------------- the cache while a batch is in flight


def test_the_cache_keeps_the_aggregates_of_a_batch_in_flight_past_its_limit() -> None:
    """The store does not have their state yet: a batch decided next must find it here."""
    from ipledger.ledger.unit_of_work import AggregateCache
    from tests.builders import admit

    cache = AggregateCache(limit=2)
    cache.sync(7)
    members = [admit(member) for member in ("tsinghua", "sjtu", "byd", "huawei")]
    for member in members:
        cache.aggregates[member.id] = member
    cache.sync(7, keep={members[0].id})
    assert set(cache.aggregates) == {members[0].id, members[3].id}


def test_an_import_with_a_tiny_cache_still_decides_every_batch_ahead_on_its_own_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sent: list[int]
) -> None:
    """Aggregates of the batch in flight are never dropped for the cache's limit: each
    batch decided ahead lands as decided (no batch falls back to this process)."""
    monkeypatch.setattr(importer, "IMPORT_CACHE_LIMIT", 5)
    url = f"sqlite:///{tmp_path}/l.db"
    ledger = Ledger(url)
    try:
        ledger.exchange.cache.limit = 5
        assert ledger.import_lines(iter(HISTORY)) == {"applied": len(HISTORY), "skipped": 0}
    finally:
        ledger.close()
    assert len(sent) == -(-len(HISTORY) // BATCH)
    monkeypatch.undo()
    assert export(url) == in_process(tmp_path, "reference", HISTORY, monkeypatch)


def test_an_import_keeps_more_aggregates_than_commands_do_and_gives_the_room_back(tmp_path: Path) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path}/l.db")
    try:
        cache = ledger.exchange.cache
        limit = cache.limit
        seen: list[int] = []
        ledger.import_lines(iter(HISTORY), progress=lambda _: seen.append(cache.limit))
        assert set(seen) == {importer.IMPORT_CACHE_LIMIT} and limit < importer.IMPORT_CACHE_LIMIT
        assert cache.limit == limit
    finally:
        ledger.close()
