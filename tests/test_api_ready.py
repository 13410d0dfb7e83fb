"""`/readyz` (api.md "Serving"): not ready (503, with the lag) while a read model is more
events behind the log than IPLEDGER_READY_MAX_LAG; ready again once it has caught up."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest

from tests.conftest import Market
from tests.test_api import NOW, Api, serving

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

    from ipledger.api import create_app


@pytest.fixture
def bounded(sqlite_market: Market, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    monkeypatch.setenv("IPLEDGER_READY_MAX_LAG", "2")
    yield from serving(sqlite_market)


def test_ready_fails_while_a_read_model_lags_more_than_the_bound_and_says_by_how_much(bounded: Api) -> None:
    api = bounded
    api.get("/v1/members/huawei")  # reads members, ownership, encumbrances, listings, book, trades
    api.get("/v1/trail", member="huawei")  # and the trail: every read model caught up
    assert api.client.get("/readyz").status_code == 200
    for n in range(3):
        added = api.post("member.add", {"id": f"lab-{n}", "name": "Lab", "kind": "university", "country": "CN"})
        assert added.status_code == 201
    r = api.client.get("/readyz")
    assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json"
    doc = r.json()
    assert doc["title"] == "NotReady" and doc["max_lag"] == 2 and doc["projections_behind"]["members"] == 3
    assert "3 events behind" in doc["detail"]
    api.get("/v1/members")  # a query catches its read models up, and only those
    assert api.client.get("/readyz").json()["projections_behind"]["members"] == 0
    assert api.client.get("/readyz").status_code == 503  # the others still lag
    api.get("/v1/members/huawei")
    api.get("/v1/trail", member="huawei")
    ready = api.client.get("/readyz")
    assert ready.status_code == 200 and max(ready.json()["projections_behind"].values()) == 0


def test_without_a_bound_ready_reports_the_lag_and_stays_ready(sqlite_market: Market) -> None:
    api = next(serving(sqlite_market))
    api.post("member.add", {"id": "lab-1", "name": "Lab", "kind": "university", "country": "CN"})
    r = api.client.get("/readyz")
    assert r.status_code == 200 and r.json()["projections_behind"]["members"] == r.json()["head"]  # never built
    api.client.close()


def test_a_bound_that_is_not_a_number_stops_the_server_starting(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IPLEDGER_READY_MAX_LAG", "ten")
    with pytest.raises(ValueError, match="IPLEDGER_READY_MAX_LAG"):
        TestClient(create_app(sqlite_url, pinned_now=NOW))
