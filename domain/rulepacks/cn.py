"""China: CNIPA patent pledges.

Sources: CNIPA 专利权质押登记办法 (Patent Pledge Registration Measures, 2021), art. 12
(grounds for refusing a pledge registration); Civil Code arts. 299 and 444; Patent Law
art. 14. The Measures cover patent rights, which in China are invention patents,
utility models and designs; trademarks and copyrights keep the common rules.
"""

from __future__ import annotations

import re

from ipledger.domain.errors import AssetPledged, InvalidInput, NotPledgeable, PledgeBeyondExpiry
from ipledger.domain.rulepacks import PledgeFacts, Rule, RulePack, as_typed

MEASURES = "CNIPA Patent Pledge Registration Measures (2021), art. 12"

#: Rights the Measures govern once granted; a patent application is not yet one.
GRANTED = frozenset({"patent", "utility_model", "design"})
NUMBERED = GRANTED | {"patent_application"}

#: ZL + 8 (before 2003) or 12 digits, '.', check character; `ZL`, the dot, spaces and case optional on input.
NUMBER = re.compile(r"(?:ZL)?([0-9]{8}|[0-9]{12})\.?([0-9X])")


def number(kind: str, typed: str, field: str) -> str:
    """`ZL201810012345.6` however it was typed; the check character is kept, not validated."""
    if kind not in NUMBERED:
        return as_typed(kind, typed, field)
    m = NUMBER.fullmatch("".join(typed.split()).upper())
    if m is None:
        raise InvalidInput(
            f"{field}: {typed!r} is not a CN patent number: ZL + 8 or 12 digits + '.' + check character "
            "(e.g. ZL201810012345.6)"
        )
    return f"ZL{m.group(1)}.{m.group(2)}"


def granted_only(facts: PledgeFacts) -> None:
    if facts.kind == "patent_application":
        raise NotPledgeable(
            f"ref: {facts.ref} is a patent application; in CN only a granted patent can be pledged ({MEASURES})"
        )


def one_pledge_at_a_time(facts: PledgeFacts) -> None:
    """In force now, or (for a pledge backdated by its start) in force on a day the new
    pledge would cover: either way two pledges at once."""
    if facts.kind not in GRANTED:
        return
    if facts.pledges_in_force:
        raise AssetPledged(
            f"ref: {facts.ref} is already pledged (pledge {facts.pledges_in_force[0]}, in force); in CN a patent "
            f"carries one pledge at a time: release it first ({MEASURES})"
        )
    if facts.last_ended is not None and facts.start < facts.last_ended[1]:
        pledge_id, ended = facts.last_ended
        raise AssetPledged(
            f"start: {facts.start} is before pledge {pledge_id} on {facts.ref} ended ({ended}); in CN a patent "
            f"carries one pledge at a time: start on or after {ended} ({MEASURES})"
        )


def term_within_expiry(facts: PledgeFacts) -> None:
    if facts.kind not in GRANTED:
        return
    if facts.end is None:
        raise InvalidInput(f"end: a pledge of a CN patent states its term's end (the secured debt's term) ({MEASURES})")
    if facts.expires_on is not None and facts.end > facts.expires_on:
        raise PledgeBeyondExpiry(
            f"end: {facts.end} is after {facts.ref} expires ({facts.expires_on}); in CN a pledge's term may not "
            f"run past the patent's ({MEASURES})"
        )


PACK = RulePack(
    jurisdiction="CN",
    name="China (CNIPA)",
    sources=(
        "CNIPA 专利权质押登记办法 (Patent Pledge Registration Measures, 2021), art. 12",
        "Civil Code of the PRC, arts. 299, 444",
        "Patent Law of the PRC, art. 14",
    ),
    rules=(
        Rule(
            "CN.pledge.granted-only",
            "A patent application cannot be pledged: only granted rights.",
            MEASURES,
            "NotPledgeable",
            granted_only,
        ),
        Rule(
            "CN.pledge.one-at-a-time",
            "A patent, utility model or design already pledged, with the pledge in force, cannot be pledged again.",
            MEASURES,
            "AssetPledged",
            one_pledge_at_a_time,
        ),
        Rule(
            "CN.pledge.term",
            "A patent pledge states its term's end, and that end may not run past the patent's expiry.",
            f"{MEASURES}; Civil Code art. 444",
            "PledgeBeyondExpiry",
            term_within_expiry,
        ),
        Rule(
            "CN.pledge.co-owners",
            "The pledgor is every registered owner: a co-owned patent is pledged only with every co-owner's "
            "consent (the common rule).",
            "Patent Law art. 14; Civil Code art. 299",
            "ConsentMissing",
        ),
        Rule(
            "CN.pledge.in-force",
            "An expired or invalidated patent cannot be pledged (the common rule).",
            MEASURES,
            "AssetExpired",
        ),
    ),
    number=number,
    numbers=(
        "patents, utility models, designs and applications: ZL + 8 or 12 digits + '.' + check character "
        "(ZL201810012345.6); typed without ZL, with spaces or in lower case, it is the same number; the check "
        "character is kept as given, not validated",
        "other kinds: as the office wrote it, upper case",
    ),
)
