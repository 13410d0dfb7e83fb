"""A deterministic market history as import lines (shared/spec/bench.md workload).

Members (universities, enterprises, banks), assets, listings of all four mechanisms with
1–20 bids, closes, settlements and voids, licences with overlapping and disjoint scopes,
pledges with consents and releases, and direct assignments. The mix of conveyances
follows registries: most are plain assignments, then security interests and their
releases, then licences; mergers and name changes are rarer. The generator tracks the
market's state so every line it writes is accepted.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

TERRITORIES = ["CN", "US", "DE", "JP", "KR", "FR", "GB", "IN"]
FIELDS = ["batteries", "telecom", "automotive", "medical", "consumer electronics"]
KINDS = ["patent", "patent", "patent", "utility_model", "design", "trademark", "software_copyright"]
JURISDICTIONS = ["CN", "CN", "US", "EP", "JP"]
#: CN patent rights (rules CN): one pledge in force at a time, with a term within the patent's.
CN_PATENTS = frozenset({"patent", "utility_model", "design"})
EXPIRES = "2045-12-31"


@dataclass
class AssetState:
    ref: str
    owner: str
    registered: str
    pledges: list[str] = field(default_factory=list)  # in force, oldest first
    licences: list[tuple[str, str]] = field(default_factory=list)  # (type, territory)


class Market:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.at = datetime(2015, 1, 5, 9, 0, tzinfo=UTC)
        self.n = 0
        self.events = 0
        self.universities: list[str] = []
        self.enterprises: list[str] = []
        self.banks: list[str] = []
        self.assets: list[AssetState] = []

    def line(self, command: str, events: int, **args: Any) -> bytes:
        self.n += 1
        self.at += timedelta(seconds=self.rng.randint(20, 120))
        self.events += events
        doc = {
            "command": command,
            "args": {k: v for k, v in args.items() if v is not None},
            "command_id": f"bench-{self.n}",
            "actor": "operator",
            "at": self.at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        return orjson.dumps(doc)

    def today(self) -> str:
        return self.at.date().isoformat()

    # ------------------------------------------------------------------ steps

    def member(self, kind: str) -> Iterator[bytes]:
        pool = {"university": self.universities, "enterprise": self.enterprises, "financial_institution": self.banks}[
            kind
        ]
        mid = f"{kind[:3]}-{len(pool) + 1}"
        pool.append(mid)
        yield self.line("member.add", 1, id=mid, name=f"Member {mid}", kind=kind, country=self.rng.choice(TERRITORIES))

    def register(self) -> Iterator[bytes]:
        kind = self.rng.choice(KINDS)
        jurisdiction = self.rng.choice(JURISDICTIONS)
        ref = f"{jurisdiction}/{kind}/{self.number(jurisdiction, kind, len(self.assets) + 1)}"
        owner = self.rng.choice(self.universities + self.enterprises)
        registered = (self.at.date() - timedelta(days=self.rng.randint(0, 900))).isoformat()
        self.assets.append(AssetState(ref, owner, registered))
        yield self.line(
            "asset.register",
            1,
            ref=ref,
            title=f"Invention {len(self.assets)}",
            owner=[owner],
            effective=registered,
            expires_on=EXPIRES,
        )

    def number(self, jurisdiction: str, kind: str, n: int) -> str:
        """Each office's own numbers, in their canonical spelling (rules CN, rules US)."""
        if jurisdiction == "US":
            return {"patent": f"{7000000 + n}", "design": f"D{700000 + n}"}.get(kind, f"US{n:07d}")
        if jurisdiction == "CN" and kind in CN_PATENTS:
            return f"ZL{2010 + self.rng.randint(0, 14)}{n:08d}.{self.rng.randint(0, 9)}"
        return f"{jurisdiction}{n:07d}"

    def consents(self, a: AssetState, act: str) -> Iterator[tuple[bytes, str]]:
        for pledge_id in a.pledges:
            consent = f"{pledge_id}-c{self.n}"
            yield self.line("pledge.consent", 1, pledge=pledge_id, act=act, id=consent), consent

    def assign(self, conveyance: str = "assignment") -> Iterator[bytes]:
        a = self.rng.choice(self.assets)
        to = self.rng.choice([m for m in self.enterprises if m != a.owner])
        used = []
        for line, consent in self.consents(a, "assignment"):
            used.append(consent)
            yield line
        yield self.line(
            "asset.assign", 1 + len(a.pledges), ref=a.ref, to=[to], conveyance=conveyance, consent=used or None
        )
        a.owner = to

    def pledge(self) -> Iterator[bytes]:
        """CN patents take one pledge at a time, for a term within the patent's; elsewhere
        security interests stack (ranked) and, as in US records, often state no term."""
        a = self.rng.choice(self.assets)
        jurisdiction, kind, _ = a.ref.split("/", 2)
        cn_patent = jurisdiction == "CN" and kind in CN_PATENTS
        if cn_patent and a.pledges:
            return
        bank = self.rng.choice(self.banks)
        pledge_id = f"P-{self.n + 1}"
        amount = f"{self.rng.randint(100, 90000) * 1000}.00"
        currency = "USD" if jurisdiction == "US" else "CNY"
        end = None
        if cn_patent or self.rng.random() < 0.3:
            end = (self.at.date() + timedelta(days=self.rng.randint(365, 5 * 365))).isoformat()
        yield self.line(
            "pledge.register", 2, ref=a.ref, pledgee=bank, amount=amount, currency=currency, end=end, id=pledge_id
        )
        a.pledges.append(pledge_id)

    def release(self) -> Iterator[bytes]:
        pledged = [a for a in self.assets if a.pledges]
        if not pledged:
            return
        a = self.rng.choice(pledged)
        pledge_id = a.pledges.pop(0)
        yield self.line("pledge.release", 2, pledge=pledge_id)

    def licence(self) -> Iterator[bytes]:
        a = self.rng.choice(self.assets)
        licensee = self.rng.choice([m for m in self.enterprises if m != a.owner])
        unlicensed = [t for t in TERRITORIES if all(lt != t for _, lt in a.licences)]
        exclusive = {t for kind, t in a.licences if kind == "exclusive"}
        if unlicensed and self.rng.random() < 0.3:
            kind, territory = "exclusive", self.rng.choice(unlicensed)
        else:
            open_territories = [t for t in TERRITORIES if t not in exclusive]
            if not open_territories:
                return
            kind, territory = "non_exclusive", self.rng.choice(open_territories)
        used = []
        for line, consent in self.consents(a, "licence"):
            used.append(consent)
            yield line
        start = max(a.registered, self.today())
        yield self.line(
            "licence.grant",
            2 + len(a.pledges),
            ref=a.ref,
            licensee=licensee,
            type=kind,
            territory=[territory],
            field=[self.rng.choice(FIELDS)],
            start=start,
            end="2040-01-01",
            consent=used or None,
        )
        a.licences.append((kind, territory))

    def listing(self) -> Iterator[bytes]:
        a = self.rng.choice(self.assets)
        mechanism = self.rng.choice(["fixed", "english", "english", "sealed", "negotiated"])
        listing_id = f"L-{self.n + 1}"
        used = []
        for line, consent in self.consents(a, "listing"):
            used.append(consent)
            yield line
        ask = self.rng.randint(50, 5000) * 1000
        # An hour outlasts the most bids a listing draws (20, at most 2 minutes apart), and keeps a
        # 1M-event history inside the past: with 12 hours it ran years past today (ClockAhead).
        closes = (self.at + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        args: dict[str, Any] = {
            "ref": a.ref,
            "type": "assignment",
            "mechanism": mechanism,
            "currency": "CNY",
            "closes": closes,
            "id": listing_id,
            "consent": used or None,
        }
        if mechanism in ("fixed", "english"):
            args["ask"] = f"{ask}.00"
        if mechanism == "english":
            args["increment"] = "1000.00"
        yield self.line("listing.open", 2 + len(a.pledges), **args)
        bidders = [m for m in self.enterprises if m != a.owner]
        trade_id = f"T-{self.n + 1}"
        winner: str | None = None
        if mechanism == "fixed":
            winner = self.rng.choice(bidders)
            yield self.line("bid.place", 5, listing=listing_id, bidder=winner, amount=f"{ask}.00", trade_id=trade_id)
        else:
            price = ask
            bids = []
            for _ in range(self.rng.randint(1, 20)):
                bidder = self.rng.choice(bidders)
                price += self.rng.randint(1, 20) * 1000
                bid_id = f"B-{self.n + 1}"
                bids.append((bid_id, bidder))
                yield self.line("bid.place", 2, listing=listing_id, bidder=bidder, amount=f"{price}.00", id=bid_id)
            if mechanism == "negotiated":
                bid_id, winner = bids[-1]
                yield self.line("bid.accept", 3, bid=bid_id, trade_id=trade_id)
            else:
                self.at = max(self.at, datetime.fromisoformat(closes.replace("Z", "+00:00")))
                winner = bids[-1][1]
                yield self.line("listing.close", 3, listing=listing_id, trade_id=trade_id)
        if self.rng.random() < 0.85:
            yield self.line("trade.settle", 2, trade=trade_id, payment_ref=f"CNAPS-{self.n}")
            a.owner = winner
        else:
            yield self.line("trade.void", 3, trade=trade_id, reason="payment not received")

    # ------------------------------------------------------------------ the mix

    def history(self, events: int) -> Iterator[bytes]:
        for _ in range(8):
            yield from self.member("university")
        for _ in range(30):
            yield from self.member("enterprise")
        for _ in range(6):
            yield from self.member("financial_institution")
        for _ in range(20):
            yield from self.register()
        steps = [
            (self.assign, 40),
            (self.register, 14),
            (self.pledge, 12),
            (self.release, 9),
            (self.listing, 12),
            (self.licence, 8),
            (lambda: self.assign("merger"), 2),
            (lambda: self.assign("name_change"), 1),
            (lambda: self.member(self.rng.choice(["university", "enterprise", "enterprise"])), 2),
        ]
        funcs = [f for f, _ in steps]
        weights = [w for _, w in steps]
        while self.events < events:
            yield from self.rng.choices(funcs, weights)[0]()


def generate(events: int, seed: int = 7) -> Iterator[bytes]:
    """Import lines whose commands record about `events` events."""
    return Market(seed).history(events)
