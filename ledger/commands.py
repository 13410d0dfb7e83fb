"""Commands as pydantic models: one per writing CLI command and import line.

Field names are the CLI option names with underscores (the import format of cli.md),
so `ipledger listing open …` and an import line `{"command": "listing.open", "args":
{…}}` validate through the same model. Validators call the domain's parsers, which
raise `InvalidInput` naming the field and the rule.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Callable, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from ipledger.domain.errors import InvalidInput
from ipledger.domain.scopes import Scope, parse_scope
from ipledger.domain.values import (
    ConveyanceKind,
    ListingType,
    Mechanism,
    MemberKind,
    canonical_ref,
    check_text,
    parse_amount,
    parse_country,
    parse_currency,
    parse_date,
    parse_enum,
    parse_member_id,
    parse_owners,
    parse_time,
)

ID_TEXT_MAX = 64


def parse_id(value: Any, field: str) -> str:
    text = check_text(value, field, ID_TEXT_MAX)
    if len(text.split()) != 1:  # split() breaks at exactly the characters isspace() names
        raise InvalidInput(f"{field}: ids contain no spaces")
    return text


def _opt(value: Any) -> Any:
    return None if value in (None, "", (), []) else value


def _field(parse: Callable[[Any, str], Any], field: str, optional: bool = False) -> Any:
    """A pydantic validator calling a domain parser with the field's name."""

    def validate(value: Any) -> Any:
        if optional and _opt(value) is None:
            return None
        return parse(value, field)

    return BeforeValidator(validate)


def _many(parse: Callable[[Any, str], Any], field: str) -> Any:
    return BeforeValidator(lambda value: tuple(parse(v, field) for v in _as_list(value)))


def _text(limit: int) -> Callable[[Any, str], str]:
    return lambda value, field: check_text(value, field, limit)


def _enum(enum: type[Any]) -> Callable[[Any, str], Any]:
    return lambda value, field: parse_enum(enum, value, field)


def _choice(*allowed: str) -> Callable[[Any, str], str]:
    def parse(value: Any, field: str) -> str:
        if value not in allowed:
            raise InvalidInput(f"{field}: {value!r} is not one of {', '.join(allowed)}")
        return str(value)

    return parse


RATE_TEXT = re.compile(r"[0-9]{1,3}(\.[0-9]{1,4})?")


def parse_rate(value: Any, field: str) -> Decimal:
    """A percentage as plain decimal digits: `3.5`, never `1e2` (stored as `1E+2`) or a float."""
    if isinstance(value, (float, bool)):
        raise InvalidInput(f"{field}: a percentage is a decimal string, not a float ({value!r})")
    text = str(value).strip() if isinstance(value, (str, int, Decimal)) else ""
    if isinstance(value, Decimal):
        text = format(value, "f")
    if not RATE_TEXT.fullmatch(text) or not Decimal(0) <= Decimal(text) <= Decimal(100):
        raise InvalidInput(f"{field}: {value!r} must be a percentage from 0 to 100 in plain digits, at most 4 decimals")
    return Decimal(text)


Ref = Annotated[str, _field(canonical_ref, "ref")]
OptId = Annotated[str | None, _field(parse_id, "id", optional=True)]


def _strings(value: Any) -> tuple[str, ...]:
    items = _as_list(value)
    for item in items:
        if not isinstance(item, str):
            raise InvalidInput(f"value: {item!r} is not text; territories and fields of use are strings")
    return tuple(items)


Strs = Annotated[tuple[str, ...], BeforeValidator(_strings)]
Consents = Annotated[tuple[str, ...], _many(parse_id, "consent")]
OptTradeId = Annotated[str | None, _field(parse_id, "trade_id", optional=True)]
OptEffective = Annotated[date | None, _field(parse_date, "effective", optional=True)]


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: ClassVar[str]

    @classmethod
    def parse(cls, args: dict[str, Any]) -> Command:
        try:
            return cls.model_validate(args)
        except ValidationError as e:
            err = e.errors()[0]
            field = ".".join(str(p) for p in err["loc"]) or "args"
            if err["type"] == "extra_forbidden":
                raise InvalidInput(f"{field}: is not an option of {cls.name}") from None
            if err["type"] == "missing":
                raise InvalidInput(f"{field}: is required for {cls.name}") from None
            raise InvalidInput(f"{field}: {err['msg']}") from None


class AddMember(Command):
    name = "member.add"
    id: Annotated[str, _field(parse_member_id, "id")]
    title: Annotated[str, _field(_text(200), "name")] = Field(alias="name")
    kind: Annotated[MemberKind, _field(_enum(MemberKind), "kind")]
    country: Annotated[str, _field(parse_country, "country")]


class SuspendMember(Command):
    name = "member.suspend"
    id: Annotated[str, _field(parse_member_id, "id")]
    reason: Annotated[str, _field(_text(500), "reason", optional=True)] = ""


class ReinstateMember(Command):
    name = "member.reinstate"
    id: Annotated[str, _field(parse_member_id, "id")]


class RegisterAsset(Command):
    name = "asset.register"
    ref: Ref
    title: Annotated[str, _field(_text(500), "title")]
    owner: Annotated[dict[str, str], BeforeValidator(lambda v: parse_owners(_as_list(v), "owner"))]
    expires_on: Annotated[date | None, _field(parse_date, "expires_on", optional=True)] = None
    effective: OptEffective = None


def _conveyance(value: Any, field: str) -> ConveyanceKind:
    kind: ConveyanceKind = parse_enum(ConveyanceKind, value or "assignment", field)
    if kind in (ConveyanceKind.registration, ConveyanceKind.enforcement):
        raise InvalidInput(f"{field}: must be assignment, merger, name_change or correction")
    return kind


class AssignAsset(Command):
    name = "asset.assign"
    ref: Ref
    to: Annotated[dict[str, str], BeforeValidator(lambda v: parse_owners(_as_list(v), "to"))]
    effective: OptEffective = None
    conveyance: Annotated[ConveyanceKind, _field(_conveyance, "conveyance")] = ConveyanceKind.assignment
    consent: Consents = ()


class OpenListing(Command):
    name = "listing.open"
    ref: Ref
    type: Annotated[ListingType, _field(_enum(ListingType), "type")]
    mechanism: Annotated[Mechanism, _field(_enum(Mechanism), "mechanism")]
    currency: Annotated[str, _field(parse_currency, "currency")]
    closes: Annotated[datetime, _field(parse_time, "closes")]
    opens: Annotated[datetime | None, _field(parse_time, "opens", optional=True)] = None
    ask: Any = None
    reserve: Any = None
    increment: Any = None
    extend_minutes: int | None = None
    settlement_days: int = 7
    licence_type: str | None = None
    territory: Strs = ()
    field: Strs = ()
    term_start: Annotated[date | None, _field(parse_date, "term_start", optional=True)] = None
    term_end: Annotated[date | None, _field(parse_date, "term_end", optional=True)] = None
    sublicensable: bool = False
    consent: Consents = ()
    id: Annotated[str | None, _field(parse_id, "id", optional=True)] = None

    def money(self, field: str) -> Decimal | None:
        value = getattr(self, field)
        return None if _opt(value) is None else parse_amount(value, self.currency, field)

    def scope(self) -> Scope | None:
        given = [self.licence_type, self.territory, self.field, self.term_start, self.term_end]
        if not any(given) and not self.sublicensable:
            return None
        if self.term_start is None or self.term_end is None:
            raise InvalidInput("term_start: a licence listing's scope needs --term-start and --term-end")
        return parse_scope(
            type=self.licence_type or "",
            territories=self.territory,
            fields=self.field,
            start=self.term_start,
            end=self.term_end,
            sublicensable=self.sublicensable,
            field_prefix="licence_",
        )


class WithdrawListing(Command):
    name = "listing.withdraw"
    listing: Annotated[str, _field(parse_id, "listing")]


class CloseListing(WithdrawListing):
    name = "listing.close"
    trade_id: OptTradeId = None


class PlaceBid(CloseListing):
    name = "bid.place"
    bidder: Annotated[str, _field(parse_member_id, "bidder")]
    amount: Any
    id: Annotated[str | None, _field(parse_id, "id", optional=True)] = None


class WithdrawBid(Command):
    name = "bid.withdraw"
    bid: Annotated[str, _field(parse_id, "bid")]


class AcceptBid(WithdrawBid):
    name = "bid.accept"
    trade_id: OptTradeId = None


class SettleTrade(Command):
    name = "trade.settle"
    trade: Annotated[str, _field(parse_id, "trade")]
    payment_ref: Annotated[str, _field(_text(200), "payment_ref")]
    effective: OptEffective = None


class VoidTrade(Command):
    name = "trade.void"
    trade: Annotated[str, _field(parse_id, "trade")]
    reason: Annotated[str, _field(_text(500), "reason", optional=True)] = None  # type: ignore[assignment]


class ConsentAsCoOwner(Command):
    name = "asset.consent"
    ref: Ref
    member: Annotated[str, _field(parse_member_id, "member")]
    act: Annotated[str, _field(_choice("assignment", "listing", "exclusive_licence", "pledge"), "act")]
    id: OptId = None


class GrantLicence(Command):
    name = "licence.grant"
    ref: Ref
    licensee: Annotated[str, _field(parse_member_id, "licensee")]
    type: str
    territory: Strs = ()
    field: Strs = ()
    start: Annotated[date, _field(parse_date, "start")]
    end: Annotated[date, _field(parse_date, "end")]
    sublicensable: bool = False
    royalty_rate: Any = None
    lump_sum: Any = None
    currency: Annotated[str | None, _field(parse_currency, "currency", optional=True)] = None
    parent: Annotated[str | None, _field(parse_id, "parent", optional=True)] = None
    consent: Consents = ()
    id: OptId = None

    def scope(self) -> Scope:
        return parse_scope(
            type=self.type,
            territories=self.territory,
            fields=self.field,
            start=self.start,
            end=self.end,
            sublicensable=self.sublicensable,
        )

    def royalty(self) -> Decimal | None:
        if _opt(self.royalty_rate) is None:
            return None
        return parse_rate(self.royalty_rate, "royalty_rate")

    def lump(self) -> Decimal | None:
        if _opt(self.lump_sum) is None:
            return None
        if self.currency is None:
            raise InvalidInput("currency: a lump sum needs --currency")
        return parse_amount(self.lump_sum, self.currency, "lump_sum")


class TerminateLicence(Command):
    name = "licence.terminate"
    licence: Annotated[str, _field(parse_id, "licence")]
    reason: Annotated[str, _field(_text(500), "reason")]
    effective: OptEffective = None


class SurrenderLicence(Command):
    name = "licence.surrender"
    licence: Annotated[str, _field(parse_id, "licence")]
    effective: OptEffective = None


class RegisterPledge(Command):
    name = "pledge.register"
    ref: Ref
    pledgee: Annotated[str, _field(parse_member_id, "pledgee")]
    amount: Any = None
    currency: Annotated[str | None, _field(parse_currency, "currency", optional=True)] = None
    start: Annotated[date | None, _field(parse_date, "start", optional=True)] = None
    end: Annotated[date | None, _field(parse_date, "end", optional=True)] = None
    id: OptId = None

    def secured(self) -> Decimal | None:
        if _opt(self.amount) is None:
            return None
        if self.currency is None:
            raise InvalidInput("currency: a secured amount needs --currency")
        return parse_amount(self.amount, self.currency, "amount")


class ConsentAsPledgee(Command):
    name = "pledge.consent"
    pledge: Annotated[str, _field(parse_id, "pledge")]
    act: Annotated[str, _field(_choice("assignment", "licence", "listing"), "act")]
    id: OptId = None


class ReleasePledge(Command):
    name = "pledge.release"
    pledge: Annotated[str, _field(parse_id, "pledge")]
    effective: OptEffective = None


class EnforcePledge(ReleasePledge):
    name = "pledge.enforce"


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


COMMANDS: dict[str, type[Command]] = {
    cls.name: cls
    for cls in (
        AddMember,
        SuspendMember,
        ReinstateMember,
        RegisterAsset,
        AssignAsset,
        OpenListing,
        WithdrawListing,
        CloseListing,
        PlaceBid,
        WithdrawBid,
        AcceptBid,
        SettleTrade,
        VoidTrade,
        ConsentAsCoOwner,
        GrantLicence,
        TerminateLicence,
        SurrenderLicence,
        RegisterPledge,
        ConsentAsPledgee,
        ReleasePledge,
        EnforcePledge,
    )
}


def parse_command(name: str, args: dict[str, Any]) -> Command:
    try:
        cls = COMMANDS[name]
    except KeyError:
        raise InvalidInput(f"command: {name!r} is not a writing command ({', '.join(sorted(COMMANDS))})") from None
    if not isinstance(args, dict):
        raise InvalidInput("args: must be a JSON object of option names to values")
    return cls.parse(args)
