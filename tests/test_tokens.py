"""Tokens for the HTTP API (api.md "Identity", issue 14): issued and revoked by the
operator only, recorded in the log, the secret shown once and stored as a hash."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from ipledger.domain.errors import InvalidState, NotAuthorised, NotFound, Unauthenticated
from ipledger.domain.tokens import Token, authenticate, secret_hash
from ipledger.domain.values import Actor
from tests.conftest import Cli, Market


def test_token_issue_prints_the_secret_once_and_keeps_only_its_hash(sqlite_url: str) -> None:
    run = Cli(sqlite_url)
    run.ok("member", "add", "huawei", "--name", "Huawei", "--kind", "enterprise", "--country", "CN")
    issued = json.loads(run.ok("token", "issue", "huawei", "--name", "desk", "--json").stdout)
    assert set(issued) == {"id", "actor", "name", "secret"} and issued["actor"] == "huawei"
    secret = issued["secret"]
    listed = run.ok("token", "list", "--json").stdout
    assert json.loads(listed)["tokens"][0] | {"issued": None} == {
        "id": issued["id"], "actor": "huawei", "name": "desk", "status": "active",
        "issued": None, "expires": None, "revoked": None,
    }  # fmt: skip
    log = run.export()
    assert secret not in log and secret not in listed
    assert "Token.Issued" in log  # recorded, with who and when, like every fact
    assert secret_hash(secret) in log and secret_hash(secret) not in listed
    revoked = run.ok("token", "revoke", issued["id"], "--json").stdout
    assert json.loads(revoked)["status"] == "revoked"
    assert "Token.Revoked" in run.export()


def test_an_expired_token_authenticates_no_more() -> None:
    at = datetime(2026, 3, 1, tzinfo=UTC)
    token = Token.issue(token_id="TK-1", for_actor=Actor.parse("huawei"), name="", secret_sha256=secret_hash("s"),
                        expires=date(2026, 3, 5), actor=Actor.parse("operator"), at=at)  # fmt: skip
    assert authenticate(token, "s", datetime(2026, 3, 4, 23, 59, tzinfo=UTC)) == "huawei"
    with pytest.raises(Unauthenticated):
        authenticate(token, "s", datetime(2026, 3, 5, tzinfo=UTC))
    with pytest.raises(Unauthenticated):
        authenticate(token, "t", at)


def test_only_the_operator_issues_and_revokes_and_a_member_token_names_a_member(sqlite_market: Market) -> None:
    ledger = sqlite_market.ledger
    with pytest.raises(NotAuthorised):
        ledger.issue_token("zte", by="huawei")
    with pytest.raises(NotFound):
        ledger.issue_token("nobody")
    issued = ledger.issue_token("zte")
    assert ledger.authenticate(issued["secret"]) == "zte"
    with pytest.raises(NotAuthorised):
        ledger.execute("token.revoke", {"token": issued["id"]}, actor="zte")
    ledger.execute("token.revoke", {"token": issued["id"]})
    with pytest.raises(InvalidState):
        ledger.execute("token.revoke", {"token": issued["id"]})
    with pytest.raises(Unauthenticated):
        ledger.authenticate(issued["secret"])
    for forged in ("", "Bearer x", "ipl_", "ipl__x", f"ipl_{issued['id']}_"):
        with pytest.raises(Unauthenticated):
            ledger.authenticate(forged)
