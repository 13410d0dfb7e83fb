"""Charts for the web view as inline SVG, drawn here in Python: nothing is fetched from
another host and nothing runs in the browser, so a page shows its charts without
JavaScript and a test reads them as text.

Pure: each function takes the service's JSON documents (as the API answers them) and
returns SVG markup. Every text it writes is escaped; every mark has a `<title>` (a
tooltip, and what a screen reader says) and the page shows the same facts in a table.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html import escape
from typing import Any

#: Bidders' colours (distinct in print and for the common colour blindnesses).
PALETTE = ("#1f77b4", "#d95f02", "#1b9e77", "#7570b3", "#e7298a", "#66a61e", "#a6761d", "#666666")
INK, MUTED, GRID, PAPER = "#1a1a1a", "#555555", "#d8d8d8", "#ffffff"
FONT = 'font-family="system-ui, sans-serif" font-size="12"'
HOUR = timedelta(hours=1)


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def moment(value: str | date | datetime) -> datetime:
    """A date (midnight UTC) or an ISO time as a naive UTC datetime, for one shared axis."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    text = value.replace("Z", "+00:00")
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


@dataclass(frozen=True)
class Axis:
    """A linear map from a closed range of moments to pixels."""

    start: datetime
    end: datetime
    left: float
    right: float

    @classmethod
    def over(
        cls, moments: Iterable[datetime], left: float, right: float, pad: float = 0.06, least: timedelta = HOUR
    ) -> Axis:
        """An axis over `moments`, padded, and never shorter than `least` (one bid still
        gets a readable scale around it)."""
        points = sorted(moments)
        start, end = points[0], points[-1]
        if end - start < least:
            middle = start + (end - start) / 2
            start, end = middle - least / 2, middle + least / 2
        span = end - start
        return cls(start - span * pad, end + span * pad, left, right)

    def x(self, when: datetime) -> float:
        total = (self.end - self.start).total_seconds() or 1.0
        return self.left + (self.right - self.left) * (when - self.start).total_seconds() / total

    def ticks(self, n: int = 4) -> list[datetime]:
        step = (self.end - self.start) / n
        return [self.start + step * (i + 0.5) for i in range(n)]

    def label(self, when: datetime) -> str:
        """Dates over spans of days; hours and minutes when the span is shorter."""
        if self.end - self.start > timedelta(days=4):
            return when.strftime("%Y-%m-%d")
        if self.start.date() == self.end.date():
            return when.strftime("%H:%M")
        return when.strftime("%m-%d %H:%M")


def _svg(width: int, height: int, title: str, desc: str, body: Sequence[str], ident: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'role="img" aria-labelledby="{ident}-t {ident}-d" class="chart" {FONT}>'
        f'<title id="{ident}-t">{_e(title)}</title><desc id="{ident}-d">{_e(desc)}</desc>'
        f'<rect width="{width}" height="{height}" fill="{PAPER}"/>' + "".join(body) + "</svg>"
    )


def _text(x: float, y: float, text: object, *, anchor: str = "start", fill: str = INK, extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{fill}"{extra}>{_e(text)}</text>'


def _time_grid(axis: Axis, top: float, bottom: float, label_y: float) -> list[str]:
    out = []
    for tick in axis.ticks():
        x = axis.x(tick)
        out.append(f'<line x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{bottom:.1f}" stroke="{GRID}"/>')
        out.append(_text(x, label_y, axis.label(tick), anchor="middle", fill=MUTED))
    return out


def _marker(axis: Axis, when: datetime, top: float, bottom: float, label: str, label_y: float) -> list[str]:
    """A dashed red line at `when` (the picked as-of or known-at point), labelled at `label_y`."""
    x = axis.x(when)
    anchor = "end" if x > (axis.left + axis.right) / 2 else "start"
    return [
        f'<line x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{bottom:.1f}" stroke="#b00020" stroke-dasharray="4 3"/>',
        _text(x + (-4 if anchor == "end" else 4), label_y, label, anchor=anchor, fill="#b00020"),
    ]


def nice_levels(low: Decimal, high: Decimal, count: int = 5) -> list[Decimal]:
    """Round gridline values (1, 2 or 5 times a power of ten) covering `low` to `high`."""
    raw = (high - low) / (count - 1) or abs(high) / 10 or Decimal(1)
    power = Decimal(10) ** raw.adjusted()
    step = next(power * m for m in (1, 2, 5, 10) if power * m >= raw)
    first = (low / step).to_integral_value(rounding="ROUND_FLOOR") * step
    levels = [first]
    while levels[-1] < high:
        levels.append(levels[-1] + step)
    return levels


# --------------------------------------------------------------------------- bids over time


def bids_chart(bids: Sequence[dict[str, object]], *, currency: str, opens: str, ask: str | None) -> str:
    """Each bid a dot at (time placed, amount), coloured by bidder, hollow once superseded
    or withdrawn; a step line for the highest bid so far; the ask as a dashed line."""
    width, height, left, right, top, bottom = 680, 310, 86, 660, 30, 250
    if not bids:
        return _svg(width, 60, "Bids over time", "No bids to show.",
                    [_text(width / 2, 34, "No bids to show.", anchor="middle", fill=MUTED)], "bids")  # fmt: skip
    placed = [moment(str(b["placed"])) for b in bids]
    amounts = [Decimal(str(b["amount"])) for b in bids]
    axis = Axis.over([moment(opens), *placed], left, right)
    shown = amounts + ([Decimal(ask)] if ask else [])
    margin = (max(shown) - min(shown)) * Decimal("0.1") or max(shown) * Decimal("0.05") or Decimal(1)
    levels = nice_levels(max(min(shown) - margin, Decimal(0)), max(shown) + margin)
    low, high = levels[0], levels[-1]

    def y(amount: Decimal) -> float:
        return bottom - float((amount - low) / (high - low)) * (bottom - top)

    body = _time_grid(axis, top, bottom, bottom + 16)
    for level in levels:
        body.append(f'<line x1="{left}" y1="{y(level):.1f}" x2="{right}" y2="{y(level):.1f}" stroke="{GRID}"/>')
        body.append(_text(left - 6, y(level) + 4, f"{level.normalize():,f}", anchor="end", fill=MUTED))
    body.append(_text(left - 6, top - 14, currency, anchor="end", fill=MUTED))
    if ask:
        body.append(
            f'<line x1="{left}" y1="{y(Decimal(ask)):.1f}" x2="{right}" y2="{y(Decimal(ask)):.1f}" '
            f'stroke="{MUTED}" stroke-dasharray="6 4"><title>ask {_e(ask)} {_e(currency)}</title></line>'
        )
        body.append(_text(right - 2, y(Decimal(ask)) - 4, f"ask {ask}", anchor="end", fill=MUTED))
    best, steps = Decimal(-1), list[str]()
    for when, amount in sorted(zip(placed, amounts, strict=True)):
        if amount > best:
            if steps:
                steps.append(f"{axis.x(when):.1f},{y(best):.1f}")
            best = amount
            steps.append(f"{axis.x(when):.1f},{y(best):.1f}")
    steps.append(f"{right:.1f},{y(best):.1f}")
    body.append(f'<polyline points="{" ".join(steps)}" fill="none" stroke="{INK}" stroke-width="1.5"'
                f' stroke-opacity="0.5"><title>highest bid so far</title></polyline>')  # fmt: skip
    colours = _colours(str(b["bidder"]) for b in bids)
    for b, when, amount in zip(bids, placed, amounts, strict=True):
        colour = colours[str(b["bidder"])]
        standing = b["state"] not in ("superseded", "withdrawn")
        fill = colour if standing else PAPER
        body.append(
            f'<circle cx="{axis.x(when):.1f}" cy="{y(amount):.1f}" r="6" fill="{fill}" stroke="{colour}" '
            f'stroke-width="2"><title>{_e(b["id"])}: {_e(b["bidder"])} {_e(b["amount"])} {_e(currency)}, '
            f"{_e(b['placed'])} ({_e(b['state'])})</title></circle>"
        )
    body += _legend(colours, left, height - 22, "hollow: superseded or withdrawn")
    who = ", ".join(f"{b['bidder']} {b['amount']}" for b in bids)
    return _svg(width, height, "Bids over time", f"{len(bids)} bids in {currency}: {who}.", body, "bids")


def _colours(names: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in names:
        out.setdefault(name, PALETTE[len(out) % len(PALETTE)])
    return out


def _legend(colours: dict[str, str], left: float, y: float, note: str) -> list[str]:
    out, x = [], left
    for name, colour in colours.items():
        out.append(f'<circle cx="{x + 5:.1f}" cy="{y - 4:.1f}" r="5" fill="{colour}"/>')
        out.append(_text(x + 14, y, name))
        x += 24 + 7.5 * len(name)
    out.append(_text(x + 8, y, note, fill=MUTED))
    return out


# --------------------------------------------------------------------------- chain of title


def title_chart(
    conveyances: Sequence[dict[str, Any]], *, as_of: date | None = None, known_at: datetime | None = None
) -> str:
    """Two time axes on one scale: when each conveyance took effect (top) and when it was
    recorded (bottom). A vertical link is a fact recorded as it happened; a slanted one
    was recorded later (or earlier) than its effect, which is what an as-of question
    and a known-at question tell apart."""
    width, left, right = 680, 86, 656
    eff_y, rec_y = 78.0, 178.0
    height = 230
    if not conveyances:
        return _svg(width, 60, "Chain of title", "No conveyances.", [_text(20, 34, "No conveyances.")], "title")
    effective = [moment(str(c["effective"])) for c in conveyances]
    # An effective date is a day: a fact recorded on that day is drawn straight down,
    # whatever its hour (the tooltip and the table keep the recorded second).
    recorded = [moment(moment(str(c["recorded"])).date()) for c in conveyances]
    extra = [moment(as_of)] if as_of else []
    extra += [moment(known_at)] if known_at else []
    axis = Axis.over([*effective, *recorded, *extra], left, right, least=timedelta(days=14))
    body = _time_grid(axis, eff_y, rec_y, height - 8)
    for y_, name in ((eff_y, "effective"), (rec_y, "recorded")):
        body.append(f'<line x1="{left}" y1="{y_}" x2="{right}" y2="{y_}" stroke="{INK}"/>')
        body.append(_text(left - 8, y_ + 4, name, anchor="end", fill=MUTED))
    if as_of:
        body += _marker(axis, moment(as_of), eff_y - 10, eff_y + 24, f"as of {as_of.isoformat()}", eff_y + 20)
    if known_at:
        body += _marker(axis, moment(known_at), rec_y - 24, rec_y + 10, "known at", rec_y - 12)
    for i, (c, eff, rec) in enumerate(zip(conveyances, effective, recorded, strict=True)):
        x1, x2 = axis.x(eff), axis.x(rec)
        owners = ", ".join(str(o) for o in c["to"])
        tip = f"{c['kind']} to {owners}: effective {c['effective']}, recorded {c['recorded']}"
        body.append(
            f"<g><title>{_e(tip)}</title>"
            f'<line x1="{x1:.1f}" y1="{eff_y}" x2="{x2:.1f}" y2="{rec_y}" stroke="{PALETTE[0]}" stroke-width="2"/>'
            f'<circle cx="{x1:.1f}" cy="{eff_y}" r="5" fill="{PALETTE[0]}"/>'
            f'<circle cx="{x2:.1f}" cy="{rec_y}" r="5" fill="{PALETTE[1]}"/></g>'
        )
        row = eff_y - 22 - 16 * (i % 3)
        anchor = "end" if x1 > (left + right) / 2 else "start"
        body.append(_text(x1, row, f"{str(c['kind']).replace('_', ' ')} → {owners}", anchor=anchor))
    desc = "; ".join(f"{c['kind']} effective {c['effective']}, recorded {c['recorded']}" for c in conveyances)
    return _svg(width, height, "Chain of title: effective against recorded", desc, body, "title")


# --------------------------------------------------------------------------- encumbrances by territory


def encumbrance_chart(
    licences: Sequence[dict[str, Any]],
    pledges: Sequence[dict[str, Any]],
    *,
    as_of: date,
    expires_on: str | None,
) -> str:
    """The licences in force on `as_of`, one lane per territory, and the pledges (which bind
    the whole asset) in a lane of their own; each bar runs from its start to its end, a
    pledge without an end to the asset's expiry (or a year past `as_of`)."""
    width, left, right, lane, top = 680, 150, 660, 30, 26
    lanes: dict[str, list[tuple[str, date, date, str]]] = {}
    for lic in licences:
        for territory in lic["territories"]:
            label = f"{lic['id']} {lic['licensee']} ({str(lic['type']).replace('_', ' ')})"
            lanes.setdefault(str(territory), []).append(
                (label, date.fromisoformat(str(lic["start"])), date.fromisoformat(str(lic["end"])), PALETTE[0])
            )
    open_end = date.fromisoformat(expires_on) if expires_on else as_of.replace(year=as_of.year + 1)
    for p in pledges:
        end = date.fromisoformat(str(p["end"])) if p.get("end") else open_end
        label = f"{p['id']} {p['pledgee']} rank {p['rank']}"
        lanes.setdefault("pledges (whole asset)", []).append(
            (label, date.fromisoformat(str(p["start"])), end, PALETTE[1])
        )
    if not lanes:
        text = f"Nothing in force on {as_of.isoformat()}."
        return _svg(width, 60, "Licences and pledges by territory", text, [_text(20, 34, text)], "enc")
    rows = [(name, bar) for name in sorted(lanes) for bar in lanes[name]]
    height = top + lane * len(rows) + 40
    dates = [moment(as_of), *(moment(d) for _, b in rows for d in (b[1], b[2]))]
    axis = Axis.over(dates, left, right, pad=0.03, least=timedelta(days=30))
    body = _time_grid(axis, top, height - 30, height - 12)
    body += _marker(axis, moment(as_of), top - 6, height - 30, f"as of {as_of.isoformat()}", top - 10)  # under the bars
    seen: set[str] = set()
    for i, (name, (label, start, end, colour)) in enumerate(rows):
        y = top + lane * i
        if name not in seen:
            seen.add(name)
            body.append(f'<line x1="8" y1="{y}" x2="{right}" y2="{y}" stroke="{GRID}"/>')
            body.append(_text(8, y + 19, name, extra=' font-weight="bold"'))
        x1, x2 = axis.x(moment(start)), axis.x(moment(end))
        body.append(
            f'<rect x="{x1:.1f}" y="{y + 5}" width="{max(x2 - x1, 2):.1f}" height="{lane - 10}" rx="3" fill="{colour}" '
            f'fill-opacity="0.85"><title>{_e(label)}: {start.isoformat()} to {end.isoformat()}</title></rect>'
        )
        body.append(_text(x1 + 6, y + 19, f"{label} · {start.isoformat()} – {end.isoformat()}", fill=PAPER,
                          extra=' font-size="11"'))  # fmt: skip
    desc = "; ".join(f"{name}: {label} {start} to {end}" for name, (label, start, end, _) in rows)
    return _svg(width, height, "Licences and pledges in force, by territory", desc, body, "enc")
