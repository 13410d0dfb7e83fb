"""`ipledger import` (cli.md): JSON Lines of commands applied in order, many per
transaction; the first rejected line stops the import with its line number and keeps
every line before it; a re-run skips lines whose command id is already recorded.

Histories come from the benchmark's generator (bench/generator.py), whose every line is
accepted; a bad line is made by changing one of them (same command id), so "fixing" it
means putting the original back.
"""

from __future__ import annotations

import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import Result

from bench.generator import generate
from ipledger.ledger import importer
from ipledger.service import Ledger
from tests.conftest import PATENT, PATENT_2, Cli

IPLEDGER = str(Path(sys.executable).with_name("ipledger"))
HISTORY = list(generate(1500, 7))  # ~840 lines recording ~1500 events
SMALL_BATCH = 500  # lines per transaction in these tests, so ~840 lines cross transaction boundaries
BATCH_CROSSING = 600  # a bad line here follows a committed batch


@pytest.fixture(autouse=True)
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """The importer's boundaries fall inside HISTORY (its real batch is larger than HISTORY)."""
    monkeypatch.setattr(importer, "BATCH", SMALL_BATCH)


# --------------------------------------------------------------------------- helpers


def db(tmp_path: Path, name: str) -> str:
    return f"sqlite:///{tmp_path}/{name}.db"


def write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def export(url: str) -> bytes:
    ledger = Ledger(url)
    try:
        return b"\n".join(ledger.export())
    finally:
        ledger.close()


def import_directly(url: str, lines: list[bytes]) -> bytes:
    """The reference: the same lines imported through the application; returns the export."""
    ledger = Ledger(url)
    try:
        ledger.import_lines(lines)
        return b"\n".join(ledger.export())
    finally:
        ledger.close()


def doc(raw: bytes) -> dict[str, Any]:
    parsed = orjson.loads(raw)
    assert isinstance(parsed, dict)
    return parsed


def with_args(raw: bytes, **args: object) -> bytes:
    """The same line (same command id, actor and time) with some of its args changed."""
    changed = doc(raw)
    changed["args"] = {**changed["args"], **args}
    return orjson.dumps(changed)


def first_index(command: str, after: int) -> int:
    return next(i for i, line in enumerate(HISTORY) if i >= after and doc(line)["command"] == command)


def bad_history() -> tuple[list[bytes], int, str]:
    """HISTORY with line k (an assignment, past the first batch) assigning to an unknown member."""
    k = first_index("asset.assign", BATCH_CROSSING)
    ref = str(doc(HISTORY[k])["args"]["ref"])
    lines = list(HISTORY)
    lines[k] = with_args(HISTORY[k], to=["no-such-member"])
    return lines, k, ref


def line_of(result: Result) -> int:
    match = re.search(r"\bline (\d+)\b", result.stderr)
    assert match is not None, result.stderr
    return int(match.group(1))


def error_name(result: Result) -> str:
    match = re.search(r"^error: (\w+): ", result.stderr, re.MULTILINE)
    assert match is not None, result.stderr
    return match.group(1)


def at(minutes: int) -> str:
    """A recorded time `minutes` after T0 (the `run` fixture's clock)."""
    hours, mins = divmod(9 * 60 + minutes, 60)
    return f"2026-03-02T{hours:02d}:{mins:02d}:00Z"


def line(command: str, command_id: str, when: str, **args: object) -> bytes:
    return orjson.dumps({"command": command, "args": args, "command_id": command_id, "actor": "operator", "at": when})


def stdin(*lines: str | bytes) -> str:
    return "".join((raw.decode() if isinstance(raw, bytes) else raw) + "\n" for raw in lines)


def register(command_id: str, when: str, ref: str = PATENT_2, owner: str = "sjtu") -> bytes:
    return line("asset.register", command_id, when, ref=ref, title="Battery separator", owner=[owner])


def owners(run: Cli, ref: str) -> list[dict[str, str]]:
    result = run("owner", ref, "--json")
    assert result.exit_code == 0, result.stderr
    return list(orjson.loads(result.stdout)["owners"])


# --------------------------------------------------------------------------- equivalence


def test_import_records_the_same_log_as_executing_each_line_with_its_command_id_actor_and_time(
    tmp_path: Path,
) -> None:
    imported = Cli(db(tmp_path, "imported"))
    result = imported("import", str(write(tmp_path / "history.jsonl", HISTORY)))
    assert result.exit_code == 0, result.stderr

    one_by_one = Ledger(db(tmp_path, "executed"))
    try:
        for raw in HISTORY:
            d = doc(raw)
            one_by_one.execute(
                str(d["command"]), d["args"], actor=str(d["actor"]), command_id=str(d["command_id"]), now=str(d["at"])
            )
    finally:
        one_by_one.close()

    assert export(db(tmp_path, "imported")) == export(db(tmp_path, "executed"))


def test_import_reports_how_many_lines_it_applied(tmp_path: Path) -> None:
    run = Cli(db(tmp_path, "ledger"))
    result = run("import", str(write(tmp_path / "history.jsonl", HISTORY)), "--json")
    assert result.exit_code == 0, result.stderr
    assert orjson.loads(result.stdout) == {"applied": len(HISTORY), "skipped": 0}


# --------------------------------------------------------------------------- the first rejected line


def test_import_stops_at_the_first_rejected_line_with_its_error_exit_code_and_line_number(tmp_path: Path) -> None:
    lines, k, _ = bad_history()
    run = Cli(db(tmp_path, "ledger"))
    result = run("import", str(write(tmp_path / "bad.jsonl", lines)))
    assert result.exit_code == 1, result.stderr
    assert error_name(result) == "NotFound"
    assert line_of(result) == k + 1
    assert result.stdout == ""


def test_a_stopped_import_keeps_every_line_before_the_rejected_one_and_none_after(tmp_path: Path) -> None:
    lines, k, ref = bad_history()
    run = Cli(db(tmp_path, "ledger"))
    assert run("import", str(write(tmp_path / "bad.jsonl", lines))).exit_code == 1

    prefix = import_directly(db(tmp_path, "prefix"), HISTORY[:k])
    assert export(run.db) == prefix
    assert owners(run, ref) == owners(Cli(db(tmp_path, "prefix")), ref)


def test_rerunning_a_stopped_import_skips_the_recorded_lines_and_stops_at_the_same_line(tmp_path: Path) -> None:
    lines, k, _ = bad_history()
    path = write(tmp_path / "bad.jsonl", lines)
    run = Cli(db(tmp_path, "ledger"))
    first = run("import", str(path))
    kept = export(run.db)

    again = run("import", str(path))
    assert again.exit_code == first.exit_code == 1
    assert line_of(again) == k + 1
    assert f"{k} already recorded" in again.stderr
    assert export(run.db) == kept


def test_rerunning_a_stopped_import_after_fixing_its_bad_line_completes_it(tmp_path: Path) -> None:
    lines, k, _ = bad_history()
    path = write(tmp_path / "history.jsonl", lines)
    run = Cli(db(tmp_path, "ledger"))
    assert run("import", str(path)).exit_code == 1

    write(path, HISTORY)  # the original line back in place
    fixed = run("import", str(path), "--json")
    assert fixed.exit_code == 0, fixed.stderr
    assert orjson.loads(fixed.stdout) == {"applied": len(HISTORY) - k, "skipped": k}
    assert export(run.db) == import_directly(db(tmp_path, "clean"), HISTORY)


def test_a_malformed_json_line_is_invalid_input_naming_its_line(run: Cli) -> None:
    result = run("import", "-", input=stdin(register("imp-1", at(1)), '{"command": "asset.assign", "args": {', "x"))
    assert result.exit_code == 2, result.stderr
    assert error_name(result) == "InvalidInput"
    assert line_of(result) == 2
    assert owners(run, PATENT_2) == [{"member": "sjtu", "share": "1"}]


def test_an_unknown_command_is_invalid_input_naming_its_line(run: Cli) -> None:
    before = run.export()
    result = run("import", "-", input=stdin(line("asset.steal", "imp-1", at(1), ref=PATENT, to=["huawei"])))
    assert result.exit_code == 2, result.stderr
    assert error_name(result) == "InvalidInput"
    assert line_of(result) == 1
    assert run.export() == before


def test_a_line_recorded_before_the_previous_line_is_clock_went_backwards(run: Cli) -> None:
    result = run(
        "import",
        "-",
        input=stdin(
            register("imp-1", at(30)),
            line("asset.assign", "imp-2", at(10), ref=PATENT_2, to=["huawei"]),
            line("asset.assign", "imp-3", at(40), ref=PATENT_2, to=["zte"]),
        ),
    )
    assert result.exit_code == 1, result.stderr
    assert error_name(result) == "ClockWentBackwards"
    assert line_of(result) == 2
    assert owners(run, PATENT_2) == [{"member": "sjtu", "share": "1"}]


def test_a_line_recorded_before_the_last_event_in_the_store_is_clock_went_backwards(run: Cli) -> None:
    before = run.export()
    result = run("import", "-", input=stdin(register("imp-1", "2026-03-01T09:00:00Z")))
    assert result.exit_code == 1, result.stderr
    assert error_name(result) == "ClockWentBackwards"
    assert line_of(result) == 1
    assert run.export() == before


def test_an_import_line_without_a_time_is_recorded_at_the_pinned_clock(run: Cli) -> None:
    pinned = "2026-03-05T10:00:00Z"
    untimed = orjson.dumps(
        {"command": "asset.assign", "args": {"ref": PATENT, "to": ["huawei"]}, "command_id": "imp-1"}
    )
    result = run("import", "-", input=stdin(untimed), now=pinned)
    assert result.exit_code == 0, result.stderr
    title = orjson.loads(run.ok("title", PATENT, "--json").stdout)
    assert title["conveyances"][-1]["recorded"] == pinned


# --------------------------------------------------------------------------- repeated command ids


@pytest.mark.parametrize("gap", [1, 40, BATCH_CROSSING], ids=["adjacent", "same-batch", "next-batch"])
def test_a_command_id_repeated_in_one_file_is_skipped_like_an_already_recorded_one(tmp_path: Path, gap: int) -> None:
    """cli.md: lines whose command id is already recorded are skipped, and a repeated command id
    writes nothing new. The repeat comes after its first line was applied, so it is skipped —
    wherever the importer's transaction boundaries fall."""
    first = 10
    lines = [*HISTORY[: first + gap], HISTORY[first], *HISTORY[first + gap :]]
    run = Cli(db(tmp_path, "ledger"))
    result = run("import", str(write(tmp_path / "repeated.jsonl", lines)), "--json")
    assert result.exit_code == 0, result.stderr
    assert orjson.loads(result.stdout) == {"applied": len(HISTORY), "skipped": 1}
    assert export(run.db) == import_directly(db(tmp_path, "clean"), HISTORY)


# --------------------------------------------------------------------------- killed mid-import


def subprocess_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("IPLEDGER_")}


def events_in(path: Path) -> int:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("select count(*) from ipledger_events").fetchone()[0])
    except sqlite3.OperationalError:
        return 0  # not created yet


@pytest.fixture
def ipledger() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Starts `ipledger --db URL ARGS...` as a real process; any still running at the end is killed."""
    started: list[subprocess.Popen[str]] = []

    def start(url: str, *args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [IPLEDGER, "--db", url, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=subprocess_env(),
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def finished(proc: subprocess.Popen[str], timeout: float) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


@pytest.mark.slow
def test_an_import_killed_at_a_random_moment_resumes_to_the_same_log_as_an_uninterrupted_one(
    tmp_path: Path, ipledger: Callable[..., subprocess.Popen[str]]
) -> None:
    # Several of the importer's transactions (importer.BATCH lines each) after the kill point.
    path = write(tmp_path / "history.jsonl", list(generate(40_000, 11)))
    total_lines = len(path.read_bytes().splitlines())
    killed_db, reference_db = tmp_path / "killed.db", tmp_path / "reference.db"
    killed_url, reference_url = f"sqlite:///{killed_db}", f"sqlite:///{reference_db}"

    reference = ipledger(reference_url, "import", str(path))
    victim = ipledger(killed_url, "import", str(path))
    # Kill at a random point of the import, whatever the machine's speed: once a random share of
    # the first ~15k of the ~40k events is on disk, plus a random fraction of a transaction's time.
    target, extra = random.randint(1, 15_000), random.uniform(0.0, 0.1)
    deadline = time.monotonic() + 60
    while events_in(killed_db) < target:
        assert victim.poll() is None, f"the import ended before {target} events: {victim.communicate()}"
        assert time.monotonic() < deadline, f"the import wrote fewer than {target} events in 60 s"
        time.sleep(0.02)
    time.sleep(extra)
    assert victim.poll() is None, f"the import finished before the kill (target {target}, extra {extra:.3f} s)"
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL
    when = f"killed at {target} events + {extra:.3f} s"

    kept = export(killed_url)
    code, out, err = finished(ipledger(killed_url, "import", "--json", str(path)), timeout=120)
    assert code == 0, err
    counts = orjson.loads(out)
    assert counts["skipped"] > 0 and counts["applied"] > 0, f"{when}: the re-run reported {counts}"
    assert counts["applied"] + counts["skipped"] == total_lines

    verify = ipledger(killed_url, "audit", "verify")
    code, _, err = finished(reference, timeout=120)
    assert code == 0, err
    resumed_log, reference_log = export(killed_url), export(reference_url)
    assert reference_log.startswith(kept + b"\n"), f"{when}: the log left is not a prefix of the uninterrupted one"
    assert resumed_log == reference_log, f"{when}: the resumed log differs from the uninterrupted one"
    code, out, err = finished(verify, timeout=120)
    assert code == 0, (out, err)


def test_import_and_the_same_commands_one_at_a_time_write_byte_identical_logs(tmp_path: Path) -> None:
    """One decide path: the bench workload imported in batches and executed command by
    command gives the same log, envelopes (request and outcome digests) included."""
    lines = list(generate(2000, seed=7))
    batched, single = Ledger(f"sqlite:///{tmp_path}/batched.db"), Ledger(f"sqlite:///{tmp_path}/single.db")
    try:
        batched.import_lines(iter(lines))
        for raw in lines:
            line = orjson.loads(raw)
            single.execute(
                line["command"], line["args"], actor=line.get("actor", "operator"),
                command_id=line["command_id"], now=line.get("at"),
            )  # fmt: skip
        exported = b"\n".join(batched.export())
        assert exported.count(b"\n") + 1 >= 2000
        assert exported == b"\n".join(single.export())
    finally:
        batched.close()
        single.close()


def _argv(command: str, args: dict[str, Any]) -> list[str]:
    """The `ipledger` command line a person types for an import line: positional
    arguments and options found from the CLI itself (an option `--id` is `id_` in click)."""
    import click

    from ipledger.cli import cli

    group, verb = command.split(".")
    group_command = cli.commands[group]
    assert isinstance(group_command, click.Group)
    click_command = group_command.commands[verb]
    argv, used = [group, verb], set()
    for param in click_command.params:
        key = (param.name or "").rstrip("_")
        if key not in args:
            continue
        used.add(key)
        values = args[key] if isinstance(args[key], list) else [args[key]]
        if isinstance(param, click.Argument):
            argv += [str(v) for v in values]
        elif isinstance(param, click.Option) and param.is_flag:
            argv += [param.opts[0]] if args[key] else []
        else:
            for value in values:
                argv += [param.opts[0], str(value)]
    assert used == set(args), f"{command}: no CLI option for {set(args) - used}"
    return argv


def test_import_and_the_same_lines_run_one_cli_command_at_a_time_export_byte_identical_logs(tmp_path: Path) -> None:
    """Issue 12: one decide path. The bench workload's first 250 lines (every kind of command
    it makes early: members, assets, all four mechanisms, bids, closes, settlements, voids,
    licences, pledges and their consents) typed one `ipledger` command at a time, each with
    its own pinned time, actor and command id, export exactly what `ipledger import` does."""
    lines = HISTORY[:250]
    imported = Cli(db(tmp_path, "imported"))
    imported.ok("import", str(write(tmp_path / "history.jsonl", lines)), "--json")
    typed = Cli(db(tmp_path, "typed"))
    for raw in lines:
        line = orjson.loads(raw)
        typed.ok(
            "--command-id", line["command_id"], *_argv(line["command"], line["args"]),
            actor=line["actor"], now=line["at"],
        )  # fmt: skip

    exported = imported.export()
    assert exported.count("\n") >= 250
    assert typed.export() == exported
