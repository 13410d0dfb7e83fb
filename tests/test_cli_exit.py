"""How `ipledger` ends: without the interpreter's teardown, once nothing needs it (issue 13).

Freeing every loaded module's objects at exit cost a write 0.13-0.2 s after its command
had ended, so the console script (`cli.run`) leaves through `cli.leave`: atexit handlers
run, both streams flushed, then `os._exit`. These tests run the real console script's
function in fresh processes. A witness object kept in a module global tells whether the
teardown ran: the teardown frees it, and its `__del__` writes to the error stream.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import PATENT, Market

#: `ipledger ARGS…` through `cli.run`, with a witness of the teardown; `THREAD` in the
#: environment keeps a second, non-daemon thread running at the end; `STUCK` makes the
#: standard output unflushable (as a pipe its reader closed).
CHILD = """
import os, sys, threading

class Witness:
    def __del__(self):
        os.write(2, b"torn down\\n")

witness = Witness()
if os.environ.get("THREAD"):
    threading.Thread(target=threading.main_thread().join).start()  # ends as the interpreter does
if os.environ.get("STUCK"):
    class Stuck:
        def write(self, text):
            return len(text)
        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")
    sys.stdout = Stuck()
from ipledger.cli import run
sys.argv = ["ipledger", *sys.argv[1:]]
run()
"""


def _environ(db: str) -> dict[str, str]:
    """This test's environment for a child on the store `db`, its streams buffered as an
    installed program's are (PYTHONUNBUFFERED would hide a lost flush)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("IPLEDGER_") and k != "PYTHONUNBUFFERED"}
    return environ | {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p), "IPLEDGER_DB": db}


def _run(db: str, *args: str, **env: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, env=_environ(db) | env)


def test_a_command_ends_without_the_interpreters_teardown(sqlite_market: Market) -> None:
    done = _run(sqlite_market.ledger.url, "owner", PATENT)
    assert (done.returncode, done.stderr) == (0, b"")
    assert b"fudan-univ" in done.stdout


def test_another_thread_still_running_gets_the_usual_exit(sqlite_market: Market) -> None:
    done = _run(sqlite_market.ledger.url, "owner", PATENT, THREAD="1")
    assert (done.returncode, done.stderr) == (0, b"torn down\n")
    assert b"fudan-univ" in done.stdout


def test_an_output_that_cannot_be_flushed_gets_the_usual_exit(sqlite_market: Market) -> None:
    """(A command whose own output fails is click's: it exits at once, as it always did.)"""
    done = _run(sqlite_market.ledger.url, "owner", "X", STUCK="1")
    assert done.returncode != 0
    assert done.stderr.decode().startswith("error: InvalidInput: ref: 'X' is not an asset ref")
    assert b"torn down\n" in done.stderr


def test_a_refused_command_keeps_its_exit_code_and_message(sqlite_market: Market) -> None:
    done = _run(sqlite_market.ledger.url, "member", "add", "bad id", "--name", "X", "--kind", "enterprise",
                "--country", "CN")  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.decode().startswith("error: InvalidInput: id: 'bad id' is not a member id")


def test_a_write_is_recorded_and_printed_whole(sqlite_market: Market) -> None:
    done = _run(sqlite_market.ledger.url, "--json", "member", "add", "quick-exit", "--name", "Quick Exit Ltd",
                "--kind", "enterprise", "--country", "CN")  # fmt: skip
    assert (done.returncode, done.stderr) == (0, b"")
    assert b'"id": "quick-exit"' in done.stdout and done.stdout.endswith(b"\n")
    assert "quick-exit" in str(sqlite_market.ledger.members())


def test_an_export_is_written_whole(sqlite_market: Market) -> None:
    done = _run(sqlite_market.ledger.url, "export")
    assert (done.returncode, done.stderr) == (0, b"")
    assert done.stdout == b"".join(line + b"\n" for line in sqlite_market.ledger.export())


def test_a_profiler_gets_the_usual_exit_and_writes_its_profile(sqlite_market: Market, tmp_path: Path) -> None:
    """`python -m cProfile -o FILE` writes FILE after the script: the quick exit would skip it."""
    profile, script = tmp_path / "owner.prof", tmp_path / "ipledger_owner.py"
    script.write_text(CHILD)
    done = subprocess.run(
        [sys.executable, "-m", "cProfile", "-o", str(profile), str(script), "owner", PATENT],
        capture_output=True,
        env=_environ(sqlite_market.ledger.url),
    )
    assert (done.returncode, done.stderr) == (0, b"torn down\n")
    assert b"fudan-univ" in done.stdout
    assert profile.stat().st_size > 0


def _with_closed(fd: int, db: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    """`ipledger ARGS…` started by a shell with descriptor `fd` closed (`>&-`, `2>&-`):
    Python then has no such stream (None)."""
    shell = f'exec "$@" {fd}>&-'
    return subprocess.run(
        ["sh", "-c", shell, "sh", sys.executable, "-c", CHILD, *args], capture_output=True, env=_environ(db)
    )


def test_a_write_with_its_output_closed_keeps_its_exit_code(sqlite_market: Market) -> None:
    """`ipledger member add … >&-`: recorded, and exit 0, as it always was."""
    args = ("member", "add", "closed-out", "--name", "Closed Out Ltd", "--kind", "enterprise", "--country", "CN")
    done = _with_closed(1, sqlite_market.ledger.url, *args)
    assert (done.returncode, done.stderr) == (0, b"")
    assert "closed-out" in str(sqlite_market.ledger.members())


def test_a_refusal_with_its_error_stream_closed_keeps_its_exit_code(sqlite_market: Market) -> None:
    """`ipledger owner X 2>&-`: exit 2, as it always was."""
    assert _with_closed(2, sqlite_market.ledger.url, "owner", "X").returncode == 2
