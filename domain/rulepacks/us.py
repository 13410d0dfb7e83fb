"""United States: security interests in patents and applications.

Sources: 35 U.S.C. 261 (assignments, and recording them with the USPTO); USPTO
assignment recordation (security agreements and their releases). US law adds no
refusal to the common rules: it permits what CN forbids (applications, several
interests at once, no stated amount or term), so this pack's rules state, not check.
"""

from __future__ import annotations

import re

from ipledger.domain.errors import InvalidInput
from ipledger.domain.rulepacks import Rule, RulePack, as_typed

RECORDATION = "35 U.S.C. 261; USPTO assignment recordation"

PATENT = re.compile(r"(RE|PP)?0*([1-9][0-9]{0,8})")  # a design patent's D number is kind `design`
DESIGN = re.compile(r"D?0*([1-9][0-9]{0,8})")
APPLICATION = re.compile(r"[0-9]{8}")


def number(kind: str, typed: str, field: str) -> str:
    """Patents without commas or leading zeros (`7,545,760` is `7545760`), reissues `RE…`,
    plants `PP…`; designs are kind `design`, `D…`; applications are 8 digits (`15/334,090`
    is `15334090`)."""
    spaced = "".join(typed.split()).upper()
    if spaced.startswith(",") or spaced.endswith(",") or ",," in spaced:
        raise InvalidInput(f"{field}: {typed!r} has a stray comma; commas only group digits (7,545,760)")
    text = spaced.replace(",", "")
    if kind == "patent":
        m = PATENT.fullmatch(text)
        if m is None:
            raise InvalidInput(
                f"{field}: {typed!r} is not a US patent number: digits (7545760; commas and leading zeros are "
                "dropped), or RE or PP and digits (a design patent is US/design/D…)"
            )
        return f"{m.group(1) or ''}{m.group(2)}"
    if kind == "design":
        m = DESIGN.fullmatch(text)
        if m is None:
            raise InvalidInput(f"{field}: {typed!r} is not a US design patent number: D and digits (D512345)")
        return f"D{m.group(1)}"
    if kind == "patent_application":
        digits = text.replace("/", "").replace("-", "")
        if not APPLICATION.fullmatch(digits):
            raise InvalidInput(
                f"{field}: {typed!r} is not a US application number: 8 digits (15334090; 15/334,090 is the same)"
            )
        return digits
    return as_typed(kind, typed, field)


PACK = RulePack(
    jurisdiction="US",
    name="United States (USPTO)",
    sources=("35 U.S.C. 261", "USPTO assignment recordation (security agreements, releases)"),
    rules=(
        Rule(
            "US.pledge.applications",
            "Security interests may be taken in applications and patents alike.",
            RECORDATION,
        ),
        Rule(
            "US.pledge.several",
            "Several security interests may attach at once; they rank by recording order.",
            RECORDATION,
        ),
        Rule(
            "US.pledge.terms-optional",
            "A security interest's amount and term are optional (recorded documents rarely state them).",
            "USPTO assignment recordation",
        ),
    ),
    number=number,
    numbers=(
        "patents: digits without commas or leading zeros (7545760; 7,545,760 and 07545760 are the same); "
        "reissues RE…, plants PP…; design patents are kind design",
        "design patents (kind design): D + digits",
        "applications: 8 digits (15334090; 15334,090 and 15/334,090 are the same)",
        "other kinds: as the office wrote it, upper case",
    ),
)
