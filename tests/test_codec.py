"""The stored form of events (ledger/codec.py): the hash chain and the Merkle leaves cover
these bytes, so the fast encoder must write exactly what pydantic's JSON mode wrote."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
import pytest

from bench.generator import generate
from ipledger.domain.listings import Listing
from ipledger.domain.scopes import Scope
from ipledger.domain.values import LicenceType
from ipledger.ledger.codec import INSTALLED_PREFIX, Envelope, decode_event, encode_state
from ipledger.service import Ledger


def pydantic_state(event: Any, envelope: Envelope | None) -> bytes:
    """The reference: how the mapper wrote an event's state before the fast encoder
    (pydantic's `model_dump(mode="json")`, then orjson)."""
    state = event.model_dump(mode="json")
    state.pop("originator_id")
    state.pop("originator_version")
    class_version = getattr(type(event), "class_version", 1)
    if class_version > 1:
        state["class_version"] = class_version
    if envelope is not None:
        state["meta"] = envelope.to_meta()
    if state.get("originator_topic") is not None:
        state["originator_topic"] = state["originator_topic"].removeprefix(INSTALLED_PREFIX)
    return orjson.dumps(state)


def test_every_event_of_the_bench_workload_is_stored_as_pydantic_wrote_it(tmp_path: Path) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path}/ledger.db")
    try:
        ledger.import_lines(iter(generate(5000, seed=7)))
        lines = [orjson.loads(line) for line in ledger.export()]
    finally:
        ledger.close()
    assert len(lines) >= 5000
    topics = set()
    for line in lines:
        stored = line["state"].encode()
        envelope, payload = Envelope.from_state(orjson.loads(stored))
        event = decode_event(line["topic"], payload, UUID(line["originator_id"]), line["originator_version"])
        assert pydantic_state(event, envelope) == stored, line["position"]
        assert encode_state(event, envelope) == stored, line["position"]
        topics.add(line["topic"])
    assert len(topics) >= 15  # the workload reaches most event classes


@pytest.mark.parametrize(
    "recorded",
    [
        datetime(2025, 3, 3, 9, 0, tzinfo=UTC),
        datetime(2025, 3, 3, 9, 0, 0, 500, tzinfo=UTC),
        datetime(2025, 3, 3, 9, 0, 0, 100000, tzinfo=timezone(timedelta(hours=8))),
    ],
    ids=["whole-second", "microseconds", "offset"],
)
@pytest.mark.parametrize("ask", ["180000.00", "1E+2", "0", "-0.00"])
def test_times_money_and_value_objects_are_written_as_pydantic_writes_them(recorded: datetime, ask: str) -> None:
    scope = Scope(
        type=LicenceType("exclusive"), territories=("CN", "HK"), fields=("ALL",),
        start=date(2025, 5, 1), end=date(2030, 1, 1),
    )  # fmt: skip
    event = Listing.Opened(
        originator_id=Listing.create_id("L-1"), originator_version=1, timestamp=recorded,
        originator_topic="ipledger.domain.listings:Listing", listing_id="L-1", ref="CN/patent/ZL201810012345.6",
        sellers=["fudan-univ", "上海交通大学"], type="licence", mechanism="english", currency="CNY",
        opens_at=recorded, closes_at=recorded + timedelta(days=7), ask=Decimal(ask), reserve=None,
        increment=Decimal("5000.00"), extend_minutes=None, settlement_days=5, scope=scope,
    )  # fmt: skip
    envelope = Envelope(actor="fudan-univ", command_id="c-1")
    assert encode_state(event, envelope) == pydantic_state(event, envelope)
    assert encode_state(event, None) == pydantic_state(event, None)
