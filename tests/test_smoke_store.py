"""The store round-trips events on both backends, with the chain and the command record."""

from __future__ import annotations

from tests.conftest import PATENT, Market


def test_registered_asset_is_owned_by_its_registrant(market: Market) -> None:
    assert market.ledger.owner(PATENT)["owners"] == [{"member": "fudan-univ", "share": "1"}]


def test_repeated_command_id_returns_first_outcome_and_writes_nothing(market: Market) -> None:
    first = market.do("member.add", command_id="cmd-1", id="tsinghua", name="Tsinghua", kind="university", country="CN")
    before = market.export()
    again = market.do("member.add", command_id="cmd-1", id="tsinghua", name="Tsinghua", kind="university", country="CN")
    assert again == first
    assert market.export() == before


def test_fresh_log_verifies(market: Market) -> None:
    report = market.ledger.verify()
    assert report["ok"] is True
    assert report["events"] == report["position"]
