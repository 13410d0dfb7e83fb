"""One progress bar for long commands (issue 15): a correct rate and time left on a
terminal, nothing at all for scripts and pipes."""

from __future__ import annotations

import io
import re

import orjson

from ipledger.render import Progress
from tests.conftest import Cli


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def last_frame(out: io.StringIO) -> str:
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())
    return [frame for frame in re.split(r"[\r\n]", plain) if frame.strip()][-1]


def test_time_left_follows_the_recent_rate_not_the_slow_first_second() -> None:
    out, clock = io.StringIO(), Clock()
    with Progress("importing", 10_000, items="lines", shown=True, file=out, clock=clock) as bar:
        clock.now = 5.0  # a slow start: opening the store
        bar.advance(100)
        for _ in range(40):
            clock.now += 1.0
            bar.advance(100)  # then 100 lines a second, steadily
        bar._bar.refresh()
        frame = last_frame(out)
    assert "4,100 lines" in frame
    assert "91 lines/s" in frame  # the average since the start: 4,100 lines in 45 s
    assert frame.endswith("0:00:45 0:00:59 left"), frame  # 5,900 left at the recent 100 a second, not 91


def test_a_bar_counts_bytes_and_reports_lines() -> None:
    out, clock = io.StringIO(), Clock()
    with Progress("importing", 1_000, items="lines", shown=True, file=out, clock=clock) as bar:
        clock.now = 1.0
        bar.advance(500, 5)
        bar._bar.refresh()
        assert " 50%" in last_frame(out) and "5 lines" in last_frame(out)


def test_a_hidden_bar_writes_nothing() -> None:
    out = io.StringIO()
    with Progress("rebuilding", 10, shown=False, file=out) as bar:
        bar.advance(10)
        bar.to(10)
    assert out.getvalue() == ""


def test_long_commands_print_no_progress_when_stderr_is_not_a_terminal(run: Cli, tmp_path: object) -> None:
    line = orjson.dumps(
        {
            "command": "member.add",
            "args": {"id": "ccb-sh", "name": "CCB Shanghai", "kind": "financial_institution", "country": "CN"},
            "command_id": "imp-1",
            "actor": "operator",
            "at": run.now,
        }
    ).decode()
    for args, stdin in (
        (["import", "-"], line + "\n"),
        (["projections", "rebuild"], None),
        (["export"], None),
        (["audit", "verify"], None),
    ):
        result = run(*args, input=stdin)
        assert result.exit_code == 0, result.stderr
        assert result.stderr == "", args


def test_long_commands_feed_their_bar_up_to_the_head(run: Cli) -> None:
    """What the bar is told, without a terminal: verify and restore report every event."""
    from ipledger.service import Ledger

    exported = run.export()
    head = len(exported.splitlines())
    ledger = Ledger(run.db)
    seen: list[int] = []
    ledger.verify(progress=seen.append)
    assert seen and seen[-1] == head
    ledger.close()
    restored = Ledger(run.db.replace("ledger.db", "restored.db"))
    counted: list[int] = []
    restored.restore((line.encode() for line in exported.splitlines()), progress=counted.append)
    assert sum(counted) == head
    restored.close()
