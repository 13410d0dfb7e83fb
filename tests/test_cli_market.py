"""The market through the command line (cli.md): members, assets, listings, bids, trades,
the queries owner/title/book/listings/holdings, and export/audit digest.

Every rejection is checked three ways: the exit code, the one-line
`error: <ErrorName>: <message>` on stderr, and a byte-for-byte unchanged event log.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import Result

from tests.cli_helpers import advance, assert_rejected, doc
from tests.conftest import PATENT, PATENT_2, T0, Cli

CLOSES = "2026-03-10T00:00:00Z"
AFTER_CLOSE = "2026-03-10T12:00:00Z"


# --------------------------------------------------------------------------- helpers


def assert_rejected_json(run: Cli, before: str, result: Result, code: int, name: str) -> str:
    """The `--json` error form: `{"error": Name, "message": ...}` on stderr, store unchanged."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    err = json.loads(result.stderr)
    assert set(err) == {"error", "message"}
    assert err["error"] == name
    assert isinstance(err["message"], str) and err["message"]
    assert run.export() == before
    return str(err["message"])


def open_listing(
    run: Cli,
    mechanism: str,
    *extra: str,
    ref: str = PATENT,
    currency: str = "CNY",
    closes: str = CLOSES,
    actor: str | None = None,
) -> str:
    out = doc(
        run.ok(
            "--json",
            "listing",
            "open",
            ref,
            "--type",
            "assignment",
            "--mechanism",
            mechanism,
            "--currency",
            currency,
            "--closes",
            closes,
            *extra,
            actor=actor,
        )
    )
    return str(out["id"])


def place(
    run: Cli, listing: str, bidder: str, amount: str, *extra: str, actor: str | None = None, now: str | None = None
) -> dict[str, Any]:
    if now is not None:
        advance(run, now)
    out: dict[str, Any] = doc(
        run.ok("--json", "bid", "place", listing, "--bidder", bidder, "--amount", amount, *extra, actor=actor)
    )
    return out


def owners(run: Cli, ref: str = PATENT, *extra: str) -> list[dict[str, str]]:
    out: list[dict[str, str]] = doc(run.ok("--json", "owner", ref, *extra))["owners"]
    return out


def book(run: Cli, listing: str, actor: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = doc(run.ok("--json", "book", listing, actor=actor))
    return out


def bidders(run: Cli, listing: str, actor: str | None = None) -> list[str]:
    return [b["bidder"] for b in book(run, listing, actor)["bids"]]


def register_patent_2(run: Cli, *owner: str) -> None:
    run.ok(
        "asset",
        "register",
        PATENT_2,
        "--title",
        "Battery separator film",
        *[f"--owner={o}" for o in owner],
        "--effective",
        "2020-01-15",
    )


def sold_fixed(run: Cli, trade_id: str = "T-fix") -> str:
    """A fixed-price listing of PATENT bought by huawei: a pending trade."""
    listing = open_listing(run, "fixed", "--ask", "800000.00")
    out = place(run, listing, "huawei", "800000.00", "--trade-id", trade_id)
    return str(out["trade"])


# --------------------------------------------------------------------------- members


def test_member_add_prints_the_member_id_as_json(run: Cli) -> None:
    out = doc(
        run.ok(
            "--json",
            "member",
            "add",
            "tsinghua",
            "--name",
            "Tsinghua University",
            "--kind",
            "university",
            "--country",
            "CN",
        )
    )
    assert out["id"] == "tsinghua"


def test_member_add_prints_the_plain_member_id(run: Cli) -> None:
    result = run.ok(
        "member", "add", "tsinghua", "--name", "Tsinghua University", "--kind", "university", "--country", "CN"
    )
    assert result.stdout.strip() == "tsinghua"


def test_member_add_with_an_existing_id_is_a_duplicate(run: Cli) -> None:
    before = run.export()
    result = run("member", "add", "huawei", "--name", "Huawei again", "--kind", "enterprise", "--country", "CN")
    assert_rejected(run, before, result, 1, "DuplicateId")


def test_only_the_operator_admits_members(run: Cli) -> None:
    before = run.export()
    result = run(
        "member", "add", "tsinghua", "--name", "Tsinghua", "--kind", "university", "--country", "CN", actor="huawei"
    )
    assert_rejected(run, before, result, 1, "NotAuthorised")


@pytest.mark.parametrize(
    ("member_id", "kind", "country", "field"),
    [
        ("Bad_ID", "university", "CN", "id"),
        ("tsinghua", "martian", "CN", "kind"),
        ("tsinghua", "university", "XX", "country"),
    ],
    ids=["bad-member-id", "unknown-kind", "unknown-country"],
)
def test_member_add_rejects_invalid_values(run: Cli, member_id: str, kind: str, country: str, field: str) -> None:
    before = run.export()
    result = run("member", "add", member_id, "--name", "Tsinghua", "--kind", kind, "--country", country)
    message = assert_rejected(run, before, result, 2, "InvalidInput")
    assert message.startswith(f"{field}:")


def test_member_add_without_its_name_is_a_usage_error(run: Cli) -> None:
    before = run.export()
    result = run("member", "add", "tsinghua", "--kind", "university", "--country", "CN")
    assert_rejected(run, before, result, 2, "InvalidInput")


def test_suspending_an_unknown_member_is_not_found(run: Cli) -> None:
    before = run.export()
    assert_rejected(run, before, run("member", "suspend", "nobody"), 1, "NotFound")


def test_suspended_member_cannot_bid(run: Cli) -> None:
    listing = open_listing(run, "sealed")
    run.ok("member", "suspend", "zte")
    before = run.export()
    result = run("bid", "place", listing, "--bidder", "zte", "--amount", "500000.00")
    assert_rejected(run, before, result, 1, "MemberSuspended")


def test_suspended_member_cannot_bid_for_itself(run: Cli) -> None:
    listing = open_listing(run, "sealed")
    run.ok("member", "suspend", "zte")
    before = run.export()
    result = run("bid", "place", listing, "--bidder", "zte", "--amount", "500000.00", actor="zte")
    assert_rejected(run, before, result, 1, "MemberSuspended")


def test_reinstated_member_can_bid_again(run: Cli) -> None:
    listing = open_listing(run, "sealed")
    run.ok("member", "suspend", "zte")
    run.ok("member", "reinstate", "zte")
    place(run, listing, "zte", "500000.00", "--id", "B-zte")
    assert bidders(run, listing) == ["zte"]


# --------------------------------------------------------------------------- assets


def test_registered_asset_is_owned_whole_by_its_single_owner(run: Cli) -> None:
    out = doc(run.ok("--json", "owner", PATENT))
    assert out == {"asset": PATENT, "as_of": None, "known_at": None, "owners": [{"member": "fudan-univ", "share": "1"}]}


def test_asset_register_prints_the_ref_as_its_id(run: Cli) -> None:
    out = doc(run.ok("--json", "asset", "register", PATENT_2, "--title", "Battery separator film", "--owner", "huawei"))
    assert out["id"] == PATENT_2


def test_co_owner_shares_are_reported_as_lowest_terms_fractions(run: Cli) -> None:
    register_patent_2(run, "fudan-univ=2/4", "sjtu=0.25", "zte=1/4")
    assert owners(run, PATENT_2) == [
        {"member": "fudan-univ", "share": "1/2"},
        {"member": "sjtu", "share": "1/4"},
        {"member": "zte", "share": "1/4"},
    ]


def test_registering_an_existing_ref_is_a_duplicate(run: Cli) -> None:
    before = run.export()
    result = run("asset", "register", PATENT, "--title", "Same patent again", "--owner", "zte")
    assert_rejected(run, before, result, 1, "DuplicateId")


@pytest.mark.parametrize(
    "ref",
    ["CN/patent", "XX/patent/123", "CN/gadget/123", "CN/patent/ZL 2018"],
    ids=["missing-number", "unknown-jurisdiction", "unknown-kind", "space-in-number"],
)
def test_asset_register_rejects_a_bad_ref(run: Cli, ref: str) -> None:
    before = run.export()
    result = run("asset", "register", ref, "--title", "Bad ref", "--owner", "zte")
    message = assert_rejected(run, before, result, 2, "InvalidInput")
    assert message.startswith("ref")


def test_asset_register_rejects_shares_not_summing_to_one(run: Cli) -> None:
    before = run.export()
    result = run("asset", "register", PATENT_2, "--title", "Film", "--owner", "fudan-univ=1/2", "--owner", "sjtu=1/3")
    assert_rejected(run, before, result, 2, "InvalidInput")


@pytest.mark.parametrize("day", ["2025-02-30", "2025-6-30", "30/06/2025"])
def test_asset_register_rejects_a_bad_effective_date(run: Cli, day: str) -> None:
    before = run.export()
    result = run("asset", "register", PATENT_2, "--title", "Film", "--owner", "zte", "--effective", day)
    message = assert_rejected(run, before, result, 2, "InvalidInput")
    assert "effective" in message


def test_asset_register_without_an_owner_is_a_usage_error(run: Cli) -> None:
    before = run.export()
    result = run("asset", "register", PATENT_2, "--title", "Film")
    assert_rejected(run, before, result, 2, "InvalidInput")


@pytest.mark.parametrize("query", ["owner", "title"])
def test_query_of_an_unknown_asset_is_not_found(run: Cli, query: str) -> None:
    before = run.export()
    assert_rejected(run, before, run(query, "CN/patent/ZL999999999999.9"), 1, "NotFound")


def test_query_with_a_bad_ref_is_invalid_input(run: Cli) -> None:
    before = run.export()
    assert_rejected(run, before, run("owner", "not-a-ref"), 2, "InvalidInput")


def test_owner_query_rejects_a_bad_as_of_date(run: Cli) -> None:
    before = run.export()
    assert_rejected(run, before, run("owner", PATENT, "--as-of", "2025-13-01"), 2, "InvalidInput")


def test_owner_as_of_a_date_follows_a_backdated_assignment(run: Cli) -> None:
    run.ok("asset", "assign", PATENT, "--to", "zte", "--effective", "2025-06-30")
    day_before = doc(run.ok("--json", "owner", PATENT, "--as-of", "2025-06-29"))
    on_the_day = doc(run.ok("--json", "owner", PATENT, "--as-of", "2025-06-30"))
    assert day_before["as_of"] == "2025-06-29"
    assert day_before["owners"] == [{"member": "fudan-univ", "share": "1"}]
    assert on_the_day["owners"] == [{"member": "zte", "share": "1"}]
    assert owners(run) == [{"member": "zte", "share": "1"}]


def test_owner_known_at_before_a_backdated_assignment_was_recorded_ignores_it(run: Cli) -> None:
    advance(run, "2026-03-05T09:00:00Z")
    run.ok("asset", "assign", PATENT, "--to", "zte", "--effective", "2025-06-30")
    out = doc(run.ok("--json", "owner", PATENT, "--as-of", "2025-07-01", "--known-at", "2026-03-04T00:00:00Z"))
    assert out["known_at"] is not None
    assert out["owners"] == [{"member": "fudan-univ", "share": "1"}]


def test_title_lists_conveyances_in_effective_date_order(run: Cli) -> None:
    run.ok("asset", "assign", PATENT, "--to", "zte", "--effective", "2025-06-30")
    conveyances = doc(run.ok("--json", "title", PATENT))["conveyances"]
    assert [(c["kind"], c["effective"], c["from"], c["to"], c["trade"]) for c in conveyances] == [
        ("registration", "2019-05-10", [], ["fudan-univ"], None),
        ("assignment", "2025-06-30", ["fudan-univ"], ["zte"], None),
    ]
    assert conveyances[1]["recorded"] == T0


def test_member_cannot_assign_an_asset_it_does_not_own(run: Cli) -> None:
    before = run.export()
    result = run("asset", "assign", PATENT, "--to", "huawei", actor="huawei")
    assert_rejected(run, before, result, 1, "NotOwner")


def test_assigning_an_unknown_asset_is_not_found(run: Cli) -> None:
    before = run.export()
    assert_rejected(run, before, run("asset", "assign", "CN/patent/ZL999999999999.9", "--to", "zte"), 1, "NotFound")


def test_suspended_member_cannot_receive_an_assignment(run: Cli) -> None:
    run.ok("member", "suspend", "zte")
    before = run.export()
    assert_rejected(run, before, run("asset", "assign", PATENT, "--to", "zte"), 1, "MemberSuspended")


def test_asset_in_an_open_assignment_listing_cannot_be_assigned(run: Cli) -> None:
    open_listing(run, "english", "--ask", "100000.00")
    before = run.export()
    assert_rejected(run, before, run("asset", "assign", PATENT, "--to", "zte"), 1, "AssetReserved")


def test_holdings_lists_every_asset_of_a_member_with_its_share(run: Cli) -> None:
    register_patent_2(run, "fudan-univ=1/3", "sjtu=2/3")
    out = doc(run.ok("--json", "holdings", "fudan-univ"))
    assert out["member"] == "fudan-univ"
    assert sorted(out["assets"], key=lambda a: a["asset"]) == sorted(
        [{"asset": PATENT, "share": "1"}, {"asset": PATENT_2, "share": "1/3"}], key=lambda a: a["asset"]
    )


def test_holdings_drop_an_asset_assigned_away(run: Cli) -> None:
    run.ok("asset", "assign", PATENT, "--to", "zte")
    assert doc(run.ok("--json", "holdings", "fudan-univ"))["assets"] == []
    assert doc(run.ok("--json", "holdings", "zte"))["assets"] == [{"asset": PATENT, "share": "1"}]


def test_holdings_of_an_unknown_member_is_not_found(run: Cli) -> None:
    before = run.export()
    assert_rejected(run, before, run("holdings", "nobody"), 1, "NotFound")


# --------------------------------------------------------------------------- listings


def test_listing_open_prints_a_generated_id_of_an_open_listing(run: Cli) -> None:
    out = doc(
        run.ok(
            "--json",
            "listing",
            "open",
            PATENT,
            "--type",
            "assignment",
            "--mechanism",
            "english",
            "--currency",
            "CNY",
            "--closes",
            CLOSES,
            "--ask",
            "100000.00",
        )
    )
    assert out["id"]
    listed = book(run, out["id"])
    assert (listed["listing"], listed["asset"], listed["mechanism"], listed["status"], listed["bids"]) == (
        out["id"],
        PATENT,
        "english",
        "open",
        [],
    )


def test_listing_open_uses_the_caller_chosen_id(run: Cli) -> None:
    out = doc(
        run.ok(
            "--json",
            "listing",
            "open",
            PATENT,
            "--type",
            "assignment",
            "--mechanism",
            "fixed",
            "--currency",
            "CNY",
            "--closes",
            CLOSES,
            "--ask",
            "800000.00",
            "--id",
            "L-2026-001",
        )
    )
    assert out["id"] == "L-2026-001"
    assert book(run, "L-2026-001")["status"] == "open"


def test_reused_listing_id_is_a_duplicate(run: Cli) -> None:
    register_patent_2(run, "huawei")
    listing = open_listing(run, "fixed", "--ask", "800000.00")
    before = run.export()
    result = run(
        "listing",
        "open",
        PATENT_2,
        "--type",
        "assignment",
        "--mechanism",
        "fixed",
        "--currency",
        "CNY",
        "--closes",
        CLOSES,
        "--ask",
        "800000.00",
        "--id",
        listing,
    )
    assert_rejected(run, before, result, 1, "DuplicateId")


def test_listing_open_rejects_an_unknown_currency(run: Cli) -> None:
    before = run.export()
    result = run(
        "listing",
        "open",
        PATENT,
        "--type",
        "assignment",
        "--mechanism",
        "fixed",
        "--currency",
        "XYZ",
        "--closes",
        CLOSES,
        "--ask",
        "800000.00",
    )
    message = assert_rejected(run, before, result, 2, "InvalidInput")
    assert message.startswith("currency")


def test_listing_open_rejects_a_bad_closing_time(run: Cli) -> None:
    before = run.export()
    result = run(
        "listing",
        "open",
        PATENT,
        "--type",
        "assignment",
        "--mechanism",
        "fixed",
        "--currency",
        "CNY",
        "--closes",
        "next tuesday",
        "--ask",
        "800000.00",
    )
    message = assert_rejected(run, before, result, 2, "InvalidInput")
    assert message.startswith("closes")


def test_listing_open_rejects_a_float_like_ask(run: Cli) -> None:
    before = run.export()
    result = run(
        "listing",
        "open",
        PATENT,
        "--type",
        "assignment",
        "--mechanism",
        "fixed",
        "--currency",
        "CNY",
        "--closes",
        CLOSES,
        "--ask",
        "8e5",
    )
    message = assert_rejected(run, before, result, 2, "InvalidInput")
    assert message.startswith("ask")


def test_listing_open_without_a_closing_time_is_a_usage_error(run: Cli) -> None:
    before = run.export()
    result = run(
        "listing",
        "open",
        PATENT,
        "--type",
        "assignment",
        "--mechanism",
        "fixed",
        "--currency",
        "CNY",
        "--ask",
        "800000.00",
    )
    assert_rejected(run, before, result, 2, "InvalidInput")


def test_owner_member_may_list_its_own_asset(run: Cli) -> None:
    listing = open_listing(run, "negotiated", actor="fudan-univ")
    assert book(run, listing)["status"] == "open"


def test_member_cannot_list_an_asset_it_does_not_own(run: Cli) -> None:
    before = run.export()
    result = run(
        "listing",
        "open",
        PATENT,
        "--type",
        "assignment",
        "--mechanism",
        "negotiated",
        "--currency",
        "CNY",
        "--closes",
        CLOSES,
        actor="huawei",
    )
    assert_rejected(run, before, result, 1, "NotOwner")


def test_listing_an_unknown_asset_is_not_found(run: Cli) -> None:
    before = run.export()
    result = run(
        "listing",
        "open",
        "CN/patent/ZL999999999999.9",
        "--type",
        "assignment",
        "--mechanism",
        "negotiated",
        "--currency",
        "CNY",
        "--closes",
        CLOSES,
    )
    assert_rejected(run, before, result, 1, "NotFound")


def test_second_open_assignment_listing_of_an_asset_is_rejected(run: Cli) -> None:
    open_listing(run, "negotiated")
    before = run.export()
    result = run(
        "listing",
        "open",
        PATENT,
        "--type",
        "assignment",
        "--mechanism",
        "fixed",
        "--currency",
        "CNY",
        "--closes",
        CLOSES,
        "--ask",
        "800000.00",
    )
    assert_rejected(run, before, result, 1, "AssetReserved")


def test_expired_asset_cannot_be_listed(run: Cli) -> None:
    run.ok(
        "asset",
        "register",
        PATENT_2,
        "--title",
        "Film",
        "--owner",
        "huawei",
        "--effective",
        "2006-01-10",
        "--expires-on",
        "2026-01-10",
    )
    before = run.export()
    result = run(
        "listing",
        "open",
        PATENT_2,
        "--type",
        "assignment",
        "--mechanism",
        "negotiated",
        "--currency",
        "CNY",
        "--closes",
        CLOSES,
    )
    assert_rejected(run, before, result, 1, "AssetExpired")


def test_listings_status_open_shows_only_open_listings(run: Cli) -> None:
    register_patent_2(run, "huawei")
    withdrawn = open_listing(run, "negotiated")
    still_open = open_listing(run, "sealed", ref=PATENT_2)
    run.ok("listing", "withdraw", withdrawn)
    listed = doc(run.ok("--json", "listings", "--status", "open"))["listings"]
    assert [(x["listing"], x["asset"], x["status"]) for x in listed] == [(still_open, PATENT_2, "open")]


def test_listings_without_a_status_shows_every_listing(run: Cli) -> None:
    register_patent_2(run, "huawei")
    withdrawn = open_listing(run, "negotiated")
    still_open = open_listing(run, "sealed", ref=PATENT_2)
    run.ok("listing", "withdraw", withdrawn)
    listed = doc(run.ok("--json", "listings"))["listings"]
    assert sorted((x["listing"], x["status"]) for x in listed) == sorted(
        [(withdrawn, "withdrawn"), (still_open, "open")]
    )


def test_listings_rejects_an_unknown_status(run: Cli) -> None:
    before = run.export()
    assert_rejected(run, before, run("listings", "--status", "bogus"), 2, "InvalidInput")


def test_withdrawn_listing_frees_the_asset_for_a_new_listing(run: Cli) -> None:
    first = open_listing(run, "fixed", "--ask", "800000.00")
    assert doc(run.ok("--json", "listing", "withdraw", first))["id"] == first
    assert book(run, first)["status"] == "withdrawn"
    second = open_listing(run, "negotiated")
    assert second != first
    assert book(run, second)["status"] == "open"


def test_withdrawn_listing_takes_no_bids(run: Cli) -> None:
    listing = open_listing(run, "negotiated")
    run.ok("listing", "withdraw", listing)
    before = run.export()
    result = run("bid", "place", listing, "--bidder", "zte", "--amount", "500000.00")
    assert_rejected(run, before, result, 1, "ListingNotOpen")


def test_withdrawing_an_unknown_listing_is_not_found(run: Cli) -> None:
    before = run.export()
    assert_rejected(run, before, run("listing", "withdraw", "L-missing"), 1, "NotFound")


def test_member_cannot_withdraw_a_listing_of_another_member(run: Cli) -> None:
    listing = open_listing(run, "negotiated")
    before = run.export()
    assert_rejected(run, before, run("listing", "withdraw", listing, actor="huawei"), 1, "NotOwner")


def test_closing_before_the_deadline_is_rejected_as_still_open(run: Cli) -> None:
    listing = open_listing(run, "english", "--ask", "100000.00")
    place(run, listing, "huawei", "100000.00")
    before = run.export()
    result = run("listing", "close", listing, now="2026-03-09T23:59:59Z")
    assert_rejected(run, before, result, 1, "ListingStillOpen")


def test_auction_without_a_bid_at_the_reserve_ends_unsold(run: Cli) -> None:
    listing = open_listing(run, "sealed", "--reserve", "900000.00")
    place(run, listing, "huawei", "500000.00")
    advance(run, AFTER_CLOSE)
    out = doc(run.ok("--json", "listing", "close", listing))
    assert out["id"] == listing
    assert out["status"] == "unsold"
    assert "trade" not in out
    assert book(run, listing)["status"] == "unsold"


def test_unsold_listing_frees_the_asset_for_a_new_listing(run: Cli) -> None:
    listing = open_listing(run, "english", "--ask", "100000.00")
    advance(run, AFTER_CLOSE)
    run.ok("listing", "close", listing)
    again = open_listing(run, "negotiated", closes="2026-03-20T00:00:00Z")
    assert book(run, again)["status"] == "open"


def test_closed_listing_cannot_be_closed_again(run: Cli) -> None:
    listing = open_listing(run, "english", "--ask", "100000.00")
    advance(run, AFTER_CLOSE)
    run.ok("listing", "close", listing)
    before = run.export()
    assert_rejected(run, before, run("listing", "close", listing), 1, "ListingNotOpen")


def test_closing_an_unknown_listing_is_not_found(run: Cli) -> None:
    before = run.export()
    assert_rejected(run, before, run("listing", "close", "L-missing"), 1, "NotFound")


def test_book_of_an_unknown_listing_is_not_found(run: Cli) -> None:
    before = run.export()
    assert_rejected(run, before, run("book", "L-missing"), 1, "NotFound")


# --------------------------------------------------------------------------- bids


def test_bid_place_prints_the_caller_chosen_bid_id(run: Cli) -> None:
    listing = open_listing(run, "sealed")
    out = place(run, listing, "huawei", "500000.00", "--id", "B-hw-1")
    assert out["id"] == "B-hw-1"
    assert "trade" not in out
    assert [b["id"] for b in book(run, listing)["bids"]] == ["B-hw-1"]


def test_reused_bid_id_is_a_duplicate(run: Cli) -> None:
    listing = open_listing(run, "sealed")
    place(run, listing, "huawei", "500000.00", "--id", "B-1")
    before = run.export()
    result = run("bid", "place", listing, "--bidder", "zte", "--amount", "600000.00", "--id", "B-1")
    assert_rejected(run, before, result, 1, "DuplicateId")


@pytest.mark.parametrize(
    ("amount", "currency"),
    [
        ("1e5", "CNY"),
        ("500000.001", "CNY"),
        ("500.5", "JPY"),
        ("1,000.00", "CNY"),
        ("0", "CNY"),
        ("-5.00", "CNY"),
        ("NaN", "CNY"),
        ("five", "CNY"),
    ],
    ids=["exponent", "three-decimals-cny", "decimals-jpy", "thousands-separator", "zero", "negative", "nan", "word"],
)
def test_bid_amount_must_be_a_positive_decimal_in_the_currency_minor_units(
    run: Cli, amount: str, currency: str
) -> None:
    listing = open_listing(run, "sealed", currency=currency)
    before = run.export()
    result = run("bid", "place", listing, "--bidder", "huawei", f"--amount={amount}")
    message = assert_rejected(run, before, result, 2, "InvalidInput")
    assert message.startswith("amount")


def test_bid_without_an_amount_is_a_usage_error_in_json(run: Cli) -> None:
    listing = open_listing(run, "sealed")
    before = run.export()
    result = run("--json", "bid", "place", listing, "--bidder", "huawei")
    assert_rejected_json(run, before, result, 2, "InvalidInput")


def test_bid_on_an_unknown_listing_is_not_found(run: Cli) -> None:
    before = run.export()
    result = run("bid", "place", "L-missing", "--bidder", "huawei", "--amount", "500000.00")
    assert_rejected(run, before, result, 1, "NotFound")


def test_bid_by_an_unknown_member_is_not_found(run: Cli) -> None:
    listing = open_listing(run, "sealed")
    before = run.export()
    result = run("bid", "place", listing, "--bidder", "nobody", "--amount", "500000.00")
    assert_rejected(run, before, result, 1, "NotFound")


def test_member_cannot_bid_for_another_member(run: Cli) -> None:
    listing = open_listing(run, "sealed")
    before = run.export()
    result = run("bid", "place", listing, "--bidder", "zte", "--amount", "500000.00", actor="huawei")
    assert_rejected(run, before, result, 1, "NotAuthorised")


def test_member_may_bid_for_itself(run: Cli) -> None:
    listing = open_listing(run, "sealed")
    place(run, listing, "huawei", "500000.00", actor="huawei")
    assert bidders(run, listing) == ["huawei"]


def test_auditor_cannot_write(run: Cli) -> None:
    listing = open_listing(run, "sealed")
    before = run.export()
    result = run("bid", "place", listing, "--bidder", "huawei", "--amount", "500000.00", actor="auditor")
    assert_rejected(run, before, result, 1, "NotAuthorised")


def test_auditor_cannot_admit_members(run: Cli) -> None:
    before = run.export()
    result = run(
        "member", "add", "tsinghua", "--name", "Tsinghua", "--kind", "university", "--country", "CN", actor="auditor"
    )
    assert_rejected(run, before, result, 1, "NotAuthorised")


def test_seller_cannot_bid_on_its_own_listing(run: Cli) -> None:
    listing = open_listing(run, "sealed")
    before = run.export()
    result = run("bid", "place", listing, "--bidder", "fudan-univ", "--amount", "500000.00")
    assert_rejected(run, before, result, 1, "SelfDealing")


def test_bid_before_the_listing_opens_is_rejected(run: Cli) -> None:
    listing = open_listing(run, "sealed", "--opens", "2026-03-05T00:00:00Z")
    before = run.export()
    result = run("bid", "place", listing, "--bidder", "huawei", "--amount", "500000.00")
    assert_rejected(run, before, result, 1, "ListingNotOpen")


def test_bid_at_or_after_the_close_is_rejected(run: Cli) -> None:
    listing = open_listing(run, "sealed")
    advance(run, CLOSES)
    before = run.export()
    result = run("bid", "place", listing, "--bidder", "huawei", "--amount", "500000.00")
    assert_rejected(run, before, result, 1, "ListingNotOpen")


def test_english_first_bid_must_meet_the_opening_price(run: Cli) -> None:
    listing = open_listing(run, "english", "--ask", "100000.00")
    before = run.export()
    result = run("bid", "place", listing, "--bidder", "huawei", "--amount", "99999.99")
    assert_rejected(run, before, result, 1, "BidTooLow")


def test_english_bid_must_beat_the_best_by_the_increment(run: Cli) -> None:
    listing = open_listing(run, "english", "--ask", "100000.00", "--increment", "5000.00")
    place(run, listing, "huawei", "100000.00")
    before = run.export()
    result = run("bid", "place", listing, "--bidder", "zte", "--amount", "104999.99")
    assert_rejected(run, before, result, 1, "BidTooLow")


def test_english_auction_bids_cannot_be_withdrawn(run: Cli) -> None:
    listing = open_listing(run, "english", "--ask", "100000.00")
    place(run, listing, "huawei", "100000.00", "--id", "B-en")
    before = run.export()
    assert_rejected(run, before, run("bid", "withdraw", "B-en"), 1, "BidNotWithdrawable")


def test_withdrawn_bid_leaves_the_order_book(run: Cli) -> None:
    listing = open_listing(run, "negotiated")
    place(run, listing, "huawei", "500000.00", "--id", "B-hw")
    place(run, listing, "zte", "600000.00", "--id", "B-zte")
    out = doc(run.ok("--json", "bid", "withdraw", "B-zte"))
    assert out["id"] == "B-zte"
    assert [b["id"] for b in book(run, listing)["bids"]] == ["B-hw"]


def test_member_cannot_withdraw_another_members_bid(run: Cli) -> None:
    listing = open_listing(run, "negotiated")
    place(run, listing, "zte", "600000.00", "--id", "B-zte")
    before = run.export()
    assert_rejected(run, before, run("bid", "withdraw", "B-zte", actor="huawei"), 1, "NotAuthorised")


@pytest.mark.parametrize("command", ["withdraw", "accept"])
def test_unknown_bid_is_not_found(run: Cli, command: str) -> None:
    before = run.export()
    assert_rejected(run, before, run("bid", command, "B-missing"), 1, "NotFound")


def test_order_book_is_price_then_time_ordered(run: Cli) -> None:
    listing = open_listing(run, "negotiated")
    # Equal prices: the later bid gets the alphabetically smaller id, so only time can order them.
    place(run, listing, "byd", "500000.00", "--id", "B-z1", now="2026-03-02T10:00:00Z")
    place(run, listing, "zte", "700000.00", "--id", "B-z2", now="2026-03-02T11:00:00Z")
    place(run, listing, "huawei", "500000.00", "--id", "B-a3", now="2026-03-02T12:00:00Z")
    place(run, listing, "sjtu", "700000.00", "--id", "B-a4", now="2026-03-02T13:00:00Z")
    place(run, listing, "cas-sippr", "600000.00", "--id", "B-m5", now="2026-03-02T14:00:00Z")
    bids = book(run, listing)["bids"]
    assert [(b["bidder"], b["amount"], b["placed"]) for b in bids] == [
        ("zte", "700000.00", "2026-03-02T11:00:00Z"),
        ("sjtu", "700000.00", "2026-03-02T13:00:00Z"),
        ("cas-sippr", "600000.00", "2026-03-02T14:00:00Z"),
        ("byd", "500000.00", "2026-03-02T10:00:00Z"),
        ("huawei", "500000.00", "2026-03-02T12:00:00Z"),
    ]


def _sealed_with_two_bids(run: Cli) -> str:
    listing = open_listing(run, "sealed", "--reserve", "100000.00")
    place(run, listing, "huawei", "300000.00", actor="huawei", now="2026-03-03T09:00:00Z")
    place(run, listing, "zte", "500000.00", actor="zte", now="2026-03-04T09:00:00Z")
    return listing


def test_sealed_bids_are_hidden_from_other_members_while_open(run: Cli) -> None:
    listing = _sealed_with_two_bids(run)
    assert bidders(run, listing, actor="huawei") == ["huawei"]
    assert bidders(run, listing, actor="zte") == ["zte"]
    assert bidders(run, listing, actor="sjtu") == []
    assert bidders(run, listing, actor="fudan-univ") == []


def test_sealed_bids_are_visible_to_operator_and_auditor_while_open(run: Cli) -> None:
    listing = _sealed_with_two_bids(run)
    assert bidders(run, listing, actor="operator") == ["zte", "huawei"]
    assert bidders(run, listing, actor="auditor") == ["zte", "huawei"]


def test_sealed_bids_are_visible_to_everyone_after_close(run: Cli) -> None:
    listing = _sealed_with_two_bids(run)
    advance(run, AFTER_CLOSE)
    run.ok("listing", "close", listing)
    for viewer in ("huawei", "zte", "sjtu"):
        assert bidders(run, listing, actor=viewer) == ["zte", "huawei"], viewer


def test_sealed_auction_goes_to_the_highest_bid(run: Cli) -> None:
    listing = _sealed_with_two_bids(run)
    advance(run, AFTER_CLOSE)
    out = doc(run.ok("--json", "listing", "close", listing, "--trade-id", "T-sealed"))
    assert (out["status"], out["trade"], out["winner"], out["price"]) == ("sold", "T-sealed", "zte", "500000.00")


def test_sealed_tie_goes_to_the_earliest_bid(run: Cli) -> None:
    listing = open_listing(run, "sealed")
    place(run, listing, "zte", "500000.00", "--id", "B-z", now="2026-03-03T09:00:00Z")
    place(run, listing, "huawei", "500000.00", "--id", "B-a", now="2026-03-04T09:00:00Z")
    advance(run, AFTER_CLOSE)
    out = doc(run.ok("--json", "listing", "close", listing))
    assert out["winner"] == "zte"


# --------------------------------------------------------------------------- trades


def test_fixed_price_bid_below_the_ask_is_too_low(run: Cli) -> None:
    listing = open_listing(run, "fixed", "--ask", "800000.00")
    before = run.export()
    result = run("bid", "place", listing, "--bidder", "huawei", "--amount", "799999.99")
    assert_rejected(run, before, result, 1, "BidTooLow")


def test_fixed_price_bid_at_the_ask_creates_the_chosen_trade(run: Cli) -> None:
    listing = open_listing(run, "fixed", "--ask", "800000.00")
    out = place(run, listing, "huawei", "800000.00", "--id", "B-fix", "--trade-id", "T-fix")
    assert (out["id"], out["trade"]) == ("B-fix", "T-fix")
    assert book(run, listing)["status"] == "sold"


def test_fixed_price_bid_above_the_ask_wins_at_the_asking_price(run: Cli) -> None:
    listing = open_listing(run, "fixed", "--ask", "800000.00")
    place(run, listing, "huawei", "950000.00")
    listed = book(run, listing)
    assert (listed["winner"], listed["price"]) == ("huawei", "800000.00")


def test_fixed_price_listing_takes_no_bid_after_it_is_sold(run: Cli) -> None:
    listing = open_listing(run, "fixed", "--ask", "800000.00")
    place(run, listing, "huawei", "800000.00")
    before = run.export()
    result = run("bid", "place", listing, "--bidder", "zte", "--amount", "900000.00")
    assert_rejected(run, before, result, 1, "ListingNotOpen")


def test_plain_fixed_price_bid_prints_bid_and_trade_ids(run: Cli) -> None:
    listing = open_listing(run, "fixed", "--ask", "800000.00")
    result = run.ok(
        "bid", "place", listing, "--bidder", "huawei", "--amount", "800000.00", "--id", "B-fix", "--trade-id", "T-fix"
    )
    assert "B-fix" in result.stdout
    assert "T-fix" in result.stdout


def test_pending_trade_does_not_move_the_title(run: Cli) -> None:
    sold_fixed(run)
    assert owners(run) == [{"member": "fudan-univ", "share": "1"}]


def test_settled_fixed_price_sale_moves_the_title_to_the_buyer(run: Cli) -> None:
    trade = sold_fixed(run, "T-fix")
    advance(run, "2026-03-04T09:00:00Z")
    out = doc(run.ok("--json", "trade", "settle", trade, "--payment-ref", "CNAPS-20260304-001"))
    assert out["id"] == "T-fix"
    assert owners(run) == [{"member": "huawei", "share": "1"}]
    last = doc(run.ok("--json", "title", PATENT))["conveyances"][-1]
    assert (last["from"], last["to"], last["trade"], last["effective"]) == (
        ["fudan-univ"],
        ["huawei"],
        "T-fix",
        "2026-03-04",
    )


def test_pending_trade_reserves_the_asset(run: Cli) -> None:
    sold_fixed(run)
    before = run.export()
    result = run(
        "listing",
        "open",
        PATENT,
        "--type",
        "assignment",
        "--mechanism",
        "negotiated",
        "--currency",
        "CNY",
        "--closes",
        "2026-03-20T00:00:00Z",
    )
    assert_rejected(run, before, result, 1, "AssetReserved")


def test_negotiated_accept_creates_the_chosen_trade(run: Cli) -> None:
    listing = open_listing(run, "negotiated", currency="USD")
    place(run, listing, "byd", "120000.50", "--id", "B-byd")
    place(run, listing, "zte", "150000.00", "--id", "B-zte")
    out = doc(run.ok("--json", "bid", "accept", "B-byd", "--trade-id", "T-neg"))
    assert (out["id"], out["trade"]) == ("B-byd", "T-neg")
    listed = book(run, listing)
    assert (listed["status"], listed["winner"], listed["price"]) == ("sold", "byd", "120000.50")


def test_negotiated_accept_by_the_seller_settles_to_the_accepted_bidder(run: Cli) -> None:
    listing = open_listing(run, "negotiated", actor="fudan-univ")
    place(run, listing, "byd", "120000.00", "--id", "B-byd", actor="byd")
    place(run, listing, "zte", "150000.00", "--id", "B-zte", actor="zte")
    trade = doc(run.ok("--json", "bid", "accept", "B-byd", actor="fudan-univ"))["trade"]
    run.ok("trade", "settle", trade, "--payment-ref", "SWIFT-001", actor="fudan-univ")
    assert owners(run) == [{"member": "byd", "share": "1"}]


def test_non_seller_cannot_accept_a_bid(run: Cli) -> None:
    listing = open_listing(run, "negotiated")
    place(run, listing, "byd", "120000.00", "--id", "B-byd")
    before = run.export()
    assert_rejected(run, before, run("bid", "accept", "B-byd", actor="huawei"), 1, "NotOwner")


def test_english_auction_with_many_bids_sells_to_the_best_bidder_and_settles(run: Cli) -> None:
    listing = open_listing(run, "english", "--ask", "100000.00", "--increment", "5000.00")
    ladder = [
        ("huawei", "100000.00"),
        ("zte", "105000.00"),
        ("byd", "110000.00"),
        ("sjtu", "120000.00"),
        ("cas-sippr", "125000.00"),
        ("huawei", "130000.00"),
        ("zte", "150000.00"),
    ]
    for hour, (bidder, amount) in enumerate(ladder, start=10):
        place(run, listing, bidder, amount, actor=bidder, now=f"2026-03-03T{hour:02d}:00:00Z")
    open_book = book(run, listing)
    assert (open_book["bids"][0]["bidder"], open_book["bids"][0]["amount"]) == ("zte", "150000.00")

    advance(run, AFTER_CLOSE)
    closed = doc(run.ok("--json", "listing", "close", listing, "--trade-id", "T-auction-1"))
    assert (closed["id"], closed["status"], closed["trade"]) == (listing, "sold", "T-auction-1")
    assert owners(run) == [{"member": "fudan-univ", "share": "1"}]

    advance(run, "2026-03-12T09:00:00Z")
    run.ok("trade", "settle", "T-auction-1", "--payment-ref", "CNAPS-20260312-7")
    assert owners(run) == [{"member": "zte", "share": "1"}]
    conveyances = doc(run.ok("--json", "title", PATENT))["conveyances"]
    assert [(c["kind"], c["to"], c["trade"]) for c in conveyances] == [
        ("registration", ["fudan-univ"], None),
        ("assignment", ["zte"], "T-auction-1"),
    ]
    assert conveyances[1]["recorded"] == "2026-03-12T09:00:00Z"
    assert doc(run.ok("--json", "holdings", "zte"))["assets"] == [{"asset": PATENT, "share": "1"}]


def test_english_close_without_trade_id_generates_one(run: Cli) -> None:
    listing = open_listing(run, "english", "--ask", "100000.00")
    place(run, listing, "huawei", "100000.00")
    advance(run, AFTER_CLOSE)
    out = doc(run.ok("--json", "listing", "close", listing))
    assert out["trade"]
    assert book(run, listing)["trade"] == out["trade"]


def test_english_auction_below_the_reserve_ends_unsold(run: Cli) -> None:
    listing = open_listing(run, "english", "--ask", "100000.00", "--reserve", "200000.00")
    place(run, listing, "huawei", "150000.00")
    advance(run, AFTER_CLOSE)
    out = doc(run.ok("--json", "listing", "close", listing))
    assert out["status"] == "unsold"
    assert "trade" not in out


def test_member_cannot_close_a_listing_of_another_member(run: Cli) -> None:
    listing = open_listing(run, "english", "--ask", "100000.00")
    advance(run, AFTER_CLOSE)
    before = run.export()
    assert_rejected(run, before, run("listing", "close", listing, actor="huawei"), 1, "NotOwner")


def test_reused_trade_id_is_a_duplicate(run: Cli) -> None:
    register_patent_2(run, "sjtu")
    sold_fixed(run, "T-1")
    listing = open_listing(run, "sealed", ref=PATENT_2)
    place(run, listing, "zte", "300000.00")
    advance(run, AFTER_CLOSE)
    before = run.export()
    result = run("listing", "close", listing, "--trade-id", "T-1")
    assert_rejected(run, before, result, 1, "DuplicateId")


def test_void_frees_the_asset_for_a_new_listing(run: Cli) -> None:
    trade = sold_fixed(run)
    run.ok("trade", "void", trade, "--reason", "buyer withdrew")
    again = open_listing(run, "negotiated", closes="2026-03-20T00:00:00Z")
    assert book(run, again)["status"] == "open"


def test_void_leaves_the_title_with_the_seller(run: Cli) -> None:
    trade = sold_fixed(run)
    out = doc(run.ok("--json", "trade", "void", trade, "--reason", "payment failed"))
    assert out["id"] == trade
    assert owners(run) == [{"member": "fudan-univ", "share": "1"}]


def test_settled_trade_cannot_be_settled_again(run: Cli) -> None:
    trade = sold_fixed(run)
    run.ok("trade", "settle", trade, "--payment-ref", "PAY-1")
    before = run.export()
    assert_rejected(run, before, run("trade", "settle", trade, "--payment-ref", "PAY-2"), 1, "TradeResolved")


def test_settled_trade_cannot_be_voided(run: Cli) -> None:
    trade = sold_fixed(run)
    run.ok("trade", "settle", trade, "--payment-ref", "PAY-1")
    before = run.export()
    assert_rejected(run, before, run("trade", "void", trade), 1, "TradeResolved")


def test_voided_trade_cannot_be_settled(run: Cli) -> None:
    trade = sold_fixed(run)
    run.ok("trade", "void", trade)
    before = run.export()
    assert_rejected(run, before, run("trade", "settle", trade, "--payment-ref", "PAY-1"), 1, "TradeResolved")


def test_voided_trade_cannot_be_voided_again(run: Cli) -> None:
    trade = sold_fixed(run)
    run.ok("trade", "void", trade)
    before = run.export()
    assert_rejected(run, before, run("trade", "void", trade), 1, "TradeResolved")


def test_trade_past_its_settlement_deadline_cannot_be_settled(run: Cli) -> None:
    listing = open_listing(run, "fixed", "--ask", "800000.00", "--settlement-days", "1")
    trade = place(run, listing, "huawei", "800000.00")["trade"]
    advance(run, "2026-03-04T09:00:00Z")
    before = run.export()
    result = run("trade", "settle", trade, "--payment-ref", "PAY-late")
    assert_rejected(run, before, result, 1, "TradeResolved")


def test_trade_past_its_settlement_deadline_frees_the_asset(run: Cli) -> None:
    listing = open_listing(run, "fixed", "--ask", "800000.00", "--settlement-days", "1")
    place(run, listing, "huawei", "800000.00")
    advance(run, "2026-03-04T09:00:00Z")
    again = open_listing(run, "negotiated", closes="2026-03-20T00:00:00Z")
    assert book(run, again)["status"] == "open"


@pytest.mark.parametrize("command", [("settle", "--payment-ref", "PAY-1"), ("void",)], ids=["settle", "void"])
def test_unknown_trade_is_not_found(run: Cli, command: tuple[str, ...]) -> None:
    before = run.export()
    assert_rejected(run, before, run("trade", command[0], "T-missing", *command[1:]), 1, "NotFound")


def test_settle_without_a_payment_ref_is_a_usage_error(run: Cli) -> None:
    trade = sold_fixed(run)
    before = run.export()
    assert_rejected(run, before, run("trade", "settle", trade), 2, "InvalidInput")


def test_member_who_is_not_a_party_cannot_void_a_trade(run: Cli) -> None:
    trade = sold_fixed(run)
    before = run.export()
    assert_rejected(run, before, run("trade", "void", trade, actor="zte"), 1, "NotAuthorised")


# --------------------------------------------------------------------------- global options and errors


def test_repeated_command_id_returns_the_first_outcome_and_writes_nothing(run: Cli) -> None:
    listing = open_listing(run, "sealed")
    first = run.ok(
        "--json", "--command-id", "cmd-bid-1", "bid", "place", listing, "--bidder", "huawei", "--amount", "500000.00"
    )
    before = run.export()
    again = run.ok(
        "--json", "--command-id", "cmd-bid-1", "bid", "place", listing, "--bidder", "huawei", "--amount", "500000.00"
    )
    assert again.stdout == first.stdout
    assert run.export() == before
    assert len(book(run, listing)["bids"]) == 1


def test_repeated_command_id_at_a_later_time_still_returns_the_first_outcome(run: Cli) -> None:
    command = (
        "--json",
        "--command-id",
        "cmd-open-1",
        "listing",
        "open",
        PATENT,
        "--type",
        "assignment",
        "--mechanism",
        "negotiated",
        "--currency",
        "CNY",
        "--closes",
        CLOSES,
    )
    first = doc(run.ok(*command))
    advance(run, "2026-03-05T09:00:00Z")
    before = run.export()
    again = doc(run.ok(*command))
    assert again == first
    assert run.export() == before


def test_clock_earlier_than_the_last_event_is_rejected(run: Cli) -> None:
    before = run.export()
    result = run(
        "member",
        "add",
        "tsinghua",
        "--name",
        "Tsinghua",
        "--kind",
        "university",
        "--country",
        "CN",
        now="2026-03-02T08:59:59Z",
    )
    assert_rejected(run, before, result, 1, "ClockWentBackwards")


def test_clock_cannot_go_back_after_a_later_event(run: Cli) -> None:
    listing = open_listing(run, "sealed")
    place(run, listing, "huawei", "500000.00", now="2026-03-05T09:00:00Z")
    before = run.export()
    result = run("bid", "place", listing, "--bidder", "zte", "--amount", "600000.00", now="2026-03-04T09:00:00Z")
    assert_rejected(run, before, result, 1, "ClockWentBackwards")


def test_unparseable_pinned_clock_is_invalid_input(run: Cli) -> None:
    before = run.export()
    result = run(
        "member", "add", "tsinghua", "--name", "Tsinghua", "--kind", "university", "--country", "CN", now="yesterday"
    )
    assert_rejected(run, before, result, 2, "InvalidInput")


def test_json_rejection_goes_to_stderr_as_error_and_message(run: Cli) -> None:
    before = run.export()
    result = run("--json", "trade", "settle", "T-missing", "--payment-ref", "PAY-1")
    message = assert_rejected_json(run, before, result, 1, "NotFound")
    assert "T-missing" in message


def test_unknown_command_is_a_usage_error(run: Cli) -> None:
    before = run.export()
    assert_rejected(run, before, run("frobnicate"), 2, "InvalidInput")


# --------------------------------------------------------------------------- export and audit digest


def test_audit_digest_reports_the_head_position_and_a_hex_hash(run: Cli) -> None:
    out = doc(run.ok("--json", "audit", "digest"))
    assert set(out) == {"position", "hash"}
    assert out["position"] == len(run.export().splitlines())
    assert out["hash"] and all(ch in "0123456789abcdef" for ch in out["hash"].lower())


def test_audit_digest_advances_with_each_write(run: Cli) -> None:
    first = doc(run.ok("--json", "audit", "digest"))
    run.ok("member", "suspend", "zte")
    second = doc(run.ok("--json", "audit", "digest"))
    assert second["position"] > first["position"]
    assert second["hash"] != first["hash"]


def test_rejected_command_leaves_the_audit_digest_unchanged(run: Cli) -> None:
    first = doc(run.ok("--json", "audit", "digest"))
    assert run("member", "suspend", "nobody").exit_code == 1
    assert doc(run.ok("--json", "audit", "digest")) == first


def test_plain_audit_digest_is_position_colon_hash(run: Cli) -> None:
    out = doc(run.ok("--json", "audit", "digest"))
    assert run.ok("audit", "digest").stdout.strip() == f"{out['position']}:{out['hash']}"


def test_earlier_digest_still_verifies_after_more_writes(run: Cli) -> None:
    digest = run.ok("audit", "digest").stdout.strip()
    sold_fixed(run)
    result = run("audit", "verify", "--digest", digest)
    assert result.exit_code == 0, result.stderr


def test_export_is_json_lines_one_per_event(run: Cli) -> None:
    lines = run.export().splitlines()
    assert len(lines) == 9  # eight members admitted, one patent registered
    assert all(isinstance(json.loads(line), dict) for line in lines)


def test_export_until_n_returns_the_first_n_events(run: Cli) -> None:
    full = run.export().splitlines()
    assert run.ok("export", "--until", "3").stdout.splitlines() == full[:3]
