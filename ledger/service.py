"""The ledger as its users see it: writing commands and queries over one store.

The CLI, the importer and the demo talk to this facade only. Queries first bring
the projections they read up to the log head, so an answer always reflects every
committed event.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from typing import Any, Callable, Iterable, Iterator

from domain.errors import IntegrityError, InvalidInput, NotFound
from domain.members import Member
from domain.values import Actor, canonical_ref, parse_member_id, parse_time
from ledger import audit
from ledger.application import Exchange, Outcome
from projections import queries
from projections.runner import Progress, ReadModels


def today() -> date:
    """The date queries default to: the pinned clock's (IPLEDGER_NOW) or today's, UTC."""
    pinned = os.environ.get("IPLEDGER_NOW")
    if pinned:
        return parse_time(pinned, "IPLEDGER_NOW").date()
    return datetime.now(UTC).date()


class Ledger:
    def __init__(self, db: str | None = None) -> None:
        self.exchange = Exchange(db)
        self.read_models = ReadModels(self.exchange.recorder, self.exchange.engine)

    @property
    def url(self) -> str:
        return self.exchange.url

    def close(self) -> None:
        self.exchange.close()

    # ------------------------------------------------------------------ writing

    def execute(
        self,
        name: str,
        args: dict[str, Any],
        *,
        actor: str = "operator",
        command_id: str | None = None,
        now: str | datetime | None = None,
    ) -> Outcome:
        return self.exchange.execute(name, args, actor=actor, command_id=command_id, now=now)

    def import_lines(self, raw_lines: Iterable[bytes], progress: Callable[[int], None] | None = None) -> Outcome:
        from ledger.importer import run_import

        return run_import(self.exchange, raw_lines, progress=progress)

    # ------------------------------------------------------------------ reading

    def _read(self, *names: str) -> Any:
        self.read_models.catch_up(names)
        return self.exchange.engine.connect()

    def owner(self, ref: str, as_of: date | None = None, known_at: datetime | None = None) -> dict[str, Any]:
        ref = canonical_ref(ref)
        with self._read("ownership") as conn:
            return queries.owner(conn, ref, as_of, known_at)

    def title(self, ref: str) -> dict[str, Any]:
        ref = canonical_ref(ref)
        with self._read("ownership") as conn:
            return queries.title(conn, ref)

    def holdings(self, member: str, as_of: date | None = None, known_at: datetime | None = None) -> dict[str, Any]:
        member = parse_member_id(member, "member")
        if not self.exchange.exists(Member, member):
            raise NotFound(f"member: no member {member}")
        with self._read("ownership") as conn:
            return queries.holdings(conn, member, as_of, known_at)

    def encumbrances(self, ref: str, as_of: date | None = None, known_at: datetime | None = None) -> dict[str, Any]:
        ref = canonical_ref(ref)
        with self._read("ownership", "encumbrances") as conn:
            return queries.encumbrances(conn, ref, as_of or today(), known_at)

    def book(self, listing_id: str, viewer: str = "operator") -> dict[str, Any]:
        with self._read("listings", "book") as conn:
            return queries.book(conn, listing_id, Actor.parse(viewer))

    def listings(self, status: str | None = None) -> dict[str, Any]:
        with self._read("listings") as conn:
            return queries.listings(conn, status)

    def trail(self, asset: str | None = None, member: str | None = None) -> dict[str, Any]:
        if (asset is None) == (member is None):
            raise InvalidInput("asset: give exactly one of --asset REF or --member ID")
        if asset is not None:
            key, what = f"asset:{canonical_ref(asset, 'asset')}", "asset"
        else:
            key, what = f"member:{parse_member_id(member or '', 'member')}", "member"
        events = self.exchange.recorder.events_record_cls.__table__  # type: ignore[attr-defined]
        with self._read("trail") as conn:
            return queries.trail(conn, events, key, what)

    # ------------------------------------------------------------------ audit

    def export(self, until: int | None = None) -> Iterator[bytes]:
        return audit.export_lines(self.exchange.recorder, self.exchange.engine, until)

    def digest(self) -> dict[str, Any]:
        return audit.digest(self.exchange.engine)

    def verify(self, expect: str | None = None) -> dict[str, Any]:
        """Recompute the hash chain, prove the digest is a prefix, reconcile every projection."""
        report = audit.verify_chain(
            self.exchange.recorder, self.exchange.engine, audit.parse_digest(expect) if expect else None
        )
        differ = self.read_models.reconcile()
        if differ:
            raise IntegrityError(
                f"projections: {', '.join(differ)} differ from a fresh replay of the log; "
                "run 'ipledger projections rebuild'"
            )
        return {"ok": True, **report, "projections": sorted(self.read_models.projections)}

    # ------------------------------------------------------------------ projections

    def rebuild(self, names: Iterable[str] | None = None, progress: Progress | None = None) -> None:
        self.read_models.rebuild(names, progress)

    def projection_status(self) -> list[dict[str, Any]]:
        return self.read_models.status()
