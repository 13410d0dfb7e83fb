"""How a failure is told: its contract name (cli.md's error names), one line, and the exit
code. One mapping for the CLI, the HTTP API (which maps the name to a status) and the web
view, so a refusal reads the same wherever it is met."""

from __future__ import annotations

import sys


def describe_failure(e: Exception) -> tuple[str, str, int]:
    """(error name, message, exit code) of a failure: a rule's named error as it is; bad
    usage as InvalidInput; a store that cannot be used as StoreUnavailable; anything else
    as InternalError."""
    from ipledger.domain.errors import LedgerError

    if isinstance(e, LedgerError):
        return e.name, e.message, e.exit_code
    click = sys.modules.get("click")  # only the CLI raises click's errors (and has click loaded)
    if click is not None and isinstance(e, click.ClickException):
        return "InvalidInput", e.format_message().replace("\n", " "), 2
    from eventsourcing.persistence import PersistenceError
    from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

    if isinstance(e, ArgumentError):
        return "InvalidInput", f"db: not a usable SQLAlchemy URL ({e})", 2
    if isinstance(e, (PersistenceError, DBAPIError, OperationalError)):
        cause = e.orig if isinstance(e, DBAPIError) and e.orig is not None else e
        first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        return "StoreUnavailable", f"db: the store could not be used ({first}); nothing was recorded", 5
    return "InternalError", summary(e), 1


def detail(e: BaseException) -> str:
    """A failure inside another's message ("the log does not replay (DETAIL)"): a rule's
    own message, else `summary`."""
    from ipledger.domain.errors import LedgerError

    return e.message if isinstance(e, LedgerError) else summary(e)


def summary(e: BaseException) -> str:
    """An unforeseen failure in one line: its type and the first line of what it says."""
    return f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]}"


def one_line(message: str) -> str:
    """Never echo a raw line break or control character back: an error is one line."""
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in message)
