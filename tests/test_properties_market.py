"""Property tests of the market at the application level (Ledger on a fresh SQLite file).

A Hypothesis state machine issues random sequences of market commands — co-owned assets
with fractional shares, backdated assignments, listings of all four mechanisms, bids by
random bidders, withdrawals, acceptances, closes, settlements, voids, repeated
settlements, pledges and their enforcement — as random actors (the operator, members
acting for themselves or for others, the auditor). Rejections (`LedgerError`) are
expected; each one must leave the exported log byte-identical and record no command.
After every sequence the title, trade and audit invariants must hold.

Plain examples below pin down rules on backdated settlements and pledges found along the way.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule, run_state_machine_as_test

from ipledger.domain.errors import InvalidInput, LedgerError
from ipledger.domain.pledges import Pledge
from ipledger.domain.trades import Trade
from ipledger.domain.values import parse_time
from ipledger.service import Ledger
from tests.conftest import MEMBERS, PATENT, Market

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
EARLIEST = date(2016, 1, 1)
MEMBER_IDS = [member for member, _, _ in MEMBERS]
BANKS = [member for member, _, kind in MEMBERS if kind == "financial_institution"]
DIRECT_KINDS = {"assignment", "merger", "name_change", "correction"}
CONVEYED = "domain.assets:Asset.Conveyed"
REGISTERED = "domain.assets:Asset.Registered"
PLEDGE_ATTACHED = "domain.assets:Asset.PledgeAttached"
PLEDGE_DETACHED = "domain.assets:Asset.PledgeDetached"
SETTLED = "domain.trades:Trade.Settled"
VOIDED = "domain.trades:Trade.Voided"

# No shrinking: every step writes to a database, so shrinking a 60-step history can take
# Hypothesis's full five minutes. A failure is reported as generated; the assertion names the
# asset, event position and command id involved.
MACHINE_SETTINGS = settings(
    max_examples=25,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def share_total(owner_doc: dict[str, Any]) -> Fraction:
    return sum((Fraction(o["share"]) for o in owner_doc["owners"]), Fraction(0))


@st.composite
def owner_specs(draw: st.DrawFn) -> list[str]:
    """1–3 owners with random exact shares (`m=2/7`, sometimes `m=0.25`); now and then a bad sum."""
    count = draw(st.integers(1, 3))
    members = draw(st.lists(st.sampled_from(MEMBER_IDS), min_size=count, max_size=count, unique=True))
    if count == 1 and draw(st.booleans()):
        return members
    weights = draw(st.lists(st.integers(1, 6), min_size=count, max_size=count))
    broken = draw(st.sampled_from([False] * 7 + [True]))
    total = sum(weights) + (1 if broken else 0)
    specs = []
    for member, weight in zip(members, weights, strict=True):
        share = Fraction(weight, total)
        decimal = Decimal(share.numerator) / Decimal(share.denominator)
        exact_decimal = Fraction(decimal) == share and len(str(decimal)) <= 8
        as_decimal = exact_decimal and share != 1 and draw(st.booleans())
        specs.append(f"{member}={decimal}" if as_decimal else f"{member}={share}")
    return specs


def amounts(currency: str) -> st.SearchStrategy[str]:
    whole = st.integers(1, 40).map(lambda n: n * 1000)
    if currency == "JPY":
        return whole.map(str)
    return st.tuples(whole, st.sampled_from([0, 0, 0, 50, 99])).map(lambda p: f"{p[0]}.{p[1]:02d}")


class MarketMachine(RuleBasedStateMachine):
    """Random market commands against a fresh ledger; invariants checked at the end."""

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="ipledger-props-"))
        self.ledger = Ledger(f"sqlite:///{self.folder}/ledger.db")
        self.now = START
        self.seq = 0
        self.accepted: dict[str, str] = {}  # command id -> command name
        self.history: list[tuple[str, str, dict[str, Any], str, dict[str, Any]]] = []
        self.assets: list[str] = []
        self.listings: list[str] = []
        self.bids: list[str] = []
        self.trades: list[str] = []
        self.settled: list[str] = []
        self.pledges: list[str] = []
        self.consents: list[str] = []
        self.ref_numbers = 0
        for member, name, kind in MEMBERS:
            admitted = self.attempt("member.add", {"id": member, "name": name, "kind": kind, "country": "CN"})
            assert admitted is not None

    # ------------------------------------------------------------------ plumbing

    def export(self) -> bytes:
        return b"\n".join(self.ledger.export())

    def attempt(self, name: str, args: dict[str, Any], actor: str = "operator") -> dict[str, Any] | None:
        """Execute one command; a rejection must leave the log and the command record untouched."""
        self.seq += 1
        command_id = f"cmd-{self.seq}"
        before = self.export()
        try:
            outcome = self.ledger.execute(name, args, actor=actor, command_id=command_id, now=stamp(self.now))
        except LedgerError as e:
            assert self.export() == before, f"rejected {name} ({e.name}: {e.message}) changed the log"
            assert self.ledger.exchange.recorded_outcome(command_id) is None, f"rejected {name} was recorded"
            return None
        self.accepted[command_id] = name
        self.history.append((command_id, name, args, actor, outcome))
        return outcome

    def actor(self, data: st.DataObject, *likely: str) -> str:
        """Mostly someone entitled (the operator or the party itself), sometimes any member, or the auditor."""
        who = data.draw(st.sampled_from(["operator"] * 3 + ["party"] * 3 + ["anyone", "auditor"]), label="actor")
        if who == "party" and likely:
            return data.draw(st.sampled_from(likely), label="party")
        if who == "anyone":
            return data.draw(st.sampled_from(MEMBER_IDS), label="member")
        return "auditor" if who == "auditor" else "operator"

    def effective(self, data: st.DataObject) -> str | None:
        """Usually the recorded date or a backdated one; now and then (wrongly) tomorrow."""
        latest = self.now.date() + timedelta(days=data.draw(st.sampled_from([0] * 9 + [1]), label="future"))
        day = data.draw(st.one_of(st.none(), st.dates(EARLIEST, latest)), label="effective")
        return None if day is None else day.isoformat()

    def owners_of(self, ref: str) -> list[str]:
        return sorted(self.ledger.exchange.asset(ref).owners)

    def pick_listing(self, data: st.DataObject) -> str:
        """Usually a listing still taking bids; sometimes any listing, ended or not."""
        live = [
            lid
            for lid in self.listings
            if (listing := self.ledger.exchange.listing(lid)).status == "open" and self.now < listing.closes_at
        ]
        any_listing = not live or data.draw(st.sampled_from([False] * 3 + [True]), label="any listing")
        return data.draw(st.sampled_from(self.listings if any_listing else live), label="listing")

    def pick_consents(self, data: st.DataObject) -> list[str]:
        if not self.consents:
            return []
        return data.draw(st.lists(st.sampled_from(self.consents), max_size=2, unique=True), label="consent")

    # ------------------------------------------------------------------ seed

    @initialize(data=st.data())
    def seed_assets(self, data: st.DataObject) -> None:
        """One solely owned and one co-owned asset, so the market has something to trade from the first step."""
        for owners in (
            [data.draw(st.sampled_from(MEMBER_IDS), label="sole owner")],
            data.draw(owner_specs().filter(lambda o: len(o) > 1 and self.valid_shares(o)), label="co-owners"),
        ):
            ref = self.new_ref(data, "2019")
            effective = data.draw(st.dates(EARLIEST, self.now.date()), label="registered").isoformat()
            args = {"ref": ref, "title": "Seed invention", "owner": owners, "effective": effective}
            assert self.attempt("asset.register", args) is not None
            self.assets.append(ref)

    def new_ref(self, data: st.DataObject, year: str) -> str:
        """A new patent, CN or US: a CN patent carries one pledge at a time and states its end (jurisdictions.md),
        a US patent several at once, ends optional."""
        self.ref_numbers += 1
        if data.draw(st.sampled_from(["CN", "CN", "US"]), label="jurisdiction") == "CN":
            return f"CN/patent/ZL{year}{self.ref_numbers:08d}.X"
        return f"US/patent/{year}{self.ref_numbers:04d}"

    @staticmethod
    def valid_shares(specs: list[str]) -> bool:
        return sum((Fraction(spec.partition("=")[2]) for spec in specs), Fraction(0)) == 1

    # ------------------------------------------------------------------ time

    @rule(minutes=st.sampled_from([1, 15, 120, 720, 1440, 3 * 1440, 8 * 1440]))
    def advance_clock(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)

    # ------------------------------------------------------------------ assets

    @rule(data=st.data())
    def register_asset(self, data: st.DataObject) -> None:
        if self.assets and data.draw(st.sampled_from([False] * 6 + [True]), label="reuse ref"):
            ref = data.draw(st.sampled_from(self.assets), label="ref")
        else:
            ref = self.new_ref(data, "2020")
        owners = data.draw(owner_specs(), label="owners")
        expires = data.draw(
            st.sampled_from([None, None, "2045-12-31", (self.now + timedelta(days=10)).date().isoformat()]),
            label="expires_on",
        )
        args = {"ref": ref, "title": "Random invention", "owner": owners, "effective": self.effective(data)}
        if expires is not None:
            args["expires_on"] = expires
        first_owner = owners[0].partition("=")[0]
        outcome = self.attempt("asset.register", args, actor=self.actor(data, first_owner))
        if outcome is not None:
            self.assets.append(ref)

    @precondition(lambda self: self.assets)
    @rule(data=st.data())
    def assign_asset(self, data: st.DataObject) -> None:
        ref = data.draw(st.sampled_from(self.assets), label="ref")
        args: dict[str, Any] = {
            "ref": ref,
            "to": data.draw(owner_specs(), label="to"),
            "conveyance": data.draw(st.sampled_from(sorted(DIRECT_KINDS)), label="conveyance"),
            "effective": self.effective(data),
            "consent": self.pick_consents(data),
        }
        self.attempt("asset.assign", args, actor=self.actor(data, *self.owners_of(ref)))

    @precondition(lambda self: self.assets)
    @rule(data=st.data())
    def co_owner_consents(self, data: st.DataObject) -> None:
        ref = data.draw(st.sampled_from(self.assets), label="ref")
        owners = self.owners_of(ref)
        member = data.draw(st.sampled_from(owners + MEMBER_IDS[:2]), label="member")
        act = data.draw(st.sampled_from(["assignment", "listing", "exclusive_licence", "pledge"]), label="act")
        self.attempt("asset.consent", {"ref": ref, "member": member, "act": act}, actor=self.actor(data, member))

    # ------------------------------------------------------------------ listings and bids

    @precondition(lambda self: self.assets)
    @rule(data=st.data())
    def open_listing(self, data: st.DataObject) -> None:
        ref = data.draw(st.sampled_from(self.assets), label="ref")
        kind = data.draw(st.sampled_from(["assignment"] * 4 + ["licence"]), label="type")
        mechanism = data.draw(st.sampled_from(["fixed", "english", "sealed", "negotiated"]), label="mechanism")
        currency = data.draw(st.sampled_from(["CNY", "CNY", "USD", "JPY"]), label="currency")
        minutes = data.draw(st.sampled_from([-10, 30, 240, 240, 1440, 4320]), label="closes in")
        args: dict[str, Any] = {
            "ref": ref,
            "type": kind,
            "mechanism": mechanism,
            "currency": currency,
            "closes": stamp(self.now + timedelta(minutes=minutes)),
            "settlement_days": data.draw(st.integers(1, 10), label="settlement_days"),
            "consent": self.pick_consents(data),
        }
        if mechanism == "fixed" or (mechanism != "sealed" and data.draw(st.booleans(), label="ask")):
            args["ask"] = data.draw(amounts(currency), label="ask")
        if mechanism in ("english", "sealed") and data.draw(st.booleans(), label="reserve"):
            args["reserve"] = data.draw(amounts(currency), label="reserve")
        if mechanism == "english":
            args["increment"] = data.draw(st.sampled_from(["1000", "500"]), label="increment")
            if data.draw(st.booleans(), label="anti-sniping"):
                args["extend_minutes"] = data.draw(st.sampled_from([5, 60]), label="extend_minutes")
        if kind == "licence":
            args["licence_type"] = data.draw(st.sampled_from(["exclusive", "sole", "non_exclusive"]))
            args["territory"] = data.draw(st.sampled_from([["CN"], ["WORLD"], ["US", "CN"]]), label="territory")
            args["field"] = data.draw(st.sampled_from([["ALL"], ["batteries"]]), label="field")
            args["term_start"] = self.now.date().isoformat()
            args["term_end"] = "2035-01-01"
        outcome = self.attempt("listing.open", args, actor=self.actor(data, *self.owners_of(ref)))
        if outcome is not None:
            self.listings.append(outcome["id"])

    @precondition(lambda self: self.listings)
    @rule(data=st.data())
    def place_bid(self, data: st.DataObject) -> None:
        listing_id = self.pick_listing(data)
        listing = self.ledger.exchange.listing(listing_id)
        bidder = data.draw(st.sampled_from(MEMBER_IDS), label="bidder")
        amount = data.draw(amounts(listing.currency), label="amount")
        args = {"listing": listing_id, "bidder": bidder, "amount": amount}
        outcome = self.attempt("bid.place", args, actor=self.actor(data, bidder))
        if outcome is not None:
            self.bids.append(outcome["id"])
            if "trade" in outcome:
                self.struck(data, outcome["trade"])

    @precondition(lambda self: self.listings)
    @rule(data=st.data())
    def bidding_round(self, data: st.DataObject) -> None:
        self.bid_up(data, self.pick_listing(data))

    def bid_up(self, data: st.DataObject, listing_id: str) -> list[str]:
        """Several bidders outbid each other on one listing (ascending, as in an auction room)."""
        listing = self.ledger.exchange.listing(listing_id)
        price = Decimal(listing.ask or 1000)
        placed = []
        for bidder in data.draw(st.lists(st.sampled_from(MEMBER_IDS), min_size=1, max_size=4), label="bidders"):
            price += Decimal(data.draw(st.sampled_from([0, 500, 1000, 3000]), label="raise"))
            amount = str(price) if listing.currency == "JPY" else f"{price:.2f}"
            args = {"listing": listing_id, "bidder": bidder, "amount": amount}
            outcome = self.attempt("bid.place", args, actor=self.actor(data, bidder))
            if outcome is not None:
                self.bids.append(outcome["id"])
                placed.append(outcome["id"])
                if "trade" in outcome:
                    self.struck(data, outcome["trade"])
        return placed

    @precondition(lambda self: self.assets)
    @rule(data=st.data())
    def market_round(self, data: st.DataObject) -> None:
        """A listing run to its end: opened, bid up, then a bid accepted (negotiated) or the listing closed."""
        opened = len(self.listings)
        self.open_listing(data)
        if len(self.listings) == opened:
            return
        listing_id = self.listings[-1]
        placed = self.bid_up(data, listing_id)
        listing = self.ledger.exchange.listing(listing_id)
        if listing.status != "open":
            return
        if listing.mechanism == "negotiated" and placed:
            self.accept(data, data.draw(st.sampled_from(placed), label="accepted bid"))
        else:
            self.now = max(self.now, listing.closes_at)
            self.close(data, listing_id)

    @precondition(lambda self: self.bids)
    @rule(data=st.data())
    def withdraw_bid(self, data: st.DataObject) -> None:
        bid_id = data.draw(st.sampled_from(self.bids), label="bid")
        bidder = self.ledger.exchange.listing_of_bid(bid_id).bids[bid_id].bidder
        self.attempt("bid.withdraw", {"bid": bid_id}, actor=self.actor(data, bidder))

    @precondition(lambda self: self.bids)
    @rule(data=st.data())
    def accept_bid(self, data: st.DataObject) -> None:
        self.accept(data, data.draw(st.sampled_from(self.bids), label="bid"))

    def accept(self, data: st.DataObject, bid_id: str) -> None:
        sellers = self.ledger.exchange.listing_of_bid(bid_id).sellers
        outcome = self.attempt("bid.accept", {"bid": bid_id}, actor=self.actor(data, *sellers))
        if outcome is not None:
            self.struck(data, outcome["trade"])

    @precondition(lambda self: self.listings)
    @rule(data=st.data())
    def withdraw_listing(self, data: st.DataObject) -> None:
        listing_id = data.draw(st.sampled_from(self.listings), label="listing")
        sellers = self.ledger.exchange.listing(listing_id).sellers
        self.attempt("listing.withdraw", {"listing": listing_id}, actor=self.actor(data, *sellers))

    @precondition(lambda self: self.listings)
    @rule(data=st.data())
    def close_listing(self, data: st.DataObject) -> None:
        listing_id = data.draw(st.sampled_from(self.listings), label="listing")
        listing = self.ledger.exchange.listing(listing_id)
        if data.draw(st.sampled_from([True, True, False]), label="wait for the close"):
            self.now = max(self.now, listing.closes_at)
        self.close(data, listing_id)

    def close(self, data: st.DataObject, listing_id: str) -> None:
        listing = self.ledger.exchange.listing(listing_id)
        outcome = self.attempt("listing.close", {"listing": listing_id}, actor=self.actor(data, *listing.sellers))
        if outcome is not None and "trade" in outcome:
            self.struck(data, outcome["trade"])

    # ------------------------------------------------------------------ trades

    def struck(self, data: st.DataObject, trade_id: str) -> None:
        """A new pending trade: often the payment is confirmed (or the deal voided) right away."""
        self.trades.append(trade_id)
        follow_up = data.draw(st.sampled_from(["settle", "settle", "settle", "void", "later"]), label="follow-up")
        if follow_up == "settle":
            self.settle(data, trade_id)
        elif follow_up == "void":
            self.void(data, trade_id)

    @precondition(lambda self: self.trades)
    @rule(data=st.data())
    def settle_trade(self, data: st.DataObject) -> None:
        self.settle(data, data.draw(st.sampled_from(self.trades), label="trade"))

    def settle(self, data: st.DataObject, trade_id: str) -> None:
        trade = self.ledger.exchange.trade(trade_id)
        args = {"trade": trade_id, "payment_ref": f"PAY-{self.seq}", "effective": self.effective(data)}
        outcome = self.attempt("trade.settle", args, actor=self.actor(data, *trade.sellers))
        if outcome is not None:
            self.settled.append(trade_id)

    @precondition(lambda self: self.settled)
    @rule(data=st.data())
    def settle_a_settled_trade_again(self, data: st.DataObject) -> None:
        trade_id = data.draw(st.sampled_from(self.settled), label="trade")
        args = {"trade": trade_id, "payment_ref": f"PAY-again-{self.seq}"}
        outcome = self.attempt("trade.settle", args, actor=self.actor(data))
        assert outcome is None, f"settled trade {trade_id} was settled a second time"

    @precondition(lambda self: self.trades)
    @rule(data=st.data())
    def void_trade(self, data: st.DataObject) -> None:
        self.void(data, data.draw(st.sampled_from(self.trades), label="trade"))

    def void(self, data: st.DataObject, trade_id: str) -> None:
        trade = self.ledger.exchange.trade(trade_id)
        args = {"trade": trade_id, "reason": "payment not received"}
        self.attempt("trade.void", args, actor=self.actor(data, trade.buyer, *trade.sellers))

    # ------------------------------------------------------------------ pledges

    @precondition(lambda self: self.assets)
    @rule(data=st.data())
    def register_pledge(self, data: st.DataObject) -> None:
        ref = data.draw(st.sampled_from(self.assets), label="ref")
        pledgee = data.draw(st.sampled_from(BANKS * 3 + MEMBER_IDS), label="pledgee")
        start = data.draw(st.one_of(st.none(), st.dates(date(2024, 1, 1), self.now.date())), label="start")
        end = None  # mostly a term's end (a CN pledge must state one; some run past the asset's expiry)
        if data.draw(st.sampled_from([True] * 5 + [False]), label="states an end"):
            end = data.draw(st.dates(self.now.date() + timedelta(days=1), date(2047, 12, 31)), label="end")
        args: dict[str, Any] = {"ref": ref, "pledgee": pledgee}
        if start is not None:
            args["start"] = start.isoformat()
        if end is not None:
            args["end"] = end.isoformat()
        if data.draw(st.booleans(), label="secured amount"):
            args |= {"amount": "500000.00", "currency": "CNY"}
        in_force = list(self.ledger.exchange.asset(ref).pledge_ids)
        outcome = self.attempt("pledge.register", args, actor=self.actor(data, *self.owners_of(ref)))
        if outcome is not None:
            self.pledges.append(outcome["id"])
            if ref.startswith("CN/"):  # jurisdictions.md: one pledge at a time, with its end stated
                assert not in_force, f"{ref} took pledge {outcome['id']} while {in_force} was in force"
                assert end is not None, f"{ref} took pledge {outcome['id']} without an end"

    @precondition(lambda self: self.pledges)
    @rule(data=st.data())
    def pledgee_consents(self, data: st.DataObject) -> None:
        pledge_id = data.draw(st.sampled_from(self.pledges), label="pledge")
        act = data.draw(st.sampled_from(["assignment", "licence", "listing"]), label="act")
        pledgee = self.pledgee_of(pledge_id)
        outcome = self.attempt("pledge.consent", {"pledge": pledge_id, "act": act}, actor=self.actor(data, pledgee))
        if outcome is not None:
            self.consents.append(outcome["id"])

    @precondition(lambda self: self.pledges)
    @rule(data=st.data())
    def release_or_enforce_pledge(self, data: st.DataObject) -> None:
        pledge_id = data.draw(st.sampled_from(self.pledges), label="pledge")
        command = data.draw(st.sampled_from(["pledge.release", "pledge.enforce"]), label="command")
        args = {"pledge": pledge_id, "effective": self.effective(data)}
        self.attempt(command, args, actor=self.actor(data, self.pledgee_of(pledge_id)))

    def pledgee_of(self, pledge_id: str) -> str:
        return self.ledger.exchange.load(Pledge, pledge_id, "pledge", "pledge").pledgee

    # ------------------------------------------------------------------ idempotency

    @precondition(lambda self: self.history)
    @rule(data=st.data())
    def repeat_a_recorded_command(self, data: st.DataObject) -> None:
        command_id, name, args, actor, outcome = data.draw(st.sampled_from(self.history), label="repeat")
        before = self.export()
        again = self.ledger.execute(name, args, actor=actor, command_id=command_id, now=stamp(self.now))
        assert again == outcome, f"repeating {command_id} ({name}) gave a different outcome"
        assert self.export() == before, f"repeating {command_id} ({name}) wrote to the log"

    # ------------------------------------------------------------------ invariants

    def teardown(self) -> None:
        try:
            events = [self.decode(line) for line in self.ledger.export()]
            self.check_shares_sum_to_one()
            self.check_trades_resolve_once(events)
            self.check_title_moves_only_by_settlement_or_assignment(events)
            self.check_a_cn_patent_carries_one_pledge_at_a_time(events)
            self.ledger.verify()
        finally:
            self.ledger.close()
            shutil.rmtree(self.folder, ignore_errors=True)

    @staticmethod
    def decode(line: bytes) -> dict[str, Any]:
        event = orjson.loads(line)
        event["data"] = orjson.loads(event["state"])
        return event

    def check_shares_sum_to_one(self) -> None:
        """(a) For every asset, owner shares sum to exactly 1 at every date its title mentions, and now."""
        for ref in self.assets:
            conveyances = self.ledger.title(ref)["conveyances"]
            registered = next(date.fromisoformat(c["effective"]) for c in conveyances if c["kind"] == "registration")
            for conveyance in conveyances:
                total = sum((Fraction(s["share"]) for s in conveyance["shares"]), Fraction(0))
                assert total == 1, f"{ref}: conveyance at {conveyance['position']} gives shares summing to {total}"
            days = sorted({date.fromisoformat(c["effective"]) for c in conveyances} | {self.now.date()})
            known = sorted({parse_time(c["recorded"], "recorded") for c in conveyances})
            assert share_total(self.ledger.owner(ref)) == 1, f"{ref}: owner shares now do not sum to 1"
            for day in days:
                total = share_total(self.ledger.owner(ref, as_of=day))
                assert total == 1, f"{ref}: owner shares on {day} sum to {total}"
                for at in known:
                    if day < registered:
                        continue
                    total = share_total(self.ledger.owner(ref, as_of=day, known_at=at))
                    assert total == 1, f"{ref}: owner shares on {day} known at {at} sum to {total}"

    def check_trades_resolve_once(self, events: list[dict[str, Any]]) -> None:
        """(b) At most one Trade.Settled per trade, and never both Settled and Voided."""
        settled: dict[str, int] = {}
        resolved: dict[str, int] = {}
        for event in events:
            if event["topic"] in (SETTLED, VOIDED):
                trade = event["originator_id"]
                resolved[trade] = resolved.get(trade, 0) + 1
                if event["topic"] == SETTLED:
                    settled[trade] = settled.get(trade, 0) + 1
        assert all(n == 1 for n in settled.values()), f"trades settled more than once: {settled}"
        assert all(n == 1 for n in resolved.values()), f"trades resolved more than once: {resolved}"

    @staticmethod
    def check_a_cn_patent_carries_one_pledge_at_a_time(events: list[dict[str, Any]]) -> None:
        """(d) jurisdictions.md: at no position does a CN patent have two pledges attached."""
        refs = {e["originator_id"]: e["data"]["ref"] for e in events if e["topic"] == REGISTERED}
        attached: dict[str, set[str]] = {}
        for event in events:
            if event["topic"] not in (PLEDGE_ATTACHED, PLEDGE_DETACHED):
                continue
            ref = refs[event["originator_id"]]
            pledges = attached.setdefault(ref, set())
            if event["topic"] == PLEDGE_ATTACHED:
                pledges.add(event["data"]["pledge_id"])
            else:
                pledges.discard(event["data"]["pledge_id"])
            if ref.startswith("CN/"):
                assert len(pledges) <= 1, f"{ref} carries pledges {sorted(pledges)} at position {event['position']}"

    def check_title_moves_only_by_settlement_or_assignment(self, events: list[dict[str, Any]]) -> None:
        """(c) Every Asset.Conveyed comes from asset.assign / pledge.enforce, or a settlement in the same command;
        and every settled assignment trade conveyed the title to its buyer in that same command."""
        settlements = {(e["originator_id"], e["data"]["meta"]["command_id"]) for e in events if e["topic"] == SETTLED}
        conveyed_by_trade = {
            (str(Trade.create_id(e["data"]["trade"])), e["data"]["meta"]["command_id"]): e["data"]["to_owners"]
            for e in events
            if e["topic"] == CONVEYED and e["data"]["trade"] is not None
        }
        for trade_id in set(self.settled):
            trade = self.ledger.exchange.trade(trade_id)
            if trade.type != "assignment":
                continue
            key = next(k for k in settlements if k[0] == str(Trade.create_id(trade_id)))
            assert conveyed_by_trade.get(key) == {trade.buyer: "1"}, f"settled trade {trade_id} did not convey title"
        for event in events:
            if event["topic"] != CONVEYED:
                continue
            data = event["data"]
            command_id = data["meta"]["command_id"]
            issued_by = self.accepted.get(command_id)
            where = f"position {event['position']} ({data['kind']}, trade {data['trade']}, command {command_id})"
            if data["trade"] is None:
                if data["kind"] == "enforcement":
                    assert issued_by == "pledge.enforce", f"{where} was issued by {issued_by}"
                else:
                    assert data["kind"] in DIRECT_KINDS, f"{where}: not a direct conveyance kind"
                    assert issued_by == "asset.assign", f"{where} was issued by {issued_by}"
            else:
                trade = str(Trade.create_id(data["trade"]))
                assert issued_by == "trade.settle", f"{where} was issued by {issued_by}"
                assert (trade, command_id) in settlements, f"{where}: no Trade.Settled in the same command"


def test_random_market_histories_keep_title_trades_and_audit_intact() -> None:
    run_state_machine_as_test(MarketMachine, settings=MACHINE_SETTINGS)


# --------------------------------------------------------------------------- backdated rights
# Found while writing the machine above: effective dates of settlements and pledges are not
# checked against the asset's chain of title (docs/rules.md: "never before the asset's
# registration"). Plain examples, so a failure costs no shrinking.


def sell_patent(m: Market, acquired: str | None) -> str:
    """PATENT (fudan-univ, effective 2019-05-10), optionally assigned to sjtu effective `acquired`,
    sold at a fixed price to huawei: returns the pending trade."""
    if acquired is not None:
        m.do("asset.assign", ref=PATENT, to=["sjtu"], effective=acquired)
    listing = m.do(
        "listing.open",
        ref=PATENT,
        type="assignment",
        mechanism="fixed",
        currency="CNY",
        ask="1000.00",
        closes="2026-03-05T00:00:00Z",
    )
    return str(m.do("bid.place", listing=listing["id"], bidder="huawei", amount="1000.00")["trade"])


def assert_refused(m: Market, command: str, **args: Any) -> None:
    before = m.export()
    with pytest.raises(InvalidInput):
        m.do(command, **args)
    assert m.export() == before


@pytest.mark.parametrize("effective", ["2019-05-09", "2018-01-01", "2005-06-30"])
def test_a_settlement_cannot_take_effect_before_the_asset_was_registered(sqlite_market: Market, effective: str) -> None:
    trade = sell_patent(sqlite_market, acquired=None)
    assert_refused(sqlite_market, "trade.settle", trade=trade, payment_ref="PAY-1", effective=effective)


@pytest.mark.parametrize("effective", ["2019-05-10", "2022-07-01", "2023-12-31"])
def test_a_settlement_cannot_take_effect_before_the_seller_acquired_the_asset(
    sqlite_market: Market, effective: str
) -> None:
    """Settled that early, the title would show the previous owner conveying to the buyer, and the
    seller would still own the asset after being paid for it."""
    trade = sell_patent(sqlite_market, acquired="2024-01-01")
    assert_refused(sqlite_market, "trade.settle", trade=trade, payment_ref="PAY-1", effective=effective)


@pytest.mark.parametrize("effective", ["2024-01-01", "2025-02-03", "2026-03-02"])
def test_a_settlement_effective_on_or_after_the_sellers_acquisition_leaves_the_buyer_owning_the_asset(
    sqlite_market: Market, effective: str
) -> None:
    trade = sell_patent(sqlite_market, acquired="2024-01-01")
    sqlite_market.do("trade.settle", trade=trade, payment_ref="PAY-1", effective=effective)
    assert sqlite_market.ledger.owner(PATENT)["owners"] == [{"member": "huawei", "share": "1"}]


@pytest.mark.parametrize("start", ["2019-05-09", "2010-01-01"])
def test_a_pledge_cannot_start_before_the_asset_was_registered(sqlite_market: Market, start: str) -> None:
    assert_refused(sqlite_market, "pledge.register", ref=PATENT, pledgee="icbc-sh", start=start, end="2030-12-31")
