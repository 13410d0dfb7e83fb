"""Jurisdiction rule packs (jurisdictions.md): CN and US law where they differ, one
spelling per registry number, `ipledger rules`, and a review of the past.

Domain tests call the pure functions; CLI tests run the commands a user types.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipledger.domain import assets, rulepacks
from ipledger.domain.errors import AssetPledged, InvalidInput, NotPledgeable, PledgeBeyondExpiry
from ipledger.domain.rulepacks import COMMON, PledgeFacts, check_pledge, pack_for, packs
from ipledger.domain.values import _canonical_ref, canonical_ref
from ipledger.service import Ledger
from tests.builders import FUDAN, T0, register
from tests.cli_helpers import assert_rejected, doc
from tests.conftest import PATENT, Cli, Market

US_PATENT = "US/patent/7654321"
CN_APPLICATION = "CN/patent_application/ZL202310054321.7"
US_APPLICATION = "US/patent_application/15334090"
EXPIRES = date(2038, 1, 5)


def facts(ref: str = PATENT, *, in_force: tuple[str, ...] = (), end: date | None = date(2030, 12, 31)) -> PledgeFacts:
    return PledgeFacts(ref, EXPIRES, in_force, date(2026, 3, 1), end)


# --------------------------------------------------------------------------- CN, on the pure rules


def test_cn_patent_application_is_not_pledgeable() -> None:
    with pytest.raises(NotPledgeable) as info:
        check_pledge(facts(CN_APPLICATION))
    assert info.value.message.startswith(f"ref: {CN_APPLICATION} is a patent application")
    assert "art. 12" in info.value.message


def test_cn_patent_with_a_pledge_in_force_cannot_be_pledged_again_and_the_error_names_it() -> None:
    with pytest.raises(AssetPledged) as info:
        check_pledge(facts(in_force=("P-ICBC-1",)))
    assert info.value.message.startswith(f"ref: {PATENT} is already pledged (pledge P-ICBC-1, in force)")


def test_cn_patent_pledge_may_not_start_before_the_last_pledge_ended() -> None:
    """Backdated by its start, a second pledge would overlap the first one's days in force."""
    earlier = replace(facts(), last_ended=("P-1", date(2026, 3, 1)), start=date(2026, 2, 1))
    with pytest.raises(AssetPledged) as info:
        check_pledge(earlier)
    assert info.value.message.startswith("start: 2026-02-01 is before pledge P-1 on ")
    check_pledge(replace(earlier, start=date(2026, 3, 1)))  # from the day it ended: one at a time


def test_cn_patent_pledge_needs_its_end() -> None:
    with pytest.raises(InvalidInput) as info:
        check_pledge(facts(end=None))
    assert info.value.message.startswith("end: a pledge of a CN patent states its term's end")


def test_cn_patent_pledge_may_not_run_past_the_patents_expiry() -> None:
    with pytest.raises(PledgeBeyondExpiry) as info:
        check_pledge(facts(end=date(2038, 1, 6)))
    assert info.value.message.startswith("end: 2038-01-06 is after CN/patent/ZL201810012345.6 expires (2038-01-05)")


def test_cn_patent_pledge_may_end_on_the_day_the_patent_expires() -> None:
    check_pledge(facts(end=EXPIRES))


@pytest.mark.parametrize("kind", ["utility_model", "design"])
def test_cn_utility_models_and_designs_are_patent_rights_with_one_pledge_at_a_time(kind: str) -> None:
    with pytest.raises(AssetPledged):
        check_pledge(facts(f"CN/{kind}/ZL201920054321.X", in_force=("P-1",)))


def test_cn_trademark_keeps_the_common_rules() -> None:
    check_pledge(facts("CN/trademark/12345678", in_force=("P-1", "P-2"), end=None))


# --------------------------------------------------------------------------- US and the rest


def test_us_application_takes_several_security_interests_without_a_term() -> None:
    check_pledge(facts(US_APPLICATION, in_force=("P-1", "P-2"), end=None))


def test_us_patent_takes_a_pledge_beyond_its_expiry_date_as_recorded() -> None:
    check_pledge(facts(US_PATENT, end=date(2040, 1, 1)))


def test_unknown_jurisdiction_gets_the_common_rules_only() -> None:
    assert pack_for("DE") is COMMON
    check_pledge(facts("DE/patent/DE102019000001", in_force=("P-1",), end=None))


def test_every_pack_rule_cites_its_source() -> None:
    for pack in [COMMON, *packs().values()]:
        assert pack.sources, pack.name
        for rule in pack.rules:
            assert rule.source and rule.says, rule.id
            assert rule.id.startswith("common." if pack is COMMON else f"{pack.jurisdiction}."), rule.id


# --------------------------------------------------------------------------- through the aggregate


def test_asset_pledge_applies_the_cn_pack_after_the_common_rules() -> None:
    asset = register(expires_on=EXPIRES)
    asset.pledge(pledge_id="P-1", start=date(2026, 3, 1), end=date(2030, 3, 1), actor=FUDAN, at=T0)
    asset.collect_events()
    with pytest.raises(AssetPledged):
        asset.pledge(pledge_id="P-2", start=date(2026, 3, 1), end=date(2030, 3, 1), actor=FUDAN, at=T0)
    assert asset.pledge_ids == ["P-1"] and list(asset.collect_events()) == []


def test_asset_pledge_decision_leaves_us_patents_to_rank_several() -> None:
    asset = register(US_PATENT)
    for pledge_id in ("P-1", "P-2", "P-3"):
        asset.pledge(pledge_id=pledge_id, start=date(2026, 3, 1), end=None, actor=FUDAN, at=T0)
    assert [asset.pledge_rank(p) for p in ("P-1", "P-2", "P-3")] == [1, 2, 3]


def test_the_decide_function_is_where_the_pack_runs() -> None:
    """`assets.pledge` is pure: it refuses without touching the asset."""
    asset = register(CN_APPLICATION)
    with pytest.raises(NotPledgeable):
        assets.pledge(asset, pledge_id="P-1", start=date(2026, 3, 1), end=date(2030, 1, 1), actor=FUDAN, at=T0)
    assert asset.pledge_ids == []


# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("CN/patent/ZL201810012345.6", "CN/patent/ZL201810012345.6"),
        ("CN/patent/201810012345.6", "CN/patent/ZL201810012345.6"),
        ("cn/patent/zl 2018 1001 2345.6", "CN/patent/ZL201810012345.6"),
        ("CN/patent/2018100123456", "CN/patent/ZL201810012345.6"),
        ("CN/utility_model/ZL201920054321.x", "CN/utility_model/ZL201920054321.X"),
        ("CN/patent/ZL95115608.1", "CN/patent/ZL95115608.1"),
        ("CN/patent_application/202310054321.7", "CN/patent_application/ZL202310054321.7"),
        ("CN/trademark/12345678", "CN/trademark/12345678"),
        ("US/patent/7,545,760", "US/patent/7545760"),
        ("US/patent/07545760", "US/patent/7545760"),
        ("US/patent/re45,000", "US/patent/RE45000"),
        ("US/design/512,345", "US/design/D512345"),
        ("US/design/D0512345", "US/design/D512345"),
        ("US/patent_application/15334,090", "US/patent_application/15334090"),
        ("US/patent_application/15/334,090", "US/patent_application/15334090"),
        ("EP/patent/ep3456789", "EP/patent/EP3456789"),
    ],
)
def test_each_pack_spells_a_registry_number_one_way(typed: str, canonical: str) -> None:
    assert canonical_ref(typed) == canonical


@pytest.mark.parametrize(
    ("typed", "rule"),
    [
        ("CN/patent/ZL2018100123.6", "ref: 'ZL2018100123.6' is not a CN patent number: ZL + 8 or 12 digits"),
        ("CN/patent/ZL201810012345", "ref: 'ZL201810012345' is not a CN patent number"),
        ("CN/design/FZ", "ref: 'FZ' is not a CN patent number"),
        ("US/patent/7545760A", "ref: '7545760A' is not a US patent number"),
        ("US/patent_application/1533409", "ref: '1533409' is not a US application number: 8 digits"),
        ("US/design/DX1", "ref: 'DX1' is not a US design patent number"),
        ("US/patent/D512,345", "ref: 'D512,345' is not a US patent number"),  # a design is US/design/D512345
        ("US/patent/7545760,", "ref: '7545760,' has a stray comma"),
        ("US/patent/,7545760", "ref: ',7545760' has a stray comma"),
        ("US/patent/7,545,,760", "ref: '7,545,,760' has a stray comma"),
        ("EP/patent/ß1", "ref: 'EP/patent/ß1' is not an asset ref"),  # ß would upper-case to SS
    ],
)
def test_a_number_its_office_does_not_write_that_way_is_refused(typed: str, rule: str) -> None:
    with pytest.raises(InvalidInput) as info:
        canonical_ref(typed)
    assert info.value.message.startswith(rule), info.value.message


def test_every_spelling_finds_the_one_asset(run: Cli) -> None:
    run.ok("asset", "register", "US/patent/7,545,760", "--title", "Flash memory", "--owner", "huawei")
    assert_dup = run("asset", "register", "US/patent/07545760", "--title", "again", "--owner", "zte")
    assert assert_dup.exit_code == 1 and assert_dup.stderr.startswith("error: DuplicateId: ")
    for spelling in ("US/patent/7545760", "US/patent/7,545,760", "us/patent/007545760"):
        assert doc(run("--json", "owner", spelling)) == doc(run("--json", "owner", "US/patent/7545760"))
    owner = doc(run("--json", "owner", "US/patent/7,545,760"))
    assert owner["asset"] == "US/patent/7545760" and owner["owners"] == [{"member": "huawei", "share": "1"}]


# --------------------------------------------------------------------------- through the CLI


@pytest.fixture
def cn(run: Cli) -> Cli:
    """PATENT (CN, fudan-univ) with an expiry, a CN application, and a US patent."""
    run.ok(
        "asset",
        "register",
        "CN/patent/ZL201920054321.X",
        "--title",
        "Sodium battery",
        "--owner",
        "fudan-univ",
        "--expires-on",
        "2039-03-01",
    )
    run.ok("asset", "register", CN_APPLICATION, "--title", "Solid electrolyte", "--owner", "fudan-univ")
    run.ok("asset", "register", US_PATENT, "--title", "Electrode coating", "--owner", "fudan-univ")
    return run


CN_EXPIRING = "CN/patent/ZL201920054321.X"


def pledge(run: Cli, ref: str, pledgee: str, *extra: str) -> Any:
    return run("pledge", "register", ref, "--pledgee", pledgee, *extra)


def test_cli_refuses_to_pledge_a_cn_application_with_exit_1(cn: Cli) -> None:
    before = cn.export()
    message = assert_rejected(
        cn, before, pledge(cn, CN_APPLICATION, "icbc-sh", "--end", "2030-01-01"), 1, "NotPledgeable"
    )
    assert message.startswith(f"ref: {CN_APPLICATION} is a patent application")


def test_cli_refuses_a_second_cn_pledge_in_force_naming_the_first(cn: Cli) -> None:
    assert doc(pledge(cn, CN_EXPIRING, "icbc-sh", "--end", "2030-01-01", "--id", "P-ICBC-1", "--json"))["rank"] == 1
    before = cn.export()
    message = assert_rejected(cn, before, pledge(cn, CN_EXPIRING, "boc-bj", "--end", "2030-01-01"), 1, "AssetPledged")
    assert "(pledge P-ICBC-1, in force)" in message


def test_cli_accepts_a_new_cn_pledge_once_the_first_is_released(cn: Cli) -> None:
    pledge(cn, CN_EXPIRING, "icbc-sh", "--end", "2030-01-01", "--id", "P-ICBC-1")
    cn.ok("pledge", "release", "P-ICBC-1", actor="icbc-sh")
    assert doc(pledge(cn, CN_EXPIRING, "boc-bj", "--end", "2031-01-01", "--id", "P-BOC-1", "--json"))["rank"] == 1


def test_cli_refuses_a_cn_pledge_backdated_into_the_days_of_a_released_one(cn: Cli) -> None:
    pledge(cn, CN_EXPIRING, "icbc-sh", "--end", "2030-01-01", "--id", "P-1")  # from 2026-03-02
    cn.now = "2026-03-10T09:00:00Z"
    cn.ok("pledge", "release", "P-1", "--effective", "2026-03-05", actor="icbc-sh")
    before = cn.export()
    backdated = pledge(cn, CN_EXPIRING, "boc-bj", "--end", "2030-01-01", "--start", "2026-03-04")
    message = assert_rejected(cn, before, backdated, 1, "AssetPledged")
    assert message.startswith("start: 2026-03-04 is before pledge P-1 on CN/patent/ZL201920054321.X ended (2026-03-05)")
    assert pledge(cn, CN_EXPIRING, "boc-bj", "--end", "2030-01-01", "--start", "2026-03-05").exit_code == 0


def test_cli_refuses_a_cn_pledge_without_an_end_with_exit_2(cn: Cli) -> None:
    before = cn.export()
    message = assert_rejected(cn, before, pledge(cn, CN_EXPIRING, "icbc-sh"), 2, "InvalidInput")
    assert message.startswith("end: a pledge of a CN patent states its term's end")


def test_cli_refuses_a_cn_pledge_beyond_the_patents_expiry(cn: Cli) -> None:
    before = cn.export()
    result = pledge(cn, CN_EXPIRING, "icbc-sh", "--end", "2039-03-02")
    message = assert_rejected(cn, before, result, 1, "PledgeBeyondExpiry")
    assert message.startswith(f"end: 2039-03-02 is after {CN_EXPIRING} expires (2039-03-01)")


def test_cli_us_patent_takes_several_security_interests_ranked_by_recording(cn: Cli) -> None:
    ranks = [doc(pledge(cn, US_PATENT, bank, "--json"))["rank"] for bank in ("icbc-sh", "boc-bj")]
    assert ranks == [1, 2]


def test_rules_cn_prints_each_rule_with_its_source_and_error(run: Cli) -> None:
    text = run.ok("rules", "CN").stdout
    assert text.startswith("CN: China (CNIPA)\n")
    assert "CN.pledge.granted-only: A patent application cannot be pledged" in text
    assert "refused as PledgeBeyondExpiry" in text
    assert "Common rules" in text


def test_rules_json_lists_the_pack_and_the_common_rules(run: Cli) -> None:
    got = doc(run("--json", "rules", "us"))
    assert got["jurisdiction"] == "US" and got["pack"]["name"] == "United States (USPTO)"
    assert {r["id"] for r in got["pack"]["rules"]} >= {"US.pledge.several", "US.pledge.applications"}
    assert got["common"]["jurisdiction"] == "*"
    assert all(r["source"] for r in got["pack"]["rules"] + got["common"]["rules"])


def test_rules_without_a_code_lists_every_pack(run: Cli) -> None:
    got = doc(run("--json", "rules"))
    assert [p["jurisdiction"] for p in got["packs"]] == ["CN", "US"]


def test_rules_for_a_jurisdiction_without_a_pack_says_common_rules_only(run: Cli) -> None:
    assert run.ok("rules", "DE").stdout.startswith("DE: no rule pack; the common rules only\n")
    assert doc(run("--json", "rules", "DE"))["pack"] is None


def test_rules_for_a_code_that_is_no_jurisdiction_is_bad_input(run: Cli) -> None:
    result = run("rules", "XX")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: InvalidInput: jurisdiction: 'XX' is not an ISO 3166-1 alpha-2 code "
        "or a regional office (EP, EM, WO)\n"
    )


# --------------------------------------------------------------------------- the past stands; check reports it


@pytest.fixture
def before_the_packs(run: Cli, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """A store written before the packs existed: CN pledges stacked, without end, on an
    application; and a US number recorded with its leading zero."""
    with monkeypatch.context() as m:
        m.setattr(assets, "check_pledge", lambda facts: None)
        m.setattr(rulepacks, "canonical_number", lambda j, k, number, field="ref": number.upper())
        _canonical_ref.cache_clear()
        run.ok("asset", "register", CN_APPLICATION, "--title", "Solid electrolyte", "--owner", "fudan-univ")
        run.ok("asset", "register", "US/patent/07654321", "--title", "Coating", "--owner", "fudan-univ")
        run.ok("pledge", "register", PATENT, "--pledgee", "icbc-sh", "--id", "P-1")
        run.ok("pledge", "register", PATENT, "--pledgee", "boc-bj", "--id", "P-2", "--end", "2030-01-01")
        run.ok("pledge", "register", CN_APPLICATION, "--pledgee", "icbc-sh", "--id", "P-3", "--end", "2030-01-01")
    _canonical_ref.cache_clear()
    return run


def test_history_recorded_before_the_packs_still_verifies_and_rebuilds(before_the_packs: Cli) -> None:
    run = before_the_packs
    assert run("audit", "verify").exit_code == 0
    assert run("projections", "rebuild").exit_code == 0
    encumbrances = doc(run("--json", "encumbrances", PATENT))
    assert [p["id"] for p in encumbrances["pledges"]] == ["P-1", "P-2"]


def test_rules_check_lists_what_todays_packs_would_have_refused(before_the_packs: Cli) -> None:
    got = doc(before_the_packs("--json", "rules", "check"))
    assert got["pledges_checked"] == 3 and got["assets_checked"] == 3
    found = {(f["subject"], f["error"]) for f in got["findings"]}
    assert found == {
        ("asset US/patent/07654321", "NonCanonicalRef"),
        ("pledge P-1", "InvalidInput"),  # no end
        ("pledge P-2", "AssetPledged"),  # P-1 was in force
        ("pledge P-3", "NotPledgeable"),  # an application
    }


def test_rules_check_judges_a_pledge_as_of_its_recording(before_the_packs: Cli) -> None:
    run = before_the_packs
    run.ok("pledge", "release", "P-1", actor="icbc-sh")  # P-1 ends after P-2 was recorded: P-2 was still second
    findings = doc(run("--json", "rules", "check"))["findings"]
    assert ("pledge P-2", "AssetPledged") in {(f["subject"], f["error"]) for f in findings}


def test_rules_check_text_says_nothing_to_refuse_on_a_clean_store(run: Cli) -> None:
    assert run.ok("rules", "check").stdout == "1 asset(s) and 0 pledge(s) checked: nothing today's rules would refuse\n"


def test_new_commands_on_an_old_store_are_judged_by_todays_rules(before_the_packs: Cli) -> None:
    run = before_the_packs
    before = run.export()
    assert_rejected(
        run, before, run("pledge", "register", PATENT, "--pledgee", "icbc-sh", "--end", "2030-01-01"), 1, "AssetPledged"
    )


# --------------------------------------------------------------------------- adding a pack


JP_PACK = '''
"""Japan (a pack added in a test: one module, no change elsewhere)."""
from ipledger.domain.errors import InvalidInput
from ipledger.domain.rulepacks import PledgeFacts, Rule, RulePack


def term_stated(facts: PledgeFacts) -> None:
    if facts.end is None:
        raise InvalidInput("end: a JP patent pledge states its term (Patent Act art. 98, in this test)")


PACK = RulePack(
    jurisdiction="JP",
    name="Japan (JPO)",
    sources=("Patent Act art. 98",),
    rules=(Rule("JP.pledge.term", "A patent pledge states its term.", "Patent Act art. 98", "InvalidInput",
                term_stated),),
    number=lambda kind, number, field: number.upper().replace("-", ""),
)
'''


def test_adding_a_pack_is_adding_one_module(run: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "jp.py").write_text(textwrap.dedent(JP_PACK))
    monkeypatch.setattr(rulepacks, "__path__", [*rulepacks.__path__, str(tmp_path)])
    packs.cache_clear()
    _canonical_ref.cache_clear()
    try:
        assert [p["jurisdiction"] for p in doc(run("--json", "rules"))["packs"]] == ["CN", "JP", "US"]
        run.ok("asset", "register", "JP/patent/JP-6543210", "--title", "Sensor", "--owner", "fudan-univ")
        assert doc(run("--json", "owner", "JP/patent/JP6543210"))["asset"] == "JP/patent/JP6543210"
        before = run.export()
        refused = run("pledge", "register", "JP/patent/JP6543210", "--pledgee", "icbc-sh")
        assert assert_rejected(run, before, refused, 2, "InvalidInput").startswith("end: a JP patent pledge")
    finally:
        monkeypatch.undo()
        packs.cache_clear()
        _canonical_ref.cache_clear()
    assert "JP" not in packs()


# --------------------------------------------------------------------------- one state, two paths


def _line(n: int, command: str, **args: Any) -> dict[str, Any]:
    minute = n + 1
    return {
        "command": command,
        "args": args,
        "command_id": f"c-{n}",
        "actor": "operator",
        "at": f"2026-03-02T{9 + minute // 60:02d}:{minute % 60:02d}:00Z",
    }


SETUP = [
    ("member.add", {"id": "fudan-univ", "name": "Fudan University", "kind": "university", "country": "CN"}),
    *[
        ("member.add", {"id": bank, "name": bank, "kind": "financial_institution", "country": "CN"})
        for bank in ("icbc-sh", "boc-bj", "ccb-sh")
    ],
    (
        "asset.register",
        {
            "ref": PATENT,
            "title": "Coating",
            "owner": ["fudan-univ"],
            "expires_on": "2038-01-05",
            "effective": "2019-05-10",
        },
    ),
    (
        "asset.register",
        {"ref": US_APPLICATION, "title": "Coating (US)", "owner": ["fudan-univ"], "effective": "2019-05-10"},
    ),
]

STEPS = st.lists(
    st.tuples(
        st.sampled_from(["pledge", "release"]),
        st.sampled_from([PATENT, US_APPLICATION]),
        st.sampled_from(["icbc-sh", "boc-bj", "ccb-sh"]),
    ),
    min_size=1,
    max_size=14,
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS)
def test_us_stacked_and_cn_one_at_a_time_replay_alike_through_commands_and_import(
    steps: list[tuple[str, str, str]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Typed one at a time, CN refuses exactly the pledges its law refuses and US takes
    them all; the accepted commands imported elsewhere give the same log, byte for byte,
    and the same encumbrances after a rebuild."""
    where = tmp_path_factory.mktemp("packs")
    typed = Market(Ledger(f"sqlite:///{where}/typed.db"))
    lines = [_line(n, command, **args) for n, (command, args) in enumerate(SETUP)]
    for doc_ in lines:
        typed.do(doc_["command"], command_id=doc_["command_id"], at=doc_["at"], **doc_["args"])
    in_force: dict[str, list[str]] = {PATENT: [], US_APPLICATION: []}
    for n, (act, ref, bank) in enumerate(steps, start=len(lines)):
        if act == "pledge":
            line = _line(n, "pledge.register", ref=ref, pledgee=bank, id=f"P-{n}", end="2030-01-01")
            expect_ok = not (ref == PATENT and in_force[ref])
        else:
            if not in_force[ref]:
                continue
            line = _line(n, "pledge.release", pledge=in_force[ref][0])
            expect_ok = True
        pledgee = bank if act == "pledge" else None
        try:
            typed.do(line["command"], command_id=line["command_id"], at=line["at"], **line["args"])
        except AssetPledged as refused:
            assert not expect_ok and ref == PATENT, refused.message
            continue
        assert expect_ok, line
        lines.append(line)
        if pledgee is not None:
            in_force[ref].append(f"P-{n}")
        else:
            in_force[ref].pop(0)
    imported = Ledger(f"sqlite:///{where}/imported.db")
    imported.import_lines(orjson.dumps(d) for d in lines)
    assert b"\n".join(imported.export()) == typed.export()
    imported.rebuild()
    for ref in (PATENT, US_APPLICATION):
        as_of = date(2026, 3, 2)
        pledges = imported.encumbrances(ref, as_of)["pledges"]
        assert pledges == typed.ledger.encumbrances(ref, as_of)["pledges"]
        assert [p["id"] for p in pledges] == in_force[ref]
    assert json.dumps(imported.review_rules()["findings"]) == "[]"
    imported.close()
    typed.ledger.close()


def test_rules_check_finds_a_pledge_backdated_into_an_earlier_ones_days(
    cn: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    pledge(cn, CN_EXPIRING, "icbc-sh", "--end", "2030-01-01", "--id", "P-1")
    cn.now = "2026-03-10T09:00:00Z"
    cn.ok("pledge", "release", "P-1", "--effective", "2026-03-05", actor="icbc-sh")
    with monkeypatch.context() as m:  # recorded before the rule judged start dates
        m.setattr(assets, "check_pledge", lambda facts: None)
        pledge(cn, CN_EXPIRING, "boc-bj", "--end", "2030-01-01", "--start", "2026-03-04", "--id", "P-2")
    findings = doc(cn("--json", "rules", "check"))["findings"]
    assert [(f["subject"], f["error"]) for f in findings] == [("pledge P-2", "AssetPledged")]
    assert findings[0]["message"].startswith("start: 2026-03-04 is before pledge P-1 on ")
