"""The functional core's base: declared events that evolve state, and thin aggregates.

Every command's rules are one pure function over an aggregate's current state (read,
never changed) that returns the events it decides, or raises a named error. Every event
is a declared, frozen pydantic class with one `apply`: the only code that changes state,
run alike when a command is decided, when an import stages it and when history replays.
An aggregate is a shell: its methods call the decide function and `record` what it
returns, so the interactive, import and replay paths share one copy of every rule.

Events carry the time they were recorded (`timestamp`): the application passes in its
clock, so a pinned clock or an import line's `at` is what history says.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache
from hashlib import sha1
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import BaseAggregate, CanInitAggregate, CanMutateAggregate
from eventsourcing.utils import get_topic, resolve_topic
from pydantic import BaseModel, ConfigDict

#: Natural keys (asset refs, member ids, caller-chosen ids) map to aggregate ids by uuid5.
NAMESPACE = uuid5(NAMESPACE_URL, "https://ipledger.example/ids")
NAMESPACE_BYTES = NAMESPACE.bytes


@lru_cache(maxsize=65536)
def natural_id(kind: str, key: str) -> UUID:
    """uuid5(NAMESPACE, "kind:key"), by the RFC's own steps (SHA-1 of namespace and name,
    version and variant bits set by UUID): the stdlib's uuid5 spends most of its time
    around the hash. Pure, and computed for every load, so the last keys seen are remembered."""
    return UUID(bytes=sha1(NAMESPACE_BYTES + f"{kind}:{key}".encode()).digest()[:16], version=5)


class DomainEvent(BaseModel):
    # extra="ignore": the stored envelope also carries actor and command id (see
    # ledger.codec), which are facts about the command, not about the aggregate.
    # defer_build: an event class's validator is built when it first validates, so a
    # command pays for the events it decides or loads, not for every declared one.
    model_config = ConfigDict(extra="ignore", frozen=True, arbitrary_types_allowed=True, defer_build=True)

    originator_id: UUID
    originator_version: int
    timestamp: datetime


E = TypeVar("E", bound="Aggregate.Event")


class Aggregate(BaseAggregate[UUID]):
    # State attributes are declared for type checkers only: the library turns class
    # annotations into constructor fields, and state comes from the created event's apply.
    if TYPE_CHECKING:
        #: The natural-key kind its id is derived from (`natural_id(KIND, key)`).
        KIND: ClassVar[str]

    class Event(DomainEvent, CanMutateAggregate[UUID]):
        def apply(self, aggregate: Any) -> None:
            """How this fact changes the aggregate: each declared event overrides it."""

    class Created(Event, CanInitAggregate[UUID]):
        originator_topic: str

        def mutate(self, aggregate: Any) -> Any:
            """The new aggregate: what the library's CanInitAggregate does for an aggregate
            without `__init__` (see `__init_subclass__`), without searching constructor
            parameters on every creation (a tenth of deciding a creating command)."""
            assert aggregate is None
            cls = resolve_topic(self.originator_topic)
            new = cls.__new__(cls)
            new.__base_init__(self.originator_id, self.originator_version, self.timestamp)
            self.apply(new)
            return new

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """An aggregate's state comes from its created event's `apply`, never `__init__`.

        Every aggregate's events are declared on `Aggregate.Event` itself. Without the
        first lines, the library gives each aggregate `Event` and `Created` bases of its
        own and redefines every declared event as a subclass of them: a second pydantic
        class per event, with the same fields and topic, that cost about a third of the
        domain's import."""
        for name in ("Event", "Created"):  # the library would redefine both for every aggregate too
            if name not in cls.__dict__:
                setattr(cls, name, getattr(Aggregate, name))
        super().__init_subclass__(**kwargs)
        if "__init__" in vars(cls):
            raise TypeError(f"{cls.__name__}: an aggregate takes its state from its created event's apply")

    @classmethod
    def create_id(cls, key: str) -> UUID:
        return natural_id(cls.KIND, key)

    @classmethod
    def new(cls, events: Iterable[Aggregate.Event]) -> Self:
        """A new aggregate from its decided events (the first one creates it)."""
        first, *rest = events
        aggregate = first.mutate(None)
        assert isinstance(aggregate, cls)
        aggregate.pending_events.append(first)
        aggregate.record(rest)
        return aggregate

    def record(self, events: Iterable[Aggregate.Event]) -> None:
        """Apply decided events to this aggregate and keep them to be saved."""
        for e in events:
            e.mutate(self)
            self.pending_events.append(e)


class Decision(list["Aggregate.Event"]):
    """The events one decide function returns for one aggregate, numbered in order.

    Pure: it reads the aggregate's id and version and builds events; nothing changes
    until the shell records them."""

    def __init__(self, aggregate_id: UUID, version: int, at: datetime) -> None:
        super().__init__()
        self.aggregate_id, self.version, self.at = aggregate_id, version, at

    @classmethod
    def about(cls, aggregate: Aggregate, at: datetime) -> Decision:
        return cls(aggregate.id, aggregate.version, at)

    @classmethod
    def creating(
        cls, aggregate_cls: type[Aggregate], key: str, created: type[Aggregate.Created], at: datetime, **fields: Any
    ) -> Decision:
        """The decision that creates an aggregate: its first event names its class."""
        decision = cls(aggregate_cls.create_id(key), 0, at)
        decision.append(
            created(
                originator_id=decision.aggregate_id,
                originator_version=1,
                timestamp=at,
                originator_topic=get_topic(aggregate_cls),
                **fields,
            )
        )
        return decision

    def then(self, event: type[E], **fields: Any) -> Decision:
        self.append(
            event(
                originator_id=self.aggregate_id,
                originator_version=self.version + len(self) + 1,
                timestamp=self.at,
                **fields,
            )
        )
        return self
