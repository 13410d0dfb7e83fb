"""The CLI for people (issue 15): lists and shows of cli.md in text, JSON and CSV, their
filters, sealed-bid and reserve visibility in each, `lapsed` trades, and the trail in words.

One market is built once for the module (every test here only reads it): a settled
English auction with a reserve, a fixed-price sale left to lapse, a sealed auction with
a reserve still open with a bid by huawei, licences and pledges, a suspended member.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from click.testing import Result

from tests.cli_helpers import advance, doc
from tests.conftest import PATENT, Cli, admitted

TRADEMARK = "CN/trademark/12345678"
#: Two banks' security interests at once: US law allows it (a CN patent takes one pledge at a time).
SECURED = "US/patent/7654322"
EP_PATENT = "EP/patent/EP3000001"
FORMULA_TITLE = "=HYPERLINK('http://x.example')"
NOW = "2026-03-10T12:00:00Z"
#: The reserves of fudan-univ's English auction (won by huawei above it) and of byd's
#: sealed auction (still open, huawei's bid below it): amounts no other output has.
AUCTION_RESERVE, SEALED_RESERVE = "110000.00", "75000.00"


def build(cli: Cli) -> Cli:
    admitted(cli)
    cli.ok("asset", "register", SECURED, "--title", "锂离子电池隔膜", "--owner", "sjtu", "--effective", "2020-01-15")
    cli.ok("asset", "register", TRADEMARK, "--title", "BLADECELL (class 9)", "--owner", "byd")
    cli.ok("asset", "register", EP_PATENT, "--title", FORMULA_TITLE, "--owner", "zte", "--expires-on", "2026-03-05")
    cli.ok(
        *f"licence grant {SECURED} --licensee byd --type non_exclusive --territory CN --territory HK".split(),
        *"--field batteries --start 2026-03-02 --end 2030-03-02 --id LIC-1".split(),
    )
    cli.ok(*f"pledge register {SECURED} --pledgee icbc-sh --amount 5000000.00 --currency CNY --id P-1".split())
    cli.ok(*f"pledge register {SECURED} --pledgee boc-bj --id P-2".split())
    cli.ok("pledge", "consent", "P-1", "--act", "licence", "--id", "C-1", actor="icbc-sh")
    cli.ok("pledge", "consent", "P-2", "--act", "licence", "--id", "C-2", actor="boc-bj")
    cli.ok(
        *f"licence grant {SECURED} --licensee zte --type non_exclusive --territory CN --field ALL".split(),
        *"--start 2026-03-02 --end 2027-03-02 --consent C-1 --consent C-2 --id LIC-2".split(),
    )
    cli.ok("member", "suspend", "boc-bj", "--reason", "fee unpaid")
    advance(cli, "2026-03-02T10:00:00Z")
    cli.ok(
        *f"listing open {PATENT} --type assignment --mechanism english --currency CNY".split(),
        *"--closes 2026-03-10T00:00:00Z --ask 100000.00 --increment 5000.00 --id L-1".split(),
        "--reserve",
        AUCTION_RESERVE,
        actor="fudan-univ",
    )
    cli.ok(
        *f"listing open {TRADEMARK} --type assignment --mechanism sealed --currency CNY".split(),
        *"--closes 2026-06-30T00:00:00Z --id L-S".split(),
        "--reserve",
        SEALED_RESERVE,
        actor="byd",
    )
    cli.ok(
        *f"listing open {EP_PATENT} --type assignment --mechanism fixed --currency EUR".split(),
        *"--closes 2026-03-09T00:00:00Z --ask 90000.00 --settlement-days 1 --id L-F".split(),
        actor="zte",
    )
    advance(cli, "2026-03-03T10:00:00Z")
    cli.ok("bid", "place", "L-1", "--bidder", "huawei", "--amount", "120000.00", "--id", "B-1", actor="huawei")
    cli.ok("bid", "place", "L-S", "--bidder", "huawei", "--amount", "50000.00", "--id", "B-S", actor="huawei")
    cli.ok("bid", "place", "L-F", "--bidder", "huawei", "--amount", "90000.00", "--trade-id", "T-2", actor="huawei")
    advance(cli, NOW)
    cli.ok("listing", "close", "L-1", "--trade-id", "T-1")
    cli.ok("trade", "settle", "T-1", "--payment-ref", "PAY-1")
    cli.ok("pledge", "release", "P-1", actor="icbc-sh")
    return cli


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    return build(Cli(f"sqlite:///{tmp_path_factory.mktemp('lists')}/ledger.db"))


def rows_of(result: Result) -> list[dict[str, str]]:
    assert result.exit_code == 0, result.stderr
    return list(csv.DictReader(io.StringIO(result.stdout)))


def header(result: Result) -> list[str]:
    assert result.exit_code == 0, result.stderr
    return result.stdout.splitlines()[0].split()


def refused(result: Result, code: int, name: str, *words: str) -> str:
    """Exit `code`, nothing on stdout, one `error: Name: …` line naming `words`."""
    assert (result.exit_code, result.stdout) == (code, ""), (result.exit_code, result.stdout, result.stderr)
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: {name}: "), line
    assert all(w in line for w in words), line
    return line


# --------------------------------------------------------------------------- every list, every format

LISTS: list[tuple[list[str], str, list[str]]] = [
    (["members"], "members", ["member", "name", "kind", "country", "status"]),
    (["assets"], "assets", ["asset", "title", "owners", "registered_on", "expires_on"]),
    (["trades"], "trades", ["trade", "listing", "asset", "type", "sellers", "buyer", "price", "currency", "status"]),
    (["pledges", "--as-of", "2026-03-05"], "pledges", ["id", "asset", "pledgee", "rank", "amount", "currency"]),
    (["licences"], "licences", ["id", "asset", "licensee", "licensors", "type", "territories", "fields"]),
    (["listings"], "listings", ["listing", "status", "mechanism", "type", "asset", "sellers", "currency"]),
]


@pytest.mark.parametrize(("argv", "key", "columns"), LISTS, ids=[x[1] for x in LISTS])
def test_each_list_prints_a_table_json_and_csv_with_one_shape(
    market: Cli, argv: list[str], key: str, columns: list[str]
) -> None:
    as_json = doc(market("--json", *argv))
    items = as_json[key]
    assert items and all(set(columns) <= set(i) for i in items)
    assert doc(market(*argv, "--json")) == as_json == doc(market(*argv, "--format", "json"))

    text = market(*argv)
    assert header(text)[: len(columns)] == columns
    assert len(text.stdout.splitlines()) == 1 + len(items)
    assert "\x1b[" not in text.stdout  # not a terminal: no colour codes

    table = market(*argv, "--format", "csv")
    assert table.stdout.splitlines()[0].split(",")[: len(columns)] == columns
    assert len(rows_of(table)) == len(items)


def test_text_columns_line_up_whatever_the_width_of_a_cell(market: Cli) -> None:
    import re

    from rich.cells import cell_len

    lines = market("assets").stdout.splitlines()
    at = cell_len(lines[0][: lines[0].index("owners")])
    # Each row's owners start in the same terminal cell, after the CJK title too (2 cells a character).
    for line in lines[1:]:
        owners = re.search(r"  ([a-z0-9-]+=[0-9/]+)", line)
        assert owners is not None and cell_len(line[: owners.start(1)]) == at, line


def test_assets_json_carries_owners_as_the_owner_query_does(market: Cli) -> None:
    items = {a["asset"]: a for a in doc(market("--json", "assets"))["assets"]}
    assert items[PATENT] == {
        "asset": PATENT,
        "title": "Method for lithium-ion electrode coating",
        "owners": [{"member": "huawei", "share": "1"}],
        "registered_on": "2019-05-10",
        "expires_on": None,
    }
    assert items[PATENT]["owners"] == doc(market("--json", "owner", PATENT))["owners"]


def test_assets_lists_each_asset_once_in_ref_order_with_the_owners_it_has_now(market: Cli) -> None:
    listed = doc(market("--json", "assets"))["assets"]
    refs = [a["asset"] for a in listed]
    assert refs == sorted(set(refs))
    for item in listed:  # conveyed, co-owned, registered only: as `owner` answers each
        assert item["owners"] == doc(market("--json", "owner", item["asset"]))["owners"], item["asset"]
    assert doc(market("--json", "assets", "--limit", "2"))["assets"] == listed[:2]
    huawei = doc(market("--json", "assets", "--owner", "huawei", "--limit", "1"))["assets"]
    assert huawei == [a for a in listed if {"member": "huawei", "share": "1"} in a["owners"]][:1]


def test_csv_joins_lists_with_semicolons_and_defuses_formulas(market: Cli) -> None:
    licences = {r["id"]: r for r in rows_of(market("licences", "--format", "csv"))}
    assert licences["LIC-1"]["territories"] == "CN;HK"
    assert licences["LIC-1"]["licensors"] == "sjtu"
    assert licences["LIC-1"]["sublicensable"] == "false"
    assets = {r["asset"]: r for r in rows_of(market("assets", "--format", "csv"))}
    assert assets[EP_PATENT]["title"] == "'" + FORMULA_TITLE
    assert assets[PATENT]["expires_on"] == ""


def test_an_empty_list_says_so_in_text_and_keeps_its_shape_in_json_and_csv(market: Cli) -> None:
    argv = ["members", "--kind", "individual"]
    assert market(*argv).stdout == "(no members)\n"
    assert doc(market("--json", *argv)) == {"members": []}
    assert market(*argv, "--format", "csv").stdout == "member,name,kind,country,status\n"


def test_json_and_another_format_together_are_a_usage_error(market: Cli) -> None:
    result = market("--json", "members", "--format", "csv")
    assert (result.exit_code, result.stdout) == (2, "")
    assert json.loads(result.stderr) == {
        "error": "InvalidInput",
        "message": "format: --json and --format csv disagree; give one of them",
    }
    late = market("members", "--format", "text", "--json")
    assert (late.exit_code, late.stdout) == (2, "") and "--json and --format text disagree" in late.stderr


def test_limit_keeps_the_first_n(market: Cli) -> None:
    assert [m["member"] for m in doc(market("--json", "members", "--limit", "2"))["members"]] == ["boc-bj", "byd"]
    assert len(doc(market("--json", "listings", "--limit", "1"))["listings"]) == 1


# --------------------------------------------------------------------------- filters


def ids(market: Cli, key: str, field: str, *argv: str, actor: str | None = None) -> list[str]:
    return [x[field] for x in doc(market("--json", *argv, actor=actor))[key]]


def test_members_filter_by_kind_and_status(market: Cli) -> None:
    assert ids(market, "members", "member", "members", "--kind", "financial_institution") == ["boc-bj", "icbc-sh"]
    assert ids(market, "members", "member", "members", "--status", "suspended") == ["boc-bj"]
    assert "boc-bj" not in ids(market, "members", "member", "members", "--status", "active")


def test_assets_filter_by_owner_jurisdiction_and_kind(market: Cli) -> None:
    assert ids(market, "assets", "asset", "assets", "--owner", "huawei") == [PATENT]
    assert ids(market, "assets", "asset", "assets", "--owner", "fudan-univ") == []  # owned once, not now
    assert ids(market, "assets", "asset", "assets", "--jurisdiction", "ep") == [EP_PATENT]
    assert ids(market, "assets", "asset", "assets", "--kind", "trademark") == [TRADEMARK]
    assert ids(market, "assets", "asset", "assets", "--jurisdiction", "CN", "--kind", "patent") == [PATENT]


def test_trades_filter_by_status_and_member_and_a_lapsed_trade_reads_lapsed(market: Cli) -> None:
    assert ids(market, "trades", "trade", "trades") == ["T-2", "T-1"]
    assert ids(market, "trades", "trade", "trades", "--status", "lapsed") == ["T-2"]
    assert ids(market, "trades", "trade", "trades", "--status", "settled") == ["T-1"]
    assert ids(market, "trades", "trade", "trades", "--status", "pending") == []
    assert ids(market, "trades", "trade", "trades", "--member", "zte") == ["T-2"]
    assert ids(market, "trades", "trade", "trades", "--member", "sjtu") == []
    # Asked before its deadline (a query may be pinned to any time), the same trade is pending.
    early = doc(market("--json", "trades", "--status", "pending", now="2026-03-04T09:59:59Z"))["trades"]
    assert [(t["trade"], t["status"]) for t in early] == [("T-2", "pending")]
    assert doc(market("--json", "trade", "show", "T-2"))["status"] == "lapsed"
    assert "lapsed" in rows_of(market("trades", "--format", "csv"))[0]["status"]
    assert ids(market, "listings", "listing", "listings", "--status", "lapsed") == ["L-F"]


def test_pledges_filter_by_asset_pledgee_and_date_with_ranks(market: Cli) -> None:
    before = doc(market("--json", "pledges", "--as-of", "2026-03-05"))
    assert before["as_of"] == "2026-03-05"
    assert [(p["id"], p["rank"]) for p in before["pledges"]] == [("P-1", 1), ("P-2", 2)]
    assert [(p["id"], p["rank"]) for p in doc(market("--json", "pledges"))["pledges"]] == [("P-2", 1)]
    assert ids(market, "pledges", "id", "pledges", "--pledgee", "icbc-sh", "--as-of", "2026-03-05") == ["P-1"]
    assert ids(market, "pledges", "id", "pledges", "--asset", PATENT) == []
    assert ids(market, "pledges", "id", "pledges", "--asset", SECURED.lower()) == ["P-2"]


def test_licences_filter_by_asset_licensee_and_date(market: Cli) -> None:
    assert ids(market, "licences", "id", "licences") == ["LIC-1", "LIC-2"]
    assert ids(market, "licences", "id", "licences", "--licensee", "zte") == ["LIC-2"]
    assert ids(market, "licences", "id", "licences", "--as-of", "2028-01-01") == ["LIC-1"]
    assert ids(market, "licences", "id", "licences", "--asset", PATENT) == []


def test_listings_filter_by_asset_and_member(market: Cli) -> None:
    assert ids(market, "listings", "listing", "listings", "--asset", EP_PATENT) == ["L-F"]
    assert ids(market, "listings", "listing", "listings", "--member", "byd") == ["L-S"]
    assert ids(market, "listings", "listing", "listings", "--member", "huawei") == ["L-1", "L-F", "L-S"]


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["members", "--kind", "bank"], "--kind"),
        (["members", "--status", "gone"], "--status"),
        (["assets", "--owner", "Not An Id"], "--owner"),
        (["assets", "--jurisdiction", "XX"], "--jurisdiction"),
        (["assets", "--kind", "recipe"], "--kind"),
        (["trades", "--status", "sold"], "--status"),
        (["trades", "--member", "operator"], "--member"),
        (["pledges", "--asset", "CN//patent/1"], "--asset"),
        (["pledges", "--as-of", "2026-13-01"], "--as-of"),
        (["licences", "--licensee", "-x"], "--licensee"),
        (["listings", "--limit", "0"], "--limit"),
        (["listings", "--format", "xml"], "--format"),
        (["member", "show", "UPPER"], "ID"),
        (["asset", "show", "nonsense"], "REF"),
    ],
)
def test_a_bad_filter_value_is_exit_2_naming_the_option(market: Cli, argv: list[str], option: str) -> None:
    refused(market(*argv), 2, "InvalidInput", option)


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["assets", "--owner", "nobody"], "owner: no member nobody"),
        (["trades", "--member", "nobody"], "member: no member nobody"),
        (["pledges", "--pledgee", "nobody"], "pledgee: no member nobody"),
        (["licences", "--asset", "CN/patent/ZL209900000001.1"], "asset: no asset CN/patent/ZL209900000001.1"),
        (["member", "show", "nobody"], "member: no member nobody"),
        (["asset", "show", "CN/patent/ZL209900000001.1"], "ref: no asset CN/patent/ZL209900000001.1"),
        (["trade", "show", "T-404"], "trade: no trade T-404"),
    ],
)
def test_unknown_ids_are_not_found_exit_1_in_one_line(market: Cli, argv: list[str], named: str) -> None:
    refused(market(*argv), 1, "NotFound", named)


# --------------------------------------------------------------------------- shows


def test_member_show_gives_everything_about_a_member(market: Cli) -> None:
    huawei = doc(market("--json", "member", "show", "huawei"))
    assert {k: huawei[k] for k in ("member", "name", "kind", "country", "status")} == {
        "member": "huawei",
        "name": "Huawei Technologies",
        "kind": "enterprise",
        "country": "CN",
        "status": "active",
    }
    assert huawei["holdings"] == [{"asset": PATENT, "share": "1"}]
    assert [b["id"] for b in huawei["bids"]] == ["B-S"]
    assert [(t["trade"], t["status"]) for t in huawei["trades"]] == [("T-2", "lapsed"), ("T-1", "settled")]
    boc = doc(market("--json", "member", "show", "boc-bj"))
    assert (boc["status"], boc["suspension_reason"]) == ("suspended", "fee unpaid")
    assert [p["id"] for p in boc["pledges"]] == ["P-2"]
    text = market("member", "show", "zte").stdout
    assert text.startswith("member zte\n  name      ZTE Corporation\n")
    assert "licences it holds as licensee:\n  id     asset " in text
    assert "T-2" in text and "lapsed" in text


def test_asset_show_gives_owners_dates_encumbrances_and_listings(market: Cli) -> None:
    shown = doc(market("--json", "asset", "show", SECURED.lower()))
    assert shown["asset"] == SECURED
    assert shown["owners"] == [{"member": "sjtu", "share": "1"}]
    assert (shown["registered_on"], shown["expires_on"], shown["expired"]) == ("2020-01-15", None, False)
    enc = doc(market("--json", "encumbrances", SECURED))
    assert shown["encumbrances"] == {"as_of": enc["as_of"], "licences": enc["licences"], "pledges": enc["pledges"]}
    trademark = doc(market("--json", "asset", "show", TRADEMARK))
    assert [x["listing"] for x in trademark["listings"]] == ["L-S"]
    ep = doc(market("--json", "asset", "show", EP_PATENT))
    assert ep["expired"] is True and [t["status"] for t in ep["trades"]] == ["lapsed"]
    text = market("asset", "show", EP_PATENT).stdout
    assert "  expires     2026-03-05 (expired)\n" in text


def test_trade_show_gives_listing_parties_price_status_and_deadline(market: Cli) -> None:
    shown = doc(market("--json", "trade", "show", "T-2"))
    assert {k: shown[k] for k in ("trade", "listing", "asset", "sellers", "buyer", "price", "currency")} == {
        "trade": "T-2",
        "listing": "L-F",
        "asset": EP_PATENT,
        "sellers": ["zte"],
        "buyer": "huawei",
        "price": "90000.00",
        "currency": "EUR",
    }
    assert shown["status"] == "lapsed" and shown["deadline"] == "2026-03-04T10:00:00Z"
    text = market("trade", "show", "T-1").stdout
    assert "  status       settled\n" in text and "  payment      PAY-1\n" in text
    assert "lapsed (unsettled at its deadline 2026-03-04T10:00:00Z)" in market("trade", "show", "T-2").stdout


# --------------------------------------------------------------------------- sealed bids


@pytest.mark.parametrize(
    "argv",
    [
        ["member", "show", "huawei"],
        ["listings", "--member", "huawei"],
        ["listings", "--member", "huawei", "--format", "csv"],
        ["listings", "--member", "huawei", "--format", "text"],
        ["trades"],
        ["asset", "show", TRADEMARK],
        ["trail", "--member", "huawei"],
        ["trail", "--asset", TRADEMARK],
    ],
)
def test_a_member_never_sees_another_members_sealed_bid(market: Cli, argv: list[str]) -> None:
    for actor in ("zte", "byd"):
        both = [market(*argv, actor=actor)] + ([] if "--format" in argv else [market("--json", *argv, actor=actor)])
        for out in both:
            assert out.exit_code == 0, out.stderr
            assert "B-S" not in out.stdout and "50000.00" not in out.stdout
            if argv[0] == "listings":
                assert "L-S" not in out.stdout  # listing it by huawei's bid would say who bid
    if argv[0] in ("member", "trail"):
        for actor in ("huawei", "operator", "auditor"):
            assert "B-S" in market("--json", *argv, actor=actor).stdout, actor


def test_a_member_sees_its_own_sealed_bid(market: Cli) -> None:
    assert [b["id"] for b in doc(market("--json", "member", "show", "huawei", actor="huawei"))["bids"]] == ["B-S"]
    assert [b["id"] for b in doc(market("--json", "member", "show", "huawei", actor="zte"))["bids"]] == []
    assert "L-S" in ids(market, "listings", "listing", "listings", "--member", "huawei", actor="huawei")
    assert "L-S" not in ids(market, "listings", "listing", "listings", "--member", "huawei", actor="zte")


# --------------------------------------------------------------------------- the reserve

#: Every output that shows byd's sealed listing L-S (JSON where the text leaves the reserve out).
SHOWING_L_S = [
    ["--json", "listings"],
    ["listings", "--format", "text"],
    ["listings", "--format", "csv"],
    ["--json", "book", "L-S"],
    ["--json", "asset", "show", TRADEMARK],
    ["asset", "show", TRADEMARK],
    ["--json", "member", "show", "byd"],
    ["member", "show", "byd"],
    ["--json", "trail", "--asset", TRADEMARK],
    ["trail", "--asset", TRADEMARK],
    ["--json", "trail", "--member", "byd"],
    ["trail", "--member", "byd"],
]


@pytest.mark.parametrize("argv", SHOWING_L_S, ids=" ".join)
def test_a_bidder_or_another_member_never_sees_the_reserve(market: Cli, argv: list[str]) -> None:
    for actor in ("huawei", "zte"):  # the bidder below it, a member who did not bid
        out = market(*argv, actor=actor)
        assert out.exit_code == 0, out.stderr
        assert SEALED_RESERVE not in out.stdout, actor
        assert "hidden" in out.stdout, actor  # that there is a reserve is told


@pytest.mark.parametrize("argv", SHOWING_L_S, ids=" ".join)
def test_the_seller_the_operator_and_auditors_see_the_reserve(market: Cli, argv: list[str]) -> None:
    for actor in ("byd", "operator", "auditor"):
        out = market(*argv, actor=actor)
        assert out.exit_code == 0, out.stderr
        assert SEALED_RESERVE in out.stdout, actor


def test_a_seller_sees_its_own_listings_reserve_and_not_another_sellers(market: Cli) -> None:
    listed = {x["listing"]: x["reserve"] for x in doc(market("--json", "listings", actor="fudan-univ"))["listings"]}
    assert listed == {"L-1": AUCTION_RESERVE, "L-S": "hidden", "L-F": None}


def test_a_hidden_reserve_reads_hidden_and_a_listing_without_one_reads_null(market: Cli) -> None:
    listed = {x["listing"]: x["reserve"] for x in doc(market("--json", "listings", actor="zte"))["listings"]}
    assert listed == {"L-1": "hidden", "L-S": "hidden", "L-F": None}
    assert doc(market("--json", "book", "L-S", actor="zte"))["reserve"] == "hidden"
    events = doc(market("--json", "trail", "--asset", TRADEMARK, actor="zte"))["events"]
    (opened,) = [e for e in events if e["type"] == "Listing.Opened"]
    assert opened["data"]["reserve"] == "hidden" and opened["data"]["ask"] is None
    line = next(x for x in trail_lines(market, "--asset", TRADEMARK, actor="zte") if "L-S opened" in x)
    assert line.endswith("closes 2026-06-30T00:00:00Z, with a reserve (amount hidden)"), line
    line = next(x for x in trail_lines(market, "--asset", TRADEMARK, actor="byd") if "L-S opened" in x)
    assert line.endswith(f"closes 2026-06-30T00:00:00Z, reserve {SEALED_RESERVE} CNY"), line


def test_the_reserve_stays_hidden_after_the_close_even_from_the_winner(market: Cli) -> None:
    for actor in ("huawei", "zte"):
        shown = doc(market("--json", "book", "L-1", actor=actor))
        assert (shown["status"], shown["winner"], shown["reserve"]) == ("sold", "huawei", "hidden")
        assert AUCTION_RESERVE not in market("--json", "trail", "--asset", PATENT, actor=actor).stdout
        assert AUCTION_RESERVE not in market("trail", "--member", "fudan-univ", actor=actor).stdout
    assert doc(market("--json", "book", "L-1", actor="fudan-univ"))["reserve"] == AUCTION_RESERVE


def test_an_auction_whose_best_bid_missed_the_reserve_says_so_and_keeps_the_amount_hidden(tmp_path: Any) -> None:
    cli = Cli(f"sqlite:///{tmp_path}/ledger.db")
    admitted(cli)
    advance(cli, "2026-03-02T10:00:00Z")
    cli.ok(
        *f"listing open {PATENT} --type assignment --mechanism english --currency CNY".split(),
        *"--closes 2026-03-10T00:00:00Z --ask 100000.00 --id L-R --reserve 110000.00".split(),
        actor="fudan-univ",
    )
    advance(cli, "2026-03-03T10:00:00Z")
    cli.ok("bid", "place", "L-R", "--bidder", "huawei", "--amount", "105000.00", "--id", "B-R", actor="huawei")
    advance(cli, NOW)
    cli.ok("listing", "close", "L-R", "--trade-id", "T-R")

    book = doc(cli("--json", "book", "L-R", actor="huawei"))
    assert (book["status"], book["unsold_reason"], book["reserve"]) == ("unsold", "reserve not met", "hidden")
    (listed,) = doc(cli("--json", "listings", actor="huawei"))["listings"]
    assert listed["unsold_reason"] == "reserve not met"
    assert "reserve not met" in cli("listings", actor="huawei").stdout
    trail = cli("trail", "--asset", PATENT, actor="huawei").stdout
    assert "listing L-R ended unsold (reserve not met)" in trail
    assert "110000" not in trail


# --------------------------------------------------------------------------- the trail in words


def trail_lines(market: Cli, *argv: str, actor: str | None = None) -> list[str]:
    result = market("trail", *argv, actor=actor)
    assert result.exit_code == 0, result.stderr
    return result.stdout.splitlines()


def test_trail_text_is_aligned_columns_with_times_to_the_second(market: Cli) -> None:
    lines = trail_lines(market, "--asset", SECURED)
    assert lines[0] == f"trail of asset:{SECURED}"
    assert lines[1].split() == ["position", "recorded", "actor", "what"]
    at = lines[1].index("recorded")
    assert {len(line[at:].split()[0]) for line in lines[2:]} == {len("2026-03-02T09:00:00Z")}
    assert len({line.index("  ", at) for line in lines[2:]}) == 1


def test_trail_text_tells_each_event_in_words(market: Cli) -> None:
    asset = "\n".join(trail_lines(market, "--asset", SECURED))
    assert "pledge P-1 released by icbc-sh, effective 2026-03-10" in asset
    assert "consent C-1 under pledge P-1 used for licence LIC-2 to zte" in asset
    assert f"pledge P-2 registered: {SECURED} pledged by sjtu to boc-bj from 2026-03-02" in asset
    auction = "\n".join(trail_lines(market, "--asset", PATENT))
    assert "bid B-1 placed on L-1 by huawei: 120000.00 CNY" in auction
    assert "listing L-1 sold to huawei at 120000.00 CNY (bid B-1, trade T-1)" in auction
    assert "trade T-1 settled (payment PAY-1)" in auction
    member = "\n".join(trail_lines(market, "--member", "boc-bj"))
    assert "boc-bj admitted: Bank of China Beijing, a financial institution in CN" in member
    assert "boc-bj suspended: fee unpaid" in member
    enterprise = "\n".join(trail_lines(market, "--member", "zte"))
    assert "zte admitted: ZTE Corporation, an enterprise in CN" in enterprise


def test_trail_json_is_unchanged_by_the_words(market: Cli) -> None:
    events = doc(market("--json", "trail", "--asset", SECURED))["events"]
    used = next(e for e in events if e["type"] == "Pledge.ConsentUsed")
    assert set(used) == {"position", "type", "aggregate", "version", "recorded", "actor", "command_id", "data"}
    assert used["data"] == {"consent_id": "C-1", "used_for": used["command_id"]}


def test_a_trail_read_in_pages_is_the_whole_trail_in_order(market: Cli) -> None:
    whole = doc(market("--json", "trail", "--asset", SECURED))
    assert whole["next"] is None
    pages, after = [], 0
    while True:
        page = doc(market("--json", "trail", "--asset", SECURED, "--limit", "3", "--after", str(after)))
        assert len(page["events"]) <= 3
        pages += page["events"]
        if page["next"] is None:
            break
        assert page["next"] == page["events"][-1]["position"]
        after = page["next"]
    assert pages == whole["events"] and len(pages) > 3


def test_a_trail_page_in_words_says_where_the_rest_start(market: Cli) -> None:
    first = doc(market("--json", "trail", "--asset", SECURED, "--limit", "2"))
    text = market("trail", "--asset", SECURED, "--limit", "2").stdout.splitlines()
    assert text[-1] == f"more after position {first['next']} (--after {first['next']})"


def test_a_trail_past_its_last_event_is_an_empty_page(market: Cli) -> None:
    last = doc(market("--json", "trail", "--asset", SECURED))["events"][-1]["position"]
    page = doc(market("--json", "trail", "--asset", SECURED, "--after", str(last)))
    assert (page["events"], page["next"]) == ([], None)


@pytest.mark.parametrize(("option", "value"), [("--limit", "0"), ("--after", "-1"), ("--limit", "x")])
def test_a_trail_page_needs_whole_numbers(market: Cli, option: str, value: str) -> None:
    result = market("trail", "--asset", SECURED, option, value)
    assert result.exit_code == 2 and result.stdout == ""
    assert option in result.stderr


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("--5", "is not a whole number"),
        ("-1234567890", "is less than 1"),
        ("0000000001", None),
        ("-" + "9" * 5000, "is less than 1"),
    ],
    ids=["two-dashes", "far-below-the-minimum", "leading-zeros", "more-digits-than-python-reads"],
)
def test_a_trail_page_limit_is_judged_by_its_value(market: Cli, value: str, rule: str | None) -> None:
    result = market("trail", "--asset", SECURED, "--limit", value)
    if rule is None:
        assert result.exit_code == 0, result.stderr
    else:
        assert (result.exit_code, result.stdout) == (2, "")
        assert result.stderr == f"error: InvalidInput: Invalid value for '--limit': '{value}' {rule}\n"


@pytest.mark.parametrize("value", ["1" + "0" * 20, "1" * 5000], ids=["twenty-one-digits", "five-thousand-digits"])
def test_a_trail_page_past_nine_digits_is_too_large_not_malformed(market: Cli, value: str) -> None:
    result = market("trail", "--asset", SECURED, "--limit", value)
    assert result.exit_code == 2 and result.stdout == ""
    rule = "is too large (at most 9 digits)"
    assert result.stderr == f"error: InvalidInput: Invalid value for '--limit': '{value}' {rule}\n"


def test_a_consent_used_by_a_command_outside_the_trail_names_the_command(market: Cli) -> None:
    from ipledger.describe import Describer

    event: dict[str, Any] = {
        "type": "Pledge.ConsentUsed",
        "aggregate": "a",
        "actor": "operator",
        "command_id": "9f2c",
        "data": {"consent_id": "C-9", "used_for": "9f2c"},
    }
    names = {"aggregates": {"a": {"id": "P-9"}}, "commands": {"9f2c": {"command": "listing.open", "position": 7}}}
    assert Describer([event], names)(event) == (
        "consent C-9 under pledge P-9 used for a listing.open command (recorded at #7)"
    )
    assert "9f2c" not in Describer([event], {})(event)


def test_error_messages_use_the_right_article(market: Cli) -> None:
    line = refused(market("pledge", "register", PATENT, "--pledgee", "zte"), 1, "NotEligible")
    assert "zte is an enterprise;" in line


def test_json_output_of_every_list_is_one_document(market: Cli) -> None:
    for argv, key, _ in LISTS:
        assert list(json.loads(market("--json", *argv).stdout)) in ([key], ["as_of", key])


@pytest.mark.postgres
def test_lists_shows_and_the_trail_in_words_work_on_postgresql(pg_url: str) -> None:
    """The same market on the PostgreSQL server: the window query, LIKE escapes and
    lapsed-by-clock filters are SQL that both stores must run alike."""
    cli = build(Cli(pg_url))
    for argv, key, columns in LISTS:
        assert doc(cli("--json", *argv))[key]
        assert rows_of(cli(*argv, "--format", "csv"))
        assert header(cli(*argv))[: len(columns)] == columns
    assert ids(cli, "assets", "asset", "assets", "--jurisdiction", "US", "--kind", "patent") == [SECURED]
    assert ids(cli, "assets", "asset", "assets", "--owner", "huawei") == [PATENT]
    assert ids(cli, "trades", "trade", "trades", "--status", "lapsed") == ["T-2"]
    assert ids(cli, "listings", "listing", "listings", "--member", "huawei", actor="zte") == ["L-1", "L-F"]
    assert doc(cli("--json", "member", "show", "huawei", actor="zte"))["bids"] == []
    assert "pledge P-1 released by icbc-sh" in cli.ok("trail", "--asset", SECURED).stdout
    refused(cli("trade", "show", "T-404"), 1, "NotFound", "trade: no trade T-404")


def test_on_a_terminal_the_header_is_bold_and_off_it_nothing_but_text() -> None:
    from ipledger import render

    items = [{"member": "huawei", "name": "Huawei", "kind": "enterprise", "country": "CN", "status": "active"}]
    assert "\x1b[1m" in render.table_text(items, render.MEMBERS, terminal=True)
    plain = render.table_text(items, render.MEMBERS)
    assert plain == "member  name    kind        country  status\nhuawei  Huawei  enterprise  CN       active"


def test_book_exports_its_bids_as_csv_and_keeps_sealed_bids_from_other_members(market: Cli) -> None:
    rows = list(csv.reader(io.StringIO(market.ok("book", "L-1", "--format", "csv").stdout)))
    assert rows[0] == ["id", "bidder", "amount", "placed", "state"]
    assert len(rows) > 1

    def bidders(viewer: str) -> list[str]:
        sealed = market.ok("book", "L-S", "--format", "csv", actor=viewer).stdout
        return [row[1] for row in list(csv.reader(io.StringIO(sealed)))[1:]]

    assert bidders("huawei") == ["huawei"]  # its own sealed bid
    assert bidders("zte") == []  # another member's sealed bid stays hidden until the close
    assert bidders("operator") == ["huawei"]
    assert doc(market("book", "L-1", "--format", "json"))["listing"] == "L-1"
    assert market("--json", "book", "L-1", "--format", "csv").exit_code == 2
