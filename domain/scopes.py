"""Licence scopes: territory × field of use × term, and the conflict rule of domain.md."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict

from ipledger.domain.errors import InvalidInput
from ipledger.domain.values import LicenceType, check_text, parse_country, parse_date, parse_enum

WORLD = "WORLD"
ALL_FIELDS = "ALL"


class Scope(BaseModel):
    """What a licence covers: territory × field of use × term [start, end)."""

    model_config = ConfigDict(frozen=True)

    type: LicenceType
    territories: tuple[str, ...]
    fields: tuple[str, ...]
    start: date
    end: date
    sublicensable: bool = False

    def overlaps(self, other: Scope) -> bool:
        return (
            _sets_overlap(self.territories, other.territories, WORLD)
            and _sets_overlap(self.fields, other.fields, ALL_FIELDS)
            and self.start < other.end
            and other.start < self.end
        )

    def contains(self, other: Scope) -> bool:
        """`other` lies within this scope (territory, field and term)."""
        return (
            _covers(self.territories, other.territories, WORLD)
            and _covers(self.fields, other.fields, ALL_FIELDS)
            and self.start <= other.start
            and other.end <= self.end
        )

    def in_force_on(self, day: date) -> bool:
        return self.start <= day < self.end


def _sets_overlap(a: tuple[str, ...], b: tuple[str, ...], everything: str) -> bool:
    return everything in a or everything in b or bool(set(a) & set(b))


def _covers(outer: tuple[str, ...], inner: tuple[str, ...], everything: str) -> bool:
    return everything in outer or (everything not in inner and set(inner) <= set(outer))


def conflicts(a: Scope, b: Scope) -> bool:
    """domain.md: overlap in territory, field and term, and one exclusive, or any sole."""
    if not a.overlaps(b):
        return False
    types = {a.type, b.type}
    return LicenceType.exclusive in types or LicenceType.sole in types


def parse_scope(
    *,
    type: str,
    territories: list[str] | tuple[str, ...],
    fields: list[str] | tuple[str, ...],
    start: Any,
    end: Any,
    sublicensable: bool = False,
    field_prefix: str = "",
) -> Scope:
    kind = parse_enum(LicenceType, type, f"{field_prefix}type")
    if not territories:
        raise InvalidInput(f"{field_prefix}territory: at least one territory (ISO code or WORLD) is required")
    terr = []
    for t in territories:
        if not isinstance(t, str):
            raise InvalidInput(f"{field_prefix}territory: {t!r} is not a country code (text)")
        t = t.strip().upper()
        if t != WORLD:
            parse_country(t, f"{field_prefix}territory")
        terr.append(t)
    if not fields:
        raise InvalidInput(f"{field_prefix}field: at least one field of use (or ALL) is required")
    flds = []
    for f in fields:
        if not isinstance(f, str):
            raise InvalidInput(f"{field_prefix}field: {f!r} is not a field of use (text)")
        f = check_text(f, f"{field_prefix}field", 100)
        flds.append(ALL_FIELDS if f.upper() == ALL_FIELDS else f)
    s = parse_date(start, f"{field_prefix}start")
    e = parse_date(end, f"{field_prefix}end")
    if not s < e:
        raise InvalidInput(f"{field_prefix}end: the term [start, end) must end after it starts")
    return Scope(
        type=kind,
        territories=tuple(sorted(set(terr))),
        fields=tuple(sorted(set(flds))),
        start=s,
        end=e,
        sublicensable=bool(sublicensable),
    )
