"""Encumbrances through the command line (cli.md): licence grant/terminate/surrender,
pledge register/consent/release/enforce, co-owner consents and the `encumbrances` query.

Every rejection is checked three ways: the exit code, the one-line
`error: <ErrorName>: <message>` on stderr, and a byte-for-byte unchanged event log.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import Result

from tests.cli_helpers import advance, assert_rejected, doc
from tests.conftest import CO_OWNED, PATENT, Cli

US_PATENT = "US/patent/7654321"
CLOSES = "2026-03-10T00:00:00Z"
TERM = ("2026-04-01", "2031-04-01")
END = "2030-12-31"  # a pledge's end: a CN patent's pledge states one (jurisdictions.md)
IN_TERM = "2026-06-01"

LICENCE_KEYS = {"id", "licensee", "type", "territories", "fields", "start", "end"}
PLEDGE_KEYS = {"id", "pledgee", "amount", "currency", "rank"}


# --------------------------------------------------------------------------- helpers


def grant(
    run: Cli,
    licensee: str,
    type_: str = "exclusive",
    *extra: str,
    ref: str = PATENT,
    territory: tuple[str, ...] = ("CN",),
    field: tuple[str, ...] = ("ALL",),
    term: tuple[str, str] = TERM,
    licence_id: str | None = None,
    actor: str | None = None,
) -> Result:
    args = ["licence", "grant", ref, "--licensee", licensee, "--type", type_]
    args += [a for t in territory for a in ("--territory", t)]
    args += [a for f in field for a in ("--field", f)]
    args += ["--start", term[0], "--end", term[1], *extra]
    if licence_id is not None:
        args += ["--id", licence_id]
    return run(*args, actor=actor)


def granted(run: Cli, licensee: str, type_: str = "exclusive", *extra: str, **kw: Any) -> str:
    return str(doc(grant(run, licensee, type_, *extra, "--json", **kw))["id"])


def encumbrances(run: Cli, *extra: str, ref: str = PATENT) -> dict[str, Any]:
    out: dict[str, Any] = doc(run("--json", "encumbrances", ref, *extra))
    return out


def licence_ids(run: Cli, *extra: str, ref: str = PATENT) -> list[str]:
    return [x["id"] for x in encumbrances(run, *extra, ref=ref)["licences"]]


def pledge(
    run: Cli,
    pledgee: str = "icbc-sh",
    *extra: str,
    ref: str = PATENT,
    pledge_id: str = "P-ICBC",
    actor: str | None = "fudan-univ",
) -> dict[str, Any]:
    out: dict[str, Any] = doc(
        run("--json", "pledge", "register", ref, "--pledgee", pledgee, "--id", pledge_id, *extra, actor=actor)
    )
    return out


def consent(run: Cli, pledge_id: str = "P-ICBC", act: str = "assignment", actor: str = "icbc-sh") -> str:
    return str(doc(run("--json", "pledge", "consent", pledge_id, "--act", act, actor=actor))["id"])


def owners(run: Cli, ref: str = PATENT) -> list[dict[str, str]]:
    out: list[dict[str, str]] = doc(run("--json", "owner", ref))["owners"]
    return out


def register_us_patent(run: Cli) -> None:
    run.ok(
        "asset",
        "register",
        US_PATENT,
        "--title",
        "Solid-state electrolyte",
        "--owner",
        "fudan-univ",
        "--effective",
        "2021-06-01",
    )


@pytest.fixture
def co_owned(run: Cli) -> Cli:
    """CO_OWNED belongs half to fudan-univ and half to cas-sippr (registered by the operator)."""
    run.ok(
        "asset",
        "register",
        CO_OWNED,
        "--title",
        "Continuous-flow nitration reactor",
        "--owner",
        "fudan-univ=1/2",
        "--owner",
        "cas-sippr=1/2",
        "--effective",
        "2020-01-01",
    )
    return run


@pytest.fixture
def pledged(run: Cli) -> Cli:
    """PATENT pledged by fudan-univ to icbc-sh (pledge P-ICBC) securing 10,000,000.00 CNY."""
    pledge(run, "icbc-sh", "--amount", "10000000.00", "--currency", "CNY", "--end", "2029-03-01")
    return run


# =========================================================================== licences: grant


def test_licence_grant_prints_its_id_asset_and_licensee(run: Cli) -> None:
    out = doc(grant(run, "huawei", "exclusive", "--json", licence_id="LIC-HW-CN"))
    assert out == {"id": "LIC-HW-CN", "asset": PATENT, "licensee": "huawei"}


def test_granted_licence_is_in_encumbrances_with_its_scope(run: Cli) -> None:
    granted(run, "huawei", "sole", territory=("CN", "JP"), field=("EV batteries",), licence_id="LIC-HW")
    out = encumbrances(run, "--as-of", IN_TERM)
    assert {"asset", "licences", "pledges"} <= set(out) and out["asset"] == PATENT
    (licence,) = out["licences"]
    assert set(licence) >= LICENCE_KEYS
    assert {k: licence[k] for k in LICENCE_KEYS} == {
        "id": "LIC-HW",
        "licensee": "huawei",
        "type": "sole",
        "territories": ["CN", "JP"],
        "fields": ["EV batteries"],
        "start": "2026-04-01",
        "end": "2031-04-01",
    }
    assert out["pledges"] == []


def test_conflicting_licence_is_refused_naming_the_licence_it_collides_with(run: Cli) -> None:
    granted(run, "huawei", "exclusive", territory=("CN",), licence_id="LIC-HW-CN")
    before = run.export()
    result = grant(run, "zte", "non_exclusive", territory=("WORLD",), field=("5G base stations",))
    message = assert_rejected(run, before, result, 1, "LicenceConflict")
    assert "LIC-HW-CN" in message


def test_non_exclusive_licences_in_the_same_scope_coexist(run: Cli) -> None:
    granted(run, "huawei", "non_exclusive", licence_id="LIC-HW")
    granted(run, "zte", "non_exclusive", licence_id="LIC-ZTE")
    assert licence_ids(run, "--as-of", IN_TERM) == ["LIC-HW", "LIC-ZTE"]


def test_exclusive_licences_in_disjoint_territories_coexist(run: Cli) -> None:
    granted(run, "huawei", "exclusive", territory=("CN",), licence_id="LIC-HW-CN")
    granted(run, "zte", "exclusive", territory=("US", "JP"), licence_id="LIC-ZTE-US")
    assert licence_ids(run, "--as-of", IN_TERM) == ["LIC-HW-CN", "LIC-ZTE-US"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        pytest.param({"type_": "exclusve"}, "type", id="unknown type"),
        pytest.param({"territory": ("XX",)}, "territory", id="unknown territory"),
        pytest.param({"term": ("2031-04-01", "2026-04-01")}, "end", id="end before start"),
        pytest.param({"term": ("2026-04-01", "2026-04-01")}, "end", id="empty term"),
        pytest.param({"term": ("2026/04/01", "2031-04-01")}, "start", id="bad date"),
    ],
)
def test_licence_grant_rejects_invalid_values_as_bad_input(run: Cli, overrides: dict[str, Any], field: str) -> None:
    before = run.export()
    kw: dict[str, Any] = {"type_": "exclusive", **overrides}
    type_ = kw.pop("type_")
    message = assert_rejected(run, before, grant(run, "huawei", type_, **kw), 2, "InvalidInput")
    assert message.startswith(f"{field}: ")


def test_licence_grant_without_a_territory_is_a_usage_error(run: Cli) -> None:
    before = run.export()
    result = run(
        "licence",
        "grant",
        PATENT,
        "--licensee",
        "huawei",
        "--type",
        "exclusive",
        "--field",
        "ALL",
        "--start",
        TERM[0],
        "--end",
        TERM[1],
    )
    assert_rejected(run, before, result, 2, "InvalidInput")


def test_lump_sum_with_more_decimals_than_the_currency_is_bad_input(run: Cli) -> None:
    before = run.export()
    result = grant(run, "huawei", "exclusive", "--lump-sum", "250000.005", "--currency", "CNY")
    assert_rejected(run, before, result, 2, "InvalidInput")


def test_licence_to_an_unknown_member_is_not_found(run: Cli) -> None:
    before = run.export()
    assert_rejected(run, before, grant(run, "xiaomi"), 1, "NotFound")


def test_licence_of_an_unknown_asset_is_not_found(run: Cli) -> None:
    before = run.export()
    assert_rejected(run, before, grant(run, "huawei", ref=US_PATENT), 1, "NotFound")


def test_member_cannot_license_an_asset_it_does_not_own(run: Cli) -> None:
    before = run.export()
    assert_rejected(run, before, grant(run, "zte", actor="huawei"), 1, "NotOwner")


def test_suspended_member_cannot_be_licensee(run: Cli) -> None:
    run.ok("member", "suspend", "zte", "--reason", "export-control review")
    before = run.export()
    assert_rejected(run, before, grant(run, "zte"), 1, "MemberSuspended")


def test_licence_term_must_end_within_the_asset_life(run: Cli) -> None:
    run.ok(
        "asset",
        "register",
        US_PATENT,
        "--title",
        "Solid-state electrolyte",
        "--owner",
        "fudan-univ",
        "--effective",
        "2021-06-01",
        "--expires-on",
        "2030-01-01",
    )
    before = run.export()
    message = assert_rejected(run, before, grant(run, "huawei", ref=US_PATENT), 2, "InvalidInput")
    assert message.startswith("end: ")


def test_expired_asset_cannot_be_licensed(run: Cli) -> None:
    run.ok(
        "asset",
        "register",
        US_PATENT,
        "--title",
        "Solid-state electrolyte",
        "--owner",
        "fudan-univ",
        "--effective",
        "2006-01-01",
        "--expires-on",
        "2026-01-01",
    )
    before = run.export()
    result = grant(run, "huawei", ref=US_PATENT, term=("2020-01-01", "2025-01-01"))
    assert_rejected(run, before, result, 1, "AssetExpired")


# --------------------------------------------------------------------------- sublicences


def test_sublicence_is_listed_under_its_parent_with_the_licensee_as_licensor(run: Cli) -> None:
    granted(run, "huawei", "exclusive", "--sublicensable", licence_id="LIC-HW")
    granted(
        run, "byd", "non_exclusive", "--parent", "LIC-HW", field=("EV batteries",), licence_id="SUB-BYD", actor="huawei"
    )
    sub = next(x for x in encumbrances(run, "--as-of", IN_TERM)["licences"] if x["id"] == "SUB-BYD")
    assert (sub["parent"], sub["licensors"], sub["licensee"]) == ("LIC-HW", ["huawei"], "byd")


def test_sublicence_outside_its_parent_scope_is_out_of_scope(run: Cli) -> None:
    granted(run, "huawei", "exclusive", "--sublicensable", territory=("CN",), licence_id="LIC-HW")
    before = run.export()
    result = grant(run, "byd", "non_exclusive", "--parent", "LIC-HW", territory=("US",), actor="huawei")
    message = assert_rejected(run, before, result, 1, "LicenceOutOfScope")
    assert "LIC-HW" in message


def test_licence_that_is_not_sublicensable_cannot_be_sublicensed(run: Cli) -> None:
    granted(run, "huawei", "exclusive", licence_id="LIC-HW")
    before = run.export()
    result = grant(run, "byd", "non_exclusive", "--parent", "LIC-HW", actor="huawei")
    assert_rejected(run, before, result, 1, "LicenceOutOfScope")


def test_sibling_sublicences_are_checked_against_each_other(run: Cli) -> None:
    granted(run, "huawei", "exclusive", "--sublicensable", licence_id="LIC-HW")
    granted(
        run, "byd", "exclusive", "--parent", "LIC-HW", field=("EV batteries",), licence_id="SUB-BYD", actor="huawei"
    )
    before = run.export()
    result = grant(run, "zte", "non_exclusive", "--parent", "LIC-HW", field=("EV batteries",), actor="huawei")
    message = assert_rejected(run, before, result, 1, "LicenceConflict")
    assert "SUB-BYD" in message


def test_sublicence_ends_when_its_parent_is_terminated(run: Cli) -> None:
    granted(run, "huawei", "exclusive", "--sublicensable", term=("2025-01-01", "2030-01-01"), licence_id="LIC-HW")
    granted(
        run,
        "byd",
        "non_exclusive",
        "--parent",
        "LIC-HW",
        term=("2025-06-01", "2029-01-01"),
        licence_id="SUB-BYD",
        actor="huawei",
    )
    run.ok(
        "licence",
        "terminate",
        "LIC-HW",
        "--reason",
        "royalties unpaid",
        "--effective",
        "2026-02-01",
        actor="fudan-univ",
    )
    assert licence_ids(run, "--as-of", "2026-01-31") == ["LIC-HW", "SUB-BYD"]
    assert licence_ids(run, "--as-of", "2026-02-01") == []


def test_member_cannot_sublicense_a_licence_it_does_not_hold(run: Cli) -> None:
    granted(run, "huawei", "exclusive", "--sublicensable", licence_id="LIC-HW")
    before = run.export()
    result = grant(run, "byd", "non_exclusive", "--parent", "LIC-HW", actor="zte")
    assert_rejected(run, before, result, 1, "NotAuthorised")


# =========================================================================== encumbrances in time


@pytest.mark.parametrize(
    ("as_of", "in_force"),
    [("2026-03-31", False), ("2026-04-01", True), ("2031-03-31", True), ("2031-04-01", False)],
)
def test_licence_is_in_force_from_its_start_until_the_day_before_its_end(run: Cli, as_of: str, in_force: bool) -> None:
    granted(run, "huawei", licence_id="LIC-HW")
    assert licence_ids(run, "--as-of", as_of) == (["LIC-HW"] if in_force else [])


def test_terminated_licence_is_not_in_force_from_its_termination_date(run: Cli) -> None:
    granted(run, "huawei", term=("2025-01-01", "2030-01-01"), licence_id="LIC-HW")
    out = doc(
        run(
            "--json",
            "licence",
            "terminate",
            "LIC-HW",
            "--reason",
            "royalties unpaid",
            "--effective",
            "2026-02-15",
            actor="fudan-univ",
        )
    )
    assert out == {"id": "LIC-HW", "status": "terminated"}
    assert licence_ids(run, "--as-of", "2026-02-14") == ["LIC-HW"]
    assert licence_ids(run, "--as-of", "2026-02-15") == []


def test_surrendered_licence_is_not_in_force_from_its_surrender_date(run: Cli) -> None:
    granted(run, "huawei", term=("2025-01-01", "2030-01-01"), licence_id="LIC-HW")
    out = doc(run("--json", "licence", "surrender", "LIC-HW", "--effective", "2026-01-10", actor="huawei"))
    assert out == {"id": "LIC-HW", "status": "surrendered"}
    assert licence_ids(run, "--as-of", "2026-01-09") == ["LIC-HW"]
    assert licence_ids(run, "--as-of", "2026-01-10") == []


def test_known_at_before_a_termination_was_recorded_still_shows_the_licence(run: Cli) -> None:
    granted(run, "huawei", term=("2025-01-01", "2030-01-01"), licence_id="LIC-HW")
    advance(run, "2026-03-05T09:00:00Z")
    run.ok("licence", "terminate", "LIC-HW", "--reason", "royalties unpaid", "--effective", "2026-03-03")
    assert licence_ids(run, "--as-of", "2026-03-04", "--known-at", "2026-03-04T00:00:00Z") == ["LIC-HW"]
    assert licence_ids(run, "--as-of", "2026-03-04", "--known-at", "2026-03-05T09:00:00Z") == []


def test_known_at_before_a_grant_was_recorded_hides_the_licence(run: Cli) -> None:
    advance(run, "2026-03-05T09:00:00Z")
    granted(run, "huawei", term=("2025-01-01", "2030-01-01"), licence_id="LIC-HW")
    assert licence_ids(run, "--as-of", "2026-03-01", "--known-at", "2026-03-04T00:00:00Z") == []
    assert licence_ids(run, "--as-of", "2026-03-01") == ["LIC-HW"]


def test_encumbrances_rejects_a_bad_as_of_date(run: Cli) -> None:
    before = run.export()
    assert_rejected(run, before, run("encumbrances", PATENT, "--as-of", "2026-13-01"), 2, "InvalidInput")


def test_encumbrances_of_an_unknown_asset_is_not_found(run: Cli) -> None:
    before = run.export()
    assert_rejected(run, before, run("encumbrances", US_PATENT), 1, "NotFound")


# --------------------------------------------------------------------------- ending licences: who may


def test_licensee_cannot_terminate_its_own_licence(run: Cli) -> None:
    granted(run, "huawei", licence_id="LIC-HW")
    before = run.export()
    result = run("licence", "terminate", "LIC-HW", "--reason", "no longer needed", actor="huawei")
    assert_rejected(run, before, result, 1, "NotAuthorised")


def test_licensor_cannot_surrender_the_licensee_licence(run: Cli) -> None:
    granted(run, "huawei", licence_id="LIC-HW")
    before = run.export()
    assert_rejected(run, before, run("licence", "surrender", "LIC-HW", actor="fudan-univ"), 1, "NotAuthorised")


def test_licence_terminate_needs_a_reason(run: Cli) -> None:
    granted(run, "huawei", licence_id="LIC-HW")
    before = run.export()
    assert_rejected(run, before, run("licence", "terminate", "LIC-HW"), 2, "InvalidInput")


def test_terminated_licence_cannot_be_terminated_again(run: Cli) -> None:
    granted(run, "huawei", licence_id="LIC-HW")
    run.ok("licence", "terminate", "LIC-HW", "--reason", "royalties unpaid")
    before = run.export()
    result = run("licence", "terminate", "LIC-HW", "--reason", "royalties unpaid")
    assert_rejected(run, before, result, 1, "InvalidState")


def test_terminating_an_unknown_licence_is_not_found(run: Cli) -> None:
    before = run.export()
    assert_rejected(run, before, run("licence", "terminate", "LIC-NONE", "--reason", "breach"), 1, "NotFound")


# --------------------------------------------------------------------------- licences survive an assignment


def test_licences_survive_an_assignment_with_the_new_owner_as_licensor(run: Cli) -> None:
    granted(run, "huawei", licence_id="LIC-HW")
    run.ok("asset", "assign", PATENT, "--to", "sjtu", actor="fudan-univ")
    (licence,) = encumbrances(run, "--as-of", IN_TERM)["licences"]
    assert (licence["id"], licence["licensors"]) == ("LIC-HW", ["sjtu"])


def test_new_owner_terminates_a_licence_granted_before_the_assignment(run: Cli) -> None:
    granted(run, "huawei", licence_id="LIC-HW")
    run.ok("asset", "assign", PATENT, "--to", "sjtu", actor="fudan-univ")
    run.ok("licence", "terminate", "LIC-HW", "--reason", "royalties unpaid", actor="sjtu")
    assert licence_ids(run, "--as-of", IN_TERM) == []


def test_former_owner_cannot_terminate_a_licence_after_assigning_the_asset(run: Cli) -> None:
    granted(run, "huawei", licence_id="LIC-HW")
    run.ok("asset", "assign", PATENT, "--to", "sjtu", actor="fudan-univ")
    before = run.export()
    result = run("licence", "terminate", "LIC-HW", "--reason", "royalties unpaid", actor="fudan-univ")
    assert_rejected(run, before, result, 1, "NotAuthorised")


# --------------------------------------------------------------------------- licences sold through a listing


def open_licence_listing(run: Cli, licence_type: str = "exclusive", *extra: str, actor: str | None = None) -> Result:
    return run(
        "listing",
        "open",
        PATENT,
        "--type",
        "licence",
        "--mechanism",
        "fixed",
        "--currency",
        "CNY",
        "--closes",
        CLOSES,
        "--ask",
        "500000.00",
        "--licence-type",
        licence_type,
        "--territory",
        "CN",
        "--field",
        "ALL",
        "--term-start",
        TERM[0],
        "--term-end",
        TERM[1],
        *extra,
        actor=actor,
    )


def buy_licence(run: Cli, trade_id: str = "T-LIC") -> str:
    listing = str(doc(open_licence_listing(run, "exclusive", "--json"))["id"])
    bid = doc(
        run(
            "--json",
            "bid",
            "place",
            listing,
            "--bidder",
            "huawei",
            "--amount",
            "500000.00",
            "--trade-id",
            trade_id,
            actor="huawei",
        )
    )
    assert bid["trade"] == trade_id
    settled = doc(run("--json", "trade", "settle", trade_id, "--payment-ref", "CNAPS-2026-0302-001"))
    return str(settled["licence"])


def test_licence_sold_through_a_listing_is_in_encumbrances(run: Cli) -> None:
    licence_id = buy_licence(run)
    (licence,) = encumbrances(run, "--as-of", IN_TERM)["licences"]
    assert {k: licence[k] for k in LICENCE_KEYS} == {
        "id": licence_id,
        "licensee": "huawei",
        "type": "exclusive",
        "territories": ["CN"],
        "fields": ["ALL"],
        "start": TERM[0],
        "end": TERM[1],
    }


def test_licence_bought_through_a_listing_blocks_a_conflicting_grant(run: Cli) -> None:
    licence_id = buy_licence(run)
    before = run.export()
    message = assert_rejected(run, before, grant(run, "zte", "sole", field=("EV batteries",)), 1, "LicenceConflict")
    assert licence_id in message


def test_licence_listing_conflicting_with_a_granted_licence_is_refused(run: Cli) -> None:
    granted(run, "zte", "sole", field=("EV batteries",), licence_id="LIC-ZTE")
    before = run.export()
    message = assert_rejected(run, before, open_licence_listing(run), 1, "LicenceConflict")
    assert "LIC-ZTE" in message


# =========================================================================== pledges


def test_pledge_register_prints_id_asset_pledgee_and_rank(run: Cli) -> None:
    out = pledge(run, "icbc-sh", "--amount", "10000000.00", "--currency", "CNY", "--end", END)
    assert out == {"id": "P-ICBC", "asset": PATENT, "pledgee": "icbc-sh", "rank": 1}


def test_registered_pledge_is_in_encumbrances_with_a_decimal_string_amount(pledged: Cli) -> None:
    (p,) = encumbrances(pledged)["pledges"]
    assert set(p) >= PLEDGE_KEYS
    assert {k: p[k] for k in PLEDGE_KEYS} == {
        "id": "P-ICBC",
        "pledgee": "icbc-sh",
        "amount": "10000000.00",
        "currency": "CNY",
        "rank": 1,
    }


def test_security_interest_without_amount_or_end_is_recorded(run: Cli) -> None:
    register_us_patent(run)
    pledge(run, "boc-bj", ref=US_PATENT, pledge_id="P-US")
    (p,) = encumbrances(run, "--as-of", "2040-01-01", ref=US_PATENT)["pledges"]
    assert (p["id"], p["amount"], p["currency"]) == ("P-US", None, None)


# Ranks need several pledges on one asset at once: US law allows that (a CN patent carries one at a time).


def test_pledges_rank_by_registration_order(run: Cli) -> None:
    register_us_patent(run)
    first = pledge(run, "icbc-sh", "--amount", "10000000.00", "--currency", "USD", ref=US_PATENT)
    assert first["rank"] == 1
    second = pledge(run, "boc-bj", "--amount", "3000000.00", "--currency", "USD", ref=US_PATENT, pledge_id="P-BOC")
    assert second["rank"] == 2
    ranks = [(p["id"], p["rank"]) for p in encumbrances(run, ref=US_PATENT)["pledges"]]
    assert ranks == [("P-ICBC", 1), ("P-BOC", 2)]


def test_second_pledge_moves_to_rank_one_when_the_first_is_released(run: Cli) -> None:
    register_us_patent(run)
    pledge(run, "icbc-sh", ref=US_PATENT)
    pledge(run, "boc-bj", ref=US_PATENT, pledge_id="P-BOC")
    run.ok("pledge", "release", "P-ICBC", actor="icbc-sh")
    assert [(p["id"], p["rank"]) for p in encumbrances(run, ref=US_PATENT)["pledges"]] == [("P-BOC", 1)]


@pytest.mark.parametrize("pledgee", ["huawei", "sjtu"])
def test_pledge_to_a_member_that_is_not_a_financial_institution_is_refused(run: Cli, pledgee: str) -> None:
    before = run.export()
    result = run("pledge", "register", PATENT, "--pledgee", pledgee, "--end", END, actor="fudan-univ")
    assert_rejected(run, before, result, 1, "NotEligible")


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param(("--amount", "10000000.00", "--end", END), id="amount without currency"),
        pytest.param(("--amount", "1e7", "--currency", "CNY", "--end", END), id="amount in exponent notation"),
        pytest.param(("--amount", "10000000.001", "--currency", "CNY", "--end", END), id="more decimals than CNY has"),
        pytest.param(("--amount", "10000000.00", "--currency", "RMB", "--end", END), id="unknown currency"),
        pytest.param(("--start", "2026-03-03", "--end", END), id="start after the recorded date"),
        pytest.param(("--start", "2026-03-01", "--end", "2026-03-01"), id="end not after start"),
        pytest.param(("--end", "01/03/2029"), id="bad date"),
    ],
)
def test_pledge_register_rejects_invalid_values_as_bad_input(run: Cli, extra: tuple[str, ...]) -> None:
    """Each case states an end (a CN pledge must), so the value under test is what is refused."""
    before = run.export()
    result = run("pledge", "register", PATENT, "--pledgee", "icbc-sh", *extra, actor="fudan-univ")
    assert_rejected(run, before, result, 2, "InvalidInput")


def test_member_cannot_pledge_an_asset_it_does_not_own(run: Cli) -> None:
    before = run.export()
    assert_rejected(
        run,
        before,
        run("pledge", "register", PATENT, "--pledgee", "icbc-sh", "--end", END, actor="huawei"),
        1,
        "NotOwner",
    )


def test_expired_asset_cannot_be_pledged(run: Cli) -> None:
    run.ok(
        "asset",
        "register",
        US_PATENT,
        "--title",
        "Solid-state electrolyte",
        "--owner",
        "fudan-univ",
        "--effective",
        "2006-01-01",
        "--expires-on",
        "2026-01-01",
    )
    before = run.export()
    result = run("pledge", "register", US_PATENT, "--pledgee", "icbc-sh", actor="fudan-univ")
    assert_rejected(run, before, result, 1, "AssetExpired")


def test_asset_in_an_open_assignment_listing_cannot_be_pledged(run: Cli) -> None:
    run.ok(
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
        "8000000.00",
        actor="fudan-univ",
    )
    before = run.export()
    result = run("pledge", "register", PATENT, "--pledgee", "icbc-sh", "--end", END, actor="fudan-univ")
    assert_rejected(run, before, result, 1, "AssetReserved")


# --------------------------------------------------------------------------- pledgee consents


def test_unconsented_assignment_of_a_pledged_asset_names_the_pledgee_and_the_pledge(pledged: Cli) -> None:
    before = pledged.export()
    result = pledged("asset", "assign", PATENT, "--to", "huawei", actor="fudan-univ")
    message = assert_rejected(pledged, before, result, 1, "AssetPledged")
    assert "icbc-sh" in message and "P-ICBC" in message


def test_asset_pledged_error_in_json_form_goes_to_stderr(pledged: Cli) -> None:
    before = pledged.export()
    result = pledged("--json", "asset", "assign", PATENT, "--to", "huawei", actor="fudan-univ")
    assert (result.exit_code, result.stdout) == (1, "")
    err = json.loads(result.stderr)
    assert set(err) == {"error", "message"} and err["error"] == "AssetPledged"
    assert "icbc-sh" in err["message"] and "P-ICBC" in err["message"]
    assert pledged.export() == before


def test_pledgee_consent_prints_the_consent_id_pledge_and_act(pledged: Cli) -> None:
    out = doc(
        pledged("--json", "pledge", "consent", "P-ICBC", "--act", "assignment", "--id", "C-ICBC-1", actor="icbc-sh")
    )
    assert out == {"id": "C-ICBC-1", "pledge": "P-ICBC", "act": "assignment"}


def test_assignment_with_the_pledgee_consent_conveys_title(pledged: Cli) -> None:
    consent_id = consent(pledged, act="assignment")
    pledged.ok("asset", "assign", PATENT, "--to", "huawei", "--consent", consent_id, actor="fudan-univ")
    assert owners(pledged) == [{"member": "huawei", "share": "1"}]


def test_used_pledgee_consent_cannot_be_used_again(pledged: Cli) -> None:
    consent_id = consent(pledged, act="assignment")
    pledged.ok("asset", "assign", PATENT, "--to", "huawei", "--consent", consent_id, actor="fudan-univ")
    before = pledged.export()
    result = pledged("asset", "assign", PATENT, "--to", "zte", "--consent", consent_id, actor="huawei")
    message = assert_rejected(pledged, before, result, 1, "AssetPledged")
    assert "P-ICBC" in message


def test_pledge_stays_on_the_asset_after_a_consented_assignment(pledged: Cli) -> None:
    consent_id = consent(pledged, act="assignment")
    pledged.ok("asset", "assign", PATENT, "--to", "huawei", "--consent", consent_id, actor="fudan-univ")
    assert [p["id"] for p in encumbrances(pledged)["pledges"]] == ["P-ICBC"]


def test_consent_to_licensing_does_not_permit_an_assignment(pledged: Cli) -> None:
    consent_id = consent(pledged, act="licence")
    before = pledged.export()
    result = pledged("asset", "assign", PATENT, "--to", "huawei", "--consent", consent_id, actor="fudan-univ")
    assert_rejected(pledged, before, result, 1, "AssetPledged")


def test_unconsented_licence_of_a_pledged_asset_is_refused(pledged: Cli) -> None:
    before = pledged.export()
    message = assert_rejected(pledged, before, grant(pledged, "huawei", actor="fudan-univ"), 1, "AssetPledged")
    assert "icbc-sh" in message and "P-ICBC" in message


def test_licence_of_a_pledged_asset_with_the_pledgee_consent_is_granted(pledged: Cli) -> None:
    consent_id = consent(pledged, act="licence")
    granted(pledged, "huawei", "exclusive", "--consent", consent_id, licence_id="LIC-HW", actor="fudan-univ")
    assert licence_ids(pledged, "--as-of", IN_TERM) == ["LIC-HW"]


def test_unconsented_assignment_listing_of_a_pledged_asset_is_refused(pledged: Cli) -> None:
    before = pledged.export()
    result = pledged(
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
        "8000000.00",
        actor="fudan-univ",
    )
    assert_rejected(pledged, before, result, 1, "AssetPledged")


@pytest.mark.parametrize("actor", ["fudan-univ", "boc-bj"])
def test_only_the_pledgee_consents_under_a_pledge(pledged: Cli, actor: str) -> None:
    before = pledged.export()
    result = pledged("pledge", "consent", "P-ICBC", "--act", "assignment", actor=actor)
    assert_rejected(pledged, before, result, 1, "NotAuthorised")


def test_pledgee_consent_to_an_unknown_act_is_bad_input(pledged: Cli) -> None:
    before = pledged.export()
    result = pledged("pledge", "consent", "P-ICBC", "--act", "pledge", actor="icbc-sh")
    assert_rejected(pledged, before, result, 2, "InvalidInput")


def test_encumbrances_and_the_consent_rule_agree_on_a_pledge_past_its_term_end(run: Cli) -> None:
    """A pledge that `encumbrances` no longer lists as in force must not still block the owner (or,
    if it does still bind the asset until released, `encumbrances` must list it): one answer, not two."""
    pledge(
        run,
        "icbc-sh",
        "--amount",
        "10000000.00",
        "--currency",
        "CNY",
        "--start",
        "2024-01-01",
        "--end",
        "2026-01-01",
        pledge_id="P-OLD",
    )
    listed = [p["id"] for p in encumbrances(run)["pledges"]] == ["P-OLD"]
    blocks = run("asset", "assign", PATENT, "--to", "huawei", actor="fudan-univ").exit_code != 0
    assert listed == blocks, f"encumbrances lists the pledge: {listed}; it blocks an assignment: {blocks}"


def test_known_at_before_a_release_was_recorded_still_shows_the_pledge(pledged: Cli) -> None:
    advance(pledged, "2026-03-20T09:00:00Z")
    pledged.ok("pledge", "release", "P-ICBC", "--effective", "2026-03-10", actor="icbc-sh")
    as_known = encumbrances(pledged, "--as-of", "2026-03-15", "--known-at", "2026-03-19T00:00:00Z")
    assert [p["id"] for p in as_known["pledges"]] == ["P-ICBC"]
    assert encumbrances(pledged, "--as-of", "2026-03-15")["pledges"] == []


# --------------------------------------------------------------------------- release and enforcement


def test_released_pledge_leaves_encumbrances_and_frees_the_asset(pledged: Cli) -> None:
    out = doc(pledged("--json", "pledge", "release", "P-ICBC", actor="icbc-sh"))
    assert out == {"id": "P-ICBC", "status": "released"}
    assert encumbrances(pledged)["pledges"] == []
    pledged.ok("asset", "assign", PATENT, "--to", "huawei", actor="fudan-univ")


def test_released_pledge_stays_in_encumbrances_as_of_before_its_release(pledged: Cli) -> None:
    advance(pledged, "2026-04-01T09:00:00Z")
    pledged.ok("pledge", "release", "P-ICBC", actor="icbc-sh")
    assert [p["id"] for p in encumbrances(pledged, "--as-of", "2026-03-31")["pledges"]] == ["P-ICBC"]
    assert encumbrances(pledged, "--as-of", "2026-04-01")["pledges"] == []


@pytest.mark.parametrize("verb", ["release", "enforce"])
@pytest.mark.parametrize("actor", ["fudan-univ", "boc-bj"])
def test_only_the_pledgee_releases_or_enforces_a_pledge(pledged: Cli, verb: str, actor: str) -> None:
    before = pledged.export()
    assert_rejected(pledged, before, pledged("pledge", verb, "P-ICBC", actor=actor), 1, "NotAuthorised")


def test_enforcement_moves_title_to_the_pledgee(pledged: Cli) -> None:
    out = doc(pledged("--json", "pledge", "enforce", "P-ICBC", actor="icbc-sh"))
    assert out["status"] == "enforced"
    assert owners(pledged) == [{"member": "icbc-sh", "share": "1"}]
    last = doc(pledged("--json", "title", PATENT))["conveyances"][-1]
    assert (last["kind"], last["from"], last["to"], last["effective"]) == (
        "enforcement",
        ["fudan-univ"],
        ["icbc-sh"],
        "2026-03-02",
    )


def test_enforced_pledge_leaves_encumbrances(pledged: Cli) -> None:
    pledged.ok("pledge", "enforce", "P-ICBC", actor="icbc-sh")
    assert encumbrances(pledged)["pledges"] == []


def test_licences_survive_enforcement_with_the_pledgee_as_licensor(pledged: Cli) -> None:
    consent_id = consent(pledged, act="licence")
    granted(pledged, "huawei", "non_exclusive", "--consent", consent_id, licence_id="LIC-HW", actor="fudan-univ")
    pledged.ok("pledge", "enforce", "P-ICBC", actor="icbc-sh")
    (licence,) = encumbrances(pledged, "--as-of", IN_TERM)["licences"]
    assert (licence["id"], licence["licensors"]) == ("LIC-HW", ["icbc-sh"])


def test_released_pledge_cannot_be_enforced(pledged: Cli) -> None:
    pledged.ok("pledge", "release", "P-ICBC", actor="icbc-sh")
    before = pledged.export()
    assert_rejected(pledged, before, pledged("pledge", "enforce", "P-ICBC", actor="icbc-sh"), 1, "InvalidState")


def test_enforcing_an_unknown_pledge_is_not_found(run: Cli) -> None:
    before = run.export()
    assert_rejected(run, before, run("pledge", "enforce", "P-NONE", actor="icbc-sh"), 1, "NotFound")


def test_pledge_financing_story(run: Cli, wall_clock: Callable[[str], None]) -> None:
    """fudan-univ borrows from icbc-sh against its patent, sells with the bank's consent,
    the loan is repaid; the buyer re-pledges to boc-bj, defaults, and the bank takes title."""
    wall_clock("2027-06-01T00:00:00Z")  # the story runs into 2027
    pledge(run, "icbc-sh", "--amount", "10000000.00", "--currency", "CNY", "--end", "2029-03-01")

    before = run.export()
    refused = run("asset", "assign", PATENT, "--to", "huawei", actor="fudan-univ")
    message = assert_rejected(run, before, refused, 1, "AssetPledged")
    assert "icbc-sh" in message and "P-ICBC" in message

    advance(run, "2026-03-03T09:00:00Z")
    consent_id = consent(run, "P-ICBC", "assignment", actor="icbc-sh")
    run.ok("asset", "assign", PATENT, "--to", "huawei", "--consent", consent_id, actor="fudan-univ")
    assert owners(run) == [{"member": "huawei", "share": "1"}]

    before = run.export()
    reused = run("asset", "assign", PATENT, "--to", "zte", "--consent", consent_id, actor="huawei")
    assert_rejected(run, before, reused, 1, "AssetPledged")

    advance(run, "2026-06-30T09:00:00Z")
    run.ok("pledge", "release", "P-ICBC", actor="icbc-sh")
    assert encumbrances(run)["pledges"] == []

    advance(run, "2026-07-01T09:00:00Z")
    pledge(
        run,
        "boc-bj",
        "--amount",
        "6000000.00",
        "--currency",
        "CNY",
        "--end",
        "2029-07-01",
        pledge_id="P-BOC",
        actor="huawei",
    )
    assert [(p["id"], p["pledgee"], p["rank"]) for p in encumbrances(run)["pledges"]] == [("P-BOC", "boc-bj", 1)]

    advance(run, "2027-01-15T09:00:00Z")
    run.ok("pledge", "enforce", "P-BOC", actor="boc-bj")
    assert owners(run) == [{"member": "boc-bj", "share": "1"}]
    kinds = [(c["kind"], c["to"]) for c in doc(run("--json", "title", PATENT))["conveyances"]]
    assert kinds == [
        ("registration", ["fudan-univ"]),
        ("assignment", ["huawei"]),
        ("enforcement", ["boc-bj"]),
    ]
    assert encumbrances(run)["pledges"] == []


# =========================================================================== co-owned assets

CO_OWNER_ACTS = {
    "assignment": ("asset", "assign", CO_OWNED, "--to", "huawei"),
    "pledge": ("pledge", "register", CO_OWNED, "--pledgee", "icbc-sh", "--end", END),
    "exclusive_licence": (
        "licence",
        "grant",
        CO_OWNED,
        "--licensee",
        "huawei",
        "--type",
        "exclusive",
        "--territory",
        "CN",
        "--field",
        "ALL",
        "--start",
        TERM[0],
        "--end",
        TERM[1],
    ),
    "listing": (
        "listing",
        "open",
        CO_OWNED,
        "--type",
        "assignment",
        "--mechanism",
        "fixed",
        "--currency",
        "CNY",
        "--closes",
        CLOSES,
        "--ask",
        "2000000.00",
    ),
}


@pytest.mark.parametrize("act", list(CO_OWNER_ACTS))
def test_co_owner_alone_cannot_act_without_the_other_co_owner_consent(co_owned: Cli, act: str) -> None:
    before = co_owned.export()
    result = co_owned(*CO_OWNER_ACTS[act], actor="fudan-univ")
    message = assert_rejected(co_owned, before, result, 1, "ConsentMissing")
    assert "cas-sippr" in message


@pytest.mark.parametrize("act", list(CO_OWNER_ACTS))
def test_co_owner_consent_lets_one_co_owner_act_alone(co_owned: Cli, act: str) -> None:
    co_owned.ok("asset", "consent", CO_OWNED, "--member", "cas-sippr", "--act", act, actor="cas-sippr")
    co_owned.ok(*CO_OWNER_ACTS[act], actor="fudan-univ")


def test_co_owner_consent_prints_its_id_asset_member_and_act(co_owned: Cli) -> None:
    out = doc(
        co_owned(
            "--json",
            "asset",
            "consent",
            CO_OWNED,
            "--member",
            "cas-sippr",
            "--act",
            "pledge",
            "--id",
            "CC-1",
            actor="cas-sippr",
        )
    )
    assert out == {"id": "CC-1", "asset": CO_OWNED, "member": "cas-sippr", "act": "pledge"}


def test_co_owner_consent_is_used_up_by_one_act(co_owned: Cli) -> None:
    co_owned.ok("asset", "consent", CO_OWNED, "--member", "cas-sippr", "--act", "exclusive_licence", actor="cas-sippr")
    granted(co_owned, "huawei", "exclusive", ref=CO_OWNED, territory=("CN",), actor="fudan-univ")
    before = co_owned.export()
    result = grant(co_owned, "zte", "exclusive", ref=CO_OWNED, territory=("US",), actor="fudan-univ")
    assert_rejected(co_owned, before, result, 1, "ConsentMissing")


def test_co_owner_consent_to_one_act_does_not_permit_another(co_owned: Cli) -> None:
    co_owned.ok("asset", "consent", CO_OWNED, "--member", "cas-sippr", "--act", "pledge", actor="cas-sippr")
    before = co_owned.export()
    result = co_owned(*CO_OWNER_ACTS["assignment"], actor="fudan-univ")
    assert_rejected(co_owned, before, result, 1, "ConsentMissing")


@pytest.mark.parametrize("type_", ["non_exclusive", "sole"])
def test_one_co_owner_grants_a_non_exclusive_licence_without_consent(co_owned: Cli, type_: str) -> None:
    granted(co_owned, "huawei", type_, ref=CO_OWNED, licence_id="LIC-HW", actor="cas-sippr")
    (licence,) = encumbrances(co_owned, "--as-of", IN_TERM, ref=CO_OWNED)["licences"]
    assert (licence["id"], licence["licensors"]) == ("LIC-HW", ["cas-sippr", "fudan-univ"])


def test_co_owner_cannot_consent_for_the_other_co_owner(co_owned: Cli) -> None:
    before = co_owned.export()
    result = co_owned("asset", "consent", CO_OWNED, "--member", "cas-sippr", "--act", "assignment", actor="fudan-univ")
    assert_rejected(co_owned, before, result, 1, "NotAuthorised")


def test_non_owner_cannot_give_a_co_owner_consent(co_owned: Cli) -> None:
    before = co_owned.export()
    result = co_owned("asset", "consent", CO_OWNED, "--member", "huawei", "--act", "assignment", actor="huawei")
    assert_rejected(co_owned, before, result, 1, "NotOwner")


def test_co_owner_consent_to_an_act_that_does_not_bind_co_owners_is_bad_input(co_owned: Cli) -> None:
    before = co_owned.export()
    result = co_owned("asset", "consent", CO_OWNED, "--member", "cas-sippr", "--act", "licence", actor="cas-sippr")
    assert_rejected(co_owned, before, result, 2, "InvalidInput")


def test_operator_assigns_a_co_owned_asset_for_all_owners_without_consent(co_owned: Cli) -> None:
    co_owned.ok("asset", "assign", CO_OWNED, "--to", "huawei")
    assert owners(co_owned, CO_OWNED) == [{"member": "huawei", "share": "1"}]


# =========================================================================== who may write


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(
            (
                "licence",
                "grant",
                PATENT,
                "--licensee",
                "huawei",
                "--type",
                "non_exclusive",
                "--territory",
                "CN",
                "--field",
                "ALL",
                "--start",
                TERM[0],
                "--end",
                TERM[1],
            ),
            id="licence grant",
        ),
        pytest.param(("licence", "terminate", "LIC-HW", "--reason", "audit"), id="licence terminate"),
        pytest.param(("licence", "surrender", "LIC-HW"), id="licence surrender"),
        pytest.param(("pledge", "register", PATENT, "--pledgee", "boc-bj"), id="pledge register"),
        pytest.param(("pledge", "consent", "P-ICBC", "--act", "assignment"), id="pledge consent"),
        pytest.param(("pledge", "release", "P-ICBC"), id="pledge release"),
        pytest.param(("pledge", "enforce", "P-ICBC"), id="pledge enforce"),
        pytest.param(("asset", "consent", PATENT, "--member", "fudan-univ", "--act", "pledge"), id="asset consent"),
    ],
)
def test_auditor_cannot_write(pledged: Cli, args: tuple[str, ...]) -> None:
    granted(
        pledged,
        "huawei",
        "non_exclusive",
        "--consent",
        consent(pledged, act="licence"),
        licence_id="LIC-HW",
        actor="fudan-univ",
    )
    before = pledged.export()
    assert_rejected(pledged, before, pledged(*args, actor="auditor"), 1, "NotAuthorised")
