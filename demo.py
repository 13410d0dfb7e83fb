"""`ipledger demo`: a small market, end to end, in the current store.

Every demo command carries a fixed command id, so running the demo again on the same
store writes nothing new and prints the same market. Recorded times are pinned a
month back from today (or just after the last recorded event), one step per command,
so the English auction can close after its deadline in a single run.

The demo never mixes its market into someone's data: it builds in an empty store, runs
again in a store it built, and refuses any other store (`InvalidState`). With `--fresh`
a store that holds events is left as it is and the demo builds in a new SQLite file
beside it (`store_for_demo`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from ipledger.domain.errors import InvalidState
from ipledger.domain.values import format_time
from ipledger.service import Ledger

PATENT = "CN/patent/ZL201810012345.6"
PATENT_2 = "CN/patent/ZL201920054321.X"
TRADEMARK = "CN/trademark/12345678"
CO_OWNED = "CN/patent/ZL202010098765.4"


def _script(t: Any) -> list[tuple[str, str, dict[str, Any], str]]:
    """(command id, command, args, time) — a morning at the exchange."""
    members = [
        ("fudan-univ", "Fudan University", "university"),
        ("sjtu", "Shanghai Jiao Tong University", "university"),
        ("cas-sippr", "CAS Shanghai Institute of Process Research", "research_institute"),
        ("huawei", "Huawei Technologies Co., Ltd.", "enterprise"),
        ("zte", "ZTE Corporation", "enterprise"),
        ("byd", "BYD Company Limited", "enterprise"),
        ("icbc-sh", "ICBC Shanghai Branch", "financial_institution"),
    ]
    steps: list[tuple[str, str, dict[str, Any], str]] = []
    for mid, name, kind in members:
        steps.append(
            (f"demo-member-{mid}", "member.add", {"id": mid, "name": name, "kind": kind, "country": "CN"}, t(0))
        )
    steps += [
        (
            "demo-asset-1",
            "asset.register",
            {
                "ref": PATENT,
                "title": "Method for lithium-ion electrode coating",
                "owner": ["fudan-univ"],
                "expires_on": "2038-01-05",
            },
            t(1),
        ),
        (
            "demo-asset-2",
            "asset.register",
            {
                "ref": PATENT_2,
                "title": "Battery thermal-management valve",
                "owner": ["sjtu"],
                "expires_on": "2039-03-01",
            },
            t(1),
        ),
        ("demo-asset-3", "asset.register", {"ref": TRADEMARK, "title": "BLADECELL (class 9)", "owner": ["byd"]}, t(1)),
        (
            "demo-asset-4",
            "asset.register",
            {
                "ref": CO_OWNED,
                "title": "Catalyst for CO2 hydrogenation",
                "owner": ["fudan-univ=1/2", "cas-sippr=1/2"],
                "expires_on": "2040-02-10",
            },
            t(1),
        ),
        # An English auction with an increment, a reserve and anti-sniping.
        (
            "demo-listing-1",
            "listing.open",
            {
                "ref": PATENT,
                "type": "assignment",
                "mechanism": "english",
                "currency": "CNY",
                "ask": "180000.00",
                "increment": "5000.00",
                "reserve": "200000.00",
                "extend_minutes": 10,
                "closes": t(48),
                "id": "L-AUCTION",
            },
            t(2),
        ),
        (
            "demo-bid-1",
            "bid.place",
            {"listing": "L-AUCTION", "bidder": "huawei", "amount": "180000.00", "id": "B-1"},
            t(3),
        ),
        (
            "demo-bid-2",
            "bid.place",
            {"listing": "L-AUCTION", "bidder": "zte", "amount": "190000.00", "id": "B-2"},
            t(4),
        ),
        (
            "demo-bid-3",
            "bid.place",
            {"listing": "L-AUCTION", "bidder": "byd", "amount": "200000.00", "id": "B-3"},
            t(5),
        ),
        (
            "demo-bid-4",
            "bid.place",
            {"listing": "L-AUCTION", "bidder": "huawei", "amount": "210000.00", "id": "B-4"},
            t(6),
        ),
        (
            "demo-bid-5",
            "bid.place",
            {"listing": "L-AUCTION", "bidder": "zte", "amount": "225000.00", "id": "B-5"},
            t(7),
        ),
        # A fixed-price sale: the first bid at the ask wins at once.
        (
            "demo-listing-2",
            "listing.open",
            {
                "ref": PATENT_2,
                "type": "assignment",
                "mechanism": "fixed",
                "currency": "CNY",
                "ask": "350000.00",
                "closes": t(72),
                "id": "L-FIXED",
            },
            t(8),
        ),
        (
            "demo-bid-6",
            "bid.place",
            {"listing": "L-FIXED", "bidder": "byd", "amount": "350000.00", "id": "B-6", "trade_id": "T-FIXED"},
            t(9),
        ),
        ("demo-settle-1", "trade.settle", {"trade": "T-FIXED", "payment_ref": "CNAPS-2026-000117"}, t(10)),
        # A negotiated sale still taking offers: its book stays open.
        (
            "demo-listing-3",
            "listing.open",
            {
                "ref": TRADEMARK,
                "type": "assignment",
                "mechanism": "negotiated",
                "currency": "CNY",
                "ask": "80000.00",
                "closes": t(24 * 60),
                "id": "L-NEGOTIATED",
            },
            t(11),
        ),
        (
            "demo-bid-7",
            "bid.place",
            {"listing": "L-NEGOTIATED", "bidder": "zte", "amount": "60000.00", "id": "B-7"},
            t(12),
        ),
        (
            "demo-bid-8",
            "bid.place",
            {"listing": "L-NEGOTIATED", "bidder": "huawei", "amount": "72000.00", "id": "B-8"},
            t(13),
        ),
        (
            "demo-bid-9",
            "bid.place",
            {"listing": "L-NEGOTIATED", "bidder": "sjtu", "amount": "72000.00", "id": "B-9"},
            t(14),
        ),
        # IP financing: the co-owners pledge their patent to a bank; the bank consents to
        # one non-exclusive licence, which is then granted.
        (
            "demo-pledge-1",
            "pledge.register",
            {
                "ref": CO_OWNED,
                "pledgee": "icbc-sh",
                "amount": "5000000.00",
                "currency": "CNY",
                "end": "2031-03-31",  # a CN pledge states its term, within the patent's (rules CN)
                "id": "P-ICBC-1",
            },
            t(15),
        ),
        ("demo-consent-1", "pledge.consent", {"pledge": "P-ICBC-1", "act": "licence", "id": "C-ICBC-1"}, t(16)),
        (
            "demo-licence-1",
            "licence.grant",
            {
                "ref": CO_OWNED,
                "licensee": "huawei",
                "type": "non_exclusive",
                "territory": ["CN"],
                "field": ["catalysis"],
                "start": t(16)[:10],
                "end": "2030-12-31",
                "royalty_rate": "3.5",
                "consent": ["C-ICBC-1"],
                "id": "LIC-CATALYST-1",
            },
            t(17),
        ),
        # The auction closes after its deadline; the winner pays; title moves.
        ("demo-close-1", "listing.close", {"listing": "L-AUCTION", "trade_id": "T-AUCTION"}, t(49)),
        ("demo-settle-2", "trade.settle", {"trade": "T-AUCTION", "payment_ref": "CNAPS-2026-000342"}, t(50)),
    ]
    return steps


#: The demo's first command id: a store that has recorded it is the demo's own.
FIRST_COMMAND = _script(lambda _hours: "")[0][0]

#: How many `NAME-demo-N` files `--fresh` tries beside a store before it gives up.
MAX_SIBLINGS = 99


def store_for_demo(ledger: Ledger, fresh: bool) -> str:
    """The store the demo builds in: the ledger's own if it is empty or (without `fresh`)
    the demo built it; with `fresh`, a new SQLite file beside a store that holds events.
    Anything else is refused: the demo never writes into, moves or deletes a user's data."""
    held = int(ledger.digest()["position"])
    if held == 0:
        return ledger.url
    if fresh:
        return _beside(ledger.url, held)
    if ledger.exchange.recorded_at(FIRST_COMMAND) is not None:
        return ledger.url  # its own earlier demo: run again, write nothing
    raise InvalidState(
        f"db: {shown(ledger.url)} already holds {_events(held)}, not the demo's; the demo builds a fresh "
        "market: use an empty store (--db demo.db) or demo --fresh (a new file beside this one, which is left as it is)"
    )


def _beside(url: str, held: int) -> str:
    """The first of NAME-demo.db, NAME-demo-2.db, … next to a SQLite store that does not exist yet."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        raise InvalidState(
            f"db: {shown(url)} already holds {_events(held)}, and demo --fresh makes a new store only beside a "
            "SQLite file; create an empty database and name it with --db"
        )
    path = Path(parsed.database or "")
    for n in range(1, MAX_SIBLINGS + 1):
        candidate = path.with_name(f"{path.stem}-demo{'' if n == 1 else f'-{n}'}{path.suffix}")
        if not candidate.exists():
            return parsed.set(database=str(candidate)).render_as_string(hide_password=False)
    raise InvalidState(
        f"db: {path.stem}-demo{path.suffix} to {path.stem}-demo-{MAX_SIBLINGS}{path.suffix} all exist beside "
        f"{path}; remove some, or name an empty store with --db"
    )


def _events(n: int) -> str:
    return "1 event" if n == 1 else f"{n} events"


def shown(url: str) -> str:
    """A store's URL as it may be printed: without its password."""
    return make_url(url).render_as_string(hide_password=True)


def run_demo(ledger: Ledger) -> dict[str, Any]:
    now = datetime.now(UTC).replace(microsecond=0)
    last = ledger.exchange.last_recorded()
    # Run before on this store: the same times again, so every command is the same request
    # (a command id repeated with other arguments would be an IdempotencyConflict).
    start = ledger.exchange.recorded_at(FIRST_COMMAND)
    if start is None:
        start = now - timedelta(days=30)
        if last is not None and start <= last:
            start = last + timedelta(seconds=1)

    def t(hours: int) -> str:
        return format_time(start + timedelta(hours=hours))

    for command_id, name, args, at in _script(t):
        ledger.execute(name, args, command_id=command_id, now=at)

    books = [ledger.book("L-AUCTION"), ledger.book("L-FIXED"), ledger.book("L-NEGOTIATED")]
    owners = [ledger.owner(ref) for ref in (PATENT, PATENT_2, TRADEMARK, CO_OWNED)]
    title = ledger.title(PATENT)
    encumbrances = ledger.encumbrances(CO_OWNED, as_of=datetime.fromisoformat(t(50)[:10]).date())
    return {"books": books, "owners": owners, "title": title, "encumbrances": encumbrances}
