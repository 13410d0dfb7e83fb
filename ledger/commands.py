"""Commands as pydantic models: one per writing CLI command and import line.

Field names are the CLI option names with underscores (the import format of cli.md),
so `ipledger listing open …` and an import line `{"command": "listing.open", "args":
{…}}` validate through the same class. A command is fully parsed when it validates:
money is a Decimal in its currency's minor units, a licence scope is a `Scope` value.
Validators call the domain's parsers, which raise `InvalidInput` naming the field and
the rule; the rules themselves (which acts need consent, what a royalty may be) are
the domain's, checked once, there.

Each class names itself (`name`, the import format's command name); `Command.named`
is the one registry, so the CLI, the importer and the application's handlers all key
on the class.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Callable, ClassVar, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

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


RATE_TEXT = re.compile(r"[0-9]{1,3}(\.[0-9]{1,4})?")


def parse_rate(value: Any, field: str) -> Decimal:
    """A percentage as plain decimal digits: `3.5`, never `1e2` (stored as `1E+2`) or a float.
    Whether a royalty of that rate may be granted is the licence's rule."""
    if isinstance(value, (float, bool)):
        raise InvalidInput(f"{field}: a percentage is a decimal string, not a float ({value!r})")
    text = str(value).strip() if isinstance(value, (str, int, Decimal)) else ""
    if isinstance(value, Decimal):
        text = format(value, "f")
    if not RATE_TEXT.fullmatch(text):
        raise InvalidInput(f"{field}: {value!r} must be a percentage from 0 to 100 in plain digits, at most 4 decimals")
    return Decimal(text)


def _money(field: str, optional: bool = True) -> Any:
    """An amount in the currency named by the command's `currency` (validated first, as
    it is declared first); without one, a decimal whose places the domain checks."""

    def validate(value: Any, info: ValidationInfo) -> Decimal | None:
        if optional and _opt(value) is None:
            return None
        return parse_amount(value, info.data.get("currency"), field)

    return field_validator(field, mode="before")(validate)


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
Money = Decimal | None
OptEffective = Annotated[date | None, _field(parse_date, "effective", optional=True)]


class Command(BaseModel):
    # defer_build: a command class's validator is built when it first validates (a CLI
    # command runs one of them; building all of them was a tenth of its cold start).
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    name: ClassVar[str]
    _named: ClassVar[dict[str, type[Command]]] = {}
    #: Fields parsed into values here that were kept as typed before they were (money and
    #: rates): the request digest keeps them as typed, so a command id recorded before
    #: still names the same request (see `digest_args`).
    AS_TYPED: ClassVar[tuple[str, ...]] = ()

    def digest_args(self, args: dict[str, Any]) -> dict[str, Any]:
        """The arguments a request digest is taken over: parsed and canonical, but money
        and rates as the issuer typed them in `args` (how every recorded digest took them).
        Taken from the issuer's args here rather than kept on the command at validation:
        a wrap validator and a private attribute cost more than the rest of validating."""
        parsed = self.model_dump(mode="json")
        for field in self.AS_TYPED:
            if field in args:
                parsed[field] = args[field]
        return parsed

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Command._named[cls.name] = cls

    @staticmethod
    def named(name: str) -> type[Command]:
        """The command class an import line or a request names."""
        try:
            return Command._named[name]
        except (KeyError, TypeError):
            raise InvalidInput(
                f"command: {name!r} is not a writing command ({', '.join(sorted(Command._named))})"
            ) from None

    @staticmethod
    def names() -> list[str]:
        return sorted(Command._named)

    @classmethod
    def parse(cls, args: dict[str, Any]) -> Self:
        if not isinstance(args, dict):
            raise InvalidInput("args: must be a JSON object of option names to values")
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


class AssignAsset(Command):
    name = "asset.assign"
    ref: Ref
    to: Annotated[dict[str, str], BeforeValidator(lambda v: parse_owners(_as_list(v), "to"))]
    effective: OptEffective = None
    conveyance: Annotated[ConveyanceKind, _field(_enum(ConveyanceKind), "conveyance")] = ConveyanceKind.assignment
    consent: Consents = ()


class _Scoped(BaseModel):
    """The licence scope options, parsed into one `Scope` value when a command validates."""

    _scope: Scope | None = PrivateAttr(default=None)

    @property
    def scope(self) -> Scope | None:
        return self._scope


class OpenListing(Command, _Scoped):
    name = "listing.open"
    AS_TYPED = ("ask", "reserve", "increment")
    ref: Ref
    type: Annotated[ListingType, _field(_enum(ListingType), "type")]
    mechanism: Annotated[Mechanism, _field(_enum(Mechanism), "mechanism")]
    currency: Annotated[str, _field(parse_currency, "currency")]
    closes: Annotated[datetime, _field(parse_time, "closes")]
    opens: Annotated[datetime | None, _field(parse_time, "opens", optional=True)] = None
    ask: Money = None
    reserve: Money = None
    increment: Money = None
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

    _ask = _money("ask")
    _reserve = _money("reserve")
    _increment = _money("increment")

    @model_validator(mode="after")
    def _parse_scope(self) -> Self:
        given = [self.licence_type, self.territory, self.field, self.term_start, self.term_end]
        if not any(given) and not self.sublicensable:
            return self
        if self.term_start is None or self.term_end is None:
            raise InvalidInput("term_start: a licence listing's scope needs term_start and term_end")
        self._scope = parse_scope(
            type=self.licence_type or "",
            territories=self.territory,
            fields=self.field,
            start=self.term_start,
            end=self.term_end,
            sublicensable=self.sublicensable,
            field_prefix="licence_",
        )
        return self


class WithdrawListing(Command):
    name = "listing.withdraw"
    listing: Annotated[str, _field(parse_id, "listing")]


class CloseListing(Command):
    name = "listing.close"
    listing: Annotated[str, _field(parse_id, "listing")]
    trade_id: OptTradeId = None


class PlaceBid(Command):
    name = "bid.place"
    AS_TYPED = ("amount",)
    listing: Annotated[str, _field(parse_id, "listing")]
    trade_id: OptTradeId = None
    bidder: Annotated[str, _field(parse_member_id, "bidder")]
    amount: Decimal  # a decimal here; its places are checked in the listing's currency
    id: Annotated[str | None, _field(parse_id, "id", optional=True)] = None

    _amount = _money("amount", optional=False)


class WithdrawBid(Command):
    name = "bid.withdraw"
    bid: Annotated[str, _field(parse_id, "bid")]


class AcceptBid(Command):
    name = "bid.accept"
    bid: Annotated[str, _field(parse_id, "bid")]
    trade_id: OptTradeId = None


class SettleTrade(Command):
    name = "trade.settle"
    trade: Annotated[str, _field(parse_id, "trade")]
    payment_ref: Annotated[str, _field(_text(200), "payment_ref")]
    effective: OptEffective = None


class VoidTrade(Command):
    name = "trade.void"
    trade: Annotated[str, _field(parse_id, "trade")]
    reason: Annotated[str | None, _field(_text(500), "reason", optional=True)] = None


class ConsentAsCoOwner(Command):
    name = "asset.consent"
    ref: Ref
    member: Annotated[str, _field(parse_member_id, "member")]
    act: Annotated[str, _field(_text(40), "act")]  # which acts need consent is the asset's rule
    id: OptId = None


class GrantLicence(Command, _Scoped):
    name = "licence.grant"
    AS_TYPED = ("royalty_rate", "lump_sum")
    ref: Ref
    licensee: Annotated[str, _field(parse_member_id, "licensee")]
    type: str
    territory: Strs = ()
    field: Strs = ()
    start: Annotated[date, _field(parse_date, "start")]
    end: Annotated[date, _field(parse_date, "end")]
    sublicensable: bool = False
    royalty_rate: Annotated[Decimal | None, _field(parse_rate, "royalty_rate", optional=True)] = None
    currency: Annotated[str | None, _field(parse_currency, "currency", optional=True)] = None
    lump_sum: Money = None
    parent: Annotated[str | None, _field(parse_id, "parent", optional=True)] = None
    consent: Consents = ()
    id: OptId = None

    _lump_sum = _money("lump_sum")

    @model_validator(mode="after")
    def _parse_scope(self) -> Self:
        self._scope = parse_scope(
            type=self.type,
            territories=self.territory,
            fields=self.field,
            start=self.start,
            end=self.end,
            sublicensable=self.sublicensable,
        )
        return self


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
    AS_TYPED = ("amount",)
    ref: Ref
    pledgee: Annotated[str, _field(parse_member_id, "pledgee")]
    currency: Annotated[str | None, _field(parse_currency, "currency", optional=True)] = None
    amount: Money = None
    start: Annotated[date | None, _field(parse_date, "start", optional=True)] = None
    end: Annotated[date | None, _field(parse_date, "end", optional=True)] = None
    id: OptId = None

    _amount = _money("amount")


class ConsentAsPledgee(Command):
    name = "pledge.consent"
    pledge: Annotated[str, _field(parse_id, "pledge")]
    act: Annotated[str, _field(_text(40), "act")]  # which acts a pledgee consents to is the pledge's rule
    id: OptId = None


class ReleasePledge(Command):
    name = "pledge.release"
    pledge: Annotated[str, _field(parse_id, "pledge")]
    effective: OptEffective = None


class EnforcePledge(Command):
    name = "pledge.enforce"
    pledge: Annotated[str, _field(parse_id, "pledge")]
    effective: OptEffective = None


SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def parse_sha256(value: Any, field: str) -> str:
    if not isinstance(value, str) or not SHA256_HEX.fullmatch(value):
        raise InvalidInput(f"{field}: must be 64 lower-case hex digits (a SHA-256), never the secret itself")
    return value


def parse_token_id(value: Any, field: str) -> str:
    """An id without `_`: a token's secret reads `ipl_<id>_<random>`."""
    text = parse_id(value, field)
    if "_" in text:
        raise InvalidInput(f"{field}: a token id has no '_' (it separates the id from the secret)")
    return text


def parse_actor(value: Any, field: str) -> str:
    """A member id, `operator` or `auditor`."""
    if value in ("operator", "auditor"):
        return str(value)
    return parse_member_id(value, field)


class IssueToken(Command):
    """`ipledger token issue ACTOR`: the CLI makes the secret and passes only its hash and id."""

    name = "token.issue"
    actor: Annotated[str, _field(parse_actor, "actor")]
    id: Annotated[str, _field(parse_token_id, "id")]
    secret_sha256: Annotated[str, _field(parse_sha256, "secret_sha256")]
    title: Annotated[str, _field(_text(200), "name", optional=True)] = Field(default="", alias="name")
    expires: Annotated[date | None, _field(parse_date, "expires", optional=True)] = None


class RevokeToken(Command):
    name = "token.revoke"
    token: Annotated[str, _field(parse_id, "token")]


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]
