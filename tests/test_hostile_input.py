"""Hostile input at the command line and in import files, and who may issue each writing command.

cli.md: a rejected command exits 1 (a rule or a missing thing) or 2 (bad input), prints one line
`error: <ErrorName>: <message>` on stderr (`{"error", "message"}` with `--json`), never a traceback,
and leaves the store exactly as it was. domain.md: the operator may record anything, a member acts
only for itself, an auditor only reads.

Every fuzzed value is classified *by construction* from the contract before it is sent: valid
values must be recorded (exit 0, stored as given), everything else rejected cleanly. Each option
has a curated list of hostile values (all tried by the sweep tests) and a generator (sampled by the
Hypothesis tests). Classes of input that currently break the contract are kept out of the
generators and pinned by the dedicated tests at the end of the file, so one bug fails one test:
undecodable argv bytes, UTC overflow, DEL/C1 control characters, control characters in fields of
use, ISO week dates, non-ASCII digits, raw line breaks echoed in errors, NUL-truncated times.
"""

from __future__ import annotations

import json
import re
import sqlite3
import unicodedata
from collections.abc import Callable, Iterable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ipledger.domain.isocodes import COUNTRIES, CURRENCIES
from ipledger.ledger.commands import Command
from tests.conftest import MEMBERS, PATENT, T0, Cli

COMMANDS = Command.names()

# --------------------------------------------------------------------------- the contract's error names

CONTRACT_ERRORS = frozenset(
    {
        "InvalidInput",
        "NotFound",
        "DuplicateId",
        "NotAuthorised",
        "MemberSuspended",
        "NotOwner",
        "AssetPledged",
        "AssetReserved",
        "AssetExpired",
        "ListingNotOpen",
        "ListingStillOpen",
        "SelfDealing",
        "BidTooLow",
        "BidNotWithdrawable",
        "TradeResolved",
        "LicenceConflict",
        "LicenceOutOfScope",
        "ConsentMissing",
        "ClockWentBackwards",
        "ConcurrentWrite",
        "IntegrityError",
        "IdempotencyConflict",
        "ClockAhead",
        "StoreUnavailable",
    }
)
ERROR_LINE = re.compile(r"error: ([A-Za-z]+): (\S.*)")


def fuzz(examples: int) -> Callable[[Any], Any]:
    """Every draw is labelled, so a failing example reads well unshrunk; shrinking would blow the time budget."""
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
    )


# --------------------------------------------------------------------------- the world every test starts from

T0_AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TODAY = T0_AT.date()
REGISTERED = date(2019, 5, 10)  # PATENT's registration (conftest), and A_US's
CLOSES = "2026-04-01T00:00:00Z"
CLOSES_AT = datetime(2026, 4, 1, tzinfo=UTC)
SHORT_CLOSES = "2026-03-02T10:00:00Z"
AFTER_SHORT = "2026-03-03T00:00:00Z"

A_SEALED = "CN/patent/ZL202110000001.1"  # sjtu: sealed listing L-SEALED with zte's bid B-ZTE
A_NEG = "CN/patent/ZL202110000002.2"  # cas-sippr: negotiated listing L-NEG with zte's bid B-NEG
A_FIX = "CN/patent/ZL202110000003.3"  # byd: fixed listing L-FIX bought by zte: pending trade T-1
A_SHORT = "CN/patent/ZL202110000004.4"  # sjtu: listing L-SHORT closing an hour after T0
A_PLEDGED = "CN/patent/ZL202110000005.5"  # zte: pledged to icbc-sh (P-1)
A_CO = "CN/patent/ZL202110000006.6"  # fudan-univ 1/2 + sjtu 1/2
A_JPY = "CN/patent/ZL202110000007.7"  # sjtu: sealed JPY listing L-JPY
A_US = "US/patent/7654321"  # fudan-univ: the pledge fuzz's asset (US law: several pledges at once, end optional)

WORLD_SETUP: list[tuple[str, ...]] = [
    ("member", "add", "tju", "--name", "Tianjin University", "--kind", "university", "--country", "CN"),
    ("member", "suspend", "tju", "--reason", "dues unpaid"),
    ("asset", "register", A_SEALED, "--title", "Sealed", "--owner", "sjtu", "--effective", "2021-01-04"),
    ("asset", "register", A_NEG, "--title", "Negotiated", "--owner", "cas-sippr", "--effective", "2021-01-04"),
    ("asset", "register", A_FIX, "--title", "Fixed", "--owner", "byd", "--effective", "2021-01-04"),
    ("asset", "register", A_SHORT, "--title", "Short", "--owner", "sjtu", "--effective", "2021-01-04"),
    ("asset", "register", A_PLEDGED, "--title", "Pledged", "--owner", "zte", "--effective", "2021-01-04"),
    ("asset", "register", A_CO, "--title", "Co-owned", "--owner", "fudan-univ=1/2", "--owner", "sjtu=1/2"),
    ("asset", "register", A_JPY, "--title", "Yen", "--owner", "sjtu", "--effective", "2021-01-04"),
    ("asset", "register", A_US, "--title", "US", "--owner", "fudan-univ", "--effective", "2019-05-10"),
    ("listing", "open", A_SEALED, "--type", "assignment", "--mechanism", "sealed", "--currency", "CNY",
     "--closes", CLOSES, "--id", "L-SEALED"),
    ("bid", "place", "L-SEALED", "--bidder", "zte", "--amount", "100.00", "--id", "B-ZTE"),
    ("listing", "open", A_NEG, "--type", "assignment", "--mechanism", "negotiated", "--currency", "CNY",
     "--closes", CLOSES, "--id", "L-NEG"),
    ("bid", "place", "L-NEG", "--bidder", "zte", "--amount", "100.00", "--id", "B-NEG"),
    ("listing", "open", A_FIX, "--type", "assignment", "--mechanism", "fixed", "--ask", "100.00",
     "--currency", "CNY", "--closes", CLOSES, "--id", "L-FIX"),
    ("bid", "place", "L-FIX", "--bidder", "zte", "--amount", "100.00", "--id", "B-FIX", "--trade-id", "T-1"),
    ("listing", "open", A_SHORT, "--type", "assignment", "--mechanism", "sealed", "--currency", "CNY",
     "--closes", SHORT_CLOSES, "--id", "L-SHORT"),
    ("listing", "open", A_JPY, "--type", "assignment", "--mechanism", "sealed", "--currency", "JPY",
     "--closes", CLOSES, "--id", "L-JPY"),
    ("pledge", "register", A_PLEDGED, "--pledgee", "icbc-sh", "--amount", "5000000.00", "--currency", "CNY",
     "--end", "2030-12-31", "--id", "P-1"),
    ("licence", "grant", PATENT, "--licensee", "sjtu", "--type", "non_exclusive", "--territory", "CN",
     "--field", "ALL", "--start", "2026-03-02", "--end", "2030-01-01", "--id", "LIC-1"),
    ("token", "issue", "zte", "--id", "TK-1"),
]  # fmt: skip

EXISTING_MEMBERS = frozenset({mid for mid, _, _ in MEMBERS} | {"tju"})
WORLD_IDS: dict[str, set[str]] = {
    "member": set(EXISTING_MEMBERS),
    "asset": {PATENT, A_SEALED, A_NEG, A_FIX, A_SHORT, A_PLEDGED, A_CO, A_JPY, A_US},
    "listing": {"L-SEALED", "L-NEG", "L-FIX", "L-SHORT", "L-JPY"},
    "bid": {"B-ZTE", "B-NEG", "B-FIX"},
    "trade": {"T-1"},
    "licence": {"LIC-1"},
    "pledge": {"P-1"},
    "token": {"TK-1"},
}
ALL_WORLD_IDS = frozenset().union(*WORLD_IDS.values())


@pytest.fixture(scope="module")
def world_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once by the operator through the CLI; every test gets a copy."""
    path = tmp_path_factory.mktemp("world") / "ledger.db"
    cli = Cli(f"sqlite:///{path}")
    for mid, name, kind in MEMBERS:
        cli.ok("member", "add", mid, "--name", name, "--kind", kind, "--country", "CN")
    cli.ok("asset", "register", PATENT, "--title", "Electrode coating", "--owner", "fudan-univ",
           "--effective", "2019-05-10")  # fmt: skip
    for argv in WORLD_SETUP:
        cli.ok(*argv)
    return path


@pytest.fixture
def world(world_template: Path, tmp_path: Path) -> Cli:
    path = tmp_path / "ledger.db"
    with closing(sqlite3.connect(world_template)) as src, closing(sqlite3.connect(path)) as dst:
        src.backup(dst)
    return Cli(f"sqlite:///{path}")


@dataclass
class Ctx:
    """The store under test plus what the test knows it holds (ids taken, a trade resolved)."""

    cli: Cli
    serial: int = 0
    taken: set[tuple[str, str]] = field(default_factory=set)
    resolved: bool = False

    def fresh(self, kind: str, prefix: str) -> str:
        while True:
            self.serial += 1
            candidate = f"{prefix}{self.serial}"
            if not self.is_taken(kind, candidate):
                return candidate

    def fresh_cn_patent(self) -> str:
        """A CN patent ref no case has used, spelt canonically (ZL + 12 digits + '.' + check character)."""
        while True:
            self.serial += 1
            candidate = f"CN/patent/ZL{cn_number(self.serial)}.1"
            if not self.is_taken("asset", candidate):
                return candidate

    def is_taken(self, kind: str, key: str) -> bool:
        return key in WORLD_IDS[kind] or (kind, key) in self.taken

    def take(self, kind: str, key: str) -> Callable[[], None]:
        return lambda: self.taken.add((kind, key))


@pytest.fixture
def ctx(world: Cli) -> Ctx:
    return Ctx(world)


# --------------------------------------------------------------------------- expectations and the one checker


@dataclass(frozen=True)
class Expect:
    code: int
    error: str | None = None
    writes: bool = True


Outcome = Expect | tuple[Expect, ...]
ACCEPTED = Expect(0)
READ = Expect(0, writes=False)
INVALID = Expect(2, "InvalidInput")
NOT_FOUND = Expect(1, "NotFound")


def refused(name: str) -> Expect:
    return Expect(1, name)


def error_name(stderr: str, as_json: bool = False) -> str:
    """The one error line's name; fails unless stderr is exactly that one line."""
    if as_json:
        assert stderr.endswith("\n") and stderr.count("\n") == 1 and "\r" not in stderr, f"{stderr!r:.600}"
        doc = json.loads(stderr)
        assert set(doc) == {"error", "message"}, doc
        assert isinstance(doc["message"], str) and doc["message"].strip(), doc
        name = doc["error"]
    else:
        lines = stderr.splitlines()
        assert len(lines) == 1 and stderr.endswith("\n"), f"not exactly one line on stderr: {stderr!r:.600}"
        match = ERROR_LINE.fullmatch(lines[0])
        assert match, f"not `error: Name: message`: {lines[0]!r:.600}"
        name = match.group(1)
    assert name in CONTRACT_ERRORS, f"{name} is not an error name of cli.md: {stderr!r:.600}"
    return str(name)


def attempt(
    cli: Cli,
    argv: Iterable[str],
    expect: Outcome,
    *,
    as_json: bool = False,
    now: str | None = None,
    actor: str | None = None,
    input: str | bytes | None = None,
) -> Result:
    """Run one command; accepted only if the construction says so, else a clean rejection."""
    argv = list(argv)
    allowed = expect if isinstance(expect, tuple) else (expect,)
    before = cli.export()
    result = cli(*(["--json"] if as_json else []), *argv, now=now, actor=actor, input=input)
    shown = f"{argv!r:.300} (actor={actor}, now={now!r:.60})"
    assert "Traceback" not in result.output, f"{shown}: {result.output[-3000:]}"
    if result.exit_code == 0:
        accepted = [e for e in allowed if e.code == 0]
        assert accepted, f"{shown} was accepted (exit 0); expected {allowed}: {result.stdout[:300]!r}"
        assert result.stderr == "", f"{shown}: {result.stderr!r:.300}"
        changed = cli.export() != before
        assert changed == accepted[0].writes, f"{shown}: the event log {'changed' if changed else 'did not change'}"
        return result
    assert result.exit_code in (1, 2, 5), f"{shown}: exit {result.exit_code}: {result.stderr!r:.600}"
    assert result.stdout == "", f"{shown}: a rejection printed on stdout: {result.stdout!r:.300}"
    assert cli.export() == before, f"rejected {shown} changed the event log"
    name = error_name(result.stderr, as_json)
    assert (result.exit_code, name) in {(e.code, e.error) for e in allowed}, (
        f"{shown}: exit {result.exit_code} {result.stderr!r:.600}; expected {allowed}"
    )
    return result


# --------------------------------------------------------------------------- classifying values by the contract

SQL = "'; DROP TABLE ipledger_events; --"
HUGE = "Z" * 10_000
RTL = "\u200f\u202eevil\u202c"
BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")  # issue 11: refused in text
EMOJI = "\U0001f4a5\U0001f525\U0001f469\u200d\U0001f52c"
COMBINING = "e" + "\u0301\u0302\u0303" * 20
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
DEL_AND_C1 = [chr(c) for c in range(0x7F, 0xA0)]  # control characters accepted today: see the dedicated tests
TEXT_CHAR = st.characters(exclude_categories=("Cs",), exclude_characters=DEL_AND_C1)
ID_CHAR = st.characters(exclude_categories=("Cs", "Cf"), exclude_characters=DEL_AND_C1)
FIELD_CHAR = st.characters(exclude_categories=("Cs", "Cc"))
ECHO_CHAR = st.characters(exclude_categories=("Cs",), exclude_characters=DEL_AND_C1 + list(LINE_BREAKS))

MEMBER_ID = re.compile(r"[a-z0-9][a-z0-9-]{1,31}")  # domain.md
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # cli.md: Dates are YYYY-MM-DD
AMOUNT = re.compile(r"([0-9]{1,16})(?:\.([0-9]{1,8}))?")
MINOR_UNITS = {"CNY": 2, "USD": 2, "EUR": 2, "JPY": 0}
MAX_AMOUNT = Decimal("1e14")


def is_clean_text(value: str, limit: int) -> bool:
    """Surrounding space trimmed, 1..limit characters, no control characters (Cc), surrogates or line and
    paragraph separators (Zl, Zp): stored text prints as one line (docs/rules.md, Input limits)."""
    text = value.strip()
    return (
        0 < len(text) <= limit
        and not any(unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp") or ch in BIDI_CONTROLS for ch in text)
        and any(unicodedata.category(ch) not in ("Cf", "Zs", "Mn", "Me") for ch in text)  # something visible
    )


def is_clean_id(value: str) -> bool:
    return is_clean_text(value, 64) and not any(ch.isspace() for ch in value.strip())


def is_member_id(value: str) -> bool:
    return MEMBER_ID.fullmatch(value) is not None and value not in ("operator", "auditor")


def is_amount(value: str, currency: str) -> bool:
    """A positive decimal string with at most the currency's minor units, below 1e14; no floats."""
    match = AMOUNT.fullmatch(value.strip())
    if match is None:
        return False
    places = len(match.group(2) or "")
    return places <= MINOR_UNITS[currency] and 0 < Decimal(match.group(0)) < MAX_AMOUNT


def as_date(value: str) -> date | None:
    if not ISO_DATE.fullmatch(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def is_territory(value: str) -> bool:
    code = value.strip().upper()
    return code == "WORLD" or code in COUNTRIES


def is_field_of_use(value: str) -> bool:
    return is_clean_text(value, 100)


def text_values(limit: int) -> tuple[str, ...]:
    return (
        SQL, HUGE, RTL, EMOJI, COMBINING, "a\x00b", "\x00", "line\nbreak", "tab\there", "\x1b[2J\x1b[31mred",
        "", "   ", "\u3000", "  padded  ", "null", "<script>alert(1)</script>", "%s%n%x", "${jndi:ldap://x/a}",
        "\ufeffbom", "a\u2028b", "Robert'); --", "y" * limit, "y" * (limit + 1),
    )  # fmt: skip


def text_strategy(limit: int) -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(TEXT_CHAR, max_size=30),
        st.integers(limit - 2, limit + 2).map(lambda k: "w" * k),
    )


ID_VALUES: tuple[str, ...] = (
    SQL, HUGE, "x" * 64, "x" * 65, "\x00", "id\x00", EMOJI, COMBINING, "", " ", "a\tb", "L\u3000X", "a\nb",
    "../../etc/passwd", "L-1;--", "null", "%00", "-x", "0", "ZZ-\U0001f4a5",
)  # fmt: skip
ID_STRATEGY = st.one_of(
    st.text(ID_CHAR, min_size=1, max_size=20), st.from_regex(r"[A-Z]{1,3}-[0-9a-f]{1,8}", fullmatch=True)
)

ECHO_ID_VALUES = tuple(v for v in ID_VALUES if not any(ch in LINE_BREAKS for ch in v))  # `book` echoes its id

MEMBER_VALUES: tuple[str, ...] = (
    "zte", "huawei", "byd", "sjtu", "fudan-univ", "icbc-sh", "boc-bj", "tju", "nobody", "a" * 32, "a" * 33, "ZTE",
    "zte ", " zte", "z", "-zte", "zte-", "z_te", "operator", "auditor", SQL, HUGE, "\x00", "zte\x00", RTL + "zte",
    "\uff5a\uff54\uff45", "zt\u00e9", "", "0000-01-01", "9" * 32, "zte\u200b",
)  # fmt: skip
MEMBER_STRATEGY = st.one_of(
    st.from_regex(r"[a-z0-9][a-z0-9-]{1,31}", fullmatch=True),
    st.text(TEXT_CHAR, max_size=40),
)

AMOUNT_VALUES: tuple[str, ...] = (
    "1", "0.01", "1250000.00", "99999999999999.99", " 100 ", "007", "100.0", "0", "0.00", "-1", "-0.01", "1e400",
    "99999999999999999999.99", "100000000000000", "1.5e3", "1e2", "NaN", "nan", "sNaN", "Infinity", "-Infinity",
    "inf", "1.001", "0.001", "1,000.00", "1_000", "0x10", "+5", ".5", "5.", " ", SQL, HUGE, "\x00", "1\x00", "12 34",
    "1.0000000000000000001", "",
)  # fmt: skip
AMOUNT_STRATEGY = st.one_of(
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1e15"), places=2).map(lambda d: format(d, "f")),
    st.integers(-(10**20), 10**20).map(str),
    st.text(alphabet="0123456789.-+eE, _", max_size=14),
)

CURRENCY_VALUES: tuple[str, ...] = (
    "CNY", "USD", "EUR", "JPY", "cny", "Cny", "RMB", "CN\u00a5", "\u00a5", "\uff23\uff2e\uff39", "CNY ", " CNY", "CN",
    "CNYY", "", SQL, HUGE, "\x00", "BTC",
)  # fmt: skip
CURRENCY_STRATEGY = st.text(alphabet="ABCDEFGHJNPRSUYZ ", max_size=4)

COUNTRY_VALUES: tuple[str, ...] = (
    "CN", "US", "GB", "cn", "XX", "ZZ", "UK", "EU", "CHN", "C", "", SQL, HUGE, "\x00", "\U0001f1e8\U0001f1f3", " CN",
    "CN ", "WORLD",
)  # fmt: skip
COUNTRY_STRATEGY = st.text(alphabet="ACDGNSUXZW", max_size=3)

DATE_VALUES: tuple[str, ...] = (
    "2026-02-30", "2026-13-01", "2026-00-10", "2026-1-1", "20260301", "2026/03/01", "01-03-2026",
    "2026-03-01T00:00:00Z", "2026-03-01 ", " 2026-03-01", "0000-01-01", "-2026-03-01", "+2026-03-01", "99999-12-31",
    "2026-02-29", "2019-02-29", SQL, HUGE, "\x00", "2026-03-01\x00", "NaN", "1e400", "today", "null",
    "\uff12\uff10\uff12\uff16-\uff10\uff13-\uff10\uff11", "9999-12-31", "0001-01-01", "2024-02-29", "2020-01-01",
    "2019-05-09", "2019-05-10", "2026-03-01", "2026-03-02", "2026-03-03", "2026-04-01", "2027-01-01", "",
)  # fmt: skip
DATE_STRATEGY = st.one_of(st.dates().map(date.isoformat), st.text(alphabet="0123456789-/ T:.", max_size=9))


def at(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)


TIMES: dict[str, datetime | None] = {
    "2026-04-01T00:00:00Z": at(2026, 4, 1),
    "2026-04-01T08:00:00+08:00": at(2026, 4, 1),
    "2026-04-01 00:00:00": at(2026, 4, 1),
    "2026-04-01": at(2026, 4, 1),
    "2026-03-15T12:30:00.999999Z": datetime(2026, 3, 15, 12, 30, 0, 999999, tzinfo=UTC),
    "9999-12-31T00:00:00Z": at(9999, 12, 31),
    "2026-03-02T09:00:00Z": T0_AT,
    "2026-03-02T17:00:00+08:00": T0_AT,
    "2026-03-01T00:00:00Z": at(2026, 3, 1),
    "2000-01-01T00:00:00Z": at(2000, 1, 1),
    "0001-01-01T00:00:00Z": at(1, 1, 1),
    "": None,
    "nan": None,
    "NaN": None,
    "now": None,
    "tomorrow": None,
    "2026-02-30T00:00:00Z": None,
    "2026-04-01T25:00:00Z": None,
    "2026-04-01T24:00:00Z": None,
    "2026-04-01T00:60:00Z": None,
    "2026-04-01T00:00:00+25:00": None,
    "0000-01-01T00:00:00Z": None,
    "+10000-01-01T00:00:00Z": None,
    "1e400": None,
    "1711929600": None,
    SQL: None,
    HUGE: None,
    "\x00": None,
    "\uff12\uff10\uff12\uff16-\uff10\uff14-\uff10\uff11T\uff10\uff10:\uff10\uff10:\uff10\uff10Z": None,
    "2026-04-01T00:00:00ZZ": None,
    "2026-04-01T00:00:00 UTC": None,
}
TIME_STRATEGY = st.one_of(
    st.sampled_from(sorted(TIMES.items())),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)).map(
        lambda d: (d.isoformat() + "Z", d.replace(tzinfo=UTC))
    ),
)


def cn_number(serial: int) -> str:
    """The 12 digits of a CN patent number made from a case's serial, unlike any the world holds."""
    return f"2098{serial:08d}"


def fill(template: str, serial: int) -> str:
    """A ref template for one case: `{n}` a number made from the case's serial (from 1: a US number has no
    leading 0), `{zl}` a CN patent number's 12 digits."""
    return template.replace("{n}", str(serial + 1)).replace("{zl}", cn_number(serial + 1))


# CN patents, utility models, designs and applications are `ZL` + 8 or 12 digits + '.' + check character
# (jurisdictions.md); the general syntax is tried on kinds the CN pack leaves as typed (trademark).
REF_TEMPLATES: tuple[tuple[str, str | None], ...] = (
    ("EP/patent/EP{n}", "EP/patent/EP{n}"),
    ("CN/patent/ ZL{zl}.X ", "CN/patent/ZL{zl}.X"),
    ("CN/patent/{zl}7", "CN/patent/ZL{zl}.7"),  # jurisdictions.md: one CN number however typed
    ("CN/utility_model/zl{zl} 3", "CN/utility_model/ZL{zl}.3"),
    ("  US/design/D{n}  ", "US/design/D{n}"),
    ("US/patent/0{n}", "US/patent/{n}"),  # jurisdictions.md: US patents drop leading zeros
    ("WO/patent/PCT/CN{n}/1", "WO/patent/PCT/CN{n}/1"),
    ("CN/know_how/KH-{n}", "CN/know_how/KH-{n}"),
    ("CN/patent_application/{zl}.5", "CN/patent_application/ZL{zl}.5"),
    ("CN/patent/ZL{zl}.1\n", "CN/patent/ZL{zl}.1"),
    ("cn/patent/zl{zl}.x", "CN/patent/ZL{zl}.X"),  # cli.md: case is canonicalised, one right is one ref
    ("CN/Patent/ZL{zl}.2", "CN/patent/ZL{zl}.2"),
    ("cn/trademark/tm{n}", "CN/trademark/TM{n}"),
    ("CN/trademark/{n}.", None),  # trailing punctuation and empty segments are refused
    ("CN/trademark/{n}/", None),
    ("CN/trademark/{n}//1", None),
    ("CN/patents/{n}", None),
    ("XX/patent/{n}", None),
    ("CN/trademark/", None),
    ("CN//{n}", None),
    ("/patent/{n}", None),
    ("CN/trademark/{n} 1", None),
    ("CN/trademark/\uff11\uff12\uff13{n}", None),
    ("CN/trademark/{n}\x00", None),
    ("CN/patent/ZL{n}" + "9" * 10_000, None),
    ("CN/patent/{n}", None),  # not a CN patent number
    ("CN/patent/ZL{zl}", None),  # no check character
    ("CN/patent/ZL\uff11{zl}.1", None),
    (SQL, None),
    (HUGE, None),
    ("", None),
    ("CN/trademark/{n};DROP", None),
    ("CN/trademark/{n}\u202e", None),
    ("CN\\patent\\{n}", None),
    ("CN/trademark/{n}\U0001f4a5", None),
)


def member_role(value: str, *, ok: Iterable[str] = (), rules: dict[str, Outcome] | None = None) -> Outcome | None:
    """A member id in a role: malformed → InvalidInput, unknown → NotFound, else by the role's rules."""
    if not is_member_id(value):
        return INVALID
    if value not in EXISTING_MEMBERS:
        return NOT_FOUND
    if rules and value in rules:
        return rules[value]
    return ACCEPTED if value in set(ok) else None


def options(head: Iterable[str], opts: dict[str, str], positional: Iterable[str] = ()) -> list[str]:
    """`head --opt=value ... -- positional`: values are never mistaken for options."""
    argv = list(head) + [f"{k}={v}" for k, v in opts.items()]
    rest = list(positional)
    return [*argv, "--", *rest] if rest else argv


# --------------------------------------------------------------------------- families of fuzzed commands


@dataclass
class Case:
    argv: list[str]
    expect: Outcome | None  # None: the contract leaves this combination open; it is not sent
    now: str | None = None
    on_accept: Callable[[], None] | None = None
    stored: Callable[[Cli], None] | None = None


@dataclass(frozen=True)
class Slot:
    name: str
    values: tuple[Any, ...]
    generated: st.SearchStrategy[Any]
    case: Callable[[Ctx, Any], Case]
    optional: bool = False  # an empty value of an optional option reads as unset: not a hostile value

    def skips(self, value: Any) -> bool:
        return self.optional and (value == "" or (isinstance(value, tuple) and value[0] == ""))


def run_case(ctx: Ctx, case: Case, as_json: bool = False) -> None:
    if case.expect is None:
        return
    result = attempt(ctx.cli, case.argv, case.expect, as_json=as_json, now=case.now)
    if result.exit_code == 0:
        if case.on_accept is not None:
            case.on_accept()
        if case.stored is not None:
            case.stored(ctx.cli)


def trail_data(cli: Cli, *key: str) -> dict[str, Any]:
    events = json.loads(cli.ok("--json", "trail", *key).stdout)["events"]
    return dict(events[-1]["data"])


# member add ID --name --kind --country

KINDS = ("university", "research_institute", "enterprise", "tech_transfer", "financial_institution", "individual")
KIND_VALUES = (*KINDS, "University", "UNIVERSITY", "bank", "", SQL, "\x00", HUGE, "enterprise ", "research-institute")


def member_add(ctx: Ctx, slot: str, value: str) -> Case:
    opts = {"--name": "Fuzz Co", "--kind": "enterprise", "--country": "CN"}
    mid = ctx.fresh("member", "fz-")
    if slot == "id":
        mid = value
        if not is_member_id(value):
            expect: Expect = INVALID
        elif ctx.is_taken("member", value):
            expect = refused("DuplicateId")
        else:
            expect = ACCEPTED
        return Case(options(["member", "add"], opts, [mid]), expect, on_accept=ctx.take("member", mid))
    opts[f"--{slot}"] = value
    stored = None
    if slot == "name":
        expect = ACCEPTED if is_clean_text(value, 200) else INVALID

        def stored(cli: Cli) -> None:
            assert trail_data(cli, "--member", mid)["name"] == value.strip()

    elif slot == "kind":
        expect = ACCEPTED if value in KINDS else INVALID
    else:
        expect = ACCEPTED if value in COUNTRIES else INVALID
    return Case(options(["member", "add"], opts, [mid]), expect, on_accept=ctx.take("member", mid), stored=stored)


# asset register REF --title --owner... --effective --expires-on

OWNER_SPECS: tuple[tuple[tuple[str, ...], Expect], ...] = (
    (("fudan-univ",), ACCEPTED),
    (("fudan-univ=1",), ACCEPTED),
    (("fudan-univ=1/1",), ACCEPTED),
    (("fudan-univ=2/2",), ACCEPTED),
    (("fudan-univ=1.0",), ACCEPTED),
    (("fudan-univ=1/2", "sjtu=1/2"), ACCEPTED),
    (("fudan-univ=1/3", "sjtu=1/3", "zte=1/3"), ACCEPTED),
    (("fudan-univ=0.25", "sjtu=3/4"), ACCEPTED),
    (("fudan-univ=0.333333333", "sjtu=0.333333333", "zte=0.333333334"), ACCEPTED),
    (("fudan-univ=1/3", "sjtu=1/3"), INVALID),
    (("fudan-univ=1/3",), INVALID),
    (("fudan-univ=1/0",), INVALID),
    (("fudan-univ=0",), INVALID),
    (("fudan-univ=-1",), INVALID),
    (("fudan-univ=NaN",), INVALID),
    (("fudan-univ=1e0",), INVALID),
    (("fudan-univ=0.5", "fudan-univ=0.5"), INVALID),
    (("fudan-univ", "sjtu"), INVALID),
    (("FUDAN-UNIV",), INVALID),
    (("fudan-univ=",), INVALID),
    (("=1",), INVALID),
    ((SQL,), INVALID),
    (("operator",), INVALID),
    (("fudan-univ=" + "1" * 10_000,), INVALID),
    (("fudan-univ=1/2\x00",), INVALID),
    (("nobody",), NOT_FOUND),
    (("tju",), refused("MemberSuspended")),
)


def asset_register(ctx: Ctx, slot: str, value: Any) -> Case:
    ref = ctx.fresh_cn_patent()
    opts = {"--title": "Fuzzed title", "--effective": "2019-05-10"}
    owners: tuple[str, ...] = ("fudan-univ",)
    stored = None
    if slot == "ref":
        template, canonical = value
        ref = fill(template, ctx.serial)
        canonical = canonical and fill(canonical, ctx.serial)
        expect: Expect = INVALID if canonical is None else ACCEPTED
        if ref == PATENT:
            canonical, expect = PATENT, refused("DuplicateId")
        head = ["asset", "register", *[f"--owner={o}" for o in owners]]
        return Case(options(head, opts, [ref]), expect, on_accept=ctx.take("asset", str(canonical)))
    if slot == "owner":
        owners, expect = value
    elif slot == "title":
        opts["--title"] = value
        expect = ACCEPTED if is_clean_text(value, 500) else INVALID

        def stored(cli: Cli) -> None:
            assert trail_data(cli, "--asset", ref)["title"] == value.strip()

    elif slot == "effective":
        opts["--effective"] = value
        day = as_date(value)
        expect = INVALID if day is None or day > TODAY else ACCEPTED
    else:
        opts["--expires-on"] = value
        day = as_date(value)
        expect = INVALID if day is None or day <= REGISTERED else ACCEPTED
    head = ["asset", "register", *[f"--owner={o}" for o in owners]]
    return Case(options(head, opts, [ref]), expect, on_accept=ctx.take("asset", ref), stored=stored)


# asset assign PATENT --to... --effective --conveyance --consent

CONVEYANCE_VALUES = (
    "assignment", "merger", "name_change", "correction", "registration", "enforcement", "Assignment", SQL, "\x00",
    HUGE, "gift", "assignment ", "name-change",
)  # fmt: skip


def current_owners(cli: Cli, ref: str) -> set[str]:
    return {o["member"] for o in json.loads(cli.ok("--json", "owner", ref).stdout)["owners"]}


def asset_assign(ctx: Ctx, slot: str, value: Any) -> Case:
    opts = {"--conveyance": "correction"}
    to: tuple[str, ...] = ("zte",)
    expect: Expect | None
    if slot == "to":
        to, expect = value
    elif slot == "effective":
        opts["--effective"] = value
        day = as_date(value)
        expect = ACCEPTED if day is not None and REGISTERED <= day <= TODAY else INVALID
    elif slot == "conveyance":
        opts["--conveyance"] = value
        if value in ("assignment", "merger", "name_change", "correction"):
            owners = current_owners(ctx.cli, PATENT)
            to = (next(m for m in ("zte", "huawei", "byd") if m not in owners),)
            expect = ACCEPTED
        else:
            expect = INVALID
    else:
        opts["--consent"] = value
        # an unknown but well-formed consent id on an unpledged asset is left open by the contract
        expect = None if is_clean_id(value) else INVALID
    head = ["asset", "assign", *[f"--to={m}" for m in to]]
    return Case(options(head, opts, [PATENT]), expect)


# listing open PATENT: a non-exclusive licence by english auction

LICENCE_LISTING = {
    "--type": "licence",
    "--mechanism": "english",
    "--currency": "CNY",
    "--closes": CLOSES,
    "--ask": "100",
    "--licence-type": "non_exclusive",
    "--territory": "CN",
    "--field": "ALL",
    "--term-start": "2026-04-01",
    "--term-end": "2027-01-01",
}
LICENCE_TYPE_VALUES = ("non_exclusive", "exclusive", "sole", "Exclusive", "non-exclusive", "", SQL, "\x00", HUGE)
INT_VALUES = ("5", "1440", "1441", "365", "366", "1", "0", "-1", "1.5", "1e3", "abc", "", SQL, "99999999999999999999")
FIELD_VALUES = ("ALL", "all", "batteries", "  lithium  ", "x" * 100, "x" * 101, "", "   ", EMOJI, RTL, SQL, HUGE)


def int_in(value: str, low: int, high: int) -> bool:
    return re.fullmatch(r"-?[0-9]+", value) is not None and low <= int(value) <= high


def listing_open(ctx: Ctx, slot: str, value: Any) -> Case:
    opts = dict(LICENCE_LISTING)
    lid = ctx.fresh("listing", "L-FZ")
    expect: Outcome | None
    if slot == "id":
        lid = value
        if not is_clean_id(value):
            expect = INVALID
        else:
            expect = refused("DuplicateId") if ctx.is_taken("listing", value) else ACCEPTED
    elif slot in ("closes", "opens"):
        text, when = value
        opts[f"--{slot}"] = text
        if slot == "opens" and text == "":
            expect = None  # an empty optional value reads as unset
        elif slot == "closes":
            expect = ACCEPTED if when is not None and when > T0_AT else INVALID
        else:
            expect = ACCEPTED if when is not None and when < CLOSES_AT else INVALID
    elif slot == "currency":
        opts["--currency"] = value
        expect = ACCEPTED if value in CURRENCIES else INVALID
    elif slot in ("ask", "reserve", "increment"):
        opts[f"--{slot}"] = value
        expect = None if value == "" else ACCEPTED if is_amount(value, "CNY") else INVALID
    elif slot == "extend-minutes":
        opts["--extend-minutes"] = value
        expect = ACCEPTED if int_in(value, 1, 1440) else INVALID
    elif slot == "settlement-days":
        opts["--settlement-days"] = value
        expect = ACCEPTED if int_in(value, 1, 365) else INVALID
    elif slot == "licence-type":
        opts["--licence-type"] = value
        rules = {"non_exclusive": ACCEPTED, "exclusive": refused("LicenceConflict"), "sole": refused("LicenceConflict")}
        expect = rules.get(value, INVALID)
    elif slot == "territory":
        opts["--territory"] = value
        expect = ACCEPTED if is_territory(value) else INVALID
    elif slot == "field":
        opts["--field"] = value
        expect = ACCEPTED if is_field_of_use(value) else INVALID
    elif slot == "term-start":
        opts["--term-start"] = value
        day = as_date(value)
        if day is None or day >= date(2027, 1, 1):
            expect = INVALID
        else:
            expect = ACCEPTED if day >= REGISTERED else None
    else:
        opts["--term-end"] = value
        day = as_date(value)
        expect = ACCEPTED if day is not None and day > date(2026, 4, 1) else INVALID
    opts["--id"] = lid
    return Case(options(["listing", "open"], opts, [PATENT]), expect, on_accept=ctx.take("listing", lid))


# bid place L-SEALED (CNY) / L-JPY --bidder --amount --id --trade-id

BIDDER_RULES = {"sjtu": refused("SelfDealing"), "tju": refused("MemberSuspended")}


def bid_place(ctx: Ctx, slot: str, value: str) -> Case:
    listing = "L-SEALED"
    opts = {"--bidder": "zte", "--amount": "150.00"}
    bid_id = ctx.fresh("bid", "B-FZ")
    expect: Expect | None
    if slot == "listing":
        listing = value
        expect = NOT_FOUND if is_clean_id(value) else INVALID
    elif slot == "bidder":
        opts["--bidder"] = value
        expect = member_role(value, ok=EXISTING_MEMBERS, rules=BIDDER_RULES)
    elif slot == "amount":
        opts["--amount"] = value
        expect = ACCEPTED if is_amount(value, "CNY") else INVALID
    elif slot == "amount-jpy":
        listing = "L-JPY"
        opts["--amount"] = value
        expect = ACCEPTED if is_amount(value, "JPY") else INVALID
    elif slot == "id":
        bid_id = value
        expect = (
            INVALID if not is_clean_id(value) else refused("DuplicateId") if ctx.is_taken("bid", value) else ACCEPTED
        )
    else:
        opts["--trade-id"] = value
        expect = ACCEPTED if is_clean_id(value) else INVALID  # no trade is struck on a sealed listing
    opts["--id"] = bid_id
    return Case(options(["bid", "place"], opts, [listing]), expect, on_accept=ctx.take("bid", bid_id))


# trade settle / void T-1


def trade_command(ctx: Ctx, slot: str, value: str) -> Case:
    def resolve() -> None:
        ctx.resolved = True

    pending_or_resolved = refused("TradeResolved") if ctx.resolved else ACCEPTED
    if slot == "trade":
        return Case(options(["trade", "void"], {}, [value]), NOT_FOUND if is_clean_id(value) else INVALID)
    if slot == "payment-ref":
        expect: Outcome | None = pending_or_resolved if is_clean_text(value, 200) else INVALID
        return Case(options(["trade", "settle"], {"--payment-ref": value}, ["T-1"]), expect, on_accept=resolve)
    if slot == "reason":
        expect = None if value == "" else pending_or_resolved if is_clean_text(value, 500) else INVALID
        return Case(options(["trade", "void"], {"--reason": value}, ["T-1"]), expect, on_accept=resolve)
    day = as_date(value)
    if day is None:
        expect = INVALID
    elif day > TODAY:
        expect = (INVALID, refused("TradeResolved")) if ctx.resolved else INVALID
    else:
        expect = pending_or_resolved if day == TODAY else None
    opts = {"--payment-ref": "PAY-1", "--effective": value}
    return Case(options(["trade", "settle"], opts, ["T-1"]), expect, on_accept=resolve)


# licence grant PATENT --licensee zte --type non_exclusive ...

LICENCE_GRANT = {
    "--licensee": "zte",
    "--type": "non_exclusive",
    "--territory": "CN",
    "--field": "ALL",
    "--start": "2026-03-02",
    "--end": "2027-01-01",
}
RATE_VALUES: tuple[tuple[str, bool], ...] = (
    ("3.5", True), ("0", True), ("100", True), ("0.0001", True), ("12.25", True), ("100.0001", False), ("-1", False),
    ("NaN", False), ("Infinity", False), ("1e400", False), ("abc", False), ("3,5", False), ("3.5%", False),
    ("0.00001", False), ("1.5e3", False), ("1e2", False), ("1E1", False), (SQL, False), (HUGE, False), ("\x00", False),
    ("-0.5", False),
)  # fmt: skip
LICENSEE_RULES = {"fudan-univ": refused("SelfDealing"), "tju": refused("MemberSuspended")}


def licence_grant(ctx: Ctx, slot: str, value: Any) -> Case:
    opts = dict(LICENCE_GRANT)
    lic = ctx.fresh("licence", "LIC-FZ")
    expect: Expect | None
    if slot == "licensee":
        opts["--licensee"] = value
        expect = member_role(value, ok=EXISTING_MEMBERS, rules=LICENSEE_RULES)
    elif slot == "type":
        opts["--type"] = value
        rules = {"non_exclusive": ACCEPTED, "exclusive": refused("LicenceConflict"), "sole": refused("LicenceConflict")}
        expect = rules.get(value, INVALID)
    elif slot == "territory":
        opts["--territory"] = value
        expect = ACCEPTED if is_territory(value) else INVALID
    elif slot == "field":
        opts["--field"] = value
        expect = ACCEPTED if is_field_of_use(value) else INVALID
    elif slot == "start":
        opts["--start"] = value
        day = as_date(value)
        expect = ACCEPTED if day is not None and REGISTERED <= day < date(2027, 1, 1) else INVALID
    elif slot == "end":
        opts["--end"] = value
        day = as_date(value)
        expect = ACCEPTED if day is not None and day > TODAY else INVALID
    elif slot == "royalty-rate":
        text, valid = value
        opts["--royalty-rate"] = text
        expect = ACCEPTED if valid else INVALID
    elif slot == "lump-sum":
        opts.update({"--lump-sum": value, "--currency": "CNY"})
        expect = None if value == "" else ACCEPTED if is_amount(value, "CNY") else INVALID
    elif slot == "currency":
        opts.update({"--lump-sum": "100", "--currency": value})
        expect = None if value == "" else ACCEPTED if value in CURRENCIES else INVALID
    elif slot == "parent":
        opts["--parent"] = value
        expect = None if value == "" else NOT_FOUND if is_clean_id(value) else INVALID
    else:
        lic = value
        expect = (
            INVALID
            if not is_clean_id(value)
            else refused("DuplicateId")
            if ctx.is_taken("licence", value)
            else ACCEPTED
        )
    opts["--id"] = lic
    return Case(options(["licence", "grant"], opts, [PATENT]), expect, on_accept=ctx.take("licence", lic))


# pledge register A_US --pledgee icbc-sh ...: a US patent, since US law lets one carry several pledges at
# once and leaves the end optional, so every value the contract accepts can be recorded (the CN pack's
# one-pledge-at-a-time and stated-end rules are tested in test_rulepacks.py)


def pledge_register(ctx: Ctx, slot: str, value: str) -> Case:
    opts = {"--pledgee": "icbc-sh"}
    pid = ctx.fresh("pledge", "P-FZ")
    expect: Expect | None
    if slot == "pledgee":
        opts["--pledgee"] = value
        expect = member_role(value, ok=("icbc-sh", "boc-bj"))  # other members are not financial institutions
    elif slot == "amount":
        opts.update({"--amount": value, "--currency": "CNY"})
        expect = None if value == "" else ACCEPTED if is_amount(value, "CNY") else INVALID
    elif slot == "currency":
        opts.update({"--amount": "100", "--currency": value})
        expect = None if value == "" else ACCEPTED if value in CURRENCIES else INVALID
    elif slot == "start":
        opts["--start"] = value
        day = as_date(value)
        if value == "" or (day is not None and day < REGISTERED):
            expect = None
        else:
            expect = ACCEPTED if day is not None and day <= TODAY else INVALID
    elif slot == "end":
        opts["--end"] = value
        day = as_date(value)
        expect = None if value == "" else ACCEPTED if day is not None and day > TODAY else INVALID
    else:
        pid = value
        expect = (
            INVALID if not is_clean_id(value) else refused("DuplicateId") if ctx.is_taken("pledge", value) else ACCEPTED
        )
    opts["--id"] = pid
    return Case(options(["pledge", "register"], opts, [A_US]), expect, on_accept=ctx.take("pledge", pid))


# references to things that do not exist, in every writing command that names one

REFERENCE_COMMANDS: dict[str, tuple[list[str], dict[str, str]]] = {
    "listing withdraw": (["listing", "withdraw"], {}),
    "listing close": (["listing", "close"], {}),
    "bid withdraw": (["bid", "withdraw"], {}),
    "bid accept": (["bid", "accept"], {}),
    "trade settle": (["trade", "settle"], {"--payment-ref": "PAY-1"}),
    "trade void": (["trade", "void"], {}),
    "licence terminate": (["licence", "terminate"], {"--reason": "breach"}),
    "licence surrender": (["licence", "surrender"], {}),
    "pledge consent": (["pledge", "consent"], {"--act": "licence"}),
    "pledge release": (["pledge", "release"], {}),
    "pledge enforce": (["pledge", "enforce"], {}),
}


def reference(ctx: Ctx, slot: str, value: str) -> Case:
    if slot in REFERENCE_COMMANDS:
        head, opts = REFERENCE_COMMANDS[slot]
        expect: Expect | None = None if value in ALL_WORLD_IDS else NOT_FOUND if is_clean_id(value) else INVALID
        return Case(options(head, opts, [value]), expect)
    if slot in ("member suspend", "member reinstate"):
        expect = INVALID if not is_member_id(value) else None if value in EXISTING_MEMBERS else NOT_FOUND
        return Case(options(slot.split(), {}, [value]), expect)
    template, canonical = value  # asset consent REF
    ref = fill(template, ctx.serial)
    return Case(
        options(["asset", "consent"], {"--member": "fudan-univ", "--act": "assignment"}, [ref]),
        INVALID if canonical is None else NOT_FOUND,
    )


# queries

STATUS_VALUES = ("open", "closed", "withdrawn", "unsold", "sold", "OPEN", "", SQL, "\x00", HUGE, "open ")
UNTIL_VALUES = ("0", "1", "5", "9223372036854775807", "-1", "abc", "1.5", "1e3", "", SQL, "\x00")


def query(ctx: Ctx, slot: str, value: Any) -> Case:
    if slot in ("owner", "title", "encumbrances", "trail --asset"):
        template, canonical = value
        ref = fill(template, ctx.serial)
        expect: Expect | None = INVALID if canonical is None else NOT_FOUND
        if ref == PATENT:
            expect = READ
        head = ["trail", f"--asset={ref}"] if slot == "trail --asset" else [slot, "--", ref]
        return Case(head, expect)
    if slot in ("owner --as-of", "encumbrances --as-of", "holdings --as-of"):
        command, option = slot.split()
        subject = "zte" if command == "holdings" else PATENT
        return Case([command, f"{option}={value}", "--", subject], READ if as_date(value) else INVALID)
    if slot == "owner --known-at":
        text, when = value
        return Case(["owner", f"--known-at={text}", "--", PATENT], INVALID if when is None else READ)
    if slot in ("holdings", "trail --member"):
        expect = member_role(value, ok=EXISTING_MEMBERS)
        expect = READ if expect == ACCEPTED else expect
        head = ["trail", f"--member={value}"] if slot == "trail --member" else ["holdings", "--", value]
        return Case(head, expect)
    if slot == "book":
        return Case(["book", "--", value], READ if value in WORLD_IDS["listing"] else NOT_FOUND)
    if slot == "listings --status":
        return Case(["listings", f"--status={value}"], READ if value in STATUS_VALUES[:5] else INVALID)
    valid = re.fullmatch(r"[0-9]+", value) is not None
    return Case(["export", f"--until={value}"], READ if valid else INVALID)


# global options: --actor, --command-id, IPLEDGER_NOW, stray options and arguments

ACTOR_VALUES = (
    "operator", "auditor", "huawei", "fudan-univ", "tju", "nobody", "Operator", "OPERATOR", "operator ", " operator",
    "", SQL, HUGE, "\x00", RTL, "op\u200berator", "root", "admin", "*", "operator;auditor",
)  # fmt: skip


def global_option(ctx: Ctx, slot: str, value: Any) -> Case:
    mid = ctx.fresh("member", "fz-g")
    add = options(["member", "add"], {"--name": "Global", "--kind": "enterprise", "--country": "CN"}, [mid])
    taken = ctx.take("member", mid)
    if slot == "actor":
        if value in ("operator", "auditor"):
            expect: Outcome | None = ACCEPTED if value == "operator" else refused("NotAuthorised")
        else:
            expect = member_role(value, rules={"tju": (refused("MemberSuspended"), refused("NotAuthorised"))})
            expect = refused("NotAuthorised") if expect is None else expect
        return Case([f"--actor={value}", *add], expect, on_accept=taken)
    if slot == "command-id":
        if value == "":
            return Case(add, None)
        if not is_clean_id(value):
            return Case([f"--command-id={value}", *add], INVALID)
        if ("command", value) in ctx.taken:
            return Case([f"--command-id={value}", *add], READ)  # the first outcome again, nothing written

        def accepted() -> None:
            taken()
            ctx.taken.add(("command", value))

        return Case([f"--command-id={value}", *add], ACCEPTED, on_accept=accepted)
    if slot == "IPLEDGER_NOW":
        text, when = value
        if text == "" or "\x00" in text or (when is not None and when > T0_AT):
            return Case(add, None)  # unset, unrepresentable in an environment, or moving the clock on
        if when is None:
            expect = INVALID
        else:
            expect = ACCEPTED if when == T0_AT else refused("ClockWentBackwards")
        return Case(add, expect, now=text, on_accept=taken)
    if slot == "stray option":
        return Case([*add[:-2], f"--zz-{value}", *add[-2:]], INVALID)
    return Case([*add, f"x{value}"], INVALID)  # a stray argument


def slots(
    case: Callable[[Ctx, str, Any], Case],
    table: dict[str, tuple[Iterable[Any], st.SearchStrategy[Any]]],
    optional: Iterable[str] = (),
) -> list[Slot]:
    return [
        Slot(name, tuple(values), generated, partial(case_for, case, name), name in set(optional))
        for name, (values, generated) in table.items()
    ]


def case_for(case: Callable[[Ctx, str, Any], Case], name: str, ctx: Ctx, value: Any) -> Case:
    return case(ctx, name, value)


def sampled(values: Iterable[Any]) -> st.SearchStrategy[Any]:
    return st.sampled_from(list(values))


ID_SLOT = (ID_VALUES, ID_STRATEGY)
MEMBER_SLOT = (MEMBER_VALUES, MEMBER_STRATEGY)
DATE_SLOT = (DATE_VALUES, DATE_STRATEGY)
AMOUNT_SLOT = (AMOUNT_VALUES, AMOUNT_STRATEGY)
CURRENCY_SLOT = (CURRENCY_VALUES, CURRENCY_STRATEGY)
TIME_SLOT = (tuple(TIMES.items()), TIME_STRATEGY)
REF_SLOT = (REF_TEMPLATES, sampled(REF_TEMPLATES))
FIELD_SLOT = (FIELD_VALUES, st.text(FIELD_CHAR, max_size=110))
TERRITORY_SLOT = (COUNTRY_VALUES + ("world", "Cn", " de "), COUNTRY_STRATEGY)
INT_SLOT = (INT_VALUES, st.integers(-5, 2000).map(str))

FAMILIES: dict[str, list[Slot]] = {
    "member add": slots(
        member_add,
        {
            "id": MEMBER_SLOT,
            "name": (text_values(200), text_strategy(200)),
            "kind": (KIND_VALUES, sampled(KIND_VALUES)),
            "country": (COUNTRY_VALUES, COUNTRY_STRATEGY),
        },
    ),
    "asset register": slots(
        asset_register,
        {
            "ref": REF_SLOT,
            "title": (text_values(500), text_strategy(500)),
            "owner": (OWNER_SPECS, sampled(OWNER_SPECS)),
            "effective": DATE_SLOT,
            "expires-on": DATE_SLOT,
        },
        optional=("effective", "expires-on"),
    ),
    "asset assign": slots(
        asset_assign,
        {
            "to": (OWNER_SPECS, sampled(OWNER_SPECS)),
            "effective": DATE_SLOT,
            "conveyance": (CONVEYANCE_VALUES, sampled(CONVEYANCE_VALUES)),
            "consent": ID_SLOT,
        },
        optional=("effective", "conveyance"),
    ),
    "listing open": slots(
        listing_open,
        {
            "id": ID_SLOT,
            "closes": TIME_SLOT,
            "opens": TIME_SLOT,
            "currency": CURRENCY_SLOT,
            "ask": AMOUNT_SLOT,
            "reserve": AMOUNT_SLOT,
            "increment": AMOUNT_SLOT,
            "extend-minutes": INT_SLOT,
            "settlement-days": INT_SLOT,
            "licence-type": (LICENCE_TYPE_VALUES, sampled(LICENCE_TYPE_VALUES)),
            "territory": TERRITORY_SLOT,
            "field": FIELD_SLOT,
            "term-start": DATE_SLOT,
            "term-end": DATE_SLOT,
        },
        optional=("id", "opens", "ask", "reserve", "increment", "term-start", "term-end"),
    ),
    "bid place": slots(
        bid_place,
        {
            "listing": ID_SLOT,
            "bidder": MEMBER_SLOT,
            "amount": AMOUNT_SLOT,
            "amount-jpy": AMOUNT_SLOT,
            "id": ID_SLOT,
            "trade-id": ID_SLOT,
        },
        optional=("id", "trade-id"),
    ),
    "trade settle and void": slots(
        trade_command,
        {
            "trade": ID_SLOT,
            "payment-ref": (text_values(200), text_strategy(200)),
            "reason": (text_values(500), text_strategy(500)),
            "effective": DATE_SLOT,
        },
        optional=("reason", "effective"),
    ),
    "licence grant": slots(
        licence_grant,
        {
            "licensee": MEMBER_SLOT,
            "type": (LICENCE_TYPE_VALUES, sampled(LICENCE_TYPE_VALUES)),
            "territory": TERRITORY_SLOT,
            "field": FIELD_SLOT,
            "start": DATE_SLOT,
            "end": DATE_SLOT,
            "royalty-rate": (RATE_VALUES, sampled(RATE_VALUES)),
            "lump-sum": AMOUNT_SLOT,
            "currency": CURRENCY_SLOT,
            "parent": ID_SLOT,
            "id": ID_SLOT,
        },
        optional=("royalty-rate", "lump-sum", "currency", "parent", "id"),
    ),
    "pledge register": slots(
        pledge_register,
        {
            "pledgee": MEMBER_SLOT,
            "amount": AMOUNT_SLOT,
            "currency": CURRENCY_SLOT,
            "start": DATE_SLOT,
            "end": DATE_SLOT,
            "id": ID_SLOT,
        },
        optional=("amount", "currency", "start", "end", "id"),
    ),
    "references": slots(
        reference,
        {
            **{name: ID_SLOT for name in REFERENCE_COMMANDS},
            "member suspend": MEMBER_SLOT,
            "member reinstate": MEMBER_SLOT,
            "asset consent": REF_SLOT,
        },
    ),
    "queries": slots(
        query,
        {
            "owner": REF_SLOT,
            "title": REF_SLOT,
            "encumbrances": REF_SLOT,
            "trail --asset": REF_SLOT,
            "owner --as-of": DATE_SLOT,
            "encumbrances --as-of": DATE_SLOT,
            "holdings --as-of": DATE_SLOT,
            "owner --known-at": TIME_SLOT,
            "holdings": MEMBER_SLOT,
            "trail --member": MEMBER_SLOT,
            "book": (ECHO_ID_VALUES + ("L-SEALED",), st.text(ECHO_CHAR, max_size=30)),
            "listings --status": (STATUS_VALUES, sampled(STATUS_VALUES)),
            "export --until": (UNTIL_VALUES, sampled(UNTIL_VALUES)),
        },
    ),
    "global options": slots(
        global_option,
        {
            "actor": (ACTOR_VALUES, st.one_of(sampled(ACTOR_VALUES), MEMBER_STRATEGY)),
            "command-id": (ID_VALUES, ID_STRATEGY),
            "IPLEDGER_NOW": TIME_SLOT,
            "stray option": (("x", "name=1", SQL, EMOJI, "json2"), st.text(ECHO_CHAR, min_size=1, max_size=20)),
            "stray argument": (("", SQL, HUGE, EMOJI, "\x00"), st.text(ECHO_CHAR, max_size=20)),
        },
    ),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_curated_hostile_value_is_rejected_cleanly_or_recorded_as_given(ctx: Ctx, family: str) -> None:
    """Sweep: each curated value in each option, the others valid; the outcome decided by construction."""
    for slot in FAMILIES[family]:
        for value in slot.values:
            if not slot.skips(value):
                run_case(ctx, slot.case(ctx, value))


@pytest.mark.parametrize("family", sorted(FAMILIES))
@fuzz(11)
@given(data=st.data())
def test_fuzzed_option_values_are_rejected_cleanly_or_recorded_as_given(
    ctx: Ctx, family: str, data: st.DataObject
) -> None:
    slot = data.draw(st.sampled_from(FAMILIES[family]), label="option")
    value = data.draw(st.one_of(st.sampled_from(slot.values), slot.generated), label=slot.name)
    as_json = data.draw(st.booleans(), label="--json")
    if not slot.skips(value):
        run_case(ctx, slot.case(ctx, value), as_json=as_json)


# --------------------------------------------------------------------------- `ipledger import -`

IMPORT_BASE: dict[str, dict[str, Any]] = {
    "member.add": {"id": "newco", "name": "New Co", "kind": "enterprise", "country": "CN"},
    "member.suspend": {"id": "zte", "reason": "dues unpaid"},
    "member.reinstate": {"id": "tju"},
    "asset.register": {
        "ref": "CN/patent/ZL209900000001.1",
        "title": "Imported",
        "owner": ["fudan-univ"],
        "effective": "2019-05-10",
        "expires_on": "2039-05-10",
    },
    "asset.assign": {"ref": PATENT, "to": ["huawei"], "effective": "2026-03-02", "conveyance": "assignment"},
    "asset.consent": {"ref": A_CO, "member": "fudan-univ", "act": "assignment", "id": "CC-NEW"},
    "listing.open": {
        "ref": PATENT,
        "type": "licence",
        "mechanism": "english",
        "currency": "CNY",
        "closes": CLOSES,
        "opens": T0,
        "ask": "100",
        "reserve": "200",
        "increment": "10",
        "extend_minutes": 5,
        "settlement_days": 7,
        "licence_type": "non_exclusive",
        "territory": ["CN"],
        "field": ["ALL"],
        "term_start": "2026-04-01",
        "term_end": "2027-01-01",
        "sublicensable": False,
        "id": "L-NEW",
    },
    "listing.withdraw": {"listing": "L-SEALED"},
    "listing.close": {"listing": "L-SHORT", "trade_id": "T-CLOSE"},
    "bid.place": {"listing": "L-SEALED", "bidder": "huawei", "amount": "150.00", "trade_id": "T-NEW", "id": "B-NEW"},
    "bid.withdraw": {"bid": "B-ZTE"},
    "bid.accept": {"bid": "B-NEG", "trade_id": "T-ACC"},
    "trade.settle": {"trade": "T-1", "payment_ref": "PAY-1", "effective": "2026-03-02"},
    "trade.void": {"trade": "T-1", "reason": "buyer withdrew"},
    "licence.grant": {
        "ref": PATENT,
        "licensee": "zte",
        "type": "non_exclusive",
        "territory": ["CN"],
        "field": ["ALL"],
        "start": "2026-03-02",
        "end": "2027-01-01",
        "sublicensable": False,
        "royalty_rate": "3.5",
        "lump_sum": "1000.00",
        "currency": "CNY",
        "consent": [],
        "id": "LIC-NEW",
    },
    "licence.terminate": {"licence": "LIC-1", "reason": "breach", "effective": "2026-03-02"},
    "licence.surrender": {"licence": "LIC-1", "effective": "2026-03-02"},
    "pledge.register": {
        "ref": PATENT,
        "pledgee": "icbc-sh",
        "amount": "1000000.00",
        "currency": "CNY",
        "start": "2026-03-02",
        "end": "2027-03-02",
        "id": "P-NEW",
    },
    "pledge.consent": {"pledge": "P-1", "act": "licence", "id": "C-NEW"},
    "pledge.release": {"pledge": "P-1", "effective": "2026-03-02"},
    "pledge.enforce": {"pledge": "P-1", "effective": "2026-03-02"},
    "token.issue": {"actor": "huawei", "id": "TK-NEW", "secret_sha256": "0" * 64, "name": "desk",
                    "expires": "2027-01-01"},
    "token.revoke": {"token": "TK-1"},
}  # fmt: skip
IMPORT_AT = {"listing.close": AFTER_SHORT}  # every other line is recorded at T0: lines without `at` use the wall clock

AMOUNT_KEYS = {"ask", "reserve", "increment", "amount", "lump_sum"}
LIST_KEYS = {"owner", "to", "territory", "consent"}
BOOL_KEYS = {"sublicensable"}
INT_KEYS = {"extend_minutes", "settlement_days"}
FIELD_KEYS = {"field"}  # non-strings here are coerced today: see the dedicated test
DEEP: Any = {"nested": {"deep": [1, {"x": None}, [[[]]]]}}
BAD_FOR: dict[str, list[Any]] = {
    "string": [["x"], [1, 2], {"a": 1}, {"$gt": ""}, 1.5, 1e308, -1.0, True, 7, -1, 10**30, [[[]]], DEEP],
    "amount": [1.5, 100.0, 1e308, True, -5, 0, [100], {"v": "100"}, "1e400", "NaN", 10**30, DEEP],
    "rate": [1.5, 3.0, True, [3], {"r": 3}, "NaN", -1, 101, "1e400"],
    "list": [[{"a": 1}], [["x"]], [1.5], [None], 5, {"a": 1}, [True], DEEP],
    "bool": ["yes please", 2, 1.5, [True], {"b": True}, -1],
    "int": [1.5, "five", [5], {"n": 5}, -1, 0, "1e3", 10**40],
}


def key_kind(key: str) -> str:
    if key in AMOUNT_KEYS:
        return "amount"
    if key == "royalty_rate":
        return "rate"
    if key in LIST_KEYS:
        return "list"
    if key in BOOL_KEYS:
        return "bool"
    if key in INT_KEYS:
        return "int"
    return "string"


MUTABLE_KEYS = [(cmd, key) for cmd, args in sorted(IMPORT_BASE.items()) for key in args if key not in FIELD_KEYS]


def line(command: str, args: Any, command_id: str, **meta: Any) -> bytes:
    return json.dumps({"command": command, "args": args, "command_id": command_id, "at": T0, **meta}).encode()


def good_member_line(ctx: Ctx) -> bytes:
    mid = ctx.fresh("member", "imp-")
    ctx.taken.add(("member", mid))
    return line("member.add", {"id": mid, "name": "Imported", "kind": "individual", "country": "CN"}, f"cmd-{mid}")


@st.composite
def hostile_import_line(draw: st.DrawFn, ctx: Ctx) -> tuple[bytes, Outcome]:
    """One line that must be rejected, and how."""
    cid = f"fz-{draw(st.uuids()).hex[:12]}"
    kind = draw(
        st.sampled_from(
            [
                "garbage",
                "not an object",
                "wrong type",
                "unknown command",
                "unknown key",
                "unknown arg",
                "meta",
                "huge",
                "bad utf-8",
            ]
        )  # fmt: skip
    )
    if kind == "garbage":
        raw = draw(st.binary(min_size=1, max_size=200).filter(lambda b: b"\n" not in b and b.strip() != b""))
        return raw, INVALID
    if kind == "not an object":
        json_value = st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
            lambda inner: st.lists(inner, max_size=3),
            max_leaves=6,
        )
        return json.dumps(draw(json_value)).encode(), INVALID
    if kind == "wrong type":
        command, key = draw(st.sampled_from(MUTABLE_KEYS))
        args = {**IMPORT_BASE[command], key: draw(st.sampled_from(BAD_FOR[key_kind(key)]))}
        meta = {"at": IMPORT_AT[command]} if command in IMPORT_AT else {}
        return line(command, args, cid, **meta), INVALID
    if kind == "unknown command":
        name = draw(
            st.one_of(
                st.text(max_size=20),
                st.sampled_from(
                    ["member.delete", "Member.Add", "member add", "asset.register ", "export", "__class__"]
                ),
            )
        )
        return line(name, {}, cid) if name not in COMMANDS else line("member.remove", {}, cid), INVALID
    if kind == "unknown key":
        doc = {"command": "member.add", "args": IMPORT_BASE["member.add"], "command_id": cid, "at": T0, "extra": 1}
        return json.dumps(doc).encode(), INVALID
    if kind == "unknown arg":
        command = draw(st.sampled_from(sorted(IMPORT_BASE)))
        extra = draw(st.sampled_from(["colour", "__proto__", "ref ", "Id", "json", "sql';--"]))
        return line(command, {**IMPORT_BASE[command], extra: "x"}, cid), INVALID
    if kind == "meta":
        variants: list[tuple[dict[str, Any], Outcome]] = [
            ({"command_id": 5}, INVALID),
            ({"command_id": ""}, INVALID),
            ({"command_id": "has space"}, INVALID),
            ({"command_id": "x" * 65}, INVALID),
            ({"command_id": ["a"]}, INVALID),
            ({"actor": 5}, INVALID),
            ({"actor": "Bad Actor"}, INVALID),
            ({"actor": "auditor"}, refused("NotAuthorised")),
            ({"actor": "nobody"}, NOT_FOUND),
            ({"actor": "huawei"}, refused("NotAuthorised")),
            ({"at": 5}, INVALID),
            ({"at": "yesterday"}, INVALID),
            ({"at": "2026-02-30T00:00:00Z"}, INVALID),
            ({"at": "2020-01-01T00:00:00Z"}, refused("ClockWentBackwards")),
            ({"at": None, "args": None}, INVALID),
        ]
        override, expect = draw(st.sampled_from(variants))
        doc = {"command": "member.add", "args": {**IMPORT_BASE["member.add"], "id": ctx.fresh("member", "m-")},
               "command_id": cid, "at": T0, **override}  # fmt: skip
        return json.dumps(doc).encode(), expect
    if kind == "huge":
        size = draw(st.sampled_from([10_000, 1_000_000]))
        args = {**IMPORT_BASE["member.add"], "name": "N" * size}
        return draw(st.sampled_from([line("member.add", args, cid), b"{" * size])), INVALID
    return b'{"command": "member.add", "command_id": "x\xff\xfe", "args": {}}', INVALID


def test_the_import_base_lines_cover_every_writing_command() -> None:
    assert set(IMPORT_BASE) == set(COMMANDS)


@pytest.mark.parametrize("command", sorted(IMPORT_BASE))
def test_each_import_base_line_is_accepted_as_it_is(world: Cli, command: str) -> None:
    """The lines the import fuzz mutates are valid, so one bad key is what makes a line bad."""
    meta = {"at": IMPORT_AT[command]} if command in IMPORT_AT else {}
    result = world("--json", "import", "-", input=line(command, IMPORT_BASE[command], f"ok-{command}", **meta))
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"applied": 1, "skipped": 0}


@fuzz(30)
@given(data=st.data())
def test_a_hostile_import_line_is_rejected_by_line_number_and_nothing_after_the_recorded_lines_is_kept(
    ctx: Ctx, data: st.DataObject
) -> None:
    """Good lines recorded by an earlier run are skipped; the first new line is bad: the store is unchanged."""
    good = [good_member_line(ctx) for _ in range(data.draw(st.integers(0, 2), label="recorded lines before"))]
    if good:
        earlier = ctx.cli("import", "-", input=b"\n".join(good) + b"\n")
        assert earlier.exit_code == 0, earlier.stderr
    bad, expect = data.draw(hostile_import_line(ctx), label="bad line")
    after = [good_member_line(ctx)] if data.draw(st.booleans(), label="a good line after") else []
    result = attempt(ctx.cli, ["import", "-"], expect, input=b"\n".join([*good, bad, *after]) + b"\n")
    message = result.stderr.splitlines()[-1]
    assert f": line {len(good) + 1}: " in message, message[:300]


def test_import_stops_at_the_first_bad_line_and_keeps_the_lines_before_it(ctx: Ctx) -> None:
    before = ctx.cli.export()
    good = [good_member_line(ctx), good_member_line(ctx)]
    last = good_member_line(ctx)
    bad = line("bid.place", {"listing": "L-SEALED", "bidder": "zte", "amount": 1.5}, "cmd-float")
    result = ctx.cli("import", "-", input=b"\n".join([*good, bad, last]) + b"\n")
    assert result.exit_code == 2, result.stderr
    assert "Traceback" not in result.output
    assert result.stderr.splitlines()[-1].startswith("error: InvalidInput: line 3: amount:"), result.stderr
    kept = ctx.cli.export()
    assert kept.startswith(before) and kept.count("\n") == before.count("\n") + 2
    assert '\\"member_id\\":\\"imp-' in kept[len(before) :]
    assert json.loads(last)["args"]["id"] not in kept


def test_a_rejected_import_prints_exactly_one_error_line(ctx: Ctx) -> None:
    before = ctx.cli.export()
    result = ctx.cli("import", "-", input="[1, 2]\n")
    assert result.exit_code == 2
    assert ctx.cli.export() == before
    assert len(result.stderr.splitlines()) == 1, f"more than the error line on stderr: {result.stderr!r}"
    assert result.stderr.startswith("error: InvalidInput: line 1: json:"), result.stderr


@pytest.mark.parametrize(
    "value", [[{"a": 1}], [5], [None], [["x"]], {"a": 1}], ids=["object", "number", "null", "list", "bare-object"]
)
@pytest.mark.parametrize("command", ["licence.grant", "listing.open"])
def test_import_rejects_a_field_of_use_that_is_not_a_string(ctx: Ctx, command: str, value: Any) -> None:
    args = {**IMPORT_BASE[command], "field": value}
    attempt(ctx.cli, ["import", "-"], INVALID, input=line(command, args, "cmd-field") + b"\n")


# --------------------------------------------------------------------------- who may issue each writing command


@dataclass(frozen=True)
class Guarded:
    argv: tuple[str, ...]
    intruder: str  # huawei, acting for another member, gets this error
    rightful: str  # who may issue it
    now: str = T0


GUARDED: dict[str, Guarded] = {
    "member.add": Guarded(("member", "add", "newco", "--name", "New Co", "--kind", "enterprise", "--country", "CN"),
                          "NotAuthorised", "operator"),
    "member.suspend": Guarded(("member", "suspend", "zte", "--reason", "dues"), "NotAuthorised", "operator"),
    "member.reinstate": Guarded(("member", "reinstate", "tju"), "NotAuthorised", "operator"),
    "asset.register": Guarded(("asset", "register", "CN/patent/ZL209900000009.9", "--title", "Fudan's",
                               "--owner", "fudan-univ", "--effective", "2020-01-01"), "NotAuthorised", "fudan-univ"),
    "asset.assign": Guarded(("asset", "assign", PATENT, "--to", "huawei"), "NotOwner", "fudan-univ"),
    "asset.consent": Guarded(("asset", "consent", A_CO, "--member", "fudan-univ", "--act", "assignment"),
                             "NotAuthorised", "fudan-univ"),
    "listing.open": Guarded(("listing", "open", PATENT, "--type", "assignment", "--mechanism", "sealed",
                             "--currency", "CNY", "--closes", CLOSES), "NotOwner", "fudan-univ"),
    "listing.withdraw": Guarded(("listing", "withdraw", "L-SEALED"), "NotOwner", "sjtu"),
    "listing.close": Guarded(("listing", "close", "L-SHORT"), "NotOwner", "sjtu", now=AFTER_SHORT),
    "bid.place": Guarded(("bid", "place", "L-SEALED", "--bidder", "zte", "--amount", "200.00"), "NotAuthorised", "zte"),
    "bid.withdraw": Guarded(("bid", "withdraw", "B-ZTE"), "NotAuthorised", "zte"),
    "bid.accept": Guarded(("bid", "accept", "B-NEG"), "NotOwner", "cas-sippr"),
    "trade.settle": Guarded(("trade", "settle", "T-1", "--payment-ref", "PAY-1"), "NotAuthorised", "byd"),
    "trade.void": Guarded(("trade", "void", "T-1", "--reason", "buyer withdrew"), "NotAuthorised", "zte"),
    "licence.grant": Guarded(("licence", "grant", PATENT, "--licensee", "zte", "--type", "non_exclusive",
                              "--territory", "CN", "--field", "ALL", "--start", "2026-03-02", "--end", "2027-01-01"),
                             "NotOwner", "fudan-univ"),
    "licence.terminate": Guarded(("licence", "terminate", "LIC-1", "--reason", "breach"), "NotAuthorised",
                                 "fudan-univ"),
    "licence.surrender": Guarded(("licence", "surrender", "LIC-1"), "NotAuthorised", "sjtu"),
    "pledge.register": Guarded(("pledge", "register", PATENT, "--pledgee", "icbc-sh", "--amount", "1000000.00",
                                "--currency", "CNY", "--end", "2030-12-31"), "NotOwner", "fudan-univ"),
    "pledge.consent": Guarded(("pledge", "consent", "P-1", "--act", "assignment"), "NotAuthorised", "icbc-sh"),
    "pledge.release": Guarded(("pledge", "release", "P-1"), "NotAuthorised", "icbc-sh"),
    "pledge.enforce": Guarded(("pledge", "enforce", "P-1"), "NotAuthorised", "icbc-sh"),
    "token.issue": Guarded(("token", "issue", "zte"), "NotAuthorised", "operator"),
    "token.revoke": Guarded(("token", "revoke", "TK-1"), "NotAuthorised", "operator"),
}  # fmt: skip


def test_the_authorisation_table_covers_every_writing_command() -> None:
    assert set(GUARDED) == set(COMMANDS)


@pytest.mark.parametrize("command", sorted(GUARDED))
def test_an_auditor_cannot_issue_any_writing_command(world: Cli, command: str) -> None:
    g = GUARDED[command]
    attempt(world, g.argv, refused("NotAuthorised"), actor="auditor", now=g.now)


@pytest.mark.parametrize("command", sorted(GUARDED))
def test_a_member_cannot_act_for_another_member_but_the_rightful_actor_can(world: Cli, command: str) -> None:
    g = GUARDED[command]
    attempt(world, g.argv, refused(g.intruder), actor="huawei", now=g.now)
    attempt(world, g.argv, ACCEPTED, actor=g.rightful, now=g.now)


@pytest.mark.parametrize("command", sorted(GUARDED))
def test_an_unknown_actor_is_not_found(world: Cli, command: str) -> None:
    g = GUARDED[command]
    result = attempt(world, g.argv, NOT_FOUND, actor="nobody", now=g.now)
    assert "nobody" in result.stderr


@pytest.mark.parametrize("command", sorted(GUARDED))
def test_a_malformed_actor_is_invalid_input(world: Cli, command: str) -> None:
    g = GUARDED[command]
    result = attempt(world, g.argv, INVALID, actor="Bad Actor", now=g.now)
    assert "actor" in result.stderr


# --------------------------------------------------------------------------- hostile input the ledger mishandles today


@pytest.mark.parametrize(
    "argv",
    [
        ["member", "add", "fz-surrogate", "--name", "caf\udce9", "--kind", "enterprise", "--country", "CN"],
        ["asset", "register", "CN/patent/ZL209700000001.1", "--title", "\udcff", "--owner", "fudan-univ"],
        ["bid", "withdraw", "B\udcff"],
        ["trade", "settle", "T\udcff", "--payment-ref", "PAY-1"],
        ["book", "L\udcff"],
    ],
    ids=["member-name", "asset-title", "bid-id", "trade-id", "book-listing"],
)
def test_undecodable_argument_bytes_are_invalid_input_not_an_internal_error(world: Cli, argv: list[str]) -> None:
    """A shell passes bytes that are not UTF-8 as lone surrogates (surrogateescape)."""
    attempt(world, argv, INVALID)


@pytest.mark.parametrize(
    ("argv", "now"),
    [
        (options(["listing", "open"], {**LICENCE_LISTING, "--closes": "9999-12-31T23:59:59-05:00"}, [PATENT]), None),
        (["owner", PATENT, "--known-at", "9999-12-31T23:59:59-05:00"], None),
        (["owner", PATENT, "--known-at", "0001-01-01T00:00:00+05:00"], None),
        (
            ["member", "add", "fz-late", "--name", "Late", "--kind", "enterprise", "--country", "CN"],
            "9999-12-31T23:59:59-05:00",
        ),
    ],  # fmt: skip
    ids=["listing-closes", "known-at-max", "known-at-min", "IPLEDGER_NOW"],
)
def test_a_time_beyond_the_utc_range_is_invalid_input(world: Cli, argv: list[str], now: str | None) -> None:
    attempt(world, argv, INVALID, now=now)


def test_an_import_line_recorded_beyond_the_utc_range_is_invalid_input(world: Cli) -> None:
    bad = line("member.add", IMPORT_BASE["member.add"], "cmd-late", at="9999-12-31T23:59:59-05:00")
    result = attempt(world, ["import", "-"], INVALID, input=bad + b"\n")
    assert "line 1" in result.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["member", "add", "fz-del", "--name", "Co\x7fop", "--kind", "enterprise", "--country", "CN"],
        ["member", "add", "fz-nel", "--name", "first\x85second", "--kind", "enterprise", "--country", "CN"],
        ["asset", "register", "CN/patent/ZL209700000002.2", "--title", "\x9b2Jwiped", "--owner", "fudan-univ"],
        options(["licence", "grant"], {**LICENCE_GRANT, "--field": "\x00"}, [PATENT]),
        options(["licence", "grant"], {**LICENCE_GRANT, "--field": "esc\x1b[31mred"}, [PATENT]),
        options(["listing", "open"], {**LICENCE_LISTING, "--field": "bell\x07"}, [PATENT]),
    ],
    ids=["name-DEL", "name-NEL", "title-CSI", "licence-field-NUL", "licence-field-ESC", "listing-field-BEL"],
)
def test_a_text_or_field_of_use_with_a_control_character_is_invalid_input(world: Cli, argv: list[str]) -> None:
    attempt(world, argv, INVALID)


@pytest.mark.parametrize(
    "argv",
    [
        [
            "asset",
            "register",
            "CN/patent/ZL209700000003.3",
            "--title",
            "t",
            "--owner",
            "fudan-univ",
            "--effective",
            "2026-W10-1",
        ],
        ["owner", PATENT, "--as-of", "2026-W09-1"],
    ],
    ids=["effective", "as-of"],
)
def test_a_date_is_yyyy_mm_dd_not_an_iso_week_date(world: Cli, argv: list[str]) -> None:
    attempt(world, argv, INVALID)


@pytest.mark.parametrize(
    "argv",
    [
        ["bid", "place", "L-SEALED", "--bidder", "zte", "--amount", "\u0661\u0665\u0660"],
        ["bid", "place", "L-SEALED", "--bidder", "zte", "--amount", "\uff11\uff15\uff10.00"],
        ["asset", "register", "CN/patent/ZL209700000004.4", "--title", "t", "--owner", "fudan-univ=\uff11"],
        options(["listing", "open"], {**LICENCE_LISTING, "--extend-minutes": "\u0665"}, [PATENT]),
    ],
    ids=["arabic-indic-amount", "fullwidth-amount", "fullwidth-share", "arabic-indic-minutes"],
)
def test_amounts_shares_and_counts_take_ascii_digits_only(world: Cli, argv: list[str]) -> None:
    attempt(world, argv, INVALID)


@pytest.mark.parametrize(
    ("argv", "expect"),
    [
        (["book", "L-1\nerror: NotAuthorised: forged"], NOT_FOUND),
        (["projections", "rebuild", "ownership\nforged"], NOT_FOUND),
        (["owner", PATENT, "extra\rerror: Forged: line"], INVALID),
        (["owner", PATENT, "extra\u2028second"], INVALID),
    ],
    ids=["book-LF", "rebuild-LF", "extra-argument-CR", "extra-argument-LS"],
)
def test_an_error_never_echoes_a_raw_line_break(world: Cli, argv: list[str], expect: Expect) -> None:
    attempt(world, argv, expect)


def test_a_time_with_a_nul_and_trailing_junk_is_invalid_input(world: Cli) -> None:
    attempt(world, ["owner", PATENT, "--known-at", "2026-04-01T00:00:00Z\x00; DROP TABLE ipledger_events"], INVALID)


@pytest.mark.parametrize("url", [SQL, "nosuch://x"], ids=["sql", "unknown-dialect"])
def test_an_unusable_store_url_is_a_contract_error_not_an_internal_error(world: Cli, url: str) -> None:
    attempt(world, ["--db", url, "owner", PATENT], (INVALID, Expect(5, "StoreUnavailable")))


def test_export_until_a_position_beyond_the_log_exports_the_whole_log(world: Cli) -> None:
    result = attempt(world, ["export", "--until", "99999999999999999999"], READ)
    assert result.stdout == world.export()
