"""The web view (api.md "The web view", issue 14): read-only pages over the demo market,
signed in with a token kept in an HttpOnly, SameSite=Strict cookie, each page showing
what the signed-in actor may see and nothing else. In-process with FastAPI's TestClient;
tests/test_browser.py drives the same pages in Chromium."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipledger.demo import CO_OWNED, PATENT, run_demo
from ipledger.service import Ledger
from ipledger.web import COOKIE
from ipledger.web_charts import bids_chart, encumbrance_chart, title_chart

with warnings.catch_warnings():  # starlette asks for httpx2; the TestClient works as it is
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

    from ipledger.api import create_app

#: A sealed listing beside the demo's, by cas-sippr with a reserve, with one bid from each of two members.
SEALED_ASSET = "CN/patent/ZL202110000001.1"
HUAWEI_SEALED, ZTE_SEALED = "1111111.00", "1234567.00"
SEALED_RESERVE = "1098765.00"


@dataclass
class Site:
    url: str
    tokens: dict[str, str]  # actor -> secret

    def client(self, base_url: str = "http://testserver") -> TestClient:
        return TestClient(create_app(self.url), base_url=base_url)

    def bearer(self, actor: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[actor]}"}


def build_site(url: str) -> Site:
    """The demo market, a sealed listing with a reserve still open, and a token each for the
    operator, an auditor, two bidders and the sealed listing's seller."""
    ledger = Ledger(url)
    try:
        run_demo(ledger)
        ledger.execute("asset.register", {"ref": SEALED_ASSET, "title": "Solid electrolyte", "owner": ["cas-sippr"]})
        ledger.execute(
            "listing.open",
            {"ref": SEALED_ASSET, "type": "assignment", "mechanism": "sealed", "currency": "CNY",
             "closes": "2099-01-01T00:00:00Z", "reserve": SEALED_RESERVE, "id": "L-SEALED"},
            actor="cas-sippr",
        )  # fmt: skip
        for bidder, amount in (("huawei", HUAWEI_SEALED), ("zte", ZTE_SEALED)):
            args = {"listing": "L-SEALED", "bidder": bidder, "amount": amount, "id": f"B-sealed-{bidder}"}
            ledger.execute("bid.place", args, actor=bidder)
        actors = ("operator", "auditor", "huawei", "zte", "cas-sippr")
        tokens = {a: ledger.issue_token(a, f"{a}'s browser")["secret"] for a in actors}
    finally:
        ledger.close()
    return Site(url, tokens)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return build_site(f"sqlite:///{tmp_path_factory.mktemp('web')}/demo.db")


@pytest.fixture
def web(site: Site) -> Iterator[TestClient]:
    with site.client() as client:
        yield client


def signed_in(site: Site, client: TestClient, actor: str) -> TestClient:
    r = client.post("/sign-in", data={"token": site.tokens[actor], "next": "/"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return client


def page(client: TestClient, path: str, **params: Any) -> str:
    r = client.get(path, params=params or None)  # an empty dict would drop the path's own query
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    return r.text


def visible_text(html: str) -> str:
    """The words on a page (tags dropped), to check what a reader sees."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# --------------------------------------------------------------------------- signing in


def test_sign_in_sets_an_httponly_samesite_strict_cookie_and_goes_where_asked(site: Site, web: TestClient) -> None:
    r = web.post("/sign-in", data={"token": site.tokens["huawei"], "next": "/audit"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/audit"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Secure" not in cookie  # plain http here: a Secure cookie would never come back
    assert "Signed in as huawei" in visible_text(page(web, "/"))


def test_over_https_the_cookie_is_also_secure(site: Site) -> None:
    with site.client("https://testserver") as client:
        r = client.post("/sign-in", data={"token": site.tokens["zte"]}, follow_redirects=False)
    assert r.status_code == 303 and "Secure" in r.headers["set-cookie"]


def test_a_page_without_a_token_redirects_to_sign_in_and_back(web: TestClient) -> None:
    r = web.get(f"/assets/{PATENT}", params={"as_of": "2030-01-01"}, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/sign-in?next=%2Fassets%2FCN%2Fpatent%2FZL201810012345.6%3Fas_of%3D2030-01-01"
    form = page(web, r.headers["location"])
    assert 'name="next" value="/assets/CN/patent/ZL201810012345.6?as_of=2030-01-01"' in form
    assert '<label for="token">' in form


def test_a_wrong_token_is_refused_and_sets_no_cookie(site: Site, web: TestClient) -> None:
    r = web.post("/sign-in", data={"token": site.tokens["huawei"][:-3] + "xyz"}, follow_redirects=False)
    assert r.status_code == 401 and "set-cookie" not in r.headers
    assert "token: invalid, revoked or expired" in r.text


def test_a_revoked_token_stops_working_at_once(site: Site, web: TestClient) -> None:
    ledger = Ledger(site.url)
    try:
        issued = ledger.issue_token("byd", "to revoke")
        signed = web.post("/sign-in", data={"token": issued["secret"]}, follow_redirects=False)
        assert signed.status_code == 303
        assert "Signed in as byd" in visible_text(page(web, "/"))
        ledger.execute("token.revoke", {"token": issued["id"]})  # by the operator, from another process
    finally:
        ledger.close()
    refused = web.get("/", follow_redirects=False)
    assert refused.status_code == 401 and "Signed in as" not in refused.text
    assert "sign in again" in refused.text and f'{COOKIE}=""' in refused.headers["set-cookie"]  # the cookie cleared
    bearer = web.get("/", headers={"Authorization": f"Bearer {issued['secret']}"}, follow_redirects=False)
    assert bearer.status_code == 401


def test_the_bearer_header_works_for_pages_too(site: Site, web: TestClient) -> None:
    r = web.get("/audit", headers=site.bearer("auditor"))
    assert r.status_code == 200 and "Signed in as auditor" in visible_text(r.text)


def test_sign_out_clears_the_cookie(site: Site, web: TestClient) -> None:
    signed_in(site, web, "zte")
    r = web.post("/sign-out", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/sign-in"
    assert web.get("/", follow_redirects=False).status_code == 303


def test_sign_in_from_another_site_is_refused(site: Site, web: TestClient) -> None:
    r = web.post("/sign-in", data={"token": site.tokens["zte"]}, headers={"Origin": "https://evil.example"},
                 follow_redirects=False)  # fmt: skip
    assert r.status_code == 403 and "set-cookie" not in r.headers


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example", "audit"])
def test_sign_in_sends_only_to_a_path_on_this_site(site: Site, web: TestClient, target: str) -> None:
    r = web.post("/sign-in", data={"token": site.tokens["zte"], "next": target}, follow_redirects=False)
    assert r.headers["location"] == "/"


# --------------------------------------------------------------------------- the pages, on the demo market


def test_dashboard_lists_open_listings_and_pending_trades_with_deadlines(site: Site, web: TestClient) -> None:
    text = visible_text(page(signed_in(site, web, "operator"), "/"))
    opened = text.split("Open listings", 1)[1].split("Pending trades", 1)[0]
    assert "L-NEGOTIATED" in opened and "L-SEALED" in opened
    assert "L-AUCTION" not in opened and "L-FIXED" not in opened  # both sold
    assert re.search(r"L-NEGOTIATED .* open \d{4}-\d\d-\d\d \d\d:\d\d UTC \(in \d+ d \d+ h\)", opened), opened
    pending = text.split("Pending trades", 1)[1].split("Assets", 1)[0]
    assert "none" in pending  # the demo settles both of its trades


def test_dashboard_shows_the_latest_market_events_newest_first_as_the_actor_sees(site: Site, web: TestClient) -> None:
    mine = visible_text(web.get("/", headers=site.bearer("huawei")).text).split("Latest on the market", 1)[1]
    assert "bid B-sealed-huawei placed on L-SEALED by huawei" in mine and "B-sealed-zte" not in mine
    assert mine.index("L-SEALED opened") > mine.index("bid B-sealed-huawei placed")  # newest first
    everything = visible_text(web.get("/", headers=site.bearer("operator")).text)
    assert "bid B-sealed-zte placed on L-SEALED by zte" in everything


@pytest.mark.parametrize("viewer", ["operator", "huawei", "zte"])
def test_the_latest_events_read_back_a_page_at_a_time_are_every_asset_trail_newest_first(
    site: Site, viewer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ipledger.projections import queries

    monkeypatch.setattr(queries, "LATEST_PAGE", 3)  # many pages, some with nothing about an asset
    ledger = Ledger(site.url)
    try:
        refs = [a["asset"] for a in ledger.assets()["assets"]]
        every = {e["position"]: e for ref in refs for e in ledger.trail(asset=ref, viewer=viewer)["events"]}
        newest_first = [every[p] for p in sorted(every, reverse=True)]
        for limit in (1, 4, 10, len(newest_first) + 5):
            assert ledger.latest(viewer, limit=limit)["events"] == newest_first[:limit], limit
    finally:
        ledger.close()


def test_dashboard_lists_are_their_first_rows_and_say_where_the_rest_are(
    site: Site, web: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ipledger.web

    everything = visible_text(web.get("/", headers=site.bearer("operator")).text)
    assert "only:" not in everything  # the demo's lists fit
    monkeypatch.setattr(ipledger.web, "DASHBOARD_ROWS", 2)
    text = visible_text(web.get("/", headers=site.bearer("operator")).text)
    assets = text.split("Registered assets by ref, and their owners now", 1)[1].split("Members", 1)[0]
    ledger = Ledger(site.url)
    try:
        first, third = (a["asset"] for a in ledger.assets(limit=3)["assets"][::2])
        first_members = [m["member"] for m in ledger.members(limit=3)["members"]]
    finally:
        ledger.close()
    assert first in assets and third not in assets
    assert "The first 2 assets, by ref only: ipledger assets or GET /v1/assets lists them all." in assets
    members = text.split("Members of the exchange", 1)[1]
    assert first_members[1] in members and first_members[2] not in members
    assert "The first 2 members, by id only: ipledger members or GET /v1/members lists them all." in members


def test_dashboard_links_to_each_listing_asset_and_member(site: Site, web: TestClient) -> None:
    html = page(signed_in(site, web, "zte"), "/")
    for href in ("/listings/L-NEGOTIATED", f"/assets/{CO_OWNED}", "/members/icbc-sh", "/audit"):
        assert f'href="{href}"' in html, href


def test_a_pending_trade_shows_its_settlement_deadline(tmp_path: Path) -> None:
    site = build_site(f"sqlite:///{tmp_path}/pending.db")
    ledger = Ledger(site.url)
    try:
        ledger.execute("asset.register", {"ref": "CN/patent/ZL202110000002.2", "title": "Anode", "owner": ["byd"]})
        ledger.execute("listing.open", {"ref": "CN/patent/ZL202110000002.2", "type": "assignment",
                                        "mechanism": "fixed", "currency": "CNY", "ask": "10.00",
                                        "closes": "2099-01-01T00:00:00Z", "id": "L-QUICK"}, actor="byd")  # fmt: skip
        ledger.execute("bid.place", {"listing": "L-QUICK", "bidder": "zte", "amount": "10.00", "trade_id": "T-QUICK"},
                       actor="zte")  # fmt: skip
    finally:
        ledger.close()
    with site.client() as client:
        text = visible_text(page(signed_in(site, client, "zte"), "/"))
    pending = text.split("Pending trades", 1)[1].split("Assets", 1)[0]
    assert re.search(r"T-QUICK L-QUICK CN/patent/ZL202110000002.2 byd zte 10.00 CNY pending .* UTC \(in \d+ d", pending)


def test_a_listing_page_shows_the_book_the_outcome_and_a_chart_of_every_bid(site: Site, web: TestClient) -> None:
    html = page(signed_in(site, web, "zte"), "/listings/L-AUCTION")
    text = visible_text(html)
    assert "Listing L-AUCTION" in text and "trade T-AUCTION: zte at 225000.00 CNY" in text
    chart = html.split("<svg", 1)[1].split("</svg>", 1)[0]
    assert chart.count("<circle") >= 5  # B-1 .. B-5, B-1 since superseded by huawei's B-4
    assert "B-1: huawei 180000.00 CNY" in chart and "(superseded)" in chart
    book = text.split("Order book", 1)[1].split("Every bid", 1)[0]
    assert "B-5 zte 225000.00 CNY" in book and "won" in book and "B-1 " not in book


def test_an_asset_page_shows_owners_title_timeline_and_encumbrances_by_territory(site: Site, web: TestClient) -> None:
    html = page(signed_in(site, web, "huawei"), f"/assets/{CO_OWNED}")
    text = visible_text(html)
    assert "Owners now" in text and "fudan-univ 1/2" in text and "cas-sippr 1/2" in text
    assert "Chain of title: effective against recorded" in html
    enc = html.split('id="encumbrances"', 1)[1]
    assert "Licences and pledges in force, by territory" in enc
    assert ">CN</text>" in enc and ">pledges (whole asset)</text>" in enc
    assert "LIC-CATALYST-1" in visible_text(enc) and "P-ICBC-1" in visible_text(enc)
    assert '<form class="picker" method="get"' in html and '<label for="as_of">' in html


def test_the_as_of_picker_answers_for_that_day(site: Site, web: TestClient) -> None:
    signed_in(site, web, "operator")
    before = visible_text(page(web, f"/assets/{PATENT}", as_of="2020-01-01"))
    assert "Owners as of 2020-01-01" in before and "No owner as of 2020-01-01" in before  # registered since
    now = visible_text(page(web, f"/assets/{PATENT}"))
    assert re.search(r"Owners now Owners and their shares Member Share zte 1 ", now), now


def test_the_known_at_picker_leaves_out_what_was_recorded_later(site: Site, web: TestClient) -> None:
    signed_in(site, web, "operator")
    title = visible_text(page(web, f"/assets/{CO_OWNED}")).split("Conveyances in effective order", 1)[1]
    registered = re.search(r"registration \S+ (\d{4}-\d\d-\d\d \d\d:\d\d) UTC", title)
    assert registered is not None, title
    early = visible_text(page(web, f"/assets/{CO_OWNED}", known_at="2000-01-01T00:00:00Z"))
    assert "No owner now as known at 2000-01-01 00:00 UTC" in early
    assert "Nothing in force on" in early


@pytest.mark.parametrize(
    ("params", "field"),
    [({"as_of": "31/12/2026"}, "as_of"), ({"known_at": "yesterday"}, "known_at"), ({"as_of": "2026-02-30"}, "as_of")],
)
def test_bad_picker_input_is_a_4xx_page_naming_the_field(site: Site, web: TestClient, params: Any, field: str) -> None:
    r = signed_in(site, web, "huawei").get(f"/assets/{PATENT}", params=params)
    assert r.status_code == 400 and r.headers["content-type"].startswith("text/html")
    message = re.search(r'<p class="error" role="alert">(.*?)</p>', r.text)
    assert message is not None and message[1].startswith(f"{field}: ")


def test_an_unknown_asset_listing_or_member_is_a_404_page(site: Site, web: TestClient) -> None:
    signed_in(site, web, "huawei")
    for path, field in (("/assets/CN/patent/ZL209999999999.9", "ref"), ("/listings/L-NONE", "listing"),
                        ("/members/nobody", "member")):  # fmt: skip
        r = web.get(path)
        assert r.status_code == 404 and f"{field}: no " in r.text, path
    assert web.get("/assets/not-a-ref").status_code == 400


def test_a_member_page_shows_holdings_trades_and_pledges(site: Site, web: TestClient) -> None:
    signed_in(site, web, "operator")
    fudan = visible_text(page(web, "/members/fudan-univ"))
    assert "Fudan University" in fudan and CO_OWNED in fudan
    granted = fudan.split("Pledges on its holdings, in force", 1)[1]
    assert granted.startswith(" Pledge Asset Pledgee") and "P-ICBC-1" in granted.split("Licences", 1)[0]
    bank = visible_text(page(web, "/members/icbc-sh")).split("Pledges it holds as pledgee, in force", 1)[1]
    assert "P-ICBC-1 " + CO_OWNED + " icbc-sh 1 5000000.00 CNY" in bank
    zte = visible_text(page(web, "/members/zte")).split("Trades it sold or bought in", 1)[1]
    assert "T-AUCTION L-AUCTION" in zte and "settled" in zte


def test_the_audit_page_shows_the_digest_checkpoints_and_projection_lag(site: Site, web: TestClient) -> None:
    from ipledger.ledger.checkpoints import Signer

    ledger = Ledger(site.url)
    try:
        head = ledger.digest()
        signed = ledger.checkpoint(Signer.generate("exchange.example"))
    finally:
        ledger.close()
    text = visible_text(page(signed_in(site, web, "auditor"), "/audit"))
    assert f"{head['position']}:{head['hash']}" in text
    assert f"{signed['size']} {signed['root_hash']} 0 holds" in text
    assert re.search(r"Behind (\w+ \d+ \d+ \d+ )+", text) and "book " in text


def test_every_page_renders_on_each_store(store_url: str) -> None:
    site = build_site(store_url)
    with site.client() as client:
        for path in ("/", "/listings/L-AUCTION", "/listings/L-SEALED", f"/assets/{CO_OWNED}", "/members/zte", "/audit"):
            r = client.get(path, headers=site.bearer("zte"))
            assert r.status_code == 200 and "Signed in as zte" in visible_text(r.text), path
            assert ZTE_SEALED in r.text or path not in ("/listings/L-SEALED", "/members/zte")


# --------------------------------------------------------------------------- who sees what


@pytest.mark.parametrize(
    "path", ["/", "/listings/L-SEALED", "/members/zte", "/members/huawei", f"/assets/{SEALED_ASSET}"]
)
def test_a_member_never_sees_another_members_sealed_bid(site: Site, web: TestClient, path: str) -> None:
    html = web.get(path, headers=site.bearer("huawei")).text
    assert ZTE_SEALED not in html and "B-sealed-zte" not in html and "1,234,567" not in html
    operator = web.get(path, headers=site.bearer("operator")).text
    if path in ("/listings/L-SEALED", "/members/zte"):
        assert ZTE_SEALED in operator  # the page would show it, to whom may see it


def test_a_member_sees_its_own_sealed_bid_and_is_told_the_rest_are_hidden(site: Site, web: TestClient) -> None:
    html = web.get("/listings/L-SEALED", headers=site.bearer("huawei")).text
    assert HUAWEI_SEALED in html and "other members' bids stay hidden until it closes" in html


@pytest.mark.parametrize("path", ["/", "/listings/L-SEALED", f"/assets/{SEALED_ASSET}"])
def test_a_bidder_or_another_member_never_sees_the_reserve(site: Site, web: TestClient, path: str) -> None:
    for actor in ("huawei", "zte"):  # both bid on L-SEALED; neither sells it
        html = web.get(path, headers=site.bearer(actor)).text
        assert SEALED_RESERVE not in html and "1,098,765" not in html, actor
    assert SEALED_RESERVE in web.get(path, headers=site.bearer("cas-sippr")).text  # the page would show it


def test_a_listing_page_tells_a_member_of_a_reserve_and_its_seller_the_amount(site: Site, web: TestClient) -> None:
    facts = visible_text(page(signed_in(site, web, "huawei"), "/listings/L-SEALED")).split("Bids over time", 1)[0]
    assert "Reserve set (amount hidden)" in facts
    for actor in ("cas-sippr", "operator", "auditor"):
        text = visible_text(web.get("/listings/L-SEALED", headers=site.bearer(actor)).text)
        assert f"Reserve {SEALED_RESERVE} CNY" in text, actor


def test_the_trail_on_a_page_says_a_reserve_was_set_not_its_amount(site: Site, web: TestClient) -> None:
    text = visible_text(web.get(f"/assets/{SEALED_ASSET}", headers=site.bearer("zte")).text)
    assert "listing L-SEALED opened by cas-sippr" in text and "with a reserve (amount hidden)" in text
    seller = visible_text(web.get(f"/assets/{SEALED_ASSET}", headers=site.bearer("cas-sippr")).text)
    assert f"reserve {SEALED_RESERVE} CNY" in seller


# --------------------------------------------------------------------------- nothing from elsewhere, nothing unescaped


def test_pages_run_no_script_and_fetch_nothing_from_another_host(site: Site, web: TestClient) -> None:
    signed_in(site, web, "operator")
    for path in ("/", "/listings/L-AUCTION", f"/assets/{CO_OWNED}", "/members/huawei", "/audit", "/sign-in"):
        r = web.get(path)
        assert "default-src 'none'" in r.headers["content-security-policy"]
        assert "<script" not in r.text and not re.search(r'(src|href)="(https?:)?//', r.text), path


def test_charts_escape_what_they_draw() -> None:
    bids = [{"id": "B-1", "bidder": "<b>x</b>", "amount": "10.00", "placed": "2026-03-02T09:00:00Z", "state": "live"}]
    svg = bids_chart(bids, currency="CNY", opens="2026-03-01T09:00:00Z", ask="5.00")
    assert "<b>" not in svg and "&lt;b&gt;x&lt;/b&gt;" in svg


def test_a_backdated_conveyance_is_a_slanted_link_between_the_two_axes() -> None:
    svg = title_chart([{"kind": "assignment", "effective": "2025-01-01", "recorded": "2026-01-01T00:00:00Z",
                        "to": ["huawei"]}])  # fmt: skip
    link = re.search(r'<line x1="([\d.]+)" y1="78.0" x2="([\d.]+)" y2="178.0" stroke="#1f77b4"', svg)
    assert link is not None and float(link[2]) > float(link[1])


def test_a_pledge_without_an_end_runs_to_the_assets_expiry() -> None:
    from datetime import date

    svg = encumbrance_chart([], [{"id": "P-1", "pledgee": "icbc-sh", "rank": 1, "start": "2026-01-01", "end": None}],
                            as_of=date(2026, 6, 1), expires_on="2038-01-05")  # fmt: skip
    assert "P-1 icbc-sh rank 1: 2026-01-01 to 2038-01-05" in svg


def test_the_audit_page_flags_a_checkpoint_todays_tree_does_not_hold(tmp_path: Path) -> None:
    from sqlalchemy import text

    from ipledger.ledger.checkpoints import Signer

    url = f"sqlite:///{tmp_path}/tampered.db"
    ledger = Ledger(url)
    try:
        ledger.execute("member.add", {"id": "huawei", "name": "Huawei", "kind": "enterprise", "country": "CN"})
        signed = ledger.checkpoint(Signer.generate("exchange.example"))
        secret = ledger.issue_token("auditor")["secret"]
        with ledger.exchange.engine.begin() as conn:  # a checkpoint row edited behind the ledger's back
            conn.execute(text("UPDATE ipledger_checkpoints SET root = :r"), {"r": "ab" * 32})
    finally:
        ledger.close()
    with TestClient(create_app(url)) as client:
        shown = visible_text(client.get("/audit", headers={"Authorization": f"Bearer {secret}"}).text)
    assert f"{signed['size']} {'ab' * 32} " in shown and " differs" in shown and " holds" not in shown


@pytest.fixture(scope="module")
def operator_web(site: Site) -> Iterator[TestClient]:
    with site.client() as client:
        client.headers["Authorization"] = f"Bearer {site.tokens['operator']}"
        yield client


TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)  # what a URL can carry


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ref=TEXT, as_of=TEXT, known_at=TEXT, listing=TEXT, member=TEXT)
def test_no_path_or_picker_input_is_a_server_error(
    operator_web: TestClient, ref: str, as_of: str, known_at: str, listing: str, member: str
) -> None:
    for path, params in (
        (f"/assets/{quote(ref, safe='')}", {"as_of": as_of, "known_at": known_at}),
        (f"/assets/{PATENT}", {"as_of": as_of, "known_at": known_at}),
        (f"/listings/{quote(listing, safe='')}", {}),
        (f"/members/{quote(member, safe='')}", {}),
    ):
        r = operator_web.get(path, params=params or None)
        assert r.status_code < 500, (path, params, r.text)
