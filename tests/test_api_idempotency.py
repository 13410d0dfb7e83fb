"""Two identical requests with one Idempotency-Key, racing (api.md "Commands"): one is
recorded (201), the other is the repeat (200, the first body). The store's unique index
on command ids decides who was first, not a lookup made before either wrote."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from ipledger.ledger.unit_of_work import UnitOfWork
from tests.conftest import Market
from tests.test_api import Api, serving


@pytest.fixture
def any_store_api(market: Market) -> Iterator[Api]:
    yield from serving(market)


def both_decided_before_either_commits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hold each thread's first commit until both threads have decided: the race at its
    narrowest, where both found no record of the key (the retry after a conflict runs free)."""
    barrier = threading.Barrier(2, timeout=20)
    waited: set[int] = set()
    commit: Callable[[UnitOfWork], Any] = UnitOfWork.commit

    def held(self: UnitOfWork) -> Any:
        if threading.get_ident() not in waited:
            waited.add(threading.get_ident())
            barrier.wait()
        return commit(self)

    monkeypatch.setattr(UnitOfWork, "commit", held)


def test_racing_repeats_of_one_key_get_one_201_and_one_200_with_the_first_body(
    any_store_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = any_store_api
    before = api.digest()["position"]
    both_decided_before_either_commits(monkeypatch)
    args = {"id": "acme", "name": "Acme", "kind": "enterprise", "country": "CN"}
    answers: list[httpx.Response] = []

    def send() -> None:
        answers.append(api.post("member.add", args, key="add-acme"))

    threads = [threading.Thread(target=send) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(r.status_code for r in answers) == [200, 201], [r.text for r in answers]
    assert answers[0].json() == answers[1].json() == {"id": "acme", "status": "active"}
    assert api.digest()["position"] == before + 1  # written once
