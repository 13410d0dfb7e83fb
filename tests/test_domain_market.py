"""Domain rules of the market, without a store: members, the title register, listings,
bids and trades.

Aggregates are built directly and driven through their public methods. Each accepted
command is checked by the events it records (`collect_events()`); each rejection by
its named error, a message that starts with the field it names, and the absence of
any event recorded by the rejected call.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipledger.domain.assets import Asset
from ipledger.domain.errors import (
    AssetExpired,
    AssetReserved,
    BidNotWithdrawable,
    BidTooLow,
    ConsentMissing,
    InvalidInput,
    InvalidState,
    ListingNotOpen,
    ListingStillOpen,
    MemberSuspended,
    NotAuthorised,
    NotFound,
    NotOwner,
    SelfDealing,
    TradeResolved,
)
from ipledger.domain.listings import Listing
from ipledger.domain.members import Member
from ipledger.domain.scopes import Scope, conflicts, parse_scope
from ipledger.domain.status import NO_BIDS, RESERVE_NOT_MET
from ipledger.domain.trades import Trade
from ipledger.domain.values import (
    Actor,
    AssetKind,
    AssetRef,
    ConveyanceKind,
    LicenceType,
    ListingType,
    Mechanism,
    MemberKind,
    format_share,
    minor,
    parse_amount,
    parse_country,
    parse_currency,
    parse_member_id,
    parse_owners,
    parse_share,
)
from ipledger.domain.visibility import HIDDEN, reserve_shown, sees_reserve
from tests.builders import (
    AUDITOR,
    BYD,
    CAS,
    CLOSES,
    FUDAN,
    HUAWEI,
    OPERATOR,
    PATENT,
    REGISTERED_ON,
    SETTLEMENT_DAYS,
    T0,
    US_PATENT,
    ZTE,
    admit,
    bid,
    cny,
    events,
    names,
    open_listing,
    pending_trade,
    register,
    rejected,
    scope,
    suspended,
)

# =========================================================================== values: asset refs


@pytest.mark.parametrize(
    ("text", "jurisdiction", "kind", "number"),
    [
        ("CN/patent/ZL201810012345.6", "CN", AssetKind.patent, "ZL201810012345.6"),
        ("US/patent/7654321", "US", AssetKind.patent, "7654321"),
        ("EP/patent/EP3456789", "EP", AssetKind.patent, "EP3456789"),
        ("EM/trademark/018123456", "EM", AssetKind.trademark, "018123456"),
        ("WO/patent_application/PCT/CN2019/123456", "WO", AssetKind.patent_application, "PCT/CN2019/123456"),
        ("CN/software_copyright/2019SR0123456", "CN", AssetKind.software_copyright, "2019SR0123456"),
        ("US/patent_application/16123456", "US", AssetKind.patent_application, "16123456"),
    ],
)
def test_asset_ref_accepts_country_codes_and_regional_offices(
    text: str, jurisdiction: str, kind: AssetKind, number: str
) -> None:
    ref = AssetRef.parse(text)
    assert (ref.jurisdiction, ref.kind, ref.number) == (jurisdiction, kind, number)
    assert str(ref) == text


def test_asset_ref_trims_surrounding_space_of_number() -> None:
    assert str(AssetRef.parse("  CN/patent/ ZL201810012345.6  ")) == PATENT


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("CN/patent/ZL2018 10012345.6", PATENT),
        ("CN/patent/201810012345.6", PATENT),
        ("CN/patent/2018100123456", PATENT),
        ("CN/utility_model/ZL99201234.5", "CN/utility_model/ZL99201234.5"),
        ("US/patent/07654321", US_PATENT),
        ("US/patent/7,654,321", US_PATENT),
        ("US/patent_application/16-123456", "US/patent_application/16123456"),
    ],
)
def test_asset_ref_spells_a_registry_number_as_its_jurisdiction_does(text: str, canonical: str) -> None:
    """jurisdictions.md: a CN patent number is ZL + digits + '.' + check character however typed;
    a US patent drops commas and leading zeros, a US application is 8 digits."""
    assert str(AssetRef.parse(text)) == canonical


@pytest.mark.parametrize("jurisdiction", ["UK", "XX", "EU", "QQ"])
def test_asset_ref_rejects_jurisdiction_that_is_neither_country_nor_regional_office(jurisdiction: str) -> None:
    with pytest.raises(InvalidInput, match=rf"^ref: jurisdiction '{jurisdiction}'"):
        AssetRef.parse(f"{jurisdiction}/patent/1234567")


@pytest.mark.parametrize(
    "text",
    [
        "CN/patent",
        "CN-patent-ZL201810012345.6",
        "CN/trademark/12345678/",
        "CN/trademark/12345678.",
        "CN/trademark/A1-",
        "CN/trademark/A1//",
        "CN/trademark/A1//2",
        "CN//patent/ZL201810012345.6",
        "CN/trademark/1234 5678",
        "CN/trademark/1234_5678",
        "CN/trademark/",
        "",
        "CHN/patent/ZL201810012345.6",
    ],
)
def test_asset_ref_rejects_bad_syntax(text: str) -> None:
    """The general syntax, on a kind whose number the CN pack leaves as typed (trademark)."""
    with pytest.raises(InvalidInput, match=r"^ref: .* is not an asset ref JURISDICTION/KIND/NUMBER"):
        AssetRef.parse(text)


@pytest.mark.parametrize(
    "text",
    [
        "CN/patent/ZL201810012345.6/",
        "CN/patent/ZL201810012345.6.",
        "CN/patent/A1-",
        "CN/patent/A1//2",
        "CN/patent/ZL2018_10012345",
        "CN/patent/ZL201810012345",
        "CN/patent/",
        "CN/patent_application/A1",
    ],
)
def test_asset_ref_rejects_a_cn_patent_number_not_spelt_zl_digits_check_character(text: str) -> None:
    with pytest.raises(InvalidInput, match=r"^ref: .* is not a CN patent number: "):
        AssetRef.parse(text)


@pytest.mark.parametrize(
    "text", ["cn/patent/zl201810012345.6", "CN/Patent/ZL201810012345.6", "Cn/PATENT/zL201810012345.6"]
)
def test_asset_ref_spellings_that_differ_only_in_case_are_one_canonical_ref(text: str) -> None:
    assert str(AssetRef.parse(text)) == PATENT


def test_asset_ref_rejects_unknown_kind() -> None:
    with pytest.raises(InvalidInput, match=r"^ref kind: 'invention' is not one of patent, "):
        AssetRef.parse("CN/invention/ZL201810012345.6")


# =========================================================================== values: money


def test_amount_is_quantised_to_currency_minor_units() -> None:
    assert str(parse_amount("1250000", "CNY")) == "1250000.00"
    assert str(parse_amount("1250000.5", "USD")) == "1250000.50"
    assert str(parse_amount("15000000", "JPY")) == "15000000"
    assert str(parse_amount(Decimal("99.90"), "EUR")) == "99.90"
    assert str(parse_amount(300, "CNY")) == "300.00"


@pytest.mark.parametrize("value", [1250000.0, 0.1, True])
def test_amount_rejects_floats(value: Any) -> None:
    with pytest.raises(InvalidInput, match=r"^amount: amounts are decimal strings, not floats"):
        parse_amount(value, "CNY")


@pytest.mark.parametrize(
    ("text", "currency", "places"),
    [("1250000.001", "CNY", 2), ("99.999", "USD", 2), ("1500000.5", "JPY", 0), ("10.25", "JPY", 0)],
)
def test_amount_rejects_more_decimals_than_currency_minor_units(text: str, currency: str, places: int) -> None:
    with pytest.raises(InvalidInput, match=rf"^amount: {text} has more than {places} decimal places, .*{currency}"):
        parse_amount(text, currency)


@pytest.mark.parametrize("text", ["0", "0.00", "-5", "-1250000.00"])
def test_amount_must_be_positive(text: str) -> None:
    with pytest.raises(InvalidInput, match=r"^amount: "):
        parse_amount(text, "CNY")


@pytest.mark.parametrize("text", ["1,250,000.00", "1e6", "CNY 100", "", ".50"])
def test_amount_rejects_text_that_is_not_a_decimal(text: str) -> None:
    with pytest.raises(InvalidInput, match=r"^amount: .* is not a positive decimal amount"):
        parse_amount(text, "CNY")


def test_amount_names_the_field_it_was_given_for() -> None:
    with pytest.raises(InvalidInput, match=r"^ask: "):
        parse_amount("12.345", "CNY", "ask")


@pytest.mark.parametrize("code", ["RMB", "XYZ", "cny", "XAU", ""])
def test_unknown_currency_is_rejected(code: str) -> None:
    with pytest.raises(InvalidInput, match=r"^currency: .* is not an ISO 4217 currency code"):
        parse_currency(code)


def test_known_currencies_are_accepted() -> None:
    assert [parse_currency(c) for c in ("CNY", "USD", "EUR", "JPY")] == ["CNY", "USD", "EUR", "JPY"]


@given(st.integers(min_value=1, max_value=10**13), st.sampled_from(["CNY", "USD", "EUR", "JPY", "KWD"]))
def test_amount_in_minor_units_round_trips(units: int, currency: str) -> None:
    places = {"JPY": 0, "KWD": 3}.get(currency, 2)
    text = str(Decimal(units).scaleb(-places))
    amount = parse_amount(text, currency)
    assert minor(amount, currency) == units
    assert amount.as_tuple().exponent == -places


# =========================================================================== values: shares and owners


@pytest.mark.parametrize(
    ("text", "share"),
    [
        ("1/3", Fraction(1, 3)),
        ("0.25", Fraction(1, 4)),
        ("1", Fraction(1)),
        ("2/4", Fraction(1, 2)),
        (" 1/3 ", Fraction(1, 3)),
    ],
)
def test_share_is_an_exact_fraction(text: str, share: Fraction) -> None:
    assert parse_share(text) == share


@pytest.mark.parametrize("text", ["0", "0/5", "3/2", "1.5", "1/0", "-1/3", "one third", "0.3333333333", ""])
def test_share_must_be_a_fraction_in_zero_to_one(text: str) -> None:
    with pytest.raises(InvalidInput, match=r"^share: "):
        parse_share(text)


def test_three_inventors_own_a_third_each() -> None:
    owners = parse_owners(["fudan-univ=1/3", "sjtu=1/3", "huawei=1/3"])
    assert owners == {"fudan-univ": "1/3", "sjtu": "1/3", "huawei": "1/3"}


def test_owner_shares_are_output_in_lowest_terms() -> None:
    assert parse_owners(["fudan-univ=0.5", "huawei=2/4"]) == {"fudan-univ": "1/2", "huawei": "1/2"}
    assert parse_owners(["fudan-univ=0.25", "huawei=0.75"]) == {"fudan-univ": "1/4", "huawei": "3/4"}


def test_sole_owner_without_share_owns_one() -> None:
    assert parse_owners(["huawei"]) == {"huawei": "1"}


def test_decimal_thirds_do_not_sum_to_one() -> None:
    with pytest.raises(InvalidInput, match=r"^owner: shares must sum exactly to 1, they sum to 999/1000"):
        parse_owners(["fudan-univ=0.333", "sjtu=0.333", "huawei=0.333"])


@pytest.mark.parametrize(
    "specs",
    [["fudan-univ=1/2", "huawei=1/3"], ["fudan-univ=1/2", "huawei=2/3"], ["huawei=1/2"], ["huawei=0.999"]],
)
def test_owner_shares_that_do_not_sum_to_one_are_rejected(specs: list[str]) -> None:
    with pytest.raises(InvalidInput, match=r"^owner: shares must sum exactly to 1"):
        parse_owners(specs)


def test_co_owners_each_need_a_share() -> None:
    with pytest.raises(InvalidInput, match=r"^owner: huawei needs a share"):
        parse_owners(["fudan-univ=1/2", "huawei"])


def test_an_owner_may_be_named_once() -> None:
    with pytest.raises(InvalidInput, match=r"^owner: huawei is named twice"):
        parse_owners(["huawei=1/2", "huawei=1/2"])


def test_at_least_one_owner_is_required() -> None:
    with pytest.raises(InvalidInput, match=r"^owner: at least one owner"):
        parse_owners([])


@given(
    weights=st.lists(st.integers(min_value=1, max_value=999), min_size=1, max_size=6),
    scale=st.integers(min_value=1, max_value=1000),
)
def test_shares_summing_to_one_parse_to_lowest_terms(weights: list[int], scale: int) -> None:
    total = sum(weights)
    owners = [f"inventor-{i}" for i in range(len(weights))]
    specs = [f"{m}={w * scale}/{total * scale}" for m, w in zip(owners, weights, strict=True)]
    parsed = parse_owners(specs)
    assert list(parsed) == owners
    assert sum((Fraction(s) for s in parsed.values()), Fraction(0)) == 1
    for (member, share), w in zip(parsed.items(), weights, strict=True):
        assert Fraction(share) == Fraction(w, total), member
        assert share == format_share(Fraction(share))  # already in lowest terms


@given(
    weights=st.lists(st.integers(min_value=1, max_value=999), min_size=2, max_size=6),
    bump=st.integers(min_value=1, max_value=999),
)
def test_shares_not_summing_to_one_are_always_rejected(weights: list[int], bump: int) -> None:
    total = sum(weights)
    denominator = total + bump  # every share shrinks: the sum falls short of 1
    specs = [f"inventor-{i}={w}/{denominator}" for i, w in enumerate(weights)]
    with pytest.raises(InvalidInput, match=r"^owner: shares must sum exactly to 1"):
        parse_owners(specs)


@given(st.fractions(min_value=Fraction(1, 10**6), max_value=1, max_denominator=10**6))
def test_formatted_share_parses_back_to_itself(share: Fraction) -> None:
    assert parse_share(format_share(share)) == share


@given(st.decimals(min_value=Decimal("0.000001"), max_value=1, places=6))
def test_decimal_share_equals_its_exact_fraction(value: Decimal) -> None:
    text = format(value, "f")
    assert parse_share(text) == Fraction(value)


# =========================================================================== values: parties


@pytest.mark.parametrize("member_id", ["fudan-univ", "icbc-sh", "us-bank-national-association", "3m", "zte"])
def test_member_id_slug_is_accepted(member_id: str) -> None:
    assert parse_member_id(member_id) == member_id


@pytest.mark.parametrize("member_id", ["h", "Huawei", "-zte", "icbc_sh", "a" * 33, "fudan univ", ""])
def test_member_id_must_be_a_slug_of_2_to_32_characters(member_id: str) -> None:
    with pytest.raises(InvalidInput, match=r"^member: .* is not a member id"):
        parse_member_id(member_id)


@pytest.mark.parametrize("role", ["operator", "auditor"])
def test_role_names_cannot_be_member_ids(role: str) -> None:
    with pytest.raises(InvalidInput, match=r"^member: .* is a role name"):
        parse_member_id(role)


@pytest.mark.parametrize("code", ["UK", "cn", "CHN", "EP"])
def test_member_country_must_be_iso_3166_alpha_2(code: str) -> None:
    with pytest.raises(InvalidInput, match=r"^country: "):
        parse_country(code)


def test_actor_roles_and_member_acting_for_itself() -> None:
    assert OPERATOR.is_operator and OPERATOR.acts_for("huawei") and OPERATOR.acts_for("zte")
    assert AUDITOR.role == "auditor" and not AUDITOR.acts_for("huawei")
    assert HUAWEI.role == "member" and HUAWEI.member_id == "huawei"
    assert HUAWEI.acts_for("huawei") and not HUAWEI.acts_for("zte")


def test_actor_that_is_neither_role_nor_member_id_is_rejected() -> None:
    with pytest.raises(InvalidInput, match=r"^actor: "):
        Actor.parse("Huawei Technologies")


# =========================================================================== members


def test_operator_admits_member_as_active() -> None:
    member = Member.admit(
        member_id="fudan-univ",
        name="Fudan University",
        kind=MemberKind.university,
        country="CN",
        actor=OPERATOR,
        at=T0,
    )
    [admitted] = events(member)
    assert type(admitted).__qualname__ == "Member.Admitted"
    assert (admitted.member_id, admitted.kind, admitted.country, admitted.timestamp) == (
        "fudan-univ",
        "university",
        "CN",
        T0,
    )
    assert member.status == "active"


@pytest.mark.parametrize("actor", [HUAWEI, AUDITOR])
def test_only_operator_admits_members(actor: Actor) -> None:
    with pytest.raises(NotAuthorised, match=r"^actor: only the operator admits members"):
        Member.admit(member_id="byd", name="BYD", kind=MemberKind.enterprise, country="CN", actor=actor, at=T0)


def test_operator_suspends_and_reinstates_member() -> None:
    member = admit("zte")
    member.suspend(actor=OPERATOR, at=T0)
    assert member.status == "suspended"
    member.reinstate(actor=OPERATOR, at=T0 + timedelta(days=1))
    assert member.is_active
    assert names(member) == ["Member.Suspended", "Member.Reinstated"]


@pytest.mark.parametrize("actor", [HUAWEI, Actor.parse("zte"), AUDITOR])
def test_only_operator_suspends_members(actor: Actor) -> None:
    member = admit("zte")
    with rejected(NotAuthorised, "actor", member):
        member.suspend(actor=actor, at=T0)
    assert member.is_active


@pytest.mark.parametrize("actor", [Actor.parse("zte"), AUDITOR])
def test_only_operator_reinstates_members(actor: Actor) -> None:
    member = suspended("zte")
    with rejected(NotAuthorised, "actor", member):
        member.reinstate(actor=actor, at=T0)
    assert member.status == "suspended"


def test_suspended_member_cannot_be_suspended_again() -> None:
    member = suspended("zte")
    with rejected(InvalidState, "member", member):
        member.suspend(actor=OPERATOR, at=T0)


def test_active_member_cannot_be_reinstated() -> None:
    member = admit("zte")
    with rejected(InvalidState, "member", member):
        member.reinstate(actor=OPERATOR, at=T0)


def test_suspended_member_cannot_receive_rights() -> None:
    member = suspended("byd")
    with rejected(MemberSuspended, "to", member):
        member.require_active("to")


def test_suspended_member_cannot_bid() -> None:
    listing = open_listing(register(), Mechanism.sealed)
    with rejected(MemberSuspended, "bidder", listing):
        bid(listing, suspended("huawei"), "1000000.00")
    assert listing.bids == {}


def test_suspended_member_cannot_sell() -> None:
    asset = register()
    with rejected(MemberSuspended, "seller", asset):
        open_listing(asset, Mechanism.fixed, ask="1200000.00", sellers=[suspended("fudan-univ")])


def test_reinstated_member_may_bid_again() -> None:
    member = suspended("huawei")
    member.reinstate(actor=OPERATOR, at=T0)
    listing = open_listing(register(), Mechanism.sealed)
    bid(listing, member, "1000000.00")
    assert names(listing) == ["Listing.BidPlaced"]


# =========================================================================== assets: registration


def test_operator_registers_co_owned_asset_with_lowest_terms_shares() -> None:
    owners = parse_owners(["fudan-univ=2/4", "sjtu=0.25", "huawei=1/4"])
    asset = Asset.register(
        ref=PATENT,
        title="Beamforming",
        owners=owners,
        expires_on=date(2038, 1, 9),
        effective=REGISTERED_ON,
        actor=OPERATOR,
        at=T0,
    )
    [registered] = events(asset)
    assert type(registered).__qualname__ == "Asset.Registered"
    assert registered.owners == {"fudan-univ": "1/2", "sjtu": "1/4", "huawei": "1/4"}
    assert (registered.ref, registered.effective, registered.expires_on) == (PATENT, REGISTERED_ON, date(2038, 1, 9))
    assert asset.owners_on(REGISTERED_ON) == registered.owners


def test_member_registers_asset_it_alone_owns() -> None:
    asset = Asset.register(
        ref=US_PATENT,
        title="Battery cell",
        owners={"byd": "1"},
        expires_on=None,
        effective=None,
        actor=BYD,
        at=T0,
    )
    [registered] = events(asset)
    assert registered.owners == {"byd": "1"}
    assert registered.effective == T0.date()  # effective defaults to the recorded date


def test_member_cannot_register_asset_owned_by_another() -> None:
    with pytest.raises(NotAuthorised, match=r"^actor: huawei may register only an asset it alone owns"):
        Asset.register(
            ref=US_PATENT,
            title="Battery cell",
            owners={"byd": "1"},
            expires_on=None,
            effective=None,
            actor=HUAWEI,
            at=T0,
        )


def test_co_owner_cannot_register_co_owned_asset_alone() -> None:
    with pytest.raises(NotAuthorised, match=r"^actor: "):
        Asset.register(
            ref=PATENT,
            title="Beamforming",
            owners={"fudan-univ": "1/2", "huawei": "1/2"},
            expires_on=None,
            effective=None,
            actor=HUAWEI,
            at=T0,
        )


def test_auditor_cannot_register_assets() -> None:
    with pytest.raises(NotAuthorised, match=r"^actor: auditor "):
        Asset.register(
            ref=PATENT,
            title="Beamforming",
            owners={"fudan-univ": "1"},
            expires_on=None,
            effective=None,
            actor=AUDITOR,
            at=T0,
        )


def test_registration_effective_date_cannot_be_in_the_future() -> None:
    with pytest.raises(InvalidInput, match=r"^effective: 2026-03-03 is after the recorded date 2026-03-02"):
        Asset.register(
            ref=PATENT,
            title="Beamforming",
            owners={"fudan-univ": "1"},
            expires_on=None,
            effective=date(2026, 3, 3),
            actor=OPERATOR,
            at=T0,
        )


def test_asset_must_expire_after_it_is_registered() -> None:
    with pytest.raises(InvalidInput, match=r"^expires_on: "):
        Asset.register(
            ref=PATENT,
            title="Beamforming",
            owners={"fudan-univ": "1"},
            expires_on=REGISTERED_ON,
            effective=REGISTERED_ON,
            actor=OPERATOR,
            at=T0,
        )


# =========================================================================== assets: conveyances


def test_sole_owner_assigns_asset_directly() -> None:
    asset = register(owners={"fudan-univ": "1"})
    asset.assign(to={"huawei": "1"}, kind=ConveyanceKind.assignment, effective=date(2026, 2, 1), actor=FUDAN, at=T0)
    [conveyed] = events(asset)
    assert type(conveyed).__qualname__ == "Asset.Conveyed"
    assert conveyed.kind == "assignment"
    assert (conveyed.from_owners, conveyed.to_owners) == ({"fudan-univ": "1"}, {"huawei": "1"})
    assert (conveyed.effective, conveyed.trade, conveyed.timestamp) == (date(2026, 2, 1), None, T0)
    assert asset.owners == {"huawei": "1"}


def test_assignment_takes_effect_on_its_effective_date() -> None:
    asset = register()
    asset.assign(to={"huawei": "1"}, kind=ConveyanceKind.assignment, effective=date(2025, 6, 1), actor=OPERATOR, at=T0)
    assert asset.owners_on(date(2025, 5, 31)) == {"fudan-univ": "1"}
    assert asset.owners_on(date(2025, 6, 1)) == {"huawei": "1"}  # the assignor no longer owns on that day


def test_nobody_owns_an_asset_before_its_registration_date() -> None:
    asset = register()
    assert asset.owners_on(REGISTERED_ON - timedelta(days=1)) == {}


def test_assignment_effective_date_cannot_be_in_the_future() -> None:
    asset = register()
    with rejected(InvalidInput, "effective", asset):
        asset.assign(
            to={"huawei": "1"},
            kind=ConveyanceKind.assignment,
            effective=T0.date() + timedelta(days=1),
            actor=OPERATOR,
            at=T0,
        )


def test_assignment_effective_date_cannot_precede_registration() -> None:
    asset = register()
    with rejected(InvalidInput, "effective", asset):
        asset.assign(
            to={"huawei": "1"},
            kind=ConveyanceKind.assignment,
            effective=REGISTERED_ON - timedelta(days=1),
            actor=OPERATOR,
            at=T0,
        )


def test_backdated_conveyance_takes_its_place_in_legal_time() -> None:
    asset = register()
    asset.assign(to={"huawei": "1"}, kind=ConveyanceKind.assignment, effective=date(2025, 6, 1), actor=OPERATOR, at=T0)
    # a deed effective earlier is recorded later: fudan-univ had merged into sjtu on 2025-01-01
    asset.assign(
        to={"sjtu": "1"},
        kind=ConveyanceKind.merger,
        effective=date(2025, 1, 1),
        actor=OPERATOR,
        at=T0 + timedelta(days=1),
    )
    _, merger = events(asset)
    assert merger.from_owners == {"fudan-univ": "1"}
    assert asset.owners_on(date(2024, 12, 31)) == {"fudan-univ": "1"}
    assert asset.owners_on(date(2025, 3, 1)) == {"sjtu": "1"}
    assert asset.owners_on(date(2025, 6, 1)) == {"huawei": "1"}
    assert asset.owners == {"huawei": "1"}


def test_later_recorded_conveyance_wins_between_equal_effective_dates() -> None:
    asset = register()
    day = date(2025, 6, 1)
    asset.assign(to={"huawei": "1"}, kind=ConveyanceKind.assignment, effective=day, actor=OPERATOR, at=T0)
    asset.assign(
        to={"zte": "1"}, kind=ConveyanceKind.correction, effective=day, actor=OPERATOR, at=T0 + timedelta(hours=1)
    )
    assert asset.owners_on(day) == {"zte": "1"}


def test_assignment_to_current_owners_is_rejected() -> None:
    asset = register()
    with rejected(InvalidInput, "to", asset):
        asset.assign(to={"fudan-univ": "1"}, kind=ConveyanceKind.assignment, effective=None, actor=OPERATOR, at=T0)


@pytest.mark.parametrize("kind", [ConveyanceKind.registration, ConveyanceKind.enforcement])
def test_registration_and_enforcement_are_not_direct_conveyances(kind: ConveyanceKind) -> None:
    asset = register()
    with rejected(InvalidInput, "conveyance", asset):
        asset.assign(to={"huawei": "1"}, kind=kind, effective=None, actor=OPERATOR, at=T0)


def test_non_owner_cannot_assign_asset() -> None:
    asset = register()
    with rejected(NotOwner, "actor", asset):
        asset.assign(to={"huawei": "1"}, kind=ConveyanceKind.assignment, effective=None, actor=HUAWEI, at=T0)


def test_co_owner_acting_alone_needs_consent_to_assign() -> None:
    asset = register(owners={"fudan-univ": "1/2", "sjtu": "1/2"})
    with rejected(ConsentMissing, "actor", asset):
        asset.assign(to={"huawei": "1"}, kind=ConveyanceKind.assignment, effective=None, actor=FUDAN, at=T0)
    assert asset.owners == {"fudan-univ": "1/2", "sjtu": "1/2"}


def test_co_owner_with_every_co_owners_consent_assigns_alone() -> None:
    asset = register(owners={"fudan-univ": "1/3", "sjtu": "1/3", "huawei": "1/3"})
    asset.give_co_owner_consent(consent_id="C-1", member="sjtu", act="assignment", actor=Actor.parse("sjtu"), at=T0)
    asset.give_co_owner_consent(consent_id="C-2", member="huawei", act="assignment", actor=OPERATOR, at=T0)
    consented = events(asset)
    assert [type(e).__qualname__ for e in consented] == ["Asset.CoOwnerConsented"] * 2
    assert [(e.consent_id, e.member, e.act) for e in consented] == [
        ("C-1", "sjtu", "assignment"),
        ("C-2", "huawei", "assignment"),
    ]
    asset.assign(to={"zte": "1"}, kind=ConveyanceKind.assignment, effective=None, actor=FUDAN, at=T0)
    used, conveyed = events(asset)
    assert type(used).__qualname__ == "Asset.CoOwnerConsentsUsed"
    assert sorted(used.consent_ids) == ["C-1", "C-2"]
    assert conveyed.to_owners == {"zte": "1"}


def test_co_owner_needs_the_consent_of_every_other_co_owner() -> None:
    asset = register(owners={"fudan-univ": "1/3", "sjtu": "1/3", "huawei": "1/3"})
    asset.give_co_owner_consent(consent_id="C-1", member="sjtu", act="assignment", actor=OPERATOR, at=T0)
    asset.collect_events()
    with rejected(ConsentMissing, "actor", asset):
        asset.assign(to={"zte": "1"}, kind=ConveyanceKind.assignment, effective=None, actor=FUDAN, at=T0)
    assert asset.co_owner_consents["C-1"].used is False


def test_co_owner_consent_covers_only_the_act_it_names() -> None:
    asset = register(owners={"fudan-univ": "1/2", "sjtu": "1/2"})
    asset.give_co_owner_consent(consent_id="C-1", member="sjtu", act="pledge", actor=OPERATOR, at=T0)
    asset.collect_events()
    with rejected(ConsentMissing, "actor", asset):
        asset.assign(to={"zte": "1"}, kind=ConveyanceKind.assignment, effective=None, actor=FUDAN, at=T0)


def test_co_owner_consent_is_consumed_by_the_act() -> None:
    asset = register(owners={"fudan-univ": "1/2", "sjtu": "1/2"})
    asset.give_co_owner_consent(consent_id="C-1", member="sjtu", act="listing", actor=OPERATOR, at=T0)
    open_listing(asset, Mechanism.english, listing_id="L-1", actor=FUDAN)
    asset.release_hold(holder="L-1", reason="withdrawn", at=T0 + timedelta(hours=1))
    asset.collect_events()
    with rejected(ConsentMissing, "actor", asset):
        open_listing(asset, Mechanism.english, listing_id="L-2", actor=FUDAN, at=T0 + timedelta(hours=2))


def test_member_cannot_consent_for_another_co_owner() -> None:
    asset = register(owners={"fudan-univ": "1/2", "sjtu": "1/2"})
    with rejected(NotAuthorised, "member", asset):
        asset.give_co_owner_consent(consent_id="C-1", member="sjtu", act="assignment", actor=FUDAN, at=T0)


def test_only_a_co_owner_can_consent() -> None:
    asset = register(owners={"fudan-univ": "1/2", "sjtu": "1/2"})
    with rejected(NotOwner, "member", asset):
        asset.give_co_owner_consent(consent_id="C-1", member="zte", act="assignment", actor=ZTE, at=T0)


def test_co_owner_consent_applies_to_co_owned_assets_only() -> None:
    asset = register(owners={"fudan-univ": "1"})
    with rejected(InvalidState, "ref", asset):
        asset.give_co_owner_consent(consent_id="C-1", member="fudan-univ", act="assignment", actor=FUDAN, at=T0)


def test_co_owner_consent_names_a_binding_act() -> None:
    asset = register(owners={"fudan-univ": "1/2", "sjtu": "1/2"})
    with rejected(InvalidInput, "act", asset):
        asset.give_co_owner_consent(consent_id="C-1", member="sjtu", act="licence", actor=OPERATOR, at=T0)


def test_rejected_assignment_does_not_consume_co_owner_consents() -> None:
    asset = register(owners={"fudan-univ": "1/2", "sjtu": "1/2"})
    asset.give_co_owner_consent(consent_id="C-1", member="sjtu", act="assignment", actor=OPERATOR, at=T0)
    asset.collect_events()
    with rejected(InvalidInput, "to", asset):  # the assignees already own it
        asset.assign(
            to={"fudan-univ": "1/2", "sjtu": "1/2"}, kind=ConveyanceKind.assignment, effective=None, actor=FUDAN, at=T0
        )
    assert asset.co_owner_consents["C-1"].used is False


def test_operator_assigns_for_all_co_owners_without_further_consent() -> None:
    inventors = {f"inventor-{i}": "1/5" for i in range(5)}
    asset = register(owners=inventors)
    asset.assign(to={"huawei": "1"}, kind=ConveyanceKind.assignment, effective=None, actor=OPERATOR, at=T0)
    [conveyed] = events(asset)
    assert conveyed.from_owners == inventors
    assert asset.owners == {"huawei": "1"}


# =========================================================================== assets: listing holds


def test_expired_asset_cannot_be_listed() -> None:
    asset = register(expires_on=date(2026, 3, 1))
    with rejected(AssetExpired, "ref", asset):
        open_listing(asset, Mechanism.fixed, ask="1200000.00")
    with rejected(AssetExpired, "ref", asset):
        asset.offer_for_assignment(listing_id="L-1", actor=OPERATOR, at=T0)


def test_expired_asset_cannot_be_offered_for_licence() -> None:
    asset = register(expires_on=date(2026, 3, 1))
    with rejected(AssetExpired, "ref", asset):
        open_listing(asset, Mechanism.negotiated, type=ListingType.licence, scope=scope("non_exclusive"))


def test_asset_is_expired_on_its_expiry_date() -> None:
    asset = register(expires_on=T0.date())
    with rejected(AssetExpired, "ref", asset):
        open_listing(asset, Mechanism.english)


def test_asset_can_be_listed_the_day_before_it_expires() -> None:
    asset = register(expires_on=T0.date() + timedelta(days=1))
    listing = open_listing(asset, Mechanism.english, closes_at=T0 + timedelta(hours=12))
    assert listing.status == "open"


def test_assignment_listing_holds_the_asset() -> None:
    asset = register()
    open_listing(asset, Mechanism.english, listing_id="L-1")
    [offered] = events(asset)
    assert type(offered).__qualname__ == "Asset.OfferedForAssignment"
    assert offered.listing_id == "L-1"


def test_licence_listing_does_not_hold_the_asset() -> None:
    asset = register()
    open_listing(asset, Mechanism.negotiated, type=ListingType.licence, scope=scope("non_exclusive"))
    assert asset.collect_events() == []
    open_listing(asset, Mechanism.english, listing_id="L-2")
    assert names(asset) == ["Asset.OfferedForAssignment"]


def test_one_open_assignment_listing_per_asset() -> None:
    asset = register()
    open_listing(asset, Mechanism.english, listing_id="L-1")
    asset.collect_events()
    with rejected(AssetReserved, "ref", asset):
        open_listing(asset, Mechanism.fixed, listing_id="L-2", ask="1200000.00", at=T0 + timedelta(hours=1))
    with rejected(AssetReserved, "ref", asset):
        asset.offer_for_assignment(listing_id="L-2", actor=OPERATOR, at=T0 + timedelta(hours=1))


def test_asset_offered_for_assignment_cannot_be_assigned_directly() -> None:
    asset = register()
    open_listing(asset, Mechanism.english, listing_id="L-1")
    asset.collect_events()
    with rejected(AssetReserved, "ref", asset):
        asset.assign(to={"huawei": "1"}, kind=ConveyanceKind.assignment, effective=None, actor=OPERATOR, at=T0)


def test_withdrawn_listing_releases_the_hold() -> None:
    asset = register()
    asset.offer_for_assignment(listing_id="L-1", actor=OPERATOR, at=T0)
    asset.release_hold(holder="L-1", reason="withdrawn", at=T0 + timedelta(hours=1))
    asset.offer_for_assignment(listing_id="L-2", actor=OPERATOR, at=T0 + timedelta(hours=2))
    assert names(asset) == ["Asset.OfferedForAssignment", "Asset.HoldReleased", "Asset.OfferedForAssignment"]


def test_release_by_a_stranger_to_the_hold_records_nothing() -> None:
    asset = register()
    asset.offer_for_assignment(listing_id="L-1", actor=OPERATOR, at=T0)
    asset.collect_events()
    asset.release_hold(holder="L-9", reason="withdrawn", at=T0)
    assert asset.collect_events() == []
    with rejected(AssetReserved, "ref", asset):
        asset.offer_for_assignment(listing_id="L-2", actor=OPERATOR, at=T0)


def test_co_owner_acting_alone_needs_consent_to_list_for_assignment() -> None:
    asset = register(owners={"fudan-univ": "1/2", "sjtu": "1/2"})
    with rejected(ConsentMissing, "actor", asset):
        open_listing(asset, Mechanism.english, actor=FUDAN)
    with rejected(ConsentMissing, "actor", asset):
        asset.offer_for_assignment(listing_id="L-1", actor=FUDAN, at=T0)


def test_operator_lists_co_owned_asset_for_all_owners() -> None:
    asset = register(owners={"fudan-univ": "1/2", "sjtu": "1/2"})
    listing = open_listing(asset, Mechanism.english, actor=OPERATOR)
    assert listing.sellers == ["fudan-univ", "sjtu"]


def test_co_owner_alone_may_list_a_non_exclusive_licence() -> None:
    asset = register(owners={"fudan-univ": "1/2", "sjtu": "1/2"})
    listing = open_listing(
        asset, Mechanism.negotiated, type=ListingType.licence, scope=scope("non_exclusive"), actor=FUDAN
    )
    assert listing.type == "licence"


def test_co_owner_alone_needs_consent_to_list_an_exclusive_licence() -> None:
    asset = register(owners={"fudan-univ": "1/2", "sjtu": "1/2"})
    with rejected(ConsentMissing, "actor", asset):
        open_listing(asset, Mechanism.negotiated, type=ListingType.licence, scope=scope("exclusive"), actor=FUDAN)


def test_only_owner_or_operator_may_list() -> None:
    asset = register()
    with rejected(NotOwner, "actor", asset):
        open_listing(asset, Mechanism.fixed, ask="1200000.00", actor=HUAWEI)
    with rejected(NotOwner, "actor", asset):
        open_listing(asset, Mechanism.negotiated, type=ListingType.licence, scope=scope("non_exclusive"), actor=HUAWEI)


def test_owner_lists_its_own_asset() -> None:
    listing = open_listing(register(), Mechanism.fixed, ask="1200000.00", actor=FUDAN)
    assert listing.sellers == ["fudan-univ"]


# =========================================================================== assets: trade holds


def test_pending_trade_reserves_the_asset_until_its_settlement_deadline() -> None:
    asset, _, trade = pending_trade()
    assert trade.deadline == T0 + timedelta(hours=2, days=SETTLEMENT_DAYS)
    just_before = trade.deadline - timedelta(seconds=1)
    with rejected(AssetReserved, "ref", asset):
        asset.offer_for_assignment(listing_id="L-2", actor=OPERATOR, at=just_before)
    with rejected(AssetReserved, "ref", asset):
        asset.assign(to={"zte": "1"}, kind=ConveyanceKind.assignment, effective=None, actor=OPERATOR, at=just_before)


def test_pending_trade_hold_lapses_at_its_settlement_deadline() -> None:
    asset, _, trade = pending_trade()
    asset.offer_for_assignment(listing_id="L-2", actor=OPERATOR, at=trade.deadline)
    assert names(asset) == ["Asset.OfferedForAssignment"]
    assert trade.status_at(trade.deadline) == "lapsed"
    assert trade.status_at(trade.deadline - timedelta(seconds=1)) == "pending"


def test_pending_trade_reserves_the_asset_against_licence_listings() -> None:
    asset, _, _ = pending_trade()
    with rejected(AssetReserved, "ref", asset):
        open_listing(
            asset,
            Mechanism.negotiated,
            listing_id="L-2",
            type=ListingType.licence,
            scope=scope("non_exclusive"),
            at=T0 + timedelta(days=1),
        )


def test_winning_bid_reserves_the_asset_held_by_its_own_listing() -> None:
    asset, listing, trade = pending_trade()
    assert asset.hold is not None
    assert (asset.hold.kind, asset.hold.id, asset.hold.listing_id) == ("trade", trade.trade_id, listing.listing_id)


def test_another_listing_cannot_reserve_an_asset_held_by_an_open_listing() -> None:
    asset = register()
    asset.offer_for_assignment(listing_id="L-1", actor=OPERATOR, at=T0)
    asset.collect_events()
    with rejected(AssetReserved, "ref", asset):
        asset.reserve(trade_id="T-9", listing_id="L-9", deadline=T0 + timedelta(days=7), at=T0)


def test_convey_under_trade_moves_title_and_clears_the_hold() -> None:
    asset, _, trade = pending_trade()
    at = T0 + timedelta(days=3)
    asset.convey_under_trade(trade_id=trade.trade_id, buyer=trade.buyer, effective=at.date(), at=at)
    [conveyed] = events(asset)
    assert type(conveyed).__qualname__ == "Asset.Conveyed"
    assert (conveyed.kind, conveyed.trade) == ("assignment", "T-1")
    assert (conveyed.from_owners, conveyed.to_owners) == ({"fudan-univ": "1"}, {"huawei": "1"})
    assert asset.owners == {"huawei": "1"}
    assert asset.hold is None
    asset.offer_for_assignment(listing_id="L-2", actor=HUAWEI, at=at)  # the new owner may resell at once


def test_convey_under_trade_needs_the_trade_that_reserves_the_asset() -> None:
    asset, _, _ = pending_trade()
    with rejected(AssetReserved, "ref", asset):
        asset.convey_under_trade(trade_id="T-other", buyer="zte", effective=T0.date(), at=T0 + timedelta(days=1))
    assert asset.owners == {"fudan-univ": "1"}


def test_convey_under_trade_effective_date_cannot_be_in_the_future() -> None:
    asset, _, trade = pending_trade()
    at = T0 + timedelta(days=1)
    with rejected(InvalidInput, "effective", asset):
        asset.convey_under_trade(
            trade_id=trade.trade_id, buyer="huawei", effective=at.date() + timedelta(days=1), at=at
        )


# =========================================================================== listings: opening


def test_listing_opens_with_its_terms() -> None:
    asset = register()
    listing = Listing.open(
        listing_id="L-1",
        asset=asset,
        sellers=[admit("fudan-univ")],
        type=ListingType.assignment,
        mechanism=Mechanism.english,
        currency="CNY",
        opens_at=None,
        closes_at=CLOSES,
        ask=cny("1000000"),
        reserve=cny("1500000"),
        increment=cny("50000"),
        extend_minutes=10,
        settlement_days=SETTLEMENT_DAYS,
        scope=None,
        actor=OPERATOR,
        at=T0,
    )
    [opened] = events(listing)
    assert type(opened).__qualname__ == "Listing.Opened"
    assert (opened.ref, opened.sellers, opened.mechanism, opened.currency) == (PATENT, ["fudan-univ"], "english", "CNY")
    assert (opened.opens_at, opened.closes_at) == (T0, CLOSES)  # opens defaults to the recorded time
    assert (opened.ask, opened.reserve, opened.increment) == (
        Decimal("1000000.00"),
        Decimal("1500000.00"),
        Decimal("50000.00"),
    )
    assert listing.status == "open"


def test_listing_must_close_after_it_opens() -> None:
    asset = register()
    with rejected(InvalidInput, "closes", asset):
        open_listing(asset, Mechanism.sealed, opens_at=CLOSES, closes_at=CLOSES)


def test_listing_cannot_close_in_the_past() -> None:
    asset = register()
    with rejected(InvalidInput, "closes", asset):
        open_listing(asset, Mechanism.sealed, opens_at=T0 - timedelta(days=2), closes_at=T0 - timedelta(days=1))


def test_fixed_listing_needs_an_asking_price() -> None:
    with rejected(InvalidInput, "ask"):
        open_listing(register(), Mechanism.fixed)


@pytest.mark.parametrize("mechanism", [Mechanism.fixed, Mechanism.negotiated])
def test_fixed_and_negotiated_listings_have_no_reserve(mechanism: Mechanism) -> None:
    with rejected(InvalidInput, "reserve"):
        open_listing(register(), mechanism, ask="1200000.00", reserve="1000000.00")


@pytest.mark.parametrize("mechanism", [Mechanism.fixed, Mechanism.sealed, Mechanism.negotiated])
def test_increment_and_anti_sniping_apply_to_english_auctions_only(mechanism: Mechanism) -> None:
    with rejected(InvalidInput, "increment"):
        open_listing(register(), mechanism, ask="1200000.00", increment="10000.00")
    with rejected(InvalidInput, "increment"):
        open_listing(register(), mechanism, ask="1200000.00", extend_minutes=10)


def test_licence_listing_needs_its_scope() -> None:
    with rejected(InvalidInput, "licence_type"):
        open_listing(register(), Mechanism.negotiated, type=ListingType.licence)


def test_assignment_listing_takes_no_licence_scope() -> None:
    with rejected(InvalidInput, "licence_type"):
        open_listing(register(), Mechanism.negotiated, scope=scope("non_exclusive"))


# =========================================================================== bids: common rules


def test_bid_is_entered_in_the_book() -> None:
    listing = open_listing(register(), Mechanism.sealed)
    at = T0 + timedelta(hours=1)
    assert bid(listing, "huawei", "1000000.00", bid_id="B-1", at=at) is None
    [placed] = events(listing)
    assert type(placed).__qualname__ == "Listing.BidPlaced"
    assert (placed.bid_id, placed.bidder, placed.amount, placed.timestamp) == (
        "B-1",
        "huawei",
        Decimal("1000000.00"),
        at,
    )


def test_bidding_before_the_listing_opens_is_rejected() -> None:
    listing = open_listing(register(), Mechanism.sealed, opens_at=T0 + timedelta(days=1))
    with rejected(ListingNotOpen, "listing", listing):
        bid(listing, "huawei", "1000000.00", at=T0 + timedelta(hours=23))


def test_bidding_at_or_after_the_close_is_rejected() -> None:
    listing = open_listing(register(), Mechanism.sealed)
    with rejected(ListingNotOpen, "listing", listing):
        bid(listing, "huawei", "1000000.00", at=CLOSES)
    with rejected(ListingNotOpen, "listing", listing):
        bid(listing, "huawei", "1000000.00", at=CLOSES + timedelta(days=1))


def test_bidding_on_a_withdrawn_listing_is_rejected() -> None:
    listing = open_listing(register(), Mechanism.sealed)
    listing.withdraw(actor=OPERATOR, at=T0 + timedelta(minutes=5))
    listing.collect_events()
    with rejected(ListingNotOpen, "listing", listing):
        bid(listing, "huawei", "1000000.00")


def test_seller_cannot_bid_on_its_own_listing() -> None:
    listing = open_listing(register(), Mechanism.english)
    with rejected(SelfDealing, "bidder", listing):
        bid(listing, "fudan-univ", "1000000.00")


def test_co_owner_cannot_bid_on_listing_of_the_asset_it_co_owns() -> None:
    listing = open_listing(register(owners={"fudan-univ": "1/2", "sjtu": "1/2"}), Mechanism.sealed)
    with rejected(SelfDealing, "bidder", listing):
        bid(listing, "sjtu", "1000000.00")


def test_operator_cannot_bid_for_the_seller_either() -> None:
    listing = open_listing(register(), Mechanism.sealed)
    with rejected(SelfDealing, "bidder", listing):
        bid(listing, "fudan-univ", "1000000.00", actor=OPERATOR)


def test_member_cannot_bid_for_another_member() -> None:
    listing = open_listing(register(), Mechanism.sealed)
    with rejected(NotAuthorised, "bidder", listing):
        bid(listing, "huawei", "1000000.00", actor=ZTE)
    with rejected(NotAuthorised, "bidder", listing):
        bid(listing, "huawei", "1000000.00", actor=AUDITOR)


def test_operator_may_bid_on_a_members_behalf() -> None:
    listing = open_listing(register(), Mechanism.sealed)
    bid(listing, "huawei", "1000000.00", actor=OPERATOR)
    [placed] = events(listing)
    assert placed.bidder == "huawei"


def test_new_bid_supersedes_the_bidders_previous_bid() -> None:
    listing = open_listing(register(), Mechanism.sealed)
    bid(listing, "huawei", "1000000.00", bid_id="B-1", at=T0 + timedelta(hours=1))
    bid(listing, "zte", "1100000.00", bid_id="B-2", at=T0 + timedelta(hours=2))
    bid(listing, "huawei", "900000.00", bid_id="B-3", at=T0 + timedelta(hours=3))
    assert [b.bid_id for b in listing.live_bids()] == ["B-2", "B-3"]
    assert listing.bids["B-1"].state == "superseded"  # left the book, kept in the history
    assert names(listing) == ["Listing.BidPlaced"] * 3


def test_order_book_is_price_descending_then_time_ascending() -> None:
    listing = open_listing(register(), Mechanism.sealed)
    bid(listing, "huawei", "1000000.00", bid_id="B-1", at=T0 + timedelta(hours=1))
    bid(listing, "zte", "1200000.00", bid_id="B-2", at=T0 + timedelta(hours=2))
    bid(listing, "byd", "1000000.00", bid_id="B-3", at=T0 + timedelta(hours=3))
    bid(listing, "icbc-sh", "1200000.00", bid_id="B-4", at=T0 + timedelta(hours=4))
    bid(listing, "sjtu", "800000.00", bid_id="B-5", at=T0 + timedelta(hours=5))
    assert [b.bid_id for b in listing.live_bids()] == ["B-2", "B-4", "B-1", "B-3", "B-5"]


def test_withdrawn_bid_leaves_the_book_but_stays_in_history() -> None:
    listing = open_listing(register(), Mechanism.sealed)
    bid(listing, "huawei", "1000000.00", bid_id="B-1")
    bid(listing, "zte", "900000.00", bid_id="B-2")
    listing.collect_events()
    listing.withdraw_bid(bid_id="B-1", actor=HUAWEI, at=T0 + timedelta(hours=3))
    [withdrawn] = events(listing)
    assert type(withdrawn).__qualname__ == "Listing.BidWithdrawn"
    assert withdrawn.bid_id == "B-1"
    assert [b.bid_id for b in listing.live_bids()] == ["B-2"]
    assert listing.bids["B-1"].state == "withdrawn"


def test_member_cannot_withdraw_another_members_bid() -> None:
    listing = open_listing(register(), Mechanism.sealed)
    bid(listing, "huawei", "1000000.00", bid_id="B-1")
    listing.collect_events()
    with rejected(NotAuthorised, "actor", listing):
        listing.withdraw_bid(bid_id="B-1", actor=ZTE, at=T0 + timedelta(hours=3))


def test_superseded_bid_cannot_be_withdrawn() -> None:
    listing = open_listing(register(), Mechanism.sealed)
    bid(listing, "huawei", "1000000.00", bid_id="B-1")
    bid(listing, "huawei", "1100000.00", bid_id="B-2", at=T0 + timedelta(hours=2))
    listing.collect_events()
    with rejected(InvalidState, "bid", listing):
        listing.withdraw_bid(bid_id="B-1", actor=HUAWEI, at=T0 + timedelta(hours=3))


def test_bid_cannot_be_withdrawn_after_the_close() -> None:
    listing = open_listing(register(), Mechanism.sealed)
    bid(listing, "huawei", "1000000.00", bid_id="B-1")
    listing.collect_events()
    with rejected(ListingNotOpen, "listing", listing):
        listing.withdraw_bid(bid_id="B-1", actor=HUAWEI, at=CLOSES)


def test_unknown_bid_is_not_found() -> None:
    listing = open_listing(register(), Mechanism.sealed)
    with rejected(NotFound, "bid", listing):
        listing.withdraw_bid(bid_id="B-404", actor=HUAWEI, at=T0 + timedelta(hours=3))


# =========================================================================== fixed price


def test_fixed_bid_at_the_ask_wins() -> None:
    listing = open_listing(register(), Mechanism.fixed, ask="1200000.00")
    sale = bid(listing, "huawei", "1200000.00", bid_id="B-1", trade_id="T-7")
    assert (sale.bid_id, sale.buyer, sale.price, sale.trade_id) == ("B-1", "huawei", Decimal("1200000.00"), "T-7")
    assert names(listing) == ["Listing.BidPlaced", "Listing.Sold"]
    assert listing.status == "sold"
    assert listing.bids["B-1"].state == "won"


def test_fixed_bid_above_the_ask_wins_at_the_ask() -> None:
    listing = open_listing(register(), Mechanism.fixed, ask="1200000.00")
    sale = bid(listing, "huawei", "1350000.00", bid_id="B-1")
    placed, sold = events(listing)
    assert placed.amount == Decimal("1350000.00")
    assert sold.price == sale.price == Decimal("1200000.00")
    assert sold.buyer == "huawei"


def test_fixed_bid_below_the_ask_is_too_low() -> None:
    listing = open_listing(register(), Mechanism.fixed, ask="1200000.00")
    with rejected(BidTooLow, "amount", listing):
        bid(listing, "huawei", "1199999.99")
    assert listing.status == "open"


def test_fixed_listing_takes_no_bid_after_the_first_winner() -> None:
    listing = open_listing(register(), Mechanism.fixed, ask="1200000.00")
    bid(listing, "huawei", "1200000.00")
    listing.collect_events()
    with rejected(ListingNotOpen, "listing", listing):
        bid(listing, "zte", "1500000.00", at=T0 + timedelta(hours=2))


def test_fixed_listing_without_a_buyer_ends_unsold_at_close() -> None:
    listing = open_listing(register(), Mechanism.fixed, ask="1200000.00")
    assert listing.close(trade_id="T-1", actor=OPERATOR, at=CLOSES) is None
    assert names(listing) == ["Listing.EndedUnsold"]
    assert listing.status == "unsold"


# =========================================================================== english auctions


def test_english_first_bid_must_meet_the_opening_price() -> None:
    listing = open_listing(register(), Mechanism.english, ask="1000000.00", increment="50000.00")
    with rejected(BidTooLow, "amount", listing):
        bid(listing, "huawei", "999999.99")
    bid(listing, "huawei", "1000000.00")
    assert names(listing) == ["Listing.BidPlaced"]


def test_english_bid_must_beat_best_by_increment() -> None:
    listing = open_listing(register(), Mechanism.english, ask="1000000.00", increment="50000.00")
    bid(listing, "huawei", "1000000.00", at=T0 + timedelta(hours=1))
    listing.collect_events()
    with rejected(BidTooLow, "amount", listing):
        bid(listing, "zte", "1049999.99", at=T0 + timedelta(hours=2))
    bid(listing, "zte", "1050000.00", at=T0 + timedelta(hours=2))
    assert [b.bidder for b in listing.live_bids()] == ["zte", "huawei"]


def test_english_bid_without_increment_must_still_beat_the_best() -> None:
    listing = open_listing(register(), Mechanism.english)
    bid(listing, "huawei", "1000000.00", at=T0 + timedelta(hours=1))
    listing.collect_events()
    with rejected(BidTooLow, "amount", listing):
        bid(listing, "zte", "1000000.00", at=T0 + timedelta(hours=2))
    bid(listing, "zte", "1000000.01", at=T0 + timedelta(hours=2))
    assert names(listing) == ["Listing.BidPlaced"]


def test_english_bids_are_not_withdrawable() -> None:
    listing = open_listing(register(), Mechanism.english)
    bid(listing, "huawei", "1000000.00", bid_id="B-1")
    listing.collect_events()
    with rejected(BidNotWithdrawable, "bid", listing):
        listing.withdraw_bid(bid_id="B-1", actor=HUAWEI, at=T0 + timedelta(hours=2))
    assert listing.bids["B-1"].live


def test_english_listing_with_bids_cannot_be_withdrawn() -> None:
    listing = open_listing(register(), Mechanism.english)
    bid(listing, "huawei", "1000000.00")
    listing.collect_events()
    with rejected(InvalidState, "listing", listing):
        listing.withdraw(actor=OPERATOR, at=T0 + timedelta(hours=2))
    assert listing.status == "open"


def test_english_best_bid_at_or_above_reserve_wins_at_close() -> None:
    listing = open_listing(register(), Mechanism.english, reserve="1500000.00", increment="50000.00")
    bid(listing, "huawei", "1400000.00", bid_id="B-1", at=T0 + timedelta(hours=1))
    bid(listing, "zte", "1500000.00", bid_id="B-2", at=T0 + timedelta(hours=2))
    listing.collect_events()
    sale = listing.close(trade_id="T-1", actor=OPERATOR, at=CLOSES)
    [sold] = events(listing)
    assert type(sold).__qualname__ == "Listing.Sold"
    assert (sold.bid_id, sold.buyer, sold.price, sold.trade_id) == ("B-2", "zte", Decimal("1500000.00"), "T-1")
    assert sale is not None and sale.buyer == "zte"
    assert (listing.bids["B-1"].state, listing.bids["B-2"].state) == ("lost", "won")


def test_english_best_bid_below_reserve_ends_unsold() -> None:
    listing = open_listing(register(), Mechanism.english, reserve="1500000.00")
    bid(listing, "huawei", "1499999.99", bid_id="B-1")  # below the reserve is a valid bid
    listing.collect_events()
    assert listing.close(trade_id="T-1", actor=OPERATOR, at=CLOSES) is None
    assert names(listing) == ["Listing.EndedUnsold"]
    assert listing.status == "unsold"
    assert listing.bids["B-1"].state == "lost"


def test_an_auction_whose_best_bid_missed_the_reserve_records_why_it_ended_unsold() -> None:
    listing = open_listing(register(), Mechanism.english, reserve="1500000.00")
    bid(listing, "huawei", "1499999.99")
    listing.collect_events()
    listing.close(trade_id="T-1", actor=OPERATOR, at=CLOSES)
    [ended] = events(listing)
    assert ended.reason == RESERVE_NOT_MET


def test_an_auction_without_bids_records_that_it_had_none() -> None:
    listing = open_listing(register(), Mechanism.sealed, reserve="1500000.00")
    listing.close(trade_id="T-1", actor=OPERATOR, at=CLOSES)
    [ended] = events(listing)
    assert ended.reason == NO_BIDS


def test_a_fixed_price_listing_ending_unsold_gives_no_auction_reason() -> None:
    listing = open_listing(register(), Mechanism.fixed, ask="1200000.00")
    listing.close(trade_id="T-1", actor=OPERATOR, at=CLOSES)
    [ended] = events(listing)
    assert ended.reason is None


def test_an_unsold_ending_recorded_before_reasons_existed_reads_as_not_recorded() -> None:
    state: dict[str, Any] = {"timestamp": "2024-03-01T10:00:00Z"}
    Listing.EndedUnsold.upcast_v1_v2(state)
    assert state["reason"] is None


def test_english_bid_in_last_minutes_extends_the_close() -> None:
    listing = open_listing(register(), Mechanism.english, extend_minutes=10)
    late = CLOSES - timedelta(minutes=3)
    bid(listing, "huawei", "1000000.00", at=late)
    placed, extended = events(listing)
    assert type(placed).__qualname__ == "Listing.BidPlaced"
    assert type(extended).__qualname__ == "Listing.CloseExtended"
    assert extended.closes_at == late + timedelta(minutes=10)
    assert listing.closes_at == late + timedelta(minutes=10)


def test_extended_auction_takes_bids_after_the_original_close() -> None:
    listing = open_listing(register(), Mechanism.english, extend_minutes=10)
    bid(listing, "huawei", "1000000.00", at=CLOSES - timedelta(minutes=3))
    bid(listing, "zte", "1100000.00", at=CLOSES + timedelta(minutes=1))
    assert [b.bidder for b in listing.live_bids()] == ["zte", "huawei"]
    with rejected(ListingStillOpen, "listing", listing):
        listing.close(trade_id="T-1", actor=OPERATOR, at=CLOSES + timedelta(minutes=2))


def test_english_bid_before_the_last_minutes_does_not_extend() -> None:
    listing = open_listing(register(), Mechanism.english, extend_minutes=10)
    bid(listing, "huawei", "1000000.00", at=CLOSES - timedelta(minutes=11))
    assert names(listing) == ["Listing.BidPlaced"]
    assert listing.closes_at == CLOSES


def test_english_late_bid_does_not_extend_without_anti_sniping() -> None:
    listing = open_listing(register(), Mechanism.english)
    bid(listing, "huawei", "1000000.00", at=CLOSES - timedelta(seconds=30))
    assert names(listing) == ["Listing.BidPlaced"]
    assert listing.closes_at == CLOSES


# =========================================================================== sealed bids


def test_sealed_highest_bid_wins_at_its_own_price() -> None:
    listing = open_listing(register(), Mechanism.sealed)
    bid(listing, "huawei", "1000000.00", bid_id="B-1", at=T0 + timedelta(hours=1))
    bid(listing, "zte", "1300000.00", bid_id="B-2", at=T0 + timedelta(hours=2))
    bid(listing, "byd", "1200000.00", bid_id="B-3", at=T0 + timedelta(hours=3))
    listing.collect_events()
    listing.close(trade_id="T-1", actor=OPERATOR, at=CLOSES)
    [sold] = events(listing)
    assert (sold.bid_id, sold.buyer, sold.price) == ("B-2", "zte", Decimal("1300000.00"))


def test_sealed_tie_goes_to_the_earliest_bid() -> None:
    listing = open_listing(register(), Mechanism.sealed)
    bid(listing, "zte", "1300000.00", bid_id="B-1", at=T0 + timedelta(hours=1))
    bid(listing, "huawei", "1300000.00", bid_id="B-2", at=T0 + timedelta(hours=2))
    listing.collect_events()
    sale = listing.close(trade_id="T-1", actor=OPERATOR, at=CLOSES)
    assert sale is not None and (sale.bid_id, sale.buyer) == ("B-1", "zte")


def test_sealed_bid_below_reserve_does_not_win() -> None:
    listing = open_listing(register(), Mechanism.sealed, reserve="2000000.00")
    bid(listing, "zte", "1999999.99")
    listing.collect_events()
    assert listing.close(trade_id="T-1", actor=OPERATOR, at=CLOSES) is None
    assert names(listing) == ["Listing.EndedUnsold"]


def test_sealed_bid_at_reserve_wins() -> None:
    listing = open_listing(register(), Mechanism.sealed, reserve="2000000.00")
    bid(listing, "zte", "2000000.00")
    listing.collect_events()
    sale = listing.close(trade_id="T-1", actor=OPERATOR, at=CLOSES)
    assert sale is not None and sale.price == Decimal("2000000.00")


def test_sealed_listing_with_bids_may_be_withdrawn() -> None:
    listing = open_listing(register(), Mechanism.sealed)
    bid(listing, "zte", "1000000.00", bid_id="B-1")
    listing.collect_events()
    listing.withdraw(actor=FUDAN, at=T0 + timedelta(hours=2))
    assert names(listing) == ["Listing.Withdrawn"]
    assert listing.status == "withdrawn"
    assert listing.bids["B-1"].state == "lost"


# =========================================================================== negotiated


def test_negotiated_seller_accepts_any_one_bid() -> None:
    listing = open_listing(register(), Mechanism.negotiated)
    bid(listing, "zte", "1300000.00", bid_id="B-1", at=T0 + timedelta(hours=1))
    bid(listing, "huawei", "1100000.00", bid_id="B-2", at=T0 + timedelta(hours=2))
    listing.collect_events()
    sale = listing.accept_bid(bid_id="B-2", trade_id="T-1", actor=FUDAN, at=T0 + timedelta(hours=3))
    [sold] = events(listing)
    assert type(sold).__qualname__ == "Listing.Sold"
    assert (sold.bid_id, sold.buyer, sold.price) == ("B-2", "huawei", Decimal("1100000.00"))
    assert sale.trade_id == "T-1"
    assert (listing.bids["B-1"].state, listing.bids["B-2"].state) == ("lost", "won")


@pytest.mark.parametrize("mechanism", [Mechanism.english, Mechanism.sealed])
def test_accept_bid_only_on_negotiated_listings(mechanism: Mechanism) -> None:
    listing = open_listing(register(), mechanism)
    bid(listing, "zte", "1300000.00", bid_id="B-1")
    listing.collect_events()
    with rejected(InvalidState, "bid", listing):
        listing.accept_bid(bid_id="B-1", trade_id="T-1", actor=OPERATOR, at=T0 + timedelta(hours=3))
    assert listing.status == "open"


def test_only_the_seller_or_operator_accepts_a_bid() -> None:
    listing = open_listing(register(), Mechanism.negotiated)
    bid(listing, "zte", "1300000.00", bid_id="B-1")
    listing.collect_events()
    with rejected(NotOwner, "actor", listing):
        listing.accept_bid(bid_id="B-1", trade_id="T-1", actor=ZTE, at=T0 + timedelta(hours=3))


def test_withdrawn_bid_cannot_be_accepted() -> None:
    listing = open_listing(register(), Mechanism.negotiated)
    bid(listing, "zte", "1300000.00", bid_id="B-1")
    listing.withdraw_bid(bid_id="B-1", actor=ZTE, at=T0 + timedelta(hours=2))
    listing.collect_events()
    with rejected(InvalidState, "bid", listing):
        listing.accept_bid(bid_id="B-1", trade_id="T-1", actor=FUDAN, at=T0 + timedelta(hours=3))


def test_bid_cannot_be_accepted_after_the_close() -> None:
    listing = open_listing(register(), Mechanism.negotiated)
    bid(listing, "zte", "1300000.00", bid_id="B-1")
    listing.collect_events()
    with rejected(ListingNotOpen, "listing", listing):
        listing.accept_bid(bid_id="B-1", trade_id="T-1", actor=FUDAN, at=CLOSES)


def test_negotiated_listing_without_an_accepted_bid_ends_unsold() -> None:
    listing = open_listing(register(), Mechanism.negotiated)
    bid(listing, "zte", "1300000.00", bid_id="B-1")
    listing.collect_events()
    assert listing.close(trade_id="T-1", actor=OPERATOR, at=CLOSES) is None
    assert names(listing) == ["Listing.EndedUnsold"]


# =========================================================================== closing and withdrawing


def test_listing_cannot_close_before_its_closing_time() -> None:
    listing = open_listing(register(), Mechanism.sealed)
    bid(listing, "zte", "1300000.00")
    listing.collect_events()
    with rejected(ListingStillOpen, "listing", listing):
        listing.close(trade_id="T-1", actor=OPERATOR, at=CLOSES - timedelta(seconds=1))
    assert listing.status == "open"


def test_listing_closes_once() -> None:
    listing = open_listing(register(), Mechanism.sealed)
    listing.close(trade_id="T-1", actor=OPERATOR, at=CLOSES)
    listing.collect_events()
    with rejected(ListingNotOpen, "listing", listing):
        listing.close(trade_id="T-2", actor=OPERATOR, at=CLOSES + timedelta(hours=1))


def test_only_the_seller_or_operator_closes_a_listing() -> None:
    listing = open_listing(register(), Mechanism.sealed)
    with rejected(NotOwner, "actor", listing):
        listing.close(trade_id="T-1", actor=HUAWEI, at=CLOSES)


def test_seller_withdraws_listing_without_bids() -> None:
    listing = open_listing(register(), Mechanism.english)
    listing.withdraw(actor=FUDAN, at=T0 + timedelta(hours=1))
    assert names(listing) == ["Listing.Withdrawn"]


def test_non_seller_cannot_withdraw_a_listing() -> None:
    listing = open_listing(register(), Mechanism.fixed, ask="1200000.00")
    with rejected(NotOwner, "actor", listing):
        listing.withdraw(actor=HUAWEI, at=T0 + timedelta(hours=1))


def test_listing_with_an_accepted_bid_cannot_be_withdrawn() -> None:
    listing = open_listing(register(), Mechanism.negotiated)
    bid(listing, "zte", "1300000.00", bid_id="B-1")
    listing.accept_bid(bid_id="B-1", trade_id="T-1", actor=FUDAN, at=T0 + timedelta(hours=2))
    listing.collect_events()
    with rejected(ListingNotOpen, "listing", listing):
        listing.withdraw(actor=FUDAN, at=T0 + timedelta(hours=3))


# =========================================================================== trades


def test_winning_bid_strikes_a_pending_trade() -> None:
    listing = open_listing(register(), Mechanism.fixed, ask="1200000.00")
    at = T0 + timedelta(hours=2)
    sale = bid(listing, "huawei", "1200000.00", bid_id="B-1", at=at, trade_id="T-7")
    trade = Trade.strike(listing=listing, sale=sale, at=at)
    [struck] = events(trade)
    assert type(struck).__qualname__ == "Trade.Struck"
    assert (struck.trade_id, struck.listing_id, struck.ref, struck.type) == ("T-7", "L-1", PATENT, "assignment")
    assert (struck.sellers, struck.buyer, struck.bid_id) == (["fudan-univ"], "huawei", "B-1")
    assert (struck.price, struck.currency) == (Decimal("1200000.00"), "CNY")
    assert struck.deadline == at + timedelta(days=SETTLEMENT_DAYS)
    assert trade.state == "pending"


@pytest.mark.parametrize("actor", [OPERATOR, FUDAN])
def test_operator_or_seller_settles_trade(actor: Actor) -> None:
    _, _, trade = pending_trade()
    at = T0 + timedelta(days=3)
    effective = trade.settle(payment_ref="CNAPS-20260305-0001", effective=None, actor=actor, at=at)
    [settled] = events(trade)
    assert type(settled).__qualname__ == "Trade.Settled"
    assert (settled.payment_ref, settled.effective) == ("CNAPS-20260305-0001", at.date())
    assert effective == at.date()
    assert trade.state == "settled"


@pytest.mark.parametrize("actor", [HUAWEI, ZTE, AUDITOR])
def test_only_operator_or_seller_settles_trade(actor: Actor) -> None:
    _, _, trade = pending_trade()
    with rejected(NotAuthorised, "actor", trade):
        trade.settle(payment_ref="CNAPS-1", effective=None, actor=actor, at=T0 + timedelta(days=3))
    assert trade.state == "pending"


def test_trade_settles_exactly_once() -> None:
    _, _, trade = pending_trade()
    trade.settle(payment_ref="CNAPS-1", effective=None, actor=OPERATOR, at=T0 + timedelta(days=3))
    trade.collect_events()
    with rejected(TradeResolved, "trade", trade):
        trade.settle(payment_ref="CNAPS-2", effective=None, actor=OPERATOR, at=T0 + timedelta(days=4))
    with rejected(TradeResolved, "trade", trade):
        trade.void(reason="buyer default", actor=OPERATOR, at=T0 + timedelta(days=4))
    assert trade.payment_ref == "CNAPS-1"


def test_settle_after_the_deadline_is_rejected() -> None:
    _, _, trade = pending_trade()
    with rejected(TradeResolved, "trade", trade):
        trade.settle(payment_ref="CNAPS-1", effective=None, actor=OPERATOR, at=trade.deadline)
    assert trade.state == "pending" and trade.status_at(trade.deadline) == "lapsed"


def test_settlement_effective_date_cannot_be_in_the_future() -> None:
    _, _, trade = pending_trade()
    at = T0 + timedelta(days=3)
    with rejected(InvalidInput, "effective", trade):
        trade.settle(payment_ref="CNAPS-1", effective=at.date() + timedelta(days=1), actor=OPERATOR, at=at)


@pytest.mark.parametrize("actor", [OPERATOR, FUDAN, HUAWEI])
def test_parties_or_operator_void_trade(actor: Actor) -> None:
    _, _, trade = pending_trade()
    trade.void(reason="payment not received", actor=actor, at=T0 + timedelta(days=3))
    [voided] = events(trade)
    assert type(voided).__qualname__ == "Trade.Voided"
    assert voided.reason == "payment not received"
    assert trade.state == "void"


@pytest.mark.parametrize("actor", [ZTE, AUDITOR])
def test_outsiders_cannot_void_trade(actor: Actor) -> None:
    _, _, trade = pending_trade()
    with rejected(NotAuthorised, "actor", trade):
        trade.void(reason="meddling", actor=actor, at=T0 + timedelta(days=3))


def test_trade_voids_exactly_once() -> None:
    _, _, trade = pending_trade()
    trade.void(reason="payment not received", actor=OPERATOR, at=T0 + timedelta(days=3))
    trade.collect_events()
    with rejected(TradeResolved, "trade", trade):
        trade.void(reason="again", actor=OPERATOR, at=T0 + timedelta(days=4))
    with rejected(TradeResolved, "trade", trade):
        trade.settle(payment_ref="CNAPS-1", effective=None, actor=OPERATOR, at=T0 + timedelta(days=4))


def test_lapsed_trade_may_be_voided_once_to_record_why_it_ended() -> None:
    # The deadline itself records nothing (docs/rules.md): one void records the reason
    # and lets the application end the listing; a second resolution is refused.
    _, _, trade = pending_trade()
    late = trade.deadline + timedelta(days=1)
    trade.void(reason="payment not received by the deadline", actor=OPERATOR, at=late)
    assert names(trade) == ["Trade.Voided"]
    with rejected(TradeResolved, "trade", trade):
        trade.void(reason="again", actor=OPERATOR, at=late)


def test_voided_trade_frees_the_asset_and_ends_the_listing() -> None:
    asset, listing, trade = pending_trade()
    at = T0 + timedelta(days=3)
    trade.void(reason="payment not received", actor=OPERATOR, at=at)
    asset.release_hold(holder=trade.trade_id, reason="trade voided", at=at)
    listing.sale_fell_through(trade_id=trade.trade_id, at=at)
    assert names(asset) == ["Asset.HoldReleased"]
    assert names(listing) == ["Listing.SaleFellThrough"]
    assert listing.status == "closed"
    asset.assign(to={"zte": "1"}, kind=ConveyanceKind.assignment, effective=None, actor=OPERATOR, at=at)
    assert asset.owners == {"zte": "1"}


def test_settled_trade_conveys_title_to_the_buyer() -> None:
    asset, _, trade = pending_trade()
    at = T0 + timedelta(days=3)
    effective = trade.settle(payment_ref="CNAPS-1", effective=date(2026, 3, 4), actor=OPERATOR, at=at)
    asset.convey_under_trade(trade_id=trade.trade_id, buyer=trade.buyer, effective=effective, at=at)
    assert asset.owners_on(date(2026, 3, 3)) == {"fudan-univ": "1"}
    assert asset.owners_on(date(2026, 3, 4)) == {"huawei": "1"}
    assert asset.conveyances[-1].trade == "T-1"


# =========================================================================== who sees a reserve (pure rule)

CO_SELLERS = ["cas-sippr", "fudan-univ"]  # a co-owned patent, listed by both owners


def test_each_seller_of_a_listing_sees_its_reserve() -> None:
    assert sees_reserve(FUDAN, CO_SELLERS) and sees_reserve(CAS, CO_SELLERS)


def test_the_operator_and_auditors_see_every_reserve() -> None:
    assert sees_reserve(OPERATOR, CO_SELLERS) and sees_reserve(AUDITOR, CO_SELLERS)


@pytest.mark.parametrize("viewer", [HUAWEI, ZTE, Actor.parse("icbc-sh")], ids=lambda a: a.id)
def test_a_bidder_or_any_other_member_never_sees_the_reserve(viewer: Actor) -> None:
    assert not sees_reserve(viewer, CO_SELLERS)
    assert reserve_shown("1500000.00", viewer=viewer, sellers=CO_SELLERS) == HIDDEN


def test_a_hidden_reserve_reads_hidden_never_null_which_would_say_there_is_none() -> None:
    assert HIDDEN == "hidden"
    assert reserve_shown("1500000.00", viewer=HUAWEI, sellers=["fudan-univ"]) == "hidden"
    assert reserve_shown("1500000.00", viewer=FUDAN, sellers=["fudan-univ"]) == "1500000.00"


def test_a_listing_without_a_reserve_says_so_to_everyone() -> None:
    for viewer in (HUAWEI, FUDAN, OPERATOR):
        assert reserve_shown(None, viewer=viewer, sellers=["fudan-univ"]) is None


# =========================================================================== licence scopes (pure rules)

TERRITORIES = st.lists(st.sampled_from(["CN", "US", "DE", "JP", "WORLD"]), min_size=1, max_size=3, unique=True)
FIELDS = st.lists(st.sampled_from(["5G base stations", "EV batteries", "ALL"]), min_size=1, max_size=2, unique=True)


@st.composite
def scopes(draw: st.DrawFn) -> Scope:
    start = draw(st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 31)))
    days = draw(st.integers(min_value=1, max_value=3000))
    return parse_scope(
        type=draw(st.sampled_from([t.value for t in LicenceType])),
        territories=draw(TERRITORIES),
        fields=draw(FIELDS),
        start=start,
        end=start + timedelta(days=days),
    )


@given(scopes(), scopes())
def test_scope_overlap_and_conflict_are_symmetric(a: Scope, b: Scope) -> None:
    assert a.overlaps(b) == b.overlaps(a)
    assert conflicts(a, b) == conflicts(b, a)


@given(scopes(), scopes())
def test_only_overlapping_scopes_conflict(a: Scope, b: Scope) -> None:
    if conflicts(a, b):
        assert a.overlaps(b)


@given(scopes(), scopes())
def test_conflict_rule_of_licence_types(a: Scope, b: Scope) -> None:
    types = {a.type, b.type}
    expected = a.overlaps(b) and (LicenceType.exclusive in types or LicenceType.sole in types)
    assert conflicts(a, b) == expected
    if types == {LicenceType.non_exclusive}:
        assert not conflicts(a, b)


@given(scopes())
def test_scope_overlaps_and_contains_itself(a: Scope) -> None:
    assert a.overlaps(a)
    assert a.contains(a)


@given(scopes(), scopes())
def test_contained_scope_overlaps_its_container(a: Scope, b: Scope) -> None:
    if a.contains(b):
        assert a.overlaps(b) and b.overlaps(a)


def test_scopes_with_adjacent_terms_do_not_overlap() -> None:
    first = parse_scope(type="exclusive", territories=["CN"], fields=["ALL"], start="2026-01-01", end="2027-01-01")
    second = parse_scope(type="exclusive", territories=["CN"], fields=["ALL"], start="2027-01-01", end="2028-01-01")
    assert not first.overlaps(second)
    assert not conflicts(first, second)


def test_world_territory_overlaps_every_country() -> None:
    world = parse_scope(
        type="sole", territories=["WORLD"], fields=["EV batteries"], start="2026-01-01", end="2030-01-01"
    )
    japan = parse_scope(
        type="non_exclusive", territories=["JP"], fields=["EV batteries"], start="2028-01-01", end="2029-01-01"
    )
    assert world.overlaps(japan) and conflicts(world, japan)
