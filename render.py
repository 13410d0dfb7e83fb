"""How lists print for people: an aligned table (rich), CSV (the stdlib's csv) or JSON.

Every list has one column spec here, so its text and CSV agree on order and headers (the
headers are the JSON keys). Text is laid out by rich, never by hand: on a terminal it
fits the window; otherwise (a pipe, a file, a test) every column is as wide as its
widest cell, nothing wraps or is cut, and no colour codes are written.
"""

from __future__ import annotations

import csv
import io
import sys
from dataclasses import dataclass
from typing import Any, Iterable, Sequence


@dataclass(frozen=True)
class Column:
    """One column: the item's key (also the header), alignment, and whether the text
    table shows it (CSV has every column, for spreadsheets; text the ones people scan)."""

    key: str
    right: bool = False
    text: bool = True


def C(*keys: str, right: Iterable[str] = (), csv_only: Iterable[str] = ()) -> tuple[Column, ...]:
    """Columns in this order; `right`: numbers; `csv_only`: left out of the text table."""
    right, csv_only = set(right), set(csv_only)
    return tuple(Column(k, k in right, k not in csv_only) for k in keys)


MEMBERS = C("member", "name", "kind", "country", "status")
TOKENS = C("id", "actor", "name", "status", "issued", "expires", "revoked")
ASSETS = C("asset", "title", "owners", "registered_on", "expires_on")
TRADES = C(
    "trade", "listing", "asset", "type", "sellers", "buyer", "price", "currency", "status", "deadline",
    "bid", "struck", "payment_ref", "effective", "reason", "resolved",
    right=("price",), csv_only=("bid", "struck", "payment_ref", "effective", "reason", "resolved"),
)  # fmt: skip
PLEDGES = C(
    "id", "asset", "pledgee", "rank", "amount", "currency", "start", "end",
    right=("rank", "amount"),
)  # fmt: skip
LICENCES = C(
    "id", "asset", "licensee", "licensors", "type", "territories", "fields", "start", "end", "parent",
    "sublicensable", "royalty_rate", "lump_sum", "currency",
    csv_only=("sublicensable", "royalty_rate", "lump_sum", "currency"),
)  # fmt: skip
BOOK = C("id", "bidder", "amount", "placed", "state", right=("amount",))
LISTINGS = C(
    "listing", "status", "mechanism", "type", "asset", "sellers", "currency", "ask", "reserve", "closes",
    "trade", "winner", "price", "unsold_reason", "opens", "increment", "deadline",
    right=("ask", "reserve", "price"), csv_only=("opens", "increment", "deadline"),
)  # fmt: skip
TRAIL = C("position", "recorded", "actor", "what", right=("position",))
BIDS = C("id", "listing", "amount", "currency", "placed", right=("amount",))
HOLDINGS = C("asset", "share")


def without(columns: tuple[Column, ...], *keys: str) -> tuple[Column, ...]:
    """The columns but `keys` (a show leaves out what its title says, e.g. the asset)."""
    return tuple(c for c in columns if c.key not in keys)


def cell(value: Any, sep: str) -> str:
    """One value as text: lists joined by `sep`, owners as MEMBER=SHARE (as `--owner`
    takes them), nothing for null."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict) and set(value) == {"member", "share"}:
        return f"{value['member']}={value['share']}"
    if isinstance(value, (list, tuple)):
        return sep.join(cell(v, sep) for v in value)
    return str(value)


#: A cell a spreadsheet would run as a formula (OWASP "CSV injection"): quoted with `'`.
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def csv_text(items: Sequence[dict[str, Any]], columns: Sequence[Column]) -> str:
    """A header row of keys, then one row per item; lists joined with `;`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([c.key for c in columns])
    for item in items:
        row = [cell(item.get(c.key), ";") for c in columns]
        writer.writerow([f"'{v}" if v.startswith(_FORMULA) else v for v in row])
    return out.getvalue()


#: The console width off a terminal: wide enough that no column is ever wrapped or cut
#: (each is as wide as its widest cell; trailing spaces are stripped).
_UNBOUNDED = 100_000


def table_text(
    items: Sequence[dict[str, Any]], columns: Sequence[Column], *, terminal: bool = False, header: bool = True
) -> str:
    """An aligned table with a header row, as rich lays it out (see the module's note)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    shown = [c for c in columns if c.text]
    rows = [[cell(item.get(c.key), ", ") for c in shown] for item in items]
    table = Table(box=None, show_header=header, show_edge=False, pad_edge=False)
    table.header_style = "bold" if terminal else ""
    for c in shown:
        table.add_column(c.key, justify="right" if c.right else "left", no_wrap=not terminal)
    for row in rows:
        table.add_row(*(Text(v) for v in row))  # Text: a title like "[bold]" is not markup
    out = io.StringIO()
    console = Console(
        file=out,
        width=None if terminal else _UNBOUNDED,
        force_terminal=terminal,
        no_color=not terminal,
        color_system="standard" if terminal else None,
        highlight=False,
        emoji=False,
        markup=False,
        safe_box=True,
    )
    console.print(table)
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines() if line.strip())


def fields_text(pairs: Sequence[tuple[str, Any]], *, terminal: bool = False) -> str:
    """`key  value` lines, aligned (the head of a `show`)."""
    items = [{"key": k, "value": cell(v, ", ")} for k, v in pairs]
    return table_text(items, C("key", "value"), terminal=terminal, header=False)


# --------------------------------------------------------------------------- progress


class Progress:
    """One progress bar for every long command (import, rebuild, verify, export, restore).

    Shown on stderr only when it is a terminal (and not for `--json`): scripts and pipes
    see nothing. Work is counted in `unit`s against a `total` (bytes of an import file,
    events of the log); the rate shown is of `items` (lines or events) per second, and
    rich estimates the time left from the recent speed, not from the slow first second.
    `clock` is for tests (rich's `get_time`).
    """

    def __init__(
        self,
        label: str,
        total: int | None,
        *,
        items: str = "events",
        shown: bool,
        file: Any = None,
        clock: Any = None,
    ) -> None:
        self.label, self.total, self.items, self.shown = label, total, items, shown
        self.file, self.clock = file, clock
        self._bar: Any = None
        self._task: Any = None
        self._count = 0

    def __enter__(self) -> Progress:
        if self.shown:
            from rich.console import Console
            from rich.progress import BarColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
            from rich.progress import Progress as Bar

            console = Console(file=self.file or sys.stderr, force_terminal=self.file is not None or None)
            self._bar = Bar(
                TextColumn("{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[count]:,} {task.fields[items]}"),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("left"),
                console=console,
                transient=False,
                **({"get_time": self.clock} if self.clock is not None else {}),
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(self.label, total=self.total, count=0, items=self.items, rate="")
        return self

    def advance(self, units: int, items: int | None = None) -> None:
        """`units` more done (bytes or events), of which `items` lines or events (default: `units`)."""
        if self._bar is None:
            return
        self._count += units if items is None else items
        task = self._bar.tasks[self._task]
        elapsed = task.elapsed or 0.0
        rate = f"{self._count / elapsed:,.0f} {self.items}/s" if elapsed > 0 else ""
        self._bar.update(self._task, advance=units, count=self._count, rate=rate)

    def to(self, done: int) -> None:
        """Set the absolute amount done (a position in the log)."""
        if self._bar is not None:
            task = self._bar.tasks[self._task]
            self.advance(max(done - int(task.completed), 0))

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
