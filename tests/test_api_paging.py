"""Cursor pagination of the API's lists (api.md "Queries", issue 14): walking every page
gives the unpaged list, each item once, in its order; a cursor is opaque and checked."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.conftest import PATENT, Market
from tests.test_api import Api, problem, serving

#: Each list route, its items' field, and filters that keep more than one page of it.
LISTS = [
    ("/v1/members", "members", {}),
    ("/v1/members", "members", {"kind": "enterprise"}),
    ("/v1/assets", "assets", {}),
    ("/v1/assets", "assets", {"jurisdiction": "US"}),
    ("/v1/listings", "listings", {}),
    ("/v1/listings", "listings", {"status": "open"}),
    ("/v1/trades", "trades", {}),
    ("/v1/pledges", "pledges", {}),
    ("/v1/pledges", "pledges", {"pledgee": "icbc-sh"}),
    ("/v1/licences", "licences", {"as_of": "2026-06-01"}),
]


@pytest.fixture
def busy(sqlite_market: Market) -> Any:
    """A market with several of everything: assets, listings (and trades), pledges, licences."""
    m = sqlite_market
    for n in range(5):
        ref = f"US/patent/765432{n}"  # a US patent carries more than one security interest
        m.do("asset.register", ref=ref, title=f"Cathode {n}", owner=["sjtu"], effective="2020-01-01")
        for licensee in ("byd", "zte"):
            m.do("licence.grant", ref=ref, licensee=licensee, type="non_exclusive", territory=["CN"],
                 field=["batteries"], start="2026-04-01", end="2029-01-01", id=f"LIC-{licensee}-{n}")  # fmt: skip
        for bank in ("icbc-sh", "boc-bj"):
            m.do("pledge.register", ref=ref, pledgee=bank, amount="1000000.00", currency="CNY", end="2030-12-31",
                 id=f"P-{bank}-{n}")  # fmt: skip
    for n in range(3):
        ref = f"CN/patent/ZL20211000000{n}.{n}"
        m.do("asset.register", ref=ref, title=f"Anode {n}", owner=["zte"], effective="2021-01-01")
        m.do("listing.open", ref=ref, type="assignment", mechanism="fixed", currency="CNY", ask="50000.00",
             closes="2026-04-01T00:00:00Z", id=f"L-{n}", actor="zte")  # fmt: skip
        if n < 2:
            m.do("bid.place", listing=f"L-{n}", bidder="huawei", amount="50000.00", trade_id=f"T-{n}", actor="huawei")
    m.do("listing.open", ref=PATENT, type="assignment", mechanism="english", currency="CNY", ask="100.00",
         closes="2026-04-01T00:00:00Z", id="L-fudan", actor="fudan-univ")  # fmt: skip
    yield from serving(m)


def walk(api: Api, path: str, field: str, params: dict[str, Any], limit: int) -> list[dict[str, Any]]:
    items, cursor, pages = [], None, 0
    while True:
        doc = api.get(path, **params, limit=limit, **({"cursor": cursor} if cursor else {})).json()
        assert len(doc[field]) <= limit
        items += doc[field]
        cursor, pages = doc["next"], pages + 1
        if cursor is None:
            return items
        assert pages < 100, "the pages never end"


@pytest.mark.parametrize(("path", "field", "params"), LISTS)
def test_walking_every_page_gives_the_unpaged_list_each_item_once(
    busy: Api, path: str, field: str, params: dict[str, Any]
) -> None:
    whole = busy.get(path, **params).json()
    assert whole["next"] is None and len(whole[field]) >= 2
    for limit in (1, 2, len(whole[field]) - 1, len(whole[field])):
        assert walk(busy, path, field, params, limit) == whole[field], limit


def test_a_page_starts_after_the_last_item_shown_even_when_items_are_added_before_it(busy: Api) -> None:
    first = busy.get("/v1/members", limit=3).json()
    seen = [m["member"] for m in first["members"]]
    added = busy.post("member.add", {"id": "aaa-first", "name": "A", "kind": "enterprise", "country": "CN"})
    assert added.status_code == 201
    rest = busy.get("/v1/members", cursor=first["next"]).json()["members"]
    assert [m["member"] for m in rest] == sorted(m["member"] for m in busy.get("/v1/members").json()["members"]
                                                 if m["member"] > seen[-1])  # fmt: skip
    assert "aaa-first" not in [m["member"] for m in rest]


def test_a_bad_cursor_is_a_problem_naming_the_cursor(busy: Api) -> None:
    cursor = busy.get("/v1/members", limit=2).json()["next"]
    forged = base64.urlsafe_b64encode(b'{"list": "members", "filters": "x", "after": [1]}').decode()
    for bad, params in (
        ("not-base64!", {}),
        ("bm90IGpzb24", {}),  # "not json"
        (forged, {}),
        (cursor, {"kind": "university"}),  # another filter's cursor
    ):
        doc = problem(busy.get("/v1/members", cursor=bad, **params), 400, "InvalidInput")
        assert doc["field"] == "cursor"
    doc = problem(busy.get("/v1/assets", cursor=cursor), 400, "InvalidInput")  # another list's cursor
    assert doc["field"] == "cursor"


def test_a_forged_cursor_whose_time_is_not_one_the_api_writes_is_a_problem_naming_the_cursor(busy: Api) -> None:
    import hashlib

    filters = hashlib.sha256(repr(sorted({"status": None, "asset": None, "member": None}.items())).encode())
    raw = f'{{"list": "listings", "filters": "{filters.hexdigest()[:12]}", "after": ["yesterday", "L-1"]}}'
    forged = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
    assert problem(busy.get("/v1/listings", cursor=forged), 400, "InvalidInput")["field"] == "cursor"


def test_openapi_documents_each_lists_next_and_failures_as_problem_documents(busy: Api) -> None:
    doc = busy.client.get("/openapi.json").json()
    page = doc["paths"]["/v1/trades"]["get"]["responses"]
    assert page["200"]["content"]["application/json"]["schema"]["required"] == ["trades", "next"]
    assert set(page) >= {"400", "401", "403", "404", "409", "503"} and "422" not in page  # 400 it is, never 422
    assert page["400"]["content"]["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/Problem"}
    assert "413" in doc["paths"]["/v1/commands/bid.place"]["post"]["responses"]
