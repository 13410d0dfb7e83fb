"""`ipledger restore` (cli.md, issue 15): a new store from an export, every hash checked;
export -> restore -> export byte-identical; nothing kept from a bad export."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from bench.generator import generate
from ipledger.ledger.config import is_sqlite
from ipledger.service import Ledger
from tests.cli_helpers import doc
from tests.conftest import PATENT, Cli, fresh_pg_url


@pytest.fixture
def history(store_url: str, tmp_path: Path) -> tuple[Cli, Path]:
    """A store with a bench market of ~1,500 events (both jurisdictions), and its export."""
    source = Ledger(store_url)
    source.import_lines(list(generate(1500)))
    source.close()
    run = Cli(store_url)
    exported = tmp_path / "log.jsonl"
    exported.write_text(run.export())
    return run, exported


def fresh(tmp_path: Path, name: str = "restored") -> Cli:
    return Cli(f"sqlite:///{tmp_path}/{name}.db")


def test_export_restore_export_is_byte_identical(history: tuple[Cli, Path], tmp_path: Path) -> None:
    run, exported = history
    target = fresh(tmp_path)
    done = doc(target("--json", "restore", str(exported)))
    assert done["events"] == len(exported.read_text().splitlines())
    assert target.export() == exported.read_text()


def test_a_restored_store_verifies_and_answers_as_the_original(history: tuple[Cli, Path], tmp_path: Path) -> None:
    run, exported = history
    target = fresh(tmp_path)
    target.ok("restore", str(exported))
    assert target.ok("audit", "verify").stdout.startswith("ok: ")
    for query in (["listings"], ["members"], ["assets"], ["pledges"], ["trades"], ["licences"]):
        assert doc(target("--json", *query)) == doc(run("--json", *query)), query


def test_a_restored_store_takes_new_commands_after_its_head(history: tuple[Cli, Path], store_url: str) -> None:
    """Restored into PostgreSQL too: the next event's position follows the restored head."""
    _, exported = history
    target = Cli(store_url.replace("ledger.db", "restored-here.db") if is_sqlite(store_url) else fresh_pg_url())
    target.ok("restore", str(exported))
    head = len(exported.read_text().splitlines())
    target.now = "2026-11-30T00:00:00Z"
    target.ok("member", "add", "ccb-sh", "--name", "CCB Shanghai", "--kind", "financial_institution", "--country", "CN")
    assert json.loads(target.export().splitlines()[-1])["position"] == head + 1
    assert target.ok("audit", "verify").stdout.startswith("ok: ")


def test_restore_reads_standard_input(history: tuple[Cli, Path], tmp_path: Path) -> None:
    _, exported = history
    target = fresh(tmp_path)
    target.ok("restore", "-", input=exported.read_text())
    assert target.export() == exported.read_text()


def _refused(target: Cli, result: Result, line: int) -> str:
    assert result.exit_code == 4, result.stderr
    message = str(result.stderr)
    assert message.startswith(f"error: IntegrityError: line {line}: "), message
    assert len(message.splitlines()) == 1
    assert target.export() == "", "nothing of a refused restore is kept"
    return message


@pytest.mark.parametrize("number", [1, 700])
def test_an_altered_event_stops_the_restore_at_its_line_and_keeps_nothing(
    history: tuple[Cli, Path], tmp_path: Path, number: int
) -> None:
    _, exported = history
    lines = exported.read_text().splitlines()
    line = json.loads(lines[number - 1])
    line["state"] = line["state"].replace('"meta"', '"meta" ', 1)  # one byte more in the stored event
    lines[number - 1] = json.dumps(line, separators=(",", ":"))
    target = fresh(tmp_path)
    message = _refused(target, target("restore", "-", input="\n".join(lines) + "\n"), number)
    assert "does not match its hash" in message


def test_a_missing_line_stops_the_restore_at_the_next_one(history: tuple[Cli, Path], tmp_path: Path) -> None:
    _, exported = history
    lines = exported.read_text().splitlines()
    del lines[99]
    target = fresh(tmp_path)
    _refused(target, target("restore", "-", input="\n".join(lines) + "\n"), 100)


def test_swapped_lines_stop_the_restore(history: tuple[Cli, Path], tmp_path: Path) -> None:
    _, exported = history
    lines = exported.read_text().splitlines()
    lines[10], lines[11] = lines[11], lines[10]
    target = fresh(tmp_path)
    message = _refused(target, target("restore", "-", input="\n".join(lines) + "\n"), 11)
    assert "position 12: event content does not match its hash" in message


def test_a_line_that_is_not_an_export_line_stops_the_restore(tmp_path: Path) -> None:
    target = fresh(tmp_path)
    _refused(target, target("restore", "-", input='{"command": "member.add"}\n'), 1)


def test_restore_into_a_store_that_holds_events_is_refused_and_changes_nothing(
    history: tuple[Cli, Path], run: Cli
) -> None:
    _, exported = history
    before = run.export()
    result = run("restore", str(exported))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: InvalidState: db: the store already holds events (head ")
    assert run.export() == before


def test_a_command_id_repeated_after_a_restore_is_still_recognised(tmp_path: Path, run: Cli) -> None:
    run.ok("--command-id", "pledge-1", "pledge", "register", PATENT, "--pledgee", "icbc-sh", "--end", "2030-12-31")
    exported = tmp_path / "log.jsonl"
    exported.write_text(run.export())
    target = fresh(tmp_path)
    target.ok("restore", str(exported))
    again = target("--command-id", "pledge-1", "pledge", "register", PATENT, "--pledgee", "icbc-sh", "--end",
                   "2030-12-31")  # fmt: skip
    assert again.exit_code == 0 and target.export() == exported.read_text()
    assert again.stdout.startswith("already recorded (before a restore; the store keeps only its outcome's sha256 ")
    other = target("--command-id", "pledge-1", "pledge", "register", PATENT, "--pledgee", "boc-bj", "--end",
                   "2030-12-31")  # fmt: skip
    assert other.exit_code == 1 and other.stderr.startswith("error: IdempotencyConflict: ")


def test_kept_checkpoints_are_restored_when_they_match_the_restored_tree(tmp_path: Path, run: Cli) -> None:
    key = tmp_path / "signing.key"
    vkey = run.ok("audit", "keygen", "--name", "exchange.example", "--out", str(key)).stdout.strip()
    run.ok("init", "--origin", "exchange.example/main")
    note = doc(run("--json", "audit", "checkpoint", "--key", str(key)))["checkpoint"]
    (tmp_path / "log.jsonl").write_text(run.export())
    (tmp_path / "checkpoints.jsonl").write_text(run.ok("export", "--checkpoints").stdout)
    target = fresh(tmp_path)
    done = doc(
        target("--json", "restore", str(tmp_path / "log.jsonl"), "--checkpoints", str(tmp_path / "checkpoints.jsonl"))
    )
    assert done["checkpoints"] == 1
    assert [c["checkpoint"] for c in doc(target("--json", "audit", "checkpoints"))["checkpoints"]] == [note]
    (tmp_path / "today.checkpoint").write_text(note)
    verified = target("audit", "verify", "--checkpoint", str(tmp_path / "today.checkpoint"), "--key", vkey)
    assert verified.exit_code == 0, verified.stderr


def test_a_checkpoint_of_another_log_is_refused_and_nothing_is_kept(tmp_path: Path, run: Cli) -> None:
    key = tmp_path / "signing.key"
    run.ok("audit", "keygen", "--name", "exchange.example", "--out", str(key))
    run.ok("audit", "checkpoint", "--key", str(key))
    checkpoints = run.ok("export", "--checkpoints").stdout
    lines = run.export().splitlines()
    target = fresh(tmp_path)
    (tmp_path / "short.jsonl").write_text("\n".join(lines[:-1]) + "\n")  # a log one event short of the checkpoint
    (tmp_path / "checkpoints.jsonl").write_text(checkpoints)
    result = target("restore", str(tmp_path / "short.jsonl"), "--checkpoints", str(tmp_path / "checkpoints.jsonl"))
    assert result.exit_code == 4
    assert result.stderr.startswith("error: IntegrityError: checkpoints line 1: the checkpoint of size ")
    assert target.export() == ""


def _rechained(lines: list[str], number: int, change: Callable[[dict[str, Any]], None]) -> str:
    """The export with line `number` changed and every hash from it on recomputed, as a
    forger who knows the chain's formula would."""
    from ipledger.ledger.chain import GENESIS, chain_hash

    docs = [json.loads(line) for line in lines]
    change(docs[number - 1])
    prev = GENESIS
    for d in docs:
        d["hash"] = chain_hash(
            prev, d["position"], d["originator_id"], d["originator_version"], d["topic"], d["state"].encode()
        )
        prev = d["hash"]
    return "".join(json.dumps(d, separators=(",", ":")) + "\n" for d in docs)


def _drop_a_field(d: dict[str, Any]) -> None:
    """The first event (a member's admission) without its name: hashes right, replays wrong."""
    state = json.loads(d["state"])
    state.pop("name")
    d["state"] = json.dumps(state, separators=(",", ":"))


def test_a_rechained_export_that_does_not_replay_is_refused_and_nothing_is_kept(
    history: tuple[Cli, Path], tmp_path: Path
) -> None:
    _, exported = history
    forged = _rechained(exported.read_text().splitlines(), 1, _drop_a_field)
    target = fresh(tmp_path)
    result = target("restore", "-", input=forged)
    assert result.exit_code == 4, result.stderr
    assert result.stderr.startswith("error: IntegrityError: restore: the log does not replay (")
    assert result.stderr.rstrip().endswith("nothing was kept")
    assert target.export() == ""
    assert target.ok("restore", str(exported)).exit_code == 0  # the store is empty again: the true log restores


def test_an_id_in_a_form_the_store_never_writes_is_refused_at_its_line(
    history: tuple[Cli, Path], tmp_path: Path
) -> None:
    _, exported = history

    def upper_case_id(d: dict[str, Any]) -> None:
        d["originator_id"] = d["originator_id"].upper()

    forged = _rechained(exported.read_text().splitlines(), 2, upper_case_id)
    target = fresh(tmp_path)
    message = _refused(target, target("restore", "-", input=forged), 2)
    assert "not a stored event" in message


def test_an_id_in_another_form_is_refused_even_after_its_aggregate_was_restored(
    history: tuple[Cli, Path], tmp_path: Path
) -> None:
    """A later event of an aggregate already restored, its id in upper case, is still not
    the store's own line (the restore keeps the ids it has seen, by their text as given:
    chain.AggregateIds in ledger/restore.Restore)."""
    _, exported = history
    lines = exported.read_text().splitlines()
    ids = [json.loads(line)["originator_id"] for line in lines]
    later = next(n for n, oid in enumerate(ids, start=1) if oid in ids[: n - 1])  # an aggregate's second event

    def upper_case_id(d: dict[str, Any]) -> None:
        d["originator_id"] = d["originator_id"].upper()

    target = fresh(tmp_path)
    message = _refused(target, target("restore", "-", input=_rechained(lines, later, upper_case_id)), later)
    assert "not a stored event" in message


def test_an_id_that_is_a_number_is_refused_at_its_line(history: tuple[Cli, Path], tmp_path: Path) -> None:
    """16 would read as sixteen zero bytes (chain.stored_uuid): no store writes it so."""
    _, exported = history

    def numeric_id(d: dict[str, Any]) -> None:
        d["originator_id"] = 16

    forged = _rechained(exported.read_text().splitlines(), 2, numeric_id)
    target = fresh(tmp_path)
    assert "not a stored event" in _refused(target, target("restore", "-", input=forged), 2)


def test_a_duplicated_event_is_refused_as_an_integrity_failure(history: tuple[Cli, Path], tmp_path: Path) -> None:
    _, exported = history
    lines = exported.read_text().splitlines()

    def same_as_line_1(d: dict[str, Any]) -> None:
        first = json.loads(lines[0])
        d["originator_id"], d["originator_version"] = first["originator_id"], first["originator_version"]

    forged = _rechained(lines, 2, same_as_line_1)
    target = fresh(tmp_path)
    result = target("restore", "-", input=forged)
    assert result.exit_code == 4 and "the store refuses these events" in result.stderr, result.stderr
    assert target.export() == ""


def test_a_checkpoint_line_whose_size_is_not_its_notes_is_refused(tmp_path: Path, run: Cli) -> None:
    key = tmp_path / "signing.key"
    run.ok("audit", "keygen", "--name", "exchange.example", "--out", str(key))
    run.ok("audit", "checkpoint", "--key", str(key))
    line = json.loads(run.ok("export", "--checkpoints").stdout)
    run.ok("member", "add", "ccb-sh", "--name", "CCB", "--kind", "financial_institution", "--country", "CN")
    line["size"], line["root_hash"] = line["size"] + 1, None  # another size than the note signed
    (tmp_path / "log.jsonl").write_text(run.export())
    target = fresh(tmp_path)
    ours = doc(run("--json", "audit", "prove", "--from", str(line["size"]), "--to", str(line["size"])))
    line["root_hash"] = ours["to_root"]  # the restored tree's true root at that size: only the note disagrees
    (tmp_path / "checkpoints.jsonl").write_text(json.dumps(line) + "\n")
    result = target("restore", str(tmp_path / "log.jsonl"), "--checkpoints", str(tmp_path / "checkpoints.jsonl"))
    assert result.exit_code == 4, result.stderr
    assert "does not match the restored log's tree" in result.stderr
    assert target.export() == ""


# --------------------------------------------------------------------------- a second process folds the read models


@pytest.fixture
def folded_beside(monkeypatch: pytest.MonkeyPatch) -> list[int | None]:
    """Every export is large: a child process folds the read models as the lines are
    accepted (projections/scratch.py). Returns each restore's verdict from its child (the
    last position it folded, or None: no verdict, the read models rebuilt instead)."""
    from ipledger.projections import scratch

    verdicts: list[int | None] = []
    finish = scratch.ExportFold.finish

    def kept(fold: scratch.ExportFold) -> int | None:
        verdicts.append(finish(fold))
        return verdicts[-1]

    monkeypatch.setattr(scratch, "FROM_EVENTS", 1)
    monkeypatch.setattr(scratch.ExportFold, "finish", kept)
    return verdicts


RESTORED = (
    test_export_restore_export_is_byte_identical,
    test_a_restored_store_verifies_and_answers_as_the_original,
    test_restore_reads_standard_input,
)
FOLDED_BESIDE: list[Callable[[tuple[Cli, Path], Path], None]] = [
    test_export_restore_export_is_byte_identical,
    test_a_restored_store_verifies_and_answers_as_the_original,
    test_restore_reads_standard_input,
    lambda history, tmp_path: test_an_altered_event_stops_the_restore_at_its_line_and_keeps_nothing(
        history, tmp_path, 700
    ),
    test_a_missing_line_stops_the_restore_at_the_next_one,
    test_swapped_lines_stop_the_restore,
    test_a_rechained_export_that_does_not_replay_is_refused_and_nothing_is_kept,
    test_an_id_in_a_form_the_store_never_writes_is_refused_at_its_line,
    test_a_duplicated_event_is_refused_as_an_integrity_failure,
]


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    "check",
    FOLDED_BESIDE,
    ids=lambda f: f.__name__.removeprefix("test_").replace("<lambda>", "altered_event_at_line_700"),
)
def test_read_models_folded_beside_the_restore_are_the_rebuilt_ones(
    check: Callable[[tuple[Cli, Path], Path], None],
    history: tuple[Cli, Path],
    tmp_path: Path,
    folded_beside: list[int | None],
) -> None:
    check(history, tmp_path)
    if check in RESTORED:  # these restores kept what their child folded (a line refused stops the child)
        assert folded_beside and None not in folded_beside, folded_beside


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_large_restore_takes_its_read_models_from_the_fold(
    history: tuple[Cli, Path], tmp_path: Path, folded_beside: list[int | None]
) -> None:
    _, exported = history
    fresh(tmp_path).ok("restore", str(exported))
    head = json.loads(exported.read_text().splitlines()[-1])["position"]
    assert folded_beside == [head]


@pytest.fixture
def fold_starts(monkeypatch: pytest.MonkeyPatch, folded_beside: list[int | None], tmp_path: Path) -> list[int]:
    """How many lines each restore's fold had buffered when its child started (a spy),
    or -1 if it started before the store (`fresh(tmp_path)`'s file) was opened; an
    export of FROM_EVENTS = 5 lines or more is large (not 1, as `folded_beside` has it),
    and so is any file of at least 5 bytes."""
    from ipledger.projections import scratch

    started: list[int] = []
    start = scratch.ExportFold._start

    def spy(fold: scratch.ExportFold) -> None:
        started.append(len(fold._lines) if (tmp_path / "restored.db").exists() else -1)
        start(fold)

    monkeypatch.setattr(scratch, "FROM_EVENTS", 5)
    monkeypatch.setattr(scratch, "BYTES_PER_EVENT", 1)
    monkeypatch.setattr(scratch.ExportFold, "_start", spy)
    return started


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_an_export_file_large_enough_starts_its_fold_before_the_store_opens(
    history: tuple[Cli, Path], tmp_path: Path, fold_starts: list[int], folded_beside: list[int | None]
) -> None:
    _, exported = history
    fresh(tmp_path).ok("restore", str(exported))
    assert (tmp_path / "restored.db").exists()  # the file the spy looked for
    assert fold_starts == [-1]
    assert folded_beside == [json.loads(exported.read_text().splitlines()[-1])["position"]]


@pytest.fixture
def early_folds(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Any]:
    """Every export file starts its fold's child before the store is opened; returns each
    restore's ExportFold (a spy), and keeps the restores' temporary folders in tmp_path/tmp."""
    import tempfile

    from ipledger.projections import scratch

    folds: list[Any] = []
    start = scratch.ExportFold.start

    def spy(fold: scratch.ExportFold) -> None:
        folds.append(fold)
        start(fold)

    monkeypatch.setattr(scratch, "FROM_EVENTS", 1)
    monkeypatch.setattr(scratch, "BYTES_PER_EVENT", 1)
    monkeypatch.setattr(scratch.ExportFold, "start", spy)
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    return folds


def _stopped_and_cleaned(folds: list[Any], tmp_path: Path) -> bool:
    """One fold's child was started, and is gone; no restore's temporary folder is left."""
    started = [fold._child for fold in folds]
    return (
        len(started) == 1
        and started[0] is not None
        and started[0].poll() is not None
        and not list((tmp_path / "tmp").glob("ipledger-restore-*"))
    )


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_fold_started_early_is_stopped_when_the_store_holds_events(
    history: tuple[Cli, Path], run: Cli, tmp_path: Path, early_folds: list[Any]
) -> None:
    test_restore_into_a_store_that_holds_events_is_refused_and_changes_nothing(history, run)
    assert _stopped_and_cleaned(early_folds, tmp_path)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_fold_started_early_is_stopped_when_the_store_cannot_be_opened(
    history: tuple[Cli, Path], tmp_path: Path, early_folds: list[Any]
) -> None:
    _, exported = history
    result = Cli(f"sqlite:///{tmp_path}/missing/restored.db")("restore", str(exported))
    assert result.exit_code == 5
    assert result.stderr.startswith("error: StoreUnavailable: ")
    assert _stopped_and_cleaned(early_folds, tmp_path)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_an_export_on_standard_input_starts_its_fold_once_it_is_large(
    history: tuple[Cli, Path], tmp_path: Path, fold_starts: list[int], folded_beside: list[int | None]
) -> None:
    _, exported = history
    fresh(tmp_path).ok("restore", "-", input=exported.read_bytes())
    assert fold_starts == [5]
    assert folded_beside == [json.loads(exported.read_text().splitlines()[-1])["position"]]


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_fold_that_fails_leaves_the_verdict_to_the_rebuild(
    history: tuple[Cli, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    folded_beside: list[int | None],
) -> None:
    """The same forged export, restored with the fold beside it and without: the child
    gives no verdict, and the rebuild reports the failure in the same words."""
    from ipledger.projections import scratch

    _, exported = history
    forged = _rechained(exported.read_text().splitlines(), 1, _drop_a_field)
    monkeypatch.setattr(scratch, "FROM_EVENTS", 10**9)
    rebuilt = fresh(tmp_path, "rebuilt")("restore", "-", input=forged)
    folded_beside.clear()  # that restore had no child, by design
    monkeypatch.setattr(scratch, "FROM_EVENTS", 1)
    folded = fresh(tmp_path, "folded")("restore", "-", input=forged)
    assert (folded.exit_code, folded.stderr) == (rebuilt.exit_code, rebuilt.stderr)
    assert "does not replay (" in folded.stderr
    assert folded_beside == [None]


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("interpreter", ["/bin/false", "/nonexistent/python"])
def test_a_child_that_cannot_fold_leaves_the_read_models_to_the_rebuild(
    interpreter: str, history: tuple[Cli, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from ipledger.projections import scratch

    run, exported = history
    monkeypatch.setattr(scratch, "FROM_EVENTS", 1)
    monkeypatch.setattr(sys, "executable", interpreter)
    target = fresh(tmp_path)
    target.ok("restore", str(exported))
    assert target.ok("audit", "verify").stdout.startswith("ok: ")
    assert doc(target("--json", "listings")) == doc(run("--json", "listings"))
