"""A large log is proved by a second process while this one folds it (ledger/prover.py).

Two processes must find exactly what one pass finds, and say it the same way: each
tampering test of the audit and trust suites runs again here with every log "large",
and with any proof done in this process (rather than by the child) failing the test.
The child also folds a share of the read models (projections/scratch.py): what a
rebuild takes in from it, and what a verify compares, must be what one pass folds.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from ipledger.domain.errors import IntegrityError
from ipledger.ledger import prover
from ipledger.projections import runner, scratch
from ipledger.projections.scratch import (
    BESIDE_REBUILD,
    BESIDE_REBUILD_SMALL,
    BESIDE_VERIFY,
    BESIDE_VERIFY_SMALL,
    ProvedFold,
)
from ipledger.service import Ledger
from tests import test_audit as audit
from tests import test_trust as trust
from tests.conftest import Cli, Market, open_market
from tests.test_audit import behind_the_ledgers_back, position_of

# The suites' own fixtures: the stores their tampering tests expect.
history = audit.history
world = trust.world
store = trust.store


def _here(*_: Any) -> dict[str, Any]:
    raise AssertionError("the child process gave no verdict: the log was proved in this process")


@pytest.fixture
def two_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every non-empty log is large enough for a child to prove it, and it must (its
    output buffered, as it is run for real: PYTHONUNBUFFERED would hide a lost flush)."""
    monkeypatch.setattr(prover, "PARALLEL_FROM", 1)
    monkeypatch.setattr(prover, "prove", _here)
    monkeypatch.delenv("PYTHONUNBUFFERED", raising=False)


TAMPERED_VERIFY: list[Callable[[Cli], None]] = [
    audit.test_altered_event_payload_fails_verify_at_its_position,
    audit.test_one_changed_byte_in_a_bid_amount_fails_verify_at_that_bid,
    audit.test_altered_event_topic_fails_verify_at_its_position,
    audit.test_deleted_event_fails_verify_at_the_missing_position,
    audit.test_deleted_head_event_fails_verify_at_the_head,
    audit.test_swapped_events_fail_verify_at_the_earlier_position,
    audit.test_swapped_events_of_different_aggregates_fail_verify_at_the_earlier_position,
    audit.test_inserted_event_without_a_chain_link_fails_verify_at_its_position,
    audit.test_altered_stored_hash_fails_verify_at_its_position,
    audit.test_tampering_is_reported_at_the_first_bad_position_only,
    audit.test_earlier_digest_still_verifies_after_more_events,
    audit.test_digest_with_a_wrong_hash_fails_verify_with_exit_4,
    audit.test_digest_of_an_earlier_position_with_a_wrong_hash_fails_verify,
    audit.test_digest_beyond_the_head_fails_verify_with_exit_4,
    audit.test_rewrite_that_recomputes_the_chain_fails_the_earlier_digest,
    audit.test_corrupted_read_model_is_served_until_rebuilt,
    audit.test_rebuild_repairs_every_corrupted_projection_at_once,
]


@pytest.mark.parametrize("check", TAMPERED_VERIFY, ids=lambda f: f.__name__.removeprefix("test_"))
def test_two_processes_find_what_one_pass_finds(
    check: Callable[[Cli], None], history: Cli, two_processes: None
) -> None:
    check(history)


TAMPERED_STORE: list[Callable[[Cli, sa.Engine], None]] = [
    trust.test_rebuild_refuses_an_edited_event_and_keeps_the_read_models,
    trust.test_verify_catches_an_edited_command_outcome,
    trust.test_verify_catches_a_deleted_command_record,
]


@pytest.mark.parametrize("check", TAMPERED_STORE, ids=lambda f: f.__name__.removeprefix("test_"))
def test_two_processes_refuse_what_one_pass_refuses_on_each_store(
    check: Callable[[Cli, sa.Engine], None], world: Cli, store: sa.Engine, two_processes: None
) -> None:
    check(world, store)


def test_the_report_is_the_one_pass_report(history: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    one_pass = json.loads(history.ok("audit", "verify", "--json").stdout)
    monkeypatch.setattr(prover, "PARALLEL_FROM", 1)
    monkeypatch.setattr(prover, "prove", _here)
    assert json.loads(history.ok("audit", "verify", "--json").stdout) == one_pass


def test_a_rebuild_in_two_processes_is_the_one_pass_rebuild(
    history: Cli, monkeypatch: pytest.MonkeyPatch, two_processes: None
) -> None:
    history.ok("projections", "rebuild")
    monkeypatch.setattr(prover, "PARALLEL_FROM", 10**12)
    history.ok("audit", "verify")  # one pass: the rebuilt read models equal a fresh replay


def test_an_event_the_fold_cannot_read_is_reported_as_the_chain_reports_it(history: Cli, two_processes: None) -> None:
    """The fold meets unproved bytes first and fails on them; the verdict names the event."""
    bid = position_of(history, "Listing.BidPlaced", bid_id="B-zte")
    with behind_the_ledgers_back(history) as conn:
        conn.execute("UPDATE ipledger_events SET state = ? WHERE id = ?", (b"{not json", bid))
    message = audit.assert_integrity_error_at(history("audit", "verify"), bid)
    assert message == "event content does not match its hash (altered or reordered)"
    result = history("projections", "rebuild")
    assert result.stderr.endswith("rebuild refused, the read models were kept\n"), result.stderr


def test_a_fold_that_read_other_events_than_were_proved_is_refused(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two valid logs of the same length: the child proves one, this process reads the other."""
    markets: list[Market] = []
    for name in ("proved", "read"):
        market = next(open_market(f"sqlite:///{tmp_path}/{name}.db"))
        market.do("member.add", id=f"m-{name}", name=name, kind="enterprise", country="CN")
        markets.append(market)
    proved, read = (m.ledger.exchange for m in markets)
    monkeypatch.setattr(prover, "PARALLEL_FROM", 1)
    refused = r"^log: events up to position \d+ read differently by the two passes"
    proof = prover.Proof(proved.url, "ipledger_events", read.engine)
    with pytest.raises(IntegrityError, match=refused), proof:
        for _ in proof.pages():
            pass
    for m in markets:
        m.ledger.close()


@pytest.fixture
def proved_here(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every proof done in this process, for want of a child's verdict (a spy)."""
    calls: list[int] = []
    real = prover.prove

    def prove(*args: Any) -> dict[str, Any]:
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(prover, "prove", prove)
    return calls


@pytest.mark.parametrize("interpreter", ["/bin/false", "/nonexistent/python"])
def test_a_child_that_cannot_run_leaves_the_proof_to_this_process(
    interpreter: str, sqlite_market: Market, monkeypatch: pytest.MonkeyPatch, proved_here: list[int]
) -> None:
    ledger: Ledger = sqlite_market.ledger
    one_pass = ledger.verify()
    monkeypatch.setattr(prover, "PARALLEL_FROM", 1)
    monkeypatch.setattr(sys, "executable", interpreter)
    assert ledger.verify() == one_pass
    assert proved_here == [1]


def test_a_child_that_cannot_run_still_refuses_a_tampered_log(
    history: Cli, monkeypatch: pytest.MonkeyPatch, proved_here: list[int]
) -> None:
    monkeypatch.setattr(prover, "PARALLEL_FROM", 1)
    monkeypatch.setattr(sys, "executable", "/bin/false")
    audit.test_altered_event_payload_fails_verify_at_its_position(history)
    assert proved_here == [1]


# --------------------------------------------------------------------------- the child's share of the fold


@pytest.fixture
def folded_here(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The read models this process folds, one entry per fold (a spy)."""
    names: list[str] = []
    real = runner.Fold.__init__

    def init(self: runner.Fold, group: list[Any], *args: Any) -> None:
        names.extend(p.name for p in group)
        real(self, group, *args)

    monkeypatch.setattr(runner.Fold, "__init__", init)
    return names


def one_pass_verifies(run: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """`audit verify` in one process, with no child: the read models equal one fresh replay."""
    monkeypatch.setattr(prover, "PARALLEL_FROM", 10**12)
    result = run("audit", "verify")
    assert result.exit_code == 0, result.stderr


@pytest.fixture(params=["small", "large"])
def log_size(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The test's log (~1,500 events) as a small log, or counted as a large one
    (SMALL_LOG 0): the prover is handed the larger share of the read models."""
    if request.param == "large":
        monkeypatch.setattr(scratch, "SMALL_LOG", 0)
    return str(request.param)


def test_a_rebuild_takes_in_what_the_child_folded_and_folds_only_the_rest(
    history: Cli, monkeypatch: pytest.MonkeyPatch, two_processes: None, folded_here: list[str], log_size: str
) -> None:
    for name in audit.PROJECTIONS:
        audit.corrupt(history, name)
    history.ok("projections", "rebuild")
    handed = BESIDE_REBUILD if log_size == "large" else BESIDE_REBUILD_SMALL
    assert sorted(folded_here) == sorted(set(audit.PROJECTIONS) - set(handed))
    one_pass_verifies(history, monkeypatch)


def test_a_rebuild_of_one_read_model_the_child_would_fold_is_folded_by_the_child(
    history: Cli, monkeypatch: pytest.MonkeyPatch, two_processes: None, folded_here: list[str]
) -> None:
    name = BESIDE_REBUILD[0]
    audit.corrupt(history, name)
    assert audit.doc(history("--json", "projections", "rebuild", name))["rebuilt"] == [name]
    assert folded_here == []
    one_pass_verifies(history, monkeypatch)


def test_a_child_that_cannot_run_leaves_its_share_of_the_rebuild_to_this_process(
    history: Cli, monkeypatch: pytest.MonkeyPatch, proved_here: list[int], folded_here: list[str]
) -> None:
    for name in audit.PROJECTIONS:
        audit.corrupt(history, name)
    monkeypatch.setattr(prover, "PARALLEL_FROM", 1)
    monkeypatch.setattr(sys, "executable", "/bin/false")
    history.ok("projections", "rebuild")
    assert proved_here == [1]
    assert sorted(folded_here) == sorted(audit.PROJECTIONS)  # the child's share in a second pass
    one_pass_verifies(history, monkeypatch)


@pytest.mark.parametrize("name", audit.PROJECTIONS)
def test_verify_names_a_corrupted_read_model_whichever_process_folded_it(
    history: Cli, name: str, two_processes: None
) -> None:
    audit.test_corrupted_read_model_fails_verify_naming_its_projection(history, name)


def test_verify_folds_only_what_the_child_does_not(
    history: Cli, two_processes: None, folded_here: list[str], log_size: str
) -> None:
    history.ok("audit", "verify")
    handed = BESIDE_VERIFY if log_size == "large" else BESIDE_VERIFY_SMALL
    assert sorted(folded_here) == sorted(set(audit.PROJECTIONS) - set(handed))


def test_a_child_that_cannot_run_leaves_its_share_of_the_verify_to_this_process(
    history: Cli, monkeypatch: pytest.MonkeyPatch, proved_here: list[int], folded_here: list[str]
) -> None:
    monkeypatch.setattr(prover, "PARALLEL_FROM", 1)
    monkeypatch.setattr(sys, "executable", "/bin/false")
    history.ok("audit", "verify")
    assert sorted(folded_here) == sorted(audit.PROJECTIONS)
    audit.corrupt(history, BESIDE_VERIFY[0])
    audit.assert_projections_differ(history("audit", "verify"), f"{BESIDE_VERIFY[0]} (")
    assert proved_here == [1, 1]


def test_verify_on_each_store_compares_the_childs_share(
    world: Cli, store: sa.Engine, two_processes: None, folded_here: list[str]
) -> None:
    world.ok("audit", "verify")
    assert set(folded_here).isdisjoint(BESIDE_VERIFY_SMALL)  # a small log's share
    trust.sql(store, "DELETE FROM rm_bids WHERE bid_id = 'B-ZTE'")
    assert trust.verify_fails(world).startswith("projections: book (rm_bids) differ from a fresh replay")


def test_the_childs_fold_stops_at_the_head_the_parent_read(sqlite_market: Market, tmp_path: Any) -> None:
    """The proof reads to the log's end; events after the parent's head are not folded."""
    sqlite_market.do(
        "member.add", id="cmb-sz", name="China Merchants Bank Shenzhen", kind="financial_institution", country="CN"
    )
    exchange = sqlite_market.ledger.exchange
    until = sqlite_market.ledger.read_models.head()
    sqlite_market.do(
        "member.add", id="ccb-gz", name="China Construction Bank Guangzhou", kind="financial_institution", country="CN"
    )
    path = str(tmp_path / "beside.db")
    verdict = prover.prove(exchange.engine, "ipledger_events", until, None, False, ProvedFold(path, ["members"], until))
    assert verdict["proved"] and verdict["folded"] == until
    with sa.create_engine(f"sqlite:///{path}").connect() as conn:
        folded = set(conn.execute(sa.text("SELECT member_id FROM rm_members")).scalars())
    assert "cmb-sz" in folded and "ccb-gz" not in folded


#: A prover whose fold says it reached one position short of the parent's head.
SHORT_FOLD = (
    "-c",
    "from ipledger.ledger import prover\n"
    "from ipledger.projections.scratch import ProvedFold\n"
    "class Short(ProvedFold):\n"
    "    def finish(self):\n"
    "        return super().finish() - 1\n"
    "prover.main(Short.of_job)\n",
)


def test_a_rebuild_takes_in_only_a_fold_that_reached_its_head(
    history: Cli, monkeypatch: pytest.MonkeyPatch, two_processes: None, folded_here: list[str]
) -> None:
    from ipledger.projections import scratch

    monkeypatch.setattr(scratch, "PROVER", SHORT_FOLD)
    for name in audit.PROJECTIONS:
        audit.corrupt(history, name)
    history.ok("projections", "rebuild")
    assert sorted(folded_here) == sorted(audit.PROJECTIONS)  # the child's share folded here again
    one_pass_verifies(history, monkeypatch)


def test_verify_compares_only_a_fold_that_reached_its_head(
    history: Cli, monkeypatch: pytest.MonkeyPatch, two_processes: None, folded_here: list[str]
) -> None:
    from ipledger.projections import scratch

    monkeypatch.setattr(scratch, "PROVER", SHORT_FOLD)
    history.ok("audit", "verify")
    assert sorted(folded_here) == sorted(audit.PROJECTIONS)


def test_a_rebuild_attaches_the_childs_file_before_the_child_starts(
    history: Cli, monkeypatch: pytest.MonkeyPatch, two_processes: None
) -> None:
    """The child holds its file's write lock while it folds; an ATTACH would wait on it."""
    steps: list[str] = []
    attach, start = runner.attached, prover.Proof.start

    def attached(conn: Any, path: str | None, *args: Any) -> Any:
        steps.append("attach")
        return attach(conn, path, *args)

    def started(proof: prover.Proof) -> None:
        if not proof._started:
            steps.append("start")
        start(proof)

    monkeypatch.setattr(runner, "attached", attached)
    monkeypatch.setattr(prover.Proof, "start", started)
    history.ok("projections", "rebuild")
    assert steps == ["attach", "start"]


def test_a_sink_that_fails_gives_no_verdict_on_the_log(sqlite_market: Market) -> None:
    """Whatever the child's fold raises, even an IntegrityError, says nothing about the log."""

    class Failing:
        def __call__(self, page: list[Any]) -> None:
            raise IntegrityError("a projection's own error")

        def finish(self) -> int:
            raise AssertionError("not reached")

    exchange = sqlite_market.ledger.exchange
    until = sqlite_market.ledger.read_models.head()
    with pytest.raises(prover.SinkFailed):
        prover.prove(exchange.engine, "ipledger_events", until, None, False, Failing())


def test_a_replay_missing_read_models_handed_elsewhere_refuses_to_compare(sqlite_market: Market) -> None:
    """A verify that handed read models to a child must compare the child's fold of them:
    without it, those read models would go unchecked and the verify say ok."""
    read_models = sqlite_market.ledger.read_models
    with read_models.fresh_replay(handed=BESIDE_VERIFY) as fresh, pytest.raises(ValueError, match="handed"):
        fresh.differ()
