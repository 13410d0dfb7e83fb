"""The stored form of an event: topics, its JSON state, and the envelope inside it.

An event is stored as its pydantic payload in JSON (`PydanticMapper`), plus the
envelope `meta` that says who issued the command it belongs to (`Envelope`). This is
the one module that knows how that state is laid out: the application writes envelopes
through the mapper, and `audit verify` (ledger.chain), the projection runner and the
trail read them through `Envelope` and `payload_fields`. The layout is part of the
audit format (docs/audit.md): changing a byte here changes every hash after it.
"""

from __future__ import annotations

import importlib
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple
from uuid import UUID

import orjson
from eventsourcing.persistence import Mapper, StoredEvent, Transcoder
from eventsourcing.utils import get_topic, register_topic, resolve_topic
from pydantic import BaseModel

if TYPE_CHECKING:
    from eventsourcing.domain import DomainEventProtocol

#: The package is installed as `ipledger.*`, but a log names event classes as it always
#: has (`domain.assets:Asset.Registered`): a topic is part of the audit format, and moving
#: the code into a namespace must not change what an auditor reads or what hashes chain.
INSTALLED_PREFIX = "ipledger."
register_topic("domain", importlib.import_module("ipledger.domain"))

#: The envelope's key in an event's state, and what the codec adds beside the event's
#: own fields (a reader of the payload leaves them out, see `payload_fields`).
_META = "meta"
_BOOKKEEPING = ("originator_topic", "class_version")


def log_topic(cls: type[Any]) -> str:
    """The topic a log records for a class (see INSTALLED_PREFIX)."""
    return get_topic(cls).removeprefix(INSTALLED_PREFIX)


class CommandStamp(NamedTuple):
    """What a command's last event says of the command's record (which lives outside the
    hash chain): the name, the request digest and the outcome digest, so `audit verify`
    can prove the record was not edited. Absent from logs written before digests existed."""

    command: str | None
    digest: str | None
    outcome: str | None


class Envelope(NamedTuple):
    """Who issued the command an event belongs to: the `meta` of its stored state.

    Both are named tuples, not frozen dataclasses, which build themselves one field at a
    time through `object.__setattr__`: a restore and a verify read one envelope per event.

    Readers get None for a key the stored event lacks (as a hand-made or very old log
    may): the envelope reports what is stored and invents nothing."""

    actor: str | None
    command_id: str | None
    stamp: CommandStamp | None = None

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> tuple[Envelope, dict[str, Any]]:
        """Take the envelope out of a stored event's decoded state (in place): the rest
        is the event's payload."""
        meta = state.pop(_META, None) or {}
        stamp = None
        if "digest" in meta:
            stamp = CommandStamp(meta.get("command"), meta.get("digest"), meta.get("outcome"))
        return cls(meta.get("actor"), meta.get("command_id"), stamp), state

    def to_meta(self) -> dict[str, str | None]:
        """The envelope as stored; the key order is part of the hashed bytes."""
        meta = {"actor": self.actor, "command_id": self.command_id}
        if self.stamp is not None:
            meta["command"] = self.stamp.command
            meta["digest"] = self.stamp.digest
            meta["outcome"] = self.stamp.outcome
        return meta


def payload_fields(payload: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """A payload as a reader is shown it (in place): its recorded time, and the event's
    own fields without the codec's bookkeeping."""
    recorded = payload.pop("timestamp", None)
    for key in _BOOKKEEPING:
        payload.pop(key, None)
    return recorded, payload


class OrjsonTranscoder(Transcoder):
    """The fastest correct JSON codec for event payloads (issue 5 measured decode)."""

    def encode(self, obj: Any) -> bytes:
        return orjson.dumps(obj)

    def decode(self, data: bytes) -> Any:
        return orjson.loads(data)


def _json_default(value: Any) -> Any:
    """What orjson does not write itself, written as pydantic's JSON mode writes it."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, BaseModel):  # a value object in an event (a licence's Scope)
        return value.model_dump(mode="json")
    raise TypeError(f"{type(value).__name__} is not a type an event stores")


class _ClassInfo(NamedTuple):
    """What the codec needs of an event class, looked up once: the class's own attribute
    lookups go through pydantic's metaclass, whose miss (no `class_version`) raises and
    costs more than encoding the event."""

    cls: type[Any]
    topic: str
    class_version: int
    validate: Any  # the class's pydantic validator's validate_python (decoding)

    @classmethod
    def of(cls, event_class: type[Any], topic: str) -> _ClassInfo:
        version = getattr(event_class, "class_version", 1)
        return cls(event_class, topic, version, event_class.__pydantic_validator__.validate_python)


_BY_CLASS: dict[type[Any], _ClassInfo] = {}
_BY_TOPIC: dict[str, _ClassInfo] = {}


def _class_info(cls: type[Any]) -> _ClassInfo:
    info = _BY_CLASS.get(cls)
    if info is None:
        info = _BY_CLASS[cls] = _ClassInfo.of(cls, log_topic(cls))
    return info


def _topic_info(topic: str) -> _ClassInfo:
    info = _BY_TOPIC.get(topic)
    if info is None:
        info = _BY_TOPIC[topic] = _ClassInfo.of(resolve_topic(topic), topic)
    return info


def encode_state(domain_event: Any, envelope: Envelope | None = None) -> bytes:
    """An event's stored state: its fields in declared order (as pydantic's JSON mode
    writes them; tests/test_codec.py holds the bytes equal on the bench workload), its
    class version after them when above 1, then the envelope. Written straight from the
    instance's fields by orjson: the hash chain covers these bytes, so nothing may differ."""
    state = dict(domain_event.__dict__)
    del state["originator_id"], state["originator_version"]
    class_version = _class_info(type(domain_event)).class_version
    if class_version > 1:
        state["class_version"] = class_version
    if envelope is not None:
        state[_META] = envelope.to_meta()
    originator_topic = state.get("originator_topic")
    if originator_topic is not None:
        state["originator_topic"] = originator_topic.removeprefix(INSTALLED_PREFIX)
    return orjson.dumps(state, default=_json_default, option=orjson.OPT_UTC_Z)


def recorded_time(state: bytes | None) -> datetime | None:
    """When a stored event was recorded (its `timestamp`), or None for no state."""
    from ipledger.domain.values import parse_time

    return None if state is None else parse_time(orjson.loads(state)["timestamp"], "timestamp")


class PydanticMapper(Mapper[UUID]):
    """Maps pydantic domain events to stored events and back (with upcasting)."""

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID], envelope: Envelope | None = None) -> StoredEvent:
        """The stored event, with the envelope of the command that decided it."""
        return StoredEvent(
            originator_id=domain_event.originator_id,
            originator_version=domain_event.originator_version,
            topic=_class_info(type(domain_event)).topic,
            state=encode_state(domain_event, envelope),
        )

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        state: dict[str, Any] = self.transcoder.decode(stored_event.state)
        return decode_event(stored_event.topic, state, stored_event.originator_id, stored_event.originator_version)


def decode_event(topic: str, state: dict[str, Any], originator_id: Any, version: int) -> Any:
    """The domain event of a stored state (its envelope dropped), upcast to the class's
    current version (`class_version`, `upcast_vN_vN+1`, as the library does)."""
    info = _topic_info(topic)
    state.pop(_META, None)
    from_version = state.pop("class_version", 1)
    while from_version < info.class_version:
        getattr(info.cls, f"upcast_v{from_version}_v{from_version + 1}")(state)
        from_version += 1
    state["originator_id"] = originator_id
    state["originator_version"] = version
    return info.validate(state)  # cls.model_validate, without its wrapper (a fold decodes every event)
