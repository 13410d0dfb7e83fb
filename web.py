"""The web view (api.md "The web view"): read-only pages for people in a browser, served
by the same app as the API and answering from the same service calls, as the signed-in
actor may see them (a member never sees another member's sealed bid, nor the amount of a
reserve not its own: the queries apply `domain.visibility`, this module never does).

Server-rendered HTML with inline SVG charts (`web_charts`) and one inline stylesheet:
it works without JavaScript, and the Content-Security-Policy forbids fetching anything
from another host.

Signing in: the browser posts a token's secret (`ipledger token issue`) once; it is kept
in an HttpOnly, SameSite=Strict cookie (Secure over https) and checked against the store
on every request (`Ledger.authenticate`), so a revoked or expired token stops working
at once and no server-side session can outlive it. `Authorization: Bearer` works for
the pages too. CSRF: every page is a GET that changes nothing; the only POSTs are
sign-in and sign-out, and SameSite=Strict keeps the cookie off any request another site
starts. Those two also refuse a request whose Origin (or Sec-Fetch-Site) says another
site sent it, so no site can sign a visitor in as someone else.

`mount(app, ledgers)` adds the pages to the API's app (`api.create_app` calls it).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import pass_context
from jinja2.runtime import Context
from starlette.concurrency import run_in_threadpool

from ipledger.api import Ledgers, _failure
from ipledger.describe import recorded_time, trail_rows
from ipledger.domain.errors import LedgerError, Unauthenticated
from ipledger.domain.values import Actor, parse_date, parse_time
from ipledger.service import Ledger
from ipledger.web_charts import bids_chart, encumbrance_chart, moment, title_chart
from ipledger.web_templates import environment

#: The cookie that holds the signed-in token's secret.
COOKIE = "ipledger_token"
#: Rows of each list the dashboard shows (the CLI and the API page through the rest).
DASHBOARD_ROWS = 50

#: Pages are built here and only from here: inline style and SVG, no script, no other host.
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # "no-referrer" would make a form post's Origin "null"
    "Cache-Control": "no-store",  # a page shows what one actor may see
}

Page = tuple[str, dict[str, Any]]


# --------------------------------------------------------------------------- rendering


def short_time(text: str | None) -> str:
    """`2026-03-02T09:00:00.123Z` as `2026-03-02 09:00 UTC`: the minute is what people read."""
    return recorded_time(text)[:16].replace("T", " ") + " UTC" if text else "—"


@pass_context
def until(context: Context, text: str) -> str:
    """How long until a close or deadline, from the ledger's now (`passed` once it is gone)."""
    seconds = int((moment(text) - moment(context["now"])).total_seconds())
    past, seconds = seconds < 0, abs(seconds)
    days, hours, minutes = seconds // 86400, seconds % 86400 // 3600, seconds % 3600 // 60
    span = f"{days} d {hours} h" if days else f"{hours} h {minutes} min" if hours else f"{minutes} min"
    return f"passed {span} ago" if past else f"in {span}"


TEMPLATES = environment({"short_time": short_time, "until": until, "u": lambda s: quote(str(s), safe="")})


def html(template: str, status: int = 200, headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
    context.setdefault("actor", None)
    context.setdefault("member_page", None)
    context.setdefault("now", datetime.now(UTC).isoformat())
    body = TEMPLATES.get_template(template).render(**context)
    return HTMLResponse(body, status_code=status, headers=HEADERS | (headers or {}))


def error_page(e: LedgerError, actor: str | None = None) -> HTMLResponse:
    """A refusal as one line naming the field and the rule, with the API's status for it
    (the API's own mapping of a failure, so a page and a problem document never differ)."""
    status, name, message, headers = _failure(e)
    return html("error", status, headers, name=name, message=message, actor=actor)


def _optional(params: dict[str, str], field: str, parse: Callable[[str, str], Any]) -> Any:
    """A picker field: empty (the browser sends `as_of=`) means "not given"."""
    value = params.get(field, "").strip()
    return parse(value, field) if value else None


# --------------------------------------------------------------------------- signing in


def _presented(request: Request) -> tuple[str | None, bool]:
    """The secret a request presents and whether it came in the cookie (a Bearer header wins)."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip(), False
    return request.cookies.get(COOKIE) or None, True


def _safe_next(target: str | None) -> str:
    """Only a path on this site: a sign-in link must not send anyone elsewhere."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


def _here(request: Request) -> str:
    """The page asked for, path and query, to come back to after signing in."""
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def _cross_site(request: Request) -> bool:
    """Whether the browser says another site sent this request (Sec-Fetch-Site, Origin)."""
    if request.headers.get("sec-fetch-site") == "cross-site":
        return True
    origin = request.headers.get("origin")
    return origin is not None and urlsplit(origin).netloc != request.headers.get("host")


def _sign_in_again(request: Request, message: str, status: int = 401) -> HTMLResponse:
    back = _here(request) if request.method == "GET" else None
    response = html("sign_in", status, next=_safe_next(back), message=message)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


# --------------------------------------------------------------------------- the pages


def mount(app: FastAPI, ledgers: Ledgers) -> None:
    """Add the sign-in and the read-only pages to `app` (left out of its OpenAPI: they are
    for people, the API is for programs)."""

    def page(request: Request, build: Callable[[Ledger, str], Page]) -> Response:
        secret, from_cookie = _presented(request)
        if secret is None:
            return RedirectResponse(f"/sign-in?next={quote(_here(request), safe='')}", status_code=303)
        with ledgers.use() as ledger:
            try:
                actor = ledger.authenticate(secret)
            except Unauthenticated as e:
                if from_cookie:
                    return _sign_in_again(request, f"{e.message}; sign in again")
                return error_page(e)
            try:
                template, context = build(ledger, actor)
            except LedgerError as e:
                return error_page(e, actor)
            now = ledger.now().isoformat()
        mine = f"/members/{quote(actor, safe='')}" if Actor.parse(actor).member_id else None
        return html(template, actor=actor, member_page=mine, now=now, **context)

    @app.get("/sign-in", include_in_schema=False)
    def sign_in_form(next: str | None = None) -> HTMLResponse:  # noqa: A002 - the query parameter's name
        return html("sign_in", next=_safe_next(next), message=None)

    @app.post("/sign-in", include_in_schema=False)
    async def sign_in(request: Request) -> Response:
        if _cross_site(request):
            return html("error", 403, name="NotAuthorised", message="origin: sign in from this site's own page")
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        secret, target = form.get("token", "").strip(), _safe_next(form.get("next"))

        def check() -> str | None:
            with ledgers.use() as ledger:
                try:
                    ledger.authenticate(secret)
                except Unauthenticated as e:
                    return e.message
            return None

        refused = await run_in_threadpool(check) if secret else "token: paste a token to sign in"
        if refused is not None:
            return html("sign_in", 401, next=target, message=refused)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, secret, httponly=True, samesite="strict", secure=request.url.scheme == "https",
                            path="/")  # fmt: skip
        return response

    @app.post("/sign-out", include_in_schema=False)
    def sign_out(request: Request) -> Response:
        if _cross_site(request):
            return html("error", 403, name="NotAuthorised", message="origin: sign out from this site's own page")
        response = RedirectResponse("/sign-in", status_code=303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response

    @app.get("/", include_in_schema=False)
    def dashboard(request: Request) -> Response:
        def build(ledger: Ledger, actor: str) -> Page:
            latest = ledger.latest(actor, limit=10)
            # Each list is its first rows: at a million events every asset made a 6.7 MB
            # page that took a second. One row more is read to say that there are more.
            n = DASHBOARD_ROWS + 1
            lists = {
                "listings": ledger.listings("open", viewer=actor, limit=n)["listings"],
                "trades": ledger.trades("pending", limit=n)["trades"],
                "assets": ledger.assets(limit=n)["assets"],
                "members": ledger.members(limit=n)["members"],
            }
            return "dashboard", {
                "rows": DASHBOARD_ROWS,
                **{name: items[:DASHBOARD_ROWS] for name, items in lists.items()},
                **{f"more_{name}": len(items) > DASHBOARD_ROWS for name, items in lists.items()},
                "digest": ledger.digest(),
                "latest": trail_rows(latest, ledger.trail_names(latest)),
            }

        return page(request, build)

    @app.get("/listings/{listing}", include_in_schema=False)
    def listing(request: Request, listing: str) -> Response:
        def build(ledger: Ledger, actor: str) -> Page:
            book = ledger.book(listing, actor)
            history = ledger.bid_history(listing, actor)["bids"]
            chart = bids_chart(history, currency=book["currency"], opens=book["opens"], ask=book["ask"])
            return "listing", {"book": book, "history": history, "chart": _markup(chart)}

        return page(request, build)

    @app.get("/assets/{ref:path}", include_in_schema=False)
    def asset(request: Request, ref: str) -> Response:
        def build(ledger: Ledger, actor: str) -> Page:
            params = dict(request.query_params)
            as_of: date | None = _optional(params, "as_of", parse_date)
            known_at: datetime | None = _optional(params, "known_at", parse_time)
            shown = ledger.asset(ref, actor)
            ref_ = shown["asset"]
            encumbrances = ledger.encumbrances(ref_, as_of, known_at)
            on = date.fromisoformat(encumbrances["as_of"])
            licences, pledges = encumbrances["licences"], encumbrances["pledges"]
            title = ledger.title(ref_)
            trail = ledger.trail(asset=ref_, viewer=actor)
            point = " ".join(
                [f"as of {as_of.isoformat()}" if as_of else "now"]
                + ([f"as known at {short_time(encumbrances['known_at'])}"] if known_at else [])
            )
            return "asset", {
                "asset": shown,
                "owner": ledger.owner(ref_, as_of, known_at),
                "title": title,
                "licences": licences,
                "pledges": pledges,
                "trail": trail_rows(trail, ledger.trail_names(trail)),
                "point": point,
                "as_of_text": as_of.isoformat() if as_of else "",
                "known_at_text": encumbrances["known_at"] or "",
                "title_chart": _markup(title_chart(title["conveyances"], as_of=as_of, known_at=known_at)),
                "encumbrance_chart": _markup(
                    encumbrance_chart(licences, pledges, as_of=on, expires_on=shown["expires_on"])
                ),
            }

        return page(request, build)

    @app.get("/members/{member}", include_in_schema=False)
    def member(request: Request, member: str) -> Response:
        def build(ledger: Ledger, actor: str) -> Page:
            shown = ledger.member(member, actor)
            pledged = [p for h in shown["holdings"] for p in ledger.pledges(asset=h["asset"])["pledges"]]
            return "member", {"member": shown, "pledged": pledged}

        return page(request, build)

    @app.get("/audit", include_in_schema=False)
    def audit(request: Request) -> Response:
        def build(ledger: Ledger, actor: str) -> Page:
            lag = ledger.projection_status()  # first: every other query catches the read models up
            held = ledger.checkpoints_held()
            return "audit", {
                "projections": lag,
                "digest": ledger.digest(),
                "checkpoints": held["checkpoints"],
                "tree_size": held["size"],
            }

        return page(request, build)


def _markup(svg: str) -> Any:
    """A chart as markup (web_charts escaped every text it drew)."""
    from markupsafe import Markup

    return Markup(svg)  # noqa: S704 - built from escaped parts by web_charts
