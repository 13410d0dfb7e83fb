"""The front door: the ledger as its users see it, writing commands and queries over one store.

It sits above both sides (ipledger.ledger, the write side; ipledger.projections, the
read side), so every dependency points one way: cli → service → ledger, projections →
domain. The CLI and the demo talk to this facade only. Queries first bring the
projections they read up to the log head, so an answer always reflects every committed
event.

`open_ledger` is the one bootstrap that reads the process environment (IPLEDGER_DB,
IPLEDGER_NOW); below it, configuration is passed in.
"""

from __future__ import annotations

import contextlib
import functools
import os
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from ipledger.domain.errors import IntegrityError, InvalidInput, LedgerError, NotAuthorised, NotFound
from ipledger.domain.values import (
    Actor,
    AssetKind,
    MemberKind,
    canonical_ref,
    parse_choice,
    parse_enum,
    parse_jurisdiction,
    parse_member_id,
    parse_time,
)
from ipledger.domain.visibility import may_export
from ipledger.lazy import lazy_module
from ipledger.ledger.config import make_engine, opening_store, store_url
from ipledger.projections.tables import PROJECTION_TABLES, events_view, fingerprint, tracking_table

if TYPE_CHECKING:
    from ipledger.ledger import merkle
    from ipledger.ledger.application import Exchange, Outcome
    from ipledger.ledger.checkpoints import Signer
    from ipledger.ledger.prover import Proof
    from ipledger.projections import lists, queries
    from ipledger.projections.runner import Beside, Progress, ReadModels
else:
    # Each loads when a method first reads through it: a write needs none of them, a
    # query of ownership no lists and no Merkle tree (the cold start of each command).
    merkle = lazy_module("ipledger.ledger.merkle")
    lists = lazy_module("ipledger.projections.lists")
    queries = lazy_module("ipledger.projections.queries")


#: Statuses as people read them (cli.md): `lapsed` is a sale or trade past its deadline.
LISTING_STATUSES = ("open", "closed", "withdrawn", "unsold", "sold", "lapsed")
TRADE_STATUSES = ("pending", "settled", "void", "lapsed")
MEMBER_STATUSES = ("active", "suspended")


def _uuid(value: Any) -> Any:
    from uuid import UUID

    if isinstance(value, UUID):
        return value
    if isinstance(value, (bytes, memoryview)):  # SQLite keeps the 16 bytes
        return UUID(bytes=bytes(value))
    return UUID(str(value))


def open_ledger(db: str | None = None) -> Ledger:
    """A ledger configured as a script or a shell configures it: the store from `db` or
    IPLEDGER_DB, the recorded time pinned by IPLEDGER_NOW when set."""
    return Ledger(db or os.environ.get("IPLEDGER_DB"), pinned_now=os.environ.get("IPLEDGER_NOW") or None)


class Ledger:
    """Opens the write side (the Exchange and its projections' runner) on first need; a
    query whose read models are already at the log head needs neither, and starts fast."""

    def __init__(self, db: str | None = None, *, pinned_now: str | None = None) -> None:
        """`pinned_now`: the time commands are recorded at and queries are answered for,
        instead of the wall clock (a script's pinned clock)."""
        self.url = store_url(db)
        self.pinned_now = pinned_now
        self._exchange: Exchange | None = None
        self._read_models: ReadModels | None = None
        self._engine: Engine | None = None

    @property
    def exchange(self) -> Exchange:
        if self._exchange is None:
            from ipledger.ledger.application import Exchange

            with opening_store(self.url):
                self._exchange = Exchange(self.url, pinned_now=self.pinned_now)
        return self._exchange

    @property
    def read_models(self) -> ReadModels:
        if self._read_models is None:
            from ipledger.projections.runner import ReadModels

            self._read_models = ReadModels(self.exchange.recorder, self.exchange.engine)
        return self._read_models

    def close(self) -> None:
        if self._exchange is not None:
            self._exchange.close()
        if self._engine is not None:
            self._engine.dispose()

    def now(self) -> datetime:
        """The ledger's "now" for queries: the pinned time or the wall clock, UTC."""
        if self.pinned_now:
            return parse_time(self.pinned_now, "IPLEDGER_NOW")
        return datetime.now(UTC)

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

    def submit(self, name: str, args: dict[str, Any], *, actor: str, command_id: str | None) -> tuple[Outcome, bool]:
        """`execute` for a client that must know a repeat from a first write (the API's 200 or 201)."""
        return self.exchange.submit(name, args, actor=actor, command_id=command_id)

    def refresh_read_models(self) -> None:
        """Bring read models to the head now, while the write side is loaded, so the next
        query process finds them current (and starts fast). Best effort: the command is
        already recorded, and any query catches up by itself."""
        from eventsourcing.persistence import PersistenceError

        with contextlib.suppress(LedgerError, DBAPIError, PersistenceError):
            self.read_models.catch_up()

    def import_lines(self, raw_lines: Iterable[bytes], progress: Callable[[int], None] | None = None) -> Outcome:
        from ipledger.ledger.importer import run_import

        return run_import(self.exchange, raw_lines, progress=progress)

    # ------------------------------------------------------------------ tokens (api.md "Identity")

    def issue_token(
        self,
        actor: str,
        name: str | None = None,
        expires: str | None = None,
        *,
        by: str = "operator",
        command_id: str | None = None,
        token_id: str | None = None,
    ) -> dict[str, Any]:
        """A new token for `actor` (id `token_id`, else generated): the outcome with the secret,
        which is shown this once. The log keeps the secret's SHA-256, never the secret (see
        domain/tokens.py)."""
        import secrets

        from ipledger.domain.tokens import SECRET_PREFIX, secret_hash

        token_id = token_id or f"TK-{secrets.token_hex(6)}"
        secret = f"{SECRET_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        args = {"actor": actor, "id": token_id, "secret_sha256": secret_hash(secret), "name": name, "expires": expires}
        outcome = self.execute("token.issue", {k: v for k, v in args.items() if v is not None}, actor=by,
                               command_id=command_id)  # fmt: skip
        return {**outcome, "secret": secret}

    def tokens(self) -> dict[str, Any]:
        """Every token ever issued, in issue order: id, actor, name, status; no secret, no hash."""
        from ipledger.domain.tokens import Token
        from ipledger.ledger.codec import log_topic

        exchange = self.exchange
        with exchange.engine.connect() as conn:
            ids = conn.execute(
                select(events_view.c.originator_id)
                .where(events_view.c.topic == log_topic(Token.Issued))
                .order_by(events_view.c.id)
            ).scalars()
            found: list[Any] = [exchange.repository.get(_uuid(i)) for i in ids]
        return {"tokens": [t.as_json() for t in found if isinstance(t, Token)]}

    def authenticate(self, secret: str) -> str:
        """The actor a request presenting `secret` acts as. The token is read from the store
        on every call (no cache), so a revocation recorded by any process holds at once."""
        from ipledger.domain.errors import Unauthenticated
        from ipledger.domain.tokens import Token, authenticate, token_id_of

        exchange = self.exchange
        try:
            # On the connection this ledger keeps for its commands: one round trip, where a
            # pool checkout costs a ping, a BEGIN and a ROLLBACK on PostgreSQL besides.
            with exchange.recorder.one_connection():
                token = exchange.load(Token, token_id_of(secret), "token", "token")
        except (NotFound, InvalidInput):
            raise Unauthenticated("token: invalid, revoked or expired") from None
        return authenticate(token, secret, self.now())

    # ------------------------------------------------------------------ reading

    def _read(self, *names: str) -> Any:
        """A connection on read models that reflect every committed event.

        Checked and answered on one connection (one round of small reads when current, as
        every query of a busy server mostly is); only read models behind are caught up."""
        engine = self._exchange.engine if self._exchange is not None else self._light_engine()
        conn = engine.connect()
        try:
            if self._current(conn, names):
                return conn
        except DBAPIError:
            pass
        conn.close()
        self.read_models.catch_up(names)
        return self.exchange.engine.connect()

    def _light_engine(self) -> Engine:
        """An engine without the write side (no event-sourcing imports): a query whose read
        models are current starts fast."""
        if self._engine is None:
            self._engine = make_engine(self.url)
        return self._engine

    @staticmethod
    def _current(conn: Any, names: tuple[str, ...]) -> bool:
        """Schema at head, and each projection's tables as the code defines them and at the
        log head: one statement, as a busy server asks it before every query."""
        from ipledger.ledger.schema import HEAD

        rows = {r.name: r for r in conn.execute(_currency_statement())}
        for name in names:
            row = rows.get(name)
            if row is None or row.revision != HEAD or row.fingerprint != fingerprint(PROJECTION_TABLES[name]):
                return False
            if row.position < (row.head or 0):
                return False
        return True

    def owner(self, ref: str, as_of: date | None = None, known_at: datetime | None = None) -> dict[str, Any]:
        ref = canonical_ref(ref)
        with self._read("ownership") as conn:
            return queries.owner(conn, ref, as_of, known_at)

    def title(self, ref: str) -> dict[str, Any]:
        ref = canonical_ref(ref)
        with self._read("ownership", "encumbrances") as conn:  # title lists encumbrance events too
            return queries.title(conn, ref)

    def holdings(self, member: str, as_of: date | None = None, known_at: datetime | None = None) -> dict[str, Any]:
        member = parse_member_id(member, "member")
        with self._read("ownership", "trail") as conn:
            if not queries.in_trail(conn, f"member:{member}"):
                raise NotFound(f"member: no member {member}")
            return queries.holdings(conn, member, as_of, known_at)

    def encumbrances(self, ref: str, as_of: date | None = None, known_at: datetime | None = None) -> dict[str, Any]:
        ref = canonical_ref(ref)
        with self._read("ownership", "encumbrances") as conn:
            return queries.encumbrances(conn, ref, as_of or self.now().date(), known_at)

    def book(self, listing_id: str, viewer: str = "operator") -> dict[str, Any]:
        if any("\ud800" <= ch <= "\udfff" for ch in listing_id):
            raise InvalidInput("listing: the id is not valid UTF-8")
        with self._read("listings", "book") as conn:
            return queries.book(conn, listing_id, Actor.parse(viewer), self.now())

    def bid_history(self, listing_id: str, viewer: str = "operator") -> dict[str, Any]:
        """Every bid placed on a listing, as `viewer` may see them (the web view's chart)."""
        with self._read("listings", "book") as conn:
            return queries.bid_history(conn, listing_id, Actor.parse(viewer))

    def listings(
        self,
        status: str | None = None,
        asset: str | None = None,
        member: str | None = None,
        viewer: str = "operator",
        limit: int | None = None,
        after: tuple[datetime, str] | None = None,
    ) -> dict[str, Any]:
        """Listings; `member`: those it sells or bids on (bids only as `viewer` may see them);
        `after`: from the one after that (opens, id) (a page's start)."""
        status = parse_choice(status, LISTING_STATUSES, "status")
        asset = canonical_ref(asset, "asset") if asset is not None else None
        member = parse_member_id(member, "member") if member is not None else None
        who = Actor.parse(viewer)
        with self._read("listings", "book", "ownership", "members") as conn:
            self._require(conn, asset=asset, member=member)
            return queries.listings(conn, self.now(), who, status, asset, member, limit, after)

    def trail_names(self, doc: dict[str, Any]) -> dict[str, Any]:
        """What a trail's events name but do not say, for telling them in words: each
        aggregate's id (a pledge's events after the first carry only its uuid) and the
        command each used consent was used for."""
        from ipledger.ledger.chain import commands_table

        used = sorted({str(e["data"]["used_for"]) for e in doc["events"] if e["data"].get("used_for")})
        cmd = commands_table.c
        with self._read("members", "ownership", "listings", "trades", "encumbrances") as conn:
            names = lists.aggregate_names(conn, (e["aggregate"] for e in doc["events"]))
            commands = {
                r.command_id: {"command": r.command, "position": r.position}
                for r in conn.execute(select(cmd.command_id, cmd.command, cmd.position).where(cmd.command_id.in_(used)))
            }
        return {"aggregates": names, "commands": commands}

    # ------------------------------------------------------------------ lists for people

    @staticmethod
    def _require(conn: Any, **named: str | None) -> None:
        """A filter naming an unknown asset or member is NotFound, not an empty list (a typo
        would otherwise read as "none")."""
        for field, value in named.items():
            if value is None:
                continue
            if field in ("asset", "ref"):
                queries.require_asset(conn, value, field)
            else:
                lists.require_member(conn, value, field)

    def members(
        self, kind: str | None = None, status: str | None = None, limit: int | None = None, after: str | None = None
    ) -> dict[str, Any]:
        """Members by id; `after`: from the one after that id (a page's start)."""
        kind = parse_enum(MemberKind, kind, "kind").value if kind is not None else None
        status = parse_choice(status, MEMBER_STATUSES, "status")
        with self._read("members") as conn:
            return lists.members(conn, kind, status, limit, after)

    def member(self, member_id: str, viewer: str = "operator") -> dict[str, Any]:
        member_id = parse_member_id(member_id, "member")
        who = Actor.parse(viewer)
        with self._read("members", "ownership", "encumbrances", "listings", "book", "trades") as conn:
            return lists.member_show(conn, member_id, who, self.now())

    def assets(
        self,
        owner: str | None = None,
        jurisdiction: str | None = None,
        kind: str | None = None,
        limit: int | None = None,
        after: str | None = None,
    ) -> dict[str, Any]:
        """Assets by ref; `after`: from the one after that ref (a page's start)."""
        owner = parse_member_id(owner, "owner") if owner is not None else None
        jurisdiction = parse_jurisdiction(jurisdiction, "jurisdiction") if jurisdiction is not None else None
        kind = parse_enum(AssetKind, kind.lower(), "kind").value if kind is not None else None
        with self._read("ownership", "members") as conn:
            self._require(conn, owner=owner)
            return lists.assets(conn, owner, jurisdiction, kind, limit, after)

    def asset(self, ref: str, viewer: str = "operator") -> dict[str, Any]:
        ref = canonical_ref(ref)
        who = Actor.parse(viewer)
        with self._read("ownership", "encumbrances", "listings", "trades") as conn:
            return lists.asset_show(conn, ref, who, self.now())

    def trades(
        self,
        status: str | None = None,
        member: str | None = None,
        limit: int | None = None,
        after: tuple[datetime, str] | None = None,
    ) -> dict[str, Any]:
        """Trades as struck; `after`: from the one after that (struck, id) (a page's start)."""
        status = parse_choice(status, TRADE_STATUSES, "status")
        member = parse_member_id(member, "member") if member is not None else None
        with self._read("trades", "members") as conn:
            self._require(conn, member=member)
            return lists.trades(conn, self.now(), status, member, limit=limit, after=after)

    def trade(self, trade_id: str) -> dict[str, Any]:
        with self._read("trades") as conn:
            return lists.trade_show(conn, trade_id, self.now())

    def pledges(
        self,
        asset: str | None = None,
        pledgee: str | None = None,
        as_of: date | None = None,
        limit: int | None = None,
        start: str | None = None,
    ) -> dict[str, Any]:
        """Pledges in force; `start`: from that asset on (a page's start)."""
        asset = canonical_ref(asset, "asset") if asset is not None else None
        pledgee = parse_member_id(pledgee, "pledgee") if pledgee is not None else None
        with self._read("encumbrances", "ownership", "members") as conn:
            self._require(conn, asset=asset, pledgee=pledgee)
            return lists.pledges(conn, as_of or self.now().date(), asset, pledgee, limit, start)

    def licences(
        self,
        asset: str | None = None,
        licensee: str | None = None,
        as_of: date | None = None,
        limit: int | None = None,
        start: str | None = None,
    ) -> dict[str, Any]:
        """Licences in force; `start`: from that asset on (a page's start)."""
        asset = canonical_ref(asset, "asset") if asset is not None else None
        licensee = parse_member_id(licensee, "licensee") if licensee is not None else None
        with self._read("encumbrances", "ownership", "members") as conn:
            self._require(conn, asset=asset, licensee=licensee)
            return lists.licences(conn, as_of or self.now().date(), asset, licensee, limit, start)

    def trail(
        self,
        asset: str | None = None,
        member: str | None = None,
        viewer: str = "operator",
        after: int = 0,
        limit: int | None = None,
    ) -> dict[str, Any]:
        if (asset is None) == (member is None):
            raise InvalidInput("asset: give exactly one of --asset REF or --member ID")
        if asset is not None:
            key, what = f"asset:{canonical_ref(asset, 'asset')}", "asset"
        else:
            key, what = f"member:{parse_member_id(member or '', 'member')}", "member"
        who = Actor.parse(viewer)
        with self._read("trail", "listings", "book") as conn:  # the last two say which bids are sealed
            return queries.trail(conn, events_view, key, what, who, after, limit)

    def events(self, after: int = 0, viewer: str = "operator", limit: int = 500) -> dict[str, Any]:
        """The log after position `after` as the trail shows it, to `viewer` (the event
        stream, api.md): at most `limit` stored events read; `last` is the position read
        up to, where the next page starts, even when the viewer may see none of them."""
        if after < 0:
            raise InvalidInput(f"after: {after} is not a position (0 or more)")
        who = Actor.parse(viewer)
        with self._read("listings", "book") as conn:  # they say which bids are sealed
            # Only as far as those read models have read: a bid newer than them is unknown to them.
            until = conn.execute(
                select(func.min(tracking_table.c.position)).where(tracking_table.c.name.in_(("listings", "book")))
            ).scalar()
            found, last = queries.events_after(conn, events_view, after, min(limit, max(0, (until or 0) - after)), who)
        return {"events": found, "last": last}

    def latest(self, viewer: str = "operator", limit: int = 10) -> dict[str, Any]:
        """The market's latest events, newest first, as `viewer` may see them (the dashboard's feed)."""
        who = Actor.parse(viewer)
        with self._read("trail", "listings", "book") as conn:  # the last two say which bids are sealed
            return queries.latest(conn, events_view, who, limit)

    def restore(
        self,
        lines: Iterable[bytes],
        checkpoints: Iterable[bytes] = (),
        progress: Callable[[int], None] | None = None,
    ) -> dict[str, Any]:
        """A new store from an export: all of it in one transaction, or nothing (exit 4 at
        the first bad line); then the read models, folded beside the restore or rebuilt
        from what was restored."""
        import tempfile

        from ipledger.failures import detail
        from ipledger.ledger.bulk import bulk_work
        from ipledger.ledger.config import is_sqlite
        from ipledger.ledger.restore import restore
        from ipledger.projections.scratch import ExportFold

        with tempfile.TemporaryDirectory(prefix="ipledger-restore-") as folder:
            # On SQLite a second process folds the read models as the lines are accepted
            # (a large log; see projections/scratch.py); otherwise they are rebuilt after.
            # A file large enough starts it before the store is opened: its start (~0.3 s
            # of imports) then overlaps the opening (~0.17 s for a new store) and the
            # first lines, instead of following them.
            path = f"{folder}/fold.db"
            fold = ExportFold(path, _file_size(lines)) if is_sqlite(self.url) else None
            try:
                if fold is not None:
                    fold.start()
                exchange = self.exchange
                read_models = self.read_models  # opened (tables made) before the log: a failure wipes both
                with bulk_work(), exchange.engine.begin() as conn:
                    accepted = None if fold is None else fold.send
                    done = restore(conn, exchange.recorder.events_table, lines, checkpoints, progress, accepted)
                folded = None if fold is None else fold.finish()
            finally:
                if fold is not None:
                    fold.close()
            exchange.cache.forget()
            try:
                # Replays every event: one that hashes right but is no event of ours fails here.
                # The restore proved every hash as it wrote: the rebuild need not prove them again.
                if folded == done["position"]:
                    read_models.adopt(path, done["position"])
                else:  # no fold: a short log, PostgreSQL, or a child that gave no verdict
                    read_models.rebuild()
            except Exception as e:
                self._wipe()
                raise IntegrityError(f"restore: the log does not replay ({detail(e)}); nothing was kept") from None
        return done

    def _wipe(self) -> None:
        """Empty a store that a restore filled (it was empty before: restore refuses others)."""
        from ipledger.ledger import proofs  # noqa: F401 - its tables join ledger_metadata
        from ipledger.ledger.chain import ledger_metadata
        from ipledger.projections.tables import metadata as read_models

        exchange = self.exchange
        kept = {"ipledger_settings"}  # the log's name, set before the restore by `init --origin`
        with exchange.engine.begin() as conn:
            for table in [*reversed(read_models.sorted_tables), *reversed(ledger_metadata.sorted_tables)]:
                if table.name not in kept:
                    conn.execute(table.delete())
            conn.execute(exchange.recorder.events_table.delete())
        exchange.cache.forget()

    def review_rules(self) -> dict[str, Any]:
        """What today's rule packs would have refused in the recorded history (`rules check`):
        rules judge new commands, so these stand as history, for an operator to review."""
        from ipledger.domain.rulepacks import review_pledges, review_refs

        with self._read("ownership", "encumbrances") as conn:
            pledges = queries.recorded_pledges(conn)
            refs = queries.asset_refs(conn)
        findings = review_refs(refs) + review_pledges(pledges)
        return {
            "assets_checked": len(refs),
            "pledges_checked": len(pledges),
            "findings": [f.as_json() for f in findings],
        }

    # ------------------------------------------------------------------ audit

    def export(self, until: int | None = None, viewer: str = "operator") -> Iterator[bytes]:
        from ipledger.ledger import chain

        if not may_export(Actor.parse(viewer)):
            raise NotAuthorised(
                f"actor: {viewer} may not export the whole log (it holds sealed bids); export is for the operator "
                "and auditors, and a member reads its own history with 'ipledger trail --member'"
            )
        if until is not None:
            until = min(until, 2**63 - 1)  # any position past the head means the whole log
        return chain.export_lines(self.exchange.recorder, self.exchange.engine, until)

    def digest(self) -> dict[str, Any]:
        from ipledger.ledger import chain

        return chain.digest(self.exchange.engine)

    def verify(self, expect: str | None = None, progress: Callable[[int], None] | None = None) -> dict[str, Any]:
        """Recompute the hash chain and every leaf of the Merkle tree, prove the digest is a
        prefix, reconcile every projection. `progress(position)` as the chain is walked."""
        from ipledger.ledger import chain
        from ipledger.ledger.bulk import bulk_work
        from ipledger.projections.scratch import beside_verify

        # Every page of the log is proved (chain, command records, Merkle leaves) and
        # folded into a fresh copy of every read model (the rebuild's own fold), compared
        # at the end; a large log is proved by a second process beside the fold, which
        # also folds the read models `beside_verify` names (this process folds the rest).
        digest = None if expect is None else chain.parse_digest(expect)
        handed = beside_verify(self.read_models.head())
        with (
            bulk_work(),
            self._proved(handed, expect=digest, tree=True, progress=progress) as (proof, beside),
            self.read_models.fresh_replay(beside.names if beside else ()) as fresh,
        ):
            for page in proof.pages():
                fresh(page)
            report = proof.report
            for row in self.read_models.status():
                if row["position"] > row["head"]:
                    raise IntegrityError(
                        f"projections: {row['name']} claims position {row['position']}, beyond the log head "
                        f"{row['head']} (tracking position edited?); run 'ipledger projections rebuild'"
                    )
            differ = fresh.differ(beside)
        if differ:
            raise IntegrityError(
                f"projections: {', '.join(differ)} differ from a fresh replay of the log; "
                "run 'ipledger projections rebuild'"
            )
        return {"ok": True, **report, "projections": sorted(self.read_models.projections)}

    # ------------------------------------------------------------------ proofs (shared/spec/proofs.md)

    def set_origin(self, name: str) -> str:
        """Name the log: checkpoints carry the name (fixed once one is signed)."""
        from ipledger.ledger import proofs
        from ipledger.ledger.checkpoints import check_name

        check_name(name, "origin")
        with self.exchange.engine.begin() as conn:
            proofs.set_origin(conn, name)
        return name

    def origin(self) -> str:
        """The log's name; a log never named gets a random one the first time it is asked
        (`ipledger init --origin NAME` names it before its first checkpoint)."""
        from ipledger.ledger import proofs

        with self.exchange.engine.begin() as conn:
            return proofs.named_origin(conn)

    def checkpoint(self, signer: Signer, viewer: str = "operator") -> dict[str, Any]:
        """Sign the current tree head and keep the checkpoint (append-only)."""
        from ipledger.ledger import proofs
        from ipledger.ledger.checkpoints import sign_checkpoint

        if not Actor.parse(viewer).is_operator:
            raise NotAuthorised(f"actor: {viewer} may not sign checkpoints; the operator signs the log's tree heads")
        with self.exchange.engine.begin() as conn:
            origin = proofs.named_origin(conn)
            size, root = proofs.Tree(conn).head()
            checkpoint = sign_checkpoint(signer, origin, size, root)
            proofs.keep_checkpoint(conn, size, root, checkpoint.note)
        return checkpoint.doc()

    def checkpoints(self, until: int | None = None) -> dict[str, Any]:
        """Every kept checkpoint, oldest first (`until`: those of trees up to that size)."""
        from ipledger.ledger import proofs

        with self.exchange.engine.connect() as conn:
            kept = proofs.checkpoints(conn)
        return {"checkpoints": [c for c in kept if until is None or c["size"] <= until]}

    def checkpoints_held(self) -> dict[str, Any]:
        """Each kept checkpoint against today's stored Merkle tree: whether the tree still
        has the signed root at that size. The quick check a page can make on every view;
        `verify_checkpoint` is the full one (signature, every leaf from the log)."""
        from ipledger.ledger import proofs

        with self.exchange.engine.connect() as conn:
            tree = proofs.Tree(conn)
            size, _ = tree.head()
            kept = [
                {"size": c["size"], "root_hash": c["root_hash"], "holds": c["size"] <= size
                 and tree.root(c["size"]).hex() == c["root_hash"]}
                for c in proofs.checkpoints(conn)
            ]  # fmt: skip
        return {"size": size, "checkpoints": kept}

    def _proof_size(self, conn: Any, size: int | None, field: str) -> int:
        """The tree size a proof is for (default: the latest checkpoint's)."""
        from ipledger.ledger import proofs

        current, latest = proofs.sizes(conn)
        if size is not None and size < 0:
            raise InvalidInput(f"{field}: {size} is not a tree size (0 or more events)")
        if size is None:
            if latest is None:
                raise NotFound(f"{field}: no checkpoint has been signed yet; give a tree size or sign one first")
            size = latest
        if size > current:
            raise InvalidInput(f"{field}: {size} is beyond the tree's size {current}")
        return size

    def prove_inclusion(self, position: int, size: int | None = None) -> dict[str, Any]:
        """The RFC 9162 inclusion proof of the event at `position` in the tree of `size` events."""
        from ipledger.ledger import proofs
        from ipledger.ledger.checkpoints import inclusion_doc

        with self.exchange.engine.connect() as conn:
            size = self._proof_size(conn, size, "size")
            tree = proofs.Tree(conn)
            index, leaf = tree.leaf(position, size)
            plan = merkle.inclusion_plan(index, size)
            root_plan = [merkle.root_nodes(size)]
            hashes = tree.hashes(merkle.needed([plan, root_plan]))
            root = merkle.resolve(root_plan, hashes)[0]
            return inclusion_doc(index, size, leaf, root, merkle.resolve(plan, hashes))

    def prove_consistency(self, first: int, second: int | None = None) -> dict[str, Any]:
        """The RFC 9162 consistency proof that the tree of `first` events is a prefix of `second`'s."""
        from ipledger.ledger import proofs
        from ipledger.ledger.checkpoints import consistency_doc

        with self.exchange.engine.connect() as conn:
            second = self._proof_size(conn, second, "to")
            if not 0 <= first <= second:
                raise InvalidInput(f"from: {first} is not a tree size from 0 to --to {second}")
            first_root, second_root, path = proofs.Tree(conn).consistency_with_roots(first, second)
            return consistency_doc(first, second, first_root, second_root, path)

    def verify_checkpoint(
        self, note: str, vkey: str, expect: str | None = None, progress: Callable[[int], None] | None = None
    ) -> dict[str, Any]:
        """The live log against an earlier signed checkpoint: the signature, the hash chain,
        every leaf of the tree recomputed from the log, and the RFC 9162 consistency proof
        from the checkpoint's tree to today's. No projection is replayed."""
        from ipledger.ledger import chain, proofs
        from ipledger.ledger.checkpoints import Verifier, open_checkpoint

        checkpoint = open_checkpoint(note, Verifier.parse(vkey))
        with self.exchange.engine.connect() as conn:
            origin = proofs.origin(conn)  # read only: verifying names nothing
        if checkpoint.origin != origin:
            this = "not named yet" if origin is None else repr(origin)
            raise IntegrityError(f"checkpoint: it is a checkpoint of {checkpoint.origin!r}, and this log is {this}")
        report = chain.verify_chain(
            self.exchange.recorder.events_table_name,
            self.exchange.engine,
            None if expect is None else chain.parse_digest(expect),
            progress,
            tree=True,
        )
        tree = report["tree"]
        with self.exchange.engine.connect() as conn:
            size, root = tree["size"], bytes.fromhex(tree["root_hash"])
            if size < checkpoint.size:
                raise IntegrityError(
                    f"checkpoint: the log has {size} events, fewer than the checkpoint's {checkpoint.size} (truncated)"
                )
            _, stored_root, path = proofs.Tree(conn).consistency_with_roots(checkpoint.size, size)
        if stored_root != root or not merkle.verify_consistency(checkpoint.size, size, checkpoint.root, root, path):
            raise IntegrityError(
                f"checkpoint: the log's first {checkpoint.size} events are not the ones the checkpoint signed "
                "(history rewritten, reordered or replaced since)"
            )
        return {"ok": True, **report, "checkpoint_size": checkpoint.size, "size": size, "root_hash": root.hex()}

    # ------------------------------------------------------------------ projections

    def rebuild(self, names: Iterable[str] | None = None, progress: Progress | None = None) -> None:
        """Replay the log into fresh read models, but only a log whose hash chain holds: a
        rebuild must never launder an edited event into the answers (the old read models
        stay, and the error names the first bad position)."""
        from ipledger.ledger.config import is_sqlite
        from ipledger.projections.scratch import beside_rebuild

        chosen = self.read_models.names(names)  # NotFound for an unknown name, before the long check
        # On SQLite the child that proves the log also folds the read models `beside_rebuild`
        # names into a file of its own, which the rebuild's transaction takes in (ATTACH);
        # it starts once that file is attached (`deferred`).
        handed = tuple(n for n in beside_rebuild(self.read_models.head()) if n in chosen) if is_sqlite(self.url) else ()
        try:  # the fold commits only once the whole log is proved (beside it, on a large log)
            with self._proved(handed, deferred=True) as (proof, beside):
                self.read_models.rebuild(chosen, progress, proof.pages(), beside=beside)
        except IntegrityError as e:
            raise IntegrityError(f"{e.message}; rebuild refused, the read models were kept") from None

    @contextlib.contextmanager
    def _proved(self, handed: tuple[str, ...], **options: Any) -> Iterator[tuple[Proof, Beside | None]]:
        """The log's pages, proved (ledger/prover.py; `options` as Proof takes them), and
        the read models `handed` to the child that proves a large log, folded by it into a
        scratch file (None: no child, or nothing handed)."""
        import tempfile

        from ipledger.ledger.prover import Proof
        from ipledger.projections.runner import Beside
        from ipledger.projections.scratch import PROVER

        exchange = self.exchange
        with tempfile.TemporaryDirectory(prefix="ipledger-proof-") as folder:
            path = os.path.join(folder, "beside.db")
            fold = {"path": path, "names": list(handed)} if handed else None
            events = exchange.recorder.events_table_name
            with Proof(exchange.url, events, exchange.engine, fold=fold, child=PROVER, **options) as proof:
                folded = handed and proof.parallel
                yield proof, Beside(handed, path, proof.start, lambda: proof.folded, proof.pages) if folded else None

    def projection_status(self) -> list[dict[str, Any]]:
        return self.read_models.status()


def _file_size(lines: Any) -> int | None:
    """The size of the regular file `lines` reads, or None (a pipe, standard input, a list)."""
    import stat

    try:
        st = os.fstat(lines.fileno())
    except (AttributeError, OSError, ValueError):
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


@functools.cache
def _currency_statement() -> Any:
    """What `Ledger._current` reads, built once (the statement and its cache key cost more
    than the read itself, before every query)."""
    from ipledger.ledger.schema import revision_column

    t = tracking_table.c
    head = select(func.max(events_view.c.id)).scalar_subquery()
    return select(t.name, t.position, t.fingerprint, revision_column().label("revision"), head.label("head"))
