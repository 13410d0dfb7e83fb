"""Domain rules of encumbrances, without a store: licences (scope, conflicts, sublicences,
ending), pledges (eligibility, pledgee consents, release, enforcement, rank) and the
co-owner consents an asset needs when one co-owner acts alone.

Aggregates are built directly and driven through their public methods. Each accepted
command is checked by the events it records; each rejection by its named error, a
message that starts with the field it names, and no event recorded by the rejected call.
"""

from __future__ import annotations

from contextlib import suppress
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipledger.domain.errors import (
    AssetExpired,
    AssetPledged,
    AssetReserved,
    ConsentMissing,
    InvalidInput,
    InvalidState,
    LicenceConflict,
    LicenceOutOfScope,
    MemberSuspended,
    NotAuthorised,
    NotEligible,
    NotOwner,
    SelfDealing,
)
from ipledger.domain.licences import Licence
from ipledger.domain.pledges import Pledge, use_consents
from ipledger.domain.scopes import Scope, conflicts, parse_scope
from ipledger.domain.values import Actor, ConveyanceKind
from tests.builders import (
    BOC,
    CAS,
    FUDAN,
    HUAWEI,
    ICBC,
    OPERATOR,
    PATENT,
    REGISTERED_ON,
    SJTU,
    T0,
    TERM,
    US_PATENT,
    ZTE,
    admit,
    co_owned,
    consented,
    grant,
    names,
    pledge,
    register,
    rejected,
    scope,
    suspended,
)

# =========================================================================== licences: grant


def test_grant_records_the_licence_with_its_scope_licensors_and_royalty() -> None:
    licence = Licence.grant(
        licence_id="LIC-1",
        ref=PATENT,
        licensors=["fudan-univ"],
        licensee=admit("huawei"),
        scope=scope("sole", ("CN", "JP")),
        royalty_rate=Decimal("3.5"),
        lump_sum=Decimal("250000.00"),
        currency="CNY",
        parent=None,
        others={},
        asset_registered_on=REGISTERED_ON,
        asset_expires_on=None,
        actor=OPERATOR,
        at=T0,
    )
    assert names(licence) == ["Licence.Granted"]
    assert (licence.licence_id, licence.ref, licence.licensors, licence.licensee) == (
        "LIC-1",
        PATENT,
        ["fudan-univ"],
        "huawei",
    )
    assert licence.type == "sole"
    assert licence.scope.territories == ("CN", "JP")
    assert (licence.royalty_rate, licence.lump_sum, licence.currency) == (Decimal("3.5"), Decimal("250000.00"), "CNY")
    assert licence.status == "granted" and licence.parent is None


def test_suspended_member_cannot_be_licensee() -> None:
    with rejected(MemberSuspended, "licensee"):
        grant("LIC-1", suspended("huawei"), scope())


def test_licence_term_cannot_start_before_the_asset_was_registered() -> None:
    with rejected(InvalidInput, "start"):
        grant("LIC-1", "huawei", scope(term=("2019-05-09", "2025-01-01")))


def test_licence_term_must_end_within_the_asset_life() -> None:
    with rejected(InvalidInput, "end"):
        grant("LIC-1", "huawei", scope(term=("2026-04-01", "2039-01-02")), expires_on=date(2039, 1, 1))


def test_licence_term_may_end_on_the_asset_expiry_date() -> None:
    licence = grant("LIC-1", "huawei", scope(term=("2026-04-01", "2039-01-01")), expires_on=date(2039, 1, 1))
    assert licence.scope.end == date(2039, 1, 1)


def test_lump_sum_needs_a_currency() -> None:
    with rejected(InvalidInput, "currency"):
        grant("LIC-1", "huawei", scope(), lump_sum=Decimal("250000.00"))


@pytest.mark.parametrize("rate", [Decimal("-0.5"), Decimal("100.01")])
def test_running_royalty_is_a_percentage_from_0_to_100(rate: Decimal) -> None:
    with rejected(InvalidInput, "royalty_rate"):
        grant("LIC-1", "huawei", scope(), royalty_rate=rate)


def test_licensor_cannot_license_itself() -> None:
    with rejected(SelfDealing, "licensee"):
        grant("LIC-1", "fudan-univ", scope())


def test_conflicting_grant_names_the_licence_and_licensee_it_collides_with() -> None:
    others: dict[str, Licence] = {}
    grant("LIC-HW-CN", "huawei", scope("exclusive"), others)
    with pytest.raises(LicenceConflict) as info:
        grant("LIC-ZTE", "zte", scope("non_exclusive"), others)
    assert info.value.message.startswith("type: ")
    assert "LIC-HW-CN" in info.value.message and "huawei" in info.value.message
    assert set(others) == {"LIC-HW-CN"}


# --------------------------------------------------------------------------- the conflict matrix

#: (first type, second type, conflict when the scopes overlap) — domain.md: one exclusive,
#: or both sole, or one sole and the other any licence. Two non-exclusive never conflict.
TYPE_PAIRS = [
    ("exclusive", "exclusive", True),
    ("exclusive", "sole", True),
    ("exclusive", "non_exclusive", True),
    ("sole", "exclusive", True),
    ("sole", "sole", True),
    ("sole", "non_exclusive", True),
    ("non_exclusive", "exclusive", True),
    ("non_exclusive", "sole", True),
    ("non_exclusive", "non_exclusive", False),
]

#: (name, first scope, second scope, do they overlap in territory, field and term)
CN_EV = (("CN",), ("EV batteries",), TERM)
PLACEMENTS = [
    ("same scope", CN_EV, CN_EV, True),
    ("one of two territories shared", CN_EV, (("US", "CN"), ("EV batteries",), TERM), True),
    ("WORLD covers CN", CN_EV, (("WORLD",), ("EV batteries",), TERM), True),
    ("ALL covers the field", CN_EV, (("CN",), ("ALL",), TERM), True),
    ("WORLD and ALL", CN_EV, (("WORLD",), ("ALL",), TERM), True),
    ("first is WORLD x ALL", (("WORLD",), ("ALL",), TERM), (("US",), ("5G base stations",), TERM), True),
    ("terms overlap by a day", CN_EV, (("CN",), ("EV batteries",), ("2031-03-31", "2033-01-01")), True),
    ("term inside the other", CN_EV, (("CN",), ("EV batteries",), ("2027-01-01", "2028-01-01")), True),
    ("disjoint territory", CN_EV, (("US",), ("EV batteries",), TERM), False),
    ("disjoint field", CN_EV, (("CN",), ("5G base stations",), TERM), False),
    ("adjacent term after", CN_EV, (("CN",), ("EV batteries",), ("2031-04-01", "2035-01-01")), False),
    ("adjacent term before", CN_EV, (("CN",), ("EV batteries",), ("2024-01-01", "2026-04-01")), False),
    ("WORLD but disjoint field", CN_EV, (("WORLD",), ("5G base stations",), TERM), False),
    ("ALL but disjoint territory", CN_EV, (("JP",), ("ALL",), TERM), False),
    (
        "WORLD x ALL but disjoint term",
        (("WORLD",), ("ALL",), TERM),
        (("WORLD",), ("ALL",), ("2032-01-01", "2033-01-01")),
        False,
    ),
]


@pytest.mark.parametrize(("first_type", "second_type", "types_clash"), TYPE_PAIRS)
@pytest.mark.parametrize(
    ("first_place", "second_place", "overlap"),
    [pytest.param(a, b, o, id=name) for name, a, b, o in PLACEMENTS],
)
def test_conflict_matrix_between_direct_licences(
    first_type: str,
    second_type: str,
    types_clash: bool,
    first_place: tuple[Any, ...],
    second_place: tuple[Any, ...],
    overlap: bool,
) -> None:
    others: dict[str, Licence] = {}
    grant("LIC-1", "huawei", scope(first_type, *first_place), others)
    second = scope(second_type, *second_place)
    if types_clash and overlap:
        with pytest.raises(LicenceConflict, match="LIC-1"):
            grant("LIC-2", "zte", second, others)
        assert set(others) == {"LIC-1"}
    else:
        grant("LIC-2", "zte", second, others)
        assert set(others) == {"LIC-1", "LIC-2"}


#: Sublicences under a sublicensable parent held by huawei (CN x ALL over TERM).
#: (parent type, first sublicence, second sublicence or None, second's field, accepted?)
SUBLICENCE_ROWS = [
    # a sublicence never conflicts with its own parent
    pytest.param("exclusive", "exclusive", None, None, True, id="exclusive parent, exclusive child"),
    pytest.param("exclusive", "sole", None, None, True, id="exclusive parent, sole child"),
    pytest.param("exclusive", "non_exclusive", None, None, True, id="exclusive parent, non-exclusive child"),
    pytest.param("sole", "sole", None, None, True, id="sole parent, sole child"),
    pytest.param("sole", "non_exclusive", None, None, True, id="sole parent, non-exclusive child"),
    pytest.param("non_exclusive", "non_exclusive", None, None, True, id="non-exclusive parent, non-exclusive child"),
    # ...but siblings under the same parent are checked against each other
    pytest.param("exclusive", "exclusive", "exclusive", "EV batteries", False, id="siblings exclusive/exclusive"),
    pytest.param("exclusive", "exclusive", "non_exclusive", "EV batteries", False, id="siblings exclusive/non-excl"),
    pytest.param("exclusive", "non_exclusive", "sole", "EV batteries", False, id="siblings non-excl/sole"),
    pytest.param("exclusive", "sole", "sole", "EV batteries", False, id="siblings sole/sole"),
    pytest.param("exclusive", "non_exclusive", "non_exclusive", "EV batteries", True, id="siblings non-excl x2"),
    pytest.param("exclusive", "exclusive", "exclusive", "5G base stations", True, id="siblings in disjoint fields"),
    pytest.param("sole", "sole", "non_exclusive", "EV batteries", False, id="siblings under sole parent"),
    pytest.param("non_exclusive", "non_exclusive", "non_exclusive", "EV batteries", True, id="non-excl parent x2"),
]


@pytest.mark.parametrize(("parent_type", "first_type", "second_type", "second_field", "accepted"), SUBLICENCE_ROWS)
def test_conflict_matrix_of_sublicences_against_parent_and_siblings(
    parent_type: str, first_type: str, second_type: str | None, second_field: str | None, accepted: bool
) -> None:
    others: dict[str, Licence] = {}
    parent = grant("LIC-P", "huawei", scope(parent_type, ("CN",), ("ALL",), sublicensable=True), others)
    child_scope = scope(first_type, ("CN",), ("EV batteries",), ("2027-01-01", "2030-01-01"))
    if second_type is None:
        child = grant("SUB-1", "zte", child_scope, others, parent=parent, licensors=("huawei",), actor=HUAWEI)
        assert accepted and child.parent == "LIC-P"
        return
    grant("SUB-1", "zte", child_scope, others, parent=parent, actor=HUAWEI)
    sibling = scope(second_type, ("CN",), (second_field or "ALL",), ("2028-01-01", "2029-01-01"))
    if accepted:
        grant("SUB-2", "byd", sibling, others, parent=parent, actor=HUAWEI)
        assert set(others) == {"LIC-P", "SUB-1", "SUB-2"}
    else:
        with pytest.raises(LicenceConflict, match="SUB-1"):
            grant("SUB-2", "byd", sibling, others, parent=parent, actor=HUAWEI)
        assert set(others) == {"LIC-P", "SUB-1"}


def test_grandchild_sublicence_never_conflicts_with_its_parent_chain() -> None:
    others: dict[str, Licence] = {}
    parent = grant("LIC-P", "huawei", scope("exclusive", ("CN",), ("ALL",), sublicensable=True), others)
    child = grant(
        "SUB-1", "zte", scope("exclusive", ("CN",), ("ALL",), sublicensable=True), others, parent=parent, actor=HUAWEI
    )
    grandchild = grant("SUB-1-1", "byd", scope("exclusive"), others, parent=child, actor=ZTE)
    assert grandchild.parent == "SUB-1"
    assert set(grandchild.parent_chain) == {"LIC-P", "SUB-1"}
    assert grandchild.licensors == ["zte"]


def test_sublicence_is_checked_against_licences_outside_its_chain() -> None:
    others: dict[str, Licence] = {}
    parent = grant("LIC-HW", "huawei", scope("non_exclusive", ("CN",), ("ALL",), sublicensable=True), others)
    grant("LIC-ZTE", "zte", scope("non_exclusive", ("CN",), ("EV batteries",)), others)
    with pytest.raises(LicenceConflict, match="LIC-ZTE"):
        grant("SUB-1", "byd", scope("sole"), others, parent=parent, actor=HUAWEI)


# --------------------------------------------------------------------------- sublicence scope


def test_sublicence_is_granted_by_the_parent_licensee_as_its_licensor() -> None:
    others: dict[str, Licence] = {}
    parent = grant("LIC-P", "huawei", scope("exclusive", ("CN",), ("ALL",), sublicensable=True), others)
    child = grant("SUB-1", "zte", scope("non_exclusive"), others, parent=parent, actor=HUAWEI)
    assert child.licensors == ["huawei"]
    assert (child.parent, child.parent_chain) == ("LIC-P", ["LIC-P"])


def test_parent_that_is_not_sublicensable_cannot_be_sublicensed() -> None:
    others: dict[str, Licence] = {}
    parent = grant("LIC-P", "huawei", scope("exclusive", ("CN",), ("ALL",)), others)
    with rejected(LicenceOutOfScope, "parent"):
        grant("SUB-1", "zte", scope("non_exclusive"), others, parent=parent, actor=HUAWEI)


@pytest.mark.parametrize(
    ("territories", "fields", "term"),
    [
        pytest.param(("US",), ("EV batteries",), TERM, id="other territory"),
        pytest.param(("CN", "US"), ("EV batteries",), TERM, id="a territory beyond the parent's"),
        pytest.param(("WORLD",), ("EV batteries",), TERM, id="WORLD beyond CN"),
        pytest.param(("CN",), ("5G base stations",), TERM, id="other field"),
        pytest.param(("CN",), ("ALL",), TERM, id="ALL beyond the parent's field"),
        pytest.param(("CN",), ("EV batteries",), ("2026-03-31", "2031-04-01"), id="starts before the parent"),
        pytest.param(("CN",), ("EV batteries",), ("2026-04-01", "2031-04-02"), id="ends after the parent"),
    ],
)
def test_sublicence_outside_the_parent_scope_is_out_of_scope(
    territories: tuple[str, ...], fields: tuple[str, ...], term: tuple[str, str]
) -> None:
    others: dict[str, Licence] = {}
    parent = grant("LIC-P", "huawei", scope("exclusive", ("CN",), ("EV batteries",), sublicensable=True), others)
    with rejected(LicenceOutOfScope, "parent"):
        grant("SUB-1", "zte", scope("non_exclusive", territories, fields, term), others, parent=parent, actor=HUAWEI)
    assert set(others) == {"LIC-P"}


@pytest.mark.parametrize("parent_type", ["sole", "non_exclusive"])
def test_only_an_exclusive_licence_grants_an_exclusive_sublicence(parent_type: str) -> None:
    others: dict[str, Licence] = {}
    parent = grant("LIC-P", "huawei", scope(parent_type, ("CN",), ("ALL",), sublicensable=True), others)
    with rejected(LicenceOutOfScope, "type"):
        grant("SUB-1", "zte", scope("exclusive"), others, parent=parent, actor=HUAWEI)


def test_sublicence_of_a_licence_on_another_asset_is_out_of_scope() -> None:
    others: dict[str, Licence] = {}
    parent = grant("LIC-P", "huawei", scope("exclusive", sublicensable=True), ref=US_PATENT)
    with rejected(LicenceOutOfScope, "parent"):
        grant("SUB-1", "zte", scope("non_exclusive"), others, parent=parent, actor=HUAWEI)


@pytest.mark.parametrize("actor", [FUDAN, ZTE])
def test_only_the_parent_licensee_grants_a_sublicence(actor: Actor) -> None:
    others: dict[str, Licence] = {}
    parent = grant("LIC-P", "huawei", scope("exclusive", ("CN",), ("ALL",), sublicensable=True), others)
    with rejected(NotAuthorised, "actor"):
        grant("SUB-1", "byd", scope("non_exclusive"), others, parent=parent, actor=actor)


def test_ended_parent_cannot_be_sublicensed() -> None:
    others: dict[str, Licence] = {}
    parent = grant(
        "LIC-P",
        "huawei",
        scope("exclusive", ("CN",), ("ALL",), ("2025-01-01", "2030-01-01"), sublicensable=True),
        others,
    )
    parent.terminate(reason="royalties unpaid", effective=date(2026, 3, 1), actor=FUDAN, owners=["fudan-univ"], at=T0)
    parent.collect_events()
    with rejected(InvalidState, "parent"):
        grant("SUB-1", "zte", scope("non_exclusive", term=("2027-01-01", "2028-01-01")), others, parent=parent)


def test_sublicence_ends_when_its_parent_ends() -> None:
    others: dict[str, Licence] = {}
    parent = grant("LIC-P", "huawei", scope("exclusive", ("CN",), ("ALL",), sublicensable=True), others)
    child = grant("SUB-1", "zte", scope("exclusive"), others, parent=parent, actor=HUAWEI)
    parent.terminate(reason="licensee insolvent", effective=date(2026, 3, 2), actor=FUDAN, owners=["fudan-univ"], at=T0)
    assert child.end_date(others) == date(2026, 3, 2)
    assert child.effective_scope(others) is None  # it never came into force (term began 2026-04-01)


def test_sublicence_in_force_is_cut_at_its_parent_end() -> None:
    others: dict[str, Licence] = {}
    parent = grant(
        "LIC-P",
        "huawei",
        scope("exclusive", ("CN",), ("ALL",), ("2025-01-01", "2035-01-01"), sublicensable=True),
        others,
    )
    child = grant("SUB-1", "zte", scope("exclusive", term=("2025-06-01", "2034-01-01")), others, parent=parent)
    parent.surrender(effective=date(2026, 2, 1), actor=HUAWEI, at=T0)
    window = child.effective_scope(others)
    assert window is not None and (window.start, window.end) == (date(2025, 6, 1), date(2026, 2, 1))


def test_sublicence_stops_blocking_grants_when_its_parent_ends() -> None:
    others: dict[str, Licence] = {}
    parent = grant(
        "LIC-P",
        "huawei",
        scope("exclusive", ("CN",), ("ALL",), ("2025-01-01", "2035-01-01"), sublicensable=True),
        others,
    )
    grant("SUB-1", "zte", scope("exclusive", term=("2025-06-01", "2034-01-01")), others, parent=parent)
    parent.terminate(reason="licensee insolvent", effective=date(2026, 3, 2), actor=FUDAN, owners=["fudan-univ"], at=T0)
    later = grant("LIC-BYD", "byd", scope("exclusive", term=("2026-03-02", "2030-01-01")), others)
    assert later.licence_id in others


# --------------------------------------------------------------------------- ending licences


def test_licensor_terminates_a_licence_with_an_effective_date() -> None:
    licence = grant("LIC-1", "huawei", scope(term=("2025-01-01", "2030-01-01")))
    licence.terminate(reason="royalties unpaid", effective=date(2026, 2, 1), actor=FUDAN, owners=["fudan-univ"], at=T0)
    assert names(licence) == ["Licence.Ended"]
    assert (licence.status, licence.ended_on) == ("terminated", date(2026, 2, 1))


def test_termination_without_an_effective_date_takes_effect_on_the_recorded_date() -> None:
    licence = grant("LIC-1", "huawei", scope(term=("2025-01-01", "2030-01-01")))
    licence.terminate(reason="royalties unpaid", effective=None, actor=OPERATOR, owners=["fudan-univ"], at=T0)
    assert licence.ended_on == T0.date()


@pytest.mark.parametrize("actor", [HUAWEI, ZTE, ICBC])
def test_only_the_licensor_or_operator_terminates_a_licence(actor: Actor) -> None:
    licence = grant("LIC-1", "huawei", scope())
    with rejected(NotAuthorised, "actor", licence):
        licence.terminate(reason="breach", effective=None, actor=actor, owners=["fudan-univ"], at=T0)


def test_new_owner_terminates_a_licence_granted_by_the_former_owner() -> None:
    licence = grant("LIC-1", "huawei", scope())
    licence.terminate(reason="breach", effective=None, actor=SJTU, owners=["sjtu"], at=T0)
    assert licence.status == "terminated"


def test_former_owner_cannot_terminate_a_licence_after_assigning_the_asset() -> None:
    licence = grant("LIC-1", "huawei", scope())
    with rejected(NotAuthorised, "actor", licence):
        licence.terminate(reason="breach", effective=None, actor=FUDAN, owners=["sjtu"], at=T0)


def test_sublicence_is_terminated_by_its_licensor_not_the_asset_owner() -> None:
    others: dict[str, Licence] = {}
    parent = grant("LIC-P", "huawei", scope("exclusive", ("CN",), ("ALL",), sublicensable=True), others)
    child = grant("SUB-1", "zte", scope("non_exclusive"), others, parent=parent, actor=HUAWEI)
    with rejected(NotAuthorised, "actor", child):
        child.terminate(reason="breach", effective=None, actor=FUDAN, owners=["fudan-univ"], at=T0)


def test_termination_cannot_take_effect_after_it_is_recorded() -> None:
    licence = grant("LIC-1", "huawei", scope())
    with rejected(InvalidInput, "effective", licence):
        licence.terminate(reason="breach", effective=date(2026, 3, 3), actor=FUDAN, owners=["fudan-univ"], at=T0)


def test_licensee_surrenders_its_licence() -> None:
    licence = grant("LIC-1", "huawei", scope(term=("2025-01-01", "2030-01-01")))
    licence.surrender(effective=date(2026, 1, 15), actor=HUAWEI, at=T0)
    assert names(licence) == ["Licence.Ended"]
    assert (licence.status, licence.ended_on) == ("surrendered", date(2026, 1, 15))


@pytest.mark.parametrize("actor", [FUDAN, ZTE])
def test_only_the_licensee_surrenders_a_licence(actor: Actor) -> None:
    licence = grant("LIC-1", "huawei", scope())
    with rejected(NotAuthorised, "actor", licence):
        licence.surrender(effective=None, actor=actor, at=T0)


@pytest.mark.parametrize("how", ["terminated", "surrendered"])
def test_an_ended_licence_cannot_be_ended_again(how: str) -> None:
    licence = grant("LIC-1", "huawei", scope())
    if how == "terminated":
        licence.terminate(reason="breach", effective=None, actor=FUDAN, owners=["fudan-univ"], at=T0)
    else:
        licence.surrender(effective=None, actor=HUAWEI, at=T0)
    licence.collect_events()
    with rejected(InvalidState, "licence", licence):
        licence.terminate(reason="breach", effective=None, actor=OPERATOR, owners=["fudan-univ"], at=T0)
    with rejected(InvalidState, "licence", licence):
        licence.surrender(effective=None, actor=HUAWEI, at=T0)


def test_terminated_licence_no_longer_blocks_grants_from_its_end() -> None:
    others: dict[str, Licence] = {}
    licence = grant("LIC-1", "huawei", scope("exclusive", term=("2025-01-01", "2030-01-01")), others)
    licence.terminate(reason="breach", effective=date(2026, 3, 1), actor=FUDAN, owners=["fudan-univ"], at=T0)
    with pytest.raises(LicenceConflict, match="LIC-1"):
        grant("LIC-2", "zte", scope("exclusive", term=("2026-02-28", "2030-01-01")), others)
    grant("LIC-3", "zte", scope("exclusive", term=("2026-03-01", "2030-01-01")), others)
    assert set(others) == {"LIC-1", "LIC-3"}


def test_licence_ended_before_its_term_began_was_never_in_force() -> None:
    licence = grant("LIC-1", "huawei", scope(term=TERM))
    licence.surrender(effective=None, actor=HUAWEI, at=T0)
    assert licence.effective_scope({"LIC-1": licence}) is None


# --------------------------------------------------------------------------- the asset's side of a grant


def test_asset_records_each_licence_granted_on_it() -> None:
    asset = register()
    asset.license(licence_id="LIC-1", exclusive=False, actor=FUDAN, at=T0)
    assert names(asset) == ["Asset.LicenceAttached"]
    assert asset.licence_ids == ["LIC-1"]


def test_member_cannot_license_an_asset_it_does_not_own() -> None:
    asset = register()
    with rejected(NotOwner, "actor", asset):
        asset.license(licence_id="LIC-1", exclusive=False, actor=HUAWEI, at=T0)


def test_expired_asset_cannot_be_licensed() -> None:
    asset = register(expires_on=date(2026, 3, 2))
    with rejected(AssetExpired, "ref", asset):
        asset.license(licence_id="LIC-1", exclusive=False, actor=FUDAN, at=T0)


def test_licences_stay_attached_through_an_assignment() -> None:
    asset = register()
    asset.license(licence_id="LIC-1", exclusive=True, actor=FUDAN, at=T0)
    asset.assign(to={"sjtu": "1"}, kind=ConveyanceKind.assignment, effective=None, actor=FUDAN, at=T0)
    assert asset.owners == {"sjtu": "1"}
    assert asset.licence_ids == ["LIC-1"]


# =========================================================================== pledges


def test_pledge_register_records_pledgee_amount_and_term() -> None:
    p = Pledge.register(
        pledge_id="P-1",
        ref=PATENT,
        pledgors=["fudan-univ"],
        pledgee=admit("icbc-sh"),
        amount=Decimal("10000000.00"),
        currency="CNY",
        start=date(2026, 3, 1),
        end=date(2029, 3, 1),
        at=T0,
    )
    assert names(p) == ["Pledge.Registered"]
    assert (p.pledgee, p.pledgors, p.amount, p.currency) == ("icbc-sh", ["fudan-univ"], Decimal("10000000.00"), "CNY")
    assert (p.start, p.end, p.status) == (date(2026, 3, 1), date(2029, 3, 1), "registered")


def test_security_interest_without_amount_or_end_is_in_force_indefinitely() -> None:
    p = pledge(ref=US_PATENT, amount=None, currency=None, end=None)
    assert p.amount is None and p.end is None
    assert p.in_force_on(date(2099, 1, 1))
    assert not p.in_force_on(date(2026, 2, 28))


@pytest.mark.parametrize("pledgee", ["huawei", "fudan-univ", "cas-sippr"])
def test_only_a_financial_institution_takes_a_pledge(pledgee: str) -> None:
    with rejected(NotEligible, "pledgee"):
        pledge(pledgee=pledgee, pledgors=("sjtu",))


def test_owner_cannot_take_a_pledge_on_its_own_asset() -> None:
    with rejected(NotEligible, "pledgee"):
        pledge(pledgee="icbc-sh", pledgors=("icbc-sh",))


def test_suspended_financial_institution_cannot_take_a_pledge() -> None:
    with rejected(MemberSuspended, "pledgee"):
        pledge(pledgee=suspended("icbc-sh"))


@pytest.mark.parametrize(
    ("amount", "currency", "missing"), [("10000000.00", None, "currency"), (None, "CNY", "amount")]
)
def test_secured_amount_and_currency_go_together(amount: str | None, currency: str | None, missing: str) -> None:
    with rejected(InvalidInput, missing):
        pledge(amount=amount, currency=currency)


def test_pledge_cannot_start_after_it_is_recorded() -> None:
    with rejected(InvalidInput, "start"):
        pledge(start=date(2026, 3, 3))


def test_pledge_term_must_end_after_it_starts() -> None:
    with rejected(InvalidInput, "end"):
        pledge(start=date(2026, 3, 1), end=date(2026, 3, 1))


# A pledge's term on the asset, as the builders' `pledge` records it (a CN patent's pledge states its end).
START, END = date(2026, 3, 1), date(2029, 3, 1)


# Ranks need several pledges on one asset at once: US law allows that (a CN patent carries one at a time).


def test_pledges_rank_by_registration_order() -> None:
    asset = register(US_PATENT)
    asset.pledge(pledge_id="P-ICBC", start=START, end=END, actor=FUDAN, at=T0)
    asset.pledge(pledge_id="P-BOC", start=START, end=None, actor=FUDAN, at=T0)
    assert names(asset) == ["Asset.PledgeAttached", "Asset.PledgeAttached"]
    assert asset.pledge_ids == ["P-ICBC", "P-BOC"]


def test_second_pledge_moves_up_to_first_rank_when_the_first_is_released() -> None:
    asset = register(US_PATENT)
    asset.pledge(pledge_id="P-ICBC", start=START, end=END, actor=FUDAN, at=T0)
    asset.pledge(pledge_id="P-BOC", start=START, end=None, actor=FUDAN, at=T0)
    asset.discharge_pledge(pledge_id="P-ICBC", effective=T0.date(), at=T0)
    assert asset.pledge_ids == ["P-BOC"]


def test_member_cannot_pledge_an_asset_it_does_not_own() -> None:
    asset = register()
    with rejected(NotOwner, "actor", asset):
        asset.pledge(pledge_id="P-1", start=START, end=END, actor=HUAWEI, at=T0)


def test_expired_asset_cannot_be_pledged() -> None:
    asset = register(expires_on=date(2026, 1, 1))
    with rejected(AssetExpired, "ref", asset):
        asset.pledge(pledge_id="P-1", start=START, end=END, actor=FUDAN, at=T0)


def test_asset_in_an_open_assignment_listing_cannot_be_pledged() -> None:
    asset = register()
    asset.offer_for_assignment(listing_id="L-1", actor=FUDAN, at=T0)
    asset.collect_events()
    with rejected(AssetReserved, "ref", asset):
        asset.pledge(pledge_id="P-1", start=START, end=END, actor=FUDAN, at=T0)


# --------------------------------------------------------------------------- pledgee consents


def test_unconsented_act_on_a_pledged_asset_names_the_pledgee_and_the_pledge() -> None:
    p = pledge("P-7")
    with rejected(AssetPledged, "consent", p) as info:
        use_consents([p], act="assignment", offered=(), used_for="cmd-1", ref=PATENT, at=T0)
    assert "icbc-sh" in info.value.message and "P-7" in info.value.message


@pytest.mark.parametrize("act", ["assignment", "licence", "listing"])
def test_pledgee_consent_permits_the_act_and_is_consumed_by_it(act: str) -> None:
    p = consented(pledge(), "C-1", act)
    use_consents([p], act=act, offered=("C-1",), used_for="cmd-1", ref=PATENT, at=T0)
    assert names(p) == ["Pledge.ConsentUsed"]
    assert p.consents["C-1"].used_for == "cmd-1"


def test_consumed_consent_cannot_be_used_again() -> None:
    p = consented(pledge(), "C-1", "assignment")
    use_consents([p], act="assignment", offered=("C-1",), used_for="cmd-1", ref=PATENT, at=T0)
    p.collect_events()
    with rejected(AssetPledged, "consent", p):
        use_consents([p], act="assignment", offered=("C-1",), used_for="cmd-2", ref=PATENT, at=T0)


def test_consent_to_one_act_does_not_permit_another() -> None:
    p = consented(pledge(), "C-1", "licence")
    with rejected(AssetPledged, "consent", p):
        use_consents([p], act="assignment", offered=("C-1",), used_for="cmd-1", ref=PATENT, at=T0)


def test_consent_under_another_pledge_does_not_count() -> None:
    icbc = pledge("P-1")
    boc = consented(pledge("P-2", "boc-bj"), "C-BOC", "assignment", actor=BOC)
    with rejected(AssetPledged, "consent", icbc, boc):
        use_consents([icbc], act="assignment", offered=("C-BOC",), used_for="cmd-1", ref=PATENT, at=T0)


def test_every_live_pledge_needs_its_own_consent_and_none_is_consumed_without_all() -> None:
    icbc = consented(pledge("P-1"), "C-ICBC", "assignment")
    boc = pledge("P-2", "boc-bj")
    with pytest.raises(AssetPledged) as info:
        use_consents([icbc, boc], act="assignment", offered=("C-ICBC",), used_for="cmd-1", ref=PATENT, at=T0)
    assert "boc-bj" in info.value.message and "P-2" in info.value.message
    assert icbc.consents["C-ICBC"].used_for is None and not icbc.pending_events


def test_released_pledge_needs_no_consent() -> None:
    p = pledge()
    p.release(effective=None, actor=ICBC, at=T0)
    p.collect_events()
    use_consents([p], act="assignment", offered=(), used_for="cmd-1", ref=PATENT, at=T0)
    assert names(p) == []


@pytest.mark.parametrize("actor", [FUDAN, BOC, HUAWEI])
def test_only_the_pledgee_consents_under_its_pledge(actor: Actor) -> None:
    p = pledge()
    with rejected(NotAuthorised, "actor", p):
        p.consent(consent_id="C-1", act="assignment", actor=actor, at=T0)


def test_pledgee_consent_names_a_known_act() -> None:
    p = pledge()
    with rejected(InvalidInput, "act", p):
        p.consent(consent_id="C-1", act="pledge", actor=ICBC, at=T0)


def test_no_consent_under_a_released_pledge() -> None:
    p = pledge()
    p.release(effective=None, actor=ICBC, at=T0)
    p.collect_events()
    with rejected(InvalidState, "pledge", p):
        p.consent(consent_id="C-1", act="assignment", actor=ICBC, at=T0)


# --------------------------------------------------------------------------- release and enforcement


@pytest.mark.parametrize("actor", [ICBC, OPERATOR])
def test_pledgee_or_operator_releases_a_pledge(actor: Actor) -> None:
    p = pledge()
    assert p.release(effective=date(2026, 3, 2), actor=actor, at=T0) == date(2026, 3, 2)
    assert names(p) == ["Pledge.Ended"]
    assert (p.status, p.ended_on) == ("released", date(2026, 3, 2))
    assert p.in_force_on(date(2026, 3, 1)) and not p.in_force_on(date(2026, 3, 2))


@pytest.mark.parametrize("verb", ["release", "enforce"])
@pytest.mark.parametrize("actor", [FUDAN, BOC, HUAWEI])
def test_only_the_pledgee_or_operator_releases_or_enforces(verb: str, actor: Actor) -> None:
    p = pledge()
    with rejected(NotAuthorised, "actor", p):
        getattr(p, verb)(effective=None, actor=actor, at=T0)


@pytest.mark.parametrize("verb", ["release", "enforce"])
def test_pledge_cannot_end_before_it_started(verb: str) -> None:
    p = pledge(start=date(2026, 3, 1))
    with rejected(InvalidInput, "effective", p):
        getattr(p, verb)(effective=date(2026, 2, 28), actor=ICBC, at=T0)


def test_released_pledge_cannot_be_enforced() -> None:
    p = pledge()
    p.release(effective=None, actor=ICBC, at=T0)
    p.collect_events()
    with rejected(InvalidState, "pledge", p):
        p.enforce(effective=None, actor=ICBC, at=T0)


def test_enforcement_conveys_title_to_the_pledgee() -> None:
    asset = register()
    asset.pledge(pledge_id="P-1", start=START, end=END, actor=FUDAN, at=T0)
    asset.collect_events()
    p = pledge()
    effective = p.enforce(effective=None, actor=ICBC, at=T0)
    asset.convey_on_enforcement(pledge_id="P-1", pledgee=p.pledgee, effective=effective, at=T0)
    assert p.status == "enforced"
    assert names(asset) == ["Asset.Conveyed", "Asset.PledgeDetached"]
    assert asset.owners == {"icbc-sh": "1"}
    last = asset.conveyances[-1]
    assert (last.kind, last.effective) == ("enforcement", T0.date())
    assert asset.pledge_ids == []


def test_enforcement_keeps_other_pledges_and_licences_attached() -> None:
    asset = register(US_PATENT)  # two pledges at once: US law allows it
    asset.license(licence_id="LIC-1", exclusive=False, actor=FUDAN, at=T0)
    asset.pledge(pledge_id="P-1", start=START, end=END, actor=FUDAN, at=T0)
    asset.pledge(pledge_id="P-2", start=START, end=None, actor=FUDAN, at=T0)
    asset.convey_on_enforcement(pledge_id="P-1", pledgee="icbc-sh", effective=T0.date(), at=T0)
    assert asset.licence_ids == ["LIC-1"]
    assert asset.pledge_ids == ["P-2"]


def test_enforcement_is_refused_while_a_pending_trade_reserves_the_asset() -> None:
    asset = register()
    asset.reserve(trade_id="T-1", listing_id="L-1", deadline=T0 + timedelta(days=7), at=T0)
    asset.collect_events()
    with rejected(AssetReserved, "ref", asset):
        asset.convey_on_enforcement(pledge_id="P-1", pledgee="icbc-sh", effective=T0.date(), at=T0)


# =========================================================================== co-owner consents


@pytest.mark.parametrize("act", ["assignment", "listing", "exclusive_licence", "pledge"])
def test_co_owner_alone_needs_the_other_co_owners_consent(act: str) -> None:
    asset = co_owned()
    with rejected(ConsentMissing, "actor", asset):
        asset.authorise(FUDAN, act, T0)


def test_missing_consent_names_the_co_owner_who_has_not_consented() -> None:
    asset = register(owners={"fudan-univ": "1/3", "cas-sippr": "1/3", "sjtu": "1/3"})
    asset.give_co_owner_consent(consent_id="CC-1", member="cas-sippr", act="assignment", actor=CAS, at=T0)
    asset.collect_events()
    with pytest.raises(ConsentMissing) as info:
        asset.authorise(FUDAN, "assignment", T0)
    assert "sjtu" in info.value.message and "cas-sippr" not in info.value.message.split("consent of")[1]
    assert not asset.co_owner_consents["CC-1"].used and not asset.pending_events


def test_co_owner_consent_permits_the_act_and_is_used_by_it() -> None:
    asset = co_owned()
    asset.give_co_owner_consent(consent_id="CC-1", member="cas-sippr", act="pledge", actor=CAS, at=T0)
    assert names(asset) == ["Asset.CoOwnerConsented"]
    asset.authorise(FUDAN, "pledge", T0)
    assert names(asset) == ["Asset.CoOwnerConsentsUsed"]
    assert asset.co_owner_consents["CC-1"].used


def test_used_co_owner_consent_cannot_permit_a_second_act() -> None:
    asset = co_owned()
    asset.give_co_owner_consent(consent_id="CC-1", member="cas-sippr", act="pledge", actor=CAS, at=T0)
    asset.authorise(FUDAN, "pledge", T0)
    asset.collect_events()
    with rejected(ConsentMissing, "actor", asset):
        asset.authorise(FUDAN, "pledge", T0)


def test_co_owner_consent_to_one_act_does_not_permit_another() -> None:
    asset = co_owned()
    asset.give_co_owner_consent(consent_id="CC-1", member="cas-sippr", act="exclusive_licence", actor=CAS, at=T0)
    asset.collect_events()
    with rejected(ConsentMissing, "actor", asset):
        asset.authorise(FUDAN, "assignment", T0)


def test_co_owner_alone_grants_a_non_exclusive_licence_without_consent() -> None:
    asset = co_owned()
    asset.license(licence_id="LIC-1", exclusive=False, actor=FUDAN, at=T0)
    assert names(asset) == ["Asset.LicenceAttached"]


def test_co_owner_alone_cannot_grant_an_exclusive_licence_without_consent() -> None:
    asset = co_owned()
    with rejected(ConsentMissing, "actor", asset):
        asset.license(licence_id="LIC-1", exclusive=True, actor=FUDAN, at=T0)


def test_operator_acts_for_all_co_owners_without_consents() -> None:
    asset = co_owned()
    asset.assign(to={"huawei": "1"}, kind=ConveyanceKind.assignment, effective=None, actor=OPERATOR, at=T0)
    assert names(asset) == ["Asset.Conveyed"]
    assert asset.owners == {"huawei": "1"}


def test_co_owner_cannot_consent_for_another_co_owner() -> None:
    asset = co_owned()
    with rejected(NotAuthorised, "member", asset):
        asset.give_co_owner_consent(consent_id="CC-1", member="cas-sippr", act="assignment", actor=FUDAN, at=T0)


def test_operator_records_a_consent_for_a_co_owner() -> None:
    asset = co_owned()
    asset.give_co_owner_consent(consent_id="CC-1", member="cas-sippr", act="assignment", actor=OPERATOR, at=T0)
    assert asset.co_owner_consents["CC-1"].member == "cas-sippr"


def test_non_owner_cannot_give_a_co_owner_consent() -> None:
    asset = co_owned()
    with rejected(NotOwner, "member", asset):
        asset.give_co_owner_consent(consent_id="CC-1", member="huawei", act="assignment", actor=HUAWEI, at=T0)


def test_asset_with_one_owner_takes_no_co_owner_consent() -> None:
    asset = register()
    with rejected(InvalidState, "ref", asset):
        asset.give_co_owner_consent(consent_id="CC-1", member="fudan-univ", act="assignment", actor=FUDAN, at=T0)


def test_co_owner_consent_names_an_act_that_binds_all_co_owners() -> None:
    asset = co_owned()
    with rejected(InvalidInput, "act", asset):
        asset.give_co_owner_consent(consent_id="CC-1", member="cas-sippr", act="licence", actor=CAS, at=T0)


# =========================================================================== property: no conflicting pair survives

TERRITORY_SETS = st.lists(st.sampled_from(["CN", "US", "JP", "WORLD"]), min_size=1, max_size=2, unique=True)
FIELD_SETS = st.lists(st.sampled_from(["EV batteries", "5G base stations", "ALL"]), min_size=1, max_size=2, unique=True)
LICENSEES = ["huawei", "zte", "byd", "sjtu", "cas-sippr"]


@st.composite
def attempted_scopes(draw: st.DrawFn) -> Scope:
    start = date(2024, 1, 1) + timedelta(days=draw(st.integers(min_value=0, max_value=8)) * 365)
    years = draw(st.integers(min_value=1, max_value=5))
    return parse_scope(
        type=draw(st.sampled_from(["exclusive", "sole", "non_exclusive"])),
        territories=draw(TERRITORY_SETS),
        fields=draw(FIELD_SETS),
        start=start,
        end=start + timedelta(days=365 * years),
        sublicensable=draw(st.booleans()),
    )


def narrowed(parent: Scope, attempt: Scope) -> Scope:
    """The attempt cut down to lie within the parent's scope (so most sublicences get past the scope rule)."""
    territories = attempt.territories
    if "WORLD" not in parent.territories:
        territories = tuple(t for t in territories if t in parent.territories) or parent.territories
    fields = attempt.fields
    if "ALL" not in parent.fields:
        fields = tuple(f for f in fields if f in parent.fields) or parent.fields
    start, end = max(attempt.start, parent.start), min(attempt.end, parent.end)
    if start >= end:
        start, end = parent.start, parent.end
    return attempt.model_copy(update={"territories": territories, "fields": fields, "start": start, "end": end})


def _in_chain(a: Licence, b: Licence) -> bool:
    return a.licence_id in b.chain_ids() or b.licence_id in a.chain_ids()


def _conflicting_pairs(licences: dict[str, Licence], allow_chain: bool) -> list[tuple[str, str]]:
    pairs = []
    items = list(licences.values())
    for i, a in enumerate(items):
        for b in items[i + 1 :]:
            if allow_chain and _in_chain(a, b):
                continue
            sa, sb = a.effective_scope(licences), b.effective_scope(licences)
            if sa is not None and sb is not None and conflicts(sa, sb):
                pairs.append((a.licence_id, b.licence_id))
    return pairs


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(LICENSEES), attempted_scopes()), min_size=1, max_size=12))
def test_accepted_grants_never_contain_two_conflicting_licences(attempts: list[tuple[str, Scope]]) -> None:
    licences: dict[str, Licence] = {}
    for n, (licensee, attempt) in enumerate(attempts):
        with suppress(LicenceConflict):
            grant(f"LIC-{n}", licensee, attempt, licences)
    assert licences, "the first attempt always has nothing to conflict with"
    assert _conflicting_pairs(licences, allow_chain=False) == []


ROOT_SCOPE = scope("exclusive", ("CN",), ("ALL",), ("2024-01-01", "2034-01-01"), sublicensable=True)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["grant", "sublicense", "sublicense", "terminate", "surrender"]),
            st.sampled_from(LICENSEES),
            attempted_scopes(),
            st.integers(min_value=0, max_value=20),
            st.integers(min_value=0, max_value=800),
        ),
        min_size=1,
        max_size=15,
    )
)
def test_only_a_parent_chain_may_overlap_after_grants_sublicences_and_endings(
    steps: list[tuple[str, str, Scope, int, int]],
) -> None:
    licences: dict[str, Licence] = {}
    grant("LIC-ROOT", "huawei", ROOT_SCOPE, licences)  # a sublicensable exclusive licence: siblings compete under it
    for n, (action, licensee, attempt, pick, days_back) in enumerate(steps):
        existing = list(licences.values())
        parents = [lic for lic in existing if lic.scope.sublicensable and lic.status == "granted"]
        target = existing[pick % len(existing)]
        try:
            if action == "grant":
                grant(f"LIC-{n}", licensee, attempt, licences)
            elif action == "sublicense" and parents:
                parent = parents[pick % len(parents)]
                grant(f"SUB-{n}", licensee, narrowed(parent.scope, attempt), licences, parent=parent, actor=OPERATOR)
            elif action == "terminate":
                target.terminate(
                    reason="breach", effective=T0.date() - timedelta(days=days_back), actor=OPERATOR, owners=[], at=T0
                )
            elif action == "surrender":
                target.surrender(effective=T0.date() - timedelta(days=days_back), actor=OPERATOR, at=T0)
        except (LicenceConflict, LicenceOutOfScope, InvalidState, SelfDealing):
            pass
    assert _conflicting_pairs(licences, allow_chain=True) == []
