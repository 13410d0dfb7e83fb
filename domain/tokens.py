"""API tokens: who an HTTP request acts as (issue 14, api.md "Identity").

A token binds a secret to one actor (a member, `operator` or `auditor`). Only the
operator issues and revokes, and both are recorded in the log like every other fact.
The log holds the SHA-256 of the secret, never the secret: the secret is 256 random
bits, so a slow password hash would buy nothing (no dictionary to guess from) and cost
every request its time. A request is checked against the token's current events, read
from the store each time, so a revocation holds from the moment it is recorded.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import date, datetime
from typing import TYPE_CHECKING

from ipledger.domain.base import Aggregate, Decision
from ipledger.domain.errors import InvalidInput, InvalidState, NotAuthorised, Unauthenticated
from ipledger.domain.values import Actor, format_time

#: A secret reads `ipl_<token id>_<random>`: the id says which token to check, the rest is the secret proper.
SECRET_PREFIX = "ipl_"


class Token(Aggregate):
    KIND = "token"
    if TYPE_CHECKING:
        token_id: str
        actor: str
        name: str
        secret_sha256: str
        expires: date | None
        status: str
        issued: datetime
        revoked: datetime | None

    class Issued(Aggregate.Created):
        token_id: str
        actor: str
        name: str
        secret_sha256: str
        expires: date | None

        def apply(self, token: Token) -> None:
            token.token_id = self.token_id
            token.actor = self.actor
            token.name = self.name
            token.secret_sha256 = self.secret_sha256
            token.expires = self.expires
            token.status = "active"
            token.issued = self.timestamp
            token.revoked = None

    class Revoked(Aggregate.Event):
        def apply(self, token: Token) -> None:
            token.status = "revoked"
            token.revoked = self.timestamp

    # ------------------------------------------------------------------ the shell

    @classmethod
    def issue(
        cls,
        *,
        token_id: str,
        for_actor: Actor,
        name: str,
        secret_sha256: str,
        expires: date | None,
        actor: Actor,
        at: datetime,
    ) -> Token:
        return cls.new(
            issue(
                token_id=token_id,
                for_actor=for_actor,
                name=name,
                secret_sha256=secret_sha256,
                expires=expires,
                actor=actor,
                at=at,
            )
        )

    def revoke(self, *, actor: Actor, at: datetime) -> None:
        self.record(revoke(self, actor=actor, at=at))

    def as_json(self) -> dict[str, object]:
        """What `token list` shows: never the secret, nor its hash."""
        return {
            "id": self.token_id,
            "actor": self.actor,
            "name": self.name,
            "status": self.status,
            "issued": format_time(self.issued),
            "expires": self.expires.isoformat() if self.expires else None,
            "revoked": format_time(self.revoked) if self.revoked else None,
        }


# --------------------------------------------------------------------------- decisions


def issue(
    *,
    token_id: str,
    for_actor: Actor,
    name: str,
    secret_sha256: str,
    expires: date | None,
    actor: Actor,
    at: datetime,
) -> Decision:
    _require_operator(actor, "issues")
    if expires is not None and expires <= at.date():
        raise InvalidInput(f"expires: {expires.isoformat()} is not after today ({at.date().isoformat()})")
    return Decision.creating(
        Token,
        token_id,
        Token.Issued,
        at,
        token_id=token_id,
        actor=for_actor.id,
        name=name,
        secret_sha256=secret_sha256,
        expires=expires,
    )


def revoke(token: Token, *, actor: Actor, at: datetime) -> Decision:
    _require_operator(actor, "revokes")
    if token.status == "revoked":
        raise InvalidState(f"token: {token.token_id} is already revoked")
    return Decision.about(token, at).then(Token.Revoked)


def _require_operator(actor: Actor, verb: str) -> None:
    if not actor.is_operator:
        raise NotAuthorised(f"actor: only the operator {verb} tokens ({actor.id} is not the operator)")


# --------------------------------------------------------------------------- checking a secret


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def token_id_of(secret: str) -> str:
    """The token a presented secret names (Unauthenticated if it is not shaped like one)."""
    body = secret.removeprefix(SECRET_PREFIX)
    token_id, sep, rest = body.partition("_")
    if body == secret or not sep or not token_id or not rest:
        raise Unauthenticated("token: not an ipledger token (ipl_<id>_<secret>)")
    return token_id


def authenticate(token: Token, secret: str, now: datetime) -> str:
    """The actor a request with this secret acts as, or Unauthenticated. Constant-time
    comparison of the hashes; the message never says which check failed."""
    if not hmac.compare_digest(token.secret_sha256, secret_hash(secret)):
        raise Unauthenticated("token: invalid, revoked or expired")
    if token.status != "active" or (token.expires is not None and now.date() >= token.expires):
        raise Unauthenticated("token: invalid, revoked or expired")
    return token.actor
