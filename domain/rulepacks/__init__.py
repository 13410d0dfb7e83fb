"""Jurisdiction rule packs: the law of an asset's jurisdiction, on top of the common rules.

An asset's ref begins with its jurisdiction (`CN/…`, `US/…`); that jurisdiction's pack
adds the rules its law has and the common rules (domain.md) lack, and spells its
registry numbers one way. A pack is data (its rules, each citing its source) plus small
pure functions. Every module in this package that defines `PACK` is a pack: adding a
jurisdiction is adding one module, with no change anywhere else. Unknown jurisdictions
get the common rules only.

Rules judge new commands, never the past: they run in the decide functions, which a
replay does not call, so a pledge recorded before a rule existed stays valid history
(`review_pledges` lists what today's packs would have refused, for an operator to look at).

Light on purpose (no pydantic, no eventsourcing): refs are canonicalised on every path,
queries included.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from functools import cache

from ipledger.domain.errors import LedgerError


@dataclass(frozen=True)
class PledgeFacts:
    """What a pledge rule may look at: the asset, the pledges in force on it (oldest
    first), and the new pledge's term."""

    ref: str
    expires_on: date | None
    pledges_in_force: tuple[str, ...]
    start: date
    end: date | None
    last_ended: tuple[str, date] | None = None  # the pledge that stopped being in force last, and when

    @property
    def jurisdiction(self) -> str:
        return self.ref.split("/", 1)[0]

    @property
    def kind(self) -> str:
        return self.ref.split("/", 2)[1]


def later_end(last: tuple[str, date] | None, pledge_id: str, ended: date) -> tuple[str, date]:
    """The pledge that stopped being in force last, after `pledge_id` ended on `ended`
    (on a tie, the later recorded): kept by the asset, and by the review of the past."""
    return (pledge_id, ended) if last is None or ended >= last[1] else last


#: A pledge rule: raises a named error for a pledge its law refuses, else returns None.
PledgeCheck = Callable[[PledgeFacts], None]

#: A registry number's canonical spelling for an asset kind: (kind, number as typed, field) -> number.
NumberRule = Callable[[str, str, str], str]


@dataclass(frozen=True)
class Rule:
    """One rule in words, where it comes from, and the check that enforces it here.

    `check` is None for a rule the pack states but the common rules already enforce
    (or that permits rather than forbids): printed by `ipledger rules`, checked elsewhere."""

    id: str
    says: str
    source: str
    error: str | None = None
    check: PledgeCheck | None = None


def as_typed(kind: str, number: str, field: str) -> str:
    """The common spelling: the number upper case, as the office wrote it."""
    return number.upper()


@dataclass(frozen=True)
class RulePack:
    jurisdiction: str  # "CN", or "*" for the common rules
    name: str
    sources: tuple[str, ...]
    rules: tuple[Rule, ...] = ()
    number: NumberRule = as_typed
    numbers: tuple[str, ...] = field(default=())  # the canonical forms, in words

    def check_pledge(self, facts: PledgeFacts) -> None:
        for rule in self.rules:
            if rule.check is not None:
                rule.check(facts)

    def as_json(self) -> dict[str, object]:
        return {
            "jurisdiction": self.jurisdiction,
            "name": self.name,
            "sources": list(self.sources),
            "numbers": list(self.numbers),
            "rules": [
                {"id": r.id, "says": r.says, "source": r.source, "error": r.error, "checked": r.check is not None}
                for r in self.rules
            ],
        }


COMMON = RulePack(
    jurisdiction="*",
    name="Common rules (every jurisdiction)",
    sources=("ipledger domain contract (domain.md)", "China Civil Code art. 444"),
    rules=(
        Rule(
            "common.pledgee",
            "The pledgee is an active financial-institution member, and not an owner of the asset.",
            "domain.md, Pledges",
            "NotEligible",
        ),
        Rule(
            "common.owners",
            "Every registered owner is a pledgor: a co-owned asset is pledged by all, or by one with every "
            "co-owner's recorded consent.",
            "domain.md, Assets (co-ownership)",
            "ConsentMissing",
        ),
        Rule(
            "common.in-force",
            "An expired or invalidated asset cannot be pledged, nor one a pending trade holds.",
            "domain.md, Assets",
            "AssetExpired",
        ),
        Rule(
            "common.consent",
            "While a pledge is registered the asset is not assigned, listed for assignment or licensed without "
            "the pledgee's consent to that act.",
            "China Civil Code art. 444; domain.md, Pledges",
            "AssetPledged",
        ),
        Rule(
            "common.rank",
            "Several pledges on one asset rank by registration order.",
            "domain.md, Pledges",
        ),
    ),
    numbers=("NUMBER as the office wrote it, upper case (letters, digits, '.', '-', '/')",),
)


@cache
def packs() -> dict[str, RulePack]:
    """Every pack in this package, by jurisdiction: each module with a `PACK`."""
    found: dict[str, RulePack] = {}
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        pack = getattr(importlib.import_module(f"{__name__}.{module.name}"), "PACK", None)
        if isinstance(pack, RulePack):
            if pack.jurisdiction in found:
                raise RuntimeError(
                    f"two rule packs for {pack.jurisdiction}: {found[pack.jurisdiction].name}, {pack.name}"
                )
            found[pack.jurisdiction] = pack
    return found


def pack_for(jurisdiction: str) -> RulePack:
    """The jurisdiction's pack, or the common rules only."""
    return packs().get(jurisdiction, COMMON)


def canonical_number(jurisdiction: str, kind: str, number: str, field: str = "ref") -> str:
    return pack_for(jurisdiction).number(kind, number, field)


def check_pledge(facts: PledgeFacts) -> None:
    """The asset's jurisdiction's pledge rules (the common ones are the aggregates' own)."""
    pack_for(facts.jurisdiction).check_pledge(facts)


# --------------------------------------------------------------------------- review of the past


@dataclass(frozen=True)
class PastPledge:
    """A pledge as recorded: the log positions of its registration and of its end."""

    pledge_id: str
    ref: str
    expires_on: date | None
    start: date
    end: date | None
    position: int
    ended_position: int | None
    ended_on: date | None = None


@dataclass(frozen=True)
class Finding:
    subject: str  # "pledge P-7" or "asset CN/patent/…"
    ref: str
    error: str
    message: str

    def as_json(self) -> dict[str, str]:
        return {"subject": self.subject, "ref": self.ref, "error": self.error, "message": self.message}


def review_pledges(pledges: Iterable[PastPledge]) -> list[Finding]:
    """What today's packs would have refused among recorded pledges, each judged as of
    its own recording (the pledges then in force on its asset)."""
    findings: list[Finding] = []
    earlier: dict[str, list[PastPledge]] = {}
    for p in sorted(pledges, key=lambda p: p.position):
        before = earlier.setdefault(p.ref, [])
        in_force = tuple(q.pledge_id for q in before if q.ended_position is None or q.ended_position > p.position)
        last_ended: tuple[str, date] | None = None
        for q in sorted(before, key=lambda q: q.ended_position or 0):
            if q.ended_position is not None and q.ended_position < p.position and q.ended_on is not None:
                last_ended = later_end(last_ended, q.pledge_id, q.ended_on)
        try:
            check_pledge(PledgeFacts(p.ref, p.expires_on, in_force, p.start, p.end, last_ended))
        except LedgerError as refused:
            findings.append(Finding(f"pledge {p.pledge_id}", p.ref, refused.name, refused.message))
        before.append(p)
    return findings


def review_refs(refs: Iterable[str]) -> list[Finding]:
    """Recorded refs that today's packs spell otherwise, or refuse: a command naming such
    an asset by any spelling reaches the canonical ref, not the asset recorded."""
    from ipledger.domain.values import canonical_ref  # values asks the packs for numbers

    findings = []
    for ref in refs:
        try:
            canonical = canonical_ref(ref)
        except LedgerError as refused:
            findings.append(Finding(f"asset {ref}", ref, refused.name, refused.message))
            continue
        if canonical != ref:
            findings.append(
                Finding(
                    f"asset {ref}",
                    ref,
                    "NonCanonicalRef",
                    f"ref: recorded as {ref}; today's rule pack spells it {canonical}, and commands naming it "
                    "reach that spelling",
                )
            )
    return findings
