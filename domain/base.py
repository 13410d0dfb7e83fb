"""Aggregate and event base classes: eventsourcing aggregates with pydantic events.

Events are frozen pydantic models so their payloads are validated on the way in and
out of the store (see `ledger.store.PydanticMapper`). Every event carries the time it
was recorded (`timestamp`), which the application passes in from its clock so that a
pinned clock (`IPLEDGER_NOW`) or an import line's `at` is what history says.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import BaseAggregate, CanInitAggregate, CanMutateAggregate
from pydantic import BaseModel, ConfigDict

#: Natural keys (asset refs, member ids, caller-chosen ids) map to aggregate ids by uuid5.
NAMESPACE = uuid5(NAMESPACE_URL, "https://ipledger.example/ids")


@lru_cache(maxsize=65536)
def natural_id(kind: str, key: str) -> UUID:
    """Pure, and computed for every load, so the last keys seen are remembered."""
    return uuid5(NAMESPACE, f"{kind}:{key}")


class DomainEvent(BaseModel):
    # extra="ignore": the stored envelope also carries actor and command id (see
    # ledger.store), which are facts about the command, not about the aggregate.
    model_config = ConfigDict(extra="ignore", frozen=True, arbitrary_types_allowed=True)

    originator_id: UUID
    originator_version: int
    timestamp: datetime


class Aggregate(BaseAggregate[UUID]):
    class Event(DomainEvent, CanMutateAggregate[UUID]):
        pass

    class Created(Event, CanInitAggregate[UUID]):
        originator_topic: str
