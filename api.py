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
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ipledger.domain.errors import LedgerError, NotAuthorised, NotFound, StoreUnavailable, Unauthenticated
from ipledger.domain.values import parse_date, parse_time
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
    """An RFC 9457 problem document: the contract's error name as `title` (and in `type`)."""
    body: dict[str, Any] = {"type": PROBLEM_TYPE + name, "title": name, "status": status, "detail": detail}
    if name == "InvalidInput":
        field, sep, _ = detail.partition(": ")
        if sep and " " not in field:
            body["field"] = field
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


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
    from ipledger.cli import _describe, _one_line  # the CLI's one mapping of failures to names

    name, message, code = _describe(e)
    status, headers = status_of(name, code)
    if status == 500 and name == "InternalError":
        message = "the server failed on this request; nothing was recorded unless it said so"
    return problem(status, name, _one_line(message), headers)


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
    """One `Ledger` per server thread, opened on first use: a request's work runs on one
    thread, with its own connections and aggregate cache. A store failure closes that
    thread's ledger, so the next request opens the store afresh."""

    def __init__(self, url: str, pinned_now: str | None) -> None:
        self.url, self.pinned_now = url, pinned_now
        self.local = threading.local()
        self.opened: list[Ledger] = []
        self.lock = threading.Lock()

    @contextmanager
    def use(self) -> Iterator[Ledger]:
        ledger: Ledger | None = getattr(self.local, "ledger", None)
        if ledger is None:
            ledger = Ledger(self.url, pinned_now=self.pinned_now)
            self.local.ledger = ledger
            with self.lock:
                self.opened.append(ledger)
        try:
            yield ledger
        except LedgerError as e:
            if isinstance(e, StoreUnavailable):
                self._drop(ledger)
            raise
        except Exception:
            self._drop(ledger)
            raise

    def _drop(self, ledger: Ledger) -> None:
        self.local.ledger = None
        with self.lock:
            if ledger in self.opened:
                self.opened.remove(ledger)
        with suppress(Exception):
            ledger.close()

    def close(self) -> None:
        with self.lock:
            opened, self.opened = self.opened, []
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
LIMIT = Query(None, ge=1, description="At most this many items (default: all).")


# --------------------------------------------------------------------------- the app


def create_app(db: str | None = None, *, pinned_now: str | None = None) -> FastAPI:
    """The API over the store `db` (IPLEDGER_DB when not given). `pinned_now`: the server's
    pinned clock, as IPLEDGER_NOW pins a script's; a client never sets the clock."""
    from ipledger.ledger.config import store_url

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


def _add_health(app: FastAPI, ledgers: Ledgers) -> None:
    @app.get("/healthz", tags=["health"], summary="Liveness: the process answers.")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], summary="Readiness: the store answers and its schema is current.")
    def readyz() -> Any:
        from sqlalchemy import func, select

        from ipledger.ledger.schema import HEAD, revision
        from ipledger.projections.tables import events_view, tracking_table

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
        behind = {name: head - int(position) for name, position in sorted(positions.items())}
        return {"status": "ready", "schema": schema, "head": head, "projections_behind": behind}


def _add_commands(app: FastAPI, ledgers: Ledgers) -> None:
    def run(name: str, secret: str, body: bytes, key: str | None) -> JSONResponse:
        with ledgers.use() as ledger:
            actor = ledger.authenticate(secret)  # routes exist only for http_commands()
            args = json_object(body.strip() or b"{}", "a command's args", "body: the args are one JSON object")
            repeat = key is not None and ledger.exchange.recorded_outcome(key) is not None
            outcome = ledger.execute(name, args, actor=actor, command_id=key)
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

    @app.get("/v1/book/{listing}", tags=tags, summary="A listing's order book, sealed bids as the actor may see them.")
    def book(listing: str, secret: str = Depends(secret_of)) -> dict[str, Any]:
        return answer(secret, lambda ledger, actor: ledger.book(listing, actor))

    @app.get("/v1/listings", tags=tags, summary="Listings (as `ipledger listings`).")
    def listings(status: str | None = None, asset: str | None = None, member: str | None = None,
                 limit: int | None = LIMIT, secret: str = Depends(secret_of)) -> dict[str, Any]:  # fmt: skip
        return answer(secret, lambda ledger, actor: ledger.listings(status, asset, member, viewer=actor, limit=limit))

    @app.get("/v1/holdings/{member}", tags=tags, summary="What a member owns (as `ipledger holdings`).")
    def holdings(member: str, as_of: str | None = AS_OF, known_at: str | None = KNOWN_AT,
                 secret: str = Depends(secret_of)) -> dict[str, Any]:  # fmt: skip
        return answer(
            secret, lambda ledger, _: ledger.holdings(member, _date(as_of, "as_of"), _time(known_at, "known_at"))
        )

    @app.get("/v1/trail", tags=tags, summary="Every event touching an asset or a member (as `ipledger trail`).")
    def trail(asset: str | None = None, member: str | None = None, secret: str = Depends(secret_of)) -> dict[str, Any]:
        return answer(secret, lambda ledger, actor: ledger.trail(asset, member, actor))

    @app.get("/v1/members", tags=tags, summary="Members (as `ipledger members`).")
    def members(kind: str | None = None, status: str | None = None, limit: int | None = LIMIT,
                secret: str = Depends(secret_of)) -> dict[str, Any]:  # fmt: skip
        return answer(secret, lambda ledger, _: ledger.members(kind, status, limit))

    @app.get("/v1/members/{member}", tags=tags, summary="Everything about a member (as `ipledger member show`).")
    def member_show(member: str, secret: str = Depends(secret_of)) -> dict[str, Any]:
        return answer(secret, lambda ledger, actor: ledger.member(member, actor))

    @app.get("/v1/assets", tags=tags, summary="Assets (as `ipledger assets`).")
    def assets(owner: str | None = None, jurisdiction: str | None = None, kind: str | None = None,
               limit: int | None = LIMIT, secret: str = Depends(secret_of)) -> dict[str, Any]:  # fmt: skip
        return answer(secret, lambda ledger, _: ledger.assets(owner, jurisdiction, kind, limit))

    @app.get("/v1/assets/{ref:path}", tags=tags, summary="Everything about an asset (as `ipledger asset show`).")
    def asset_show(ref: str, secret: str = Depends(secret_of)) -> dict[str, Any]:
        return answer(secret, lambda ledger, _: ledger.asset(ref))

    @app.get("/v1/trades", tags=tags, summary="Trades (as `ipledger trades`).")
    def trades(status: str | None = None, member: str | None = None, limit: int | None = LIMIT,
               secret: str = Depends(secret_of)) -> dict[str, Any]:  # fmt: skip
        return answer(secret, lambda ledger, _: ledger.trades(status, member, limit))

    @app.get("/v1/trades/{trade}", tags=tags, summary="Everything about a trade (as `ipledger trade show`).")
    def trade_show(trade: str, secret: str = Depends(secret_of)) -> dict[str, Any]:
        return answer(secret, lambda ledger, _: ledger.trade(trade))

    @app.get("/v1/pledges", tags=tags, summary="Pledges in force (as `ipledger pledges`).")
    def pledges(asset: str | None = None, pledgee: str | None = None, as_of: str | None = AS_OF,
                limit: int | None = LIMIT, secret: str = Depends(secret_of)) -> dict[str, Any]:  # fmt: skip
        return answer(secret, lambda ledger, _: ledger.pledges(asset, pledgee, _date(as_of, "as_of"), limit))

    @app.get("/v1/licences", tags=tags, summary="Licences in force (as `ipledger licences`).")
    def licences(asset: str | None = None, licensee: str | None = None, as_of: str | None = AS_OF,
                 limit: int | None = LIMIT, secret: str = Depends(secret_of)) -> dict[str, Any]:  # fmt: skip
        return answer(secret, lambda ledger, _: ledger.licences(asset, licensee, _date(as_of, "as_of"), limit))

    @app.get("/v1/audit/digest", tags=tags, summary="The log head's position and hash (as `ipledger audit digest`).")
    def digest(secret: str = Depends(secret_of)) -> dict[str, Any]:
        return answer(secret, lambda ledger, _: ledger.digest())


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
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


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
    uvicorn.run("ipledger.api:from_environment", factory=True, host=host, port=port, workers=workers)
