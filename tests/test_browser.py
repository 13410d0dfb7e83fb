"""The web view in a real browser (issue 14): Chromium from the distribution's packages,
driven by Playwright, against a real `ipledger serve` process on 127.0.0.1 over the demo
market. JavaScript is off for the whole visit: the pages must work without it.

Each page is photographed into the test's tmp dir (and copied to /tmp/web-shots/, to be
looked at). Without Chromium these tests skip, except in CI (`CI=true`), where
`.ci/run` installs it and they must pass.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from ipledger.demo import CO_OWNED, PATENT
from tests.test_api import _child_env, _free_port
from tests.test_web import HUAWEI_SEALED, SEALED_RESERVE, ZTE_SEALED, Site, build_site

pytestmark = pytest.mark.slow  # a server process and a browser

SHOTS = Path("/tmp/web-shots")


def chromium() -> str:
    """The distribution's Chromium (never a downloaded one): skip without it, fail in CI."""
    path = shutil.which("chromium")
    missing = None
    if path is None:
        missing = "chromium is not installed (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "the playwright package is not installed (pip install -e '.[test]')"
    if missing is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests are required in CI: {missing}")
        pytest.skip(missing)
    assert path is not None
    return path


@contextmanager
def served(url: str) -> Iterator[str]:
    """A real `ipledger serve` on a free port of 127.0.0.1; its base URL once it answers."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", "from ipledger.cli import run; run()", "--db", url, "serve", "--port", str(port)],
        env=_child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not _answers(base):
            assert server.poll() is None and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        yield base
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.communicate()


def _answers(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return build_site(f"sqlite:///{tmp_path_factory.mktemp('browser')}/demo.db")


@pytest.fixture(scope="module")
def browser(site: Site) -> Iterator[tuple[Any, str]]:
    executable = chromium()
    from playwright.sync_api import sync_playwright

    with served(site.url) as base, sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable)
        try:
            yield launched, base
        finally:
            launched.close()


@pytest.fixture
def visit(browser: tuple[Any, str], tmp_path: Path) -> Iterator[Any]:
    """A fresh browser context (no cookies) with JavaScript off; `shot(name)` photographs the page."""
    launched, base = browser
    context = launched.new_context(base_url=base, java_script_enabled=False, viewport={"width": 1200, "height": 900})
    page = context.new_page()

    def shot(name: str) -> None:
        path = tmp_path / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        SHOTS.mkdir(exist_ok=True)
        shutil.copy(path, SHOTS / path.name)

    page.shot = shot
    yield page
    context.close()


def sign_in(page: Any, site: Site, actor: str, start: str = "/") -> None:
    page.goto(start)
    assert "/sign-in?next=" in page.url
    page.get_by_label("Token").fill(site.tokens[actor])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    assert page.get_by_text(f"Signed in as {actor}").is_visible()


def test_sign_in_keeps_the_token_in_an_httponly_strict_cookie(visit: Any, site: Site) -> None:
    visit.goto("/")
    visit.shot("sign-in")
    sign_in(visit, site, "huawei")
    (cookie,) = visit.context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and not cookie["secure"]
    visit.get_by_role("button", name="Sign out").click()
    visit.wait_for_load_state()
    assert visit.url.endswith("/sign-in") and visit.context.cookies() == []
    visit.goto("/audit")
    assert "/sign-in?next=%2Faudit" in visit.url


def test_dashboard_shows_open_listings_and_pending_trades(visit: Any, site: Site) -> None:
    sign_in(visit, site, "operator")
    visit.shot("dashboard")
    listings = visit.get_by_role("table", name="Listings taking bids, with their close times")
    assert listings.get_by_role("link", name="L-NEGOTIATED").is_visible()
    assert listings.get_by_role("link", name="L-AUCTION").count() == 0
    assert visit.get_by_text("Trades waiting for payment, with their settlement deadlines: none.").is_visible()
    listings.get_by_role("link", name="L-NEGOTIATED").click()  # links lead to their pages
    assert visit.get_by_role("heading", name="Listing L-NEGOTIATED").is_visible()
    visit.shot("listing-negotiated")


def test_a_listing_shows_its_book_and_a_chart_of_its_bids(visit: Any, site: Site) -> None:
    sign_in(visit, site, "zte", "/listings/L-AUCTION")
    assert visit.get_by_role("heading", name="Listing L-AUCTION").is_visible()
    chart = visit.get_by_role("img", name="Bids over time")
    assert chart.is_visible() and chart.locator("circle").count() >= 5
    box = chart.bounding_box()
    assert box["width"] > 500 and box["height"] > 150  # drawn, not collapsed
    assert visit.get_by_text("trade T-AUCTION: zte at 225000.00 CNY").is_visible()
    visit.shot("listing-auction")


def test_a_member_never_sees_another_members_sealed_bid(visit: Any, site: Site) -> None:
    sign_in(visit, site, "huawei", "/listings/L-SEALED")
    visit.shot("listing-sealed-as-huawei")
    body = visit.locator("body").inner_text()
    assert HUAWEI_SEALED in body and ZTE_SEALED not in body and "B-sealed-zte" not in body
    assert visit.get_by_text("other members' bids stay hidden until it closes").is_visible()
    visit.goto("/members/zte")
    assert ZTE_SEALED not in visit.content()


def test_a_member_is_told_of_a_reserve_and_only_the_seller_sees_its_amount(visit: Any, site: Site) -> None:
    sign_in(visit, site, "zte", "/listings/L-SEALED")
    visit.shot("listing-sealed-reserve-as-zte")
    facts = visit.locator("dl.facts")
    assert "Reserve\nset (amount hidden)" in facts.inner_text()
    assert SEALED_RESERVE not in visit.content()
    visit.goto("/")  # the latest events tell the opening, not the amount
    assert visit.get_by_text("with a reserve (amount hidden)").first.is_visible()
    assert SEALED_RESERVE not in visit.content()
    visit.get_by_role("button", name="Sign out").click()
    visit.wait_for_load_state()
    sign_in(visit, site, "cas-sippr", "/listings/L-SEALED")
    visit.shot("listing-sealed-reserve-as-seller")
    assert f"Reserve\n{SEALED_RESERVE} CNY" in visit.locator("dl.facts").inner_text()


def test_an_asset_page_answers_for_the_day_picked(visit: Any, site: Site) -> None:
    sign_in(visit, site, "operator", f"/assets/{CO_OWNED}")
    assert visit.get_by_role("img", name="Chain of title: effective against recorded").is_visible()
    enc = visit.get_by_role("img", name="Licences and pledges in force, by territory")
    assert enc.is_visible() and "LIC-CATALYST-1" in enc.inner_html() and "P-ICBC-1" in enc.inner_html()
    visit.shot("asset-co-owned")
    visit.get_by_label("As of (effective date)").fill("2020-01-01")
    visit.get_by_role("button", name="Show").click()
    visit.wait_for_load_state()
    assert "as_of=2020-01-01" in visit.url
    assert visit.get_by_role("heading", name="Owners as of 2020-01-01").is_visible()
    visit.shot("asset-as-of-2020")
    visit.goto(f"/assets/{PATENT}")
    visit.shot("asset-patent")


def test_bad_picker_input_is_a_page_naming_the_field(visit: Any, site: Site) -> None:
    sign_in(visit, site, "operator", f"/assets/{PATENT}")
    visit.get_by_label("Known at (recorded by)").fill("last tuesday")
    response_holder: list[Any] = []
    visit.on("response", lambda r: response_holder.append(r))
    visit.get_by_role("button", name="Show").click()
    visit.wait_for_load_state()
    assert response_holder[-1].status == 400
    assert visit.get_by_role("alert").inner_text().startswith("known_at: ")
    visit.shot("bad-picker")


def test_member_and_audit_pages(visit: Any, site: Site) -> None:
    from ipledger.ledger.checkpoints import Signer
    from ipledger.service import Ledger

    ledger = Ledger(site.url)
    try:
        signed = ledger.checkpoint(Signer.generate("exchange.example"))
    finally:
        ledger.close()
    sign_in(visit, site, "auditor", "/members/fudan-univ")
    assert visit.get_by_role("heading", name="Fudan University").is_visible()
    assert visit.get_by_role("table", name="Pledges on its holdings, in force").get_by_text("P-ICBC-1").is_visible()
    visit.shot("member-fudan")
    visit.goto("/members/icbc-sh")
    visit.shot("member-icbc")
    visit.get_by_role("link", name="Audit").click()
    assert visit.get_by_role("heading", name="Projection lag").is_visible()
    assert visit.get_by_role("table", name="Each read model's position").is_visible()
    assert visit.get_by_role("table", name="Signed tree heads").get_by_text(signed["root_hash"]).is_visible()
    visit.shot("audit")
