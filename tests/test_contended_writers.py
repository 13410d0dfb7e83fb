"""Several writer processes on one PostgreSQL log (ledger/application.py `submit`).

A process decides on its cache, current where it last wrote, and its write lands after
others' events since only if they touch nothing the command read and are recorded no
later (LedgerRecorder._written_since). After a loss on what it read, the process takes
the log's write lock before it reads and decides, for as long as it keeps finding
others' events, then guesses again. Two Exchanges on one store stand for two processes
here: each has its own connection and cache."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator
from datetime import timedelta

import orjson
import pytest

from ipledger.domain.errors import DuplicateId
from ipledger.domain.values import format_time
from ipledger.ledger import application
from ipledger.ledger.application import CONTENDED_COMMANDS, Exchange, wall_clock

pytestmark = pytest.mark.postgres


@pytest.fixture
def two(pg_url: str) -> Iterator[tuple[Exchange, Exchange]]:
    first, second = Exchange(pg_url), Exchange(pg_url)
    yield first, second
    first.close()
    second.close()


def add(exchange: Exchange, member: str, command_id: str | None = None) -> dict[str, object]:
    args = {"id": member, "name": member.upper(), "kind": "enterprise", "country": "CN"}
    return exchange.execute("member.add", args, command_id=command_id)


def test_a_guess_lands_after_another_process_wrote_what_it_did_not_read(
    two: tuple[Exchange, Exchange], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = two
    sees_another_writer(first, second)
    add(second, "zte")
    writes: list[object] = []
    insert_events = first.recorder.insert_events
    monkeypatch.setattr(first.recorder, "insert_events", lambda *a, **k: writes.append(a) or insert_events(*a, **k))
    add(first, "huawei")  # decided on its cache; the other's event touches nothing it read
    assert len(writes) == 1  # it landed as decided
    assert first.contended == 0  # no race lost: no lock taken first
    assert first.cache.head == first.recorder.max_notification_id()  # and still current
    assert admitted(first)[-2:] == ["zte", "huawei"]


def sees_another_writer(first: Exchange, second: Exchange) -> None:
    """`second` writes, then `first`: its guess had to follow its own last event and is
    decided again; its next guesses are checked past others' events."""
    add(first, "cas-lab")
    add(second, "sjtu-lab")
    add(first, "fudan-lab")
    assert first.others_writing > 0 and first.contended == 0


def test_a_write_lost_to_another_process_makes_the_next_commands_lock_first(two: tuple[Exchange, Exchange]) -> None:
    first, second = two
    add(first, "byd")
    add(first, "zte")
    assert first.contended == 0  # alone: every command guesses, none locks
    lose_a_race(first, second, "zte")
    add(second, "sjtu")
    add(first, "fudan-univ")  # under the lock it found another's event: the count starts again
    assert first.contended == CONTENDED_COMMANDS
    add(first, "boc-bj")
    assert first.contended == CONTENDED_COMMANDS - 1
    assert admitted(first) == ["byd", "zte", "sjtu", "fudan-univ", "boc-bj"]  # each once, in order


def lose_a_race(first: Exchange, second: Exchange, member: str) -> None:
    """`second` suspends `member`, which `first` holds in its cache; `first` then reinstates
    it: refused on its cache (active there), and decided again on the log as it is."""
    second.execute("member.suspend", {"id": member})
    first.execute("member.reinstate", {"id": member})
    assert first.contended == application.CONTENDED_COMMANDS


def admitted(exchange: Exchange) -> list[str]:
    """The members the log admits, in log order."""
    return [
        orjson.loads(n.state)["member_id"]
        for n in exchange.recorder.select_notifications(1, 100)
        if n.topic.endswith("Admitted")
    ]


def test_a_loss_on_an_aggregate_the_other_process_wrote_counts_as_contention(two: tuple[Exchange, Exchange]) -> None:
    first, second = two
    add(first, "byd")
    add(first, "zte")
    second.execute("member.suspend", {"id": "zte"})
    second.execute("member.reinstate", {"id": "zte"})
    first.execute("member.suspend", {"id": "zte"})  # its cached zte is two events behind: the insert conflicts
    assert first.contended == CONTENDED_COMMANDS


def test_a_refusal_on_a_stale_cache_counts_as_contention(two: tuple[Exchange, Exchange]) -> None:
    first, second = two
    add(first, "byd")
    add(first, "zte")
    second.execute("member.suspend", {"id": "zte"})
    first.execute("member.reinstate", {"id": "zte"})  # refused on its cache (zte active), decided again
    assert first.contended == CONTENDED_COMMANDS


def test_a_duplicate_id_of_its_own_is_not_contention(two: tuple[Exchange, Exchange]) -> None:
    first, _ = two
    add(first, "byd")
    add(first, "zte")
    first.cache.forget()  # as after a restart: its guess leaves "is byd new?" to the store's index
    add(first, "huawei")
    with pytest.raises(DuplicateId):
        add(first, "byd")  # the write conflicts on the index, the retry refuses it
    assert first.contended == 0


def test_a_duplicate_id_under_the_lock_does_not_restart_the_count(two: tuple[Exchange, Exchange]) -> None:
    first, second = two
    add(first, "byd")
    add(first, "zte")
    add(second, "catl")  # never in first's cache: "is catl new?" is left to the store's index
    lose_a_race(first, second, "zte")  # locks first from now on
    add(first, "sjtu")  # nobody else wrote: the count goes down
    with pytest.raises(DuplicateId):
        add(first, "catl")  # two attempts under the lock (the guessed id, then the check): two down
    assert first.contended == CONTENDED_COMMANDS - 3


def test_a_process_that_finds_nobody_else_writing_goes_back_to_guessing(
    two: tuple[Exchange, Exchange], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(application, "CONTENDED_COMMANDS", 3)
    first, second = two
    add(first, "byd")
    lose_a_race(first, second, "byd")
    for n in range(3):
        add(first, f"ent-{n}")
    assert first.contended == 0


def test_a_refused_command_under_the_lock_lets_the_other_process_write(two: tuple[Exchange, Exchange]) -> None:
    first, second = two
    add(first, "byd")
    add(second, "zte")
    lose_a_race(first, second, "byd")
    with pytest.raises(DuplicateId):
        add(first, "zte")  # refused under the lock: the lock must go with the transaction
    assert_writes_promptly(second, "sjtu")
    add(first, "icbc-sh")
    assert admitted(first) == ["byd", "zte", "sjtu", "icbc-sh"]


def test_a_repeated_command_id_under_the_lock_answers_and_lets_the_other_process_write(
    two: tuple[Exchange, Exchange],
) -> None:
    first, second = two
    add(first, "byd", command_id="c-byd")
    lose_a_race(first, second, "byd")
    assert add(first, "byd", command_id="c-byd") == add(second, "byd", command_id="c-byd")
    assert_writes_promptly(second, "sjtu")


def assert_writes_promptly(exchange: Exchange, member: str) -> None:
    """The other process's write goes through: a lock left behind would block it for good."""
    done = threading.Event()
    thread = threading.Thread(target=lambda: (add(exchange, member), done.set()), daemon=True)
    thread.start()
    assert done.wait(10), "the write lock was left behind"


def test_a_guess_that_lost_only_to_a_later_time_is_decided_again_without_the_lock(
    two: tuple[Exchange, Exchange], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = two
    sees_another_writer(first, second)
    later = format_time(wall_clock() + timedelta(minutes=2))  # a pinned time, within the clock's tolerance
    args = {"id": "zte", "name": "ZTE", "kind": "enterprise", "country": "CN"}
    second.execute("member.add", args, now=later)
    locked_first = spy(monkeypatch, first, "preflight_locked")
    add(first, "huawei")  # decided on the wall clock, before zte's time: decided again at it
    assert locked_first == []  # the second decision read the log first, and took no lock to do it
    assert first.contended == 0  # nothing it read was written: no lock-first mode
    times = [orjson.loads(n.state)["timestamp"] for n in first.recorder.select_notifications(1, 100)]
    assert times == sorted(times) and times[-1] == times[-2]  # the recorded time never goes backwards
    assert admitted(first)[-2:] == ["zte", "huawei"]


def test_a_guess_that_lost_to_later_times_twice_is_decided_under_the_lock(
    two: tuple[Exchange, Exchange], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each retry's write finds another later time before it: the third decision is made
    under the lock, where no one can write before it (a command cannot lose forever)."""
    first, second = two
    sees_another_writer(first, second)
    rivals = iter([("zte", 2), ("xiaomi", 3)])
    insert_events = first.recorder.insert_events

    def raced(*a: object, **k: object) -> object:
        rival = next(rivals, None)
        if rival is not None:  # another process writes, later, just before this write
            member, minutes = rival
            args = {"id": member, "name": member.upper(), "kind": "enterprise", "country": "CN"}
            at = format_time(wall_clock() + timedelta(minutes=minutes))
            # In a context of its own: inside `first`'s write, driver.shared() is first's connection.
            contextvars.Context().run(second.execute, "member.add", args, now=at)
        return insert_events(*a, **k)

    monkeypatch.setattr(first.recorder, "insert_events", raced)
    locked_first = spy(monkeypatch, first, "preflight_locked")
    add(first, "huawei")
    assert len(locked_first) == 1
    times = [orjson.loads(n.state)["timestamp"] for n in first.recorder.select_notifications(1, 100)]
    assert times == sorted(times)
    assert admitted(first)[-3:] == ["zte", "xiaomi", "huawei"]


def spy(monkeypatch: pytest.MonkeyPatch, exchange: Exchange, method: str) -> list[object]:
    """The calls of one of the recorder's methods, which still runs."""
    calls: list[object] = []
    real = getattr(exchange.recorder, method)
    monkeypatch.setattr(exchange.recorder, method, lambda *a, **k: calls.append(a) or real(*a, **k))
    return calls
