"""`ipledger`: the command line of the IP ledger (contract: shared/spec/cli.md).

Thin by design: each command parses its options into the argument dict of one
ledger command or query, calls the service, and prints. Errors are mapped to
`error: Name: message` and exit codes in one place (`main`).
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import threading
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Callable, NoReturn

import click

from ipledger.failures import describe_failure, one_line
from ipledger.lazy import lazy_module

if TYPE_CHECKING:
    from ipledger import render
    from ipledger.ledger import commands as c
    from ipledger.service import Ledger
else:
    # The command classes load when a writing command runs, the table layouts when a list
    # prints, not for `--help` or any other command (cold start).
    c = lazy_module("ipledger.ledger.commands")
    render = lazy_module("ipledger.render")


# --------------------------------------------------------------------------- context


class Session:
    """The context object: global options and the ledger, opened on first use."""

    def __init__(self, db: str | None, actor: str, as_json: bool, command_id: str | None) -> None:
        self.db = db
        self.actor = actor
        self.as_json = as_json
        self.command_id = command_id
        self._ledger: Ledger | None = None

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            from ipledger.service import open_ledger

            self._ledger = open_ledger(self.db)
        return self._ledger

    def close(self) -> None:
        """Give the store's connections back when the command ends (a long-lived caller, a
        test runner or a server, would otherwise keep every command's pool open)."""
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None

    def write(
        self, command: type[c.Command], args: dict[str, Any], plain: Callable[[dict[str, Any]], str] | None = None
    ) -> None:
        outcome = self.ledger.execute(command.name, _drop_unset(args), actor=self.actor, command_id=self.command_id)
        if outcome.get("restored") is True:  # a repeat of a command recorded before a restore (ledger/restore.py)
            plain = _restored_plain
        self.emit(outcome, plain or (lambda o: str(o["id"])))
        self.ledger.refresh_read_models()

    def emit(self, doc: Any, plain: Callable[[Any], str]) -> None:
        if self.as_json:
            click.echo(json.dumps(doc, ensure_ascii=False))
        else:
            click.echo(plain(doc))

    def format_of(self, fmt: str | None) -> str:
        """`--format`, else `--json`, else text; the two may not disagree."""
        if fmt is not None and self.as_json and fmt != "json":
            raise click.UsageError(f"format: --json and --format {fmt} disagree; give one of them")
        return fmt or ("json" if self.as_json else "text")

    def emit_list(self, doc: dict[str, Any], key: str, columns: tuple[render.Column, ...], fmt: str | None) -> None:
        """A list in the format asked for: `--format`, else `--json`, else a text table."""
        fmt = self.format_of(fmt)
        if fmt == "json":
            click.echo(json.dumps(doc, ensure_ascii=False))
        elif fmt == "csv":
            click.echo(render.csv_text(doc[key], columns), nl=False)
        elif doc[key]:
            click.echo(render.table_text(doc[key], columns, terminal=_tty()))
        else:
            click.echo(f"(no {key})")


def _tty() -> bool:
    """Whether stdout is a terminal: tables fit the window and may use colour; otherwise
    (a pipe, a file) they are laid out wide, plain and the same on every run."""
    return sys.stdout.isatty()


def _restored_plain(outcome: dict[str, Any]) -> str:
    return (
        "already recorded (before a restore; the store keeps only its outcome's sha256 "
        f"{outcome['outcome_sha256']}); nothing written"
    )


def _drop_unset(args: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in args.items() if v is not None and v != () and v is not False}


pass_session = click.make_pass_decorator(Session)


def json_flag(func: Callable[..., Any]) -> Callable[..., Any]:
    """`--json` is accepted after the command too, for scripts that put it last."""

    def set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        session = ctx.find_object(Session)
        if value and session is not None:
            session.as_json = True

    return click.option(
        "--json", "json_", is_flag=True, expose_value=False, callback=set_json, help="Machine-readable output."
    )(func)


class DateType(click.ParamType):
    name = "DATE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> date:
        from ipledger.domain.errors import InvalidInput
        from ipledger.domain.values import parse_date

        try:
            return parse_date(value, param.name if param else "date")
        except InvalidInput as e:
            self.fail(e.message, param, ctx)


class TimeType(click.ParamType):
    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        from ipledger.domain.errors import InvalidInput
        from ipledger.domain.values import parse_time

        try:
            return parse_time(value, param.name if param else "time")
        except InvalidInput as e:
            self.fail(e.message, param, ctx)


class AsciiIntType(click.ParamType):
    """A whole number in ASCII digits (int() would take ١٥٠ or full-width digits too)."""

    name = "N"

    def __init__(self, minimum: int | None = None) -> None:
        self.minimum = minimum

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        text = str(value).strip()
        digits = text.removeprefix("-")
        if not (text.isascii() and digits.isdigit()):
            self.fail(f"{value!r} is not a whole number", param, ctx)
        # Judged by its digits before it is made a number: Python refuses to read more than
        # 4,300 digits (a ValueError, not a usage error).
        huge = len(digits.lstrip("0")) > 9
        number = -(10**9) if huge and text.startswith("-") else 10**9 if huge else int(text)
        if self.minimum is not None and number < self.minimum:
            self.fail(f"{value!r} is less than {self.minimum}", param, ctx)
        if huge:
            self.fail(f"{value!r} is too large (at most 9 digits)", param, ctx)
        return number


class Parsed(click.ParamType):
    """A value the domain's parser checks and canonicalises while the options are read, so
    a bad filter is a usage error naming its option (exit 2)."""

    def __init__(self, name: str, parse: Callable[[str], Any]) -> None:
        self.name, self.parse = name, parse

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from ipledger.domain.errors import InvalidInput

        try:
            return self.parse(value)
        except InvalidInput as e:
            self.fail(e.message.partition(": ")[2] or e.message, param, ctx)


# The parsers load the domain's values on first use, not for `--help` (cold start).


def _ref(value: str) -> str:
    from ipledger.domain.values import canonical_ref

    return canonical_ref(value)


def _member_id(value: str) -> str:
    from ipledger.domain.values import parse_member_id

    return parse_member_id(value)


def _jurisdiction(value: str) -> str:
    from ipledger.domain.values import parse_jurisdiction

    return parse_jurisdiction(value)


def _member_kind(value: str) -> str:
    from ipledger.domain.values import MemberKind, parse_enum

    return str(parse_enum(MemberKind, value, "kind").value)


def _asset_kind(value: str) -> str:
    from ipledger.domain.values import AssetKind, parse_enum

    return str(parse_enum(AssetKind, value.lower(), "kind").value)


DATE = DateType()
TIME = TimeType()
ASCII_INT = AsciiIntType()
REF = Parsed("REF", _ref)
MEMBER = Parsed("MEMBER", _member_id)
JURISDICTION = Parsed("CC", _jurisdiction)
MEMBER_KIND = Parsed("KIND", _member_kind)
ASSET_KIND = Parsed("KIND", _asset_kind)


def list_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """What every list takes: `--format text|json|csv` (`--json` is `--format json`) and `--limit`."""
    func = click.option("--limit", type=AsciiIntType(minimum=1), metavar="N", help="At most N items (default: all).")(
        func
    )
    func = click.option(
        "--format",
        "fmt",
        type=click.Choice(["text", "json", "csv"]),
        default=None,
        help="text: an aligned table with a header (default); json: one document; csv: a header row, then one "
        "row per item, lists joined with ';'.",
    )(func)
    return json_flag(func)


# --------------------------------------------------------------------------- group


class _NeverRaised(click.UsageError):
    """Stands in for NoArgsIsHelpError on click 8.1, which printed the help and exited 0 itself."""


#: Click ≥ 8.2 raises this for a group given no command.
NO_ARGS_IS_HELP: type[click.UsageError] = getattr(click.exceptions, "NoArgsIsHelpError", _NeverRaised)


class LedgerGroup(click.Group):
    """The one place that maps every failure to `error: Name: message` and an exit code."""

    def main(
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        argv = list(args) if args is not None else sys.argv[1:]
        try:
            super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
            code = 0
        except click.exceptions.Exit as e:
            code = e.exit_code
        except NO_ARGS_IS_HELP as e:  # a bare `ipledger` or `ipledger member`: help, not an error
            click.echo(e.ctx.get_help() if e.ctx is not None else e.format_message())
            code = 0
        except click.exceptions.Abort:
            code = _fail("Aborted", "interrupted", 1, "--json" in argv)
        except Exception as e:  # noqa: BLE001 - never a traceback for the user
            code = _fail(*describe_failure(e), "--json" in argv)
        if standalone_mode:
            sys.exit(code)
        return code


@click.group(cls=LedgerGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--db",
    envvar="IPLEDGER_DB",
    default=None,
    metavar="URL",
    help="The store: a SQLite file's path (….db, ….sqlite, ….sqlite3) or a SQLAlchemy URL "
    "(sqlite:///…, postgresql://…); default ipledger.db. Environment: IPLEDGER_DB.",
)
@click.option(
    "--actor",
    envvar="IPLEDGER_ACTOR",
    default="operator",
    show_default=True,
    metavar="ID",
    help="Who issues the command: a member id, operator or auditor.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output: one JSON document.")
@click.option(
    "--command-id",
    default=None,
    metavar="ID",
    help="Idempotency key: repeating it returns the first outcome and writes nothing.",
)
@click.version_option(package_name="ipledger")
@click.pass_context
def cli(ctx: click.Context, db: str | None, actor: str, as_json: bool, command_id: str | None) -> None:
    """An event-sourced ledger for IP trading: every fact an immutable event."""
    ctx.obj = Session(db, actor, as_json, command_id)
    ctx.call_on_close(ctx.obj.close)


@cli.command()
@click.option("--origin", metavar="NAME", help="The log's name in its signed checkpoints (default: ipledger/<random>).")
@json_flag
@pass_session
def init(s: Session, origin: str | None) -> None:
    """Create or upgrade the store's schema (every command also does this on first use)."""
    from ipledger.ledger.schema import current_revision

    ledger = s.ledger
    if origin is not None:
        ledger.set_origin(origin)
    doc = {"db": ledger.url, "schema": current_revision(ledger.exchange.engine), "head": ledger.read_models.head(),
           "origin": ledger.origin()}  # fmt: skip
    s.emit(doc, lambda d: f"initialised {d['db']} (schema {d['schema']}, {d['head']} events, origin {d['origin']})")


# --------------------------------------------------------------------------- members


@cli.group()
def member() -> None:
    """Admit, suspend and reinstate members."""


@member.command("add")
@click.argument("id")
@click.option("--name", required=True, help="Legal name.")
@click.option(
    "--kind",
    required=True,
    metavar="KIND",
    help="university, research_institute, enterprise, tech_transfer, financial_institution, individual.",
)
@click.option("--country", required=True, metavar="CC", help="ISO 3166-1 alpha-2.")
@json_flag
@pass_session
def member_add(s: Session, id: str, name: str, kind: str, country: str) -> None:
    """Admit a member."""
    s.write(c.AddMember, {"id": id, "name": name, "kind": kind, "country": country})


@member.command("suspend")
@click.argument("id")
@click.option("--reason", metavar="TEXT", help="Why (recorded in the event).")
@json_flag
@pass_session
def member_suspend(s: Session, id: str, reason: str | None) -> None:
    """Suspend a member: it can no longer trade, license, pledge or receive rights."""
    s.write(c.SuspendMember, {"id": id, "reason": reason})


@member.command("reinstate")
@click.argument("id")
@json_flag
@pass_session
def member_reinstate(s: Session, id: str) -> None:
    """Reinstate a suspended member."""
    s.write(c.ReinstateMember, {"id": id})


# --------------------------------------------------------------------------- assets


@cli.group()
def asset() -> None:
    """Register and convey assets (the title register)."""


@asset.command("register")
@click.argument("ref")
@click.option("--title", required=True, help="The right's title as registered (one line).")
@click.option(
    "--owner",
    multiple=True,
    required=True,
    metavar="MEMBER[=SHARE]",
    help="Repeat for co-owners; shares are exact fractions (1/3) or decimals (0.25).",
)
@click.option("--expires-on", metavar="DATE", help="Last day the right is in force (CN pledges may not run past it).")
@click.option("--effective", metavar="DATE", help="When it took effect (default: today).")
@json_flag
@pass_session
def asset_register(
    s: Session, ref: str, title: str, owner: tuple[str, ...], expires_on: str | None, effective: str | None
) -> None:
    """Register an asset with its owner(s)."""
    s.write(
        c.RegisterAsset,
        {"ref": ref, "title": title, "owner": list(owner), "expires_on": expires_on, "effective": effective},
    )


@asset.command("assign")
@click.argument("ref")
@click.option("--to", multiple=True, required=True, metavar="MEMBER[=SHARE]", help="The new owner set.")
@click.option("--effective", metavar="DATE", help="When it took legal effect (default: the recorded date).")
@click.option(
    "--conveyance", default=None, metavar="KIND", help="assignment (default), merger, name_change, correction."
)
@click.option("--consent", multiple=True, metavar="CONSENT_ID", help="Pledgee consents for this act.")
@json_flag
@pass_session
def asset_assign(
    s: Session, ref: str, to: tuple[str, ...], effective: str | None, conveyance: str | None, consent: tuple[str, ...]
) -> None:
    """Record a direct conveyance of title."""
    s.write(
        c.AssignAsset,
        {"ref": ref, "to": list(to), "effective": effective, "conveyance": conveyance, "consent": list(consent)},
    )


@asset.command("consent")
@click.argument("ref")
@click.option("--member", required=True, metavar="MEMBER", help="The co-owner giving consent.")
@click.option("--act", required=True, metavar="ACT", help="assignment, listing, exclusive_licence or pledge.")
@click.option("--id", "id_", metavar="ID", help="Choose its id (unique); default: generated and printed.")
@json_flag
@pass_session
def asset_consent(s: Session, ref: str, member: str, act: str, id_: str | None) -> None:
    """A co-owner consents to one act by another co-owner acting alone (used once)."""
    s.write(c.ConsentAsCoOwner, {"ref": ref, "member": member, "act": act, "id": id_})


# --------------------------------------------------------------------------- listings


@cli.group()
def listing() -> None:
    """Open, close and withdraw listings."""


@listing.command("open")
@click.argument("ref")
@click.option(
    "--type", "type_", required=True, metavar="assignment|licence", help="Sell the asset, or a licence under it."
)
@click.option(
    "--mechanism",
    required=True,
    metavar="fixed|english|sealed|negotiated",
    help="fixed price, open ascending auction, sealed bids, or the seller accepts a bid.",
)
@click.option("--currency", required=True, metavar="CUR", help="ISO 4217 code; bids are in it.")
@click.option("--closes", required=True, metavar="TIME", help="When bidding ends (ISO 8601, UTC if no offset).")
@click.option("--opens", metavar="TIME", help="When bidding starts (default: now).")
@click.option("--ask", metavar="AMT", help="Asking price (fixed) or opening price (english).")
@click.option(
    "--reserve", metavar="AMT", help="Lowest price the sellers accept; only they, the operator and auditors see it."
)
@click.option("--increment", metavar="AMT", help="Minimum raise over the best bid (english).")
@click.option(
    "--extend-minutes", type=ASCII_INT, metavar="N", help="Anti-sniping: a bid in the last N minutes extends the close."
)
@click.option("--settlement-days", type=ASCII_INT, metavar="N", help="Days a pending trade has to settle (default 7).")
@click.option("--licence-type", metavar="T", help="Licence listings: exclusive, sole or non_exclusive.")
@click.option("--territory", multiple=True, metavar="CC", help="Licence listings: ISO country code or WORLD; repeat.")
@click.option("--field", multiple=True, metavar="F", help="Licence listings: field of use or ALL; repeat.")
@click.option("--term-start", metavar="DATE", help="Licence listings: first day of the licence.")
@click.option("--term-end", metavar="DATE", help="Licence listings: the licence ends before this day.")
@click.option("--sublicensable", is_flag=True, help="The licensee may grant sublicences.")
@click.option(
    "--consent", multiple=True, metavar="CONSENT_ID", help="Pledgee or co-owner consents for this act; repeat."
)
@click.option("--id", "id_", metavar="ID", help="Choose its id (unique); default: generated and printed.")
@json_flag
@pass_session
def listing_open(s: Session, ref: str, type_: str, **opts: Any) -> None:
    """Offer an asset for assignment or for a licence."""
    id_ = opts.pop("id_")
    args = {"ref": ref, "type": type_, **opts, "id": id_}
    for key in ("territory", "field", "consent"):
        args[key] = list(args[key])
    s.write(c.OpenListing, args)


@listing.command("withdraw")
@click.argument("listing")
@json_flag
@pass_session
def listing_withdraw(s: Session, listing: str) -> None:
    """Withdraw an open listing (not an English auction with bids)."""
    s.write(c.WithdrawListing, {"listing": listing})


@listing.command("close")
@click.argument("listing")
@click.option("--trade-id", metavar="ID", help="Id for the trade a winner creates.")
@json_flag
@pass_session
def listing_close(s: Session, listing: str, trade_id: str | None) -> None:
    """At or after the close: pick the winner (a pending trade) or end unsold."""
    s.write(
        c.CloseListing,
        {"listing": listing, "trade_id": trade_id},
        lambda o: f"{o['id']} {o['status']}" + (f" trade {o['trade']}" if o.get("trade") else ""),
    )


# --------------------------------------------------------------------------- bids


@cli.group()
def bid() -> None:
    """Place, withdraw and accept bids."""


@bid.command("place")
@click.argument("listing")
@click.option("--bidder", required=True, metavar="MEMBER", help="The member bidding (a member actor bids for itself).")
@click.option("--amount", required=True, metavar="AMT", help="Decimal in the listing's currency, e.g. 180000.00.")
@click.option("--trade-id", metavar="ID", help="Id for the trade if this bid wins at once (fixed price).")
@click.option("--id", "id_", metavar="ID", help="Choose its id (unique); default: generated and printed.")
@json_flag
@pass_session
def bid_place(s: Session, listing: str, bidder: str, amount: str, trade_id: str | None, id_: str | None) -> None:
    """Bid on a listing."""
    s.write(
        c.PlaceBid,
        {"listing": listing, "bidder": bidder, "amount": amount, "trade_id": trade_id, "id": id_},
        lambda o: str(o["id"]) + (f" trade {o['trade']}" if o.get("trade") else ""),
    )


@bid.command("withdraw")
@click.argument("bid")
@json_flag
@pass_session
def bid_withdraw(s: Session, bid: str) -> None:
    """Withdraw a bid (English-auction bids are binding)."""
    s.write(c.WithdrawBid, {"bid": bid})


@bid.command("accept")
@click.argument("bid")
@click.option("--trade-id", metavar="ID", help="Id for the pending trade this creates (default: generated).")
@json_flag
@pass_session
def bid_accept(s: Session, bid: str, trade_id: str | None) -> None:
    """Accept a bid on a negotiated listing: creates a pending trade."""
    s.write(c.AcceptBid, {"bid": bid, "trade_id": trade_id}, lambda o: f"{o['id']} trade {o['trade']}")


# --------------------------------------------------------------------------- trades


@cli.group()
def trade() -> None:
    """Settle or void pending trades."""


@trade.command("settle")
@click.argument("trade")
@click.option("--payment-ref", required=True, metavar="TEXT", help="The payment's reference, e.g. a CNAPS number.")
@click.option("--effective", metavar="DATE", help="When it took legal effect (default: the recorded date).")
@json_flag
@pass_session
def trade_settle(s: Session, trade: str, payment_ref: str, effective: str | None) -> None:
    """Payment confirmed: settle and convey title (or grant the licence) atomically."""
    s.write(c.SettleTrade, {"trade": trade, "payment_ref": payment_ref, "effective": effective})


@trade.command("void")
@click.argument("trade")
@click.option("--reason", metavar="TEXT", help="Why (recorded in the event).")
@json_flag
@pass_session
def trade_void(s: Session, trade: str, reason: str | None) -> None:
    """Cancel a pending trade and free the asset."""
    s.write(c.VoidTrade, {"trade": trade, "reason": reason})


# --------------------------------------------------------------------------- licences


@cli.group()
def licence() -> None:
    """Grant, terminate and surrender licences."""


@licence.command("grant")
@click.argument("ref")
@click.option("--licensee", required=True, metavar="MEMBER", help="The member receiving the licence.")
@click.option(
    "--type",
    "type_",
    required=True,
    metavar="exclusive|sole|non_exclusive",
    help="exclusive (not even the owner), sole (owner and licensee), non_exclusive.",
)
@click.option("--territory", multiple=True, required=True, metavar="CC", help="ISO country code or WORLD; repeat.")
@click.option("--field", multiple=True, required=True, metavar="F", help="Field of use or ALL; repeat.")
@click.option("--start", required=True, metavar="DATE", help="First day of the term.")
@click.option("--end", required=True, metavar="DATE", help="Term is [start, end).")
@click.option("--sublicensable", is_flag=True, help="The licensee may grant sublicences.")
@click.option("--royalty-rate", metavar="PCT", help="Royalty, percent of sales (0-100).")
@click.option("--lump-sum", metavar="AMT", help="One-off fee; give --currency with it.")
@click.option("--currency", metavar="CUR", help="ISO 4217 code of the amount.")
@click.option("--parent", metavar="LICENCE", help="Grant a sublicence under this licence.")
@click.option("--consent", multiple=True, metavar="CONSENT_ID", help="Pledgee consents for licensing.")
@click.option("--id", "id_", metavar="ID", help="Choose its id (unique); default: generated and printed.")
@json_flag
@pass_session
def licence_grant(
    s: Session,
    ref: str,
    type_: str,
    territory: tuple[str, ...],
    field: tuple[str, ...],
    consent: tuple[str, ...],
    id_: str | None,
    **opts: Any,
) -> None:
    """Grant a licence (or a sublicence with --parent)."""
    s.write(
        c.GrantLicence,
        {
            "ref": ref,
            "type": type_,
            "territory": list(territory),
            "field": list(field),
            "consent": list(consent),
            "id": id_,
            **opts,
        },
    )


@licence.command("terminate")
@click.argument("licence")
@click.option("--reason", required=True, metavar="TEXT", help="Why (recorded in the event).")
@click.option("--effective", metavar="DATE", help="When it took legal effect (default: the recorded date).")
@json_flag
@pass_session
def licence_terminate(s: Session, licence: str, reason: str, effective: str | None) -> None:
    """The licensor ends a licence, with a reason."""
    s.write(c.TerminateLicence, {"licence": licence, "reason": reason, "effective": effective})


@licence.command("surrender")
@click.argument("licence")
@click.option("--effective", metavar="DATE", help="When it took legal effect (default: the recorded date).")
@json_flag
@pass_session
def licence_surrender(s: Session, licence: str, effective: str | None) -> None:
    """The licensee gives a licence up."""
    s.write(c.SurrenderLicence, {"licence": licence, "effective": effective})


# --------------------------------------------------------------------------- pledges


@cli.group()
def pledge() -> None:
    """Register, consent under, release and enforce pledges."""


@pledge.command("register")
@click.argument("ref")
@click.option("--pledgee", required=True, metavar="MEMBER", help="The lending financial institution.")
@click.option("--amount", metavar="AMT", help="Secured amount (optional; give --currency with it).")
@click.option("--currency", metavar="CUR", help="ISO 4217 code of the amount.")
@click.option("--start", metavar="DATE", help="Effective date (default: the recorded date).")
@click.option("--end", metavar="DATE", help="The secured debt's term end (required for CN patents: ipledger rules CN).")
@click.option("--id", "id_", metavar="ID", help="Choose its id (unique); default: generated and printed.")
@json_flag
@pass_session
def pledge_register(s: Session, ref: str, pledgee: str, id_: str | None, **opts: Any) -> None:
    """Pledge an asset to a financial institution as loan collateral."""
    s.write(
        c.RegisterPledge, {"ref": ref, "pledgee": pledgee, "id": id_, **opts}, lambda o: f"{o['id']} rank {o['rank']}"
    )


@pledge.command("consent")
@click.argument("pledge")
@click.option("--act", required=True, metavar="assignment|licence|listing", help="The one act consented to.")
@click.option("--id", "id_", metavar="ID", help="Choose its id (unique); default: generated and printed.")
@json_flag
@pass_session
def pledge_consent(s: Session, pledge: str, act: str, id_: str | None) -> None:
    """The pledgee consents to one act; prints the consent id to pass as --consent."""
    s.write(c.ConsentAsPledgee, {"pledge": pledge, "act": act, "id": id_})


@pledge.command("release")
@click.argument("pledge")
@click.option("--effective", metavar="DATE", help="When it took legal effect (default: the recorded date).")
@json_flag
@pass_session
def pledge_release(s: Session, pledge: str, effective: str | None) -> None:
    """The pledgee releases the pledge (loan repaid)."""
    s.write(c.ReleasePledge, {"pledge": pledge, "effective": effective})


@pledge.command("enforce")
@click.argument("pledge")
@click.option("--effective", metavar="DATE", help="When it took legal effect (default: the recorded date).")
@json_flag
@pass_session
def pledge_enforce(s: Session, pledge: str, effective: str | None) -> None:
    """On default: the asset is assigned to the pledgee."""
    s.write(c.EnforcePledge, {"pledge": pledge, "effective": effective})


# --------------------------------------------------------------------------- queries


def _owners_plain(doc: dict[str, Any]) -> str:
    lines = [
        f"{doc['asset']}"
        + (f" as of {doc['as_of']}" if doc["as_of"] else "")
        + (f" known at {doc['known_at']}" if doc["known_at"] else "")
    ]
    lines += [f"  {o['member']:<32} {o['share']}" for o in doc["owners"]] or ["  (no owner on that date)"]
    return "\n".join(lines)


@cli.command()
@click.argument("ref")
@click.option("--as-of", type=DATE, help="Effective date (default: now).")
@click.option("--known-at", type=TIME, help="Only events recorded by then.")
@json_flag
@pass_session
def owner(s: Session, ref: str, as_of: date | None, known_at: datetime | None) -> None:
    """Who owns an asset (now, on an effective date, as known at a time)."""
    s.emit(s.ledger.owner(ref, as_of, known_at), _owners_plain)


def _title_plain(doc: dict[str, Any]) -> str:
    lines = [f"chain of title of {doc['asset']}"]
    for c in doc["conveyances"]:
        to = ", ".join(f"{o['member']} {o['share']}" for o in c["shares"])
        frm = ", ".join(c["from"]) or "-"
        trade = f" (trade {c['trade']})" if c["trade"] else ""
        lines.append(
            f"  #{c['position']:<6} {c['effective']} {c['kind']:<12} {frm} -> {to}{trade}  recorded {c['recorded']}"
        )
    return "\n".join(lines)


@cli.command()
@click.argument("ref")
@json_flag
@pass_session
def title(s: Session, ref: str) -> None:
    """Chain of title: every conveyance in effective-date order."""
    s.emit(s.ledger.title(ref), _title_plain)


def _encumbrances_plain(doc: dict[str, Any]) -> str:
    lines = [
        f"encumbrances of {doc['asset']} on {doc['as_of']}"
        + (f" known at {doc['known_at']}" if doc["known_at"] else "")
    ]
    for x in doc["licences"]:
        lines.append(
            f"  licence {x['id']}: {x['type']} to {x['licensee']} {'+'.join(x['territories'])} x "
            f"{'+'.join(x['fields'])} [{x['start']}, {x['end']})" + (f" under {x['parent']}" if x["parent"] else "")
        )
    for p in doc["pledges"]:
        amount = f" securing {p['amount']} {p['currency']}" if p["amount"] else ""
        lines.append(f"  pledge {p['id']} rank {p['rank']}: to {p['pledgee']}{amount}")
    if len(lines) == 1:
        lines.append("  (none)")
    return "\n".join(lines)


@cli.command()
@click.argument("ref")
@click.option("--as-of", type=DATE, help="Effective date (default: today).")
@click.option("--known-at", type=TIME, help="Only events recorded by then.")
@json_flag
@pass_session
def encumbrances(s: Session, ref: str, as_of: date | None, known_at: datetime | None) -> None:
    """Licences and pledges in force on a date."""
    s.emit(s.ledger.encumbrances(ref, as_of, known_at), _encumbrances_plain)


def _book_plain(doc: dict[str, Any]) -> str:
    head = (
        f"{doc['listing']} {doc['mechanism']} {doc['type']} of {doc['asset']} [{doc['status']}] closes {doc['closes']}"
    )
    if doc["status"] == "sold":
        head += f" — won by {doc['winner']} at {doc['price']} {doc['currency']} (trade {doc['trade']})"
    elif doc["status"] == "lapsed":
        head += f" — trade {doc['trade']} lapsed unsettled at its deadline {doc['deadline']}"
    elif doc["status"] == "closed" and doc.get("trade"):
        head += f" — trade {doc['trade']} was voided"
    lines = [head]
    if doc["sealed_hidden"]:
        lines.append("  (sealed: other bidders' bids are hidden until the close)")
    for b in doc["bids"]:
        lines.append(f"  {b['amount']:>16} {doc['currency']}  {b['bidder']:<24} {b['placed']}  {b['id']} {b['state']}")
    if not doc["bids"]:
        lines.append("  (no bids)")
    return "\n".join(lines)


@cli.command()
@click.argument("listing")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "csv"]),
    default=None,
    help="text: the listing and its bids (default); json: one document; csv: the bids, one row each.",
)
@json_flag
@pass_session
def book(s: Session, listing: str, fmt: str | None) -> None:
    """The order book of a listing: price desc, then time asc (sealed bids as the actor may see them)."""
    fmt = s.format_of(fmt)
    doc = s.ledger.book(listing, s.actor)
    if fmt == "csv":
        click.echo(render.csv_text(doc["bids"], render.BOOK), nl=False)
    else:
        s.as_json = fmt == "json"
        s.emit(doc, _book_plain)


@cli.command()
@click.option(
    "--status", type=click.Choice(["open", "closed", "withdrawn", "unsold", "sold", "lapsed"]), help="Only this status."
)
@click.option("--asset", type=REF, metavar="REF", help="Only listings of this asset.")
@click.option("--member", type=MEMBER, metavar="MEMBER", help="Only listings it sells or bids on.")
@list_options
@pass_session
def listings(
    s: Session, status: str | None, asset: str | None, member: str | None, limit: int | None, fmt: str
) -> None:
    """Listings in opening order, optionally by status, asset or member."""
    doc = s.ledger.listings(status, asset, member, viewer=s.actor, limit=limit)
    s.emit_list(doc, "listings", render.LISTINGS, fmt)


@cli.command()
@click.argument("member")
@click.option("--as-of", type=DATE, help="On this effective date (default: today).")
@click.option("--known-at", type=TIME, help="As the ledger knew it at this time (what was recorded by then).")
@json_flag
@pass_session
def holdings(s: Session, member: str, as_of: date | None, known_at: datetime | None) -> None:
    """Assets a member owns (now, on an effective date, as known at a time)."""
    s.emit(
        s.ledger.holdings(member, as_of, known_at),
        lambda d: "\n".join([f"holdings of {d['member']}"] + [f"  {a['asset']:<40} {a['share']}" for a in d["assets"]]),
    )


def _trail_plain(doc: dict[str, Any], names: dict[str, Any]) -> str:
    """Aligned columns (position, time to the second, actor) and each event in words."""
    from ipledger.describe import trail_rows

    text = f"trail of {doc['key']}\n" + render.table_text(trail_rows(doc, names), render.TRAIL, terminal=_tty())
    if doc.get("next") is not None:
        text = text.rstrip("\n") + f"\nmore after position {doc['next']} (--after {doc['next']})"
    return text


@cli.command()
@click.option("--asset", metavar="REF", help="The asset's trail (give this or --member).")
@click.option("--member", metavar="ID", help="The member's trail (give this or --asset).")
@click.option(
    "--after", type=AsciiIntType(minimum=0), default=0, metavar="N", help="Only events after log position N."
)
@click.option(
    "--limit", type=AsciiIntType(minimum=1), metavar="N", help="At most N events; `next` says where the rest start."
)
@json_flag
@pass_session
def trail(s: Session, asset: str | None, member: str | None, after: int, limit: int | None) -> None:
    """Every event touching an asset or a member, in log order (a page of them with --limit)."""
    doc = s.ledger.trail(asset, member, s.actor, after, limit)
    s.emit(doc, lambda d: _trail_plain(d, s.ledger.trail_names(d)))


# --------------------------------------------------------------------------- lists for people
# cli.md "Lists for people": every list takes --format text|json|csv and --limit; each
# `show` gives everything a person needs about one thing. Sealed bids as `book` shows them.


@cli.command()
@click.option("--kind", type=MEMBER_KIND, help="Only members of this kind (university, enterprise, …).")
@click.option("--status", type=click.Choice(["active", "suspended"]), help="Only members with this status.")
@list_options
@pass_session
def members(s: Session, kind: str | None, status: str | None, limit: int | None, fmt: str | None) -> None:
    """Members by id: name, kind, country, status."""
    s.emit_list(s.ledger.members(kind, status, limit), "members", render.MEMBERS, fmt)


@member.command("show")
@click.argument("id", type=MEMBER)
@json_flag
@pass_session
def member_show(s: Session, id: str) -> None:
    """Everything about a member: holdings, pledges and licences it holds, listings, live bids, trades."""
    s.emit(s.ledger.member(id, s.actor), _member_plain)


def _member_plain(d: dict[str, Any]) -> str:
    status = d["status"] + (f" ({d['suspension_reason']})" if d["suspension_reason"] else "")
    head = [("name", d["name"]), ("kind", d["kind"]), ("country", d["country"]), ("status", status)]
    return _show(
        f"member {d['member']}",
        head + [("admitted", d["admitted"])],
        [
            ("holdings", d["holdings"], render.HOLDINGS),
            ("pledges it holds as pledgee", d["pledges"], render.without(render.PLEDGES, "pledgee")),
            ("licences it holds as licensee", d["licences"], render.without(render.LICENCES, "licensee")),
            ("open listings it sells", d["listings"], render.without(render.LISTINGS, "sellers")),
            ("live bids", d["bids"], render.BIDS),
            ("trades", d["trades"], render.TRADES),
        ],
    )


def _show(title: str, head: list[tuple[str, Any]], sections: list[tuple[str, list[Any], Any]]) -> str:
    """A show as people read it: the title, aligned facts, then each list as a table."""
    parts = [title, _indent(render.fields_text(head, terminal=_tty()))]
    for name, items, columns in sections:
        parts.append(f"{name}:")
        parts.append(_indent(render.table_text(items, columns, terminal=_tty()) if items else "(none)"))
    return "\n".join(parts)


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


@cli.command()
@click.option("--owner", type=MEMBER, metavar="MEMBER", help="Only assets this member owns (now).")
@click.option("--jurisdiction", type=JURISDICTION, metavar="CC", help="Only refs of this jurisdiction (CN, EP, …).")
@click.option("--kind", type=ASSET_KIND, help="Only refs of this kind (patent, trademark, …).")
@list_options
@pass_session
def assets(
    s: Session, owner: str | None, jurisdiction: str | None, kind: str | None, limit: int | None, fmt: str | None
) -> None:
    """Assets by ref with their owners now (owners as MEMBER=SHARE)."""
    s.emit_list(s.ledger.assets(owner, jurisdiction, kind, limit), "assets", render.ASSETS, fmt)


@asset.command("show")
@click.argument("ref", type=REF)
@json_flag
@pass_session
def asset_show(s: Session, ref: str) -> None:
    """Everything about an asset: title, owners, dates, encumbrances in force, open listings, trades."""
    s.emit(s.ledger.asset(ref, s.actor), _asset_plain)


def _asset_plain(d: dict[str, Any]) -> str:
    owners = ", ".join(f"{o['member']} {o['share']}" for o in d["owners"]) or "(none)"
    expires = (d["expires_on"] or "-") + (" (expired)" if d["expired"] else "")
    enc = d["encumbrances"]
    return _show(
        f"asset {d['asset']}",
        [("title", d["title"]), ("owners", owners), ("registered", d["registered_on"]), ("expires", expires)],
        [
            (f"licences in force on {enc['as_of']}", enc["licences"], render.without(render.LICENCES, "asset")),
            (f"pledges in force on {enc['as_of']}", enc["pledges"], render.without(render.PLEDGES, "asset")),
            ("open listings", d["listings"], render.without(render.LISTINGS, "asset")),
            ("trades", d["trades"], render.without(render.TRADES, "asset")),
        ],
    )


@cli.command()
@click.option(
    "--status",
    type=click.Choice(["pending", "settled", "void", "lapsed"]),
    help="Only this status (lapsed: pending past its settlement deadline).",
)
@click.option("--member", type=MEMBER, metavar="MEMBER", help="Only trades it buys or sells in.")
@list_options
@pass_session
def trades(s: Session, status: str | None, member: str | None, limit: int | None, fmt: str | None) -> None:
    """Trades in the order they were struck, with their status now."""
    s.emit_list(s.ledger.trades(status, member, limit), "trades", render.TRADES, fmt)


@trade.command("show")
@click.argument("trade")
@json_flag
@pass_session
def trade_show(s: Session, trade: str) -> None:
    """Everything about a trade: listing, parties, price, status (lapsed past its deadline), deadline."""
    s.emit(s.ledger.trade(trade), _trade_plain)


def _trade_plain(d: dict[str, Any]) -> str:
    status = d["status"]
    if d["status"] == "lapsed":
        status += f" (unsettled at its deadline {d['deadline']})"
    facts = [
        ("listing", d["listing"]),
        ("asset", d["asset"]),
        ("type", d["type"]),
        ("sellers", ", ".join(d["sellers"])),
        ("buyer", d["buyer"]),
        ("price", f"{d['price']} {d['currency']}"),
        ("winning bid", d["bid"]),
        ("status", status),
        ("struck", d["struck"]),
        ("deadline", d["deadline"]),
    ]
    if d["payment_ref"]:
        facts += [("payment", d["payment_ref"]), ("effective", d["effective"])]
    if d["resolved"]:
        facts += [("resolved", d["resolved"])]
    if d["reason"]:
        facts += [("reason", d["reason"])]
    return _show(f"trade {d['trade']}", facts, [])


@cli.command()
@click.option("--asset", type=REF, metavar="REF", help="Only pledges of this asset.")
@click.option("--pledgee", type=MEMBER, metavar="MEMBER", help="Only pledges to this member.")
@click.option("--as-of", type=DATE, help="In force on this date (default: today).")
@list_options
@pass_session
def pledges(
    s: Session, asset: str | None, pledgee: str | None, as_of: date | None, limit: int | None, fmt: str | None
) -> None:
    """Pledges in force, by asset then rank."""
    s.emit_list(s.ledger.pledges(asset, pledgee, as_of, limit), "pledges", render.PLEDGES, fmt)


@cli.command()
@click.option("--asset", type=REF, metavar="REF", help="Only licences of this asset.")
@click.option("--licensee", type=MEMBER, metavar="MEMBER", help="Only licences to this member.")
@click.option("--as-of", type=DATE, help="In force on this date (default: today).")
@list_options
@pass_session
def licences(
    s: Session, asset: str | None, licensee: str | None, as_of: date | None, limit: int | None, fmt: str | None
) -> None:
    """Licences in force, by asset then grant (territories and fields joined with ';' in CSV)."""
    s.emit_list(s.ledger.licences(asset, licensee, as_of, limit), "licences", render.LICENCES, fmt)


# --------------------------------------------------------------------------- projections


@cli.group()
def projections() -> None:
    """Read models: status and rebuild."""


@projections.command("status")
@json_flag
@pass_session
def projections_status(s: Session) -> None:
    """Each projection's position against the log head."""
    rows = s.ledger.projection_status()
    s.emit(
        {"projections": rows},
        lambda d: "\n".join(
            f"{r['name']:<12} {r['position']:>10} / {r['head']:<10} behind {r['behind']}" for r in d["projections"]
        ),
    )


@projections.command("rebuild")
@click.argument("name", required=False)
@json_flag
@pass_session
def projections_rebuild(s: Session, name: str | None) -> None:
    """Drop read models and rebuild them from the log (all, or NAME).

    \b
    NAME: ownership, listings, book, encumbrances, trail, members, trades.
    The hash chain is checked as the log is read: an altered log is exit 4, and
    the old read models stay.
    """
    ledger = s.ledger
    names = ledger.read_models.names([name] if name else None)  # NotFound for an unknown name
    head = ledger.read_models.head()
    with render.Progress("rebuilding", head, shown=_progress_shown(s)) as bar:
        ledger.rebuild(names, lambda position, _head: bar.to(position))
    s.emit({"rebuilt": names, "head": head}, lambda d: f"rebuilt {', '.join(d['rebuilt'])} to position {d['head']}")


# --------------------------------------------------------------------------- tokens and the server (api.md)


@cli.group()
def token() -> None:
    """Tokens for the HTTP API: each binds a secret to one actor (operator only)."""


@token.command("issue")
@click.argument("actor")
@click.option("--name", metavar="TEXT", help="What the token is for (e.g. the system that uses it).")
@click.option("--expires", type=DATE, help="The token stops working at the start of this day (UTC).")
@click.option("--id", "id_", metavar="ID", help="Choose its id (unique, no '_'); default: generated and printed.")
@json_flag
@pass_session
def token_issue(s: Session, actor: str, name: str | None, expires: date | None, id_: str | None) -> None:
    """Issue a token for ACTOR (a member id, operator or auditor); prints its secret once.

    Only the secret's SHA-256 is kept: keep the secret now, it cannot be shown again.
    """
    doc = s.ledger.issue_token(
        actor, name, expires.isoformat() if expires else None, by=s.actor, command_id=s.command_id, token_id=id_
    )
    s.emit(doc, lambda d: f"{d['id']} for {d['actor']}: {d['secret']}")


@token.command("list")
@json_flag
@pass_session
def token_list(s: Session) -> None:
    """Every token issued: id, actor, name, status (never a secret)."""
    doc = s.ledger.tokens()
    s.emit_list(doc, "tokens", render.TOKENS, None)


@token.command("revoke")
@click.argument("token_id")
@json_flag
@pass_session
def token_revoke(s: Session, token_id: str) -> None:
    """Revoke a token: every request with it is refused (401) from now on."""
    s.write(c.RevokeToken, {"token": token_id}, lambda o: f"{o['id']} revoked")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, metavar="HOST", help="The address to listen on.")
@click.option("--port", type=AsciiIntType(minimum=1), default=8000, show_default=True, metavar="N",
              help="The TCP port to listen on.")  # fmt: skip
@click.option("--workers", type=AsciiIntType(minimum=1), default=1, show_default=True, metavar="N",
              help="Worker processes (stateless; several share one PostgreSQL store).")  # fmt: skip
@pass_session
def serve(s: Session, host: str, port: int, workers: int) -> None:
    """Serve the HTTP API (api.md) over the store: commands and queries as JSON, token required.

    \b
    GET /healthz, /readyz; POST /v1/commands/{command}; GET /v1/...; OpenAPI at /docs.
    Stops gracefully on Ctrl-C or SIGTERM: commands in flight finish.
    """
    from ipledger.api import serve as run_server

    run_server(s.ledger, host=host, port=port, workers=workers)


# --------------------------------------------------------------------------- rules


class RulesGroup(click.Group):
    """`rules CN` is `rules show CN`: a jurisdiction code where a subcommand would go."""

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            return "show", self.commands["show"], args
        return super().resolve_command(ctx, args)


@cli.group(cls=RulesGroup, invoke_without_command=True)
@json_flag
@click.pass_context
def rules(ctx: click.Context) -> None:
    """The rules in force, each with its source: the common rules and a pack per jurisdiction.

    \b
    Examples:
      ipledger rules            every jurisdiction with a pack
      ipledger rules CN         the rules a CN asset is judged by
      ipledger rules check      recorded history today's packs would have refused
    """
    if ctx.invoked_subcommand is None:
        from ipledger.domain.rulepacks import COMMON, packs

        s = ctx.find_object(Session)
        assert s is not None
        found = sorted(packs().values(), key=lambda p: p.jurisdiction)
        doc = {"common": COMMON.as_json(), "packs": [p.as_json() for p in found]}
        s.emit(doc, lambda d: "\n\n".join([_pack_text(d["common"])] + [_pack_text(p) for p in d["packs"]]))


@rules.command("show")
@click.argument("jurisdiction", metavar="CC")
@json_flag
@pass_session
def rules_show(s: Session, jurisdiction: str) -> None:
    """The rules an asset of jurisdiction CC is judged by: the common rules and CC's pack."""
    from ipledger.domain.rulepacks import COMMON, packs
    from ipledger.domain.values import parse_jurisdiction

    cc = parse_jurisdiction(jurisdiction)
    pack = packs().get(cc)
    doc = {"jurisdiction": cc, "pack": pack.as_json() if pack else None, "common": COMMON.as_json()}

    def plain(d: dict[str, Any]) -> str:
        head = _pack_text(d["pack"]) if d["pack"] else f"{cc}: no rule pack; the common rules only"
        return f"{head}\n\n{_pack_text(d['common'])}"

    s.emit(doc, plain)


def _pack_text(pack: dict[str, Any]) -> str:
    title = "Common rules" if pack["jurisdiction"] == "*" else f"{pack['jurisdiction']}: {pack['name']}"
    lines = [title, "  sources: " + "; ".join(pack["sources"])]
    lines += [f"  numbers: {n}" for n in pack["numbers"]]
    for rule in pack["rules"]:
        lines.append(f"  {rule['id']}: {rule['says']}")
        lines.append(f"      source: {rule['source']}" + (f"; refused as {rule['error']}" if rule["error"] else ""))
    return "\n".join(lines)


@rules.command("check")
@json_flag
@pass_session
def rules_check(s: Session) -> None:
    """Recorded history that today's rule packs would have refused, for an operator to review.

    Rules judge new commands, not the past: what this lists stays valid history (exit 0).
    """
    doc = s.ledger.review_rules()

    def plain(d: dict[str, Any]) -> str:
        checked = f"{d['assets_checked']} asset(s) and {d['pledges_checked']} pledge(s) checked"
        if not d["findings"]:
            return f"{checked}: nothing today's rules would refuse"
        rows = [f"{f['subject']}: {f['error']}: {f['message']}" for f in d["findings"]]
        return "\n".join([f"{checked}; {len(rows)} would be refused today:", *rows])

    s.emit(doc, plain)


# --------------------------------------------------------------------------- audit


@cli.group()
def audit() -> None:
    """Tamper evidence: digests, verification, and Merkle proofs against signed checkpoints."""


@audit.command("digest")
@json_flag
@pass_session
def audit_digest(s: Session) -> None:
    """The log head's position and hash: a digest to hand to an auditor."""
    s.emit(s.ledger.digest(), lambda d: f"{d['position']}:{d['hash']}")


@audit.command("verify")
@click.option("--digest", "expect", metavar="N:HEX", help="Also prove the log still extends this digest.")
@click.option("--checkpoint", type=click.File("rb"), metavar="FILE", help="An earlier signed checkpoint to check.")
@click.option("--key", metavar="VKEY", help="The verifier key the checkpoint is signed with (with --checkpoint).")
@json_flag
@pass_session
def audit_verify(s: Session, expect: str | None, checkpoint: Any, key: str | None) -> None:
    """Recompute the hash chain and the Merkle tree, reconcile projections; exit 4 at the
    first bad position. With --checkpoint: the log against a signed checkpoint instead of a replay."""
    if (checkpoint is None) != (key is None):
        raise click.UsageError("--checkpoint FILE and --key VKEY go together")
    ledger = s.ledger
    with render.Progress("verifying", ledger.read_models.head(), shown=_progress_shown(s)) as bar:
        if checkpoint is not None:
            assert key is not None
            report = ledger.verify_checkpoint(_text(checkpoint, "checkpoint"), key, expect, progress=bar.to)
        else:
            report = ledger.verify(expect, progress=bar.to)
    if checkpoint is not None:
        s.emit(report, lambda d: f"ok: the log ({d['size']} events, root {d['root_hash']}) extends the signed "
                                 f"checkpoint of {d['checkpoint_size']} events")  # fmt: skip
        return
    s.emit(
        report,
        lambda d: f"ok: {d['events']} events, head {d['position']}:{d['hash']}; projections agree with a replay",
    )


def _text(file: Any, field: str) -> str:
    """A file given to an option, as UTF-8 text (a checkpoint, a proof)."""
    from ipledger.domain.errors import InvalidInput

    try:
        return str(file.read().decode("utf-8"))
    except UnicodeDecodeError:
        raise InvalidInput(f"{field}: {file.name} is not UTF-8 text") from None


@audit.command("keygen")
@click.option("--name", required=True, metavar="NAME", help="The key's name in signatures (e.g. the exchange's).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), metavar="FILE", help="The private key file.")
@json_flag
@pass_session
def audit_keygen(s: Session, name: str, out: str) -> None:
    """Make an Ed25519 signing key: the private key to FILE (mode 0600, never overwritten),
    the verifier key (NAME+KEYID+BASE64) to stdout for auditors."""
    import base64

    from ipledger.ledger.checkpoints import Signer, write_key_file

    signer = Signer.generate(name)
    write_key_file(out, signer.text())
    verifier = signer.verifier()
    doc = {"name": name, "vkey": verifier.text(), "public_key": base64.b64encode(verifier.public).decode()}
    s.emit(doc, lambda d: str(d["vkey"]))


@audit.command("checkpoint")
@click.option("--key", "key_file", envvar="IPLEDGER_SIGNING_KEY", type=click.File("rb"), metavar="FILE",
              help="The private key file ('audit keygen'). Environment: IPLEDGER_SIGNING_KEY.")  # fmt: skip
@json_flag
@pass_session
def audit_checkpoint(s: Session, key_file: Any) -> None:
    """Sign the current tree head (a C2SP checkpoint) and keep it in the store."""
    from ipledger.ledger.checkpoints import Signer

    if key_file is None:
        raise click.UsageError("--key FILE (or IPLEDGER_SIGNING_KEY) names the signing key; make one with audit keygen")
    signer = Signer.parse(_text(key_file, "key"))
    s.emit(s.ledger.checkpoint(signer, s.actor), lambda d: str(d["checkpoint"]).rstrip("\n"))


@audit.command("checkpoints")
@json_flag
@pass_session
def audit_checkpoints(s: Session) -> None:
    """Every checkpoint kept in the store, oldest first."""
    s.emit(s.ledger.checkpoints(), lambda d: "\n".join(f"{c['size']} {c['root_hash']}" for c in d["checkpoints"]))


@audit.command("prove")
@click.option("--position", type=ASCII_INT, metavar="N", help="Inclusion: the event at position N.")
@click.option("--size", type=ASCII_INT, metavar="S", help="…in the tree of S events (default: the latest checkpoint).")
@click.option("--from", "first", type=ASCII_INT, metavar="S1", help="Consistency: from the tree of S1 events.")
@click.option("--to", "second", type=ASCII_INT, metavar="S2", help="…to the tree of S2 (default: latest checkpoint).")
@json_flag
@pass_session
def audit_prove(s: Session, position: int | None, size: int | None, first: int | None, second: int | None) -> None:
    """An RFC 9162 proof as JSON: inclusion of one event, or consistency of two tree sizes."""
    if (position is None) == (first is None):
        raise click.UsageError("give --position N (inclusion) or --from S1 (consistency)")
    if position is not None and second is not None:
        raise click.UsageError("--to goes with --from; an inclusion proof takes --size")
    if first is not None and size is not None:
        raise click.UsageError("--size goes with --position; a consistency proof takes --to")
    if position is not None:
        doc = s.ledger.prove_inclusion(position, size)
    else:
        assert first is not None
        doc = s.ledger.prove_consistency(first, second)
    s.emit(doc, lambda d: json.dumps(d, indent=2))


@audit.command("check")
@click.option("--checkpoint", required=True, type=click.File("rb"), metavar="FILE", help="A signed checkpoint.")
@click.option("--key", required=True, metavar="VKEY", help="The verifier key it must be signed with.")
@click.option("--proof", type=click.File("rb"), metavar="FILE", help="An inclusion or consistency proof (JSON).")
@click.option("--leaf", type=click.File("rb"), metavar="FILE", help="The event's export line (inclusion).")
@click.option("--previous", type=click.File("rb"), metavar="FILE", help="An earlier checkpoint (consistency).")
@json_flag
@pass_session
def audit_check(s: Session, checkpoint: Any, key: str, proof: Any, leaf: Any, previous: Any) -> None:
    """Offline, no store needed: the checkpoint's signature, and a proof against it. Exit 0 or 4."""
    from ipledger.ledger.checkpoints import check

    report = check(
        _text(checkpoint, "checkpoint"),
        key,
        proof=None if proof is None else _text(proof, "proof"),
        leaf=None if leaf is None else leaf.read(),
        previous=None if previous is None else _text(previous, "previous"),
    )
    s.emit(report, lambda d: f"ok: {', '.join(d['checked'])} verified for {d['origin']} at size {d['size']}")


@cli.command()
@click.option("--until", type=click.IntRange(min=0), metavar="N", help="Stop after position N.")
@click.option("--checkpoints", "with_checkpoints", is_flag=True,
              help="The kept signed checkpoints instead of the events (of trees up to N with --until).")  # fmt: skip
@pass_session
def export(s: Session, until: int | None, with_checkpoints: bool) -> None:
    """The event log as JSON Lines, in position order: what an auditor recomputes.

    \b
    One line per event: {"position", "originator_id", "originator_version", "topic",
    "state", "hash"}; state is the stored event as JSON text, hash its chain link:
      hex(SHA-256(H_prev \\n position \\n originator_id \\n originator_version
                  \\n topic \\n state)), H_0 = 64 zeros
    (\\n is a newline byte). Only the operator and auditors may export (sealed bids).
    Each line is also a leaf of the Merkle tree the checkpoints sign (docs/audit.md).
    """
    out = sys.stdout.buffer
    ledger = s.ledger
    if with_checkpoints:
        for c in ledger.checkpoints(until)["checkpoints"]:
            out.write(json.dumps(c, ensure_ascii=False).encode() + b"\n")
        out.flush()
        return
    head = ledger.read_models.head()
    total = min(head, until) if until is not None else head
    with render.Progress("exporting", total, shown=_progress_shown(s)) as bar:
        for line in ledger.export(until, s.actor):
            out.write(line + b"\n")
            bar.advance(1)
    out.flush()


@cli.command()
@click.argument("file", type=click.File("rb"), metavar="FILE|-")
@click.option(
    "--checkpoints",
    type=click.File("rb"),
    metavar="FILE",
    help="Also restore the kept checkpoints (export --checkpoints); each must match the restored tree.",
)
@json_flag
@pass_session
def restore(s: Session, file: Any, checkpoints: Any) -> None:
    """A new, empty store from an export: every hash checked, then projections rebuilt.

    \b
    The first line that does not hash to its link stops the restore with exit 4, and
    nothing is kept. export -> restore -> export is byte-identical. Command records
    come back from the stamps in the log; a command id repeated after a restore is
    still recognised (its reply notes the outcome's digest, as the log holds it).
    The log keeps its name (origin) from --checkpoints; without them, name the empty
    store first (ipledger --db NEW init --origin NAME). Restore checks each kept
    checkpoint's root, not its signature: auditors check those with their own key.
    """
    with render.Progress("restoring", None, shown=_progress_shown(s)) as bar:
        done = s.ledger.restore(file, checkpoints if checkpoints is not None else (), progress=bar.advance)
    s.emit(
        done,
        lambda d: (
            f"restored {d['events']} events, head {d['position']}:{d['hash']}; "
            f"{d['checkpoints']} checkpoint(s); projections rebuilt"
        ),
    )


@cli.command("import")
@click.argument("file", type=click.File("rb"), metavar="FILE|-")
@json_flag
@pass_session
def import_(s: Session, file: Any) -> None:
    """Apply JSON Lines of commands in order, many per transaction; re-runs skip done lines.

    \b
    One command per line:
      {"command": "listing.open", "args": {...}, "command_id": "...", "actor": "...", "at": TIME}
    command: the CLI path with dots (member.add, bid.place, pledge.register, ...);
    args: the options with underscores, positionals by their metavar in lower case
    (ref, listing, bid, ...); command_id: idempotency key; actor: as --actor;
    at: the recorded time (as IPLEDGER_NOW; never backwards).
    The first rejected line stops the import with its line number; every line before
    it is kept, and a re-run skips lines already recorded.
    """
    from collections import deque

    size = _size(file)
    read: deque[int] = deque()  # sizes of lines read but not yet applied (the importer reads a batch ahead)
    with render.Progress("importing", size, items="lines", shown=_progress_shown(s) and size is not None) as bar:

        def lines() -> Any:
            for raw in file:
                read.append(len(raw) if raw.strip() else -len(raw))  # blank lines: negative, not counted
                yield raw

        def applied(n: int) -> None:
            """n more lines applied: the bar moves by their bytes."""
            done, left = 0, n
            while left > 0 and read:
                size = read.popleft()
                done += abs(size)
                left -= size > 0
            bar.advance(done, n)

        result = s.ledger.import_lines(lines(), progress=applied)
    s.emit(result, lambda r: f"applied {r['applied']} command(s); skipped {r['skipped']} already recorded")


def _progress_shown(s: Session) -> bool:
    """A bar for people at a terminal; nothing for scripts, pipes and --json."""
    return sys.stderr.isatty() and not s.as_json


def _size(file: Any) -> int | None:
    try:
        return os.fstat(file.fileno()).st_size or None
    except (OSError, AttributeError, ValueError):
        return None


# --------------------------------------------------------------------------- demo


@cli.command()
@click.option(
    "--fresh",
    is_flag=True,
    help="A store that holds events (the demo's or yours) is left as it is: the demo builds in a new SQLite "
    "file beside it (NAME-demo.db, NAME-demo-2.db, …) and says which. PostgreSQL: name an empty database.",
)
@json_flag
@pass_session
def demo(s: Session, fresh: bool) -> None:
    """Build a small demo market in the current store and print its book and ownership.

    An empty store gets the market; a store the demo built runs it again and writes nothing;
    a store holding other events is refused (exit 1), never mixed with the demo (see --fresh).
    """
    from ipledger.demo import run_demo, shown, store_for_demo

    url = store_for_demo(s.ledger, fresh)
    moved = url != s.ledger.url
    if moved:
        s.close()
        s.db = url
    s.emit({"db": shown(url), "new_store": moved, **run_demo(s.ledger)}, _demo_plain)


def _demo_plain(report: dict[str, Any]) -> str:
    parts = [f"== a new store beside yours (left as it was): --db {report['db']} ==", ""] if report["new_store"] else []
    parts += ["== order books =="] + [_book_plain(b) for b in report["books"]]
    parts += ["", "== ownership =="] + [_owners_plain(o) for o in report["owners"]]
    parts += ["", "== " + _title_plain(report["title"])]
    parts += ["", "== " + _encumbrances_plain(report["encumbrances"])]
    return "\n".join(parts)


# --------------------------------------------------------------------------- errors


def _fail(name: str, message: str, code: int, as_json: bool) -> int:
    message = one_line(message)
    if as_json:
        click.echo(json.dumps({"error": name, "message": message}, ensure_ascii=False), err=True)
    else:
        click.echo(f"error: {name}: {message}", err=True)
    return code


# --------------------------------------------------------------------------- completion


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script: commands, options, member ids, refs and listing ids.

    \b
    Install (bash):  ipledger completion bash > ~/.local/share/bash-completion/completions/ipledger
    Install (zsh):   ipledger completion zsh > "${fpath[1]}/_ipledger"
    Install (fish):  ipledger completion fish > ~/.config/fish/completions/ipledger.fish
    Ids are read from the store the command line names (--db, IPLEDGER_DB).
    """
    from click.shell_completion import get_completion_class

    complete = get_completion_class(shell)
    assert complete is not None
    click.echo(complete(cli, {}, "ipledger", "_IPLEDGER_COMPLETE").source())


def _completer(kind: str) -> Callable[[click.Context, click.Parameter, str], list[Any]]:
    """Complete ids from the store's read models; never fail a completion over the store."""

    def complete(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[Any]:
        from click.shell_completion import CompletionItem

        root = ctx.find_root().params
        try:
            from ipledger.ledger.config import is_sqlite, store_url
            from ipledger.service import open_ledger

            url = store_url(root.get("db") or os.environ.get("IPLEDGER_DB"))
            if is_sqlite(url) and not os.path.exists(url.split("///", 1)[-1]):
                return []  # pressing TAB never creates a store
            ledger = open_ledger(root.get("db"))
            try:
                actor = root.get("actor") or "operator"
                if kind == "member":
                    items = [(m["member"], m["name"]) for m in ledger.members()["members"]]
                elif kind == "ref":
                    items = [(a["asset"], a["title"]) for a in ledger.assets()["assets"]]
                else:
                    items = [(x["listing"], x["asset"]) for x in ledger.listings(viewer=actor)["listings"]]
            finally:
                ledger.close()
        except Exception:  # noqa: BLE001 - a completion offers nothing rather than a traceback
            return []
        if kind == "ref":  # refs are typed in any case
            return [CompletionItem(v, help=h) for v, h in items if v.upper().startswith(incomplete.upper())]
        return [CompletionItem(v, help=h) for v, h in items if v.startswith(incomplete)]

    return complete


#: Which parameters name what, by parameter name (and the group, where a bare ID is ambiguous).
COMPLETES = {
    "member": {"owner", "to", "bidder", "licensee", "pledgee", "member"},
    "ref": {"ref", "asset"},
    "listing": {"listing"},
}


def _attach_completion(command: click.Command, path: tuple[str, ...] = ()) -> None:
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            _attach_completion(sub, (*path, name))
    for param in command.params:
        name = param.name or ""
        if path[:1] == ("member",) and name == "id" and path[-1] != "add":
            name = "member"
        if path in {("asset", "register")} and name == "ref":
            continue  # a new asset: nothing to complete
        for kind, names in COMPLETES.items():
            if name in names:
                param._custom_shell_complete = _completer(kind)  # click's shell_complete=, set once here


# --------------------------------------------------------------------------- help: examples

ENVIRONMENT = """\b
Environment:
  IPLEDGER_DB      the store (as --db)
  IPLEDGER_ACTOR   who issues commands (as --actor)
  IPLEDGER_NOW     pin the ledger's clock (ISO 8601): demos, tests, backfills; never
                   backwards, never more than 5 minutes ahead of the wall clock
  IPLEDGER_SIGNING_KEY  the private key file that signs checkpoints (audit checkpoint)

\b
Exit codes:
  0 done          1 a rule refused it, or what it names does not exist
  2 bad input     3 lost a concurrent-write race (retry with the same --command-id)
  4 integrity     5 the store is unavailable"""

#: One example or more per command, shown under `--help` (and checked by tests/test_cli_help.py).
EXAMPLES: dict[str, list[str]] = {
    "init": ["ipledger --db exchange.db init --origin ipledger.sh-ipx.example/main"],
    "member add": ["ipledger member add icbc-sh --name 'ICBC Shanghai' --kind financial_institution --country CN"],
    "member suspend": ["ipledger member suspend boc-bj --reason 'fee unpaid'"],
    "member reinstate": ["ipledger member reinstate boc-bj"],
    "member show": ["ipledger member show fudan-univ", "ipledger --actor huawei member show huawei --json"],
    "asset register": [
        "ipledger asset register CN/patent/ZL201810012345.6 --title 'Electrode coating' --owner fudan-univ "
        "--expires-on 2038-01-05",
        "ipledger asset register US/patent/7,545,760 --title 'Flash memory' --owner huawei=1/2 --owner zte=1/2",
    ],
    "asset assign": [
        "ipledger asset assign CN/patent/ZL201810012345.6 --to huawei --effective 2026-03-01",
        "ipledger asset assign CN/patent/ZL201810012345.6 --to huawei --consent C-ICBC-1",
    ],
    "asset consent": [
        "ipledger --actor cas-sippr asset consent CN/patent/ZL202010098765.4 --member cas-sippr --act pledge"
    ],
    "asset show": ["ipledger asset show CN/patent/ZL201810012345.6"],
    "listing open": [
        "ipledger --actor fudan-univ listing open CN/patent/ZL201810012345.6 --type assignment --mechanism english "
        "--currency CNY --ask 180000.00 --increment 5000.00 --closes 2026-12-31T12:00:00Z --id L-1",
        "ipledger listing open CN/patent/ZL201810012345.6 --type licence --mechanism fixed --currency CNY "
        "--ask 50000.00 --closes 2026-12-31T12:00:00Z --licence-type non_exclusive --territory CN --field batteries "
        "--term-start 2027-01-01 --term-end 2030-01-01",
    ],
    "listing withdraw": ["ipledger --actor fudan-univ listing withdraw L-1"],
    "listing close": ["ipledger listing close L-1 --json    # at or after its close"],
    "bid place": ["ipledger --actor huawei bid place L-1 --bidder huawei --amount 185000.00"],
    "bid withdraw": ["ipledger --actor huawei bid withdraw B-7"],
    "bid accept": ["ipledger --actor byd bid accept B-9 --trade-id T-9"],
    "trade settle": ["ipledger trade settle T-9 --payment-ref CNAPS-000117"],
    "trade void": ["ipledger trade void T-9 --reason 'payment not received'"],
    "trade show": ["ipledger trade show T-9"],
    "licence grant": [
        "ipledger licence grant CN/patent/ZL201810012345.6 --licensee byd --type non_exclusive --territory CN "
        "--field batteries --start 2027-01-01 --end 2030-01-01 --royalty-rate 3.5"
    ],
    "licence terminate": ["ipledger licence terminate LIC-1 --reason 'royalties unpaid' --effective 2027-06-30"],
    "licence surrender": ["ipledger --actor byd licence surrender LIC-1"],
    "pledge register": [
        "ipledger pledge register CN/patent/ZL201810012345.6 --pledgee icbc-sh --amount 5000000.00 --currency CNY "
        "--end 2030-12-31",
        "ipledger pledge register US/patent/7545760 --pledgee boc-bj    # US: amount and term optional",
    ],
    "pledge consent": ["ipledger --actor icbc-sh pledge consent P-1 --act licence --id C-ICBC-1"],
    "pledge release": ["ipledger --actor icbc-sh pledge release P-1"],
    "pledge enforce": ["ipledger --actor icbc-sh pledge enforce P-1 --effective 2027-01-15"],
    "owner": [
        "ipledger owner CN/patent/ZL201810012345.6",
        "ipledger owner CN/patent/ZL201810012345.6 --as-of 2026-06-30 --known-at 2026-07-01T00:00:00Z --json",
    ],
    "title": ["ipledger title CN/patent/ZL201810012345.6"],
    "encumbrances": ["ipledger encumbrances CN/patent/ZL201810012345.6 --as-of 2027-06-01"],
    "book": [
        "ipledger book L-1",
        "ipledger --actor huawei book L-1 --json    # a member sees its own sealed bids",
        "ipledger book L-1 --format csv > bids-L-1.csv",
    ],
    "listings": ["ipledger listings --status open", "ipledger listings --member huawei --format csv > listings.csv"],
    "holdings": ["ipledger holdings fudan-univ --as-of 2026-06-30"],
    "trail": ["ipledger trail --asset CN/patent/ZL201810012345.6", "ipledger trail --member icbc-sh --json"],
    "members": ["ipledger members --kind financial_institution", "ipledger members --format csv > members.csv"],
    "assets": ["ipledger assets --owner fudan-univ", "ipledger assets --jurisdiction US --kind patent --json"],
    "trades": ["ipledger trades --status lapsed", "ipledger trades --member huawei --format csv"],
    "pledges": [
        "ipledger pledges --pledgee icbc-sh",
        "ipledger pledges --asset CN/patent/ZL201810012345.6 --as-of 2027-01-01",
    ],
    "licences": [
        "ipledger licences --licensee byd",
        "ipledger licences --asset CN/patent/ZL201810012345.6 --format csv",
    ],
    "projections status": ["ipledger projections status --json"],
    "projections rebuild": ["ipledger projections rebuild", "ipledger projections rebuild ownership"],
    "token issue": [
        "ipledger token issue huawei --name 'huawei trading desk'    # prints the secret once",
        "ipledger token issue auditor --expires 2027-01-01 --json",
    ],
    "token list": ["ipledger token list", "ipledger token list --json"],
    "token revoke": ["ipledger token revoke TK-4f2a9c01b7de"],
    "serve": ["ipledger serve", "ipledger --db postgresql://ledger@db/ipledger serve --host 0.0.0.0 --workers 4"],
    "rules": ["ipledger rules", "ipledger rules CN", "ipledger rules check --json"],
    "rules show": ["ipledger rules show US --json"],
    "rules check": ["ipledger rules check"],
    "audit digest": ["ipledger audit digest > digest.txt"],
    "audit keygen": ["ipledger audit keygen --name sh-ipx --out ~/.ipledger/sh-ipx.key    # prints the verifier key"],
    "audit checkpoint": [
        "IPLEDGER_SIGNING_KEY=~/.ipledger/sh-ipx.key ipledger audit checkpoint > checkpoint-2026-11-30.txt"
    ],
    "audit checkpoints": ["ipledger audit checkpoints --json"],
    "audit prove": [
        "ipledger audit prove --position 4711 > pledge-P-7.proof.json",
        "ipledger audit prove --from 90000 --to 120000 > consistency.json",
    ],
    "audit check": [
        'ipledger audit check --checkpoint checkpoint-2026-11-30.txt --key "$VKEY" --proof pledge-P-7.proof.json '
        "--leaf pledge-P-7.line",
        'ipledger audit check --checkpoint today.txt --key "$VKEY" --proof consistency.json --previous yesterday.txt',
    ],
    "audit verify": [
        "ipledger audit verify",
        'ipledger audit verify --digest "$(cat digest.txt)"',
        'ipledger audit verify --checkpoint checkpoint-2026-11-30.txt --key "$VKEY"',
    ],
    "export": [
        "ipledger export > log.jsonl",
        "ipledger export --until 1000 | gzip > log-1000.jsonl.gz",
        "ipledger export --checkpoints > checkpoints.jsonl",
    ],
    "import": ["ipledger import history.jsonl", "zcat history.jsonl.gz | ipledger import - --json"],
    "restore": [
        "ipledger --db restored.db restore log.jsonl",
        "ipledger --db restored.db restore log.jsonl --checkpoints checkpoints.jsonl",
    ],
    "demo": ["ipledger --db demo.db demo"],
    "completion": ["ipledger completion bash > ~/.local/share/bash-completion/completions/ipledger"],
}


def _attach_examples(command: click.Command, path: tuple[str, ...] = ()) -> None:
    """Examples under each command's help, kept in one table so the commands stay thin."""
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            _attach_examples(sub, (*path, name))
    examples = EXAMPLES.get(" ".join(path))
    if examples:
        command.epilog = "\b\nExamples:\n" + "\n".join(f"  {line}" for line in examples)


_attach_examples(cli)
_attach_completion(cli)
cli.epilog = (
    ENVIRONMENT
    + "\n\n\b\nExamples:\n"
    + "\n".join(
        f"  {line}" for line in ["ipledger --db exchange.db demo", "ipledger owner CN/patent/ZL201810012345.6 --json"]
    )
)


def run() -> None:
    """The console script: the command, then `leave` with its exit code."""
    leave(cli.main(prog_name="ipledger", standalone_mode=False))


def leave(code: int) -> NoReturn:
    """Exit with `code` without the interpreter's teardown, when nothing needs it.

    Freeing every module's objects at exit (SQLAlchemy's, pydantic's, the domain's) took
    0.13-0.2 s of a write's 0.45-0.65 s here (docs/performance.md, ninth round), after
    the command had ended. The command's own cleanup has run by now (click closes the
    context: the ledger's connections are closed). What the interpreter would still do
    that matters is done here: the atexit handlers run, then both streams are flushed.
    With another thread still running (a server's), or a stream that cannot be flushed (a
    closed pipe), or a profiler, tracer or interactive prompt that works after the script
    (`python -m cProfile -o …`, `python -i`), the usual exit runs instead, as before."""
    if threading.active_count() == 1 and not (sys.getprofile() or sys.gettrace() or sys.flags.interactive):
        atexit._run_exitfuncs()
        try:
            for stream in (sys.stdout, sys.stderr):
                if stream is not None:  # None: its descriptor was closed when Python started
                    stream.flush()
        except (OSError, ValueError):
            sys.exit(code)
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
