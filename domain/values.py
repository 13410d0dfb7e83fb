"""Value objects of the IP market: refs, money, shares, parties, scopes.

Each parser raises `InvalidInput` naming the field and the rule, so the same
message reaches a CLI user, an import file's author and a test.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum, StrEnum
from fractions import Fraction
from functools import lru_cache
from typing import Any

from ipledger.domain.errors import InvalidInput
from ipledger.domain.isocodes import COUNTRIES, CURRENCIES, REGIONAL_OFFICES, minor_units

# --------------------------------------------------------------------------- enums


class MemberKind(StrEnum):
    university = "university"
    research_institute = "research_institute"
    enterprise = "enterprise"
    tech_transfer = "tech_transfer"
    financial_institution = "financial_institution"
    individual = "individual"


class AssetKind(StrEnum):
    patent = "patent"
    patent_application = "patent_application"
    utility_model = "utility_model"
    design = "design"
    trademark = "trademark"
    copyright = "copyright"
    software_copyright = "software_copyright"
    know_how = "know_how"


class ListingType(StrEnum):
    assignment = "assignment"
    licence = "licence"


class Mechanism(StrEnum):
    fixed = "fixed"
    english = "english"
    sealed = "sealed"
    negotiated = "negotiated"


class ConveyanceKind(StrEnum):
    """USPTO-style conveyance types; `registration` opens the chain of title."""

    registration = "registration"
    assignment = "assignment"
    merger = "merger"
    name_change = "name_change"
    correction = "correction"
    enforcement = "enforcement"


class LicenceType(StrEnum):
    exclusive = "exclusive"
    sole = "sole"
    non_exclusive = "non_exclusive"


def parse_enum(enum: type[Enum], value: str, field: str) -> Any:
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(m.value for m in enum)
        raise InvalidInput(f"{field}: {value!r} is not one of {allowed}") from None


def parse_choice(value: str | None, allowed: tuple[str, ...], field: str) -> str | None:
    """An optional filter value that must be one of `allowed` (None: no filter)."""
    if value is not None and value not in allowed:
        raise InvalidInput(f"{field}: {value!r} is not one of {', '.join(allowed)}")
    return value


# --------------------------------------------------------------------------- parties

MEMBER_ID = re.compile(r"[a-z0-9][a-z0-9-]{1,31}")
ROLES = frozenset({"operator", "auditor"})


def parse_member_id(value: str, field: str = "member") -> str:
    if not isinstance(value, str) or not MEMBER_ID.fullmatch(value):
        raise InvalidInput(
            f"{field}: {value!r} is not a member id (2-32 characters a-z, 0-9, '-', starting with a letter or digit)"
        )
    if value in ROLES:
        raise InvalidInput(f"{field}: {value!r} is a role name and cannot be a member id")
    return value


def parse_country(value: str, field: str = "country") -> str:
    if not isinstance(value, str) or value not in COUNTRIES:
        raise InvalidInput(f"{field}: {value!r} is not an ISO 3166-1 alpha-2 country code")
    return value


@dataclass(frozen=True)
class Actor:
    """Who issues a command: the exchange operator, an auditor, or a member for itself."""

    role: str  # "operator" | "auditor" | "member"
    member_id: str | None = None

    @classmethod
    def parse(cls, value: str) -> Actor:
        if value in ROLES:
            return cls(role=value)
        return cls(role="member", member_id=parse_member_id(value, "actor"))

    @property
    def id(self) -> str:
        return self.member_id or self.role

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"

    def acts_for(self, member_id: str) -> bool:
        """The operator may act for anyone; a member only for itself."""
        return self.is_operator or self.member_id == member_id

    def sees_everything(self) -> bool:
        return self.role in ROLES


# --------------------------------------------------------------------------- assets

#: Any case on the way in; one canonical spelling out (cli.md). The number's segments are
#: letters and digits joined by single `.`, `-` or `/`: no empty segment, nothing trailing.
ASSET_REF = re.compile(r"([A-Za-z]{2})/([A-Za-z_]+)/([A-Za-z0-9]+(?:[./-][A-Za-z0-9]+)*)")


@dataclass(frozen=True)
class AssetRef:
    jurisdiction: str
    kind: AssetKind
    number: str

    @classmethod
    def parse(cls, value: str, field: str = "ref") -> AssetRef:
        """The canonical ref: jurisdiction upper case, kind lower case, number upper case.

        Spellings that differ only in case or surrounding space are one right; anything
        else that is not canonical (`A1.`, `A1/`, `A1//2`, `CN//patent/…`) is refused, so
        one right never becomes two assets because of how it was typed."""
        text = value.strip() if isinstance(value, str) else ""
        parts = text.split("/", 2)
        if len(parts) == 3:
            text = f"{parts[0]}/{parts[1]}/{_pack_number(parts[0], parts[1], parts[2].strip(), field)}"
        m = ASSET_REF.fullmatch(text) if len(text) <= 100 else None
        if not m or len(m.group(3)) > 64:
            raise InvalidInput(
                f"{field}: {value!r} is not an asset ref JURISDICTION/KIND/NUMBER "
                "(e.g. CN/patent/ZL201810012345.6; NUMBER is letters and digits joined by single '.', '-' or '/', "
                "with nothing trailing)"
            )
        jurisdiction, kind, number = m.group(1).upper(), m.group(2).lower(), m.group(3).upper()
        if jurisdiction not in COUNTRIES and jurisdiction not in REGIONAL_OFFICES:
            raise InvalidInput(
                f"{field}: jurisdiction {jurisdiction!r} is not an ISO 3166-1 alpha-2 code "
                "or a regional office (EP, EM, WO)"
            )
        return cls(jurisdiction, parse_enum(AssetKind, kind, f"{field} kind"), number)

    def __str__(self) -> str:
        return f"{self.jurisdiction}/{self.kind.value}/{self.number}"


def _pack_number(jurisdiction: str, kind: str, number: str, field: str) -> str:
    """The number as the jurisdiction's rule pack spells it (`7,545,760` → `7545760`), when
    the jurisdiction and kind are well formed; anything else is left for the checks after."""
    jurisdiction, kind = jurisdiction.upper(), kind.lower()
    known = jurisdiction in COUNTRIES or jurisdiction in REGIONAL_OFFICES
    if len(number) > 100 or kind not in ASSET_KINDS or not known or not number.isascii():
        return number  # not ASCII: left for the syntax check to refuse (ß would upper-case to SS)
    from ipledger.domain.rulepacks import canonical_number  # the packs use these values

    return canonical_number(jurisdiction, kind, number, field)


ASSET_KINDS = frozenset(k.value for k in AssetKind)


def parse_jurisdiction(value: str, field: str = "jurisdiction") -> str:
    """A ref's first segment, in any case: an ISO 3166-1 alpha-2 code or a regional office."""
    code = value.strip().upper() if isinstance(value, str) else ""
    if code not in COUNTRIES and code not in REGIONAL_OFFICES:
        raise InvalidInput(f"{field}: {value!r} is not an ISO 3166-1 alpha-2 code or a regional office (EP, EM, WO)")
    return code


def canonical_ref(value: str, field: str = "ref") -> str:
    if isinstance(value, str):
        return _canonical_ref(value, field)
    return str(AssetRef.parse(value, field))  # not text: refused, with the field's name


@lru_cache(maxsize=65536)
def _canonical_ref(value: str, field: str) -> str:
    """Pure and asked for on every command that names an asset: recent answers are kept."""
    return str(AssetRef.parse(value, field))


# --------------------------------------------------------------------------- money

MAX_AMOUNT = Decimal("1e14")
AMOUNT_TEXT = re.compile(r"[0-9]{1,16}(\.[0-9]{1,8})?")


def parse_currency(value: str, field: str = "currency") -> str:
    if not isinstance(value, str) or value not in CURRENCIES:
        raise InvalidInput(f"{field}: {value!r} is not an ISO 4217 currency code")
    return value


def parse_amount(value: Any, currency: str | None, field: str = "amount") -> Decimal:
    """A positive decimal with at most the currency's minor units; never a float.

    Without a currency (a bid's is its listing's; a secured amount may lack one) the
    amount is checked as a decimal only, and the currency's places wait for the rule
    that knows it."""
    if isinstance(value, (float, bool)):
        raise InvalidInput(f"{field}: amounts are decimal strings, not floats ({value!r})")
    if isinstance(value, Decimal):
        text = format(value, "f")
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise InvalidInput(f"{field}: {value!r} is not a decimal amount")
    if not AMOUNT_TEXT.fullmatch(text):
        raise InvalidInput(f"{field}: {value!r} is not a positive decimal amount like 1250000.00")
    try:
        amount = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the regex already guards
        raise InvalidInput(f"{field}: {value!r} is not a decimal amount") from None
    places = minor_units(currency) if currency is not None else 8
    exponent = amount.as_tuple().exponent
    assert isinstance(exponent, int)
    if currency is not None and -exponent > places:
        raise InvalidInput(f"{field}: {text} has more than {places} decimal places, the minor units of {currency}")
    if amount <= 0:
        raise InvalidInput(f"{field}: must be greater than zero")
    if amount >= MAX_AMOUNT:
        raise InvalidInput(f"{field}: {text} exceeds the largest amount the ledger records (1e14)")
    return amount.quantize(Decimal(1).scaleb(-places)) if currency is not None else amount


def minor(amount: Decimal, currency: str) -> int:
    """The amount in minor units: an exact integer key for price ordering in SQL."""
    return int(amount.scaleb(minor_units(currency)))


# --------------------------------------------------------------------------- shares

SHARE_TEXT = re.compile(r"([0-9]{1,9})(/([0-9]{1,9})|\.[0-9]{1,9})?")


def parse_share(value: str, field: str = "share") -> Fraction:
    """`1/3` or `0.25` or `1`: an exact fraction in (0, 1]."""
    text = value.strip() if isinstance(value, str) else ""
    if not SHARE_TEXT.fullmatch(text):
        raise InvalidInput(f"{field}: {value!r} is not a share like 1/3 or 0.25")
    try:
        share = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise InvalidInput(f"{field}: {value!r} is not a share like 1/3 or 0.25") from None
    if not 0 < share <= 1:
        raise InvalidInput(f"{field}: {value!r} must be more than 0 and at most 1")
    return share


def format_share(share: Fraction) -> str:
    return str(share)  # Fraction is always in lowest terms: "1", "1/2", "1/3"


def parse_owners(specs: list[str] | tuple[str, ...], field: str = "owner") -> dict[str, str]:
    """`MEMBER[=SHARE]...` → {member: "1/3"}; shares must sum exactly to 1."""
    if not specs:
        raise InvalidInput(f"{field}: at least one owner is required")
    if len(specs) == 1 and "=" not in str(specs[0]):  # the usual case: one owner of the whole
        return {parse_member_id(str(specs[0]).strip(), field): "1"}
    owners: dict[str, Fraction] = {}
    for spec in specs:
        member, sep, share_text = str(spec).partition("=")
        member = parse_member_id(member.strip(), field)
        if member in owners:
            raise InvalidInput(f"{field}: {member} is named twice")
        if sep:
            owners[member] = parse_share(share_text, f"{field} {member} share")
        elif len(specs) == 1:
            owners[member] = Fraction(1)
        else:
            raise InvalidInput(f"{field}: {member} needs a share (MEMBER=SHARE) when there are co-owners")
    total = sum(owners.values(), Fraction(0))
    if total != 1:
        raise InvalidInput(f"{field}: shares must sum exactly to 1, they sum to {total}")
    return {m: format_share(s) for m, s in owners.items()}


# --------------------------------------------------------------------------- time


DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
TIME_TEXT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?)?(Z|[+-][0-9]{2}:?[0-9]{2})?"
)


def parse_date(value: Any, field: str) -> date:
    """`YYYY-MM-DD` exactly (no ISO week or ordinal dates, ASCII digits only)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    text = str(value)
    if not DATE_TEXT.fullmatch(text):
        raise InvalidInput(f"{field}: {value!r} is not a date YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{field}: {value!r} is not a date YYYY-MM-DD") from None


def parse_time(value: Any, field: str) -> datetime:
    """ISO 8601 (`2026-03-02T09:00:00Z`); a time without an offset is taken as UTC."""
    if isinstance(value, datetime):
        parsed = value
    else:
        text = str(value).strip()
        if not TIME_TEXT.fullmatch(text):
            raise InvalidInput(f"{field}: {value!r} is not an ISO 8601 time like 2026-03-02T09:00:00Z")
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
        except ValueError:
            raise InvalidInput(f"{field}: {value!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        parsed = parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        raise InvalidInput(f"{field}: {value!r} is outside the times the ledger records") from None
    return parsed


def owner_list(owners: dict[str, str]) -> list[dict[str, str]]:
    """Owners as people read them, in one order everywhere: [{member, share}] by member."""
    return [{"member": m, "share": s} for m, s in sorted(owners.items())]


def with_article(noun: str) -> str:
    """`a university`, `an enterprise`, `an english`: the article as the noun sounds
    (the few vowels said as consonants, `uni…`, `eu…`, `one…`, `use…`, take `a`)."""
    low = noun.lower()
    vowel = low[:1] in ("a", "e", "i", "o", "u") and not low.startswith(("uni", "use", "eu", "one"))
    return f"{'an' if vowel else 'a'} {noun}"


def format_time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


#: Embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069): "Trojan Source" controls
#: that reorder how a line prints without changing what is stored.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def check_text(value: Any, field: str, max_len: int = 500) -> str:
    """Printable text: no control characters (C0, DEL, C1), line breaks or unpaired
    surrogates (bytes that were not UTF-8), so it stores, exports and prints as one line."""
    if not isinstance(value, str):
        raise InvalidInput(f"{field}: text is required")
    text = value.strip()
    if not text:
        raise InvalidInput(f"{field}: must not be empty")
    if len(text) > max_len:
        raise InvalidInput(f"{field}: at most {max_len} characters")
    if text.isascii() and text.isprintable():
        return text  # in ASCII, "printable" excludes exactly the control characters (Cc)
    visible = False
    for ch in text:
        category = unicodedata.category(ch)
        if category in ("Cc", "Cs", "Zl", "Zp"):
            raise InvalidInput(f"{field}: control characters, line breaks and non-UTF-8 bytes are not allowed")
        if ch in BIDI_CONTROLS:
            raise InvalidInput(
                f"{field}: bidirectional controls (U+{ord(ch):04X}) are not allowed; they make printed text "
                "read differently from what is stored"
            )
        if category not in ("Cf", "Zs", "Mn", "Me"):
            visible = True
    if not visible:
        raise InvalidInput(f"{field}: must contain a visible character (not only spaces or zero-width characters)")
    return text
