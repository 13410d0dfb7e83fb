"""`ipledger serve`: the HTTP API over the ledger (contract: shared/spec/api.md).

A front door beside the CLI, through the same service (`ipledger.service.Ledger`):
commands are the import format's lines (`POST /v1/commands/bid.place` with the line's
`args`), queries the CLI's queries with its option names, answers the CLI's `--json`
documents, errors the CLI's names as RFC 9457 problem documents. Nothing is written
twice: `Ledger.execute` is the one write path.

The actor is always the bearer token's (`Ledger.authenticate`, which reads the token
from the store on every request, so a revocation by any process holds at once); no
field, header or clock override lets a client act for anyone else. Workers keep no
state that matters: each server thread keeps a `Ledger` open on the store (the
aggregate cache it holds is only trusted while the log head is where it left it), so
several processes, on one machine or many, serve one PostgreSQL store.

FastAPI and uvicorn are imported here only: the CLI loads this module for `serve`, and
its other commands start as fast as before.
"""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from datetime import date, datetime
from enum import Enum
from typing import Any

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ipledger.domain.errors import InvalidInput, LedgerError, NotAuthorised, NotFound, StoreUnavailable, Unauthenticated
from ipledger.domain.status import NO_BIDS, RESERVE_NOT_MET
from ipledger.domain.values import parse_date, parse_time
from ipledger.domain.visibility import HIDDEN
from ipledger.failures import describe_failure, one_line
from ipledger.ledger import commands as c
from ipledger.ledger.importer import json_object
from ipledger.service import Ledger

#: Bodies over this are refused (413) before they are read to the end.
BODY_LIMIT = 1 << 20
PROBLEM = "application/problem+json"
PROBLEM_TYPE = "https://ipledger.example/problems/"

#: The commands a client may send: every writing command but `token.issue`, whose secret
#: is made and shown where the operator runs it (`ipledger token issue`).
NOT_OVER_HTTP = {"token.issue"}


# --------------------------------------------------------------------------- errors


class BodyTooLarge(Exception):
    """A request body over BODY_LIMIT."""


def problem(status: int, name: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(problem_doc(status, name, detail), status_code=status, media_type=PROBLEM, headers=headers)


def problem_doc(status: int, name: str, detail: str) -> dict[str, Any]:
    """An RFC 9457 problem document: the contract's error name as `title` (and in `type`)."""
    body: dict[str, Any] = {"type": PROBLEM_TYPE + name, "title": name, "status": status, "detail": detail}
    if name == "InvalidInput":
        field, sep, _ = detail.partition(": ")
        if sep and " " not in field:
            body["field"] = field
    return body


def status_of(name: str, exit_code: int) -> tuple[int, dict[str, str]]:
    """api.md "Errors": the HTTP status of an error, by its name and the CLI's exit code."""
    if name == "Unauthenticated":
        return 401, {"WWW-Authenticate": 'Bearer realm="ipledger"'}
    if name == "NotAuthorised":
        return 403, {}
    if name == "NotFound":
        return 404, {}
    if name == "InternalError":
        return 500, {}
    return {
        2: (400, {}),  # InvalidInput
        3: (409, {"Retry-After": "1"}),  # ConcurrentWrite: safe to retry with the same Idempotency-Key
        4: (500, {}),  # IntegrityError: the log failed verification, nothing the client sent
        5: (503, {"Retry-After": "5"}),  # StoreUnavailable
    }.get(exit_code, (409, {}))  # every other rule's rejection


def error_problem(e: Exception) -> JSONResponse:
    status, name, detail, headers = _failure(e)
    return problem(status, name, detail, headers)


def _failure(e: Exception) -> tuple[int, str, str, dict[str, str]]:
    """A failure's status, error name, one-line detail and headers."""
    name, message, code = describe_failure(e)
    status, headers = status_of(name, code)
    if status == 500 and name == "InternalError":
        message = "the server failed on this request; nothing was recorded unless it said so"
    return status, name, one_line(message), headers


def _problem_doc(e: Exception) -> dict[str, Any]:
    """The problem document of a failure, where no status line can carry it (a stream)."""
    status, name, detail, _ = _failure(e)
    return problem_doc(status, name, detail)


# --------------------------------------------------------------------------- the body limit


class BodyLimit:
    """Refuse bodies over the limit (413): by Content-Length at once, and as a chunked body
    is read, so no request makes the server hold more than the limit."""

    def __init__(self, app: ASGIApp, limit: int = BODY_LIMIT) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            response = problem(413, "PayloadTooLarge", f"body: more than {self.limit} bytes")
            await response(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge
            return message

        await self.app(scope, limited, send)


# --------------------------------------------------------------------------- ledgers per thread


#: Request threads per worker process (each keeps a Ledger and its store connections).
THREADS = 8


class Ledgers:
    """`Ledger`s for requests: each request works on one, with its connections and
    aggregate cache, and gives it back for the next. A free list, not one per thread: the
    server's worker threads come and go (anyio retires a thread idle for 10 s), and a
    retired thread's ledger kept its connections open, so a server with bursts of
    requests ran PostgreSQL out of connections. A store failure closes the ledger that
    met it, so the next request opens the store afresh."""

    def __init__(self, url: str, pinned_now: str | None) -> None:
        self.url, self.pinned_now = url, pinned_now
        self.free: list[Ledger] = []
        self.opened: list[Ledger] = []
        self.lock = threading.Lock()

    @contextmanager
    def use(self) -> Iterator[Ledger]:
        with self.lock:
            ledger = self.free.pop() if self.free else None
        if ledger is None:
            ledger = Ledger(self.url, pinned_now=self.pinned_now)
            with self.lock:
                self.opened.append(ledger)
        try:
            yield ledger
        except LedgerError as e:
            if isinstance(e, StoreUnavailable):
                self._drop(ledger)
            else:
                self._give_back(ledger)
            raise
        except BaseException:
            self._drop(ledger)
            raise
        self._give_back(ledger)

    def _give_back(self, ledger: Ledger) -> None:
        with self.lock:
            if ledger in self.opened:
                self.free.append(ledger)

    def _drop(self, ledger: Ledger) -> None:
        with self.lock:
            if ledger in self.opened:
                self.opened.remove(ledger)
        with suppress(Exception):
            ledger.close()

    def close(self) -> None:
        with self.lock:
            opened, self.opened, self.free = self.opened, [], []
        for ledger in opened:
            with suppress(Exception):  # connections made on other threads; the process is ending
                ledger.close()


# --------------------------------------------------------------------------- parameters


bearer = HTTPBearer(auto_error=False, description="A token's secret, from `ipledger token issue ACTOR`.")


def secret_of(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> str:
    if credentials is None:
        raise Unauthenticated("Authorization: send 'Authorization: Bearer <token>' (ipledger token issue)")
    return credentials.credentials


def _date(value: str | None, field: str) -> date | None:
    return None if value is None else parse_date(value, field)


def _time(value: str | None, field: str) -> datetime | None:
    return None if value is None else parse_time(value, field)


AS_OF = Query(None, description="Effective date, YYYY-MM-DD (default: today).")
KNOWN_AT = Query(None, description="Only what was recorded by this time (ISO 8601).")
LIMIT = Query(None, ge=1, le=1_000_000, description="At most this many items (default: all).")
AFTER = Query(0, ge=0, le=2**62, description="Only events after this log position (a page's `next`).")


# --------------------------------------------------------------------------- cursor pagination


CURSOR = Query(None, max_length=512, description="Where the page starts: the `next` of the page before (opaque).")


def _sortable_time(text: str) -> str:
    """A recorded time as written (`…:00Z` or `…:00.500000Z`) made to sort as the time does."""
    return text if "." in text else text[:-1] + ".000000Z"


def _first(after: tuple[Any, ...] | None) -> Any:
    """A key's first part: the one a list keyed by it (an id, a ref, an asset) starts after."""
    return None if after is None else after[0]


def _timed(after: tuple[Any, ...] | None) -> tuple[datetime, str] | None:
    """A (recorded time as `_sortable_time` wrote it, id) key as the list's query takes it."""
    if after is None:
        return None
    try:
        at = datetime.strptime(after[0], "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        raise InvalidInput("cursor: not a cursor this API gave out (pass a page's `next` as it came)") from None
    return at, after[1]


def _ranked(items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Pledges and licences list by asset, then in the asset's own order (rank, grant)."""
    seen: dict[str, int] = {}
    keys = []
    for item in items:
        seen[item["asset"]] = seen.get(item["asset"], -1) + 1
        keys.append((item["asset"], seen[item["asset"]]))
    return keys


#: Each paged list: where its items are, the types of an item's key, and each item's key
#: in the list's own order (the query's order, so a page is what follows the last key).
PAGED: dict[str, tuple[str, tuple[type, ...], Callable[[list[dict[str, Any]]], list[tuple[Any, ...]]]]] = {
    "members": ("members", (str,), lambda items: [(i["member"],) for i in items]),
    "assets": ("assets", (str,), lambda items: [(i["asset"],) for i in items]),
    "listings": ("listings", (str, str), lambda items: [(_sortable_time(i["opens"]), i["listing"]) for i in items]),
    "trades": ("trades", (str, str), lambda items: [(_sortable_time(i["struck"]), i["trade"]) for i in items]),
    "pledges": ("pledges", (str, int), _ranked),
    "licences": ("licences", (str, int), _ranked),
}


class Pager:
    """One page of a list: `limit` items after the `cursor`, and `next`, the cursor of the
    page after (None at the end). A cursor names the list, its filters and the last key
    shown, so a page starts after that key even if items were added before it; it is
    base64url JSON, opaque to clients, checked (not trusted) when it comes back."""

    def __init__(self, name: str, cursor: str | None, limit: int | None, **filters: Any) -> None:
        import hashlib

        self.name, self.cursor, self.limit = name, cursor, limit
        self.filters = hashlib.sha256(repr(sorted(filters.items())).encode()).hexdigest()[:12]

    def page(self, read: Callable[[int | None, tuple[Any, ...] | None], dict[str, Any]]) -> dict[str, Any]:
        """`read(n, after)`: the list as the CLI answers it, at most n items (all for None),
        from the item after the key `after` (None: from the start). One item more than the
        page is read, to know if there is a next.

        A list keyed by one item's own fields starts after the key in SQL. Pledges and
        licences are keyed by asset and place within it: the list starts at the key's
        asset, the items of it already shown are read again and skipped here."""
        field, _, keys_of = PAGED[self.name]
        after = self._after()
        ranked = keys_of is _ranked
        n = None if self.limit is None else self.limit + 1
        if ranked and after is not None and n is not None:
            n += max(after[1], 0) + 1  # a forged negative place reads no less than a page
        doc = read(n, after)
        pairs = list(zip(doc[field], keys_of(doc[field]), strict=True))
        if ranked and after is not None:
            pairs = [(item, key) for item, key in pairs if key > after]
        shown = pairs if self.limit is None else pairs[: self.limit]
        more = self.limit is not None and len(pairs) > self.limit
        return {**doc, field: [item for item, _ in shown], "next": self._encode(shown[-1][1]) if more else None}

    def _encode(self, key: tuple[Any, ...]) -> str:
        import base64

        import orjson

        raw = orjson.dumps({"list": self.name, "filters": self.filters, "after": list(key)})
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def _after(self) -> tuple[Any, ...] | None:
        import base64
        import binascii

        import orjson

        if self.cursor is None:
            return None
        try:
            doc = orjson.loads(base64.urlsafe_b64decode(self.cursor + "=" * (-len(self.cursor) % 4)))
        except (binascii.Error, ValueError, orjson.JSONDecodeError):
            doc = None
        if not isinstance(doc, dict):
            doc = {}
        after, shape = doc.get("after"), PAGED[self.name][1]
        if not isinstance(after, list) or [type(v) for v in after] != list(shape):
            raise InvalidInput("cursor: not a cursor this API gave out (pass a page's `next` as it came)")
        if doc.get("list") != self.name or doc.get("filters") != self.filters:
            raise InvalidInput(f"cursor: it pages another list or other filters, not this {self.name} query")
        return tuple(after)


# --------------------------------------------------------------------------- the app


def create_app(db: str | None = None, *, pinned_now: str | None = None) -> FastAPI:
    """The API over the store `db` (IPLEDGER_DB when not given). `pinned_now`: the server's
    pinned clock, as IPLEDGER_NOW pins a script's; a client never sets the clock."""
    from ipledger.lazy import load_all
    from ipledger.ledger.config import store_url

    load_all()  # request threads share the modules: none may be left to load lazily
    ledgers = Ledgers(store_url(db or os.environ.get("IPLEDGER_DB")), pinned_now)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Each request thread keeps one Ledger (its own connections): bound the threads, so
        # a worker holds at most THREADS ledgers' connections, not anyio's default 40.
        import anyio.to_thread

        anyio.to_thread.current_default_thread_limiter().total_tokens = THREADS
        yield
        ledgers.close()

    app = FastAPI(
        title="ipledger",
        version="1",
        summary="An event-sourced ledger for IP trading: the CLI's commands and queries over HTTP.",
        description="Commands are the import format's lines: `POST /v1/commands/{command}` with the line's `args` "
        "as the body. Queries take the CLI's option names. Every `/v1` route needs `Authorization: Bearer <token>`; "
        "the actor is the token's. Errors are RFC 9457 problem documents titled with the CLI's error names.",
        lifespan=lifespan,
    )
    app.state.ledgers = ledgers
    app.add_middleware(BodyLimit)
    _add_error_handlers(app)

    def answer(secret: str, read: Callable[[Ledger, str], dict[str, Any]]) -> dict[str, Any]:
        """Authenticate, then answer as the token's actor (on this thread's ledger)."""
        with ledgers.use() as ledger:
            return read(ledger, ledger.authenticate(secret))

    _add_health(app, ledgers)
    _add_commands(app, ledgers)
    _add_queries(app, answer)
    _add_events(app, ledgers)
    from ipledger import web  # the read-only pages for people, beside the API (web.py)

    web.mount(app, ledgers)
    schemas = {name: _command_schema(c.Command.named(name)) for name in http_commands()}
    _document(app, schemas)
    return app


def from_environment() -> FastAPI:
    """The app each uvicorn worker process builds (`--workers N`): the store and the server's
    pinned clock from the environment, as `ipledger serve` left them."""
    return create_app(os.environ.get("IPLEDGER_DB"), pinned_now=os.environ.get("IPLEDGER_NOW") or None)


def http_commands() -> list[str]:
    return [name for name in c.Command.names() if name not in NOT_OVER_HTTP]


def _add_error_handlers(app: FastAPI) -> None:
    async def ledger_error(_request: Request, e: Exception) -> JSONResponse:
        return error_problem(e)

    async def too_large(_request: Request, _e: Exception) -> JSONResponse:
        return problem(413, "PayloadTooLarge", f"body: more than {BODY_LIMIT} bytes")

    async def invalid(_request: Request, e: Exception) -> JSONResponse:
        assert isinstance(e, RequestValidationError)
        err = e.errors()[0]
        loc = [str(p) for p in err.get("loc", ()) if p not in ("query", "path", "header", "body")]
        return problem(400, "InvalidInput", f"{'.'.join(loc) or 'request'}: {err.get('msg', 'invalid')}")

    async def http_error(_request: Request, e: Exception) -> JSONResponse:
        assert isinstance(e, StarletteHTTPException)
        if e.status_code == 404:
            return problem(404, "NotFound", "path: no such route (see /docs)")
        if e.status_code == 405:
            return problem(405, "MethodNotAllowed", f"method: not allowed here ({e.detail})", dict(e.headers or {}))
        return problem(e.status_code, "HTTPError", str(e.detail), dict(e.headers or {}))

    app.add_exception_handler(LedgerError, ledger_error)
    app.add_exception_handler(BodyTooLarge, too_large)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, ledger_error)  # store failures 503; anything else 500, never a traceback


#: Readiness fails while a projection is more than this many events behind the log (unset: no bound).
READY_MAX_LAG = "IPLEDGER_READY_MAX_LAG"


def _lag_bound() -> int | None:
    value = os.environ.get(READY_MAX_LAG) or None
    if value is not None and not (value.isascii() and value.isdigit()):
        raise ValueError(f"{READY_MAX_LAG}: {value!r} is not a number of events (0 or more)")
    return None if value is None else int(value)


def _add_health(app: FastAPI, ledgers: Ledgers) -> None:
    @app.get("/healthz", tags=["health"], summary="Liveness: the process answers.")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    bound = _lag_bound()

    @app.get(
        "/readyz",
        tags=["health"],
        summary="Readiness: the store answers, its schema is current, the read models are near the head.",
        description=f"503 while a projection is more events behind the log than {READY_MAX_LAG} (when set).",
    )
    def readyz() -> Any:
        from sqlalchemy import func, select

        from ipledger.ledger.schema import HEAD, revision
        from ipledger.projections.tables import PROJECTION_TABLES, events_view, tracking_table

        with ledgers.use() as ledger:
            try:
                with ledger.exchange.engine.connect() as conn:
                    schema = revision(conn)
                    head = conn.execute(select(func.max(events_view.c.id))).scalar() or 0
                    positions = dict(conn.execute(select(tracking_table.c.name, tracking_table.c.position)).all())
            except Exception as e:  # noqa: BLE001 - any failure to read the store is "not ready"
                raise StoreUnavailable(f"db: the store could not be read ({type(e).__name__})") from None
        if schema != HEAD:
            raise StoreUnavailable(f"db: the schema is at {schema}, the code needs {HEAD}; run 'ipledger init'")
        # A read model never built yet is as far behind as the log is long.
        behind = {name: head - int(positions.get(name, 0)) for name in sorted(PROJECTION_TABLES)}
        ready = {"status": "ready", "schema": schema, "head": head, "projections_behind": behind}
        lag = max(behind.values(), default=0)
        if bound is not None and lag > bound:
            detail = f"projections: {lag} events behind the log head {head}, more than {READY_MAX_LAG}={bound}"
            doc = problem_doc(503, "NotReady", detail) | ready | {"status": "lagging", "max_lag": bound}
            return JSONResponse(doc, status_code=503, media_type=PROBLEM, headers={"Retry-After": "5"})
        return ready


def _add_commands(app: FastAPI, ledgers: Ledgers) -> None:
    def run(name: str, secret: str, body: bytes, key: str | None) -> JSONResponse:
        with ledgers.use() as ledger:
            actor = ledger.authenticate(secret)  # routes exist only for http_commands()
            args = json_object(body.strip() or b"{}", "a command's args", "body: the args are one JSON object")
            outcome, repeat = ledger.submit(name, args, actor=actor, command_id=key)
        return JSONResponse(outcome, status_code=200 if repeat else 201)

    def route(name: str) -> Callable[..., Awaitable[JSONResponse]]:
        async def command(
            request: Request,
            secret: str = Depends(secret_of),
            idempotency_key: str | None = Header(
                None, alias="Idempotency-Key", description="The command id: a repeat returns the first outcome (200)."
            ),
        ) -> JSONResponse:
            body = await request.body()
            return await run_in_threadpool(run, name, secret, body, idempotency_key)

        return command

    for name in http_commands():
        cls = c.Command.named(name)
        app.add_api_route(
            f"/v1/commands/{name}",
            route(name),
            methods=["POST"],
            status_code=201,
            tags=["commands"],
            summary=f"{name} (as `ipledger {name.replace('.', ' ')}`)",
            description=(cls.__doc__ or "").strip() or None,
            name=name,
            openapi_extra={
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{_schema_name(name)}"}}},
                },
                "responses": {
                    "200": {"description": "A repeat of a recorded command (same Idempotency-Key): its first outcome."},
                    "201": {"description": "Recorded: the outcome, as `--json` prints it."},
                },
            },
        )

    async def unknown(command: str, request: Request, secret: str = Depends(secret_of)) -> JSONResponse:
        def refuse() -> JSONResponse:
            with ledgers.use() as ledger:
                ledger.authenticate(secret)
            if command in NOT_OVER_HTTP:
                raise NotAuthorised(f"command: {command} runs on the server ('ipledger {command.replace('.', ' ')}')")
            raise NotFound(f"command: {command!r} is not a writing command ({', '.join(http_commands())})")

        return await run_in_threadpool(refuse)

    app.add_api_route("/v1/commands/{command}", unknown, methods=["POST"], include_in_schema=False)


Answer = Callable[[str, Callable[[Ledger, str], dict[str, Any]]], dict[str, Any]]

#: How a listing's reserve reads (domain/visibility.py `reserve_shown`), wherever one is shown.
RESERVE_SHOWN = (
    "A listing's `reserve` is the amount for the operator, auditors and the listing's sellers; for anyone else "
    'it is `"hidden"` when there is one (that much is told) and null when there is none, before and after the close.'
)


def _add_queries(app: FastAPI, answer: Answer) -> None:
    """The CLI's queries (cli.md "Queries" and "Lists for people") with its option names."""
    tags: list[str | Enum] = ["queries"]

    @app.get("/v1/whoami", tags=tags, summary="The actor this token acts as.")
    def whoami(secret: str = Depends(secret_of)) -> dict[str, Any]:
        return answer(secret, lambda _ledger, actor: {"actor": actor})

    @app.get("/v1/owner", tags=tags, summary="Who owns an asset (as `ipledger owner`).")
    def owner(ref: str, as_of: str | None = AS_OF, known_at: str | None = KNOWN_AT,
              secret: str = Depends(secret_of)) -> dict[str, Any]:  # fmt: skip
        return answer(secret, lambda ledger, _: ledger.owner(ref, _date(as_of, "as_of"), _time(known_at, "known_at")))

    @app.get("/v1/title", tags=tags, summary="Chain of title (as `ipledger title`).")
    def title(ref: str, secret: str = Depends(secret_of)) -> dict[str, Any]:
        return answer(secret, lambda ledger, _: ledger.title(ref))

    @app.get("/v1/encumbrances", tags=tags, summary="Licences and pledges in force (as `ipledger encumbrances`).")
    def encumbrances(ref: str, as_of: str | None = AS_OF, known_at: str | None = KNOWN_AT,
                     secret: str = Depends(secret_of)) -> dict[str, Any]:  # fmt: skip
        return answer(
            secret, lambda ledger, _: ledger.encumbrances(ref, _date(as_of, "as_of"), _time(known_at, "known_at"))
        )

    @app.get("/v1/book/{listing}", tags=tags, summary="A listing's order book, sealed bids as the actor may see them.",
             description="As `ipledger book --json`. " + RESERVE_SHOWN)  # fmt: skip
    def book(listing: str, secret: str = Depends(secret_of)) -> dict[str, Any]:
        return answer(secret, lambda ledger, actor: ledger.book(listing, actor))

    @app.get("/v1/listings", tags=tags, summary="Listings (as `ipledger listings`).",
             description="Each listing as `ipledger listings --json` shows it. " + RESERVE_SHOWN)  # fmt: skip
    def listings(status: str | None = None, asset: str | None = None, member: str | None = None,
                 limit: int | None = LIMIT, cursor: str | None = CURSOR,
                 secret: str = Depends(secret_of)) -> dict[str, Any]:  # fmt: skip
        pager = Pager("listings", cursor, limit, status=status, asset=asset, member=member)
        return answer(secret, lambda ledger, actor: pager.page(
            lambda n, after: ledger.listings(status, asset, member, actor, n, _timed(after))))  # fmt: skip

    @app.get("/v1/holdings/{member}", tags=tags, summary="What a member owns (as `ipledger holdings`).")
    def holdings(member: str, as_of: str | None = AS_OF, known_at: str | None = KNOWN_AT,
                 secret: str = Depends(secret_of)) -> dict[str, Any]:  # fmt: skip
        return answer(
            secret, lambda ledger, _: ledger.holdings(member, _date(as_of, "as_of"), _time(known_at, "known_at"))
        )

    @app.get("/v1/trail", tags=tags, summary="Every event touching an asset or a member (as `ipledger trail`).",
             description="A sealed listing's bids are left out for members other than the bidder while it is open; "
             "a `Listing.Opened` event's `reserve` reads as a listing's does. " + RESERVE_SHOWN)  # fmt: skip
    def trail(asset: str | None = None, member: str | None = None, after: int = AFTER, limit: int | None = LIMIT,
              secret: str = Depends(secret_of)) -> dict[str, Any]:  # fmt: skip
        return answer(secret, lambda ledger, actor: ledger.trail(asset, member, actor, after, limit))

    @app.get("/v1/members", tags=tags, summary="Members (as `ipledger members`).")
    def members(kind: str | None = None, status: str | None = None, limit: int | None = LIMIT,
                cursor: str | None = CURSOR, secret: str = Depends(secret_of)) -> dict[str, Any]:  # fmt: skip
        pager = Pager("members", cursor, limit, kind=kind, status=status)
        return answer(secret, lambda ledger, _: pager.page(
            lambda n, after: ledger.members(kind, status, n, _first(after))))  # fmt: skip

    @app.get("/v1/members/{member}", tags=tags, summary="Everything about a member (as `ipledger member show`).",
             description="Its live bids and open listings as the actor may see them. " + RESERVE_SHOWN)  # fmt: skip
    def member_show(member: str, secret: str = Depends(secret_of)) -> dict[str, Any]:
        return answer(secret, lambda ledger, actor: ledger.member(member, actor))

    @app.get("/v1/assets", tags=tags, summary="Assets (as `ipledger assets`).")
    def assets(owner: str | None = None, jurisdiction: str | None = None, kind: str | None = None,
               limit: int | None = LIMIT, cursor: str | None = CURSOR,
               secret: str = Depends(secret_of)) -> dict[str, Any]:  # fmt: skip
        pager = Pager("assets", cursor, limit, owner=owner, jurisdiction=jurisdiction, kind=kind)
        return answer(secret, lambda ledger, _: pager.page(
            lambda n, after: ledger.assets(owner, jurisdiction, kind, n, _first(after))))  # fmt: skip

    @app.get("/v1/assets/{ref:path}", tags=tags, summary="Everything about an asset (as `ipledger asset show`).",
             description="Its open listings as `/v1/listings` shows them to the actor. " + RESERVE_SHOWN)  # fmt: skip
    def asset_show(ref: str, secret: str = Depends(secret_of)) -> dict[str, Any]:
        return answer(secret, lambda ledger, actor: ledger.asset(ref, actor))

    @app.get("/v1/trades", tags=tags, summary="Trades (as `ipledger trades`).")
    def trades(status: str | None = None, member: str | None = None, limit: int | None = LIMIT,
               cursor: str | None = CURSOR, secret: str = Depends(secret_of)) -> dict[str, Any]:  # fmt: skip
        pager = Pager("trades", cursor, limit, status=status, member=member)
        return answer(secret, lambda ledger, _: pager.page(
            lambda n, after: ledger.trades(status, member, n, _timed(after))))  # fmt: skip

    @app.get("/v1/trades/{trade}", tags=tags, summary="Everything about a trade (as `ipledger trade show`).")
    def trade_show(trade: str, secret: str = Depends(secret_of)) -> dict[str, Any]:
        return answer(secret, lambda ledger, _: ledger.trade(trade))

    @app.get("/v1/pledges", tags=tags, summary="Pledges in force (as `ipledger pledges`).")
    def pledges(asset: str | None = None, pledgee: str | None = None, as_of: str | None = AS_OF,
                limit: int | None = LIMIT, cursor: str | None = CURSOR,
                secret: str = Depends(secret_of)) -> dict[str, Any]:  # fmt: skip
        pager = Pager("pledges", cursor, limit, asset=asset, pledgee=pledgee, as_of=as_of)
        return answer(secret, lambda ledger, _: pager.page(
            lambda n, after: ledger.pledges(asset, pledgee, _date(as_of, "as_of"), n, _first(after))))  # fmt: skip

    @app.get("/v1/licences", tags=tags, summary="Licences in force (as `ipledger licences`).")
    def licences(asset: str | None = None, licensee: str | None = None, as_of: str | None = AS_OF,
                 limit: int | None = LIMIT, cursor: str | None = CURSOR,
                 secret: str = Depends(secret_of)) -> dict[str, Any]:  # fmt: skip
        pager = Pager("licences", cursor, limit, asset=asset, licensee=licensee, as_of=as_of)
        return answer(secret, lambda ledger, _: pager.page(
            lambda n, after: ledger.licences(asset, licensee, _date(as_of, "as_of"), n, _first(after))))  # fmt: skip

    @app.get("/v1/audit/digest", tags=tags, summary="The log head's position and hash (as `ipledger audit digest`).")
    def digest(secret: str = Depends(secret_of)) -> dict[str, Any]:
        return answer(secret, lambda ledger, _: ledger.digest())


# --------------------------------------------------------------------------- the event stream


#: How often a following stream looks for new events (and re-reads the token), and how
#: long it may stay silent before a keep-alive comment (proxies close idle connections).
POLL_SECONDS = 0.5
KEEPALIVE_SECONDS = 15.0
#: Stored events read per poll.
EVENTS_PAGE = 500


#: One event of the stream, as a client's SSE parser hands it over (`data`: a JSON document).
SSE_EVENT = {
    "type": "object",
    "properties": {"id": {"type": "string"}, "event": {"type": "string"}, "data": {"type": "string"}},
    "required": ["data"],
}


def sse(doc: dict[str, Any], event: str | None = None, id: int | None = None) -> bytes:
    """One Server-Sent Event: `data` is one line of JSON (orjson never writes a newline)."""
    import orjson

    head = (f"id: {id}\n" if id is not None else "") + (f"event: {event}\n" if event else "")
    return head.encode() + b"data: " + orjson.dumps(doc) + b"\n\n"


def _add_events(app: FastAPI, ledgers: Ledgers) -> None:
    def page(secret: str, after: int) -> dict[str, Any]:
        """One poll: the token read again (a revocation ends the stream), then the events."""
        with ledgers.use() as ledger:
            actor = ledger.authenticate(secret)
            return ledger.events(after, actor, EVENTS_PAGE)

    async def stream(secret: str, after: int, follow: bool) -> AsyncIterator[bytes]:
        import anyio

        quiet = 0.0
        while True:
            try:
                found = await run_in_threadpool(page, secret, after)
            except Exception as e:  # noqa: BLE001 - the status line is sent: the end is told as an event
                yield sse(_problem_doc(e), event="error")
                return
            for doc in found["events"]:
                yield sse(doc, event=doc["type"], id=doc["position"])
            moved, after = found["last"] > after, found["last"]
            if moved:
                quiet = 0.0
                continue
            if not follow:
                return
            await anyio.sleep(POLL_SECONDS)
            quiet += POLL_SECONDS
            if quiet >= KEEPALIVE_SECONDS:
                quiet = 0.0
                yield b": keep-alive\n\n"

    @app.get(
        "/v1/events",
        tags=["queries"],
        summary="The log as Server-Sent Events, as the actor may see it.",
        description="Each event after position `after` (or the `Last-Event-ID` a reconnecting client sends) as "
        "`id: POSITION`, `event: TYPE`, `data:` the event as `ipledger trail --json` shows it. A sealed listing's "
        "bids are left out for members other than the bidder while it is open; a `Listing.Opened` event's `reserve` "
        "reads as a listing's does (" + RESERVE_SHOWN + ") With `follow` (the default) the "
        "stream waits for new events, with a keep-alive comment when quiet, and re-reads the token at every poll: "
        "a revoked token ends it with an `error` event. `follow=false` ends at the log head.",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {"schema": SSE_EVENT}}}},
    )
    async def events(
        after: int = Query(0, ge=0, le=2**62, description="Start after this log position (0: from the start)."),
        follow: bool = Query(True, description="Wait for new events (true) or end at the log head (false)."),
        last_event_id: str | None = Header(None, alias="Last-Event-ID", description="Resume after this event id."),
        secret: str = Depends(secret_of),
    ) -> StreamingResponse:
        if last_event_id is not None:
            if not (last_event_id.isascii() and last_event_id.isdigit() and len(last_event_id) <= 18):
                raise InvalidInput(f"Last-Event-ID: {last_event_id[:40]!r} is not an event id (a log position)")
            after = int(last_event_id)
        first = await run_in_threadpool(page, secret, after)  # a bad token is a 401 before the stream starts

        async def body() -> AsyncIterator[bytes]:
            for doc in first["events"]:
                yield sse(doc, event=doc["type"], id=doc["position"])
            if first["last"] > after or follow:
                async for chunk in stream(secret, first["last"], follow):
                    yield chunk

        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(body(), media_type="text/event-stream", headers=headers)


# --------------------------------------------------------------------------- OpenAPI


def _schema_name(command: str) -> str:
    return "".join(part.capitalize() for part in command.replace("_", ".").split(".")) + "Args"


def _command_schema(cls: type[c.Command]) -> dict[str, Any]:
    """A command's args as the same pydantic model validates them (its `$defs` lifted out)."""
    return cls.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")


def _document(app: FastAPI, schemas: dict[str, dict[str, Any]]) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title, version=app.version, summary=app.summary, description=app.description,
                routes=app.routes,
            )  # fmt: skip
            components = doc.setdefault("components", {}).setdefault("schemas", {})
            for name, schema in schemas.items():
                schema = dict(schema)
                components.update(schema.pop("$defs", {}))
                components[_schema_name(name)] = schema
            _document_answers(doc)
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


PROBLEM_SCHEMA = {
    "type": "object",
    "title": "Problem",
    "description": "RFC 9457: `title` is the CLI's error name; `field` names the input at fault (InvalidInput).",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "field": {"type": "string"},
    },
}

#: A listing as `listings` and `book` answer it; only what visibility shapes is spelled out
#: (the other fields are cli.md's): the reserve is an amount, "hidden" or null.
LISTING_SCHEMA = {
    "type": "object",
    "title": "Listing",
    "required": ["listing", "reserve"],
    "properties": {
        "listing": {"type": "string"},
        "reserve": {
            "anyOf": [
                {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"},
                {"type": "string", "enum": [HIDDEN]},
                {"type": "null"},
            ],
            "description": RESERVE_SHOWN,
        },
        "unsold_reason": {
            "anyOf": [{"type": "string", "enum": [RESERVE_NOT_MET, NO_BIDS]}, {"type": "null"}],
            "description": "Why an auction ended unsold (its best bid missed the reserve, or it had no bids); "
            "null for any other listing, and for one that ended before this was recorded.",
        },
    },
}
#: The items of a paged list whose shape is spelled out.
ITEMS: dict[str, dict[str, Any]] = {"listings": {"$ref": "#/components/schemas/Listing"}}
BOOK_SCHEMA = {
    "title": "Book",
    "allOf": [{"$ref": "#/components/schemas/Listing"}],
    "type": "object",
    "required": ["sealed_hidden", "bids"],
    "properties": {"sealed_hidden": {"type": "boolean"}, "bids": {"type": "array", "items": {"type": "object"}}},
}

#: What each failure status means here (api.md "Errors").
FAILURES = {
    "400": "InvalidInput: a field breaks its rule (named in `field`); nothing was written.",
    "401": "Unauthenticated: no valid token (missing, unknown, revoked or expired).",
    "403": "NotAuthorised: the token's actor may not do this.",
    "404": "NotFound: no such thing (or route).",
    "409": "A rule refused it (BidTooLow, AssetPledged, …, IdempotencyConflict, DuplicateId); ConcurrentWrite with "
    "Retry-After.",
    "503": "StoreUnavailable: the store cannot be reached; retry after Retry-After.",
}


def _document_answers(doc: dict[str, Any]) -> None:
    """The answers as they are: failures as problem documents (never FastAPI's 422, which
    the API does not send), 413 for commands, and each list's `next` cursor."""
    doc["components"]["schemas"]["Problem"] = PROBLEM_SCHEMA
    doc["components"]["schemas"]["Listing"] = LISTING_SCHEMA
    doc["components"]["schemas"].pop("HTTPValidationError", None)
    doc["components"]["schemas"].pop("ValidationError", None)
    as_problem = {"content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    for path, methods in doc["paths"].items():
        for method, operation in methods.items():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            if path == "/readyz":
                responses["503"] = {"description": "Not ready: the store, the schema or the read models' lag."}
                responses["503"] |= as_problem
            if not path.startswith("/v1/"):
                continue
            for status, description in FAILURES.items():
                responses[status] = {"description": description, **as_problem}
            if method == "post":
                responses["413"] = {"description": f"PayloadTooLarge: a body over {BODY_LIMIT} bytes.", **as_problem}
    for name, (field, _, _) in PAGED.items():
        answer = doc["paths"][f"/v1/{name}"]["get"]["responses"]["200"]["content"]["application/json"]
        answer["schema"] = {
            "type": "object",
            "title": f"{name.capitalize()} page",
            "required": [field, "next"],
            "properties": {
                field: {"type": "array", "items": ITEMS.get(name, {"type": "object"})},
                "next": {
                    "anyOf": [{"type": "string"}, {"type": "null"}],
                    "description": "The cursor of the next page (pass it as `cursor`); null on the last page.",
                },
            },
        }
    book = doc["paths"]["/v1/book/{listing}"]["get"]["responses"]["200"]["content"]["application/json"]
    book["schema"] = BOOK_SCHEMA


# --------------------------------------------------------------------------- serving


def serve(ledger: Ledger, *, host: str, port: int, workers: int) -> None:
    """Run uvicorn until SIGINT/SIGTERM; requests in flight finish first (uvicorn's graceful
    shutdown). The store is opened once before listening: its schema created or upgraded
    (as `ipledger init`), and a store that cannot be used fails here, exit 5."""
    import uvicorn

    ledger.exchange  # noqa: B018 - opens the store and brings its schema to the head
    url, pinned = ledger.url, ledger.pinned_now
    ledger.close()
    if workers == 1:
        uvicorn.run(create_app(url, pinned_now=pinned), host=host, port=port, log_level="info")
        return
    os.environ["IPLEDGER_DB"] = url  # each worker process builds its app from the environment
    _run_workers(uvicorn.Config("ipledger.api:from_environment", factory=True, host=host, port=port, workers=workers))


def _run_workers(config: Any) -> None:
    """uvicorn.run's `--workers N` path, on a listening socket that says it is TCP.

    uvicorn binds the shared socket with `proto` 0 (Kludex/uvicorn#3149, open); the
    connections accepted from it inherit that, asyncio then leaves Nagle's algorithm on,
    and every keep-alive answer after the first waits ~40 ms for the client's delayed ACK
    (measured here: /healthz 44 ms with 2 workers, 6 ms with 1). The same descriptor,
    rewrapped as IPPROTO_TCP, gets TCP_NODELAY on every connection."""
    from uvicorn.supervisors import Multiprocess

    with suppress(KeyboardInterrupt):
        Multiprocess(config, sockets=[said_tcp(config.bind_socket())]).run()


def said_tcp(sock: Any) -> Any:
    """A TCP listening socket whose `proto` says so (see `_run_workers`)."""
    import socket

    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto != socket.IPPROTO_TCP:
        sock = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
        sock.set_inheritable(True)
    return sock
