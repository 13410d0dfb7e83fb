"""Events in words, for the plain-text `trail` (its JSON is the contract and stays raw).

Pure: the caller passes what the trail's events name but do not say (an aggregate's id,
a listing's currency, the command a consent was used for), read from the read models by
`Ledger.trail_names`, so "Pledge.Ended {how: released}" reads "pledge P-7 released by
icbc-sh".
"""

from __future__ import annotations

import re
from typing import Any, Callable

from ipledger.domain.values import with_article
from ipledger.domain.visibility import HIDDEN

Event = dict[str, Any]
Names = dict[str, Any]

_FRACTION = re.compile(r"\.\d+(?=Z$|[+-]\d\d:\d\d$)")


def recorded_time(text: str | None) -> str:
    """A recorded time to the second, always the same width (the log keeps microseconds
    when the clock had them, so raw times drift by seven characters)."""
    return _FRACTION.sub("", text or "")


def _parties(owners: dict[str, str] | list[str] | None) -> str:
    """`a` / `a, b`, with shares when they are not all whole (`a 1/2, b 1/2`)."""
    if not owners:
        return "nobody"
    if isinstance(owners, dict):
        if len(owners) == 1:
            return next(iter(owners))
        return ", ".join(f"{m} {s}" for m, s in sorted(owners.items()))
    return ", ".join(sorted(owners))


class Describer:
    """Describes each event of one trail; `names` maps aggregate ids to what they are
    ({"kind", "id", ...}) and command ids to their command and the trail's events."""

    def __init__(self, events: list[Event], names: Names) -> None:
        self.aggregates: dict[str, dict[str, Any]] = names.get("aggregates", {})
        self.commands: dict[str, dict[str, Any]] = names.get("commands", {})
        self.by_command: dict[str, list[Event]] = {}
        for e in events:
            self.by_command.setdefault(e.get("command_id") or "", []).append(e)

    def __call__(self, e: Event) -> str:
        handler = _HANDLERS.get(e["type"])
        if handler is None:
            return f"{e['type']} {_compact(e['data'])}"
        return handler(self, e, e["data"])

    def id_of(self, e: Event, fallback: str = "?") -> str:
        known = self.aggregates.get(e["aggregate"])
        return str(known["id"]) if known else fallback

    def fact(self, e: Event, key: str) -> Any:
        known = self.aggregates.get(e["aggregate"]) or {}
        return known.get(key)

    def used_for(self, command_id: str) -> str:
        """What a consent was used for: the act recorded by that command in this trail,
        else the command's name and where it was recorded; never a bare command id."""
        for e in self.by_command.get(command_id, []):
            act = _ACTS.get(e["type"])
            if act is not None:
                return act(self, e, e["data"])
        command = self.commands.get(command_id)
        if command is not None:
            return f"a {command['command']} command (recorded at #{command['position']})"
        return "a command not in this store's record"


def _compact(data: dict[str, Any]) -> str:
    import json

    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _unsold_reason(x: dict[str, Any]) -> str:
    """Why an auction ended unsold, when its event says (a log written before does not)."""
    reason = x.get("reason")
    return f" ({reason})" if isinstance(reason, str) and reason else ""


def _money(amount: Any, currency: Any) -> str:
    return f"{amount} {currency}" if currency else str(amount)


def _member_admitted(d: Describer, e: Event, x: dict[str, Any]) -> str:
    kind = str(x["kind"]).replace("_", " ")
    return f"{x['member_id']} admitted: {x['name']}, {with_article(kind)} in {x['country']}"


def _member_suspended(d: Describer, e: Event, x: dict[str, Any]) -> str:
    reason = x.get("reason")
    return f"{d.id_of(e)} suspended" + (f": {reason}" if reason else "")


def _asset_registered(d: Describer, e: Event, x: dict[str, Any]) -> str:
    expires = f", expires {x['expires_on']}" if x.get("expires_on") else ""
    return f"{x['ref']} registered to {_parties(x['owners'])}, effective {x['effective']}{expires}: {x['title']}"


def _conveyed(d: Describer, e: Event, x: dict[str, Any]) -> str:
    trade = f" (trade {x['trade']})" if x.get("trade") else ""
    kind = str(x["kind"]).replace("_", " ")
    return (
        f"{d.id_of(e)}: {kind} from {_parties(x['from_owners'])} to {_parties(x['to_owners'])}, "
        f"effective {x['effective']}{trade}"
    )


def _listing_opened(d: Describer, e: Event, x: dict[str, Any]) -> str:
    price = ""
    if x.get("ask"):
        price += f", ask {_money(x['ask'], x['currency'])}"
    if x.get("reserve") == HIDDEN:  # as EventPrivacy shows it to whom may not see the amount
        price += ", with a reserve (amount hidden)"
    elif x.get("reserve"):
        price += f", reserve {_money(x['reserve'], x['currency'])}"
    return (
        f"listing {x['listing_id']} opened by {_parties(x['sellers'])}: {x['mechanism']} {x['type']} of {x['ref']} "
        f"in {x['currency']}, closes {recorded_time(x['closes_at'])}{price}"
    )


def _bid_placed(d: Describer, e: Event, x: dict[str, Any]) -> str:
    return f"bid {x['bid_id']} placed on {d.id_of(e)} by {x['bidder']}: {_money(x['amount'], d.fact(e, 'currency'))}"


def _sold(d: Describer, e: Event, x: dict[str, Any]) -> str:
    return (
        f"listing {d.id_of(e)} sold to {x['buyer']} at {_money(x['price'], d.fact(e, 'currency'))} "
        f"(bid {x['bid_id']}, trade {x['trade_id']})"
    )


def _struck(d: Describer, e: Event, x: dict[str, Any]) -> str:
    return (
        f"trade {x['trade_id']} struck on listing {x['listing_id']}: {x['buyer']} buys the {x['type']} of {x['ref']} "
        f"from {_parties(x['sellers'])} at {_money(x['price'], x['currency'])}, "
        f"to settle by {recorded_time(x['deadline'])}"
    )


def _licence_granted(d: Describer, e: Event, x: dict[str, Any]) -> str:
    s = x["scope"]
    parent = f" under licence {x['parent']}" if x.get("parent") else ""
    return (
        f"licence {x['licence_id']} granted to {x['licensee']} by {_parties(x['licensors'])}{parent}: "
        f"{str(s['type']).replace('_', '-')} on {x['ref']}, {';'.join(s['territories'])} x {';'.join(s['fields'])}, "
        f"{s['start']} to {s['end']}"
    )


def _ended(kind: str) -> Callable[[Describer, Event, dict[str, Any]], str]:
    def describe(d: Describer, e: Event, x: dict[str, Any]) -> str:
        reason = f": {x['reason']}" if x.get("reason") else ""
        return f"{kind} {d.id_of(e)} {x['how']} by {e['actor']}, effective {x['effective']}{reason}"

    return describe


def _pledge_registered(d: Describer, e: Event, x: dict[str, Any]) -> str:
    amount = f", securing {_money(x['amount'], x['currency'])}" if x.get("amount") else ""
    return (
        f"pledge {x['pledge_id']} registered: {x['ref']} pledged by {_parties(x['pledgors'])} to {x['pledgee']} "
        f"from {x['start']}{amount}"
    )


_HANDLERS: dict[str, Callable[[Describer, Event, dict[str, Any]], str]] = {
    "Member.Admitted": _member_admitted,
    "Member.Suspended": _member_suspended,
    "Member.Reinstated": lambda d, e, x: f"{d.id_of(e)} reinstated",
    "Asset.Registered": _asset_registered,
    "Asset.CoOwnerConsented": lambda d, e, x: (
        f"{x['member']} consents as co-owner to one {x['act']} of {d.id_of(e)} (consent {x['consent_id']})"
    ),
    "Asset.CoOwnerConsentsUsed": lambda d, e, x: (
        f"co-owner consents {', '.join(x['consent_ids'])} used for the {x['act']} of {d.id_of(e)}"
    ),
    "Asset.Conveyed": _conveyed,
    "Asset.OfferedForAssignment": lambda d, e, x: f"{d.id_of(e)} offered for assignment in listing {x['listing_id']}",
    "Asset.LicenceAttached": lambda d, e, x: f"{d.id_of(e)} licensed under licence {x['licence_id']}",
    "Asset.PledgeAttached": lambda d, e, x: f"{d.id_of(e)} encumbered by pledge {x['pledge_id']}",
    "Asset.PledgeDetached": lambda d, e, x: f"{d.id_of(e)} freed of pledge {x['pledge_id']}",
    "Asset.Reserved": lambda d, e, x: (
        f"{d.id_of(e)} reserved for trade {x['trade_id']} (listing {x['listing_id']}) "
        f"until {recorded_time(x['deadline'])}"
    ),
    "Asset.HoldReleased": lambda d, e, x: f"{d.id_of(e)} hold of {x['holder']} released: {x['reason']}",
    "Listing.Opened": _listing_opened,
    "Listing.BidPlaced": _bid_placed,
    "Listing.CloseExtended": lambda d, e, x: f"listing {d.id_of(e)} close extended to {recorded_time(x['closes_at'])}",
    "Listing.BidWithdrawn": lambda d, e, x: f"bid {x['bid_id']} withdrawn from listing {d.id_of(e)}",
    "Listing.Sold": _sold,
    "Listing.EndedUnsold": lambda d, e, x: f"listing {d.id_of(e)} ended unsold" + _unsold_reason(x),
    "Listing.Withdrawn": lambda d, e, x: f"listing {d.id_of(e)} withdrawn",
    "Listing.SaleFellThrough": lambda d, e, x: f"listing {d.id_of(e)}: trade {x['trade_id']} fell through",
    "BidIndex.Indexed": lambda d, e, x: f"bid {x['bid_id']} filed under listing {x['listing_id']}",
    "Trade.Struck": _struck,
    "Trade.Settled": lambda d, e, x: (
        f"trade {d.id_of(e)} settled (payment {x['payment_ref']}), effective {x['effective']}"
    ),
    "Trade.Voided": lambda d, e, x: f"trade {d.id_of(e)} voided" + (f": {x['reason']}" if x.get("reason") else ""),
    "Licence.Granted": _licence_granted,
    "Licence.Ended": _ended("licence"),
    "Pledge.Registered": _pledge_registered,
    "Pledge.ConsentGiven": lambda d, e, x: (
        f"consent {x['consent_id']} given under pledge {d.id_of(e)} for one {x['act']}"
    ),
    "Pledge.ConsentUsed": lambda d, e, x: (
        f"consent {x['consent_id']} under pledge {d.id_of(e)} used for {d.used_for(x['used_for'])}"
    ),
    "Pledge.Ended": _ended("pledge"),
}

#: The acts a pledgee's consent is used for, as `used_for` names them.
_ACTS: dict[str, Callable[[Describer, Event, dict[str, Any]], str]] = {
    "Licence.Granted": lambda d, e, x: f"licence {x['licence_id']} to {x['licensee']}",
    "Listing.Opened": lambda d, e, x: f"listing {x['listing_id']}",
    "Asset.Conveyed": lambda d, e, x: f"the {x['kind'].replace('_', ' ')} to {_parties(x['to_owners'])}",
}


def trail_rows(doc: dict[str, Any], names: Names) -> list[dict[str, str]]:
    """The trail as rows of words: position, recorded time, actor, what happened."""
    describe = Describer(doc["events"], names)
    return [
        {
            "position": f"#{e['position']}",
            "recorded": recorded_time(e["recorded"]),
            "actor": str(e["actor"] or ""),
            "what": describe(e),
        }
        for e in doc["events"]
    ]
