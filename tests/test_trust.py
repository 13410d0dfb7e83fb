"""Regression tests for the defects an outside review found (issue 11), each through the
CLI as a user would meet it, on a SQLite file and on the PostgreSQL server.

Each test is named after the behaviour it pins down and failed before its fix.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from tests.cli_helpers import advance, assert_rejected, doc
from tests.conftest import MEMBERS, PATENT, Cli

SEALED_ASSET = "CN/patent/ZL202110000001.1"
FIXED_ASSET = "CN/patent/ZL202110000003.3"


@pytest.fixture
def world(store_url: str) -> Cli:
    """Members admitted, PATENT owned by fudan-univ, and a sealed listing with zte's bid."""
    run = Cli(store_url)
    for mid, name, kind in MEMBERS:
        run.ok("member", "add", mid, "--name", name, "--kind", kind, "--country", "CN")
    run.ok("asset", "register", PATENT, "--title", "Electrode coating", "--owner", "fudan-univ",
           "--effective", "2019-05-10")  # fmt: skip
    run.ok("asset", "register", SEALED_ASSET, "--title", "Sealed", "--owner", "sjtu", "--effective", "2021-01-04")
    run.ok("listing", "open", SEALED_ASSET, "--type", "assignment", "--mechanism", "sealed", "--currency", "CNY",
           "--closes", "2026-04-01T00:00:00Z", "--id", "L-SEALED")  # fmt: skip
    run.ok("bid", "place", "L-SEALED", "--bidder", "zte", "--amount", "150000.00", "--id", "B-ZTE", actor="zte")
    return run


@pytest.fixture
def store(world: Cli) -> Iterator[sa.Engine]:
    """The store itself, behind the ledger's back (as an attacker with database access)."""
    engine = sa.create_engine(world.db)
    yield engine
    engine.dispose()


def sql(engine: sa.Engine, statement: str, **params: Any) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(statement), params)


def verify_fails(run: Cli) -> str:
    """`audit verify` exits 4 with one IntegrityError line: its message."""
    result = run("audit", "verify")
    assert result.exit_code == 4, result.stderr
    prefix = "error: IntegrityError: "
    assert result.stderr.startswith(prefix) and result.stderr.count("\n") == 1, result.stderr
    return str(result.stderr[len(prefix) :])


def export_lines(run: Cli) -> list[dict[str, Any]]:
    return [json.loads(line) for line in run.export().splitlines()]


# --------------------------------------------------------------------------- 1. same-day conveyance


def test_a_same_day_assignment_leaves_the_seller_no_power_to_act(world: Cli) -> None:
    ref = "CN/patent/ZL202210000009.9"
    world.ok("asset", "register", ref, "--title", "Same-day deed", "--owner", "fudan-univ")
    world.ok("asset", "assign", ref, "--to", "huawei", actor="fudan-univ")
    assert doc(world("owner", ref, "--json"))["owners"] == [{"member": "huawei", "share": "1"}]
    before = world.export()
    assert_rejected(world, before, world("asset", "assign", ref, "--to", "zte", actor="fudan-univ"), 1, "NotOwner")
    world.ok("asset", "assign", ref, "--to", "zte", actor="huawei")
    assert doc(world("owner", ref, "--json"))["owners"] == [{"member": "zte", "share": "1"}]
    world.ok("audit", "verify")


# --------------------------------------------------------------------------- 2. sealed bids stay sealed


def test_another_member_does_not_see_a_sealed_bid_in_the_asset_trail(world: Cli) -> None:
    events = doc(world("trail", "--asset", SEALED_ASSET, "--json", actor="huawei"))["events"]
    assert all(e["data"].get("bid_id") != "B-ZTE" for e in events)
    assert "150000" not in json.dumps(events) and "zte" not in json.dumps(events)


def test_another_member_does_not_see_a_sealed_bid_in_the_bidders_trail(world: Cli) -> None:
    events = doc(world("trail", "--member", "zte", "--json", actor="huawei"))["events"]
    assert [e["type"] for e in events] == ["Member.Admitted"]


def test_the_bidder_the_operator_and_auditors_see_the_sealed_bid_in_trails(world: Cli) -> None:
    for viewer in ("zte", "operator", "auditor"):
        events = doc(world("trail", "--member", "zte", "--json", actor=viewer))["events"]
        assert any(e["data"].get("amount") == "150000.00" for e in events), viewer


def test_a_sealed_bid_shows_in_trails_once_the_listing_closed(world: Cli) -> None:
    advance(world, "2026-04-02T00:00:00Z")
    world.ok("listing", "close", "L-SEALED")
    events = doc(world("trail", "--asset", SEALED_ASSET, "--json", actor="huawei"))["events"]
    assert any(e["data"].get("bidder") == "zte" and e["data"].get("amount") == "150000.00" for e in events)


def test_a_member_may_not_export_the_whole_log(world: Cli) -> None:
    result = world("export", actor="huawei")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: NotAuthorised: actor: huawei may not export the whole log")


def test_the_operator_and_auditors_export_the_whole_log(world: Cli) -> None:
    assert world("export", actor="auditor").stdout == world.export()


def test_refusing_another_members_withdrawal_does_not_name_the_sealed_bidder(world: Cli) -> None:
    before = world.export()
    message = assert_rejected(world, before, world("bid", "withdraw", "B-ZTE", actor="huawei"), 1, "NotAuthorised")
    assert "zte" not in message and "150000" not in message


def test_another_member_sees_no_sealed_bid_in_the_book_or_listings(world: Cli) -> None:
    book = doc(world("book", "L-SEALED", "--json", actor="huawei"))
    assert book["bids"] == [] and book["sealed_hidden"] is True
    listings = world("listings", "--json", actor="huawei").stdout
    assert "zte" not in listings and "150000" not in listings


# --------------------------------------------------------------------------- 3. nobody moves the clock ahead


def test_a_pinned_time_far_ahead_of_the_wall_clock_is_clock_ahead(world: Cli) -> None:
    before = world.export()
    result = world("member", "add", "tju", "--name", "Tianjin", "--kind", "university", "--country", "CN",
                   now="9999-12-30T00:00:00Z", actor="operator")  # fmt: skip
    message = assert_rejected(world, before, result, 1, "ClockAhead")
    assert message.startswith("IPLEDGER_NOW: 9999-12-30T00:00:00Z is later than the wall clock")


def test_an_import_line_at_a_time_ahead_of_the_wall_clock_is_clock_ahead(world: Cli) -> None:
    before = world.export()
    line = {"command": "member.add", "command_id": "far-future", "at": "2999-01-01T00:00:00Z",
            "args": {"id": "tju", "name": "Tianjin", "kind": "university", "country": "CN"}}  # fmt: skip
    result = world("import", "-", input=json.dumps(line) + "\n")
    message = assert_rejected(world, before, result, 1, "ClockAhead")
    assert message.startswith("line 1: at: 2999-01-01T00:00:00Z is later than the wall clock")


# --------------------------------------------------------------------------- 4. one command id, one command


def test_a_command_id_reused_with_other_arguments_is_an_idempotency_conflict(world: Cli) -> None:
    world.ok("--command-id", "cmd-1", "member", "add", "tju", "--name", "Tianjin", "--kind", "university",
             "--country", "CN")  # fmt: skip
    before = world.export()
    result = world("--command-id", "cmd-1", "member", "add", "tju", "--name", "Tianjin University",
                   "--kind", "university", "--country", "CN")  # fmt: skip
    message = assert_rejected(world, before, result, 1, "IdempotencyConflict")
    assert message.startswith("command_id: cmd-1 was first used for member.add with other arguments")


def test_a_command_id_reused_for_another_command_names_the_first(world: Cli) -> None:
    world.ok("--command-id", "cmd-2", "member", "suspend", "byd", "--reason", "dues")
    before = world.export()
    result = world("--command-id", "cmd-2", "member", "reinstate", "byd")
    message = assert_rejected(world, before, result, 1, "IdempotencyConflict")
    assert message.startswith("command_id: cmd-2 was first used for member.suspend, not member.reinstate")


def test_a_command_id_reused_by_another_actor_is_an_idempotency_conflict(world: Cli) -> None:
    world.ok("--command-id", "cmd-3", "bid", "place", "L-SEALED", "--bidder", "huawei", "--amount", "1000.00",
             actor="huawei")  # fmt: skip
    before = world.export()
    result = world("--command-id", "cmd-3", "bid", "place", "L-SEALED", "--bidder", "huawei", "--amount", "1000.00")
    assert_rejected(world, before, result, 1, "IdempotencyConflict")


def test_the_same_command_again_with_its_id_returns_the_first_outcome_and_writes_nothing(world: Cli) -> None:
    argv = ("--command-id", "cmd-4", "--json", "asset", "register", "CN/patent/ZL202210000008.8", "--title", "T",
            "--owner", "byd")  # fmt: skip
    first = doc(world(*argv))
    before = world.export()
    assert doc(world(*argv)) == first
    assert world.export() == before


def test_an_import_line_reusing_a_command_id_for_another_command_stops_there(world: Cli) -> None:
    world.ok("--command-id", "cmd-5", "member", "suspend", "byd", "--reason", "dues")
    before = world.export()
    line = {"command": "member.reinstate", "command_id": "cmd-5", "args": {"id": "byd"}}
    result = world("import", "-", input=json.dumps(line) + "\n")
    message = assert_rejected(world, before, result, 1, "IdempotencyConflict")
    assert message.startswith("line 1: command_id: cmd-5 was first used for member.suspend")


def test_an_import_repeating_its_own_line_with_other_arguments_stops_at_the_repeat(world: Cli) -> None:
    args = {"id": "tju", "name": "Tianjin", "kind": "university", "country": "CN"}
    add = {"command": "member.add", "command_id": "imp-1", "args": args}
    same = dict(add)
    other = {**add, "args": {**args, "name": "Tianjin University"}}
    result = world("import", "-", input="\n".join(json.dumps(x) for x in (add, same, other)) + "\n")
    assert result.exit_code == 1, result.stderr
    assert result.stderr.startswith("error: IdempotencyConflict: line 3: command_id: imp-1 was first used")
    assert "1 earlier line(s) applied, 1 already recorded" in result.stderr


# --------------------------------------------------------------------------- 5. one right, one ref


@pytest.mark.parametrize("spelling", ["CN/patent/A1/", "CN/patent/A1.", "CN/patent/A1-", "CN/patent/A1//"])
def test_a_ref_with_trailing_punctuation_is_refused(world: Cli, spelling: str) -> None:
    before = world.export()
    result = world("asset", "register", spelling, "--title", "T", "--owner", "byd")
    assert_rejected(world, before, result, 2, "InvalidInput")


def test_a_ref_spelled_in_other_case_is_the_same_asset(world: Cli) -> None:
    before = world.export()
    result = world("asset", "register", PATENT.lower(), "--title", "T", "--owner", "byd")
    assert_rejected(world, before, result, 1, "DuplicateId")
    assert doc(world("owner", PATENT.lower(), "--json"))["asset"] == PATENT


# --------------------------------------------------------------------------- 6. a tampered log is never laundered


def test_rebuild_refuses_an_edited_event_and_keeps_the_read_models(world: Cli, store: sa.Engine) -> None:
    registered = next(
        e for e in export_lines(world) if e["topic"].endswith("Asset.Registered") and PATENT in e["state"]
    )
    forged = registered["state"].replace('"fudan-univ"', '"evil-corp"')
    sql(store, "UPDATE ipledger_events SET state = :s WHERE id = :p", s=forged.encode(), p=registered["position"])
    result = world("projections", "rebuild")
    assert result.exit_code == 4, result.stderr
    assert result.stderr == (
        f"error: IntegrityError: position {registered['position']}: event content does not match its hash "
        "(altered or reordered); rebuild refused, the read models were kept\n"
    )
    assert doc(world("owner", PATENT, "--json"))["owners"] == [{"member": "fudan-univ", "share": "1"}]


def test_verify_of_an_edited_event_does_not_advise_a_rebuild(world: Cli, store: sa.Engine) -> None:
    first = export_lines(world)[0]
    forged = first["state"].replace("Fudan", "Fuda").encode()
    sql(store, "UPDATE ipledger_events SET state = :s WHERE id = :p", s=forged, p=first["position"])
    assert "rebuild" not in verify_fails(world)


def test_verify_catches_an_edited_command_outcome(world: Cli, store: sa.Engine) -> None:
    last = "(SELECT max(position) FROM ipledger_commands)"
    sql(store, f"UPDATE ipledger_commands SET outcome = :o WHERE position = {last}", o=b'{"id":"B-FORGED"}')
    assert "does not match its event's hashed envelope" in verify_fails(world)


def test_verify_catches_a_deleted_command_record(world: Cli, store: sa.Engine) -> None:
    sql(store, "DELETE FROM ipledger_commands WHERE position = (SELECT min(position) FROM ipledger_commands)")
    assert "has no command record (deleted?)" in verify_fails(world)


def test_verify_catches_a_forged_command_record(world: Cli, store: sa.Engine) -> None:
    columns = "(command_id, command, outcome, position)"
    sql(store, f"INSERT INTO ipledger_commands {columns} VALUES ('x', 'member.add', :o, 1)", o=b"{}")
    assert verify_fails(world) == "position 1: command record x does not match the log (edited?)\n"


def test_verify_catches_a_tracking_position_edited_forward(world: Cli, store: sa.Engine) -> None:
    world.ok("listings")  # the read models are current
    sql(store, "UPDATE rm_projections SET position = position + 5 WHERE name = 'listings'")
    assert verify_fails(world).startswith("projections: listings claims position")


def test_verify_catches_writes_hidden_by_a_tracking_position_edited_forward(world: Cli, store: sa.Engine) -> None:
    world.ok("listings")
    sql(store, "UPDATE rm_projections SET position = position + 2 WHERE name = 'listings'")
    world.ok("listing", "open", PATENT, "--type", "assignment", "--mechanism", "fixed", "--ask", "10.00",
             "--currency", "CNY", "--closes", "2026-04-01T00:00:00Z", "--id", "L-HIDDEN")  # fmt: skip
    assert verify_fails(world).startswith("projections: listings (rm_listings) differ from a fresh replay")


def test_verify_catches_a_read_model_value_edited_in_place(world: Cli, store: sa.Engine) -> None:
    world.ok("members")  # the read models are current
    sql(store, "UPDATE rm_members SET name = 'Fudan Univ.' WHERE member_id = 'fudan-univ'")
    assert verify_fails(world).startswith("projections: members (rm_members) differ from a fresh replay")


@pytest.mark.parametrize("suspended", [False, True], ids=["null-filled", "text-nulled"])
def test_verify_catches_a_read_model_value_filled_or_nulled(world: Cli, store: sa.Engine, suspended: bool) -> None:
    if suspended:  # byd's reason is recorded: the forger blanks it
        world.ok("member", "suspend", "byd", "--reason", "unpaid fees")
    world.ok("members")
    value = "NULL" if suspended else "'forged'"
    sql(store, f"UPDATE rm_members SET reason = {value} WHERE member_id = 'byd'")
    assert verify_fails(world).startswith("projections: members (rm_members) differ from a fresh replay")


def test_verify_catches_a_read_model_row_swapped_for_a_forged_one(world: Cli, store: sa.Engine) -> None:
    world.ok("members")  # the same number of rows, one of them not the log's
    sql(store, "UPDATE rm_members SET member_id = 'byd-forged' WHERE member_id = 'byd'")
    assert verify_fails(world).startswith("projections: members (rm_members) differ from a fresh replay")


# --------------------------------------------------------------------------- 7. an import line says each thing once


def test_an_import_line_with_a_duplicated_key_is_invalid_input_at_that_line(world: Cli) -> None:
    before = world.export()
    good = '{"command": "member.suspend", "command_id": "d-1", "args": {"id": "byd"}}'
    duplicated = '{"command": "member.reinstate", "command_id": "d-2", "args": {"id": "byd", "id": "zte"}}'
    result = world("import", "-", input=f"{good}\n{duplicated}\n")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: InvalidInput: line 2: id: appears twice in one JSON object")
    assert world.export() != before  # line 1 was kept, as the import contract says
    assert "d-2" not in world.export()


def test_an_import_line_nested_too_deeply_is_invalid_input_not_a_crash(world: Cli) -> None:
    before = world.export()
    deep = '{"command": "member.add", "command_id": "c1", "args": ' + "[" * 100_000 + "]" * 100_000 + "}"
    message = assert_rejected(world, before, world("import", "-", input=deep + "\n"), 2, "InvalidInput")
    assert message.startswith("line 1: json: nested too deeply")


def test_an_import_command_id_that_is_not_utf8_is_invalid_input_not_a_crash(world: Cli) -> None:
    before = world.export()
    line = '{"command": "member.suspend", "command_id": "c\\ud800", "args": {"id": "byd"}}'
    message = assert_rejected(world, before, world("import", "-", input=line + "\n"), 2, "InvalidInput")
    assert message.startswith("line 1: command_id: ")


# --------------------------------------------------------------------------- 8. exit codes say what happened


@pytest.mark.parametrize("position", ["٣", "²", "３"], ids=["arabic-indic", "superscript", "full-width"])
def test_a_digest_with_non_ascii_digits_is_invalid_input(world: Cli, position: str) -> None:
    result = world("audit", "verify", "--digest", f"{position}:{'a' * 64}")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: InvalidInput: digest: ")


@pytest.mark.parametrize("url", ["mysql://user@localhost/ipledger", "nosuch://x"], ids=["no-driver", "unknown"])
def test_a_store_without_a_driver_is_store_unavailable(url: str) -> None:
    result = Cli(url)("owner", PATENT)
    assert result.exit_code == 5
    assert result.stderr.startswith("error: StoreUnavailable: db: no driver for ")


# --------------------------------------------------------------------------- 9. text hygiene


@pytest.mark.parametrize("name", ["Huawei\u202e", "\u2066Huawei\u2069", "\u200b\u200b", "\u200d \ufeff"])
def test_bidi_controls_and_invisible_names_are_refused(world: Cli, name: str) -> None:
    before = world.export()
    result = world("member", "add", "tju", "--name", name, "--kind", "university", "--country", "CN")
    message = assert_rejected(world, before, result, 2, "InvalidInput")
    assert message.startswith("name: ")


def test_a_royalty_rate_with_an_exponent_is_refused(world: Cli) -> None:
    before = world.export()
    result = world("licence", "grant", PATENT, "--licensee", "sjtu", "--type", "non_exclusive",
                   "--territory", "CN", "--field", "ALL", "--start", "2026-03-02", "--end", "2030-01-01",
                   "--royalty-rate", "1e2")  # fmt: skip
    message = assert_rejected(world, before, result, 2, "InvalidInput")
    assert message.startswith("royalty_rate: '1e2' must be a percentage")


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_a_store_that_cannot_persist_is_refused(url: str) -> None:
    result = Cli(url)("member", "add", "tju", "--name", "Tianjin", "--kind", "university", "--country", "CN")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: InvalidInput: db: {url} is an in-memory store")


# --------------------------------------------------------------------------- 10. lapsed and voided sales say so


def sell_at_fixed_price(run: Cli) -> None:
    run.ok("asset", "register", FIXED_ASSET, "--title", "Fixed", "--owner", "byd", "--effective", "2021-01-04")
    run.ok("listing", "open", FIXED_ASSET, "--type", "assignment", "--mechanism", "fixed", "--ask", "100.00",
           "--currency", "CNY", "--closes", "2026-04-01T00:00:00Z", "--id", "L-FIX",
           "--settlement-days", "2")  # fmt: skip
    run.ok("bid", "place", "L-FIX", "--bidder", "zte", "--amount", "100.00", "--id", "B-FIX", "--trade-id", "T-1")


def test_a_sale_whose_trade_lapsed_is_lapsed_in_listings_and_book(world: Cli) -> None:
    sell_at_fixed_price(world)
    assert doc(world("book", "L-FIX", "--json"))["status"] == "sold"
    advance(world, "2026-03-05T00:00:00Z")
    book = doc(world("book", "L-FIX", "--json"))
    assert book["status"] == "lapsed"
    assert [b["state"] for b in book["bids"]] == ["lapsed"]
    assert "won by" not in world.ok("book", "L-FIX").stdout
    lapsed = doc(world("listings", "--status", "lapsed", "--json"))["listings"]
    assert [x["listing"] for x in lapsed] == ["L-FIX"]
    assert doc(world("listings", "--status", "sold", "--json"))["listings"] == []


def test_a_voided_sale_is_closed_in_listings_and_book(world: Cli) -> None:
    sell_at_fixed_price(world)
    world.ok("trade", "void", "T-1", "--reason", "buyer withdrew")
    book = doc(world("book", "L-FIX", "--json"))
    assert book["status"] == "closed"
    assert [b["state"] for b in book["bids"]] == ["voided"]
    assert "won by" not in world.ok("book", "L-FIX").stdout


def test_a_settled_sale_stays_sold_after_its_deadline(world: Cli) -> None:
    sell_at_fixed_price(world)
    world.ok("trade", "settle", "T-1", "--payment-ref", "CNAPS-1")
    advance(world, "2026-03-05T00:00:00Z")
    assert doc(world("book", "L-FIX", "--json"))["status"] == "sold"


# --------------------------------------------------------------------------- 11. an export is one prefix of the log


def test_an_export_stops_at_the_head_it_started_from(world: Cli) -> None:
    from ipledger.service import Ledger

    ledger = Ledger(world.db)
    try:
        lines = ledger.export()
        first = next(lines)
        head = len(export_lines(world))
        world.ok("member", "add", "tju", "--name", "Tianjin", "--kind", "university", "--country", "CN")
        rest = list(lines)
    finally:
        ledger.close()
    assert 1 + len(rest) == head
    assert json.loads(first)["position"] == 1
