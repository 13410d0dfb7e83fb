"""The HTTP API (api.md, issue 14): tokens bound to actors, commands as import lines,
the CLI's queries with the CLI's JSON, errors as problem documents, nothing written by
a refused request. In-process with FastAPI's TestClient on SQLite (and PostgreSQL where
the store matters), and one real `ipledger serve` process spoken to over HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from ipledger.domain.errors import NotAuthorised
from ipledger.service import Ledger
from tests.conftest import PATENT, PATENT_2, Cli, Market

with warnings.catch_warnings():  # starlette asks for httpx2; the TestClient works as it is
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

    from ipledger.api import create_app

#: The server's pinned clock in these tests: after the market's set-up (conftest T0), so
#: commands over HTTP and the CLI's answers are "now" at the same moment.
NOW = "2026-03-10T09:00:00Z"
PATENT_3 = "CN/patent/ZL202110000001.1"


@dataclass
class Api:
    client: TestClient
    url: str
    tokens: dict[str, str]  # actor -> secret
    ids: dict[str, str]  # actor -> token id

    def as_(self, actor: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[actor]}"}

    def get(self, path: str, actor: str = "operator", **params: Any) -> httpx.Response:
        return self.client.get(path, headers=self.as_(actor), params=params)

    def post(self, command: str, args: Any, actor: str = "operator", key: str | None = None) -> httpx.Response:
        headers = self.as_(actor) | ({"Idempotency-Key": key} if key else {})
        return self.client.post(f"/v1/commands/{command}", headers=headers, json=args)

    def digest(self) -> Any:
        with _ledger(self.url) as ledger:
            return ledger.digest()


class _ledger:  # noqa: N801 - a with-able Ledger, closed after
    def __init__(self, url: str) -> None:
        self.ledger = Ledger(url)

    def __enter__(self) -> Ledger:
        return self.ledger

    def __exit__(self, *_: Any) -> None:
        self.ledger.close()


def issue(url: str, actor: str, by: str = "operator") -> dict[str, Any]:
    with _ledger(url) as ledger:
        ledger.pinned_now = NOW
        return ledger.issue_token(actor, f"{actor}'s desk", by=by)


def serving(m: Market) -> Iterator[Api]:
    """The market on a TestClient, with a token for the operator, an auditor and three members."""
    tokens, ids = {}, {}
    for actor in ("operator", "auditor", "huawei", "zte", "fudan-univ"):
        doc = issue(m.ledger.url, actor)
        tokens[actor], ids[actor] = doc["secret"], doc["id"]
    with TestClient(create_app(m.ledger.url, pinned_now=NOW)) as client:
        yield Api(client, m.ledger.url, tokens, ids)


@pytest.fixture
def api(sqlite_market: Market) -> Iterator[Api]:
    yield from serving(sqlite_market)


@pytest.fixture
def any_store_api(market: Market) -> Iterator[Api]:
    """The same on SQLite and on PostgreSQL."""
    yield from serving(market)


def problem(response: httpx.Response, status: int, title: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    doc = response.json()
    assert doc["title"] == title and doc["status"] == status and doc["type"].endswith("/" + title)
    assert doc["detail"], "the detail names the field and the rule"
    return dict(doc)


def sealed_listing(api: Api, listing: str = "L-1") -> None:
    r = api.post(
        "listing.open",
        {"ref": PATENT, "type": "assignment", "mechanism": "sealed", "currency": "CNY",
         "closes": "2026-04-01T00:00:00Z", "id": listing},
        actor="fudan-univ",
    )  # fmt: skip
    assert r.status_code == 201, r.text
    for bidder, amount in (("huawei", "100000.00"), ("zte", "120000.00")):
        r = api.post("bid.place", {"listing": listing, "bidder": bidder, "amount": amount, "id": f"B-{bidder}"}, bidder)
        assert r.status_code == 201, r.text


#: The reserve of `reserved_listing`: fudan-univ's, above huawei's bid.
RESERVE = "150000.00"


def reserved_listing(api: Api, listing: str = "L-R") -> None:
    """fudan-univ's English auction of PATENT with a reserve, and one bid below it by huawei."""
    r = api.post(
        "listing.open",
        {"ref": PATENT, "type": "assignment", "mechanism": "english", "currency": "CNY", "ask": "100000.00",
         "reserve": RESERVE, "closes": "2026-04-01T00:00:00Z", "id": listing},
        actor="fudan-univ",
    )  # fmt: skip
    assert r.status_code == 201, r.text
    r = api.post("bid.place", {"listing": listing, "bidder": "huawei", "amount": "110000.00", "id": "B-R"}, "huawei")
    assert r.status_code == 201, r.text


# --------------------------------------------------------------------------- health, OpenAPI


def test_health_and_readiness_need_no_token(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


def test_openapi_documents_every_command_with_its_model_and_the_bearer_scheme(api: Api) -> None:
    from ipledger.api import http_commands

    doc = api.client.get("/openapi.json").json()
    for name in http_commands():
        assert f"/v1/commands/{name}" in doc["paths"]
    assert doc["components"]["schemas"]["BidPlaceArgs"]["required"] == ["listing", "bidder", "amount"]
    assert "HTTPBearer" in doc["components"]["securitySchemes"]
    assert "/v1/commands/token.issue" not in doc["paths"]  # its secret is made where it is shown
    assert api.client.get("/docs").status_code == 200


# --------------------------------------------------------------------------- identity


def test_only_the_operator_issues_and_revokes(api: Api) -> None:
    with pytest.raises(NotAuthorised):
        issue(api.url, "zte", by="huawei")
    r = api.post("token.revoke", {"token": api.ids["zte"]}, actor="huawei")
    problem(r, 403, "NotAuthorised")
    assert api.get("/v1/whoami", "zte").json() == {"actor": "zte"}


def test_missing_malformed_or_unknown_tokens_are_401(api: Api) -> None:
    bad = [
        {},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer nonsense"},
        {"Authorization": f"Bearer ipl_{api.ids['huawei']}_guessed"},  # the right id, the wrong secret
        {"Authorization": "Bearer ipl_TK-000000000000_x"},
    ]
    for headers in bad:
        r = api.client.get("/v1/members", headers=headers)
        assert problem(r, 401, "Unauthenticated")
        assert r.headers["www-authenticate"].startswith("Bearer")
        problem(api.client.post("/v1/commands/member.add", headers=headers, json={}), 401, "Unauthenticated")


def test_a_revoked_token_is_refused_at_once(any_store_api: Api) -> None:
    api = any_store_api
    assert api.get("/v1/whoami", "huawei").json() == {"actor": "huawei"}
    before = api.digest()
    revoked = api.post("token.revoke", {"token": api.ids["huawei"]})  # the operator, over HTTP
    assert revoked.status_code == 201 and revoked.json()["status"] == "revoked"
    problem(api.get("/v1/whoami", "huawei"), 401, "Unauthenticated")
    problem(api.post("bid.place", {"listing": "L-9", "bidder": "huawei", "amount": "1.00"}, "huawei"), 401,
            "Unauthenticated")  # fmt: skip
    assert api.digest()["position"] == before["position"] + 1  # the revocation, and nothing after it
    # Another process (say the CLI) revoking is seen by the server's next request too.
    with _ledger(api.url) as ledger:
        ledger.pinned_now = NOW
        ledger.execute("token.revoke", {"token": api.ids["zte"]})
    problem(api.get("/v1/members", "zte"), 401, "Unauthenticated")


# --------------------------------------------------------------------------- acting as the token's actor


def test_a_member_cannot_act_for_another(api: Api) -> None:
    sealed_listing(api)
    before = api.digest()
    problem(api.post("bid.place", {"listing": "L-1", "bidder": "zte", "amount": "130000.00"}, "huawei"), 403,
            "NotAuthorised")  # fmt: skip
    problem(api.post("bid.withdraw", {"bid": "B-zte"}, "huawei"), 403, "NotAuthorised")
    problem(api.post("member.suspend", {"id": "zte"}, "huawei"), 403, "NotAuthorised")
    # No field names another actor: `actor` is not an argument of any command.
    problem(api.post("bid.place", {"listing": "L-1", "bidder": "zte", "amount": "1.00", "actor": "zte"}, "huawei"),
            400, "InvalidInput")  # fmt: skip
    problem(api.post("member.add", {"id": "acme", "name": "Acme", "kind": "enterprise", "country": "CN"}, "auditor"),
            403, "NotAuthorised")  # fmt: skip
    assert api.digest() == before


def test_a_member_never_sees_another_members_sealed_bid(api: Api) -> None:
    sealed_listing(api)
    bidders = {b["bidder"] for b in api.get("/v1/book/L-1", "zte").json()["bids"]}
    assert bidders == {"zte"}
    assert {b["bidder"] for b in api.get("/v1/book/L-1", "huawei").json()["bids"]} == {"huawei"}
    assert {b["bidder"] for b in api.get("/v1/book/L-1", "operator").json()["bids"]} == {"huawei", "zte"}
    for path, params in (("/v1/trail", {"asset": PATENT}), ("/v1/listings", {}), ("/v1/members/huawei", {})):
        text = api.get(path, "zte", **params).text
        assert "100000" not in text and "B-huawei" not in text, path
    assert "100000" in api.get("/v1/trail", "auditor", asset=PATENT).text


def test_the_book_tells_a_bidder_or_another_member_of_a_reserve_not_its_amount(api: Api) -> None:
    reserved_listing(api)
    for actor in ("huawei", "zte"):  # the bidder below it, a member who did not bid
        r = api.get("/v1/book/L-R", actor)
        assert r.status_code == 200 and r.json()["reserve"] == "hidden", actor
        assert RESERVE not in r.text, actor


def test_the_seller_the_operator_and_auditors_see_the_reserve_in_the_book(api: Api) -> None:
    reserved_listing(api)
    for actor in ("fudan-univ", "operator", "auditor"):
        assert api.get("/v1/book/L-R", actor).json()["reserve"] == RESERVE, actor


@pytest.mark.parametrize(
    ("path", "params"),
    [("/v1/listings", {}), (f"/v1/assets/{PATENT}", {}), ("/v1/members/fudan-univ", {}),
     ("/v1/trail", {"asset": PATENT}), ("/v1/trail", {"member": "fudan-univ"})],
    ids=["listings", "asset", "member", "asset trail", "member trail"],
)  # fmt: skip
def test_no_answer_tells_another_member_the_reserve(api: Api, path: str, params: dict[str, str]) -> None:
    reserved_listing(api)
    for actor in ("huawei", "zte"):
        r = api.get(path, actor, **params)
        assert r.status_code == 200 and RESERVE not in r.text and '"reserve":"hidden"' in r.text, (path, actor)
    assert RESERVE in api.get(path, "fudan-univ", **params).text


def test_openapi_documents_that_a_reserve_reads_as_an_amount_hidden_or_null(api: Api) -> None:
    doc = api.client.get("/openapi.json").json()
    reserve = doc["components"]["schemas"]["Listing"]["properties"]["reserve"]
    assert {"type": "string", "enum": ["hidden"]} in reserve["anyOf"] and {"type": "null"} in reserve["anyOf"]
    listing = {"$ref": "#/components/schemas/Listing"}
    answers = {path: doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
               for path in ("/v1/book/{listing}", "/v1/listings")}  # fmt: skip
    assert answers["/v1/book/{listing}"]["allOf"] == [listing]
    assert answers["/v1/listings"]["properties"]["listings"]["items"] == listing


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "body",
    [
        b'{"listing": "L-1", "bidder": "huawei", "amount": 130000.5}',  # a float amount
        b'{"listing": "L-1", "bidder": "huawei", "amount": "130000.00", "colour": "red"}',  # unknown key
        b'{"listing": "L-1", "bidder": "huawei", "amount": "1.00", "amount": "130000.00"}',  # a key twice
        b'{"listing": "L-1", "bidder": "huawei"',  # not JSON
        b'["L-1", "huawei", "130000.00"]',  # not an object
        b'{"listing": "L-1", "bidder": "huawei"}',  # a required field missing
        b'{"listing": "L 1", "bidder": "huawei", "amount": "130000.00"}',  # an id with a space
        b"\xff\xfe",  # not UTF-8
    ],
)
def test_bad_input_is_one_problem_document_and_writes_nothing(api: Api, body: bytes) -> None:
    sealed_listing(api)
    before = api.digest()
    r = api.client.post("/v1/commands/bid.place", headers=api.as_("huawei"), content=body)
    doc = problem(r, 400, "InvalidInput")
    assert "field" in doc
    assert api.digest() == before


def test_rule_rejections_unknown_things_and_big_bodies(api: Api) -> None:
    sealed_listing(api)
    before = api.digest()
    problem(api.post("bid.place", {"listing": "L-1", "bidder": "huawei", "amount": "1.00"}, "fudan-univ"), 403,
            "NotAuthorised")  # fmt: skip
    problem(api.post("listing.withdraw", {"listing": "L-404"}), 404, "NotFound")
    problem(api.post("member.add", {"id": "huawei", "name": "H", "kind": "enterprise", "country": "CN"}), 409,
            "DuplicateId")  # fmt: skip
    problem(api.post("listing.close", {"listing": "L-1"}), 409, "ListingStillOpen")
    problem(api.post("no.such", {}), 404, "NotFound")
    problem(api.post("token.issue", {}), 403, "NotAuthorised")
    problem(api.get("/v1/book/L-404"), 404, "NotFound")
    problem(api.get("/v1/owner"), 400, "InvalidInput")  # ref is required
    problem(api.get("/v1/owner", ref=PATENT, as_of="31/12/2026"), 400, "InvalidInput")
    problem(api.get("/v1/listings", status="bogus"), 400, "InvalidInput")
    problem(api.get("/v1/members", limit=0), 400, "InvalidInput")
    problem(api.get("/v1/trail", asset=PATENT, after=-1), 400, "InvalidInput")
    problem(api.get("/v1/nowhere"), 404, "NotFound")
    big = api.client.post("/v1/commands/member.add", headers=api.as_("operator"), content=b" " * (1 << 20 + 1))
    problem(big, 413, "PayloadTooLarge")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds as the body is read
        for _ in range(20):
            yield b" " * 65536

    problem(api.client.post("/v1/commands/member.add", headers=api.as_("operator"), content=chunks()), 413,
            "PayloadTooLarge")  # fmt: skip
    assert api.digest() == before


# --------------------------------------------------------------------------- idempotency


def test_idempotency_key_repeats_the_first_outcome_and_refuses_another_body(any_store_api: Api) -> None:
    api = any_store_api
    args = {"id": "acme", "name": "Acme", "kind": "enterprise", "country": "CN"}
    first = api.post("member.add", args, key="add-acme")
    assert first.status_code == 201 and first.json() == {"id": "acme", "status": "active"}
    after = api.digest()
    again = api.post("member.add", args, key="add-acme")
    assert again.status_code == 200 and again.json() == first.json()
    conflict = api.post("member.add", args | {"name": "Acme Ltd"}, key="add-acme")
    assert "add-acme" in problem(conflict, 409, "IdempotencyConflict")["detail"]
    problem(api.post("member.suspend", {"id": "acme"}, key="add-acme"), 409, "IdempotencyConflict")
    assert api.digest() == after
    # The same key from another actor is another request: refused, never answered with the first outcome.
    problem(api.post("member.add", args, actor="huawei", key="add-acme"), 409, "IdempotencyConflict")


# --------------------------------------------------------------------------- queries: the CLI's JSON


def test_every_query_route_answers_what_the_cli_prints(sqlite_market: Market) -> None:
    m = sqlite_market
    m.do("asset.register", ref=PATENT_2, title="Separator film", owner=["sjtu"], effective="2020-01-01")
    m.do("pledge.register", ref=PATENT_2, pledgee="icbc-sh", amount="5000000.00", currency="CNY", end="2030-12-31",
         id="P-1")  # fmt: skip
    m.do("licence.grant", ref=PATENT, licensee="byd", type="non_exclusive", territory=["CN"], field=["batteries"],
         start="2026-04-01", end="2029-01-01", id="LIC-1")  # fmt: skip
    m.do("asset.register", ref=PATENT_3, title="Anode", owner=["zte"], effective="2021-01-01")
    m.do("listing.open", ref=PATENT_3, type="assignment", mechanism="fixed", currency="CNY", ask="50000.00",
         closes="2026-04-01T00:00:00Z", id="L-2", actor="zte")  # fmt: skip
    m.do("bid.place", listing="L-2", bidder="huawei", amount="50000.00", trade_id="T-1", actor="huawei")
    it = next(serving(m))
    sealed_listing(it)
    run = Cli(m.ledger.url, now=NOW)
    cases: list[tuple[str, dict[str, Any], list[str]]] = [
        ("/v1/owner", {"ref": PATENT}, ["owner", PATENT]),
        ("/v1/owner", {"ref": PATENT.lower(), "as_of": "2020-01-01", "known_at": "2026-03-03T00:00:00Z"},
         ["owner", PATENT.lower(), "--as-of", "2020-01-01", "--known-at", "2026-03-03T00:00:00Z"]),
        ("/v1/title", {"ref": PATENT}, ["title", PATENT]),
        ("/v1/encumbrances", {"ref": PATENT, "as_of": "2026-05-01"}, ["encumbrances", PATENT, "--as-of", "2026-05-01"]),
        ("/v1/book/L-1", {}, ["book", "L-1"]),
        ("/v1/book/L-2", {}, ["book", "L-2"]),
        ("/v1/listings", {}, ["listings"]),
        ("/v1/listings", {"status": "sold", "member": "huawei"},
         ["listings", "--status", "sold", "--member", "huawei"]),
        ("/v1/holdings/fudan-univ", {}, ["holdings", "fudan-univ"]),
        ("/v1/trail", {"asset": PATENT}, ["trail", "--asset", PATENT]),
        ("/v1/trail", {"member": "huawei"}, ["trail", "--member", "huawei"]),
        ("/v1/members", {"kind": "enterprise", "limit": 2}, ["members", "--kind", "enterprise", "--limit", "2"]),
        ("/v1/members/huawei", {}, ["member", "show", "huawei"]),
        ("/v1/assets", {"owner": "zte"}, ["assets", "--owner", "zte"]),
        (f"/v1/assets/{PATENT}", {}, ["asset", "show", PATENT]),
        ("/v1/trades", {"status": "pending"}, ["trades", "--status", "pending"]),
        ("/v1/trades/T-1", {}, ["trade", "show", "T-1"]),
        ("/v1/pledges", {"pledgee": "icbc-sh"}, ["pledges", "--pledgee", "icbc-sh"]),
        ("/v1/licences", {"asset": PATENT, "as_of": "2026-05-01"},
         ["licences", "--asset", PATENT, "--as-of", "2026-05-01"]),
        ("/v1/audit/digest", {}, ["audit", "digest"]),
    ]  # fmt: skip
    for actor in ("operator", "zte"):
        for path, params, argv in cases:
            r = it.get(path, actor, **params)
            assert r.status_code == 200, (path, r.text)
            printed = json.loads(run.ok(*argv, "--json", actor=actor).stdout)
            answered = r.json()
            if "next" not in printed:
                answered.pop("next", None)  # a list's cursor for its next page (test_api_paging.py)
            assert answered == printed, (actor, path)
    it.client.close()


def test_a_trail_comes_in_pages_that_join_up_to_the_whole_trail(api: Api) -> None:
    for ref in (PATENT_2, PATENT_3):
        assert api.post("asset.register", {"ref": ref, "title": "Anode", "owner": ["fudan-univ"]}).status_code == 201
    whole = api.get("/v1/trail", member="fudan-univ").json()
    assert len(whole["events"]) > 2 and whole["next"] is None
    first = api.get("/v1/trail", member="fudan-univ", limit=2).json()
    rest = api.get("/v1/trail", member="fudan-univ", after=first["next"]).json()
    assert len(first["events"]) == 2 and rest["next"] is None
    assert first["events"] + rest["events"] == whole["events"]


# --------------------------------------------------------------------------- the front door stays light


def test_the_cli_does_not_load_the_web_stack() -> None:
    code = "import sys, ipledger.cli; print(sorted({'fastapi', 'uvicorn', 'starlette'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_child_env(), check=True)
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------- a real server process


def _child_env(**extra: str) -> dict[str, str]:
    """The child imports this checkout's code, as the test process does."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IPLEDGER_")}
    return env | {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)} | extra


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_real_ipledger_serve_process_over_http(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path}/served.db"
    run = Cli(url)  # reads only: its pinned clock is in the past of the server's
    with _ledger(url) as ledger:  # the wall clock, as the server's
        ledger.execute("member.add", {"id": "huawei", "name": "Huawei", "kind": "enterprise", "country": "CN"})
        operator = ledger.issue_token("operator")
        huawei = ledger.issue_token("huawei")
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", "from ipledger.cli import run; run()", "--db", url, "serve", "--port", str(port)],
        env=_child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=10) as http:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if http.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert server.poll() is None and time.monotonic() < deadline, "the server did not start"
                time.sleep(0.1)
            assert http.get("/readyz").json()["status"] == "ready"
            op = {"Authorization": f"Bearer {operator['secret']}"}
            member = {"id": "zte", "name": "ZTE", "kind": "enterprise", "country": "CN"}
            added = http.post("/v1/commands/member.add", headers=op | {"Idempotency-Key": "zte-1"}, json=member)
            assert added.status_code == 201, added.text
            again = http.post("/v1/commands/member.add", headers=op | {"Idempotency-Key": "zte-1"}, json=member)
            assert again.status_code == 200 and again.json() == added.json()
            hw = {"Authorization": f"Bearer {huawei['secret']}"}
            listed = http.get("/v1/members", headers=hw, params={"kind": "enterprise"})
            assert [m["member"] for m in listed.json()["members"]] == ["huawei", "zte"]
            printed = json.loads(run.ok("members", "--kind", "enterprise", "--json").stdout)
            assert listed.json() == printed | {"next": None}  # the whole list: no next page
            refused = http.post("/v1/commands/member.suspend", headers=hw, json={"id": "zte"})
            assert refused.status_code == 403 and refused.json()["title"] == "NotAuthorised"
            with _ledger(url) as ledger:  # another process revokes
                ledger.execute("token.revoke", {"token": huawei["id"]})
            gone = http.get("/v1/members", headers=hw)
            assert gone.status_code == 401 and gone.headers["content-type"] == "application/problem+json"
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            out, _ = server.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            out, _ = server.communicate()
    # A graceful stop: requests in flight finished, then uvicorn re-raises the SIGTERM it caught.
    assert server.returncode in (0, -signal.SIGTERM), out.decode(errors="replace")
    assert b"Application shutdown complete" in out
