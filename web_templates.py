# ruff: noqa: E501 - HTML rows read best one row a line; the templates are markup, not code
"""The web view's pages as Jinja2 templates, kept in Python (the repository root is the
package, so there is no templates folder to ship). Autoescaped: every value from the
store is text, never markup; the charts are the only markup passed in (`web_charts`,
which escapes what it draws).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from jinja2 import DictLoader, Environment, StrictUndefined, select_autoescape

from ipledger.domain.visibility import HIDDEN

STYLE = """
:root { color-scheme: light; --ink: #1a1a1a; --muted: #555; --line: #d8d8d8; --accent: #0b5cad; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, sans-serif; color: var(--ink); background: #f6f7f9; }
header { background: #10253f; color: #fff; padding: .6rem 1.2rem; display: flex; gap: 1.2rem;
         align-items: center; flex-wrap: wrap; }
header a { color: #fff; text-decoration: none; font-weight: 600; }
header nav { display: flex; gap: 1rem; flex: 1; }
header form { margin: 0; }
header .who { opacity: .85; }
main { max-width: 1100px; margin: 0 auto; padding: 1rem 1.2rem 3rem; }
h1 { font-size: 1.5rem; margin: .6rem 0 .2rem; }
h2 { font-size: 1.15rem; margin: 1.6rem 0 .5rem; border-bottom: 1px solid var(--line); padding-bottom: .2rem; }
.sub { color: var(--muted); margin: 0 0 .8rem; }
a { color: var(--accent); }
table { border-collapse: collapse; width: 100%; background: #fff; margin: .3rem 0 .8rem; }
caption { text-align: left; color: var(--muted); padding: .2rem 0; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
/* ids, dates, amounts and links stay on one line (they break at their hyphens otherwise) */
th, td:first-child, td.num, td.nw, td time, td a, td .badge { white-space: nowrap; }
th { background: #eef1f5; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.empty { color: var(--muted); font-style: italic; }
.chart { background: #fff; border: 1px solid var(--line); max-width: 720px; display: block; margin: .4rem 0; }
.badge { display: inline-block; padding: 0 .45rem; border-radius: .6rem; font-size: .85em; background: #e4e8ee; }
.badge.open, .badge.pending, .badge.active, .badge.live { background: #dff3e4; }
.badge.lapsed, .badge.void, .badge.withdrawn, .badge.lost, .badge.suspended { background: #f7e0e0; }
.note { background: #fff8dc; border-left: 4px solid #e0b400; padding: .4rem .7rem; }
.error { background: #fdecec; border-left: 4px solid #b00020; padding: .5rem .8rem; }
form.picker { display: flex; gap: 1rem; align-items: end; flex-wrap: wrap; background: #fff;
              padding: .6rem .8rem; border: 1px solid var(--line); }
label { display: flex; flex-direction: column; font-size: .9em; color: var(--muted); gap: .15rem; }
input { font: inherit; padding: .25rem .4rem; }
button { font: inherit; padding: .3rem .8rem; cursor: pointer; }
header button { background: transparent; color: #fff; border: 1px solid #fff8; border-radius: 3px; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: .4rem 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
code { font-size: .9em; }
code.hash { word-break: break-all; }
form.picker a { align-self: center; }
.signin { max-width: 30rem; margin: 3rem auto; background: #fff; padding: 1.2rem 1.5rem; border: 1px solid var(--line); }
.signin input { width: 100%; }
"""

BASE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{% block title %}{% endblock %} · ipledger</title>
<style>{{ style }}</style>
</head>
<body>
{% if actor %}
<header>
  <a href="/">ipledger</a>
  <nav aria-label="Pages"><a href="/">Dashboard</a><a href="/audit">Audit</a>
  {% if member_page %}<a href="{{ member_page }}">My holdings</a>{% endif %}</nav>
  <span class="who">Signed in as <strong>{{ actor }}</strong></span>
  <form method="post" action="/sign-out"><button type="submit">Sign out</button></form>
</header>
{% endif %}
<main>
{% block main %}{% endblock %}
</main>
</body>
</html>
"""

MACROS = """
{% macro asset(ref) %}<a href="{{ ref | asset_url }}">{{ ref }}</a>{% endmacro %}
{% macro member(id) %}{% if id in ("operator", "auditor") %}{{ id }}{% else %}<a href="/members/{{ id | u }}">{{ id }}</a>{% endif %}{% endmacro %}
{% macro members(ids) %}{% for id in ids %}{{ member(id) }}{% if not loop.last %}, {% endif %}{% endfor %}{% endmacro %}
{% macro owners(list) %}{% for o in list %}{{ member(o.member) }}{% if o.share != "1" %} {{ o.share }}{% endif %}{% if not loop.last %}, {% endif %}{% endfor %}{% endmacro %}
{% macro listing(id) %}<a href="/listings/{{ id | u }}">{{ id }}</a>{% endmacro %}
{% macro badge(status) %}<span class="badge {{ status }}">{{ status }}</span>{% endmacro %}
{% macro money(amount, currency) %}{% if amount %}{{ amount }} {{ currency or "" }}{% else %}—{% endif %}{% endmacro %}
{% macro when(text) %}{% if text %}<time datetime="{{ text }}">{{ text | short_time }}</time>{% else %}—{% endif %}{% endmacro %}
{% macro events_table(rows, caption) %}
{% if rows %}
<table><caption>{{ caption }}</caption>
<thead><tr><th scope="col" class="num">#</th><th scope="col">Recorded</th><th scope="col">By</th><th scope="col">What</th></tr></thead>
<tbody>{% for r in rows %}<tr><td class="num">{{ r.position }}</td><td>{{ when(r.recorded) }}</td><td>{{ r.actor }}</td><td>{{ r.what }}</td></tr>{% endfor %}</tbody>
</table>
{% else %}<p class="empty">{{ caption }}: none.</p>{% endif %}
{% endmacro %}
{% macro trades_table(trades, caption) %}
{% if trades %}
<table><caption>{{ caption }}</caption>
<thead><tr><th scope="col">Trade</th><th scope="col">Listing</th><th scope="col">Asset</th><th scope="col">Sellers</th>
<th scope="col">Buyer</th><th scope="col" class="num">Price</th><th scope="col">Status</th><th scope="col">Settle by</th></tr></thead>
<tbody>{% for t in trades %}<tr><td>{{ t.trade }}</td><td>{{ listing(t.listing) }}</td><td>{{ asset(t.asset) }}</td>
<td>{{ members(t.sellers) }}</td><td>{{ member(t.buyer) }}</td><td class="num">{{ money(t.price, t.currency) }}</td>
<td>{{ badge(t.status) }}</td><td>{% if t.status == "pending" %}{{ when(t.deadline) }} ({{ t.deadline | until }}){% else %}{{ when(t.resolved) }}{% endif %}</td></tr>{% endfor %}</tbody>
</table>
{% else %}<p class="empty">{{ caption }}: none.</p>{% endif %}
{% endmacro %}
{% macro more(rows, what, command, route) %}
<p class="note">The first {{ rows }} {{ what }} only: <code>{{ command }}</code> or <code>GET {{ route }}</code> lists them all.</p>
{% endmacro %}
{% macro listings_table(listings, caption) %}
{% if listings %}
<table><caption>{{ caption }}</caption>
<thead><tr><th scope="col">Listing</th><th scope="col">Asset</th><th scope="col">Sellers</th><th scope="col">Type</th>
<th scope="col">Mechanism</th><th scope="col" class="num">Ask</th><th scope="col">Status</th><th scope="col">Closes</th></tr></thead>
<tbody>{% for l in listings %}<tr><td>{{ listing(l.listing) }}</td><td>{{ asset(l.asset) }}</td><td>{{ members(l.sellers) }}</td>
<td>{{ l.type }}</td><td>{{ l.mechanism }}</td><td class="num">{{ money(l.ask, l.currency) }}</td><td>{{ badge(l.status) }}</td>
<td>{{ when(l.closes) }}{% if l.status == "open" %} ({{ l.closes | until }}){% endif %}</td></tr>{% endfor %}</tbody>
</table>
{% else %}<p class="empty">{{ caption }}: none.</p>{% endif %}
{% endmacro %}
{% macro pledges_table(pledges, caption, with_asset=True) %}
{% if pledges %}
<table><caption>{{ caption }}</caption>
<thead><tr><th scope="col">Pledge</th>{% if with_asset %}<th scope="col">Asset</th>{% endif %}<th scope="col">Pledgee</th><th scope="col" class="num">Rank</th>
<th scope="col" class="num">Amount</th><th scope="col">Start</th><th scope="col">End</th></tr></thead>
<tbody>{% for p in pledges %}<tr><td>{{ p.id }}</td>{% if with_asset %}<td>{{ asset(p.asset) }}</td>{% endif %}<td>{{ member(p.pledgee) }}</td>
<td class="num">{{ p.rank }}</td><td class="num">{{ money(p.amount, p.currency) }}</td><td class="nw">{{ p.start }}</td><td class="nw">{{ p.end or "—" }}</td></tr>{% endfor %}</tbody>
</table>
{% else %}<p class="empty">{{ caption }}: none.</p>{% endif %}
{% endmacro %}
{% macro licences_table(licences, caption, with_asset=True) %}
{% if licences %}
<table><caption>{{ caption }}</caption>
<thead><tr><th scope="col">Licence</th>{% if with_asset %}<th scope="col">Asset</th>{% endif %}<th scope="col">Licensee</th><th scope="col">Licensors</th>
<th scope="col">Type</th><th scope="col">Territories</th><th scope="col">Fields</th><th scope="col">Start</th><th scope="col">End</th></tr></thead>
<tbody>{% for x in licences %}<tr><td>{{ x.id }}</td>{% if with_asset %}<td>{{ asset(x.asset) }}</td>{% endif %}<td>{{ member(x.licensee) }}</td>
<td>{{ members(x.licensors) }}</td><td>{{ x.type | replace("_", " ") }}</td><td>{{ x.territories | join(", ") }}</td><td>{{ x.fields | join(", ") }}</td>
<td class="nw">{{ x.start }}</td><td class="nw">{{ x.end }}</td></tr>{% endfor %}</tbody>
</table>
{% else %}<p class="empty">{{ caption }}: none.</p>{% endif %}
{% endmacro %}
"""

SIGN_IN = """{% extends "base" %}
{% block title %}Sign in{% endblock %}
{% block main %}
<section class="signin">
<h1>Sign in to ipledger</h1>
{% if message %}<p class="error" role="alert">{{ message }}</p>{% endif %}
<p>Paste a token the operator issued you (<code>ipledger token issue ACTOR</code>).
It is kept in a cookie this browser sends to this server only, and stops working the moment it is revoked.</p>
<form method="post" action="/sign-in">
<label for="token">Token</label>
<input id="token" name="token" type="password" autocomplete="off" required>
<input type="hidden" name="next" value="{{ next }}">
<p><button type="submit">Sign in</button></p>
</form>
</section>
{% endblock %}
"""

DASHBOARD = """{% extends "base" %}{% import "macros" as m with context %}
{% block title %}Dashboard{% endblock %}
{% block main %}
<h1>Dashboard</h1>
<p class="sub">As of {{ now | short_time }} · log head #{{ digest.position }}</p>
<h2 id="open-listings">Open listings</h2>
{{ m.listings_table(listings, "Listings taking bids, with their close times") }}
{% if more_listings %}{{ m.more(rows, "open listings", "ipledger listings --status open", "/v1/listings?status=open") }}{% endif %}
<h2 id="pending-trades">Pending trades</h2>
{{ m.trades_table(trades, "Trades waiting for payment, with their settlement deadlines") }}
{% if more_trades %}{{ m.more(rows, "pending trades", "ipledger trades --status pending", "/v1/trades?status=pending") }}{% endif %}
<h2 id="latest">Latest on the market</h2>
{{ m.events_table(latest, "The latest events on any asset you may see, newest first") }}
<h2 id="assets">Assets</h2>
<table><caption>{% if more_assets %}Registered assets by ref, and their owners now{% else %}Every registered asset and its owners now{% endif %}</caption>
<thead><tr><th scope="col">Asset</th><th scope="col">Title</th><th scope="col">Owners</th><th scope="col">Expires</th></tr></thead>
<tbody>{% for a in assets %}<tr><td>{{ m.asset(a.asset) }}</td><td>{{ a.title }}</td><td>{{ m.owners(a.owners) }}</td><td class="nw">{{ a.expires_on or "—" }}</td></tr>{% endfor %}</tbody>
</table>
{% if more_assets %}{{ m.more(rows, "assets, by ref", "ipledger assets", "/v1/assets") }}{% endif %}
<h2 id="members">Members</h2>
<table><caption>Members of the exchange</caption>
<thead><tr><th scope="col">Member</th><th scope="col">Name</th><th scope="col">Kind</th><th scope="col">Status</th></tr></thead>
<tbody>{% for x in members %}<tr><td>{{ m.member(x.member) }}</td><td>{{ x.name }}</td><td>{{ x.kind | replace("_", " ") }}</td><td>{{ m.badge(x.status) }}</td></tr>{% endfor %}</tbody>
</table>
{% if more_members %}{{ m.more(rows, "members, by id", "ipledger members", "/v1/members") }}{% endif %}
{% endblock %}
"""

LISTING = """{% extends "base" %}{% import "macros" as m with context %}
{% block title %}Listing {{ book.listing }}{% endblock %}
{% block main %}
<h1>Listing {{ book.listing }}</h1>
<p class="sub">{{ book.mechanism }} {{ book.type }} of {{ m.asset(book.asset) }} by {{ m.members(book.sellers) }} · {{ m.badge(book.status) }}{% if book.unsold_reason %} ({{ book.unsold_reason }}){% endif %}</p>
<dl class="facts">
<dt>Opens</dt><dd>{{ m.when(book.opens) }}</dd>
<dt>Closes</dt><dd>{{ m.when(book.closes) }}{% if book.status == "open" %} ({{ book.closes | until }}){% endif %}</dd>
<dt>Ask</dt><dd>{{ m.money(book.ask, book.currency) }}</dd>
{% if book.reserve %}<dt>Reserve</dt><dd>{% if book.reserve == HIDDEN %}set (amount hidden){% else %}{{ m.money(book.reserve, book.currency) }}{% endif %}</dd>{% endif %}
{% if book.increment %}<dt>Increment</dt><dd>{{ m.money(book.increment, book.currency) }}</dd>{% endif %}
{% if book.trade %}<dt>Outcome</dt><dd>trade {{ book.trade }}: {{ m.member(book.winner) }} at {{ m.money(book.price, book.currency) }}{% if book.deadline %}, settle by {{ m.when(book.deadline) }}{% endif %}</dd>{% endif %}
</dl>
{% if book.sealed_hidden %}<p class="note">A sealed listing: other members' bids stay hidden until it closes. You see your own bids only.</p>{% endif %}
<h2 id="chart">Bids over time</h2>
{{ chart }}
<h2 id="book">Order book</h2>
{% if book.bids %}
<table><caption>{% if book.status == "open" %}Standing bids, best price first, then earliest{% else %}The final book{% endif %}</caption>
<thead><tr><th scope="col">Bid</th><th scope="col">Bidder</th><th scope="col" class="num">Amount</th><th scope="col">Placed</th><th scope="col">State</th></tr></thead>
<tbody>{% for b in book.bids %}<tr><td>{{ b.id }}</td><td>{{ m.member(b.bidder) }}</td><td class="num">{{ m.money(b.amount, book.currency) }}</td><td>{{ m.when(b.placed) }}</td><td>{{ m.badge(b.state) }}</td></tr>{% endfor %}</tbody>
</table>
{% else %}<p class="empty">No bids you may see.</p>{% endif %}
{% if history %}
<h2 id="history">Every bid, as placed</h2>
<table><caption>Including bids since superseded or withdrawn</caption>
<thead><tr><th scope="col">Bid</th><th scope="col">Bidder</th><th scope="col" class="num">Amount</th><th scope="col">Placed</th><th scope="col">State</th></tr></thead>
<tbody>{% for b in history %}<tr><td>{{ b.id }}</td><td>{{ m.member(b.bidder) }}</td><td class="num">{{ m.money(b.amount, book.currency) }}</td><td>{{ m.when(b.placed) }}</td><td>{{ m.badge(b.state) }}</td></tr>{% endfor %}</tbody>
</table>
{% endif %}
{% endblock %}
"""

ASSET = """{% extends "base" %}{% import "macros" as m with context %}
{% block title %}{{ asset.asset }}{% endblock %}
{% block main %}
<h1>{{ asset.asset }}</h1>
<p class="sub">{{ asset.title }} · registered {{ asset.registered_on }} · {% if asset.expires_on %}expires {{ asset.expires_on }}{% if asset.expired %} (expired){% endif %}{% else %}no expiry{% endif %}</p>
<form class="picker" method="get" action="{{ asset.asset | asset_url }}" aria-label="Point in time">
<label for="as_of">As of (effective date)<input id="as_of" name="as_of" type="date" value="{{ as_of_text }}"></label>
<label for="known_at">Known at (recorded by)<input id="known_at" name="known_at" type="text" value="{{ known_at_text }}" placeholder="2026-03-02T09:00:00Z"></label>
<button type="submit">Show</button>{% if as_of_text or known_at_text %} <a href="{{ asset.asset | asset_url }}">now</a>{% endif %}
</form>
<h2 id="owners">Owners {{ point }}</h2>
{% if owner.owners %}<table><caption>Owners and their shares</caption>
<thead><tr><th scope="col">Member</th><th scope="col" class="num">Share</th></tr></thead>
<tbody>{% for o in owner.owners %}<tr><td>{{ m.member(o.member) }}</td><td class="num">{{ o.share }}</td></tr>{% endfor %}</tbody></table>
{% else %}<p class="empty">No owner {{ point }}.</p>{% endif %}
<h2 id="title">Chain of title</h2>
{{ title_chart }}
<table><caption>Conveyances in effective order</caption>
<thead><tr><th scope="col">Kind</th><th scope="col">Effective</th><th scope="col">Recorded</th><th scope="col">From</th><th scope="col">To</th><th scope="col">Trade</th></tr></thead>
<tbody>{% for c in title.conveyances %}<tr><td>{{ c.kind | replace("_", " ") }}</td><td class="nw">{{ c.effective }}</td><td>{{ m.when(c.recorded) }}</td>
<td>{{ m.members(c.from) if c.from else "—" }}</td><td>{{ m.owners(c.shares) }}</td><td>{% if c.trade %}{{ c.trade }}{% else %}—{% endif %}</td></tr>{% endfor %}</tbody>
</table>
<h2 id="encumbrances">Licences and pledges in force {{ point }}</h2>
{{ encumbrance_chart }}
{{ m.licences_table(licences, "Licences in force", with_asset=False) }}
{{ m.pledges_table(pledges, "Pledges in force, by rank", with_asset=False) }}
<h2 id="listings">Open listings</h2>
{{ m.listings_table(asset.listings, "Listings of this asset taking bids") }}
<h2 id="trades">Trades</h2>
{{ m.trades_table(asset.trades, "Trades of this asset") }}
<h2 id="trail">History</h2>
{{ m.events_table(trail, "Every event on this asset you may see, in log order") }}
{% endblock %}
"""

MEMBER = """{% extends "base" %}{% import "macros" as m with context %}
{% block title %}{{ member.member }}{% endblock %}
{% block main %}
<h1>{{ member.name }}</h1>
<p class="sub">{{ member.member }} · {{ member.kind | replace("_", " ") }} in {{ member.country }} · {{ m.badge(member.status) }}{% if member.suspension_reason %} ({{ member.suspension_reason }}){% endif %} · admitted {{ member.admitted | short_time }}</p>
<h2 id="holdings">Holdings</h2>
{% if member.holdings %}<table><caption>Assets it owns now</caption>
<thead><tr><th scope="col">Asset</th><th scope="col" class="num">Share</th></tr></thead>
<tbody>{% for h in member.holdings %}<tr><td>{{ m.asset(h.asset) }}</td><td class="num">{{ h.share }}</td></tr>{% endfor %}</tbody></table>
{% else %}<p class="empty">Holdings: none.</p>{% endif %}
<h2 id="pledges">Pledges</h2>
{{ m.pledges_table(pledged, "Pledges on its holdings, in force") }}
{{ m.pledges_table(member.pledges, "Pledges it holds as pledgee, in force") }}
<h2 id="licences">Licences</h2>
{{ m.licences_table(member.licences, "Licences it holds, in force") }}
<h2 id="listings">Listings and bids</h2>
{{ m.listings_table(member.listings, "Its open listings") }}
{% if member.bids %}<table><caption>Its standing bids you may see</caption>
<thead><tr><th scope="col">Bid</th><th scope="col">Listing</th><th scope="col" class="num">Amount</th><th scope="col">Placed</th></tr></thead>
<tbody>{% for b in member.bids %}<tr><td>{{ b.id }}</td><td>{{ m.listing(b.listing) }}</td><td class="num">{{ m.money(b.amount, b.currency) }}</td><td>{{ m.when(b.placed) }}</td></tr>{% endfor %}</tbody></table>
{% else %}<p class="empty">Standing bids you may see: none.</p>{% endif %}
<h2 id="trades">Trades</h2>
{{ m.trades_table(member.trades, "Trades it sold or bought in") }}
{% endblock %}
"""

AUDIT = """{% extends "base" %}{% import "macros" as m with context %}
{% block title %}Audit{% endblock %}
{% block main %}
<h1>Audit</h1>
<p class="sub">The log's head, its signed checkpoints and how far the read models trail it.</p>
<h2 id="digest">Digest</h2>
<dl class="facts"><dt>Head position</dt><dd>#{{ digest.position }}</dd><dt>Head hash</dt><dd><code class="hash">{{ digest.hash }}</code></dd>
<dt>Digest</dt><dd><code class="hash">{{ digest.position }}:{{ digest.hash }}</code></dd></dl>
<p>Hand the digest to an auditor; later, <code>ipledger audit verify --digest {{ digest.position }}:{{ digest.hash[:12] }}…</code> proves that nothing before it changed.</p>
<h2 id="checkpoints">Signed checkpoints</h2>
{% if checkpoints %}<table><caption>Signed tree heads, oldest first (<code>ipledger audit checkpoints</code>)</caption>
<thead><tr><th scope="col" class="num">Tree size</th><th scope="col">Root hash</th><th scope="col" class="num">Leaves since</th><th scope="col">Checked now</th></tr></thead>
<tbody>{% for c in checkpoints %}<tr><td class="num">{{ c.size }}</td><td><code class="hash">{{ c.root_hash }}</code></td><td class="num">{{ tree_size - c.size }}</td>
<td>{% if c.holds %}<span class="badge active">holds</span>{% else %}<span class="badge void">differs</span>{% endif %}</td></tr>{% endfor %}</tbody></table>
<p>"Checked now": today's Merkle tree still has the signed root at that size. The full check (the signature, every leaf recomputed from the log) is <code>ipledger audit verify --checkpoint FILE --key VKEY</code>.</p>
{% else %}<p class="empty">No checkpoint signed yet (<code>ipledger audit checkpoint --key FILE</code>).</p>{% endif %}
<h2 id="projections">Projection lag</h2>
<table><caption>Each read model's position against the log head, when this page was asked for</caption>
<thead><tr><th scope="col">Read model</th><th scope="col" class="num">Position</th><th scope="col" class="num">Head</th><th scope="col" class="num">Behind</th></tr></thead>
<tbody>{% for p in projections %}<tr><td>{{ p.name }}</td><td class="num">{{ p.position }}</td><td class="num">{{ p.head }}</td><td class="num">{{ p.behind }}</td></tr>{% endfor %}</tbody></table>
<p>Queries bring the read models they use to the head before they answer, so no page shows stale facts; lag here is work waiting for the next query.</p>
{% endblock %}
"""

ERROR = """{% extends "base" %}
{% block title %}{{ name }}{% endblock %}
{% block main %}
<h1>{{ name }}</h1>
<p class="error" role="alert">{{ message }}</p>
<p><a href="/">Back to the dashboard</a></p>
{% endblock %}
"""


def asset_url(ref: str) -> str:
    return "/assets/" + quote(ref, safe="/")


def environment(filters: dict[str, Any]) -> Environment:
    env = Environment(
        loader=DictLoader(
            {
                "base": BASE,
                "macros": MACROS,
                "sign_in": SIGN_IN,
                "dashboard": DASHBOARD,
                "listing": LISTING,
                "asset": ASSET,
                "member": MEMBER,
                "audit": AUDIT,
                "error": ERROR,
            }
        ),  # fmt: skip
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(asset_url=asset_url, **filters)
    env.globals["style"] = STYLE
    env.globals["HIDDEN"] = HIDDEN  # how a reserve the actor may not see reads (domain/visibility.py)
    return env
